//! Batches of schema changes (servertypes and attributes), their history,
//! and new-object templates.

use std::collections::BTreeMap;

use herd_model::validate::{attribute_regex, coerce_for_attribute};
use herd_model::{
    Attribute, AttributeType, Object, Schema, SchemaChange, Servertype, Value, SPECIAL_ATTRIBUTES,
};
use herd_store::{empty_schema_batch, refused_schema_change, SchemaChangeId};
use postgres::Transaction;

use crate::query::Catalog;
use crate::sql::{bump_schema_version, write_attribute, write_servertype};
use crate::{empty_value, internal, StoreError};

fn schema_rule(message: String) -> StoreError {
    StoreError::invalid("schema", message)
}

/// A template for a new object of `servertype`.
pub(crate) fn template(schema: &Schema, servertype: &str) -> Result<Object, StoreError> {
    let st = schema.servertype(servertype).ok_or_else(|| {
        StoreError::NotFound(format!(
            "unknown servertype {servertype:?}: list them with `herd schema servertypes`"
        ))
    })?;
    let mut fields = BTreeMap::new();
    fields.insert("hostname".to_owned(), Value::Null);
    fields.insert(
        "servertype".to_owned(),
        Value::String(servertype.to_owned()),
    );
    fields.insert("intern_ip".to_owned(), Value::Null);
    for sa in &st.attributes {
        let Some(def) = schema.attribute(&sa.attribute_id) else {
            continue;
        };
        let default = sa
            .default_value
            .as_ref()
            .and_then(|d| coerce_for_attribute(def, None, d).ok())
            .unwrap_or_else(|| empty_value(def.is_multi()));
        fields.insert(sa.attribute_id.clone(), default);
    }
    Ok(Object { fields })
}

/// Checks and writes a batch of schema changes in the caller's
/// (`SERIALIZABLE`) transaction, each change against the schema the ones
/// before it produce and the objects as they left them, then records the
/// batch in `schema_log`. The first refusal names its change; the caller
/// then rolls the whole transaction back.
pub(crate) fn apply_batch(
    tx: &mut Transaction<'_>,
    catalog: &Catalog,
    changes: &[SchemaChange],
    author: &str,
    time: i64,
) -> Result<SchemaChangeId, StoreError> {
    if changes.is_empty() {
        return Err(empty_schema_batch());
    }
    let mut schema = catalog.schema.clone();
    for (i, change) in changes.iter().enumerate() {
        apply(tx, &schema, change).map_err(|e| refused_schema_change(i, changes, e))?;
        record(&mut schema, change);
    }
    // Every server rebuilds its catalog from the new schema; it must build.
    Catalog::new(schema).map_err(|e| {
        StoreError::Internal(format!("the schema after the batch is inconsistent: {e}"))
    })?;
    bump_schema_version(tx)?;
    let text = serde_json::to_string(changes)
        .map_err(|e| StoreError::Internal(format!("the schema changes do not encode: {e}")))?;
    Ok(tx
        .query_one(
            "INSERT INTO schema_log (author, time, changes) VALUES ($1, $2, $3::text::jsonb)
             RETURNING schema_change_id",
            &[&author, &time, &text],
        )
        .map_err(internal)?
        .get(0))
}

/// The schema after one (checked) change.
fn record(schema: &mut Schema, change: &SchemaChange) {
    match change {
        SchemaChange::CreateAttribute { attribute }
        | SchemaChange::UpdateAttribute { attribute } => {
            schema
                .attributes
                .insert(attribute.attribute_id.clone(), attribute.clone());
        }
        SchemaChange::DeleteAttribute { attribute_id } => {
            schema.attributes.remove(attribute_id);
        }
        SchemaChange::CreateServertype { servertype }
        | SchemaChange::UpdateServertype { servertype } => {
            schema
                .servertypes
                .insert(servertype.servertype_id.clone(), servertype.clone());
        }
        SchemaChange::DeleteServertype { servertype_id } => {
            schema.servertypes.remove(servertype_id);
        }
    }
}

/// Checks and writes one schema change against `schema`, the schema so far
/// in the batch.
fn apply(
    tx: &mut Transaction<'_>,
    schema: &Schema,
    change: &SchemaChange,
) -> Result<(), StoreError> {
    match change {
        SchemaChange::CreateAttribute { attribute } => {
            if schema.attribute(&attribute.attribute_id).is_some() {
                return Err(schema_rule(format!(
                    "attribute {} already exists: change it with update_attribute",
                    attribute.attribute_id
                )));
            }
            check_attribute(schema, attribute)?;
            write_attribute(tx, attribute)?;
        }
        SchemaChange::UpdateAttribute { attribute } => {
            let id = &attribute.attribute_id;
            let old = schema
                .attribute(id)
                .ok_or_else(|| StoreError::NotFound(format!("there is no attribute {id}")))?;
            check_attribute(schema, attribute)?;
            if old.attribute_type != attribute.attribute_type || old.multi != attribute.multi {
                let used: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM server_attribute WHERE attribute_id = $1)",
                        &[id],
                    )
                    .map_err(internal)?
                    .get(0);
                if used {
                    return Err(schema_rule(format!(
                        "attribute {id} has values: its type and multi setting can not change; create a new attribute and move the values"
                    )));
                }
            }
            write_attribute(tx, attribute)?;
        }
        SchemaChange::DeleteAttribute { attribute_id } => {
            if schema.attribute(attribute_id).is_none() {
                return Err(StoreError::NotFound(format!(
                    "there is no attribute {attribute_id}"
                )));
            }
            let users: Vec<&str> = schema
                .servertypes
                .values()
                .filter(|s| s.attribute(attribute_id).is_some())
                .map(|s| s.servertype_id.as_str())
                .collect();
            if !users.is_empty() {
                return Err(schema_rule(format!(
                    "attribute {attribute_id} is used by servertype(s) {}: remove it there first",
                    users.join(", ")
                )));
            }
            tx.execute(
                "DELETE FROM server_attribute WHERE attribute_id = $1",
                &[attribute_id],
            )
            .map_err(internal)?;
            tx.execute(
                "DELETE FROM attribute WHERE attribute_id = $1",
                &[attribute_id],
            )
            .map_err(internal)?;
        }
        SchemaChange::CreateServertype { servertype } => {
            if schema.servertype(&servertype.servertype_id).is_some() {
                return Err(schema_rule(format!(
                    "servertype {} already exists: change it with update_servertype",
                    servertype.servertype_id
                )));
            }
            check_servertype(schema, servertype)?;
            write_servertype(tx, servertype)?;
        }
        SchemaChange::UpdateServertype { servertype } => {
            let id = &servertype.servertype_id;
            let old = schema
                .servertype(id)
                .ok_or_else(|| StoreError::NotFound(format!("there is no servertype {id}")))?;
            check_servertype(schema, servertype)?;
            if old.ip_addr_type != servertype.ip_addr_type && has_objects(tx, id)? {
                return Err(schema_rule(format!(
                    "servertype {id} has objects: its ip_addr_type can not change"
                )));
            }
            for gone in old
                .attributes
                .iter()
                .filter(|a| servertype.attribute(&a.attribute_id).is_none())
            {
                tx.execute(
                    "DELETE FROM server_attribute WHERE attribute_id = $2 AND object_id IN
                         (SELECT object_id FROM server WHERE servertype_id = $1)",
                    &[id, &gone.attribute_id],
                )
                .map_err(internal)?;
            }
            write_servertype(tx, servertype)?;
        }
        SchemaChange::DeleteServertype { servertype_id } => {
            if schema.servertype(servertype_id).is_none() {
                return Err(StoreError::NotFound(format!(
                    "there is no servertype {servertype_id}"
                )));
            }
            if has_objects(tx, servertype_id)? {
                return Err(schema_rule(format!(
                    "servertype {servertype_id} still has objects: delete them first"
                )));
            }
            tx.execute(
                "DELETE FROM servertype WHERE servertype_id = $1",
                &[servertype_id],
            )
            .map_err(internal)?;
        }
    }
    Ok(())
}

/// The latest batches of schema changes, newest first.
pub(crate) fn history(
    c: &mut impl postgres::GenericClient,
    limit: usize,
) -> Result<Vec<herd_store::SchemaRecord>, StoreError> {
    let limit = limit.min(i64::MAX as usize) as i64;
    c.query(
        "SELECT schema_change_id, author, time, changes::text FROM schema_log
         ORDER BY schema_change_id DESC LIMIT $1",
        &[&limit],
    )
    .map_err(internal)?
    .into_iter()
    .map(|r| {
        let id: SchemaChangeId = r.get(0);
        let text: String = r.get(3);
        Ok(herd_store::SchemaRecord {
            schema_change_id: id,
            author: r.get(1),
            time: herd_model::DatetimeJson(herd_model::Datetime { unix: r.get(2) }),
            changes: serde_json::from_str(&text).map_err(|e| {
                StoreError::Internal(format!("stored schema change {id} does not parse: {e}"))
            })?,
        })
    })
    .collect()
}

fn has_objects(tx: &mut Transaction<'_>, servertype: &str) -> Result<bool, StoreError> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM server WHERE servertype_id = $1)",
            &[&servertype],
        )
        .map_err(internal)?
        .get(0))
}

fn check_attribute(schema: &Schema, a: &Attribute) -> Result<(), StoreError> {
    let id = &a.attribute_id;
    if SPECIAL_ATTRIBUTES.contains(&id.as_str()) {
        return Err(schema_rule(format!(
            "{id} is a special attribute every object has"
        )));
    }
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(schema_rule(format!(
            "attribute id {id:?} may hold only lowercase letters, digits and '_'"
        )));
    }
    attribute_regex(a).map_err(|e| schema_rule(format!("attribute {id}: {}", e.message)))?;
    if matches!(
        a.attribute_type,
        AttributeType::Supernet | AttributeType::Domain
    ) && a.target_servertype.is_none()
    {
        return Err(schema_rule(format!(
            "{} attribute {id} needs a target_servertype",
            a.attribute_type.name()
        )));
    }
    if let Some(target) = &a.target_servertype {
        if schema.servertype(target).is_none() {
            return Err(schema_rule(format!(
                "attribute {id}: target servertype {target} does not exist; create it first"
            )));
        }
    }
    if a.attribute_type == AttributeType::Reverse {
        let ok = a
            .reversed_attribute
            .as_deref()
            .and_then(|r| schema.attribute(r))
            .is_some_and(|r| r.attribute_type == AttributeType::Relation);
        if !ok {
            return Err(schema_rule(format!(
                "reverse attribute {id} needs reversed_attribute naming an existing relation attribute"
            )));
        }
    }
    Ok(())
}

fn check_servertype(schema: &Schema, s: &Servertype) -> Result<(), StoreError> {
    let id = &s.servertype_id;
    if id.is_empty() || id.chars().any(char::is_whitespace) {
        return Err(schema_rule(format!("servertype id {id:?} is not valid")));
    }
    let mut seen = std::collections::HashSet::new();
    for sa in &s.attributes {
        let a = &sa.attribute_id;
        if !seen.insert(a) {
            return Err(schema_rule(format!("servertype {id} lists {a} twice")));
        }
        let def = schema.attribute(a).ok_or_else(|| {
            StoreError::Validation(
                herd_store::ValidationError::new(
                    "unknown_attribute",
                    format!("servertype {id} lists unknown attribute {a}: create it first"),
                )
                .attribute(a),
            )
        })?;
        if let Some(default) = &sa.default_value {
            let re = attribute_regex(def).ok().flatten();
            coerce_for_attribute(def, re.as_ref(), default).map_err(|e| {
                schema_rule(format!(
                    "default value of {a} on servertype {id}: {}",
                    e.message
                ))
            })?;
        }
        if let Some(via) = &sa.related_via_attribute {
            let ok = schema.attribute(via).is_some_and(|v| {
                matches!(
                    v.attribute_type,
                    AttributeType::Relation | AttributeType::Supernet
                )
            });
            if !ok {
                return Err(schema_rule(format!(
                    "{a} on servertype {id}: related_via_attribute {via} must be a relation or supernet attribute"
                )));
            }
        }
    }
    Ok(())
}
