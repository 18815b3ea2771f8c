//! Gather [`Facts`] from libvirt: read-only calls on the source and the
//! destination (plus a pool refresh, so files added behind libvirt's back
//! count as volumes and are never overwritten).

use crate::facts::{
    DiskFacts, DiskSource, Facts, HostFacts, PoolFacts, PoolVolume, VmFacts, VmState, VolumeFacts,
};
use crate::libvirt;
use crate::xml::{self, XmlError};
use virt::connect::Connect;
use virt::domain::Domain;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::sys;

#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error("cannot connect to {uri}: {source}; check the URI and that libvirtd runs there")]
    Connect {
        uri: String,
        source: virt::error::Error,
    },
    #[error("no domain '{vm}' on {uri}: check the name with `virsh -c '{uri}' list --all`")]
    NoVm { vm: String, uri: String },
    #[error("libvirt on {uri}: {what}: {source}")]
    Libvirt {
        uri: String,
        what: String,
        source: virt::error::Error,
    },
    #[error("{uri}: {source}")]
    Xml { uri: String, source: XmlError },
}

/// Two open connections, source and destination.
pub struct Hosts {
    pub source: Connect,
    pub source_uri: String,
    pub destination: Connect,
    pub destination_uri: String,
}

impl Hosts {
    pub fn open(source_uri: &str, destination_uri: &str) -> Result<Hosts, GatherError> {
        let open = |uri: &str| {
            libvirt::open(uri).map_err(|source| GatherError::Connect {
                uri: uri.to_string(),
                source,
            })
        };
        Ok(Hosts {
            source: open(source_uri)?,
            source_uri: source_uri.to_string(),
            destination: open(destination_uri)?,
            destination_uri: destination_uri.to_string(),
        })
    }
}

/// Everything the planner needs to plan moving `vm` between `hosts`.
pub fn gather(hosts: &Hosts, vm: &str) -> Result<Facts, GatherError> {
    let source = host_facts(&hosts.source, &hosts.source_uri)?;
    let destination = host_facts(&hosts.destination, &hosts.destination_uri)?;
    let dom = hosts
        .source
        .lookup_domain_by_name(vm)
        .map_err(|e| missing_vm(e, vm, &hosts.source_uri))?;
    let (vm, parsed) = vm_facts(&hosts.source, &hosts.source_uri, &dom, &source)?;
    let cpu = match (&parsed.cpu, vm.state) {
        (Some(cpu), VmState::Running | VmState::Paused) => libvirt::compare_cpu(
            &hosts.destination,
            parsed.emulator.as_deref(),
            &parsed.arch,
            parsed.machine.as_deref(),
            &parsed.virt_type,
            cpu,
        ),
        _ => crate::facts::CpuVerdict::NotApplicable,
    };
    Ok(Facts {
        source,
        destination,
        vm,
        cpu,
    })
}

fn missing_vm(e: virt::error::Error, vm: &str, uri: &str) -> GatherError {
    if libvirt::is_missing(&e) {
        GatherError::NoVm {
            vm: vm.to_string(),
            uri: uri.to_string(),
        }
    } else {
        GatherError::Libvirt {
            uri: uri.to_string(),
            what: format!("look up domain {vm}"),
            source: e,
        }
    }
}

fn lv<T>(r: Result<T, virt::error::Error>, uri: &str, what: &str) -> Result<T, GatherError> {
    r.map_err(|source| GatherError::Libvirt {
        uri: uri.to_string(),
        what: what.to_string(),
        source,
    })
}

fn xmlerr<T>(r: Result<T, XmlError>, uri: &str) -> Result<T, GatherError> {
    r.map_err(|source| GatherError::Xml {
        uri: uri.to_string(),
        source,
    })
}

/// Facts about one host.
pub fn host_facts(conn: &Connect, uri: &str) -> Result<HostFacts, GatherError> {
    let caps = lv(conn.capabilities(), uri, "read capabilities")?;
    let host_uuid = xmlerr(xml::parse_host_uuid(&caps), uri)?;
    let hostname = conn.hostname().unwrap_or_default();
    let free_memory = lv(conn.free_memory(), uri, "read free memory")?;
    let mut pools = Vec::new();
    for pool in lv(conn.list_all_storage_pools(0), uri, "list storage pools")? {
        pools.push(pool_facts(&pool, uri)?);
    }
    let (networks, mut bridges) =
        match conn.list_all_networks(sys::VIR_CONNECT_LIST_NETWORKS_ACTIVE) {
            Ok(nets) => {
                let mut names = Vec::new();
                let mut bridges = Vec::new();
                for n in nets {
                    names.push(n.name().unwrap_or_default());
                    if let Ok(Some(b)) = n
                        .xml_desc(0)
                        .map(|x| xml::parse_network_bridge(&x).ok().flatten())
                    {
                        bridges.push(b);
                    }
                }
                (Some(names), Some(bridges))
            }
            // A libvirtd without the network driver (the lab's hosts).
            Err(_) => (None, None),
        };
    if let (Ok(ifaces), Some(bridges)) = (conn.list_interfaces(), bridges.as_mut()) {
        bridges.extend(ifaces);
    }
    let domains = lv(conn.list_all_domains(0), uri, "list domains")?
        .iter()
        .filter_map(|d| d.name().ok())
        .collect();
    Ok(HostFacts {
        uri: uri.to_string(),
        host_uuid,
        hostname,
        free_memory,
        pools,
        networks,
        bridges,
        domains,
    })
}

fn pool_facts(pool: &StoragePool, uri: &str) -> Result<PoolFacts, GatherError> {
    let name = lv(pool.name(), uri, "read pool name")?;
    let what = format!("read pool {name}");
    let parsed = xmlerr(xml::parse_pool(&lv(pool.xml_desc(0), uri, &what)?), uri)?;
    let active = lv(pool.is_active(), uri, &what)?;
    let volumes = if active {
        pool_volumes(pool, uri, &what)?
    } else {
        Vec::new()
    };
    let available = if active {
        lv(pool.info(), uri, &what)?.available
    } else {
        0
    };
    Ok(PoolFacts {
        name,
        kind: parsed.kind,
        path: parsed.path,
        active,
        available,
        volumes,
    })
}

/// Every volume of an active pool. Another client's refresh (a migration
/// running beside this one) rebuilds the pool's list, and a volume listed
/// a moment before may then be "not found" for an instant: the listing is
/// read again (three times at most) rather than taken as a failure.
fn pool_volumes(
    pool: &StoragePool,
    uri: &str,
    what: &str,
) -> Result<Vec<VolumeFacts>, GatherError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Files copied into the directory by hand become volumes too.
        let _ = pool.refresh(0);
        let read: Result<Vec<VolumeFacts>, GatherError> = lv(pool.list_all_volumes(0), uri, what)?
            .iter()
            .map(|vol| volume_facts(vol, uri))
            .collect();
        match read {
            Err(GatherError::Libvirt { source, .. })
                if attempt < 3 && libvirt::is_missing(&source) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(100 * attempt));
            }
            other => return other,
        }
    }
}

pub fn volume_facts(vol: &StorageVol, uri: &str) -> Result<VolumeFacts, GatherError> {
    let name = lv(vol.name(), uri, "read volume name")?;
    let what = format!("read volume {name}");
    let info = lv(vol.info(), uri, &what)?;
    let format = xmlerr(
        xml::parse_volume_format(&lv(vol.xml_desc(0), uri, &what)?),
        uri,
    )?;
    Ok(VolumeFacts {
        path: lv(vol.path(), uri, &what)?,
        name,
        capacity: info.capacity,
        allocation: info.allocation,
        format,
    })
}

fn vm_facts(
    conn: &Connect,
    uri: &str,
    dom: &Domain,
    host: &HostFacts,
) -> Result<(VmFacts, xml::XmlDomain), GatherError> {
    let name = lv(dom.name(), uri, "read domain name")?;
    let what = format!("read domain {name}");
    let state = lv(libvirt::vm_state(dom), uri, &what)?;
    let persistent = lv(dom.is_persistent(), uri, &what)?;
    let active = matches!(state, VmState::Running | VmState::Paused);
    let live_flags = if active {
        sys::VIR_DOMAIN_XML_MIGRATABLE
    } else {
        sys::VIR_DOMAIN_XML_MIGRATABLE | sys::VIR_DOMAIN_XML_INACTIVE
    };
    let xml_text = lv(dom.xml_desc(live_flags), uri, &what)?;
    let persistent_xml = if persistent {
        Some(lv(
            dom.xml_desc(sys::VIR_DOMAIN_XML_MIGRATABLE | sys::VIR_DOMAIN_XML_INACTIVE),
            uri,
            &what,
        )?)
    } else {
        None
    };
    let parsed = xmlerr(xml::parse_domain(&xml_text), uri)?;
    let disks = parsed
        .disks
        .iter()
        .map(|d| DiskFacts {
            target: d.target.clone(),
            device: d.device.clone(),
            volume: pool_volume(conn, &d.source, host),
            source: d.source.clone(),
            format: d.format.clone(),
            readonly: d.readonly,
            shareable: d.shareable,
        })
        .collect();
    let job_active = active && libvirt::job_active(dom).unwrap_or(false);
    let vm = VmFacts {
        name,
        uuid: lv(dom.uuid_string(), uri, &what)?,
        state,
        persistent,
        memory: parsed.memory,
        disks,
        interfaces: parsed.interfaces.clone(),
        lock: parsed.lock.clone(),
        job_active,
        xml: xml_text,
        persistent_xml,
    };
    Ok((vm, parsed))
}

/// The pool volume behind a disk source, from the facts already gathered
/// (falling back to libvirt's lookup by path for paths that differ only in
/// spelling, e.g. symlinks).
fn pool_volume(conn: &Connect, source: &DiskSource, host: &HostFacts) -> Option<PoolVolume> {
    let found = |pool: &PoolFacts, vol: &VolumeFacts| PoolVolume {
        pool: pool.name.clone(),
        volume: vol.clone(),
    };
    match source {
        DiskSource::File { path } | DiskSource::Block { dev: path } => {
            for pool in &host.pools {
                if let Some(v) = pool.volumes.iter().find(|v| &v.path == path) {
                    return Some(found(pool, v));
                }
            }
            let vol = conn.lookup_storage_vol_by_path(path).ok()?;
            let pool_name = vol.lookup_storage_pool().ok()?.name().ok()?;
            let vol_name = vol.name().ok()?;
            let pool = host.pools.iter().find(|p| p.name == pool_name)?;
            pool.volume(&vol_name).map(|v| found(pool, v))
        }
        DiskSource::Volume { pool, volume } => {
            let p = host.pools.iter().find(|p| &p.name == pool)?;
            p.volume(volume).map(|v| found(p, v))
        }
        DiskSource::Network { .. } | DiskSource::Empty => None,
    }
}
