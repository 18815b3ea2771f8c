//! herd's libvirt driver: hypervisor bootstrap, domains and volumes, their
//! XML. Only this crate (and herd-migrate's executor) talk to libvirt. It
//! knows nothing about the inventory or the command line.
//!
//! - [`Hypervisor`] is one libvirt connection (any URI; `LIBVIRT_DEFAULT_URI`
//!   honoured as virsh does) with reads ([`Hypervisor::facts`],
//!   [`Hypervisor::pools`], [`Hypervisor::domains`], [`Hypervisor::domain`],
//!   [`Hypervisor::volumes`]) and changes ([`Hypervisor::bootstrap`],
//!   [`Hypervisor::create_volume`], [`Hypervisor::create_vm`],
//!   [`Hypervisor::start`], [`Hypervisor::stop`], [`Hypervisor::delete`]).
//! - [`xml`] generates domain, volume, pool and network XML and reads
//!   libvirt's back: pure functions with snapshot tests.
//! - [`check`] and [`bootstrap::plan`] are the pure decisions: every refusal
//!   (name taken, pool missing or full, volume exists) is decided there,
//!   before anything is created.
//! - Errors are one [`VirtError`] enum whose messages say what to do next.
//!
//! Volumes are always created sparse, and an existing volume is never
//! overwritten.

pub mod bootstrap;
pub mod check;
mod error;
pub mod facts;
mod hypervisor;
pub mod size;
mod uri;
pub mod xml;

pub use bootstrap::{BootstrapOptions, BootstrapReport, Step};
pub use error::VirtError;
pub use facts::{
    Accel, DiskFacts, DomainFacts, DomainState, HostFacts, NetworkFacts, NicFacts, PoolFacts,
    VolumeFacts,
};
pub use hypervisor::{Deleted, Hypervisor, Stop, VmPlan, VmSpec};
pub use size::{format_size, parse_size};
pub use uri::LibvirtUri;
pub use xml::{DomainSpec, DomainType, Nic, VolumeFormat, VolumeSpec};
