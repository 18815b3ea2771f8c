//! Attribute values: one `Value` enum for every attribute type, with
//! serveradmin's JSON rendering (inet and MAC as strings, dates as ISO text).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::schema::AttributeType;

/// The numeric id of an object (serveradmin's `object_id`).
pub type ObjectId = i64;

/// One attribute value.
///
/// Multi attributes hold a `Set` (sorted, without duplicates). Relations are
/// represented by the related object's hostname (`String`); a relation joined
/// by a query's `restrict` becomes an `Object`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    /// An address (`10.0.0.1`, prefix /32 or /128) or a network (`10.0.0.0/24`).
    Inet(IpNet),
    Mac(Mac),
    Date(Date),
    Datetime(Datetime),
    Set(Vec<Value>),
    Object(Box<Object>),
}

/// An object as a query returns it: `object_id` plus the selected fields
/// (`hostname`, `servertype`, `intern_ip` and attributes by id).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Object {
    pub fields: BTreeMap<String, Value>,
}

impl Object {
    /// The object's id, if the object has one (templates and new objects do not).
    pub fn object_id(&self) -> Option<ObjectId> {
        match self.fields.get("object_id") {
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        }
    }

    pub fn hostname(&self) -> Option<&str> {
        match self.fields.get("hostname") {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn servertype(&self) -> Option<&str> {
        match self.fields.get("servertype") {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, attribute: &str) -> Option<&Value> {
        self.fields.get(attribute)
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = BTreeMap::<String, Value>::deserialize(d)?;
        Ok(Object { fields })
    }
}

/// A finite number (serveradmin's `number` type). Integral values render as
/// JSON integers.
#[derive(Clone, Copy, Debug)]
pub struct Number(f64);

impl Number {
    /// `None` for NaN and infinities.
    pub fn new(v: f64) -> Option<Number> {
        v.is_finite()
            .then_some(Number(if v == 0.0 { 0.0 } else { v }))
    }
    pub fn from_i64(v: i64) -> Number {
        Number(v as f64)
    }
    pub fn get(self) -> f64 {
        self.0
    }
    pub fn as_i64(self) -> Option<i64> {
        (self.0.fract() == 0.0 && self.0.abs() < 9.0e15).then_some(self.0 as i64)
    }
}

impl PartialEq for Number {
    fn eq(&self, o: &Self) -> bool {
        self.0.total_cmp(&o.0) == Ordering::Equal
    }
}
impl Eq for Number {}
impl PartialOrd for Number {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Number {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}
impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.to_bits().hash(h)
    }
}
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_i64() {
            Some(i) => write!(f, "{i}"),
            None => write!(f, "{}", self.0),
        }
    }
}
impl FromStr for Number {
    type Err = ();
    fn from_str(s: &str) -> Result<Number, ()> {
        let s = s.trim();
        if s.is_empty() || s.starts_with('+') || s.contains(['e', 'E', 'x', 'X']) {
            return Err(());
        }
        let lower = s.to_ascii_lowercase();
        if lower.contains("inf") || lower.contains("nan") {
            return Err(());
        }
        s.parse::<f64>().ok().and_then(Number::new).ok_or(())
    }
}

/// A MAC address, rendered `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}
impl FromStr for Mac {
    type Err = ();
    /// Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-...` and `aabb.ccdd.eeff`.
    fn from_str(s: &str) -> Result<Mac, ()> {
        let hex: String = if s.len() == 17 {
            let sep = s.as_bytes()[2];
            if sep != b':' && sep != b'-' {
                return Err(());
            }
            let parts: Vec<&str> = s.split(sep as char).collect();
            if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
                return Err(());
            }
            parts.concat()
        } else if s.len() == 14 {
            let parts: Vec<&str> = s.split('.').collect();
            if parts.len() != 3 || parts.iter().any(|p| p.len() != 4) {
                return Err(());
            }
            parts.concat()
        } else {
            return Err(());
        };
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or(())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| ())?;
        }
        Ok(Mac(out))
    }
}

/// A calendar date (`YYYY-MM-DD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        (day <= days_in_month(year, month)).then_some(Date { year, month, day })
    }
    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(self.year as i64, self.month as i64, self.day as i64)
    }
    pub fn from_days_since_epoch(days: i64) -> Option<Date> {
        let (y, m, d) = civil_from_days(days);
        Date::new(i32::try_from(y).ok()?, m as u8, d as u8)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}
impl FromStr for Date {
    type Err = ();
    fn from_str(s: &str) -> Result<Date, ()> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, ()> {
            let t = s.get(r).ok_or(())?;
            if !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(());
            }
            t.parse().map_err(|_| ())
        };
        Date::new(num(0..4)? as i32, num(5..7)? as u8, num(8..10)? as u8).ok_or(())
    }
}

/// A point in time, second precision, kept in UTC; rendered
/// `YYYY-MM-DDTHH:MM:SS+00:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Datetime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
}

impl fmt::Display for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.unix.div_euclid(86_400);
        let secs = self.unix.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}
impl FromStr for Datetime {
    type Err = ();
    /// Accepts `YYYY-MM-DD[T| ]HH:MM[:SS[.frac]][Z|±HH:MM|±HHMM]`; no zone means UTC.
    fn from_str(s: &str) -> Result<Datetime, ()> {
        let date: Date = s.get(0..10).ok_or(())?.parse()?;
        let rest = s.get(10..).ok_or(())?;
        let rest = rest
            .strip_prefix('T')
            .or_else(|| rest.strip_prefix(' '))
            .ok_or(())?;
        let two = |t: &str, max: i64| -> Result<i64, ()> {
            if t.len() != 2 || !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(());
            }
            let v: i64 = t.parse().map_err(|_| ())?;
            (v <= max).then_some(v).ok_or(())
        };
        let h = two(rest.get(0..2).ok_or(())?, 23)?;
        if rest.get(2..3) != Some(":") {
            return Err(());
        }
        let mi = two(rest.get(3..5).ok_or(())?, 59)?;
        let mut rest = rest.get(5..).ok_or(())?;
        let mut sec = 0;
        if let Some(r) = rest.strip_prefix(':') {
            sec = two(r.get(0..2).ok_or(())?, 60)?;
            rest = r.get(2..).ok_or(())?;
            if let Some(frac) = rest.strip_prefix('.') {
                let n = frac.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return Err(());
                }
                rest = &frac[n..];
            }
        }
        let offset = match rest {
            "" | "Z" | "z" => 0,
            _ => {
                let sign = match rest.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return Err(()),
                };
                let z = &rest[1..];
                let (oh, om) = match z.len() {
                    5 if z.as_bytes()[2] == b':' => (&z[0..2], &z[3..5]),
                    4 => (&z[0..2], &z[2..4]),
                    2 => (z, "00"),
                    _ => return Err(()),
                };
                sign * (two(oh, 23)? * 3600 + two(om, 59)? * 60)
            }
        };
        let unix = date.days_since_epoch() * 86_400 + h * 3600 + mi * 60 + sec - offset;
        Ok(Datetime { unix })
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses an address or network. A bare address gets the full prefix.
pub fn parse_inet(s: &str) -> Option<IpNet> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Renders an inet value the way serveradmin does: addresses without prefix.
pub fn inet_to_string(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// `true` for `Null` and the empty set: what `Empty()` matches.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Set(v) => v.is_empty(),
            _ => false,
        }
    }

    pub fn number(v: i64) -> Value {
        Value::Number(Number::from_i64(v))
    }

    /// Builds a multi value: sorted, without duplicates.
    pub fn set(mut values: Vec<Value>) -> Value {
        values.sort();
        values.dedup();
        Value::Set(values)
    }

    /// The text form used by `Regexp`, `Contains` and friends on non-string
    /// types, and by the CLI's tables.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            Value::Inet(n) => inet_to_string(n),
            Value::Mac(m) => m.to_string(),
            Value::Date(d) => d.to_string(),
            Value::Datetime(d) => d.to_string(),
            Value::Set(v) => v.iter().map(Value::to_text).collect::<Vec<_>>().join(" "),
            Value::Object(o) => o.hostname().unwrap_or_default().to_owned(),
        }
    }

    /// Guesses the type of an unquoted literal of the text query language:
    /// bool, number, inet, MAC, date, datetime, else string. Only forms that
    /// render back to the same text are typed, so `007` stays a string.
    pub fn auto_typed(text: &str) -> Value {
        match text {
            "true" | "True" => return Value::Bool(true),
            "false" | "False" => return Value::Bool(false),
            _ => {}
        }
        if let Ok(n) = text.parse::<Number>() {
            if n.to_string() == text {
                return Value::Number(n);
            }
        }
        if let Some(net) = parse_inet(text) {
            return Value::Inet(net);
        }
        if let Ok(m) = text.parse::<Mac>() {
            return Value::Mac(m);
        }
        if let Ok(d) = text.parse::<Date>() {
            return Value::Date(d);
        }
        if text.len() > 10 {
            if let Ok(d) = text.parse::<Datetime>() {
                return Value::Datetime(d);
            }
        }
        Value::String(text.to_owned())
    }

    /// Converts a value to an attribute type (single value, not a set).
    /// Strings parse into the type; other values convert where serveradmin
    /// would accept them. `Err` carries a description of what was expected.
    pub fn coerce(&self, ty: AttributeType) -> Result<Value, String> {
        use AttributeType as T;
        let text = match self {
            Value::String(s) => s.as_str(),
            _ => "",
        };
        let out = match (ty, self) {
            (_, Value::Null) => Some(Value::Null),
            (T::String | T::Relation | T::Reverse | T::Supernet | T::Domain, Value::String(_)) => {
                Some(self.clone())
            }
            (T::String, Value::Bool(_) | Value::Number(_) | Value::Inet(_) | Value::Mac(_))
            | (T::String, Value::Date(_) | Value::Datetime(_)) => {
                Some(Value::String(self.to_text()))
            }
            (T::Boolean, Value::Bool(_)) => Some(self.clone()),
            (T::Boolean, Value::String(_)) => match text {
                "true" | "True" | "1" => Some(Value::Bool(true)),
                "false" | "False" | "0" => Some(Value::Bool(false)),
                _ => None,
            },
            (T::Number, Value::Number(_)) => Some(self.clone()),
            (T::Number, Value::String(_)) => text.parse().ok().map(Value::Number),
            (T::Inet, Value::Inet(_)) => Some(self.clone()),
            (T::Inet, Value::String(_)) => parse_inet(text).map(Value::Inet),
            (T::Macaddr, Value::Mac(_)) => Some(self.clone()),
            (T::Macaddr, Value::String(_)) => text.parse().ok().map(Value::Mac),
            (T::Date, Value::Date(_)) => Some(self.clone()),
            (T::Date, Value::String(_)) => text.parse().ok().map(Value::Date),
            (T::Date, Value::Datetime(d)) => {
                Date::from_days_since_epoch(d.unix.div_euclid(86_400)).map(Value::Date)
            }
            (T::Datetime, Value::Datetime(_)) => Some(self.clone()),
            (T::Datetime, Value::Date(d)) => Some(Value::Datetime(Datetime {
                unix: d.days_since_epoch() * 86_400,
            })),
            (T::Datetime, Value::String(_)) => text
                .parse()
                .ok()
                .or_else(|| {
                    text.parse::<Date>().ok().map(|d| Datetime {
                        unix: d.days_since_epoch() * 86_400,
                    })
                })
                .map(Value::Datetime),
            _ => None,
        };
        out.ok_or_else(|| format!("{} is not a valid {}", self.describe(), ty.name()))
    }

    /// A short quoted description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Value::String(s) => format!("{s:?}"),
            Value::Set(_) => format!("[{}]", self.to_text()),
            Value::Object(_) => "an object".to_owned(),
            Value::Null => "null".to_owned(),
            _ => format!("'{}'", self.to_text()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::number(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl Value {
    /// Appends this value as JSON: the bytes `serde_json::to_vec` makes of
    /// it, written faster (strings that need no escaping are copied as
    /// they are, addresses are formatted in place). Query answers of
    /// thousands of objects are written with it.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Number(n) => match n.as_i64() {
                Some(i) => {
                    let _ = write!(out, "{i}");
                }
                None => {
                    let _ = serde_json::to_writer(&mut *out, &n.get());
                }
            },
            Value::String(v) => write_json_str(out, v),
            // Digits, hex digits, '.', ':' and '/': nothing to escape.
            Value::Inet(n) if n.prefix_len() == n.max_prefix_len() => {
                let _ = write!(out, "\"{}\"", n.addr());
            }
            Value::Inet(n) => {
                let _ = write!(out, "\"{n}\"");
            }
            Value::Set(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Value::Object(o) => {
                out.push(b'{');
                for (i, (k, v)) in o.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_str(out, k);
                    out.push(b':');
                    v.write_json(out);
                }
                out.push(b'}');
            }
            Value::Mac(_) | Value::Date(_) | Value::Datetime(_) => {
                write_json_str(out, &self.to_text())
            }
        }
    }
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => s.serialize_i64(i),
                None => s.serialize_f64(n.get()),
            },
            Value::String(v) => s.serialize_str(v),
            Value::Set(v) => v.serialize(s),
            Value::Object(o) => o.serialize(s),
            other => s.serialize_str(&other.to_text()),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Straight from the parser, without an intermediate
        // `serde_json::Value`: the same mapping as [`Value::from_json`].
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(Number::from_i64(v)))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(Number(v as f64)))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::new(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("number {v} is out of range")))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::set(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            fields.insert(k, v);
        }
        Ok(Value::Object(Box::new(Object { fields })))
    }
}

impl Value {
    /// Converts a JSON value: strings stay strings (typed later against the
    /// schema), arrays become sets, objects become (joined) objects.
    pub fn from_json(json: &serde_json::Value) -> Result<Value, String> {
        Ok(match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(
                n.as_f64()
                    .and_then(Number::new)
                    .ok_or_else(|| format!("number {n} is out of range"))?,
            ),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => {
                Value::set(a.iter().map(Value::from_json).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(o) => Value::Object(Box::new(Object {
                fields: o
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), Value::from_json(v)?)))
                    .collect::<Result<_, String>>()?,
            })),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn write_json_is_what_serde_writes() {
        let object = Object {
            fields: [
                ("object_id".to_string(), Value::number(7)),
                ("hostname".to_string(), Value::from("vm\"1\\\n\u{1f}é")),
                ("tags".to_string(), Value::set(vec!["b".into(), "a".into()])),
            ]
            .into_iter()
            .collect(),
        };
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::number(0),
            Value::number(-42),
            Value::number(1 << 52),
            Value::Number(Number::new(1.5).unwrap()),
            Value::Number(Number::new(-1e300).unwrap()),
            Value::Number(Number::new(1e16).unwrap()),
            Value::from(""),
            Value::from("plain text, ünïcode ✓"),
            Value::from("quote \" backslash \\ tab \t nul \u{0} del \u{7f}"),
            Value::auto_typed("10.0.0.1"),
            Value::auto_typed("10.0.0.0/8"),
            Value::auto_typed("2001:db8::1"),
            Value::auto_typed("2001:db8::/32"),
            Value::auto_typed("52:54:00:00:00:01"),
            Value::auto_typed("2024-01-02"),
            Value::auto_typed("2024-01-02T03:04:05Z"),
            Value::set(vec![]),
            Value::set(vec![Value::number(3), Value::number(1)]),
            Value::Object(Box::new(object.clone())),
            Value::set(vec![
                Value::Object(Box::new(object)),
                Value::Object(Box::default()),
            ]),
        ];
        for v in values {
            let mut fast = Vec::new();
            v.write_json(&mut fast);
            let serde = serde_json::to_vec(&v).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&serde),
                "{v:?}"
            );
        }
    }

    use super::*;

    #[test]
    fn direct_deserialization_matches_the_json_value_mapping() {
        let text = r#"{"hostname":"vm1","n":4,"f":1.5,"big":18446744073709551615,"neg":-3,
            "ok":true,"none":null,"tags":["b","a","b"],"joined":{"x":[1,2]}}"#;
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let direct: Value = serde_json::from_str(text).unwrap();
        assert_eq!(direct, Value::from_json(&json).unwrap());
        assert_eq!(
            serde_json::from_str::<Value>(r#"["b","a","b"]"#).unwrap(),
            Value::set(vec![Value::from("a"), Value::from("b")])
        );
    }

    #[test]
    fn datetime_round_trips_through_utc_text() {
        let d: Datetime = "2020-02-29T23:30:00+01:00".parse().unwrap();
        assert_eq!(d.to_string(), "2020-02-29T22:30:00+00:00");
        assert_eq!("1970-01-01T00:00:00Z".parse::<Datetime>().unwrap().unix, 0);
    }

    #[test]
    fn invalid_dates_are_refused() {
        assert!("2021-02-29".parse::<Date>().is_err());
        assert!("2021-13-01".parse::<Date>().is_err());
        assert!("2024-02-29".parse::<Date>().is_ok());
    }

    #[test]
    fn auto_typing_keeps_text_that_would_not_round_trip() {
        assert_eq!(Value::auto_typed("007"), Value::from("007"));
        assert_eq!(Value::auto_typed("42"), Value::number(42));
        assert!(matches!(Value::auto_typed("10.0.0.0/8"), Value::Inet(_)));
        assert!(matches!(
            Value::auto_typed("52:54:00:aa:bb:cc"),
            Value::Mac(_)
        ));
        assert_eq!(Value::auto_typed("true"), Value::Bool(true));
        assert_eq!(Value::auto_typed("web1"), Value::from("web1"));
    }

    #[test]
    fn values_render_as_serveradmin_json() {
        let v = Value::set(vec![
            Value::Inet(parse_inet("10.0.0.1").unwrap()),
            Value::Inet(parse_inet("10.0.0.0/24").unwrap()),
        ]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"["10.0.0.0/24","10.0.0.1"]"#
        );
        assert_eq!(serde_json::to_string(&Value::number(4)).unwrap(), "4");
    }
}
