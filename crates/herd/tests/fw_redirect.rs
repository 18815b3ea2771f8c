//! A port forward with real packets: OpenWrt's default firewall plus a
//! `config redirect` (wan 203.0.113.1:8080 → web server 192.168.1.10:80),
//! rendered by `herd fw nft`, loaded with `nft -f` into a router namespace.
//! A wan client's TCP connection to the wan address and port reaches the
//! internal server (the server receives the client's bytes); other ports and
//! the server's own address stay closed from wan; a lan host reaches the
//! forward through NAT reflection; and `herd fw check` agrees with each
//! packet and shows the translation.
//!
//! Namespaces: router (wan 203.0.113.1/24, bridge br-lan 192.168.1.1/24),
//! wan client 203.0.113.10, web server 192.168.1.10, lan client
//! 192.168.1.20; all created and deleted by this test.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::netns::{check_accepted, herd, nft_ruleset, write_config, Lab};

const DEFAULT_FIREWALL: &str =
    include_str!("../../herd-firewall/tests/corpus/openwrt-defaults/firewall.fw4-default");
/// The router's network and its port forward (wan 203.0.113.1:8080 → web
/// server 192.168.1.10:80), shared with herd-firewall's `fw_redirect` tests.
const NETWORK: &str = include_str!("../../herd-firewall/tests/port-forward/network");
const WEB_FORWARD: &str = include_str!("../../herd-firewall/tests/port-forward/web-forward");

const ROLES: [&str; 4] = ["r", "w", "s", "m"];

fn build_lab(ruleset: &str) -> Lab {
    let lab = Lab::new("hfr", &ROLES);
    // wan: the router's wan address and a client on the internet side, which
    // also gets a route to the lan so that the server's own address is tried
    lab.link(("r", "wan"), ("w", "w0"), "1");
    lab.addr("r", "203.0.113.1/24", "wan");
    lab.addr("w", "203.0.113.10/24", "w0");
    lab.route("w", "192.168.1.0/24", "203.0.113.1");
    // lan: a bridge with the web server and a lan client behind it
    lab.ip("r", &["link", "add", "br-lan", "type", "bridge"]);
    lab.ip("r", &["link", "set", "br-lan", "up"]);
    lab.addr("r", "192.168.1.1/24", "br-lan");
    for (role, port, dev, cidr, tag) in [
        ("s", "lan1", "s0", "192.168.1.10/24", "2"),
        ("m", "lan2", "m0", "192.168.1.20/24", "3"),
    ] {
        lab.link(("r", port), (role, dev), tag);
        lab.ip("r", &["link", "set", port, "master", "br-lan"]);
        lab.addr(role, cidr, dev);
        lab.route(role, "default", "192.168.1.1");
    }
    lab.load_router("r", ruleset);
    lab
}

/// Sends `token` over TCP from a namespace; true when the connection was
/// accepted (nc exits 0).
fn send(lab: &Lab, from: &str, dst: &str, port: &str, token: &str) -> bool {
    let mut nc = lab
        .exec(from, &["nc", "-N", "-w", "2", dst, port])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nc client");
    if let Some(mut stdin) = nc.stdin.take() {
        use std::io::Write;
        let _ = writeln!(stdin, "{token}");
    }
    nc.wait().expect("nc client").success()
}

/// Did the web server receive `token` (within a second)?
fn server_got(log: &Path, token: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(token)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `herd fw check --config cfg`: (accepted, output).
fn herd_check(dir: &Path, src: &str, dst: &str, port: &str) -> (bool, String) {
    let out = herd(
        &[
            "fw", "check", "--config", "cfg", "--src", src, "--dst", dst, "--proto", "tcp",
            "--dport", port,
        ],
        dir,
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (check_accepted(&out), text)
}

#[test]
fn wan_port_forward_reaches_the_internal_server_and_check_agrees() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    write_config(
        dir,
        "cfg",
        NETWORK,
        &format!("{DEFAULT_FIREWALL}{WEB_FORWARD}"),
    );
    let ruleset = nft_ruleset(dir, "cfg");
    assert!(
        ruleset.contains("tcp dport 8080 counter dnat 192.168.1.10:80"),
        "{ruleset}"
    );
    let mut lab = build_lab(&ruleset);
    let log = dir.join("server.log");
    let log_file = std::fs::File::create(&log).expect("log");
    lab.serve("s", &["nc", "-l", "-k", "80"], Stdio::from(log_file));

    // (from, source address, destination, port, expected to reach the server)
    let cases = [
        ("w", "203.0.113.10", "203.0.113.1", "8080", true),
        ("w", "203.0.113.10", "203.0.113.1", "8081", false),
        ("w", "203.0.113.10", "192.168.1.10", "80", false),
        ("m", "192.168.1.20", "203.0.113.1", "8080", true),
    ];
    let mut report = Vec::new();
    for (i, (from, src, dst, port, expected)) in cases.into_iter().enumerate() {
        let token = format!("token-{i}-from-{src}-to-{dst}-{port}");
        let connected = send(&lab, from, dst, port, &token);
        let reached = connected && server_got(&log, &token);
        let (accepted, text) = herd_check(dir, src, dst, port);
        report.push(format!(
            "{src} -> {dst}:{port}: connected {connected}, server got it {reached}, herd fw check {}, expected {expected}",
            if accepted { "accept" } else { "reject/drop" },
        ));
        assert!(
            reached == expected && accepted == expected && connected == expected,
            "{}\n{text}",
            report.join("\n")
        );
        if expected {
            assert!(text.contains("dnat 192.168.1.10:80"), "{text}");
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn check_refuses_an_invalid_redirect_naming_section_and_option() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let bad = WEB_FORWARD.replace("'80'", "'8080-80'");
    write_config(dir, "cfg", NETWORK, &format!("{DEFAULT_FIREWALL}{bad}"));
    let out = herd(
        &[
            "fw",
            "check",
            "--config",
            "cfg",
            "--src",
            "203.0.113.10",
            "--dst",
            "203.0.113.1",
            "--proto",
            "tcp",
            "--dport",
            "8080",
        ],
        dir,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("redirect @redirect[0] (web-forward): option 'dest_port' has the invalid value '8080-80'"),
        "{stderr}"
    );
    assert!(stderr.contains("fix these sections"), "{stderr}");
    // nft still prints what fw4 would load (without the redirect), with
    // fw4's warning naming section and option
    let nft = herd(&["fw", "nft", "--config", "cfg"], dir);
    assert!(nft.status.success());
    assert!(!String::from_utf8_lossy(&nft.stdout).contains("web-forward"));
    assert!(String::from_utf8_lossy(&nft.stderr).contains(
        "[!] Section @redirect[0] (web-forward) option 'dest_port' specifies invalid value '8080-80'"
    ));
}
