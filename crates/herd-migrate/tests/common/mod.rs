//! A two-host lab with a `default` pool on each, and tiny TCG guests.
#![allow(dead_code)]

use herd_lab::{Lab, LabConfig, LabHost};
use herd_migrate::exec::{self, Config, Notice};
use herd_migrate::gather::{self, Hosts};
use herd_migrate::plan::{self, Request};
use herd_migrate::testguest::{self, TestDisk};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use virt::connect::Connect;
use virt::domain::Domain;

pub const IMAGES: &str = "/var/lib/libvirt/images";
pub const MAX_LBA: u32 = 100_000;

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub lab: Option<Lab>,
    pub hosts: Vec<LabHost>,
}

impl Setup {
    pub fn new(hosts: usize) -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("herd-mig")
            .tempdir()
            .expect("temp dir");
        let lab = Lab::up(LabConfig {
            hosts,
            dir: dir.path().join("lab"),
            ssh: false,
        })
        .expect("lab up");
        let hosts = lab.hosts();
        for h in &hosts {
            let conn = connect(h);
            let pool = conn
                .define_storage_pool_xml(
                    &format!("<pool type='dir'><name>default</name><target><path>{IMAGES}</path></target></pool>"),
                    0,
                )
                .expect("define pool");
            pool.create(0).expect("start pool");
            pool.set_autostart(true).expect("autostart pool");
        }
        Setup {
            dir,
            lab: Some(lab),
            hosts,
        }
    }

    pub fn host(&self, i: usize) -> &LabHost {
        &self.hosts[i]
    }

    /// A path on this machine for a file in `host`'s image directory.
    pub fn image(&self, host: usize, name: &str) -> PathBuf {
        self.hosts[host]
            .outside(&Path::new(IMAGES).join(name))
            .expect("image path outside")
    }

    pub fn serial_log(&self, vm: &str) -> PathBuf {
        self.dir.path().join(format!("{vm}.serial"))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            let _ = lab.down();
        }
    }
}

pub fn connect(h: &LabHost) -> Connect {
    herd_migrate::libvirt::open(&h.uri).expect("connect to lab host")
}

/// One disk to create for a guest: target, size in MiB, MiB of data.
pub struct DiskSpec {
    pub target: &'static str,
    pub size_mib: u64,
    pub data_mib: u64,
}

/// Create the disks as qcow2 volumes on `host` and start a guest that
/// boots the writer from the first disk.
pub fn start_guest(setup: &Setup, host: usize, vm: &str, disks: &[DiskSpec]) -> Domain {
    let dom = define_guest(setup, host, vm, disks);
    dom.create().expect("start guest");
    dom
}

pub fn define_guest(setup: &Setup, host: usize, vm: &str, disks: &[DiskSpec]) -> Domain {
    let boot = testguest::boot_sector(MAX_LBA);
    let mut names = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        let name = format!("{vm}-{}.qcow2", d.target);
        testguest::make_qcow2(
            &setup.image(host, &name),
            d.size_mib << 20,
            (i == 0).then_some(&boot),
            d.data_mib,
        )
        .expect("make qcow2");
        names.push((d.target, format!("{IMAGES}/{name}")));
    }
    let conn = connect(setup.host(host));
    conn.lookup_storage_pool_by_name("default")
        .and_then(|p| p.refresh(0))
        .expect("refresh pool");
    let test_disks: Vec<TestDisk> = names
        .iter()
        .map(|(t, p)| TestDisk {
            target: t,
            path: p,
            format: "qcow2",
        })
        .collect();
    let log = setup.serial_log(vm);
    conn.define_domain_xml(&testguest::domain_xml(vm, 32, &test_disks, Some(&log)))
        .expect("define guest")
}

/// Wait until the guest has reported at least `n` completed writes.
pub fn wait_for_writes(setup: &Setup, vm: &str, n: u32) -> u32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let last = reported(setup, vm);
        if last >= n {
            return last;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "guest {vm} reported only {last} writes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn reported(setup: &Setup, vm: &str) -> u32 {
    let log = std::fs::read_to_string(setup.serial_log(vm)).unwrap_or_default();
    testguest::last_reported(&log).unwrap_or(0)
}

/// Everything a test sees of one migration.
pub struct Outcome {
    pub result: Result<exec::Report, exec::ExecError>,
    pub notices: Vec<Notice>,
}

pub fn plan_between(
    setup: &Setup,
    from: usize,
    to: usize,
    vm: &str,
    request: &Request,
) -> Result<plan::Plan, plan::Refusal> {
    let hosts = Hosts::open(&setup.host(from).uri, &setup.host(to).uri).expect("open hosts");
    let facts = gather::gather(&hosts, vm).expect("gather facts");
    plan::plan(&facts, request)
}

pub fn migrate(
    setup: &Setup,
    from: usize,
    to: usize,
    vm: &str,
    request: &Request,
    cancel: Arc<AtomicBool>,
) -> Outcome {
    migrate_with_history(setup, from, to, vm, request, cancel, None, None)
}

pub fn domain_names(conn: &Connect) -> Vec<String> {
    conn.list_all_domains(0)
        .unwrap()
        .iter()
        .map(|d| d.name().unwrap())
        .collect()
}

pub fn volume_names(conn: &Connect) -> Vec<String> {
    let pool = conn.lookup_storage_pool_by_name("default").unwrap();
    pool.refresh(0).unwrap();
    let mut v = pool.list_volumes().unwrap();
    v.sort();
    v
}

pub fn allocation(conn: &Connect, vol: &str) -> u64 {
    conn.lookup_storage_pool_by_name("default")
        .and_then(|p| p.lookup_storage_vol_by_name(vol))
        .and_then(|v| v.info())
        .map(|i| i.allocation)
        .expect("volume info")
}

/// The herd lock element on a domain, if any.
pub fn herd_lock(dom: &Domain) -> Option<String> {
    dom.metadata(
        virt::sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
        Some(herd_migrate::xml::HERD_NS),
        0,
    )
    .ok()
}

/// FNV-1a over a file: enough to see that a volume's bytes did not change.
pub fn checksum(path: &Path) -> u64 {
    let bytes = std::fs::read(path).expect("read file");
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

#[allow(clippy::too_many_arguments)]
pub fn migrate_with_history(
    setup: &Setup,
    from: usize,
    to: usize,
    vm: &str,
    request: &Request,
    cancel: Arc<AtomicBool>,
    history: Option<PathBuf>,
    interrupt_after_progress: Option<usize>,
) -> Outcome {
    let flag = Arc::clone(&cancel);
    let seen = std::sync::atomic::AtomicUsize::new(0);
    migrate_observed(setup, from, to, vm, request, cancel, history, move |n| {
        if matches!(n, Notice::Progress(_)) {
            let k = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if interrupt_after_progress.is_some_and(|limit| k >= limit) {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    })
}

/// Run a migration with `watch` called on every notice.
#[allow(clippy::too_many_arguments)]
pub fn migrate_observed(
    setup: &Setup,
    from: usize,
    to: usize,
    vm: &str,
    request: &Request,
    cancel: Arc<AtomicBool>,
    history: Option<PathBuf>,
    watch: impl Fn(&Notice) + Sync,
) -> Outcome {
    let mut hosts = Hosts::open(&setup.host(from).uri, &setup.host(to).uri).expect("open hosts");
    let facts = gather::gather(&hosts, vm).expect("gather facts");
    let plan = plan::plan(&facts, request).expect("plan");
    let notices = Mutex::new(Vec::new());
    let observer = |n: &Notice| {
        notices.lock().unwrap().push(n.clone());
        watch(n);
    };
    let mut config = Config {
        cancel,
        undo_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_millis(200),
        observer: &observer,
        inventory: None,
        history,
        owner: "herd test".into(),
    };
    let result = exec::run(&plan, &mut hosts, &mut config);
    Outcome {
        result,
        notices: notices.into_inner().unwrap(),
    }
}

/// A loop device over a sparse file, detached on drop.
pub struct LoopDevice {
    pub path: String,
}

impl LoopDevice {
    pub fn new(file: &Path, size: u64) -> LoopDevice {
        std::fs::File::create(file).unwrap().set_len(size).unwrap();
        let out = std::process::Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output()
            .expect("losetup");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        LoopDevice {
            path: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.path])
            .status();
    }
}
