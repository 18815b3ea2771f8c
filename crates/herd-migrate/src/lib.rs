//! Live migration without shared storage. The central type is [`plan::Plan`]:
//! [`plan::plan`] is a pure function from [`facts::Facts`] (gathered by
//! [`gather`]) to a plan of ordered steps or a [`plan::Refusal`] listing every
//! reason at once; [`exec`] runs a plan against libvirt as an explicit state
//! machine and undoes completed steps on failure or interruption.
//!
//! This crate knows libvirt (through the `virt` crate) but not the inventory:
//! callers hand it an [`exec::Inventory`] implementation when one is configured.

pub mod exec;
pub mod facts;
pub mod gather;
pub mod libvirt;
pub mod machine;
pub mod place;
pub mod plan;
pub mod testguest;
pub mod xml;
