//! The lab: start hosts, find them again, stop them.

use crate::error::LabError;
use crate::preflight::{find_command, preflight};
use crate::{proc, render};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// How long a host or sshd may take to accept connections. Generous: the
/// machine may be busy compiling.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the processes of a host may take to die after SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// `sun_path` is 108 bytes including the final NUL.
const MAX_SOCKET_PATH: usize = 107;
const STATE_FILE: &str = "lab.json";

/// What to start.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Number of hypervisors, named `hv1` .. `hvN` (1 to 16).
    pub hosts: usize,
    /// Everything the lab writes goes here; created if missing. Must be an
    /// absolute-able path of plain characters (letters, digits, `/._-+`).
    pub dir: PathBuf,
    /// Also start an sshd on loopback and give every host an `ssh_uri`.
    pub ssh: bool,
}

/// One hypervisor of the lab.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabHost {
    /// `hv1`, `hv2`, ...; also the host's hostname inside its namespace.
    pub name: String,
    /// The `host_uuid` its libvirtd reports (distinct per host).
    pub host_uuid: String,
    /// `qemu+unix:///system?socket=DIR/hvN/sock/libvirt-sock`.
    pub uri: String,
    /// `qemu+ssh://root@127.0.0.1:PORT/system?socket=...&keyfile=...&command=...`
    /// when the lab runs an sshd.
    pub ssh_uri: Option<String>,
    /// The libvirtd read-write socket (outside the namespaces).
    pub socket: PathBuf,
    /// `DIR/hvN`: the host's own files.
    pub dir: PathBuf,
}

impl LabHost {
    /// Where a path as this host sees it (`/var/lib/libvirt/images/vm1.qcow2`)
    /// lives on the machine (`DIR/hvN/lib/images/vm1.qcow2`). `None` for
    /// paths outside the host's private directories.
    pub fn outside(&self, inside: &Path) -> Option<PathBuf> {
        render::host_mounts(&self.dir)
            .into_iter()
            .find_map(|(source, target)| {
                let rest = inside.strip_prefix(target).ok()?;
                Some(Path::new(&source).join(rest))
            })
    }
}

/// The lab's sshd.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SshEndpoint {
    /// sshd listens on `127.0.0.1:port`.
    pub port: u16,
    /// Private key accepted for root (`DIR/ssh/id_ed25519`).
    pub key: PathBuf,
    /// known_hosts holding the sshd's host key (`DIR/ssh/known_hosts`).
    pub known_hosts: PathBuf,
    /// The `ssh` wrapper the URIs name in `command=` (`DIR/ssh/ssh`).
    pub ssh_command: PathBuf,
}

/// A running lab. Stopped by [`Lab::down`] or on drop.
#[derive(Debug)]
pub struct Lab {
    dir: PathBuf,
    state: State,
    /// `unshare` processes this process started, waited for on stop.
    children: Vec<Child>,
    stopped: bool,
}

/// `herd lab status` for one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    #[serde(flatten)]
    pub host: LabHost,
    /// Its init process is alive and its socket accepts connections.
    pub running: bool,
}

/// `herd lab status`.
#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    pub dir: PathBuf,
    pub hosts: Vec<HostStatus>,
    pub ssh: Option<SshEndpoint>,
    pub ssh_running: bool,
}

/// What `DIR/lab.json` records: enough to find every process again.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    hosts: Vec<HostState>,
    ssh: Option<SshState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HostState {
    host: LabHost,
    procs: Procs,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SshState {
    endpoint: SshEndpoint,
    procs: Procs,
}

/// The processes of one namespace: `unshare`, its child the init script
/// (PID 1 inside), and the PID namespace that dies with the init.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Procs {
    script: PathBuf,
    unshare_pid: u32,
    init_pid: Option<u32>,
    pid_ns: Option<u64>,
}

impl Lab {
    /// Start `config.hosts` hypervisors (and an sshd with `config.ssh`) and
    /// wait until each accepts connections. On any failure everything
    /// already started is stopped again.
    pub fn up(config: LabConfig) -> Result<Lab, LabError> {
        if !(1..=16).contains(&config.hosts) {
            return Err(LabError::BadHostCount(config.hosts));
        }
        preflight(config.ssh)?;
        let dir = prepare_dir(&config.dir)?;
        let mut lab = Lab {
            dir: dir.clone(),
            state: State::default(),
            children: Vec::new(),
            stopped: false,
        };
        let drivers = link_drivers(&dir)?;
        let libvirtd = find_command("libvirtd").unwrap_or_else(|| "libvirtd".into());
        for n in 1..=config.hosts {
            lab.start_host(&format!("hv{n}"), &libvirtd, &drivers)?;
        }
        if config.ssh {
            lab.start_sshd()?;
        }
        lab.save()?;
        for i in 0..lab.state.hosts.len() {
            lab.await_host(i)?;
        }
        if lab.state.ssh.is_some() {
            lab.await_sshd()?;
        }
        lab.save()?;
        Ok(lab)
    }

    /// The hypervisors, `hv1` first.
    pub fn hosts(&self) -> Vec<LabHost> {
        self.state.hosts.iter().map(|h| h.host.clone()).collect()
    }

    /// One hypervisor by name (`hv1`).
    pub fn host(&self, name: &str) -> Option<LabHost> {
        self.state
            .hosts
            .iter()
            .find(|h| h.host.name == name)
            .map(|h| h.host.clone())
    }

    /// The lab's directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sshd, when the lab runs one.
    pub fn ssh(&self) -> Option<&SshEndpoint> {
        self.state.ssh.as_ref().map(|s| &s.endpoint)
    }

    /// Every live process of the lab (inits, libvirtd, QEMU guests, sshd),
    /// as PIDs seen from here. Tests use it to check that `down` leaves none.
    pub fn processes(&self) -> Vec<u32> {
        let procs = self
            .state
            .hosts
            .iter()
            .map(|h| &h.procs)
            .chain(self.state.ssh.as_ref().map(|s| &s.procs));
        let mut out = Vec::new();
        for p in procs {
            if is_ours(p.unshare_pid, p) {
                out.push(p.unshare_pid);
            }
            if let Some(ns) = p.pid_ns {
                out.extend(proc::processes_in_ns(ns));
            }
        }
        out
    }

    /// Stop every process, detach loop devices backed by files in DIR and
    /// remove what the lab wrote. DIR itself is removed when left empty.
    pub fn down(mut self) -> Result<(), LabError> {
        self.stop()
    }

    /// Leave the lab running after this value is gone (the command line
    /// does this); find it again with [`Lab::status`] / [`Lab::down_dir`].
    pub fn detach(mut self) {
        self.stopped = true;
    }

    /// The lab recorded in `dir`, and whether each part is running.
    pub fn status(dir: &Path) -> Result<LabStatus, LabError> {
        let dir = absolute(dir)?;
        let state = load_state(&dir)?;
        let hosts = state
            .hosts
            .iter()
            .map(|h| HostStatus {
                host: h.host.clone(),
                running: init_alive(&h.procs) && UnixStream::connect(&h.host.socket).is_ok(),
            })
            .collect();
        let ssh_running = state
            .ssh
            .as_ref()
            .is_some_and(|s| init_alive(&s.procs) && ssh_banner(s.endpoint.port).is_ok());
        Ok(LabStatus {
            dir,
            hosts,
            ssh: state.ssh.map(|s| s.endpoint),
            ssh_running,
        })
    }

    /// Stop the lab recorded in `dir` (started by another process).
    pub fn down_dir(dir: &Path) -> Result<(), LabError> {
        let dir = absolute(dir)?;
        let state = load_state(&dir)?;
        let lab = Lab {
            dir,
            state,
            children: Vec::new(),
            stopped: false,
        };
        lab.down()
    }

    fn start_host(&mut self, name: &str, libvirtd: &Path, drivers: &Path) -> Result<(), LabError> {
        let host_dir = self.dir.join(name);
        let sock_dir = host_dir.join("sock");
        let socket = sock_dir.join("libvirt-sock");
        for sub in [
            "lib/images",
            "etc/qemu",
            "etc/storage",
            "log",
            "cache",
            "sock",
        ] {
            let d = host_dir.join(sub);
            fs::create_dir_all(&d)
                .map_err(|e| LabError::io(format!("create {}", d.display()), e))?;
        }
        let host_uuid = new_uuid()?;
        write(
            &host_dir.join("etc/libvirtd.conf"),
            &render::libvirtd_conf(name, &sock_dir, &host_uuid),
        )?;
        let ports = migration_ports(&host_uuid);
        write(&host_dir.join("etc/qemu.conf"), &render::qemu_conf(ports))?;
        let script = host_dir.join("init.sh");
        write(
            &script,
            &render::host_init(name, &host_dir, libvirtd, drivers),
        )?;
        let child = proc::spawn_init(&script, &host_dir.join("init.log"), true)
            .map_err(|e| LabError::io(format!("start unshare for lab host {name}"), e))?;
        let procs = Procs {
            script,
            unshare_pid: child.id(),
            init_pid: None,
            pid_ns: None,
        };
        self.children.push(child);
        self.state.hosts.push(HostState {
            host: LabHost {
                name: name.to_string(),
                host_uuid,
                uri: render::unix_uri(&socket),
                ssh_uri: None,
                socket,
                dir: host_dir,
            },
            procs,
        });
        Ok(())
    }

    fn start_sshd(&mut self) -> Result<(), LabError> {
        let ssh_dir = self.dir.join("ssh");
        fs::create_dir_all(&ssh_dir)
            .map_err(|e| LabError::io(format!("create {}", ssh_dir.display()), e))?;
        keygen(&ssh_dir.join("host_ed25519_key"))?;
        keygen(&ssh_dir.join("id_ed25519"))?;
        let client_pub = read(&ssh_dir.join("id_ed25519.pub"))?;
        write(&ssh_dir.join("authorized_keys"), &client_pub)?;
        let port = free_port()?;
        let host_pub = read(&ssh_dir.join("host_ed25519_key.pub"))?;
        write(
            &ssh_dir.join("known_hosts"),
            &render::known_hosts(port, &host_pub),
        )?;
        write(
            &ssh_dir.join("sshd_config"),
            &render::sshd_config(&ssh_dir, port),
        )?;
        let wrapper = ssh_dir.join("ssh");
        write(&wrapper, &render::ssh_wrapper(&ssh_dir))?;
        set_mode(&wrapper, 0o755)?;
        let sshd = find_command("sshd").unwrap_or_else(|| "/usr/sbin/sshd".into());
        let script = ssh_dir.join("init.sh");
        write(&script, &render::sshd_init(&ssh_dir, &sshd))?;
        let child = proc::spawn_init(&script, &ssh_dir.join("init.log"), false)
            .map_err(|e| LabError::io("start unshare for the lab's sshd", e))?;
        let procs = Procs {
            script,
            unshare_pid: child.id(),
            init_pid: None,
            pid_ns: None,
        };
        self.children.push(child);
        for h in &mut self.state.hosts {
            h.host.ssh_uri = Some(render::ssh_uri(port, &h.host.socket, &ssh_dir));
        }
        self.state.ssh = Some(SshState {
            endpoint: SshEndpoint {
                port,
                key: ssh_dir.join("id_ed25519"),
                known_hosts: ssh_dir.join("known_hosts"),
                ssh_command: wrapper,
            },
            procs,
        });
        Ok(())
    }

    fn await_host(&mut self, i: usize) -> Result<(), LabError> {
        let host = self.state.hosts[i].host.clone();
        let what = format!("lab host {}", host.name);
        let logs = [host.dir.join("init.log"), host.dir.join("log/libvirtd.log")];
        let procs = &mut self.state.hosts[i].procs;
        // libvirtd listens before its drivers are initialized; `virsh uri`
        // answers only once they are (and fails when they failed).
        await_ready(procs, &what, &logs, || {
            UnixStream::connect(&host.socket).is_ok() && virsh_answers(&host.uri)
        })
    }

    fn await_sshd(&mut self) -> Result<(), LabError> {
        let Some(ssh) = self.state.ssh.as_mut() else {
            return Ok(());
        };
        let port = ssh.endpoint.port;
        let logs = [self.dir.join("ssh/init.log")];
        await_ready(&mut ssh.procs, "the lab's sshd", &logs, || {
            ssh_banner(port).is_ok()
        })
    }

    fn save(&self) -> Result<(), LabError> {
        let path = self.dir.join(STATE_FILE);
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| LabError::BadState {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write(&path, &text)
    }

    /// Kill every namespace's init, wait for its processes, then clean DIR.
    fn stop(&mut self) -> Result<(), LabError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut all: Vec<(String, Procs)> = self
            .state
            .hosts
            .iter()
            .map(|h| (format!("lab host {}", h.host.name), h.procs.clone()))
            .collect();
        if let Some(ssh) = &self.state.ssh {
            all.push(("the lab's sshd".to_string(), ssh.procs.clone()));
        }
        for (_, procs) in &mut all {
            if procs.init_pid.is_none() {
                procs.init_pid = proc::children_of(procs.unshare_pid).first().copied();
            }
            if let Some(init) = procs.init_pid.filter(|&p| is_our_init(p, procs)) {
                proc::kill(init, libc::SIGKILL);
            }
            if proc::is_alive(procs.unshare_pid) && is_ours(procs.unshare_pid, procs) {
                proc::kill(procs.unshare_pid, libc::SIGKILL);
            }
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        let mut first_error = None;
        for (what, procs) in &all {
            let gone = proc::wait_until(STOP_TIMEOUT, || {
                !is_ours(procs.unshare_pid, procs)
                    && procs
                        .pid_ns
                        .is_none_or(|ns| proc::processes_in_ns(ns).is_empty())
            });
            if !gone && first_error.is_none() {
                let left = procs.pid_ns.map_or(1, |ns| proc::processes_in_ns(ns).len());
                first_error = Some(LabError::StopFailed {
                    what: what.clone(),
                    left: left.max(1),
                });
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        for device in proc::loop_devices_under(&self.dir) {
            let _ = std::process::Command::new("losetup")
                .arg("-d")
                .arg(&device)
                .status();
        }
        self.remove_files()
    }

    fn remove_files(&self) -> Result<(), LabError> {
        let mut paths: Vec<PathBuf> = self
            .state
            .hosts
            .iter()
            .map(|h| h.host.dir.clone())
            .collect();
        paths.extend(["ssh", "drivers"].map(|d| self.dir.join(d)));
        for path in paths {
            match fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LabError::io(format!("remove {}", path.display()), e)),
            }
        }
        let state = self.dir.join(STATE_FILE);
        match fs::remove_file(&state) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LabError::io(format!("remove {}", state.display()), e)),
        }
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("herd lab: stopping the lab in {}: {e}", self.dir.display());
        }
    }
}

/// Wait until `ready`, filling in the init PID and PID namespace once the
/// init exists; fail early when `unshare` exits.
fn await_ready(
    procs: &mut Procs,
    what: &str,
    logs: &[PathBuf],
    ready: impl Fn() -> bool,
) -> Result<(), LabError> {
    let mut exited = false;
    let ok = proc::wait_until(START_TIMEOUT, || {
        if procs.init_pid.is_none() {
            if let Some(&init) = proc::children_of(procs.unshare_pid).first() {
                procs.init_pid = Some(init);
                procs.pid_ns = proc::pid_ns(init);
            }
        }
        if !proc::is_alive(procs.unshare_pid) {
            exited = true;
            return true;
        }
        procs.init_pid.is_some() && procs.pid_ns.is_some() && ready()
    });
    let log = || {
        logs.iter()
            .map(|l| tail(l, 30))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if exited {
        return Err(LabError::StartFailed {
            what: what.to_string(),
            log: log(),
        });
    }
    if !ok {
        return Err(LabError::StartTimeout {
            what: what.to_string(),
            secs: START_TIMEOUT.as_secs(),
            log: log(),
        });
    }
    Ok(())
}

/// A PID still names the process the lab started (PIDs are reused).
fn is_ours(pid: u32, procs: &Procs) -> bool {
    proc::is_alive(pid) && proc::cmdline(pid).contains(&*procs.script.to_string_lossy())
}

fn is_our_init(pid: u32, procs: &Procs) -> bool {
    is_ours(pid, procs) && procs.pid_ns.is_none_or(|ns| proc::pid_ns(pid) == Some(ns))
}

fn init_alive(procs: &Procs) -> bool {
    procs.init_pid.is_some_and(|p| is_our_init(p, procs))
}

/// Create `dir`, make it absolute, and check it can hold a lab.
fn prepare_dir(dir: &Path) -> Result<PathBuf, LabError> {
    fs::create_dir_all(dir).map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
    let dir = absolute(dir)?;
    let bad = |reason: String| LabError::BadDir {
        dir: dir.clone(),
        reason,
    };
    let text = dir.to_string_lossy();
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/._-+".contains(*c)))
    {
        return Err(bad(format!(
            "contains {c:?}; choose a path of letters, digits and /._-+ (it goes into libvirt URIs)"
        )));
    }
    let longest = dir.join("hv16/sock/libvirt-sock-ro");
    if longest.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(bad(format!(
            "too long for a unix socket path ({} > {MAX_SOCKET_PATH} bytes); choose a shorter --dir",
            longest.as_os_str().len()
        )));
    }
    if dir.join(STATE_FILE).exists() {
        let old = load_state(&dir)?;
        let alive = old.hosts.iter().any(|h| init_alive(&h.procs))
            || old.ssh.as_ref().is_some_and(|s| init_alive(&s.procs));
        if alive {
            return Err(LabError::AlreadyRunning(dir));
        }
        // A lab whose processes are all gone (the machine rebooted): clean up.
        Lab {
            dir: dir.clone(),
            state: old,
            children: Vec::new(),
            stopped: false,
        }
        .down()?;
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
    }
    Ok(dir)
}

fn absolute(dir: &Path) -> Result<PathBuf, LabError> {
    if dir.exists() {
        dir.canonicalize()
            .map_err(|e| LabError::io(format!("resolve {}", dir.display()), e))
    } else {
        std::path::absolute(dir).map_err(|e| LabError::io(format!("resolve {}", dir.display()), e))
    }
}

fn load_state(dir: &Path) -> Result<State, LabError> {
    let path = dir.join(STATE_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LabError::NoLab(dir.to_path_buf()))
        }
        Err(e) => return Err(LabError::io(format!("read {}", path.display()), e)),
    };
    serde_json::from_str(&text).map_err(|e| LabError::BadState {
        path,
        detail: e.to_string(),
    })
}

/// `DIR/drivers`: symlinks to the connection drivers a lab host loads.
fn link_drivers(dir: &Path) -> Result<PathBuf, LabError> {
    let system = driver_dir().ok_or_else(|| {
        LabError::Preflight(vec![crate::Problem::MissingCommand {
            command: "libvirt_driver_qemu.so",
            package: "libvirt-daemon-driver-qemu",
        }])
    })?;
    let drivers = dir.join("drivers");
    fs::create_dir_all(&drivers)
        .map_err(|e| LabError::io(format!("create {}", drivers.display()), e))?;
    for name in render::DRIVERS {
        let file = format!("libvirt_driver_{name}.so");
        let link = drivers.join(&file);
        if !link.exists() && system.join(&file).exists() {
            std::os::unix::fs::symlink(system.join(&file), &link)
                .map_err(|e| LabError::io(format!("link {}", link.display()), e))?;
        }
    }
    Ok(drivers)
}

/// The directory holding libvirt's connection drivers on this machine.
fn driver_dir() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("/usr/lib64/libvirt/connection-driver")];
    if let Ok(entries) = fs::read_dir("/usr/lib") {
        candidates.extend(
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("libvirt/connection-driver")),
        );
    }
    candidates.push(PathBuf::from("/usr/lib/libvirt/connection-driver"));
    candidates
        .into_iter()
        .find(|d| d.join("libvirt_driver_qemu.so").exists())
}

/// Ports per lab host for incoming migrations and NBD disk copies.
const PORT_WINDOW: u16 = 32;
/// Windows between 49 216 (above libvirt's default range) and 65 503.
const PORT_WINDOWS: u16 = 509;

/// A window of migration ports for a new lab host: not handed out before in
/// this process, none of its ports bound right now, starting at a place
/// chosen by the host's random UUID so that labs of other processes are
/// unlikely to pick the same one.
fn migration_ports(host_uuid: &str) -> std::ops::RangeInclusive<u16> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let seed = host_uuid
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let start = (seed % u32::from(PORT_WINDOWS)) as u16;
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    let window = |i: u16| {
        let min = 49_216 + i * PORT_WINDOW;
        min..=min + PORT_WINDOW - 1
    };
    let free = |r: &std::ops::RangeInclusive<u16>| {
        r.clone()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
    };
    let index = (0..PORT_WINDOWS)
        .map(|k| (start + k) % PORT_WINDOWS)
        .find(|i| !taken.contains(i) && free(&window(*i)))
        .unwrap_or(start);
    taken.insert(index);
    window(index)
}

fn new_uuid() -> Result<String, LabError> {
    fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .map_err(|e| LabError::io("read a random UUID from /proc/sys/kernel/random/uuid", e))
}

fn keygen(path: &Path) -> Result<(), LabError> {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "herd-lab", "-f"])
        .arg(path)
        .output()
        .map_err(|e| LabError::io("run ssh-keygen", e))?;
    if !out.status.success() {
        return Err(LabError::StartFailed {
            what: format!("ssh-keygen for {}", path.display()),
            log: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// A TCP port on loopback that nothing listens on right now.
fn free_port() -> Result<u16, LabError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| LabError::io("find a free port on 127.0.0.1", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| LabError::io("find a free port on 127.0.0.1", e))
}

/// `virsh -c URI uri` succeeds.
fn virsh_answers(uri: &str) -> bool {
    std::process::Command::new("virsh")
        .args(["-q", "-c", uri, "uri"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Connect to the sshd and read its version banner.
fn ssh_banner(port: u16) -> std::io::Result<()> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf)?;
    if &buf == b"SSH-" {
        Ok(())
    } else {
        Err(std::io::Error::other("not an ssh server"))
    }
}

fn write(path: &Path, text: &str) -> Result<(), LabError> {
    fs::write(path, text).map_err(|e| LabError::io(format!("write {}", path.display()), e))
}

fn read(path: &Path) -> Result<String, LabError> {
    fs::read_to_string(path).map_err(|e| LabError::io(format!("read {}", path.display()), e))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| LabError::io(format!("chmod {}", path.display()), e))
}

/// The last `lines` lines of a log file, headed by its name.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    format!("==> {} <==\n{}", path.display(), all[start..].join("\n"))
}
