//! Errors of herd-virt, each saying what to do next.

/// Everything herd-virt can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum VirtError {
    #[error("cannot reach libvirt at {uri}: {detail}\n  check that libvirtd runs there and that the URI (host, socket=, keyfile=) is right")]
    Unreachable { uri: String, detail: String },
    #[error("{0:?} is not a libvirt URI (expected e.g. qemu:///system, qemu+ssh://hv1/system, qemu+unix:///system?socket=PATH)")]
    BadUri(String),
    #[error("{0:?} is not a valid name: use 1-64 letters, digits, '.', '_' or '-', not starting with '.' or '-'")]
    BadName(String),
    #[error("{0:?} is not a size: use a number with an optional unit, e.g. 512M, 10G, 1.5GiB, 2000000000")]
    BadSize(String),
    #[error("no storage pool {pool:?} on {uri} (pools there: {}); run `herd hv bootstrap {uri}` to create 'default', or pass --pool", list(.available))]
    PoolNotFound {
        uri: String,
        pool: String,
        available: Vec<String>,
    },
    #[error("storage pool {pool:?} on {uri} is not active; start it with `virsh -c '{uri}' pool-start {pool}` or run `herd hv bootstrap {uri}`")]
    PoolInactive { uri: String, pool: String },
    #[error("storage pool {pool:?} on {uri} has {} free, {name} needs {} ({target}); choose a smaller disk, another pool or hypervisor, or free space", crate::size::format_size(*.free), crate::size::format_size(*.needed))]
    InsufficientSpace {
        uri: String,
        pool: String,
        name: String,
        target: String,
        free: u64,
        needed: u64,
    },
    #[error("volume {volume:?} already exists in pool {pool:?} on {uri}; herd never overwrites a disk: delete it (`virsh -c '{uri}' vol-delete {volume} --pool {pool}`) or choose another VM name")]
    VolumeExists {
        uri: String,
        pool: String,
        volume: String,
    },
    #[error("a domain named {name:?} already exists on {uri}; choose another name or delete it with `herd vm delete {name} --on '{uri}'`")]
    DomainExists { uri: String, name: String },
    #[error("no domain named {name:?} on {uri}; `herd vm list --on '{uri}'` shows the ones there")]
    DomainNotFound { uri: String, name: String },
    #[error("no libvirt network {network:?} on {uri}{}; run `herd hv bootstrap {uri}`, or use --bridge, --macvtap or --no-network", if *.supported { "" } else { " (its libvirtd has no network driver)" })]
    NetworkNotFound {
        uri: String,
        network: String,
        supported: bool,
    },
    #[error("{name} on {uri} is {state}; {hint}")]
    WrongState {
        uri: String,
        name: String,
        state: String,
        hint: String,
    },
    #[error("{name} on {uri} did not shut down within {secs} s (a guest without ACPI support ignores the request); use --force to power it off")]
    ShutdownTimeout {
        uri: String,
        name: String,
        secs: u64,
    },
    #[error("{uri} cannot run KVM guests (no usable /dev/kvm there); use --accel tcg, or --accel auto to fall back")]
    KvmUnavailable { uri: String },
    #[error("libvirt on {uri} failed to {action}: {detail}")]
    Libvirt {
        uri: String,
        action: String,
        detail: String,
    },
    #[error("unexpected XML from libvirt on {uri} ({what}): {detail}")]
    BadXml {
        uri: String,
        what: String,
        detail: String,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}
