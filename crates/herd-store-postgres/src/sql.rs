//! Tables, migrations, the schema's rows, and how values are stored.
//!
//! Each attribute value is one `server_attribute` row: `value` holds its
//! canonical text (relations: the target's object id), `num` its number
//! (numbers, relations, datetimes as unix seconds) and `ip` its address
//! (inet), so equality, range and containment filters each have an index.

use herd_model::value::{inet_to_string, parse_inet};
use herd_model::{
    Attribute, AttributeType, Datetime, Number, Schema, Servertype, ServertypeAttribute, Value,
};
use postgres::{GenericClient, Transaction};

use crate::{internal, StoreError};

/// Schema migrations, applied in order inside one transaction each, under
/// an advisory lock so that servers starting together do not race.
/// `herd_migration` records the applied ones. Append, never edit.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE attribute (
    attribute_id text PRIMARY KEY,
    type text NOT NULL,
    multi boolean NOT NULL,
    hovertext text NOT NULL,
    attribute_group text NOT NULL,
    help_link text,
    readonly boolean NOT NULL,
    regexp text,
    target_servertype text,
    reversed_attribute text,
    inet_address_family text,
    clone boolean NOT NULL,
    history boolean NOT NULL
);
CREATE TABLE servertype (
    servertype_id text PRIMARY KEY,
    description text NOT NULL,
    ip_addr_type text NOT NULL
);
CREATE TABLE servertype_attribute (
    servertype_id text NOT NULL REFERENCES servertype ON DELETE CASCADE,
    attribute_id text NOT NULL REFERENCES attribute,
    position integer NOT NULL,
    required boolean NOT NULL,
    default_value jsonb,
    default_visible boolean NOT NULL,
    related_via_attribute text,
    PRIMARY KEY (servertype_id, attribute_id)
);
CREATE TABLE schema_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version bigint NOT NULL
);
INSERT INTO schema_version (version) VALUES (1);
CREATE SEQUENCE object_id_seq;
CREATE TABLE server (
    object_id bigint PRIMARY KEY,
    hostname text NOT NULL UNIQUE,
    servertype_id text NOT NULL REFERENCES servertype,
    intern_ip inet
);
CREATE INDEX server_hostname_prefix ON server (hostname text_pattern_ops);
CREATE INDEX server_servertype ON server (servertype_id);
CREATE INDEX server_intern_ip ON server USING gist (intern_ip inet_ops);
CREATE INDEX server_intern_ip_eq ON server (intern_ip);
CREATE TABLE server_attribute (
    object_id bigint NOT NULL REFERENCES server ON DELETE CASCADE,
    attribute_id text NOT NULL REFERENCES attribute,
    value text NOT NULL,
    num double precision,
    ip inet,
    PRIMARY KEY (object_id, attribute_id, value)
);
CREATE INDEX server_attribute_value ON server_attribute (attribute_id, value text_pattern_ops);
CREATE INDEX server_attribute_num ON server_attribute (attribute_id, num) WHERE num IS NOT NULL;
CREATE INDEX server_attribute_ip ON server_attribute USING gist (ip inet_ops) WHERE ip IS NOT NULL;
CREATE TABLE commit_log (
    commit_id bigserial PRIMARY KEY,
    author text NOT NULL,
    time bigint NOT NULL
);
CREATE TABLE object_change (
    commit_id bigint NOT NULL REFERENCES commit_log,
    object_id bigint NOT NULL,
    hostname text NOT NULL,
    kind text NOT NULL,
    attributes jsonb NOT NULL,
    PRIMARY KEY (commit_id, object_id)
);
CREATE INDEX object_change_by_object ON object_change (object_id, commit_id);
CREATE TABLE auth_users (
    name text PRIMARY KEY,
    admin boolean NOT NULL DEFAULT false,
    read_only boolean NOT NULL DEFAULT false,
    disabled boolean NOT NULL DEFAULT false
);
CREATE TABLE auth_keys (
    fingerprint text PRIMARY KEY,
    user_name text NOT NULL REFERENCES auth_users ON DELETE CASCADE,
    algorithm text NOT NULL,
    public_key text NOT NULL
);
CREATE INDEX auth_keys_user ON auth_keys (user_name);
CREATE TABLE auth_tokens (
    user_name text NOT NULL REFERENCES auth_users ON DELETE CASCADE,
    name text NOT NULL,
    app_id text NOT NULL UNIQUE,
    secret text NOT NULL,
    PRIMARY KEY (user_name, name)
);
CREATE TABLE auth_groups (
    name text PRIMARY KEY,
    query text NOT NULL,
    mode text NOT NULL CHECK (mode IN ('allow', 'deny')),
    attributes text[] NOT NULL
);
CREATE TABLE auth_group_members (
    group_name text NOT NULL REFERENCES auth_groups ON DELETE CASCADE,
    user_name text NOT NULL REFERENCES auth_users ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_name)
);
CREATE TABLE auth_nonces (
    nonce text PRIMARY KEY,
    expires_at bigint NOT NULL
);
CREATE INDEX auth_nonces_expiry ON auth_nonces (expires_at);
"#,
    r#"
-- One row per applied batch of schema changes; changes: the batch's
-- changes as the API takes them.
CREATE TABLE schema_log (
    schema_change_id bigserial PRIMARY KEY,
    author text NOT NULL,
    time bigint NOT NULL,
    changes jsonb NOT NULL
);
"#,
    r#"
-- Read caches (`cache`): every commit takes the next data version and
-- lists the objects it wrote, so a server holding the data as of version
-- v reloads just the objects of the rows after v. Rows older than
-- `cache::KEPT_VERSIONS` are pruned; a cache further behind reloads all.
CREATE TABLE data_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version bigint NOT NULL
);
INSERT INTO data_version (version) VALUES (1);
CREATE TABLE data_change (
    version bigint PRIMARY KEY,
    objects bigint[] NOT NULL
);
"#,
];

/// The advisory lock key migrations run under ("herd" in ASCII).
const MIGRATION_LOCK: i64 = 0x6865_7264;

/// What [`migrate`] found or did.
pub(crate) enum Migrated {
    /// The database has every migration this herd knows (now).
    Current,
    /// A newer herd migrated the database further than this one knows.
    TooNew { applied: usize },
}

/// Applies the migrations this database lacks.
pub(crate) fn migrate(client: &mut postgres::Client) -> Result<Migrated, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS herd_migration (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let applied: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM herd_migration", &[])?
        .get(0);
    if applied.max(0) as usize > MIGRATIONS.len() {
        // This herd's commits would skip what the newer tables need (the
        // read caches' data versions, for one): serving could go wrong
        // silently.
        return Ok(Migrated::TooNew {
            applied: applied as usize,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO herd_migration (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(Migrated::Current)
}

/// The number of migrations this build knows.
pub fn migration_count() -> usize {
    MIGRATIONS.len()
}

pub(crate) fn enum_text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(crate) fn enum_parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|e| StoreError::Internal(format!("stored value {s:?} does not parse: {e}")))
}

pub(crate) fn schema_version(c: &mut impl GenericClient) -> Result<i64, StoreError> {
    Ok(c.query_one("SELECT version FROM schema_version", &[])
        .map_err(internal)?
        .get(0))
}

pub(crate) fn load_schema(c: &mut impl GenericClient) -> Result<Schema, StoreError> {
    let mut schema = Schema::default();
    for r in c
        .query(
            "SELECT attribute_id, type, multi, hovertext, attribute_group, help_link, readonly,
                    regexp, target_servertype, reversed_attribute, inet_address_family, clone,
                    history
             FROM attribute",
            &[],
        )
        .map_err(internal)?
    {
        let family: Option<String> = r.get(10);
        let a = Attribute {
            attribute_id: r.get(0),
            attribute_type: enum_parse(r.get(1))?,
            multi: r.get(2),
            hovertext: r.get(3),
            group: r.get(4),
            help_link: r.get(5),
            readonly: r.get(6),
            regexp: r.get(7),
            target_servertype: r.get(8),
            reversed_attribute: r.get(9),
            inet_address_family: family.as_deref().map(enum_parse).transpose()?,
            clone: r.get(11),
            history: r.get(12),
        };
        schema.attributes.insert(a.attribute_id.clone(), a);
    }
    for r in c
        .query(
            "SELECT servertype_id, description, ip_addr_type FROM servertype",
            &[],
        )
        .map_err(internal)?
    {
        let s = Servertype {
            servertype_id: r.get(0),
            description: r.get(1),
            ip_addr_type: enum_parse(r.get(2))?,
            attributes: Vec::new(),
        };
        schema.servertypes.insert(s.servertype_id.clone(), s);
    }
    for r in c
        .query(
            "SELECT servertype_id, attribute_id, required, default_value::text, default_visible,
                    related_via_attribute
             FROM servertype_attribute ORDER BY servertype_id, position",
            &[],
        )
        .map_err(internal)?
    {
        let default: Option<String> = r.get(3);
        let default_value = default
            .map(|text| {
                serde_json::from_str::<Value>(&text).map_err(|e| {
                    StoreError::Internal(format!("stored default value {text:?}: {e}"))
                })
            })
            .transpose()?;
        let servertype: String = r.get(0);
        if let Some(s) = schema.servertypes.get_mut(&servertype) {
            s.attributes.push(ServertypeAttribute {
                attribute_id: r.get(1),
                required: r.get(2),
                default_value,
                default_visible: r.get(4),
                related_via_attribute: r.get(5),
            });
        }
    }
    Ok(schema)
}

pub(crate) fn write_attribute(tx: &mut Transaction<'_>, a: &Attribute) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO attribute (attribute_id, type, multi, hovertext, attribute_group, help_link,
             readonly, regexp, target_servertype, reversed_attribute, inet_address_family, clone,
             history)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (attribute_id) DO UPDATE SET type = $2, multi = $3, hovertext = $4,
             attribute_group = $5, help_link = $6, readonly = $7, regexp = $8,
             target_servertype = $9, reversed_attribute = $10, inet_address_family = $11,
             clone = $12, history = $13",
        &[
            &a.attribute_id,
            &a.attribute_type.name(),
            &a.multi,
            &a.hovertext,
            &a.group,
            &a.help_link,
            &a.readonly,
            &a.regexp,
            &a.target_servertype,
            &a.reversed_attribute,
            &a.inet_address_family.as_ref().map(enum_text),
            &a.clone,
            &a.history,
        ],
    )
    .map_err(internal)?;
    Ok(())
}

pub(crate) fn write_servertype(tx: &mut Transaction<'_>, s: &Servertype) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO servertype (servertype_id, description, ip_addr_type) VALUES ($1, $2, $3)
         ON CONFLICT (servertype_id) DO UPDATE SET description = $2, ip_addr_type = $3",
        &[
            &s.servertype_id,
            &s.description,
            &enum_text(&s.ip_addr_type),
        ],
    )
    .map_err(internal)?;
    tx.execute(
        "DELETE FROM servertype_attribute WHERE servertype_id = $1",
        &[&s.servertype_id],
    )
    .map_err(internal)?;
    for (i, a) in s.attributes.iter().enumerate() {
        let default = a
            .default_value
            .as_ref()
            .map(|v| serde_json::to_string(v).unwrap_or_else(|_| "null".into()));
        tx.execute(
            "INSERT INTO servertype_attribute (servertype_id, attribute_id, position, required,
                 default_value, default_visible, related_via_attribute)
             VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7)",
            &[
                &s.servertype_id,
                &a.attribute_id,
                &(i as i32),
                &a.required,
                &default,
                &a.default_visible,
                &a.related_via_attribute,
            ],
        )
        .map_err(internal)?;
    }
    Ok(())
}

pub(crate) fn bump_schema_version(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("UPDATE schema_version SET version = version + 1", &[])
        .map_err(internal)?;
    Ok(())
}

/// A stored single value as its `(value, num, ip)` columns. Relations are
/// `Number(object_id)` here.
pub(crate) fn encode(v: &Value) -> (String, Option<f64>, Option<String>) {
    match v {
        Value::Number(n) => (n.to_string(), Some(n.get()), None),
        Value::Datetime(d) => (v.to_text(), Some(d.unix as f64), None),
        Value::Inet(n) => (inet_to_string(n), None, Some(n.to_string())),
        other => (other.to_text(), None, None),
    }
}

/// Parses a stored `value` column back into a typed value.
pub(crate) fn decode(ty: AttributeType, text: &str) -> Result<Value, String> {
    let bad = || format!("stored {} value {text:?} does not parse", ty.name());
    Ok(match ty {
        AttributeType::String => Value::String(text.to_owned()),
        AttributeType::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad()),
        },
        AttributeType::Number => Value::Number(text.parse::<Number>().map_err(|_| bad())?),
        AttributeType::Relation => Value::number(text.parse::<i64>().map_err(|_| bad())?),
        AttributeType::Inet => Value::Inet(parse_inet(text).ok_or_else(bad)?),
        AttributeType::Macaddr => Value::Mac(text.parse().map_err(|_| bad())?),
        AttributeType::Date => Value::Date(text.parse().map_err(|_| bad())?),
        AttributeType::Datetime => Value::Datetime(text.parse::<Datetime>().map_err(|_| bad())?),
        AttributeType::Reverse | AttributeType::Supernet | AttributeType::Domain => {
            return Err(format!("computed {} attributes are not stored", ty.name()))
        }
    })
}
