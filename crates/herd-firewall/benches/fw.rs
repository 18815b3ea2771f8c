//! Figures for docs/bench/fw.md: `cargo bench -p herd-firewall --bench fw`.
//! fw4 rendering and packet verdicts on OpenWrt's default firewall plus a
//! whitelist zone with N destinations.

use herd_firewall::check::{check, Query};
use herd_firewall::fw4::{self, Environment};
use herd_firewall::policy::{self, Destination, Policy, Router, Switch, WhitelistZone};
use herd_uci::parse_str;
use std::time::Instant;

const FIREWALL: &str = include_str!("../tests/corpus/openwrt-defaults/firewall.fw4-default");
const NETWORK: &str = "config interface 'lan'\n\toption device 'br-lan'\n\toption proto 'static'\n\
\toption ipaddr '198.51.100.1'\n\toption netmask '255.255.255.0'\n\n\
config interface 'wan'\n\toption device 'wan'\n\toption proto 'dhcp'\n";

fn policy(n: usize) -> Policy {
    Policy {
        router: Router {
            hostname: "router1".into(),
            switch: Switch::Dsa {
                bridge: "br-lan".into(),
                lan_vlan: 1,
                lan_ports: vec!["lan1".into(), "lan2".into(), "lan3".into(), "lan4".into()],
            },
            wan_zone: "wan".into(),
            wan_device: "wan".into(),
            address: None,
        },
        zones: vec![WhitelistZone {
            name: "limited".into(),
            vlan: 42,
            ports: vec!["lan4".into()],
            gateway: "192.0.2.1".parse().expect("addr"),
            prefix: 24,
            destinations: (0..n)
                .map(|i| Destination {
                    address: format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256),
                    name: format!("dest-{i}"),
                })
                .collect(),
            protocols: vec!["all".into()],
        }],
    }
}

fn time<T>(iters: u32, mut f: impl FnMut() -> T) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(f());
    }
    start.elapsed().as_secs_f64() / f64::from(iters)
}

fn main() {
    let network = parse_str(NETWORK, "network").expect("network");
    let firewall = parse_str(FIREWALL, "firewall").expect("firewall");
    println!(
        "| destinations | policy → UCI | fw4 load + nft text | ruleset bytes | check (last rule) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for n in [1usize, 100, 1_000, 10_000] {
        let p = policy(n);
        let iters = (20_000 / n.max(1)).clamp(3, 2_000) as u32;
        let t_policy = time(iters, || {
            policy::render(&p, &network, &firewall).expect("render")
        });
        let out = policy::render(&p, &network, &firewall).expect("render");
        let fw_pkg = policy::to_fw_package(&out.firewall);
        let net_pkg = policy::to_fw_package(&out.network);
        let env = Environment::from_network_package(&net_pkg);
        let t_nft = time(iters, || fw4::render(&fw_pkg, &env).1.render());
        let bytes = fw4::render(&fw_pkg, &env).1.render().len();
        let last = &p.zones[0].destinations[n - 1].address;
        let q = Query {
            src: "192.0.2.7".parse().expect("src"),
            dst: last.parse().expect("dst"),
            proto: "tcp".into(),
            dport: Some(443),
            wan_zone: "wan".into(),
        };
        let t_check = time(iters, || check(&net_pkg, &fw_pkg, &q).expect("check"));
        println!(
            "| {n} | {:.3} ms | {:.3} ms | {bytes} | {:.3} ms |",
            t_policy * 1e3,
            t_nft * 1e3,
            t_check * 1e3
        );
    }
}
