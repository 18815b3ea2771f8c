//! A local lab of libvirt hypervisors on one machine: one libvirtd per mount
//! namespace, each with its own socket, host UUID and pool. It knows nothing
//! about the inventory, and it does not link libvirt: it runs processes,
//! namespaces and config files. [`Lab`] is the central type.
//!
//! # Using the lab from tests
//!
//! ```no_run
//! use herd_lab::{Lab, LabConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let lab = Lab::up(LabConfig { hosts: 2, dir: dir.path().to_path_buf(), ssh: true })?;
//! let hv1 = &lab.hosts()[0];
//! // qemu+unix:///system?socket=DIR/hv1/sock/libvirt-sock
//! println!("{}", hv1.uri);
//! // qemu+ssh://root@127.0.0.1:PORT/system?socket=...&keyfile=...&command=...
//! println!("{}", hv1.ssh_uri.as_deref().unwrap());
//! lab.down()?; // or let it drop: Drop tears the lab down as well
//! # Ok::<(), herd_lab::LabError>(())
//! ```
//!
//! What each host is:
//!
//! - `hvN` (`hv1`, `hv2`, ...): one `libvirtd` started by a small bash init
//!   script as PID 1 of its own PID, mount and UTS namespaces (`unshare
//!   --pid --mount --uts --fork --mount-proc`). Killing that init kills
//!   every process of the host (libvirtd, QEMU guests) at once, and its
//!   mounts vanish with the namespace.
//! - In its mount namespace `/run` is a fresh tmpfs, and `DIR/hvN/{lib,etc,
//!   log,cache}` are bind-mounted over `/var/lib/libvirt`, `/etc/libvirt`,
//!   `/var/log/libvirt`, `/var/cache/libvirt`. Paths that libvirt reports
//!   (`/var/lib/libvirt/images/vm1.qcow2`) are the host's own view: on the
//!   machine that file is `DIR/hvN/lib/images/vm1.qcow2`
//!   ([`LabHost::outside`] translates).
//! - The libvirtd socket lives outside the namespaces in `DIR/hvN/sock`, so
//!   clients reach the host as `qemu+unix:///system?socket=DIR/hvN/sock/libvirt-sock`
//!   ([`LabHost::uri`]).
//! - Each host has its own `host_uuid` (libvirt refuses to migrate between
//!   two hosts with the same one) and hostname (`hvN`).
//! - QEMU runs as root with no security driver, no cgroups, no namespaces,
//!   no virtlogd. Hostnames (`hv1`) do not resolve, so a migration between
//!   lab hosts passes the migrate URI and listen address `127.0.0.1`
//!   (`virsh migrate --live --copy-storage-all --migrateuri tcp://127.0.0.1
//!   --listen-address 127.0.0.1 vm1 DEST_URI`).
//! - The hosts start with no network and no storage pool: that is what
//!   `herd hv bootstrap` (`herd_virt`) is for. Their libvirtd loads only the
//!   qemu, storage, secret and nodedev drivers: an active libvirt network
//!   would put a bridge and NAT rules on the machine's own network, so lab
//!   hosts report networks as unsupported. Guests use `--no-network` or a
//!   bridge that exists.
//! - With `ssh: true`, one `sshd` listens on `127.0.0.1:PORT` (in its own
//!   namespaces, for its `/run/sshd`) and accepts the lab's own key for root.
//!   [`LabHost::ssh_uri`] is the seed's transport: libvirt runs `nc -U
//!   SOCKET` over that ssh connection. The URI's `command=` names a wrapper
//!   around `ssh` that uses the lab's known_hosts file, so the host key is
//!   verified and nothing is written to `~/.ssh`.
//!
//! [`Lab::down`] (and `Drop`) kill each host's init, wait until no process
//! is left in its PID namespace, detach loop devices whose backing file is
//! inside DIR, and remove everything the lab wrote in DIR. Nothing is ever
//! written outside DIR.
//!
//! The command line (`herd lab up|status|down`) starts a lab that outlives
//! the command ([`Lab::detach`]) and finds it again from `DIR/lab.json`
//! ([`Lab::status`], [`Lab::down_dir`]).

mod error;
mod lab;
mod preflight;
mod proc;
mod render;

pub use error::LabError;
pub use lab::{HostStatus, Lab, LabConfig, LabHost, LabStatus, SshEndpoint};
pub use preflight::{preflight, Problem};
