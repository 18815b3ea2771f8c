//! Packet verdicts on the seed's router with OpenWrt's default firewall:
//! the verdict and the rule or policy that decided it.

use herd_firewall::check::{check, Query, Verdict};
use herd_firewall::inventory::{objects_from_json, policy_from_objects};
use herd_firewall::nft::{FinalVerdict, Hook};
use herd_firewall::policy::{self, Rendered};
use herd_uci::parse_str;

const FIREWALL: &str = include_str!("corpus/openwrt-defaults/firewall.fw4-default");
const NETWORK: &str = "config interface 'lan'\n\toption device 'br-lan'\n\toption proto 'static'\n\
\toption ipaddr '198.51.100.1'\n\toption netmask '255.255.255.0'\n\n\
config interface 'wan'\n\toption device 'wan'\n\toption proto 'dhcp'\n\n\
config switch_vlan\n\toption device 'switch0'\n\toption vlan '1'\n\toption ports '1 2 3 4 5t'\n";

fn rendered() -> Rendered {
    let objects = objects_from_json(include_str!("seed/inventory.json")).expect("fixture");
    let p = policy_from_objects("router1", &objects).expect("policy");
    let network = parse_str(NETWORK, "network").expect("network");
    let firewall = parse_str(FIREWALL, "firewall").expect("firewall");
    policy::render(&p, &network, &firewall).expect("render")
}

fn verdict(src: &str, dst: &str, proto: &str, dport: Option<u16>) -> Verdict {
    let out = rendered();
    let q = Query {
        src: src.parse().expect("src"),
        dst: dst.parse().expect("dst"),
        proto: proto.into(),
        dport,
        wan_zone: "wan".into(),
    };
    check(
        &policy::to_fw_package(&out.network),
        &policy::to_fw_package(&out.firewall),
        &q,
    )
    .expect("check")
}

#[test]
fn whitelisted_destination_is_accepted_by_its_named_rule() {
    let v = verdict("10.23.42.7", "213.73.91.35", "udp", Some(53));
    assert_eq!(v.decision.verdict, FinalVerdict::Accept);
    assert_eq!(v.iif, "eth0.42");
    assert_eq!(v.oif.as_deref(), Some("wan"));
    assert!(
        v.decision.reason().contains("berlin-ccc-dns"),
        "{}",
        v.decision.reason()
    );
}

#[test]
fn proto_all_lets_icmp_through_too() {
    let v = verdict("10.23.42.7", "213.73.91.35", "icmp", None);
    assert_eq!(v.decision.verdict, FinalVerdict::Accept);
}

#[test]
fn other_destinations_are_rejected_by_the_forward_policy() {
    let v = verdict("10.23.42.7", "192.0.2.99", "tcp", Some(443));
    assert_eq!(v.decision.verdict, FinalVerdict::Reject);
    assert!(
        v.decision
            .trace
            .iter()
            .any(|s| s.rule.contains("jump handle_reject")),
        "{:?}",
        v.decision.trace
    );
}

#[test]
fn the_lan_still_reaches_everything() {
    let v = verdict("198.51.100.20", "192.0.2.99", "tcp", Some(443));
    assert_eq!(v.decision.verdict, FinalVerdict::Accept);
    assert!(v.decision.reason().contains("Accept lan to wan forwarding"));
}

#[test]
fn the_zone_may_talk_to_the_router_itself() {
    let v = verdict("10.23.42.7", "10.23.42.1", "udp", Some(53));
    assert_eq!(v.hook, Hook::Input);
    assert_eq!(v.decision.verdict, FinalVerdict::Accept);
}

#[test]
fn the_zone_cannot_reach_the_lan() {
    let v = verdict("10.23.42.7", "198.51.100.20", "tcp", Some(22));
    assert_ne!(v.decision.verdict, FinalVerdict::Accept);
}

#[test]
fn a_rendered_config_needs_no_further_changes() {
    let out = rendered();
    let again = policy::render(
        &policy_from_objects(
            "router1",
            &objects_from_json(include_str!("seed/inventory.json")).expect("fixture"),
        )
        .expect("policy"),
        &out.network,
        &out.firewall,
    )
    .expect("render");
    assert!(herd_uci::diff::diff(&out.network, &again.network).is_empty());
    assert!(herd_uci::diff::diff(&out.firewall, &again.firewall).is_empty());
}

#[test]
fn the_batch_script_turns_the_current_config_into_the_rendered_one() {
    let out = rendered();
    for (current, want) in [
        (
            parse_str(NETWORK, "network").expect("network"),
            &out.network,
        ),
        (
            parse_str(FIREWALL, "firewall").expect("firewall"),
            &out.firewall,
        ),
    ] {
        let script = herd_uci::batch_script(&current, want).expect("script");
        let mut got = current.clone();
        herd_uci::run_script(&mut got, &script).expect("script runs");
        assert!(herd_uci::diff::diff(&got, want).is_empty(), "{script}");
    }
}
