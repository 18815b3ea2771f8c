//! What `herd vm` prints as text (and, with `--json`, as JSON).

use herd_virt::{format_size, DomainFacts, Hypervisor, VmPlan, VmSpec};
use serde::Serialize;
use std::process::ExitCode;

/// `value` as pretty JSON, or `text()`.
pub(super) fn json_or(
    json: bool,
    value: &impl Serialize,
    text: impl FnOnce(),
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        text();
    }
    Ok(ExitCode::SUCCESS)
}

/// A VM after a change: `vm1 started (running)`.
pub(super) fn done(json: bool, d: &DomainFacts, what: &str) -> anyhow::Result<ExitCode> {
    json_or(json, d, || println!("{} {what} ({})", d.name, d.state))
}

pub(super) fn create_plan(hv: &Hypervisor, spec: &VmSpec, plan: &VmPlan) {
    println!(
        "would create volume {}/{} ({}, {}, sparse) and define {} on {}:",
        spec.pool,
        plan.volume.name,
        spec.format.as_str(),
        format_size(spec.disk),
        spec.name,
        hv.uri()
    );
    print!("{}", herd_virt::xml::domain_xml(&plan.domain));
}

pub(super) fn delete_plan(json: bool, uri: &str, d: &DomainFacts, keep_disks: bool) {
    let volumes: Vec<String> = if keep_disks {
        Vec::new()
    } else {
        d.disks
            .iter()
            .filter(|disk| disk.device == "disk")
            .filter_map(|disk| Some(format!("{}/{}", disk.pool.as_ref()?, disk.volume.as_ref()?)))
            .collect()
    };
    if json {
        let plan =
            serde_json::json!({"name": d.name, "state": d.state, "would_delete_volumes": volumes});
        println!("{plan}");
        return;
    }
    println!("would undefine {} ({}) on {uri}", d.name, d.state);
    if d.state.is_active() {
        println!("  it is {}: needs --force (powers it off)", d.state);
    }
    for v in &volumes {
        println!("would delete volume {v}");
    }
}

pub(super) fn deleted(uri: &str, deleted: &herd_virt::Deleted) {
    println!("{} deleted from {uri}", deleted.name);
    for v in &deleted.volumes_deleted {
        println!("  volume {v} deleted");
    }
    for k in &deleted.disks_kept {
        println!("  disk {k} kept");
    }
}

pub(super) fn table(domains: &[DomainFacts]) {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["NAME", "STATE", "VCPUS", "MEMORY", "DISK", "TYPE"]);
    for d in domains {
        table.add_row([
            d.name.clone(),
            d.state.to_string(),
            d.vcpus.to_string(),
            format_size(d.memory),
            format_size(d.disk_capacity()),
            d.domain_type.clone(),
        ]);
    }
    println!("{table}");
}

pub(super) fn info(uri: &str, d: &DomainFacts) {
    println!("name        {}", d.name);
    println!("hypervisor  {uri}");
    println!("uuid        {}", d.uuid);
    println!(
        "state       {}{}{}",
        d.state,
        if d.persistent {
            ", persistent"
        } else {
            ", transient"
        },
        if d.autostart { ", autostart" } else { "" }
    );
    println!("type        {}", d.domain_type);
    println!("vcpus       {}", d.vcpus);
    println!("memory      {}", format_size(d.memory));
    for disk in &d.disks {
        let sizes = match (disk.capacity, disk.allocation) {
            (Some(c), Some(a)) => format!("{} ({} allocated)", format_size(c), format_size(a)),
            _ => "size unknown".to_string(),
        };
        let place = match (&disk.pool, &disk.volume) {
            (Some(p), Some(v)) => format!("{p}/{v}"),
            _ => disk.path.clone().unwrap_or_else(|| "-".to_string()),
        };
        println!(
            "disk        {} {} {} {} {sizes}",
            disk.target,
            disk.device,
            place,
            disk.format.as_deref().unwrap_or("-")
        );
    }
    for nic in &d.nics {
        println!(
            "interface   {} {}{} mac {}",
            nic.kind,
            nic.source.as_deref().unwrap_or("-"),
            nic.bridge
                .as_ref()
                .filter(|b| Some(*b) != nic.source.as_ref())
                .map(|b| format!(" (bridge {b})"))
                .unwrap_or_default(),
            nic.mac.as_deref().unwrap_or("-")
        );
    }
}
