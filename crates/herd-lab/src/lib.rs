//! A local lab of libvirt hypervisors on one machine: one libvirtd per mount namespace, each with its own socket, host UUID and pool. It knows nothing about the inventory.
