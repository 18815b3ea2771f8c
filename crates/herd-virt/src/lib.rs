//! herd's libvirt driver: hypervisor bootstrap, domains and volumes, their XML. Only this crate (and herd-migrate's executor) talk to libvirt.
