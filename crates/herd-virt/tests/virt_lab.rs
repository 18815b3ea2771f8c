//! herd-virt against a real lab of two libvirt hosts (TCG guests).

use herd_lab::{Lab, LabConfig};
use herd_virt::{
    Accel, BootstrapOptions, DomainState, Hypervisor, Nic, Stop, VirtError, VmSpec, VolumeFormat,
};
use std::time::Duration;

/// A lab that is torn down even when the test fails (Lab's Drop), in a
/// temp dir of its own so tests run in parallel.
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

fn spec(name: &str, disk: u64) -> VmSpec {
    VmSpec {
        name: name.into(),
        memory: 64 << 20,
        vcpus: 1,
        disk,
        format: VolumeFormat::Qcow2,
        pool: "default".into(),
        nic: Nic::None,
        accel: Some(Accel::Tcg),
    }
}

fn bootstrapped(uri: &str) -> Hypervisor {
    let hv = Hypervisor::open(Some(uri)).unwrap();
    hv.bootstrap(&BootstrapOptions::default()).unwrap();
    hv
}

/// create, start, list, info, stop, delete on one host.
fn lifecycle(hv: &Hypervisor) {
    let created = hv.create_vm(&spec("vm1", 1 << 30)).unwrap();
    assert_eq!(created.state, DomainState::Shutoff);
    assert!(created.persistent);
    assert_eq!(created.domain_type, "qemu");
    assert_eq!(created.memory, 64 << 20);
    let disk = &created.disks[0];
    assert_eq!(disk.pool.as_deref(), Some("default"));
    assert_eq!(disk.volume.as_deref(), Some("vm1.qcow2"));
    assert_eq!(disk.format.as_deref(), Some("qcow2"));
    assert_eq!(disk.capacity, Some(1 << 30));
    assert!(disk.allocation.unwrap() < 1 << 20, "sparse: {disk:?}");

    let started = hv.start("vm1").unwrap();
    assert_eq!(started.state, DomainState::Running);
    let listed = hv.domains().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "vm1");
    assert_eq!(listed[0].state, DomainState::Running);
    let info = hv.domain("vm1").unwrap();
    assert_eq!(info.vcpus, 1);
    assert_eq!(info.disk_capacity(), 1 << 30);
    assert!(info.nics.is_empty());

    let stopped = hv.stop("vm1", Stop::Force).unwrap();
    assert_eq!(stopped.state, DomainState::Shutoff);
    let deleted = hv.delete("vm1", false, false).unwrap();
    assert_eq!(
        deleted.volumes_deleted,
        vec!["default/vm1.qcow2".to_string()]
    );
    assert!(hv.domains().unwrap().is_empty());
    assert!(hv.volumes("default").unwrap().is_empty());
}

#[test]
fn lifecycle_runs_on_both_hosts_over_unix_socket_and_ssh() {
    let t = lab(2, true);
    let hosts = t.lab.hosts();
    let hv1 = bootstrapped(&hosts[0].uri);
    lifecycle(&hv1);
    let hv2 = bootstrapped(hosts[1].ssh_uri.as_deref().unwrap());
    lifecycle(&hv2);
    // Both transports reach the same host.
    let over_ssh = Hypervisor::open(hosts[0].ssh_uri.as_deref()).unwrap();
    assert_eq!(over_ssh.facts().unwrap().host_uuid, hosts[0].host_uuid);
    assert_eq!(hv2.facts().unwrap().host_uuid, hosts[1].host_uuid);
}

#[test]
fn bootstrap_twice_changes_nothing_the_second_time() {
    let t = lab(1, false);
    let hv = Hypervisor::open(Some(&t.lab.hosts()[0].uri)).unwrap();
    let first = hv.bootstrap(&BootstrapOptions::default()).unwrap();
    assert!(first.changed());
    let pool = &first.host.pools[0];
    assert_eq!(pool.name, "default");
    assert_eq!(pool.path, "/var/lib/libvirt/images");
    assert!(pool.active && pool.autostart);
    assert!(pool.capacity > 0 && pool.available > 0);
    assert_eq!(
        first.host.networks, None,
        "lab hosts have no network driver"
    );
    assert!(first.notes.iter().any(|n| n.contains("no network driver")));
    assert_eq!(first.host.host_uuid, t.lab.hosts()[0].host_uuid);
    assert_eq!(first.host.hostname, "hv1");
    assert!(first
        .host
        .libvirt_version
        .starts_with(|c: char| c.is_ascii_digit()));
    assert!(first.host.memory > 0 && first.host.cpus > 0);

    let second = hv.bootstrap(&BootstrapOptions::default()).unwrap();
    assert!(second.steps.is_empty(), "{:?}", second.steps);
    assert!(!second.changed());
    assert_eq!(second.host.pools.len(), 1);
    assert_eq!(second.host.pools[0].path, pool.path);
}

#[test]
fn bootstrap_dry_run_changes_nothing() {
    let t = lab(1, false);
    let hv = Hypervisor::open(Some(&t.lab.hosts()[0].uri)).unwrap();
    let plan = hv
        .bootstrap(&BootstrapOptions {
            dry_run: true,
            ..BootstrapOptions::default()
        })
        .unwrap();
    assert!(!plan.steps.is_empty());
    assert!(hv.pools().unwrap().is_empty());
}

#[test]
fn an_unreachable_uri_says_what_to_check() {
    let tmp = tempfile::tempdir().unwrap();
    let uri = format!(
        "qemu+unix:///system?socket={}/no-such-sock",
        tmp.path().display()
    );
    let err = Hypervisor::open(Some(&uri)).err().unwrap();
    assert!(matches!(err, VirtError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("check that libvirtd runs there"));
}

#[test]
fn a_missing_pool_is_refused_before_anything_is_created() {
    let t = lab(1, false);
    let hv = Hypervisor::open(Some(&t.lab.hosts()[0].uri)).unwrap();
    let err = hv.create_vm(&spec("vm1", 1 << 20)).unwrap_err();
    assert!(matches!(err, VirtError::PoolNotFound { .. }), "{err}");
    assert!(err.to_string().contains("herd hv bootstrap"), "{err}");
    assert!(hv.domains().unwrap().is_empty());
}

#[test]
fn an_existing_name_is_refused_and_its_disk_untouched() {
    let t = lab(1, false);
    let hv = bootstrapped(&t.lab.hosts()[0].uri);
    hv.create_vm(&spec("vm1", 1 << 20)).unwrap();
    let err = hv.create_vm(&spec("vm1", 2 << 20)).unwrap_err();
    assert!(matches!(err, VirtError::DomainExists { .. }), "{err}");
    let vols = hv.volumes("default").unwrap();
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0].capacity, 1 << 20);
}

#[test]
fn an_existing_volume_is_never_overwritten() {
    let t = lab(1, false);
    let hv = bootstrapped(&t.lab.hosts()[0].uri);
    hv.create_vm(&spec("vm1", 1 << 20)).unwrap();
    hv.delete("vm1", true, false).unwrap();
    let err = hv.create_vm(&spec("vm1", 2 << 20)).unwrap_err();
    assert!(matches!(err, VirtError::VolumeExists { .. }), "{err}");
    assert!(hv.domains().unwrap().is_empty(), "no domain defined");
    assert_eq!(hv.volumes("default").unwrap()[0].capacity, 1 << 20);
}

#[test]
fn a_disk_larger_than_the_pool_is_refused() {
    let t = lab(1, false);
    let hv = bootstrapped(&t.lab.hosts()[0].uri);
    let free = hv.pool("default").unwrap().available;
    let err = hv.create_vm(&spec("big", free + (1 << 30))).unwrap_err();
    assert!(matches!(err, VirtError::InsufficientSpace { .. }), "{err}");
    assert!(err.to_string().contains("free"), "{err}");
    assert!(hv.volumes("default").unwrap().is_empty());
    assert!(hv.domains().unwrap().is_empty());
}

#[test]
fn a_network_the_host_lacks_is_refused() {
    let t = lab(1, false);
    let hv = bootstrapped(&t.lab.hosts()[0].uri);
    let mut s = spec("vm1", 1 << 20);
    s.nic = Nic::Network("default".into());
    let err = hv.create_vm(&s).unwrap_err();
    assert!(matches!(err, VirtError::NetworkNotFound { .. }), "{err}");
    assert!(hv.volumes("default").unwrap().is_empty());
}

#[test]
fn running_vms_are_not_deleted_without_force_and_graceful_stop_times_out() {
    let t = lab(1, false);
    let hv = bootstrapped(&t.lab.hosts()[0].uri);
    hv.create_vm(&spec("vm1", 1 << 20)).unwrap();
    hv.start("vm1").unwrap();
    let err = hv.start("vm1").unwrap_err();
    assert!(matches!(err, VirtError::WrongState { .. }), "{err}");
    let err = hv.delete("vm1", false, false).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    // No OS in the guest: nothing answers the ACPI request.
    let err = hv
        .stop("vm1", Stop::Graceful(Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(err, VirtError::ShutdownTimeout { .. }), "{err}");
    let deleted = hv.delete("vm1", false, true).unwrap();
    assert_eq!(deleted.volumes_deleted.len(), 1);
}

#[test]
fn a_raw_disk_is_sparse_too() {
    let t = lab(1, false);
    let hv = bootstrapped(&t.lab.hosts()[0].uri);
    let mut s = spec("vm1", 4 << 30);
    s.format = VolumeFormat::Raw;
    let d = hv.create_vm(&s).unwrap();
    assert_eq!(d.disks[0].volume.as_deref(), Some("vm1.raw"));
    assert_eq!(d.disks[0].format.as_deref(), Some("raw"));
    assert!(d.disks[0].allocation.unwrap() < 1 << 20);
}
