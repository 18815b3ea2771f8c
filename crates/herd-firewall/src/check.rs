//! `herd fw check`: the verdict of the router's ruleset for one packet, on
//! the same [`nft::Ruleset`] that `herd fw nft` prints.

use crate::config::Package;
use crate::fw4::{self, Environment};
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
    pub decision: Decision,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    #[error("{0} is in no local subnet and zone '{1}' has no device; pass the right --wan-zone or fix the config")]
    NoRoute(IpAddr, String),
    #[error("source and destination must be the same address family")]
    Family,
    #[error("protocol '{0}' cannot be checked; use tcp, udp or icmp")]
    Proto(String),
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
    let (_, ruleset) = fw4::render(firewall, &env);
    let wan = wan_device(&env, firewall, &q.wan_zone);
    let iif = device_for(&env, q.src)
        .or_else(|| wan.clone())
        .ok_or_else(|| CheckError::NoRoute(q.src, q.wan_zone.clone()))?;
    let local = env
        .networks
        .values()
        .any(|n| n.addrs.iter().any(|(a, _)| *a == q.dst));
    let (hook, oif) = if local {
        (Hook::Input, None)
    } else {
        let oif = device_for(&env, q.dst)
            .or(wan)
            .ok_or_else(|| CheckError::NoRoute(q.dst, q.wan_zone.clone()))?;
        (Hook::Forward, Some(oif))
    };
    let (proto, icmp_type) = match q.proto.to_lowercase().as_str() {
        "tcp" => ("tcp", None),
        "udp" => ("udp", None),
        "icmp" | "ping" if q.src.is_ipv6() => ("ipv6-icmp", Some(128)),
        "icmp" | "ping" => ("icmp", Some(8)),
        other => return Err(CheckError::Proto(other.to_string())),
    };
    let packet = Packet {
        src: q.src,
        dst: q.dst,
        proto: proto.to_string(),
        sport: q.dport.map(|_| 40000),
        dport: q.dport,
        icmp_type,
        icmp_code: icmp_type.map(|_| 0),
        iif: Some(iif.clone()),
        oif: oif.clone(),
    };
    let decision = ruleset.evaluate(&packet, hook);
    Ok(Verdict {
        hook,
        iif,
        oif,
        decision,
    })
}
