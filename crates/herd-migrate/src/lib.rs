//! Live migration without shared storage. The central type is [`plan::Plan`]:
//! [`plan::plan`] is a pure function from [`facts::Facts`] (gathered from
//! libvirt by [`gather`]) to a plan of ordered steps, or a [`plan::Refusal`]
//! listing every reason at once. [`machine`] is the migration as an explicit,
//! pure state machine (undo included); [`exec`] performs its actions against
//! libvirt (lock, sparse pre-create, `migrate3` with progress and abort,
//! verify, cleanup, undo with reconnect). [`place`] ranks destinations.
//!
//! This crate knows libvirt (through the `virt` crate, plus the few calls in
//! [`libvirt`] it does not wrap) but not the inventory nor the terminal:
//! callers pass an [`exec::Inventory`] and an observer for progress notices.
//! [`testguest`] is test support: a boot-sector guest that proves no write
//! is lost.

pub mod exec;
pub mod facts;
pub mod gather;
pub mod libvirt;
pub mod machine;
pub mod place;
pub mod plan;
pub mod testguest;
pub mod xml;
