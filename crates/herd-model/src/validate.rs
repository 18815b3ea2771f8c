//! serveradmin's per-value validation rules (pure). Rules that need the
//! whole dataset (unique host addresses, non-overlapping networks, relation
//! targets) live in the store engines.

use regex::Regex;

use crate::schema::{Attribute, AttributeType, InetFamily, IpAddrType};
use crate::value::Value;

/// A broken rule: a stable rule name and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub rule: &'static str,
    pub message: String,
}

fn rule(rule: &'static str, message: String) -> RuleError {
    RuleError { rule, message }
}

/// Hostnames: 1–253 characters, dot-separated labels of lowercase letters,
/// digits, `-` and `_`, each label 1–63 characters, not starting or ending
/// with `-`.
pub fn check_hostname(hostname: &str) -> Result<(), RuleError> {
    let bad = |why: &str| {
        Err(rule(
            "hostname",
            format!("{hostname:?} is not a valid hostname: {why}"),
        ))
    };
    if hostname.is_empty() {
        return bad("it is empty");
    }
    if hostname.len() > 253 {
        return bad("it is longer than 253 characters");
    }
    for label in hostname.split('.') {
        if label.is_empty() {
            return bad("it has an empty label (leading, trailing or double dot)");
        }
        if label.len() > 63 {
            return bad("a label is longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with '-'");
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return bad(&format!(
                "{c:?} is not allowed (use lowercase letters, digits, '-', '_' and '.')"
            ));
        }
    }
    Ok(())
}

/// Compiles an attribute's `regexp` so that it must match the whole value.
/// Python's `\Z` is accepted as `\z`.
pub fn attribute_regex(attribute: &Attribute) -> Result<Option<Regex>, RuleError> {
    let Some(pattern) = &attribute.regexp else {
        return Ok(None);
    };
    let pattern = pattern.replace("\\Z", "\\z");
    Regex::new(&format!("^(?:{pattern})$"))
        .map(Some)
        .map_err(|e| {
            rule(
                "regexp",
                format!("the attribute's regexp does not compile: {e}"),
            )
        })
}

/// Coerces a committed value to the attribute's type: a set of single
/// values for multi attributes, one value (or null) otherwise. Relations
/// come out as hostnames (strings); the engine resolves them.
pub fn coerce_for_attribute(
    attribute: &Attribute,
    regex: Option<&Regex>,
    value: &Value,
) -> Result<Value, RuleError> {
    if attribute.attribute_type.is_computed() {
        return Err(rule(
            "readonly",
            format!(
                "{} is a computed ({}) attribute and can not be set",
                attribute.attribute_id,
                attribute.attribute_type.name()
            ),
        ));
    }
    let one = |v: &Value| -> Result<Value, RuleError> {
        if matches!(v, Value::Set(_) | Value::Object(_)) {
            return Err(rule(
                "multi",
                format!(
                    "{} takes single values, got {}",
                    attribute.attribute_id,
                    v.describe()
                ),
            ));
        }
        let typed = v
            .coerce(attribute.attribute_type)
            .map_err(|m| rule("type", m))?;
        check_single(attribute, regex, &typed)?;
        Ok(typed)
    };
    if attribute.is_multi() {
        match value {
            Value::Null => Ok(Value::Set(Vec::new())),
            Value::Set(items) => Ok(Value::set(
                items.iter().map(one).collect::<Result<Vec<_>, _>>()?,
            )),
            single => Ok(Value::set(vec![one(single)?])),
        }
    } else {
        one(value)
    }
}

/// Type-specific rules for one (non-null) typed value.
fn check_single(
    attribute: &Attribute,
    regex: Option<&Regex>,
    value: &Value,
) -> Result<(), RuleError> {
    if value.is_null() {
        return Ok(());
    }
    if let (Some(re), false) = (regex, attribute.attribute_type == AttributeType::Relation) {
        let text = value.to_text();
        if !re.is_match(&text) {
            return Err(rule(
                "regexp",
                format!(
                    "{} does not match the attribute's regexp {}",
                    value.describe(),
                    attribute.regexp.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    if let (Value::Inet(net), Some(family)) = (value, attribute.inet_address_family) {
        let ok = match family {
            InetFamily::Ipv4 => net.addr().is_ipv4(),
            InetFamily::Ipv6 => net.addr().is_ipv6(),
        };
        if !ok {
            return Err(rule(
                "type",
                format!("{} is not an {family:?} address", value.describe()),
            ));
        }
    }
    Ok(())
}

/// Checks `intern_ip` against the servertype's `ip_addr_type`; returns the
/// typed value (null or inet).
pub fn check_intern_ip(ip_addr_type: IpAddrType, value: &Value) -> Result<Value, RuleError> {
    let typed = value
        .coerce(AttributeType::Inet)
        .map_err(|m| rule("type", m))?;
    match (ip_addr_type, &typed) {
        (IpAddrType::Null, Value::Null) => Ok(typed),
        (IpAddrType::Null, _) => Err(rule(
            "ip_addr_type",
            "objects of this servertype have no intern_ip (ip_addr_type null): leave it null"
                .into(),
        )),
        (_, Value::Null) => Err(rule(
            "required",
            "intern_ip is required for this servertype".into(),
        )),
        (IpAddrType::Host | IpAddrType::Loadbalancer, Value::Inet(n))
            if n.prefix_len() != n.max_prefix_len() =>
        {
            Err(rule(
                "ip_addr_type",
                format!(
                    "intern_ip must be a single address for this servertype, got network {}",
                    value.describe()
                ),
            ))
        }
        (IpAddrType::Network, Value::Inet(n)) if n.trunc() != *n => Err(rule(
            "ip_addr_type",
            format!(
                "intern_ip {} has host bits set; use the network address {}",
                value.describe(),
                n.trunc()
            ),
        )),
        _ => Ok(typed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        for ok in ["vm1", "neza-web001.ams1.example.com", "a_b", "1"] {
            assert!(check_hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Vm1",
            "a..b",
            ".a",
            "a.",
            "-a",
            "a b",
            "a;drop table",
            "ä",
        ] {
            assert_eq!(check_hostname(bad).unwrap_err().rule, "hostname", "{bad}");
        }
    }

    #[test]
    fn regexp_must_match_the_whole_value() {
        let mut a = Attribute::new("os", AttributeType::String);
        a.regexp = Some("\\A[a-z]+\\Z".into());
        let re = attribute_regex(&a).unwrap();
        assert!(coerce_for_attribute(&a, re.as_ref(), &"bookworm".into()).is_ok());
        let e = coerce_for_attribute(&a, re.as_ref(), &"bookworm 12".into()).unwrap_err();
        assert_eq!(e.rule, "regexp");
    }

    #[test]
    fn multi_values_become_sets() {
        let mut a = Attribute::new("n", AttributeType::Number);
        a.multi = true;
        let v = coerce_for_attribute(&a, None, &Value::set(vec!["2".into(), Value::number(1)]))
            .unwrap();
        assert_eq!(v, Value::set(vec![Value::number(1), Value::number(2)]));
        assert_eq!(
            coerce_for_attribute(&a, None, &"x".into())
                .unwrap_err()
                .rule,
            "type"
        );
    }

    #[test]
    fn intern_ip_follows_ip_addr_type() {
        let net = Value::from("10.0.0.0/24");
        assert!(check_intern_ip(IpAddrType::Network, &net).is_ok());
        assert!(check_intern_ip(IpAddrType::Host, &net).is_err());
        assert!(check_intern_ip(IpAddrType::Network, &"10.0.0.1/24".into()).is_err());
        assert!(check_intern_ip(IpAddrType::Null, &"10.0.0.1".into()).is_err());
        assert!(check_intern_ip(IpAddrType::Host, &Value::Null).is_err());
    }
}
