//! `herd vm migrate` and `herd hv evacuate` end to end: the real binary,
//! a real `herd serve` inventory, and a two-host lab of real libvirtd/QEMU.

mod support;

use herd_client::{Client, HistoryQuery, Value};
use herd_lab::{Lab, LabConfig, LabHost};
use herd_migrate::testguest::{self, GuestDisk};
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use support::inventory::object;
use support::{stderr, stdout, Server};

struct World {
    dir: tempfile::TempDir,
    lab: Option<Lab>,
    hosts: Vec<LabHost>,
    server: Server,
}

impl World {
    /// Two lab hosts with a default pool, registered as hv1/hv2 in a fresh
    /// inventory, plus the VM objects `vms` on hv1.
    fn new(vms: &[&str]) -> World {
        let dir = tempfile::Builder::new()
            .prefix("herd-mcli")
            .tempdir()
            .unwrap();
        let lab = Lab::up(LabConfig {
            hosts: 2,
            dir: dir.path().join("lab"),
            ssh: false,
        })
        .expect("lab up");
        let hosts = lab.hosts();
        for h in &hosts {
            testguest::ensure_default_pool(&h.uri).expect("pool");
        }
        let server = Server::start();
        let client = server.client();
        let schema = serde_json::json!([
            {"action": "create_attribute", "attribute": {"attribute_id": "libvirt_uri", "type": "string"}},
            {"action": "create_servertype", "servertype": {"servertype_id": "hypervisor", "ip_addr_type": "host",
                "attributes": [{"attribute_id": "libvirt_uri"}]}},
            {"action": "create_attribute", "attribute": {"attribute_id": "hypervisor", "type": "relation", "target_servertype": "hypervisor"}},
            {"action": "create_servertype", "servertype": {"servertype_id": "vm", "ip_addr_type": "host",
                "attributes": [{"attribute_id": "hypervisor"}]}},
        ]);
        client
            .change_schema(&serde_json::from_value::<Vec<_>>(schema).unwrap())
            .expect("schema");
        let mut commit = herd_client::Commit::default();
        for (i, h) in hosts.iter().enumerate() {
            commit.created.push(object(serde_json::json!({
                "hostname": h.name, "servertype": "hypervisor",
                "intern_ip": format!("10.0.0.{}", i + 1), "libvirt_uri": h.uri,
            })));
        }
        for (i, vm) in vms.iter().enumerate() {
            commit.created.push(object(serde_json::json!({
                "hostname": vm, "servertype": "vm",
                "intern_ip": format!("10.1.0.{}", i + 1), "hypervisor": "hv1",
            })));
        }
        client.commit(&commit).expect("fleet");
        World {
            dir,
            lab: Some(lab),
            hosts,
            server,
        }
    }

    fn guest(&self, vm: &str, data_mib: u64) {
        let host = &self.hosts[0];
        testguest::create_guest(
            &host.uri,
            vm,
            &[GuestDisk {
                target: "vda",
                size_mib: 128,
                data_mib,
            }],
            |p| host.outside(Path::new(p)),
            &self.dir.path().join(format!("{vm}.serial")),
            true,
        )
        .expect("guest");
    }

    fn herd(&self, args: &[&str]) -> Command {
        let mut cmd = self.server.command(args);
        cmd.env("HERD_MIGRATION_HISTORY", self.history());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.herd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run herd")
    }

    fn history(&self) -> PathBuf {
        self.dir.path().join("migrations.jsonl")
    }

    fn client(&self) -> Client {
        self.server.client()
    }

    fn hypervisor_of(&self, vm: &str) -> Option<Value> {
        self.client().get(vm).unwrap().get("hypervisor").cloned()
    }

    fn virsh(&self, host: usize, args: &[&str]) -> String {
        let out = Command::new("virsh")
            .arg("-c")
            .arg(&self.hosts[host].uri)
            .args(args)
            .output()
            .expect("virsh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The names of the domains running on `host`, one a line.
    fn running(&self, host: usize) -> String {
        self.virsh(host, &["list", "--name"])
    }

    /// The names of the domains defined on `host`, running or not.
    fn defined(&self, host: usize) -> String {
        self.virsh(host, &["list", "--all", "--name"])
    }

    /// No volume of `vm` in `host`'s default pool.
    fn has_no_volume_of(&self, host: usize, vm: &str) -> bool {
        self.virsh(host, &["vol-list", "default"])
            .lines()
            .all(|l| !l.contains(vm))
    }

    /// The inventory's commits that touched `vm`.
    fn commits_of(&self, vm: &str) -> Vec<herd_client::CommitRecord> {
        self.client()
            .history(&HistoryQuery {
                hostname: Some(vm.into()),
                ..HistoryQuery::default()
            })
            .unwrap()
    }

    /// Starts `herd vm migrate VM hv2 --bandwidth 2 --json` and reads its
    /// events until `progress` of them were progress: the child and the
    /// rest of its output.
    fn migrate_until_progress(
        &self,
        vm: &str,
        progress: usize,
    ) -> (Child, Lines<BufReader<ChildStdout>>) {
        let mut child = self
            .herd(&["vm", "migrate", vm, "hv2", "--bandwidth", "2", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start herd");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let mut progressed = 0;
        while progressed < progress {
            let Some(Ok(line)) = lines.next() else {
                panic!("herd ended early: {seen:?}");
            };
            if line.contains("\"progress\"") {
                progressed += 1;
            }
            seen.push(line);
        }
        (child, lines)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            let _ = lab.down();
        }
    }
}

/// The exit code is `want`; the message shows herd's stderr.
fn assert_exit(out: &Output, want: i32) {
    assert_eq!(out.status.code(), Some(want), "{}", stderr(out));
}

fn assert_stdout_contains(out: &Output, want: &str) {
    assert!(stdout(out).contains(want), "{}", stdout(out));
}

/// The `reason` of each refusal in a `--json` refusal on stdout.
fn refusal_reasons(out: &Output) -> Vec<String> {
    let refusal: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
    refusal["refused"]["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("no reasons in {refusal}"))
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn migrate_by_inventory_names_moves_the_vm_and_updates_its_hypervisor() {
    let world = World::new(&["cvm1"]);
    world.guest("cvm1", 4);

    let out = world.run(&["vm", "migrate", "cvm1", "hv2", "--dry-run", "--json"]);
    assert_exit(&out, 0);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "lock",
            "create_volume",
            "migrate_live",
            "verify",
            "delete_source_volume",
            "update_inventory",
            "unlock",
            "record_history"
        ]
    );
    assert!(
        world.defined(1).trim().is_empty(),
        "dry run changed nothing"
    );
    // Without a destination herd picks one from the inventory: not the source.
    let out = world.run(&["vm", "migrate", "cvm1", "--dry-run", "--json"]);
    assert_exit(&out, 0);
    let chosen: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(chosen["destination"], world.hosts[1].uri.as_str());

    let out = world.run(&["vm", "migrate", "cvm1", "hv2", "--json"]);
    assert_exit(&out, 0);
    let events = json_lines(&stdout(&out));
    assert!(
        events.iter().any(|e| e["event"] == "progress"),
        "{}",
        stdout(&out)
    );
    let done = events.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["report"]["deleted"][0], "default/cvm1-vda.qcow2");

    assert_eq!(world.hypervisor_of("cvm1"), Some(Value::from("hv2")));
    assert!(world.running(1).contains("cvm1"));
    assert!(!world.defined(0).contains("cvm1"));
    let history = std::fs::read_to_string(world.history()).unwrap();
    assert_eq!(history.lines().count(), 1);
    let commits = world.commits_of("cvm1");
    assert_eq!(commits.len(), 2, "created, then moved: {commits:?}");
}

#[test]
fn sigint_mid_migration_undoes_everything_and_exits_130() {
    let world = World::new(&["cvm2"]);
    world.guest("cvm2", 48);
    let (mut child, lines) = world.migrate_until_progress("cvm2", 8);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let last: serde_json::Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert_eq!(last["event"], "failed");
    assert_eq!(last["interrupted"], true);

    assert!(world.running(0).contains("cvm2"), "running on the source");
    assert!(world.defined(1).trim().is_empty());
    assert!(world.has_no_volume_of(1, "cvm2"));
    assert_eq!(world.hypervisor_of("cvm2"), Some(Value::from("hv1")));
    assert!(!world.history().exists());
    let commits = world.commits_of("cvm2");
    assert_eq!(commits.len(), 1, "only the creation: {commits:?}");
}

#[test]
fn name_collision_and_stale_lock_are_refused_with_exit_6_until_resolved() {
    let world = World::new(&["cvm3"]);
    world.guest("cvm3", 1);
    let theirs = world.hosts[1]
        .outside(Path::new("/var/lib/libvirt/images/cvm3-vda.qcow2"))
        .unwrap();
    std::fs::write(&theirs, b"somebody else's data").unwrap();
    let out = world.run(&["vm", "migrate", "cvm3", "hv2", "--json"]);
    assert_exit(&out, 6);
    assert_eq!(
        refusal_reasons(&out).first().map(String::as_str),
        Some("volume_exists")
    );
    assert!(
        stderr(&out).contains("never overwrites"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&theirs).unwrap(), b"somebody else's data");
    assert_eq!(world.hypervisor_of("cvm3"), Some(Value::from("hv1")));
    assert!(world.running(0).contains("cvm3"));

    // A lock left by a herd process that died: refused too, every reason
    // listed at once, until --break-lock removes it.
    let set = Command::new("virsh")
        .args(["-c", &world.hosts[0].uri, "metadata", "cvm3", "--uri"])
        .arg(herd_migrate::xml::HERD_NS)
        .args(["--key", "herd", "--live", "--set"])
        .arg("<lock owner='herd pid 1 on gone' destination='x' since='1'/>")
        .output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let out = world.run(&["vm", "migrate", "cvm3", "hv2", "--dry-run", "--json"]);
    assert_exit(&out, 6);
    assert_eq!(refusal_reasons(&out), ["locked", "volume_exists"]);
    let out = world.run(&["vm", "migrate", "cvm3", "--break-lock", "--from", "hv1"]);
    assert_exit(&out, 0);
    assert_stdout_contains(&out, "herd pid 1 on gone");
    std::fs::remove_file(&theirs).unwrap();
    let out = world.run(&["vm", "migrate", "cvm3", "hv2", "--dry-run"]);
    assert_exit(&out, 0);
    assert_stdout_contains(&out, "migrate cvm3 (live)");
}

#[test]
fn evacuation_to_a_uri_moves_both_vms_and_records_the_inventory_name() {
    let world = World::new(&["evm1", "evm2"]);
    world.guest("evm1", 2);
    world.guest("evm2", 2);
    // The destination given as its libvirt URI: the VMs' `hypervisor`
    // must still become its inventory name.
    let to = world.hosts[1].uri.clone();
    let out = world.run(&[
        "hv",
        "evacuate",
        "hv1",
        "--to",
        &to,
        "--parallel",
        "2",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let lines = json_lines(&stdout(&out));
    let summary = lines.last().unwrap();
    let vms = summary["vms"].as_array().unwrap();
    assert_eq!(vms.len(), 2, "{summary}");
    for v in vms {
        assert_eq!(v["status"], "moved", "{v}");
    }
    let on_hv2 = world.running(1);
    assert!(
        on_hv2.contains("evm1") && on_hv2.contains("evm2"),
        "{on_hv2}"
    );
    assert!(world.defined(0).trim().is_empty());
    assert_eq!(world.hypervisor_of("evm1"), Some(Value::from("hv2")));
    assert_eq!(world.hypervisor_of("evm2"), Some(Value::from("hv2")));
}

#[test]
fn herd_killed_mid_migration_leaves_a_lock_that_break_lock_cleans_up() {
    let world = World::new(&["cvm4"]);
    world.guest("cvm4", 48);
    let (mut child, _events) = world.migrate_until_progress("cvm4", 5); // stdout stays open
    child.kill().unwrap(); // SIGKILL: no undo runs
    child.wait().unwrap();

    // libvirt goes on with the job of a client that went away (it notices
    // between phases); herd's lock and the volume it created stay behind:
    // a new run is refused with every reason.
    let out = world.run(&["vm", "migrate", "cvm4", "hv2", "--dry-run", "--json"]);
    assert_exit(&out, 6);
    assert_eq!(
        refusal_reasons(&out),
        ["locked", "job_active", "volume_exists"],
        "{}",
        stdout(&out)
    );

    // --break-lock aborts the orphaned job, deletes what the dead process
    // created on the destination, and unlocks.

    let out = world.run(&["vm", "migrate", "cvm4", "--break-lock", "--from", "hv1"]);
    assert_exit(&out, 0);
    assert_stdout_contains(&out, "deleted default/cvm4-vda.qcow2 on the destination");
    assert!(world.has_no_volume_of(1, "cvm4"));
    assert!(
        world.running(0).contains("cvm4"),
        "still running on the source"
    );
    let out = world.run(&["vm", "migrate", "cvm4", "hv2", "--json"]);
    assert_exit(&out, 0);
    assert_eq!(world.hypervisor_of("cvm4"), Some(Value::from("hv2")));
}

/// What herd leaves behind when it dies right after libvirt moved the VM,
/// before finishing: its lock (taken on the source, naming the source
/// volume to delete and the inventory change) travelled with the VM to
/// hv2, the source volume is still on hv1, the inventory still says hv1.
fn moved_by_a_herd_that_died(world: &World, vm: &str) {
    let (hv1, hv2) = (&world.hosts[0].uri, &world.hosts[1].uri);
    let lock = herd_migrate::facts::LockFacts {
        owner: "herd pid 1 on gone".into(),
        destination: hv2.clone(),
        source: hv1.clone(),
        since: 1,
        finish: vec![format!("default/{vm}-vda.qcow2")],
        inventory: Some(("hv1".into(), "hv2".into())),
        ..Default::default()
    };
    let element = herd_migrate::xml::lock_element(&lock);
    world.virsh(
        0,
        &[
            "metadata",
            vm,
            "--uri",
            herd_migrate::xml::HERD_NS,
            "--key",
            herd_migrate::xml::HERD_PREFIX,
            "--set",
            &element,
            "--live",
            "--config",
        ],
    );
    world.virsh(
        0,
        &[
            "migrate",
            "--live",
            "--persistent",
            "--undefinesource",
            "--copy-storage-all",
            "--migrateuri",
            "tcp://127.0.0.1",
            "--listen-address",
            "127.0.0.1",
            vm,
            hv2,
        ],
    );
    assert!(world.running(1).contains(vm));
    assert!(!world.has_no_volume_of(0, vm), "the source volume is left");
}

#[test]
fn break_lock_on_the_destination_finishes_a_move_whose_herd_died() {
    let world = World::new(&["fvm1"]);
    world.guest("fvm1", 2);
    moved_by_a_herd_that_died(&world, "fvm1");

    let out = world.run(&["vm", "migrate", "fvm1", "--break-lock", "--from", "hv2"]);
    assert_exit(&out, 0);
    assert_stdout_contains(&out, "finished its move");
    assert_stdout_contains(&out, "deleted source volume default/fvm1-vda.qcow2");
    assert!(world.has_no_volume_of(0, "fvm1"));
    assert_eq!(world.hypervisor_of("fvm1"), Some(Value::from("hv2")));
    assert!(world.running(1).contains("fvm1"), "the VM runs on");
    // The lock is gone: a migration back is planned without refusal.
    let out = world.run(&["vm", "migrate", "fvm1", "hv1", "--dry-run"]);
    assert_exit(&out, 0);
}

#[test]
fn break_lock_keeps_a_source_volume_another_domain_uses() {
    let world = World::new(&["fvm2"]);
    world.guest("fvm2", 2);
    moved_by_a_herd_that_died(&world, "fvm2");
    // Someone defined a domain on hv1 over the old volume meanwhile.
    let path = world
        .virsh(0, &["vol-path", "--pool", "default", "fvm2-vda.qcow2"])
        .trim()
        .to_string();
    let holder = world.dir.path().join("holder.xml");
    std::fs::write(
        &holder,
        format!(
            "<domain type='qemu'><name>holder</name><memory unit='MiB'>32</memory>\
             <os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'>\
             <driver name='qemu' type='qcow2'/><source file='{path}'/>\
             <target dev='vda' bus='virtio'/></disk></devices></domain>"
        ),
    )
    .unwrap();
    world.virsh(0, &["define", &holder.to_string_lossy()]);
    assert!(world.defined(0).contains("holder"));

    let out = world.run(&[
        "vm",
        "migrate",
        "fvm2",
        "--break-lock",
        "--from",
        "hv2",
        "--json",
    ]);
    assert_exit(&out, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let broken = &report["broken_lock"];
    assert_eq!(broken["finished"], true, "{report}");
    assert_eq!(
        broken["deleted_on_source"],
        serde_json::json!([]),
        "{report}"
    );
    assert_eq!(broken["inventory"], serde_json::json!(["hv1", "hv2"]));
    let kept = broken["kept"][0].as_str().unwrap_or_default();
    assert!(kept.contains("a domain on the source uses it"), "{report}");
    assert!(!world.has_no_volume_of(0, "fvm2"), "the volume stays");
    // The inventory still follows the VM.
    assert_eq!(world.hypervisor_of("fvm2"), Some(Value::from("hv2")));
}
