//! `herd vm sync`: libvirt's domains against the inventory's VMs; the
//! differences come from herd-fleet's pure `drift`, the repairs from its
//! recorder.

use super::{fleet, inventory};
use crate::cmd::exit::{self, Exit};
use crate::cmd::hv::fleet_error;
use crate::cmd::Global;
use herd_fleet::{Drift, Observed};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(super) struct SyncArgs {
    /// Hypervisors to check (URIs or inventory names); default: every
    /// inventory hypervisor with a libvirt_uri.
    #[arg(long, value_name = "HV")]
    on: Vec<String>,
    /// Report the drift; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(global: &Global, a: SyncArgs) -> anyhow::Result<ExitCode> {
    let Some(client) = inventory(global)? else {
        return Err(Exit::new(
            exit::USAGE,
            "herd vm sync compares libvirt with the inventory: configure one with --url, HERD_URL or `url` in the config file",
        )
        .into());
    };
    let targets = if a.on.is_empty() {
        fleet::hypervisors(&client)
    } else {
        a.on.iter()
            .map(|hv| fleet::hypervisor(&client, hv))
            .collect()
    };
    let (observed, unreachable) = herd_fleet::observe(&targets.map_err(fleet_error)?);
    for (name, e) in unreachable.iter().filter(|_| !a.json) {
        eprintln!("warning: {name} skipped: {e}");
    }
    let found = herd_fleet::drift(&observed, &fleet::vms(&client).map_err(fleet_error)?);
    if !a.dry_run {
        fleet::repair(&client, &observed, &found).map_err(fleet_error)?;
    }
    let unreachable: Vec<&String> = unreachable.iter().map(|(name, _)| name).collect();
    print_sync(&a, &observed, &unreachable, &found)?;
    Ok(if unreachable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILURE)
    })
}

fn print_sync(
    a: &SyncArgs,
    observed: &[Observed],
    unreachable: &[&String],
    found: &[Drift],
) -> anyhow::Result<()> {
    if a.json {
        let checked: Vec<&String> = observed.iter().map(|o| &o.hypervisor).collect();
        let report = serde_json::json!({"checked": checked, "unreachable": unreachable,
            "drift": found, "repaired": !a.dry_run});
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for d in found {
        let fixed = !a.dry_run && d.repairable();
        println!("{d}{}", if fixed { " (repaired)" } else { "" });
    }
    let verb = if a.dry_run { "found" } else { "repaired" };
    let (checked, differences) = (observed.len(), found.len());
    println!("{checked} hypervisor(s) checked, {differences} difference(s) {verb}");
    Ok(())
}
