use super::*;
use crate::facts::*;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

const XML: &str = "<domain type='qemu'><name>vm1</name><devices>\
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
<source file='/var/lib/libvirt/images/vm1.qcow2'/><target dev='vda' bus='virtio'/></disk>\
</devices></domain>";

fn volume(name: &str, dir: &str, capacity: u64, allocation: u64, format: &str) -> VolumeFacts {
    VolumeFacts {
        name: name.into(),
        path: format!("{dir}/{name}"),
        capacity,
        allocation,
        format: format.into(),
    }
}

fn pool(name: &str, kind: &str, path: &str, available: u64) -> PoolFacts {
    PoolFacts {
        name: name.into(),
        kind: kind.into(),
        path: path.into(),
        active: true,
        available,
        volumes: vec![],
    }
}

fn host(uri: &str, uuid: &str) -> HostFacts {
    HostFacts {
        uri: uri.into(),
        host_uuid: uuid.into(),
        hostname: "lab".into(),
        free_memory: 8 * GIB,
        pools: vec![pool("default", "dir", "/var/lib/libvirt/images", 100 * GIB)],
        networks: Some(vec!["default".into()]),
        bridges: Some(vec!["virbr0".into()]),
        domains: vec![],
    }
}

fn facts() -> Facts {
    let vol = volume(
        "vm1.qcow2",
        "/var/lib/libvirt/images",
        10 * GIB,
        2 * GIB,
        "qcow2",
    );
    let mut source = host("qemu:///a", "aaaa");
    source.pools[0].volumes.push(vol.clone());
    source.domains.push("vm1".into());
    Facts {
        source,
        destination: host("qemu:///b", "bbbb"),
        vm: VmFacts {
            name: "vm1".into(),
            uuid: "u-1".into(),
            state: VmState::Running,
            persistent: true,
            memory: GIB,
            disks: vec![DiskFacts {
                target: "vda".into(),
                device: "disk".into(),
                source: DiskSource::File {
                    path: vol.path.clone(),
                },
                format: "qcow2".into(),
                readonly: false,
                shareable: false,
                volume: Some(PoolVolume {
                    pool: "default".into(),
                    volume: vol,
                }),
            }],
            interfaces: vec![InterfaceFacts::Network {
                network: "default".into(),
            }],
            lock: None,
            job_active: false,
            xml: XML.into(),
            persistent_xml: Some(XML.into()),
        },
        cpu: CpuVerdict::Identical,
    }
}

fn refused(facts: &Facts, request: &Request) -> Vec<Reason> {
    match plan(facts, request) {
        Ok(p) => panic!("expected a refusal, got the plan:\n{p}"),
        Err(r) => r.reasons,
    }
}

#[test]
fn running_vm_plans_a_live_migration_in_order() {
    let p = plan(&facts(), &Request::default()).unwrap();
    assert_eq!(p.mode, Mode::Live);
    assert_eq!(p.dest_xml, None, "same path and format: no rewrite");
    assert_eq!(
        p.steps,
        vec![
            Step::Lock,
            Step::CreateVolume {
                pool: "default".into(),
                name: "vm1.qcow2".into(),
                capacity: 10 * GIB,
                format: "qcow2".into()
            },
            Step::MigrateLive {
                disks: vec!["vda".into()],
                flags: live_flags(&MigrateOptions::default()),
            },
            Step::Verify,
            Step::DeleteSourceVolume {
                pool: "default".into(),
                name: "vm1.qcow2".into()
            },
            Step::Unlock,
            Step::RecordHistory,
        ]
    );
}

#[test]
fn a_refusal_lists_every_reason_at_once() {
    let mut f = facts();
    f.destination.host_uuid = "aaaa".into();
    f.destination.domains.push("vm1".into());
    f.destination.pools[0].volumes.push(volume(
        "vm1.qcow2",
        "/var/lib/libvirt/images",
        GIB,
        GIB,
        "qcow2",
    ));
    f.destination.pools[0].available = GIB;
    f.destination.free_memory = 512 * MIB;
    f.destination.networks = Some(vec![]);
    f.cpu = CpuVerdict::Incompatible {
        detail: "host lacks avx512f".into(),
    };
    f.vm.lock = Some(LockFacts {
        owner: "herd pid 9 on admin".into(),
        destination: "qemu:///c".into(),
        since: 1,
        ..LockFacts::default()
    });
    let reasons = refused(&f, &Request::default());
    let kinds: Vec<&str> = reasons
        .iter()
        .map(|r| match r {
            Reason::SameHost { .. } => "same-host",
            Reason::DomainOnDestination { .. } => "domain",
            Reason::VolumeExists { .. } => "volume",
            Reason::NotEnoughSpace { .. } => "space",
            Reason::NotEnoughMemory { .. } => "memory",
            Reason::NetworkMissing { .. } => "network",
            Reason::CpuIncompatible { .. } => "cpu",
            Reason::Locked { .. } => "locked",
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "same-host",
            "domain",
            "locked",
            "memory",
            "cpu",
            "network",
            "volume",
            "space"
        ]
    );
}

#[test]
fn destination_volume_of_the_disk_name_is_never_overwritten() {
    let mut f = facts();
    f.destination.pools[0].volumes.push(volume(
        "vm1.qcow2",
        "/var/lib/libvirt/images",
        GIB,
        GIB,
        "raw",
    ));
    let reasons = refused(&f, &Request::default());
    assert_eq!(
        reasons,
        vec![Reason::VolumeExists {
            disk: "vda".into(),
            pool: "default".into(),
            volume: "vm1.qcow2".into()
        }]
    );
    let msg = reasons[0].to_string();
    assert!(msg.contains("never overwrites"), "{msg}");
    assert!(msg.contains("--disk vda=pool:OTHER"), "{msg}");
}

#[test]
fn space_is_the_sum_of_what_the_disks_use_not_their_capacity() {
    let mut f = facts();
    f.destination.pools[0].available = 2 * GIB;
    assert!(
        plan(&f, &Request::default()).is_ok(),
        "2 GiB used fits 2 GiB free"
    );
    f.destination.pools[0].available = 2 * GIB - 1;
    let reasons = refused(&f, &Request::default());
    assert!(matches!(&reasons[..], [Reason::NotEnoughSpace { needed, .. }] if *needed == 2 * GIB));
    assert!(reasons[0]
        .to_string()
        .contains("choose another hypervisor or free space"));
}

#[test]
fn missing_destination_pool_says_how_to_choose_one() {
    let mut f = facts();
    f.destination.pools[0].name = "images".into();
    let reasons = refused(&f, &Request::default());
    assert_eq!(
        reasons[0].to_string(),
        "the destination has no storage pool 'default' for disk vda: create it (herd hv bootstrap) or choose one with --disk vda=pool:NAME"
    );
}

#[test]
fn missing_bridge_is_refused() {
    let mut f = facts();
    f.vm.interfaces = vec![InterfaceFacts::Bridge {
        bridge: "br-prod".into(),
    }];
    assert_eq!(
        refused(&f, &Request::default()),
        vec![Reason::BridgeMissing {
            vm: "vm1".into(),
            bridge: "br-prod".into()
        }]
    );
}

#[test]
fn vm_with_a_running_libvirt_job_is_refused() {
    let mut f = facts();
    f.vm.job_active = true;
    assert_eq!(
        refused(&f, &Request::default()),
        vec![Reason::JobActive { vm: "vm1".into() }]
    );
}

#[test]
fn shut_off_vm_moves_offline_by_copying_volumes() {
    let mut f = facts();
    f.vm.state = VmState::ShutOff;
    f.destination.free_memory = 0;
    f.cpu = CpuVerdict::Incompatible {
        detail: "irrelevant offline".into(),
    };
    let p = plan(&f, &Request::default()).unwrap();
    assert_eq!(p.mode, Mode::Offline);
    let names: Vec<String> = p.steps.iter().map(|s| s.to_string()).collect();
    assert!(names[2].starts_with("copy volume default/vm1.qcow2 to default/vm1.qcow2"));
    assert_eq!(p.steps[3], Step::DefineOnDestination);
    assert_eq!(p.steps[4], Step::UndefineOnSource);
}

#[test]
fn offline_flag_on_a_running_vm_is_refused() {
    let request = Request {
        offline: true,
        ..Request::default()
    };
    assert_eq!(
        refused(&facts(), &request),
        vec![Reason::RunningButOffline { vm: "vm1".into() }]
    );
}

#[test]
fn disk_placed_in_a_block_pool_becomes_raw_with_a_rewritten_xml() {
    let mut f = facts();
    f.destination
        .pools
        .push(pool("vg0", "logical", "/dev/vg0", 50 * GIB));
    let request = Request {
        placements: [("vda".to_string(), Placement::Pool { pool: "vg0".into() })].into(),
        ..Request::default()
    };
    let p = plan(&f, &request).unwrap();
    assert_eq!(
        p.disks[0].dest,
        DestDisk::NewVolume {
            pool: "vg0".into(),
            name: "vm1.qcow2".into(),
            path: "/dev/vg0/vm1.qcow2".into(),
            format: "raw".into(),
            block: true
        }
    );
    let xml = p.dest_xml.unwrap();
    assert!(xml.contains("<disk type='block' device='disk'>"), "{xml}");
    assert!(xml.contains("<source dev='/dev/vg0/vm1.qcow2'/>"), "{xml}");
    assert!(xml.contains("type='raw'"), "{xml}");
    assert!(p.persist_xml.unwrap().contains("/dev/vg0/vm1.qcow2"));
}

#[test]
fn block_pools_need_the_full_capacity() {
    let mut f = facts();
    f.destination
        .pools
        .push(pool("vg0", "logical", "/dev/vg0", 5 * GIB));
    let request = Request {
        placements: [("vda".to_string(), Placement::Pool { pool: "vg0".into() })].into(),
        ..Request::default()
    };
    assert!(matches!(
        &refused(&f, &request)[..],
        [Reason::NotEnoughSpace { needed, .. }] if *needed == 10 * GIB
    ));
}

#[test]
fn existing_block_device_is_written_but_never_created() {
    let request = Request {
        placements: [("vda".to_string(), "block:/dev/loop3".parse().unwrap())].into(),
        ..Request::default()
    };
    let p = plan(&facts(), &request).unwrap();
    assert_eq!(
        p.disks[0].dest,
        DestDisk::ExistingBlock {
            dev: "/dev/loop3".into()
        }
    );
    assert!(!p
        .steps
        .iter()
        .any(|s| matches!(s, Step::CreateVolume { .. })));
    assert!(p.dest_xml.unwrap().contains("<source dev='/dev/loop3'/>"));
    assert_eq!(p.warnings.len(), 1);
}

#[test]
fn offline_copy_onto_a_raw_device_is_refused_for_qcow2() {
    let mut f = facts();
    f.vm.state = VmState::ShutOff;
    let request = Request {
        placements: [("vda".to_string(), "block:/dev/loop3".parse().unwrap())].into(),
        ..Request::default()
    };
    assert!(matches!(
        &refused(&f, &request)[..],
        [Reason::OfflineFormatChange { .. }]
    ));
}

#[test]
fn placement_for_an_unknown_disk_is_refused() {
    let request = Request {
        placements: [("vdq".to_string(), "pool:default".parse().unwrap())].into(),
        ..Request::default()
    };
    assert_eq!(
        refused(&facts(), &request),
        vec![Reason::UnknownDisk {
            vm: "vm1".into(),
            disk: "vdq".into()
        }]
    );
}

#[test]
fn bad_placement_text_says_what_is_accepted() {
    let err = "lvm:/dev/x".parse::<Placement>().unwrap_err();
    assert!(err.contains("pool:NAME or block:/dev/PATH"));
}

#[test]
fn keep_source_disks_and_inventory_change_the_steps() {
    let request = Request {
        options: MigrateOptions {
            keep_source_disks: true,
            ..MigrateOptions::default()
        },
        inventory: Some(("hv1".into(), "hv2".into())),
        ..Request::default()
    };
    let p = plan(&facts(), &request).unwrap();
    assert!(!p
        .steps
        .iter()
        .any(|s| matches!(s, Step::DeleteSourceVolume { .. })));
    assert!(p.steps.contains(&Step::UpdateInventory {
        from: "hv1".into(),
        to: "hv2".into()
    }));
}

#[test]
fn disk_outside_any_pool_is_refused() {
    let mut f = facts();
    f.vm.disks[0].volume = None;
    assert!(matches!(
        &refused(&f, &Request::default())[..],
        [Reason::DiskNotInPool { .. }]
    ));
}

#[test]
fn empty_cdrom_is_ignored_and_inserted_media_refused() {
    let mut f = facts();
    let mut cd = f.vm.disks[0].clone();
    cd.target = "hdc".into();
    cd.device = "cdrom".into();
    cd.source = DiskSource::Empty;
    cd.volume = None;
    f.vm.disks.push(cd.clone());
    let p = plan(&f, &Request::default()).unwrap();
    assert_eq!(p.disks.len(), 1);
    cd.source = DiskSource::File {
        path: "/iso/debian.iso".into(),
    };
    f.vm.disks[1] = cd;
    assert!(matches!(
        &refused(&f, &Request::default())[..],
        [Reason::RemovableMedia { .. }]
    ));
}

#[test]
fn plan_text_lists_disks_and_numbered_steps() {
    let text = plan(&facts(), &Request::default()).unwrap().to_string();
    assert!(text.starts_with("migrate vm1 (live) from qemu:///a to qemu:///b\n"));
    assert!(text.contains("disk vda: default/vm1.qcow2 (qcow2, 2.0 GiB used of 10.0 GiB) -> new volume default/vm1.qcow2 (qcow2)"));
    assert!(text.contains("  3. migrate live with disks vda (LIVE|PERSIST_DEST|UNDEFINE_SOURCE|NON_SHARED_DISK|ABORT_ON_ERROR)"));
}

#[test]
fn refusal_text_counts_reasons_and_promises_nothing_changed() {
    let mut f = facts();
    f.destination.domains.push("vm1".into());
    f.vm.job_active = true;
    let err = plan(&f, &Request::default()).unwrap_err().to_string();
    assert!(err.starts_with("refusing to migrate vm1 (2 reasons); nothing was changed:\n  - "));
}

#[test]
fn networks_a_destination_cannot_list_are_a_warning_not_a_refusal() {
    let mut f = facts();
    f.destination.networks = None;
    let p = plan(&f, &Request::default()).unwrap();
    assert_eq!(
        p.warnings,
        vec!["the destination's libvirt cannot list networks: check that 'default' exists there"]
    );
}
