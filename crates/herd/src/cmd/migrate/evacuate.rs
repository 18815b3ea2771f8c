//! `herd hv evacuate`: every VM of a hypervisor to the roomiest candidate,
//! a few at a time (herd-fleet's `Evacuation`).

use super::progress::Ui;
use super::{inventory, request, resolve_uri, runner, Options};
use crate::cmd::exit::{self, Exit};
use crate::cmd::hv::fleet_error;
use crate::cmd::Global;
use herd_client::Client;
use herd_fleet::inventory as fleet;
use herd_fleet::migration::{self, Evacuated, Evacuation};
use herd_fleet::{is_uri, Hv};
use herd_migrate::exec::Notice;
use std::process::ExitCode;

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

pub fn evacuate(global: &Global, args: EvacuateArgs) -> anyhow::Result<ExitCode> {
    let inv = inventory(global)?;
    let source = resolve_uri(global, &args.hv)?;
    let source_name = (!is_uri(&args.hv)).then(|| args.hv.clone());
    let candidates = destinations(global, &args, inv.as_ref(), &source)?;
    let vms = domain_names(&source)?;
    let options = &args.options;
    let request = request(options, None)?;
    let runner = runner(options)?;
    let evacuation = Evacuation {
        source: &source,
        source_name: source_name.as_deref(),
        candidates: &candidates,
        request: &request,
        inventory: inv.as_ref(),
        dry_run: options.dry_run,
        runner: &runner,
        held: Default::default(),
    };
    let results = migration::evacuate(&vms, args.parallel, |vm| {
        let ui = Ui::new(options.json, Some(vm.to_string()));
        let observer = |n: &Notice| ui.notice(n);
        let result = evacuation.one(vm, &observer);
        ui.finish();
        result
    });
    print_evacuation(&source, &results, options.json);
    if runner.cancelled() {
        let message = "interrupted; the VM in flight was moved back";
        return Err(Exit::new(exit::INTERRUPTED, message).into());
    }
    if results.iter().any(|r| !r.status.succeeded()) {
        return Err(Exit::new(exit::FAILURE, "some VMs were not moved (see above)").into());
    }
    Ok(ExitCode::SUCCESS)
}

/// `--to` as given, or the inventory's hypervisors matching `--to-query`
/// other than the source.
fn destinations(
    global: &Global,
    args: &EvacuateArgs,
    inv: Option<&Client>,
    source: &str,
) -> anyhow::Result<Vec<Hv>> {
    if args.to.is_empty() {
        let none = "no --to given and no inventory configured: name the destinations with --to URI";
        let inv = inv.ok_or_else(|| Exit::new(exit::USAGE, none))?;
        return fleet::candidates(inv, args.to_query.as_deref(), source).map_err(fleet_error);
    }
    // A destination given as a URI keeps its inventory name when the
    // inventory has it: the VM's `hypervisor` is set to that name.
    let hv = |t: &String| {
        let name = match inv {
            Some(inv) if is_uri(t) => fleet::name_of_uri(inv, t),
            _ => None,
        };
        Ok(Hv {
            name: name.unwrap_or_else(|| t.clone()),
            uri: resolve_uri(global, t)?,
        })
    };
    args.to.iter().map(hv).collect()
}

/// The names of the domains on `source`.
fn domain_names(source: &str) -> anyhow::Result<Vec<String>> {
    let failed = |what: String| Exit::new(exit::FAILURE, what);
    let conn = herd_migrate::libvirt::open(source)
        .map_err(|e| failed(format!("cannot connect to {source}: {e}")))?;
    let domains = conn
        .list_all_domains(0)
        .map_err(|e| failed(format!("list domains on {source}: {e}")))?;
    Ok(domains.iter().filter_map(|d| d.name().ok()).collect())
}

fn print_evacuation(source: &str, results: &[Evacuated], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "evacuate": source, "vms": results })
        );
        return;
    }
    for r in results {
        println!("{:<20} {:<8} {}", r.vm, r.status.as_str(), r.detail);
    }
    if results.is_empty() {
        println!("no VM on {source}");
    }
}
