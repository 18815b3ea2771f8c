//! Turning a commit into the objects' new states (a [`Plan`]), checking
//! compare-and-swap and every validation rule against the dataset. Pure:
//! nothing is written until the plan is complete and valid.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use herd_model::validate::{check_hostname, check_intern_ip, coerce_for_attribute, RuleError};
use herd_model::{
    Attribute, AttributeChange, AttributeDiff, AttributeType, ChangeKind, Commit, IpAddrType,
    Object, ObjectChange, ObjectId, Value,
};
use herd_store::{StoreError, ValidationError};
use ipnet::IpNet;

use herd_store_memory::{as_id, id_value, Dataset, Obj};

/// The new state of a created or changed object.
pub(crate) struct Upsert {
    pub object: Obj,
}

pub(crate) struct Plan {
    pub upserts: Vec<Upsert>,
    pub deletes: Vec<Obj>,
    pub history: Vec<ObjectChange>,
}

fn invalid(object: &str, attribute: Option<&str>, e: RuleError) -> StoreError {
    let mut v = ValidationError::new(e.rule, e.message).object(object);
    if let Some(a) = attribute {
        v = v.attribute(a);
    }
    StoreError::Validation(v)
}

fn rule(rule: &'static str, message: String) -> RuleError {
    RuleError { rule, message }
}

/// Plans commits against a dataset (the in-memory dataset is another
/// crate's type, so planning borrows it rather than extending it).
pub(crate) struct Planner<'a>(pub &'a Dataset);

impl std::ops::Deref for Planner<'_> {
    type Target = Dataset;

    fn deref(&self) -> &Dataset {
        self.0
    }
}

/// Applies a plan that has been written to the file.
pub(crate) fn apply(data: &mut Dataset, plan: Plan) {
    for obj in plan.deletes {
        data.remove(obj.id);
    }
    for up in plan.upserts {
        data.remove(up.object.id);
        data.insert(up.object);
    }
}

impl Planner<'_> {
    /// Plans a commit; the dataset is not changed.
    pub fn plan(&self, commit: &Commit) -> Result<Plan, StoreError> {
        let mut deleted: BTreeSet<ObjectId> = BTreeSet::new();
        for id in &commit.deleted {
            if !self.objects.contains_key(id) {
                return Err(StoreError::Conflict(format!(
                    "object {id} does not exist (any more)"
                )));
            }
            deleted.insert(*id);
        }

        // New objects get their ids first, so relations in this commit can
        // point at them.
        let mut new_hostnames: HashMap<String, (ObjectId, String)> = HashMap::new();
        let mut created_ids = BTreeSet::new();
        for (id, obj) in (self.next_id..).zip(&commit.created) {
            created_ids.insert(id);
            if let Some(h) = obj.hostname() {
                let st = obj.servertype().unwrap_or_default().to_owned();
                if new_hostnames.insert(h.to_owned(), (id, st)).is_some() {
                    return Err(invalid(
                        h,
                        Some("hostname"),
                        rule(
                            "unique_hostname",
                            "the commit creates this hostname twice".into(),
                        ),
                    ));
                }
            }
        }
        let resolver = Resolver {
            data: self,
            new_hostnames: &new_hostnames,
            deleted: &deleted,
        };

        let mut work: BTreeMap<ObjectId, (Obj, BTreeSet<String>)> = BTreeMap::new();
        for (obj, id) in commit.created.iter().zip(&created_ids) {
            let o = self.build_created(obj, *id, &resolver)?;
            work.insert(*id, (o, BTreeSet::new()));
        }
        for change in &commit.changed {
            let id = change.object_id;
            if deleted.contains(&id) {
                return Err(StoreError::invalid(
                    "commit",
                    format!("object {id} is both changed and deleted in one commit"),
                ));
            }
            if created_ids.contains(&id) {
                return Err(StoreError::invalid(
                    "commit",
                    format!("object {id} is created by this commit and can not also be changed"),
                ));
            }
            let current = self.objects.get(&id).ok_or_else(|| {
                StoreError::Conflict(format!("object {id} does not exist (any more)"))
            })?;
            let (obj, changed) = work
                .entry(id)
                .or_insert_with(|| (current.clone(), BTreeSet::new()));
            for (attribute, ch) in &change.attributes {
                self.apply_change(obj, attribute, ch, &resolver)?;
                changed.insert(attribute.clone());
            }
        }

        self.check_final(&work, &deleted)?;

        let new_names: HashMap<ObjectId, String> = work
            .iter()
            .map(|(id, (o, _))| (*id, o.hostname.clone()))
            .collect();
        let name_of = |id: ObjectId| -> Option<String> {
            new_names
                .get(&id)
                .cloned()
                .or_else(|| self.objects.get(&id).map(|o| o.hostname.clone()))
        };
        let mut history = Vec::new();
        let mut upserts = Vec::new();
        for (id, (obj, _)) in work {
            let is_new = created_ids.contains(&id);
            let old = if is_new {
                BTreeMap::new()
            } else {
                self.snapshot(&self.objects[&id], &name_of)
            };
            let new = self.snapshot(&obj, &name_of);
            let attributes = diff(old, new);
            if is_new || !attributes.is_empty() {
                history.push(ObjectChange {
                    object_id: id,
                    hostname: obj.hostname.clone(),
                    kind: if is_new {
                        ChangeKind::Created
                    } else {
                        ChangeKind::Changed
                    },
                    attributes,
                });
            }
            upserts.push(Upsert { object: obj });
        }
        let mut deletes = Vec::new();
        for id in deleted {
            let obj = self.objects[&id].clone();
            history.push(ObjectChange {
                object_id: id,
                hostname: obj.hostname.clone(),
                kind: ChangeKind::Deleted,
                attributes: diff(self.snapshot(&obj, &name_of), BTreeMap::new()),
            });
            deletes.push(obj);
        }
        Ok(Plan {
            upserts,
            deletes,
            history,
        })
    }

    /// Stored fields with relations as hostnames, for history.
    fn snapshot(
        &self,
        obj: &Obj,
        name_of: &dyn Fn(ObjectId) -> Option<String>,
    ) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        out.insert("hostname".to_owned(), Value::String(obj.hostname.clone()));
        out.insert(
            "servertype".to_owned(),
            Value::String(obj.servertype.to_string()),
        );
        if !obj.intern_ip.is_null() {
            out.insert("intern_ip".to_owned(), obj.intern_ip.clone());
        }
        for (k, v) in &obj.attrs {
            let def = self.schema.attributes.get(&**k);
            if def.is_some_and(|d| !d.history) {
                continue;
            }
            let v = if def.is_some_and(|d| d.attribute_type == AttributeType::Relation) {
                let name = |v: &Value| {
                    as_id(v)
                        .and_then(name_of)
                        .map_or(Value::Null, Value::String)
                };
                match v {
                    Value::Set(items) => Value::set(items.iter().map(name).collect()),
                    single => name(single),
                }
            } else {
                v.clone()
            };
            out.insert(k.to_string(), v);
        }
        out
    }

    fn build_created(
        &self,
        given: &Object,
        id: ObjectId,
        resolver: &Resolver<'_>,
    ) -> Result<Obj, StoreError> {
        let label = given
            .hostname()
            .map_or_else(|| format!("#new {id}"), str::to_owned);
        let hostname = match given.get("hostname") {
            Some(Value::String(h)) => h.clone(),
            _ => {
                return Err(invalid(
                    &label,
                    Some("hostname"),
                    rule(
                        "required",
                        "a new object needs a hostname (a string)".into(),
                    ),
                ))
            }
        };
        check_hostname(&hostname).map_err(|e| invalid(&label, Some("hostname"), e))?;
        let servertype = match given.get("servertype") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(invalid(
                    &label,
                    Some("servertype"),
                    rule("required", "a new object needs a servertype".into()),
                ))
            }
        };
        let st = self.schema.servertype(&servertype).ok_or_else(|| {
            invalid(
                &label,
                Some("servertype"),
                rule(
                    "unknown_servertype",
                    format!("servertype {servertype:?} does not exist: list them with `herd schema servertypes`"),
                ),
            )
        })?;
        if let Some(v) = given.get("object_id") {
            if !v.is_null() {
                return Err(invalid(
                    &label,
                    Some("object_id"),
                    rule(
                        "readonly",
                        "object_id is assigned by the store; leave it null".into(),
                    ),
                ));
            }
        }
        let intern_ip = check_intern_ip(
            st.ip_addr_type,
            given.get("intern_ip").unwrap_or(&Value::Null),
        )
        .map_err(|e| invalid(&label, Some("intern_ip"), e))?;
        let mut obj = Obj {
            id,
            hostname,
            servertype: servertype.as_str().into(),
            intern_ip,
            attrs: BTreeMap::new(),
        };
        for (k, v) in &given.fields {
            if matches!(
                k.as_str(),
                "object_id" | "hostname" | "servertype" | "intern_ip"
            ) {
                continue;
            }
            let (def, via) = self
                .servertype_attribute(&servertype, k)
                .map_err(|e| invalid(&label, Some(k), e))?;
            if via || def.attribute_type.is_computed() {
                if v.is_empty() {
                    continue;
                }
                return Err(invalid(
                    &label,
                    Some(k),
                    rule(
                        "readonly",
                        format!("{k} is computed and can not be set; leave it out"),
                    ),
                ));
            }
            let typed = self
                .typed(def, v)
                .map_err(|e| invalid(&label, Some(k), e))?;
            self.store_value(&mut obj, def, typed, resolver)
                .map_err(|e| invalid(&label, Some(k), e))?;
        }
        for sa in &st.attributes {
            if given.fields.contains_key(&sa.attribute_id) {
                continue;
            }
            if let (Some(default), Some(def)) =
                (&sa.default_value, self.schema.attribute(&sa.attribute_id))
            {
                if def.attribute_type.is_computed() || sa.related_via_attribute.is_some() {
                    continue;
                }
                let typed = self
                    .typed(def, default)
                    .map_err(|e| invalid(&label, Some(&sa.attribute_id), e))?;
                self.store_value(&mut obj, def, typed, resolver)
                    .map_err(|e| invalid(&label, Some(&sa.attribute_id), e))?;
            }
        }
        Ok(obj)
    }

    /// The attribute's definition, and whether the servertype takes it from
    /// a related object.
    fn servertype_attribute(
        &self,
        servertype: &str,
        attribute: &str,
    ) -> Result<(&Attribute, bool), RuleError> {
        let def = self.schema.attribute(attribute).ok_or_else(|| {
            rule(
                "unknown_attribute",
                format!("attribute {attribute:?} does not exist: list them with `herd schema attributes`"),
            )
        })?;
        let via = self
            .servertypes
            .get(servertype)
            .and_then(|s| s.attributes.get(attribute))
            .map(|info| &info.via)
            .ok_or_else(|| {
                rule(
                    "unknown_attribute",
                    format!("servertype {servertype} has no attribute {attribute}"),
                )
            })?;
        Ok((def, via.is_some()))
    }

    fn typed(&self, def: &Attribute, v: &Value) -> Result<Value, RuleError> {
        coerce_for_attribute(def, self.regexes.get(&def.attribute_id), v)
    }

    /// Stores a typed value (relations resolved to ids); empty values are
    /// removed.
    fn store_value(
        &self,
        obj: &mut Obj,
        def: &Attribute,
        typed: Value,
        resolver: &Resolver<'_>,
    ) -> Result<(), RuleError> {
        let value = if def.attribute_type == AttributeType::Relation {
            let one = |v: &Value| -> Result<Value, RuleError> {
                let Value::String(h) = v else {
                    return Err(rule("type", format!("{} is not a hostname", v.describe())));
                };
                resolver.resolve(h, def).map(id_value)
            };
            match &typed {
                Value::Null => Value::Null,
                Value::Set(items) => {
                    Value::set(items.iter().map(one).collect::<Result<Vec<_>, _>>()?)
                }
                single => one(single)?,
            }
        } else {
            typed
        };
        let key = self.key(&def.attribute_id);
        if value.is_empty() {
            obj.attrs.remove(&key);
        } else {
            obj.attrs.insert(key, value);
        }
        Ok(())
    }

    fn apply_change(
        &self,
        obj: &mut Obj,
        attribute: &str,
        change: &AttributeChange,
        resolver: &Resolver<'_>,
    ) -> Result<(), StoreError> {
        let label = obj.hostname.clone();
        let bad = |e: RuleError| invalid(&label, Some(attribute), e);
        let (old, new) = match change {
            AttributeChange::Update { old, new } => (Some(old), Some(new)),
            AttributeChange::New { new } => (Some(&Value::Null), Some(new)),
            AttributeChange::Delete { old } => (Some(old), Some(&Value::Null)),
            AttributeChange::Multi { .. } => (None, None),
        };
        let conflict = |current: &Value, old: &Value| {
            StoreError::Conflict(format!(
                "{label}: {attribute} is {} now, the commit expected {}",
                current.describe(),
                old.describe()
            ))
        };
        match attribute {
            "object_id" | "servertype" => {
                return Err(bad(rule(
                    "readonly",
                    format!("{attribute} can not be changed; create a new object instead"),
                )))
            }
            "hostname" => {
                let (Some(old), Some(new)) = (old, new) else {
                    return Err(bad(rule(
                        "multi",
                        "hostname takes an update, not a multi change".into(),
                    )));
                };
                if *old != Value::String(obj.hostname.clone()) {
                    return Err(conflict(&Value::String(obj.hostname.clone()), old));
                }
                let Value::String(h) = new else {
                    return Err(bad(rule(
                        "type",
                        "the new hostname must be a string".into(),
                    )));
                };
                check_hostname(h).map_err(bad)?;
                obj.hostname = h.clone();
                return Ok(());
            }
            "intern_ip" => {
                let (Some(old), Some(new)) = (old, new) else {
                    return Err(bad(rule(
                        "multi",
                        "intern_ip takes an update, not a multi change".into(),
                    )));
                };
                let old = old
                    .coerce(AttributeType::Inet)
                    .map_err(|m| bad(rule("type", m)))?;
                if old != obj.intern_ip {
                    return Err(conflict(&obj.intern_ip, &old));
                }
                let ty = self
                    .servertypes
                    .get(&*obj.servertype)
                    .map_or(IpAddrType::Null, |s| s.ip_addr_type);
                obj.intern_ip = check_intern_ip(ty, new).map_err(bad)?;
                return Ok(());
            }
            _ => {}
        }
        let (def, via) = self
            .servertype_attribute(&obj.servertype, attribute)
            .map_err(bad)?;
        if via || def.attribute_type.is_computed() {
            return Err(bad(rule(
                "readonly",
                format!("{attribute} is computed for this servertype and can not be changed"),
            )));
        }
        let current = self
            .view(obj, attribute)
            .map(std::borrow::Cow::into_owned)
            .unwrap_or(Value::Null);
        let new_value = match change {
            AttributeChange::Multi { add, remove } => {
                if !def.is_multi() {
                    return Err(bad(rule(
                        "multi",
                        format!("{attribute} is single-valued: use an update with old and new"),
                    )));
                }
                let mut items = match &current {
                    Value::Set(items) => items.clone(),
                    _ => Vec::new(),
                };
                for r in remove {
                    let r = coerce_for_attribute(def, None, r).map_err(bad)?;
                    if let Value::Set(rs) = r {
                        items.retain(|i| !rs.contains(i));
                    }
                }
                for a in add {
                    if let Value::Set(adds) = self.typed(def, a).map_err(bad)? {
                        items.extend(adds);
                    }
                }
                Value::set(items)
            }
            _ => {
                let (Some(old), Some(new)) = (old, new) else {
                    return Ok(());
                };
                let old = coerce_for_attribute(def, None, old).map_err(bad)?;
                if old != current {
                    return Err(conflict(&current, &old));
                }
                self.typed(def, new).map_err(bad)?
            }
        };
        if def.readonly && !current.is_empty() && new_value != current {
            return Err(bad(rule(
                "readonly",
                format!("{attribute} is readonly: it can only be set when empty"),
            )));
        }
        self.store_value(obj, def, new_value, resolver).map_err(bad)
    }

    /// Rules over the final state: hostnames and host addresses unique,
    /// networks of one servertype disjoint, required attributes present,
    /// deleted objects no longer referenced.
    fn check_final(
        &self,
        work: &BTreeMap<ObjectId, (Obj, BTreeSet<String>)>,
        deleted: &BTreeSet<ObjectId>,
    ) -> Result<(), StoreError> {
        let gone = |id: &ObjectId| deleted.contains(id) || work.contains_key(id);
        let mut hostnames: HashMap<&str, ObjectId> = HashMap::new();
        let mut host_ips: HashMap<&IpNet, ObjectId> = HashMap::new();
        let mut networks: Vec<(&str, IpNet, &str)> = Vec::new();
        for (id, (obj, _)) in work {
            let label = obj.hostname.as_str();
            if let Some(other) = hostnames.insert(&obj.hostname, *id) {
                return Err(invalid(
                    label,
                    Some("hostname"),
                    rule(
                        "unique_hostname",
                        format!("objects {other} and {id} would have the same hostname"),
                    ),
                ));
            }
            if let Some(other) = self.hostnames.get(&obj.hostname) {
                if !gone(other) {
                    return Err(invalid(
                        label,
                        Some("hostname"),
                        rule(
                            "unique_hostname",
                            format!("hostname {label} is taken by object {other}"),
                        ),
                    ));
                }
            }
            let Some(info) = self.servertypes.get(&*obj.servertype) else {
                return Err(StoreError::Internal(format!(
                    "servertype {} vanished",
                    obj.servertype
                )));
            };
            if let Value::Inet(net) = &obj.intern_ip {
                match info.ip_addr_type {
                    IpAddrType::Host => {
                        if let Some(other) = host_ips.insert(net, *id) {
                            return Err(invalid(
                                label,
                                Some("intern_ip"),
                                rule(
                                    "unique_ip",
                                    format!(
                                        "{} is used by object {other} of this commit too",
                                        net.addr()
                                    ),
                                ),
                            ));
                        }
                        for other in self.lookup("intern_ip", &obj.intern_ip) {
                            let o = &self.objects[other];
                            if !gone(other)
                                && self
                                    .servertypes
                                    .get(&*o.servertype)
                                    .is_some_and(|s| s.ip_addr_type == IpAddrType::Host)
                            {
                                return Err(invalid(
                                    label,
                                    Some("intern_ip"),
                                    rule(
                                        "unique_ip",
                                        format!(
                                            "{} is already the address of {}",
                                            net.addr(),
                                            o.hostname
                                        ),
                                    ),
                                ));
                            }
                        }
                    }
                    IpAddrType::Network => {
                        for (other_label, other_net, st) in &networks {
                            if *st == &*obj.servertype
                                && (other_net.contains(net) || net.contains(other_net))
                            {
                                return Err(invalid(label, Some("intern_ip"), rule("network_overlap", format!("{net} overlaps {other_net} of {other_label}, also {st}"))));
                            }
                        }
                        networks.push((label, *net, &obj.servertype));
                        if let Some(other) = self.overlapping_network(net, &obj.servertype, &gone) {
                            return Err(invalid(
                                label,
                                Some("intern_ip"),
                                rule(
                                    "network_overlap",
                                    format!(
                                        "{net} overlaps network {other} of the same servertype"
                                    ),
                                ),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            if let Some(st) = self.schema.servertype(&obj.servertype) {
                for sa in &st.attributes {
                    if !sa.required || sa.related_via_attribute.is_some() {
                        continue;
                    }
                    let computed = self
                        .schema
                        .attribute(&sa.attribute_id)
                        .is_some_and(|a| a.attribute_type.is_computed());
                    if !computed && !obj.attrs.contains_key(sa.attribute_id.as_str()) {
                        return Err(invalid(
                            label,
                            Some(&sa.attribute_id),
                            rule(
                                "required",
                                format!(
                                    "{} is required for servertype {}",
                                    sa.attribute_id, st.servertype_id
                                ),
                            ),
                        ));
                    }
                }
            }
            if !deleted.is_empty() {
                for (k, v) in &obj.attrs {
                    if self.schema.attribute_type(k) != Some(AttributeType::Relation) {
                        continue;
                    }
                    let points_to_deleted = match v {
                        Value::Set(items) => {
                            items.iter().filter_map(as_id).any(|i| deleted.contains(&i))
                        }
                        single => as_id(single).is_some_and(|i| deleted.contains(&i)),
                    };
                    if points_to_deleted {
                        return Err(invalid(
                            label,
                            Some(k),
                            rule("relation", "points at an object this commit deletes".into()),
                        ));
                    }
                }
            }
        }
        for id in deleted {
            let target = &self.objects[id];
            for (attribute, def) in &self.schema.attributes {
                if def.attribute_type != AttributeType::Relation {
                    continue;
                }
                for referrer in self.lookup(attribute, &id_value(*id)) {
                    if gone(referrer) {
                        continue;
                    }
                    let r = &self.objects[referrer];
                    return Err(invalid(
                        &target.hostname,
                        None,
                        rule(
                            "relation",
                            format!("{} still points here via {attribute}: change or delete it in the same commit", r.hostname),
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn overlapping_network(
        &self,
        net: &IpNet,
        servertype: &str,
        skip: &dyn Fn(&ObjectId) -> bool,
    ) -> Option<String> {
        let same = |id: &ObjectId| {
            !skip(id)
                && self
                    .objects
                    .get(id)
                    .is_some_and(|o| &*o.servertype == servertype)
        };
        for p in 0..=net.prefix_len() {
            let Ok(n) = IpNet::new(net.addr(), p) else {
                continue;
            };
            if let Some(id) = self
                .lookup("intern_ip", &Value::Inet(n.trunc()))
                .iter()
                .find(|i| same(i))
            {
                return Some(self.objects[id].hostname.clone());
            }
        }
        let lo = Value::Inet(IpNet::new(net.network(), 0).ok()?);
        let hi = Value::Inet(IpNet::new(net.broadcast(), net.max_prefix_len()).ok()?);
        let index = self.indexes.get("intern_ip")?;
        for (k, ids) in index.range(lo..=hi) {
            if matches!(k, Value::Inet(n) if net.contains(n)) {
                if let Some(id) = ids.iter().find(|i| same(i)) {
                    return Some(self.objects[id].hostname.clone());
                }
            }
        }
        None
    }
}

fn diff(
    old: BTreeMap<String, Value>,
    mut new: BTreeMap<String, Value>,
) -> BTreeMap<String, AttributeDiff> {
    let mut out = BTreeMap::new();
    for (k, o) in old {
        let n = new.remove(&k).unwrap_or(Value::Null);
        if n != o {
            out.insert(k, AttributeDiff { old: o, new: n });
        }
    }
    for (k, n) in new {
        out.insert(
            k,
            AttributeDiff {
                old: Value::Null,
                new: n,
            },
        );
    }
    out
}

/// Resolves relation hostnames to object ids.
struct Resolver<'a> {
    data: &'a Dataset,
    new_hostnames: &'a HashMap<String, (ObjectId, String)>,
    deleted: &'a BTreeSet<ObjectId>,
}

impl Resolver<'_> {
    fn resolve(&self, hostname: &str, def: &Attribute) -> Result<ObjectId, RuleError> {
        let missing = || {
            rule(
                "relation",
                format!("no object {hostname:?} to point {} at", def.attribute_id),
            )
        };
        let (id, st): (ObjectId, &str) = if let Some((id, st)) = self.new_hostnames.get(hostname) {
            (*id, st)
        } else {
            let id = *self.data.hostnames.get(hostname).ok_or_else(missing)?;
            if self.deleted.contains(&id) {
                return Err(rule(
                    "relation",
                    format!("{hostname} is deleted by this commit"),
                ));
            }
            (id, &self.data.objects[&id].servertype)
        };
        if let Some(target) = &def.target_servertype {
            if st != target {
                return Err(rule(
                    "relation",
                    format!(
                        "{hostname} is a {st}, {} points at {target} objects only",
                        def.attribute_id
                    ),
                ));
            }
        }
        Ok(id)
    }
}
