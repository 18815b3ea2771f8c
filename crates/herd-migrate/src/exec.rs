//! The executor: performs the actions of [`crate::machine`] against libvirt,
//! one at a time, and feeds each outcome back as an event. Only this module
//! (with `gather` and `libvirt`) has effects.
//!
//! Interruption: the caller's `cancel` flag (set by SIGINT/SIGTERM, see
//! [`cancel_on_signals`]) is checked before every step up to the point of no
//! return; during the live migration a progress thread polls libvirt's job
//! statistics and calls `virDomainAbortJob` as soon as the flag is set. Undo
//! steps retry (reconnecting) until `undo_timeout`, so a destination whose
//! libvirtd restarts is still cleaned up.

use crate::facts::{LockFacts, VmState};
use crate::gather::Hosts;
use crate::libvirt::{self, CopyError, JobSample};
use crate::machine::{
    self, Action, Cleanup, Event, Failure, Moved, State, Stats, Undo, Whereabouts,
};
use crate::plan::{live_flags, DestDisk, Mode, Plan, Step};
use crate::xml;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use virt::connect::Connect;
use virt::domain::{Domain, MigrateParameters};
use virt::sys;

/// The inventory, as far as a migration needs it.
pub trait Inventory {
    /// Set the VM's `hypervisor` from `from` to `to` with compare-and-swap:
    /// fails when the inventory no longer says `from`.
    fn move_vm(&mut self, vm: &str, from: &str, to: &str) -> Result<(), String>;
}

/// What the executor tells its caller while it works.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Notice {
    Step { text: String },
    Progress(Progress),
    Undo { text: String },
    Warning { text: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Disk,
    Memory,
}

/// One sample of libvirt's job statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    /// Bytes of this phase done and in total (total grows when the guest
    /// dirties memory or disk).
    pub done: u64,
    pub total: u64,
    pub bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
    pub elapsed_ms: u64,
}

pub struct Config<'a> {
    /// Set by a signal handler: abort and undo.
    pub cancel: Arc<AtomicBool>,
    /// How long undo steps keep retrying against an unreachable host.
    pub undo_timeout: Duration,
    /// How often the job statistics are polled.
    pub poll_interval: Duration,
    /// Called with every notice, possibly from the progress thread.
    pub observer: &'a (dyn Fn(&Notice) + Sync),
    pub inventory: Option<&'a mut dyn Inventory>,
    /// A JSON-lines file every finished migration is appended to.
    pub history: Option<PathBuf>,
    /// Who takes the lock, e.g. `herd pid 42 on admin1`.
    pub owner: String,
}

/// A finished migration, as recorded in the history.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub vm: String,
    pub source: String,
    pub destination: String,
    pub mode: Mode,
    pub duration_ms: u64,
    pub bytes: u64,
    pub disk_bytes: u64,
    pub memory_bytes: u64,
    pub downtime_ms: Option<u64>,
    /// Source volumes deleted (`pool/name`).
    pub deleted: Vec<String>,
    pub warnings: Vec<String>,
    /// Unix seconds.
    pub finished_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{vm} was not migrated ({cause}); every step was undone: it is still on the source and nothing herd created is left on the destination")]
    RolledBack { vm: String, cause: Failure },
    #[error("{vm} was not migrated ({cause}); undone except:\n  - {}", leftovers.join("\n  - "))]
    Incomplete {
        vm: String,
        cause: Failure,
        leftovers: Vec<String>,
    },
    #[error("{vm}: {cause}; {detail}")]
    Stuck {
        vm: String,
        cause: Failure,
        detail: String,
    },
}

impl ExecError {
    /// The migration stopped because of Ctrl-C or SIGTERM.
    pub fn interrupted(&self) -> bool {
        match self {
            ExecError::RolledBack { cause, .. }
            | ExecError::Incomplete { cause, .. }
            | ExecError::Stuck { cause, .. } => *cause == Failure::Interrupted,
        }
    }
}

/// SIGINT and SIGTERM set the returned flag instead of killing the process.
pub fn cancel_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// Run `plan` between `hosts`. On success the VM runs (or, offline, is
/// defined) on the destination only.
pub fn run(plan: &Plan, hosts: &mut Hosts, config: &mut Config) -> Result<Report, ExecError> {
    let started = Instant::now();
    let mut state = State::Start;
    loop {
        let action = machine::next_action(plan, &state);
        if action == Action::Finish {
            break;
        }
        let event = if action.interruptible() && config.cancel.load(Ordering::SeqCst) {
            Event::Failed(Failure::Interrupted)
        } else {
            perform(plan, hosts, config, &state, &action)
        };
        state = machine::step(plan, state, event);
    }
    match state {
        State::Done { moved } => {
            let report = report(plan, moved, started);
            Ok(report)
        }
        State::RolledBack { cause, leftovers } if leftovers.is_empty() => {
            Err(ExecError::RolledBack {
                vm: plan.vm.clone(),
                cause,
            })
        }
        State::RolledBack { cause, leftovers } => Err(ExecError::Incomplete {
            vm: plan.vm.clone(),
            cause,
            leftovers,
        }),
        State::Stuck { cause, detail } => Err(ExecError::Stuck {
            vm: plan.vm.clone(),
            cause,
            detail,
        }),
        other => Err(ExecError::Stuck {
            vm: plan.vm.clone(),
            cause: Failure::Step {
                step: "migration".into(),
                message: format!("stopped in state {}", other.name()),
            },
            detail: "check both hosts".into(),
        }),
    }
}

fn report(plan: &Plan, moved: Moved, started: Instant) -> Report {
    let mut warnings = plan.warnings.clone();
    warnings.extend(moved.warnings);
    Report {
        vm: plan.vm.clone(),
        source: plan.source.clone(),
        destination: plan.destination.clone(),
        mode: plan.mode,
        duration_ms: started.elapsed().as_millis() as u64,
        bytes: moved.stats.bytes,
        disk_bytes: moved.stats.disk_bytes,
        memory_bytes: moved.stats.memory_bytes,
        downtime_ms: moved.stats.downtime_ms,
        deleted: moved.deleted,
        warnings,
        finished_at: unix_now(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn failed(step: &str, e: impl std::fmt::Display) -> Event {
    Event::Failed(Failure::Step {
        step: step.to_string(),
        message: e.to_string(),
    })
}

fn perform(
    plan: &Plan,
    hosts: &mut Hosts,
    config: &mut Config,
    state: &State,
    action: &Action,
) -> Event {
    let say = |text: String| (config.observer)(&Notice::Step { text });
    match action {
        Action::Lock => {
            say(format!("locking {}", plan.vm));
            lock(plan, hosts, &config.owner)
        }
        Action::CreateVolume(i) => {
            let d = &plan.disks[*i];
            say(format!("creating {} on the destination", d.dest.path()));
            let event = create_volume(plan, hosts, *i);
            if let Event::VolumeCreated(i) = &event {
                if let Err(e) = remember_created(plan, hosts, state, *i) {
                    (config.observer)(&Notice::Warning {
                        text: format!("the lock does not list the new volume: {}", e.message()),
                    });
                }
            }
            event
        }
        Action::MigrateLive => {
            say(format!("migrating {} live", plan.vm));
            migrate_live(plan, hosts, config)
        }
        Action::CopyVolume(i) => {
            let d = &plan.disks[*i];
            say(format!(
                "copying {}/{} to the destination",
                d.source_pool, d.source_volume
            ));
            copy_volume(plan, hosts, config, *i)
        }
        Action::DefineOnDestination => {
            say(format!("defining {} on the destination", plan.vm));
            define_on_destination(plan, hosts)
        }
        Action::UndefineOnSource => {
            say(format!("undefining {} on the source", plan.vm));
            match source_domain(plan, hosts).and_then(|d| d.undefine()) {
                Ok(()) => Event::SourceUndefined,
                Err(e) => failed("undefine on the source", e),
            }
        }
        Action::Verify => {
            say("verifying".into());
            verify(plan, hosts)
        }
        Action::Cleanup(c) => cleanup(plan, hosts, config, state, c),
        Action::Undo(u) => undo(plan, hosts, config, u),
        Action::Finish => Event::Failed(Failure::Step {
            step: "finish".into(),
            message: "nothing to perform".into(),
        }),
    }
}

fn source_domain(plan: &Plan, hosts: &Hosts) -> Result<Domain, virt::error::Error> {
    hosts.source.lookup_domain_by_uuid_string(&plan.vm_uuid)
}

fn dest_domain(plan: &Plan, hosts: &Hosts) -> Result<Domain, virt::error::Error> {
    hosts
        .destination
        .lookup_domain_by_uuid_string(&plan.vm_uuid)
}

fn lock(plan: &Plan, hosts: &Hosts, owner: &str) -> Event {
    let dom = match source_domain(plan, hosts) {
        Ok(d) => d,
        Err(e) => return failed("lock", e),
    };
    if let Ok(existing) = dom.metadata(
        sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
        Some(xml::HERD_NS),
        0,
    ) {
        if let Some(l) = xml::parse_lock(&existing) {
            return failed(
                "lock",
                format!(
                    "{} is already locked by {} (migrating to {})",
                    plan.vm, l.owner, l.destination
                ),
            );
        }
    }
    let lock = lock_of(plan, owner, unix_now());
    let flags = domain_affect(&dom);
    match dom.set_metadata(
        sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
        Some(&xml::lock_element(&lock)),
        Some(xml::HERD_PREFIX),
        Some(xml::HERD_NS),
        flags,
    ) {
        Ok(()) => Event::Locked(lock),
        Err(e) => failed("lock", e),
    }
}

/// The lock a run of `plan` takes: besides who and where to, what the move
/// finishes with once the VM is on the destination (the source volumes it
/// deletes, the inventory change), so `--break-lock` there can finish it.
pub fn lock_of(plan: &Plan, owner: &str, since: u64) -> LockFacts {
    let mut lock = LockFacts {
        owner: owner.to_string(),
        destination: plan.destination.clone(),
        source: plan.source.clone(),
        since,
        ..LockFacts::default()
    };
    for step in &plan.steps {
        match step {
            Step::DeleteSourceVolume { pool, name } => lock.finish.push(format!("{pool}/{name}")),
            Step::UpdateInventory { from, to } => lock.inventory = Some((from.clone(), to.clone())),
            _ => {}
        }
    }
    lock
}

/// Record in the lock which destination volumes exist because of us, so a
/// later `--break-lock` can remove them if this process dies.
fn remember_created(
    plan: &Plan,
    hosts: &Hosts,
    state: &State,
    new: usize,
) -> Result<(), virt::error::Error> {
    let (lock, created): (&LockFacts, &[usize]) = match state {
        State::Locked { lock } => (lock, &[]),
        State::Preparing { lock, created, .. } => (lock, created),
        _ => return Ok(()),
    };
    let mut lock = lock.clone();
    lock.created = created
        .iter()
        .chain([&new])
        .filter_map(|i| match &plan.disks.get(*i)?.dest {
            DestDisk::NewVolume { pool, name, .. } => Some(format!("{pool}/{name}")),
            DestDisk::ExistingBlock { .. } => None,
        })
        .collect();
    let dom = source_domain(plan, hosts)?;
    dom.set_metadata(
        sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
        Some(&xml::lock_element(&lock)),
        Some(xml::HERD_PREFIX),
        Some(xml::HERD_NS),
        domain_affect(&dom),
    )
}

fn domain_affect(dom: &Domain) -> u32 {
    libvirt::affect(
        dom.is_active().unwrap_or(false),
        dom.is_persistent().unwrap_or(false),
    )
}

fn unlock(dom: &Domain) -> Result<(), virt::error::Error> {
    dom.set_metadata(
        sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
        None,
        None,
        Some(xml::HERD_NS),
        domain_affect(dom),
    )
}

fn create_volume(plan: &Plan, hosts: &Hosts, i: usize) -> Event {
    let d = &plan.disks[i];
    let DestDisk::NewVolume {
        pool, name, format, ..
    } = &d.dest
    else {
        return Event::VolumeCreated(i);
    };
    let step = format!("create volume {pool}/{name} on the destination");
    let pool = match hosts.destination.lookup_storage_pool_by_name(pool) {
        Ok(p) => p,
        Err(e) => return failed(&step, e),
    };
    let _ = pool.refresh(0);
    if pool.lookup_storage_vol_by_name(name).is_ok() {
        return failed(
            &step,
            "a volume of that name appeared on the destination since the plan was made; herd never overwrites it",
        );
    }
    match virt::storage_vol::StorageVol::create_xml(
        &pool,
        &xml::volume_xml(name, d.capacity, format),
        0,
    ) {
        Ok(_) => Event::VolumeCreated(i),
        Err(e) => failed(&step, e),
    }
}

fn migrate_live(plan: &Plan, hosts: &mut Hosts, config: &Config) -> Event {
    let dom = match source_domain(plan, hosts) {
        Ok(d) => d,
        Err(e) => return failed("migrate", e),
    };
    let o = &plan.options;
    if let Some(ms) = o.max_downtime_ms {
        if let Err(e) = dom.migrate_set_max_downtime(ms, 0) {
            return failed("set the maximum downtime", e);
        }
    }
    let local = is_local(&plan.destination);
    let params = MigrateParameters {
        migrate_disks: plan.disks.iter().map(|d| d.target.clone()).collect(),
        dest_xml: plan.dest_xml.clone(),
        persist_xml: plan.persist_xml.clone(),
        bandwidth: o.bandwidth_mib_s,
        parallel_connections: o.parallel.filter(|&n| n > 1).map(|n| n as i32),
        uri: o
            .migrate_uri
            .clone()
            .or_else(|| local.then(|| "tcp://127.0.0.1".to_string())),
        listen_address: o
            .listen_address
            .clone()
            .or_else(|| local.then(|| "127.0.0.1".to_string())),
        ..MigrateParameters::default()
    };
    let flags = flag_bits(&live_flags(o));
    let done = AtomicBool::new(false);
    let last = std::sync::Mutex::new(None::<JobSample>);
    let (cancel, observer, every) = (&*config.cancel, config.observer, config.poll_interval);
    let result = std::thread::scope(|s| {
        s.spawn(|| poll_progress(&dom, &done, cancel, observer, every, &last));
        let r = dom.migrate3(&hosts.destination, params, flags);
        done.store(true, Ordering::SeqCst);
        r
    });
    match result {
        Ok(ddom) => {
            let completed = libvirt::job_stats(&ddom, sys::VIR_DOMAIN_JOB_STATS_COMPLETED).ok();
            let last = last.into_inner().ok().flatten();
            Event::Migrated(stats(completed.as_ref(), last.as_ref()))
        }
        Err(e) => {
            let cause = if config.cancel.load(Ordering::SeqCst) {
                Failure::Interrupted
            } else {
                Failure::Step {
                    step: "migrate".into(),
                    message: e.message().to_string(),
                }
            };
            Event::MigrateFailed {
                cause,
                whereabouts: whereabouts(plan, hosts),
            }
        }
    }
}

/// A URI of a libvirtd on this machine (unix socket or no host).
fn is_local(uri: &str) -> bool {
    uri.starts_with("qemu+unix://") || uri.starts_with("qemu:///")
}

fn flag_bits(names: &[String]) -> u32 {
    names
        .iter()
        .map(|n| match n.as_str() {
            "LIVE" => sys::VIR_MIGRATE_LIVE,
            "PERSIST_DEST" => sys::VIR_MIGRATE_PERSIST_DEST,
            "UNDEFINE_SOURCE" => sys::VIR_MIGRATE_UNDEFINE_SOURCE,
            "NON_SHARED_DISK" => sys::VIR_MIGRATE_NON_SHARED_DISK,
            "ABORT_ON_ERROR" => sys::VIR_MIGRATE_ABORT_ON_ERROR,
            "AUTO_CONVERGE" => sys::VIR_MIGRATE_AUTO_CONVERGE,
            "PARALLEL" => sys::VIR_MIGRATE_PARALLEL,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// Figures of a finished migration: libvirt's completed statistics, with
/// the disk figures from the last sample (the completed statistics of a
/// storage migration count memory only).
fn stats(completed: Option<&JobSample>, last: Option<&JobSample>) -> Stats {
    let memory_bytes = completed
        .or(last)
        .map_or(0, |js| js.mem_processed.max(js.data_processed));
    let disk_bytes = [completed, last]
        .iter()
        .flatten()
        .map(|js| js.disk_processed.max(js.disk_total))
        .max()
        .unwrap_or(0);
    Stats {
        bytes: memory_bytes + disk_bytes,
        disk_bytes,
        memory_bytes,
        downtime_ms: completed.and_then(|js| js.downtime),
    }
}

/// Poll the job statistics until `done`, turning them into progress notices;
/// abort the job once the cancel flag is set.
fn poll_progress(
    dom: &Domain,
    done: &AtomicBool,
    cancel: &AtomicBool,
    observer: &(dyn Fn(&Notice) + Sync),
    every: Duration,
    last: &std::sync::Mutex<Option<JobSample>>,
) {
    let mut aborted = false;
    let mut rate = Rate::default();
    let mut next_poll = Instant::now();
    while !done.load(Ordering::SeqCst) {
        if cancel.load(Ordering::SeqCst) && !aborted {
            aborted = true;
            observer(&Notice::Undo {
                text: "interrupted: aborting the migration job".into(),
            });
            if let Err(e) = libvirt::abort_job(dom) {
                observer(&Notice::Warning {
                    text: format!("abort job: {}", e.message()),
                });
            }
        }
        if Instant::now() >= next_poll {
            next_poll = Instant::now() + every;
            if let Ok(js) = libvirt::job_stats(dom, 0) {
                if js.active {
                    if let Some(mut p) = progress(&js) {
                        rate.fill(&mut p);
                        observer(&Notice::Progress(p));
                    }
                    if let Ok(mut l) = last.lock() {
                        *l = Some(js);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The disk phase while memory has not started moving, then memory. The
/// rate is libvirt's when it reports one; else the caller fills it in.
pub fn progress(js: &JobSample) -> Option<Progress> {
    let (phase, total, remaining, bps) = if js.mem_processed > 0 {
        (Phase::Memory, js.mem_total, js.mem_remaining, js.mem_bps)
    } else {
        (Phase::Disk, js.disk_total, js.disk_remaining, js.disk_bps)
    };
    if total == 0 {
        return None;
    }
    let elapsed_ms = js.time_elapsed;
    Some(Progress {
        phase,
        done: total.saturating_sub(remaining),
        total,
        bytes_per_sec: bps,
        eta_secs: (bps > 0).then(|| remaining / bps),
        elapsed_ms,
    })
}

/// A rate measured between samples when libvirt reports none, smoothed.
#[derive(Default)]
struct Rate {
    last: Option<(Phase, u64, Instant)>,
    bps: f64,
}

impl Rate {
    fn fill(&mut self, p: &mut Progress) {
        let now = Instant::now();
        if let Some((phase, done, at)) = self.last {
            let secs = now.duration_since(at).as_secs_f64();
            if phase == p.phase && secs > 0.0 {
                let sample = p.done.saturating_sub(done) as f64 / secs;
                self.bps = if self.bps == 0.0 {
                    sample
                } else {
                    0.7 * self.bps + 0.3 * sample
                };
            } else if phase != p.phase {
                self.bps = 0.0;
            }
        }
        self.last = Some((p.phase, p.done, now));
        if p.bytes_per_sec == 0 {
            p.bytes_per_sec = self.bps as u64;
            let remaining = p.total.saturating_sub(p.done);
            p.eta_secs = (p.bytes_per_sec > 0).then(|| remaining / p.bytes_per_sec);
        }
    }
}

/// After a failed migration: where is the VM now?
fn whereabouts(plan: &Plan, hosts: &mut Hosts) -> Whereabouts {
    let active = |conn: &Connect| {
        conn.lookup_domain_by_uuid_string(&plan.vm_uuid)
            .ok()
            .map(|d| d.is_active().unwrap_or(false))
    };
    let on_source = active(&hosts.source).or_else(|| {
        reconnect(&mut hosts.source, &hosts.source_uri).then(|| active(&hosts.source))?
    });
    if on_source == Some(true) {
        return Whereabouts::Source;
    }
    let on_dest = active(&hosts.destination).or_else(|| {
        reconnect(&mut hosts.destination, &hosts.destination_uri)
            .then(|| active(&hosts.destination))?
    });
    match (on_source, on_dest) {
        (None, Some(true)) => Whereabouts::Destination,
        _ => Whereabouts::Unknown,
    }
}

/// Replace a connection that no longer answers. True when a new one is open.
fn reconnect(conn: &mut Connect, uri: &str) -> bool {
    if conn.is_alive().unwrap_or(false) {
        return true;
    }
    match libvirt::open(uri) {
        Ok(c) => {
            *conn = c;
            true
        }
        Err(_) => false,
    }
}

fn copy_volume(plan: &Plan, hosts: &Hosts, config: &Config, i: usize) -> Event {
    let d = &plan.disks[i];
    let DestDisk::NewVolume { pool, name, .. } = &d.dest else {
        return failed(
            "copy",
            "an offline copy needs a destination volume, not a block device",
        );
    };
    let step = format!("copy {}/{}", d.source_pool, d.source_volume);
    let src = hosts
        .source
        .lookup_storage_pool_by_name(&d.source_pool)
        .and_then(|p| p.lookup_storage_vol_by_name(&d.source_volume));
    let dst = hosts
        .destination
        .lookup_storage_pool_by_name(pool)
        .and_then(|p| p.lookup_storage_vol_by_name(name));
    let (src, dst) = match (src, dst) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => return failed(&step, e),
    };
    match libvirt::sparse_copy(
        &hosts.source,
        &src,
        &hosts.destination,
        &dst,
        &config.cancel,
    ) {
        Ok(bytes) => {
            (config.observer)(&Notice::Progress(Progress {
                phase: Phase::Disk,
                done: bytes,
                total: bytes,
                bytes_per_sec: 0,
                eta_secs: Some(0),
                elapsed_ms: 0,
            }));
            Event::VolumeCopied(i)
        }
        Err(CopyError::Cancelled) => Event::Failed(Failure::Interrupted),
        Err(e) => failed(&step, e),
    }
}

fn define_on_destination(plan: &Plan, hosts: &Hosts) -> Event {
    let xml = match &plan.persist_xml {
        Some(x) => x.clone(),
        None => match source_domain(plan, hosts)
            .and_then(|d| d.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_MIGRATABLE))
        {
            Ok(x) => x,
            Err(e) => return failed("read the source definition", e),
        },
    };
    match hosts.destination.define_domain_xml(&xml) {
        Ok(_) => Event::Defined,
        Err(e) => failed("define on the destination", e),
    }
}

fn verify(plan: &Plan, hosts: &Hosts) -> Event {
    let dest = match dest_domain(plan, hosts) {
        Ok(d) => d,
        Err(e) => return failed("verify on the destination", e),
    };
    let state = libvirt::vm_state(&dest).unwrap_or(VmState::Other);
    let expected = match plan.mode {
        Mode::Live => matches!(state, VmState::Running | VmState::Paused),
        Mode::Offline => state == VmState::ShutOff,
    };
    if !expected {
        return failed(
            "verify",
            format!("{} is {state:?} on the destination", plan.vm),
        );
    }
    if !dest.is_persistent().unwrap_or(false) {
        return failed(
            "verify",
            format!("{} is not persistent on the destination", plan.vm),
        );
    }
    match source_domain(plan, hosts) {
        Err(e) if libvirt::is_missing(&e) => Event::Verified,
        Err(e) => failed("verify on the source", e),
        Ok(_) => failed(
            "verify",
            format!("{} is still defined on the source", plan.vm),
        ),
    }
}

fn cleanup(plan: &Plan, hosts: &Hosts, config: &mut Config, state: &State, c: &Cleanup) -> Event {
    let result: Result<(), String> = match c {
        Cleanup::DeleteSourceVolume(i) => {
            let d = &plan.disks[*i];
            (config.observer)(&Notice::Step {
                text: format!("deleting source volume {}/{}", d.source_pool, d.source_volume),
            });
            hosts
                .source
                .lookup_storage_pool_by_name(&d.source_pool)
                .and_then(|p| p.lookup_storage_vol_by_name(&d.source_volume))
                .and_then(|v| v.delete(0))
                .map_err(|e| {
                    format!(
                        "source volume {}/{} was not deleted ({}): delete it with `virsh -c '{}' vol-delete --pool {} {}`",
                        d.source_pool, d.source_volume, e.message(), plan.source, d.source_pool, d.source_volume
                    )
                })
        }
        Cleanup::UpdateInventory { from, to } => {
            (config.observer)(&Notice::Step {
                text: format!("inventory: {} hypervisor {from} -> {to}", plan.vm),
            });
            match config.inventory.as_deref_mut() {
                Some(inv) => inv.move_vm(&plan.vm, from, to).map_err(|e| {
                    format!("the inventory still says {from} ({e}): set it with `herd set {} hypervisor={to}`", plan.vm)
                }),
                None => Ok(()),
            }
        }
        Cleanup::Unlock => dest_domain(plan, hosts)
            .and_then(|d| unlock(&d))
            .map_err(|e| {
                format!(
                    "the lock on {} was not removed ({}): run `herd vm migrate {} --break-lock --from '{}'`",
                    plan.vm,
                    e.message(),
                    plan.vm,
                    plan.destination
                )
            }),
        Cleanup::Record => {
            let moved = match state {
                State::Cleaning { moved, .. } => moved.clone(),
                _ => Moved::default(),
            };
            record(plan, config, moved)
        }
    };
    match result {
        Ok(()) => Event::CleanupDone(c.clone()),
        Err(message) => {
            (config.observer)(&Notice::Warning {
                text: message.clone(),
            });
            Event::CleanupFailed(c.clone(), message)
        }
    }
}

fn record(plan: &Plan, config: &Config, moved: Moved) -> Result<(), String> {
    let Some(path) = &config.history else {
        return Ok(());
    };
    // Duration is measured by the caller's report; the history line carries
    // the libvirt figures and when it finished.
    let line = serde_json::json!({
        "vm": plan.vm,
        "source": plan.source,
        "destination": plan.destination,
        "mode": plan.mode,
        "bytes": moved.stats.bytes,
        "downtime_ms": moved.stats.downtime_ms,
        "finished_at": unix_now(),
    });
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{line}")
    };
    write().map_err(|e| format!("history {} not written: {e}", path.display()))
}

/// Undo one step, retrying (and reconnecting) until `undo_timeout`.
fn undo(plan: &Plan, hosts: &mut Hosts, config: &Config, u: &Undo) -> Event {
    let text = match u {
        Undo::DestinationDomain => {
            format!("removing what is left of {} on the destination", plan.vm)
        }
        Undo::DestinationVolume(i) => {
            format!("deleting {} on the destination", plan.disks[*i].dest.path())
        }
        Undo::UnlockSource => format!("unlocking {} on the source", plan.vm),
    };
    (config.observer)(&Notice::Undo { text });
    let deadline = Instant::now() + config.undo_timeout;
    let mut warned = false;
    loop {
        match undo_once(plan, hosts, u) {
            Ok(()) => return Event::UndoDone(u.clone()),
            Err(UndoError::Refused(message)) => return Event::UndoFailed(u.clone(), message),
            Err(UndoError::Libvirt(e)) => {
                if Instant::now() >= deadline {
                    return Event::UndoFailed(u.clone(), by_hand(plan, u, &e));
                }
                if !warned {
                    warned = true;
                    (config.observer)(&Notice::Warning {
                        text: format!(
                            "{}; retrying for up to {} s",
                            e.message(),
                            config.undo_timeout.as_secs()
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(500));
                let (conn, uri) = match u {
                    Undo::UnlockSource => (&mut hosts.source, hosts.source_uri.clone()),
                    _ => (&mut hosts.destination, hosts.destination_uri.clone()),
                };
                reconnect(conn, &uri);
            }
        }
    }
}

enum UndoError {
    Libvirt(virt::error::Error),
    /// Undoing would risk the VM: leave it for a human.
    Refused(String),
}

impl From<virt::error::Error> for UndoError {
    fn from(e: virt::error::Error) -> Self {
        UndoError::Libvirt(e)
    }
}

fn undo_once(plan: &Plan, hosts: &Hosts, u: &Undo) -> Result<(), UndoError> {
    match u {
        Undo::DestinationDomain => {
            let dom = match dest_domain(plan, hosts) {
                Ok(d) => d,
                Err(e) if libvirt::is_missing(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let source_has_it = match source_domain(plan, hosts) {
                Ok(d) => plan.mode == Mode::Offline || d.is_active().unwrap_or(false),
                Err(_) => false,
            };
            if !source_has_it {
                return Err(UndoError::Refused(format!(
                    "{} exists on the destination and not (running) on the source: herd left both as they are; inspect them",
                    plan.vm
                )));
            }
            if dom.is_active()? {
                dom.destroy()?;
            }
            if dom.is_persistent().unwrap_or(false) {
                dom.undefine()?;
            }
            Ok(())
        }
        Undo::DestinationVolume(i) => {
            let DestDisk::NewVolume { pool, name, .. } = &plan.disks[*i].dest else {
                return Ok(());
            };
            let pool = hosts.destination.lookup_storage_pool_by_name(pool)?;
            if !pool.is_active()? {
                pool.create(0)?;
            }
            let _ = pool.refresh(0);
            match pool.lookup_storage_vol_by_name(name) {
                Ok(v) => Ok(v.delete(0)?),
                Err(e) if libvirt::is_missing(&e) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Undo::UnlockSource => {
            let dom = match source_domain(plan, hosts) {
                Ok(d) => d,
                Err(e) if libvirt::is_missing(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            Ok(unlock(&dom)?)
        }
    }
}

fn by_hand(plan: &Plan, u: &Undo, e: &virt::error::Error) -> String {
    match u {
        Undo::DestinationDomain => format!(
            "{} may be left on the destination ({}): check with `virsh -c '{}' list --all`",
            plan.vm,
            e.message(),
            plan.destination
        ),
        Undo::DestinationVolume(i) => {
            let (pool, name) = match &plan.disks[*i].dest {
                DestDisk::NewVolume { pool, name, .. } => (pool.as_str(), name.as_str()),
                DestDisk::ExistingBlock { dev } => ("-", dev.as_str()),
            };
            format!(
                "volume {pool}/{name} herd created on the destination is still there ({}): delete it with `virsh -c '{}' vol-delete --pool {pool} {name}`",
                e.message(),
                plan.destination
            )
        }
        Undo::UnlockSource => format!(
            "{} is still locked ({}): run `herd vm migrate {} --break-lock --from '{}'`",
            plan.vm,
            e.message(),
            plan.vm,
            plan.source
        ),
    }
}

/// What `--break-lock` did.
#[derive(Debug, Clone, Serialize)]
pub struct BrokenLock {
    pub lock: LockFacts,
    /// Destination volumes the dead process had created, now deleted.
    pub deleted: Vec<String>,
    /// The VM had reached the destination: the move was finished here.
    pub finished: bool,
    /// Source volumes deleted to finish the move.
    pub deleted_on_source: Vec<String>,
    /// The inventory change made to finish the move (`from`, `to`).
    pub inventory: Option<(String, String)>,
    /// What was left alone, with why and how to finish it by hand.
    pub kept: Vec<String>,
}

/// Remove a stale herd lock from a VM on `conn`, after checking no herd
/// process works on it. A migration job still running for the dead process
/// is aborted first.
///
/// On the source (the VM did not move): the destination volumes the lock
/// lists (created by the process that died) are deleted when the VM still
/// runs on the source and no domain of its UUID exists on the destination.
///
/// On the destination (the process died after the move, before finishing
/// it: the lock travelled with the VM): when the VM is defined here and no
/// longer on the source, the move is finished as the process would have:
/// the source volumes it listed are deleted unless a domain on the source
/// still uses them, and `inventory` gets the `hypervisor` change.
pub fn break_lock(
    conn: &Connect,
    vm: &str,
    inventory: Option<&mut dyn Inventory>,
) -> Result<Option<BrokenLock>, virt::error::Error> {
    let dom = conn.lookup_domain_by_name(vm)?;
    let Some(lock) = dom
        .metadata(
            sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
            Some(xml::HERD_NS),
            0,
        )
        .ok()
        .and_then(|x| xml::parse_lock(&x))
    else {
        return Ok(None);
    };
    // The dead process's migration job may still run in libvirt (it only
    // notices a vanished client between phases): abort it and wait.
    if libvirt::job_active(&dom).unwrap_or(false) {
        let _ = libvirt::abort_job(&dom);
        let deadline = Instant::now() + Duration::from_secs(60);
        while libvirt::job_active(&dom).unwrap_or(false) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut broken = BrokenLock {
        lock: lock.clone(),
        deleted: Vec::new(),
        finished: false,
        deleted_on_source: Vec::new(),
        inventory: None,
        kept: Vec::new(),
    };
    if let Some(source) = arrived(&dom, &lock) {
        finish(&source, vm, &lock, inventory, &mut broken);
        unlock(&dom)?;
        return Ok(Some(broken));
    }
    let (deleted, kept) = (&mut broken.deleted, &mut broken.kept);
    if !lock.created.is_empty() {
        let by_hand = |v: &str, why: &str| {
            let (pool, name) = v.split_once('/').unwrap_or(("default", v));
            format!(
                "{v} on {} kept ({why}): delete it with `virsh -c '{}' vol-delete --pool {pool} {name}` once you are sure",
                lock.destination, lock.destination
            )
        };
        let uuid = dom.uuid_string()?;
        let safe = match (dom.is_active(), libvirt::open(&lock.destination)) {
            (Ok(true), Ok(dest)) => match dest.lookup_domain_by_uuid_string(&uuid) {
                Err(e) if libvirt::is_missing(&e) => Ok(dest),
                Ok(_) => Err("the VM's domain exists on the destination"),
                Err(_) => Err("cannot check the destination's domains"),
            },
            (Ok(true), Err(_)) => Err("the destination is unreachable"),
            _ => Err("the VM is not running on the source"),
        };
        for v in &lock.created {
            let dest = match &safe {
                Ok(d) => d,
                Err(why) => {
                    kept.push(by_hand(v, why));
                    continue;
                }
            };
            let (pool, name) = v.split_once('/').unwrap_or(("default", v));
            let result = dest.lookup_storage_pool_by_name(pool).and_then(|p| {
                let _ = p.refresh(0);
                match p.lookup_storage_vol_by_name(name) {
                    Ok(vol) => vol.delete(0),
                    Err(e) if libvirt::is_missing(&e) => Ok(()),
                    Err(e) => Err(e),
                }
            });
            match result {
                Ok(()) => deleted.push(v.clone()),
                Err(e) => kept.push(by_hand(v, e.message())),
            }
        }
    }
    unlock(&dom)?;
    Ok(Some(broken))
}

/// The source's connection when `dom` (found where `--break-lock` looked)
/// is the moved VM: persistent here, and no domain of its UUID left on the
/// source the lock names. `None` when any of that is not so, or can not be
/// told (an older lock without its source, an unreachable source).
fn arrived(dom: &Domain, lock: &LockFacts) -> Option<Connect> {
    if lock.source.is_empty() || !dom.is_persistent().unwrap_or(false) {
        return None;
    }
    let uuid = dom.uuid_string().ok()?;
    let source = libvirt::open(&lock.source).ok()?;
    match source.lookup_domain_by_uuid_string(&uuid) {
        Err(e) if libvirt::is_missing(&e) => Some(source),
        _ => None,
    }
}

/// Finishes a move whose VM is on the destination: what the executor's
/// cleanup would have done after `verify`.
fn finish(
    source: &Connect,
    vm: &str,
    lock: &LockFacts,
    inventory: Option<&mut dyn Inventory>,
    broken: &mut BrokenLock,
) {
    broken.finished = true;
    let by_hand = |v: &str, why: &str| {
        let (pool, name) = v.split_once('/').unwrap_or(("default", v));
        format!(
            "source volume {v} kept ({why}): delete it with `virsh -c '{}' vol-delete --pool {pool} {name}` once you are sure",
            lock.source
        )
    };
    // The definitions of the domains on the source (read only when there
    // are volumes to delete): a path one of them uses is never deleted.
    let in_use: Result<Vec<String>, virt::error::Error> = if lock.finish.is_empty() {
        Ok(Vec::new())
    } else {
        source.list_all_domains(0).map(|ds| {
            ds.iter()
                .flat_map(|d| {
                    [
                        d.xml_desc(0).ok(),
                        d.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE).ok(),
                    ]
                })
                .flatten()
                .collect()
        })
    };
    for v in &lock.finish {
        let (pool, name) = v.split_once('/').unwrap_or(("default", v));
        let vol = source.lookup_storage_pool_by_name(pool).and_then(|p| {
            let _ = p.refresh(0);
            p.lookup_storage_vol_by_name(name)
        });
        let vol = match vol {
            Ok(vol) => vol,
            Err(e) if libvirt::is_missing(&e) => continue, // already gone
            Err(e) => {
                broken.kept.push(by_hand(v, e.message()));
                continue;
            }
        };
        let path = vol.path().unwrap_or_default();
        match &in_use {
            Err(e) => broken.kept.push(by_hand(
                v,
                &format!("cannot list the source's domains: {}", e.message()),
            )),
            Ok(xmls)
                if path.is_empty() || xmls.iter().any(|x| x.contains(&format!("'{path}'"))) =>
            {
                broken
                    .kept
                    .push(by_hand(v, "a domain on the source uses it"))
            }
            Ok(_) => match vol.delete(0) {
                Ok(()) => broken.deleted_on_source.push(v.clone()),
                Err(e) => broken.kept.push(by_hand(v, e.message())),
            },
        }
    }
    if let (Some((from, to)), Some(inv)) = (&lock.inventory, inventory) {
        match inv.move_vm(vm, from, to) {
            Ok(()) => broken.inventory = Some((from.clone(), to.clone())),
            Err(e) => broken.kept.push(format!(
                "the inventory still says {from} ({e}): set it with `herd set {vm} hypervisor={to}`"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(disk: (u64, u64), mem: (u64, u64, u64)) -> JobSample {
        JobSample {
            active: true,
            disk_total: disk.0,
            disk_remaining: disk.1,
            mem_total: mem.0,
            mem_remaining: mem.1,
            mem_processed: mem.2,
            time_elapsed: 1000,
            ..JobSample::default()
        }
    }

    #[test]
    fn progress_shows_disks_until_memory_starts_moving() {
        let p = progress(&sample((100, 40), (64, 64, 0))).unwrap();
        assert_eq!((p.phase, p.done, p.total), (Phase::Disk, 60, 100));
        let p = progress(&sample((100, 0), (64, 16, 48))).unwrap();
        assert_eq!((p.phase, p.done, p.total), (Phase::Memory, 48, 64));
        assert_eq!(
            progress(&sample((0, 0), (64, 64, 0))),
            None,
            "nothing to show yet"
        );
    }

    #[test]
    fn rate_and_eta_come_from_successive_samples_when_libvirt_gives_none() {
        let mut rate = Rate::default();
        let mut first = progress(&sample((1000, 1000), (0, 0, 0))).unwrap();
        rate.fill(&mut first);
        std::thread::sleep(Duration::from_millis(100));
        let mut second = progress(&sample((1000, 500), (0, 0, 0))).unwrap();
        rate.fill(&mut second);
        assert!(second.bytes_per_sec > 1000, "{second:?}");
        assert!(second.eta_secs.is_some_and(|e| e < 5), "{second:?}");
    }

    #[test]
    fn finished_stats_add_disk_figures_from_the_last_sample() {
        let completed = JobSample {
            data_processed: 700,
            mem_processed: 650,
            downtime: Some(80),
            ..JobSample::default()
        };
        let last = JobSample {
            disk_total: 4096,
            disk_processed: 1024,
            ..JobSample::default()
        };
        let s = stats(Some(&completed), Some(&last));
        assert_eq!(
            s,
            Stats {
                bytes: 700 + 4096,
                disk_bytes: 4096,
                memory_bytes: 700,
                downtime_ms: Some(80),
            }
        );
    }

    #[test]
    fn live_flags_map_to_libvirt_bits() {
        let bits = flag_bits(&live_flags(&crate::plan::MigrateOptions {
            auto_converge: true,
            parallel: Some(4),
            ..Default::default()
        }));
        for f in [
            sys::VIR_MIGRATE_LIVE,
            sys::VIR_MIGRATE_PERSIST_DEST,
            sys::VIR_MIGRATE_UNDEFINE_SOURCE,
            sys::VIR_MIGRATE_NON_SHARED_DISK,
            sys::VIR_MIGRATE_AUTO_CONVERGE,
            sys::VIR_MIGRATE_PARALLEL,
        ] {
            assert_ne!(bits & f, 0, "flag {f:#x} missing");
        }
        assert_eq!(bits & sys::VIR_MIGRATE_OFFLINE, 0);
    }
}
