//! The in-memory indexed dataset herd's store engines answer queries
//! from: every object, one ordered index per stored attribute, and the
//! derived (computed, related-via) attributes.
//!
//! It owns matching, relation walks and result rendering (as objects or
//! straight to JSON). It must not do I/O: an engine builds it from its
//! source of truth (the SQLite file, a PostgreSQL database) and changes it
//! only with what that source already holds.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

// foldhash instead of SipHash: every attribute read looks up a servertype
// and an attribute by name, and result building looks objects up by id.
// Its per-process random seed keeps keys chosen by clients from being
// aimed at one bucket ahead of time.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::ops::Bound;
use std::sync::Arc;

use herd_model::compile::Comparison;
use herd_model::relations::{domain_suffixes, relation_ids, supernet_addresses};
use herd_model::{
    AttributeType, CompiledQuery, IpAddrType, MatchContext, Matcher, Number, Object, ObjectId,
    Restrict, Schema, Value, SPECIAL_ATTRIBUTES,
};
use ipnet::IpNet;
use regex::Regex;

/// One object as stored: relations hold `Number(object_id)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Obj {
    pub id: ObjectId,
    pub hostname: String,
    pub servertype: Arc<str>,
    /// `Null` or `Inet`.
    pub intern_ip: Value,
    /// Stored (not computed) attributes with a value; multi ones as `Set`.
    pub attrs: BTreeMap<Arc<str>, Value>,
}

type Index = BTreeMap<Value, BTreeSet<ObjectId>>;

static NO_IDS: BTreeSet<ObjectId> = BTreeSet::new();

/// An attribute of one servertype.
#[derive(Debug)]
pub struct AttributeInfo {
    /// `related_via_attribute`.
    pub via: Option<String>,
    pub attribute_type: AttributeType,
    pub multi: bool,
}

/// Per-servertype facts derived from the schema.
#[derive(Debug, Default)]
pub struct ServertypeInfo {
    pub ip_addr_type: IpAddrType,
    /// Attribute id → what reading it needs (saves a schema lookup per
    /// value on the query path).
    pub attributes: HashMap<String, AttributeInfo>,
    /// Attribute ids in schema order.
    pub order: Vec<String>,
}

pub struct Dataset {
    pub schema: Schema,
    pub servertypes: HashMap<String, ServertypeInfo>,
    /// Compiled attribute `regexp`s.
    pub regexes: HashMap<String, Regex>,
    /// Attributes that some servertype takes from a related object: their
    /// stored index does not cover every object.
    pub related_via_targets: HashSet<String>,
    pub attr_keys: HashMap<String, Arc<str>>,
    /// By id; a hash map, as lookups by id dominate result building.
    pub objects: HashMap<ObjectId, Obj>,
    pub hostnames: HashMap<String, ObjectId>,
    /// Keyed by `hostname`, `servertype`, `intern_ip` and stored attribute ids.
    pub indexes: HashMap<String, Index>,
    pub next_id: ObjectId,
}

/// Join and related-via chains stop here.
const MAX_RELATION_DEPTH: usize = 8;

impl Dataset {
    pub fn new(schema: Schema, objects: BTreeMap<ObjectId, Obj>) -> Result<Dataset, String> {
        let mut d = Dataset {
            schema: Schema::default(),
            servertypes: HashMap::new(),
            regexes: HashMap::new(),
            related_via_targets: HashSet::new(),
            attr_keys: HashMap::new(),
            next_id: objects.keys().next_back().map_or(1, |id| id + 1),
            objects: HashMap::with_capacity(objects.len()),
            hostnames: HashMap::new(),
            indexes: HashMap::new(),
        };
        d.set_schema(schema)?;
        for obj in objects.into_values() {
            d.insert(obj);
        }
        Ok(d)
    }

    /// Replaces the schema and everything derived from it.
    pub fn set_schema(&mut self, schema: Schema) -> Result<(), String> {
        let mut regexes = HashMap::new();
        for a in schema.attributes.values() {
            if let Some(re) = herd_model::validate::attribute_regex(a)
                .map_err(|e| format!("attribute {}: {}", a.attribute_id, e.message))?
            {
                regexes.insert(a.attribute_id.clone(), re);
            }
            self.attr_keys
                .entry(a.attribute_id.clone())
                .or_insert_with_key(|k| k.as_str().into());
        }
        let mut servertypes = HashMap::new();
        let mut related_via_targets = HashSet::new();
        for s in schema.servertypes.values() {
            let mut info = ServertypeInfo {
                ip_addr_type: s.ip_addr_type,
                ..ServertypeInfo::default()
            };
            for a in &s.attributes {
                if a.related_via_attribute.is_some() {
                    related_via_targets.insert(a.attribute_id.clone());
                }
                let Some(def) = schema.attributes.get(&a.attribute_id) else {
                    return Err(format!(
                        "servertype {} lists unknown attribute {}",
                        s.servertype_id, a.attribute_id
                    ));
                };
                info.attributes.insert(
                    a.attribute_id.clone(),
                    AttributeInfo {
                        via: a.related_via_attribute.clone(),
                        attribute_type: def.attribute_type,
                        multi: def.is_multi(),
                    },
                );
                info.order.push(a.attribute_id.clone());
            }
            servertypes.insert(s.servertype_id.clone(), info);
        }
        self.schema = schema;
        self.regexes = regexes;
        self.servertypes = servertypes;
        self.related_via_targets = related_via_targets;
        Ok(())
    }

    pub fn key(&self, attribute: &str) -> Arc<str> {
        self.attr_keys
            .get(attribute)
            .cloned()
            .unwrap_or_else(|| attribute.into())
    }

    fn index_entries(obj: &Obj) -> impl Iterator<Item = (&str, Cow<'_, Value>)> {
        let fixed = [
            ("hostname", Cow::Owned(Value::String(obj.hostname.clone()))),
            (
                "servertype",
                Cow::Owned(Value::String(obj.servertype.to_string())),
            ),
            ("intern_ip", Cow::Borrowed(&obj.intern_ip)),
        ];
        let attrs = obj.attrs.iter().flat_map(|(k, v)| {
            let items: Vec<&Value> = match v {
                Value::Set(items) => items.iter().collect(),
                single => vec![single],
            };
            items.into_iter().map(move |i| (&**k, Cow::Borrowed(i)))
        });
        fixed.into_iter().chain(attrs).filter(|(_, v)| !v.is_null())
    }

    /// Adds an object (new or replacing one removed before).
    pub fn insert(&mut self, obj: Obj) {
        for (attr, value) in Self::index_entries(&obj) {
            let index = match self.indexes.get_mut(attr) {
                Some(index) => index,
                None => self.indexes.entry(attr.to_owned()).or_default(),
            };
            match index.get_mut(&*value) {
                Some(ids) => {
                    ids.insert(obj.id);
                }
                None => {
                    index.insert(value.into_owned(), BTreeSet::from([obj.id]));
                }
            }
        }
        self.hostnames.insert(obj.hostname.clone(), obj.id);
        self.next_id = self.next_id.max(obj.id + 1);
        self.objects.insert(obj.id, obj);
    }

    pub fn remove(&mut self, id: ObjectId) -> Option<Obj> {
        let obj = self.objects.remove(&id)?;
        for (attr, value) in Self::index_entries(&obj) {
            if let Some(index) = self.indexes.get_mut(attr) {
                if let Some(ids) = index.get_mut(&*value) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        index.remove(&*value);
                    }
                }
            }
        }
        if self.hostnames.get(&obj.hostname) == Some(&id) {
            self.hostnames.remove(&obj.hostname);
        }
        Some(obj)
    }

    /// Ids whose indexed `attribute` equals `value` exactly.
    pub fn lookup(&self, attribute: &str, value: &Value) -> &BTreeSet<ObjectId> {
        self.indexes
            .get(attribute)
            .and_then(|i| i.get(value))
            .unwrap_or(&NO_IDS)
    }

    /// The value of any attribute of an object as queries see it
    /// (relations as hostnames, computed attributes computed); `None` if
    /// the object's servertype does not have the attribute.
    pub fn view<'a>(&'a self, obj: &'a Obj, attribute: &str) -> Option<Cow<'a, Value>> {
        self.view_at(obj, attribute, 0)
    }

    fn view_at<'a>(
        &'a self,
        obj: &'a Obj,
        attribute: &str,
        depth: usize,
    ) -> Option<Cow<'a, Value>> {
        match attribute {
            "object_id" => return Some(Cow::Owned(Value::number(obj.id))),
            "hostname" => return Some(Cow::Owned(Value::String(obj.hostname.clone()))),
            "servertype" => return Some(Cow::Owned(Value::String(obj.servertype.to_string()))),
            "intern_ip" => return Some(Cow::Borrowed(&obj.intern_ip)),
            _ => {}
        }
        let def = self
            .servertypes
            .get(&*obj.servertype)?
            .attributes
            .get(attribute)?;
        let empty = || {
            Cow::Owned(if def.multi {
                Value::Set(Vec::new())
            } else {
                Value::Null
            })
        };
        if let Some(via) = &def.via {
            if depth >= MAX_RELATION_DEPTH {
                return Some(empty());
            }
            let related = self.related_ids(obj, via, depth + 1);
            return Some(
                related
                    .first()
                    .and_then(|id| self.objects.get(id))
                    .and_then(|o| self.view_at(o, attribute, depth + 1))
                    .unwrap_or_else(empty),
            );
        }
        Some(match def.attribute_type {
            AttributeType::Relation
            | AttributeType::Reverse
            | AttributeType::Supernet
            | AttributeType::Domain => {
                let names: Vec<Value> = self
                    .related_ids(obj, attribute, depth)
                    .iter()
                    .filter_map(|id| self.objects.get(id))
                    .map(|o| Value::String(o.hostname.clone()))
                    .collect();
                if def.multi {
                    Cow::Owned(Value::set(names))
                } else {
                    Cow::Owned(names.into_iter().next().unwrap_or(Value::Null))
                }
            }
            _ => obj.attrs.get(attribute).map_or_else(empty, Cow::Borrowed),
        })
    }

    /// The objects a relation-like attribute points at.
    pub fn related_ids(&self, obj: &Obj, attribute: &str, depth: usize) -> Vec<ObjectId> {
        let Some(def) = self.schema.attributes.get(attribute) else {
            return Vec::new();
        };
        if depth > MAX_RELATION_DEPTH {
            return Vec::new();
        }
        match def.attribute_type {
            AttributeType::Relation => relation_ids(obj.attrs.get(attribute)),
            AttributeType::Reverse => match &def.reversed_attribute {
                Some(rel) => self
                    .lookup(rel, &Value::number(obj.id))
                    .iter()
                    .copied()
                    .collect(),
                None => Vec::new(),
            },
            AttributeType::Supernet => {
                let target = def.target_servertype.as_deref();
                let attrs = obj.attrs.iter().map(|(k, v)| (&**k, v));
                supernet_addresses(&self.schema, def, &obj.intern_ip, attrs)
                    .iter()
                    .find_map(|n| self.network_containing(n, target, obj.id))
                    .into_iter()
                    .collect()
            }
            AttributeType::Domain => {
                let target = def.target_servertype.as_deref();
                domain_suffixes(&obj.hostname)
                    .filter_map(|suffix| self.hostnames.get(suffix))
                    .find(|id| target.is_none_or(|t| *self.objects[id].servertype == *t))
                    .map(|id| vec![*id])
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// The smallest network object (of `servertype`, if given) whose
    /// `intern_ip` contains `net`, other than object `except`.
    pub fn network_containing(
        &self,
        net: &IpNet,
        servertype: Option<&str>,
        except: ObjectId,
    ) -> Option<ObjectId> {
        (0..=net.prefix_len()).rev().find_map(|p| {
            let candidate = IpNet::new(net.addr(), p).ok()?.trunc();
            self.lookup("intern_ip", &Value::Inet(candidate))
                .iter()
                .copied()
                .find(|id| {
                    *id != except
                        && self.objects.get(id).is_some_and(|o| {
                            servertype.is_none_or(|s| *o.servertype == *s)
                                && self.is_network_type(&o.servertype)
                        })
                })
        })
    }

    pub fn is_network_type(&self, servertype: &str) -> bool {
        self.servertypes
            .get(servertype)
            .is_some_and(|s| s.ip_addr_type == IpAddrType::Network)
    }

    fn indexable(&self, attribute: &str) -> bool {
        match attribute {
            "hostname" | "servertype" | "intern_ip" => true,
            "object_id" => false,
            a => {
                !self.related_via_targets.contains(a)
                    && self
                        .schema
                        .attribute_type(a)
                        .is_some_and(|t| !t.is_computed())
            }
        }
    }

    /// The index key for a typed filter literal (relations: the object id).
    fn index_key(&self, attribute: &str, value: &Value) -> Option<Value> {
        if self.schema.attribute_type(attribute) == Some(AttributeType::Relation) {
            let Value::String(h) = value else { return None };
            return Some(Value::number(*self.hostnames.get(h)?));
        }
        Some(value.clone())
    }

    /// Ids the index yields for a matcher: `None` if it can not use the
    /// index, `Some(Err(()))` if there are more than `cap`.
    fn scan(&self, attribute: &str, m: &Matcher, cap: usize) -> Option<Result<Vec<ObjectId>, ()>> {
        if attribute == "object_id" {
            return match m {
                Matcher::Equals(Value::Number(n)) => Some(Ok(n
                    .as_i64()
                    .filter(|id| self.objects.contains_key(id))
                    .into_iter()
                    .collect())),
                _ => None,
            };
        }
        if !self.indexable(attribute) {
            return None;
        }
        let index = self.indexes.get(attribute);
        let empty = Index::new();
        let index = index.unwrap_or(&empty);
        let collect = |range: &mut dyn Iterator<Item = (&Value, &BTreeSet<ObjectId>)>| {
            let mut out = Vec::new();
            for (_, ids) in range {
                out.extend(ids.iter().copied());
                if out.len() > cap {
                    return Err(());
                }
            }
            Ok(out)
        };
        let ty = self.schema.attribute_type(attribute)?;
        match m {
            Matcher::Equals(Value::Set(_)) => None,
            Matcher::Equals(v) => {
                let ids = self
                    .index_key(attribute, v)
                    .and_then(|k| index.get(&k))
                    .unwrap_or(&NO_IDS);
                Some(if ids.len() > cap {
                    Err(())
                } else {
                    Ok(ids.iter().copied().collect())
                })
            }
            Matcher::Any(items) => {
                let mut out = Vec::new();
                for item in items {
                    match self.scan(attribute, item, cap.saturating_sub(out.len()))? {
                        Ok(ids) => out.extend(ids),
                        Err(()) => return Some(Err(())),
                    }
                }
                Some(Ok(out))
            }
            Matcher::All(items) => {
                let mut best: Option<Result<Vec<ObjectId>, ()>> = None;
                let mut cap = cap;
                for item in items {
                    if let Some(Ok(ids)) = self.scan(attribute, item, cap) {
                        cap = ids.len();
                        best = Some(Ok(ids));
                    } else if best.is_none() && self.scan(attribute, item, cap).is_some() {
                        best = Some(Err(()));
                    }
                }
                best
            }
            Matcher::Regexp(_) | Matcher::StartsWith(_) if matches!(ty, AttributeType::String) => {
                let prefix = m.literal_prefix()?;
                let start = Value::String(prefix.clone());
                let mut range = index
                    .range((Bound::Included(&start), Bound::Unbounded))
                    .take_while(|(k, _)| matches!(k, Value::String(s) if s.starts_with(&prefix)));
                Some(collect(&mut range))
            }
            Matcher::Compare(op, v) if ty != AttributeType::Relation => {
                let bounds = match op {
                    Comparison::GreaterThan => (Bound::Excluded(v), Bound::Unbounded),
                    Comparison::GreaterThanOrEquals => (Bound::Included(v), Bound::Unbounded),
                    Comparison::LessThan => (Bound::Unbounded, Bound::Excluded(v)),
                    Comparison::LessThanOrEquals => (Bound::Unbounded, Bound::Included(v)),
                };
                let mut range = index.range::<Value, _>(bounds);
                Some(collect(&mut range))
            }
            Matcher::ContainedByNet(net) | Matcher::ContainedOnlyBy(net) => {
                let lo = Value::Inet(IpNet::new(net.network(), 0).ok()?);
                let hi = Value::Inet(IpNet::new(net.broadcast(), net.max_prefix_len()).ok()?);
                let mut range = index.range(lo..=hi);
                Some(collect(&mut range))
            }
            _ => None,
        }
    }

    /// Runs a compiled query.
    pub fn query(&self, q: &CompiledQuery) -> Vec<Object> {
        self.matching(q)
            .into_iter()
            .map(|o| self.render(o, q.restrict.as_deref(), 0))
            .collect()
    }

    /// Runs a compiled query and writes the answer as a JSON array: the
    /// bytes `serde_json` makes of [`Dataset::query`]'s objects, without
    /// building them. Which fields an object gets, in which order and read
    /// how, is decided once per servertype ([`Layout`]); each value is
    /// then written from where it is stored.
    pub fn query_json(&self, q: &CompiledQuery) -> Vec<u8> {
        let found = self.matching(q);
        let mut out = Vec::with_capacity(64 + found.len() * 160);
        let mut layouts = Layouts::default();
        out.push(b'[');
        for (i, o) in found.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.write_object(o, q.restrict.as_deref(), 0, &mut layouts, &mut out);
        }
        out.push(b']');
        out
    }

    /// The objects a compiled query selects, in answer order.
    fn matching(&self, q: &CompiledQuery) -> Vec<&Obj> {
        let mut best: Option<Vec<ObjectId>> = None;
        // Cheap exact-match filters first, so later scans have a small cap.
        let mut order: Vec<&(String, Matcher)> = q.filters.iter().collect();
        order.sort_by_key(|(_, m)| !matches!(m, Matcher::Equals(_)));
        for (attribute, m) in order {
            let cap = best
                .as_ref()
                .map_or(usize::MAX, |b| b.len().saturating_sub(1));
            if let Some(Ok(ids)) = self.scan(attribute, m, cap) {
                best = Some(ids);
            }
        }
        let matches = |obj: &Obj| {
            q.filters.iter().all(|(attribute, m)| {
                self.view(obj, attribute)
                    .is_some_and(|v| m.matches(&v, self))
            })
        };
        let mut found: Vec<&Obj> = match best {
            Some(mut ids) => {
                ids.sort_unstable();
                ids.dedup();
                ids.iter()
                    .filter_map(|id| self.objects.get(id))
                    .filter(|o| matches(o))
                    .collect()
            }
            None => {
                let mut all: Vec<&Obj> = self.objects.values().filter(|o| matches(o)).collect();
                all.sort_unstable_by_key(|o| o.id);
                all
            }
        };
        if !q.order_by.is_empty() {
            found.sort_by_cached_key(|o| {
                q.order_by
                    .iter()
                    .map(|a| self.view(o, a).map(Cow::into_owned).unwrap_or(Value::Null))
                    .collect::<Vec<_>>()
            });
        }
        found
    }

    /// Which fields objects of `servertype` get for `restrict`, as
    /// [`Dataset::render`] fills its map: a later entry for the same
    /// attribute wins, attributes the servertype lacks are left out, keys
    /// in byte order.
    fn layout<'q>(&self, servertype: &str, restrict: Option<&'q [Restrict]>) -> Layout<'q> {
        let info = self.servertypes.get(servertype);
        let mut fields: Vec<(String, Slot<'q>)> = Vec::with_capacity(8);
        let mut add = |name: &str, related: Option<&'q [Restrict]>| {
            let special = SPECIAL_ATTRIBUTES.contains(&name);
            let known = special || info.is_some_and(|i| i.attributes.contains_key(name));
            let slot = match (name, related) {
                _ if !known => return,
                (_, Some(restrict)) => Slot::Related(restrict),
                ("object_id", None) => Slot::ObjectId,
                ("hostname", None) => Slot::Hostname,
                ("servertype", None) => Slot::Servertype,
                ("intern_ip", None) => Slot::InternIp,
                _ => match info.and_then(|i| i.attributes.get(name)) {
                    None => return,
                    Some(def) if def.via.is_some() || def.attribute_type.is_computed() => {
                        Slot::Viewed
                    }
                    Some(def) if def.attribute_type == AttributeType::Relation => Slot::Viewed,
                    Some(def) => Slot::Stored { multi: def.multi },
                },
            };
            fields.push((name.to_owned(), slot));
        };
        add("object_id", None);
        match restrict {
            None => {
                for a in ["hostname", "servertype", "intern_ip"] {
                    add(a, None);
                }
                for a in info.map(|i| i.order.as_slice()).unwrap_or_default() {
                    add(a, None);
                }
            }
            Some(restrict) => {
                for r in restrict {
                    match r {
                        Restrict::Attribute(a) => add(a, None),
                        Restrict::Related {
                            attribute,
                            restrict,
                        } => add(attribute, Some(restrict)),
                    }
                }
            }
        }
        // Stable: among equal keys the last pushed is the one a map keeps.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(String, Slot<'q>)> = Vec::with_capacity(fields.len());
        for field in fields {
            match kept.last_mut() {
                Some(last) if last.0 == field.0 => *last = field,
                _ => kept.push(field),
            }
        }
        Layout {
            servertype: servertype.to_owned(),
            restrict: restrict.map(|r| r.as_ptr()),
            fields: kept
                .into_iter()
                .enumerate()
                .map(|(i, (name, slot))| {
                    let mut key = Vec::with_capacity(name.len() + 4);
                    if i > 0 {
                        key.push(b',');
                    }
                    herd_model::value::write_json_str(&mut key, &name);
                    key.push(b':');
                    (key, name, slot)
                })
                .collect(),
        }
    }

    /// Writes one object as [`Dataset::render`] would return it, serialized.
    fn write_object<'q>(
        &self,
        obj: &Obj,
        restrict: Option<&'q [Restrict]>,
        depth: usize,
        layouts: &mut Layouts<'q>,
        out: &mut Vec<u8>,
    ) {
        let at = layouts.find(&obj.servertype, restrict).unwrap_or_else(|| {
            layouts
                .0
                .push(std::rc::Rc::new(self.layout(&obj.servertype, restrict)));
            layouts.0.len() - 1
        });
        let layout = std::rc::Rc::clone(&layouts.0[at]);
        out.push(b'{');
        for (key, name, slot) in &layout.fields {
            out.extend_from_slice(key);
            match slot {
                Slot::ObjectId => Value::number(obj.id).write_json(out),
                Slot::Hostname => herd_model::value::write_json_str(out, &obj.hostname),
                Slot::Servertype => herd_model::value::write_json_str(out, &obj.servertype),
                Slot::InternIp => obj.intern_ip.write_json(out),
                Slot::Stored { multi } => match obj.attrs.get(name.as_str()) {
                    Some(v) => v.write_json(out),
                    None if *multi => out.extend_from_slice(b"[]"),
                    None => out.extend_from_slice(b"null"),
                },
                Slot::Viewed => match self.view(obj, name) {
                    Some(v) => v.write_json(out),
                    None => out.extend_from_slice(b"null"),
                },
                Slot::Related(restrict) => {
                    self.write_related(obj, name, restrict, depth, layouts, out)
                }
            }
        }
        out.push(b'}');
    }

    /// Writes a relation joined by `restrict`, as [`Dataset::render`]
    /// builds it.
    fn write_related<'q>(
        &self,
        obj: &Obj,
        attribute: &str,
        restrict: &'q [Restrict],
        depth: usize,
        layouts: &mut Layouts<'q>,
        out: &mut Vec<u8>,
    ) {
        if depth >= MAX_RELATION_DEPTH || self.schema.is_multi(attribute) {
            // Multi joins are sorted as values: build them as render does.
            self.related_value(obj, attribute, restrict, depth)
                .write_json(out);
            return;
        }
        match self
            .related_ids(obj, attribute, 0)
            .first()
            .and_then(|id| self.objects.get(id))
        {
            Some(o) => self.write_object(o, Some(restrict), depth + 1, layouts, out),
            None => out.extend_from_slice(b"null"),
        }
    }

    /// A relation joined by `restrict`, as a value.
    fn related_value(
        &self,
        obj: &Obj,
        attribute: &str,
        restrict: &[Restrict],
        depth: usize,
    ) -> Value {
        let related: Vec<Value> = if depth >= MAX_RELATION_DEPTH {
            Vec::new()
        } else {
            self.related_ids(obj, attribute, 0)
                .iter()
                .filter_map(|id| self.objects.get(id))
                .map(|o| Value::Object(Box::new(self.render(o, Some(restrict), depth + 1))))
                .collect()
        };
        if self.schema.is_multi(attribute) {
            Value::set(related)
        } else {
            related.into_iter().next().unwrap_or(Value::Null)
        }
    }

    /// An object as a query returns it.
    pub fn render(&self, obj: &Obj, restrict: Option<&[Restrict]>, depth: usize) -> Object {
        let mut fields = BTreeMap::new();
        fields.insert("object_id".to_owned(), Value::number(obj.id));
        let Some(restrict) = restrict else {
            for a in ["hostname", "servertype", "intern_ip"] {
                if let Some(v) = self.view(obj, a) {
                    fields.insert(a.to_owned(), v.into_owned());
                }
            }
            if let Some(info) = self.servertypes.get(&*obj.servertype) {
                for a in &info.order {
                    if let Some(v) = self.view(obj, a) {
                        fields.insert(a.clone(), v.into_owned());
                    }
                }
            }
            return Object { fields };
        };
        for r in restrict {
            match r {
                Restrict::Attribute(a) => {
                    if let Some(v) = self.view(obj, a) {
                        fields.insert(a.clone(), v.into_owned());
                    }
                }
                Restrict::Related {
                    attribute,
                    restrict,
                } => {
                    if self.view(obj, attribute).is_none() {
                        continue;
                    }
                    let value = self.related_value(obj, attribute, restrict, depth);
                    fields.insert(attribute.clone(), value);
                }
            }
        }
        Object { fields }
    }
}

impl MatchContext for Dataset {
    fn network_between(&self, inner: &IpNet, outer: &IpNet) -> bool {
        if inner.addr().is_ipv4() != outer.addr().is_ipv4() {
            return false;
        }
        (outer.prefix_len() + 1..inner.prefix_len()).any(|p| {
            IpNet::new(inner.addr(), p).is_ok_and(|n| {
                self.lookup("intern_ip", &Value::Inet(n.trunc()))
                    .iter()
                    .any(|id| {
                        self.objects
                            .get(id)
                            .is_some_and(|o| self.is_network_type(&o.servertype))
                    })
            })
        })
    }
}

/// How one field of an answer object is read, decided once per
/// servertype and restrict.
enum Slot<'q> {
    ObjectId,
    Hostname,
    Servertype,
    InternIp,
    /// Stored on the object (absent: null, or `[]` if multi).
    Stored {
        multi: bool,
    },
    /// Computed, a relation (written as hostnames) or taken from a related
    /// object: read with [`Dataset::view`].
    Viewed,
    /// A relation joined with these attributes of the related object.
    Related(&'q [Restrict]),
}

/// The fields objects of one servertype get for one restrict: each with its
/// key already written (`,"key":`).
struct Layout<'q> {
    servertype: String,
    restrict: Option<*const Restrict>,
    fields: Vec<(Vec<u8>, String, Slot<'q>)>,
}

/// The layouts one answer has needed so far (a handful: one per
/// servertype and joined restrict).
#[derive(Default)]
struct Layouts<'q>(Vec<std::rc::Rc<Layout<'q>>>);

impl Layouts<'_> {
    fn find(&self, servertype: &str, restrict: Option<&[Restrict]>) -> Option<usize> {
        let restrict = restrict.map(|r| r.as_ptr());
        self.0
            .iter()
            .position(|l| l.restrict == restrict && l.servertype == servertype)
    }
}

pub fn as_id(v: &Value) -> Option<ObjectId> {
    match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

pub fn id_value(id: ObjectId) -> Value {
    Value::Number(Number::from_i64(id))
}
