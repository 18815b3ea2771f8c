//! `herd hv bootstrap` and `herd vm` with an inventory: a real `herd serve`
//! and a real lab of two libvirt hosts.

mod support;

use herd_client::{Client, SchemaChange};
use herd_lab::{Lab, LabConfig};
use std::process::Output;
use support::{herd_command, Server};

/// A real `herd serve` with the hypervisor/VM schema.
fn serve() -> Server {
    let server = Server::start();
    let client = server.client();
    let schema: Vec<SchemaChange> = serde_json::from_value(serde_json::json!([
        {"action": "create_attribute", "attribute": {"attribute_id": "libvirt_uri", "type": "string"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "memory", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "num_cpu", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "disk_size_gib", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "state", "type": "string"}},
        {"action": "create_servertype", "servertype": {"servertype_id": "hypervisor", "ip_addr_type": "null",
            "attributes": [{"attribute_id": "libvirt_uri"}]}},
        {"action": "create_attribute", "attribute": {"attribute_id": "hypervisor", "type": "relation", "target_servertype": "hypervisor"}},
        {"action": "create_servertype", "servertype": {"servertype_id": "vm", "ip_addr_type": "null",
            "attributes": [{"attribute_id": "hypervisor"}, {"attribute_id": "memory"}, {"attribute_id": "num_cpu"},
                           {"attribute_id": "disk_size_gib"}, {"attribute_id": "state"}]}},
    ]))
    .unwrap();
    client.change_schema(&schema).unwrap();
    server
}

fn herd(url: &str, args: &[&str]) -> Output {
    herd_command(args)
        .env("HERD_URL", url)
        .env_remove("LIBVIRT_DEFAULT_URI")
        .output()
        .unwrap()
}

fn ok(url: &str, args: &[&str]) -> String {
    let o = herd(url, args);
    assert!(
        o.status.success(),
        "herd {args:?}: {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn attr(client: &Client, host: &str, attribute: &str) -> serde_json::Value {
    let o = client.get(host).unwrap();
    serde_json::to_value(o.get(attribute).unwrap()).unwrap()
}

#[test]
fn hypervisors_register_and_vms_are_recorded_and_synced() {
    let server = serve();
    let url = server.url.as_str();
    let client = Client::new(url).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lab = Lab::up(LabConfig {
        hosts: 2,
        dir: tmp.path().join("lab"),
        ssh: false,
    })
    .unwrap();
    let hosts = lab.hosts();

    let first = ok(url, &["hv", "bootstrap", &hosts[0].uri]);
    assert!(
        first.contains("inventory: hypervisor hv1 created"),
        "{first}"
    );
    ok(url, &["hv", "bootstrap", &hosts[1].uri, "--name", "hv2"]);
    let again = ok(url, &["hv", "bootstrap", &hosts[0].uri]);
    assert!(
        again.contains("inventory: hypervisor hv1 unchanged"),
        "{again}"
    );
    assert_eq!(attr(&client, "hv1", "libvirt_uri"), hosts[0].uri.as_str());

    // --on takes the inventory name.
    ok(
        url,
        &[
            "vm",
            "create",
            "vm1",
            "--on",
            "hv1",
            "--memory",
            "64M",
            "--disk",
            "2G",
            "--no-network",
            "--accel",
            "tcg",
        ],
    );
    assert_eq!(attr(&client, "vm1", "hypervisor"), "hv1");
    assert_eq!(attr(&client, "vm1", "memory"), 64);
    assert_eq!(attr(&client, "vm1", "num_cpu"), 1);
    assert_eq!(attr(&client, "vm1", "disk_size_gib"), 2);
    assert_eq!(attr(&client, "vm1", "state"), "shutoff");
    ok(url, &["vm", "start", "vm1", "--on", &hosts[0].uri]);
    assert_eq!(attr(&client, "vm1", "state"), "running");

    // Drift: a VM made behind herd's back, and a wrong memory value.
    let hv2 = herd_virt::Hypervisor::open(Some(&hosts[1].uri)).unwrap();
    hv2.create_vm(&herd_virt::VmSpec {
        name: "stray".into(),
        memory: 32 << 20,
        vcpus: 1,
        disk: 1 << 20,
        format: herd_virt::VolumeFormat::Qcow2,
        pool: "default".into(),
        nic: herd_virt::Nic::None,
        accel: Some(herd_virt::Accel::Tcg),
    })
    .unwrap();
    let mut vm1 = client.get("vm1").unwrap();
    vm1.set("memory", 4096);
    client.commit(&herd_client::commit_of([&vm1])).unwrap();

    let dry = ok(url, &["vm", "sync", "--dry-run"]);
    assert!(
        dry.contains("stray: on hv2 but not in the inventory"),
        "{dry}"
    );
    assert!(
        dry.contains("vm1: memory is 4096 in the inventory, 64 in libvirt"),
        "{dry}"
    );
    assert!(client.get("stray").is_err(), "dry run changed nothing");

    let repaired = ok(url, &["vm", "sync"]);
    assert!(repaired.contains("2 difference(s) repaired"), "{repaired}");
    assert_eq!(attr(&client, "vm1", "memory"), 64);
    assert_eq!(attr(&client, "stray", "hypervisor"), "hv2");
    let clean: serde_json::Value =
        serde_json::from_str(&ok(url, &["vm", "sync", "--dry-run", "--json"])).unwrap();
    assert_eq!(clean["drift"], serde_json::json!([]));

    ok(url, &["vm", "delete", "vm1", "--on", "hv1", "--force"]);
    assert!(client.get("vm1").is_err(), "deleted from the inventory too");
    drop(lab);
}
