//! ipsets: `config ipset` sections as nftables sets (`Set definitions`),
//! and the `ipset` option of rules and redirects as set matches.

use super::{
    parse_enum, parse_family, parse_identifier, parse_int, parse_invert, parse_mac, parse_port,
    parse_subnet, Invalid, Loader, Proto,
};
use crate::config::Section;

/// One `config ipset`, as fw4 declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSet {
    pub name: String,
    /// 4, 6 or 0 (any).
    pub family: u8,
    pub comment: Option<String>,
    /// nftables element types: `ipv4_addr`, `ipv6_addr`, `ether_addr`,
    /// `inet_service`.
    pub types: Vec<&'static str>,
    /// fw4's match types (`ip`, `port`, `mac`, `net`).
    pub fw4types: Vec<&'static str>,
    /// The default match direction of each field (`src`, `dst`).
    pub directions: Vec<&'static str>,
    pub interval: bool,
    pub maxelem: Option<i64>,
    pub timeout: i64,
    pub flags: Vec<&'static str>,
    /// Elements (one value per type), from `entry` and then `loadfile`.
    pub entries: Vec<Vec<String>>,
}

/// `[!]SET [DIR[,DIR...]]`: a rule's reference to a set, with the fields it
/// matches once resolved (`ip saddr . tcp dport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMatch {
    pub invert: bool,
    pub name: String,
    /// Per field: `src`, `dst` or unset (the set's own direction).
    pub dirs: Vec<Option<&'static str>>,
    pub fields: Vec<String>,
}

/// fw4's `parse_setmatch`.
pub(super) fn parse_setmatch(v: &str) -> Option<SetMatch> {
    let (invert, val) = parse_invert(v)?;
    let name_len = val.find([' ', '\t']).unwrap_or(val.len());
    let (name, rest) = val.split_at(name_len);
    let rest = rest.trim();
    let dirs = rest
        .split([' ', '\t', ','])
        .take(3)
        .map(|d| match d {
            "dst" | "dest" => Some("dst"),
            "src" => Some("src"),
            _ => None,
        })
        .collect();
    (!name.is_empty()).then(|| SetMatch {
        invert,
        name: name.to_string(),
        dirs,
        fields: Vec::new(),
    })
}

/// fw4's `map_setmatch`: the fields a set match compares for one protocol.
/// No fields when the set has ports and the protocol none (fw4 then prints a
/// bare `@SET`); `Err` for a destination MAC, which nftables cannot match.
pub(super) fn map_setmatch(set: &IpSet, m: &SetMatch, proto: &str) -> Result<Vec<String>, ()> {
    if set.types.contains(&"inet_service") && proto != "tcp" && proto != "udp" {
        return Ok(Vec::new());
    }
    let mut fields = Vec::new();
    for (i, t) in set.types.iter().enumerate() {
        let dir = m
            .dirs
            .get(i)
            .copied()
            .flatten()
            .or_else(|| set.directions.get(i).copied())
            .unwrap_or("src");
        let d = if dir == "src" { "s" } else { "d" };
        fields.push(match *t {
            "ipv4_addr" => format!("ip {d}addr"),
            "ipv6_addr" => format!("ip6 {d}addr"),
            "ether_addr" if d != "s" => return Err(()),
            "ether_addr" => "ether saddr".to_string(),
            _ => format!("{proto} {d}port"),
        });
    }
    Ok(fields)
}

/// fw4's `ensure_tcpudp`: a port set needs TCP or UDP; `any` becomes both.
pub(super) fn ensure_tcpudp(protos: &mut Vec<Proto>) -> bool {
    if protos.iter().any(|p| p.name == "tcp" || p.name == "udp") {
        return true;
    }
    if protos.iter().any(|p| p.any) && protos.iter().all(|p| p.any) {
        let p = |name: &str| Proto {
            any: false,
            name: name.to_string(),
            invert: false,
        };
        *protos = vec![p("tcp"), p("udp")];
        return true;
    }
    false
}

/// `[src_|dst_|dest_]TYPE` → (direction, type).
fn parse_ipsettype(v: &str) -> Option<(&'static str, &'static str)> {
    let (dir, t) = match v.split_once('_') {
        Some(("src", t)) if !t.is_empty() => ("src", t),
        Some(("dst" | "dest", t)) if !t.is_empty() => ("dst", t),
        _ => ("src", v),
    };
    let t = parse_enum(
        t,
        &[
            ("ip", "ip"),
            ("port", "port"),
            ("mac", "mac"),
            ("net", "net"),
            ("set", "set"),
        ],
    )?;
    Some((dir, t))
}

/// Splits like ucode's `split(v, /[ \t]+/)` (a leading blank yields an
/// empty first value).
fn split_blanks(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = v;
    loop {
        match rest.find([' ', '\t']) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = rest[i..].trim_start_matches([' ', '\t']);
            }
            None => {
                out.push(rest);
                return out;
            }
        }
    }
}

impl Loader<'_> {
    pub(super) fn parse_ipset(&mut self, s: &Section) {
        let Ok(set) = self.ipset_options(s) else {
            self.warn_section(s, "skipped due to invalid options");
            return;
        };
        if let Some(set) = set {
            self.ipsets.push(set);
        }
    }

    fn ipset_options(&mut self, s: &Section) -> Result<Option<IpSet>, Invalid> {
        let enabled = self.bool_opt(s, "enabled", true)?;
        let comment = self.opt(s, "comment", None, |v| Some(v.to_string()))?;
        let Some(name) = self.opt(s, "name", None, parse_identifier)? else {
            self.warn_section(s, "option 'name' is mandatory but not set");
            return Err(Invalid);
        };
        let family = self.opt(s, "family", Some("4"), parse_family)?.unwrap_or(4);
        let matches = self.list(s, "match", None, |v| parse_ipsettype(v).map(|t| vec![t]))?;
        let maxelem = self.opt(s, "maxelem", None, parse_int)?;
        let timeout = self.opt(s, "timeout", Some("-1"), parse_int)?.unwrap_or(-1);
        let entry = self.list(s, "entry", None, |v| Some(vec![v.to_string()]))?;
        let loadfile = self.opt(s, "loadfile", None, |v| Some(v.to_string()))?;
        for key in [
            "storage",
            "iprange",
            "portrange",
            "netmask",
            "hashsize",
            "external",
        ] {
            if s.get(key).is_some() {
                self.warn_section(s, &format!("option '{key}' is not supported by fw4"));
            }
        }
        self.warn_unknown(
            s,
            &[
                "enabled",
                "reload_set",
                "counters",
                "comment",
                "name",
                "family",
                "storage",
                "match",
                "iprange",
                "portrange",
                "netmask",
                "maxelem",
                "hashsize",
                "timeout",
                "external",
                "entry",
                "loadfile",
            ],
        );
        if !enabled {
            self.warn_section(s, "is disabled, ignoring section");
            return Ok(None);
        }
        if matches.is_empty() {
            self.warn_section(s, "has no datatypes assigned");
            return Ok(None);
        }
        let fw4types: Vec<&'static str> = matches.iter().map(|m| m.1).collect();
        if (fw4types.contains(&"ip") || fw4types.contains(&"net")) && family == 0 {
            self.warn_section(
                s,
                "must not specify family 'any' when matching type 'ip' or 'net'",
            );
            return Ok(None);
        }
        if fw4types.contains(&"set") {
            self.warn_section(s, "match type 'set' is not supported");
            return Ok(None);
        }
        let interval = fw4types.contains(&"net");
        let types = fw4types
            .iter()
            .map(|t| match *t {
                "ip" | "net" if family == 4 => "ipv4_addr",
                "ip" | "net" => "ipv6_addr",
                "mac" => "ether_addr",
                _ => "inet_service",
            })
            .collect();
        let mut flags = Vec::new();
        if interval {
            flags.push("interval");
        }
        if timeout >= 0 {
            flags.push("timeout");
        }
        let mut set = IpSet {
            name,
            family,
            comment,
            types,
            fw4types,
            directions: matches.iter().map(|m| m.0).collect(),
            interval,
            maxelem,
            timeout,
            flags,
            entries: Vec::new(),
        };
        for e in &entry {
            match self.ipset_entry(e, &set) {
                Some(v) => set.entries.push(v),
                None => self.warn_section(s, &format!("ignoring invalid ipset entry '{e}'")),
            }
        }
        if let Some(path) = loadfile {
            match self.env.files.get(&path).cloned() {
                None => self.warnings.push(format!(
                    "Unable to load file '{path}' for set '{}': No such file or directory",
                    set.name
                )),
                Some(text) => {
                    for line in text.lines().map(str::trim) {
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        match self.ipset_entry(line, &set) {
                            Some(v) => set.entries.push(v),
                            None => self.warnings.push(format!(
                                "Skipping invalid entry '{line}' in file '{path}' for set '{}'",
                                set.name
                            )),
                        }
                    }
                }
            }
        }
        Ok(Some(set))
    }

    /// fw4's `parse_ipsetentry`: one value per set type.
    fn ipset_entry(&mut self, e: &str, set: &IpSet) -> Option<Vec<String>> {
        let values = split_blanks(e);
        if values.len() != set.types.len() {
            return None;
        }
        let net = set.fw4types.contains(&"net");
        let mut out = Vec::new();
        for (v, t) in values.iter().zip(&set.types) {
            out.push(match *t {
                "ipv4_addr" | "ipv6_addr" => {
                    let want = if *t == "ipv4_addr" { 4 } else { 6 };
                    let addrs: Vec<_> = parse_subnet(v, &self.env.networks)?
                        .into_iter()
                        .filter(|a| a.family == want)
                        .collect();
                    let first = addrs.first()?;
                    if addrs.len() > 1 {
                        self.warnings.push(format!(
                            "Set entry '{v}' resolves to multiple addresses, using first one"
                        ));
                    }
                    if net {
                        format!("{}/{}", first.addr, first.bits)
                    } else {
                        first.addr.to_string()
                    }
                }
                "ether_addr" => match parse_mac(v)? {
                    (false, mac) => mac,
                    (true, _) => return None,
                },
                _ => {
                    let p = parse_port(v)?;
                    if p.invert || p.min != p.max {
                        return None;
                    }
                    p.min.to_string()
                }
            });
        }
        Some(out)
    }

    /// The set a rule or redirect references; `None` (with fw4's warning)
    /// when it is unknown or needs TCP/UDP the section does not match.
    pub(super) fn lookup_set(
        &mut self,
        s: &Section,
        m: &SetMatch,
        protos: &mut Vec<Proto>,
    ) -> Option<IpSet> {
        let Some(set) = self.ipsets.iter().find(|x| x.name == m.name).cloned() else {
            self.warn_section(s, &format!("references unknown set '{}'", m.name));
            return None;
        };
        if set.types.contains(&"inet_service") && !ensure_tcpudp(protos) {
            self.warn_section(
                s,
                "references named set with port match but no UDP/TCP protocol, ignoring section",
            );
            return None;
        }
        Some(set)
    }
}

/// The `Set definitions` block (empty without sets).
pub(super) fn definitions_text(sets: &[IpSet]) -> String {
    if sets.is_empty() {
        return String::new();
    }
    let mut out = String::from("\t#\n\t# Set definitions\n\t#\n\n");
    for set in sets {
        out.push_str(&format!("\tset {} {{\n", set.name));
        if let Some(c) = &set.comment {
            out.push_str(&format!("\t\tcomment {}\n", crate::nft::quote_forced(c)));
        }
        out.push_str(&format!("\t\ttype {}\n", set.types.join(" . ")));
        if let Some(n) = set.maxelem.filter(|n| *n > 0) {
            out.push_str(&format!("\t\tsize {n}\n"));
        }
        if set.timeout > 0 {
            out.push_str(&format!("\t\ttimeout {}s\n", set.timeout));
        }
        if set.interval {
            out.push_str("\t\tauto-merge\n");
        }
        if !set.flags.is_empty() {
            out.push_str(&format!("\t\tflags {}\n", set.flags.join(",")));
        }
        if !set.entries.is_empty() {
            out.push_str("\t\telements = {\n");
            for e in &set.entries {
                out.push_str(&format!("\t\t\t{},\n", e.join(" . ")));
            }
            out.push_str("\t\t}\n");
        }
        out.push_str("\t}\n\n");
    }
    out.push('\n');
    out
}
