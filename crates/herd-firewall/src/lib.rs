//! Router IP whitelisting: a whitelist policy rendered as OpenWrt UCI
//! (network + firewall), fw4's nftables rendering and packet verdicts.
//!
//! The central types are [`fw4::Fw4`] (a firewall configuration loaded with
//! fw4's semantics) and [`nft::Ruleset`] (the `table inet fw4` it produces,
//! printable byte for byte and evaluable for one packet). herd-firewall knows
//! nothing about HTTP, SSH transport details or the inventory's storage.

pub mod apply;
pub mod check;
pub mod config;
pub mod fw4;
pub mod inventory;
pub mod nft;
pub mod policy;
