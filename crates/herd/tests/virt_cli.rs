//! `herd hv` and `herd vm` against a real lab of two hosts (TCG guests),
//! over the unix socket and over ssh.

use herd_lab::{Lab, LabConfig};
use std::process::{Command, Output};

struct TestLab {
    lab: Lab,
    _tmp: tempfile::TempDir,
}

fn lab(hosts: usize, ssh: bool) -> TestLab {
    let tmp = tempfile::tempdir().unwrap();
    let lab = Lab::up(LabConfig {
        hosts,
        dir: tmp.path().join("lab"),
        ssh,
    })
    .unwrap();
    TestLab { lab, _tmp: tmp }
}

fn herd(args: &[&str]) -> Output {
    herd_env(args, None)
}

fn herd_env(args: &[&str], default_uri: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herd"));
    cmd.args(args)
        .env_remove("LIBVIRT_DEFAULT_URI")
        .env_remove("HERD_URL")
        .env_remove("HERD_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/herd-test");
    if let Some(uri) = default_uri {
        cmd.env("LIBVIRT_DEFAULT_URI", uri);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(args: &[&str]) -> String {
    let o = herd(args);
    assert!(o.status.success(), "herd {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

fn fails(args: &[&str], code: i32, needle: &str) {
    let o = herd(args);
    assert_eq!(o.status.code(), Some(code), "herd {args:?}: {}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(needle), "herd {args:?}: {stderr}");
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn lifecycle(uri: &str) {
    let created = json(&[
        "vm",
        "create",
        "vm1",
        "--on",
        uri,
        "--memory",
        "64M",
        "--vcpus",
        "1",
        "--disk",
        "1G",
        "--no-network",
        "--accel",
        "tcg",
        "--json",
    ]);
    assert_eq!(created["state"], "shutoff");
    assert_eq!(created["disks"][0]["volume"], "vm1.qcow2");
    assert_eq!(created["disks"][0]["pool"], "default");
    ok(&["vm", "start", "vm1", "--on", uri]);
    let list = ok(&["vm", "list", "--on", uri]);
    assert!(list.contains("vm1") && list.contains("running"), "{list}");
    let info = ok(&["vm", "info", "vm1", "--on", uri]);
    assert!(info.contains("default/vm1.qcow2 qcow2 1 GiB"), "{info}");
    assert!(info.contains("64 MiB"), "{info}");
    ok(&["vm", "stop", "vm1", "--on", uri, "--force"]);
    let dry = ok(&["vm", "delete", "vm1", "--on", uri, "--dry-run"]);
    assert!(
        dry.contains("would delete volume default/vm1.qcow2"),
        "{dry}"
    );
    assert!(
        ok(&["vm", "list", "--on", uri]).contains("vm1"),
        "dry run kept it"
    );
    let deleted = ok(&["vm", "delete", "vm1", "--on", uri]);
    assert!(
        deleted.contains("volume default/vm1.qcow2 deleted"),
        "{deleted}"
    );
    let list = json(&["vm", "list", "--on", uri, "--json"]);
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn vm_lifecycle_on_both_hosts_over_unix_socket_and_ssh() {
    let t = lab(2, true);
    let hosts = t.lab.hosts();
    let unix1 = hosts[0].uri.as_str();
    let ssh2 = hosts[1].ssh_uri.as_deref().unwrap();
    let report = json(&["hv", "bootstrap", unix1, ssh2, "--json"]);
    assert_eq!(report["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(report["duplicate_host_uuids"], serde_json::json!([]));
    lifecycle(unix1);
    lifecycle(ssh2);
}

#[test]
fn bootstrap_twice_changes_nothing_the_second_time() {
    let t = lab(1, false);
    let uri = t.lab.hosts()[0].uri.clone();
    let dry = json(&["hv", "bootstrap", &uri, "--dry-run", "--json"]);
    assert!(!dry["hosts"][0]["steps"].as_array().unwrap().is_empty());
    assert_eq!(dry["hosts"][0]["host"]["pools"], serde_json::json!([]));
    let first = ok(&["hv", "bootstrap", &uri]);
    assert!(
        first.contains("did define dir pool 'default' at /var/lib/libvirt/images"),
        "{first}"
    );
    assert!(first.contains("no network driver"), "{first}");
    let second = ok(&["hv", "bootstrap", &uri]);
    assert!(
        second.contains("already bootstrapped, nothing changed"),
        "{second}"
    );
    assert!(
        second.contains("pool        default (dir /var/lib/libvirt/images, active, autostart)"),
        "{second}"
    );
    assert!(second.contains(&t.lab.hosts()[0].host_uuid), "{second}");
    let info = json(&["hv", "info", &uri, "--json"]);
    assert_eq!(info["hostname"], "hv1");
    assert!(info["accel"] == "kvm" || info["accel"] == "tcg");
}

#[test]
fn one_host_under_two_uris_is_flagged_as_a_duplicate_host_uuid() {
    let t = lab(1, true);
    let h = &t.lab.hosts()[0];
    fails(
        &["hv", "bootstrap", &h.uri, h.ssh_uri.as_deref().unwrap()],
        3,
        "share a host UUID",
    );
}

#[test]
fn libvirt_default_uri_is_honoured_like_virsh() {
    let t = lab(1, false);
    let uri = t.lab.hosts()[0].uri.clone();
    let o = herd_env(&["hv", "bootstrap", "--json"], Some(&uri));
    assert!(o.status.success(), "{}", text(&o));
    let o = herd_env(
        &[
            "vm",
            "create",
            "vm9",
            "--disk",
            "1M",
            "--memory",
            "16M",
            "--no-network",
            "--accel",
            "tcg",
        ],
        Some(&uri),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(ok(&["vm", "list", "--on", &uri]).contains("vm9"));
}

#[test]
fn errors_have_their_exit_codes_and_say_what_to_do() {
    let t = lab(1, false);
    let uri = t.lab.hosts()[0].uri.clone();
    let create = |name: &str, disk: &str| -> Vec<String> {
        [
            "vm",
            "create",
            name,
            "--on",
            &uri,
            "--disk",
            disk,
            "--memory",
            "16M",
            "--no-network",
            "--accel",
            "tcg",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = format!("qemu+unix:///system?socket={}/nope", tmp.path().display());
    fails(&["vm", "list", "--on", &nowhere], 1, "cannot reach libvirt");
    fails(&args(&create("vm1", "1M")), 4, "run `herd hv bootstrap");
    ok(&["hv", "bootstrap", &uri]);
    ok(&args(&create("vm1", "1M")));
    fails(&args(&create("vm1", "1M")), 3, "already exists");
    fails(&args(&create("big", "900T")), 6, "free");
    fails(&args(&create("bad/name", "1M")), 2, "not a valid name");
    fails(&args(&create("vm2", "lots")), 2, "not a size");
    fails(&["vm", "info", "ghost", "--on", &uri], 4, "no domain named");
    fails(
        &["vm", "stop", "vm1", "--on", &uri, "--force"],
        6,
        "shut off",
    );
    let list = json(&["vm", "list", "--on", &uri, "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "only vm1 was created");
}
