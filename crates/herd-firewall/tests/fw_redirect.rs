//! Port forwards in `herd fw check`: OpenWrt's default firewall plus
//! redirects. A packet to the router's wan address and forwarded port is
//! translated to the internal host and forwarded; other ports are not; a lan
//! host reaches the forward through NAT reflection; a redirect without a
//! rewrite address goes to the router itself. Invalid redirects are refused
//! with the section and option named.

use herd_firewall::check::{check, CheckError, Query, Verdict};
use herd_firewall::fw4::{self, Environment, RedirectError};
use herd_firewall::nft::{FinalVerdict, Hook};
use herd_firewall::policy::to_fw_package;
use herd_uci::parse_str;

const DEFAULT_FIREWALL: &str = include_str!("corpus/openwrt-defaults/firewall.fw4-default");
const NETWORK: &str = include_str!("port-forward/network");

/// The web server at 192.168.1.10:80, reachable as 203.0.113.1:8080.
const WEB_FORWARD: &str = include_str!("port-forward/web-forward");

fn packages(
    extra: &str,
) -> (
    herd_firewall::config::Package,
    herd_firewall::config::Package,
) {
    let network = parse_str(NETWORK, "network").expect("network");
    let firewall = parse_str(&format!("{DEFAULT_FIREWALL}{extra}"), "firewall").expect("firewall");
    (to_fw_package(&network), to_fw_package(&firewall))
}

fn check_with(extra: &str, src: &str, dst: &str, dport: u16) -> Result<Verdict, CheckError> {
    let (network, firewall) = packages(extra);
    let q = Query {
        src: src.parse().expect("src"),
        dst: dst.parse().expect("dst"),
        proto: "tcp".into(),
        dport: Some(dport),
        wan_zone: "wan".into(),
    };
    check(&network, &firewall, &q)
}

fn verdict(extra: &str, src: &str, dst: &str, dport: u16) -> Verdict {
    check_with(extra, src, dst, dport).expect("check")
}

fn errors(extra: &str) -> Vec<RedirectError> {
    match check_with(extra, "198.51.100.7", "203.0.113.1", 8080) {
        Err(CheckError::Redirects(errors)) => errors,
        other => panic!("expected the redirects to be refused, got {other:?}"),
    }
}

/// The one refusal of a configuration: it must name `option`; its message.
fn only_error(extra: &str, option: &str) -> String {
    let errors = errors(extra);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].option(), option);
    errors[0].to_string()
}

/// fw4's rendering of the default firewall plus `extra`: what it loaded and
/// the ruleset text.
fn render(extra: &str) -> (fw4::Fw4, String) {
    let (network, firewall) = packages(extra);
    let (fw, rs) = fw4::render(&firewall, &Environment::from_network_package(&network));
    (fw, rs.render())
}

#[test]
fn wan_port_is_forwarded_to_the_internal_host() {
    let v = verdict(WEB_FORWARD, "198.51.100.7", "203.0.113.1", 8080);
    assert_eq!(v.decision.verdict, FinalVerdict::Accept, "{:?}", v.decision);
    assert_eq!(v.hook, Hook::Forward);
    assert_eq!(v.iif, "wan");
    assert_eq!(v.oif.as_deref(), Some("br-lan"));
    let dnat = v.dnat.expect("translated");
    assert_eq!(dnat.dst.to_string(), "192.168.1.10");
    assert_eq!(dnat.dport, Some(80));
    assert!(!dnat.redirect);
    assert!(dnat.rule.contains("dnat 192.168.1.10:80"), "{}", dnat.rule);
    assert_eq!(
        v.decision.reason(),
        "Accept port forwards (chain forward_wan)"
    );
    let chains: Vec<&str> = v.decision.trace.iter().map(|s| s.chain.as_str()).collect();
    assert_eq!(chains, ["dstnat", "dstnat_wan", "forward", "forward_wan"]);
}

#[test]
fn without_the_redirect_the_wan_port_is_rejected_by_the_router() {
    let v = verdict("", "198.51.100.7", "203.0.113.1", 8080);
    assert!(v.dnat.is_none());
    assert_eq!(v.hook, Hook::Input);
    assert_eq!(v.decision.verdict, FinalVerdict::Reject);
}

#[test]
fn other_wan_ports_are_not_forwarded() {
    let v = verdict(WEB_FORWARD, "198.51.100.7", "203.0.113.1", 8081);
    assert!(v.dnat.is_none());
    assert_eq!(v.hook, Hook::Input);
    assert_eq!(v.decision.verdict, FinalVerdict::Reject);
}

#[test]
fn the_internal_host_itself_is_not_reachable_from_wan() {
    // forward_wan's drop_to_wan only drops traffic leaving through wan; the
    // packet towards the lan falls through to the defaults' forward REJECT
    let v = verdict(WEB_FORWARD, "198.51.100.7", "192.168.1.10", 80);
    assert!(v.dnat.is_none());
    assert_eq!(v.hook, Hook::Forward);
    assert_eq!(v.decision.verdict, FinalVerdict::Reject, "{:?}", v.decision);
    assert_eq!(
        v.decision.reason(),
        "the forward chain's default REJECT: no rule allowed it"
    );
}

#[test]
fn lan_hosts_reach_the_forward_through_reflection() {
    let v = verdict(WEB_FORWARD, "192.168.1.20", "203.0.113.1", 8080);
    let dnat = v.dnat.clone().expect("reflection translates");
    assert_eq!(dnat.dst.to_string(), "192.168.1.10");
    assert!(dnat.rule.contains("(reflection)"), "{}", dnat.rule);
    assert_eq!(v.oif.as_deref(), Some("br-lan"));
    assert_eq!(v.decision.verdict, FinalVerdict::Accept);
}

#[test]
fn a_redirect_without_rewrite_address_goes_to_the_router() {
    let ssh = "\nconfig redirect\n\toption name 'ssh-alt'\n\toption src 'wan'\n\
\toption src_dport '2222'\n\toption dest_port '22'\n\toption proto 'tcp'\n";
    let v = verdict(ssh, "198.51.100.7", "203.0.113.1", 2222);
    let dnat = v.dnat.clone().expect("redirected");
    assert!(dnat.redirect);
    assert_eq!(dnat.dport, Some(22));
    assert_eq!(v.hook, Hook::Input);
    assert_eq!(v.decision.verdict, FinalVerdict::Accept);
    assert_eq!(
        v.decision.reason(),
        "Accept port redirections (chain input_wan)"
    );
}

#[test]
fn the_ruleset_nft_loads_carries_the_forward() {
    let (fw, text) = render(WEB_FORWARD);
    assert!(fw.redirect_errors.is_empty(), "{:?}", fw.redirect_errors);
    for line in [
        "meta nfproto ipv4 tcp dport 8080 counter dnat 192.168.1.10:80 comment \"!fw4: web-forward\"",
        "iifname \"wan\" jump dstnat_wan comment \"!fw4: Handle wan IPv4/IPv6 dstnat traffic\"",
        "ct status dnat accept comment \"!fw4: Accept port forwards\"",
        "ip saddr 192.168.1.0/24 ip daddr 192.168.1.10 tcp dport 80 snat 192.168.1.1 comment \"!fw4: web-forward (reflection)\"",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
}

#[test]
fn a_backwards_port_range_is_refused_naming_section_and_option() {
    let bad = WEB_FORWARD.replace("'80'", "'8080-80'");
    let msg = only_error(&bad, "dest_port");
    assert!(
        msg.starts_with("redirect @redirect[0] (web-forward): option 'dest_port' has the invalid value '8080-80'"),
        "{msg}"
    );
    assert!(msg.contains("FIRST <= LAST"), "{msg}");
}

#[test]
fn a_port_above_65535_is_refused() {
    let bad = WEB_FORWARD.replace("'8080'", "'70000'");
    let errors = errors(&bad);
    assert_eq!(errors[0].option(), "src_dport");
    assert!(errors[0].to_string().contains("'70000'"), "{}", errors[0]);
}

#[test]
fn an_unknown_zone_is_refused_with_the_defined_ones() {
    let bad = WEB_FORWARD.replace("option dest 'lan'", "option dest 'dmz'");
    let msg = only_error(&bad, "dest");
    assert!(msg.contains("zone 'dmz', which is not defined"), "{msg}");
    assert!(msg.contains("'lan', 'wan'"), "{msg}");
}

#[test]
fn a_dnat_into_a_zone_without_dest_ip_is_refused() {
    let bad = WEB_FORWARD.replace("\toption dest_ip '192.168.1.10'\n", "");
    let msg = only_error(&bad, "dest_ip");
    assert!(msg.contains("web-forward"), "{msg}");
    assert!(msg.contains("set dest_ip to the internal host"), "{msg}");
}

#[test]
fn a_rewritten_port_without_a_port_match_is_refused_before_nft_rejects_it() {
    // fw4 prints `meta nfproto ipv4 counter dnat 192.168.1.10:80` here, which
    // nft refuses to load (the router would end up without a firewall)
    let bad = WEB_FORWARD.replace("\toption src_dport '8080'\n", "");
    let msg = only_error(&bad, "src_dport");
    assert!(
        msg.contains("option 'dest_port' rewrites the port"),
        "{msg}"
    );
    assert!(msg.contains("add 'src_dport'"), "{msg}");
}

#[test]
fn a_dnat_without_source_zone_is_refused() {
    let bad = WEB_FORWARD.replace("\toption src 'wan'\n", "");
    let errors = errors(&bad);
    assert_eq!(errors[0].option(), "src");
    assert!(
        errors[0].to_string().contains("needs option 'src'"),
        "{}",
        errors[0]
    );
}

#[test]
fn the_refusal_lists_every_bad_section_and_says_what_to_do() {
    let bad = format!(
        "{}{}",
        WEB_FORWARD.replace("'80'", "'0-x'"),
        WEB_FORWARD.replace("'wan'", "'internet'")
    );
    let err = check_with(&bad, "198.51.100.7", "203.0.113.1", 8080).expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("@redirect[0]") && msg.contains("'dest_port'"),
        "{msg}"
    );
    assert!(
        msg.contains("@redirect[1]") && msg.contains("'src'"),
        "{msg}"
    );
    assert!(msg.contains("fix these sections"), "{msg}");
}

#[test]
fn fw4_skips_an_invalid_redirect_entirely() {
    let bad = WEB_FORWARD.replace("'80'", "'8080-80'");
    let (fw, text) = render(&bad);
    assert!(!text.contains("dnat 192.168.1.10"), "{text}");
    assert!(!text.contains("web-forward"), "{text}");
    assert!(
        fw.warnings.iter().any(|w| w
            == "Section @redirect[0] (web-forward) option 'dest_port' specifies invalid value '8080-80'"),
        "{:?}",
        fw.warnings
    );
}
