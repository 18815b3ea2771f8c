//! The demo fleet of `scripts/demo` loads through the CLI and answers the
//! queries the demo prints, so the README's main command keeps working.

mod support;

use std::path::PathBuf;
use support::{stderr, stdout, Server};

fn repo_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join(path).to_string_lossy().into_owned()
}

#[test]
fn the_demo_fleet_loads_and_relations_reverse_and_supernet_resolve() {
    let server = Server::start();
    for args in [
        vec![
            "schema",
            "apply",
            &repo_file("scripts/demo-fleet/schema.json"),
        ],
        vec![
            "schema",
            "apply",
            &repo_file("crates/herd-firewall/schema/openwrt-whitelist.json"),
        ],
        vec![
            "create",
            "--file",
            &repo_file("scripts/demo-fleet/infrastructure.jsonl"),
        ],
        vec![
            "create",
            "--file",
            &repo_file("scripts/demo-fleet/vms.jsonl"),
        ],
    ] {
        let out = server.herd(&args.iter().map(|s| s.as_ref()).collect::<Vec<&str>>());
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let client = server.client();
    let hv = client.get("ber1-hv01.example.com").unwrap();
    assert_eq!(
        hv.get("vms"),
        Some(&herd_client::Value::set(vec![
            "db01.ber1.example.com".into(),
            "web01.ber1.example.com".into()
        ])),
        "reverse of hypervisor"
    );
    let vm = client.get("web01.ber1.example.com").unwrap();
    assert_eq!(vm.get("network"), Some(&"ber1-vms".into()), "supernet");
    assert_eq!(
        vm.get("datacenter"),
        Some(&"ber1".into()),
        "related via hypervisor"
    );
    let out = server.herd(&["query", "servertype=vm", "-a", "hostname", "-a", "memory"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).matches(".example.com").count(),
        8,
        "{}",
        stdout(&out)
    );
}
