//! Live migrations between two real lab hosts (libvirtd + QEMU/TCG).

mod common;

use common::*;
use herd_migrate::plan::Request;
use herd_migrate::testguest;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use virt::sys;

#[test]
fn running_qcow2_vm_moves_and_leaves_nothing_behind() {
    let setup = Setup::new(2);
    let vm = "mig1";
    start_guest(
        &setup,
        0,
        vm,
        &[DiskSpec {
            target: "vda",
            size_mib: 256,
            data_mib: 8,
        }],
    );
    let before = wait_for_writes(&setup, vm, 50);
    let src = connect(setup.host(0));
    let dst = connect(setup.host(1));
    let src_alloc = allocation(&src, "mig1-vda.qcow2");

    let out = migrate(
        &setup,
        0,
        1,
        vm,
        &Request::default(),
        Arc::new(AtomicBool::new(false)),
    );
    let report = out.result.expect("migration");
    assert!(report.bytes > 0, "{report:?}");

    let dom = dst.lookup_domain_by_name(vm).expect("on the destination");
    assert!(dom.is_active().unwrap());
    assert!(dom.is_persistent().unwrap());
    assert!(
        !domain_names(&src).contains(&vm.to_string()),
        "undefined on the source"
    );
    assert!(volume_names(&src).is_empty(), "source volume deleted");
    let dst_alloc = allocation(&dst, "mig1-vda.qcow2");
    assert!(
        dst_alloc as f64 <= 1.1 * src_alloc as f64,
        "destination allocation {dst_alloc} vs source {src_alloc}"
    );
    // The guest goes on writing on the destination.
    wait_for_writes(&setup, vm, before + 200);

    // Stop it and check every completed write is on the destination disk.
    dom.destroy_flags(sys::VIR_DOMAIN_DESTROY_GRACEFUL)
        .expect("stop guest");
    let last = reported(&setup, vm);
    eprintln!("writes before {before}, last {last}; allocation src {src_alloc} dst {dst_alloc}; {report:?}");
    let disk = testguest::read_guest_view(&setup.image(1, "mig1-vda.qcow2"), "qcow2").unwrap();
    assert_eq!(
        testguest::check_sequence(&disk, MAX_LBA, last),
        Ok(()),
        "last write {last}"
    );
    assert!(out
        .notices
        .iter()
        .any(|n| matches!(n, herd_migrate::exec::Notice::Progress(_))));
}

#[test]
fn interrupting_a_throttled_migration_leaves_the_vm_on_the_source_and_nothing_on_the_destination() {
    let setup = Setup::new(2);
    let vm = "mig2";
    start_guest(
        &setup,
        0,
        vm,
        &[DiskSpec {
            target: "vda",
            size_mib: 128,
            data_mib: 48,
        }],
    );
    wait_for_writes(&setup, vm, 20);
    let history = setup.dir.path().join("history.jsonl");
    let cancel = Arc::new(AtomicBool::new(false));
    let request = Request {
        options: herd_migrate::plan::MigrateOptions {
            bandwidth_mib_s: Some(2),
            ..Default::default()
        },
        ..Request::default()
    };
    // Interrupt after 3 s of progress (15 samples, 200 ms apart).
    let out = migrate_with_history(
        &setup,
        0,
        1,
        vm,
        &request,
        cancel,
        Some(history.clone()),
        Some(15),
    );
    let err = out.result.expect_err("the migration must be interrupted");
    assert!(err.interrupted(), "{err}");
    assert!(
        matches!(err, herd_migrate::exec::ExecError::RolledBack { .. }),
        "{err}"
    );
    assert!(
        out.notices
            .iter()
            .any(|n| matches!(n, herd_migrate::exec::Notice::Progress(_))),
        "it was interrupted in the middle, not before"
    );

    let src = connect(setup.host(0));
    let dst = connect(setup.host(1));
    let dom = src.lookup_domain_by_name(vm).expect("still on the source");
    assert!(dom.is_active().unwrap(), "still running on the source");
    assert_eq!(herd_lock(&dom), None, "unlocked");
    assert_eq!(volume_names(&src), ["mig2-vda.qcow2"]);
    assert!(
        domain_names(&dst).is_empty(),
        "no domain on the destination"
    );
    assert!(
        volume_names(&dst).is_empty(),
        "no volume on the destination"
    );
    assert!(!history.exists(), "no migration recorded");
    // And it still runs: the guest keeps writing on the source.
    let now = reported(&setup, vm);
    wait_for_writes(&setup, vm, now + 20);
}

#[test]
fn destination_volume_of_the_disk_name_is_refused_before_anything_happens() {
    let setup = Setup::new(2);
    let vm = "mig3";
    start_guest(
        &setup,
        0,
        vm,
        &[DiskSpec {
            target: "vda",
            size_mib: 64,
            data_mib: 1,
        }],
    );
    // Someone's precious data on the destination, under the same name.
    let precious = setup.image(1, "mig3-vda.qcow2");
    testguest::make_qcow2(&precious, 64 << 20, None, 2).unwrap();
    let sum = checksum(&precious);
    let refusal = plan_between(&setup, 0, 1, vm, &Request::default()).expect_err("refused");
    assert!(
        matches!(
            &refusal.reasons[..],
            [herd_migrate::plan::Reason::VolumeExists { volume, .. }] if volume == "mig3-vda.qcow2"
        ),
        "{refusal}"
    );
    assert_eq!(
        checksum(&precious),
        sum,
        "the destination volume is untouched"
    );
    let src = connect(setup.host(0));
    assert!(src.lookup_domain_by_name(vm).unwrap().is_active().unwrap());
    assert!(domain_names(&connect(setup.host(1))).is_empty());
}

#[test]
fn vm_with_two_disks_moves_both() {
    let setup = Setup::new(2);
    let vm = "mig4";
    start_guest(
        &setup,
        0,
        vm,
        &[
            DiskSpec {
                target: "vda",
                size_mib: 64,
                data_mib: 2,
            },
            DiskSpec {
                target: "vdb",
                size_mib: 64,
                data_mib: 4,
            },
        ],
    );
    wait_for_writes(&setup, vm, 20);
    let src = connect(setup.host(0));
    let before = testguest::read_guest_view(&setup.image(0, "mig4-vdb.qcow2"), "qcow2").unwrap();
    let out = migrate(
        &setup,
        0,
        1,
        vm,
        &Request::default(),
        Arc::new(AtomicBool::new(false)),
    );
    out.result.expect("migration");
    let dst = connect(setup.host(1));
    assert_eq!(volume_names(&dst), ["mig4-vda.qcow2", "mig4-vdb.qcow2"]);
    assert!(volume_names(&src).is_empty());
    let dom = dst.lookup_domain_by_name(vm).unwrap();
    dom.destroy_flags(sys::VIR_DOMAIN_DESTROY_GRACEFUL).unwrap();
    let after = testguest::read_guest_view(&setup.image(1, "mig4-vdb.qcow2"), "qcow2").unwrap();
    assert!(before == after, "the second disk arrived byte for byte");
}

#[test]
fn qcow2_disk_moves_onto_a_raw_block_device() {
    let setup = Setup::new(2);
    let vm = "mig5";
    start_guest(
        &setup,
        0,
        vm,
        &[DiskSpec {
            target: "vda",
            size_mib: 64,
            data_mib: 2,
        }],
    );
    let loop_dev = LoopDevice::new(&setup.dir.path().join("block.img"), 64 << 20);
    let before = wait_for_writes(&setup, vm, 20);
    let request = Request {
        placements: [(
            "vda".to_string(),
            format!("block:{}", loop_dev.path).parse().unwrap(),
        )]
        .into(),
        ..Request::default()
    };
    let out = migrate(&setup, 0, 1, vm, &request, Arc::new(AtomicBool::new(false)));
    out.result.expect("migration");
    let dst = connect(setup.host(1));
    let dom = dst.lookup_domain_by_name(vm).unwrap();
    let xml = dom.xml_desc(0).unwrap();
    assert!(
        xml.contains(&format!("<source dev='{}'", loop_dev.path)),
        "{xml}"
    );
    assert!(volume_names(&dst).is_empty(), "nothing created in the pool");
    wait_for_writes(&setup, vm, before + 50);
    dom.destroy_flags(sys::VIR_DOMAIN_DESTROY_GRACEFUL).unwrap();
    let last = reported(&setup, vm);
    let disk = testguest::read_guest_view(std::path::Path::new(&loop_dev.path), "raw").unwrap();
    assert_eq!(testguest::check_sequence(&disk, MAX_LBA, last), Ok(()));
    // A persistent definition with the block device too.
    let inactive = dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE).unwrap();
    assert!(
        inactive.contains(&format!("<source dev='{}'", loop_dev.path)),
        "{inactive}"
    );
}

#[test]
fn shut_off_vm_moves_offline_with_sparse_copies() {
    let setup = Setup::new(2);
    let vm = "mig6";
    define_guest(
        &setup,
        0,
        vm,
        &[DiskSpec {
            target: "vda",
            size_mib: 512,
            data_mib: 3,
        }],
    );
    let src = connect(setup.host(0));
    let src_alloc = allocation(&src, "mig6-vda.qcow2");
    let before = testguest::read_guest_view(&setup.image(0, "mig6-vda.qcow2"), "qcow2").unwrap();
    let out = migrate(
        &setup,
        0,
        1,
        vm,
        &Request::default(),
        Arc::new(AtomicBool::new(false)),
    );
    let report = out.result.expect("offline migration");
    assert_eq!(report.mode, herd_migrate::plan::Mode::Offline);
    let dst = connect(setup.host(1));
    let dom = dst
        .lookup_domain_by_name(vm)
        .expect("defined on the destination");
    assert!(!dom.is_active().unwrap());
    assert!(dom.is_persistent().unwrap());
    assert_eq!(herd_lock(&dom), None);
    assert!(domain_names(&src).is_empty());
    assert!(volume_names(&src).is_empty());
    let dst_alloc = allocation(&dst, "mig6-vda.qcow2");
    assert!(
        dst_alloc as f64 <= 1.1 * src_alloc as f64,
        "{dst_alloc} vs {src_alloc}"
    );
    let after = testguest::read_guest_view(&setup.image(1, "mig6-vda.qcow2"), "qcow2").unwrap();
    assert!(before == after, "same guest-visible bytes");
    // It boots there.
    dom.create().unwrap();
    wait_for_writes(&setup, vm, 10);
}
