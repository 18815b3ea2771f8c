//! Redirects and `nat` sections: fw4's `parse_redirect` (DNAT port forwards,
//! local redirects, SNAT, NAT reflection) and `parse_nat` (masquerade, SNAT,
//! accept in `srcnat`), rendered with its `redirect.uc` template.
//!
//! fw4 itself only warns about a redirect it cannot use and skips it; herd
//! also records each such section as a [`RedirectError`] naming the section
//! and the option, so that `herd fw check` can refuse to answer for a
//! configuration whose port forwards are not what was written.

use super::{
    counter_log_stmts, group_by_masking, helper, helper_match, ipset, limit_time_mark, log_prefix,
    nft, parse_bool, parse_family, parse_int, parse_limit, parse_mac, parse_mark, parse_net,
    parse_port, parse_protocol, parse_target, port_text, set_match, split_af, src_mac_matches,
    zone_index, Addr, Group, Invalid, IpSet, Limit, Loader, Mark, PortRange, Proto, RuleSpec,
    SetMatch, Target, TimeMatch, ZoneRef, TIME_OPTIONS,
};
use crate::config::Section;
use crate::nft::{Match, Rule, Verdict};
use std::net::IpAddr;

/// A redirect or `nat` section fw4 skips, or reads other than written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("{section}: option '{option}' has the invalid value '{value}'; {hint}")]
    InvalidOption {
        section: String,
        option: String,
        value: String,
        hint: &'static str,
    },
    #[error("{section}: option '{option}' names zone '{zone}', which is not defined; use one of the defined zones ({known})")]
    UnknownZone {
        section: String,
        option: String,
        zone: String,
        known: String,
    },
    #[error("{section}: DNAT into zone '{zone}' without option 'dest_ip': fw4 turns it into a redirect to the router itself; set dest_ip to the internal host (or remove 'dest' if a redirect to the router is meant)")]
    MissingDestIp { section: String, zone: String },
    #[error("{section}: {message}")]
    Refused {
        section: String,
        option: &'static str,
        message: String,
    },
    #[error("{section}: option '{rewrite}' rewrites the port but neither '{option}' nor 'src_port' matches one: fw4 then writes the port mapping without a protocol match, which nft refuses (\"transport protocol mapping is only valid after transport protocol match\") so the router would load no ruleset at all; add '{option}'")]
    PortWithoutMatch {
        section: String,
        /// The missing port match (`src_dport` for DNAT, `dest_port` for SNAT).
        option: &'static str,
        /// The option that sets the rewritten port.
        rewrite: &'static str,
    },
}

impl RedirectError {
    /// The option the error is about.
    pub fn option(&self) -> &str {
        match self {
            RedirectError::InvalidOption { option, .. }
            | RedirectError::UnknownZone { option, .. } => option,
            RedirectError::MissingDestIp { .. } => "dest_ip",
            RedirectError::Refused { option, .. } => option,
            RedirectError::PortWithoutMatch { option, .. } => option,
        }
    }
}

/// What a valid value of an option looks like, for error messages.
pub(super) fn hint(option: &str) -> &'static str {
    match option {
        "src_port" | "src_dport" | "dest_port" | "snat_port" | "port" => {
            "a port is a number 0-65535 or a range FIRST-LAST with FIRST <= LAST (optionally negated with '!')"
        }
        "src_ip" | "src_dip" | "dest_ip" | "snat_ip" | "subnet" | "masq_src" | "masq_dest" => {
            "use an address, ADDRESS/PREFIX, ADDRESS/MASK, FIRST-LAST or the name of a network with addresses"
        }
        "family" => "use ipv4, ipv6 or any",
        "target" => "use dnat or snat in a redirect; accept, snat or masquerade in a nat section",
        "proto" => "use tcp, udp, tcpudp, icmp, all, or a protocol name or number",
        "reflection_src" => "use internal or external",
        "limit" | "log_limit" => "use a rate N or N/second, N/minute, N/hour, N/day",
        "src_mac" => "use a MAC address such as 00:11:22:33:44:55",
        "mark" => "use MARK or MARK/MASK (decimal or 0x hexadecimal, at most 0xffffffff)",
        "start_date" | "stop_date" => "use YYYY[-MM[-DD[THH[:MM[:SS]]]]]",
        "start_time" | "stop_time" => "use HH[:MM[:SS]]",
        "weekdays" => "use day names (Mon Tue ...), optionally negated with '!'",
        "limit_burst" => "use a number",
        "enabled" | "reflection" | "counter" | "utc_time" | "connlimit_ports" => {
            "use 1/0, on/off, true/false or yes/no"
        }
        "ipset" => "use [!]SETNAME [src|dst ...]",
        "helper" => "use the name of a conntrack helper",
        _ => "see fw4's documentation of this option",
    }
}

/// fw4's `infer_family` keeping "unset" apart from "any" (redirects and NAT
/// default an unset family to IPv4, but not an explicit `any`).
fn infer_family_opt(f: Option<u8>, objects: &[(Option<u8>, &str)]) -> Result<Option<u8>, String> {
    let mut res = f;
    for (fam, desc) in objects {
        let Some(fam) = *fam else { continue };
        if fam == 0 || Some(fam) == res {
            continue;
        }
        if res.unwrap_or(0) == 0 {
            res = Some(fam);
            continue;
        }
        let res = res.unwrap_or(0);
        return Err(format!(
            "is restricted to IPv{res} but referenced {desc} is IPv{fam} only"
        ));
    }
    Ok(res)
}

/// A `dnat` destination or `snat` source as fw4's `host()` prints it.
fn host(a: &Addr, brackets: bool) -> String {
    if let Some(a2) = a.addr2 {
        return format!("{}-{a2}", a.addr);
    }
    let masked = masked_host(a);
    if a.family == 6 && brackets {
        format!("[{masked}]")
    } else {
        masked.to_string()
    }
}

fn masked_host(a: &Addr) -> IpAddr {
    if a.addr2.is_some() || a.bits < 0 {
        return a.addr;
    }
    nft::prefix_mask(a.addr, a.bits as u8)
}

/// fw4's `to_hostaddr`: the address alone (full prefix).
fn hostaddr(a: &Addr) -> Addr {
    let bits = if a.family == 4 { 32 } else { 128 };
    super::host_addr(nft::prefix_mask(a.addr, bits), bits)
}

fn same_net(a: IpAddr, zone_addr: &Addr) -> bool {
    a.is_ipv6() == zone_addr.addr.is_ipv6()
        && super::and_ip(a, zone_addr.mask) == super::and_ip(zone_addr.addr, zone_addr.mask)
}

/// An address option: (negated, addresses).
type Net = (bool, Vec<Addr>);

/// IPv4 addresses, IPv6 addresses, the only family present (`split_af`).
type Split = (Vec<Addr>, Vec<Addr>, Option<u8>);

/// The options of a `config redirect`.
struct Redirect {
    name: String,
    family: Option<u8>,
    src: Option<ZoneRef>,
    dest: Option<ZoneRef>,
    set_match: Option<SetMatch>,
    helper: Option<helper::Helper>,
    protos: Vec<Proto>,
    src_ip: Option<Net>,
    src_mac: Vec<(bool, String)>,
    src_port: Option<PortRange>,
    src_dip: Option<Net>,
    src_dport: Option<PortRange>,
    dest_ip: Option<Net>,
    dest_port: Option<PortRange>,
    limit: Option<Limit>,
    limit_burst: Option<i64>,
    time: TimeMatch,
    mark: Option<Mark>,
    reflection: bool,
    reflection_internal: bool,
    reflection_zones: Vec<ZoneRef>,
    counter: bool,
    log: Option<String>,
    log_limit: Option<Limit>,
    target: Target,
}

/// What every rule of one redirect or nat section shares.
#[derive(Clone)]
struct NatBase {
    name: String,
    src: Option<ZoneRef>,
    dest: Option<ZoneRef>,
    target: Target,
    counter: bool,
    log: Option<String>,
    log_limit: Option<Limit>,
    limit: Option<Limit>,
    limit_burst: Option<i64>,
    time: TimeMatch,
    mark: Option<Mark>,
    helper: Option<String>,
    src_mac: Vec<(bool, String)>,
    set: Option<(IpSet, SetMatch)>,
    /// `nat` sections: their chain, `oifname` device, and that the rewrite
    /// port does not count as a port match (fw4's `has_ports`).
    nat: Option<(String, Option<String>)>,
}

/// The addresses, ports and rewrite of one emitted rule.
struct Emit<'a> {
    family: u8,
    proto: &'a Proto,
    saddrs: &'a Group,
    daddrs: &'a Group,
    raddrs: Option<&'a [Addr]>,
    sport: Option<&'a PortRange>,
    dport: Option<&'a PortRange>,
    rport: Option<&'a PortRange>,
}

const NO_ADDRS: Group = (None, None, None);

/// The source, destination and rewrite ports of a rule.
type Ports<'a> = (
    Option<&'a PortRange>,
    Option<&'a PortRange>,
    Option<&'a PortRange>,
);

/// An address option split by family.
fn split_net(n: &Option<Net>) -> Split {
    split_af(&n.iter().cloned().collect::<Vec<_>>())
}

fn ports(p: Option<&PortRange>, invert: bool) -> Option<Vec<String>> {
    p.filter(|p| p.invert == invert).map(|p| vec![port_text(p)])
}

impl Loader<'_> {
    /// `redirect @redirect[0] (NAME)`: how errors name a section.
    fn section_label(&self, s: &Section) -> String {
        let id = self.section_id(s);
        match s.single("name") {
            Some(name) => format!("{} {id} ({name})", s.kind),
            None => format!("{} {id}", s.kind),
        }
    }

    fn is_nat_section(s: &Section) -> bool {
        matches!(s.kind.as_str(), "redirect" | "nat")
    }

    /// Records an unparsable option of a redirect or nat section.
    pub(super) fn note_invalid(&mut self, s: &Section, key: &str, value: &str, hint: &'static str) {
        if Self::is_nat_section(s) {
            let section = self.section_label(s);
            self.redirect_errors.push(RedirectError::InvalidOption {
                section,
                option: key.to_string(),
                value: value.to_string(),
                hint,
            });
        }
    }

    /// Records a zone reference to no defined zone.
    pub(super) fn note_unknown_zone(&mut self, s: &Section, key: &str, zone: &str) {
        if Self::is_nat_section(s) {
            let section = self.section_label(s);
            let mut known: Vec<String> =
                self.zones.iter().map(|z| format!("'{}'", z.name)).collect();
            known.push("'*'".into());
            self.redirect_errors.push(RedirectError::UnknownZone {
                section,
                option: key.to_string(),
                zone: zone.to_string(),
                known: known.join(", "),
            });
        }
    }

    /// fw4's warning, plus the error for `check`.
    fn refuse(&mut self, s: &Section, option: &'static str, warning: &str, message: String) {
        self.warn_section(s, warning);
        let section = self.section_label(s);
        self.redirect_errors.push(RedirectError::Refused {
            section,
            option,
            message,
        });
    }

    fn net_opt(&mut self, s: &Section, key: &str) -> Result<Option<Net>, Invalid> {
        let nets = self.env.networks.clone();
        self.opt(s, key, None, |v| parse_net(v, &nets))
    }

    fn zone_list(&mut self, s: &Section, key: &str) -> Result<Vec<ZoneRef>, Invalid> {
        let mut out = Vec::new();
        for v in s.values(key) {
            match self.zone_ref(&v) {
                Some(r) => out.push(r),
                None => {
                    self.warn_section(s, &format!("option '{key}' specifies invalid value '{v}'"));
                    self.note_unknown_zone(s, key, &v);
                    return Err(Invalid);
                }
            }
        }
        Ok(out)
    }

    fn warn_unsupported(&mut self, s: &Section, keys: &[&str]) {
        for key in keys {
            if s.get(key).is_some() {
                self.warn_section(s, &format!("option '{key}' is not supported by fw4"));
            }
        }
    }

    fn redirect_options(&mut self, s: &Section) -> Result<Option<Redirect>, Invalid> {
        let enabled = self.bool_opt(s, "enabled", true)?;
        let name = self.name_opt(s)?;
        if s.get("_name").is_some() {
            self.warn_section(s, "option '_name' is deprecated by fw4");
        }
        let family = self.opt(s, "family", None, parse_family)?;
        let src = self.opt_zone(s, "src")?;
        let dest = self.opt_zone(s, "dest")?;
        let set_match = self.opt(s, "ipset", None, ipset::parse_setmatch)?;
        let helpers = self.env.helpers.clone();
        let helper = self.opt(s, "helper", None, |v| helper::parse_cthelper(v, &helpers))?;
        if matches!(helper, Some((true, _))) {
            self.warn_section(s, "option 'helper' must not be negated");
            return Err(Invalid);
        }
        let protos = self.list(s, "proto", Some("tcpudp"), parse_protocol)?;
        let src_ip = self.net_opt(s, "src_ip")?;
        let src_mac = self.list(s, "src_mac", None, |v| parse_mac(v).map(|m| vec![m]))?;
        let src_port = self.opt(s, "src_port", None, parse_port)?;
        let src_dip = self.net_opt(s, "src_dip")?;
        let src_dport = self.opt(s, "src_dport", None, parse_port)?;
        let dest_ip = self.net_opt(s, "dest_ip")?;
        let dest_port = self.opt(s, "dest_port", None, parse_port)?;
        let limit = self.opt(s, "limit", None, parse_limit)?;
        let limit_burst = self.opt(s, "limit_burst", None, parse_int)?;
        self.opt(s, "utc_time", None, parse_bool)?;
        let time = self.time_options(s)?;
        let mark = self.opt(s, "mark", None, parse_mark)?;
        let reflection = self
            .opt(s, "reflection", Some("1"), parse_bool)?
            .unwrap_or(true);
        let reflection_internal = self
            .opt(s, "reflection_src", Some("internal"), |v| {
                super::parse_enum(v, &[("internal", true), ("external", false)])
            })?
            .unwrap_or(true);
        let reflection_zones = self.zone_list(s, "reflection_zone")?;
        let counter = self.bool_opt(s, "counter", true)?;
        let log = self.opt(s, "log", None, |v| Some(v.to_string()))?;
        let log_limit = self.opt(s, "log_limit", None, parse_limit)?;
        let target = self
            .opt(s, "target", Some("dnat"), parse_target)?
            .unwrap_or(Target::Dnat);
        self.warn_unsupported(s, &["extra", "monthdays"]);
        self.warn_unknown(
            s,
            &[
                &[
                    "enabled",
                    "name",
                    "_name",
                    "family",
                    "src",
                    "dest",
                    "ipset",
                    "helper",
                    "proto",
                    "src_ip",
                    "src_mac",
                    "src_port",
                    "src_dip",
                    "src_dport",
                    "dest_ip",
                    "dest_port",
                    "extra",
                    "limit",
                    "limit_burst",
                    "mark",
                    "reflection",
                    "reflection_src",
                    "reflection_zone",
                    "counter",
                    "log",
                    "log_limit",
                    "target",
                ][..],
                TIME_OPTIONS,
            ]
            .concat(),
        );
        if !enabled {
            self.warn_section(s, "is disabled, ignoring section");
            return Ok(None);
        }
        Ok(Some(Redirect {
            name,
            family,
            src,
            dest,
            set_match,
            helper: helper.map(|h| h.1),
            protos,
            src_ip,
            src_mac,
            src_port,
            src_dip,
            src_dport,
            dest_ip,
            dest_port,
            limit,
            limit_burst,
            time,
            mark,
            reflection,
            reflection_internal,
            reflection_zones,
            counter,
            log,
            log_limit,
            target,
        }))
    }

    /// fw4's `parse_redirect`.
    pub(super) fn parse_redirect(&mut self, s: &Section) {
        match self.redirect_options(s) {
            Err(Invalid) => self.warn_section(s, "skipped due to invalid options"),
            Ok(None) => {}
            Ok(Some(r)) => self.add_redirect(s, r),
        }
    }

    fn add_redirect(&mut self, s: &Section, mut r: Redirect) {
        if !matches!(r.target, Target::Dnat | Target::Snat) {
            let t = r.target.as_str();
            self.refuse(
                s,
                "target",
                "has invalid target specified, defaulting to dnat",
                format!("option 'target' is '{t}', but a redirect is dnat or snat; fw4 treats it as dnat"),
            );
            r.target = Target::Dnat;
        }
        r.log = log_prefix(r.log.take(), &r.name);
        let set = match &r.set_match {
            None => None,
            Some(m) => match self.lookup_set(s, m, &mut r.protos) {
                Some(set) => Some((set, m.clone())),
                None => {
                    let section = self.section_label(s);
                    self.redirect_errors.push(RedirectError::Refused {
                        section,
                        option: "ipset",
                        message: format!(
                            "option 'ipset' references set '{}', which is not defined or matches ports without proto tcp/udp; fw4 skips the section",
                            m.name
                        ),
                    });
                    return;
                }
            },
        };
        let src_zone = zone_index(r.src);
        if r.target == Target::Dnat {
            let Some(src) = src_zone else {
                if r.src.is_none() {
                    self.refuse(s, "src", "has no source specified",
                        "a DNAT needs option 'src' (the zone the traffic arrives from); fw4 skips the section".into());
                } else {
                    self.refuse(
                        s,
                        "src",
                        "must not have source '*' for dnat target",
                        "a DNAT needs a zone in option 'src', not '*'; fw4 skips the section"
                            .into(),
                    );
                }
                return;
            };
            if let Some((invert, addrs)) = &r.dest_ip {
                if *invert {
                    self.refuse(s, "dest_ip", "must not specify a negated 'dest_ip' value",
                        "option 'dest_ip' must not be negated: it is the address traffic is forwarded to; fw4 skips the section".into());
                    return;
                }
                if addrs.iter().any(|a| a.bits == -1) {
                    self.refuse(s, "dest_ip", "must not use non-contiguous masks in 'dest_ip'",
                        "option 'dest_ip' must be an address, not a non-contiguous mask; fw4 skips the section".into());
                    return;
                }
            }
            if r.dest.is_none() {
                if let Some(zone) = self.resolve_dest(&r) {
                    let msg = format!(
                        "does not specify a destination, assuming '{}'",
                        self.zones[zone].name
                    );
                    self.warn_section(s, &msg);
                    r.dest = Some(ZoneRef::Zone(zone));
                }
            }
            if r.dest_port.is_none() {
                r.dest_port = r.src_dport.clone();
            }
            let no_rewrite = r.dest_ip.as_ref().is_none_or(|(_, a)| a.is_empty());
            if let (Some(ZoneRef::Zone(d)), true) = (r.dest, no_rewrite) {
                let section = self.section_label(s);
                self.redirect_errors.push(RedirectError::MissingDestIp {
                    section,
                    zone: self.zones[d].name.clone(),
                });
            }
            if let Some(ZoneRef::Zone(d)) = r.dest {
                if r.reflection && self.zones[src].masq {
                    for flag in ["accept", "dnat", "snat"] {
                        self.zones[d].dflags.insert(flag);
                    }
                }
            }
            if r.helper.is_some() {
                self.zones[src].dflags.insert("helper");
            }
            self.zones[src].dflags.insert("dnat");
        } else {
            let refused: Option<(&'static str, &str, &str)> = match (&r.dest, &r.src_dip) {
                (None, _) => Some((
                    "dest",
                    "has no destination specified",
                    "an SNAT needs option 'dest' (the zone the traffic leaves through)",
                )),
                (Some(ZoneRef::Any), _) => Some((
                    "dest",
                    "must not have destination '*' for snat target",
                    "an SNAT needs a zone in option 'dest', not '*'",
                )),
                (_, None) => Some((
                    "src_dip",
                    "has no 'src_dip' option specified",
                    "an SNAT needs option 'src_dip' (the source address to rewrite to)",
                )),
                (_, Some((true, _))) => Some((
                    "src_dip",
                    "must not specify a negated 'src_dip' value",
                    "option 'src_dip' must not be negated",
                )),
                (_, Some((_, a))) if a.iter().any(|a| a.bits == -1) => Some((
                    "src_dip",
                    "must not use non-contiguous masks in 'src_dip'",
                    "option 'src_dip' must be an address, not a non-contiguous mask",
                )),
                _ if !r.src_mac.is_empty() => Some((
                    "src_mac",
                    "must not use 'src_mac' option for snat target",
                    "option 'src_mac' cannot be used with target snat",
                )),
                _ if r.helper.is_some() => Some((
                    "helper",
                    "must not use 'helper' option for snat target",
                    "option 'helper' cannot be used with target snat",
                )),
                _ => None,
            };
            if let Some((option, warning, why)) = refused {
                self.refuse(s, option, warning, format!("{why}; fw4 skips the section"));
                return;
            }
            if let Some(ZoneRef::Zone(d)) = r.dest {
                self.zones[d].dflags.insert("snat");
            }
        }

        let (rport, sport, dport, dport_opt, rport_opt) = match r.target {
            Target::Dnat => (
                &r.dest_port,
                &r.src_port,
                &r.src_dport,
                "src_dport",
                "dest_port",
            ),
            _ => (
                &r.src_dport,
                &r.src_port,
                &r.dest_port,
                "dest_port",
                "src_dport",
            ),
        };
        let ported = r.protos.iter().any(|p| p.name == "tcp" || p.name == "udp");
        if ported && rport.is_some() && sport.is_none() && dport.is_none() {
            let section = self.section_label(s);
            self.redirect_errors.push(RedirectError::PortWithoutMatch {
                section,
                option: dport_opt,
                rewrite: rport_opt,
            });
        }

        let base = NatBase {
            name: r.name.clone(),
            src: r.src,
            dest: r.dest,
            target: r.target,
            counter: r.counter,
            log: r.log.clone(),
            log_limit: r.log_limit.clone(),
            limit: r.limit.clone(),
            limit_burst: r.limit_burst,
            time: r.time.clone(),
            mark: r.mark,
            helper: r.helper.as_ref().map(|h| h.name.clone()),
            src_mac: r.src_mac.clone(),
            set: set.clone(),
            nat: None,
        };
        for proto in &r.protos.clone() {
            let mut family = r.family;
            if proto.name == "ipv6-icmp" {
                family = Some(6);
            }
            let tcpudp = proto.name == "tcp" || proto.name == "udp";
            let (sip, dip, rip, sport, dport, rport) = if r.target == Target::Dnat {
                (
                    split_net(&r.src_ip),
                    split_net(&r.src_dip),
                    split_net(&r.dest_ip),
                    r.src_port.as_ref().filter(|_| tcpudp),
                    r.src_dport.as_ref().filter(|_| tcpudp),
                    r.dest_port.as_ref().filter(|_| tcpudp),
                )
            } else {
                (
                    split_net(&r.src_ip),
                    split_net(&r.dest_ip),
                    split_net(&r.src_dip),
                    r.src_port.as_ref().filter(|_| tcpudp),
                    r.dest_port.as_ref().filter(|_| tcpudp),
                    r.src_dport.as_ref().filter(|_| tcpudp),
                )
            };
            let family = match infer_family_opt(
                family,
                &[
                    (set.as_ref().map(|s| s.0.family), "set match"),
                    (sip.2, "source IP"),
                    (dip.2, "destination IP"),
                    (rip.2, "rewrite IP"),
                    (self.zone_family(r.src), "source zone"),
                    (self.zone_family(r.dest), "destination zone"),
                    (r.helper.as_ref().map(|h| h.family), "helper match"),
                ],
            ) {
                Ok(f) => f,
                Err(msg) => {
                    self.refuse_family(s, &msg);
                    continue;
                }
            };

            if r.target == Target::Dnat && r.reflection && (!rip.0.is_empty() || !rip.1.is_empty())
            {
                if let (Some(src), Some(ZoneRef::Zone(_))) = (src_zone, r.dest) {
                    self.reflect(
                        s,
                        &r,
                        &base,
                        src,
                        proto,
                        (&dip, &rip),
                        (sport, dport, rport),
                    );
                }
            }

            self.warn_multiple_rewrites(s, &rip);
            let has4 = !sip.0.is_empty() || !dip.0.is_empty() || !rip.0.is_empty();
            let has6 = !sip.1.is_empty() || !dip.1.is_empty() || !rip.1.is_empty();
            if family.unwrap_or(0) == 0 && !has4 && !has6 {
                // an unset family means IPv4, an explicit "any" both
                let family = family.unwrap_or(4);
                self.emit_unaddressed(s, &base, family, proto, (sport, dport, rport));
                continue;
            }
            for (fam, has, sips, dips, rips) in [
                (4, has4, &sip.0, &dip.0, &rip.0),
                (6, has6, &sip.1, &dip.1, &rip.1),
            ] {
                if !matches!(family, None | Some(0)) && family != Some(fam) {
                    continue;
                }
                if (has4 || has6) && !has {
                    continue;
                }
                self.emit_groups(
                    s,
                    &base,
                    fam,
                    proto,
                    (sips, dips, rips),
                    (sport, dport, rport),
                );
            }
        }
    }

    /// The zone whose subnets hold the DNAT address (fw4's `resolve_dest`).
    fn resolve_dest(&self, r: &Redirect) -> Option<usize> {
        let addrs = &r.dest_ip.as_ref()?.1;
        self.zones.iter().position(|z| {
            z.related_subnets.iter().any(|za| {
                addrs
                    .iter()
                    .any(|a| a.family == za.family && same_net(a.addr, za))
            })
        })
    }

    /// NAT reflection: hosts of the reflection zones reach the forwarded
    /// port through the router's external address (a DNAT in the reflection
    /// zone's `dstnat` chain and an SNAT in its `srcnat` chain).
    #[allow(clippy::too_many_arguments)]
    fn reflect(
        &mut self,
        s: &Section,
        r: &Redirect,
        base: &NatBase,
        src: usize,
        proto: &Proto,
        (dip, rip): (&Split, &Split),
        (sport, dport, rport): Ports,
    ) {
        let eaddrs = if !dip.0.is_empty() || !dip.1.is_empty() {
            (dip.0.clone(), dip.1.clone())
        } else {
            let hosts: Vec<Addr> = self.zones[src]
                .related_subnets
                .iter()
                .map(hostaddr)
                .collect();
            let (v4, v6, _) = split_af(&[(false, hosts)]);
            (v4, v6)
        };
        let rzones = if r.reflection_zones.is_empty() {
            r.dest.into_iter().collect::<Vec<_>>()
        } else {
            r.reflection_zones.clone()
        };
        let reflected = NatBase {
            name: format!("{} (reflection)", r.name),
            counter: false,
            log: None,
            log_limit: None,
            src_mac: Vec::new(),
            set: None,
            ..base.clone()
        };
        for rzone in rzones {
            let ZoneRef::Zone(rz) = rzone else { continue };
            let related = self.zones[rz].related_subnets.clone();
            let (i4, i6, _) = split_af(&[(false, related.clone())]);
            for (fam, masq, rips, iaddrs, eaddrs) in [
                (4u8, self.zones[src].masq, &rip.0, &i4, &eaddrs.0),
                (6u8, self.zones[src].masq6, &rip.1, &i6, &eaddrs.1),
            ] {
                if !masq || rips.is_empty() {
                    continue;
                }
                let refaddrs = if r.reflection_internal {
                    iaddrs
                } else {
                    eaddrs
                };
                let mut snat_addr = refaddrs.first().cloned();
                if r.reflection_internal {
                    if let Some(za) = related
                        .iter()
                        .find(|za| za.family == rips[0].family && same_net(rips[0].addr, za))
                    {
                        snat_addr = Some(za.clone());
                    }
                }
                let Some(snat_addr) = snat_addr else {
                    let which = if r.reflection_internal {
                        "internal"
                    } else {
                        "external"
                    };
                    self.warn_section(
                        s,
                        &format!("{which} rewrite IP cannot be determined, disabling reflection"),
                    );
                    continue;
                };
                if iaddrs.is_empty() {
                    self.warn_section(
                        s,
                        "internal address range cannot be determined, disabling reflection",
                    );
                    continue;
                }
                if eaddrs.is_empty() {
                    self.warn_section(
                        s,
                        "external address range cannot be determined, disabling reflection",
                    );
                    continue;
                }
                let dnat = NatBase {
                    src: Some(rzone),
                    dest: None,
                    target: Target::Dnat,
                    ..reflected.clone()
                };
                self.emit_groups(
                    s,
                    &dnat,
                    fam,
                    proto,
                    (iaddrs, eaddrs, rips),
                    (sport, dport, rport),
                );
                let snat = NatBase {
                    src: None,
                    dest: Some(rzone),
                    target: Target::Snat,
                    ..reflected.clone()
                };
                let to = [hostaddr(&snat_addr)];
                for da in group_by_masking(rips) {
                    for sa in group_by_masking(iaddrs) {
                        let e = Emit {
                            family: fam,
                            proto,
                            saddrs: &sa,
                            daddrs: &da,
                            raddrs: Some(&to),
                            sport: None,
                            dport: rport,
                            rport: None,
                        };
                        self.emit(s, &snat, &e);
                    }
                }
            }
        }
    }

    /// One rule per pair of source and destination address groups, each
    /// rewriting to (the first of) `rips`.
    fn emit_groups(
        &mut self,
        s: &Section,
        b: &NatBase,
        family: u8,
        proto: &Proto,
        (sips, dips, rips): (&[Addr], &[Addr], &[Addr]),
        (sport, dport, rport): Ports,
    ) {
        for sa in group_by_masking(sips) {
            for da in group_by_masking(dips) {
                let e = Emit {
                    family,
                    proto,
                    saddrs: &sa,
                    daddrs: &da,
                    raddrs: Some(rips),
                    sport,
                    dport,
                    rport,
                };
                self.emit(s, b, &e);
            }
        }
    }

    /// The one rule of a section without addresses (and no rewrite address).
    fn emit_unaddressed(
        &mut self,
        s: &Section,
        b: &NatBase,
        family: u8,
        proto: &Proto,
        (sport, dport, rport): Ports,
    ) {
        let e = Emit {
            family,
            proto,
            saddrs: &NO_ADDRS,
            daddrs: &NO_ADDRS,
            raddrs: None,
            sport,
            dport,
            rport,
        };
        self.emit(s, b, &e);
    }

    /// A family conflict between options: fw4 skips the section.
    fn refuse_family(&mut self, s: &Section, msg: &str) {
        self.refuse(
            s,
            "family",
            &format!("{msg}, skipping"),
            format!("option 'family': {msg}; fw4 skips the section"),
        );
    }

    /// fw4 uses only the first rewrite address of each family.
    fn warn_multiple_rewrites(&mut self, s: &Section, rip: &Split) {
        if rip.0.len() > 1 || rip.1.len() > 1 {
            self.warn_section(
                s,
                "specifies multiple rewrite addresses, using only first one",
            );
        }
    }

    /// fw4's `add_rule` of parse_redirect and parse_nat: one rule in its NAT
    /// chain.
    fn emit(&mut self, s: &Section, b: &NatBase, e: &Emit) {
        let mut r = RuleSpec::new(String::new(), b.name.clone(), e.family, e.proto.clone());
        r.src = b.src;
        r.dest = b.dest;
        r.set_addrs(e.saddrs, e.daddrs);
        r.has_ports =
            e.sport.is_some() || e.dport.is_some() || (b.nat.is_none() && e.rport.is_some());
        r.sports_pos = ports(e.sport, false);
        r.sports_neg = ports(e.sport, true);
        r.dports_pos = ports(e.dport, false);
        r.dports_neg = ports(e.dport, true);
        r.set_src_macs(&b.src_mac);
        r.raddr = e.raddrs.and_then(|a| a.first().cloned());
        r.rport = e.rport.cloned();
        r.helper = b.helper.clone().map(|h| (false, h));
        r.limit = b.limit.clone();
        r.limit_burst = b.limit_burst;
        r.time = b.time.clone();
        r.mark = b.mark;
        r.counter = b.counter;
        r.log = b.log.clone();
        r.log_limit = b.log_limit.clone();
        r.target = Some(b.target);
        if let Some((set, m)) = &b.set {
            match ipset::map_setmatch(set, m, &e.proto.name) {
                Err(()) => {
                    self.warn_section(s, "destination MAC address matching not supported");
                    return;
                }
                Ok(fields) => {
                    r.ipset = Some(SetMatch {
                        fields,
                        ..m.clone()
                    })
                }
            }
        }
        match (&b.nat, b.target) {
            (Some((chain, device)), _) => {
                r.chain = chain.clone();
                r.nat_device = device.clone();
            }
            (None, Target::Dnat) => {
                let Some(ZoneRef::Zone(z)) = b.src else {
                    return;
                };
                r.chain = format!("dstnat_{}", self.zones[z].name);
                self.zones[z].dflags.insert("dnat");
                if r.raddr.is_none() {
                    r.target = Some(Target::Redirect);
                }
            }
            (None, _) => {
                let Some(ZoneRef::Zone(z)) = b.dest else {
                    return;
                };
                r.chain = format!("srcnat_{}", self.zones[z].name);
                self.zones[z].dflags.insert("snat");
            }
        }
        self.redirects.push(r);
    }

    /// fw4's `parse_nat`.
    pub(super) fn parse_nat(&mut self, s: &Section) {
        if self.nat_section(s).is_err() {
            self.warn_section(s, "skipped due to invalid options");
        }
    }

    fn nat_section(&mut self, s: &Section) -> Result<(), Invalid> {
        let enabled = self.bool_opt(s, "enabled", true)?;
        let name = self.name_opt(s)?;
        let family = self.opt(s, "family", None, parse_family)?;
        let src = self.opt_zone(s, "src")?;
        let device = self.opt(s, "device", None, |v| Some(v.to_string()))?;
        let mut protos = self.list(s, "proto", Some("all"), parse_protocol)?;
        let src_ip = self.net_opt(s, "src_ip")?;
        let src_port = self.opt(s, "src_port", None, parse_port)?;
        let snat_ip = self.net_opt(s, "snat_ip")?;
        if matches!(snat_ip, Some((true, _))) {
            self.warn_section(s, "option 'snat_ip' must not be negated");
            self.note_invalid(s, "snat_ip", "!", "option 'snat_ip' must not be negated");
            return Err(Invalid);
        }
        let snat_port = self.opt(s, "snat_port", None, parse_port)?;
        if snat_port.as_ref().is_some_and(|p| p.invert) {
            self.warn_section(s, "option 'snat_port' must not be negated");
            self.note_invalid(
                s,
                "snat_port",
                "!",
                "option 'snat_port' must not be negated",
            );
            return Err(Invalid);
        }
        let dest_ip = self.net_opt(s, "dest_ip")?;
        let dest_port = self.opt(s, "dest_port", None, parse_port)?;
        let limit = self.opt(s, "limit", None, parse_limit)?;
        let limit_burst = self.opt(s, "limit_burst", None, parse_int)?;
        self.opt(s, "connlimit_ports", None, parse_bool)?;
        self.opt(s, "utc_time", None, parse_bool)?;
        let time = self.time_options(s)?;
        let mark = self.opt(s, "mark", None, parse_mark)?;
        let counter = self.bool_opt(s, "counter", true)?;
        let log = self.opt(s, "log", None, |v| Some(v.to_string()))?;
        let target = self
            .opt(s, "target", Some("masquerade"), parse_target)?
            .unwrap_or(Target::Masquerade);
        self.warn_unsupported(s, &["ipset", "extra", "monthdays"]);
        self.warn_unknown(
            s,
            &[
                &[
                    "enabled",
                    "name",
                    "family",
                    "src",
                    "device",
                    "ipset",
                    "proto",
                    "src_ip",
                    "src_port",
                    "snat_ip",
                    "snat_port",
                    "dest_ip",
                    "dest_port",
                    "extra",
                    "limit",
                    "limit_burst",
                    "connlimit_ports",
                    "mark",
                    "counter",
                    "log",
                    "target",
                ][..],
                TIME_OPTIONS,
            ]
            .concat(),
        );
        if !enabled {
            self.warn_section(s, "is disabled, ignoring section");
            return Ok(());
        }
        let target = if matches!(target, Target::Accept | Target::Snat | Target::Masquerade) {
            target
        } else {
            let t = target.as_str();
            self.refuse(
                s,
                "target",
                "has invalid target specified, defaulting to masquerade",
                format!("option 'target' is '{t}', but a nat section is accept, snat or masquerade; fw4 treats it as masquerade"),
            );
            Target::Masquerade
        };
        let refused: Option<(&'static str, &str)> =
            if target == Target::Snat && snat_ip.is_none() && snat_port.is_none() {
                Some((
                    "snat_ip",
                    "needs either 'snat_ip' or 'snat_port' for target snat, ignoring section",
                ))
            } else if target != Target::Snat && snat_ip.is_some() {
                Some((
                    "snat_ip",
                    "must not use 'snat_ip' for non-snat target, ignoring section",
                ))
            } else if target != Target::Snat && snat_port.is_some() {
                Some((
                    "snat_port",
                    "must not use 'snat_port' for non-snat target, ignoring section",
                ))
            } else if (snat_port.is_some() || src_port.is_some() || dest_port.is_some())
                && !ipset::ensure_tcpudp(&mut protos)
            {
                Some((
                    "proto",
                    "specifies ports but no UDP/TCP protocol, ignoring section",
                ))
            } else if snat_ip
                .as_ref()
                .is_some_and(|(inv, a)| *inv || a.iter().any(|a| a.bits == -1 || a.invert))
            {
                Some((
                    "snat_ip",
                    "must not use inversion or non-contiguous masks in 'snat_ip', ignoring section",
                ))
            } else {
                None
            };
        if let Some((option, warning)) = refused {
            self.refuse(
                s,
                option,
                warning,
                warning.replace(", ignoring section", "; fw4 skips the section"),
            );
            return Ok(());
        }
        let log = log_prefix(log, &name);
        let chain = match src {
            Some(ZoneRef::Zone(z)) => format!("srcnat_{}", self.zones[z].name),
            _ => "srcnat".to_string(),
        };
        let base = NatBase {
            name,
            src,
            dest: None,
            target,
            counter,
            log,
            log_limit: None,
            limit,
            limit_burst,
            time,
            mark,
            helper: None,
            src_mac: Vec::new(),
            set: None,
            nat: Some((chain, device)),
        };
        for proto in &protos {
            let tcpudp = proto.name == "tcp" || proto.name == "udp";
            let (sip, dip, rip) = (split_net(&src_ip), split_net(&dest_ip), split_net(&snat_ip));
            let (sport, dport, rport) = (
                src_port.as_ref().filter(|_| tcpudp),
                dest_port.as_ref().filter(|_| tcpudp),
                snat_port.as_ref().filter(|_| tcpudp),
            );
            self.warn_multiple_rewrites(s, &rip);
            let family = match infer_family_opt(
                family,
                &[
                    (sip.2, "source IP"),
                    (dip.2, "destination IP"),
                    (rip.2, "rewrite IP"),
                    (self.zone_family(src), "source zone"),
                ],
            ) {
                Ok(f) => f,
                Err(msg) => {
                    self.refuse_family(s, &msg);
                    continue;
                }
            };
            if let Some(ZoneRef::Zone(z)) = src {
                self.zones[z].dflags.insert("snat");
            }
            let has4 = !sip.0.is_empty() || !dip.0.is_empty() || !rip.0.is_empty();
            let has6 = !sip.1.is_empty() || !dip.1.is_empty() || !rip.1.is_empty();
            let family = family.unwrap_or(if has6 && !has4 { 6 } else { 4 });
            if family == 0 && !has4 && !has6 {
                self.emit_unaddressed(s, &base, 0, proto, (sport, dport, rport));
                continue;
            }
            for (fam, sips, dips, rips) in
                [(4, &sip.0, &dip.0, &rip.0), (6, &sip.1, &dip.1, &rip.1)]
            {
                if family != 0 && family != fam {
                    continue;
                }
                self.emit_groups(
                    s,
                    &base,
                    fam,
                    proto,
                    (sips, dips, rips),
                    (sport, dport, rport),
                );
            }
        }
        Ok(())
    }
}

/// redirect.uc: one or two (rate-limited log) lines of a NAT chain.
/// `zone_limit` names the chain's zone when it has a `log_limit`.
pub(super) fn redirect_ir(r: &RuleSpec, zone_limit: Option<&str>) -> Vec<Rule> {
    let mut m = Vec::new();
    if r.family != 0 && !r.has_addrs {
        m.push(Match::Nfproto(r.family));
    }
    if !r.proto.any && !r.has_ports {
        let name = if r.proto.name == "icmp" && r.family == 6 {
            "ipv6-icmp".to_string()
        } else {
            r.proto.name.clone()
        };
        m.push(Match::L4proto {
            text: name.clone(),
            protos: vec![name],
        });
    }
    if let Some(dev) = &r.nat_device {
        m.push(Match::Ifname {
            egress: true,
            negate: false,
            text: crate::nft::quote_forced(dev),
            names: vec![dev.clone()],
        });
    }
    super::addr_port_matches(r, &mut m);
    src_mac_matches(r, &mut m);
    helper_match(r, &mut m);
    limit_time_mark(r, &mut m);
    set_match(r, &mut m);
    let mut lines = Vec::new();
    let stmts = counter_log_stmts(r, zone_limit, &m, &mut lines);
    let port = r.rport.as_ref().map(port_text);
    let verdict = match r.target {
        Some(Target::Redirect) => Verdict::Redirect {
            text: match &port {
                Some(p) => format!("redirect to {p}"),
                None => "redirect".to_string(),
            },
            port: r.rport.as_ref().map(|p| p.min),
        },
        Some(Target::Accept) => Verdict::Accept,
        Some(Target::Masquerade) => Verdict::Other("masquerade".into()),
        target => {
            let t = target.unwrap_or(Target::Dnat);
            let host = r
                .raddr
                .as_ref()
                .map(|a| host(a, r.rport.is_some()))
                .unwrap_or_default();
            let port_suffix = port.map(|p| format!(":{p}")).unwrap_or_default();
            let text = format!("{} {host}{port_suffix}", t.as_str());
            if t == Target::Dnat {
                Verdict::Dnat {
                    text,
                    addr: r.raddr.as_ref().map(masked_host),
                    port: r.rport.as_ref().map(|p| p.min),
                }
            } else {
                Verdict::Other(text)
            }
        }
    };
    lines.push(Rule {
        matches: m,
        stmts,
        verdict: Some(verdict),
        comment: Some(format!("!fw4: {}", r.name)),
    });
    lines
}
