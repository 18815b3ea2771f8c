//! The query AST, shared by the text syntax and serveradmin's JSON wire format.
//!
//! JSON: a filter is a bare value (equality) or `{"Name": argument}`;
//! `Any`/`All` take a list of filters, `Not` one filter, `Empty` null.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;

use crate::value::Value;

/// Filters nest at most this deep (text and JSON), so hostile input can
/// not exhaust the stack.
pub const MAX_FILTER_DEPTH: usize = 32;

/// One filter on one attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Equal to the value; for a multi attribute: one of its values is equal.
    Equals(Value),
    /// At least one of the filters matches (`Any()` matches nothing).
    Any(Vec<Filter>),
    /// Every filter matches (`All()` matches everything).
    All(Vec<Filter>),
    Not(Box<Filter>),
    /// The value's text contains a match of the regular expression.
    Regexp(String),
    GreaterThan(Value),
    GreaterThanOrEquals(Value),
    LessThan(Value),
    LessThanOrEquals(Value),
    /// Inet: the networks share an address. String: one contains the other.
    Overlaps(Value),
    /// Inet: the network contains the argument. String: substring.
    Contains(Value),
    /// Inet: the value lies within the argument network. String: the value
    /// is a substring of the argument.
    ContainedBy(Value),
    /// Inet: within the argument network and not within any other network
    /// object that itself lies within the argument.
    ContainedOnlyBy(Value),
    /// String (and the text of other types): prefix.
    StartsWith(Value),
    /// No value (null, or an empty multi set).
    Empty,
}

/// The function names, in serveradmin's spelling.
pub const FILTER_FUNCTIONS: [&str; 14] = [
    "Any",
    "All",
    "Not",
    "Regexp",
    "GreaterThan",
    "GreaterThanOrEquals",
    "LessThan",
    "LessThanOrEquals",
    "Overlaps",
    "Contains",
    "ContainedBy",
    "ContainedOnlyBy",
    "StartsWith",
    "Empty",
];

impl Filter {
    /// The function name (`"Equals"` for a bare value).
    pub fn name(&self) -> &'static str {
        match self {
            Filter::Equals(_) => "Equals",
            Filter::Any(_) => "Any",
            Filter::All(_) => "All",
            Filter::Not(_) => "Not",
            Filter::Regexp(_) => "Regexp",
            Filter::GreaterThan(_) => "GreaterThan",
            Filter::GreaterThanOrEquals(_) => "GreaterThanOrEquals",
            Filter::LessThan(_) => "LessThan",
            Filter::LessThanOrEquals(_) => "LessThanOrEquals",
            Filter::Overlaps(_) => "Overlaps",
            Filter::Contains(_) => "Contains",
            Filter::ContainedBy(_) => "ContainedBy",
            Filter::ContainedOnlyBy(_) => "ContainedOnlyBy",
            Filter::StartsWith(_) => "StartsWith",
            Filter::Empty => "Empty",
        }
    }

    /// Builds a filter from a function name (case-insensitive) and its
    /// arguments, as both syntaxes give them.
    pub fn from_function(name: &str, mut args: Vec<Filter>) -> Result<Filter, String> {
        let canonical = FILTER_FUNCTIONS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "unknown function {name}: use one of {}",
                    FILTER_FUNCTIONS.join(", ")
                )
            })?;
        let n = args.len();
        let one_value = |args: &mut Vec<Filter>| -> Result<Value, String> {
            match (n, args.pop()) {
                (1, Some(Filter::Equals(v))) => Ok(v),
                (1, Some(_)) => Err(format!("{canonical} takes a value, not a function")),
                _ => Err(format!("{canonical} takes exactly one value, got {n}")),
            }
        };
        Ok(match *canonical {
            "Any" => Filter::Any(args),
            "All" => Filter::All(args),
            "Not" => match (n, args.pop()) {
                (1, Some(f)) => Filter::Not(Box::new(f)),
                _ => return Err(format!("Not takes exactly one argument, got {n}")),
            },
            "Empty" if n == 0 => Filter::Empty,
            "Empty" => return Err(format!("Empty takes no arguments, got {n}")),
            "Regexp" => match one_value(&mut args)? {
                Value::String(s) => Filter::Regexp(s),
                other => Filter::Regexp(other.to_text()),
            },
            "GreaterThan" => Filter::GreaterThan(one_value(&mut args)?),
            "GreaterThanOrEquals" => Filter::GreaterThanOrEquals(one_value(&mut args)?),
            "LessThan" => Filter::LessThan(one_value(&mut args)?),
            "LessThanOrEquals" => Filter::LessThanOrEquals(one_value(&mut args)?),
            "Overlaps" => Filter::Overlaps(one_value(&mut args)?),
            "Contains" => Filter::Contains(one_value(&mut args)?),
            "ContainedBy" => Filter::ContainedBy(one_value(&mut args)?),
            "ContainedOnlyBy" => Filter::ContainedOnlyBy(one_value(&mut args)?),
            _ => Filter::StartsWith(one_value(&mut args)?),
        })
    }

    /// Parses serveradmin's JSON form of one filter.
    pub fn from_json(json: &serde_json::Value) -> Result<Filter, String> {
        Filter::from_json_at(json, 0)
    }

    fn from_json_at(json: &serde_json::Value, depth: usize) -> Result<Filter, String> {
        if depth > MAX_FILTER_DEPTH {
            return Err(format!(
                "filters nest deeper than {MAX_FILTER_DEPTH} levels: simplify the query"
            ));
        }
        let serde_json::Value::Object(map) = json else {
            return Value::from_json(json).map(Filter::Equals);
        };
        let mut entries = map.iter();
        let (name, arg) = match (entries.next(), entries.next()) {
            (Some(entry), None) => entry,
            _ => {
                return Err(format!(
                    "a filter object has exactly one key, the function name ({}), got {} keys",
                    FILTER_FUNCTIONS.join(", "),
                    map.len()
                ))
            }
        };
        let args = match (name.as_str(), arg) {
            ("Any" | "All", serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| Filter::from_json_at(i, depth + 1))
                .collect::<Result<_, _>>()?,
            ("Any" | "All", _) => return Err(format!("{name} takes a list of filters")),
            ("Empty", serde_json::Value::Null) => Vec::new(),
            ("Empty", serde_json::Value::Array(a)) if a.is_empty() => Vec::new(),
            ("Empty", _) => return Err("Empty takes null as its argument".to_owned()),
            ("Not", arg) => vec![Filter::from_json_at(arg, depth + 1)?],
            (_, serde_json::Value::Object(_)) => {
                return Err(format!("{name} takes a value, not a filter"))
            }
            (_, arg) => vec![Filter::Equals(Value::from_json(arg)?)],
        };
        if !FILTER_FUNCTIONS.contains(&name.as_str()) {
            return Err(format!(
                "unknown filter function {name:?}: use one of {}",
                FILTER_FUNCTIONS.join(", ")
            ));
        }
        Filter::from_function(name, args)
    }

    /// serveradmin's JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        let one = |v: &Value| v.to_json();
        match self {
            Filter::Equals(v) => v.to_json(),
            Filter::Any(f) => json!({"Any": f.iter().map(Filter::to_json).collect::<Vec<_>>()}),
            Filter::All(f) => json!({"All": f.iter().map(Filter::to_json).collect::<Vec<_>>()}),
            Filter::Not(f) => json!({"Not": f.to_json()}),
            Filter::Regexp(r) => json!({"Regexp": r}),
            Filter::Empty => json!({"Empty": null}),
            Filter::GreaterThan(v)
            | Filter::GreaterThanOrEquals(v)
            | Filter::LessThan(v)
            | Filter::LessThanOrEquals(v)
            | Filter::Overlaps(v)
            | Filter::Contains(v)
            | Filter::ContainedBy(v)
            | Filter::ContainedOnlyBy(v)
            | Filter::StartsWith(v) => {
                let mut m = serde_json::Map::new();
                m.insert(self.name().to_owned(), one(v));
                serde_json::Value::Object(m)
            }
        }
    }
}

impl fmt::Display for Filter {
    /// The text syntax (`GreaterThan(4)`, `Any(a b)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lit = |v: &Value| {
            let t = v.to_text();
            if t.is_empty() || t.contains([' ', '(', ')', '"', '\'', '=', '\\']) {
                format!("{t:?}")
            } else {
                t
            }
        };
        match self {
            Filter::Equals(v) => write!(f, "{}", lit(v)),
            Filter::Any(items) | Filter::All(items) => {
                let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                write!(f, "{}({})", self.name(), parts.join(" "))
            }
            Filter::Not(inner) => write!(f, "Not({inner})"),
            Filter::Regexp(r) => write!(f, "Regexp({})", lit(&Value::String(r.clone()))),
            Filter::Empty => write!(f, "Empty()"),
            Filter::GreaterThan(v)
            | Filter::GreaterThanOrEquals(v)
            | Filter::LessThan(v)
            | Filter::LessThanOrEquals(v)
            | Filter::Overlaps(v)
            | Filter::Contains(v)
            | Filter::ContainedBy(v)
            | Filter::ContainedOnlyBy(v)
            | Filter::StartsWith(v) => write!(f, "{}({})", self.name(), lit(v)),
        }
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(d)?;
        Filter::from_json(&json).map_err(serde::de::Error::custom)
    }
}

/// What a query returns of each object: attribute ids, and relations joined
/// with the restrict to apply to the related object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restrict {
    Attribute(String),
    /// `{"hypervisor": ["hostname", "num_cpu"]}`
    Related {
        attribute: String,
        restrict: Vec<Restrict>,
    },
}

impl Restrict {
    pub fn attribute_id(&self) -> &str {
        match self {
            Restrict::Attribute(a) => a,
            Restrict::Related { attribute, .. } => attribute,
        }
    }

    pub fn from_json(json: &serde_json::Value) -> Result<Restrict, String> {
        Restrict::from_json_at(json, 0)
    }

    fn from_json_at(json: &serde_json::Value, depth: usize) -> Result<Restrict, String> {
        if depth > MAX_FILTER_DEPTH {
            return Err(format!(
                "restrict nests deeper than {MAX_FILTER_DEPTH} levels"
            ));
        }
        match json {
            serde_json::Value::String(s) => Ok(Restrict::Attribute(s.clone())),
            serde_json::Value::Object(m) if m.len() == 1 => {
                let (attribute, inner) = m.iter().next().ok_or("empty restrict object")?;
                let serde_json::Value::Array(items) = inner else {
                    return Err(format!(
                        "restrict of related attribute {attribute:?} must be a list of attributes"
                    ));
                };
                Ok(Restrict::Related {
                    attribute: attribute.clone(),
                    restrict: items
                        .iter()
                        .map(|i| Restrict::from_json_at(i, depth + 1))
                        .collect::<Result<_, _>>()?,
                })
            }
            _ => {
                Err("restrict items are attribute names or {\"relation\": [attributes]}".to_owned())
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Restrict::Attribute(a) => json!(a),
            Restrict::Related {
                attribute,
                restrict,
            } => json!({attribute: restrict.iter().map(Restrict::to_json).collect::<Vec<_>>()}),
        }
    }
}

impl Serialize for Restrict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Restrict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(d)?;
        Restrict::from_json(&json).map_err(serde::de::Error::custom)
    }
}

/// A query: filters ANDed over attributes, what to return, and the order.
///
/// JSON: `{"filters": {...}, "restrict": [...] | null, "order_by": [...] | null}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    #[serde(default)]
    pub filters: BTreeMap<String, Filter>,
    /// `None`: every attribute of each object.
    #[serde(default)]
    pub restrict: Option<Vec<Restrict>>,
    /// Attribute ids; results are sorted by them, then by `object_id`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub order_by: Vec<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl Query {
    /// A query with just these filters.
    pub fn filter(attribute: &str, filter: Filter) -> Query {
        Query::default().and(attribute, filter)
    }

    /// Adds a filter; a second filter on the same attribute is ANDed.
    pub fn and(mut self, attribute: &str, filter: Filter) -> Query {
        match self.filters.remove(attribute) {
            None => {
                self.filters.insert(attribute.to_owned(), filter);
            }
            Some(Filter::All(mut items)) => {
                items.push(filter);
                self.filters
                    .insert(attribute.to_owned(), Filter::All(items));
            }
            Some(existing) => {
                self.filters
                    .insert(attribute.to_owned(), Filter::All(vec![existing, filter]));
            }
        }
        self
    }

    pub fn restrict(mut self, attributes: &[&str]) -> Query {
        self.restrict = Some(
            attributes
                .iter()
                .map(|a| Restrict::Attribute((*a).to_owned()))
                .collect(),
        );
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips() {
        let text = r#"{"filters":{"hostname":{"Regexp":"^neza-"},"os":{"Not":{"Empty":null}},
            "num_cpu":{"Any":[1,{"GreaterThan":8}]}},
            "restrict":["hostname",{"hypervisor":["hostname","num_cpu"]}],"order_by":null}"#;
        let q: Query = serde_json::from_str(text).unwrap();
        assert_eq!(q.filters["hostname"], Filter::Regexp("^neza-".into()));
        assert_eq!(q.filters["os"], Filter::Not(Box::new(Filter::Empty)));
        assert_eq!(
            q.filters["num_cpu"],
            Filter::Any(vec![
                Filter::Equals(Value::number(1)),
                Filter::GreaterThan(Value::number(8))
            ])
        );
        let again: Query = serde_json::from_value(serde_json::to_value(&q).unwrap()).unwrap();
        assert_eq!(again, q);
    }

    #[test]
    fn unknown_function_in_json_is_named() {
        let err = Filter::from_json(&json!({"Bogus": 1})).unwrap_err();
        assert!(err.contains("Bogus"), "{err}");
    }

    #[test]
    fn deep_json_nesting_is_refused() {
        let mut j = json!(1);
        for _ in 0..100 {
            j = json!({ "Not": j });
        }
        assert!(Filter::from_json(&j).unwrap_err().contains("deeper"));
    }
}
