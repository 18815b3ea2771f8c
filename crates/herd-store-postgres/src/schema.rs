//! Batches of schema changes (servertypes and attributes): checked by
//! herd-store's rules with facts from the transaction, then written; their
//! history, and new-object templates.

use std::collections::{BTreeMap, BTreeSet};

use herd_model::validate::coerce_for_attribute;
use herd_model::{Object, Schema, SchemaChange, Value};
use herd_store::schema_change::{check_schema_changes, StoredFacts};
use herd_store::SchemaChangeId;
use postgres::Transaction;

use crate::query::Catalog;
use crate::sql::{bump_schema_version, write_attribute, write_servertype};
use crate::{empty_value, internal, StoreError};

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

/// Checks a batch of schema changes with herd-store's rules, answered from
/// the caller's (`SERIALIZABLE`) transaction, writes it there and records
/// it in `schema_log`. On a refusal nothing is written; the caller rolls
/// the transaction back on any error.
pub(crate) fn apply_batch(
    tx: &mut Transaction<'_>,
    catalog: &Catalog,
    changes: &[SchemaChange],
    author: &str,
    time: i64,
) -> Result<SchemaChangeId, StoreError> {
    let schema = check_schema_changes(&catalog.schema, &mut Facts(&mut *tx), changes)?;
    // Every server rebuilds its catalog from the new schema; it must build.
    Catalog::new(schema).map_err(|e| {
        StoreError::Internal(format!("the schema after the batch is inconsistent: {e}"))
    })?;
    for change in changes {
        write(tx, change)?;
    }
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

/// The transaction's answers to the schema rules' questions.
struct Facts<'a, 'b>(&'a mut Transaction<'b>);

impl StoredFacts for Facts<'_, '_> {
    fn has_objects(&mut self, servertype: &str) -> Result<bool, StoreError> {
        Ok(self
            .0
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM server WHERE servertype_id = $1)",
                &[&servertype],
            )
            .map_err(internal)?
            .get(0))
    }

    fn servertypes_with_values(&mut self, attribute: &str) -> Result<BTreeSet<String>, StoreError> {
        Ok(self
            .0
            .query(
                "SELECT DISTINCT s.servertype_id FROM server_attribute a
                 JOIN server s USING (object_id) WHERE a.attribute_id = $1",
                &[&attribute],
            )
            .map_err(internal)?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }
}

/// Writes one (checked) change.
fn write(tx: &mut Transaction<'_>, change: &SchemaChange) -> Result<(), StoreError> {
    match change {
        SchemaChange::CreateAttribute { attribute }
        | SchemaChange::UpdateAttribute { attribute } => write_attribute(tx, attribute)?,
        SchemaChange::DeleteAttribute { attribute_id } => {
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
        SchemaChange::CreateServertype { servertype } => write_servertype(tx, servertype)?,
        SchemaChange::UpdateServertype { servertype } => {
            // Values of the attributes the servertype no longer lists go.
            let kept: Vec<&str> = servertype
                .attributes
                .iter()
                .map(|a| a.attribute_id.as_str())
                .collect();
            tx.execute(
                "DELETE FROM server_attribute WHERE attribute_id <> ALL($2) AND object_id IN
                     (SELECT object_id FROM server WHERE servertype_id = $1)",
                &[&servertype.servertype_id, &kept],
            )
            .map_err(internal)?;
            write_servertype(tx, servertype)?;
        }
        SchemaChange::DeleteServertype { servertype_id } => {
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
