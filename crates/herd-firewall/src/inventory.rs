//! Inventory objects (serveradmin-style JSON attribute maps, as `herd query`
//! and the policy file give them) → a [`Policy`]. The schema they follow
//! ships as `schema/openwrt-whitelist.json` ([`SCHEMA_PRESET`]).

use crate::policy::{Destination, Policy, PolicyError, Router, Switch, WhitelistZone};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// The schema preset for routers and whitelist zones: a list of schema
/// changes for `herd schema apply` / the schema API.
pub const SCHEMA_PRESET: &str = include_str!("../schema/openwrt-whitelist.json");

pub const ROUTER_SERVERTYPE: &str = "openwrt_router";
pub const ZONE_SERVERTYPE: &str = "openwrt_whitelist_zone";

type Object = Map<String, Value>;

/// Builds the policy of router `hostname` from a set of objects (the router
/// and any number of zones; zones of other routers are ignored).
pub fn policy_from_objects(hostname: &str, objects: &[Object]) -> Result<Policy, Vec<PolicyError>> {
    let router_obj = objects
        .iter()
        .find(|o| {
            str_attr(o, "hostname") == Some(hostname)
                && str_attr(o, "servertype") == Some(ROUTER_SERVERTYPE)
        })
        .ok_or_else(|| vec![PolicyError::NoRouter(hostname.to_string())])?;
    let mut errors = Vec::new();
    let router = router_from(router_obj, &mut errors);
    let mut zones = Vec::new();
    for o in objects {
        if str_attr(o, "servertype") != Some(ZONE_SERVERTYPE) {
            continue;
        }
        if str_attr(o, "openwrt_router") != Some(hostname) {
            continue;
        }
        if let Some(z) = zone_from(o, &mut errors) {
            zones.push(z);
        }
    }
    zones.sort_by(|a, b| a.name.cmp(&b.name));
    match router {
        Some(router) if errors.is_empty() => Ok(Policy { router, zones }),
        _ => Err(errors),
    }
}

/// Reads a policy file: a JSON array of objects, or `{"objects": [...]}`.
pub fn objects_from_json(text: &str) -> Result<Vec<Object>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let list = match v {
        Value::Array(l) => l,
        Value::Object(mut m) => match m.remove("objects") {
            Some(Value::Array(l)) => l,
            _ => return Err("expected an array of objects or {\"objects\": [...]}".into()),
        },
        _ => return Err("expected an array of objects or {\"objects\": [...]}".into()),
    };
    list.into_iter()
        .map(|o| match o {
            Value::Object(m) => Ok(m),
            other => Err(format!("expected an object, found {other}")),
        })
        .collect()
}

fn name_of(o: &Object) -> String {
    str_attr(o, "hostname")
        .unwrap_or("<no hostname>")
        .to_string()
}

fn str_attr<'a>(o: &'a Object, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn strings(o: &Object, key: &str) -> Vec<String> {
    match o.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

fn required<'a>(o: &'a Object, key: &str, errors: &mut Vec<PolicyError>) -> Option<&'a str> {
    let v = str_attr(o, key);
    if v.is_none() {
        errors.push(PolicyError::Missing {
            object: name_of(o),
            attribute: key.to_string(),
        });
    }
    v
}

fn number(o: &Object, key: &str, errors: &mut Vec<PolicyError>) -> Option<u16> {
    let v = o.get(key);
    let n = match v {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => {
            errors.push(PolicyError::Missing {
                object: name_of(o),
                attribute: key.to_string(),
            });
            return None;
        }
    };
    match n {
        Some(n @ 1..=4094) => Some(n as u16),
        _ => {
            errors.push(PolicyError::Invalid {
                object: name_of(o),
                attribute: key.to_string(),
                value: v.map(Value::to_string).unwrap_or_default(),
                why: "a VLAN id is a number from 1 to 4094".into(),
            });
            None
        }
    }
}

fn router_from(o: &Object, errors: &mut Vec<PolicyError>) -> Option<Router> {
    let hostname = name_of(o);
    let mode = required(o, "openwrt_switch", errors)?;
    let lan_vlan = number(o, "openwrt_lan_vlan", errors);
    let lan_ports = strings(o, "openwrt_lan_ports");
    let switch = match mode {
        "swconfig" => Switch::Swconfig {
            device: required(o, "openwrt_switch_device", errors)?.to_string(),
            cpu_port: required(o, "openwrt_cpu_port", errors)?.to_string(),
            lan_vlan: lan_vlan?,
            lan_ports,
            uplink: required(o, "openwrt_uplink", errors)?.to_string(),
        },
        "dsa" => Switch::Dsa {
            bridge: required(o, "openwrt_bridge", errors)?.to_string(),
            lan_vlan: lan_vlan?,
            lan_ports,
        },
        other => {
            errors.push(PolicyError::Invalid {
                object: hostname,
                attribute: "openwrt_switch".into(),
                value: other.into(),
                why: "use 'swconfig' (switch device, CPU port) or 'dsa' (bridge, port names)"
                    .into(),
            });
            return None;
        }
    };
    let wan_device = match (str_attr(o, "openwrt_wan_device"), &switch) {
        (Some(d), _) => d.to_string(),
        (None, Switch::Swconfig { uplink, .. }) => format!("{uplink}.2"),
        (None, Switch::Dsa { .. }) => "wan".to_string(),
    };
    Some(Router {
        hostname: name_of(o),
        wan_device,
        switch,
        wan_zone: str_attr(o, "openwrt_wan_zone").unwrap_or("wan").to_string(),
        address: str_attr(o, "intern_ip").map(str::to_string),
    })
}

fn zone_from(o: &Object, errors: &mut Vec<PolicyError>) -> Option<WhitelistZone> {
    let name = name_of(o);
    let before = errors.len();
    let vlan = number(o, "whitelist_vlan", errors);
    let ports = strings(o, "whitelist_ports");
    if ports.is_empty() {
        errors.push(PolicyError::Missing {
            object: name.clone(),
            attribute: "whitelist_ports".into(),
        });
    }
    let gateway = required(o, "whitelist_gateway", errors).and_then(|g| {
        let parsed = g.split_once('/').and_then(|(a, p)| {
            Some((
                a.parse::<IpAddr>().ok()?,
                p.parse::<u8>().ok().filter(|p| *p <= 32)?,
            ))
        });
        if parsed.is_none() {
            errors.push(PolicyError::Invalid {
                object: name.clone(),
                attribute: "whitelist_gateway".into(),
                value: g.into(),
                why: "the router's address in the zone with its prefix, like 10.23.42.1/24".into(),
            });
        }
        parsed
    });
    let names: Vec<(String, String)> = strings(o, "whitelist_destination_names")
        .into_iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(a, n)| (a.trim().to_string(), n.trim().to_string()))
        })
        .collect();
    let mut destinations = Vec::new();
    for d in strings(o, "whitelist_destinations") {
        let addr_part = d.split('/').next().unwrap_or(&d);
        if addr_part.parse::<IpAddr>().is_err() {
            errors.push(PolicyError::Invalid {
                object: name.clone(),
                attribute: "whitelist_destinations".into(),
                value: d.clone(),
                why: "an address or network, like 192.0.2.10 or 198.51.100.0/24".into(),
            });
            continue;
        }
        let rule_name = names
            .iter()
            .find(|(a, _)| *a == d)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| format!("{}-{}", name, d.replace(['.', ':', '/'], "-")));
        destinations.push(Destination {
            address: d,
            name: rule_name,
        });
    }
    let mut protocols = strings(o, "whitelist_protocols");
    if protocols.is_empty() {
        protocols.push("all".into());
    }
    if errors.len() != before {
        return None;
    }
    let (gateway, prefix) = gateway?;
    Some(WhitelistZone {
        name,
        vlan: vlan?,
        ports,
        gateway,
        prefix,
        destinations,
        protocols,
    })
}
