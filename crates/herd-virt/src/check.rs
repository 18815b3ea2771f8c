//! Pure checks made before anything is created: each returns the error an
//! operator should see.

use crate::facts::{Accel, NetworkFacts, PoolFacts};
use crate::xml::{DomainType, VolumeSpec};
use crate::VirtError;

/// A domain or volume name: 1-64 of `[A-Za-z0-9._-]`, not starting with
/// `.` or `-` (it becomes a file name and a command-line argument).
pub fn name(name: &str) -> Result<(), VirtError> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(VirtError::BadName(name.to_string()))
    }
}

/// A new volume can go into `pool`: the pool is active, no volume has the
/// name, and the pool has room for the whole capacity (volumes are sparse,
/// so libvirt itself would accept a disk that can never fill up).
pub fn volume_fits(
    uri: &str,
    pool: &PoolFacts,
    spec: &VolumeSpec,
    exists: bool,
    target: &str,
) -> Result<(), VirtError> {
    if !pool.active {
        return Err(VirtError::PoolInactive {
            uri: uri.to_string(),
            pool: pool.name.clone(),
        });
    }
    if exists {
        return Err(VirtError::VolumeExists {
            uri: uri.to_string(),
            pool: pool.name.clone(),
            volume: spec.name.clone(),
        });
    }
    if spec.capacity > pool.available {
        return Err(VirtError::InsufficientSpace {
            uri: uri.to_string(),
            pool: pool.name.clone(),
            name: spec.name.clone(),
            target: target.to_string(),
            free: pool.available,
            needed: spec.capacity,
        });
    }
    Ok(())
}

/// A libvirt network named `name` exists (`networks` is `None` when the
/// host has no network driver).
pub fn network_exists(
    uri: &str,
    name: &str,
    networks: Option<&[NetworkFacts]>,
) -> Result<(), VirtError> {
    match networks {
        Some(nets) if nets.iter().any(|n| n.name == name) => Ok(()),
        _ => Err(VirtError::NetworkNotFound {
            uri: uri.to_string(),
            network: name.to_string(),
            supported: networks.is_some(),
        }),
    }
}

/// The domain type for the requested acceleration (`None`: the best the
/// host has).
pub fn domain_type(uri: &str, accel: Option<Accel>, kvm: bool) -> Result<DomainType, VirtError> {
    match (accel, kvm) {
        (Some(Accel::Tcg), _) | (None, false) => Ok(DomainType::Qemu),
        (Some(Accel::Kvm), true) | (None, true) => Ok(DomainType::Kvm),
        (Some(Accel::Kvm), false) => Err(VirtError::KvmUnavailable {
            uri: uri.to_string(),
        }),
    }
}

/// Host UUIDs shared by more than one hypervisor: `(uuid, [uri, ...])`.
/// libvirt refuses to migrate between two hosts with the same UUID.
pub fn duplicate_host_uuids(hosts: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (uri, uuid) in hosts {
        match out.iter_mut().find(|(u, _)| u == uuid) {
            Some((_, uris)) => uris.push(uri.clone()),
            None => out.push((uuid.clone(), vec![uri.clone()])),
        }
    }
    out.retain(|(_, uris)| uris.len() > 1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::VolumeFormat;

    fn pool(active: bool, available: u64) -> PoolFacts {
        PoolFacts {
            name: "default".into(),
            kind: "dir".into(),
            path: "/var/lib/libvirt/images".into(),
            active,
            autostart: true,
            capacity: 20 << 30,
            allocation: 0,
            available,
        }
    }

    fn vol(capacity: u64) -> VolumeSpec {
        VolumeSpec {
            name: "vm1.qcow2".into(),
            capacity,
            format: VolumeFormat::Qcow2,
        }
    }

    #[test]
    fn names_that_are_safe_file_names_pass() {
        for ok in ["vm1", "web-01.example", "a_b", "X"] {
            assert!(name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-rf", ".hidden", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_disk_larger_than_the_free_space_is_refused_with_both_sizes() {
        let err = volume_fits(
            "qemu:///system",
            &pool(true, 3 << 30),
            &vol(10 << 30),
            false,
            "vda",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "storage pool \"default\" on qemu:///system has 3 GiB free, vm1.qcow2 needs 10 GiB (vda); \
             choose a smaller disk, another pool or hypervisor, or free space"
        );
    }

    #[test]
    fn an_existing_volume_is_never_overwritten() {
        let err = volume_fits("u", &pool(true, 100 << 30), &vol(1 << 30), true, "vda").unwrap_err();
        assert!(matches!(err, VirtError::VolumeExists { .. }), "{err}");
    }

    #[test]
    fn an_inactive_pool_is_refused() {
        let err = volume_fits("u", &pool(false, 0), &vol(1), false, "vda").unwrap_err();
        assert!(matches!(err, VirtError::PoolInactive { .. }), "{err}");
    }

    #[test]
    fn exactly_the_free_space_fits() {
        assert!(volume_fits("u", &pool(true, 1 << 30), &vol(1 << 30), false, "vda").is_ok());
    }

    #[test]
    fn networks_must_exist_and_say_when_the_driver_is_missing() {
        let nets = [NetworkFacts {
            name: "default".into(),
            bridge: Some("virbr0".into()),
            active: true,
            autostart: true,
        }];
        assert!(network_exists("u", "default", Some(&nets)).is_ok());
        let missing = network_exists("u", "lan", Some(&nets)).unwrap_err();
        assert!(!missing.to_string().contains("no network driver"));
        let unsupported = network_exists("u", "default", None).unwrap_err();
        assert!(
            unsupported.to_string().contains("no network driver"),
            "{unsupported}"
        );
    }

    #[test]
    fn auto_acceleration_falls_back_to_tcg() {
        assert_eq!(domain_type("u", None, true).unwrap(), DomainType::Kvm);
        assert_eq!(domain_type("u", None, false).unwrap(), DomainType::Qemu);
        assert_eq!(
            domain_type("u", Some(Accel::Tcg), true).unwrap(),
            DomainType::Qemu
        );
        assert!(domain_type("u", Some(Accel::Kvm), false).is_err());
    }

    #[test]
    fn duplicate_host_uuids_are_grouped() {
        let hosts = [
            ("hv1".to_string(), "a".to_string()),
            ("hv2".to_string(), "b".to_string()),
            ("hv3".to_string(), "a".to_string()),
        ];
        assert_eq!(
            duplicate_host_uuids(&hosts),
            vec![("a".to_string(), vec!["hv1".to_string(), "hv3".to_string()])]
        );
        assert!(duplicate_host_uuids(&hosts[..2]).is_empty());
    }
}
