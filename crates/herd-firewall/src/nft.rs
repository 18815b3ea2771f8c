//! A typed model of the nftables ruleset fw4 produces: chains of rules whose
//! matches can be both printed (in fw4's exact text) and evaluated against a
//! packet. Printing and evaluating one model is what makes `herd fw check`
//! agree with the ruleset that `nft` loads.

use std::fmt::Write as _;
use std::net::IpAddr;

/// One `table inet fw4` as text items and chains in print order.
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub enum Item {
    /// Literal text printed as is (headers, defines, blank lines).
    Text(String),
    Chain(Chain),
}

#[derive(Debug, Clone)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub lines: Vec<Line>,
}

/// `type KIND hook HOOK priority PRIORITY; policy POLICY;`
#[derive(Debug, Clone)]
pub struct BaseChain {
    pub kind: &'static str,
    pub hook: Hook,
    pub priority: &'static str,
    pub policy: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

#[derive(Debug, Clone)]
pub enum Line {
    Blank,
    Rule(Rule),
    /// Printed verbatim, never matches a packet (flow offload, includes).
    Raw(String),
}

/// `MATCH... STATEMENT... VERDICT comment "..."`
#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub stmts: Vec<Stmt>,
    pub verdict: Option<Verdict>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
}

#[derive(Debug, Clone)]
pub enum Match {
    /// `meta nfproto ipv4|ipv6`
    Nfproto(u8),
    /// `meta l4proto TEXT` with the protocol names it covers.
    L4proto { text: String, protos: Vec<String> },
    /// `iif "lo"` / `oif "lo"`
    Iface { egress: bool, name: String },
    /// `iifname [!=] SET` (a trailing `*` is a prefix wildcard).
    Ifname {
        egress: bool,
        negate: bool,
        text: String,
        names: Vec<String>,
    },
    /// `ip[6] saddr|daddr [!=] SET` of addresses, prefixes or ranges.
    Addr {
        v6: bool,
        dir: Dir,
        negate: bool,
        text: String,
        items: Vec<String>,
    },
    /// `ip[6] saddr & MASK ==|!= ADDR`
    AddrMasked {
        v6: bool,
        dir: Dir,
        negate: bool,
        mask: String,
        addr: String,
    },
    /// `PROTO sport|dport [!=] SET`
    Port {
        proto: String,
        dir: Dir,
        negate: bool,
        text: String,
        items: Vec<String>,
    },
    /// `icmp[v6] type SET`
    IcmpType {
        v6: bool,
        text: String,
        types: Vec<u8>,
    },
    /// `icmp[v6] type . icmp[v6] code SET`
    IcmpTypeCode {
        v6: bool,
        text: String,
        pairs: Vec<(u8, u8)>,
    },
    /// `tcp flags & (fin | syn | rst | ack) == syn`
    TcpSyn,
    /// `ct state ...`: never true for the first packet of a flow.
    CtState(String),
    /// `ct status dnat`: true when the packet's destination was translated
    /// (DNAT or redirect) in the prerouting NAT hook.
    CtStatus(String),
    /// A rate limit: herd evaluates single packets, so it always passes.
    Limit(String),
    /// Printed but not evaluated (marks, times, helpers, sets, MACs): a
    /// packet never matches it, and the verdict says so.
    Opaque(String),
}

#[derive(Debug, Clone)]
pub enum Stmt {
    Counter,
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    /// `reject with ...`: the text after `reject`.
    Reject(String),
    Jump(String),
    Return,
    /// `dnat ADDR[:PORT]` (printed as `text`): ends the NAT chain and
    /// rewrites the destination.
    Dnat {
        text: String,
        addr: Option<IpAddr>,
        port: Option<u16>,
    },
    /// `redirect [to PORT]`: DNAT to the router itself.
    Redirect {
        text: String,
        port: Option<u16>,
    },
    /// A verdict-like statement that ends nothing for filtering (masquerade,
    /// snat, notrack, ct helper set, mark set...): printed as is.
    Other(String),
}

impl Match {
    pub fn text(&self) -> String {
        match self {
            Match::Nfproto(f) => format!("meta nfproto {}", if *f == 6 { "ipv6" } else { "ipv4" }),
            Match::L4proto { text, .. } => format!("meta l4proto {text}"),
            Match::Iface { egress, name } => {
                format!("{} \"{name}\"", if *egress { "oif" } else { "iif" })
            }
            Match::Ifname {
                egress,
                negate,
                text,
                ..
            } => format!(
                "{}{} {text}",
                if *egress { "oifname" } else { "iifname" },
                if *negate { " !=" } else { "" }
            ),
            Match::Addr {
                v6,
                dir,
                negate,
                text,
                ..
            } => format!(
                "{} {}{} {text}",
                ipproto(*v6),
                addr_dir(*dir),
                if *negate { " !=" } else { "" }
            ),
            Match::AddrMasked {
                v6,
                dir,
                negate,
                mask,
                addr,
            } => format!(
                "{} {} & {mask} {} {addr}",
                ipproto(*v6),
                addr_dir(*dir),
                if *negate { "!=" } else { "==" }
            ),
            Match::Port {
                proto,
                dir,
                negate,
                text,
                ..
            } => format!(
                "{proto} {}{} {text}",
                if *dir == Dir::Src { "sport" } else { "dport" },
                if *negate { " !=" } else { "" }
            ),
            Match::IcmpType { v6, text, .. } => format!("{} type {text}", icmp_kw(*v6)),
            Match::IcmpTypeCode { v6, text, .. } => {
                let kw = icmp_kw(*v6);
                format!("{kw} type . {kw} code {text}")
            }
            Match::TcpSyn => "tcp flags & (fin | syn | rst | ack) == syn".to_string(),
            Match::CtState(t) | Match::CtStatus(t) | Match::Limit(t) | Match::Opaque(t) => {
                t.clone()
            }
        }
    }
}

fn ipproto(v6: bool) -> &'static str {
    if v6 {
        "ip6"
    } else {
        "ip"
    }
}

fn icmp_kw(v6: bool) -> &'static str {
    if v6 {
        "icmpv6"
    } else {
        "icmp"
    }
}

fn addr_dir(dir: Dir) -> &'static str {
    match dir {
        Dir::Src => "saddr",
        Dir::Dst => "daddr",
    }
}

impl Rule {
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = self.matches.iter().map(Match::text).collect();
        for s in &self.stmts {
            parts.push(match s {
                Stmt::Counter => "counter".to_string(),
                Stmt::Text(t) => t.clone(),
            });
        }
        if let Some(v) = &self.verdict {
            parts.push(match v {
                Verdict::Accept => "accept".to_string(),
                Verdict::Drop => "drop".to_string(),
                Verdict::Reject(with) if with.is_empty() => "reject".to_string(),
                Verdict::Reject(with) => format!("reject {with}"),
                Verdict::Jump(c) => format!("jump {c}"),
                Verdict::Return => "return".to_string(),
                Verdict::Dnat { text, .. } | Verdict::Redirect { text, .. } => text.clone(),
                Verdict::Other(t) => t.clone(),
            });
        }
        if let Some(c) = &self.comment {
            parts.push(format!("comment {}", quote_forced(c)));
        }
        parts.join(" ")
    }
}

/// fw4's `quote(s, true)`.
pub fn quote_forced(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "'"))
}

impl Chain {
    pub fn new(name: impl Into<String>) -> Self {
        Chain {
            name: name.into(),
            base: None,
            lines: Vec::new(),
        }
    }

    pub fn rule(&mut self, rule: Rule) {
        self.lines.push(Line::Rule(rule));
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "\tchain {} {{", self.name);
        if let Some(b) = &self.base {
            let _ = writeln!(
                out,
                "\t\ttype {} hook {} priority {}; policy {};",
                b.kind,
                b.hook.as_str(),
                b.priority,
                match b.policy {
                    Policy::Accept => "accept",
                    Policy::Drop => "drop",
                }
            );
        }
        for line in &self.lines {
            match line {
                Line::Blank => out.push('\n'),
                Line::Rule(r) => {
                    let _ = writeln!(out, "\t\t{}", r.text());
                }
                Line::Raw(t) => {
                    let _ = writeln!(out, "\t\t{t}");
                }
            }
        }
        out.push_str("\t}\n");
    }
}

impl Ruleset {
    pub fn text(&mut self, t: impl AsRef<str>) {
        match self.items.last_mut() {
            Some(Item::Text(s)) => s.push_str(t.as_ref()),
            _ => self.items.push(Item::Text(t.as_ref().to_string())),
        }
    }

    pub fn chain(&mut self, chain: Chain) {
        self.items.push(Item::Chain(chain));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for item in &self.items {
            match item {
                Item::Text(t) => out.push_str(t),
                Item::Chain(c) => c.render(&mut out),
            }
        }
        out
    }

    pub fn find_chain(&self, name: &str) -> Option<&Chain> {
        self.chains().find(|c| c.name == name)
    }

    pub fn chains(&self) -> impl Iterator<Item = &Chain> {
        self.items.iter().filter_map(|i| match i {
            Item::Chain(c) => Some(c),
            Item::Text(_) => None,
        })
    }

    /// The verdict of the filter hook for the first packet of a new flow.
    pub fn evaluate(&self, packet: &Packet, hook: Hook) -> Decision {
        let Some(base) = self.chains().find(|c| {
            c.base
                .as_ref()
                .is_some_and(|b| b.hook == hook && b.kind == "filter" && b.priority == "filter")
        }) else {
            return Decision {
                verdict: FinalVerdict::Accept,
                decided_by: DecidedBy::NoChain,
                trace: Vec::new(),
                unevaluated: Vec::new(),
            };
        };
        let mut eval = Eval::new(self, packet);
        match eval.run(base, 0) {
            Some((verdict, by)) => Decision {
                verdict,
                decided_by: by,
                trace: eval.trace,
                unevaluated: eval.unevaluated,
            },
            None => {
                let verdict = match base.base.as_ref().map(|b| b.policy) {
                    Some(Policy::Drop) => FinalVerdict::Drop,
                    _ => FinalVerdict::Accept,
                };
                Decision {
                    verdict,
                    decided_by: DecidedBy::Policy {
                        chain: base.name.clone(),
                    },
                    trace: eval.trace,
                    unevaluated: eval.unevaluated,
                }
            }
        }
    }
}

impl Ruleset {
    /// The destination NAT of the prerouting hook (`type nat hook
    /// prerouting`) for the first packet of a flow: the first `dnat` or
    /// `redirect` it reaches, with the rules on the way; `None` when the
    /// destination stays as it is.
    pub fn dstnat(&self, packet: &Packet) -> Option<Translation> {
        let base = self.chains().find(|c| {
            c.base
                .as_ref()
                .is_some_and(|b| b.hook == Hook::Prerouting && b.kind == "nat")
        })?;
        let mut eval = Eval::new(self, packet);
        eval.run(base, 0);
        let mut t = eval.translation?;
        t.trace = eval.trace;
        t.unevaluated = eval.unevaluated;
        Some(t)
    }
}

/// A destination NAT: the new address (`None` for a redirect, which goes to
/// the router's own address on the incoming interface) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    /// `redirect`: the router itself is the new destination.
    pub redirect: bool,
    /// The rules that led to it, the translating rule last.
    pub trace: Vec<Step>,
    pub unevaluated: Vec<String>,
}

/// The first packet of a flow as the router sees it.
#[derive(Debug, Clone)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// `tcp`, `udp`, `icmp`, `ipv6-icmp` or another protocol name.
    pub proto: String,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// The destination was translated in prerouting (`ct status dnat`).
    pub ct_dnat: bool,
}

impl Packet {
    /// The source or destination address; `None` when the packet is not of
    /// the match's family (`ip` or `ip6`).
    fn addr(&self, v6: bool, dir: Dir) -> Option<IpAddr> {
        if v6 != self.v6() {
            return None;
        }
        Some(match dir {
            Dir::Src => self.src,
            Dir::Dst => self.dst,
        })
    }

    fn v6(&self) -> bool {
        self.src.is_ipv6()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalVerdict {
    Accept,
    Drop,
    Reject,
}

impl FinalVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalVerdict::Accept => "accept",
            FinalVerdict::Drop => "drop",
            FinalVerdict::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    /// A rule with a final verdict, inside `chain`.
    Rule { chain: String, rule: String },
    /// Nothing matched: the base chain's policy.
    Policy { chain: String },
    /// The ruleset has no filter chain on that hook.
    NoChain,
}

/// One rule that matched on the way to the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub chain: String,
    pub rule: String,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: FinalVerdict,
    pub decided_by: DecidedBy,
    pub trace: Vec<Step>,
    /// Matches herd could not evaluate on the way (treated as not matching).
    pub unevaluated: Vec<String>,
}

impl Decision {
    /// Why, in the operator's terms: the first configured rule or
    /// forwarding on the filter path (fw4 names them in comments; the NAT
    /// steps of a translated packet are context, not the reason), or the
    /// chain's default when only the default policy's reject or drop applied.
    pub fn reason(&self) -> String {
        if let Some(step) = self.trace.iter().find(|s| {
            s.rule == "jump handle_reject"
                && matches!(s.chain.as_str(), "input" | "forward" | "output")
        }) {
            return format!(
                "the {} chain's default REJECT: no rule allowed it",
                step.chain
            );
        }
        // NAT steps are context, syn flood protection is fw4's own plumbing
        let reasons = self.trace.iter().filter(|s| {
            !s.chain.starts_with("dstnat")
                && s.chain != "syn_flood"
                && !s.rule.contains("jump syn_flood")
        });
        for step in reasons {
            if let Some(name) = step
                .rule
                .rsplit_once("comment \"!fw4: ")
                .map(|(_, c)| c.trim_end_matches('"'))
            {
                if !name.starts_with("Handle ") {
                    return format!("{name} (chain {})", step.chain);
                }
            }
        }
        match &self.decided_by {
            DecidedBy::Rule { chain, rule } => format!("{rule} (chain {chain})"),
            DecidedBy::Policy { chain } => format!("the {chain} chain's policy: no rule matched"),
            DecidedBy::NoChain => "no filter chain on this hook".to_string(),
        }
    }
}

struct Eval<'a> {
    ruleset: &'a Ruleset,
    packet: &'a Packet,
    trace: Vec<Step>,
    unevaluated: Vec<String>,
    /// Set by the first `dnat`/`redirect` reached (NAT chains only).
    translation: Option<Translation>,
}

impl<'a> Eval<'a> {
    fn new(ruleset: &'a Ruleset, packet: &'a Packet) -> Self {
        Eval {
            ruleset,
            packet,
            trace: Vec::new(),
            unevaluated: Vec::new(),
            translation: None,
        }
    }

    fn run(&mut self, chain: &Chain, depth: usize) -> Option<(FinalVerdict, DecidedBy)> {
        if depth > 32 {
            return None;
        }
        for line in &chain.lines {
            let Line::Rule(rule) = line else { continue };
            if !rule.matches.iter().all(|m| self.matches(m)) {
                continue;
            }
            let step = Step {
                chain: chain.name.clone(),
                rule: rule.text(),
            };
            let decided = |v| {
                Some((
                    v,
                    DecidedBy::Rule {
                        chain: chain.name.clone(),
                        rule: rule.text(),
                    },
                ))
            };
            match &rule.verdict {
                None | Some(Verdict::Other(_)) => {}
                Some(Verdict::Dnat { addr, port, .. }) => {
                    self.trace.push(step);
                    self.translation = Some(Translation {
                        addr: *addr,
                        port: *port,
                        redirect: false,
                        trace: Vec::new(),
                        unevaluated: Vec::new(),
                    });
                    return decided(FinalVerdict::Accept);
                }
                Some(Verdict::Redirect { port, .. }) => {
                    self.trace.push(step);
                    self.translation = Some(Translation {
                        addr: None,
                        port: *port,
                        redirect: true,
                        trace: Vec::new(),
                        unevaluated: Vec::new(),
                    });
                    return decided(FinalVerdict::Accept);
                }
                Some(Verdict::Accept) => {
                    self.trace.push(step);
                    return decided(FinalVerdict::Accept);
                }
                Some(Verdict::Drop) => {
                    self.trace.push(step);
                    return decided(FinalVerdict::Drop);
                }
                Some(Verdict::Reject(_)) => {
                    self.trace.push(step);
                    return decided(FinalVerdict::Reject);
                }
                Some(Verdict::Return) => {
                    self.trace.push(step);
                    return None;
                }
                Some(Verdict::Jump(target)) => {
                    self.trace.push(step);
                    if let Some(next) = self.ruleset.find_chain(target) {
                        if let Some(result) = self.run(next, depth + 1) {
                            return Some(result);
                        }
                    }
                }
            }
        }
        None
    }

    fn matches(&mut self, m: &Match) -> bool {
        let p = self.packet;
        match m {
            Match::Nfproto(f) => (*f == 6) == p.v6(),
            Match::L4proto { protos, .. } => protos.contains(&p.proto),
            Match::Iface { egress, name } => {
                let dev = if *egress { &p.oif } else { &p.iif };
                dev.as_deref() == Some(name.as_str())
            }
            Match::Ifname {
                egress,
                negate,
                names,
                ..
            } => {
                let dev = if *egress { &p.oif } else { &p.iif };
                let hit = dev
                    .as_deref()
                    .is_some_and(|d| names.iter().any(|n| ifname_matches(n, d)));
                hit != *negate
            }
            Match::Addr {
                v6,
                dir,
                negate,
                items,
                ..
            } => {
                let Some(a) = p.addr(*v6, *dir) else {
                    return false;
                };
                let hit = items.iter().any(|i| addr_in(i, a));
                hit != *negate
            }
            Match::AddrMasked {
                v6,
                dir,
                negate,
                mask,
                addr,
            } => {
                let Some(a) = p.addr(*v6, *dir) else {
                    return false;
                };
                let (Ok(mask), Ok(want)) = (mask.parse::<IpAddr>(), addr.parse::<IpAddr>()) else {
                    return false;
                };
                let hit = and_mask(a, mask) == Some(want);
                hit != *negate
            }
            Match::Port {
                proto,
                dir,
                negate,
                items,
                ..
            } => {
                if *proto != p.proto {
                    return false;
                }
                let port = if *dir == Dir::Src { p.sport } else { p.dport };
                let Some(port) = port else { return false };
                let hit = items.iter().any(|i| port_in(i, port));
                hit != *negate
            }
            Match::IcmpType { v6, types, .. } => {
                let want = if *v6 { "ipv6-icmp" } else { "icmp" };
                p.proto == want && p.icmp_type.is_some_and(|t| types.contains(&t))
            }
            Match::IcmpTypeCode { v6, pairs, .. } => {
                let want = if *v6 { "ipv6-icmp" } else { "icmp" };
                p.proto == want
                    && matches!((p.icmp_type, p.icmp_code), (Some(t), Some(c)) if pairs.contains(&(t, c)))
            }
            Match::TcpSyn => p.proto == "tcp",
            Match::CtState(_) => false,
            Match::CtStatus(t) => t.ends_with("dnat") && p.ct_dnat,
            Match::Limit(_) => true,
            Match::Opaque(t) => {
                self.unevaluated.push(t.clone());
                false
            }
        }
    }
}

fn ifname_matches(pattern: &str, dev: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => dev.starts_with(prefix),
        None => pattern == dev,
    }
}

fn port_in(item: &str, port: u16) -> bool {
    match item.split_once('-') {
        Some((lo, hi)) => match (lo.parse::<u16>(), hi.parse::<u16>()) {
            (Ok(lo), Ok(hi)) => (lo..=hi).contains(&port),
            _ => false,
        },
        None => item.parse::<u16>() == Ok(port),
    }
}

/// Is `a` inside `item` (an address, `addr/prefix` or `first-last`)?
pub fn addr_in(item: &str, a: IpAddr) -> bool {
    if let Some((lo, hi)) = item.split_once('-') {
        return match (lo.parse::<IpAddr>(), hi.parse::<IpAddr>()) {
            (Ok(lo), Ok(hi)) => lo <= a && a <= hi && lo.is_ipv6() == a.is_ipv6(),
            _ => false,
        };
    }
    let (addr, bits) = match item.split_once('/') {
        Some((addr, bits)) => (addr, bits.parse::<u8>().ok()),
        None => (item, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    if net.is_ipv6() != a.is_ipv6() {
        return false;
    }
    let bits = bits.unwrap_or(if net.is_ipv6() { 128 } else { 32 });
    prefix_mask(net, bits) == prefix_mask(a, bits)
}

/// `addr` with all but the first `bits` bits cleared.
pub fn prefix_mask(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let n = u32::from(v4);
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits.min(32)))
            };
            IpAddr::V4((n & m).into())
        }
        IpAddr::V6(v6) => {
            let n = u128::from(v6);
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits.min(128)))
            };
            IpAddr::V6((n & m).into())
        }
    }
}

fn and_mask(a: IpAddr, m: IpAddr) -> Option<IpAddr> {
    match (a, m) {
        (IpAddr::V4(a), IpAddr::V4(m)) => Some(IpAddr::V4((u32::from(a) & u32::from(m)).into())),
        (IpAddr::V6(a), IpAddr::V6(m)) => Some(IpAddr::V6((u128::from(a) & u128::from(m)).into())),
        _ => None,
    }
}
