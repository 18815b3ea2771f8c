//! The files a lab writes, as pure functions of paths and names.

use std::path::Path;

/// The libvirt connection drivers a lab host loads. No `network` (an active
/// libvirt network would change the machine's own network), no `nwfilter`,
/// `interface`, `lxc`, `libxl` or `vbox`.
pub(crate) const DRIVERS: &[&str] = &["qemu", "storage", "secret", "nodedev"];

/// `libvirtd.conf` of one host: its socket outside the namespaces, no
/// authentication on the (root-only) socket, its own host UUID.
pub(crate) fn libvirtd_conf(name: &str, sock_dir: &Path, host_uuid: &str) -> String {
    format!(
        "# herd lab host {name}: written by herd lab up, removed by herd lab down.\n\
         unix_sock_dir = \"{sock}\"\n\
         unix_sock_ro_perms = \"0777\"\n\
         unix_sock_rw_perms = \"0700\"\n\
         auth_unix_ro = \"none\"\n\
         auth_unix_rw = \"none\"\n\
         host_uuid = \"{host_uuid}\"\n\
         log_outputs = \"3:file:/var/log/libvirt/libvirtd.log\"\n",
        sock = sock_dir.display(),
    )
}

/// `qemu.conf` of every host: QEMU as root without confinement, files for
/// its stdio (no virtlogd), and the host's own window of migration (and NBD)
/// ports: all lab hosts share the machine's loopback, and libvirt's port
/// allocator only knows its own daemon, so two hosts using libvirt's default
/// range hand out the same port ("Address already in use").
/// (`migration_host` and `migration_address` cannot be local addresses:
/// migrations between lab hosts name the destination with `tcp://127.0.0.1`
/// in their migrate URI instead.)
pub(crate) fn qemu_conf(ports: std::ops::RangeInclusive<u16>) -> String {
    format!(
        "# herd lab: QEMU runs as root, unconfined, and migrates on loopback only.\n\
     migration_port_min = {}\n\
     migration_port_max = {}\n\
     user = \"root\"\n\
     group = \"root\"\n\
     security_driver = \"none\"\n\
     cgroup_controllers = [ ]\n\
     namespaces = [ ]\n\
     stdio_handler = \"file\"\n\
     dynamic_ownership = 0\n\
     remember_owner = 0\n\
     vnc_listen = \"127.0.0.1\"\n\
     spice_listen = \"127.0.0.1\"\n",
        ports.start(),
        ports.end()
    )
}

/// Bind mounts of a host: its own directories over libvirt's.
pub(crate) fn host_mounts(host_dir: &Path) -> Vec<(String, &'static str)> {
    crate::preflight::LIBVIRT_DIRS
        .iter()
        .zip(["lib", "etc", "log", "cache"])
        .map(|(&(target, _), sub)| (host_dir.join(sub).display().to_string(), target))
        .collect()
}

/// The init script of one host. It runs as PID 1 of the host's PID, mount
/// and UTS namespaces, mounts the host's view, starts libvirtd and waits;
/// while bash waits it reaps orphaned QEMU processes (libvirt daemonizes
/// QEMU, and a zombie QEMU would make `virsh destroy` hang).
pub(crate) fn host_init(name: &str, host_dir: &Path, libvirtd: &Path, drivers: &Path) -> String {
    let mut s = format!(
        "#!/bin/bash\n\
         # herd lab host {name}: PID 1 of its own PID, mount and UTS namespaces.\n\
         set -eu\n\
         hostname {name}\n\
         mount -t tmpfs -o mode=0755 herd-lab-run /run\n"
    );
    for (source, target) in host_mounts(host_dir) {
        s.push_str(&format!("mount --bind {source} {target}\n"));
    }
    s.push_str(&format!(
        "mkdir -p /run/libvirt /var/lib/libvirt/images\n\
         export LIBVIRT_DRIVER_DIR={drivers}\n\
         {libvirtd} --config {conf} --pid-file /run/libvirtd.pid &\n\
         wait $!\n",
        drivers = drivers.display(),
        libvirtd = libvirtd.display(),
        conf = host_dir.join("etc/libvirtd.conf").display(),
    ));
    s
}

/// `sshd_config` of the lab's sshd: loopback only, root with the lab's key.
pub(crate) fn sshd_config(ssh_dir: &Path, port: u16) -> String {
    format!(
        "# herd lab sshd: loopback only, root with the lab's own key.\n\
         ListenAddress 127.0.0.1:{port}\n\
         HostKey {dir}/host_ed25519_key\n\
         PidFile none\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         PermitRootLogin prohibit-password\n\
         AllowUsers root\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         PrintMotd no\n",
        dir = ssh_dir.display(),
    )
}

/// Init script of the lab's sshd: its own `/run` (for `/run/sshd`).
pub(crate) fn sshd_init(ssh_dir: &Path, sshd: &Path) -> String {
    format!(
        "#!/bin/bash\n\
         # herd lab sshd: PID 1 of its own PID and mount namespaces.\n\
         set -eu\n\
         mount -t tmpfs -o mode=0755 herd-lab-run /run\n\
         mkdir -p /run/sshd\n\
         {sshd} -D -e -f {dir}/sshd_config &\n\
         wait $!\n",
        sshd = sshd.display(),
        dir = ssh_dir.display(),
    )
}

/// The `ssh` libvirt runs for the lab's `qemu+ssh` URIs: the lab's
/// known_hosts (the host key is checked, nothing is written to `~/.ssh`),
/// no user or system ssh_config.
pub(crate) fn ssh_wrapper(ssh_dir: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # herd lab: ssh with the lab's known_hosts and no ssh_config.\n\
         exec ssh -F /dev/null -o UserKnownHostsFile={dir}/known_hosts \
         -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \"$@\"\n",
        dir = ssh_dir.display(),
    )
}

/// `known_hosts` line for the lab's sshd.
pub(crate) fn known_hosts(port: u16, host_public_key: &str) -> String {
    let mut fields = host_public_key.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let key = fields.next().unwrap_or_default();
    format!("[127.0.0.1]:{port} {kind} {key}\n")
}

/// URI of a host over its unix socket.
pub(crate) fn unix_uri(socket: &Path) -> String {
    format!("qemu+unix:///system?socket={}", socket.display())
}

/// URI of a host through the lab's sshd (the seed's transport).
pub(crate) fn ssh_uri(port: u16, socket: &Path, ssh_dir: &Path) -> String {
    format!(
        "qemu+ssh://root@127.0.0.1:{port}/system?socket={}&keyfile={}/id_ed25519&command={}/ssh",
        socket.display(),
        ssh_dir.display(),
        ssh_dir.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "/tmp/lab/hv1";

    #[test]
    fn libvirtd_conf_has_the_socket_outside_and_its_own_uuid() {
        insta::assert_snapshot!(libvirtd_conf(
            "hv1",
            Path::new("/tmp/lab/hv1/sock"),
            "6f1c7a52-8b0e-4d1e-9a43-0c2f4ad1b001"
        ));
    }

    #[test]
    fn qemu_conf_runs_unconfined() {
        insta::assert_snapshot!(qemu_conf(49_216..=49_247));
    }

    #[test]
    fn host_init_mounts_the_host_view_and_waits_for_libvirtd() {
        insta::assert_snapshot!(host_init(
            "hv1",
            Path::new(HOST),
            Path::new("/usr/sbin/libvirtd"),
            Path::new("/tmp/lab/hv1/drivers")
        ));
    }

    #[test]
    fn sshd_listens_on_loopback_only() {
        insta::assert_snapshot!(sshd_config(Path::new("/tmp/lab/ssh"), 40022));
    }

    #[test]
    fn uris_name_the_socket_and_the_lab_key() {
        let socket = Path::new("/tmp/lab/hv1/sock/libvirt-sock");
        assert_eq!(
            unix_uri(socket),
            "qemu+unix:///system?socket=/tmp/lab/hv1/sock/libvirt-sock"
        );
        assert_eq!(
            ssh_uri(40022, socket, Path::new("/tmp/lab/ssh")),
            "qemu+ssh://root@127.0.0.1:40022/system?socket=/tmp/lab/hv1/sock/libvirt-sock\
             &keyfile=/tmp/lab/ssh/id_ed25519&command=/tmp/lab/ssh/ssh"
        );
    }

    #[test]
    fn known_hosts_drops_the_key_comment() {
        assert_eq!(
            known_hosts(40022, "ssh-ed25519 AAAAC3Nza root@box\n"),
            "[127.0.0.1]:40022 ssh-ed25519 AAAAC3Nza\n"
        );
    }
}
