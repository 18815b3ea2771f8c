//! Moving an installation between engines (`herd db copy`).
//!
//! [`export`] reads a whole installation through the `Store` trait, so any
//! engine can be the source: the schema, every object with its id and its
//! stored attributes (relations as hostnames), and the whole history of
//! commits and of schema changes.
//! [`PgStore::import`](crate::PgStore::import) writes that into an empty
//! PostgreSQL database keeping object and commit ids. [`compare`] then
//! checks that two stores hold the same objects and the same history.

use std::collections::{BTreeMap, HashMap};

use herd_model::{AttributeType, CommitRecord, Object, ObjectId, Query, Restrict, Schema, Value};
use herd_store::{SchemaRecord, Store, StoreError};
use postgres::Transaction;

use crate::sql::{bump_schema_version, encode, write_attribute, write_servertype};
use crate::{internal, read_history, HistoryOf};

/// A whole installation, engine-independent.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    pub schema: Schema,
    /// Every object with `object_id`, `hostname`, `servertype`, `intern_ip`
    /// and its stored (not computed) attributes, by object id.
    pub objects: Vec<Object>,
    /// Every commit, oldest first.
    pub commits: Vec<CommitRecord>,
    /// Every batch of schema changes, oldest first.
    pub schema_history: Vec<SchemaRecord>,
}

/// Reads everything a store holds.
pub fn export(store: &dyn Store) -> Result<Export, StoreError> {
    let schema = store.schema()?;
    let mut restrict: Vec<Restrict> = ["hostname", "servertype", "intern_ip"]
        .iter()
        .map(|a| Restrict::Attribute((*a).to_owned()))
        .collect();
    restrict.extend(
        schema
            .attributes
            .values()
            .filter(|a| !a.attribute_type.is_computed())
            .map(|a| Restrict::Attribute(a.attribute_id.clone())),
    );
    let query = Query {
        filters: BTreeMap::new(),
        restrict: Some(restrict),
        order_by: Vec::new(),
    };
    let mut objects = store.query(&query)?;
    for o in &mut objects {
        strip_derived(&schema, o);
    }
    objects.sort_by_key(|o| o.object_id());
    let mut commits = store.recent_commits(usize::MAX)?;
    commits.reverse();
    let mut schema_history = store.schema_history(usize::MAX)?;
    schema_history.reverse();
    Ok(Export {
        schema,
        objects,
        commits,
        schema_history,
    })
}

/// Drops attributes an object takes from a related object, and empty values.
fn strip_derived(schema: &Schema, o: &mut Object) {
    let Some(st) = o.servertype().and_then(|s| schema.servertype(s)).cloned() else {
        return;
    };
    o.fields.retain(|k, v| {
        if matches!(
            k.as_str(),
            "object_id" | "hostname" | "servertype" | "intern_ip"
        ) {
            return true;
        }
        st.attribute(k)
            .is_some_and(|sa| sa.related_via_attribute.is_none())
            && !v.is_empty()
    });
}

/// What differs between two installations, for people.
pub fn compare(source: &Export, target: &Export) -> Vec<String> {
    let mut problems = Vec::new();
    if source.schema != target.schema {
        problems.push("the schemas differ".to_owned());
    }
    let by_id = |e: &Export| -> BTreeMap<Option<ObjectId>, Object> {
        e.objects
            .iter()
            .map(|o| (o.object_id(), o.clone()))
            .collect()
    };
    let (a, b) = (by_id(source), by_id(target));
    if a.len() != b.len() {
        problems.push(format!(
            "the source has {} objects, the target {}",
            a.len(),
            b.len()
        ));
    }
    for (id, o) in &a {
        match b.get(id) {
            None => problems.push(format!(
                "object {} ({}) is missing in the target",
                id.unwrap_or_default(),
                o.hostname().unwrap_or_default()
            )),
            Some(p) if p != o => problems.push(format!(
                "object {} ({}) differs",
                id.unwrap_or_default(),
                o.hostname().unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    if source.commits.len() != target.commits.len() {
        problems.push(format!(
            "the source has {} commits, the target {}",
            source.commits.len(),
            target.commits.len()
        ));
    }
    for (x, y) in source.commits.iter().zip(&target.commits) {
        if x != y {
            problems.push(format!("commit {} differs", x.commit_id));
        }
    }
    if source.schema_history.len() != target.schema_history.len() {
        problems.push(format!(
            "the source has {} schema changes, the target {}",
            source.schema_history.len(),
            target.schema_history.len()
        ));
    }
    for (x, y) in source.schema_history.iter().zip(&target.schema_history) {
        if x != y {
            problems.push(format!("schema change {} differs", x.schema_change_id));
        }
    }
    problems.truncate(20);
    problems
}

/// Writes an export into an empty database (inside the caller's transaction).
pub(crate) fn import(tx: &mut Transaction<'_>, data: &Export) -> Result<(), StoreError> {
    let empty: bool = tx
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM server) AND NOT EXISTS (SELECT 1 FROM commit_log)
                AND NOT EXISTS (SELECT 1 FROM attribute) AND NOT EXISTS (SELECT 1 FROM servertype)
                AND NOT EXISTS (SELECT 1 FROM schema_log)",
            &[],
        )
        .map_err(internal)?
        .get(0);
    if !empty {
        return Err(StoreError::invalid(
            "copy",
            "the target database is not empty: copy into a new database (createdb) so nothing is overwritten",
        ));
    }
    for a in data.schema.attributes.values() {
        write_attribute(tx, a)?;
    }
    for s in data.schema.servertypes.values() {
        write_servertype(tx, s)?;
    }
    let mut ids: HashMap<&str, ObjectId> = HashMap::new();
    let insert_server = tx
        .prepare(
            "INSERT INTO server (object_id, hostname, servertype_id, intern_ip)
             VALUES ($1, $2, $3, $4::text::inet)",
        )
        .map_err(internal)?;
    for o in &data.objects {
        let (Some(id), Some(hostname), Some(st)) = (o.object_id(), o.hostname(), o.servertype())
        else {
            return Err(StoreError::invalid(
                "copy",
                "an exported object lacks object_id, hostname or servertype",
            ));
        };
        let ip = match o.get("intern_ip") {
            Some(Value::Inet(n)) => Some(n.to_string()),
            _ => None,
        };
        tx.execute(&insert_server, &[&id, &hostname, &st, &ip])
            .map_err(internal)?;
        ids.insert(hostname, id);
    }
    let insert_value = tx
        .prepare(
            "INSERT INTO server_attribute (object_id, attribute_id, value, num, ip)
             VALUES ($1, $2, $3, $4, $5::text::inet) ON CONFLICT DO NOTHING",
        )
        .map_err(internal)?;
    for o in &data.objects {
        let id = o.object_id().unwrap_or_default();
        for (k, v) in &o.fields {
            let Some(def) = data.schema.attribute(k) else {
                continue;
            };
            if def.attribute_type.is_computed() {
                continue;
            }
            let items: Vec<&Value> = match v {
                Value::Null => continue,
                Value::Set(items) => items.iter().collect(),
                single => vec![single],
            };
            for item in items {
                let typed = if def.attribute_type == AttributeType::Relation {
                    let h = item.to_text();
                    let target = ids.get(h.as_str()).ok_or_else(|| {
                        StoreError::invalid(
                            "copy",
                            format!("object {id}: {k} points at {h:?}, which is not exported"),
                        )
                    })?;
                    Value::number(*target)
                } else {
                    item.coerce(def.attribute_type).map_err(|m| {
                        StoreError::invalid("copy", format!("object {id}, attribute {k}: {m}"))
                    })?
                };
                let (text, num, ip) = encode(&typed);
                tx.execute(&insert_value, &[&id, k, &text, &num, &ip])
                    .map_err(internal)?;
            }
        }
    }
    for c in &data.commits {
        tx.execute(
            "INSERT INTO commit_log (commit_id, author, time) VALUES ($1, $2, $3)",
            &[&c.commit_id, &c.author, &c.time.0.unix],
        )
        .map_err(internal)?;
        for ch in &c.changes {
            let attributes = serde_json::to_string(&ch.attributes)
                .map_err(|e| StoreError::Internal(format!("commit {}: {e}", c.commit_id)))?;
            tx.execute(
                "INSERT INTO object_change (commit_id, object_id, hostname, kind, attributes)
                 VALUES ($1, $2, $3, $4, $5::text::jsonb)",
                &[
                    &c.commit_id,
                    &ch.object_id,
                    &ch.hostname,
                    &crate::sql::enum_text(&ch.kind),
                    &attributes,
                ],
            )
            .map_err(internal)?;
        }
    }
    for r in &data.schema_history {
        let changes = serde_json::to_string(&r.changes).map_err(|e| {
            StoreError::Internal(format!("schema change {}: {e}", r.schema_change_id))
        })?;
        tx.execute(
            "INSERT INTO schema_log (schema_change_id, author, time, changes)
             VALUES ($1, $2, $3, $4::text::jsonb)",
            &[&r.schema_change_id, &r.author, &r.time.0.unix, &changes],
        )
        .map_err(internal)?;
    }
    // New objects, commits and schema changes continue after the copied
    // ones, also after ids only history remembers (deleted objects).
    tx.batch_execute(
        "SELECT setval('object_id_seq', greatest(
             (SELECT coalesce(max(object_id), 0) FROM server),
             (SELECT coalesce(max(object_id), 0) FROM object_change), 1));
         SELECT setval('commit_log_commit_id_seq',
             greatest((SELECT coalesce(max(commit_id), 0) FROM commit_log), 1));
         SELECT setval('schema_log_schema_change_id_seq',
             greatest((SELECT coalesce(max(schema_change_id), 0) FROM schema_log), 1));",
    )
    .map_err(internal)?;
    bump_schema_version(tx)?;
    // Read back once, so a broken history row fails the copy, not a later query.
    read_history(tx, HistoryOf::Recent(1))?;
    crate::schema::history(tx, 1)?;
    Ok(())
}
