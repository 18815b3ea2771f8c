use super::*;

fn vm1(domain_type: DomainType, nic: Nic, format: VolumeFormat) -> DomainSpec {
    DomainSpec {
        name: "vm1".into(),
        domain_type,
        memory: 512 << 20,
        vcpus: 1,
        disks: vec![DiskSpec {
            target: "vda".into(),
            path: format!("/var/lib/libvirt/images/vm1.{}", format.as_str()),
            format,
        }],
        nic,
    }
}

#[test]
fn tcg_domain_without_network() {
    insta::assert_snapshot!(domain_xml(&vm1(
        DomainType::Qemu,
        Nic::None,
        VolumeFormat::Qcow2
    )));
}

#[test]
fn kvm_domain_on_the_default_network_with_a_raw_disk() {
    insta::assert_snapshot!(domain_xml(&vm1(
        DomainType::Kvm,
        Nic::Network("default".into()),
        VolumeFormat::Raw
    )));
}

#[test]
fn domain_on_a_bridge() {
    insta::assert_snapshot!(domain_xml(&vm1(
        DomainType::Qemu,
        Nic::Bridge("br0".into()),
        VolumeFormat::Qcow2
    )));
}

#[test]
fn domain_on_macvtap() {
    insta::assert_snapshot!(domain_xml(&vm1(
        DomainType::Qemu,
        Nic::Macvtap("eth0".into()),
        VolumeFormat::Qcow2
    )));
}

#[test]
fn memory_is_rounded_up_to_whole_kib() {
    let mut spec = vm1(DomainType::Qemu, Nic::None, VolumeFormat::Qcow2);
    spec.memory = 1025;
    assert!(domain_xml(&spec).contains("<memory unit='KiB'>2</memory>"));
}

#[test]
fn names_and_paths_are_escaped() {
    let mut spec = vm1(
        DomainType::Qemu,
        Nic::Bridge("a'b".into()),
        VolumeFormat::Qcow2,
    );
    spec.disks[0].path = "/images/a&b<c>.qcow2".into();
    let xml = domain_xml(&spec);
    let parsed = parse_domain(&xml).unwrap();
    assert_eq!(
        parsed.disks[0].path.as_deref(),
        Some("/images/a&b<c>.qcow2")
    );
    assert_eq!(parsed.interfaces[0].source.as_deref(), Some("a'b"));
}

#[test]
fn sparse_qcow2_volume() {
    insta::assert_snapshot!(volume_xml(&VolumeSpec {
        name: "vm1.qcow2".into(),
        capacity: 10 << 30,
        format: VolumeFormat::Qcow2,
    }));
}

#[test]
fn sparse_raw_volume() {
    insta::assert_snapshot!(volume_xml(&VolumeSpec {
        name: "vm1.raw".into(),
        capacity: 10 << 30,
        format: VolumeFormat::Raw,
    }));
}

#[test]
fn default_dir_pool() {
    insta::assert_snapshot!(dir_pool_xml("default", "/var/lib/libvirt/images"));
}

#[test]
fn default_nat_network() {
    insta::assert_snapshot!(default_network_xml());
}

#[test]
fn generated_domain_reads_back() {
    let xml = domain_xml(&vm1(
        DomainType::Kvm,
        Nic::Network("default".into()),
        VolumeFormat::Raw,
    ));
    let d = parse_domain(&xml).unwrap();
    assert_eq!(d.name, "vm1");
    assert_eq!(d.domain_type, "kvm");
    assert_eq!(d.memory, 512 << 20);
    assert_eq!(d.vcpus, 1);
    assert_eq!(d.disks.len(), 1);
    assert_eq!(d.disks[0].target, "vda");
    assert_eq!(d.disks[0].format.as_deref(), Some("raw"));
    assert_eq!(d.interfaces[0].kind, "network");
    assert_eq!(d.interfaces[0].source.as_deref(), Some("default"));
}

#[test]
fn libvirt_domain_xml_with_volume_disk_and_active_network() {
    let xml = "<domain type='qemu' id='3'><name>vm2</name><uuid>8d1c</uuid>\
        <memory unit='MiB'>64</memory><vcpu>2</vcpu><devices>\
        <disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>\
        <source pool='default' volume='vm2.qcow2'/><target dev='vda' bus='virtio'/></disk>\
        <disk type='file' device='cdrom'><target dev='sda'/></disk>\
        <interface type='network'><mac address='52:54:00:aa:bb:cc'/>\
        <source network='default' bridge='virbr0'/><model type='virtio'/></interface>\
        </devices></domain>";
    let d = parse_domain(xml).unwrap();
    assert_eq!(d.memory, 64 << 20);
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.disks[0].pool.as_deref(), Some("default"));
    assert_eq!(d.disks[0].volume.as_deref(), Some("vm2.qcow2"));
    assert_eq!(d.disks[1].device, "cdrom");
    assert_eq!(d.disks[1].path, None);
    assert_eq!(d.interfaces[0].bridge.as_deref(), Some("virbr0"));
    assert_eq!(d.interfaces[0].mac.as_deref(), Some("52:54:00:aa:bb:cc"));
}

#[test]
fn broken_domain_xml_is_an_error_not_a_panic() {
    assert!(parse_domain("<domain>").is_err());
    assert!(parse_domain("<domain><name>x</name></domain>").is_err());
    assert!(parse_domain(
        "<domain><name>x</name><memory unit='parsec'>1</memory><vcpu>1</vcpu></domain>"
    )
    .is_err());
}

#[test]
fn capabilities_tell_kvm_from_tcg() {
    let with_kvm = "<capabilities><host><uuid>1b2c</uuid><cpu><arch>x86_64</arch><model>Skylake</model></cpu></host>\
        <guest><arch name='x86_64'><domain type='qemu'/><domain type='kvm'/></arch></guest></capabilities>";
    let caps = parse_capabilities(with_kvm).unwrap();
    assert!(caps.kvm);
    assert_eq!(caps.host_uuid, "1b2c");
    assert_eq!(caps.cpu_model.as_deref(), Some("Skylake"));
    let tcg_only = with_kvm.replace("<domain type='kvm'/>", "");
    assert!(!parse_capabilities(&tcg_only).unwrap().kvm);
}
