//! Plain data about hypervisors, pools, volumes and domains, as
//! [`crate::Hypervisor`] reads them from libvirt. Serializable for `--json`.

use serde::Serialize;

/// KVM (hardware) or TCG (emulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

/// One hypervisor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostFacts {
    /// The URI libvirt reports for the connection.
    pub uri: String,
    pub hostname: String,
    /// `9.0.0`.
    pub libvirt_version: String,
    /// QEMU's version (`7.2.0`), from the hypervisor driver.
    pub qemu_version: String,
    /// KVM when x86_64 guests can use it, else TCG.
    pub accel: Accel,
    /// libvirt's host UUID; two hosts with the same one cannot migrate
    /// between each other.
    pub host_uuid: String,
    pub arch: String,
    /// The host CPU model libvirt reports (`Skylake-Client-IBRS`).
    pub cpu_model: Option<String>,
    pub cpus: u32,
    /// Memory in bytes.
    pub memory: u64,
    pub free_memory: u64,
    pub pools: Vec<PoolFacts>,
    /// `None` when the host's libvirtd has no network driver.
    pub networks: Option<Vec<NetworkFacts>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolFacts {
    pub name: String,
    /// libvirt's pool type: `dir`, `fs`, `logical`, ...
    pub kind: String,
    /// Target path (`/var/lib/libvirt/images`).
    pub path: String,
    pub active: bool,
    pub autostart: bool,
    /// Bytes; zero while the pool is inactive.
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkFacts {
    pub name: String,
    pub bridge: Option<String>,
    pub active: bool,
    pub autostart: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeFacts {
    pub pool: String,
    pub name: String,
    pub path: String,
    /// Size the guest sees, bytes.
    pub capacity: u64,
    /// Bytes used on the host (small for a sparse volume).
    pub allocation: u64,
    pub format: Option<String>,
}

/// A domain's run state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainState {
    Running,
    Paused,
    Shutdown,
    Shutoff,
    Crashed,
    Suspended,
    Other,
}

impl DomainState {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainState::Running => "running",
            DomainState::Paused => "paused",
            DomainState::Shutdown => "shutting down",
            DomainState::Shutoff => "shut off",
            DomainState::Crashed => "crashed",
            DomainState::Suspended => "suspended",
            DomainState::Other => "unknown",
        }
    }

    /// A QEMU process exists for the domain.
    pub fn is_active(self) -> bool {
        !matches!(self, DomainState::Shutoff | DomainState::Crashed)
    }
}

impl std::fmt::Display for DomainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One disk of a domain, with its volume when it lives in a pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskFacts {
    /// `vda`.
    pub target: String,
    /// `disk`, `cdrom`.
    pub device: String,
    pub path: Option<String>,
    /// The pool holding the volume, when libvirt knows it.
    pub pool: Option<String>,
    pub volume: Option<String>,
    pub format: Option<String>,
    pub capacity: Option<u64>,
    pub allocation: Option<u64>,
}

/// One network interface of a domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NicFacts {
    /// `network`, `bridge`, `direct` (macvtap), `user`, ...
    pub kind: String,
    /// Network name, bridge or host device.
    pub source: Option<String>,
    /// The bridge the interface is plugged into, when known.
    pub bridge: Option<String>,
    pub mac: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainFacts {
    pub name: String,
    pub uuid: String,
    pub state: DomainState,
    pub persistent: bool,
    pub autostart: bool,
    /// `kvm` or `qemu` (TCG).
    pub domain_type: String,
    /// Bytes.
    pub memory: u64,
    pub vcpus: u32,
    pub disks: Vec<DiskFacts>,
    pub nics: Vec<NicFacts>,
}

impl DomainFacts {
    /// Sum of the capacities of its disks (not cdroms), bytes.
    pub fn disk_capacity(&self) -> u64 {
        self.disks
            .iter()
            .filter(|d| d.device == "disk")
            .filter_map(|d| d.capacity)
            .sum()
    }
}

/// Turn libvirt's `major * 1_000_000 + minor * 1000 + micro` into `M.m.u`.
pub fn version_string(v: u32) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libvirt_versions_read_as_dotted() {
        assert_eq!(version_string(9_000_000), "9.0.0");
        assert_eq!(version_string(7_002_011), "7.2.11");
    }
}
