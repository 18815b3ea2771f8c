//! Checking a batch of schema changes against the current schema and
//! objects (pure): each change against the schema the ones before it
//! produce. [`plan`] returns what the batch does, or the first refusal
//! naming its change; nothing is written here.

use std::collections::BTreeMap;

use herd_model::{AttributeType, IpAddrType, ObjectId, Schema, SchemaChange, Servertype};
use herd_store::{empty_schema_batch, refused_schema_change, StoreError};

use crate::dataset::{Dataset, Obj};

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
    if changes.is_empty() {
        return Err(empty_schema_batch());
    }
    let mut schema = data.schema.clone();
    let mut stripped: BTreeMap<ObjectId, Obj> = BTreeMap::new();
    for (i, change) in changes.iter().enumerate() {
        apply(data, &mut schema, change).map_err(|e| refused_schema_change(i, changes, e))?;
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
    let id = herd_model::Value::String(servertype.servertype_id.clone());
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

fn refuse(message: String) -> StoreError {
    StoreError::invalid("schema", message)
}

fn check_id(kind: &str, id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        return Err(refuse(format!(
            "{kind} id {id:?} is invalid: use 1-64 lowercase letters, digits, '_' or '-', starting with a letter"
        )));
    }
    if herd_model::SPECIAL_ATTRIBUTES.contains(&id) && kind == "attribute" {
        return Err(refuse(format!(
            "{id} is a special attribute every object has"
        )));
    }
    Ok(())
}

/// Applies one change to `schema` (the schema so far in the batch), or
/// says why it is refused. `data` holds the objects.
fn apply(data: &Dataset, schema: &mut Schema, change: &SchemaChange) -> Result<(), StoreError> {
    let used_by = |attribute: &str| -> Vec<String> {
        schema
            .servertypes
            .values()
            .filter(|s| s.attribute(attribute).is_some())
            .map(|s| s.servertype_id.clone())
            .collect()
    };
    match change {
        SchemaChange::CreateAttribute { attribute }
        | SchemaChange::UpdateAttribute { attribute } => {
            let id = &attribute.attribute_id;
            let exists = schema.attributes.get(id);
            match (change, exists) {
                (SchemaChange::CreateAttribute { .. }, Some(_)) => {
                    return Err(refuse(format!(
                        "attribute {id} exists already; update it instead"
                    )))
                }
                (SchemaChange::UpdateAttribute { .. }, None) => {
                    return Err(StoreError::NotFound(format!(
                        "attribute {id} does not exist"
                    )))
                }
                (SchemaChange::UpdateAttribute { .. }, Some(old)) => {
                    let users = used_by(id);
                    if (old.attribute_type != attribute.attribute_type
                        || old.multi != attribute.multi)
                        && !users.is_empty()
                    {
                        return Err(refuse(format!(
                            "attribute {id} is used by servertypes {}: its type and multi can not change; create a new attribute",
                            users.join(", ")
                        )));
                    }
                }
                _ => check_id("attribute", id)?,
            }
            herd_model::validate::attribute_regex(attribute)
                .map_err(|e| refuse(format!("attribute {id}: {}", e.message)))?;
            let ty = attribute.attribute_type;
            if let Some(target) = &attribute.target_servertype {
                let st = schema.servertype(target).ok_or_else(|| {
                    refuse(format!(
                        "attribute {id}: target servertype {target} does not exist"
                    ))
                })?;
                if ty == AttributeType::Supernet && st.ip_addr_type != IpAddrType::Network {
                    return Err(refuse(format!(
                        "attribute {id}: supernet target {target} must have ip_addr_type network"
                    )));
                }
            } else if matches!(ty, AttributeType::Supernet | AttributeType::Domain) {
                return Err(refuse(format!(
                    "attribute {id}: a {} attribute needs target_servertype",
                    ty.name()
                )));
            }
            if ty == AttributeType::Reverse {
                let rel = attribute.reversed_attribute.as_deref().ok_or_else(|| {
                    refuse(format!(
                        "attribute {id}: a reverse attribute needs reversed_attribute"
                    ))
                })?;
                if schema.attribute_type(rel) != Some(AttributeType::Relation) {
                    return Err(refuse(format!(
                        "attribute {id}: reversed_attribute {rel} is not a relation attribute"
                    )));
                }
            }
            schema.attributes.insert(id.clone(), attribute.clone());
        }
        SchemaChange::DeleteAttribute { attribute_id } => {
            if !schema.attributes.contains_key(attribute_id) {
                return Err(StoreError::NotFound(format!(
                    "attribute {attribute_id} does not exist"
                )));
            }
            let users = used_by(attribute_id);
            if !users.is_empty() {
                return Err(refuse(format!(
                    "attribute {attribute_id} is used by servertypes {}: remove it from them first",
                    users.join(", ")
                )));
            }
            if let Some(rev) = schema
                .attributes
                .values()
                .find(|a| a.reversed_attribute.as_deref() == Some(attribute_id.as_str()))
            {
                return Err(refuse(format!(
                    "attribute {attribute_id} is reversed by {}: delete that first",
                    rev.attribute_id
                )));
            }
            schema.attributes.remove(attribute_id);
        }
        SchemaChange::CreateServertype { servertype }
        | SchemaChange::UpdateServertype { servertype } => {
            let id = &servertype.servertype_id;
            match (change, schema.servertypes.get(id)) {
                (SchemaChange::CreateServertype { .. }, Some(_)) => {
                    return Err(refuse(format!(
                        "servertype {id} exists already; update it instead"
                    )))
                }
                (SchemaChange::UpdateServertype { .. }, None) => {
                    return Err(StoreError::NotFound(format!(
                        "servertype {id} does not exist"
                    )))
                }
                (SchemaChange::UpdateServertype { .. }, Some(old)) => {
                    if old.ip_addr_type != servertype.ip_addr_type && has_objects(data, id) {
                        return Err(refuse(format!(
                            "servertype {id} has objects: its ip_addr_type can not change"
                        )));
                    }
                }
                _ => check_id("servertype", id)?,
            }
            check_servertype_attributes(schema, servertype)?;
            schema.servertypes.insert(id.clone(), servertype.clone());
        }
        SchemaChange::DeleteServertype { servertype_id } => {
            if !schema.servertypes.contains_key(servertype_id) {
                return Err(StoreError::NotFound(format!(
                    "servertype {servertype_id} does not exist"
                )));
            }
            if has_objects(data, servertype_id) {
                return Err(refuse(format!(
                    "servertype {servertype_id} still has objects: delete them first"
                )));
            }
            if let Some(a) = schema
                .attributes
                .values()
                .find(|a| a.target_servertype.as_deref() == Some(servertype_id.as_str()))
            {
                return Err(refuse(format!(
                    "attribute {} targets servertype {servertype_id}: change it first",
                    a.attribute_id
                )));
            }
            schema.servertypes.remove(servertype_id);
        }
    }
    Ok(())
}

fn has_objects(data: &Dataset, servertype: &str) -> bool {
    !data
        .lookup(
            "servertype",
            &herd_model::Value::String(servertype.to_owned()),
        )
        .is_empty()
}

fn check_servertype_attributes(schema: &Schema, st: &Servertype) -> Result<(), StoreError> {
    let id = &st.servertype_id;
    let mut seen = std::collections::HashSet::new();
    for sa in &st.attributes {
        let a = &sa.attribute_id;
        if !seen.insert(a) {
            return Err(refuse(format!("servertype {id} lists attribute {a} twice")));
        }
        let def = schema.attribute(a).ok_or_else(|| {
            refuse(format!(
                "servertype {id}: attribute {a} does not exist; create it first"
            ))
        })?;
        if let Some(via) = &sa.related_via_attribute {
            let ok = st.attribute(via).is_some()
                && matches!(
                    schema.attribute_type(via),
                    Some(AttributeType::Relation | AttributeType::Supernet)
                );
            if !ok {
                return Err(refuse(format!(
                    "servertype {id}: {a} is related via {via}, which must be a relation or supernet attribute of the servertype"
                )));
            }
        }
        if let Some(default) = &sa.default_value {
            if def.attribute_type.is_computed() {
                return Err(refuse(format!(
                    "servertype {id}: computed attribute {a} can not have a default"
                )));
            }
            herd_model::validate::coerce_for_attribute(def, None, default)
                .map_err(|e| refuse(format!("servertype {id}: default of {a}: {}", e.message)))?;
        }
    }
    Ok(())
}
