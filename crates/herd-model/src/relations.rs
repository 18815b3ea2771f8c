//! What relation-like attributes mean, apart from where objects live: the
//! ids a stored relation holds, the addresses a `supernet` attribute looks
//! up, the names a `domain` attribute tries. Both engines resolve
//! relations with these; each only finds the objects its own way.

use ipnet::IpNet;

use crate::schema::{Attribute, AttributeType, InetFamily, Schema};
use crate::value::{ObjectId, Value};

/// The object ids a stored relation value holds (relations are stored as
/// the related objects' ids; a multi relation as a set of them).
pub fn relation_ids(stored: Option<&Value>) -> Vec<ObjectId> {
    match stored {
        Some(Value::Set(items)) => items.iter().filter_map(id_of).collect(),
        Some(v) => id_of(v).into_iter().collect(),
        None => Vec::new(),
    }
}

fn id_of(v: &Value) -> Option<ObjectId> {
    match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The addresses whose containing network the `supernet` attribute `def`
/// of an object names, in the order they are tried: `intern_ip`, then the
/// object's inet attributes, keeping only `def`'s address family.
pub fn supernet_addresses<'a>(
    schema: &Schema,
    def: &Attribute,
    intern_ip: &Value,
    attrs: impl IntoIterator<Item = (&'a str, &'a Value)>,
) -> Vec<IpNet> {
    let mut addresses: Vec<IpNet> = Vec::new();
    if let Value::Inet(n) = intern_ip {
        addresses.push(*n);
    }
    for (k, v) in attrs {
        if schema.attribute_type(k) != Some(AttributeType::Inet) {
            continue;
        }
        match v {
            Value::Inet(n) => addresses.push(*n),
            Value::Set(items) => addresses.extend(items.iter().filter_map(|i| match i {
                Value::Inet(n) => Some(*n),
                _ => None,
            })),
            _ => {}
        }
    }
    addresses.retain(|n| match def.inet_address_family {
        Some(InetFamily::Ipv4) => n.addr().is_ipv4(),
        Some(InetFamily::Ipv6) => n.addr().is_ipv6(),
        None => true,
    });
    addresses
}

/// The names a `domain` attribute tries for `hostname`, longest first:
/// `a.b.example.com` → `b.example.com`, `example.com`, `com`.
pub fn domain_suffixes(hostname: &str) -> impl Iterator<Item = &str> {
    let mut rest = hostname;
    std::iter::from_fn(move || {
        let (_, suffix) = rest.split_once('.')?;
        rest = suffix;
        Some(suffix)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_ids_of_single_multi_and_missing_values() {
        assert_eq!(relation_ids(Some(&Value::number(7))), vec![7]);
        let set = Value::set(vec![Value::number(3), Value::number(1)]);
        assert_eq!(relation_ids(Some(&set)), vec![1, 3]);
        assert!(relation_ids(None).is_empty());
        assert!(relation_ids(Some(&Value::from("h"))).is_empty());
    }

    #[test]
    fn supernet_addresses_follow_the_family() {
        let mut schema = Schema::default();
        for (id, ty) in [
            ("ip6", AttributeType::Inet),
            ("note", AttributeType::String),
        ] {
            schema
                .attributes
                .insert(id.to_string(), Attribute::new(id, ty));
        }
        let v4 = Value::auto_typed("10.0.0.1");
        let v6 = Value::auto_typed("2001:db8::1");
        let note = Value::from("10.9.9.9");
        let attrs = [("ip6", &v6), ("note", &note)];
        let mut def = Attribute::new("net", AttributeType::Supernet);
        let all = supernet_addresses(&schema, &def, &v4, attrs);
        assert_eq!(all.len(), 2, "{all:?}: the string attribute is no address");
        def.inet_address_family = Some(InetFamily::Ipv6);
        let only6 = supernet_addresses(&schema, &def, &v4, attrs);
        assert_eq!(only6, vec!["2001:db8::1/128".parse::<IpNet>().unwrap()]);
    }

    #[test]
    fn domain_suffixes_longest_first() {
        let got: Vec<&str> = domain_suffixes("a.b.example.com").collect();
        assert_eq!(got, ["b.example.com", "example.com", "com"]);
        assert_eq!(domain_suffixes("localhost").count(), 0);
    }
}
