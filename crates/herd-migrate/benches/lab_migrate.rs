//! herd's live migration against plain `virsh migrate --live --persistent
//! --undefinesource --copy-storage-all`, side by side in one lab run.
//!
//! `cargo bench -p herd-migrate --bench lab_migrate` (as root). Each round
//! creates two identical guests on hv1 (a qcow2 disk of CAPACITY MiB holding
//! DATA MiB, the writer guest running), migrates one with herd (the whole
//! job: facts, plan, pre-create, migrate, verify, delete source volume) and
//! the other with virsh, alternating which goes first, and prints wall time
//! and the destination volume's allocation. Environment: `ROUNDS` (3),
//! `CAPACITY_MIB` (1024), `DATA_MIB` (64).

use herd_lab::{Lab, LabConfig};
use herd_migrate::exec::{self, Config};
use herd_migrate::gather::{self, Hosts};
use herd_migrate::plan::{self, Request};
use herd_migrate::testguest::{self, GuestDisk};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn allocation(uri: &str, vol: &str) -> u64 {
    let conn = herd_migrate::libvirt::open(uri).expect("connect");
    let pool = conn.lookup_storage_pool_by_name("default").expect("pool");
    pool.refresh(0).expect("refresh");
    pool.lookup_storage_vol_by_name(vol)
        .and_then(|v| v.info())
        .map(|i| i.allocation)
        .expect("volume")
}

fn main() {
    let rounds = env("ROUNDS", 3);
    let capacity = env("CAPACITY_MIB", 1024);
    let data = env("DATA_MIB", 64);
    let dir = tempfile::Builder::new()
        .prefix("herd-bench")
        .tempdir()
        .unwrap();
    let lab = Lab::up(LabConfig {
        hosts: 2,
        dir: dir.path().join("lab"),
        ssh: false,
    })
    .expect("lab up");
    let hosts = lab.hosts();
    for h in &hosts {
        testguest::ensure_default_pool(&h.uri).expect("pool");
    }
    let (hv1, hv2) = (&hosts[0], &hosts[1]);
    println!(
        "guest: qcow2 {capacity} MiB capacity, {data} MiB data, 32 MiB RAM, TCG; {rounds} rounds"
    );
    println!("round  tool   wall_s  dest_alloc_MiB  src_alloc_MiB");
    // Warm-up, not measured: a freshly started libvirtd probes every QEMU
    // binary the first time it is asked for its capabilities (~5 s here;
    // cached on disk afterwards, so a production host is warm). Ask once,
    // and start and stop a guest, on both hosts.
    for (i, h) in hosts.iter().enumerate() {
        let _ = Command::new("virsh")
            .args(["-c", &h.uri, "capabilities"])
            .output();
        let name = format!("warm{i}");
        testguest::create_guest(
            &h.uri,
            &name,
            &[GuestDisk {
                target: "vda",
                size_mib: 16,
                data_mib: 0,
            }],
            |p| h.outside(Path::new(p)),
            &dir.path().join(format!("{name}.serial")),
            true,
        )
        .expect("warm-up guest");
        let _ = Command::new("virsh")
            .args(["-c", &h.uri, "destroy", &name])
            .output();
        let _ = Command::new("virsh")
            .args(["-c", &h.uri, "undefine", &name, "--remove-all-storage"])
            .output();
    }
    let mut herd_times = Vec::new();
    let mut virsh_times = Vec::new();
    let mut herd_alloc = Vec::new();
    let mut virsh_alloc = Vec::new();
    for round in 0..rounds {
        let names = [format!("bh{round}"), format!("bv{round}")];
        for name in &names {
            testguest::create_guest(
                &hv1.uri,
                name,
                &[GuestDisk {
                    target: "vda",
                    size_mib: capacity,
                    data_mib: data,
                }],
                |p| hv1.outside(Path::new(p)),
                &dir.path().join(format!("{name}.serial")),
                true,
            )
            .expect("guest");
        }
        std::thread::sleep(Duration::from_secs(2));
        let herd_first = round % 2 == 0;
        for which in if herd_first { [0, 1] } else { [1, 0] } {
            let name = &names[which];
            let vol = format!("{name}-vda.qcow2");
            let src_alloc = allocation(&hv1.uri, &vol);
            let started = Instant::now();
            if which == 0 {
                let mut h = Hosts::open(&hv1.uri, &hv2.uri).expect("hosts");
                let planning = Instant::now();
                let facts = gather::gather(&h, name).expect("facts");
                let plan = plan::plan(&facts, &Request::default()).expect("plan");
                let marks = std::sync::Mutex::new(vec![
                    ("open".to_string(), Duration::ZERO),
                    ("gather+plan".to_string(), planning - started),
                ]);
                let observer = |n: &exec::Notice| {
                    if let exec::Notice::Step { text } = n {
                        let word = text.split_whitespace().next().unwrap_or("").to_string();
                        marks.lock().unwrap().push((word, started.elapsed()));
                    }
                };
                let mut config = Config {
                    cancel: Arc::new(AtomicBool::new(false)),
                    undo_timeout: Duration::from_secs(30),
                    poll_interval: Duration::from_millis(500),
                    observer: &observer,
                    inventory: None,
                    history: None,
                    owner: "bench".into(),
                };
                exec::run(&plan, &mut h, &mut config).expect("herd migration");
                let mut marks = marks.into_inner().unwrap();
                marks.push(("end".into(), started.elapsed()));
                let phases: Vec<String> = marks
                    .windows(2)
                    .map(|w| format!("{} {:.2}s", w[0].0, (w[1].1 - w[0].1).as_secs_f64()))
                    .collect();
                println!("       herd phases: {}", phases.join(", "));
            } else {
                let status = Command::new("virsh")
                    .args([
                        "-c",
                        &hv1.uri,
                        "migrate",
                        "--live",
                        "--persistent",
                        "--undefinesource",
                        "--copy-storage-all",
                    ])
                    .args([
                        "--migrateuri",
                        "tcp://127.0.0.1",
                        "--listen-address",
                        "127.0.0.1",
                    ])
                    .arg(name)
                    .arg(&hv2.uri)
                    .status()
                    .expect("virsh");
                assert!(status.success(), "virsh migrate failed");
            }
            let wall = started.elapsed().as_secs_f64();
            let dest_alloc = allocation(&hv2.uri, &vol);
            let tool = if which == 0 { "herd" } else { "virsh" };
            println!(
                "{round:>5}  {tool:<5}  {wall:>6.2}  {:>14.1}  {:>13.1}",
                dest_alloc as f64 / 1048576.0,
                src_alloc as f64 / 1048576.0
            );
            if which == 0 {
                herd_times.push(wall);
                herd_alloc.push(dest_alloc as f64);
            } else {
                virsh_times.push(wall);
                virsh_alloc.push(dest_alloc as f64);
            }
        }
        for name in &names {
            let _ = Command::new("virsh")
                .args(["-c", &hv2.uri, "destroy", name])
                .output();
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (ht, vt) = (median(&mut herd_times), median(&mut virsh_times));
    let (ha, va) = (median(&mut herd_alloc), median(&mut virsh_alloc));
    println!(
        "median wall time: herd {ht:.2} s, virsh {vt:.2} s, ratio herd/virsh {:.2}",
        ht / vt
    );
    println!(
        "median destination allocation: herd {:.1} MiB, virsh {:.1} MiB, ratio herd/virsh {:.3}",
        ha / 1048576.0,
        va / 1048576.0,
        ha / va
    );
    lab.down().expect("lab down");
}
