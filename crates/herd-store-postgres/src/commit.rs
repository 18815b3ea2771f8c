//! Commits: read the touched objects, check every rule and every `old`
//! value, write, re-check the dataset-wide rules on the written state, and
//! record history — all in one `SERIALIZABLE` transaction.
//!
//! Why `SERIALIZABLE`: the compare-and-swap reads a value and writes
//! another. Under it, of two servers committing against the same `old`
//! value at once, PostgreSQL aborts one (SQLSTATE 40001); the caller
//! retries that one from the start, and the retry then sees the winner's
//! value and fails with "newer data available". The same holds for the
//! dataset-wide rules (unique host addresses, non-overlapping networks),
//! whose checks are reads that a concurrent insert would invalidate.

use std::collections::{BTreeMap, HashMap, HashSet};

use herd_model::validate::{check_hostname, check_intern_ip, coerce_for_attribute, RuleError};
use herd_model::{
    Attribute, AttributeChange, AttributeDiff, AttributeType, ChangeKind, Commit, CommitId,
    IpAddrType, ObjectChange, ObjectId, Servertype, Value,
};
use postgres::Transaction;

use crate::query::{as_id, Catalog, Obj, Snapshot};
use crate::sql::encode;
use crate::{internal, StoreError, ValidationError};

/// An object as a commit sees it: relations as hostnames.
#[derive(Clone, Debug, PartialEq)]
struct Draft {
    id: ObjectId,
    hostname: String,
    servertype: String,
    intern_ip: Value,
    attrs: BTreeMap<String, Value>,
}

enum Write {
    Create(Draft),
    /// The new state, the attributes changed (`hostname` and `intern_ip`
    /// included) and the state before.
    Update(Draft, Vec<String>, Draft),
    Delete(Draft),
}

fn invalid(e: RuleError, object: &str, attribute: Option<&str>) -> StoreError {
    let mut v = ValidationError::new(e.rule, e.message).object(object);
    if let Some(a) = attribute {
        v = v.attribute(a);
    }
    StoreError::Validation(v)
}

fn rule(rule: &'static str, object: &str, attribute: Option<&str>, message: String) -> StoreError {
    invalid(RuleError { rule, message }, object, attribute)
}

fn empty_of(def: &Attribute) -> Value {
    if def.is_multi() {
        Value::Set(Vec::new())
    } else {
        Value::Null
    }
}

/// Applies `commit` inside `tx` (the caller commits the transaction).
pub(crate) fn apply(
    tx: &mut Transaction<'_>,
    catalog: &Catalog,
    commit: &Commit,
    author: &str,
    now: i64,
) -> Result<CommitId, StoreError> {
    let writes = plan(tx, catalog, commit)?;
    write(tx, catalog, &writes)?;
    check_dataset_rules(tx, catalog, &writes)?;
    let commit_id = record_history(tx, catalog, &writes, author, now)?;
    let written: Vec<ObjectId> = writes
        .iter()
        .map(|w| match w {
            Write::Create(d) | Write::Update(d, _, _) | Write::Delete(d) => d.id,
        })
        .collect();
    crate::cache::record_change(tx, &written)?;
    Ok(commit_id)
}

/// Reads what the commit touches and decides every write, or refuses.
fn plan(
    tx: &mut Transaction<'_>,
    catalog: &Catalog,
    commit: &Commit,
) -> Result<Vec<Write>, StoreError> {
    let schema = &catalog.schema;
    let snap = Snapshot::new(tx, catalog);
    let touched: Vec<ObjectId> = commit
        .changed
        .iter()
        .map(|c| c.object_id)
        .chain(commit.deleted.iter().copied())
        .collect();
    snap.load(&touched)?;
    let current: HashMap<ObjectId, Draft> = {
        let loaded: Vec<_> = touched.iter().filter_map(|id| snap.get(*id)).collect();
        snap.load_related(&loaded)?;
        let m: HashMap<ObjectId, Draft> =
            loaded.iter().map(|o| (o.id, draft_of(&snap, o))).collect();
        snap.take_error()?;
        m
    };
    let deleted: HashSet<ObjectId> = commit.deleted.iter().copied().collect();
    let mut writes = Vec::new();

    let new_ids = snap.ids(
        "SELECT nextval('object_id_seq') FROM generate_series(1, $1::int)",
        &[&(commit.created.len() as i32)],
    );
    snap.take_error()?;
    for (i, new) in commit.created.iter().enumerate() {
        let label = new
            .hostname()
            .map_or_else(|| format!("created object #{}", i + 1), str::to_owned);
        let hostname = match new.get("hostname") {
            Some(Value::String(h)) => h.clone(),
            Some(other) => {
                return Err(rule(
                    "type",
                    &label,
                    Some("hostname"),
                    format!("hostname must be a string, got {}", other.describe()),
                ))
            }
            None => {
                return Err(rule(
                    "required",
                    &label,
                    Some("hostname"),
                    "every new object needs a hostname".into(),
                ))
            }
        };
        check_hostname(&hostname).map_err(|e| invalid(e, &label, Some("hostname")))?;
        let Some(Value::String(st_id)) = new.get("servertype") else {
            return Err(rule(
                "required",
                &label,
                Some("servertype"),
                "every new object needs a servertype (see `herd schema servertypes`)".into(),
            ));
        };
        let st = schema.servertype(st_id).ok_or_else(|| {
            rule(
                "unknown_servertype",
                &label,
                Some("servertype"),
                format!("unknown servertype {st_id:?}: list them with `herd schema servertypes`"),
            )
        })?;
        let intern_ip = check_intern_ip(
            st.ip_addr_type,
            new.get("intern_ip").unwrap_or(&Value::Null),
        )
        .map_err(|e| invalid(e, &label, Some("intern_ip")))?;
        let mut attrs = BTreeMap::new();
        for (k, v) in &new.fields {
            if matches!(
                k.as_str(),
                "object_id" | "hostname" | "servertype" | "intern_ip"
            ) {
                continue;
            }
            if v.is_empty() && is_derived(catalog, st, k) {
                // A filled-in template carries computed attributes as null.
                continue;
            }
            let def = settable(catalog, st, k, &label)?;
            let typed = coerce_for_attribute(def, catalog.regexes.get(k), v)
                .map_err(|e| invalid(e, &label, Some(k)))?;
            if !typed.is_empty() {
                attrs.insert(k.clone(), typed);
            }
        }
        for sa in &st.attributes {
            let Some(def) = schema.attribute(&sa.attribute_id) else {
                continue;
            };
            if new.fields.contains_key(&sa.attribute_id)
                || def.attribute_type.is_computed()
                || sa.related_via_attribute.is_some()
            {
                continue;
            }
            if let Some(default) = &sa.default_value {
                let typed =
                    coerce_for_attribute(def, catalog.regexes.get(&def.attribute_id), default)
                        .map_err(|e| invalid(e, &label, Some(&def.attribute_id)))?;
                if !typed.is_empty() {
                    attrs.insert(sa.attribute_id.clone(), typed);
                }
            }
        }
        let draft = Draft {
            id: new_ids.get(i).copied().ok_or_else(|| {
                StoreError::Internal("the object id sequence returned too few ids".into())
            })?,
            hostname,
            servertype: st.servertype_id.clone(),
            intern_ip,
            attrs,
        };
        check_required(
            catalog,
            st,
            &draft,
            st.attributes.iter().map(|a| a.attribute_id.as_str()),
        )?;
        writes.push(Write::Create(draft));
    }

    for change in &commit.changed {
        if deleted.contains(&change.object_id) {
            return Err(rule(
                "commit",
                &format!("#{}", change.object_id),
                None,
                "the object is both changed and deleted in this commit".into(),
            ));
        }
        let cur = current.get(&change.object_id).ok_or_else(|| {
            StoreError::NotFound(format!(
                "object {} does not exist (deleted meanwhile?): query it again",
                change.object_id
            ))
        })?;
        let label = cur.hostname.clone();
        let st = schema.servertype(&cur.servertype).ok_or_else(|| {
            StoreError::Internal(format!(
                "object {label} has unknown servertype {}",
                cur.servertype
            ))
        })?;
        let mut next = cur.clone();
        let mut changed = Vec::new();
        for (k, ch) in &change.attributes {
            let (old, new) = match ch {
                AttributeChange::Update { old, new } => (Some(old), Some(new)),
                AttributeChange::New { new } => (None, Some(new)),
                AttributeChange::Delete { old } => (Some(old), None),
                AttributeChange::Multi { .. } => (None, None),
            };
            match k.as_str() {
                "object_id" | "servertype" => {
                    return Err(rule(
                        "readonly",
                        &label,
                        Some(k),
                        format!("{k} can not change; create a new object instead"),
                    ))
                }
                "hostname" | "intern_ip" => {
                    if matches!(ch, AttributeChange::Multi { .. }) {
                        return Err(rule(
                            "multi",
                            &label,
                            Some(k),
                            format!("{k} takes a single value: use an update"),
                        ));
                    }
                    let stored = if k == "hostname" {
                        Value::String(cur.hostname.clone())
                    } else {
                        cur.intern_ip.clone()
                    };
                    let ty = if k == "hostname" {
                        AttributeType::String
                    } else {
                        AttributeType::Inet
                    };
                    let old = old.cloned().unwrap_or(Value::Null);
                    let old = old
                        .coerce(ty)
                        .map_err(|m| rule("type", &label, Some(k), m))?;
                    if old != stored {
                        return Err(stale(&label, k, &stored, &old));
                    }
                    let new = new.cloned().unwrap_or(Value::Null);
                    if k == "hostname" {
                        let Value::String(h) = new
                            .coerce(ty)
                            .map_err(|m| rule("type", &label, Some(k), m))?
                        else {
                            return Err(rule(
                                "required",
                                &label,
                                Some(k),
                                "the hostname can not be cleared".into(),
                            ));
                        };
                        check_hostname(&h).map_err(|e| invalid(e, &label, Some(k)))?;
                        next.hostname = h;
                    } else {
                        next.intern_ip = check_intern_ip(st.ip_addr_type, &new)
                            .map_err(|e| invalid(e, &label, Some(k)))?;
                    }
                }
                _ => {
                    let def = settable(catalog, st, k, &label)?;
                    let stored = cur.attrs.get(k).cloned().unwrap_or_else(|| empty_of(def));
                    let value = match ch {
                        AttributeChange::Multi { add, remove } => {
                            if !def.is_multi() {
                                return Err(rule(
                                    "multi",
                                    &label,
                                    Some(k),
                                    format!("{k} is not a multi attribute: use an update"),
                                ));
                            }
                            let Value::Set(mut items) = stored.clone() else {
                                return Err(StoreError::Internal(format!(
                                    "{label}: {k} is not a set"
                                )));
                            };
                            for r in remove {
                                let Value::Set(rs) = coerce_for_attribute(def, None, r)
                                    .map_err(|e| invalid(e, &label, Some(k)))?
                                else {
                                    continue;
                                };
                                // Removing a value that is not there is a no-op.
                                items.retain(|i| !rs.contains(i));
                            }
                            for a in add {
                                if let Value::Set(adds) =
                                    coerce_for_attribute(def, catalog.regexes.get(k), a)
                                        .map_err(|e| invalid(e, &label, Some(k)))?
                                {
                                    items.extend(adds);
                                }
                            }
                            Value::set(items)
                        }
                        _ => {
                            let old = coerce_for_attribute(def, None, old.unwrap_or(&Value::Null))
                                .map_err(|e| invalid(e, &label, Some(k)))?;
                            if old != stored {
                                return Err(stale(&label, k, &stored, &old));
                            }
                            coerce_for_attribute(
                                def,
                                catalog.regexes.get(k),
                                new.unwrap_or(&Value::Null),
                            )
                            .map_err(|e| invalid(e, &label, Some(k)))?
                        }
                    };
                    if def.readonly && !stored.is_empty() && value != stored {
                        return Err(rule(
                            "readonly",
                            &label,
                            Some(k),
                            format!("{k} is read-only once set"),
                        ));
                    }
                    if value.is_empty() {
                        next.attrs.remove(k);
                    } else {
                        next.attrs.insert(k.clone(), value);
                    }
                }
            }
            changed.push(k.clone());
        }
        check_required(catalog, st, &next, changed.iter().map(String::as_str))?;
        writes.push(Write::Update(next, changed, cur.clone()));
    }

    for id in &commit.deleted {
        let cur = current.get(id).ok_or_else(|| {
            StoreError::Conflict(format!(
                "object {id} does not exist any more: it was deleted meanwhile"
            ))
        })?;
        writes.push(Write::Delete(cur.clone()));
    }
    Ok(writes)
}

fn stale(label: &str, attribute: &str, stored: &Value, old: &Value) -> StoreError {
    StoreError::Conflict(format!(
        "object {label}: attribute {attribute} is {}, not {}",
        stored.describe(),
        old.describe()
    ))
}

/// Computed, or taken from a related object on `st`.
fn is_derived(catalog: &Catalog, st: &Servertype, attribute: &str) -> bool {
    let computed = catalog
        .schema
        .attribute(attribute)
        .is_some_and(|d| d.attribute_type.is_computed());
    computed
        || st
            .attribute(attribute)
            .is_some_and(|sa| sa.related_via_attribute.is_some())
}

/// The definition of an attribute a commit may write on `st`.
fn settable<'c>(
    catalog: &'c Catalog,
    st: &Servertype,
    attribute: &str,
    label: &str,
) -> Result<&'c Attribute, StoreError> {
    let sa = st.attribute(attribute).ok_or_else(|| {
        rule(
            "unknown_attribute",
            label,
            Some(attribute),
            format!(
                "servertype {} has no attribute {attribute}: see `herd schema servertypes`",
                st.servertype_id
            ),
        )
    })?;
    let def = catalog.schema.attribute(attribute).ok_or_else(|| {
        StoreError::Internal(format!(
            "servertype {} lists unknown attribute {attribute}",
            st.servertype_id
        ))
    })?;
    if def.attribute_type.is_computed() {
        return Err(rule(
            "readonly",
            label,
            Some(attribute),
            format!(
                "{attribute} is a computed ({}) attribute and can not be set",
                def.attribute_type.name()
            ),
        ));
    }
    if let Some(via) = &sa.related_via_attribute {
        return Err(rule(
            "readonly",
            label,
            Some(attribute),
            format!("{attribute} is taken from the object {via} points at; change it there"),
        ));
    }
    Ok(def)
}

fn check_required<'a>(
    catalog: &Catalog,
    st: &Servertype,
    draft: &Draft,
    attributes: impl Iterator<Item = &'a str>,
) -> Result<(), StoreError> {
    for a in attributes {
        let Some(sa) = st.attribute(a) else { continue };
        let computed = catalog
            .schema
            .attribute(a)
            .is_none_or(|d| d.attribute_type.is_computed());
        if sa.required
            && !computed
            && sa.related_via_attribute.is_none()
            && draft.attrs.get(a).is_none_or(Value::is_empty)
        {
            return Err(rule(
                "required",
                &draft.hostname,
                Some(a),
                format!("{a} is required for servertype {}", st.servertype_id),
            ));
        }
    }
    Ok(())
}

/// A stored object with relation ids replaced by hostnames.
fn draft_of<C: postgres::GenericClient>(snap: &Snapshot<'_, C>, o: &Obj) -> Draft {
    let name = |v: &Value| -> Value {
        match as_id(v).and_then(|id| snap.get(id)) {
            Some(t) => Value::String(t.hostname.clone()),
            None => Value::String(format!("#{}", v.to_text())),
        }
    };
    let attrs = o
        .attrs
        .iter()
        .map(|(k, v)| {
            let v = if snap.catalog.schema.attribute_type(k) == Some(AttributeType::Relation) {
                match v {
                    Value::Set(items) => Value::set(items.iter().map(name).collect()),
                    single => name(single),
                }
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    Draft {
        id: o.id,
        hostname: o.hostname.clone(),
        servertype: o.servertype.clone(),
        intern_ip: o.intern_ip.clone(),
        attrs,
    }
}

/// Writes the planned changes in a few set-based statements; relation
/// hostnames become object ids here.
fn write(tx: &mut Transaction<'_>, catalog: &Catalog, writes: &[Write]) -> Result<(), StoreError> {
    let schema = &catalog.schema;
    let deleted: Vec<ObjectId> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Delete(d) => Some(d.id),
            _ => None,
        })
        .collect();
    if !deleted.is_empty() {
        tx.execute("DELETE FROM server WHERE object_id = ANY($1)", &[&deleted])
            .map_err(internal)?;
    }
    let targets = relation_targets(tx, catalog, writes)?;

    // Rows of `server`: new objects, and objects renamed or readdressed.
    let mut created = ServerRows::default();
    let mut updated = ServerRows::default();
    let mut seen = HashSet::new();
    for w in writes {
        let rows = match w {
            Write::Create(_) => &mut created,
            Write::Update(_, changed, _)
                if changed.iter().any(|c| c == "hostname" || c == "intern_ip") =>
            {
                &mut updated
            }
            _ => continue,
        };
        let (Write::Create(d) | Write::Update(d, _, _)) = w else {
            continue;
        };
        if !seen.insert(d.hostname.as_str()) {
            return Err(taken(&d.hostname));
        }
        rows.push(d);
    }
    let mine: Vec<ObjectId> = created.ids.iter().chain(&updated.ids).copied().collect();
    let names: Vec<&String> = created.hostnames.iter().chain(&updated.hostnames).collect();
    if let Some(r) = tx
        .query_opt(
            "SELECT hostname FROM server
             WHERE hostname = ANY($1) AND NOT (object_id = ANY($2)) LIMIT 1",
            &[&names, &mine],
        )
        .map_err(internal)?
    {
        return Err(taken(r.get(0)));
    }
    if !updated.ids.is_empty() {
        // Free the old names first, so two objects may swap hostnames.
        tx.execute(
            "UPDATE server SET hostname = '#' || object_id WHERE object_id = ANY($1)",
            &[&updated.ids],
        )
        .map_err(internal)?;
        tx.execute(
            "UPDATE server s SET hostname = t.h, intern_ip = t.ip::inet
             FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t(id, h, ip)
             WHERE s.object_id = t.id",
            &[&updated.ids, &updated.hostnames, &updated.ips],
        )
        .map_err(internal)?;
    }
    if !created.ids.is_empty() {
        tx.execute(
            "INSERT INTO server (object_id, hostname, servertype_id, intern_ip)
             SELECT id, h, st, ip::inet
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS t(id, h, st, ip)",
            &[
                &created.ids,
                &created.hostnames,
                &created.servertypes,
                &created.ips,
            ],
        )
        .map_err(internal)?;
    }

    // Values: drop the changed attributes' old rows, insert the new rows.
    let (mut clear_ids, mut clear_attrs): (Vec<ObjectId>, Vec<&str>) = (Vec::new(), Vec::new());
    let mut rows = ValueRows::default();
    for w in writes {
        let (d, attributes): (&Draft, Vec<&str>) = match w {
            Write::Create(d) => (d, d.attrs.keys().map(String::as_str).collect()),
            Write::Update(d, changed, _) => (
                d,
                changed
                    .iter()
                    .map(String::as_str)
                    .filter(|c| *c != "hostname" && *c != "intern_ip")
                    .collect(),
            ),
            Write::Delete(_) => continue,
        };
        for a in attributes {
            let Some(def) = schema.attribute(a) else {
                continue;
            };
            if matches!(w, Write::Update(..)) {
                clear_ids.push(d.id);
                clear_attrs.push(a);
            }
            let items: Vec<&Value> = match d.attrs.get(a) {
                None | Some(Value::Null) => continue,
                Some(Value::Set(items)) => items.iter().collect(),
                Some(single) => vec![single],
            };
            for item in items {
                let stored = if def.attribute_type == AttributeType::Relation {
                    let h = item.to_text();
                    let Some((id, _)) = targets.get(&h) else {
                        return Err(StoreError::Internal(format!(
                            "relation target {h} vanished"
                        )));
                    };
                    Value::number(*id)
                } else {
                    (*item).clone()
                };
                rows.push(d.id, a, &stored);
            }
        }
    }
    if !clear_ids.is_empty() {
        tx.execute(
            "DELETE FROM server_attribute v USING unnest($1::bigint[], $2::text[]) AS t(id, a)
             WHERE v.object_id = t.id AND v.attribute_id = t.a",
            &[&clear_ids, &clear_attrs],
        )
        .map_err(internal)?;
    }
    if !rows.ids.is_empty() {
        tx.execute(
            "INSERT INTO server_attribute (object_id, attribute_id, value, num, ip)
             SELECT id, a, v, n, ip::inet
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::text[])
                  AS t(id, a, v, n, ip)",
            &[
                &rows.ids,
                &rows.attributes,
                &rows.values,
                &rows.nums,
                &rows.ips,
            ],
        )
        .map_err(internal)?;
    }
    Ok(())
}

fn taken(hostname: &str) -> StoreError {
    rule(
        "unique_hostname",
        hostname,
        Some("hostname"),
        format!("hostname {hostname} is taken by another object"),
    )
}

/// Columns of `server` rows, for one `unnest` statement.
#[derive(Default)]
struct ServerRows {
    ids: Vec<ObjectId>,
    hostnames: Vec<String>,
    servertypes: Vec<String>,
    ips: Vec<Option<String>>,
}

impl ServerRows {
    fn push(&mut self, d: &Draft) {
        self.ids.push(d.id);
        self.hostnames.push(d.hostname.clone());
        self.servertypes.push(d.servertype.clone());
        self.ips.push(match &d.intern_ip {
            Value::Inet(n) => Some(n.to_string()),
            _ => None,
        });
    }
}

/// Columns of `server_attribute` rows, for one `unnest` statement.
#[derive(Default)]
struct ValueRows<'a> {
    ids: Vec<ObjectId>,
    attributes: Vec<&'a str>,
    values: Vec<String>,
    nums: Vec<Option<f64>>,
    ips: Vec<Option<String>>,
}

impl<'a> ValueRows<'a> {
    fn push(&mut self, id: ObjectId, attribute: &'a str, v: &Value) {
        let (text, num, ip) = encode(v);
        self.ids.push(id);
        self.attributes.push(attribute);
        self.values.push(text);
        self.nums.push(num);
        self.ips.push(ip);
    }
}

/// Every object a relation value of the commit names, by hostname, with
/// its servertype; refuses values naming no object or one of the wrong
/// servertype.
fn relation_targets(
    tx: &mut Transaction<'_>,
    catalog: &Catalog,
    writes: &[Write],
) -> Result<HashMap<String, (ObjectId, String)>, StoreError> {
    let mut wanted: Vec<String> = Vec::new();
    let mut gone: HashSet<ObjectId> = HashSet::new();
    let mut drafts: Vec<&Draft> = Vec::new();
    for w in writes {
        match w {
            Write::Delete(d) => {
                gone.insert(d.id);
            }
            Write::Create(d) | Write::Update(d, _, _) => {
                gone.insert(d.id);
                drafts.push(d);
            }
        }
    }
    for d in &drafts {
        for (k, v) in &d.attrs {
            if catalog.schema.attribute_type(k) != Some(AttributeType::Relation) {
                continue;
            }
            match v {
                Value::Set(items) => wanted.extend(items.iter().map(Value::to_text)),
                single => wanted.push(single.to_text()),
            }
        }
    }
    let mut targets: HashMap<String, (ObjectId, String)> = HashMap::new();
    if wanted.is_empty() {
        return Ok(targets);
    }
    for r in tx
        .query(
            "SELECT hostname, object_id, servertype_id FROM server WHERE hostname = ANY($1)",
            &[&wanted],
        )
        .map_err(internal)?
    {
        let id: ObjectId = r.get(1);
        if !gone.contains(&id) {
            targets.insert(r.get(0), (id, r.get(2)));
        }
    }
    for d in &drafts {
        targets.insert(d.hostname.clone(), (d.id, d.servertype.clone()));
    }
    for d in &drafts {
        for (k, v) in &d.attrs {
            let Some(def) = catalog.schema.attribute(k) else {
                continue;
            };
            if def.attribute_type != AttributeType::Relation {
                continue;
            }
            let items: Vec<&Value> = match v {
                Value::Set(items) => items.iter().collect(),
                single => vec![single],
            };
            for item in items {
                let h = item.to_text();
                let Some((_, st)) = targets.get(&h) else {
                    return Err(rule(
                        "relation",
                        &d.hostname,
                        Some(k),
                        format!("{k} points at {h:?}, which does not exist"),
                    ));
                };
                if let Some(want) = &def.target_servertype {
                    if want != st {
                        return Err(rule(
                            "relation",
                            &d.hostname,
                            Some(k),
                            format!("{k} must point at a {want}, {h} is a {st}"),
                        ));
                    }
                }
            }
        }
    }
    Ok(targets)
}

/// Rules over the whole dataset, checked on the written state.
fn check_dataset_rules(
    tx: &mut Transaction<'_>,
    catalog: &Catalog,
    writes: &[Write],
) -> Result<(), StoreError> {
    let (mut host_ids, mut host_ips): (Vec<ObjectId>, Vec<String>) = (Vec::new(), Vec::new());
    for w in writes {
        let d = match w {
            Write::Create(d) => d,
            Write::Update(d, changed, _) if changed.iter().any(|c| c == "intern_ip") => d,
            _ => continue,
        };
        let Value::Inet(net) = &d.intern_ip else {
            continue;
        };
        let Some(st) = catalog.schema.servertype(&d.servertype) else {
            continue;
        };
        match st.ip_addr_type {
            IpAddrType::Host => {
                host_ids.push(d.id);
                host_ips.push(net.to_string());
            }
            IpAddrType::Network => {
                if let Some(r) = tx
                    .query_opt(
                        "SELECT hostname, intern_ip::text FROM server
                         WHERE servertype_id = $1 AND intern_ip && $2::text::inet
                           AND object_id <> $3 LIMIT 1",
                        &[&d.servertype, &net.to_string(), &d.id],
                    )
                    .map_err(internal)?
                {
                    let (other, ip): (String, String) = (r.get(0), r.get(1));
                    return Err(rule(
                        "network_overlap",
                        &d.hostname,
                        Some("intern_ip"),
                        format!(
                            "network {net} overlaps {other} ({ip}); networks of servertype {} do not overlap",
                            d.servertype
                        ),
                    ));
                }
            }
            IpAddrType::Null | IpAddrType::Loadbalancer => {}
        }
    }
    if !host_ids.is_empty() {
        // One query for every host address the commit wrote (unique index
        // scan per address).
        if let Some(r) = tx
            .query_opt(
                "SELECT t.id, s.hostname, host(s.intern_ip)
                 FROM unnest($1::bigint[], $2::text[]) AS t(id, ip)
                 JOIN server s ON s.intern_ip = t.ip::inet AND s.object_id <> t.id
                 JOIN servertype st ON st.servertype_id = s.servertype_id
                 WHERE st.ip_addr_type = 'host' LIMIT 1",
                &[&host_ids, &host_ips],
            )
            .map_err(internal)?
        {
            let (id, other, ip): (ObjectId, String, String) = (r.get(0), r.get(1), r.get(2));
            let hostname = writes
                .iter()
                .find_map(|w| match w {
                    Write::Create(d) | Write::Update(d, _, _) if d.id == id => {
                        Some(d.hostname.as_str())
                    }
                    _ => None,
                })
                .unwrap_or("the object");
            return Err(rule(
                "unique_ip",
                hostname,
                Some("intern_ip"),
                format!(
                    "intern_ip {ip} is already used by host {other}; host addresses are unique"
                ),
            ));
        }
    }
    let deleted: HashMap<String, &str> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Delete(d) => Some((d.id.to_string(), d.hostname.as_str())),
            _ => None,
        })
        .collect();
    if !deleted.is_empty() {
        let ids: Vec<&String> = deleted.keys().collect();
        if let Some(r) = tx
            .query_opt(
                "SELECT s.hostname, a.attribute_id, a.value
                 FROM server_attribute a JOIN attribute d USING (attribute_id)
                 JOIN server s ON s.object_id = a.object_id
                 WHERE d.type = 'relation' AND a.value = ANY($1)
                 ORDER BY s.hostname LIMIT 1",
                &[&ids],
            )
            .map_err(internal)?
        {
            let (referrer, attribute, id): (String, String, String) =
                (r.get(0), r.get(1), r.get(2));
            let target = deleted.get(&id).copied().unwrap_or("the object");
            return Err(rule(
                "relation",
                target,
                None,
                format!(
                    "{referrer} still points at {target} ({attribute}); change {referrer} first or delete both in one commit"
                ),
            ));
        }
    }
    Ok(())
}

fn record_history(
    tx: &mut Transaction<'_>,
    catalog: &Catalog,
    writes: &[Write],
    author: &str,
    now: i64,
) -> Result<CommitId, StoreError> {
    let commit_id: CommitId = tx
        .query_one(
            "INSERT INTO commit_log (author, time) VALUES ($1, $2) RETURNING commit_id",
            &[&author, &now],
        )
        .map_err(internal)?
        .get(0);
    let changes = history(catalog, writes);
    let mut ids = Vec::with_capacity(changes.len());
    let mut hostnames = Vec::with_capacity(changes.len());
    let mut kinds = Vec::with_capacity(changes.len());
    let mut attributes = Vec::with_capacity(changes.len());
    for change in changes {
        attributes.push(
            serde_json::to_string(&change.attributes).map_err(|e| {
                StoreError::Internal(format!("history of {}: {e}", change.hostname))
            })?,
        );
        ids.push(change.object_id);
        hostnames.push(change.hostname);
        kinds.push(crate::sql::enum_text(&change.kind));
    }
    tx.execute(
        "INSERT INTO object_change (commit_id, object_id, hostname, kind, attributes)
         SELECT $1, id, h, k, a::jsonb
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS t(id, h, k, a)",
        &[&commit_id, &ids, &hostnames, &kinds, &attributes],
    )
    .map_err(internal)?;
    Ok(commit_id)
}

/// What each write did, per object (pure).
fn history(catalog: &Catalog, writes: &[Write]) -> Vec<ObjectChange> {
    let recorded = |a: &str| catalog.schema.attribute(a).is_none_or(|d| d.history);
    let all = |d: &Draft| -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        m.insert("hostname".to_owned(), Value::String(d.hostname.clone()));
        m.insert("servertype".to_owned(), Value::String(d.servertype.clone()));
        if !d.intern_ip.is_null() {
            m.insert("intern_ip".to_owned(), d.intern_ip.clone());
        }
        for (k, v) in &d.attrs {
            if recorded(k) && !v.is_empty() {
                m.insert(k.clone(), v.clone());
            }
        }
        m
    };
    let mut out = Vec::new();
    for w in writes {
        let (d, kind, attributes) = match w {
            Write::Create(d) => (
                d,
                ChangeKind::Created,
                all(d)
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            AttributeDiff {
                                old: Value::Null,
                                new: v,
                            },
                        )
                    })
                    .collect(),
            ),
            Write::Delete(d) => (
                d,
                ChangeKind::Deleted,
                all(d)
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            AttributeDiff {
                                old: v,
                                new: Value::Null,
                            },
                        )
                    })
                    .collect(),
            ),
            Write::Update(..) => continue,
        };
        out.push(ObjectChange {
            object_id: d.id,
            hostname: d.hostname.clone(),
            kind,
            attributes,
        });
    }
    out.extend(updates_history(catalog, writes));
    out.sort_by_key(|c| c.object_id);
    out
}

fn updates_history(catalog: &Catalog, writes: &[Write]) -> Vec<ObjectChange> {
    let mut out = Vec::new();
    for w in writes {
        let Write::Update(after, changed, before) = w else {
            continue;
        };
        let value =
            |d: &Draft, k: &str| -> Value {
                match k {
                    "hostname" => Value::String(d.hostname.clone()),
                    "intern_ip" => d.intern_ip.clone(),
                    _ => d.attrs.get(k).cloned().unwrap_or_else(|| {
                        catalog.schema.attribute(k).map_or(Value::Null, empty_of)
                    }),
                }
            };
        let attributes: BTreeMap<String, AttributeDiff> = changed
            .iter()
            .filter(|k| catalog.schema.attribute(k).is_none_or(|d| d.history))
            .map(|k| {
                (
                    k.clone(),
                    AttributeDiff {
                        old: value(before, k),
                        new: value(after, k),
                    },
                )
            })
            .filter(|(_, d)| d.old != d.new)
            .collect();
        if attributes.is_empty() {
            continue;
        }
        out.push(ObjectChange {
            object_id: after.id,
            hostname: after.hostname.clone(),
            kind: ChangeKind::Changed,
            attributes,
        });
    }
    out
}
