//! What herd knows about the meaning of options, in one table: which
//! options are lists, which are booleans, which are enums, and which options
//! identify an anonymous section. Used by the semantic diff only; the parser
//! and serializer know nothing of it.
//!
//! The lists follow OpenWrt's own readers: fw4 (`firewall`), netifd
//! (`network`), dnsmasq/odhcpd (`dhcp`) and procd/sysntpd (`system`).

/// One row: options of `package` sections of type `kind` (`*` = any type).
struct Row {
    package: &'static str,
    kind: &'static str,
    lists: &'static [&'static str],
    /// Options that identify an anonymous section of this type.
    keys: &'static [&'static str],
}

const TABLE: &[Row] = &[
    Row {
        package: "firewall",
        kind: "zone",
        lists: &[
            "network",
            "device",
            "subnet",
            "masq_src",
            "masq_dest",
            "extra_src",
            "extra_dest",
            "helper",
            "auto_helper_zone",
        ],
        keys: &["name"],
    },
    Row {
        package: "firewall",
        kind: "rule",
        lists: &[
            "proto",
            "src_ip",
            "src_mac",
            "src_port",
            "dest_ip",
            "dest_port",
            "icmp_type",
            "weekdays",
            "monthdays",
            "ipset",
        ],
        keys: &["name"],
    },
    Row {
        package: "firewall",
        kind: "redirect",
        lists: &[
            "proto",
            "src_ip",
            "src_mac",
            "src_dip",
            "weekdays",
            "monthdays",
            "ipset",
        ],
        keys: &["name"],
    },
    Row {
        package: "firewall",
        kind: "nat",
        lists: &["proto", "src_ip", "dest_ip", "weekdays", "monthdays"],
        keys: &["name"],
    },
    Row {
        package: "firewall",
        kind: "ipset",
        lists: &["match", "entry"],
        keys: &["name"],
    },
    Row {
        package: "firewall",
        kind: "forwarding",
        lists: &[],
        keys: &["src", "dest"],
    },
    Row {
        package: "firewall",
        kind: "include",
        lists: &[],
        keys: &["path"],
    },
    Row {
        package: "firewall",
        kind: "defaults",
        lists: &[],
        keys: &[],
    },
    Row {
        package: "network",
        kind: "interface",
        lists: &[
            "ipaddr",
            "ip6addr",
            "dns",
            "dns_search",
            "ip6class",
            "ip6prefix",
            "ifname",
        ],
        keys: &[],
    },
    Row {
        package: "network",
        kind: "device",
        lists: &["ports"],
        keys: &["name"],
    },
    Row {
        package: "network",
        kind: "bridge-vlan",
        lists: &["ports"],
        keys: &["device", "vlan"],
    },
    Row {
        package: "network",
        kind: "switch_vlan",
        lists: &[],
        keys: &["device", "vlan"],
    },
    Row {
        package: "network",
        kind: "switch",
        lists: &[],
        keys: &["name"],
    },
    Row {
        package: "network",
        kind: "route",
        lists: &[],
        keys: &["interface", "target"],
    },
    Row {
        package: "dhcp",
        kind: "dnsmasq",
        lists: &[
            "server",
            "address",
            "interface",
            "notinterface",
            "rebind_domain",
            "ipset",
            "addnhosts",
            "bogusnxdomain",
        ],
        keys: &[],
    },
    Row {
        package: "dhcp",
        kind: "dhcp",
        lists: &[
            "dhcp_option",
            "dhcp_option_force",
            "dns",
            "domain",
            "ra_flags",
            "ntp",
        ],
        keys: &["interface"],
    },
    Row {
        package: "dhcp",
        kind: "host",
        lists: &["mac", "hostid"],
        keys: &["name"],
    },
    Row {
        package: "dhcp",
        kind: "domain",
        lists: &[],
        keys: &["name"],
    },
    Row {
        package: "system",
        kind: "timeserver",
        lists: &["server"],
        keys: &[],
    },
    Row {
        package: "system",
        kind: "led",
        lists: &[],
        keys: &["name"],
    },
];

/// Options whose values are booleans in every package.
const BOOLEANS: &[&str] = &[
    "enabled",
    "disabled",
    "auto",
    "masq",
    "masq6",
    "mtu_fix",
    "syn_flood",
    "synflood_protect",
    "drop_invalid",
    "disable_ipv6",
    "flow_offloading",
    "flow_offloading_hw",
    "reflection",
    "log",
    "defaultroute",
    "peerdns",
    "delegate",
    "ignore",
    "force",
    "dynamicdhcp",
    "authoritative",
    "domainneeded",
    "boguspriv",
    "localise_queries",
    "rebind_protection",
    "rebind_localhost",
    "expandhosts",
    "nonegcache",
    "readethers",
    "localservice",
    "enable_server",
    "ipv6",
    "stp",
    "igmp_snooping",
    "bridge_empty",
    "enable_vlan",
    "reset",
    "custom_chains",
    "fullcone",
    "fullcone6",
];

/// Firewall options with fixed value sets (fw4 matches them ignoring case,
/// and accepts unambiguous prefixes).
const FIREWALL_ENUMS: &[(&str, &[&str])] = &[
    ("input", &["ACCEPT", "REJECT", "DROP"]),
    ("output", &["ACCEPT", "REJECT", "DROP"]),
    ("forward", &["ACCEPT", "REJECT", "DROP"]),
    (
        "target",
        &[
            "ACCEPT",
            "REJECT",
            "DROP",
            "MARK",
            "NOTRACK",
            "HELPER",
            "DNAT",
            "SNAT",
            "MASQUERADE",
        ],
    ),
    ("family", &["any", "ipv4", "ipv6"]),
];

fn rows<'a>(package: &'a str, kind: &'a str) -> impl Iterator<Item = &'static Row> + 'a {
    TABLE
        .iter()
        .filter(move |r| r.package == package && (r.kind == kind || r.kind == "*"))
}

/// Is `option` of a `kind` section in `package` a list (so that
/// `option x 'a b'` means the same as `list x a` + `list x b`)?
pub fn is_list(package: &str, kind: &str, option: &str) -> bool {
    rows(package, kind).any(|r| r.lists.contains(&option))
}

/// The options that identify an anonymous `kind` section in `package`
/// (a zone's or a rule's `name`); empty if none do.
pub fn key_options(package: &str, kind: &str) -> &'static [&'static str] {
    rows(package, kind).map(|r| r.keys).next().unwrap_or(&[])
}

/// Is the option a boolean?
pub fn is_boolean(option: &str) -> bool {
    BOOLEANS.contains(&option)
}

/// Are sections of this type order-sensitive (firewall rules are matched
/// first to last)?
pub fn order_matters(package: &str, kind: &str) -> bool {
    package == "firewall" && matches!(kind, "rule" | "redirect" | "nat")
}

/// A value in canonical form: booleans as `1`/`0`, firewall enums in their
/// canonical spelling, `proto` in lower case. Anything else unchanged.
pub fn canonical_value(package: &str, option: &str, value: &str) -> String {
    if is_boolean(option) {
        match value.to_ascii_lowercase().as_str() {
            "1" | "on" | "true" | "yes" | "enabled" => return "1".into(),
            "0" | "off" | "false" | "no" | "disabled" => return "0".into(),
            _ => {}
        }
    }
    if package == "firewall" {
        if let Some((_, allowed)) = FIREWALL_ENUMS.iter().find(|(o, _)| *o == option) {
            let lower = value.to_ascii_lowercase();
            if let Some(exact) = allowed.iter().find(|a| a.eq_ignore_ascii_case(value)) {
                return exact.to_string();
            }
            let mut matches = allowed
                .iter()
                .filter(|a| !lower.is_empty() && a.to_ascii_lowercase().starts_with(&lower));
            if let (Some(only), None) = (matches.next(), matches.next()) {
                return only.to_string();
            }
        }
        if option == "proto" {
            return value.to_ascii_lowercase();
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firewall_enums_ignore_case_and_accept_prefixes() {
        assert_eq!(canonical_value("firewall", "target", "accept"), "ACCEPT");
        assert_eq!(canonical_value("firewall", "input", "rej"), "REJECT");
        // "D" is ambiguous for target (DROP, DNAT): kept as written.
        assert_eq!(canonical_value("firewall", "target", "D"), "D");
        assert_eq!(canonical_value("firewall", "family", "IPv4"), "ipv4");
    }

    #[test]
    fn booleans_have_one_spelling() {
        for v in ["1", "on", "true", "yes", "YES"] {
            assert_eq!(canonical_value("firewall", "masq", v), "1");
        }
        assert_eq!(canonical_value("network", "auto", "off"), "0");
        assert_eq!(canonical_value("network", "proto", "on"), "on");
    }

    #[test]
    fn list_table_knows_zone_networks() {
        assert!(is_list("firewall", "zone", "network"));
        assert!(!is_list("firewall", "zone", "name"));
        assert!(!is_list("network", "switch_vlan", "ports"));
        assert_eq!(key_options("firewall", "rule"), ["name"]);
    }
}
