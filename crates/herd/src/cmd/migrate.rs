//! `herd vm migrate` and `herd hv evacuate`: live (or offline) migration
//! without shared storage, over herd-migrate. This file resolves names
//! (libvirt URIs or inventory hypervisors), shows progress, maps outcomes
//! to exit codes, and updates the inventory; the library does the rest.

use super::exit::{self, Exit};
use super::Global;
use herd_client::{commit_of, Client, Filter, Query, TrackedObject, Value};
use herd_migrate::exec::{self, Config, ExecError, Inventory, Notice, Phase, Report};
use herd_migrate::gather::{self, Hosts};
use herd_migrate::place;
use herd_migrate::plan::{self, MigrateOptions, Placement, Plan, Request};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
herd vm migrate vm1 hv2                      # hypervisors from the inventory\n  \
herd vm migrate vm1 --from qemu+ssh://root@hv1/system --to qemu+ssh://root@hv2/system\n  \
herd vm migrate vm1 --dry-run --json         # the plan, or every reason it is refused\n  \
herd vm migrate vm1 --to-query 'environment=production' --bandwidth 200\n  \
herd vm migrate vm1 hv2 --disk vda=block:/dev/vg0/vm1   # qcow2 file onto a raw device\n\n\
Exit codes: 0 moved, 6 refused before anything changed, 1 failed and undone,\n\
130 interrupted (Ctrl-C/SIGTERM) and undone.")]
pub struct MigrateArgs {
    /// The VM (libvirt domain name, also its inventory hostname).
    pub vm: String,
    /// Destination: a libvirt URI or an inventory hypervisor. Omitted: the
    /// inventory hypervisor with the most room (see --to-query).
    pub dest: Option<String>,
    /// Destination, as DEST.
    #[arg(long, value_name = "HV", conflicts_with = "dest")]
    pub to: Option<String>,
    /// Source: a libvirt URI or an inventory hypervisor [default: the VM's
    /// `hypervisor` in the inventory].
    #[arg(long, value_name = "HV")]
    pub from: Option<String>,
    /// With DEST omitted, choose among inventory hypervisors matching this
    /// query (e.g. 'environment=production').
    #[arg(long, value_name = "QUERY")]
    pub to_query: Option<String>,
    /// Parallel connections for the memory stream.
    #[arg(long, value_name = "N")]
    pub parallel: Option<u32>,
    /// Remove a stale herd lock from the VM (left by a herd process that
    /// died) and exit.
    #[arg(long)]
    pub break_lock: bool,
    #[command(flatten)]
    pub options: Options,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
herd hv evacuate hv1 --dry-run               # where each VM would go\n  \
herd hv evacuate hv1 --parallel 2 --to-query 'environment=production'\n  \
herd hv evacuate qemu+ssh://root@hv1/system --to qemu+ssh://root@hv2/system --to qemu+ssh://root@hv3/system")]
pub struct EvacuateArgs {
    /// The hypervisor to empty: a libvirt URI or an inventory hypervisor.
    pub hv: String,
    /// Candidate destinations (repeat); default: the inventory's hypervisors.
    #[arg(long, value_name = "HV")]
    pub to: Vec<String>,
    /// Only inventory hypervisors matching this query are candidates.
    #[arg(long, value_name = "QUERY")]
    pub to_query: Option<String>,
    /// Migrate this many VMs at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub parallel: usize,
    #[command(flatten)]
    pub options: Options,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Move a shut-off VM by copying its volumes (a shut-off VM always moves offline).
    #[arg(long)]
    pub offline: bool,
    /// Bandwidth cap for memory and disks, MiB/s.
    #[arg(long, value_name = "MIB_S")]
    pub bandwidth: Option<u64>,
    /// Longest pause of the guest at switch-over, ms.
    #[arg(long, value_name = "MS")]
    pub max_downtime: Option<u64>,
    /// Throttle the guest's vCPUs when memory does not converge.
    #[arg(long)]
    pub auto_converge: bool,
    /// Keep the source volumes after a successful migration.
    #[arg(long)]
    pub keep_source_disks: bool,
    /// Place a disk elsewhere on the destination: `vda=pool:NAME` (a new
    /// volume there) or `vda=block:/dev/PATH` (an existing raw device).
    #[arg(long, value_name = "DISK=PLACE")]
    pub disk: Vec<String>,
    /// QEMU migration URI (tcp://10.0.0.2) [default: from the destination URI;
    /// tcp://127.0.0.1 for local sockets].
    #[arg(long, value_name = "URI")]
    pub migrate_uri: Option<String>,
    /// Address the destination listens on for memory and disks.
    #[arg(long, value_name = "ADDR")]
    pub listen_address: Option<String>,
    /// How long undo keeps retrying an unreachable host, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub undo_timeout: u64,
    /// Append each finished migration (JSON line) to this file
    /// [default: $XDG_STATE_HOME/herd/migrations.jsonl].
    #[arg(long, value_name = "FILE", env = "HERD_MIGRATION_HISTORY")]
    pub history: Option<PathBuf>,
    /// Print the plan (or the refusal) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// JSON: the plan, progress events as lines, the result.
    #[arg(long)]
    pub json: bool,
}

pub fn migrate(global: &Global, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let inv = InventoryAccess::new(global)?;
    let vm_object = inv.as_ref().and_then(|i| i.object(&args.vm));
    let (source, source_name) = resolve_source(global, &args, vm_object.as_ref())?;
    if args.break_lock {
        return break_lock(&source, &args.vm);
    }
    let options = &args.options;
    let mut request = request(options, args.parallel)?;
    let dest = args.dest.clone().or(args.to.clone());
    let (facts, plan_result, dest_name, mut hosts) = match dest {
        Some(d) => {
            let uri = resolve_uri(global, &d)?;
            let name = inventory_name(inv.as_ref(), &d, &uri);
            let hosts = open(&source, &uri)?;
            let facts = gather::gather(&hosts, &args.vm).map_err(gather_error)?;
            set_inventory_step(&mut request, vm_object.as_ref(), &source_name, &name);
            let plan = plan::plan(&facts, &request);
            (facts, plan, name, hosts)
        }
        None => {
            let inv = inv.as_ref().ok_or_else(|| {
                Exit::new(
                    exit::USAGE,
                    "no destination given and no inventory configured: give DEST (a libvirt URI), or --url of a herd server",
                )
            })?;
            let candidates = inv.hypervisors(args.to_query.as_deref(), &source)?;
            choose(
                &args.vm,
                &source,
                &candidates,
                &request,
                vm_object.as_ref(),
                &source_name,
            )?
        }
    };
    let plan = match plan_result {
        Ok(p) => p,
        Err(refusal) => {
            if options.json {
                println!("{}", serde_json::json!({ "refused": refusal }));
            }
            return Err(Exit::new(exit::PLAN_REFUSED, refusal.to_string()).into());
        }
    };
    if options.dry_run {
        print_plan(&plan, options.json);
        return Ok(ExitCode::SUCCESS);
    }
    if !options.json {
        eprint!("{plan}");
    }
    let _ = facts;
    let mut inventory = vm_object.map(|o| ClientInventory {
        client: inv.as_ref().map(|i| i.client.clone()),
        object: o,
    });
    let cancel = exec::cancel_on_signals()?;
    let ui = Ui::new(options.json, None);
    let observer = |n: &Notice| ui.notice(n);
    let mut config = Config {
        cancel,
        undo_timeout: Duration::from_secs(options.undo_timeout),
        poll_interval: Duration::from_millis(250),
        observer: &observer,
        inventory: inventory.as_mut().map(|i| i as &mut dyn Inventory),
        history: history_path(options),
        owner: owner(),
    };
    let result = exec::run(&plan, &mut hosts, &mut config);
    ui.finish();
    let _ = dest_name;
    outcome(&plan.vm, result, options.json)
}

/// Print a finished migration and pick the exit code.
fn outcome(vm: &str, result: Result<Report, ExecError>, json: bool) -> anyhow::Result<ExitCode> {
    match result {
        Ok(report) => {
            if json {
                println!("{}", serde_json::json!({"event": "done", "report": report}));
            } else {
                print_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "failed", "vm": vm, "error": e.to_string(), "interrupted": e.interrupted()})
                );
            }
            let code = if e.interrupted() {
                exit::INTERRUPTED
            } else {
                exit::FAILURE
            };
            Err(Exit::new(code, e.to_string()).into())
        }
    }
}

fn print_report(r: &Report) {
    println!(
        "{} moved to {} in {:.1} s: memory {}, disks {} (as libvirt counts, zero areas included), downtime {}",
        r.vm,
        r.destination,
        r.duration_ms as f64 / 1000.0,
        plan::human_bytes(r.memory_bytes),
        plan::human_bytes(r.disk_bytes),
        r.downtime_ms
            .map(|d| format!("{d} ms"))
            .unwrap_or_else(|| "-".into())
    );
    for d in &r.deleted {
        println!("deleted source volume {d}");
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
}

fn print_plan(plan: &Plan, json: bool) {
    if json {
        // The destination XML is long and derived; keep the plan readable.
        let mut value = serde_json::to_value(plan).unwrap_or_default();
        if let Some(o) = value.as_object_mut() {
            o.remove("dest_xml");
            o.remove("persist_xml");
            o.insert("rewrites_xml".into(), plan.dest_xml.is_some().into());
        }
        println!("{value}");
    } else {
        print!("{plan}");
    }
}

fn request(options: &Options, parallel: Option<u32>) -> anyhow::Result<Request> {
    let mut placements = BTreeMap::new();
    for d in &options.disk {
        let (disk, place) = d.split_once('=').ok_or_else(|| {
            Exit::new(
                exit::USAGE,
                format!("--disk {d}: use DISK=pool:NAME or DISK=block:/dev/PATH"),
            )
        })?;
        let place: Placement = place
            .parse()
            .map_err(|e: String| Exit::new(exit::USAGE, format!("--disk {d}: {e}")))?;
        placements.insert(disk.to_string(), place);
    }
    Ok(Request {
        offline: options.offline,
        options: MigrateOptions {
            bandwidth_mib_s: options.bandwidth,
            max_downtime_ms: options.max_downtime,
            auto_converge: options.auto_converge,
            parallel,
            keep_source_disks: options.keep_source_disks,
            migrate_uri: options.migrate_uri.clone(),
            listen_address: options.listen_address.clone(),
        },
        placements,
        inventory: None,
    })
}

fn set_inventory_step(
    request: &mut Request,
    vm_object: Option<&TrackedObject>,
    from: &Option<String>,
    to: &Option<String>,
) {
    request.inventory = match (vm_object, from, to) {
        (Some(_), Some(f), Some(t)) => Some((f.clone(), t.clone())),
        _ => None,
    };
}

fn history_path(options: &Options) -> Option<PathBuf> {
    options.history.clone().or_else(|| {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
        Some(base.join("herd/migrations.jsonl"))
    })
}

fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!("herd pid {} on {host}", std::process::id())
}

fn open(source: &str, dest: &str) -> anyhow::Result<Hosts> {
    Hosts::open(source, dest).map_err(gather_error)
}

fn gather_error(e: gather::GatherError) -> anyhow::Error {
    let code = match &e {
        gather::GatherError::NoVm { .. } => exit::NOT_FOUND,
        _ => exit::FAILURE,
    };
    Exit::new(code, e.to_string()).into()
}

/// A libvirt URI as it is, anything else as an inventory hypervisor.
fn resolve_uri(global: &Global, hv: &str) -> anyhow::Result<String> {
    if hv.contains("://") {
        Ok(hv.to_string())
    } else {
        super::vm::inventory_uri(global, hv)
    }
}

/// The source URI and, when known, its inventory name.
fn resolve_source(
    global: &Global,
    args: &MigrateArgs,
    vm_object: Option<&TrackedObject>,
) -> anyhow::Result<(String, Option<String>)> {
    if let Some(from) = &args.from {
        let uri = resolve_uri(global, from)?;
        let name = match vm_object.and_then(|o| string(o.get("hypervisor"))) {
            Some(n) => Some(n),
            None => (!from.contains("://")).then(|| from.clone()),
        };
        return Ok((uri, name));
    }
    let Some(hv) = vm_object.and_then(|o| string(o.get("hypervisor"))) else {
        return Err(Exit::new(
            exit::USAGE,
            format!(
                "where does {} run? give --from (a libvirt URI or hypervisor), or record its hypervisor in the inventory",
                args.vm
            ),
        )
        .into());
    };
    Ok((super::vm::inventory_uri(global, &hv)?, Some(hv)))
}

fn string(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The inventory name of a hypervisor given as a name or as a URI.
fn inventory_name(inv: Option<&InventoryAccess>, given: &str, uri: &str) -> Option<String> {
    if !given.contains("://") {
        return Some(given.to_string());
    }
    let inv = inv?;
    let q = Query::filter("libvirt_uri", Filter::Equals(Value::from(uri)));
    inv.client
        .query(&q)
        .ok()?
        .first()
        .and_then(|o| o.hostname().map(String::from))
}

/// Plan the VM on every candidate and take the one with the most room.
#[allow(clippy::type_complexity)]
fn choose(
    vm: &str,
    source: &str,
    candidates: &[(String, String)],
    request: &Request,
    vm_object: Option<&TrackedObject>,
    source_name: &Option<String>,
) -> anyhow::Result<(
    herd_migrate::facts::Facts,
    Result<Plan, plan::Refusal>,
    Option<String>,
    Hosts,
)> {
    let mut planned = Vec::new();
    for (name, uri) in candidates {
        let Ok(hosts) = Hosts::open(source, uri) else {
            continue;
        };
        let facts = gather::gather(&hosts, vm).map_err(gather_error)?;
        let mut request = request.clone();
        set_inventory_step(&mut request, vm_object, source_name, &Some(name.clone()));
        let plan = plan::plan(&facts, &request);
        planned.push((name.clone(), facts, plan, hosts));
    }
    let options: Vec<place::Candidate> = planned
        .iter()
        .map(|(name, facts, plan, _)| place::Candidate {
            name,
            facts,
            plan: plan.as_ref(),
        })
        .collect();
    let i =
        place::choose(vm, &options).map_err(|e| Exit::new(exit::PLAN_REFUSED, e.to_string()))?;
    let (name, facts, plan, hosts) = planned.swap_remove(i);
    Ok((facts, plan, Some(name), hosts))
}

fn break_lock(source: &str, vm: &str) -> anyhow::Result<ExitCode> {
    let conn = herd_migrate::libvirt::open(source)
        .map_err(|e| Exit::new(exit::FAILURE, format!("cannot connect to {source}: {e}")))?;
    match exec::break_lock(&conn, vm) {
        Ok(Some(broken)) => {
            let lock = &broken.lock;
            println!(
                "removed the lock of {} (since {}, to {}) from {vm}",
                lock.owner, lock.since, lock.destination
            );
            for v in &broken.deleted {
                println!("deleted {v} on the destination (created by that process)");
            }
            for k in &broken.kept {
                println!("warning: {k}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            println!("{vm} was not locked");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(Exit::new(exit::FAILURE, format!("{vm}: {e}")).into()),
    }
}

/// The inventory, when one is configured (`--url`, `HERD_URL` or the config file).
struct InventoryAccess {
    client: Client,
}

impl InventoryAccess {
    fn new(global: &Global) -> anyhow::Result<Option<InventoryAccess>> {
        let configured = global.url.is_some()
            || crate::config::Config::load(global)
                .map(|c| c.url.is_some())
                .unwrap_or(false);
        if !configured {
            return Ok(None);
        }
        Ok(Some(InventoryAccess {
            client: super::inventory::client(global)?,
        }))
    }

    fn object(&self, hostname: &str) -> Option<TrackedObject> {
        self.client.get(hostname).ok()
    }

    /// `(hostname, libvirt_uri)` of every hypervisor matching `query`,
    /// except the source.
    fn hypervisors(
        &self,
        query: Option<&str>,
        source: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let text = format!("servertype=hypervisor {}", query.unwrap_or(""));
        let found = self
            .client
            .query_text(text.trim())
            .map_err(super::inventory::client_error)?;
        Ok(found
            .iter()
            .filter_map(|o| Some((o.hostname()?.to_string(), string(o.get("libvirt_uri"))?)))
            .filter(|(_, uri)| uri != source)
            .collect())
    }
}

/// The inventory update at the end of a migration: compare-and-swap of the
/// VM's `hypervisor`, against the value read before the migration.
struct ClientInventory {
    client: Option<Client>,
    object: TrackedObject,
}

impl Inventory for ClientInventory {
    fn move_vm(&mut self, _vm: &str, from: &str, to: &str) -> Result<(), String> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        if string(self.object.get("hypervisor")).as_deref() != Some(from) {
            return Err(format!("the inventory does not say {from}"));
        }
        let mut object = self.object.clone();
        object.set("hypervisor", to);
        client
            .commit(&commit_of([&object]))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Progress on the terminal (a bar per phase, shown from the first sample
/// to the end of the migration step) or as JSON lines.
struct Ui {
    json: bool,
    prefix: Option<String>,
    bar: ProgressBar,
    /// The phase the bar shows; `None` while it is hidden.
    phase: Mutex<Option<Phase>>,
}

impl Ui {
    fn new(json: bool, prefix: Option<String>) -> Ui {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Ui {
            json,
            prefix,
            bar,
            phase: Mutex::new(None),
        }
    }

    fn notice(&self, n: &Notice) {
        if self.json {
            let mut v = serde_json::to_value(n).unwrap_or_default();
            if let (Some(p), Some(o)) = (&self.prefix, v.as_object_mut()) {
                o.insert("vm".into(), p.clone().into());
            }
            println!("{v}");
            return;
        }
        let tag = self
            .prefix
            .as_deref()
            .map(|p| format!("{p}: "))
            .unwrap_or_default();
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let line = match n {
            Notice::Step { text } => format!("{tag}{text}"),
            Notice::Undo { text } => format!("{tag}undo: {text}"),
            Notice::Warning { text } => format!("{tag}warning: {text}"),
            Notice::Progress(p) => {
                if phase.is_none() {
                    self.bar.set_draw_target(ProgressDrawTarget::stderr());
                }
                if *phase != Some(p.phase) {
                    self.bar.reset();
                    *phase = Some(p.phase);
                    self.bar.set_prefix(match p.phase {
                        Phase::Disk => "disks",
                        Phase::Memory => "memory",
                    });
                }
                self.bar.set_length(p.total);
                self.bar.set_position(p.done);
                return;
            }
        };
        // A step after the migration: the bar has done its job.
        if phase.take().is_some() {
            self.bar.finish_and_clear();
            self.bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        eprintln!("{line}");
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

pub fn evacuate(global: &Global, args: EvacuateArgs) -> anyhow::Result<ExitCode> {
    let inv = InventoryAccess::new(global)?;
    let source = resolve_uri(global, &args.hv)?;
    let source_name = (!args.hv.contains("://")).then(|| args.hv.clone());
    let candidates: Vec<(String, String)> = if args.to.is_empty() {
        let inv = inv.as_ref().ok_or_else(|| {
            Exit::new(
                exit::USAGE,
                "no --to given and no inventory configured: name the destinations with --to URI",
            )
        })?;
        inv.hypervisors(args.to_query.as_deref(), &source)?
    } else {
        args.to
            .iter()
            .map(|t| Ok((t.clone(), resolve_uri(global, t)?)))
            .collect::<anyhow::Result<_>>()?
    };
    let conn = herd_migrate::libvirt::open(&source)
        .map_err(|e| Exit::new(exit::FAILURE, format!("cannot connect to {source}: {e}")))?;
    let vms: Vec<String> = conn
        .list_all_domains(0)
        .map_err(|e| Exit::new(exit::FAILURE, format!("list domains on {source}: {e}")))?
        .iter()
        .filter_map(|d| d.name().ok())
        .collect();
    drop(conn);
    let request = request(&args.options, None)?;
    let options = &args.options;
    let cancel = exec::cancel_on_signals()?;
    let queue = Mutex::new(vms.iter().cloned().collect::<VecDeque<_>>());
    let results: Mutex<Vec<serde_json::Value>> = Mutex::new(Vec::new());
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..args.parallel.max(1) {
            s.spawn(|| loop {
                let Some(vm) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                    return;
                };
                let r = evacuate_one(
                    &vm,
                    &source,
                    &source_name,
                    &candidates,
                    &request,
                    inv.as_ref(),
                    options,
                    &cancel,
                );
                if r.get("status").and_then(|s| s.as_str()) != Some("moved")
                    && r.get("status").and_then(|s| s.as_str()) != Some("planned")
                {
                    failed.store(true, Ordering::SeqCst);
                }
                results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by(|a, b| a["vm"].as_str().cmp(&b["vm"].as_str()));
    if options.json {
        println!(
            "{}",
            serde_json::json!({ "evacuate": source, "vms": results })
        );
    } else {
        for r in &results {
            println!(
                "{:<20} {:<8} {}",
                r["vm"].as_str().unwrap_or("?"),
                r["status"].as_str().unwrap_or("?"),
                r["detail"].as_str().unwrap_or("")
            );
        }
        if results.is_empty() {
            println!("no VM on {source}");
        }
    }
    if cancel.load(Ordering::SeqCst) {
        return Err(Exit::new(
            exit::INTERRUPTED,
            "interrupted; the VM in flight was moved back",
        )
        .into());
    }
    if failed.load(Ordering::SeqCst) {
        return Err(Exit::new(exit::FAILURE, "some VMs were not moved (see above)").into());
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn evacuate_one(
    vm: &str,
    source: &str,
    source_name: &Option<String>,
    candidates: &[(String, String)],
    request: &Request,
    inv: Option<&InventoryAccess>,
    options: &Options,
    cancel: &Arc<AtomicBool>,
) -> serde_json::Value {
    let vm_object = inv.and_then(|i| i.object(vm));
    let chosen = choose(
        vm,
        source,
        candidates,
        request,
        vm_object.as_ref(),
        source_name,
    );
    let (plan, dest, mut hosts) = match chosen {
        Ok((_, Ok(plan), dest, hosts)) => (plan, dest, hosts),
        Ok((_, Err(refusal), _, _)) => {
            return serde_json::json!({"vm": vm, "status": "refused", "detail": refusal.to_string()})
        }
        Err(e) => {
            return serde_json::json!({"vm": vm, "status": "refused", "detail": e.to_string()})
        }
    };
    let dest = dest.unwrap_or_else(|| plan.destination.clone());
    if options.dry_run {
        return serde_json::json!({"vm": vm, "status": "planned", "detail": format!("-> {dest}"), "plan": plan});
    }
    if cancel.load(Ordering::SeqCst) {
        return serde_json::json!({"vm": vm, "status": "skipped", "detail": "interrupted"});
    }
    let mut inventory = vm_object.map(|o| ClientInventory {
        client: inv.map(|i| i.client.clone()),
        object: o,
    });
    let ui = Ui::new(options.json, Some(vm.to_string()));
    let observer = |n: &Notice| ui.notice(n);
    let mut config = Config {
        cancel: Arc::clone(cancel),
        undo_timeout: Duration::from_secs(options.undo_timeout),
        poll_interval: Duration::from_millis(250),
        observer: &observer,
        inventory: inventory.as_mut().map(|i| i as &mut dyn Inventory),
        history: history_path(options),
        owner: owner(),
    };
    let result = exec::run(&plan, &mut hosts, &mut config);
    ui.finish();
    match result {
        Ok(r) => serde_json::json!({
            "vm": vm, "status": "moved",
            "detail": format!("-> {dest} in {:.1} s", r.duration_ms as f64 / 1000.0),
            "report": r,
        }),
        Err(e) => serde_json::json!({"vm": vm, "status": "failed", "detail": e.to_string()}),
    }
}
