//! Checking a query against the schema, and matching values (pure).
//!
//! [`compile`] turns each filter into a [`Matcher`]: literals coerced to the
//! attribute's type, regexps compiled, functions checked against the type.
//! A leaf predicate on a multi attribute holds when one of its values
//! satisfies it; `Not`, `Any`, `All` and `Empty` apply to the whole value.

use std::cmp::Ordering;

use ipnet::IpNet;
use regex::Regex;

use crate::query::{Filter, Query, Restrict};
use crate::schema::{AttributeType, Schema};
use crate::value::Value;

/// A query that passed [`compile`]: filters as matchers, per attribute.
#[derive(Clone, Debug)]
pub struct CompiledQuery {
    pub filters: Vec<(String, Matcher)>,
    pub restrict: Option<Vec<Restrict>>,
    pub order_by: Vec<String>,
}

/// Why a query does not fit the schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// The attribute concerned, if any.
    pub attribute: Option<String>,
    pub message: String,
}

fn err(attribute: &str, message: String) -> QueryError {
    QueryError {
        attribute: Some(attribute.to_owned()),
        message,
    }
}

/// A filter with typed literals and compiled regexps.
#[derive(Clone, Debug)]
pub enum Matcher {
    Equals(Value),
    Any(Vec<Matcher>),
    All(Vec<Matcher>),
    Not(Box<Matcher>),
    /// Shared with the per-thread compile cache, so its match caches are
    /// reused across queries.
    Regexp(std::sync::Arc<Regex>),
    Compare(Comparison, Value),
    Overlaps(IpNet),
    /// Inet: network contains the address/network.
    ContainsNet(IpNet),
    /// String: substring.
    ContainsText(String),
    ContainedByNet(IpNet),
    /// String: the value is a substring of this text.
    ContainedByText(String),
    ContainedOnlyBy(IpNet),
    StartsWith(String),
    Empty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    GreaterThan,
    GreaterThanOrEquals,
    LessThan,
    LessThanOrEquals,
}

impl Comparison {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Comparison::GreaterThan => ord == Ordering::Greater,
            Comparison::GreaterThanOrEquals => ord != Ordering::Less,
            Comparison::LessThan => ord == Ordering::Less,
            Comparison::LessThanOrEquals => ord != Ordering::Greater,
        }
    }
}

/// What matching needs to know beyond the value (only `ContainedOnlyBy`).
pub trait MatchContext {
    /// Is there a network object whose `intern_ip` lies strictly inside
    /// `outer` and contains `inner`?
    fn network_between(&self, inner: &IpNet, outer: &IpNet) -> bool;
}

/// A context without network objects.
pub struct NoNetworks;

impl MatchContext for NoNetworks {
    fn network_between(&self, _: &IpNet, _: &IpNet) -> bool {
        false
    }
}

/// Checks a query against the schema: attributes exist, functions apply to
/// their types, literals parse as the types, regexps compile.
pub fn compile(query: &Query, schema: &Schema) -> Result<CompiledQuery, QueryError> {
    let mut filters = Vec::with_capacity(query.filters.len());
    for (attribute, filter) in &query.filters {
        let ty = schema
            .attribute_type(attribute)
            .ok_or_else(|| unknown(attribute))?;
        filters.push((attribute.clone(), compile_filter(attribute, ty, filter)?));
    }
    if let Some(restrict) = &query.restrict {
        check_restrict(restrict, schema)?;
    }
    for attribute in &query.order_by {
        if schema.attribute_type(attribute).is_none() {
            return Err(unknown(attribute));
        }
    }
    Ok(CompiledQuery {
        filters,
        restrict: query.restrict.clone(),
        order_by: query.order_by.clone(),
    })
}

fn unknown(attribute: &str) -> QueryError {
    err(
        attribute,
        format!("unknown attribute {attribute:?}: list attributes with `herd schema attributes`"),
    )
}

fn check_restrict(restrict: &[Restrict], schema: &Schema) -> Result<(), QueryError> {
    for r in restrict {
        let id = r.attribute_id();
        let ty = schema.attribute_type(id).ok_or_else(|| unknown(id))?;
        if let Restrict::Related { restrict, .. } = r {
            if !ty.is_related() {
                return Err(err(
                    id,
                    format!(
                        "{id} is a {} attribute, only relations can be joined",
                        ty.name()
                    ),
                ));
            }
            check_restrict(restrict, schema)?;
        }
    }
    Ok(())
}

/// Compiles one filter for an attribute of type `ty`.
pub fn compile_filter(
    attribute: &str,
    ty: AttributeType,
    filter: &Filter,
) -> Result<Matcher, QueryError> {
    use AttributeType as T;
    let textual = matches!(ty, T::String) || ty.is_related();
    let typed = |v: &Value| -> Result<Value, QueryError> {
        let ty = if ty.is_related() { T::String } else { ty };
        v.coerce(ty)
            .map_err(|m| err(attribute, format!("{attribute}: {m}")))
    };
    let not_for = |f: &Filter| {
        err(
            attribute,
            format!(
                "{} does not apply to {attribute}, a {} attribute",
                f.name(),
                ty.name()
            ),
        )
    };
    let net = |f: &Filter, v: &Value| -> Result<IpNet, QueryError> {
        match typed(v)? {
            Value::Inet(n) => Ok(n),
            _ => Err(not_for(f)),
        }
    };
    let text = |v: &Value| -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_text(),
        }
    };
    Ok(match filter {
        Filter::Equals(Value::Set(items)) => {
            let items = items.iter().map(typed).collect::<Result<Vec<_>, _>>()?;
            Matcher::Equals(Value::set(items))
        }
        Filter::Equals(v) => Matcher::Equals(typed(v)?),
        Filter::Any(items) => Matcher::Any(
            items
                .iter()
                .map(|f| compile_filter(attribute, ty, f))
                .collect::<Result<_, _>>()?,
        ),
        Filter::All(items) => Matcher::All(
            items
                .iter()
                .map(|f| compile_filter(attribute, ty, f))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Not(f) => Matcher::Not(Box::new(compile_filter(attribute, ty, f)?)),
        Filter::Regexp(pattern) => Matcher::Regexp(
            cached_regex(pattern)
                .map_err(|e| err(attribute, format!("invalid regexp for {attribute}: {e}")))?,
        ),
        Filter::GreaterThan(v)
        | Filter::GreaterThanOrEquals(v)
        | Filter::LessThan(v)
        | Filter::LessThanOrEquals(v) => {
            if ty == T::Boolean {
                return Err(not_for(filter));
            }
            let op = match filter {
                Filter::GreaterThan(_) => Comparison::GreaterThan,
                Filter::GreaterThanOrEquals(_) => Comparison::GreaterThanOrEquals,
                Filter::LessThan(_) => Comparison::LessThan,
                _ => Comparison::LessThanOrEquals,
            };
            Matcher::Compare(op, typed(v)?)
        }
        Filter::Overlaps(v) if ty == T::Inet => Matcher::Overlaps(net(filter, v)?),
        Filter::Contains(v) if ty == T::Inet => Matcher::ContainsNet(net(filter, v)?),
        Filter::Contains(v) if textual => Matcher::ContainsText(text(v)),
        Filter::ContainedBy(v) if ty == T::Inet => Matcher::ContainedByNet(net(filter, v)?),
        Filter::ContainedBy(v) if textual => Matcher::ContainedByText(text(v)),
        Filter::ContainedOnlyBy(v) if ty == T::Inet => Matcher::ContainedOnlyBy(net(filter, v)?),
        Filter::StartsWith(v) if textual || ty == T::Inet || ty == T::Macaddr => {
            Matcher::StartsWith(text(v))
        }
        Filter::Empty => Matcher::Empty,
        Filter::Overlaps(_)
        | Filter::Contains(_)
        | Filter::ContainedBy(_)
        | Filter::ContainedOnlyBy(_)
        | Filter::StartsWith(_) => return Err(not_for(filter)),
    })
}

/// Compiling a regexp costs far more than running a query on an index, and
/// clients repeat the same patterns: keep the last few hundred per thread.
fn cached_regex(pattern: &str) -> Result<std::sync::Arc<Regex>, regex::Error> {
    const CAPACITY: usize = 256;
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, std::sync::Arc<Regex>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    if let Some(re) = CACHE.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(re);
    }
    let re = std::sync::Arc::new(
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()?,
    );
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert(pattern.to_owned(), re.clone());
    });
    Ok(re)
}

impl Matcher {
    /// Does the attribute value (a `Set` for multi attributes, hostnames for
    /// relations) satisfy the filter?
    pub fn matches(&self, value: &Value, ctx: &dyn MatchContext) -> bool {
        match self {
            Matcher::Any(items) => items.iter().any(|m| m.matches(value, ctx)),
            Matcher::All(items) => items.iter().all(|m| m.matches(value, ctx)),
            Matcher::Not(m) => !m.matches(value, ctx),
            Matcher::Empty => value.is_empty(),
            Matcher::Equals(Value::Set(want)) => match value {
                Value::Set(have) => have == want,
                _ => false,
            },
            leaf => match value {
                Value::Set(items) => items.iter().any(|v| leaf.matches_one(v, ctx)),
                v => leaf.matches_one(v, ctx),
            },
        }
    }

    fn matches_one(&self, value: &Value, ctx: &dyn MatchContext) -> bool {
        if value.is_null() {
            return false;
        }
        match self {
            Matcher::Equals(want) => value == want,
            Matcher::Regexp(re) => match value {
                Value::String(s) => re.is_match(s),
                other => re.is_match(&other.to_text()),
            },
            Matcher::Compare(op, want) => same_kind(value, want) && op.holds(value.cmp(want)),
            Matcher::Overlaps(net) => {
                matches!(value, Value::Inet(v) if v.contains(&net.network()) || net.contains(&v.network()))
            }
            Matcher::ContainsNet(net) => matches!(value, Value::Inet(v) if v.contains(net)),
            Matcher::ContainedByNet(net) => matches!(value, Value::Inet(v) if net.contains(v)),
            Matcher::ContainedOnlyBy(net) => match value {
                Value::Inet(v) => net.contains(v) && !ctx.network_between(v, net),
                _ => false,
            },
            Matcher::ContainsText(t) => text_of(value).contains(t.as_str()),
            Matcher::ContainedByText(t) => t.contains(text_of(value).as_ref()),
            Matcher::StartsWith(p) => text_of(value).starts_with(p.as_str()),
            Matcher::Any(_) | Matcher::All(_) | Matcher::Not(_) | Matcher::Empty => {
                self.matches(value, ctx)
            }
        }
    }

    /// A literal prefix every matching string starts with, for index range
    /// scans (`^neza-` gives `neza-`, `StartsWith(ab)` gives `ab`).
    pub fn literal_prefix(&self) -> Option<String> {
        match self {
            Matcher::StartsWith(p) if !p.is_empty() => Some(p.clone()),
            Matcher::Regexp(re) => regex_literal_prefix(re.as_str()),
            _ => None,
        }
    }
}

fn text_of(value: &Value) -> std::borrow::Cow<'_, str> {
    match value {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(other.to_text()),
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Inet(x), Value::Inet(y)) => x.addr().is_ipv4() == y.addr().is_ipv4(),
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// The literal prefix of a regexp anchored with `^`, if it has one and no
/// top-level alternation.
pub fn regex_literal_prefix(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix('^')?;
    if pattern.contains('|') {
        return None;
    }
    let mut prefix = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => match chars.peek() {
                Some(&n) if !n.is_alphanumeric() => {
                    chars.next();
                    n
                }
                _ => break,
            },
            c if c.is_alphanumeric()
                || matches!(c, '-' | '_' | '/' | ':' | '@' | '%' | ',' | '=') =>
            {
                c
            }
            _ => break,
        };
        if matches!(chars.peek(), Some('?' | '*' | '{')) {
            break;
        }
        prefix.push(literal);
    }
    (!prefix.is_empty()).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Attribute;
    use crate::text::parse_query;
    use crate::value::parse_inet;

    fn schema() -> Schema {
        let mut s = Schema::default();
        for (id, ty, multi) in [
            ("num_cpu", AttributeType::Number, false),
            ("tags", AttributeType::String, true),
            ("os", AttributeType::String, false),
            ("backup", AttributeType::Boolean, false),
            ("ip6", AttributeType::Inet, false),
            ("hv", AttributeType::Relation, false),
            ("installed", AttributeType::Date, false),
        ] {
            let mut a = Attribute::new(id, ty);
            a.multi = multi;
            s.attributes.insert(id.into(), a);
        }
        s
    }

    /// Compiles `query` (one term) and matches `value`.
    fn check(query: &str, value: Value) -> bool {
        let q = parse_query(query).unwrap();
        let c = compile(&q, &schema()).unwrap_or_else(|e| panic!("{query}: {e}"));
        c.filters[0].1.matches(&value, &NoNetworks)
    }

    fn inet(s: &str) -> Value {
        Value::Inet(parse_inet(s).unwrap())
    }

    #[test]
    fn comparisons_follow_the_type() {
        assert!(check("num_cpu=GreaterThan(4)", Value::number(8)));
        assert!(!check("num_cpu=GreaterThan(4)", Value::number(4)));
        assert!(check("num_cpu=GreaterThanOrEquals(4)", Value::number(4)));
        assert!(check("num_cpu=LessThan(4)", Value::number(2)));
        assert!(check(
            "installed=LessThanOrEquals(2020-01-01)",
            Value::Date("2019-12-31".parse().unwrap())
        ));
        assert!(check("os=GreaterThan(bookworm)", Value::from("bullseye")));
        assert!(check("intern_ip=GreaterThan(10.0.0.1)", inet("10.0.0.2")));
    }

    #[test]
    fn multi_leaf_matches_any_element_but_not_negates_all() {
        let tags = Value::set(vec!["a".into(), "b".into()]);
        assert!(check("tags=a", tags.clone()));
        assert!(!check("tags=Not(a)", tags.clone()));
        assert!(check("tags=Not(c)", tags.clone()));
        assert!(check("tags=All(a b)", tags.clone()));
        assert!(!check("tags=Empty()", tags));
        assert!(check("tags=Empty()", Value::Set(vec![])));
    }

    #[test]
    fn inet_functions() {
        assert!(check(
            "intern_ip=ContainedBy(10.0.0.0/16)",
            inet("10.0.3.4")
        ));
        assert!(!check(
            "intern_ip=ContainedBy(10.0.0.0/16)",
            inet("10.1.0.1")
        ));
        assert!(check("intern_ip=Contains(10.0.3.4)", inet("10.0.0.0/16")));
        assert!(check("intern_ip=Overlaps(10.0.0.0/8)", inet("10.0.0.0/16")));
        assert!(check(
            "intern_ip=Overlaps(10.0.1.0/24)",
            inet("10.0.0.0/16")
        ));
        assert!(!check(
            "intern_ip=Overlaps(10.1.0.0/24)",
            inet("10.0.0.0/16")
        ));
        assert!(check(
            "ip6=ContainedOnlyBy(2001:db8::/32)",
            inet("2001:db8::1")
        ));
        assert!(check("intern_ip=StartsWith(10.0.)", inet("10.0.3.4")));
    }

    #[test]
    fn string_functions() {
        assert!(check("os=Contains(ook)", Value::from("bookworm")));
        assert!(check("os=ContainedBy(xbookwormx)", Value::from("bookworm")));
        assert!(check("os=StartsWith(book)", Value::from("bookworm")));
        assert!(check("os=Regexp(^b.*m$)", Value::from("bookworm")));
        assert!(!check("os=Regexp(^x)", Value::from("bookworm")));
        assert!(check("hv=Regexp(^hv)", Value::from("hv1")));
        assert!(check("num_cpu=Regexp(^1)", Value::number(16)));
    }

    #[test]
    fn functions_that_do_not_apply_are_refused() {
        for q in [
            "backup=GreaterThan(1)",
            "num_cpu=Overlaps(1)",
            "num_cpu=Contains(1)",
            "os=ContainedOnlyBy(10.0.0.0/8)",
            "num_cpu=abc",
            "bogus=1",
            "os=Regexp([)",
        ] {
            assert!(compile(&parse_query(q).unwrap(), &schema()).is_err(), "{q}");
        }
    }

    #[test]
    fn regexp_prefixes() {
        assert_eq!(regex_literal_prefix("^neza-"), Some("neza-".into()));
        assert_eq!(regex_literal_prefix("^web\\.x"), Some("web.x".into()));
        assert_eq!(regex_literal_prefix("^ab?c"), Some("a".into()));
        assert_eq!(regex_literal_prefix("^a|b"), None);
        assert_eq!(regex_literal_prefix("neza"), None);
        assert_eq!(regex_literal_prefix("^(?i)a"), None);
    }
}
