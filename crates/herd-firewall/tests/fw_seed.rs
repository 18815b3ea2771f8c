//! The seed note's whitelisting, end to end: the seed's inventory objects →
//! `render` → the seed's config diff, byte for byte in the lines it shows.

use herd_firewall::inventory::{objects_from_json, policy_from_objects, SCHEMA_PRESET};
use herd_firewall::policy::{self, Policy};
use herd_uci::{commit_text, parse_str, Package};

const SEED_DIFF: &str = include_str!("seed/whitelist.diff");

fn seed_policy() -> Policy {
    let objects = objects_from_json(include_str!("seed/inventory.json")).expect("fixture");
    policy_from_objects("router1", &objects).expect("seed objects are valid")
}

/// The router's files as far as the seed's diff context shows them.
fn seed_network() -> Package {
    parse_str(
        "config switch\n\toption name 'switch0'\n\toption reset '1'\n\toption enable_vlan '1'\n\n\
         config switch_vlan\n\toption device 'switch0'\n\toption vlan '1'\n\toption ports '1 2 3 4 5t'\n\n\
         config switch_vlan\n\toption device 'switch0'\n\toption vlan '2'\n\toption ports '0 5t'\n",
        "network",
    )
    .expect("network fixture")
}

fn seed_firewall() -> Package {
    parse_str(
        "config zone\n\toption name 'wan'\n\tlist network 'wan'\n\toption input 'REJECT'\n\
         \toption output 'ACCEPT'\n\toption forward 'REJECT'\n\toption masq '1'\n\n\
         config rule\n\toption name 'Allow-ISAKMP'\n\toption src 'wan'\n\toption dest 'lan'\n\
         \toption dest_port '500'\n\toption proto 'udp'\n\toption target 'ACCEPT'\n",
        "firewall",
    )
    .expect("firewall fixture")
}

/// The `+`/`-` lines of one file's part of the seed's diff (blank ones
/// dropped: the seed inserts before a blank line, herd appends after one).
fn seed_changes(file: &str) -> Vec<String> {
    let part = SEED_DIFF
        .split("diff --git ")
        .find(|p| p.starts_with(&format!("a/config/{file} ")))
        .expect("seed has the file");
    part.lines()
        .filter(|l| !l.starts_with("+++") && !l.starts_with("---"))
        .filter(|l| l.starts_with('+') || l.starts_with('-'))
        .filter(|l| l.len() > 1)
        .map(str::to_string)
        .collect()
}

fn our_changes(before: &Package, after: &Package) -> Vec<String> {
    let (a, b) = (commit_text(before), commit_text(after));
    let diff = similar::TextDiff::from_lines(&a, &b);
    diff.iter_all_changes()
        .filter_map(|c| {
            let line = c.value().trim_end_matches('\n');
            match c.tag() {
                similar::ChangeTag::Delete if !line.is_empty() => Some(format!("-{line}")),
                similar::ChangeTag::Insert if !line.is_empty() => Some(format!("+{line}")),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn seed_objects_render_the_seeds_network_diff() {
    let (net, fw) = (seed_network(), seed_firewall());
    let out = policy::render(&seed_policy(), &net, &fw).expect("renders");
    assert_eq!(our_changes(&net, &out.network), seed_changes("network"));
}

#[test]
fn seed_objects_render_the_seeds_firewall_diff() {
    let (net, fw) = (seed_network(), seed_firewall());
    let out = policy::render(&seed_policy(), &net, &fw).expect("renders");
    assert_eq!(our_changes(&fw, &out.firewall), seed_changes("firewall"));
}

#[test]
fn seed_sections_appear_verbatim_as_blocks() {
    let (net, fw) = (seed_network(), seed_firewall());
    let out = policy::render(&seed_policy(), &net, &fw).expect("renders");
    let fw_text = commit_text(&out.firewall);
    let block: String = seed_changes("firewall")
        .iter()
        .map(|l| l[1..].to_string())
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\nconfig rule", "\n\nconfig rule");
    assert!(fw_text.contains(&block), "{fw_text}\n---\n{block}");
    let net_text = commit_text(&out.network);
    assert!(net_text.contains(
        "config switch_vlan\n\toption device 'switch0'\n\toption ports '4 5t'\n\toption vlan '42'\n\n\
         config interface 'limited_lan'\n\toption proto 'static'\n\toption ifname 'eth0.42'\n\
         \toption ipaddr '10.23.42.1'\n\toption netmask '255.255.255.0'\n"
    ));
}

#[test]
fn rendering_twice_changes_nothing() {
    let (net, fw) = (seed_network(), seed_firewall());
    let p = seed_policy();
    let once = policy::render(&p, &net, &fw).expect("renders");
    let twice = policy::render(&p, &once.network, &once.firewall).expect("renders");
    assert_eq!(commit_text(&once.network), commit_text(&twice.network));
    assert_eq!(commit_text(&once.firewall), commit_text(&twice.firewall));
}

#[test]
fn zone_masq_is_left_to_the_wan_zone_and_explained() {
    let (net, fw) = (seed_network(), seed_firewall());
    let out = policy::render(&seed_policy(), &net, &fw).expect("renders");
    let zone = out
        .firewall
        .sections_of("zone")
        .find(|s| s.get_single("name") == Some("limited"))
        .expect("zone");
    assert_eq!(zone.get_single("masq"), None);
    assert!(out.notes.iter().any(|n| n.contains("no masq on purpose")));
}

#[test]
fn long_zone_names_are_cut_for_fw3_and_explained() {
    let mut p = seed_policy();
    p.zones[0].name = "limited-guests".into();
    let (net, fw) = (seed_network(), seed_firewall());
    let out = policy::render(&p, &net, &fw).expect("renders");
    assert!(out
        .firewall
        .sections_of("zone")
        .any(|s| s.get_single("name") == Some("limited-gue")));
    assert!(out
        .notes
        .iter()
        .any(|n| n.contains("fw3 refuses zone names longer than 11")));
}

#[test]
fn removed_destinations_lose_their_rules() {
    let (net, fw) = (seed_network(), seed_firewall());
    let mut p = seed_policy();
    let once = policy::render(&p, &net, &fw).expect("renders");
    p.zones[0].destinations.clear();
    let after = policy::render(&p, &once.network, &once.firewall).expect("renders");
    assert!(!after
        .firewall
        .sections_of("rule")
        .any(|s| s.get_single("src") == Some("limited")));
}

#[test]
fn missing_attributes_are_all_reported() {
    let objects = objects_from_json(
        r#"[{"hostname": "r", "servertype": "openwrt_router", "openwrt_switch": "swconfig", "openwrt_lan_vlan": 1},
            {"hostname": "z", "servertype": "openwrt_whitelist_zone", "openwrt_router": "r"}]"#,
    )
    .expect("json");
    let errors = policy_from_objects("r", &objects).expect_err("invalid");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|e| e.contains("openwrt_switch_device")),
        "{text:?}"
    );
}

#[test]
fn schema_preset_is_a_list_of_schema_changes() {
    let changes: Vec<herd_model::schema::SchemaChange> =
        serde_json::from_str(SCHEMA_PRESET).expect("preset parses as schema changes");
    assert!(changes.len() > 10);
}
