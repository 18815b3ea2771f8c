//! Real packets: network namespaces around a router namespace that loads
//! herd's nftables ruleset with Debian's `nft`. A client in the whitelisted
//! VLAN reaches the whitelisted wan address with TCP, UDP and ICMP (proto
//! all), is rejected towards the other address, the LAN is unaffected, and
//! `check` (the evaluator behind `herd fw check`) agrees with every packet.
//!
//! Addresses: whitelisted VLAN 192.0.2.0/24, LAN 198.51.100.0/24, wan
//! 203.0.113.0/24 (whitelisted 203.0.113.10, other 203.0.113.20), all
//! inside namespaces this test creates and deletes.

use herd_firewall::check::{self, Query};
use herd_firewall::fw4::{self, Environment};
use herd_firewall::nft::FinalVerdict;
use herd_firewall::policy::{self, Destination, Policy, Router, Switch, WhitelistZone};
use herd_uci::{parse_str, Package};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const DEFAULT_FIREWALL: &str = include_str!("corpus/openwrt-defaults/firewall.fw4-default");
const NETWORK: &str =
    "config interface 'loopback'\n\toption device 'lo'\n\toption proto 'static'\n\
\toption ipaddr '127.0.0.1'\n\toption netmask '255.0.0.0'\n\n\
config interface 'lan'\n\toption device 'br-lan'\n\toption proto 'static'\n\
\toption ipaddr '198.51.100.1'\n\toption netmask '255.255.255.0'\n\n\
config interface 'wan'\n\toption device 'wan'\n\toption proto 'static'\n\
\toption ipaddr '203.0.113.1'\n\toption netmask '255.255.255.0'\n\n\
config switch_vlan\n\toption device 'switch0'\n\toption vlan '1'\n\toption ports '1 2 3 4 5t'\n";

fn lab_policy() -> Policy {
    Policy {
        router: Router {
            hostname: "router1".into(),
            switch: Switch::Swconfig {
                device: "switch0".into(),
                cpu_port: "5".into(),
                lan_vlan: 1,
                lan_ports: vec!["1".into(), "2".into(), "3".into(), "4".into()],
                uplink: "eth0".into(),
            },
            wan_zone: "wan".into(),
            address: None,
        },
        zones: vec![WhitelistZone {
            name: "limited".into(),
            vlan: 42,
            ports: vec!["4".into()],
            gateway: "192.0.2.1".parse().expect("addr"),
            prefix: 24,
            destinations: vec![Destination {
                address: "203.0.113.10".into(),
                name: "allowed-host".into(),
            }],
            protocols: vec!["all".into()],
        }],
    }
}

/// Namespaces and processes, removed on drop (also when a test fails).
struct Lab {
    prefix: String,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for role in ["r", "c", "l", "w"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(role)])
                .output();
        }
    }
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn nsx(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

fn link(lab: &Lab, a: (&str, &str), b: (&str, &str), tag: &str) {
    let (ta, tb) = (
        format!("{}{tag}a", lab.prefix),
        format!("{}{tag}b", lab.prefix),
    );
    run(&[
        "ip", "link", "add", &ta, "type", "veth", "peer", "name", &tb,
    ]);
    for (tmp, (role, name)) in [(&ta, a), (&tb, b)] {
        let ns = lab.ns(role);
        run(&["ip", "link", "set", tmp, "netns", &ns]);
        run(&["ip", "-n", &ns, "link", "set", tmp, "name", name]);
        run(&["ip", "-n", &ns, "link", "set", name, "up"]);
    }
}

fn build_lab(ruleset: &str) -> Lab {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = Lab {
        prefix: format!("hfw{}", std::process::id()),
        children: Vec::new(),
        _dir: dir,
    };
    for role in ["r", "c", "l", "w"] {
        run(&["ip", "netns", "add", &lab.ns(role)]);
        run(&["ip", "-n", &lab.ns(role), "link", "set", "lo", "up"]);
    }
    let (r, c, l, w) = (lab.ns("r"), lab.ns("c"), lab.ns("l"), lab.ns("w"));
    // the whitelisted VLAN: tagged 42 between router (eth0.42) and client;
    // where the kernel has no 8021q (containers), the router's end of an
    // untagged veth carries the name eth0.42, which is all the ruleset sees
    link(&lab, ("r", "eth0"), ("c", "c0"), "1");
    let tagged = Command::new("ip")
        .args([
            "-n", &r, "link", "add", "link", "eth0", "name", "eth0.42", "type", "vlan", "id", "42",
        ])
        .output()
        .expect("ip")
        .status
        .success();
    let client_dev = if tagged {
        run(&[
            "ip", "-n", &c, "link", "add", "link", "c0", "name", "c0.42", "type", "vlan", "id",
            "42",
        ]);
        "c0.42"
    } else {
        run(&["ip", "-n", &r, "link", "set", "eth0", "down"]);
        run(&["ip", "-n", &r, "link", "set", "eth0", "name", "eth0.42"]);
        "c0"
    };
    run(&[
        "ip",
        "-n",
        &r,
        "addr",
        "add",
        "192.0.2.1/24",
        "dev",
        "eth0.42",
    ]);
    run(&["ip", "-n", &r, "link", "set", "eth0.42", "up"]);
    run(&[
        "ip",
        "-n",
        &c,
        "addr",
        "add",
        "192.0.2.2/24",
        "dev",
        client_dev,
    ]);
    run(&["ip", "-n", &c, "link", "set", client_dev, "up"]);
    run(&[
        "ip",
        "-n",
        &c,
        "route",
        "add",
        "default",
        "via",
        "192.0.2.1",
    ]);
    // the LAN
    link(&lab, ("r", "br-lan"), ("l", "l0"), "2");
    run(&[
        "ip",
        "-n",
        &r,
        "addr",
        "add",
        "198.51.100.1/24",
        "dev",
        "br-lan",
    ]);
    run(&[
        "ip",
        "-n",
        &l,
        "addr",
        "add",
        "198.51.100.2/24",
        "dev",
        "l0",
    ]);
    run(&[
        "ip",
        "-n",
        &l,
        "route",
        "add",
        "default",
        "via",
        "198.51.100.1",
    ]);
    // the wan side: one whitelisted, one other address
    link(&lab, ("r", "wan"), ("w", "w0"), "3");
    run(&[
        "ip",
        "-n",
        &r,
        "addr",
        "add",
        "203.0.113.1/24",
        "dev",
        "wan",
    ]);
    run(&[
        "ip",
        "-n",
        &w,
        "addr",
        "add",
        "203.0.113.10/24",
        "dev",
        "w0",
    ]);
    run(&[
        "ip",
        "-n",
        &w,
        "addr",
        "add",
        "203.0.113.20/24",
        "dev",
        "w0",
    ]);
    run(&[
        "ip",
        "netns",
        "exec",
        &r,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]);
    let file = lab._dir.path().join("fw4.nft");
    std::fs::write(&file, ruleset).expect("write ruleset");
    let out = nsx(&r, &["nft", "-f", file.to_str().expect("utf8 path")])
        .output()
        .expect("nft");
    assert!(
        out.status.success(),
        "nft rejected herd's ruleset: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab
}

fn tcp_ok(lab: &mut Lab, from: &str, dst: &str) -> bool {
    nsx(&lab.ns(from), &["nc", "-z", "-w", "2", dst, "8080"])
        .status()
        .expect("nc")
        .success()
}

fn udp_ok(lab: &mut Lab, from: &str, dst: &str) -> bool {
    let listener = nsx(&lab.ns("w"), &["timeout", "2", "nc", "-u", "-l", "5353"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("udp listener");
    std::thread::sleep(Duration::from_millis(300));
    let mut client = nsx(&lab.ns(from), &["nc", "-u", "-w", "1", dst, "5353"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("udp client");
    if let Some(mut stdin) = client.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"whitelisted?\n");
    }
    let _ = client.wait();
    let out = listener.wait_with_output().expect("listener output");
    String::from_utf8_lossy(&out.stdout).contains("whitelisted?")
}

fn icmp_ok(lab: &mut Lab, from: &str, dst: &str) -> bool {
    nsx(&lab.ns(from), &["ping", "-c", "1", "-W", "1", dst])
        .stdout(Stdio::null())
        .status()
        .expect("ping")
        .success()
}

fn herd_says(network: &Package, firewall: &Package, src: &str, dst: &str, proto: &str) -> bool {
    let q = Query {
        src: src.parse().expect("src"),
        dst: dst.parse().expect("dst"),
        proto: proto.to_string(),
        dport: (proto != "icmp").then_some(if proto == "tcp" { 8080 } else { 5353 }),
        wan_zone: "wan".into(),
    };
    let v = check::check(
        &policy::to_fw_package(network),
        &policy::to_fw_package(firewall),
        &q,
    )
    .expect("check");
    v.decision.verdict == FinalVerdict::Accept
}

#[test]
fn whitelisted_vlan_reaches_only_listed_destinations_with_real_packets() {
    let network = parse_str(NETWORK, "network").expect("network");
    let firewall = parse_str(DEFAULT_FIREWALL, "firewall").expect("firewall");
    let out = policy::render(&lab_policy(), &network, &firewall).expect("render");
    let env = Environment::from_network_package(&policy::to_fw_package(&out.network));
    let (_, ruleset) = fw4::render(&policy::to_fw_package(&out.firewall), &env);
    let mut lab = build_lab(&ruleset.render());
    let server = nsx(&lab.ns("w"), &["nc", "-l", "-k", "8080"])
        .stdout(Stdio::null())
        .spawn()
        .expect("tcp server");
    lab.children.push(server);
    std::thread::sleep(Duration::from_millis(300));

    // (from namespace, source address, destination, protocol, expected)
    let cases = [
        ("c", "192.0.2.2", "203.0.113.10", "tcp", true),
        ("c", "192.0.2.2", "203.0.113.10", "udp", true),
        ("c", "192.0.2.2", "203.0.113.10", "icmp", true),
        ("c", "192.0.2.2", "203.0.113.20", "tcp", false),
        ("c", "192.0.2.2", "203.0.113.20", "udp", false),
        ("c", "192.0.2.2", "203.0.113.20", "icmp", false),
        ("l", "198.51.100.2", "203.0.113.20", "tcp", true),
        ("l", "198.51.100.2", "203.0.113.20", "udp", true),
        ("l", "198.51.100.2", "203.0.113.10", "icmp", true),
    ];
    let mut report = Vec::new();
    for (ns, src, dst, proto, expected) in cases {
        let passed = match proto {
            "tcp" => tcp_ok(&mut lab, ns, dst),
            "udp" => udp_ok(&mut lab, ns, dst),
            _ => icmp_ok(&mut lab, ns, dst),
        };
        let herd = herd_says(&out.network, &out.firewall, src, dst, proto);
        report.push(format!(
            "{proto} {src} -> {dst}: packets {}, herd fw check {}, expected {}",
            if passed { "pass" } else { "rejected" },
            if herd { "accept" } else { "reject" },
            if expected { "pass" } else { "rejected" },
        ));
        assert!(
            passed == expected && herd == passed,
            "{}",
            report.join("\n")
        );
    }
    println!("{}", report.join("\n"));
}
