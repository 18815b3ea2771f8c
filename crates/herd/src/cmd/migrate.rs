//! `herd vm migrate` and `herd hv evacuate`: live (or offline) migration
//! without shared storage, over herd-migrate, with the inventory following
//! (herd-fleet). This file resolves names (libvirt URIs or inventory
//! hypervisors), prints plans and outcomes and maps them to exit codes;
//! `progress` draws the progress bars, `evacuate` is `herd hv evacuate`.

mod evacuate;
mod progress;

pub use evacuate::{evacuate, EvacuateArgs};

use super::exit::{self, Exit};
use super::hv::fleet_error;
use super::Global;
use herd_client::{Client, TrackedObject};
use herd_fleet::inventory as fleet;
use herd_fleet::migration::{Move, Planned, Runner};
use herd_fleet::{is_uri, MoveVm};
use herd_migrate::exec::{self, ExecError, Notice, Report};
use herd_migrate::plan::{self, MigrateOptions, Placement, Plan, Refusal, Request};
use progress::Ui;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
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
    let inv = inventory(global)?;
    let vm_object = inv.as_ref().and_then(|c| c.get(&args.vm).ok());
    let (source, source_name) = resolve_source(global, &args, vm_object.as_ref())?;
    if args.break_lock {
        let mut moving = inv.zip(vm_object.clone()).map(|(c, o)| MoveVm::new(c, o));
        let inventory = moving.as_mut().map(|m| m as &mut dyn exec::Inventory);
        return break_lock(&source, &args.vm, inventory, args.options.json);
    }
    let options = &args.options;
    let request = request(options, args.parallel)?;
    let one = Move {
        vm: &args.vm,
        source: &source,
        source_name: source_name.as_deref(),
        object: vm_object.as_ref(),
        request: &request,
    };
    let Planned {
        plan, mut hosts, ..
    } = planned(global, &args, &one, inv.as_ref())?;
    let plan = accepted(plan, options.json)?;
    if options.dry_run {
        print_plan(&plan, options.json);
        return Ok(ExitCode::SUCCESS);
    }
    if !options.json {
        eprint!("{plan}");
    }
    let inventory = inv.zip(vm_object).map(|(c, o)| MoveVm::new(c, o));
    let runner = runner(options)?;
    let ui = Ui::new(options.json, None);
    let observer = |n: &Notice| ui.notice(n);
    let result = runner.run(&plan, &mut hosts, inventory, &observer);
    ui.finish();
    outcome(&plan.vm, result, options.json)
}

/// The plan onto DEST, or onto the roomiest inventory hypervisor (matching
/// `--to-query`) other than the source.
fn planned(
    global: &Global,
    args: &MigrateArgs,
    one: &Move,
    inv: Option<&Client>,
) -> anyhow::Result<Planned> {
    if let Some(dest) = args.dest.as_ref().or(args.to.as_ref()) {
        let uri = resolve_uri(global, dest)?;
        let name = destination_name(inv, dest, &uri);
        return one.plan_to(&uri, name.as_deref()).map_err(fleet_error);
    }
    let inv = inv.ok_or_else(|| {
        Exit::new(
            exit::USAGE,
            "no destination given and no inventory configured: give DEST (a libvirt URI), or --url of a herd server",
        )
    })?;
    let candidates = fleet::candidates(inv, args.to_query.as_deref(), one.source);
    one.plan_best(&candidates.map_err(fleet_error)?)
        .map_err(fleet_error)
}

/// The plan, or the refusal (as JSON too) with its exit code.
fn accepted(plan: Result<Plan, Refusal>, json: bool) -> anyhow::Result<Plan> {
    plan.map_err(|refusal| {
        if json {
            println!("{}", serde_json::json!({ "refused": refusal }));
        }
        Exit::new(exit::PLAN_REFUSED, refusal.to_string()).into()
    })
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

/// How this process runs migrations: Ctrl-C/SIGTERM cancel and undo.
fn runner(options: &Options) -> anyhow::Result<Runner> {
    Ok(Runner {
        cancel: exec::cancel_on_signals()?,
        undo_timeout: Duration::from_secs(options.undo_timeout),
        history: history_path(options),
        owner: owner(),
    })
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

/// The inventory, when one is configured (`--url`, `HERD_URL` or the
/// config file); an unreadable config file counts as none.
fn inventory(global: &Global) -> anyhow::Result<Option<Client>> {
    let configured = global.url.is_some()
        || crate::config::Config::load(global)
            .map(|c| c.url.is_some())
            .unwrap_or(false);
    if !configured {
        return Ok(None);
    }
    super::inventory::client(global).map(Some)
}

/// A libvirt URI as it is, anything else as an inventory hypervisor.
fn resolve_uri(global: &Global, hv: &str) -> anyhow::Result<String> {
    if is_uri(hv) {
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
    let recorded = vm_object.and_then(fleet::recorded_hypervisor);
    if let Some(from) = &args.from {
        let uri = resolve_uri(global, from)?;
        return Ok((
            uri,
            recorded.or_else(|| (!is_uri(from)).then(|| from.clone())),
        ));
    }
    let Some(hv) = recorded else {
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

/// The inventory name of a destination given as a name or as a URI.
fn destination_name(inv: Option<&Client>, given: &str, uri: &str) -> Option<String> {
    if !is_uri(given) {
        return Some(given.to_string());
    }
    fleet::name_of_uri(inv?, uri)
}

fn break_lock(
    source: &str,
    vm: &str,
    inventory: Option<&mut dyn exec::Inventory>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let conn = herd_migrate::libvirt::open(source)
        .map_err(|e| Exit::new(exit::FAILURE, format!("cannot connect to {source}: {e}")))?;
    let result = exec::break_lock(&conn, vm, inventory);
    if json {
        if let Ok(broken) = &result {
            println!("{}", serde_json::json!({ "vm": vm, "broken_lock": broken }));
        }
    }
    match result {
        Ok(_) if json => Ok(ExitCode::SUCCESS),
        Ok(Some(broken)) => {
            let lock = &broken.lock;
            println!(
                "removed the lock of {} (since {}, to {}) from {vm}",
                lock.owner, lock.since, lock.destination
            );
            for v in &broken.deleted {
                println!("deleted {v} on the destination (created by that process)");
            }
            if broken.finished {
                println!(
                    "{vm} had reached {source}: finished its move from {}",
                    lock.source
                );
            }
            for v in &broken.deleted_on_source {
                println!("deleted source volume {v} on {}", lock.source);
            }
            if let Some((from, to)) = &broken.inventory {
                println!("inventory: {vm} hypervisor {from} -> {to}");
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
