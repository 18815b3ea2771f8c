//! A real lab: hosts come up, answer on their sockets, and `down` leaves
//! nothing behind.

use herd_lab::{Lab, LabConfig, LabError};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
            state != Some("Z")
        })
        .unwrap_or(false)
}

fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(&needle)
                })
                .unwrap_or(false)
                && alive(*pid)
        })
        .collect()
}

/// A lab of `hosts` hosts (with sshd when `ssh`) in `DIR/lab` of a new
/// temporary directory: the directory, the lab's dir and the lab.
fn up(hosts: usize, ssh: bool) -> (tempfile::TempDir, PathBuf, Lab) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let lab = Lab::up(LabConfig {
        hosts,
        dir: dir.clone(),
        ssh,
    })
    .unwrap();
    (tmp, dir, lab)
}

/// None of `pids` lives on, and no process names the lab `dir`.
fn assert_nothing_left(pids: &[u32], dir: &Path) {
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "still alive: {left:?}");
    let strays = processes_mentioning(dir);
    assert!(
        strays.is_empty(),
        "processes naming {}: {strays:?}",
        dir.display()
    );
}

/// Take the lab down: none of its processes lives on after.
fn down_leaves_nothing(lab: Lab, dir: &Path) {
    let pids = lab.processes();
    lab.down().unwrap();
    assert_nothing_left(&pids, dir);
}

/// Runs `cmd`, which must succeed: its stdout.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `virsh -c URI ARGS`, which must succeed: its stdout.
fn virsh_ok(uri: &str, args: &[&str]) -> String {
    run_ok(Command::new("virsh").arg("-c").arg(uri).args(args))
}

#[test]
fn two_hosts_come_up_with_distinct_uuids_and_down_leaves_nothing() {
    let (_tmp, dir, lab) = up(2, false);
    let hosts = lab.hosts();
    assert_eq!(hosts.len(), 2);
    assert_ne!(hosts[0].host_uuid, hosts[1].host_uuid);
    for h in &hosts {
        assert!(UnixStream::connect(&h.socket).is_ok(), "{} socket", h.name);
        assert!(
            h.uri.starts_with("qemu+unix:///system?socket="),
            "{}",
            h.uri
        );
        assert!(h.ssh_uri.is_none());
    }
    let status = Lab::status(&dir).unwrap();
    assert!(status.hosts.iter().all(|h| h.running));
    let pids = lab.processes();
    assert!(pids.len() >= 4, "inits and libvirtds: {pids:?}");
    assert!(matches!(
        Lab::up(LabConfig {
            hosts: 1,
            dir: dir.clone(),
            ssh: false
        }),
        Err(LabError::AlreadyRunning(_))
    ));

    lab.down().unwrap();
    assert_nothing_left(&pids, &dir);
    assert!(!dir.exists(), "lab dir removed");
    assert!(matches!(Lab::status(&dir), Err(LabError::NoLab(_))));
}

#[test]
fn dropping_a_lab_stops_it() {
    let (_tmp, dir, lab) = up(1, false);
    let pids = lab.processes();
    drop(lab);
    assert!(!pids.is_empty());
    assert_nothing_left(&pids, &dir);
}

#[test]
fn each_host_answers_over_ssh_with_its_own_hostname() {
    let (_tmp, dir, lab) = up(2, true);
    for h in lab.hosts() {
        let uri = h.ssh_uri.clone().unwrap();
        assert!(uri.starts_with("qemu+ssh://root@127.0.0.1:"), "{uri}");
        assert_eq!(virsh_ok(&uri, &["hostname"]).trim(), h.name);
        let caps = virsh_ok(&uri, &["capabilities"]);
        assert!(caps.contains(&h.host_uuid), "host uuid over ssh");
    }
    let status = Lab::status(&dir).unwrap();
    assert!(status.ssh_running);
    down_leaves_nothing(lab, &dir);
}

#[test]
fn a_running_guest_dies_with_its_lab() {
    let (tmp, dir, lab) = up(1, false);
    let hv1 = lab.host("hv1").unwrap();
    let xml = tmp.path().join("guest.xml");
    std::fs::write(
        &xml,
        "<domain type='qemu'><name>g1</name><memory unit='MiB'>32</memory>\
         <os><type arch='x86_64'>hvm</type></os><devices></devices></domain>",
    )
    .unwrap();
    let xml = xml.to_str().unwrap();
    virsh_ok(&hv1.uri, &["create", xml]);
    let pids = lab.processes();
    let qemu: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with("qemu"))
        })
        .collect();
    assert_eq!(qemu.len(), 1, "one QEMU among {pids:?}");
    // destroy reaps QEMU: the guest can be created again.
    virsh_ok(&hv1.uri, &["destroy", "g1"]);
    virsh_ok(&hv1.uri, &["create", xml]);
    // QEMU is killed with the lab.
    down_leaves_nothing(lab, &dir);
}

#[test]
fn loop_devices_backed_by_lab_files_are_detached_on_down() {
    let (_tmp, dir, lab) = up(1, false);
    let hv1 = lab.host("hv1").unwrap();
    let image = hv1
        .outside(Path::new("/var/lib/libvirt/images/blk.img"))
        .unwrap();
    assert_eq!(image, dir.join("hv1/lib/images/blk.img"));
    std::fs::File::create(&image)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let device = run_ok(Command::new("losetup").args(["-f", "--show"]).arg(&image))
        .trim()
        .to_string();
    let name = device.trim_start_matches("/dev/").to_string();
    let backing = || std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"));
    assert!(backing().is_ok());
    lab.down().unwrap();
    assert!(backing().is_err(), "{device} detached");
}
