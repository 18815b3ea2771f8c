//! Conntrack helpers: fw4's `helpers` package (`/usr/share/firewall4/helpers`),
//! the `ct helper` definitions, zone helper assignment and the `helper` /
//! `set_helper` options of rules.

use super::{
    parse_family, parse_invert, parse_port, parse_protocol, port_text, Proto, RuleSpec, Target,
    ZoneRef,
};
use crate::config::{Package, Section, Value};
use crate::fw4::PortRange;

/// One conntrack helper fw4 knows (`config helper` in its helpers file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    pub name: String,
    pub description: Option<String>,
    pub module: Option<String>,
    /// 4, 6 or 0 (both).
    pub family: u8,
    pub protos: Vec<Proto>,
    pub port: Option<PortRange>,
    /// The kernel module is loaded (`/sys/module/MODULE`); fw4 defines and
    /// assigns only available helpers.
    pub available: bool,
}

/// Reads fw4's helpers package. Every helper is taken as available (herd
/// cannot see the router's `/sys/module`); invalid definitions are skipped
/// with fw4's message.
pub fn parse_helpers(package: &Package) -> (Vec<Helper>, Vec<String>) {
    let mut helpers = Vec::new();
    let mut warnings = Vec::new();
    for s in package.of_kind("helper") {
        let label = s
            .single("name")
            .map(str::to_string)
            .or_else(|| s.name.clone())
            .unwrap_or_default();
        match parse_helper(s) {
            Ok(h) => helpers.push(h),
            Err(msg) => warnings.push(format!("Helper definition '{label}' {msg}")),
        }
    }
    (helpers, warnings)
}

fn parse_helper(s: &Section) -> Result<Helper, &'static str> {
    const INVALID: &str = "skipped due to invalid options";
    let single = |key: &str| match s.get(key) {
        Some(Value::List(_)) => Err(INVALID),
        Some(Value::Single(v)) => Ok(Some(v.clone())),
        None => Ok(None),
    };
    let name = single("name")?.ok_or(INVALID)?;
    let family = match single("family")? {
        Some(f) => parse_family(&f).ok_or(INVALID)?,
        None => 0,
    };
    let mut protos = Vec::new();
    for v in s.values("proto") {
        let p = parse_protocol(&v).ok_or(INVALID)?;
        if p.iter().any(|p| p.invert) {
            return Err(INVALID);
        }
        protos.extend(p);
    }
    let port = match single("port")? {
        Some(p) => {
            let p = parse_port(&p).ok_or(INVALID)?;
            if p.invert {
                return Err(INVALID);
            }
            Some(p)
        }
        None => None,
    };
    if protos.iter().any(|p| p.any) {
        return Err("must not specify wildcard protocol");
    }
    if protos.len() > 1 {
        return Err("must not specify multiple protocols");
    }
    Ok(Helper {
        name,
        description: single("description")?,
        module: single("module")?,
        family,
        protos,
        port,
        available: true,
    })
}

/// fw4's `parse_cthelper`: `[!]NAME` of a known helper.
pub(super) fn parse_cthelper(v: &str, helpers: &[Helper]) -> Option<(bool, Helper)> {
    let (invert, name) = parse_invert(v)?;
    helpers
        .iter()
        .find(|h| h.name == name)
        .map(|h| (invert, h.clone()))
}

/// The rule a zone's helper assignment adds to `helper_ZONE`.
pub(super) fn assignment_rule(h: &Helper, proto: &Proto, zone: &str, index: usize) -> RuleSpec {
    let name = h.description.clone().unwrap_or_else(|| h.name.clone());
    let mut r = RuleSpec::new(format!("helper_{zone}"), name, h.family, proto.clone());
    r.src = Some(ZoneRef::Zone(index));
    r.dports_pos = h.port.as_ref().map(|p| vec![port_text(p)]);
    r.target = Some(Target::Helper);
    r.set_helper = Some(h.name.clone());
    r
}

/// The `CT helper definitions` block (empty without available helpers).
pub(super) fn definitions_text(helpers: &[Helper]) -> String {
    if helpers.is_empty() {
        return String::new();
    }
    let mut out = String::from("\t#\n\t# CT helper definitions\n\t#\n\n");
    for h in helpers {
        for p in &h.protos {
            out.push_str(&format!(
                "\tct helper {} {{\n\t\ttype {} protocol {};\n\t}}\n\n",
                h.name,
                crate::nft::quote_forced(&h.name),
                p.name
            ));
        }
    }
    out.push('\n');
    out
}
