//! What a batch of schema changes does to the dataset (pure): the rules
//! are herd-store's ([`check_schema_changes`]), answered with facts from
//! the in-memory dataset; [`plan`] adds the objects that lose values.
//! Nothing is written here.

use std::collections::{BTreeMap, BTreeSet};

use herd_model::{ObjectId, Schema, SchemaChange, Servertype, Value};
use herd_store::schema_change::{check_schema_changes, StoredFacts};
use herd_store::StoreError;

use herd_store_memory::{Dataset, Obj};

/// What a checked batch does: the schema after it, and the objects that
/// lose values because their servertype no longer lists the attribute.
pub(crate) struct SchemaPlan {
    pub schema: Schema,
    /// The objects as they are after the batch (each once).
    pub stripped: Vec<Obj>,
}

/// Checks every change of the batch in order; the plan, or the first
/// refusal, naming the change.
pub(crate) fn plan(data: &Dataset, changes: &[SchemaChange]) -> Result<SchemaPlan, StoreError> {
    let schema = check_schema_changes(&data.schema, &mut Facts(data), changes)?;
    let mut stripped: BTreeMap<ObjectId, Obj> = BTreeMap::new();
    for change in changes {
        if let SchemaChange::UpdateServertype { servertype } = change {
            strip(data, servertype, &mut stripped);
        }
    }
    // The in-memory dataset takes the schema only after the file has it;
    // building its derived facts now means that step can not fail then.
    Dataset::new(schema.clone(), BTreeMap::new()).map_err(|e| {
        StoreError::Internal(format!("the schema after the batch is inconsistent: {e}"))
    })?;
    Ok(SchemaPlan {
        schema,
        stripped: stripped.into_values().collect(),
    })
}

/// Drops, from the objects of the servertype (as earlier changes of the
/// batch left them), the attributes it no longer lists.
fn strip(data: &Dataset, servertype: &Servertype, stripped: &mut BTreeMap<ObjectId, Obj>) {
    let id = Value::String(servertype.servertype_id.clone());
    for oid in data.lookup("servertype", &id) {
        let Some(obj) = stripped.get(oid).or_else(|| data.objects.get(oid)) else {
            continue;
        };
        if obj.attrs.keys().all(|a| servertype.attribute(a).is_some()) {
            continue;
        }
        let mut obj = obj.clone();
        obj.attrs.retain(|a, _| servertype.attribute(a).is_some());
        stripped.insert(obj.id, obj);
    }
}

/// The dataset's answers to the schema rules' questions.
struct Facts<'a>(&'a Dataset);

impl StoredFacts for Facts<'_> {
    fn has_objects(&mut self, servertype: &str) -> Result<bool, StoreError> {
        let id = Value::String(servertype.to_owned());
        Ok(!self.0.lookup("servertype", &id).is_empty())
    }

    fn servertypes_with_values(&mut self, attribute: &str) -> Result<BTreeSet<String>, StoreError> {
        Ok(self
            .0
            .objects
            .values()
            .filter(|o| o.attrs.contains_key(attribute))
            .map(|o| o.servertype.to_string())
            .collect())
    }
}
