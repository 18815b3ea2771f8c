//! [`Hypervisor`]: one libvirt connection and everything herd does over it.

use crate::facts::*;
use crate::xml::{self, DomainSpec, Nic, VolumeFormat, VolumeSpec};
use crate::{check, LibvirtUri, VirtError};
use std::time::{Duration, Instant};
use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::ErrorNumber;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

/// A connection to one hypervisor's libvirtd. Closed on drop.
pub struct Hypervisor {
    conn: Connect,
    uri: String,
}

/// A new VM: one disk in a pool, one (or no) interface.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VmSpec {
    pub name: String,
    /// Bytes.
    pub memory: u64,
    pub vcpus: u32,
    /// Capacity of its disk (`vda`), bytes.
    pub disk: u64,
    pub format: VolumeFormat,
    pub pool: String,
    pub nic: Nic,
    /// `None`: KVM when the host has it, else TCG.
    pub accel: Option<Accel>,
}

/// What creating a VM will do: the volume, then the domain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VmPlan {
    pub pool: String,
    pub volume: VolumeSpec,
    pub domain: DomainSpec,
}

/// How to stop a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// ACPI shutdown, waiting up to this long for the guest to power off.
    Graceful(Duration),
    /// Power off at once (`virsh destroy`).
    Force,
}

/// What deleting a VM removed and kept.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Deleted {
    pub name: String,
    /// `pool/volume` of each deleted disk.
    pub volumes_deleted: Vec<String>,
    /// Disks left in place (`--keep-disks`, or not in a pool).
    pub disks_kept: Vec<String>,
}

impl Hypervisor {
    /// Connect to `uri`, or to what virsh would connect to without `-c`
    /// (`LIBVIRT_DEFAULT_URI`, then libvirt's own default).
    pub fn open(uri: Option<&str>) -> Result<Hypervisor, VirtError> {
        let resolved = LibvirtUri::resolve(uri)?;
        // libvirt prints every error to stderr unless told otherwise; herd
        // reports them itself.
        virt::error::clear_error_callback();
        let given = resolved.as_ref().map(|u| u.as_str());
        let conn = Connect::open(given).map_err(|e| VirtError::Unreachable {
            uri: given.unwrap_or("libvirt's default URI").to_string(),
            detail: e.message().to_string(),
        })?;
        let uri = match given {
            Some(u) => u.to_string(),
            None => conn.uri().unwrap_or_else(|_| "(default)".to_string()),
        };
        Ok(Hypervisor { conn, uri })
    }

    /// The URI as given (or as libvirt reports it when none was).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The underlying libvirt connection, for what herd-virt does not wrap.
    pub fn connect(&self) -> &Connect {
        &self.conn
    }

    fn fail(&self, action: impl Into<String>) -> impl FnOnce(virt::error::Error) -> VirtError + '_ {
        let action = action.into();
        move |e| VirtError::Libvirt {
            uri: self.uri.clone(),
            action,
            detail: e.message().to_string(),
        }
    }

    fn bad_xml(&self, what: &str) -> impl FnOnce(String) -> VirtError + '_ {
        let what = what.to_string();
        move |detail| VirtError::BadXml {
            uri: self.uri.clone(),
            what,
            detail,
        }
    }

    /// Versions, acceleration, identity, CPU, memory, pools and networks.
    pub fn facts(&self) -> Result<HostFacts, VirtError> {
        let caps_xml = self
            .conn
            .capabilities()
            .map_err(self.fail("read capabilities"))?;
        let caps = xml::parse_capabilities(&caps_xml).map_err(self.bad_xml("capabilities"))?;
        let node = self.conn.node_info().map_err(self.fail("read node info"))?;
        Ok(HostFacts {
            uri: self.uri.clone(),
            hostname: self
                .conn
                .hostname()
                .map_err(self.fail("read the hostname"))?,
            libvirt_version: version_string(
                self.conn
                    .lib_version()
                    .map_err(self.fail("read libvirt's version"))?,
            ),
            qemu_version: version_string(
                self.conn
                    .hyp_version()
                    .map_err(self.fail("read QEMU's version"))?,
            ),
            accel: if caps.kvm { Accel::Kvm } else { Accel::Tcg },
            host_uuid: caps.host_uuid,
            arch: caps.arch,
            cpu_model: caps.cpu_model,
            cpus: node.cpus,
            memory: node.memory.saturating_mul(1024),
            free_memory: self
                .conn
                .free_memory()
                .map_err(self.fail("read free memory"))?,
            pools: self.pools()?,
            networks: self.networks()?,
        })
    }

    /// KVM can run x86_64 guests here.
    pub fn has_kvm(&self) -> Result<bool, VirtError> {
        let caps_xml = self
            .conn
            .capabilities()
            .map_err(self.fail("read capabilities"))?;
        Ok(xml::parse_capabilities(&caps_xml)
            .map_err(self.bad_xml("capabilities"))?
            .kvm)
    }

    /// Every storage pool (empty when the host has no storage driver).
    pub fn pools(&self) -> Result<Vec<PoolFacts>, VirtError> {
        let pools = match self.conn.list_all_storage_pools(0) {
            Ok(p) => p,
            Err(e) if is(&e, ErrorNumber::NoSupport) => return Ok(Vec::new()),
            Err(e) => return Err(self.fail("list storage pools")(e)),
        };
        let mut out: Vec<PoolFacts> = pools
            .iter()
            .map(|p| self.pool_facts(p))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One pool by name.
    pub fn pool(&self, name: &str) -> Result<PoolFacts, VirtError> {
        let pool = self.lookup_pool(name)?;
        self.pool_facts(&pool)
    }

    fn lookup_pool(&self, name: &str) -> Result<StoragePool, VirtError> {
        match self.conn.lookup_storage_pool_by_name(name) {
            Ok(p) => Ok(p),
            Err(e) if is(&e, ErrorNumber::NoStoragePool) || is(&e, ErrorNumber::NoSupport) => {
                Err(VirtError::PoolNotFound {
                    uri: self.uri.clone(),
                    pool: name.to_string(),
                    available: self.pools()?.into_iter().map(|p| p.name).collect(),
                })
            }
            Err(e) => Err(self.fail(format!("look up pool {name}"))(e)),
        }
    }

    fn pool_facts(&self, pool: &StoragePool) -> Result<PoolFacts, VirtError> {
        let name = pool.name().map_err(self.fail("read a pool's name"))?;
        let desc = pool
            .xml_desc(0)
            .map_err(self.fail(format!("read pool {name}")))?;
        let (kind, path) = xml::parse_pool(&desc).map_err(self.bad_xml("pool XML"))?;
        let info = pool
            .info()
            .map_err(self.fail(format!("read pool {name}'s size")))?;
        Ok(PoolFacts {
            kind,
            path,
            active: pool
                .is_active()
                .map_err(self.fail(format!("read pool {name}")))?,
            autostart: pool
                .autostart()
                .map_err(self.fail(format!("read pool {name}")))?,
            capacity: info.capacity,
            allocation: info.allocation,
            available: info.available,
            name,
        })
    }

    /// Every libvirt network; `None` when the host has no network driver.
    pub fn networks(&self) -> Result<Option<Vec<NetworkFacts>>, VirtError> {
        let nets = match self.conn.list_all_networks(0) {
            Ok(n) => n,
            Err(e) if is(&e, ErrorNumber::NoSupport) => return Ok(None),
            Err(e) => return Err(self.fail("list networks")(e)),
        };
        let mut out = Vec::new();
        for n in nets {
            let name = n.name().map_err(self.fail("read a network's name"))?;
            out.push(NetworkFacts {
                bridge: n.bridge_name().ok(),
                active: n
                    .is_active()
                    .map_err(self.fail(format!("read network {name}")))?,
                autostart: n
                    .autostart()
                    .map_err(self.fail(format!("read network {name}")))?,
                name,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(out))
    }

    /// The volumes of a pool.
    pub fn volumes(&self, pool: &str) -> Result<Vec<VolumeFacts>, VirtError> {
        let p = self.lookup_pool(pool)?;
        let vols = p
            .list_all_volumes(0)
            .map_err(self.fail(format!("list volumes of pool {pool}")))?;
        let mut out: Vec<VolumeFacts> = vols
            .iter()
            .map(|v| self.volume_facts(pool, v))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn volume_facts(&self, pool: &str, vol: &StorageVol) -> Result<VolumeFacts, VirtError> {
        let name = vol.name().map_err(self.fail("read a volume's name"))?;
        let info = vol
            .info()
            .map_err(self.fail(format!("read volume {name}")))?;
        let desc = vol
            .xml_desc(0)
            .map_err(self.fail(format!("read volume {name}")))?;
        Ok(VolumeFacts {
            pool: pool.to_string(),
            path: vol
                .path()
                .map_err(self.fail(format!("read volume {name}'s path")))?,
            capacity: info.capacity,
            allocation: info.allocation,
            format: xml::parse_volume_format(&desc).map_err(self.bad_xml("volume XML"))?,
            name,
        })
    }

    /// Create a sparse volume. Refuses (never overwrites) an existing
    /// volume, and refuses a capacity larger than the pool's free space.
    pub fn create_volume(&self, pool: &str, spec: &VolumeSpec) -> Result<VolumeFacts, VirtError> {
        let p = self.lookup_pool(pool)?;
        if p.is_active().unwrap_or(false) {
            // Free space as of now, not as of the last refresh.
            p.refresh(0)
                .map_err(self.fail(format!("refresh pool {pool}")))?;
        }
        let facts = self.pool_facts(&p)?;
        let exists = p.lookup_storage_vol_by_name(&spec.name).is_ok();
        check::volume_fits(&self.uri, &facts, spec, exists, "disk")?;
        let vol = StorageVol::create_xml(&p, &xml::volume_xml(spec), 0).map_err(|e| {
            if is(&e, ErrorNumber::StorageVolExist) {
                VirtError::VolumeExists {
                    uri: self.uri.clone(),
                    pool: pool.to_string(),
                    volume: spec.name.clone(),
                }
            } else {
                self.fail(format!("create volume {} in pool {pool}", spec.name))(e)
            }
        })?;
        self.volume_facts(pool, &vol)
    }

    /// Delete a volume.
    pub fn delete_volume(&self, pool: &str, name: &str) -> Result<(), VirtError> {
        let p = self.lookup_pool(pool)?;
        let vol = p
            .lookup_storage_vol_by_name(name)
            .map_err(self.fail(format!("look up volume {name} in pool {pool}")))?;
        vol.delete(0)
            .map_err(self.fail(format!("delete volume {name} from pool {pool}")))
    }

    /// Every domain, running or only defined, by name.
    pub fn domains(&self) -> Result<Vec<DomainFacts>, VirtError> {
        let doms = self
            .conn
            .list_all_domains(0)
            .map_err(self.fail("list domains"))?;
        let mut out: Vec<DomainFacts> = doms
            .iter()
            .map(|d| self.domain_facts(d))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One domain by name.
    pub fn domain(&self, name: &str) -> Result<DomainFacts, VirtError> {
        let dom = self.lookup_domain(name)?;
        self.domain_facts(&dom)
    }

    fn lookup_domain(&self, name: &str) -> Result<Domain, VirtError> {
        self.conn.lookup_domain_by_name(name).map_err(|e| {
            if is(&e, ErrorNumber::NoDomain) {
                VirtError::DomainNotFound {
                    uri: self.uri.clone(),
                    name: name.to_string(),
                }
            } else {
                self.fail(format!("look up domain {name}"))(e)
            }
        })
    }

    fn domain_exists(&self, name: &str) -> Result<bool, VirtError> {
        match self.lookup_domain(name) {
            Ok(_) => Ok(true),
            Err(VirtError::DomainNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn domain_state(&self, dom: &Domain) -> Result<DomainState, VirtError> {
        use virt::domain::DomainState as S;
        let (state, _) = dom.state().map_err(self.fail("read a domain's state"))?;
        Ok(match state.unwrap_or(S::NoState) {
            S::Running | S::Blocked => DomainState::Running,
            S::Paused => DomainState::Paused,
            S::Shutdown => DomainState::Shutdown,
            S::Shutoff => DomainState::Shutoff,
            S::Crashed => DomainState::Crashed,
            S::PMSuspended => DomainState::Suspended,
            S::NoState => DomainState::Other,
        })
    }

    fn domain_facts(&self, dom: &Domain) -> Result<DomainFacts, VirtError> {
        let name = dom.name().map_err(self.fail("read a domain's name"))?;
        let desc = dom
            .xml_desc(0)
            .map_err(self.fail(format!("read domain {name}")))?;
        let parsed = xml::parse_domain(&desc).map_err(self.bad_xml("domain XML"))?;
        let disks = parsed.disks.iter().map(|d| self.disk_facts(d)).collect();
        let nets = self.networks().ok().flatten().unwrap_or_default();
        let nics = parsed
            .interfaces
            .iter()
            .map(|i| NicFacts {
                kind: i.kind.clone(),
                source: i.source.clone(),
                bridge: i.bridge.clone().or_else(|| {
                    (i.kind == "network")
                        .then(|| nets.iter().find(|n| Some(&n.name) == i.source.as_ref()))
                        .flatten()
                        .and_then(|n| n.bridge.clone())
                }),
                mac: i.mac.clone(),
                model: i.model.clone(),
            })
            .collect();
        Ok(DomainFacts {
            state: self.domain_state(dom)?,
            persistent: dom
                .is_persistent()
                .map_err(self.fail(format!("read domain {name}")))?,
            autostart: dom.autostart().unwrap_or(false),
            uuid: parsed.uuid,
            domain_type: parsed.domain_type,
            memory: parsed.memory,
            vcpus: parsed.vcpus,
            disks,
            nics,
            name,
        })
    }

    /// A disk with its volume's facts when libvirt knows the volume.
    fn disk_facts(&self, d: &xml::XmlDisk) -> DiskFacts {
        let vol = match (&d.pool, &d.volume, &d.path) {
            (Some(pool), Some(volume), _) => self
                .conn
                .lookup_storage_pool_by_name(pool)
                .and_then(|p| p.lookup_storage_vol_by_name(volume))
                .ok(),
            (_, _, Some(path)) => self.conn.lookup_storage_vol_by_path(path).ok(),
            _ => None,
        };
        let facts = vol.and_then(|v| {
            let pool = v.lookup_storage_pool().ok()?.name().ok()?;
            self.volume_facts(&pool, &v).ok()
        });
        DiskFacts {
            target: d.target.clone(),
            device: d.device.clone(),
            path: facts
                .as_ref()
                .map(|f| f.path.clone())
                .or_else(|| d.path.clone()),
            pool: facts.as_ref().map(|f| f.pool.clone()).or(d.pool.clone()),
            volume: facts.as_ref().map(|f| f.name.clone()).or(d.volume.clone()),
            format: d
                .format
                .clone()
                .or_else(|| facts.as_ref().and_then(|f| f.format.clone())),
            capacity: facts.as_ref().map(|f| f.capacity),
            allocation: facts.as_ref().map(|f| f.allocation),
        }
    }

    /// Check a new VM against the host without changing anything: the name
    /// is free, the network exists, the acceleration is available, the pool
    /// is active with room for the disk, and no volume has the disk's name.
    pub fn plan_vm(&self, spec: &VmSpec) -> Result<VmPlan, VirtError> {
        check::name(&spec.name)?;
        if self.domain_exists(&spec.name)? {
            return Err(VirtError::DomainExists {
                uri: self.uri.clone(),
                name: spec.name.clone(),
            });
        }
        if let Nic::Network(net) = &spec.nic {
            let networks = self.networks()?;
            check::network_exists(&self.uri, net, networks.as_deref())?;
        }
        let domain_type = check::domain_type(&self.uri, spec.accel, self.has_kvm()?)?;
        let volume = VolumeSpec {
            name: format!("{}.{}", spec.name, spec.format.as_str()),
            capacity: spec.disk,
            format: spec.format,
        };
        let p = self.lookup_pool(&spec.pool)?;
        if p.is_active().unwrap_or(false) {
            // Free space as of now, not as of the last refresh.
            p.refresh(0)
                .map_err(self.fail(format!("refresh pool {}", spec.pool)))?;
        }
        let pool = self.pool_facts(&p)?;
        let exists = p.lookup_storage_vol_by_name(&volume.name).is_ok();
        check::volume_fits(&self.uri, &pool, &volume, exists, "vda")?;
        let domain = DomainSpec {
            name: spec.name.clone(),
            domain_type,
            memory: spec.memory,
            vcpus: spec.vcpus,
            disks: vec![xml::DiskSpec {
                target: "vda".to_string(),
                path: format!("{}/{}", pool.path.trim_end_matches('/'), volume.name),
                format: spec.format,
            }],
            nic: spec.nic.clone(),
        };
        Ok(VmPlan {
            pool: spec.pool.clone(),
            volume,
            domain,
        })
    }

    /// Create a VM: its disk as a sparse volume in `spec.pool`, then the
    /// domain, defined persistently (not started). Every check
    /// ([`Hypervisor::plan_vm`]) runs before anything is created; if
    /// defining fails the volume is deleted again.
    pub fn create_vm(&self, spec: &VmSpec) -> Result<DomainFacts, VirtError> {
        let mut plan = self.plan_vm(spec)?;
        let vol = self.create_volume(&plan.pool, &plan.volume)?;
        plan.domain.disks[0].path = vol.path.clone();
        match self.define(&plan.domain) {
            Ok(facts) => Ok(facts),
            Err(e) => {
                let _ = self.delete_volume(&plan.pool, &vol.name);
                Err(e)
            }
        }
    }

    /// Define a domain persistently from a spec (its disks must exist).
    pub fn define(&self, spec: &DomainSpec) -> Result<DomainFacts, VirtError> {
        let dom = self
            .conn
            .define_domain_xml(&xml::domain_xml(spec))
            .map_err(|e| {
                if is(&e, ErrorNumber::DomExist) || e.message().contains("already exists") {
                    VirtError::DomainExists {
                        uri: self.uri.clone(),
                        name: spec.name.clone(),
                    }
                } else {
                    self.fail(format!("define domain {}", spec.name))(e)
                }
            })?;
        self.domain_facts(&dom)
    }

    /// Start a defined domain.
    pub fn start(&self, name: &str) -> Result<DomainFacts, VirtError> {
        let dom = self.lookup_domain(name)?;
        let state = self.domain_state(&dom)?;
        if state.is_active() {
            return Err(self.wrong_state(name, state, "nothing to do"));
        }
        dom.create().map_err(self.fail(format!("start {name}")))?;
        self.domain_facts(&dom)
    }

    /// Stop a running domain.
    pub fn stop(&self, name: &str, how: Stop) -> Result<DomainFacts, VirtError> {
        let dom = self.lookup_domain(name)?;
        let state = self.domain_state(&dom)?;
        if !state.is_active() {
            return Err(self.wrong_state(name, state, "nothing to do"));
        }
        match how {
            Stop::Force => dom
                .destroy()
                .map_err(self.fail(format!("power off {name}")))?,
            Stop::Graceful(timeout) => {
                dom.shutdown()
                    .map_err(self.fail(format!("shut down {name}")))?;
                let start = Instant::now();
                while self.domain_state(&dom)?.is_active() {
                    if start.elapsed() >= timeout {
                        return Err(VirtError::ShutdownTimeout {
                            uri: self.uri.clone(),
                            name: name.to_string(),
                            secs: timeout.as_secs(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        self.domain_facts(&dom)
    }

    /// Undefine a domain and delete the volumes of its disks (unless
    /// `keep_disks`). A running domain is refused unless `force`, which
    /// powers it off first.
    pub fn delete(&self, name: &str, keep_disks: bool, force: bool) -> Result<Deleted, VirtError> {
        let dom = self.lookup_domain(name)?;
        let facts = self.domain_facts(&dom)?;
        if facts.state.is_active() {
            if !force {
                return Err(self.wrong_state(
                    name,
                    facts.state,
                    &format!("stop it first (`herd vm stop {name}`) or pass --force"),
                ));
            }
            dom.destroy()
                .map_err(self.fail(format!("power off {name}")))?;
        }
        let flags = virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | virt::sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | virt::sys::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
        dom.undefine_flags(flags)
            .map_err(self.fail(format!("undefine {name}")))?;
        let mut out = Deleted {
            name: name.to_string(),
            ..Deleted::default()
        };
        for d in facts.disks.iter().filter(|d| d.device == "disk") {
            let label = d
                .path
                .clone()
                .unwrap_or_else(|| format!("{} (no source)", d.target));
            match (&d.pool, &d.volume, keep_disks) {
                (Some(pool), Some(volume), false) => {
                    self.delete_volume(pool, volume)?;
                    out.volumes_deleted.push(format!("{pool}/{volume}"));
                }
                _ => out.disks_kept.push(label),
            }
        }
        Ok(out)
    }

    fn wrong_state(&self, name: &str, state: DomainState, hint: &str) -> VirtError {
        VirtError::WrongState {
            uri: self.uri.clone(),
            name: name.to_string(),
            state: state.to_string(),
            hint: hint.to_string(),
        }
    }
}

/// A libvirt error has this code.
pub(crate) fn is(e: &virt::error::Error, code: ErrorNumber) -> bool {
    e.code().is_known_and(|c| c == code)
}
