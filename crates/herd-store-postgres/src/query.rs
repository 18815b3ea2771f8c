//! Queries: indexed SQL narrows the candidates (B-tree equality and prefix,
//! GiST `inet_ops` containment), then herd-model's matchers decide on the
//! candidates' values, so every filter means exactly what it means on the
//! other engines.
//!
//! A query runs in one `REPEATABLE READ READ ONLY` transaction: it sees one
//! snapshot, whatever other servers commit meanwhile.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use herd_model::compile::Comparison;
use herd_model::relations::{domain_suffixes, relation_ids, supernet_addresses};
use herd_model::value::parse_inet;
use herd_model::{
    AttributeType, CompiledQuery, MatchContext, Matcher, Object, ObjectId, Restrict, Schema, Value,
};
use ipnet::IpNet;
use postgres::types::ToSql;
use postgres::{GenericClient, Row, SimpleQueryMessage};
use regex::Regex;

use crate::pool::Statements;
use crate::sql::decode;
use crate::{internal, StoreError};

/// A `REPEATABLE READ READ ONLY` transaction on a plain connection, begun
/// together with reading the schema version (one round trip where
/// `build_transaction` and a query take three); rolled back on drop unless
/// committed, so a connection never goes back to the pool inside it.
pub(crate) struct ReadTx<'a> {
    client: &'a mut postgres::Client,
    pub schema_version: i64,
    open: bool,
}

impl<'a> ReadTx<'a> {
    pub fn begin(client: &'a mut postgres::Client) -> Result<ReadTx<'a>, StoreError> {
        // The guard first: whatever fails below, the drop rolls back.
        let mut tx = ReadTx {
            client,
            schema_version: 0,
            open: true,
        };
        let messages = tx
            .client
            .simple_query(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
                 SELECT version FROM schema_version",
            )
            .map_err(internal)?;
        let version = messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse::<i64>().ok()),
            _ => None,
        });
        tx.schema_version = version.ok_or_else(|| {
            StoreError::Internal(
                "the schema_version table has no row: the database was not set up by herd".into(),
            )
        })?;
        Ok(tx)
    }

    pub fn client(&mut self) -> &mut postgres::Client {
        self.client
    }

    pub fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        self.client.batch_execute("COMMIT").map_err(internal)
    }
}

impl Drop for ReadTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A broken connection is dropped by the pool; nothing to do.
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

/// Decodes a row of [`OBJECT_COLUMNS`] (from `first` on); values of
/// attributes `schema` does not know are skipped.
pub(crate) fn decode_object(schema: &Schema, r: &Row, first: usize) -> Result<Obj, StoreError> {
    let id: ObjectId = r.get(first);
    let ip: Option<&str> = r.get(first + 3);
    let intern_ip =
        match ip {
            None => Value::Null,
            Some(t) => Value::Inet(parse_inet(t).ok_or_else(|| {
                StoreError::Internal(format!("object {id}: stored intern_ip {t:?}"))
            })?),
        };
    let mut attrs = BTreeMap::new();
    let ids: Option<Vec<&str>> = r.get(first + 4);
    let vals: Option<Vec<&str>> = r.get(first + 5);
    for (attribute_id, text) in ids
        .unwrap_or_default()
        .into_iter()
        .zip(vals.unwrap_or_default())
    {
        let Some(def) = schema.attribute(attribute_id) else {
            continue;
        };
        let value = decode(def.attribute_type, text).map_err(|m| {
            StoreError::Internal(format!("object {id}, attribute {attribute_id}: {m}"))
        })?;
        if def.is_multi() {
            match attrs
                .entry(attribute_id.to_owned())
                .or_insert_with(|| Value::Set(Vec::new()))
            {
                Value::Set(items) => items.push(value),
                other => *other = Value::Set(vec![value]),
            }
        } else {
            attrs.insert(attribute_id.to_owned(), value);
        }
    }
    for v in attrs.values_mut() {
        if let Value::Set(items) = v {
            items.sort();
            items.dedup();
        }
    }
    Ok(Obj {
        id,
        hostname: r.get(first + 1),
        servertype: r.get(first + 2),
        intern_ip,
        attrs,
    })
}

/// Join and related-via chains stop here (as on the SQLite engine).
const MAX_RELATION_DEPTH: usize = 8;

/// The schema plus facts derived from it; cached per schema version.
pub(crate) struct Catalog {
    pub schema: Schema,
    /// Servertype → attribute id → `related_via_attribute`.
    pub servertypes: HashMap<String, HashMap<String, Option<String>>>,
    /// Attributes some servertype takes from a related object.
    pub related_via_targets: HashSet<String>,
    pub regexes: HashMap<String, Regex>,
}

impl Catalog {
    pub fn new(schema: Schema) -> Result<Catalog, StoreError> {
        let mut regexes = HashMap::new();
        for a in schema.attributes.values() {
            let re = herd_model::validate::attribute_regex(a).map_err(|e| {
                StoreError::Internal(format!("attribute {}: {}", a.attribute_id, e.message))
            })?;
            if let Some(re) = re {
                regexes.insert(a.attribute_id.clone(), re);
            }
        }
        let mut servertypes = HashMap::new();
        let mut related_via_targets = HashSet::new();
        for s in schema.servertypes.values() {
            let mut attrs = HashMap::new();
            for a in &s.attributes {
                if a.related_via_attribute.is_some() {
                    related_via_targets.insert(a.attribute_id.clone());
                }
                attrs.insert(a.attribute_id.clone(), a.related_via_attribute.clone());
            }
            servertypes.insert(s.servertype_id.clone(), attrs);
        }
        Ok(Catalog {
            schema,
            servertypes,
            related_via_targets,
            regexes,
        })
    }
}

/// One object as stored: relations hold `Number(object_id)`, multi
/// attributes a `Set`; attributes without a value are absent.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Obj {
    pub id: ObjectId,
    pub hostname: String,
    pub servertype: String,
    /// `Null` or `Inet`.
    pub intern_ip: Value,
    pub attrs: BTreeMap<String, Value>,
}

/// Reads objects of one transaction on demand, each once.
pub(crate) struct Snapshot<'a, C: GenericClient> {
    client: RefCell<&'a mut C>,
    /// The connection's prepared statements, when the caller has them.
    statements: Option<RefCell<&'a mut Statements>>,
    pub catalog: &'a Catalog,
    cache: RefCell<HashMap<ObjectId, Option<Rc<Obj>>>>,
    /// The stored attributes loaded with each object: all (`None`), or
    /// only those the query looks at (set by [`Snapshot::query`]).
    only: RefCell<Option<Vec<String>>>,
    /// The first database error met where it can not be returned at once
    /// (inside a matcher's context).
    error: RefCell<Option<StoreError>>,
}

/// The columns every object load returns: the `server` row, then its
/// attribute rows aggregated into two parallel arrays (one row per object,
/// not one per value).
pub(crate) const OBJECT_COLUMNS: &str =
    "s.object_id, s.hostname, s.servertype_id, s.intern_ip::text, x.ids, x.vals";

/// The lateral join that aggregates an object's attribute rows; with
/// `only`, restricted to the attributes in parameter `only`.
pub(crate) fn attributes_join(only: Option<&str>) -> String {
    let cond = only.map_or(String::new(), |p| format!(" AND a.attribute_id = ANY({p})"));
    format!(
        "LEFT JOIN LATERAL (SELECT array_agg(a.attribute_id) AS ids, array_agg(a.value) AS vals
                            FROM server_attribute a WHERE a.object_id = s.object_id{cond}) x ON true"
    )
}

impl<'a, C: GenericClient> Snapshot<'a, C> {
    /// A snapshot that prepares its statements afresh (unnamed).
    pub fn new(client: &'a mut C, catalog: &'a Catalog) -> Snapshot<'a, C> {
        Snapshot {
            client: RefCell::new(client),
            statements: None,
            catalog,
            cache: RefCell::new(HashMap::new()),
            only: RefCell::new(None),
            error: RefCell::new(None),
        }
    }

    /// A snapshot that uses (and fills) the connection's statement cache.
    pub fn with_statements(
        client: &'a mut C,
        statements: &'a mut Statements,
        catalog: &'a Catalog,
    ) -> Snapshot<'a, C> {
        Snapshot {
            statements: Some(RefCell::new(statements)),
            ..Snapshot::new(client, catalog)
        }
    }

    fn note(&self, e: StoreError) {
        self.error.borrow_mut().get_or_insert(e);
    }

    pub fn take_error(&self) -> Result<(), StoreError> {
        match self.error.borrow_mut().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs a statement, prepared through the cache when there is one.
    fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let mut client = self.client.borrow_mut();
        let result = match &self.statements {
            Some(cache) => {
                let mut cache = cache.borrow_mut();
                match cache.get(&mut **client, sql) {
                    Ok(statement) => client.query(&statement, params),
                    Err(e) => Err(e),
                }
                .inspect_err(|_| cache.clear())
            }
            None => client.query(sql, params),
        };
        result.map_err(internal)
    }

    /// Decodes a row of [`OBJECT_COLUMNS`] (from `first` on).
    fn object(&self, r: &Row, first: usize) -> Result<Obj, StoreError> {
        decode_object(&self.catalog.schema, r, first)
    }

    /// Loads the objects not yet cached (one round trip); unknown ids are
    /// cached as absent.
    pub fn load(&self, ids: &[ObjectId]) -> Result<(), StoreError> {
        let missing: Vec<ObjectId> = {
            let cache = self.cache.borrow();
            let mut m: Vec<ObjectId> = ids
                .iter()
                .copied()
                .filter(|id| !cache.contains_key(id))
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        if missing.is_empty() {
            return Ok(());
        }
        let only = self.only.borrow().clone();
        let rows = match &only {
            Some(only) => self.rows(
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM server s {} WHERE s.object_id = ANY($1)",
                    attributes_join(Some("$2"))
                ),
                &[&missing, only],
            )?,
            None => self.rows(
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM server s {} WHERE s.object_id = ANY($1)",
                    attributes_join(None)
                ),
                &[&missing],
            )?,
        };
        let mut found: HashMap<ObjectId, Obj> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let o = self.object(r, 0)?;
            found.insert(o.id, o);
        }
        let mut cache = self.cache.borrow_mut();
        for id in missing {
            cache.insert(id, found.remove(&id).map(Rc::new));
        }
        Ok(())
    }

    /// Loads the objects the given objects' relations point at.
    pub fn load_related(&self, objects: &[Rc<Obj>]) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        for o in objects {
            for (k, v) in &o.attrs {
                if self.catalog.schema.attribute_type(k) == Some(AttributeType::Relation) {
                    match v {
                        Value::Set(items) => ids.extend(items.iter().filter_map(as_id)),
                        single => ids.extend(as_id(single)),
                    }
                }
            }
        }
        self.load(&ids)
    }

    pub fn get(&self, id: ObjectId) -> Option<Rc<Obj>> {
        if let Some(hit) = self.cache.borrow().get(&id) {
            return hit.clone();
        }
        if let Err(e) = self.load(&[id]) {
            self.note(e);
            return None;
        }
        self.cache.borrow().get(&id).cloned().flatten()
    }

    /// Runs a query returning object ids.
    pub fn ids(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<ObjectId> {
        match self.rows(sql, params) {
            Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
            Err(e) => {
                self.note(e);
                Vec::new()
            }
        }
    }

    /// The value of any attribute of an object as queries see it
    /// (relations as hostnames, computed attributes computed); `None` if
    /// the object's servertype does not have the attribute.
    pub fn view(&self, obj: &Obj, attribute: &str) -> Option<Value> {
        self.view_at(obj, attribute, 0)
    }

    fn view_at(&self, obj: &Obj, attribute: &str, depth: usize) -> Option<Value> {
        match attribute {
            "object_id" => return Some(Value::number(obj.id)),
            "hostname" => return Some(Value::String(obj.hostname.clone())),
            "servertype" => return Some(Value::String(obj.servertype.clone())),
            "intern_ip" => return Some(obj.intern_ip.clone()),
            _ => {}
        }
        let via = self
            .catalog
            .servertypes
            .get(&obj.servertype)?
            .get(attribute)?;
        let def = self.catalog.schema.attribute(attribute)?;
        let empty = || {
            if def.is_multi() {
                Value::Set(Vec::new())
            } else {
                Value::Null
            }
        };
        if let Some(via) = via {
            if depth >= MAX_RELATION_DEPTH {
                return Some(empty());
            }
            let related = self.related_ids(obj, via, depth + 1);
            return Some(
                related
                    .first()
                    .and_then(|id| self.get(*id))
                    .and_then(|o| self.view_at(&o, attribute, depth + 1))
                    .unwrap_or_else(empty),
            );
        }
        Some(if def.attribute_type.is_related() {
            let names: Vec<Value> = self
                .related_ids(obj, attribute, depth)
                .into_iter()
                .filter_map(|id| self.get(id))
                .map(|o| Value::String(o.hostname.clone()))
                .collect();
            if def.is_multi() {
                Value::set(names)
            } else {
                names.into_iter().next().unwrap_or(Value::Null)
            }
        } else {
            obj.attrs.get(attribute).cloned().unwrap_or_else(empty)
        })
    }

    /// The objects a relation-like attribute points at.
    pub fn related_ids(&self, obj: &Obj, attribute: &str, depth: usize) -> Vec<ObjectId> {
        let Some(def) = self.catalog.schema.attribute(attribute) else {
            return Vec::new();
        };
        if depth > MAX_RELATION_DEPTH {
            return Vec::new();
        }
        match def.attribute_type {
            AttributeType::Relation => relation_ids(obj.attrs.get(attribute)),
            AttributeType::Reverse => match &def.reversed_attribute {
                Some(rel) => self.ids(
                    "SELECT object_id FROM server_attribute
                     WHERE attribute_id = $1 AND value = $2 ORDER BY object_id",
                    &[rel, &obj.id.to_string()],
                ),
                None => Vec::new(),
            },
            AttributeType::Supernet => {
                let target = def.target_servertype.as_deref();
                let attrs = obj.attrs.iter().map(|(k, v)| (k.as_str(), v));
                supernet_addresses(&self.catalog.schema, def, &obj.intern_ip, attrs)
                    .iter()
                    .find_map(|n| self.network_containing(n, target, obj.id))
                    .into_iter()
                    .collect()
            }
            AttributeType::Domain => {
                let suffixes: Vec<&str> = domain_suffixes(&obj.hostname).collect();
                if suffixes.is_empty() {
                    return Vec::new();
                }
                let target = def.target_servertype.clone();
                // The longest suffix that names an object of the target type.
                self.ids(
                    "SELECT object_id FROM server
                     WHERE hostname = ANY($1) AND ($2::text IS NULL OR servertype_id = $2)
                     ORDER BY length(hostname) DESC LIMIT 1",
                    &[&suffixes, &target],
                )
            }
            _ => Vec::new(),
        }
    }

    /// The smallest network object (of `servertype`, if given) whose
    /// `intern_ip` contains `net`, other than object `except` (GiST).
    pub fn network_containing(
        &self,
        net: &IpNet,
        servertype: Option<&str>,
        except: ObjectId,
    ) -> Option<ObjectId> {
        let servertype = servertype.map(str::to_owned);
        self.ids(
            "SELECT s.object_id FROM server s JOIN servertype t USING (servertype_id)
             WHERE t.ip_addr_type = 'network' AND s.intern_ip >>= $1::text::inet
               AND s.object_id <> $2 AND ($3::text IS NULL OR s.servertype_id = $3)
             ORDER BY masklen(s.intern_ip) DESC, s.object_id LIMIT 1",
            &[&net.to_string(), &except, &servertype],
        )
        .into_iter()
        .next()
    }

    /// Runs a compiled query.
    pub fn query(&self, q: &CompiledQuery) -> Result<Vec<Object>, StoreError> {
        *self.only.borrow_mut() = self.needed_attributes(q);
        let mut objects = self.candidates(q)?;
        objects.sort_by_key(|o| o.id);
        objects.dedup_by_key(|o| o.id);
        let mut found: Vec<Rc<Obj>> = objects
            .into_iter()
            .filter(|o| {
                q.filters.iter().all(|(attribute, m)| {
                    self.view(o, attribute).is_some_and(|v| m.matches(&v, self))
                })
            })
            .collect();
        self.take_error()?;
        if !q.order_by.is_empty() {
            found.sort_by_cached_key(|o| {
                q.order_by
                    .iter()
                    .map(|a| self.view(o, a).unwrap_or(Value::Null))
                    .collect::<Vec<_>>()
            });
        }
        let out = found
            .iter()
            .map(|o| self.render(o, q.restrict.as_deref(), 0))
            .collect();
        self.take_error()?;
        Ok(out)
    }

    /// The stored attributes the query looks at (filters, order, restrict
    /// at every depth), or `None` (load all) when it returns whole objects
    /// or looks at an attribute computed from others (reverse, supernet,
    /// domain, or taken from a related object), whose inputs are not
    /// worth listing.
    fn needed_attributes(&self, q: &CompiledQuery) -> Option<Vec<String>> {
        fn walk<'q>(restrict: &'q [Restrict], out: &mut Vec<&'q str>) {
            for r in restrict {
                match r {
                    Restrict::Attribute(a) => out.push(a),
                    Restrict::Related {
                        attribute,
                        restrict,
                    } => {
                        out.push(attribute);
                        walk(restrict, out);
                    }
                }
            }
        }
        let mut names: Vec<&str> = q.filters.iter().map(|(a, _)| a.as_str()).collect();
        names.extend(q.order_by.iter().map(String::as_str));
        walk(q.restrict.as_deref()?, &mut names);
        let mut out = Vec::new();
        for a in names {
            if matches!(a, "object_id" | "hostname" | "servertype" | "intern_ip") {
                continue;
            }
            let def = self.catalog.schema.attribute(a)?;
            if def.attribute_type.is_computed() || self.catalog.related_via_targets.contains(a) {
                return None;
            }
            out.push(a.to_owned());
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    /// The objects that may match (a superset, from the indexes), loaded
    /// and cached together with the objects their relations point at, in
    /// one statement.
    fn candidates(&self, q: &CompiledQuery) -> Result<Vec<Rc<Obj>>, StoreError> {
        let mut p = Params::default();
        let conds: Vec<String> = q
            .filters
            .iter()
            .filter_map(|(attribute, m)| self.narrow(attribute, m, &mut p))
            .collect();
        let only = self.only.borrow().clone();
        // The relations whose targets the query needs: those it loads.
        let relations: Vec<String> = self
            .catalog
            .schema
            .attributes
            .values()
            .filter(|a| a.attribute_type == AttributeType::Relation)
            .map(|a| a.attribute_id.clone())
            .filter(|a| only.as_ref().is_none_or(|o| o.contains(a)))
            .collect();
        let where_ = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let attributes = attributes_join(only.is_some().then(|| p.next()).as_deref());
        if let Some(only) = only {
            p.push(only);
        }
        // The conditions name `server`'s columns unqualified; in the first
        // form only `s` has such columns (the lateral's are `ids`, `vals`).
        let sql = if relations.is_empty() {
            format!("SELECT true, {OBJECT_COLUMNS} FROM server s {attributes}{where_}")
        } else {
            let r = p.push(relations);
            format!(
                "WITH c AS MATERIALIZED (SELECT object_id FROM server{where_}),
                 r AS (SELECT a.value::bigint AS object_id FROM server_attribute a
                       WHERE a.object_id IN (SELECT object_id FROM c) AND a.attribute_id = ANY({r})
                       EXCEPT SELECT object_id FROM c),
                 o AS (SELECT object_id, true AS candidate FROM c
                       UNION ALL SELECT object_id, false FROM r)
                 SELECT o.candidate, {OBJECT_COLUMNS} FROM o JOIN server s USING (object_id) {attributes}"
            )
        };
        let params: Vec<&(dyn ToSql + Sync)> = p.values.iter().map(|b| &**b).collect();
        let rows = self.rows(&sql, &params)?;
        let mut out = Vec::new();
        let mut cache = self.cache.borrow_mut();
        for r in &rows {
            let o = Rc::new(self.object(r, 1)?);
            if r.get::<_, bool>(0) {
                out.push(o.clone());
            }
            cache.insert(o.id, Some(o));
        }
        Ok(out)
    }

    /// An SQL condition on `server` that every object matching `m` on
    /// `attribute` satisfies, if the indexes give one.
    fn narrow(&self, attribute: &str, m: &Matcher, p: &mut Params) -> Option<String> {
        let ty = self.catalog.schema.attribute_type(attribute)?;
        let stored = !matches!(
            attribute,
            "object_id" | "hostname" | "servertype" | "intern_ip"
        );
        if stored && (ty.is_computed() || self.catalog.related_via_targets.contains(attribute)) {
            return None;
        }
        let in_values = |p: &mut Params, cond: String| -> String {
            let a = p.push(attribute.to_owned());
            format!(
                "object_id IN (SELECT object_id FROM server_attribute WHERE attribute_id = {a} AND {cond})"
            )
        };
        match m {
            Matcher::Any(items) => {
                let parts: Option<Vec<String>> =
                    items.iter().map(|i| self.narrow(attribute, i, p)).collect();
                let parts = parts?;
                if parts.is_empty() {
                    return Some("false".into());
                }
                Some(format!("({})", parts.join(" OR ")))
            }
            Matcher::All(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|i| self.narrow(attribute, i, p))
                    .collect();
                (!parts.is_empty()).then(|| format!("({})", parts.join(" AND ")))
            }
            Matcher::Equals(Value::Set(_) | Value::Null) => None,
            Matcher::Equals(v) => match attribute {
                "object_id" => {
                    let id = as_id(v)?;
                    Some(format!("object_id = {}", p.push(id)))
                }
                "hostname" => Some(format!("hostname = {}", p.push(v.to_text()))),
                "servertype" => Some(format!("servertype_id = {}", p.push(v.to_text()))),
                "intern_ip" => {
                    let Value::Inet(n) = v else { return None };
                    Some(format!("intern_ip = {}::text::inet", p.push(n.to_string())))
                }
                _ if ty == AttributeType::Relation => {
                    let h = p.push(v.to_text());
                    Some(in_values(
                        p,
                        format!(
                            "value = (SELECT object_id::text FROM server WHERE hostname = {h})"
                        ),
                    ))
                }
                _ => {
                    let (text, _, _) = crate::sql::encode(v);
                    let t = p.push(text);
                    Some(in_values(p, format!("value = {t}")))
                }
            },
            Matcher::Regexp(_) | Matcher::StartsWith(_) => {
                let prefix = m.literal_prefix()?;
                let pattern = like_prefix(&prefix);
                match attribute {
                    "hostname" => Some(format!("hostname LIKE {}", p.push(pattern))),
                    _ if stored && ty == AttributeType::String => {
                        let t = p.push(pattern);
                        Some(in_values(p, format!("value LIKE {t}")))
                    }
                    _ => None,
                }
            }
            Matcher::Compare(op, Value::Number(n)) => {
                let op = match op {
                    Comparison::GreaterThan => ">",
                    Comparison::GreaterThanOrEquals => ">=",
                    Comparison::LessThan => "<",
                    Comparison::LessThanOrEquals => "<=",
                };
                match attribute {
                    "object_id" => Some(format!("object_id {op} {}", p.push(n.get()))),
                    _ if stored && ty == AttributeType::Number => {
                        let v = p.push(n.get());
                        Some(in_values(p, format!("num {op} {v}")))
                    }
                    _ => None,
                }
            }
            Matcher::ContainedByNet(net) | Matcher::ContainedOnlyBy(net) => {
                self.inet_cond(attribute, stored, ty, "<<=", net, p)
            }
            Matcher::ContainsNet(net) => self.inet_cond(attribute, stored, ty, ">>=", net, p),
            Matcher::Overlaps(net) => self.inet_cond(attribute, stored, ty, "&&", net, p),
            _ => None,
        }
    }

    fn inet_cond(
        &self,
        attribute: &str,
        stored: bool,
        ty: AttributeType,
        op: &str,
        net: &IpNet,
        p: &mut Params,
    ) -> Option<String> {
        let n = p.push(net.to_string());
        if !stored {
            return (attribute == "intern_ip").then(|| format!("intern_ip {op} {n}::text::inet"));
        }
        if ty != AttributeType::Inet {
            return None;
        }
        let a = p.push(attribute.to_owned());
        Some(format!(
            "object_id IN (SELECT object_id FROM server_attribute
                           WHERE ip IS NOT NULL AND ip {op} {n}::text::inet AND attribute_id = {a})"
        ))
    }

    /// An object as a query returns it.
    pub fn render(&self, obj: &Obj, restrict: Option<&[Restrict]>, depth: usize) -> Object {
        let mut fields = BTreeMap::new();
        fields.insert("object_id".to_owned(), Value::number(obj.id));
        let Some(restrict) = restrict else {
            for a in ["hostname", "servertype", "intern_ip"] {
                if let Some(v) = self.view(obj, a) {
                    fields.insert(a.to_owned(), v);
                }
            }
            if let Some(st) = self.catalog.schema.servertype(&obj.servertype) {
                for a in &st.attributes {
                    if let Some(v) = self.view(obj, &a.attribute_id) {
                        fields.insert(a.attribute_id.clone(), v);
                    }
                }
            }
            return Object { fields };
        };
        for r in restrict {
            match r {
                Restrict::Attribute(a) => {
                    if let Some(v) = self.view(obj, a) {
                        fields.insert(a.clone(), v);
                    }
                }
                Restrict::Related {
                    attribute,
                    restrict,
                } => {
                    if self.view(obj, attribute).is_none() {
                        continue;
                    }
                    let related: Vec<Value> = if depth >= MAX_RELATION_DEPTH {
                        Vec::new()
                    } else {
                        self.related_ids(obj, attribute, 0)
                            .into_iter()
                            .filter_map(|id| self.get(id))
                            .map(|o| {
                                Value::Object(Box::new(self.render(&o, Some(restrict), depth + 1)))
                            })
                            .collect()
                    };
                    let value = if self.catalog.schema.is_multi(attribute) {
                        Value::set(related)
                    } else {
                        related.into_iter().next().unwrap_or(Value::Null)
                    };
                    fields.insert(attribute.clone(), value);
                }
            }
        }
        Object { fields }
    }
}

impl<C: GenericClient> MatchContext for Snapshot<'_, C> {
    fn network_between(&self, inner: &IpNet, outer: &IpNet) -> bool {
        if inner.addr().is_ipv4() != outer.addr().is_ipv4() {
            return false;
        }
        !self
            .ids(
                "SELECT s.object_id FROM server s JOIN servertype t USING (servertype_id)
                 WHERE t.ip_addr_type = 'network'
                   AND s.intern_ip << $1::text::inet AND s.intern_ip >> $2::text::inet
                 LIMIT 1",
                &[&outer.to_string(), &inner.to_string()],
            )
            .is_empty()
    }
}

/// Positional parameters of a generated statement.
#[derive(Default)]
struct Params {
    values: Vec<Box<dyn ToSql + Sync>>,
}

impl Params {
    /// The placeholder the next [`Params::push`] returns.
    fn next(&self) -> String {
        format!("${}", self.values.len() + 1)
    }

    /// Adds a parameter; returns its placeholder (`$n`).
    fn push<T: ToSql + Sync + 'static>(&mut self, v: T) -> String {
        self.values.push(Box::new(v));
        format!("${}", self.values.len())
    }
}

/// A `LIKE` pattern matching strings that start with `prefix`.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub(crate) fn as_id(v: &Value) -> Option<ObjectId> {
    match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}
