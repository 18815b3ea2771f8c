//! The bridge between the inventory and the hypervisors: what `herd vm` and
//! `herd hv` need from both at once. herd-virt and herd-migrate must not
//! know the inventory and herd-client knows no libvirt; this crate knows
//! both, and prints nothing and parses no command line.
//!
//! - [`drift`] is the pure decision of `herd vm sync`: libvirt's
//!   [`herd_virt::DomainFacts`] on the checked hypervisors against the
//!   inventory's VM objects, as a list of [`Drift`]s, and which domains a
//!   repair records.
//! - [`inventory`] reads and writes the inventory over
//!   [`herd_client::Client`]: hypervisors by name or URI, registration, the
//!   [`Recorder`] that keeps a VM's object equal to what libvirt says, and
//!   [`MoveVm`], herd-migrate's [`herd_migrate::exec::Inventory`] (the
//!   compare-and-swap of the VM's `hypervisor` at the end of a migration).
//! - [`migration`] plans a VM onto one destination or the roomiest of
//!   several ([`Move`]), runs plans with the inventory step attached
//!   ([`Runner`]), and evacuates a hypervisor VM by VM ([`Evacuation`]).
//!
//! Errors are one [`FleetError`]; the binary maps it to exit codes.

pub mod drift;
mod error;
pub mod inventory;
pub mod migration;

pub use drift::{drift, vm_attributes, Drift, Observed, RecordedVm};
pub use error::FleetError;
pub use inventory::{MoveVm, Recorder, Registration};
pub use migration::{Evacuated, Evacuation, Move, Planned, Runner, Status};

/// A hypervisor as the inventory names it, with its libvirt URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hv {
    pub name: String,
    pub uri: String,
}

/// Whether a hypervisor was given as a libvirt URI (`qemu:///system`,
/// `qemu+ssh://root@hv1/system`) rather than an inventory hostname.
pub fn is_uri(given: &str) -> bool {
    given.contains("://")
}

/// The domains of each hypervisor, through herd-virt; those that cannot be
/// opened or listed come back apart with the reason.
pub fn observe(hypervisors: &[Hv]) -> (Vec<Observed>, Vec<(String, herd_virt::VirtError)>) {
    let mut observed = Vec::new();
    let mut unreachable = Vec::new();
    for hv in hypervisors {
        match herd_virt::Hypervisor::open(Some(&hv.uri)).and_then(|h| h.domains()) {
            Ok(domains) => observed.push(Observed {
                hypervisor: hv.name.clone(),
                domains,
            }),
            Err(e) => unreachable.push((hv.name.clone(), e)),
        }
    }
    (observed, unreachable)
}
