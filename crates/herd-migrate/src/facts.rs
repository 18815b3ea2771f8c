//! What the planner knows: plain data gathered from the source, the VM and
//! the destination (see `gather` for where each fact comes from). No I/O here;
//! tests build these by hand.

use serde::{Deserialize, Serialize};

/// Everything the planner decides from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Facts {
    pub source: HostFacts,
    pub destination: HostFacts,
    pub vm: VmFacts,
    /// libvirt's hypervisor CPU comparison of the VM's CPU on the destination.
    pub cpu: CpuVerdict,
}

/// One hypervisor as libvirt reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostFacts {
    /// The libvirt URI the facts were gathered from.
    pub uri: String,
    /// libvirt's host UUID (`host_uuid` in libvirtd.conf, else the SMBIOS one).
    pub host_uuid: String,
    pub hostname: String,
    /// Free memory on the host, in bytes.
    pub free_memory: u64,
    pub pools: Vec<PoolFacts>,
    /// Names of the host's active libvirt networks; `None` when its libvirtd
    /// has no network driver (so they cannot be checked).
    pub networks: Option<Vec<String>>,
    /// Names of the bridges on the host (from its active networks and its
    /// interfaces); `None` when libvirt cannot list them.
    pub bridges: Option<Vec<String>>,
    /// Names of every domain defined or running on the host.
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolFacts {
    pub name: String,
    /// libvirt's pool type: `dir`, `fs`, `logical`, `disk`, ...
    pub kind: String,
    /// The pool's target path (`/var/lib/libvirt/images`, `/dev/vg0`).
    pub path: String,
    pub active: bool,
    /// Free bytes in the pool.
    pub available: u64,
    pub volumes: Vec<VolumeFacts>,
}

impl PoolFacts {
    /// Pools whose volumes are block devices take raw volumes only.
    pub fn holds_block_devices(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "logical" | "disk" | "iscsi" | "scsi" | "mpath"
        )
    }

    pub fn volume(&self, name: &str) -> Option<&VolumeFacts> {
        self.volumes.iter().find(|v| v.name == name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VolumeFacts {
    pub name: String,
    pub path: String,
    /// Size the guest sees, in bytes.
    pub capacity: u64,
    /// Bytes actually used on the host.
    pub allocation: u64,
    /// `qcow2`, `raw`, ...
    pub format: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    Running,
    Paused,
    ShutOff,
    /// Crashed, suspended to disk, in the middle of something else.
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VmFacts {
    pub name: String,
    pub uuid: String,
    pub state: VmState,
    pub persistent: bool,
    /// Maximum memory of the domain, in bytes.
    pub memory: u64,
    pub disks: Vec<DiskFacts>,
    pub interfaces: Vec<InterfaceFacts>,
    /// A herd migration lock found in the domain's metadata.
    pub lock: Option<LockFacts>,
    /// libvirt reports a job (a migration, a dump, ...) running on the domain.
    pub job_active: bool,
    /// The domain's live migratable XML (the inactive one when shut off),
    /// the base of any destination XML.
    pub xml: String,
    /// The persistent definition (inactive, migratable), when the domain has one.
    pub persistent_xml: Option<String>,
}

/// A herd lock on a VM, kept in the domain's metadata so that it survives a
/// crash of the herd process that took it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockFacts {
    /// What took the lock, e.g. `herd pid 4242 on admin1`.
    pub owner: String,
    /// Where the VM was going.
    pub destination: String,
    /// Unix seconds.
    pub since: u64,
    /// Destination volumes (`pool/name`) the locking process created so far:
    /// what `--break-lock` deletes when that process died mid-way.
    #[serde(default)]
    pub created: Vec<String>,
    /// Where the VM came from (empty in locks of older herds).
    #[serde(default)]
    pub source: String,
    /// Source volumes (`pool/name`) the move deletes once the VM is on the
    /// destination: what `--break-lock` on the destination finishes when
    /// the process died after the move.
    #[serde(default)]
    pub finish: Vec<String>,
    /// The inventory's `hypervisor` change `(from, to)` the move ends with.
    #[serde(default)]
    pub inventory: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiskFacts {
    /// Guest device name (`vda`), what libvirt's `migrate_disks` names.
    pub target: String,
    /// `disk`, `cdrom`, `floppy`, `lun`.
    pub device: String,
    pub source: DiskSource,
    /// Driver format (`qcow2`, `raw`).
    pub format: String,
    pub readonly: bool,
    pub shareable: bool,
    /// The storage pool volume behind a file or block source, when there is one.
    pub volume: Option<PoolVolume>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum DiskSource {
    File {
        path: String,
    },
    Block {
        dev: String,
    },
    /// `<disk type='volume'>`: already names its pool and volume.
    Volume {
        pool: String,
        volume: String,
    },
    /// rbd, iscsi, nbd...: shared storage, nothing to copy.
    Network {
        protocol: String,
    },
    /// An empty CD-ROM drive.
    Empty,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolVolume {
    pub pool: String,
    pub volume: VolumeFacts,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum InterfaceFacts {
    Network {
        network: String,
    },
    Bridge {
        bridge: String,
    },
    /// user, direct, ... : nothing the destination must provide by name.
    Other {
        kind: String,
    },
}

/// Result of `virConnectCompareHypervisorCPU` on the destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum CpuVerdict {
    Identical,
    Superset,
    Incompatible {
        detail: String,
    },
    /// The VM asks for no specific CPU model (or host-passthrough), nothing to compare.
    NotApplicable,
    /// libvirt could not compare (e.g. no CPU driver for this guest type).
    Unknown {
        detail: String,
    },
}
