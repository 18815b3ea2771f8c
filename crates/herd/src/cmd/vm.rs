//! `herd vm create|start|stop|delete|list|info|migrate`: VMs over libvirt
//! (herd-virt). `--on HV` takes a libvirt URI or an inventory hypervisor.

use super::exit::{self, Exit};
use super::hv::virt_error;
use super::Global;
use herd_virt::{
    format_size, parse_size, Accel, DomainFacts, Hypervisor, Nic, Stop, VmSpec, VolumeFormat,
};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
herd vm create vm1 --on qemu:///system --memory 512M --vcpus 1 --disk 10G\n  \
herd vm start vm1 --on qemu+ssh://root@hv1/system\n  \
LIBVIRT_DEFAULT_URI=qemu:///system herd vm list")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Create a VM: a sparse disk volume in a pool and a persistent domain.
    Create(CreateArgs),
    /// Start a VM.
    Start(NameArgs),
    /// Shut a VM down (ACPI), or power it off with --force.
    Stop(StopArgs),
    /// Undefine a VM and delete its disk volumes.
    Delete(DeleteArgs),
    /// List the VMs of a hypervisor.
    List(ListArgs),
    /// Show one VM: state, CPU, memory, disks (pool, volume, format, sizes), networks.
    Info(NameArgs),
    /// Live-migrate a VM to another hypervisor.
    Migrate(super::migrate::MigrateArgs),
}

#[derive(clap::Args, Debug)]
struct On {
    /// Hypervisor: a libvirt URI (qemu+ssh://root@hv1/system) or an
    /// inventory hypervisor's hostname; none: LIBVIRT_DEFAULT_URI, as virsh.
    #[arg(long, value_name = "HV")]
    on: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    name: String,
    #[command(flatten)]
    on: On,
    /// Memory (512M, 2G).
    #[arg(long, default_value = "512M")]
    memory: String,
    #[arg(long, default_value_t = 1)]
    vcpus: u32,
    /// Disk capacity (10G); the volume is created sparse.
    #[arg(long, default_value = "10G")]
    disk: String,
    #[arg(long, value_enum, default_value_t = Format::Qcow2)]
    format: Format,
    /// Storage pool of the disk.
    #[arg(long, default_value = "default")]
    pool: String,
    /// libvirt network to attach to [default: default].
    #[arg(long, group = "nic")]
    network: Option<String>,
    /// Host bridge to attach to.
    #[arg(long, group = "nic")]
    bridge: Option<String>,
    /// Host device for a macvtap interface (bridge mode).
    #[arg(long, group = "nic")]
    macvtap: Option<String>,
    /// No network interface.
    #[arg(long, group = "nic")]
    no_network: bool,
    /// KVM or TCG (emulation); auto uses KVM where the host has it.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    accel: AccelArg,
    /// Start the VM once created.
    #[arg(long)]
    start: bool,
    /// Check and show what would be created; create nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Qcow2,
    Raw,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

#[derive(clap::Args, Debug)]
struct NameArgs {
    name: String,
    #[command(flatten)]
    on: On,
}

#[derive(clap::Args, Debug)]
struct StopArgs {
    name: String,
    #[command(flatten)]
    on: On,
    /// Power off at once instead of an ACPI shutdown.
    #[arg(long)]
    force: bool,
    /// Seconds to wait for an ACPI shutdown.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(clap::Args, Debug)]
struct DeleteArgs {
    name: String,
    #[command(flatten)]
    on: On,
    /// Keep the disk volumes.
    #[arg(long)]
    keep_disks: bool,
    /// Power a running VM off first.
    #[arg(long)]
    force: bool,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    on: On,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Create(a) => create(global, a),
        Command::Start(a) => {
            let hv = open(global, &a.on)?;
            let d = hv.start(&a.name).map_err(virt_error)?;
            done(&a.on, &d, "started")
        }
        Command::Stop(a) => {
            let hv = open(global, &a.on)?;
            let how = if a.force {
                Stop::Force
            } else {
                Stop::Graceful(Duration::from_secs(a.timeout))
            };
            if !a.force && !a.on.json {
                eprintln!("shutting {} down (up to {} s)...", a.name, a.timeout);
            }
            let d = hv.stop(&a.name, how).map_err(virt_error)?;
            done(&a.on, &d, "stopped")
        }
        Command::Delete(a) => delete(global, a),
        Command::List(a) => list(global, a),
        Command::Info(a) => {
            let hv = open(global, &a.on)?;
            let d = hv.domain(&a.name).map_err(virt_error)?;
            if a.on.json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print_info(hv.uri(), &d);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(a) => super::migrate::migrate(global, a),
    }
}

fn create(global: &Global, a: CreateArgs) -> anyhow::Result<ExitCode> {
    let usage = |e: herd_virt::VirtError| Exit::new(exit::USAGE, e.to_string());
    let nic = if a.no_network {
        Nic::None
    } else if let Some(b) = a.bridge {
        Nic::Bridge(b)
    } else if let Some(d) = a.macvtap {
        Nic::Macvtap(d)
    } else {
        Nic::Network(a.network.unwrap_or_else(|| "default".to_string()))
    };
    let spec = VmSpec {
        name: a.name.clone(),
        memory: parse_size(&a.memory).map_err(usage)?,
        vcpus: a.vcpus,
        disk: parse_size(&a.disk).map_err(usage)?,
        format: match a.format {
            Format::Qcow2 => VolumeFormat::Qcow2,
            Format::Raw => VolumeFormat::Raw,
        },
        pool: a.pool,
        nic,
        accel: match a.accel {
            AccelArg::Auto => None,
            AccelArg::Kvm => Some(Accel::Kvm),
            AccelArg::Tcg => Some(Accel::Tcg),
        },
    };
    if spec.vcpus == 0 || spec.memory < (1 << 20) || spec.disk == 0 {
        return Err(Exit::new(
            exit::USAGE,
            "a VM needs at least 1 vCPU, 1 MiB of memory and a disk larger than 0",
        )
        .into());
    }
    let hv = open(global, &a.on)?;
    if a.dry_run {
        let plan = hv.plan_vm(&spec).map_err(virt_error)?;
        if a.on.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
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
        return Ok(ExitCode::SUCCESS);
    }
    let mut d = hv.create_vm(&spec).map_err(virt_error)?;
    if a.start {
        d = hv.start(&spec.name).map_err(virt_error)?;
    }
    done(
        &a.on,
        &d,
        if a.start {
            "created and started"
        } else {
            "created"
        },
    )
}

fn delete(global: &Global, a: DeleteArgs) -> anyhow::Result<ExitCode> {
    let hv = open(global, &a.on)?;
    if a.dry_run {
        let d = hv.domain(&a.name).map_err(virt_error)?;
        let volumes: Vec<String> = d
            .disks
            .iter()
            .filter(|disk| disk.device == "disk")
            .filter_map(|disk| Some(format!("{}/{}", disk.pool.as_ref()?, disk.volume.as_ref()?)))
            .collect();
        if a.on.json {
            println!(
                "{}",
                serde_json::json!({"name": d.name, "state": d.state, "would_delete_volumes":
                    if a.keep_disks { Vec::new() } else { volumes.clone() }})
            );
        } else {
            println!("would undefine {} ({}) on {}", d.name, d.state, hv.uri());
            if d.state.is_active() {
                println!("  it is {}: needs --force (powers it off)", d.state);
            }
            if !a.keep_disks {
                for v in &volumes {
                    println!("would delete volume {v}");
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let deleted = hv
        .delete(&a.name, a.keep_disks, a.force)
        .map_err(virt_error)?;
    if a.on.json {
        println!("{}", serde_json::to_string_pretty(&deleted)?);
    } else {
        println!("{} deleted from {}", deleted.name, hv.uri());
        for v in &deleted.volumes_deleted {
            println!("  volume {v} deleted");
        }
        for k in &deleted.disks_kept {
            println!("  disk {k} kept");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(global: &Global, a: ListArgs) -> anyhow::Result<ExitCode> {
    let hv = open(global, &a.on)?;
    let domains = hv.domains().map_err(virt_error)?;
    if a.on.json {
        println!("{}", serde_json::to_string_pretty(&domains)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["NAME", "STATE", "VCPUS", "MEMORY", "DISK", "TYPE"]);
    for d in &domains {
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
    Ok(ExitCode::SUCCESS)
}

fn done(on: &On, d: &DomainFacts, what: &str) -> anyhow::Result<ExitCode> {
    if on.json {
        println!("{}", serde_json::to_string_pretty(d)?);
    } else {
        println!("{} {what} ({})", d.name, d.state);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_info(uri: &str, d: &DomainFacts) {
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

/// Connect to `--on`: a URI as it is, anything else as an inventory name.
fn open(global: &Global, on: &On) -> anyhow::Result<Hypervisor> {
    let uri = match on.on.as_deref() {
        None => None,
        Some(text) if text.contains("://") => Some(text.to_string()),
        Some(name) => Some(inventory_uri(global, name)?),
    };
    Hypervisor::open(uri.as_deref()).map_err(virt_error)
}

/// The `libvirt_uri` of an inventory hypervisor.
pub(crate) fn inventory_uri(global: &Global, name: &str) -> anyhow::Result<String> {
    let client = super::inventory::client(global)?;
    let object = client.get(name).map_err(super::inventory::client_error)?;
    match object.get("libvirt_uri") {
        Some(herd_model::Value::String(uri)) if !uri.is_empty() => Ok(uri.clone()),
        _ => Err(Exit::new(
            exit::NOT_FOUND,
            format!(
                "{name} has no libvirt_uri in the inventory; pass a libvirt URI to --on, \
                 or register it with `herd hv bootstrap URI --name {name}`"
            ),
        )
        .into()),
    }
}
