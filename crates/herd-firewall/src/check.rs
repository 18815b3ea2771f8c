//! `herd fw check`: the verdict of the router's ruleset for one packet, on
//! the same [`nft::Ruleset`] that `herd fw nft` prints.
//!
//! The packet first passes the prerouting NAT hook: a redirect's `dnat`
//! rewrites its destination (a port forward from the wan address to an
//! internal host), a `redirect` points it at the router itself. Routing then
//! uses the rewritten destination: the router's own addresses go to the input
//! hook, anything else is forwarded out of the interface of its subnet (or
//! the wan zone's).

use crate::config::Package;
use crate::fw4::{self, Environment, RedirectError};
use crate::nft::{self, Decision, Hook, Packet};
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct Query {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// `tcp`, `udp` or `icmp`.
    pub proto: String,
    pub dport: Option<u16>,
    /// The zone whose devices face the internet (addresses in no local
    /// subnet arrive and leave there).
    pub wan_zone: String,
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub hook: Hook,
    pub iif: String,
    pub oif: Option<String>,
    /// The destination NAT the packet went through, if any.
    pub dnat: Option<Dnat>,
    pub decision: Decision,
}

/// A packet's destination after the prerouting NAT hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    pub dst: IpAddr,
    pub dport: Option<u16>,
    /// `redirect`: to the router itself.
    pub redirect: bool,
    /// The translating rule as nft prints it.
    pub rule: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    #[error("{0} is in no local subnet and zone '{1}' has no device; pass the right --wan-zone or fix the config")]
    NoRoute(IpAddr, String),
    #[error("source and destination must be the same address family")]
    Family,
    #[error("protocol '{0}' cannot be checked; use tcp, udp or icmp")]
    Proto(String),
    #[error("the firewall config has redirects fw4 would not apply as written, so no verdict would be trustworthy:\n{}\nfix these sections and check again (`herd fw nft --config DIR` shows fw4's own warnings)", list(.0))]
    Redirects(Vec<RedirectError>),
}

fn list(errors: &[RedirectError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn device_for(env: &Environment, addr: IpAddr) -> Option<String> {
    env.networks.values().find_map(|n| {
        let hit = n.addrs.iter().any(|(a, bits)| {
            a.is_ipv6() == addr.is_ipv6()
                && nft::prefix_mask(*a, *bits) == nft::prefix_mask(addr, *bits)
        });
        if hit {
            n.device.clone()
        } else {
            None
        }
    })
}

/// The router's first address of `family` on a device (where `redirect`
/// sends a packet).
fn own_address(env: &Environment, device: &str, v6: bool) -> Option<IpAddr> {
    env.networks
        .values()
        .filter(|n| n.device.as_deref() == Some(device))
        .flat_map(|n| n.addrs.iter())
        .map(|(a, _)| *a)
        .find(|a| a.is_ipv6() == v6)
}

fn wan_device(env: &Environment, firewall: &Package, wan_zone: &str) -> Option<String> {
    let zone = firewall
        .of_kind("zone")
        .find(|z| z.single("name") == Some(wan_zone))?;
    for net in zone.values("network") {
        if let Some(dev) = env.networks.get(&net).and_then(|n| n.device.clone()) {
            return Some(dev);
        }
    }
    zone.values("device").into_iter().next()
}

/// The verdict for the first packet of a flow from `src` to `dst`.
pub fn check(network: &Package, firewall: &Package, q: &Query) -> Result<Verdict, CheckError> {
    if q.src.is_ipv6() != q.dst.is_ipv6() {
        return Err(CheckError::Family);
    }
    let env = Environment::from_network_package(network);
    let (fw, ruleset) = fw4::render(firewall, &env);
    if !fw.redirect_errors.is_empty() {
        return Err(CheckError::Redirects(fw.redirect_errors));
    }
    let wan = wan_device(&env, firewall, &q.wan_zone);
    let iif = device_for(&env, q.src)
        .or_else(|| wan.clone())
        .ok_or_else(|| CheckError::NoRoute(q.src, q.wan_zone.clone()))?;
    let (proto, icmp_type) = match q.proto.to_lowercase().as_str() {
        "tcp" => ("tcp", None),
        "udp" => ("udp", None),
        "icmp" | "ping" if q.src.is_ipv6() => ("ipv6-icmp", Some(128)),
        "icmp" | "ping" => ("icmp", Some(8)),
        other => return Err(CheckError::Proto(other.to_string())),
    };
    let mut packet = Packet {
        src: q.src,
        dst: q.dst,
        proto: proto.to_string(),
        sport: q.dport.map(|_| 40000),
        dport: q.dport,
        icmp_type,
        icmp_code: icmp_type.map(|_| 0),
        iif: Some(iif.clone()),
        oif: None,
        ct_dnat: false,
    };
    let translation = ruleset.dstnat(&packet);
    let mut dnat = None;
    if let Some(t) = &translation {
        packet.ct_dnat = true;
        if let Some(addr) = t.addr {
            packet.dst = addr;
        } else if t.redirect {
            if let Some(own) = own_address(&env, &iif, q.dst.is_ipv6()) {
                packet.dst = own;
            }
        }
        if t.port.is_some() {
            packet.dport = t.port;
        }
        dnat = Some(Dnat {
            dst: packet.dst,
            dport: packet.dport,
            redirect: t.redirect,
            rule: t.trace.last().map(|s| s.rule.clone()).unwrap_or_default(),
        });
    }
    let local = translation.as_ref().is_some_and(|t| t.redirect)
        || env
            .networks
            .values()
            .any(|n| n.addrs.iter().any(|(a, _)| *a == packet.dst));
    let (hook, oif) = if local {
        (Hook::Input, None)
    } else {
        let oif = device_for(&env, packet.dst)
            .or(wan)
            .ok_or_else(|| CheckError::NoRoute(packet.dst, q.wan_zone.clone()))?;
        (Hook::Forward, Some(oif))
    };
    packet.oif = oif.clone();
    let mut decision = ruleset.evaluate(&packet, hook);
    if let Some(t) = translation {
        let mut trace = t.trace;
        trace.append(&mut decision.trace);
        decision.trace = trace;
        let mut unevaluated = t.unevaluated;
        unevaluated.append(&mut decision.unevaluated);
        decision.unevaluated = unevaluated;
    }
    Ok(Verdict {
        hook,
        iif,
        oif,
        dnat,
        decision,
    })
}
