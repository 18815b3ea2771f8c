//! fw4's semantics in Rust: a firewall (and network) configuration in, the
//! `table inet fw4` ruleset fw4 would load out, as a typed [`nft::Ruleset`].
//!
//! This follows firewall4's `fw4.uc` (option parsing, zone match rules,
//! family inference, rule chain selection) and its `ruleset.uc` templates, so
//! that printing the result is byte-identical to `fw4 print` on the same
//! configuration. Supported: defaults, zones (with log limits and CT
//! helpers), rules, forwardings, policies, masquerading, MSS clamping, reject
//! handling, redirects (DNAT, SNAT, reflection) and `nat` sections (in
//! [`nat`]), ipsets (in [`ipset`]), nftables includes. Not rendered: flow
//! offloading and script includes (they print nothing).

mod helper;
pub mod ipset;
pub mod nat;

pub use helper::{parse_helpers, Helper};
pub use ipset::{IpSet, SetMatch};
pub use nat::RedirectError;

use crate::config::{Package, Section, Value};
use crate::nft::{
    self, BaseChain, Chain, Dir, Hook, Line, Match, Policy, Rule, Ruleset, Stmt, Verdict,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A logical interface as fw4 learns it from `ubus call network.interface dump`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    /// The layer 3 device (`l3_device`, else `device`).
    pub device: Option<String>,
    /// Addresses with prefix length.
    pub addrs: Vec<(IpAddr, u8)>,
}

/// Everything fw4 reads besides the firewall package.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub networks: BTreeMap<String, Network>,
    /// Devices whose `/sys/class/net/DEV/flags` has IFF_LOOPBACK (`lo` always).
    pub loopback_devices: BTreeSet<String>,
    /// The CT helpers fw4 reads from `/usr/share/firewall4/helpers` (see
    /// [`parse_helpers`]); empty when unknown.
    pub helpers: Vec<Helper>,
    /// Files on the router fw4 may read, by path (ipset `loadfile`s).
    pub files: BTreeMap<String, String>,
}

impl Environment {
    /// The interfaces of a `network` package as they come up: `device` (or
    /// the older `ifname`, or `br-NAME` for `type bridge`) and static
    /// addresses.
    pub fn from_network_package(network: &Package) -> Environment {
        let mut env = Environment::default();
        for s in network.of_kind("interface") {
            let Some(name) = &s.name else { continue };
            let device = if s.single("type") == Some("bridge") {
                Some(format!("br-{name}"))
            } else {
                s.values("device")
                    .into_iter()
                    .next()
                    .or_else(|| s.values("ifname").into_iter().next())
            };
            let mut addrs = Vec::new();
            if s.single("proto") == Some("static") {
                for ip in s.values("ipaddr") {
                    let (addr, bits) = match ip.split_once('/') {
                        Some((a, b)) => (a.to_string(), b.parse::<u8>().ok()),
                        None => (ip.clone(), None),
                    };
                    let Ok(addr) = addr.parse::<IpAddr>() else {
                        continue;
                    };
                    let bits = bits
                        .or_else(|| s.single("netmask").and_then(mask_bits))
                        .unwrap_or(32);
                    addrs.push((addr, bits));
                }
                for ip in s.values("ip6addr") {
                    if let Some((a, b)) = ip.split_once('/') {
                        if let (Ok(a), Ok(b)) = (a.parse::<IpAddr>(), b.parse::<u8>()) {
                            addrs.push((a, b));
                        }
                    }
                }
            }
            env.networks.insert(name.clone(), Network { device, addrs });
        }
        env
    }
}

fn mask_bits(mask: &str) -> Option<u8> {
    let m: Ipv4Addr = mask.parse().ok()?;
    let n = u32::from(m);
    let bits = n.leading_ones();
    (n.checked_shl(bits).unwrap_or(0) == 0).then_some(bits as u8)
}

/// The outcome of loading a configuration the way fw4 does.
#[derive(Debug, Clone)]
pub struct Fw4 {
    pub defaults: Defaults,
    pub zones: Vec<Zone>,
    pub rules: Vec<RuleSpec>,
    /// Redirects and `nat` rules in their NAT chains (`dstnat_ZONE`,
    /// `srcnat_ZONE`, `srcnat`), rendered with fw4's `redirect.uc`.
    pub redirects: Vec<RuleSpec>,
    pub ipsets: Vec<IpSet>,
    /// Available CT helpers (the `ct helper` definitions).
    pub helpers: Vec<Helper>,
    /// Redirect and `nat` sections fw4 skips or reads other than written,
    /// named by section and option (fw4 only warns; `check` refuses them).
    pub redirect_errors: Vec<RedirectError>,
    /// nftables includes (`config include` with `type nftables`).
    pub includes: Vec<Include>,
    /// fw4's `[!] ...` messages.
    pub warnings: Vec<String>,
    pub loopback_devices: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Accept,
    Reject,
    Drop,
    Notrack,
    Helper,
    Mark,
    Dscp,
    Dnat,
    Snat,
    Masquerade,
    /// A DNAT without rewrite address: `redirect` to the router itself.
    Redirect,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Accept => "accept",
            Target::Reject => "reject",
            Target::Drop => "drop",
            Target::Notrack => "notrack",
            Target::Helper => "helper",
            Target::Mark => "mark",
            Target::Dscp => "dscp",
            Target::Dnat => "dnat",
            Target::Snat => "snat",
            Target::Masquerade => "masquerade",
            Target::Redirect => "redirect",
        }
    }
}

const TARGETS: [Target; 10] = [
    Target::Accept,
    Target::Reject,
    Target::Drop,
    Target::Notrack,
    Target::Helper,
    Target::Mark,
    Target::Dscp,
    Target::Dnat,
    Target::Snat,
    Target::Masquerade,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pol {
    Accept,
    Reject,
    Drop,
}

impl Pol {
    pub fn as_str(self) -> &'static str {
        match self {
            Pol::Accept => "accept",
            Pol::Reject => "reject",
            Pol::Drop => "drop",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Limit {
    pub rate: u64,
    pub unit: &'static str,
}

#[derive(Debug, Clone)]
pub struct Defaults {
    pub input: Pol,
    pub output: Pol,
    pub forward: Pol,
    pub drop_invalid: bool,
    pub tcp_reject_code: &'static str,
    pub any_reject_code: &'static str,
    pub synflood_protect: bool,
    pub synflood_rate: Limit,
    pub synflood_burst: Option<i64>,
    pub auto_helper: bool,
}

/// An nftables file fw4 includes at `position` (`ruleset-pre`,
/// `table-pre`, `table-post`, `ruleset-post`, `chain-pre`, `chain-post`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub path: String,
    pub position: String,
    pub chain: Option<String>,
}

/// A parsed address (fw4's `{family, addr, mask, bits, invert}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub family: u8,
    pub addr: IpAddr,
    /// Last address of a range `a-b`.
    pub addr2: Option<IpAddr>,
    pub mask: IpAddr,
    /// Prefix length, -1 for a non-contiguous mask.
    pub bits: i32,
    pub invert: bool,
}

impl Addr {
    /// fw4's `cidr()`.
    pub fn cidr(&self) -> String {
        if let Some(a2) = self.addr2 {
            return format!("{}-{}", self.addr, a2);
        }
        if (self.family == 4 && self.bits == 32) || (self.family == 6 && self.bits == 128) {
            return self.addr.to_string();
        }
        if self.bits >= 0 {
            return format!(
                "{}/{}",
                nft::prefix_mask(self.addr, self.bits as u8),
                self.bits
            );
        }
        format!("{}/{}", self.addr, self.mask)
    }
}

type Group = (Option<Vec<Addr>>, Option<Vec<Addr>>, Option<Vec<Addr>>);

/// Positive devices (`None`: any), inverted plain names, inverted wildcards.
type DeviceGroup = (Option<Vec<String>>, Vec<String>, Vec<String>);

/// A forwarding's family, source, destination and name.
type ForwardingSpec = (u8, ZoneRef, ZoneRef, Option<String>);

/// One zone match rule: a device group and subnet group of a zone.
#[derive(Debug, Clone, Default)]
pub struct ZoneMatch {
    pub family: u8,
    pub devices_pos: Option<Vec<String>>,
    pub devices_neg: Option<Vec<String>>,
    pub devices_neg_wildcard: Option<Vec<String>>,
    pub subnets_pos: Option<Vec<String>>,
    pub subnets_neg: Option<Vec<String>>,
    pub subnets_masked: Option<Vec<Addr>>,
}

#[derive(Debug, Clone)]
pub struct Zone {
    pub name: String,
    pub family: u8,
    pub input: Pol,
    pub output: Pol,
    pub forward: Pol,
    pub masq: bool,
    pub masq6: bool,
    pub masq_allow_invalid: bool,
    pub mtu_fix: bool,
    pub log: i64,
    /// `log_limit`: logging goes through the named limit `NAME.log_limit`.
    pub log_limit: Option<Limit>,
    pub counter: bool,
    /// CT helpers named by the zone's `helper` option.
    pub helpers: Vec<Helper>,
    pub match_rules: Vec<ZoneMatch>,
    pub masq4_src: Vec<Group>,
    pub masq4_dest: Vec<Group>,
    pub masq6_src: Vec<Group>,
    pub masq6_dest: Vec<Group>,
    pub sflags: BTreeSet<&'static str>,
    pub dflags: BTreeSet<&'static str>,
    pub match_devices: Vec<String>,
    pub match_subnets: Vec<String>,
    pub related_subnets: Vec<Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proto {
    pub any: bool,
    pub name: String,
    pub invert: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
    pub invert: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpType {
    pub family: u8,
    pub type4: Option<u8>,
    /// `None` for IPv6-only names; fw4 compares these even for IPv6 rules.
    pub code_min: Option<u8>,
    pub code_max: Option<u8>,
    pub type6: Option<u8>,
    pub code6_min: u8,
    pub code6_max: u8,
}

/// A zone reference in a rule: `*` or a zone (by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneRef {
    Any,
    Zone(usize),
}

/// One rule as fw4 emits it (after splitting per protocol and family).
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub chain: String,
    pub name: String,
    pub family: u8,
    pub proto: Proto,
    pub src: Option<ZoneRef>,
    pub dest: Option<ZoneRef>,
    pub has_addrs: bool,
    pub has_ports: bool,
    pub iifnames: Option<Vec<String>>,
    pub oifnames: Option<Vec<String>>,
    pub saddrs_pos: Option<Vec<String>>,
    pub saddrs_neg: Option<Vec<String>>,
    pub saddrs_masked: Option<Vec<Addr>>,
    pub daddrs_pos: Option<Vec<String>>,
    pub daddrs_neg: Option<Vec<String>>,
    pub daddrs_masked: Option<Vec<Addr>>,
    pub sports_pos: Option<Vec<String>>,
    pub sports_neg: Option<Vec<String>>,
    pub dports_pos: Option<Vec<String>>,
    pub dports_neg: Option<Vec<String>>,
    pub smacs_pos: Option<Vec<String>>,
    pub smacs_neg: Option<Vec<String>>,
    pub icmp_types: Option<Vec<u8>>,
    pub icmp_codes: Option<Vec<(u8, u8)>>,
    pub limit: Option<Limit>,
    pub limit_burst: Option<i64>,
    pub mark: Option<Mark>,
    pub set_xmark: Option<Mark>,
    pub dscp: Option<(u8, bool)>,
    pub set_dscp: Option<u8>,
    pub counter: bool,
    pub time: TimeMatch,
    pub log: Option<String>,
    pub log_limit: Option<Limit>,
    pub target: Option<Target>,
    pub jump_chain: Option<String>,
    /// `ct helper [!=] "NAME"` (invert, helper name).
    pub helper: Option<(bool, String)>,
    /// `ct helper set "NAME"` (target helper).
    pub set_helper: Option<String>,
    /// `FIELDS [!=] @SET`.
    pub ipset: Option<SetMatch>,
    /// Redirects and NAT: the rewrite address and port.
    pub raddr: Option<Addr>,
    pub rport: Option<PortRange>,
    /// `nat` sections: `oifname "DEVICE"`.
    pub nat_device: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub mark: u32,
    pub mask: u32,
    pub invert: bool,
}

impl RuleSpec {
    fn new(chain: String, name: String, family: u8, proto: Proto) -> Self {
        RuleSpec {
            chain,
            name,
            family,
            proto,
            src: None,
            dest: None,
            has_addrs: false,
            has_ports: false,
            iifnames: None,
            oifnames: None,
            saddrs_pos: None,
            saddrs_neg: None,
            saddrs_masked: None,
            daddrs_pos: None,
            daddrs_neg: None,
            daddrs_masked: None,
            sports_pos: None,
            sports_neg: None,
            dports_pos: None,
            dports_neg: None,
            smacs_pos: None,
            smacs_neg: None,
            icmp_types: None,
            icmp_codes: None,
            limit: None,
            limit_burst: None,
            mark: None,
            set_xmark: None,
            dscp: None,
            set_dscp: None,
            counter: false,
            time: TimeMatch::default(),
            log: None,
            log_limit: None,
            target: None,
            jump_chain: None,
            helper: None,
            set_helper: None,
            ipset: None,
            raddr: None,
            rport: None,
            nat_device: None,
        }
    }

    /// The source and destination address matches of one pair of groups.
    fn set_addrs(&mut self, saddrs: &Group, daddrs: &Group) {
        let any = |g: &Group| g.0.is_some() || g.1.is_some() || g.2.is_some();
        self.has_addrs = any(saddrs) || any(daddrs);
        let cidrs = |v: &Option<Vec<Addr>>| v.as_ref().map(|v| v.iter().map(Addr::cidr).collect());
        self.saddrs_pos = cidrs(&saddrs.0);
        self.saddrs_neg = cidrs(&saddrs.1);
        self.saddrs_masked = saddrs.2.clone();
        self.daddrs_pos = cidrs(&daddrs.0);
        self.daddrs_neg = cidrs(&daddrs.1);
        self.daddrs_masked = daddrs.2.clone();
    }

    /// `ether saddr` matches: the plain and the negated source MACs.
    fn set_src_macs(&mut self, macs: &[(bool, String)]) {
        let pick = |inv: bool| {
            let out: Vec<String> = macs
                .iter()
                .filter(|m| m.0 == inv)
                .map(|m| m.1.clone())
                .collect();
            (!out.is_empty()).then_some(out)
        };
        self.smacs_pos = pick(false);
        self.smacs_neg = pick(true);
    }
}

/// Loads a firewall configuration as fw4 does.
pub fn load(firewall: &Package, env: &Environment) -> Fw4 {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let ids = firewall
        .sections
        .iter()
        .map(|s| {
            let n = counts.entry(s.kind.as_str()).or_insert(0);
            *n += 1;
            (s as *const Section as usize, *n - 1)
        })
        .collect();
    let mut fw = Loader {
        includes: Vec::new(),
        ids,
        env,
        warnings: Vec::new(),
        zones: Vec::new(),
        rules: Vec::new(),
        redirects: Vec::new(),
        ipsets: Vec::new(),
        redirect_errors: Vec::new(),
        defaults: None,
    };
    for s in firewall.of_kind("defaults") {
        fw.parse_defaults(s);
    }
    if fw.defaults.is_none() {
        fw.parse_defaults(&Section::new("defaults", None));
    }
    for s in firewall.of_kind("include") {
        fw.parse_include(s);
    }
    for s in firewall.of_kind("ipset") {
        fw.parse_ipset(s);
    }
    for s in firewall.of_kind("zone") {
        fw.parse_zone(s);
    }
    for s in firewall.of_kind("rule") {
        fw.parse_rule(s);
    }
    for s in firewall.of_kind("forwarding") {
        fw.parse_forwarding(s);
    }
    for s in firewall.of_kind("redirect") {
        fw.parse_redirect(s);
    }
    for s in firewall.of_kind("nat") {
        fw.parse_nat(s);
    }
    Fw4 {
        includes: fw.includes,
        defaults: fw.defaults.unwrap_or_else(default_defaults),
        zones: fw.zones,
        rules: fw.rules,
        redirects: fw.redirects,
        ipsets: fw.ipsets,
        helpers: env
            .helpers
            .iter()
            .filter(|h| h.available)
            .cloned()
            .collect(),
        redirect_errors: fw.redirect_errors,
        warnings: fw.warnings,
        loopback_devices: env.loopback_devices.clone(),
    }
}

fn default_defaults() -> Defaults {
    Defaults {
        input: Pol::Drop,
        output: Pol::Drop,
        forward: Pol::Drop,
        drop_invalid: false,
        tcp_reject_code: "tcp-reset",
        any_reject_code: "port-unreachable",
        synflood_protect: false,
        synflood_rate: Limit {
            rate: 25,
            unit: "second",
        },
        synflood_burst: Some(50),
        auto_helper: true,
    }
}

struct Loader<'a> {
    includes: Vec<Include>,
    /// Section address → its index among sections of its type.
    ids: std::collections::HashMap<usize, usize>,
    env: &'a Environment,
    warnings: Vec<String>,
    zones: Vec<Zone>,
    rules: Vec<RuleSpec>,
    redirects: Vec<RuleSpec>,
    ipsets: Vec<IpSet>,
    redirect_errors: Vec<RedirectError>,
    defaults: Option<Defaults>,
}

/// The time options rules, redirects and nat sections share (see
/// [`TimeMatch`]; `utc_time` and `monthdays` are read or warned about only).
const TIME_OPTIONS: &[&str] = &[
    "utc_time",
    "start_date",
    "stop_date",
    "start_time",
    "stop_time",
    "weekdays",
    "monthdays",
];

/// An option failed to parse: the section is skipped (fw4's NaN).
struct Invalid;

type Parsed<T> = Result<Option<T>, Invalid>;

impl Loader<'_> {
    /// `@type[N]` or the name, in constant time (rules can number thousands).
    fn section_id(&self, s: &Section) -> String {
        if let Some(name) = &s.name {
            return name.clone();
        }
        let index = self
            .ids
            .get(&(s as *const Section as usize))
            .copied()
            .unwrap_or(0);
        format!("@{}[{index}]", s.kind)
    }

    fn warn_section(&mut self, s: &Section, msg: &str) {
        let id = self.section_id(s);
        match s.single("name") {
            Some(name) => self.warnings.push(format!("Section {id} ({name}) {msg}")),
            None => self.warnings.push(format!("Section {id} {msg}")),
        }
    }

    /// `parse_opt`: a single value, a list is an error.
    fn opt<T>(
        &mut self,
        s: &Section,
        key: &str,
        default: Option<&str>,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Parsed<T> {
        let val = match s.get(key) {
            Some(Value::List(l)) => {
                self.warn_section(s, &format!("option '{key}' must not be a list"));
                self.note_invalid(
                    s,
                    key,
                    &l.join(" "),
                    "give a single value (option, not list)",
                );
                return Err(Invalid);
            }
            Some(Value::Single(v)) => v.clone(),
            None => match default {
                Some(d) => d.to_string(),
                None => return Ok(None),
            },
        };
        match parse(&val) {
            Some(v) => Ok(Some(v)),
            None => {
                self.warn_section(
                    s,
                    &format!("option '{key}' specifies invalid value '{val}'"),
                );
                self.note_invalid(s, key, &val, nat::hint(key));
                Err(Invalid)
            }
        }
    }

    /// `parse_list`: every value (a single option split on whitespace).
    fn list<T>(
        &mut self,
        s: &Section,
        key: &str,
        default: Option<&str>,
        parse: impl Fn(&str) -> Option<Vec<T>>,
    ) -> Result<Vec<T>, Invalid> {
        let mut vals = s.values(key);
        if s.get(key).is_none() {
            if let Some(d) = default {
                vals = d.split_whitespace().map(str::to_string).collect();
            }
        }
        let mut out = Vec::new();
        for v in vals {
            match parse(&v) {
                Some(items) => out.extend(items),
                None => {
                    self.warn_section(s, &format!("option '{key}' specifies invalid value '{v}'"));
                    self.note_invalid(s, key, &v, nat::hint(key));
                    return Err(Invalid);
                }
            }
        }
        Ok(out)
    }

    /// A boolean option (`1`/`0`, `on`/`off`, ...), `default` when unset.
    fn bool_opt(&mut self, s: &Section, key: &str, default: bool) -> Result<bool, Invalid> {
        let d = if default { "1" } else { "0" };
        Ok(self.opt(s, key, Some(d), parse_bool)?.unwrap_or(default))
    }

    /// The `name` option; the section's id when unset.
    fn name_opt(&mut self, s: &Section) -> Result<String, Invalid> {
        let default_name = self.section_id(s);
        Ok(self
            .opt(s, "name", Some(&default_name), |v| Some(v.to_string()))?
            .unwrap_or(default_name))
    }

    /// An address list option: per value, its negation and addresses.
    fn net_list(&mut self, s: &Section, key: &str) -> Result<Vec<(bool, Vec<Addr>)>, Invalid> {
        let nets = self.env.networks.clone();
        self.list(s, key, None, |v| parse_net(v, &nets).map(|n| vec![n]))
    }

    /// `start_date`, `stop_date`, `start_time`, `stop_time`, `weekdays`.
    fn time_options(&mut self, s: &Section) -> Result<TimeMatch, Invalid> {
        Ok(TimeMatch {
            start_date: self.opt(s, "start_date", None, parse_date)?,
            stop_date: self.opt(s, "stop_date", None, parse_date)?,
            start_time: self.opt(s, "start_time", None, parse_time)?,
            stop_time: self.opt(s, "stop_time", None, parse_time)?,
            weekdays: self.opt(s, "weekdays", None, parse_weekdays)?,
        })
    }

    /// The family of a referenced zone (`None` for `*` or no zone).
    fn zone_family(&self, r: Option<ZoneRef>) -> Option<u8> {
        zone_index(r).map(|i| self.zones[i].family)
    }

    fn parse_defaults(&mut self, s: &Section) {
        if self.defaults.is_some() {
            self.warn_section(s, ": ignoring duplicate defaults section");
            return;
        }
        let parsed = (|| -> Result<Defaults, Invalid> {
            let input = self
                .opt(s, "input", Some("drop"), parse_policy)?
                .unwrap_or(Pol::Drop);
            let output = self
                .opt(s, "output", Some("drop"), parse_policy)?
                .unwrap_or(Pol::Drop);
            let forward = self
                .opt(s, "forward", Some("drop"), parse_policy)?
                .unwrap_or(Pol::Drop);
            let drop_invalid = self.bool_opt(s, "drop_invalid", false)?;
            let tcp_reject_code = self
                .opt(s, "tcp_reject_code", Some("tcp-reset"), parse_reject_code)?
                .unwrap_or("tcp-reset");
            let any_reject_code = self
                .opt(
                    s,
                    "any_reject_code",
                    Some("port-unreachable"),
                    parse_reject_code,
                )?
                .unwrap_or("port-unreachable");
            let syn_flood = self.opt(s, "syn_flood", None, parse_bool)?;
            let synflood_protect = self.opt(s, "synflood_protect", None, parse_bool)?;
            let synflood_rate = self
                .opt(s, "synflood_rate", Some("25/second"), parse_limit)?
                .unwrap_or(Limit {
                    rate: 25,
                    unit: "second",
                });
            let synflood_burst = self.opt(s, "synflood_burst", Some("50"), parse_int)?;
            let auto_helper = self.bool_opt(s, "auto_helper", true)?;
            Ok(Defaults {
                input,
                output,
                forward,
                drop_invalid,
                tcp_reject_code,
                any_reject_code,
                synflood_protect: synflood_protect.or(syn_flood).unwrap_or(false),
                synflood_rate,
                synflood_burst,
                auto_helper,
            })
        })();
        self.warn_unknown(
            s,
            &[
                "input",
                "output",
                "forward",
                "drop_invalid",
                "drop_invalid_early",
                "tcp_reject_code",
                "any_reject_code",
                "syn_flood",
                "synflood_protect",
                "synflood_rate",
                "synflood_burst",
                "tcp_syncookies",
                "tcp_ecn",
                "tcp_window_scaling",
                "accept_redirects",
                "accept_source_route",
                "auto_helper",
                "custom_chains",
                "disable_ipv6",
                "flow_offloading",
                "flow_offloading_hw",
                "flow_offloading_related",
                "auto_includes",
            ],
        );
        self.defaults = Some(parsed.unwrap_or_else(|_| default_defaults()));
    }

    /// fw4's warning for each option the section type does not know.
    fn warn_unknown(&mut self, s: &Section, known: &[&str]) {
        let unknown: Vec<String> = s
            .options
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k != "type" && !known.contains(&k.as_str()))
            .collect();
        for k in unknown {
            self.warn_section(s, &format!("specifies unknown option '{k}'"));
        }
    }

    fn defaults(&self) -> &Defaults {
        static FALLBACK: std::sync::OnceLock<Defaults> = std::sync::OnceLock::new();
        self.defaults
            .as_ref()
            .unwrap_or_else(|| FALLBACK.get_or_init(default_defaults))
    }

    fn parse_include(&mut self, s: &Section) {
        let enabled = s.single("enabled").and_then(parse_bool).unwrap_or(true);
        if !enabled {
            self.warn_section(s, "is disabled, ignoring section");
            return;
        }
        let Some(path) = s.single("path").map(str::to_string) else {
            self.warn_section(s, "option 'path' is mandatory but not set");
            return;
        };
        let kind = s.single("type").unwrap_or("script");
        if kind != "nftables" {
            // script includes run at reload time and print nothing
            return;
        }
        let position = s.single("position").unwrap_or("table-post").to_string();
        let chain = s.single("chain").map(str::to_string);
        let chain = match position.as_str() {
            "chain-pre" | "chain-post" => {
                if chain.is_none() {
                    let msg =
                        format!("must specify 'chain' for position {position}, ignoring section");
                    self.warn_section(s, &msg);
                    return;
                }
                chain
            }
            _ => None,
        };
        self.includes.push(Include {
            path,
            position,
            chain,
        });
    }

    fn parse_zone(&mut self, s: &Section) {
        let Ok(zone) = self.parse_zone_options(s) else {
            self.warn_section(s, "skipped due to invalid options");
            return;
        };
        let Some(zone) = zone else { return };
        self.zones.push(zone);
    }

    fn parse_zone_options(&mut self, s: &Section) -> Result<Option<Zone>, Invalid> {
        let enabled = self.bool_opt(s, "enabled", true)?;
        let name = self.opt(s, "name", None, parse_identifier)?;
        let Some(name) = name else {
            self.warn_section(s, "option 'name' is mandatory but not set");
            return Err(Invalid);
        };
        let family = self.opt(s, "family", None, parse_family)?;
        let networks = self.list(s, "network", None, |v| parse_device(v).map(|d| vec![d]))?;
        let devices = self.list(s, "device", None, |v| parse_device(v).map(|d| vec![d]))?;
        let subnets = self.net_list(s, "subnet")?;
        let d = self.defaults().clone();
        let input = self
            .opt(s, "input", Some(d.input.as_str()), parse_policy)?
            .unwrap_or(d.input);
        let output = self
            .opt(s, "output", Some(d.output.as_str()), parse_policy)?
            .unwrap_or(d.output);
        let forward = self
            .opt(s, "forward", Some(d.forward.as_str()), parse_policy)?
            .unwrap_or(d.forward);
        let masq = self.bool_opt(s, "masq", false)?;
        let masq_allow_invalid = self.bool_opt(s, "masq_allow_invalid", false)?;
        let masq_src = self.net_list(s, "masq_src")?;
        let masq_dest = self.net_list(s, "masq_dest")?;
        let masq6 = self.bool_opt(s, "masq6", false)?;
        let mtu_fix = self.bool_opt(s, "mtu_fix", false)?;
        let log = self.opt(s, "log", None, parse_int)?.unwrap_or(0);
        let log_limit = self.opt(s, "log_limit", None, parse_limit)?;
        let mut auto_helper = self.bool_opt(s, "auto_helper", true)?;
        let env_helpers = self.env.helpers.clone();
        let helpers = self.list(s, "helper", None, |v| {
            helper::parse_cthelper(v, &env_helpers).map(|(_, h)| vec![h])
        })?;
        let counter = self.bool_opt(s, "counter", true)?;
        self.warn_unknown(
            s,
            &[
                "enabled",
                "name",
                "family",
                "network",
                "device",
                "subnet",
                "input",
                "output",
                "forward",
                "masq",
                "masq_allow_invalid",
                "masq_src",
                "masq_dest",
                "masq6",
                "extra",
                "extra_src",
                "extra_dest",
                "mtu_fix",
                "custom_chains",
                "log",
                "log_limit",
                "auto_helper",
                "helper",
                "counter",
            ],
        );
        if !enabled {
            self.warn_section(s, "is disabled, ignoring section");
            return Ok(None);
        }
        for h in helpers.iter().filter(|h| !h.available) {
            let msg = format!("uses unavailable ct helper '{}'", h.name);
            self.warn_section(s, &msg);
        }
        if !self.defaults().auto_helper {
            auto_helper = false;
        }

        #[derive(Clone)]
        struct Dev {
            invert: bool,
            device: String,
        }
        let mut match_devices: Vec<Dev> = Vec::new();
        let mut related_subnets: Vec<Addr> = Vec::new();
        for (invert, dev) in &networks {
            let Some(dev) = dev else { continue };
            if let Some(net) = self.env.networks.get(dev) {
                if let Some(device) = &net.device {
                    match_devices.push(Dev {
                        invert: *invert,
                        device: device.clone(),
                    });
                }
                for (addr, bits) in &net.addrs {
                    related_subnets.push(host_addr(*addr, *bits));
                }
            }
        }
        for (invert, dev) in &devices {
            match dev {
                Some(device) => match_devices.push(Dev {
                    invert: *invert,
                    device: device.clone(),
                }),
                None => self.warn_section(s, "skipping invalid wildcard pattern '*'"),
            }
        }
        let match_subnets = split_af(&subnets);
        let masq_src = split_af(&masq_src);
        let masq_dest = split_af(&masq_dest);
        related_subnets.extend(match_subnets.0.iter().cloned());
        related_subnets.extend(match_subnets.1.iter().cloned());

        let family = match infer_family(family, &[(match_subnets.2, "subnet list")]) {
            Ok(f) => f,
            Err(msg) => {
                self.warn_section(s, &format!("{msg}, skipping"));
                return Ok(None);
            }
        };

        let mut groups: Vec<DeviceGroup> = Vec::new();
        let mut plain = Vec::new();
        let mut plain_invert = Vec::new();
        let mut wildcard_invert = Vec::new();
        let mut wildcard_groups: Vec<String> = Vec::new();
        for dev in match_devices.iter_mut() {
            let (base, wildcard) = match dev.device.strip_suffix('+') {
                Some(b) => (b.to_string(), true),
                None => (dev.device.clone(), false),
            };
            if base.contains('+') {
                let msg = format!("skipping invalid wildcard pattern '{}'", dev.device);
                self.warn_section(s, &msg);
                continue;
            }
            if !dev.invert && dev.device == "+" {
                continue;
            }
            if dev.invert && dev.device == "+" {
                dev.device = "/never/".to_string();
                dev.invert = false;
            } else if wildcard {
                dev.device = format!("{base}*");
            }
            let is_wild = wildcard;
            if !dev.invert && is_wild {
                wildcard_groups.push(dev.device.clone());
                groups.push((Some(vec![dev.device.clone()]), Vec::new(), Vec::new()));
            } else if !dev.invert {
                plain.push(dev.device.clone());
            } else if is_wild {
                wildcard_invert.push(dev.device.clone());
            } else {
                plain_invert.push(dev.device.clone());
            }
        }
        // wildcard groups share the (final) inverted lists, as in fw4
        for g in groups.iter_mut() {
            g.1 = plain_invert.clone();
            g.2 = wildcard_invert.clone();
        }
        if !plain.is_empty() {
            groups.push((Some(plain), plain_invert.clone(), wildcard_invert.clone()));
        } else if groups.is_empty() {
            groups.push((None, plain_invert.clone(), wildcard_invert.clone()));
        }

        let mut match_rules = Vec::new();
        if !match_devices.is_empty() || !match_subnets.0.is_empty() || !match_subnets.1.is_empty() {
            for (pos, neg, negw) in &groups {
                let mk = |family: u8, sub: &Group| ZoneMatch {
                    family,
                    devices_pos: pos.clone().filter(|v| !v.is_empty()),
                    devices_neg: Some(neg.clone()).filter(|v| !v.is_empty()),
                    devices_neg_wildcard: Some(negw.clone()).filter(|v| !v.is_empty()),
                    subnets_pos: sub.0.as_ref().map(|v| v.iter().map(Addr::cidr).collect()),
                    subnets_neg: sub.1.as_ref().map(|v| v.iter().map(Addr::cidr).collect()),
                    subnets_masked: sub.2.clone(),
                };
                if family == 0 && match_subnets.0.is_empty() && match_subnets.1.is_empty() {
                    match_rules.push(mk(0, &(None, None, None)));
                } else {
                    if family == 0 || family == 4 {
                        for g in group_by_masking(&match_subnets.0) {
                            match_rules.push(mk(4, &g));
                        }
                    }
                    if family == 0 || family == 6 {
                        for g in group_by_masking(&match_subnets.1) {
                            match_rules.push(mk(6, &g));
                        }
                    }
                }
            }
        }

        let mut sflags = BTreeSet::new();
        sflags.insert(input.as_str());
        let mut dflags = BTreeSet::new();
        dflags.insert(output.as_str());
        dflags.insert(forward.as_str());
        if masq || masq6 {
            dflags.insert("snat");
        }
        if (auto_helper && !(masq || masq6)) || !helpers.is_empty() {
            dflags.insert("helper");
            let assigned = if helpers.is_empty() {
                self.env.helpers.clone()
            } else {
                helpers.clone()
            };
            let index = self.zones.len();
            for h in assigned.iter().filter(|h| h.available) {
                for proto in &h.protos {
                    self.rules
                        .push(helper::assignment_rule(h, proto, &name, index));
                }
            }
        }
        let zone = Zone {
            name,
            family,
            input,
            output,
            forward,
            masq,
            masq6,
            masq_allow_invalid,
            mtu_fix,
            log,
            log_limit,
            counter,
            helpers,
            match_rules,
            masq4_src: group_by_masking(&masq_src.0),
            masq4_dest: group_by_masking(&masq_dest.0),
            masq6_src: group_by_masking(&masq_src.1),
            masq6_dest: group_by_masking(&masq_dest.1),
            sflags,
            dflags,
            match_devices: match_devices
                .iter()
                .filter(|d| !d.invert)
                .map(|d| d.device.clone())
                .collect(),
            match_subnets: related_subnets
                .iter()
                .filter(|a| !a.invert && a.bits != -1)
                .map(Addr::cidr)
                .collect(),
            related_subnets,
        };
        Ok(Some(zone))
    }

    fn zone_ref(&self, val: &str) -> Option<ZoneRef> {
        if val == "*" {
            return Some(ZoneRef::Any);
        }
        self.zones
            .iter()
            .position(|z| z.name == val)
            .map(ZoneRef::Zone)
    }

    fn parse_forwarding(&mut self, s: &Section) {
        let parsed = (|| -> Result<Option<ForwardingSpec>, Invalid> {
            let enabled = self.bool_opt(s, "enabled", true)?;
            let name = self.opt(s, "name", None, |v| Some(v.to_string()))?;
            let family = self.opt(s, "family", None, parse_family)?;
            let src = self.required_zone(s, "src")?;
            let dest = self.required_zone(s, "dest")?;
            self.warn_unknown(s, &["enabled", "name", "family", "src", "dest"]);
            if !enabled {
                self.warn_section(s, "is disabled, ignoring section");
                return Ok(None);
            }
            let fam = infer_family(
                family,
                &[
                    (self.zone_family(Some(src)), "source zone"),
                    (self.zone_family(Some(dest)), "destination zone"),
                ],
            );
            match fam {
                Ok(f) => Ok(Some((f, src, dest, name))),
                Err(msg) => {
                    self.warn_section(s, &format!("{msg}, skipping"));
                    Ok(None)
                }
            }
        })();
        let Ok(parsed) = parsed else {
            self.warn_section(s, "skipped due to invalid options");
            return;
        };
        let Some((family, src, dest, name)) = parsed else {
            return;
        };
        let zname = |r: ZoneRef| match r {
            ZoneRef::Any => "any".to_string(),
            ZoneRef::Zone(i) => self.zones[i].name.clone(),
        };
        let fam_text = if family != 0 {
            format!("{} ", nfproto_human(family))
        } else {
            String::new()
        };
        let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| {
            format!(
                "Accept {} to {} {fam_text}forwarding",
                zname(src),
                zname(dest)
            )
        });
        let chain = match src {
            ZoneRef::Any => "forward".to_string(),
            ZoneRef::Zone(i) => format!("forward_{}", self.zones[i].name),
        };
        let mut r = RuleSpec::new(
            chain,
            name,
            family,
            Proto {
                any: true,
                name: String::new(),
                invert: false,
            },
        );
        r.src = Some(src);
        r.dest = Some(dest);
        match dest {
            ZoneRef::Any => r.target = Some(Target::Accept),
            ZoneRef::Zone(i) => {
                r.jump_chain = Some(format!("accept_to_{}", self.zones[i].name));
                self.zones[i].dflags.insert("accept");
            }
        }
        self.rules.push(r);
    }

    fn required_zone(&mut self, s: &Section, key: &str) -> Result<ZoneRef, Invalid> {
        match self.opt_zone(s, key)? {
            Some(r) => Ok(r),
            None => {
                self.warn_section(s, &format!("option '{key}' is mandatory but not set"));
                Err(Invalid)
            }
        }
    }

    fn opt_zone(&mut self, s: &Section, key: &str) -> Parsed<ZoneRef> {
        match self.opt(s, key, None, |v| Some(v.to_string()))? {
            None => Ok(None),
            Some(v) => match self.zone_ref(&v) {
                Some(r) => Ok(Some(r)),
                None => {
                    self.warn_section(s, &format!("option '{key}' specifies invalid value '{v}'"));
                    self.note_unknown_zone(s, key, &v);
                    Err(Invalid)
                }
            },
        }
    }

    fn parse_rule(&mut self, s: &Section) {
        if self.parse_rule_inner(s).is_err() {
            self.warn_section(s, "skipped due to invalid options");
        }
    }

    fn parse_rule_inner(&mut self, s: &Section) -> Result<(), Invalid> {
        let enabled = self.bool_opt(s, "enabled", true)?;
        let name = self.name_opt(s)?;
        if s.get("_name").is_some() {
            self.warn_section(s, "option '_name' is deprecated by fw4");
        }
        let family = self.opt(s, "family", None, parse_family)?;
        let src = self.opt_zone(s, "src")?;
        let dest = self.opt_zone(s, "dest")?;
        let device = self.opt(s, "device", None, parse_device)?;
        if matches!(device, Some((true, _))) {
            self.warn_section(s, "option 'device' must not be negated");
            return Err(Invalid);
        }
        let direction = self.opt(s, "direction", None, |v| match v {
            "in" | "ingress" => Some(false),
            "out" | "egress" => Some(true),
            _ => None,
        })?;
        let mut protos = self.list(s, "proto", Some("tcpudp"), parse_protocol)?;
        let src_ip = self.net_list(s, "src_ip")?;
        let src_mac = self.list(s, "src_mac", None, |v| parse_mac(v).map(|m| vec![m]))?;
        let src_port = self.list(s, "src_port", None, |v| parse_port(v).map(|p| vec![p]))?;
        let dest_ip = self.net_list(s, "dest_ip")?;
        let dest_port = self.list(s, "dest_port", None, |v| parse_port(v).map(|p| vec![p]))?;
        let icmp_type = self.list(s, "icmp_type", None, |v| parse_icmptype(v).map(|t| vec![t]))?;
        let limit = self.opt(s, "limit", None, parse_limit)?;
        let limit_burst = self.opt(s, "limit_burst", None, parse_int)?;
        let mark = self.opt(s, "mark", None, parse_mark)?;
        let set_mark = self.opt(s, "set_mark", None, parse_mark)?;
        let set_xmark = self.opt(s, "set_xmark", None, parse_mark)?;
        let dscp = self.opt(s, "dscp", None, parse_dscp)?;
        let set_dscp = self.opt(s, "set_dscp", None, parse_dscp)?;
        let counter = self.bool_opt(s, "counter", true)?;
        let log = self.opt(s, "log", None, |v| Some(v.to_string()))?;
        let log_limit = self.opt(s, "log_limit", None, parse_limit)?;
        let target = self.opt(s, "target", None, parse_target)?;
        let time = self.time_options(s)?;
        let set_match = self.opt(s, "ipset", None, ipset::parse_setmatch)?;
        let env_helpers = self.env.helpers.clone();
        let helper = self.opt(s, "helper", None, |v| {
            helper::parse_cthelper(v, &env_helpers)
        })?;
        let set_helper = self.opt(s, "set_helper", None, |v| {
            helper::parse_cthelper(v, &env_helpers)
        })?;
        if matches!(set_helper, Some((true, _))) {
            self.warn_section(s, "option 'set_helper' must not be negated");
            return Err(Invalid);
        }
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
                    "device",
                    "direction",
                    "ipset",
                    "helper",
                    "set_helper",
                    "proto",
                    "src_ip",
                    "src_mac",
                    "src_port",
                    "dest_ip",
                    "dest_port",
                    "icmp_type",
                    "extra",
                    "limit",
                    "limit_burst",
                    "mark",
                    "set_mark",
                    "set_xmark",
                    "dscp",
                    "set_dscp",
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
            return Ok(());
        }
        let src_zone = zone_index(src);
        if matches!(target, Some(Target::Helper) | Some(Target::Notrack)) && src_zone.is_none() {
            let t = target.map(Target::as_str).unwrap_or_default();
            self.warn_section(s, &format!("must specify a source zone for target '{t}'"));
            return Ok(());
        }
        if target == Some(Target::Dscp) && set_dscp.is_none() {
            self.warn_section(s, "must specify option 'set_dscp' for target 'dscp'");
            return Ok(());
        }
        if target == Some(Target::Mark) && set_mark.is_none() && set_xmark.is_none() {
            self.warn_section(
                s,
                "must specify option 'set_mark' or 'set_xmark' for target 'mark'",
            );
            return Ok(());
        }
        if target == Some(Target::Helper) && set_helper.is_none() {
            self.warn_section(s, "must specify option 'set_helper' for target 'helper'");
            return Ok(());
        }
        if matches!(device, Some((false, None))) {
            self.warn_section(s, "must not specify '*' as device");
            return Ok(());
        }
        let log = log_prefix(log, &name);
        let set_xmark = match set_mark {
            Some(m) => Some(Mark {
                mark: m.mark,
                mask: m.mark | m.mask,
                invert: m.invert,
            }),
            None => set_xmark,
        };
        let ipset = match &set_match {
            None => None,
            Some(m) => match self.lookup_set(s, m, &mut protos) {
                Some(set) => Some((set, m.clone())),
                None => return Ok(()),
            },
        };
        let helper_family = |h: &Option<(bool, Helper)>| h.as_ref().map(|(_, h)| h.family);

        for proto in &protos {
            let mut family = family;
            let (mut itypes4, mut itypes6) = (Vec::new(), Vec::new());
            let (mut sports, mut dports) = (Vec::new(), Vec::new());
            match proto.name.as_str() {
                "icmp" => {
                    itypes4 = icmp_type
                        .iter()
                        .filter(|t| t.family != 6)
                        .copied()
                        .collect();
                    itypes6 = icmp_type
                        .iter()
                        .filter(|t| t.family != 4)
                        .copied()
                        .collect();
                }
                "ipv6-icmp" => {
                    family = Some(6);
                    itypes6 = icmp_type
                        .iter()
                        .filter(|t| t.family != 4)
                        .copied()
                        .collect();
                }
                "tcp" | "udp" => {
                    sports = src_port.clone();
                    dports = dest_port.clone();
                }
                _ => {}
            }
            let sip = split_af(&src_ip);
            let dip = split_af(&dest_ip);
            let fam = infer_family(
                family,
                &[
                    (ipset.as_ref().map(|s| s.0.family), "set match"),
                    (sip.2, "source IP"),
                    (dip.2, "destination IP"),
                    (self.zone_family(src), "source zone"),
                    (self.zone_family(dest), "destination zone"),
                    (helper_family(&helper), "helper match"),
                    (helper_family(&set_helper), "helper to set"),
                ],
            );
            let fam = match fam {
                Ok(f) => f,
                Err(msg) => {
                    self.warn_section(s, &format!("{msg}, skipping"));
                    continue;
                }
            };
            // `infer_family` returns 0 for "unset"; keep fw4's null/0 distinction
            let explicit = family.is_some() || fam != 0;
            let has4 =
                !sip.0.is_empty() || !dip.0.is_empty() || !itypes4.is_empty() || dscp.is_some();
            let has6 =
                !sip.1.is_empty() || !dip.1.is_empty() || !itypes6.is_empty() || dscp.is_some();
            let fam = if !explicit {
                if has4 && !has6 {
                    4
                } else if has6 && !has4 {
                    6
                } else {
                    0
                }
            } else {
                fam
            };
            let base = RuleBase {
                name: &name,
                src,
                dest,
                device: device.clone().and_then(|d| d.1),
                direction: direction.unwrap_or(false),
                counter,
                log: log.clone(),
                log_limit: log_limit.clone(),
                limit: limit.clone(),
                limit_burst,
                mark,
                set_xmark,
                dscp,
                set_dscp,
                target,
                src_mac: src_mac.clone(),
                helper: helper.as_ref().map(|(inv, h)| (*inv, h.name.clone())),
                set_helper: set_helper.as_ref().map(|(_, h)| h.name.clone()),
                ipset: ipset.clone(),
                time: time.clone(),
            };
            if fam == 0 && target != Some(Target::Dscp) && !has4 && !has6 {
                self.add_rule(
                    &base,
                    0,
                    proto,
                    &(None, None, None),
                    &(None, None, None),
                    &sports,
                    &dports,
                    None,
                    None,
                );
                continue;
            }
            if fam == 0 || fam == 4 {
                self.add_family_rules(
                    &base,
                    4,
                    proto,
                    &itypes4,
                    (&sip.0, &dip.0),
                    &sports,
                    &dports,
                );
            }
            if fam == 0 || fam == 6 {
                // fw4 tests the IPv4 code range here too (absent for IPv6-only names)
                self.add_family_rules(
                    &base,
                    6,
                    proto,
                    &itypes6,
                    (&sip.1, &dip.1),
                    &sports,
                    &dports,
                );
            }
        }
        Ok(())
    }

    /// The rules of one address family: one per pair of source and
    /// destination address groups, split as fw4 splits them into whole ICMP
    /// types (or no ICMP match) and ICMP types with a code range.
    #[allow(clippy::too_many_arguments)]
    fn add_family_rules(
        &mut self,
        base: &RuleBase,
        family: u8,
        proto: &Proto,
        icmp: &[IcmpType],
        (saddrs, daddrs): (&[Addr], &[Addr]),
        sports: &[PortRange],
        dports: &[PortRange],
    ) {
        let types: Vec<IcmpType> = icmp.iter().filter(|i| full_range(i)).copied().collect();
        let codes: Vec<IcmpType> = icmp.iter().filter(|i| !full_range(i)).copied().collect();
        // (whole types, types with a code range) per rule
        let mut icmp_splits = Vec::new();
        if !types.is_empty() || codes.is_empty() {
            icmp_splits.push((Some(types.as_slice()), None));
        }
        if !codes.is_empty() {
            icmp_splits.push((None, Some(codes.as_slice())));
        }
        for sa in group_by_masking(saddrs) {
            for da in group_by_masking(daddrs) {
                for (icmp_types, icmp_codes) in &icmp_splits {
                    self.add_rule(
                        base,
                        family,
                        proto,
                        &sa,
                        &da,
                        sports,
                        dports,
                        *icmp_types,
                        *icmp_codes,
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_rule(
        &mut self,
        b: &RuleBase,
        family: u8,
        proto: &Proto,
        saddrs: &Group,
        daddrs: &Group,
        sports: &[PortRange],
        dports: &[PortRange],
        icmp_types: Option<&[IcmpType]>,
        icmp_codes: Option<&[IcmpType]>,
    ) {
        let mut r = RuleSpec::new(String::new(), b.name.to_string(), family, proto.clone());
        r.src = b.src;
        r.dest = b.dest;
        r.set_addrs(saddrs, daddrs);
        r.has_ports = !sports.is_empty() || !dports.is_empty();
        let ports = |v: &[PortRange], inv: bool| {
            let out: Vec<String> = v
                .iter()
                .filter(|p| p.invert == inv)
                .map(port_text)
                .collect();
            (!out.is_empty()).then_some(out)
        };
        r.sports_pos = ports(sports, false);
        r.sports_neg = ports(sports, true);
        r.dports_pos = ports(dports, false);
        r.dports_neg = ports(dports, true);
        r.set_src_macs(&b.src_mac);
        r.icmp_types = icmp_types
            .map(|t| {
                t.iter()
                    .filter_map(|i| if family == 4 { i.type4 } else { i.type6 })
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty());
        r.icmp_codes = icmp_codes
            .map(|t| {
                t.iter()
                    .filter_map(|i| {
                        if family == 4 {
                            i.type4.map(|t| (t, i.code_min.unwrap_or(0)))
                        } else {
                            i.type6.map(|t| (t, i.code6_min))
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty());
        r.limit = b.limit.clone();
        r.limit_burst = b.limit_burst;
        r.mark = b.mark;
        r.set_xmark = b.set_xmark;
        r.dscp = b.dscp;
        r.set_dscp = b.set_dscp.map(|d| d.0);
        r.counter = b.counter;
        r.time = b.time.clone();
        r.log = b.log.clone();
        r.log_limit = b.log_limit.clone();
        r.target = b.target;
        r.helper = b.helper.clone();
        r.set_helper = b.set_helper.clone();
        if let Some((set, m)) = &b.ipset {
            match ipset::map_setmatch(set, m, &proto.name) {
                Err(()) => {
                    self.warnings.push(format!(
                        "Section {} destination MAC address matching not supported",
                        b.name
                    ));
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

        let src_zone = zone_index(r.src);
        let dest_zone = zone_index(r.dest);
        match r.target {
            Some(Target::Notrack) | Some(Target::Helper) => {
                let Some(i) = src_zone else { return };
                let t = r.target.map(Target::as_str).unwrap_or_default();
                r.chain = format!("{t}_{}", self.zones[i].name);
                self.zones[i].dflags.insert(t);
            }
            Some(Target::Mark) | Some(Target::Dscp) => {
                let sa = r.src == Some(ZoneRef::Any);
                let da = r.dest == Some(ZoneRef::Any);
                r.chain = if (sa && da) || (src_zone.is_some() && dest_zone.is_some()) {
                    "mangle_forward"
                } else if sa && dest_zone.is_some() {
                    "mangle_postrouting"
                } else if src_zone.is_some() && da {
                    "mangle_prerouting"
                } else if r.src.is_some() && r.dest.is_none() {
                    "mangle_input"
                } else {
                    "mangle_output"
                }
                .to_string();
                let t = r.target.map(Target::as_str).unwrap_or_default();
                if let Some(i) = src_zone {
                    self.zones[i].dflags.insert(t);
                    r.iifnames =
                        Some(self.zones[i].match_devices.clone()).filter(|v| !v.is_empty());
                }
                if let Some(i) = dest_zone {
                    self.zones[i].dflags.insert(t);
                    r.oifnames =
                        Some(self.zones[i].match_devices.clone()).filter(|v| !v.is_empty());
                }
            }
            _ => {
                r.chain = "output".to_string();
                if let Some(src) = r.src {
                    r.chain = match src {
                        ZoneRef::Zone(i) => format!(
                            "{}_{}",
                            if r.dest.is_some() { "forward" } else { "input" },
                            self.zones[i].name
                        ),
                        ZoneRef::Any => {
                            (if r.dest.is_some() { "forward" } else { "input" }).to_string()
                        }
                    };
                }
                if r.src.is_none() {
                    if let Some(ZoneRef::Zone(i)) = r.dest {
                        r.chain = format!("output_{}", self.zones[i].name);
                    }
                }
                let need_src_action = src_zone.is_some_and(|i| self.zones[i].log != 0)
                    && r.target != Some(Target::Accept);
                if let (Some(t), Some(i)) = (r.target, dest_zone) {
                    r.jump_chain = Some(format!("{}_to_{}", t.as_str(), self.zones[i].name));
                    self.zones[i].dflags.insert(t.as_str());
                } else if let (Some(t), true, Some(i)) = (r.target, need_src_action, src_zone) {
                    r.jump_chain = Some(format!("{}_from_{}", t.as_str(), self.zones[i].name));
                    self.zones[i].sflags.insert(t.as_str());
                } else if r.target == Some(Target::Reject) {
                    r.jump_chain = Some("handle_reject".to_string());
                }
            }
        }
        if let Some(dev) = &b.device {
            if b.direction {
                r.oifnames = Some(vec![dev.clone()]);
            } else {
                r.iifnames = Some(vec![dev.clone()]);
            }
        }
        self.rules.push(r);
    }
}

struct RuleBase<'a> {
    name: &'a str,
    src: Option<ZoneRef>,
    dest: Option<ZoneRef>,
    device: Option<String>,
    direction: bool,
    counter: bool,
    log: Option<String>,
    log_limit: Option<Limit>,
    limit: Option<Limit>,
    limit_burst: Option<i64>,
    mark: Option<Mark>,
    set_xmark: Option<Mark>,
    dscp: Option<(u8, bool)>,
    set_dscp: Option<(u8, bool)>,
    target: Option<Target>,
    src_mac: Vec<(bool, String)>,
    helper: Option<(bool, String)>,
    set_helper: Option<String>,
    ipset: Option<(IpSet, SetMatch)>,
    time: TimeMatch,
}

/// `meta time`, `meta hour`, `meta day` (dates and times already in nft's
/// quoted form; weekdays with their invert flag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeMatch {
    pub start_date: Option<String>,
    pub stop_date: Option<String>,
    pub start_time: Option<String>,
    pub stop_time: Option<String>,
    pub weekdays: Option<(bool, Vec<String>)>,
}

fn full_range(i: &IcmpType) -> bool {
    i.code_min == Some(0) && i.code_max == Some(0xff)
}

fn port_text(p: &PortRange) -> String {
    if p.min == p.max {
        p.min.to_string()
    } else {
        format!("{}-{}", p.min, p.max)
    }
}

fn host_addr(addr: IpAddr, bits: u8) -> Addr {
    let family = if addr.is_ipv6() { 6 } else { 4 };
    Addr {
        family,
        addr,
        addr2: None,
        mask: to_mask(bits as i32, addr.is_ipv6()).unwrap_or(addr),
        bits: bits as i32,
        invert: false,
    }
}

/// (IPv4 addresses, IPv6 addresses, family: Some(4|6) when only one is present).
fn split_af(list: &[(bool, Vec<Addr>)]) -> (Vec<Addr>, Vec<Addr>, Option<u8>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (invert, addrs) in list {
        for a in addrs {
            let a = Addr {
                invert: *invert,
                ..a.clone()
            };
            if a.family == 4 {
                v4.push(a);
            } else {
                v6.push(a);
            }
        }
    }
    let family = match (v4.is_empty(), v6.is_empty()) {
        (false, true) => Some(4),
        (true, false) => Some(6),
        _ => None,
    };
    (v4, v6, family)
}

fn nie(v: Vec<Addr>) -> Option<Vec<Addr>> {
    (!v.is_empty()).then_some(v)
}

/// fw4's `subnets_group_by_masking`.
fn group_by_masking(list: &[Addr]) -> Vec<Group> {
    let mut groups = Vec::new();
    let (mut plain, mut nc, mut invert_plain, mut invert_masked) = (vec![], vec![], vec![], vec![]);
    for a in list {
        match (a.invert, a.bits == -1) {
            (false, true) => nc.push(a.clone()),
            (false, false) => plain.push(a.clone()),
            (true, true) => invert_masked.push(a.clone()),
            (true, false) => invert_plain.push(a.clone()),
        }
    }
    for a in nc {
        let mut masked = vec![a];
        masked.extend(invert_masked.iter().cloned());
        groups.push((None, nie(invert_plain.clone()), Some(masked)));
    }
    if !plain.is_empty() {
        groups.push((
            Some(plain),
            nie(invert_plain.clone()),
            nie(invert_masked.clone()),
        ));
    } else if groups.is_empty() {
        groups.push((None, nie(invert_plain), nie(invert_masked)));
    }
    groups
}

/// fw4's `infer_family`: the first object family wins, a conflicting one is
/// an error message. `None` and `Some(0)` both mean "any".
fn infer_family(f: Option<u8>, objects: &[(Option<u8>, &str)]) -> Result<u8, String> {
    let mut res = f.unwrap_or(0);
    for (fam, desc) in objects {
        let Some(fam) = fam else { continue };
        if *fam == 0 || *fam == res {
            continue;
        }
        if res == 0 {
            res = *fam;
            continue;
        }
        return Err(format!(
            "is restricted to IPv{res} but referenced {desc} is IPv{fam} only"
        ));
    }
    Ok(res)
}

/// The zone a reference names, if any (not `*`, not unset).
fn zone_index(r: Option<ZoneRef>) -> Option<usize> {
    match r {
        Some(ZoneRef::Zone(i)) => Some(i),
        _ => None,
    }
}

/// fw4's `log` option: `1` logs with the prefix "NAME: ", `0` not at all,
/// any other value is the prefix itself.
fn log_prefix(log: Option<String>, name: &str) -> Option<String> {
    match log.as_deref().map(parse_bool) {
        Some(Some(true)) => Some(format!("{name}: ")),
        Some(Some(false)) => None,
        _ => log,
    }
}

/// `[!]ADDRESS`, `[!]NETWORK`...: the negation and the addresses.
fn parse_net(v: &str, networks: &BTreeMap<String, Network>) -> Option<(bool, Vec<Addr>)> {
    let (invert, v) = parse_invert(v)?;
    Some((invert, parse_subnet(&v, networks)?))
}

fn parse_invert(val: &str) -> Option<(bool, String)> {
    let t = val.trim_start_matches([' ', '\t']);
    let (invert, rest) = match t.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, val),
    };
    let rest = rest.trim();
    (!rest.is_empty()).then(|| (invert, rest.to_string()))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "on" | "true" | "yes" => Some(true),
        "0" | "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

fn parse_enum<T: Copy>(val: &str, choices: &[(&str, T)]) -> Option<T> {
    let v = val.to_lowercase();
    choices
        .iter()
        .find(|(c, _)| c.to_lowercase().starts_with(&v))
        .map(|(_, t)| *t)
}

fn parse_policy(v: &str) -> Option<Pol> {
    parse_enum(
        v,
        &[
            ("accept", Pol::Accept),
            ("reject", Pol::Reject),
            ("drop", Pol::Drop),
        ],
    )
}

fn parse_target(v: &str) -> Option<Target> {
    let choices: Vec<(&str, Target)> = TARGETS.iter().map(|t| (t.as_str(), *t)).collect();
    parse_enum(v, &choices)
}

fn parse_reject_code(v: &str) -> Option<&'static str> {
    parse_enum(
        v,
        &[
            ("tcp-reset", "tcp-reset"),
            ("port-unreachable", "port-unreachable"),
            ("admin-prohibited", "admin-prohibited"),
            ("host-unreachable", "host-unreachable"),
            ("no-route", "no-route"),
        ],
    )
}

fn parse_family(v: &str) -> Option<u8> {
    if v == "any" || v == "all" || v == "*" {
        Some(0)
    } else if v == "inet" || v.contains('4') {
        Some(4)
    } else if v.contains('6') {
        Some(6)
    } else {
        None
    }
}

fn parse_identifier(v: &str) -> Option<String> {
    let mut chars = v.chars();
    let first = chars.next()?;
    let ok_first = first.is_ascii_alphabetic() || first == '_' || first == '.';
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c));
    (ok_first && ok_rest).then(|| v.to_string())
}

/// `[!]name` or `*` (`None`).
fn parse_device(v: &str) -> Option<(bool, Option<String>)> {
    let (invert, v) = parse_invert(v)?;
    Some((invert, (v != "*").then_some(v)))
}

fn parse_int(v: &str) -> Option<i64> {
    let t = v.trim();
    if t.is_empty() {
        return Some(0);
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    t.parse::<i64>().ok()
}

fn parse_limit(v: &str) -> Option<Limit> {
    let (invert, v) = parse_invert(v)?;
    let _ = invert;
    let (n, unit) = match v.split_once('/') {
        Some((n, u)) => (n, Some(u)),
        None => (v.as_str(), None),
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rate = n.parse().ok()?;
    let unit = match unit {
        None => "second",
        Some(u) if !u.is_empty() && u.bytes().all(|b| b.is_ascii_lowercase()) => parse_enum(
            u,
            &[
                ("second", "second"),
                ("minute", "minute"),
                ("hour", "hour"),
                ("day", "day"),
            ],
        )?,
        Some(_) => return None,
    };
    Some(Limit { rate, unit })
}

fn parse_port(v: &str) -> Option<PortRange> {
    let (invert, v) = parse_invert(v)?;
    let (a, b) = match v.split_once(['-', ':']) {
        Some((a, b)) => (a, Some(b)),
        None => (v.as_str(), None),
    };
    let num = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.len() <= 5 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let min = num(a)?;
    let max = match b {
        Some(b) => num(b)?,
        None => min,
    };
    if min > max || max > 65535 {
        return None;
    }
    Some(PortRange {
        min: min as u16,
        max: max as u16,
        invert,
    })
}

fn parse_mac(v: &str) -> Option<(bool, String)> {
    let (invert, v) = parse_invert(v)?;
    let parts: Vec<&str> = v.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = Vec::new();
    for p in parts {
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        out.push(format!("{:02x}", u8::from_str_radix(p, 16).ok()?));
    }
    Some((invert, out.join(":")))
}

/// `HH[:MM[:SS]]` → `"HH:MM:SS"`.
fn parse_time(v: &str) -> Option<String> {
    let parts: Vec<&str> = v.split(':').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut n = [0u32; 3];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n[i] = p.parse().ok()?;
    }
    if n[0] > 23 || n[1] > 59 || n[2] > 59 {
        return None;
    }
    Some(format!("\"{:02}:{:02}:{:02}\"", n[0], n[1], n[2]))
}

/// `YYYY[-MM[-DD[THH[:MM[:SS]]]]]` → `"YYYY-MM-DD HH:MM:SS"`.
fn parse_date(v: &str) -> Option<String> {
    let (date, time) = match v.split_once('T') {
        Some((d, t)) => (d, t),
        None => (v, "0"),
    };
    let parts: Vec<&str> = date.split('-').collect();
    if parts.is_empty() || parts.len() > 3 || parts[0].len() != 4 {
        return None;
    }
    let mut n = [0u32, 1, 1];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || (i > 0 && p.len() > 2) || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n[i] = p.parse().ok()?;
    }
    if !(1970..=2038).contains(&n[0]) || n[1] > 12 || n[2] > 31 {
        return None;
    }
    let t = parse_time(time)?;
    Some(format!(
        "\"{:04}-{:02}-{:02} {}",
        n[0],
        n[1].max(1),
        n[2].max(1),
        &t[1..]
    ))
}

fn parse_weekdays(v: &str) -> Option<(bool, Vec<String>)> {
    let (invert, v) = parse_invert(v)?;
    let days = [
        ("Monday", "Monday"),
        ("Tuesday", "Tuesday"),
        ("Wednesday", "Wednesday"),
        ("Thursday", "Thursday"),
        ("Friday", "Friday"),
        ("Saturday", "Saturday"),
        ("Sunday", "Sunday"),
    ];
    let mut out: Vec<String> = Vec::new();
    for d in v.split_whitespace() {
        let day = parse_enum(d, &days)?;
        if !out.iter().any(|x| x == day) {
            out.push(day.to_string());
        }
    }
    (!out.is_empty()).then_some((invert, out))
}

fn parse_number_u32(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

fn parse_mark(v: &str) -> Option<Mark> {
    let (invert, v) = parse_invert(v)?;
    let (m, mask) = match v.split_once('/') {
        Some((m, k)) => (m, Some(k)),
        None => (v.as_str(), None),
    };
    let mark = parse_number_u32(m).filter(|n| *n <= 0xFFFF_FFFF)?;
    let mask = match mask {
        Some(k) => parse_number_u32(k).filter(|n| *n <= 0xFFFF_FFFF)?,
        None => 0xFFFF_FFFF,
    };
    Some(Mark {
        mark: mark as u32,
        mask: mask as u32,
        invert,
    })
}

fn parse_dscp(v: &str) -> Option<(u8, bool)> {
    let (invert, v) = parse_invert(v)?;
    let up = v.to_uppercase();
    let classes = [
        ("CS0", 0x00),
        ("CS1", 0x08),
        ("CS2", 0x10),
        ("CS3", 0x18),
        ("CS4", 0x20),
        ("CS5", 0x28),
        ("CS6", 0x30),
        ("CS7", 0x38),
        ("BE", 0x00),
        ("LE", 0x01),
        ("AF11", 0x0a),
        ("AF12", 0x0c),
        ("AF13", 0x0e),
        ("AF21", 0x12),
        ("AF22", 0x14),
        ("AF23", 0x16),
        ("AF31", 0x1a),
        ("AF32", 0x1c),
        ("AF33", 0x1e),
        ("AF41", 0x22),
        ("AF42", 0x24),
        ("AF43", 0x26),
        ("EF", 0x2e),
    ];
    if let Some((_, d)) = classes.iter().find(|(c, _)| *c == up) {
        return Some((*d, invert));
    }
    let n = parse_number_u32(&v.to_lowercase())?;
    (n <= 0x3f).then_some((n as u8, invert))
}

fn parse_protocol(v: &str) -> Option<Vec<Proto>> {
    let (invert, v) = parse_invert(v)?;
    let v = v.to_lowercase();
    let p = |name: &str| Proto {
        any: false,
        name: name.to_string(),
        invert,
    };
    Some(match v.as_str() {
        "all" | "any" | "*" => vec![Proto {
            any: true,
            name: String::new(),
            invert,
        }],
        "1" | "icmp" => vec![p("icmp")],
        "58" | "icmpv6" | "ipv6-icmp" => vec![p("ipv6-icmp")],
        "tcpudp" => vec![p("tcp"), p("udp")],
        "6" => vec![p("tcp")],
        "17" => vec![p("udp")],
        other => vec![p(other)],
    })
}

fn parse_icmptype(v: &str) -> Option<IcmpType> {
    let t4 = ICMP4.iter().find(|(n, ..)| *n == v);
    let t6 = ICMP6.iter().find(|(n, ..)| *n == v);
    if t4.is_some() || t6.is_some() {
        return Some(IcmpType {
            family: match (t4.is_some(), t6.is_some()) {
                (true, true) => 0,
                (true, false) => 4,
                _ => 6,
            },
            type4: t4.map(|t| t.1),
            code_min: t4.map(|t| t.2),
            code_max: t4.map(|t| t.3),
            type6: t6.map(|t| t.1),
            code6_min: t6.map(|t| t.2).unwrap_or(0),
            code6_max: t6.map(|t| t.3).unwrap_or(0),
        });
    }
    let (t, c) = match v.split_once('/') {
        Some((t, c)) => (t, Some(c)),
        None => (v, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(t) || c.is_some_and(|c| !digits(c)) {
        return None;
    }
    let ty: u32 = t.parse().ok()?;
    let (cmin, cmax) = match c {
        Some(c) => {
            let c: u32 = c.parse().ok()?;
            (c, c)
        }
        None => (0, 0xff),
    };
    if ty > 0xff || cmin > 0xff || cmax > 0xff {
        return None;
    }
    Some(IcmpType {
        family: 0,
        type4: Some(ty as u8),
        code_min: Some(cmin as u8),
        code_max: Some(cmax as u8),
        type6: Some(ty as u8),
        code6_min: cmin as u8,
        code6_max: cmax as u8,
    })
}

/// fw4's `parse_subnet`: `addr/bits`, `addr/mask`, `a-b`, `addr` or the name
/// of a network (its addresses).
fn parse_subnet(subnet: &str, networks: &BTreeMap<String, Network>) -> Option<Vec<Addr>> {
    let parts: Vec<&str> = subnet.split('/').collect();
    match parts.len() {
        2 => {
            let a: IpAddr = parts[0].parse().ok()?;
            let v6 = a.is_ipv6();
            if let Ok(m) = parts[1].parse::<IpAddr>() {
                if m.is_ipv6() != v6 {
                    return None;
                }
                let (addr, bits) = match to_bits(m) {
                    Some(b) => (a, b as i32),
                    None => (and_ip(a, m), -1),
                };
                return Some(vec![Addr {
                    family: if v6 { 6 } else { 4 },
                    addr,
                    addr2: None,
                    mask: m,
                    bits,
                    invert: false,
                }]);
            }
            let b: i32 = parts[1].parse().ok()?;
            let mask = to_mask(b, v6)?;
            Some(vec![Addr {
                family: if v6 { 6 } else { 4 },
                addr: a,
                addr2: None,
                mask,
                bits: b.max(-1),
                invert: false,
            }])
        }
        1 => {
            let r: Vec<&str> = parts[0].split('-').collect();
            if r.len() == 2 {
                let (a, b) = (r[0].parse::<IpAddr>().ok()?, r[1].parse::<IpAddr>().ok()?);
                if a.is_ipv6() != b.is_ipv6() {
                    return None;
                }
                return Some(vec![Addr {
                    family: if a.is_ipv6() { 6 } else { 4 },
                    addr: a,
                    addr2: Some(b),
                    mask: a,
                    bits: 0,
                    invert: false,
                }]);
            }
            if r.len() != 1 {
                return None;
            }
            if let Ok(a) = parts[0].parse::<IpAddr>() {
                return Some(vec![host_addr(a, if a.is_ipv6() { 128 } else { 32 })]);
            }
            networks
                .get(parts[0])
                .map(|n| n.addrs.iter().map(|(a, b)| host_addr(*a, *b)).collect())
        }
        _ => None,
    }
}

fn to_mask(bits: i32, v6: bool) -> Option<IpAddr> {
    let (neg, bits) = if bits < 0 {
        (true, -bits)
    } else {
        (false, bits)
    };
    let max = if v6 { 128 } else { 32 };
    if bits > max {
        return None;
    }
    Some(if v6 {
        let m = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - bits)
        };
        IpAddr::V6(Ipv6Addr::from(if neg { !m } else { m }))
    } else {
        let m = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        IpAddr::V4(Ipv4Addr::from(if neg { !m } else { m }))
    })
}

fn to_bits(mask: IpAddr) -> Option<u32> {
    let (n, width) = match mask {
        IpAddr::V4(m) => (u128::from(u32::from(m)) << 96, 32),
        IpAddr::V6(m) => (u128::from(m), 128),
    };
    let ones = n.leading_ones();
    let rest = n.checked_shl(ones).unwrap_or(0);
    (rest == 0 && ones <= width).then_some(ones)
}

fn and_ip(a: IpAddr, m: IpAddr) -> IpAddr {
    match (a, m) {
        (IpAddr::V4(a), IpAddr::V4(m)) => IpAddr::V4((u32::from(a) & u32::from(m)).into()),
        (IpAddr::V6(a), IpAddr::V6(m)) => IpAddr::V6((u128::from(a) & u128::from(m)).into()),
        (a, _) => a,
    }
}

fn nfproto_human(f: u8) -> &'static str {
    match f {
        4 => "IPv4",
        6 => "IPv6",
        _ => "IPv4/IPv6",
    }
}

/// fw4's `quote(s)`: bare when it looks like an address, port or number.
fn quote(s: &str) -> String {
    let atom = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_hexdigit() || ":./-".contains(c))
    };
    let bare = s.split(" . ").all(atom);
    if bare {
        s.to_string()
    } else {
        nft::quote_forced(s)
    }
}

/// fw4's `set(v, force)`: duplicates removed, braces unless one element.
fn set<S: AsRef<str>>(v: &[S], force: bool) -> String {
    let mut seen = BTreeSet::new();
    let items: Vec<String> = v
        .iter()
        .map(|s| s.as_ref().to_string())
        .filter(|s| seen.insert(s.clone()))
        .collect();
    if force || items.len() != 1 {
        format!(
            "{{ {} }}",
            items
                .iter()
                .map(|s| quote(s))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        quote(&items[0])
    }
}

// ---------------------------------------------------------------------------
// Rendering: ruleset.uc and its partial templates.

impl Fw4 {
    fn zone_rules(&self, chain: &str) -> impl Iterator<Item = &RuleSpec> + '_ {
        let chain = chain.to_string();
        self.rules.iter().filter(move |r| r.chain == chain)
    }

    fn policy(&self, p: Pol) -> Policy {
        match p {
            Pol::Accept => Policy::Accept,
            _ => Policy::Drop,
        }
    }

    /// The ruleset fw4 would print for this configuration.
    pub fn ruleset(&self) -> Ruleset {
        let d = &self.defaults;
        let mut rs = Ruleset::default();
        rs.text("table inet fw4\nflush table inet fw4\n");
        rs.text(self.includes_text("ruleset-pre", ""));
        rs.text("\ntable inet fw4 {\n");
        rs.text(helper::definitions_text(&self.helpers));
        rs.text(ipset::definitions_text(&self.ipsets));
        rs.text("\t#\n\t# Defines\n\t#\n\n");
        for z in &self.zones {
            rs.text(zone_defines(z));
        }
        rs.text(self.limits_text());
        rs.text("\n\t#\n\t# User includes\n\t#\n\n\tinclude \"/etc/nftables.d/*.nft\"\n");
        rs.text(self.includes_text("table-pre", "\t"));
        rs.text("\n\n\t#\n\t# Filter rules\n\t#\n\n");
        add_chain(&mut rs, self.input_chain());
        add_chain(&mut rs, self.forward_chain());
        add_chain(&mut rs, self.output_chain());
        add_chain(&mut rs, self.helper_prerouting_chain());
        add_chain(&mut rs, reject_chain(d));
        if d.synflood_protect {
            add_chain(&mut rs, syn_flood_chain(d));
        }
        for (zi, z) in self.zones.iter().enumerate() {
            self.add_zone_filter_chains(&mut rs, zi, z);
        }

        rs.text("\n\t#\n\t# NAT rules\n\t#\n\n");
        let mut dstnat = base_chain("dstnat", "nat", Hook::Prerouting, "dstnat", Policy::Accept);
        push_zone_jumps(&mut dstnat, self.zones_with("dnat"), "dstnat");
        add_chain(&mut rs, dstnat);
        let mut srcnat = base_chain("srcnat", "nat", Hook::Postrouting, "srcnat", Policy::Accept);
        self.push_redirects(&mut srcnat, None);
        push_zone_jumps(&mut srcnat, self.zones_with("snat"), "srcnat");
        add_chain(&mut rs, srcnat);
        for z in &self.zones {
            if z.dflags.contains("dnat") {
                let mut c = Chain::new(format!("dstnat_{}", z.name));
                self.push_redirects(&mut c, Some(z));
                add_chain(&mut rs, c);
            }
            if z.dflags.contains("snat") {
                add_chain(&mut rs, self.zone_srcnat_chain(z));
            }
        }

        rs.text("\n\t#\n\t# Raw rules (notrack)\n\t#\n\n");
        let mut raw_pre = base_chain(
            "raw_prerouting",
            "filter",
            Hook::Prerouting,
            "raw",
            Policy::Accept,
        );
        let mut raw_out = base_chain("raw_output", "filter", Hook::Output, "raw", Policy::Accept);
        for z in self.zones_with("notrack") {
            for lm in z
                .match_rules
                .iter()
                .filter_map(|m| self.non_loopback_match(m))
            {
                raw_pre.rule(zone_jump(z, &lm, "notrack"));
            }
            for lm in z.match_rules.iter().filter_map(|m| self.loopback_match(m)) {
                raw_out.rule(zone_jump(z, &lm, "notrack"));
            }
        }
        add_chain(&mut rs, raw_pre);
        add_chain(&mut rs, raw_out);
        for z in self.zones_with("notrack") {
            add_chain(
                &mut rs,
                self.own_chain(format!("notrack_{}", z.name), LogZone::None),
            );
        }

        rs.text("\n\t#\n\t# Mangle rules\n\t#\n\n");
        add_chain(
            &mut rs,
            self.mangle_chain("mangle_prerouting", "filter", Hook::Prerouting),
        );
        let mut mpost = self.mangle_chain("mangle_postrouting", "filter", Hook::Postrouting);
        self.push_mssfix(&mut mpost, true);
        add_chain(&mut rs, mpost);
        add_chain(
            &mut rs,
            self.mangle_chain("mangle_input", "filter", Hook::Input),
        );
        add_chain(
            &mut rs,
            self.mangle_chain("mangle_output", "route", Hook::Output),
        );
        let mut mfwd = self.mangle_chain("mangle_forward", "filter", Hook::Forward);
        self.push_mssfix(&mut mfwd, false);
        rs.chain(mfwd);
        rs.text(self.includes_text("table-post", "\t"));
        rs.text("}\n");
        rs.text(self.includes_text("ruleset-post", ""));
        rs
    }

    /// The zones whose destination flags hold `flag` (the chains they need).
    fn zones_with<'a>(&'a self, flag: &'a str) -> impl Iterator<Item = &'a Zone> + 'a {
        self.zones.iter().filter(move |z| z.dflags.contains(flag))
    }

    /// The `input` base chain: loopback, established flows, syn flood, the
    /// input rules, then a jump per zone match.
    fn input_chain(&self) -> Chain {
        let d = &self.defaults;
        let mut input = self.filter_chain("input", Hook::Input, d.input);
        input.lines.push(Line::Blank);
        input.rule(loopback_accept(false, "Accept traffic from loopback"));
        input.lines.push(Line::Blank);
        self.chain_includes(&mut input, "chain-pre");
        input.rule(ct_state_vmap(d, "inbound"));
        if d.synflood_protect {
            input.rule(Rule {
                matches: vec![Match::TcpSyn],
                verdict: Some(Verdict::Jump("syn_flood".into())),
                comment: Some("!fw4: Rate limit TCP syn packets".into()),
                ..Rule::default()
            });
        }
        self.push_rules(&mut input, "input", LogZone::RuleDest);
        push_zone_jumps(&mut input, self.zones.iter(), "input");
        if d.input == Pol::Reject {
            input.rule(jump("handle_reject"));
        }
        self.chain_includes(&mut input, "chain-post");
        input
    }

    /// The `forward` base chain (chain-post includes before the reject jump,
    /// as in fw4).
    fn forward_chain(&self) -> Chain {
        let d = &self.defaults;
        let mut forward = self.filter_chain("forward", Hook::Forward, d.forward);
        forward.lines.push(Line::Blank);
        self.chain_includes(&mut forward, "chain-pre");
        forward.rule(ct_state_vmap(d, "forwarded"));
        self.push_rules(&mut forward, "forward", LogZone::RuleDest);
        push_zone_jumps(&mut forward, self.zones.iter(), "forward");
        self.chain_includes(&mut forward, "chain-post");
        if d.forward == Pol::Reject {
            forward.rule(jump("handle_reject"));
        }
        forward
    }

    /// The `output` base chain: helper jumps for loopback traffic before
    /// each zone's output jump.
    fn output_chain(&self) -> Chain {
        let d = &self.defaults;
        let mut output = self.filter_chain("output", Hook::Output, d.output);
        output.lines.push(Line::Blank);
        output.rule(loopback_accept(true, "Accept traffic towards loopback"));
        output.lines.push(Line::Blank);
        self.chain_includes(&mut output, "chain-pre");
        output.rule(ct_state_vmap(d, "outbound"));
        self.push_rules(&mut output, "output", LogZone::RuleDest);
        for z in &self.zones {
            for m in &z.match_rules {
                if z.dflags.contains("helper") {
                    if let Some(lm) = self.loopback_match(m) {
                        output.rule(zone_jump(z, &lm, "helper"));
                    }
                }
                output.rule(zone_jump(z, m, "output"));
            }
        }
        self.chain_includes(&mut output, "chain-post");
        if d.output == Pol::Reject {
            output.rule(jump("handle_reject"));
        }
        output
    }

    /// The `prerouting` chain: CT helper assignment for non-loopback traffic.
    fn helper_prerouting_chain(&self) -> Chain {
        let mut pre = base_chain(
            "prerouting",
            "filter",
            Hook::Prerouting,
            "filter",
            Policy::Accept,
        );
        for z in self.zones_with("helper") {
            for lm in z
                .match_rules
                .iter()
                .filter_map(|m| self.non_loopback_match(m))
            {
                pre.rule(zone_jump(z, &lm, "helper"));
            }
        }
        pre
    }

    /// A zone's own filter chains: `input_`, `output_`, `forward_`,
    /// `helper_`, and its verdict chains (`accept_from_`, `drop_to_`, ...).
    fn add_zone_filter_chains(&self, rs: &mut Ruleset, zi: usize, z: &Zone) {
        let d = &self.defaults;
        let own = LogZone::Of(zi);
        let mut c = self.own_chain(format!("input_{}", z.name), own);
        if z.dflags.contains("dnat") {
            c.rule(ct_status_dnat("Accept port redirections"));
        }
        c.rule(jump(&format!("{}_from_{}", z.input.as_str(), z.name)));
        add_chain(rs, c);
        let mut c = self.own_chain(format!("output_{}", z.name), own);
        c.rule(jump(&format!("{}_to_{}", z.output.as_str(), z.name)));
        add_chain(rs, c);
        let mut c = self.own_chain(format!("forward_{}", z.name), own);
        if z.dflags.contains("dnat") {
            c.rule(ct_status_dnat("Accept port forwards"));
        }
        c.rule(jump(&format!("{}_to_{}", z.forward.as_str(), z.name)));
        if d.forward != Pol::Accept && (z.log & 1) != 0 {
            c.rule(forward_policy_log(z, d.forward));
        }
        add_chain(rs, c);
        if z.dflags.contains("helper") {
            add_chain(rs, self.own_chain(format!("helper_{}", z.name), own));
        }
        for verdict in ["accept", "reject", "drop"] {
            if z.sflags.contains(verdict) {
                let mut c = Chain::new(format!("{verdict}_from_{}", z.name));
                for m in &z.match_rules {
                    for r in zone_verdict(z, m, false, verdict) {
                        c.rule(r);
                    }
                }
                add_chain(rs, c);
            }
            if z.dflags.contains(verdict) {
                let mut c = Chain::new(format!("{verdict}_to_{}", z.name));
                for m in &z.match_rules {
                    if verdict == "accept" && (z.masq || z.masq6) && !z.masq_allow_invalid {
                        for r in zone_drop_invalid(z, m) {
                            c.rule(r);
                        }
                    }
                    for r in zone_verdict(z, m, true, verdict) {
                        c.rule(r);
                    }
                }
                add_chain(rs, c);
            }
        }
    }

    /// `srcnat_ZONE`: the zone's redirects and nat rules, then masquerading
    /// per pair of source and destination groups, IPv4 before IPv6.
    fn zone_srcnat_chain(&self, z: &Zone) -> Chain {
        let mut c = Chain::new(format!("srcnat_{}", z.name));
        self.push_redirects(&mut c, Some(z));
        for (enabled, family, srcs, dests) in [
            (z.masq, 4, &z.masq4_src, &z.masq4_dest),
            (z.masq6, 6, &z.masq6_src, &z.masq6_dest),
        ] {
            if !enabled {
                continue;
            }
            for s in srcs {
                for dst in dests {
                    c.rule(zone_masq(z, family, s, dst));
                }
            }
        }
        c
    }

    /// A filter base chain at the filter priority with a default policy.
    fn filter_chain(&self, name: &str, hook: Hook, policy: Pol) -> Chain {
        base_chain(name, "filter", hook, "filter", self.policy(policy))
    }

    /// A mangle base chain holding the rules fw4 puts in it.
    fn mangle_chain(&self, name: &str, kind: &'static str, hook: Hook) -> Chain {
        let mut c = base_chain(name, kind, hook, "mangle", Policy::Accept);
        self.push_rules(&mut c, name, LogZone::None);
        c
    }

    /// MSS clamping of the zones with `mtu_fix` (egress in postrouting,
    /// ingress in forward).
    fn push_mssfix(&self, chain: &mut Chain, egress: bool) {
        for z in self.zones.iter().filter(|z| z.mtu_fix) {
            for m in &z.match_rules {
                chain.rule(zone_mssfix(z, m, egress));
            }
        }
    }

    /// A regular chain holding the rules fw4 puts in the chain of that name.
    fn own_chain(&self, name: String, zone: LogZone) -> Chain {
        let mut c = Chain::new(name);
        self.push_own_rules(&mut c, zone);
        c
    }

    /// A zone match narrowed to its non-loopback devices and subnets
    /// (traffic arriving from outside), or `None` when it matches nothing
    /// there.
    fn non_loopback_match(&self, m: &ZoneMatch) -> Option<ZoneMatch> {
        let lm = self.with_loopback_filter(m, false);
        (m.devices_neg.is_some()
            || m.subnets_neg.is_some()
            || lm.devices_pos.is_some()
            || lm.subnets_pos.is_some())
        .then_some(lm)
    }

    /// A zone match narrowed to its loopback devices and subnets (traffic
    /// the router sends itself), or `None` when it has none.
    fn loopback_match(&self, m: &ZoneMatch) -> Option<ZoneMatch> {
        let lm = self.with_loopback_filter(m, true);
        (lm.devices_pos.is_some() || lm.subnets_pos.is_some()).then_some(lm)
    }

    fn with_loopback_filter(&self, m: &ZoneMatch, want_loopback: bool) -> ZoneMatch {
        let mut lm = m.clone();
        lm.devices_pos = self.filter_loopback_devs(&m.devices_pos, want_loopback);
        lm.subnets_pos = filter_loopback_addrs(&m.subnets_pos, want_loopback);
        lm
    }

    /// Include lines for a table or ruleset position (`pre` newline, `pad` indent).
    fn includes_text(&self, position: &str, pad: &str) -> String {
        let lines: Vec<String> = self
            .includes
            .iter()
            .filter(|i| i.position == position)
            .map(|i| format!("{pad}include \"{}\"\n", i.path))
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!("\n{}", lines.concat())
        }
    }

    fn chain_includes(&self, chain: &mut Chain, position: &str) {
        for i in &self.includes {
            if i.position == position && i.chain.as_deref() == Some(chain.name.as_str()) {
                chain
                    .lines
                    .push(Line::Raw(format!("include \"{}\"", i.path)));
            }
        }
    }

    fn push_own_rules(&self, chain: &mut Chain, zone: LogZone) {
        let name = chain.name.clone();
        self.push_rules(chain, &name, zone);
    }

    fn push_rules(&self, chain: &mut Chain, name: &str, zone: LogZone) {
        for r in self.zone_rules(name) {
            let z = match zone {
                LogZone::None => None,
                LogZone::Of(i) => Some(i),
                LogZone::RuleDest => match r.dest {
                    Some(ZoneRef::Zone(i)) => Some(i),
                    _ => None,
                },
            };
            let limit = z
                .map(|i| &self.zones[i])
                .filter(|z| z.log_limit.is_some())
                .map(|z| z.name.as_str());
            for rule in rule_ir(r, limit) {
                chain.rule(rule);
            }
        }
    }

    /// The redirects of a NAT chain, with the chain's zone for log limits.
    fn push_redirects(&self, chain: &mut Chain, zone: Option<&Zone>) {
        let limit = zone
            .filter(|z| z.log_limit.is_some())
            .map(|z| z.name.as_str());
        let name = chain.name.clone();
        for r in self.redirects.iter().filter(|r| r.chain == name) {
            for rule in nat::redirect_ir(r, limit) {
                chain.rule(rule);
            }
        }
    }

    /// The `Limits` block: one named limit per zone with `log_limit`.
    fn limits_text(&self) -> String {
        let blocks: Vec<String> = self
            .zones
            .iter()
            .filter_map(|z| {
                let l = z.log_limit.as_ref()?;
                Some(format!(
                    "\tlimit {n}.log_limit {{\n\t\tcomment \"{n} log limit\"\n\t\trate {}/{}\n\t}}\n\n",
                    l.rate,
                    l.unit,
                    n = z.name
                ))
            })
            .collect();
        if blocks.is_empty() {
            return String::new();
        }
        format!("\n\t#\n\t# Limits\n\t#\n\n{}", blocks.concat())
    }

    fn filter_loopback_devs(
        &self,
        devs: &Option<Vec<String>>,
        want_loopback: bool,
    ) -> Option<Vec<String>> {
        let v: Vec<String> = devs
            .iter()
            .flatten()
            .filter(|d| (*d == "lo" || self.loopback_devices.contains(*d)) == want_loopback)
            .cloned()
            .collect();
        (!v.is_empty()).then_some(v)
    }
}

/// Renders `fw4 print` for a firewall package in an environment.
pub fn render(firewall: &Package, env: &Environment) -> (Fw4, Ruleset) {
    let fw = load(firewall, env);
    let rs = fw.ruleset();
    (fw, rs)
}

fn filter_loopback_addrs(addrs: &Option<Vec<String>>, want_loopback: bool) -> Option<Vec<String>> {
    let v: Vec<String> = addrs
        .iter()
        .flatten()
        .filter(|a| (a.starts_with("127.") || *a == "::1" || *a == "::1/128") == want_loopback)
        .cloned()
        .collect();
    (!v.is_empty()).then_some(v)
}

fn base_chain(
    name: &str,
    kind: &'static str,
    hook: Hook,
    priority: &'static str,
    policy: Policy,
) -> Chain {
    Chain {
        name: name.to_string(),
        base: Some(BaseChain {
            kind,
            hook,
            priority,
            policy,
        }),
        lines: Vec::new(),
    }
}

fn jump(chain: &str) -> Rule {
    Rule {
        verdict: Some(Verdict::Jump(chain.to_string())),
        ..Rule::default()
    }
}

/// A chain followed by the blank line fw4 prints after it.
fn add_chain(rs: &mut Ruleset, chain: Chain) {
    rs.chain(chain);
    rs.text("\n");
}

/// `define ZONE_devices = ...` and `define ZONE_subnets = ...` (a name
/// starting with a digit gets a leading `_`).
fn zone_defines(z: &Zone) -> String {
    let n = if z.name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{}", z.name)
    } else {
        z.name.clone()
    };
    format!(
        "\tdefine {n}_devices = {}\n\tdefine {n}_subnets = {}\n\n",
        set(&z.match_devices, true),
        set(&z.match_subnets, true)
    )
}

/// `iifname "lo" accept` (input) or `oifname "lo" accept` (output).
fn loopback_accept(egress: bool, what: &str) -> Rule {
    Rule {
        matches: vec![Match::Iface {
            egress,
            name: "lo".into(),
        }],
        verdict: Some(Verdict::Accept),
        comment: Some(format!("!fw4: {what}")),
        ..Rule::default()
    }
}

/// `ct state vmap { established : accept, related : accept[, invalid : drop] }`.
fn ct_state_vmap(d: &Defaults, what: &str) -> Rule {
    let extra = if d.drop_invalid {
        ", invalid : drop"
    } else {
        ""
    };
    Rule {
        matches: vec![Match::CtState(format!(
            "ct state vmap {{ established : accept, related : accept{extra} }}"
        ))],
        comment: Some(format!("!fw4: Handle {what} flows")),
        ..Rule::default()
    }
}

/// One jump per match rule of each zone into its `DIRECTION_ZONE` chain.
fn push_zone_jumps<'z>(chain: &mut Chain, zones: impl Iterator<Item = &'z Zone>, direction: &str) {
    for z in zones {
        for m in &z.match_rules {
            chain.rule(zone_jump(z, m, direction));
        }
    }
}

/// `handle_reject`: TCP reset (or ICMP) for TCP, ICMP for the rest.
fn reject_chain(d: &Defaults) -> Chain {
    let code = |c: &str| {
        if c != "tcp-reset" {
            format!("with icmpx type {c}")
        } else {
            "with tcp reset".to_string()
        }
    };
    let mut reject = Chain::new("handle_reject");
    reject.rule(Rule {
        matches: vec![Match::L4proto {
            text: "tcp".into(),
            protos: vec!["tcp".into()],
        }],
        verdict: Some(Verdict::Reject(code(d.tcp_reject_code))),
        comment: Some("!fw4: Reject TCP traffic".into()),
        ..Rule::default()
    });
    reject.rule(Rule {
        verdict: Some(Verdict::Reject(code(d.any_reject_code))),
        comment: Some("!fw4: Reject any other traffic".into()),
        ..Rule::default()
    });
    reject
}

/// `syn_flood`: SYN packets below the rate return, the rest are dropped.
fn syn_flood_chain(d: &Defaults) -> Chain {
    let mut syn = Chain::new("syn_flood");
    let burst = d
        .synflood_burst
        .filter(|b| *b != 0)
        .map(|b| format!(" burst {b} packets"))
        .unwrap_or_default();
    syn.rule(Rule {
        matches: vec![Match::Limit(format!(
            "limit rate {}/{}{burst}",
            d.synflood_rate.rate, d.synflood_rate.unit
        ))],
        verdict: Some(Verdict::Return),
        comment: Some("!fw4: Accept SYN packets below rate-limit".into()),
        ..Rule::default()
    });
    syn.rule(Rule {
        verdict: Some(Verdict::Drop),
        comment: Some("!fw4: Drop excess packets".into()),
        ..Rule::default()
    });
    syn
}

/// The log line at the end of `forward_ZONE` for a logging zone when the
/// default forward policy is not accept.
fn forward_policy_log(z: &Zone, forward: Pol) -> Rule {
    let policy = match forward {
        Pol::Reject => "reject",
        _ => "drop",
    };
    let mut matches = Vec::new();
    if z.log_limit.is_some() {
        matches.push(Match::Limit(format!("limit name \"{}.log_limit\"", z.name)));
    }
    Rule {
        matches,
        stmts: vec![Stmt::Text(format!(
            "log prefix \"{policy} {} forward: \"",
            z.name
        ))],
        ..Rule::default()
    }
}

/// zone-match.uc
fn zone_match(m: &ZoneMatch, egress: bool) -> Vec<Match> {
    let mut out = Vec::new();
    if let Some(d) = &m.devices_pos {
        out.push(Match::Ifname {
            egress,
            negate: false,
            text: set(d, false),
            names: d.clone(),
        });
    }
    if let Some(d) = &m.devices_neg {
        out.push(Match::Ifname {
            egress,
            negate: true,
            text: set(d, false),
            names: d.clone(),
        });
    }
    for w in m.devices_neg_wildcard.iter().flatten() {
        out.push(Match::Ifname {
            egress,
            negate: true,
            text: quote(w),
            names: vec![w.clone()],
        });
    }
    let dir = if egress { Dir::Dst } else { Dir::Src };
    let subnets = (&m.subnets_pos, &m.subnets_neg, &m.subnets_masked);
    addr_matches(&mut out, m.family == 6, dir, subnets);
    out
}

/// Plain, negated (as CIDR texts) and non-contiguously masked addresses.
type AddrLists<'a> = (
    &'a Option<Vec<String>>,
    &'a Option<Vec<String>>,
    &'a Option<Vec<Addr>>,
);

/// Address matches of one direction: `ip[6] saddr|daddr {...}`, the same
/// negated, and one masked match per non-contiguous mask.
fn addr_matches(out: &mut Vec<Match>, v6: bool, dir: Dir, (pos, neg, masked): AddrLists) {
    for (items, negate) in [(pos, false), (neg, true)] {
        if let Some(items) = items {
            out.push(Match::Addr {
                v6,
                dir,
                negate,
                text: set(items, false),
                items: items.clone(),
            });
        }
    }
    for a in masked.iter().flatten() {
        out.push(Match::AddrMasked {
            v6,
            dir,
            negate: a.invert,
            mask: a.mask.to_string(),
            addr: a.addr.to_string(),
        });
    }
}

/// zone-jump.uc
fn zone_jump(z: &Zone, m: &ZoneMatch, direction: &str) -> Rule {
    let mut matches = Vec::new();
    if m.family != 0 {
        matches.push(Match::Nfproto(m.family));
    }
    matches.extend(zone_match(
        m,
        direction == "output" || direction == "srcnat",
    ));
    let what = if direction == "helper" {
        "helper assignment".to_string()
    } else {
        format!("{direction} traffic")
    };
    Rule {
        matches,
        verdict: Some(Verdict::Jump(format!("{direction}_{}", z.name))),
        comment: Some(format!(
            "!fw4: Handle {} {} {what}",
            z.name,
            nfproto_human(m.family)
        )),
        ..Rule::default()
    }
}

/// zone-verdict.uc: with the zone's `log_limit`, logging is a line of its
/// own before the verdict.
fn zone_verdict(z: &Zone, m: &ZoneMatch, egress: bool, verdict: &str) -> Vec<Rule> {
    let mut matches = Vec::new();
    if m.family != 0 {
        matches.push(Match::Nfproto(m.family));
    }
    matches.extend(zone_match(m, egress));
    let log = (verdict != "accept" && (z.log & 1) != 0).then(|| {
        format!(
            "log prefix \"{verdict} {} {}: \"",
            z.name,
            if egress { "out" } else { "in" }
        )
    });
    let mut lines = Vec::new();
    let stmts = zone_counter_log(z, &matches, log, &mut lines);
    let fam = nfproto_human(m.family);
    let (v, comment) = match verdict {
        "reject" => (
            Verdict::Jump("handle_reject".into()),
            format!("!fw4: reject {} {fam} traffic", z.name),
        ),
        "accept" => (
            Verdict::Accept,
            format!("!fw4: accept {} {fam} traffic", z.name),
        ),
        _ => (
            Verdict::Drop,
            format!("!fw4: drop {} {fam} traffic", z.name),
        ),
    };
    lines.push(Rule {
        matches,
        stmts,
        verdict: Some(v),
        comment: Some(comment),
    });
    lines
}

/// `MATCHES limit name "ZONE.log_limit" log prefix "..."`: the log line of a
/// zone with `log_limit`.
fn limited_log(z: &Zone, matches: &[Match], log: String) -> Rule {
    let mut first = matches.to_vec();
    first.push(Match::Limit(format!("limit name \"{}.log_limit\"", z.name)));
    Rule {
        matches: first,
        stmts: vec![Stmt::Text(log)],
        verdict: None,
        comment: None,
    }
}

/// The counter and log statements of a zone's verdict line; with the
/// zone's `log_limit` the log is a line of its own, pushed to `lines`.
fn zone_counter_log(
    z: &Zone,
    matches: &[Match],
    log: Option<String>,
    lines: &mut Vec<Rule>,
) -> Vec<Stmt> {
    let mut stmts = Vec::new();
    if z.counter {
        stmts.push(Stmt::Counter);
    }
    match (log, &z.log_limit) {
        (Some(log), Some(_)) => lines.push(limited_log(z, matches, log)),
        (log, _) => stmts.extend(log.map(Stmt::Text)),
    }
    stmts
}

/// `ct status dnat accept`: zones with redirects accept the translated flows.
fn ct_status_dnat(what: &str) -> Rule {
    Rule {
        matches: vec![Match::CtStatus("ct status dnat".into())],
        verdict: Some(Verdict::Accept),
        comment: Some(format!("!fw4: {what}")),
        ..Rule::default()
    }
}

/// Which zone's `log_limit` applies to the rules of a chain: none, the
/// chain's own zone, or (in the base chains) each rule's destination zone.
#[derive(Debug, Clone, Copy)]
enum LogZone {
    None,
    Of(usize),
    RuleDest,
}

/// zone-drop-invalid.uc
fn zone_drop_invalid(z: &Zone, m: &ZoneMatch) -> Vec<Rule> {
    let mut matches = Vec::new();
    if z.masq ^ z.masq6 {
        matches.push(Match::Nfproto(if z.masq { 4 } else { 6 }));
    }
    matches.extend(zone_match(m, true));
    matches.push(Match::CtState("ct state invalid".into()));
    let log =
        ((z.log & 1) != 0).then(|| format!("log prefix \"drop {} invalid ct state: \"", z.name));
    let mut lines = Vec::new();
    let stmts = zone_counter_log(z, &matches, log, &mut lines);
    lines.push(Rule {
        matches,
        stmts,
        verdict: Some(Verdict::Drop),
        comment: Some("!fw4: Prevent NAT leakage".into()),
    });
    lines
}

/// zone-masq.uc
fn zone_masq(z: &Zone, family: u8, s: &Group, d: &Group) -> Rule {
    let mut matches = vec![Match::Nfproto(family)];
    let v6 = family == 6;
    let cidrs = |v: &Option<Vec<Addr>>| v.as_ref().map(|v| v.iter().map(Addr::cidr).collect());
    for (g, dir) in [(s, Dir::Src), (d, Dir::Dst)] {
        let (pos, neg) = (cidrs(&g.0), cidrs(&g.1));
        addr_matches(&mut matches, v6, dir, (&pos, &neg, &g.2));
    }
    Rule {
        matches,
        stmts: Vec::new(),
        verdict: Some(Verdict::Other("masquerade".into())),
        comment: Some(format!(
            "!fw4: Masquerade {} {} traffic",
            nfproto_human(family),
            z.name
        )),
    }
}

/// zone-mssfix.uc
fn zone_mssfix(z: &Zone, m: &ZoneMatch, egress: bool) -> Rule {
    let mut matches = Vec::new();
    if m.family != 0 {
        matches.push(Match::Nfproto(m.family));
    }
    matches.extend(zone_match(m, egress));
    let mut stmts = vec![Stmt::Text(
        "tcp flags syn / syn,fin,rst tcp option maxseg size set rt mtu".into(),
    )];
    if (z.log & 2) != 0 {
        stmts.push(Stmt::Text(format!(
            "log prefix \"MSSFIX {} out: \"",
            z.name
        )));
    }
    Rule {
        matches,
        stmts,
        verdict: None,
        comment: Some(format!(
            "!fw4: Zone {} {} {} MTU fixing",
            z.name,
            nfproto_human(m.family),
            if egress { "egress" } else { "ingress" }
        )),
    }
}

fn hex(n: u32) -> String {
    format!("0x{n:x}")
}

fn l4proto_text(family: u8, p: &Proto) -> (String, Vec<String>) {
    if p.name == "icmp" {
        return match family {
            0 => (
                set(&["icmp", "ipv6-icmp"], false),
                vec!["icmp".into(), "ipv6-icmp".into()],
            ),
            6 => ("ipv6-icmp".into(), vec!["ipv6-icmp".into()]),
            _ => ("icmp".into(), vec!["icmp".into()]),
        };
    }
    (p.name.clone(), vec![p.name.clone()])
}

/// rule.uc: one or two (log limit) rule lines. `zone_limit` names the zone
/// whose `log_limit` applies to the rule's log statement.
fn rule_ir(r: &RuleSpec, zone_limit: Option<&str>) -> Vec<Rule> {
    let mut m = Vec::new();
    if r.family != 0 && !r.has_addrs {
        m.push(Match::Nfproto(r.family));
    }
    if !r.proto.any && !r.has_ports && r.icmp_types.is_none() && r.icmp_codes.is_none() {
        let (text, protos) = l4proto_text(r.family, &r.proto);
        m.push(Match::L4proto { text, protos });
    }
    if let Some(i) = &r.iifnames {
        m.push(Match::Ifname {
            egress: false,
            negate: false,
            text: set(i, false),
            names: i.clone(),
        });
    }
    if let Some(o) = &r.oifnames {
        m.push(Match::Ifname {
            egress: true,
            negate: false,
            text: set(o, false),
            names: o.clone(),
        });
    }
    let v6 = r.family == 6;
    addr_port_matches(r, &mut m);
    src_mac_matches(r, &mut m);
    if let Some(t) = &r.icmp_types {
        let texts: Vec<String> = t.iter().map(u8::to_string).collect();
        m.push(Match::IcmpType {
            v6: r.family != 4,
            text: set(&texts, false),
            types: t.clone(),
        });
    }
    if let Some(c) = &r.icmp_codes {
        let texts: Vec<String> = c.iter().map(|(t, c)| format!("{t} . {c}")).collect();
        m.push(Match::IcmpTypeCode {
            v6: r.family != 4,
            text: set(&texts, true),
            pairs: c.clone(),
        });
    }
    helper_match(r, &mut m);
    limit_time_mark(r, &mut m);
    if let Some((dscp, invert)) = r.dscp {
        m.push(Match::Opaque(format!(
            "{} dscp{} {}",
            if v6 { "ip6" } else { "ip" },
            if invert { " !=" } else { "" },
            hex(u32::from(dscp))
        )));
    }
    set_match(r, &mut m);
    let comment = Some(format!("!fw4: {}", r.name));
    let mut lines = Vec::new();
    let stmts = counter_log_stmts(r, zone_limit, &m, &mut lines);
    let verdict = match r.target {
        Some(Target::Mark) => r.set_xmark.map(|x| {
            let v = if x.mask == 0xFFFF_FFFF {
                hex(x.mark)
            } else if x.mark == 0 {
                format!("mark and {}", hex(!x.mask))
            } else if x.mark == x.mask {
                format!("mark or {}", hex(x.mark))
            } else if x.mask == 0 {
                format!("mark xor {}", hex(x.mark))
            } else {
                format!("mark and {} xor {}", hex(!x.mask), hex(x.mark))
            };
            Verdict::Other(format!("meta mark set {v}"))
        }),
        Some(Target::Dscp) => r.set_dscp.map(|d| {
            Verdict::Other(format!(
                "{} dscp set {}",
                if v6 { "ip6" } else { "ip" },
                hex(u32::from(d))
            ))
        }),
        Some(Target::Notrack) => Some(Verdict::Other("notrack".into())),
        Some(Target::Helper) => r
            .set_helper
            .as_ref()
            .map(|h| Verdict::Other(format!("ct helper set {}", nft::quote_forced(h)))),
        _ => match (&r.jump_chain, r.target) {
            (Some(j), _) => Some(Verdict::Jump(j.clone())),
            (None, Some(Target::Accept)) => Some(Verdict::Accept),
            (None, Some(Target::Drop)) => Some(Verdict::Drop),
            (None, Some(t)) => Some(Verdict::Other(t.as_str().to_string())),
            (None, None) => None,
        },
    };
    lines.push(Rule {
        matches: m,
        stmts,
        verdict,
        comment,
    });
    lines
}

/// Address and port matches (rule.uc and redirect.uc).
fn addr_port_matches(r: &RuleSpec, m: &mut Vec<Match>) {
    let v6 = r.family == 6;
    let saddrs = (&r.saddrs_pos, &r.saddrs_neg, &r.saddrs_masked);
    let daddrs = (&r.daddrs_pos, &r.daddrs_neg, &r.daddrs_masked);
    addr_matches(m, v6, Dir::Src, saddrs);
    addr_matches(m, v6, Dir::Dst, daddrs);
    for (ports, dir, negate) in [
        (&r.sports_pos, Dir::Src, false),
        (&r.sports_neg, Dir::Src, true),
        (&r.dports_pos, Dir::Dst, false),
        (&r.dports_neg, Dir::Dst, true),
    ] {
        if let Some(p) = ports {
            m.push(Match::Port {
                proto: r.proto.name.clone(),
                dir,
                negate,
                text: set(p, false),
                items: p.clone(),
            });
        }
    }
}

/// `ether saddr [!=] {...}` (rule.uc and redirect.uc).
fn src_mac_matches(r: &RuleSpec, m: &mut Vec<Match>) {
    if let Some(s) = &r.smacs_pos {
        m.push(Match::Opaque(format!("ether saddr {}", set(s, false))));
    }
    if let Some(s) = &r.smacs_neg {
        m.push(Match::Opaque(format!("ether saddr != {}", set(s, false))));
    }
}

/// The counter and log statements of a rule or redirect line (a
/// rate-limited log is a line of its own, pushed to `lines`).
fn counter_log_stmts(
    r: &RuleSpec,
    zone_limit: Option<&str>,
    m: &[Match],
    lines: &mut Vec<Rule>,
) -> Vec<Stmt> {
    let log = log_lines(r, zone_limit, m, lines);
    let mut stmts = Vec::new();
    if r.counter {
        stmts.push(Stmt::Counter);
    }
    if let Some(log) = log {
        stmts.push(Stmt::Text(format!("log prefix {}", nft::quote_forced(log))));
    }
    stmts
}

/// `ct helper [!=] "NAME"` (rule.uc and redirect.uc).
fn helper_match(r: &RuleSpec, m: &mut Vec<Match>) {
    if let Some((invert, name)) = &r.helper {
        m.push(Match::Opaque(format!(
            "ct helper{} {}",
            if *invert { " !=" } else { "" },
            nft::quote_forced(name)
        )));
    }
}

/// `FIELDS [!=] @SET` (rule.uc and redirect.uc).
fn set_match(r: &RuleSpec, m: &mut Vec<Match>) {
    if let Some(set) = &r.ipset {
        m.push(Match::Opaque(format!(
            "{}{} @{}",
            set.fields.join(" . "),
            if set.invert { " !=" } else { "" },
            set.name
        )));
    }
}

/// The log line of a rate-limited log (`log_limit`, or the zone's named
/// limit): pushed as its own rule; returns the log prefix still to print on
/// the rule itself (none when the first line logs).
fn log_lines<'a>(
    r: &'a RuleSpec,
    zone_limit: Option<&str>,
    m: &[Match],
    lines: &mut Vec<Rule>,
) -> Option<&'a String> {
    let log = r.log.as_ref()?;
    let limit = match (&r.log_limit, zone_limit) {
        (Some(ll), _) => format!("limit rate {}/{}", ll.rate, ll.unit),
        (None, Some(zone)) => format!("limit name \"{zone}.log_limit\""),
        (None, None) => return Some(log),
    };
    let mut first = m.to_vec();
    first.push(Match::Limit(limit));
    lines.push(Rule {
        matches: first,
        stmts: vec![Stmt::Text(format!("log prefix {}", nft::quote_forced(log)))],
        verdict: None,
        comment: None,
    });
    None
}

/// `limit rate`, `meta time|hour|day` and `meta mark` matches, in the order
/// rule.uc and redirect.uc print them.
fn limit_time_mark(r: &RuleSpec, m: &mut Vec<Match>) {
    if let Some(l) = &r.limit {
        let burst = r
            .limit_burst
            .filter(|b| *b != 0)
            .map(|b| format!(" burst {b} packets"))
            .unwrap_or_default();
        m.push(Match::Limit(format!(
            "limit rate {}/{}{burst}",
            l.rate, l.unit
        )));
    }
    let t = &r.time;
    match (&t.start_date, &t.stop_date) {
        (Some(a), Some(b)) => m.push(Match::Opaque(format!("meta time {a}-{b}"))),
        (Some(a), None) => m.push(Match::Opaque(format!("meta time >= {a}"))),
        (None, Some(b)) => m.push(Match::Opaque(format!("meta time <= {b}"))),
        (None, None) => {}
    }
    match (&t.start_time, &t.stop_time) {
        (Some(a), Some(b)) => m.push(Match::Opaque(format!("meta hour {a}-{b}"))),
        (Some(a), None) => m.push(Match::Opaque(format!("meta hour >= {a}"))),
        (None, Some(b)) => m.push(Match::Opaque(format!("meta hour <= {b}"))),
        (None, None) => {}
    }
    if let Some((invert, days)) = &t.weekdays {
        m.push(Match::Opaque(format!(
            "meta day{} {}",
            if *invert { " !=" } else { "" },
            set(days, false)
        )));
    }
    if let Some(mark) = &r.mark {
        if mark.mask < 0xFFFF_FFFF {
            m.push(Match::Opaque(format!(
                "meta mark and {} {} {}",
                hex(mark.mask),
                if mark.invert { "!=" } else { "==" },
                hex(mark.mark)
            )));
        } else {
            m.push(Match::Opaque(format!(
                "meta mark{} {}",
                if mark.invert { " !=" } else { "" },
                hex(mark.mark)
            )));
        }
    }
}

/// (name, type, code_min, code_max) — fw4's IPv4 ICMP type names.
const ICMP4: &[(&str, u8, u8, u8)] = &[
    ("any", 0xFF, 0, 0xFF),
    ("echo-reply", 0, 0, 0xFF),
    ("pong", 0, 0, 0xFF),
    ("destination-unreachable", 3, 0, 0xFF),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6),
    ("host-unknown", 3, 7, 7),
    ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10),
    ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12),
    ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14),
    ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 0xFF),
    ("redirect", 5, 0, 0xFF),
    ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1),
    ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3),
    ("echo-request", 8, 0, 0xFF),
    ("ping", 8, 0, 0xFF),
    ("router-advertisement", 9, 0, 0xFF),
    ("router-solicitation", 10, 0, 0xFF),
    ("time-exceeded", 11, 0, 0xFF),
    ("ttl-exceeded", 11, 0, 0xFF),
    ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1),
    ("parameter-problem", 12, 0, 0xFF),
    ("ip-header-bad", 12, 0, 0),
    ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 0xFF),
    ("timestamp-reply", 14, 0, 0xFF),
    ("address-mask-request", 17, 0, 0xFF),
    ("address-mask-reply", 18, 0, 0xFF),
];

/// fw4's IPv6 ICMP type names.
const ICMP6: &[(&str, u8, u8, u8)] = &[
    ("destination-unreachable", 1, 0, 0xFF),
    ("no-route", 1, 0, 0),
    ("communication-prohibited", 1, 1, 1),
    ("address-unreachable", 1, 3, 3),
    ("port-unreachable", 1, 4, 4),
    ("packet-too-big", 2, 0, 0xFF),
    ("time-exceeded", 3, 0, 0xFF),
    ("ttl-exceeded", 3, 0, 0xFF),
    ("ttl-zero-during-transit", 3, 0, 0),
    ("ttl-zero-during-reassembly", 3, 1, 1),
    ("parameter-problem", 4, 0, 0xFF),
    ("bad-header", 4, 0, 0),
    ("unknown-header-type", 4, 1, 1),
    ("unknown-option", 4, 2, 2),
    ("echo-request", 128, 0, 0xFF),
    ("ping", 128, 0, 0xFF),
    ("echo-reply", 129, 0, 0xFF),
    ("pong", 129, 0, 0xFF),
    ("multicast-listener-query", 130, 0, 0xFF),
    ("multicast-listener-report", 131, 0, 0xFF),
    ("multicast-listener-done", 132, 0, 0xFF),
    ("router-solicitation", 133, 0, 0xFF),
    ("router-advertisement", 134, 0, 0xFF),
    ("neighbour-solicitation", 135, 0, 0xFF),
    ("neighbor-solicitation", 135, 0, 0xFF),
    ("neighbour-advertisement", 136, 0, 0xFF),
    ("neighbor-advertisement", 136, 0, 0xFF),
    ("redirect", 137, 0, 0xFF),
    ("router-renumbering", 138, 0, 0xFF),
    ("node-info-query", 139, 0, 0xFF),
    ("node-info-response", 140, 0, 0xFF),
    (
        "inverse-neighbour-discovery-solicitation-message",
        141,
        0,
        0xFF,
    ),
    (
        "inverse-neighbor-discovery-solicitation-message",
        141,
        0,
        0xFF,
    ),
    (
        "inverse-neighbour-discovery-advertisement-message",
        142,
        0,
        0xFF,
    ),
    (
        "inverse-neighbor-discovery-advertisement-message",
        142,
        0,
        0xFF,
    ),
    ("v2-multicast-listener-report", 143, 0, 0xFF),
    ("home-agent-address-discovery-request-message", 144, 0, 0xFF),
    ("home-agent-address-discovery-reply-message", 145, 0, 0xFF),
    ("mobile-prefix-solicitation", 146, 0, 0xFF),
    ("mobile-prefix-advertisement", 147, 0, 0xFF),
    ("certification-path-solicitation-message", 148, 0, 0xFF),
    ("certification-path-advertisement-message", 149, 0, 0xFF),
    ("seamoby-protocol-message", 150, 0, 0xFF),
    ("multicast-router-advertisement", 151, 0, 0xFF),
    ("multicast-router-solicitation", 152, 0, 0xFF),
    ("multicast-router-termination", 153, 0, 0xFF),
    ("fmipv6-message", 154, 0, 0xFF),
    ("rpl-control-message", 155, 0, 0xFF),
    ("ilnpv6-locator-update-message", 156, 0, 0xFF),
    ("duplicate-address-request", 157, 0, 0xFF),
    ("duplicate-address-confirmation", 158, 0, 0xFF),
    ("mpl-control-message", 159, 0, 0xFF),
    ("extended-echo-request", 160, 0, 0xFF),
    ("extended-ping", 160, 0, 0xFF),
    ("extended-echo-reply", 161, 0, 0xFF),
    ("extended-pong", 161, 0, 0xFF),
];
