//! The seed note's router, as a test: OpenWrt's default firewall and
//! network (`shared/corpus/openwrt-defaults`) plus the seed's additions (a
//! restricted zone, a whitelisting rule, a new network on its own port),
//! then rewritten the way LuCI rewrites files (comments gone, everything
//! re-quoted, options reordered, lists folded into one option). The
//! semantic diff must show exactly the seed's "interesting bits".

use herd_uci::{
    batch_script, diff, export, parse_str, render_diff, run_script, Package, SectionChange, Value,
};

fn corpus(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/openwrt-defaults")
        .join(name);
    let p = if p.exists() {
        p
    } else {
        std::path::PathBuf::from("/work/shared/corpus/openwrt-defaults").join(name)
    };
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const FIREWALL_ADDITIONS: &str = "
config zone
\toption name 'limited'
\toption input 'ACCEPT'
\toption forward 'REJECT'
\toption output 'ACCEPT'
\toption network 'limited_lan'

config rule
\toption target 'ACCEPT'
\toption src 'limited'
\toption dest 'wan'
\toption name 'berlin-ccc-dns'
\toption proto 'all'
\toption dest_ip '213.73.91.35'
";

const NETWORK_ADDITIONS: &str = "
config device
\toption name 'br-limited'
\toption type 'bridge'
\tlist ports 'lan4'

config interface 'limited_lan'
\toption proto 'static'
\toption device 'br-limited'
\toption ipaddr '10.23.42.1'
\toption netmask '255.255.255.0'
";

/// What LuCI does to a file it saves: parse, then write every section back
/// with options in another order, lists folded into one space-separated
/// option where the reader accepts that, booleans spelled `yes`/`no`,
/// targets in lower case, and without a single comment.
fn luci_rewrite(p: &Package) -> String {
    let mut q = p.clone();
    for s in &mut q.sections {
        s.options.reverse();
        for o in &mut s.options {
            if let Value::List(items) = &o.value {
                if matches!(o.name.as_str(), "network" | "ports") {
                    o.value = Value::Single(items.join(" "));
                }
            }
            if let Value::Single(v) = &mut o.value {
                if matches!(o.name.as_str(), "masq" | "mtu_fix" | "syn_flood") {
                    *v = if v == "1" { "yes".into() } else { "no".into() };
                }
                if matches!(o.name.as_str(), "input" | "output" | "forward" | "target") {
                    *v = v.to_lowercase();
                }
            }
        }
    }
    // The defaults section moves to the end (its position means nothing).
    let defaults = q.sections.remove(0);
    q.sections.push(defaults);
    export(&q)
}

fn router(
    default: &str,
    additions: &str,
    name: &str,
    edit: impl Fn(&mut Package),
) -> (Package, Package) {
    let old = parse_str(default, name).expect("default parses");
    let mut new = parse_str(&format!("{default}{additions}"), name).expect("edited parses");
    edit(&mut new);
    let rewritten = luci_rewrite(&new);
    assert!(!rewritten.contains('#'));
    let new = parse_str(
        rewritten
            .strip_prefix(&format!("package {name}\n"))
            .unwrap_or(&rewritten),
        name,
    )
    .expect("rewrite parses");
    (old, new)
}

#[test]
fn firewall_diff_shows_only_the_new_zone_and_rule() {
    let (old, new) = router(
        &corpus("firewall.fw4-default"),
        FIREWALL_ADDITIONS,
        "firewall",
        |_| {},
    );
    let d = diff(&old, &new);
    assert_eq!(
        render_diff(&d),
        "--- firewall (old)
+++ firewall (new)
+config zone  # name 'limited'; new
+\toption network 'limited_lan'
+\toption output 'accept'
+\toption forward 'reject'
+\toption input 'accept'
+\toption name 'limited'
+config rule  # name 'berlin-ccc-dns'; new, after rule name 'Allow-ISAKMP'
+\toption dest_ip '213.73.91.35'
+\toption proto 'all'
+\toption name 'berlin-ccc-dns'
+\toption dest 'wan'
+\toption src 'limited'
+\toption target 'accept'
"
    );
    assert_eq!(d.sections.len(), 2);
    assert!(d
        .sections
        .iter()
        .all(|c| matches!(c, SectionChange::Added { .. })));
}

#[test]
fn network_diff_shows_the_moved_port_and_the_new_network() {
    let (old, new) = router(
        &corpus("network.dsa-default"),
        NETWORK_ADDITIONS,
        "network",
        |p| {
            let i = p.resolve("@device[0]").expect("br-lan");
            let ports = p.sections[i]
                .options
                .iter_mut()
                .find(|o| o.name == "ports")
                .expect("ports");
            ports.value = Value::List(vec!["lan1".into(), "lan2".into(), "lan3".into()]);
        },
    );
    let d = diff(&old, &new);
    assert_eq!(
        render_diff(&d),
        "--- network (old)
+++ network (new)
 config device  # name 'br-lan'
-\tlist ports 'lan4'
+config device  # name 'br-limited'; new
+\toption ports 'lan4'
+\toption type 'bridge'
+\toption name 'br-limited'
+config interface 'limited_lan'  # new
+\toption netmask '255.255.255.0'
+\toption ipaddr '10.23.42.1'
+\toption device 'br-limited'
+\toption proto 'static'
"
    );
}

#[test]
fn seed_batch_scripts_turn_the_defaults_into_the_router() {
    for (default, additions, name) in [
        (
            corpus("firewall.fw4-default"),
            FIREWALL_ADDITIONS,
            "firewall",
        ),
        (corpus("network.dsa-default"), NETWORK_ADDITIONS, "network"),
    ] {
        let (old, new) = router(&default, additions, name, |_| {});
        let script = batch_script(&old, &new).expect("script");
        let mut applied = old.clone();
        run_script(&mut applied, &script).expect("script runs");
        assert!(
            diff(&applied, &new).is_empty(),
            "{script}\n{}",
            render_diff(&diff(&applied, &new))
        );
        // One `add` per new section plus one command per option: nothing else.
        let expected: usize = diff(&old, &new)
            .sections
            .iter()
            .map(|c| match c {
                SectionChange::Added { options, .. } => {
                    1 + options.iter().map(|o| o.value.len()).sum::<usize>()
                }
                other => panic!("unexpected change {other:?}"),
            })
            .sum();
        assert_eq!(script.lines().count(), expected, "{script}");
    }
}
