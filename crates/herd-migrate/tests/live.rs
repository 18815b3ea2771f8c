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
