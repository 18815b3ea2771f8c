//! Real packets: network namespaces around a router namespace that loads
//! herd's nftables ruleset with Debian's `nft`. A client in the whitelisted
//! VLAN reaches the whitelisted wan address with TCP, UDP and ICMP (proto
//! all), is rejected towards the other address, the LAN is unaffected, and
//! `herd fw check` agrees with every packet. The whole path goes through
//! the CLI: `herd fw render` → `herd fw nft` → `nft -f` → `herd fw check`.
//!
//! Addresses: whitelisted VLAN 192.0.2.0/24, LAN 198.51.100.0/24, wan
//! 203.0.113.0/24 (whitelisted 203.0.113.10, other 203.0.113.20), all
//! inside namespaces this test creates and deletes.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::netns::{check_accepted, herd, nft_ruleset, write_config, Lab};

const DEFAULT_FIREWALL: &str =
    include_str!("../../herd-firewall/tests/corpus/openwrt-defaults/firewall.fw4-default");
const NETWORK: &str =
    "config interface 'loopback'\n\toption device 'lo'\n\toption proto 'static'\n\
\toption ipaddr '127.0.0.1'\n\toption netmask '255.0.0.0'\n\n\
config interface 'lan'\n\toption device 'br-lan'\n\toption proto 'static'\n\
\toption ipaddr '198.51.100.1'\n\toption netmask '255.255.255.0'\n\n\
config interface 'wan'\n\toption device 'wan'\n\toption proto 'static'\n\
\toption ipaddr '203.0.113.1'\n\toption netmask '255.255.255.0'\n\n\
config switch_vlan\n\toption device 'switch0'\n\toption vlan '1'\n\toption ports '1 2 3 4 5t'\n";

/// The router and its whitelist zone as inventory objects (`herd query --json`).
const POLICY: &str = r#"[
  {"hostname": "router1", "servertype": "openwrt_router", "openwrt_switch": "swconfig",
   "openwrt_switch_device": "switch0", "openwrt_cpu_port": "5", "openwrt_uplink": "eth0",
   "openwrt_lan_vlan": 1, "openwrt_lan_ports": ["1", "2", "3", "4"], "openwrt_wan_zone": "wan"},
  {"hostname": "limited", "servertype": "openwrt_whitelist_zone", "openwrt_router": "router1",
   "whitelist_vlan": 42, "whitelist_ports": ["4"], "whitelist_gateway": "192.0.2.1/24",
   "whitelist_destinations": ["203.0.113.10"],
   "whitelist_destination_names": ["203.0.113.10=allowed-host"]}
]"#;

fn build_lab(ruleset: &str) -> Lab {
    let lab = Lab::new("hfw", &["r", "c", "l", "w"]);
    // the whitelisted VLAN: tagged 42 between router (eth0.42) and client;
    // where the kernel has no 8021q (containers), the router's end of an
    // untagged veth carries the name eth0.42, which is all the ruleset sees
    lab.link(("r", "eth0"), ("c", "c0"), "1");
    let tagged = Command::new("ip")
        .args([
            "-n",
            &lab.ns("r"),
            "link",
            "add",
            "link",
            "eth0",
            "name",
            "eth0.42",
            "type",
            "vlan",
            "id",
            "42",
        ])
        .output()
        .expect("ip")
        .status
        .success();
    let client_dev = if tagged {
        lab.ip(
            "c",
            &[
                "link", "add", "link", "c0", "name", "c0.42", "type", "vlan", "id", "42",
            ],
        );
        "c0.42"
    } else {
        lab.ip("r", &["link", "set", "eth0", "down"]);
        lab.ip("r", &["link", "set", "eth0", "name", "eth0.42"]);
        "c0"
    };
    lab.addr("r", "192.0.2.1/24", "eth0.42");
    lab.ip("r", &["link", "set", "eth0.42", "up"]);
    lab.addr("c", "192.0.2.2/24", client_dev);
    lab.ip("c", &["link", "set", client_dev, "up"]);
    lab.route("c", "default", "192.0.2.1");
    // the LAN
    lab.link(("r", "br-lan"), ("l", "l0"), "2");
    lab.addr("r", "198.51.100.1/24", "br-lan");
    lab.addr("l", "198.51.100.2/24", "l0");
    lab.route("l", "default", "198.51.100.1");
    // the wan side: one whitelisted, one other address
    lab.link(("r", "wan"), ("w", "w0"), "3");
    lab.addr("r", "203.0.113.1/24", "wan");
    lab.addr("w", "203.0.113.10/24", "w0");
    lab.addr("w", "203.0.113.20/24", "w0");
    lab.load_router("r", ruleset);
    lab
}

fn tcp_ok(lab: &mut Lab, from: &str, dst: &str) -> bool {
    lab.exec(from, &["nc", "-z", "-w", "2", dst, "8080"])
        .status()
        .expect("nc")
        .success()
}

fn udp_ok(lab: &mut Lab, from: &str, dst: &str) -> bool {
    let listener = lab
        .exec("w", &["timeout", "2", "nc", "-u", "-l", "5353"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("udp listener");
    std::thread::sleep(Duration::from_millis(300));
    let mut client = lab
        .exec(from, &["nc", "-u", "-w", "1", dst, "5353"])
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
    lab.exec(from, &["ping", "-c", "1", "-W", "1", dst])
        .stdout(Stdio::null())
        .status()
        .expect("ping")
        .success()
}

/// `herd fw check --config DIR`: exit 0 for accept, 1 for reject or drop.
fn herd_says(dir: &Path, src: &str, dst: &str, proto: &str) -> bool {
    let mut args = vec![
        "fw", "check", "--config", "rendered", "--src", src, "--dst", dst, "--proto", proto,
    ];
    let port = if proto == "tcp" { "8080" } else { "5353" };
    if proto != "icmp" {
        args.extend(["--dport", port]);
    }
    let out = herd(&args, dir);
    check_accepted(&out)
}

#[test]
fn whitelisted_vlan_reaches_only_listed_destinations_with_real_packets() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    write_config(dir, "current", NETWORK, DEFAULT_FIREWALL);
    std::fs::write(dir.join("policy.json"), POLICY).expect("policy");
    let render = herd(
        &[
            "fw",
            "render",
            "router1",
            "--policy",
            "policy.json",
            "--current",
            "current",
            "--output",
            "rendered",
        ],
        dir,
    );
    assert!(
        render.status.success(),
        "render: {}",
        String::from_utf8_lossy(&render.stderr)
    );
    let ruleset = nft_ruleset(dir, "rendered");
    let mut lab = build_lab(&ruleset);
    lab.serve("w", &["nc", "-l", "-k", "8080"], Stdio::null());

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
        let herd = herd_says(dir, src, dst, proto);
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
