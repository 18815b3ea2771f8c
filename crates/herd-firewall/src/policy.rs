//! The whitelist policy (a router and its whitelist zones, as kept in the
//! inventory) and its rendering into OpenWrt's `network` and `firewall`
//! configuration.
//!
//! Rendering is a pure function of the policy and the router's current
//! configuration (or a baseline built from the router's attributes): it
//! updates herd's sections in place, so rendering twice changes nothing.

use herd_uci::{Package, Section, Value};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// fw3 builds iptables chain names from zone names and refuses zone names
/// longer than this; fw4 accepts them, but a router may still run fw3.
pub const FW3_ZONE_NAME_MAX: usize = 11;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Router {
    pub hostname: String,
    pub switch: Switch,
    /// The firewall zone towards the internet (`wan`).
    pub wan_zone: String,
    /// The device of the `wan` interface (`eth0.2` on swconfig, `wan` on DSA
    /// by default); used when the router's current config is not given.
    pub wan_device: String,
    /// Where `herd fw apply` connects (`intern_ip`), if known.
    pub address: Option<String>,
}

/// How the router's LAN ports are switched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Switch {
    /// Older targets: a `switch` device with numbered ports and a CPU port;
    /// VLAN interfaces are `UPLINK.VID` (`eth0.42`).
    Swconfig {
        device: String,
        cpu_port: String,
        lan_vlan: u16,
        /// The LAN VLAN's ports (without the CPU port).
        lan_ports: Vec<String>,
        uplink: String,
    },
    /// DSA targets: a Linux bridge over named ports (`br-lan` over `lan1`...).
    Dsa {
        bridge: String,
        lan_vlan: u16,
        lan_ports: Vec<String>,
    },
}

/// One restricted zone: a VLAN on some ports whose clients may reach only
/// the listed destinations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhitelistZone {
    pub name: String,
    pub vlan: u16,
    pub ports: Vec<String>,
    pub gateway: IpAddr,
    pub prefix: u8,
    pub destinations: Vec<Destination>,
    /// `all` unless restricted (fw4's default for rules is tcp+udp only).
    pub protocols: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// An address or a network (`213.73.91.35`, `198.51.100.0/24`).
    pub address: String,
    /// The rule's name.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub router: Router,
    pub zones: Vec<WhitelistZone>,
}

/// The router's configuration after rendering, and what the operator
/// should know about it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub network: Package,
    pub firewall: Package,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("object {object}: attribute {attribute} is missing; set it in the inventory (or the policy file)")]
    Missing { object: String, attribute: String },
    #[error("object {object}: attribute {attribute} has invalid value '{value}': {why}")]
    Invalid {
        object: String,
        attribute: String,
        value: String,
        why: String,
    },
    #[error("router {0} not found among the policy's objects; check the hostname")]
    NoRouter(String),
    #[error(
        "zones {a} and {b} both use VLAN {vlan} on router {router}; give each zone its own VLAN id"
    )]
    VlanClash {
        a: String,
        b: String,
        vlan: u16,
        router: String,
    },
    #[error("zone {zone}: port {port} is not a LAN port of router {router} (LAN ports: {lan}); fix the zone's ports")]
    NotLanPort {
        zone: String,
        port: String,
        router: String,
        lan: String,
    },
    #[error("zone names {a} and {b} collide once shortened to {FW3_ZONE_NAME_MAX} characters for fw3; rename one")]
    NameClash { a: String, b: String },
}

impl WhitelistZone {
    /// The firewall zone name: the zone's name, cut to fw3's limit.
    pub fn fw_zone(&self) -> String {
        self.name.chars().take(FW3_ZONE_NAME_MAX).collect()
    }

    /// The `network` interface section name (`limited_lan`).
    pub fn interface(&self) -> String {
        format!("{}_lan", self.fw_zone())
    }
}

/// Checks the policy as a whole: every problem at once.
pub fn validate(policy: &Policy) -> Vec<PolicyError> {
    let mut errors = Vec::new();
    let lan_ports = match &policy.router.switch {
        Switch::Swconfig { lan_ports, .. } | Switch::Dsa { lan_ports, .. } => lan_ports,
    };
    for (i, a) in policy.zones.iter().enumerate() {
        for b in &policy.zones[i + 1..] {
            if a.vlan == b.vlan {
                errors.push(PolicyError::VlanClash {
                    a: a.name.clone(),
                    b: b.name.clone(),
                    vlan: a.vlan,
                    router: policy.router.hostname.clone(),
                });
            }
            if a.fw_zone() == b.fw_zone() {
                errors.push(PolicyError::NameClash {
                    a: a.name.clone(),
                    b: b.name.clone(),
                });
            }
        }
        for port in &a.ports {
            if !lan_ports.is_empty() && !lan_ports.contains(port) {
                errors.push(PolicyError::NotLanPort {
                    zone: a.name.clone(),
                    port: port.clone(),
                    router: policy.router.hostname.clone(),
                    lan: lan_ports.join(" "),
                });
            }
        }
    }
    errors
}

/// A minimal configuration for a router whose current files are unknown:
/// its LAN VLAN (or bridge), the `wan` interface and a `wan` zone with
/// masquerading, as in OpenWrt's defaults.
pub fn baseline(router: &Router) -> (Package, Package) {
    let mut network = Package::new("network");
    match &router.switch {
        Switch::Swconfig {
            device,
            cpu_port,
            lan_vlan,
            lan_ports,
            ..
        } => {
            let mut ports: Vec<String> = lan_ports.clone();
            ports.push(format!("{cpu_port}t"));
            network
                .add_anonymous("switch_vlan")
                .set("device", device.as_str())
                .set("vlan", lan_vlan.to_string())
                .set("ports", ports.join(" "));
        }
        Switch::Dsa {
            bridge, lan_ports, ..
        } => {
            network
                .add_anonymous("device")
                .set("name", bridge.as_str())
                .set("type", "bridge")
                .set_list("ports", lan_ports.iter().cloned());
        }
    }
    let key = match &router.switch {
        Switch::Swconfig { .. } => "ifname",
        Switch::Dsa { .. } => "device",
    };
    network
        .add_named("interface", "wan")
        .set(key, router.wan_device.as_str())
        .set("proto", "dhcp");
    let mut firewall = Package::new("firewall");
    firewall
        .add_anonymous("defaults")
        .set("syn_flood", "1")
        .set("input", "REJECT")
        .set("output", "ACCEPT")
        .set("forward", "REJECT");
    firewall
        .add_anonymous("zone")
        .set("name", router.wan_zone.as_str())
        .set_list("network", ["wan", "wan6"])
        .set("input", "REJECT")
        .set("output", "ACCEPT")
        .set("forward", "REJECT")
        .set("masq", "1")
        .set("mtu_fix", "1");
    (network, firewall)
}

/// Renders the policy onto the router's current configuration.
pub fn render(
    policy: &Policy,
    network: &Package,
    firewall: &Package,
) -> Result<Rendered, Vec<PolicyError>> {
    let errors = validate(policy);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut out = Rendered {
        network: network.clone(),
        firewall: firewall.clone(),
        notes: Vec::new(),
    };
    for zone in &policy.zones {
        render_zone(&policy.router, zone, &mut out);
    }
    ensure_wan_masq(&policy.router, &mut out);
    Ok(out)
}

fn find_index(p: &Package, pred: impl Fn(&Section) -> bool) -> Option<usize> {
    p.sections.iter().position(pred)
}

fn render_zone(router: &Router, zone: &WhitelistZone, out: &mut Rendered) {
    let fw_zone = zone.fw_zone();
    let iface = zone.interface();
    if fw_zone != zone.name {
        out.notes.push(format!(
            "zone '{}' is written as firewall zone '{fw_zone}': fw3 refuses zone names longer than {FW3_ZONE_NAME_MAX} characters (its iptables chain names would be too long), and the router may run fw3",
            zone.name
        ));
    }
    let vid = zone.vlan.to_string();
    let net = &mut out.network;
    let device = match &router.switch {
        Switch::Swconfig {
            device,
            cpu_port,
            lan_vlan,
            uplink,
            ..
        } => {
            // the ports leave the LAN VLAN...
            let lan_vid = lan_vlan.to_string();
            if let Some(i) = find_index(net, |s| {
                s.kind == "switch_vlan"
                    && s.get_single("device") == Some(device.as_str())
                    && s.get_single("vlan") == Some(lan_vid.as_str())
            }) {
                let ports = net.sections[i]
                    .get_single("ports")
                    .unwrap_or("")
                    .to_string();
                let kept: Vec<&str> = ports
                    .split_whitespace()
                    .filter(|p| !zone.ports.iter().any(|z| z == p))
                    .collect();
                if kept.len() != ports.split_whitespace().count() {
                    net.sections[i].set("ports", kept.join(" "));
                }
            }
            // ...into the zone's VLAN, untagged, with the CPU port tagged
            let mut ports = zone.ports.clone();
            ports.push(format!("{cpu_port}t"));
            let ports = ports.join(" ");
            match find_index(net, |s| {
                s.kind == "switch_vlan"
                    && s.get_single("device") == Some(device.as_str())
                    && s.get_single("vlan") == Some(vid.as_str())
            }) {
                Some(i) => {
                    net.sections[i].set("ports", ports);
                }
                None => {
                    net.add_anonymous("switch_vlan")
                        .set("device", device.as_str())
                        .set("ports", ports)
                        .set("vlan", vid.as_str());
                }
            }
            ("ifname", format!("{uplink}.{vid}"))
        }
        Switch::Dsa {
            bridge,
            lan_vlan,
            lan_ports,
        } => {
            let lan_vid = lan_vlan.to_string();
            let lan_bv = find_index(net, |s| {
                s.kind == "bridge-vlan"
                    && s.get_single("device") == Some(bridge.as_str())
                    && s.get_single("vlan") == Some(lan_vid.as_str())
            });
            match lan_bv {
                Some(i) => {
                    let ports: Vec<String> = net.sections[i]
                        .get("ports")
                        .map(|v| v.items().to_vec())
                        .unwrap_or_default();
                    let kept: Vec<String> = ports
                        .iter()
                        .filter(|p| !zone.ports.iter().any(|z| port_base(p) == z))
                        .cloned()
                        .collect();
                    if kept.len() != ports.len() {
                        net.sections[i].set_list("ports", kept);
                    }
                }
                None => {
                    // VLAN filtering on the bridge needs the LAN in a VLAN too
                    let kept: Vec<String> = lan_ports
                        .iter()
                        .filter(|p| !zone.ports.contains(p))
                        .map(|p| format!("{p}:u*"))
                        .collect();
                    net.add_anonymous("bridge-vlan")
                        .set("device", bridge.as_str())
                        .set("vlan", lan_vid.as_str())
                        .set_list("ports", kept);
                    if let Some(i) = find_index(net, |s| {
                        s.kind == "interface" && s.get_single("device") == Some(bridge.as_str())
                    }) {
                        net.sections[i].set("device", format!("{bridge}.{lan_vid}"));
                        out.notes.push(format!(
                            "the LAN now uses {bridge}.{lan_vid}: a bridge with VLAN filtering carries the LAN in VLAN {lan_vid}"
                        ));
                    }
                }
            }
            let ports: Vec<String> = zone.ports.iter().map(|p| format!("{p}:u*")).collect();
            match find_index(net, |s| {
                s.kind == "bridge-vlan"
                    && s.get_single("device") == Some(bridge.as_str())
                    && s.get_single("vlan") == Some(vid.as_str())
            }) {
                Some(i) => {
                    net.sections[i].set_list("ports", ports);
                }
                None => {
                    net.add_anonymous("bridge-vlan")
                        .set("device", bridge.as_str())
                        .set("vlan", vid.as_str())
                        .set_list("ports", ports);
                }
            }
            ("device", format!("{bridge}.{vid}"))
        }
    };
    let s = match find_index(net, |s| s.kind == "interface" && s.name == iface) {
        Some(i) => &mut net.sections[i],
        None => net.add_named("interface", iface.as_str()),
    };
    s.set("proto", "static")
        .set(device.0, device.1)
        .set("ipaddr", zone.gateway.to_string())
        .set("netmask", netmask(zone.prefix));

    let fw = &mut out.firewall;
    let z = match find_index(fw, |s| {
        s.kind == "zone" && s.get_single("name") == Some(fw_zone.as_str())
    }) {
        Some(i) => &mut fw.sections[i],
        None => fw.add_anonymous("zone"),
    };
    z.set("name", fw_zone.as_str())
        .set("input", "ACCEPT")
        .set("forward", "REJECT")
        .set("output", "ACCEPT")
        .set("network", iface.as_str());
    if z.remove("masq") {
        out.notes.push(format!(
            "removed masq from zone '{fw_zone}': fw4 masquerades traffic leaving through a zone, so masq there would rewrite traffic towards the clients; traffic to '{}' is masqueraded by the '{}' zone",
            router.wan_zone, router.wan_zone
        ));
    }
    out.notes.push(format!(
        "zone '{fw_zone}' has no masq on purpose: fw3/fw4 apply a zone's masq to traffic leaving through that zone; whitelisted traffic leaves through '{}', whose masq NATs it",
        router.wan_zone
    ));
    let proto = zone.protocols.join(" ");
    if proto == "all" {
        out.notes.push(format!(
            "rules of zone '{fw_zone}' say proto 'all': a rule without proto allows only tcp and udp"
        ));
    }
    // herd owns the ACCEPT rules from this zone to wan: drop stale ones
    let wanted: std::collections::HashSet<&str> =
        zone.destinations.iter().map(|d| d.name.as_str()).collect();
    fw.sections.retain(|s| {
        !(s.kind == "rule"
            && s.get_single("src") == Some(fw_zone.as_str())
            && s.get_single("dest") == Some(router.wan_zone.as_str())
            && !s.get_single("name").is_some_and(|n| wanted.contains(&n)))
    });
    let mut by_name: std::collections::HashMap<String, usize> = fw
        .sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == "rule" && s.get_single("src") == Some(fw_zone.as_str()))
        .filter_map(|(i, s)| s.get_single("name").map(|n| (n.to_string(), i)))
        .collect();
    for d in &zone.destinations {
        let r = match by_name.get(&d.name) {
            Some(&i) => &mut fw.sections[i],
            None => {
                by_name.insert(d.name.clone(), fw.sections.len());
                fw.add_anonymous("rule")
            }
        };
        r.set("target", "ACCEPT")
            .set("src", fw_zone.as_str())
            .set("dest", router.wan_zone.as_str())
            .set("name", d.name.as_str())
            .set("proto", proto.as_str())
            .set("dest_ip", d.address.as_str());
    }
}

fn ensure_wan_masq(router: &Router, out: &mut Rendered) {
    let fw = &mut out.firewall;
    match find_index(fw, |s| {
        s.kind == "zone" && s.get_single("name") == Some(router.wan_zone.as_str())
    }) {
        Some(i) => {
            if fw.sections[i].get_single("masq") != Some("1") {
                fw.sections[i].set("masq", "1");
                out.notes.push(format!(
                    "set masq on zone '{}': whitelisted clients use private addresses and reach their destinations through it",
                    router.wan_zone
                ));
            }
        }
        None => out.notes.push(format!(
            "the firewall has no zone '{}': whitelist rules point at it; create it or fix the router's wan zone attribute",
            router.wan_zone
        )),
    }
}

fn port_base(p: &str) -> &str {
    p.split(':').next().unwrap_or(p)
}

/// `24` → `255.255.255.0`.
pub fn netmask(prefix: u8) -> String {
    let m: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    std::net::Ipv4Addr::from(m).to_string()
}

/// The sections herd manages, for printing: what `render` changed or added.
pub fn managed_sections<'a>(before: &Package, after: &'a Package) -> Vec<&'a Section> {
    after
        .sections
        .iter()
        .filter(|s| !before.sections.iter().any(|b| b == *s))
        .collect()
}

/// A herd-uci package as the firewall model's input.
pub fn to_fw_package(p: &Package) -> crate::config::Package {
    crate::config::Package {
        sections: p
            .sections
            .iter()
            .map(|s| crate::config::Section {
                kind: s.kind.clone(),
                name: (!s.anonymous).then(|| s.name.clone()),
                options: s
                    .options
                    .iter()
                    .map(|o| {
                        let v = match &o.value {
                            Value::Single(v) => crate::config::Value::Single(v.clone()),
                            Value::List(l) => crate::config::Value::List(l.clone()),
                        };
                        (o.name.clone(), v)
                    })
                    .collect(),
            })
            .collect(),
    }
}
