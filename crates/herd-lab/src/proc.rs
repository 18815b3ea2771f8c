//! Processes and namespaces, read from /proc; the only place that signals.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Start `bash SCRIPT` as PID 1 of new PID and mount namespaces (and a new
/// UTS namespace when `uts`), output appended to `log`, in its own process
/// group so a Ctrl-C aimed at the caller does not reach it.
pub(crate) fn spawn_init(script: &Path, log: &Path, uts: bool) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let out = fs::OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "--mount",
        "--propagation",
        "private",
    ]);
    if uts {
        cmd.arg("--uts");
    }
    cmd.arg("--")
        .arg("bash")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    cmd.spawn()
}

/// The fields of /proc/PID/stat after the command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// A process exists and is not a zombie.
pub(crate) fn is_alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z" && s != "X"))
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live children of `pid`.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| {
            stat_fields(p).is_some_and(|f| f.get(1).and_then(|pp| pp.parse().ok()) == Some(pid))
        })
        .filter(|&p| is_alive(p))
        .collect()
}

/// The PID namespace of a process, as the inode in `pid:[INODE]`.
pub(crate) fn pid_ns(pid: u32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Live processes in PID namespace `ns`.
pub(crate) fn processes_in_ns(ns: u64) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| pid_ns(p) == Some(ns) && is_alive(p))
        .collect()
}

/// The command line of a process, arguments joined by spaces.
pub(crate) fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

pub(crate) fn kill(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions; errors (ESRCH) are
    // fine here: the process is already gone.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Poll `done` every 20 ms until it holds or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Loop devices whose backing file is inside `dir`.
pub(crate) fn loop_devices_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("loop"))
        .filter(|e| {
            fs::read_to_string(e.path().join("loop/backing_file"))
                .is_ok_and(|b| Path::new(b.trim()).starts_with(dir))
        })
        .map(|e| Path::new("/dev").join(e.file_name()))
        .collect()
}
