//! herd-fleet's inventory side against a real herd-server on a fresh
//! SQLite file: registration, the recorder, `vm sync`'s repairs and the
//! migration's compare-and-swap, each with the refusals it promises.

use herd_client::{commit_of, Client, ClientError, HistoryQuery, SchemaChange, Value};
use herd_fleet::inventory::{self as fleet, Registration};
use herd_fleet::{drift, FleetError, Hv, MoveVm, Observed, Recorder};
use herd_migrate::exec::Inventory;
use herd_virt::{DiskFacts, DomainFacts, DomainState};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// A real server (on a thread, port 0) with the hypervisor/VM schema and a
/// `switch` servertype; the directory holds its database.
fn serve() -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = herd_store_sqlite::SqliteStore::open(&dir.path().join("inventory.sqlite")).unwrap();
    let state = herd_server::AppState::new(Arc::new(store), herd_server::Settings::default());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        herd_server::run("127.0.0.1:0".parse().unwrap(), state, move |addr| {
            tx.send(addr).unwrap()
        })
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let client = Client::new(&format!("http://{addr}")).unwrap();
    let schema: Vec<SchemaChange> = serde_json::from_value(serde_json::json!([
        {"action": "create_attribute", "attribute": {"attribute_id": "libvirt_uri", "type": "string"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "memory", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "num_cpu", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "disk_size_gib", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "state", "type": "string"}},
        {"action": "create_servertype", "servertype": {"servertype_id": "hypervisor", "ip_addr_type": "null",
            "attributes": [{"attribute_id": "libvirt_uri"}]}},
        {"action": "create_servertype", "servertype": {"servertype_id": "switch", "ip_addr_type": "null",
            "attributes": []}},
        {"action": "create_attribute", "attribute": {"attribute_id": "hypervisor", "type": "relation", "target_servertype": "hypervisor"}},
        {"action": "create_servertype", "servertype": {"servertype_id": "vm", "ip_addr_type": "null",
            "attributes": [{"attribute_id": "hypervisor"}, {"attribute_id": "memory"}, {"attribute_id": "num_cpu"},
                           {"attribute_id": "disk_size_gib"}, {"attribute_id": "state"}]}},
    ]))
    .unwrap();
    client.change_schema(&schema).unwrap();
    (client, dir)
}

fn domain(name: &str, memory_mib: u64, state: DomainState) -> DomainFacts {
    DomainFacts {
        name: name.into(),
        uuid: String::new(),
        state,
        persistent: true,
        autostart: false,
        domain_type: "qemu".into(),
        memory: memory_mib << 20,
        vcpus: 1,
        disks: vec![DiskFacts {
            target: "vda".into(),
            device: "disk".into(),
            path: None,
            pool: Some("default".into()),
            volume: Some(format!("{name}.qcow2")),
            format: Some("qcow2".into()),
            capacity: Some(2 << 30),
            allocation: Some(0),
        }],
        nics: vec![],
    }
}

fn attr(client: &Client, host: &str, attribute: &str) -> Option<Value> {
    client.get(host).unwrap().get(attribute).cloned()
}

fn commits(client: &Client, host: &str) -> usize {
    let query = HistoryQuery {
        hostname: Some(host.into()),
        ..HistoryQuery::default()
    };
    client.history(&query).unwrap().len()
}

#[test]
fn a_hypervisor_is_created_then_left_then_updated_and_found_by_name_or_uri() {
    let (client, _dir) = serve();
    let reg = |uri| fleet::register_hypervisor(&client, "hv1", uri).unwrap();
    assert_eq!(reg("qemu:///one"), Registration::Created);
    assert_eq!(reg("qemu:///one"), Registration::Unchanged);
    assert_eq!(commits(&client, "hv1"), 1, "unchanged commits nothing");
    assert_eq!(reg("qemu:///two"), Registration::Updated);
    assert_eq!(Registration::Updated.as_str(), "updated");

    let hv1 = Hv {
        name: "hv1".into(),
        uri: "qemu:///two".into(),
    };
    assert_eq!(fleet::hypervisor(&client, "hv1").unwrap(), hv1);
    assert_eq!(fleet::hypervisor(&client, "qemu:///two").unwrap(), hv1);
    assert_eq!(fleet::hypervisors(&client).unwrap(), vec![hv1]);
    assert_eq!(
        fleet::name_of_uri(&client, "qemu:///two").as_deref(),
        Some("hv1")
    );
    assert_eq!(fleet::name_of_uri(&client, "qemu:///one"), None);
}

#[test]
fn a_name_of_another_servertype_is_refused_and_left_alone() {
    let (client, _dir) = serve();
    let mut switch = client.new_object("switch").unwrap();
    switch.set("hostname", "sw1");
    client.commit(&commit_of([&switch])).unwrap();

    let err = fleet::register_hypervisor(&client, "sw1", "qemu:///x").unwrap_err();
    assert!(
        matches!(&err, FleetError::NotAHypervisor { servertype, .. } if servertype == "switch"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "sw1 exists in the inventory as a switch, not a hypervisor; pass --name with another hostname"
    );
    assert_eq!(commits(&client, "sw1"), 1, "the switch was not touched");
}

#[test]
fn unknown_hypervisors_say_how_to_register_them() {
    let (client, _dir) = serve();
    let mut bare = client.new_object("hypervisor").unwrap();
    bare.set("hostname", "bare");
    client.commit(&commit_of([&bare])).unwrap();

    let err = fleet::hypervisor(&client, "bare").unwrap_err();
    assert!(matches!(err, FleetError::NoLibvirtUri { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("register it with `herd hv bootstrap URI --name bare`"),
        "{err}"
    );
    let err = fleet::hypervisor(&client, "qemu:///nowhere").unwrap_err();
    assert_eq!(
        err.to_string(),
        "qemu:///nowhere is not a hypervisor in the inventory; register it with \
         `herd hv bootstrap 'qemu:///nowhere' --name NAME`"
    );
    let err = fleet::hypervisor(&client, "missing").unwrap_err();
    assert!(
        matches!(err, FleetError::Client(ClientError::NotFound { .. })),
        "{err:?}"
    );
    assert!(
        fleet::hypervisors(&client).unwrap().is_empty(),
        "no URI, no target"
    );
}

#[test]
fn the_recorder_creates_updates_only_what_differs_and_forgets() {
    let (client, _dir) = serve();
    fleet::register_hypervisor(&client, "hv1", "qemu:///one").unwrap();
    let recorder = Recorder::new(client.clone(), "hv1".into());

    recorder
        .record(&domain("vm1", 64, DomainState::Shutoff))
        .unwrap();
    assert_eq!(attr(&client, "vm1", "memory"), Some(Value::from(64)));
    assert_eq!(attr(&client, "vm1", "disk_size_gib"), Some(Value::from(2)));
    assert_eq!(attr(&client, "vm1", "state"), Some(Value::from("shutoff")));
    recorder
        .record(&domain("vm1", 64, DomainState::Shutoff))
        .unwrap();
    assert_eq!(commits(&client, "vm1"), 1, "nothing differed");
    recorder
        .record(&domain("vm1", 64, DomainState::Running))
        .unwrap();
    assert_eq!(attr(&client, "vm1", "state"), Some(Value::from("running")));
    assert_eq!(commits(&client, "vm1"), 2);

    recorder.forget("vm1").unwrap();
    assert!(matches!(
        client.get("vm1"),
        Err(ClientError::NotFound { .. })
    ));
    recorder.forget("vm1").unwrap();
}

#[test]
fn a_refused_record_names_the_vm_and_the_repair() {
    let (client, _dir) = serve();
    // hv9 is not in the inventory: the relation is refused.
    let recorder = Recorder::new(client.clone(), "hv9".into());
    let err = recorder
        .record(&domain("vm1", 64, DomainState::Running))
        .unwrap_err();
    let FleetError::NotRecorded { vm, source } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(vm, "vm1");
    assert!(matches!(source, ClientError::Invalid { .. }), "{source:?}");
    assert_eq!(
        err.to_string(),
        "libvirt has the change but the inventory does not; `herd vm sync` repairs vm1"
    );
    assert!(client.get("vm1").is_err(), "nothing half-recorded");
}

#[test]
fn sync_repairs_drift_and_leaves_vanished_vms_alone() {
    let (client, _dir) = serve();
    fleet::register_hypervisor(&client, "hv1", "qemu:///one").unwrap();
    fleet::register_hypervisor(&client, "hv2", "qemu:///two").unwrap();
    let recorder = Recorder::new(client.clone(), "hv1".into());
    recorder
        .record(&domain("vm1", 64, DomainState::Running))
        .unwrap();
    recorder
        .record(&domain("gone", 64, DomainState::Running))
        .unwrap();
    let mut vm1 = client.get("vm1").unwrap();
    vm1.set("memory", 4096);
    client.commit(&commit_of([&vm1])).unwrap();

    let observed = vec![
        Observed {
            hypervisor: "hv1".into(),
            domains: vec![domain("vm1", 64, DomainState::Running)],
        },
        Observed {
            hypervisor: "hv2".into(),
            domains: vec![domain("stray", 32, DomainState::Shutoff)],
        },
    ];
    let found = drift(&observed, &fleet::vms(&client).unwrap());
    let text: Vec<String> = found.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        text,
        [
            "vm1: memory is 4096 in the inventory, 64 in libvirt",
            "stray: on hv2 but not in the inventory",
            "gone: the inventory places it on hv1, but no checked hypervisor has it",
        ]
    );
    fleet::repair(&client, &observed, &found).unwrap();
    assert_eq!(attr(&client, "vm1", "memory"), Some(Value::from(64)));
    assert_eq!(
        attr(&client, "stray", "hypervisor"),
        Some(Value::from("hv2"))
    );
    assert_eq!(
        attr(&client, "gone", "hypervisor"),
        Some(Value::from("hv1"))
    );
    let left = drift(&observed, &fleet::vms(&client).unwrap());
    assert_eq!(left.len(), 1, "only the vanished VM: {left:?}");
    assert!(!left[0].repairable());
}

#[test]
fn the_migration_step_is_compare_and_swap() {
    let (client, _dir) = serve();
    fleet::register_hypervisor(&client, "hv1", "qemu:///one").unwrap();
    fleet::register_hypervisor(&client, "hv2", "qemu:///two").unwrap();
    fleet::register_hypervisor(&client, "hv3", "qemu:///three").unwrap();
    Recorder::new(client.clone(), "hv1".into())
        .record(&domain("vm1", 64, DomainState::Running))
        .unwrap();
    let object = client.get("vm1").unwrap();
    assert_eq!(fleet::recorded_hypervisor(&object).as_deref(), Some("hv1"));

    let mut wrong_source = MoveVm::new(client.clone(), object.clone());
    let err = wrong_source.move_vm("vm1", "hv2", "hv3").unwrap_err();
    assert_eq!(err, "the inventory does not say hv2");

    // Someone moves it while the migration runs: the step refuses.
    let mut meanwhile = client.get("vm1").unwrap();
    meanwhile.set("hypervisor", "hv3");
    client.commit(&commit_of([&meanwhile])).unwrap();
    let mut stale = MoveVm::new(client.clone(), object);
    assert!(stale.move_vm("vm1", "hv1", "hv2").is_err());
    assert_eq!(attr(&client, "vm1", "hypervisor"), Some(Value::from("hv3")));

    let mut fresh = MoveVm::new(client.clone(), client.get("vm1").unwrap());
    fresh.move_vm("vm1", "hv3", "hv2").unwrap();
    assert_eq!(attr(&client, "vm1", "hypervisor"), Some(Value::from("hv2")));
}

#[test]
fn candidates_leave_out_the_source_and_follow_the_query() {
    let (client, _dir) = serve();
    for (name, uri) in [
        ("hv1", "qemu:///one"),
        ("hv2", "qemu:///two"),
        ("hv3", "qemu:///three"),
    ] {
        fleet::register_hypervisor(&client, name, uri).unwrap();
    }
    let names = |query, except| -> Vec<String> {
        let mut hvs = fleet::candidates(&client, query, except).unwrap();
        hvs.sort_by(|a, b| a.name.cmp(&b.name));
        hvs.into_iter().map(|hv| hv.name).collect()
    };
    assert_eq!(names(None, "qemu:///one"), ["hv2", "hv3"]);
    assert_eq!(names(Some("hostname=hv3"), "qemu:///one"), ["hv3"]);
    let bad = fleet::candidates(&client, Some("hostname=Regexp("), "qemu:///one").unwrap_err();
    assert!(matches!(bad, FleetError::Client(_)), "{bad:?}");
}
