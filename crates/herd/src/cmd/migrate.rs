//! `herd vm migrate` and `herd hv evacuate`: placeholder until herd-migrate
//! lands; the owner replaces this file. `vm.rs` and `hv.rs` call into here.
