//! What the lab needs from the machine, checked before anything starts.

use crate::error::LabError;
use std::path::{Path, PathBuf};

/// One thing the machine lacks for a lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The lab creates namespaces and mounts, which needs root.
    NotRoot { uid: u32 },
    /// A command is not on PATH (nor in /usr/sbin, /sbin).
    MissingCommand {
        command: &'static str,
        package: &'static str,
    },
    /// A directory a libvirt package creates is absent.
    MissingDir {
        dir: &'static str,
        package: &'static str,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NotRoot { uid } => write!(
                f,
                "not running as root (uid {uid}): the lab creates mount and PID namespaces; run it as root (sudo herd lab up)"
            ),
            Problem::MissingCommand { command, package } => {
                write!(f, "command `{command}` not found (Debian package {package})")
            }
            Problem::MissingDir { dir, package } => {
                write!(f, "directory {dir} is missing (Debian package {package})")
            }
        }
    }
}

/// Commands every lab host needs, with the Debian package providing each.
const HOST_COMMANDS: &[(&str, &str)] = &[
    ("libvirtd", "libvirt-daemon-system"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("qemu-img", "qemu-utils"),
    ("virsh", "libvirt-clients"),
    ("unshare", "util-linux"),
    ("mount", "mount"),
    ("bash", "bash"),
];

/// Commands the ssh transport needs on top.
const SSH_COMMANDS: &[(&str, &str)] = &[
    ("sshd", "openssh-server"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("nc", "netcat-openbsd"),
];

/// Directories bind-mounted per host; libvirt's packages create them.
pub(crate) const LIBVIRT_DIRS: &[(&str, &str)] = &[
    ("/var/lib/libvirt", "libvirt-daemon-system"),
    ("/etc/libvirt", "libvirt-daemon-system"),
    ("/var/log/libvirt", "libvirt-daemon-system"),
    ("/var/cache/libvirt", "libvirt-daemon-system"),
];

/// Check this machine: root, commands, libvirt's directories. Returns every
/// problem at once.
pub fn preflight(ssh: bool) -> Result<(), LabError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let problems = problems(uid, ssh, &|c| find_command(c).is_some(), &|d| d.is_dir());
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LabError::Preflight(problems))
    }
}

/// The pure part of [`preflight`].
pub(crate) fn problems(
    uid: u32,
    ssh: bool,
    has_command: &dyn Fn(&str) -> bool,
    has_dir: &dyn Fn(&Path) -> bool,
) -> Vec<Problem> {
    let mut out = Vec::new();
    if uid != 0 {
        out.push(Problem::NotRoot { uid });
    }
    let ssh_commands: &[(&str, &str)] = if ssh { SSH_COMMANDS } else { &[] };
    for &(command, package) in HOST_COMMANDS.iter().chain(ssh_commands) {
        if !has_command(command) {
            out.push(Problem::MissingCommand { command, package });
        }
    }
    for &(dir, package) in LIBVIRT_DIRS {
        if !has_dir(Path::new(dir)) {
            out.push(Problem::MissingDir { dir, package });
        }
    }
    out
}

/// The Debian packages that fix `problems`, each once, in order.
pub(crate) fn packages_to_install(problems: &[Problem]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for p in problems {
        let package = match p {
            Problem::NotRoot { .. } => continue,
            Problem::MissingCommand { package, .. } | Problem::MissingDir { package, .. } => {
                *package
            }
        };
        if !out.contains(&package) {
            out.push(package);
        }
    }
    out
}

/// Find `command` on PATH, then in the sbin directories a non-login root
/// shell may lack.
pub(crate) fn find_command(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(command))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_missing_as_root_is_no_problem() {
        assert_eq!(problems(0, true, &|_| true, &|_| true), vec![]);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_package() {
        let found = problems(65534, true, &|c| c != "sshd" && c != "nc", &|d| {
            d != Path::new("/var/cache/libvirt")
        });
        assert_eq!(
            found,
            vec![
                Problem::NotRoot { uid: 65534 },
                Problem::MissingCommand {
                    command: "sshd",
                    package: "openssh-server"
                },
                Problem::MissingCommand {
                    command: "nc",
                    package: "netcat-openbsd"
                },
                Problem::MissingDir {
                    dir: "/var/cache/libvirt",
                    package: "libvirt-daemon-system"
                },
            ]
        );
        let message = LabError::Preflight(found).to_string();
        assert!(message.contains("run it as root"), "{message}");
        assert!(
            message
                .ends_with("apt-get install openssh-server netcat-openbsd libvirt-daemon-system"),
            "{message}"
        );
    }

    #[test]
    fn ssh_tools_are_only_needed_with_ssh() {
        let found = problems(0, false, &|c| c != "sshd", &|_| true);
        assert_eq!(found, vec![]);
    }
}
