//! The rules of schema changes, shared by every engine (pure).
//!
//! [`check_schema_changes`] takes the current schema, the few facts about
//! stored objects the rules need ([`StoredFacts`], which each engine answers
//! from its own storage), and a batch of changes. It checks each change
//! against the schema the ones before it produce and against the objects as
//! the batch leaves them, and returns the schema after the batch or the
//! first refusal. Every rule has one [`SchemaRefusal`] variant with one
//! message; [`refused_schema_change`](crate::refused_schema_change) prefixes
//! it with the change ("schema change 2 of 3 (update_attribute os): ...").
//! Engines keep only the writing.
//!
//! Where the engines used to disagree, serveradmin's behaviour wins:
//!
//! - ids of new attributes and servertypes match `^[a-z][a-z0-9_]*$` and
//!   have at most [`MAX_ID_LEN`] characters (serveradmin's
//!   `LOOKUP_ID_VALIDATORS` and column width; no `-`, which the query
//!   syntax would read as an operator);
//! - an attribute's type or `multi` can not change while objects hold
//!   values of it, whichever servertypes list it;
//! - an attribute that a reverse attribute reverses can not be deleted, nor
//!   stop being a relation; a servertype that an attribute targets can not
//!   be deleted.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use herd_model::validate::{attribute_regex, coerce_for_attribute};
use herd_model::{
    Attribute, AttributeType, IpAddrType, Schema, SchemaChange, Servertype, SPECIAL_ATTRIBUTES,
};

use crate::{empty_schema_batch, refused_schema_change, StoreError, ValidationError};

/// The longest attribute or servertype id (serveradmin's column width).
pub const MAX_ID_LEN: usize = 32;

/// What the rules need to know about stored objects. Engines answer from
/// their storage (inside the transaction that writes the batch);
/// [`KnownFacts`] answers from plain data. The answers are about the data
/// before the batch: [`check_schema_changes`] itself accounts for the
/// values the batch removes.
pub trait StoredFacts {
    /// Whether any object of `servertype` exists.
    fn has_objects(&mut self, servertype: &str) -> Result<bool, StoreError>;

    /// The servertypes of the objects that hold a stored value of
    /// `attribute` (computed attributes hold none).
    fn servertypes_with_values(&mut self, attribute: &str) -> Result<BTreeSet<String>, StoreError>;
}

/// [`StoredFacts`] as plain data: for tests, and for engines that have
/// them at hand.
#[derive(Clone, Debug, Default)]
pub struct KnownFacts {
    /// Servertypes with at least one object.
    pub servertypes_with_objects: BTreeSet<String>,
    /// By attribute: the servertypes whose objects hold values of it.
    pub values: BTreeMap<String, BTreeSet<String>>,
}

impl StoredFacts for KnownFacts {
    fn has_objects(&mut self, servertype: &str) -> Result<bool, StoreError> {
        Ok(self.servertypes_with_objects.contains(servertype))
    }

    fn servertypes_with_values(&mut self, attribute: &str) -> Result<BTreeSet<String>, StoreError> {
        Ok(self.values.get(attribute).cloned().unwrap_or_default())
    }
}

/// Attribute or servertype, in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Attribute,
    Servertype,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Attribute => "attribute",
            Kind::Servertype => "servertype",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why one schema change is refused: one variant per rule, one message
/// each, naming the thing, the rule and what to do next.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaRefusal {
    #[error("there is no {kind} {id}; `herd schema show` lists them, create_{kind} makes one")]
    Missing { kind: Kind, id: String },

    #[error("{kind} {id} exists already; change it with update_{kind}")]
    Exists { kind: Kind, id: String },

    #[error("{kind} id {id:?} is invalid: use 1-{MAX_ID_LEN} lowercase letters, digits and '_', starting with a letter")]
    InvalidId { kind: Kind, id: String },

    #[error("{id} is a special attribute every object has; choose another id")]
    SpecialAttribute { id: String },

    #[error("attribute {attribute}: {reason}; fix the regexp")]
    BadRegexp { attribute: String, reason: String },

    #[error("attribute {attribute}: a {ty} attribute needs target_servertype; name the servertype it points at")]
    NeedsTarget { attribute: String, ty: &'static str },

    #[error("attribute {attribute}: target servertype {target} does not exist; create it first (earlier in the batch)")]
    UnknownTarget { attribute: String, target: String },

    #[error("supernet attribute {attribute} targets servertype {target}, whose ip_addr_type is {ip_addr_type}, not network; a supernet attribute must target a network servertype")]
    SupernetTargetNotNetwork {
        attribute: String,
        target: String,
        ip_addr_type: &'static str,
    },

    #[error("reverse attribute {attribute}: reversed_attribute must name an existing relation attribute, not {}", reversed.as_deref().unwrap_or("nothing"))]
    BadReversed {
        attribute: String,
        reversed: Option<String>,
    },

    #[error("attribute {attribute} has values on objects of servertype(s) {}: its type, multi and relation target can not change ({from} to {to}); create a new attribute, move the values, then delete this one", servertypes.join(", "))]
    ChangeWithValues {
        attribute: String,
        servertypes: Vec<String>,
        from: String,
        to: String,
    },

    #[error("attribute {attribute} is reversed by {reverse}: it must stay a relation attribute that exists; change or delete {reverse} first")]
    Reversed { attribute: String, reverse: String },

    #[error("attribute {attribute} is used by servertype(s) {}: remove it from them first (update_servertype)", servertypes.join(", "))]
    InUse {
        attribute: String,
        servertypes: Vec<String>,
    },

    #[error("servertype {servertype} still has objects: delete them first")]
    HasObjects { servertype: String },

    #[error("servertype {servertype} has objects: its ip_addr_type can not change ({from} to {to}); create a new servertype and move the objects")]
    IpAddrTypeWithObjects {
        servertype: String,
        from: &'static str,
        to: &'static str,
    },

    #[error("servertype {servertype} is the target of attribute {attribute}: change or delete {attribute} first")]
    Targeted {
        servertype: String,
        attribute: String,
    },

    #[error("servertype {servertype} lists attribute {attribute} twice; list it once")]
    ListedTwice {
        servertype: String,
        attribute: String,
    },

    #[error("servertype {servertype} lists attribute {attribute}, which does not exist; create it first (earlier in the batch)")]
    UnknownAttribute {
        servertype: String,
        attribute: String,
    },

    #[error("servertype {servertype}: {attribute} is related via {via}, which must be a relation or supernet attribute the servertype lists; list it or choose another")]
    BadRelatedVia {
        servertype: String,
        attribute: String,
        via: String,
    },

    #[error("servertype {servertype}: computed attribute {attribute} can not have a default; remove default_value")]
    ComputedDefault {
        servertype: String,
        attribute: String,
    },

    #[error("servertype {servertype}: the default of {attribute} is invalid: {reason}; fix default_value")]
    BadDefault {
        servertype: String,
        attribute: String,
        reason: String,
    },
}

impl SchemaRefusal {
    /// The rule's stable name, the `rule` field of the API's error body
    /// (`schema_` and the variant in snake case), so scripts can tell
    /// refusals apart without parsing the message.
    pub fn rule(&self) -> &'static str {
        use SchemaRefusal as R;
        match self {
            R::Missing { .. } => "schema_missing",
            R::Exists { .. } => "schema_exists",
            R::InvalidId { .. } => "schema_invalid_id",
            R::SpecialAttribute { .. } => "schema_special_attribute",
            R::BadRegexp { .. } => "schema_bad_regexp",
            R::NeedsTarget { .. } => "schema_needs_target",
            R::UnknownTarget { .. } => "schema_unknown_target",
            R::SupernetTargetNotNetwork { .. } => "schema_supernet_target_not_network",
            R::BadReversed { .. } => "schema_bad_reversed",
            R::ChangeWithValues { .. } => "schema_change_with_values",
            R::Reversed { .. } => "schema_reversed",
            R::InUse { .. } => "schema_in_use",
            R::HasObjects { .. } => "schema_has_objects",
            R::IpAddrTypeWithObjects { .. } => "schema_ip_addr_type_with_objects",
            R::Targeted { .. } => "schema_targeted",
            R::ListedTwice { .. } => "schema_listed_twice",
            R::UnknownAttribute { .. } => "schema_unknown_attribute",
            R::BadRelatedVia { .. } => "schema_bad_related_via",
            R::ComputedDefault { .. } => "schema_computed_default",
            R::BadDefault { .. } => "schema_bad_default",
        }
    }
}

impl From<SchemaRefusal> for StoreError {
    fn from(refusal: SchemaRefusal) -> StoreError {
        match refusal {
            SchemaRefusal::Missing { .. } => StoreError::NotFound(refusal.to_string()),
            other => StoreError::Validation(ValidationError::new(other.rule(), other.to_string())),
        }
    }
}

/// Checks a batch: the schema after it, or the first refusal, naming its
/// change ([`refused_schema_change`]). An empty batch is refused. Errors of
/// `facts` pass through.
pub fn check_schema_changes(
    schema: &Schema,
    facts: &mut dyn StoredFacts,
    changes: &[SchemaChange],
) -> Result<Schema, StoreError> {
    if changes.is_empty() {
        return Err(empty_schema_batch());
    }
    let mut batch = Batch {
        schema: schema.clone(),
        facts,
        cleared: HashSet::new(),
    };
    for (i, change) in changes.iter().enumerate() {
        batch
            .apply(change)
            .map_err(|e| refused_schema_change(i, changes, e))?;
    }
    Ok(batch.schema)
}

/// A refusal, or an error of the facts.
type Checked = Result<(), StoreError>;

struct Batch<'a> {
    /// The schema so far.
    schema: Schema,
    facts: &'a mut dyn StoredFacts,
    /// (servertype, attribute) whose values the batch removed so far;
    /// `("", attribute)` for a deleted attribute.
    cleared: HashSet<(String, String)>,
}

fn refuse(refusal: SchemaRefusal) -> Checked {
    Err(refusal.into())
}

impl Batch<'_> {
    fn apply(&mut self, change: &SchemaChange) -> Checked {
        match change {
            SchemaChange::CreateAttribute { attribute } => {
                let id = &attribute.attribute_id;
                if self.schema.attributes.contains_key(id) {
                    return refuse(SchemaRefusal::Exists {
                        kind: Kind::Attribute,
                        id: id.clone(),
                    });
                }
                if SPECIAL_ATTRIBUTES.contains(&id.as_str()) {
                    return refuse(SchemaRefusal::SpecialAttribute { id: id.clone() });
                }
                check_id(Kind::Attribute, id)?;
                self.check_attribute(attribute)?;
                self.schema.attributes.insert(id.clone(), attribute.clone());
            }
            SchemaChange::UpdateAttribute { attribute } => {
                let id = &attribute.attribute_id;
                let Some(old) = self.schema.attributes.get(id).cloned() else {
                    return refuse(missing(Kind::Attribute, id));
                };
                if shape(&old) != shape(attribute) {
                    self.check_no_values(&old, attribute)?;
                }
                self.check_attribute(attribute)?;
                self.schema.attributes.insert(id.clone(), attribute.clone());
                self.check_dependents_of_attribute(id)?;
            }
            SchemaChange::DeleteAttribute { attribute_id } => {
                if !self.schema.attributes.contains_key(attribute_id) {
                    return refuse(missing(Kind::Attribute, attribute_id));
                }
                let users = self.users(attribute_id);
                if !users.is_empty() {
                    return refuse(SchemaRefusal::InUse {
                        attribute: attribute_id.clone(),
                        servertypes: users,
                    });
                }
                if let Some(reverse) = self.reversed_by(attribute_id) {
                    return refuse(SchemaRefusal::Reversed {
                        attribute: attribute_id.clone(),
                        reverse,
                    });
                }
                self.schema.attributes.remove(attribute_id);
                self.cleared.insert((String::new(), attribute_id.clone()));
            }
            SchemaChange::CreateServertype { servertype } => {
                let id = &servertype.servertype_id;
                if self.schema.servertypes.contains_key(id) {
                    return refuse(SchemaRefusal::Exists {
                        kind: Kind::Servertype,
                        id: id.clone(),
                    });
                }
                check_id(Kind::Servertype, id)?;
                check_servertype(&self.schema, servertype)?;
                self.schema
                    .servertypes
                    .insert(id.clone(), servertype.clone());
            }
            SchemaChange::UpdateServertype { servertype } => {
                let id = &servertype.servertype_id;
                let Some(old) = self.schema.servertypes.get(id).cloned() else {
                    return refuse(missing(Kind::Servertype, id));
                };
                if old.ip_addr_type != servertype.ip_addr_type && self.facts.has_objects(id)? {
                    return refuse(SchemaRefusal::IpAddrTypeWithObjects {
                        servertype: id.clone(),
                        from: ip_addr_type_name(old.ip_addr_type),
                        to: ip_addr_type_name(servertype.ip_addr_type),
                    });
                }
                check_servertype(&self.schema, servertype)?;
                if let Some(a) = self.schema.attributes.values().find(|a| {
                    a.attribute_type == AttributeType::Supernet
                        && a.target_servertype.as_deref() == Some(id.as_str())
                }) {
                    check_target(&a.attribute_id, AttributeType::Supernet, servertype)?;
                }
                for gone in old
                    .attributes
                    .iter()
                    .filter(|sa| servertype.attribute(&sa.attribute_id).is_none())
                {
                    self.cleared.insert((id.clone(), gone.attribute_id.clone()));
                }
                self.schema
                    .servertypes
                    .insert(id.clone(), servertype.clone());
            }
            SchemaChange::DeleteServertype { servertype_id } => {
                if !self.schema.servertypes.contains_key(servertype_id) {
                    return refuse(missing(Kind::Servertype, servertype_id));
                }
                if self.facts.has_objects(servertype_id)? {
                    return refuse(SchemaRefusal::HasObjects {
                        servertype: servertype_id.clone(),
                    });
                }
                if let Some(a) = self
                    .schema
                    .attributes
                    .values()
                    .find(|a| a.target_servertype.as_deref() == Some(servertype_id.as_str()))
                {
                    return refuse(SchemaRefusal::Targeted {
                        servertype: servertype_id.clone(),
                        attribute: a.attribute_id.clone(),
                    });
                }
                self.schema.servertypes.remove(servertype_id);
            }
        }
        Ok(())
    }

    /// An attribute's own settings, against the schema so far.
    fn check_attribute(&self, attribute: &Attribute) -> Checked {
        let id = &attribute.attribute_id;
        attribute_regex(attribute).map_err(|e| SchemaRefusal::BadRegexp {
            attribute: id.clone(),
            reason: e.message,
        })?;
        let ty = attribute.attribute_type;
        match &attribute.target_servertype {
            Some(target) => {
                let Some(st) = self.schema.servertype(target) else {
                    return refuse(SchemaRefusal::UnknownTarget {
                        attribute: id.clone(),
                        target: target.clone(),
                    });
                };
                check_target(id, ty, st)?;
            }
            None if matches!(ty, AttributeType::Supernet | AttributeType::Domain) => {
                return refuse(SchemaRefusal::NeedsTarget {
                    attribute: id.clone(),
                    ty: ty.name(),
                });
            }
            None => {}
        }
        if ty == AttributeType::Reverse {
            let reversed = attribute.reversed_attribute.as_deref();
            let is_relation = reversed
                .and_then(|r| self.schema.attribute(r))
                .is_some_and(|r| r.attribute_type == AttributeType::Relation);
            if !is_relation {
                return refuse(SchemaRefusal::BadReversed {
                    attribute: id.clone(),
                    reversed: reversed.map(str::to_owned),
                });
            }
        }
        Ok(())
    }

    /// Refuses a type or multi change of `old` while objects hold values
    /// of it (the batch's removals counted).
    fn check_no_values(&mut self, old: &Attribute, new: &Attribute) -> Checked {
        let id = &old.attribute_id;
        if self.cleared.contains(&(String::new(), id.clone())) {
            return Ok(());
        }
        let holders: Vec<String> = self
            .facts
            .servertypes_with_values(id)?
            .into_iter()
            .filter(|st| !self.cleared.contains(&(st.clone(), id.clone())))
            .collect();
        if holders.is_empty() {
            return Ok(());
        }
        refuse(SchemaRefusal::ChangeWithValues {
            attribute: id.clone(),
            servertypes: holders,
            from: describe_shape(old),
            to: describe_shape(new),
        })
    }

    /// After attribute `id` changed: what refers to it still holds.
    fn check_dependents_of_attribute(&self, id: &str) -> Checked {
        let is_relation = self.schema.attribute_type(id) == Some(AttributeType::Relation);
        if let Some(reverse) = self.reversed_by(id).filter(|_| !is_relation) {
            return refuse(SchemaRefusal::Reversed {
                attribute: id.to_owned(),
                reverse,
            });
        }
        for st in self.schema.servertypes.values() {
            let lists = st.attribute(id).is_some();
            let via = st
                .attributes
                .iter()
                .any(|sa| sa.related_via_attribute.as_deref() == Some(id));
            if lists || via {
                check_servertype(&self.schema, st)?;
            }
        }
        Ok(())
    }

    /// The servertypes (so far) that list `attribute`.
    fn users(&self, attribute: &str) -> Vec<String> {
        self.schema
            .servertypes
            .values()
            .filter(|s| s.attribute(attribute).is_some())
            .map(|s| s.servertype_id.clone())
            .collect()
    }

    /// A reverse attribute (so far) that reverses `attribute`.
    fn reversed_by(&self, attribute: &str) -> Option<String> {
        self.schema
            .attributes
            .values()
            .find(|a| {
                a.attribute_type == AttributeType::Reverse
                    && a.reversed_attribute.as_deref() == Some(attribute)
            })
            .map(|a| a.attribute_id.clone())
    }
}

/// What stored values of an attribute depend on: its type, `multi`, and
/// for a relation the servertype its values point at (a value naming a
/// `hypervisor` object means nothing once the relation targets `vm`).
fn shape(a: &Attribute) -> (AttributeType, bool, Option<&str>) {
    let target = match a.attribute_type {
        AttributeType::Relation => a.target_servertype.as_deref(),
        _ => None,
    };
    (a.attribute_type, a.multi, target)
}

/// "multi string", "relation to hypervisor": the shape, in messages.
fn describe_shape(a: &Attribute) -> String {
    let (ty, multi, target) = shape(a);
    let multi = if multi { "multi " } else { "" };
    match target {
        Some(target) => format!("{multi}{} to {target}", ty.name()),
        None => format!("{multi}{}", ty.name()),
    }
}

fn missing(kind: Kind, id: &str) -> SchemaRefusal {
    SchemaRefusal::Missing {
        kind,
        id: id.to_owned(),
    }
}

/// Whether `id` is a valid new attribute or servertype id.
pub fn valid_id(id: &str) -> bool {
    id.len() <= MAX_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_id(kind: Kind, id: &str) -> Checked {
    if valid_id(id) {
        return Ok(());
    }
    refuse(SchemaRefusal::InvalidId {
        kind,
        id: id.to_owned(),
    })
}

fn ip_addr_type_name(t: IpAddrType) -> &'static str {
    match t {
        IpAddrType::Null => "null",
        IpAddrType::Host => "host",
        IpAddrType::Loadbalancer => "loadbalancer",
        IpAddrType::Network => "network",
    }
}

/// A supernet attribute must target a network servertype.
fn check_target(attribute: &str, ty: AttributeType, target: &Servertype) -> Checked {
    if ty == AttributeType::Supernet && target.ip_addr_type != IpAddrType::Network {
        return refuse(SchemaRefusal::SupernetTargetNotNetwork {
            attribute: attribute.to_owned(),
            target: target.servertype_id.clone(),
            ip_addr_type: ip_addr_type_name(target.ip_addr_type),
        });
    }
    Ok(())
}

/// A servertype's attribute list, against `schema`.
fn check_servertype(schema: &Schema, st: &Servertype) -> Checked {
    let servertype = || st.servertype_id.clone();
    let mut seen = HashSet::new();
    for sa in &st.attributes {
        let a = &sa.attribute_id;
        if !seen.insert(a) {
            return refuse(SchemaRefusal::ListedTwice {
                servertype: servertype(),
                attribute: a.clone(),
            });
        }
        let Some(def) = schema.attribute(a) else {
            return refuse(SchemaRefusal::UnknownAttribute {
                servertype: servertype(),
                attribute: a.clone(),
            });
        };
        if let Some(via) = &sa.related_via_attribute {
            let ok = st.attribute(via).is_some()
                && matches!(
                    schema.attribute_type(via),
                    Some(AttributeType::Relation | AttributeType::Supernet)
                );
            if !ok {
                return refuse(SchemaRefusal::BadRelatedVia {
                    servertype: servertype(),
                    attribute: a.clone(),
                    via: via.clone(),
                });
            }
        }
        if let Some(default) = &sa.default_value {
            if def.attribute_type.is_computed() {
                return refuse(SchemaRefusal::ComputedDefault {
                    servertype: servertype(),
                    attribute: a.clone(),
                });
            }
            // A regexp that does not compile is refused with its attribute.
            let regex = attribute_regex(def).ok().flatten();
            coerce_for_attribute(def, regex.as_ref(), default).map_err(|e| {
                SchemaRefusal::BadDefault {
                    servertype: servertype(),
                    attribute: a.clone(),
                    reason: e.message,
                }
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_model::{ServertypeAttribute, Value};

    fn attr(id: &str, ty: AttributeType) -> Attribute {
        Attribute::new(id, ty)
    }

    fn st(id: &str, ip: IpAddrType, attrs: &[&str]) -> Servertype {
        let mut s = Servertype::new(id, ip);
        s.attributes = attrs.iter().map(|a| ServertypeAttribute::new(a)).collect();
        s
    }

    /// `os` (string) on `vm` (host), `hypervisor` (relation) reversed by
    /// `vms`; vm objects hold os values.
    fn base() -> (Schema, KnownFacts) {
        let mut schema = Schema::default();
        let mut hv = attr("hypervisor", AttributeType::Relation);
        hv.target_servertype = Some("hv".into());
        let mut vms = attr("vms", AttributeType::Reverse);
        vms.reversed_attribute = Some("hypervisor".into());
        for a in [attr("os", AttributeType::String), hv, vms] {
            schema.attributes.insert(a.attribute_id.clone(), a);
        }
        for s in [
            st("vm", IpAddrType::Host, &["os", "hypervisor"]),
            st("hv", IpAddrType::Host, &["vms"]),
        ] {
            schema.servertypes.insert(s.servertype_id.clone(), s);
        }
        let mut facts = KnownFacts::default();
        facts.servertypes_with_objects.insert("vm".into());
        facts
            .values
            .insert("os".into(), BTreeSet::from(["vm".to_owned()]));
        (schema, facts)
    }

    /// The batch's result: the schema, or the refusal's message.
    fn check(changes: &[SchemaChange]) -> Result<Schema, String> {
        let (schema, mut facts) = base();
        check_schema_changes(&schema, &mut facts, changes).map_err(|e| e.to_string())
    }

    fn refused(changes: &[SchemaChange], refusal: SchemaRefusal) {
        let message = check(changes).expect_err("refused");
        assert!(
            message.ends_with(&format!("{refusal}; nothing was applied")),
            "{message}\nexpected: {refusal}"
        );
    }

    fn retype(id: &str, ty: AttributeType) -> SchemaChange {
        let (schema, _) = base();
        let mut a = schema.attributes[id].clone();
        a.attribute_type = ty;
        SchemaChange::UpdateAttribute { attribute: a }
    }

    #[test]
    fn ids_follow_serveradmin() {
        for id in ["a", "os2", "game_market", &"x".repeat(MAX_ID_LEN)] {
            assert!(valid_id(id), "{id}");
        }
        for id in [
            "",
            "2a",
            "_a",
            "Os",
            "a-b",
            "a b",
            "é",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(!valid_id(id), "{id}");
            refused(
                &[SchemaChange::CreateServertype {
                    servertype: st(id, IpAddrType::Null, &[]),
                }],
                SchemaRefusal::InvalidId {
                    kind: Kind::Servertype,
                    id: id.into(),
                },
            );
        }
    }

    #[test]
    fn type_change_is_refused_while_values_exist_not_while_listed() {
        refused(
            &[retype("os", AttributeType::Number)],
            SchemaRefusal::ChangeWithValues {
                attribute: "os".into(),
                servertypes: vec!["vm".into()],
                from: "string".into(),
                to: "number".into(),
            },
        );
        // Listed by vm, but no values: allowed.
        let mut facts = base().1;
        facts.values.clear();
        let after = check_schema_changes(
            &base().0,
            &mut facts,
            &[retype("os", AttributeType::Number)],
        )
        .expect("no values");
        assert_eq!(after.attributes["os"].attribute_type, AttributeType::Number);
        // Values removed earlier in the batch do not count.
        let vm = st("vm", IpAddrType::Host, &["hypervisor"]);
        let after = check(&[
            SchemaChange::UpdateServertype { servertype: vm },
            retype("os", AttributeType::Number),
        ])
        .expect("values stripped first");
        assert_eq!(after.attributes["os"].attribute_type, AttributeType::Number);
    }

    #[test]
    fn relation_target_change_is_refused_while_values_exist() {
        let (schema, mut facts) = base();
        let mut retargeted = schema.attributes["hypervisor"].clone();
        retargeted.target_servertype = Some("vm".into());
        let change = SchemaChange::UpdateAttribute {
            attribute: retargeted,
        };
        // No values yet: allowed.
        let after = check(std::slice::from_ref(&change)).expect("no values");
        assert_eq!(
            after.attributes["hypervisor"].target_servertype.as_deref(),
            Some("vm")
        );
        facts
            .values
            .insert("hypervisor".into(), BTreeSet::from(["vm".to_owned()]));
        let err = check_schema_changes(&schema, &mut facts, std::slice::from_ref(&change))
            .expect_err("values point at hv objects");
        let StoreError::Validation(v) = err else {
            panic!("{err:?}")
        };
        assert_eq!(v.rule, "schema_change_with_values");
        assert!(
            v.message
                .contains("(relation to hv to relation to vm); create a new attribute"),
            "{}",
            v.message
        );
    }

    #[test]
    fn every_refusal_but_missing_is_a_validation_error_with_its_own_rule() {
        let refusal = SchemaRefusal::InUse {
            attribute: "os".into(),
            servertypes: vec!["vm".into()],
        };
        let StoreError::Validation(v) = StoreError::from(refusal.clone()) else {
            panic!("not a validation error")
        };
        assert_eq!(v.rule, "schema_in_use");
        assert_eq!(v.message, refusal.to_string());
        let missing = StoreError::from(missing(Kind::Servertype, "x"));
        assert!(matches!(missing, StoreError::NotFound(_)), "{missing:?}");
    }

    #[test]
    fn relation_reversed_can_not_go_or_change() {
        refused(
            &[SchemaChange::DeleteAttribute {
                attribute_id: "hypervisor".into(),
            }],
            SchemaRefusal::InUse {
                attribute: "hypervisor".into(),
                servertypes: vec!["vm".into()],
            },
        );
        let vm = st("vm", IpAddrType::Host, &["os"]);
        let reversed = SchemaRefusal::Reversed {
            attribute: "hypervisor".into(),
            reverse: "vms".into(),
        };
        refused(
            &[
                SchemaChange::UpdateServertype {
                    servertype: vm.clone(),
                },
                SchemaChange::DeleteAttribute {
                    attribute_id: "hypervisor".into(),
                },
            ],
            reversed.clone(),
        );
        refused(&[retype("hypervisor", AttributeType::String)], reversed);
    }

    #[test]
    fn defaults_and_related_via_are_rechecked_when_an_attribute_changes() {
        let mut facts = base().1;
        facts.values.clear();
        let mut vm = st("vm", IpAddrType::Host, &["os", "hypervisor"]);
        vm.attributes[0].default_value = Some(Value::String("linux".into()));
        let schema = check_schema_changes(
            &base().0,
            &mut facts,
            &[SchemaChange::UpdateServertype { servertype: vm }],
        )
        .unwrap();
        let message =
            check_schema_changes(&schema, &mut facts, &[retype("os", AttributeType::Number)])
                .unwrap_err()
                .to_string();
        assert!(
            message.contains("servertype vm: the default of os is invalid"),
            "{message}"
        );
    }

    #[test]
    fn servertype_rules() {
        refused(
            &[SchemaChange::DeleteServertype {
                servertype_id: "vm".into(),
            }],
            SchemaRefusal::HasObjects {
                servertype: "vm".into(),
            },
        );
        refused(
            &[SchemaChange::DeleteServertype {
                servertype_id: "hv".into(),
            }],
            SchemaRefusal::Targeted {
                servertype: "hv".into(),
                attribute: "hypervisor".into(),
            },
        );
        refused(
            &[SchemaChange::UpdateServertype {
                servertype: st("vm", IpAddrType::Network, &["os"]),
            }],
            SchemaRefusal::IpAddrTypeWithObjects {
                servertype: "vm".into(),
                from: "host",
                to: "network",
            },
        );
        let mut net = attr("net", AttributeType::Supernet);
        net.target_servertype = Some("hv".into());
        refused(
            &[SchemaChange::CreateAttribute { attribute: net }],
            SchemaRefusal::SupernetTargetNotNetwork {
                attribute: "net".into(),
                target: "hv".into(),
                ip_addr_type: "host",
            },
        );
        assert!(matches!(
            check_schema_changes(
                &base().0,
                &mut base().1,
                &[SchemaChange::DeleteServertype {
                    servertype_id: "nope".into()
                }]
            ),
            Err(StoreError::NotFound(_))
        ));
    }
}
