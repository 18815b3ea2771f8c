//! A two-host lab with a `default` pool on each, and tiny TCG guests.
#![allow(dead_code)]

use herd_lab::{Lab, LabConfig, LabHost};
use herd_migrate::exec::{self, Config, ExecError, Notice};
use herd_migrate::gather::{self, Hosts};
use herd_migrate::plan::{self, MigrateOptions, Request};
use herd_migrate::testguest::{self, GuestDisk};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use virt::connect::Connect;
use virt::domain::Domain;

pub use testguest::{IMAGES, MAX_LBA};

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
            testguest::ensure_default_pool(&h.uri).expect("default pool");
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
pub type DiskSpec = GuestDisk<'static>;

/// The guest's only disk: `vda`, `size_mib` large with `data_mib` of data.
pub fn vda(size_mib: u64, data_mib: u64) -> DiskSpec {
    DiskSpec {
        target: "vda",
        size_mib,
        data_mib,
    }
}

/// Create the disks as qcow2 volumes on `host` and start a guest that
/// boots the writer from the first disk.
pub fn start_guest(setup: &Setup, host: usize, vm: &str, disks: &[DiskSpec]) -> Domain {
    let dom = define_guest(setup, host, vm, disks);
    dom.create().expect("start guest");
    dom
}

pub fn define_guest(setup: &Setup, host: usize, vm: &str, disks: &[DiskSpec]) -> Domain {
    let h = setup.host(host);
    testguest::create_guest(
        &h.uri,
        vm,
        disks,
        |p| h.outside(Path::new(p)),
        &setup.serial_log(vm),
        false,
    )
    .expect("define guest");
    connect(h).lookup_domain_by_name(vm).expect("guest defined")
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

/// Stop `dom` and check that every write the guest reported is on `disk`
/// (an image file or block device in `format`) in sequence.
pub fn assert_every_reported_write_on(
    setup: &Setup,
    vm: &str,
    dom: &Domain,
    disk: &Path,
    format: &str,
) {
    dom.destroy_flags(virt::sys::VIR_DOMAIN_DESTROY_GRACEFUL)
        .expect("stop guest");
    let last = reported(setup, vm);
    let bytes = testguest::read_guest_view(disk, format).expect("read guest disk");
    assert_eq!(
        testguest::check_sequence(&bytes, MAX_LBA, last),
        Ok(()),
        "last reported write {last} on {}",
        disk.display()
    );
}

/// A request capped at `mib_s` MiB/s, slow enough to act in the middle.
pub fn throttled(mib_s: u64) -> Request {
    Request {
        options: MigrateOptions {
            bandwidth_mib_s: Some(mib_s),
            ..MigrateOptions::default()
        },
        ..Request::default()
    }
}

/// Everything a test sees of one migration.
pub struct Outcome {
    pub result: Result<exec::Report, exec::ExecError>,
    pub notices: Vec<Notice>,
}

impl Outcome {
    pub fn saw_progress(&self) -> bool {
        self.notices
            .iter()
            .any(|n| matches!(n, Notice::Progress(_)))
    }

    /// The error of a migration that failed and was undone completely.
    pub fn rolled_back(self, why: &str) -> ExecError {
        let err = self.result.expect_err(why);
        assert!(matches!(err, ExecError::RolledBack { .. }), "{err}");
        err
    }
}

/// One migration of `vm` from the first lab host to the second: the
/// default request, never cancelled, no history file unless set.
pub struct Migration<'a> {
    pub setup: &'a Setup,
    pub vm: &'a str,
    pub request: Request,
    pub cancel: Arc<AtomicBool>,
    pub history: Option<PathBuf>,
}

impl<'a> Migration<'a> {
    pub fn new(setup: &'a Setup, vm: &'a str) -> Migration<'a> {
        Migration {
            setup,
            vm,
            request: Request::default(),
            cancel: Arc::new(AtomicBool::new(false)),
            history: None,
        }
    }

    pub fn request(self, request: Request) -> Migration<'a> {
        Migration { request, ..self }
    }

    pub fn history(self, path: PathBuf) -> Migration<'a> {
        Migration {
            history: Some(path),
            ..self
        }
    }

    fn hosts(&self) -> Hosts {
        Hosts::open(&self.setup.host(0).uri, &self.setup.host(1).uri).expect("open hosts")
    }

    /// Gather the facts and plan, without running anything.
    pub fn plan(&self) -> Result<plan::Plan, plan::Refusal> {
        self.plan_on(&self.hosts())
    }

    fn plan_on(&self, hosts: &Hosts) -> Result<plan::Plan, plan::Refusal> {
        let facts = gather::gather(hosts, self.vm).expect("gather facts");
        plan::plan(&facts, &self.request)
    }

    pub fn run(self) -> Outcome {
        self.run_observed(|_| {})
    }

    /// Run, and cancel once `progress` progress notices have arrived.
    pub fn run_cancelled_after(self, progress: usize) -> Outcome {
        let flag = Arc::clone(&self.cancel);
        let seen = AtomicUsize::new(0);
        self.run_observed(move |n| {
            if matches!(n, Notice::Progress(_))
                && seen.fetch_add(1, Ordering::SeqCst) + 1 >= progress
            {
                flag.store(true, Ordering::SeqCst);
            }
        })
    }

    /// Run with `watch` called on every notice.
    pub fn run_observed(self, watch: impl Fn(&Notice) + Sync) -> Outcome {
        let mut hosts = self.hosts();
        let plan = self.plan_on(&hosts).expect("plan");
        let notices = Mutex::new(Vec::new());
        let observer = |n: &Notice| {
            notices.lock().unwrap().push(n.clone());
            watch(n);
        };
        let mut config = Config {
            cancel: self.cancel,
            undo_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
            observer: &observer,
            inventory: None,
            history: self.history,
            owner: "herd test".into(),
        };
        let result = exec::run(&plan, &mut hosts, &mut config);
        Outcome {
            result,
            notices: notices.into_inner().unwrap(),
        }
    }
}

/// After a failed migration: `vm` still runs on the source, unlocked, with
/// its one `vda` volume; the destination has no domain, no volume and no
/// image file of it; and the guest goes on writing.
pub fn assert_left_running_on_source_only(setup: &Setup, vm: &str) {
    let src = connect(setup.host(0));
    let dom = src
        .lookup_domain_by_name(vm)
        .expect("still defined on the source");
    assert!(dom.is_active().unwrap(), "still running on the source");
    assert_eq!(herd_lock(&dom), None, "unlocked");
    let volume = format!("{vm}-vda.qcow2");
    assert_eq!(volume_names(&src), [volume.as_str()]);
    let dst = connect(setup.host(1));
    assert!(
        domain_names(&dst).is_empty(),
        "no domain on the destination: {:?}",
        domain_names(&dst)
    );
    assert!(
        volume_names(&dst).is_empty(),
        "no volume on the destination: {:?}",
        volume_names(&dst)
    );
    assert!(
        !setup.image(1, &volume).exists(),
        "no image file on the destination"
    );
    let now = reported(setup, vm);
    wait_for_writes(setup, vm, now + 20);
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
