//! The SQLite file: migrations, loading everything into a [`Dataset`], and
//! writing commits and batches of schema changes with their history.

use std::collections::BTreeMap;

use herd_model::value::{inet_to_string, parse_inet};
use herd_model::{
    Attribute, AttributeType, ChangeKind, CommitId, CommitRecord, DatetimeJson, Number,
    ObjectChange, ObjectId, Schema, SchemaChange, Servertype, ServertypeAttribute, Value,
};
use herd_store::{SchemaChangeId, SchemaRecord};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::plan::Plan;
use crate::schema_change::SchemaPlan;
use herd_store_memory::{Dataset, Obj};

/// Schema migrations, applied in order; `PRAGMA user_version` counts the
/// applied ones. Append, never edit.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE attribute (
    attribute_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    multi INTEGER NOT NULL,
    hovertext TEXT NOT NULL,
    attribute_group TEXT NOT NULL,
    help_link TEXT,
    readonly INTEGER NOT NULL,
    regexp TEXT,
    target_servertype TEXT,
    reversed_attribute TEXT,
    inet_address_family TEXT,
    clone INTEGER NOT NULL,
    history INTEGER NOT NULL
);
CREATE TABLE servertype (
    servertype_id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    ip_addr_type TEXT NOT NULL
);
CREATE TABLE servertype_attribute (
    servertype_id TEXT NOT NULL REFERENCES servertype ON DELETE CASCADE,
    attribute_id TEXT NOT NULL REFERENCES attribute,
    position INTEGER NOT NULL,
    required INTEGER NOT NULL,
    default_value TEXT,
    default_visible INTEGER NOT NULL,
    related_via_attribute TEXT,
    PRIMARY KEY (servertype_id, attribute_id)
);
-- attributes: a JSON object of the stored (not computed) attribute values,
-- typed as in the API except relations, which hold object ids.
CREATE TABLE server (
    object_id INTEGER PRIMARY KEY,
    hostname TEXT NOT NULL UNIQUE,
    servertype_id TEXT NOT NULL REFERENCES servertype,
    intern_ip TEXT,
    attributes TEXT NOT NULL
);
CREATE INDEX server_by_servertype ON server (servertype_id);
CREATE TABLE commit_log (
    commit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    author TEXT NOT NULL,
    time INTEGER NOT NULL
);
CREATE TABLE object_change (
    commit_id INTEGER NOT NULL REFERENCES commit_log,
    object_id INTEGER NOT NULL,
    hostname TEXT NOT NULL,
    kind TEXT NOT NULL,
    attributes TEXT NOT NULL,
    PRIMARY KEY (commit_id, object_id)
);
CREATE INDEX object_change_by_object ON object_change (object_id, commit_id);
"#,
    r#"
-- One row per applied batch of schema changes; changes: the JSON list of
-- the batch's changes as the API takes them.
CREATE TABLE schema_log (
    schema_change_id INTEGER PRIMARY KEY AUTOINCREMENT,
    author TEXT NOT NULL,
    time INTEGER NOT NULL,
    changes TEXT NOT NULL
);
"#,
];

pub(crate) type SqlResult<T> = Result<T, rusqlite::Error>;

/// Opens (creating if needed) the file: WAL, foreign keys, migrations.
pub(crate) fn open(path: &std::path::Path) -> SqlResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

pub(crate) fn migrate(conn: &mut Connection) -> SqlResult<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn bool_col(v: i64) -> bool {
    v != 0
}

fn enum_text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn enum_parse<T: serde::de::DeserializeOwned>(s: &str) -> SqlResult<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn corrupt(message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, message.into())
}

pub(crate) fn load_schema(conn: &Connection) -> SqlResult<Schema> {
    let mut schema = Schema::default();
    let mut stmt = conn.prepare(
        "SELECT attribute_id, type, multi, hovertext, attribute_group, help_link, readonly, regexp,
                target_servertype, reversed_attribute, inet_address_family, clone, history
         FROM attribute",
    )?;
    let rows = stmt.query_map([], |r| {
        let family: Option<String> = r.get(10)?;
        Ok(Attribute {
            attribute_id: r.get(0)?,
            attribute_type: enum_parse(&r.get::<_, String>(1)?)?,
            multi: bool_col(r.get(2)?),
            hovertext: r.get(3)?,
            group: r.get(4)?,
            help_link: r.get(5)?,
            readonly: bool_col(r.get(6)?),
            regexp: r.get(7)?,
            target_servertype: r.get(8)?,
            reversed_attribute: r.get(9)?,
            inet_address_family: family.as_deref().map(enum_parse).transpose()?,
            clone: bool_col(r.get(11)?),
            history: bool_col(r.get(12)?),
        })
    })?;
    for a in rows {
        let a = a?;
        schema.attributes.insert(a.attribute_id.clone(), a);
    }
    let mut stmt =
        conn.prepare("SELECT servertype_id, description, ip_addr_type FROM servertype")?;
    let rows = stmt.query_map([], |r| {
        Ok(Servertype {
            servertype_id: r.get(0)?,
            description: r.get(1)?,
            ip_addr_type: enum_parse(&r.get::<_, String>(2)?)?,
            attributes: Vec::new(),
        })
    })?;
    for s in rows {
        let s = s?;
        schema.servertypes.insert(s.servertype_id.clone(), s);
    }
    let mut stmt = conn.prepare(
        "SELECT servertype_id, attribute_id, required, default_value, default_visible,
                related_via_attribute
         FROM servertype_attribute ORDER BY servertype_id, position",
    )?;
    let rows = stmt.query_map([], |r| {
        let default: Option<String> = r.get(3)?;
        let default_value = match default {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| corrupt(format!("default value {text:?}: {e}")))?,
            ),
        };
        Ok((
            r.get::<_, String>(0)?,
            ServertypeAttribute {
                attribute_id: r.get(1)?,
                required: bool_col(r.get(2)?),
                default_value,
                default_visible: bool_col(r.get(4)?),
                related_via_attribute: r.get(5)?,
            },
        ))
    })?;
    for row in rows {
        let (st, sa) = row?;
        if let Some(s) = schema.servertypes.get_mut(&st) {
            s.attributes.push(sa);
        }
    }
    Ok(schema)
}

pub(crate) fn write_attribute(tx: &Transaction, a: &Attribute) -> SqlResult<()> {
    tx.execute(
        "INSERT OR REPLACE INTO attribute (attribute_id, type, multi, hovertext, attribute_group,
             help_link, readonly, regexp, target_servertype, reversed_attribute,
             inet_address_family, clone, history)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            a.attribute_id,
            a.attribute_type.name(),
            a.multi,
            a.hovertext,
            a.group,
            a.help_link,
            a.readonly,
            a.regexp,
            a.target_servertype,
            a.reversed_attribute,
            a.inet_address_family.as_ref().map(enum_text),
            a.clone,
            a.history
        ],
    )?;
    Ok(())
}

pub(crate) fn write_servertype(tx: &Transaction, s: &Servertype) -> SqlResult<()> {
    tx.execute(
        "INSERT INTO servertype (servertype_id, description, ip_addr_type) VALUES (?1, ?2, ?3)
         ON CONFLICT (servertype_id) DO UPDATE SET description = ?2, ip_addr_type = ?3",
        params![s.servertype_id, s.description, enum_text(&s.ip_addr_type)],
    )?;
    tx.execute(
        "DELETE FROM servertype_attribute WHERE servertype_id = ?1",
        [&s.servertype_id],
    )?;
    for (i, a) in s.attributes.iter().enumerate() {
        let default = a
            .default_value
            .as_ref()
            .map(|v| serde_json::to_string(v).unwrap_or_default());
        tx.execute(
            "INSERT INTO servertype_attribute (servertype_id, attribute_id, position, required,
                 default_value, default_visible, related_via_attribute)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                s.servertype_id,
                a.attribute_id,
                i as i64,
                a.required,
                default,
                a.default_visible,
                a.related_via_attribute
            ],
        )?;
    }
    Ok(())
}

/// Writes a checked batch of schema changes, the objects it strips and its
/// history row in one transaction; returns the batch's id.
pub(crate) fn write_schema_changes(
    conn: &mut Connection,
    changes: &[SchemaChange],
    plan: &SchemaPlan,
    author: &str,
    now: i64,
) -> SqlResult<SchemaChangeId> {
    let text = serde_json::to_string(changes)
        .map_err(|e| corrupt(format!("the schema changes do not encode: {e}")))?;
    let tx = conn.transaction()?;
    for change in changes {
        match change {
            SchemaChange::CreateAttribute { attribute }
            | SchemaChange::UpdateAttribute { attribute } => write_attribute(&tx, attribute)?,
            SchemaChange::DeleteAttribute { attribute_id } => {
                tx.execute(
                    "DELETE FROM attribute WHERE attribute_id = ?1",
                    [attribute_id],
                )?;
            }
            SchemaChange::CreateServertype { servertype }
            | SchemaChange::UpdateServertype { servertype } => write_servertype(&tx, servertype)?,
            SchemaChange::DeleteServertype { servertype_id } => {
                tx.execute(
                    "DELETE FROM servertype WHERE servertype_id = ?1",
                    [servertype_id],
                )?;
            }
        }
    }
    for obj in &plan.stripped {
        write_object(&tx, obj)?;
    }
    tx.execute(
        "INSERT INTO schema_log (author, time, changes) VALUES (?1, ?2, ?3)",
        params![author, now, text],
    )?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(id)
}

/// The latest batches of schema changes, newest first.
pub(crate) fn read_schema_history(conn: &Connection, limit: usize) -> SqlResult<Vec<SchemaRecord>> {
    let mut stmt = conn.prepare(
        "SELECT schema_change_id, author, time, changes FROM schema_log
         ORDER BY schema_change_id DESC LIMIT ?1",
    )?;
    let limit = limit.min(i64::MAX as usize) as i64;
    let rows = stmt.query_map([limit], |r| {
        let id: SchemaChangeId = r.get(0)?;
        let text: String = r.get(3)?;
        Ok(SchemaRecord {
            schema_change_id: id,
            author: r.get(1)?,
            time: DatetimeJson(herd_model::Datetime { unix: r.get(2)? }),
            changes: serde_json::from_str(&text)
                .map_err(|e| corrupt(format!("schema change {id}: {e}")))?,
        })
    })?;
    rows.collect()
}

/// Decodes one stored single value of an attribute type.
fn decode_one(ty: AttributeType, json: &serde_json::Value) -> Result<Value, String> {
    if ty == AttributeType::Relation {
        return json
            .as_i64()
            .map(|id| Value::Number(Number::from_i64(id)))
            .ok_or_else(|| format!("relation value {json} is not an object id"));
    }
    Value::from_json(json)?.coerce(ty)
}

/// The stored attributes of an object as the `attributes` JSON text.
pub(crate) fn encode_attributes(obj: &Obj) -> String {
    let map: serde_json::Map<String, serde_json::Value> = obj
        .attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_json()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn decode_attributes(
    schema: &Schema,
    keys: &mut BTreeMap<String, std::sync::Arc<str>>,
    text: &str,
) -> Result<BTreeMap<std::sync::Arc<str>, Value>, String> {
    let map: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (attribute_id, json) in map {
        let Some(attribute) = schema.attributes.get(&attribute_id) else {
            continue;
        };
        let ty = attribute.attribute_type;
        let value = match &json {
            serde_json::Value::Array(items) => Value::set(
                items
                    .iter()
                    .map(|i| decode_one(ty, i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| format!("{attribute_id}: {m}"))?,
            ),
            single => decode_one(ty, single).map_err(|m| format!("{attribute_id}: {m}"))?,
        };
        let key = keys
            .entry(attribute_id)
            .or_insert_with_key(|k| k.as_str().into())
            .clone();
        out.insert(key, value);
    }
    Ok(out)
}

/// Reads every object into memory.
pub(crate) fn load_dataset(conn: &Connection) -> SqlResult<Dataset> {
    let schema = load_schema(conn)?;
    let mut objects: BTreeMap<ObjectId, Obj> = BTreeMap::new();
    let mut keys: BTreeMap<String, std::sync::Arc<str>> = BTreeMap::new();
    let mut servertypes: BTreeMap<String, std::sync::Arc<str>> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT object_id, hostname, servertype_id, intern_ip, attributes FROM server")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id: ObjectId = r.get(0)?;
        let ip: Option<String> = r.get(3)?;
        let intern_ip = match ip {
            None => Value::Null,
            Some(t) => Value::Inet(
                parse_inet(&t).ok_or_else(|| corrupt(format!("object {id}: intern_ip {t:?}")))?,
            ),
        };
        let servertype: String = r.get(2)?;
        let servertype = servertypes
            .entry(servertype)
            .or_insert_with_key(|k| k.as_str().into())
            .clone();
        let text: String = r.get(4)?;
        let attrs = decode_attributes(&schema, &mut keys, &text)
            .map_err(|m| corrupt(format!("object {id}: {m}")))?;
        objects.insert(
            id,
            Obj {
                id,
                hostname: r.get(1)?,
                servertype,
                intern_ip,
                attrs,
            },
        );
    }
    Dataset::new(schema, objects).map_err(corrupt)
}

/// Inserts or replaces one object's row.
pub(crate) fn write_object(tx: &Transaction, obj: &Obj) -> SqlResult<()> {
    let ip = match &obj.intern_ip {
        Value::Inet(n) => Some(inet_to_string(n)),
        _ => None,
    };
    tx.prepare_cached(
        "INSERT INTO server (object_id, hostname, servertype_id, intern_ip, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (object_id) DO UPDATE
         SET hostname = ?2, servertype_id = ?3, intern_ip = ?4, attributes = ?5",
    )?
    .execute(params![
        obj.id,
        obj.hostname,
        &*obj.servertype,
        ip,
        encode_attributes(obj)
    ])?;
    Ok(())
}

/// Writes a planned commit in one transaction; returns its id.
pub(crate) fn write_commit(
    conn: &mut Connection,
    plan: &Plan,
    author: &str,
    now: i64,
) -> SqlResult<CommitId> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO commit_log (author, time) VALUES (?1, ?2)",
        params![author, now],
    )?;
    let commit_id = tx.last_insert_rowid();
    for obj in &plan.deletes {
        tx.prepare_cached("DELETE FROM server WHERE object_id = ?1")?
            .execute([obj.id])?;
    }
    for up in &plan.upserts {
        write_object(&tx, &up.object)?;
    }
    for change in &plan.history {
        let attributes = serde_json::to_string(&change.attributes)
            .map_err(|e| corrupt(format!("history of object {}: {e}", change.object_id)))?;
        tx.prepare_cached(
            "INSERT INTO object_change (commit_id, object_id, hostname, kind, attributes)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            commit_id,
            change.object_id,
            change.hostname,
            enum_text(&change.kind),
            attributes
        ])?;
    }
    tx.commit()?;
    Ok(commit_id)
}

/// History rows of one object, or of one commit, grouped into records.
pub(crate) fn read_history(
    conn: &Connection,
    object_id: Option<ObjectId>,
    commit_id: Option<CommitId>,
    limit: Option<usize>,
) -> SqlResult<Vec<CommitRecord>> {
    let (sql, arg): (&str, i64) = match (object_id, commit_id) {
        (Some(o), _) => (
            "SELECT c.commit_id, c.author, c.time, oc.object_id, oc.hostname, oc.kind, oc.attributes
             FROM object_change oc JOIN commit_log c USING (commit_id)
             WHERE oc.object_id = ?1 ORDER BY c.commit_id",
            o,
        ),
        (None, Some(c)) => (
            "SELECT c.commit_id, c.author, c.time, oc.object_id, oc.hostname, oc.kind, oc.attributes
             FROM commit_log c LEFT JOIN object_change oc USING (commit_id)
             WHERE c.commit_id = ?1 ORDER BY oc.object_id",
            c,
        ),
        (None, None) => (
            "SELECT c.commit_id, c.author, c.time, oc.object_id, oc.hostname, oc.kind, oc.attributes
             FROM (SELECT * FROM commit_log ORDER BY commit_id DESC LIMIT ?1) c
             LEFT JOIN object_change oc USING (commit_id)
             ORDER BY c.commit_id DESC, oc.object_id",
            limit.unwrap_or(50).min(i64::MAX as usize) as i64,
        ),
    };
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([arg])?;
    let mut out: Vec<CommitRecord> = Vec::new();
    while let Some(r) = rows.next()? {
        let commit_id: CommitId = r.get(0)?;
        if out.last().map(|c| c.commit_id) != Some(commit_id) {
            out.push(CommitRecord {
                commit_id,
                author: r.get(1)?,
                time: DatetimeJson(herd_model::Datetime { unix: r.get(2)? }),
                changes: Vec::new(),
            });
        }
        let Some(object_id) = r.get::<_, Option<ObjectId>>(3)? else {
            continue;
        };
        let attributes: String = r.get(6)?;
        let change = ObjectChange {
            object_id,
            hostname: r.get(4)?,
            kind: enum_parse::<ChangeKind>(&r.get::<_, String>(5)?)?,
            attributes: serde_json::from_str(&attributes)
                .map_err(|e| corrupt(format!("history of object {object_id}: {e}")))?,
        };
        if let Some(last) = out.last_mut() {
            last.changes.push(change);
        }
    }
    Ok(out)
}

pub(crate) fn object_exists(conn: &Connection, object_id: ObjectId) -> SqlResult<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM object_change WHERE object_id = ?1 LIMIT 1",
            [object_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
