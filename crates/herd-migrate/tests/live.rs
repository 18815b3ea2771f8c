//! Live migrations between two real lab hosts (libvirtd + QEMU/TCG).

mod common;

use common::*;
use herd_migrate::plan::Request;
use herd_migrate::testguest;
use std::path::Path;
use virt::sys;

#[test]
fn running_qcow2_vm_moves_and_leaves_nothing_behind() {
    let setup = Setup::new(2);
    let vm = "mig1";
    start_guest(&setup, 0, vm, &[vda(256, 8)]);
    let before = wait_for_writes(&setup, vm, 50);
    let src = connect(setup.host(0));
    let dst = connect(setup.host(1));
    let src_alloc = allocation(&src, "mig1-vda.qcow2");

    let out = Migration::new(&setup, vm).run();
    assert!(out.saw_progress());
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
    eprintln!("writes before {before}; allocation src {src_alloc} dst {dst_alloc}; {report:?}");

    // Stop it and check every completed write is on the destination disk.
    assert_every_reported_write_on(&setup, vm, &dom, &setup.image(1, "mig1-vda.qcow2"), "qcow2");
}

#[test]
fn interrupting_a_throttled_migration_leaves_the_vm_on_the_source_and_nothing_on_the_destination() {
    let setup = Setup::new(2);
    let vm = "mig2";
    start_guest(&setup, 0, vm, &[vda(128, 48)]);
    wait_for_writes(&setup, vm, 20);
    let history = setup.dir.path().join("history.jsonl");
    // Interrupt after 3 s of progress (15 samples, 200 ms apart).
    let out = Migration::new(&setup, vm)
        .request(throttled(2))
        .history(history.clone())
        .run_cancelled_after(15);
    assert!(
        out.saw_progress(),
        "it was interrupted in the middle, not before"
    );
    let err = out.rolled_back("the migration must be interrupted");
    assert!(err.interrupted(), "{err}");

    assert_left_running_on_source_only(&setup, vm);
    assert!(!history.exists(), "no migration recorded");
}

#[test]
fn destination_volume_of_the_disk_name_is_refused_before_anything_happens() {
    let setup = Setup::new(2);
    let vm = "mig3";
    start_guest(&setup, 0, vm, &[vda(64, 1)]);
    // Someone's precious data on the destination, under the same name.
    let precious = setup.image(1, "mig3-vda.qcow2");
    testguest::make_qcow2(&precious, 64 << 20, None, 2).unwrap();
    let sum = checksum(&precious);
    let refusal = Migration::new(&setup, vm).plan().expect_err("refused");
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
    let vdb = DiskSpec {
        target: "vdb",
        size_mib: 64,
        data_mib: 4,
    };
    start_guest(&setup, 0, vm, &[vda(64, 2), vdb]);
    wait_for_writes(&setup, vm, 20);
    let src = connect(setup.host(0));
    let before = testguest::read_guest_view(&setup.image(0, "mig4-vdb.qcow2"), "qcow2").unwrap();
    Migration::new(&setup, vm).run().result.expect("migration");
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
    start_guest(&setup, 0, vm, &[vda(64, 2)]);
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
    Migration::new(&setup, vm)
        .request(request)
        .run()
        .result
        .expect("migration");
    let dst = connect(setup.host(1));
    let dom = dst.lookup_domain_by_name(vm).unwrap();
    let source = format!("<source dev='{}'", loop_dev.path);
    let xml = dom.xml_desc(0).unwrap();
    assert!(xml.contains(&source), "{xml}");
    assert!(volume_names(&dst).is_empty(), "nothing created in the pool");
    wait_for_writes(&setup, vm, before + 50);
    assert_every_reported_write_on(&setup, vm, &dom, Path::new(&loop_dev.path), "raw");
    // A persistent definition with the block device too.
    let inactive = dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE).unwrap();
    assert!(inactive.contains(&source), "{inactive}");
}

#[test]
fn shut_off_vm_moves_offline_with_sparse_copies() {
    let setup = Setup::new(2);
    let vm = "mig6";
    define_guest(&setup, 0, vm, &[vda(512, 3)]);
    let src = connect(setup.host(0));
    let src_alloc = allocation(&src, "mig6-vda.qcow2");
    let before = testguest::read_guest_view(&setup.image(0, "mig6-vda.qcow2"), "qcow2").unwrap();
    let report = Migration::new(&setup, vm)
        .run()
        .result
        .expect("offline migration");
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
