//! Fault injection: the destination's libvirtd is killed in the middle of a
//! live migration (which, in the lab, takes the whole destination host and
//! its QEMU down), then the host comes back. The VM must still run on the
//! source, and nothing herd created may be left on the destination.

mod common;

use common::*;
use herd_migrate::exec::Notice;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The pid of the libvirtd started with `conf`.
fn libvirtd_pid(conf: &Path) -> Option<u32> {
    let conf = conf.display().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_libvirtd = args.first().is_some_and(|a| a.ends_with("libvirtd"));
        (is_libvirtd && args.contains(&conf)).then_some(pid)
    })
}

/// The host started again from the lab's own init script, in new
/// namespaces; killed (with everything in them) on drop.
struct Restarted {
    child: std::process::Child,
}

impl Restarted {
    fn start(host_dir: &Path, socket: &Path) -> Restarted {
        let log = std::fs::File::create(host_dir.join("restart.log")).unwrap();
        let child = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount-proc",
                "--mount",
                "--propagation",
                "private",
                "--uts",
                "--",
                "bash",
            ])
            .arg(host_dir.join("init.sh"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("restart the host");
        let restarted = Restarted { child };
        let deadline = Instant::now() + Duration::from_secs(90);
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            assert!(Instant::now() < deadline, "restarted host did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        restarted
    }
}

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn destination_libvirtd_killed_mid_migration_leaves_vm_on_source_and_nothing_on_destination() {
    let setup = Setup::new(2);
    let vm = "fault1";
    start_guest(&setup, 0, vm, &[vda(128, 48)]);
    wait_for_writes(&setup, vm, 20);
    let dest = setup.host(1).clone();
    let conf = dest.dir.join("etc/libvirtd.conf");
    let pid = libvirtd_pid(&conf).expect("destination libvirtd");
    let history = setup.dir.path().join("history.jsonl");

    let progress = Arc::new(AtomicUsize::new(0));
    let mut restarted = None;
    let out = std::thread::scope(|s| {
        let seen = Arc::clone(&progress);
        let migration = Migration::new(&setup, vm)
            .request(throttled(2))
            .history(history.clone());
        let migration = s.spawn(move || {
            migration.run_observed(move |n| {
                if matches!(n, Notice::Progress(_)) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            })
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        while progress.load(Ordering::SeqCst) < 5 {
            assert!(
                Instant::now() < deadline,
                "the migration never made progress"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_secs(2));
        restarted = Some(Restarted::start(&dest.dir, &dest.socket));
        migration.join().unwrap()
    });

    out.rolled_back("the migration cannot succeed");
    assert_left_running_on_source_only(&setup, vm);
    assert!(!history.exists(), "no migration recorded");
    drop(restarted);
}
