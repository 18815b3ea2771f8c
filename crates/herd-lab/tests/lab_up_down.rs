//! A real lab: hosts come up, answer on their sockets, and `down` leaves
//! nothing behind.

use herd_lab::{Lab, LabConfig, LabError};
use std::os::unix::net::UnixStream;
use std::path::Path;

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

#[test]
fn two_hosts_come_up_with_distinct_uuids_and_down_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let lab = Lab::up(LabConfig {
        hosts: 2,
        dir: dir.clone(),
        ssh: false,
    })
    .unwrap();
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
    let left: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "still alive: {left:?}");
    assert!(processes_mentioning(&dir).is_empty());
    assert!(!dir.exists(), "lab dir removed");
    assert!(matches!(Lab::status(&dir), Err(LabError::NoLab(_))));
}

#[test]
fn dropping_a_lab_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let pids = {
        let lab = Lab::up(LabConfig {
            hosts: 1,
            dir: dir.clone(),
            ssh: false,
        })
        .unwrap();
        lab.processes()
    };
    assert!(!pids.is_empty());
    assert!(pids.iter().all(|&p| !alive(p)));
    assert!(processes_mentioning(&dir).is_empty());
}

fn virsh(uri: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("virsh")
        .arg("-c")
        .arg(uri)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn each_host_answers_over_ssh_with_its_own_hostname() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let lab = Lab::up(LabConfig {
        hosts: 2,
        dir: dir.clone(),
        ssh: true,
    })
    .unwrap();
    for h in lab.hosts() {
        let uri = h.ssh_uri.clone().unwrap();
        assert!(uri.starts_with("qemu+ssh://root@127.0.0.1:"), "{uri}");
        let out = virsh(&uri, &["hostname"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), h.name);
        let out = virsh(&uri, &["capabilities"]);
        let caps = String::from_utf8_lossy(&out.stdout);
        assert!(caps.contains(&h.host_uuid), "host uuid over ssh");
    }
    let status = Lab::status(&dir).unwrap();
    assert!(status.ssh_running);
    let pids = lab.processes();
    lab.down().unwrap();
    assert!(pids.iter().all(|&p| !alive(p)));
    assert!(processes_mentioning(&dir).is_empty());
}

#[test]
fn a_running_guest_dies_with_its_lab() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let lab = Lab::up(LabConfig {
        hosts: 1,
        dir: dir.clone(),
        ssh: false,
    })
    .unwrap();
    let hv1 = lab.host("hv1").unwrap();
    let xml = tmp.path().join("guest.xml");
    std::fs::write(
        &xml,
        "<domain type='qemu'><name>g1</name><memory unit='MiB'>32</memory>\
         <os><type arch='x86_64'>hvm</type></os><devices></devices></domain>",
    )
    .unwrap();
    let out = virsh(&hv1.uri, &["create", xml.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pids = lab.processes();
    let qemu: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with("qemu"))
        })
        .collect();
    assert_eq!(qemu.len(), 1, "one QEMU among {pids:?}");
    let out = virsh(&hv1.uri, &["destroy", "g1"]);
    assert!(
        out.status.success(),
        "destroy reaps QEMU: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = virsh(&hv1.uri, &["create", xml.to_str().unwrap()]);
    assert!(out.status.success());
    let pids = lab.processes();
    lab.down().unwrap();
    assert!(pids.iter().all(|&p| !alive(p)), "QEMU killed with the lab");
}

#[test]
fn loop_devices_backed_by_lab_files_are_detached_on_down() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let lab = Lab::up(LabConfig {
        hosts: 1,
        dir: dir.clone(),
        ssh: false,
    })
    .unwrap();
    let hv1 = lab.host("hv1").unwrap();
    let image = hv1
        .outside(Path::new("/var/lib/libvirt/images/blk.img"))
        .unwrap();
    assert_eq!(image, dir.join("hv1/lib/images/blk.img"));
    std::fs::File::create(&image)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let out = std::process::Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let name = device.trim_start_matches("/dev/").to_string();
    let backing = || std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"));
    assert!(backing().is_ok());
    lab.down().unwrap();
    assert!(backing().is_err(), "{device} detached");
}
