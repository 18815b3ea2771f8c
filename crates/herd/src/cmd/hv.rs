//! `herd hv bootstrap|info|evacuate`: hypervisors over libvirt (herd-virt).

use super::exit::{self, Exit};
use super::Global;
use herd_fleet::FleetError;
use herd_migrate::gather::GatherError;
use herd_virt::bootstrap::DEFAULT_IMAGES_DIR;
use herd_virt::{check, format_size, BootstrapOptions, HostFacts, Hypervisor, VirtError};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Make hypervisors ready for VMs (idempotent): the `default` dir pool
    /// and the `default` NAT network, defined, autostarted and started; then
    /// report each host. Host UUIDs shared by two of the given hypervisors
    /// are flagged (libvirt refuses to migrate between them).
    Bootstrap(BootstrapArgs),
    /// Report a hypervisor without changing it: versions, KVM or TCG, host
    /// UUID, CPU, memory, pools and networks.
    Info(InfoArgs),
    /// Move every VM off a hypervisor.
    Evacuate(super::migrate::EvacuateArgs),
}

#[derive(clap::Args, Debug)]
struct BootstrapArgs {
    /// libvirt URIs (qemu:///system, qemu+ssh://root@hv1/system, ...);
    /// none: LIBVIRT_DEFAULT_URI, as virsh does.
    uris: Vec<String>,
    /// Directory of the `default` pool.
    #[arg(long, default_value = DEFAULT_IMAGES_DIR)]
    images_dir: String,
    /// Show what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Hostname to register the hypervisor under in the inventory (with
    /// one URI only); default: the hostname libvirt reports.
    #[arg(long)]
    name: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct InfoArgs {
    /// libvirt URI; none: LIBVIRT_DEFAULT_URI.
    uri: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Bootstrap(a) => bootstrap(global, a),
        Command::Info(a) => info(a),
        Command::Evacuate(a) => super::migrate::evacuate(global, a),
    }
}

fn bootstrap(global: &Global, args: BootstrapArgs) -> anyhow::Result<ExitCode> {
    if args.name.is_some() && args.uris.len() > 1 {
        return Err(Exit::new(
            exit::USAGE,
            "--name names one hypervisor: give one URI with it",
        )
        .into());
    }
    let inventory = if args.dry_run {
        None
    } else {
        super::vm::inventory(global)?
    };
    let uris: Vec<Option<&str>> = if args.uris.is_empty() {
        vec![None]
    } else {
        args.uris.iter().map(|u| Some(u.as_str())).collect()
    };
    let opts = BootstrapOptions {
        images_dir: args.images_dir.clone(),
        dry_run: args.dry_run,
    };
    let mut reports = Vec::new();
    for uri in uris {
        if !args.json {
            eprintln!("bootstrapping {}...", uri.unwrap_or("LIBVIRT_DEFAULT_URI"));
        }
        let hv = Hypervisor::open(uri).map_err(virt_error)?;
        let report = hv.bootstrap(&opts).map_err(virt_error)?;
        let registered = match &inventory {
            Some(client) => {
                let name = args
                    .name
                    .clone()
                    .unwrap_or_else(|| report.host.hostname.clone());
                let outcome = herd_fleet::inventory::register_hypervisor(client, &name, hv.uri())
                    .map_err(fleet_error)?;
                Some(serde_json::json!({"hostname": name, "inventory": outcome.as_str()}))
            }
            None => None,
        };
        if !args.json {
            print_bootstrap(&report);
            if let Some(r) = &registered {
                println!(
                    "inventory: hypervisor {} {}\n",
                    r["hostname"].as_str().unwrap_or("?"),
                    r["inventory"].as_str().unwrap_or("?")
                );
            }
        }
        let mut value = serde_json::to_value(&report)?;
        value["inventory"] = registered.unwrap_or(serde_json::Value::Null);
        reports.push((report, value));
    }
    let ids: Vec<(String, String)> = reports
        .iter()
        .map(|(r, _)| (r.uri.clone(), r.host.host_uuid.clone()))
        .collect();
    let reports: Vec<serde_json::Value> = reports.into_iter().map(|(_, v)| v).collect();
    let duplicates = check::duplicate_host_uuids(&ids);
    if args.json {
        let dups: Vec<_> = duplicates
            .iter()
            .map(|(uuid, uris)| serde_json::json!({"host_uuid": uuid, "uris": uris}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"hosts": reports, "duplicate_host_uuids": dups})
            )?
        );
    }
    if !duplicates.is_empty() {
        let lines: Vec<String> = duplicates
            .iter()
            .map(|(uuid, uris)| format!("  {uuid}: {}", uris.join(", ")))
            .collect();
        return Err(Exit::new(
            exit::CONFLICT,
            format!(
                "hypervisors share a host UUID, so libvirt will refuse to migrate between them:\n{}\n\
                 give each a distinct host_uuid in /etc/libvirt/libvirtd.conf and restart libvirtd",
                lines.join("\n")
            ),
        )
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

fn info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let hv = Hypervisor::open(args.uri.as_deref()).map_err(virt_error)?;
    let facts = hv.facts().map_err(virt_error)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&facts)?);
    } else {
        print_host(&facts);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_bootstrap(report: &herd_virt::BootstrapReport) {
    let verb = if report.dry_run { "would" } else { "did" };
    if report.steps.is_empty() {
        println!("{}: already bootstrapped, nothing changed", report.uri);
    } else {
        for step in &report.steps {
            println!("{}: {verb} {step}", report.uri);
        }
    }
    for note in &report.notes {
        println!("{}: note: {note}", report.uri);
    }
    print_host(&report.host);
    println!();
}

fn print_host(h: &HostFacts) {
    let accel = match h.accel {
        herd_virt::Accel::Kvm => "KVM",
        herd_virt::Accel::Tcg => "TCG (emulation, no usable /dev/kvm)",
    };
    println!("hypervisor  {} ({})", h.hostname, h.uri);
    println!("host UUID   {}", h.host_uuid);
    println!(
        "versions    libvirt {}, QEMU {}",
        h.libvirt_version, h.qemu_version
    );
    println!("accel       {accel}");
    println!(
        "CPU         {} x {} ({})",
        h.cpus,
        h.cpu_model.as_deref().unwrap_or("unknown model"),
        h.arch
    );
    println!(
        "memory      {} ({} free)",
        format_size(h.memory),
        format_size(h.free_memory)
    );
    if h.pools.is_empty() {
        println!("pools       none");
    }
    for p in &h.pools {
        let state = match (p.active, p.autostart) {
            (true, true) => "active, autostart",
            (true, false) => "active",
            (false, true) => "inactive, autostart",
            (false, false) => "inactive",
        };
        println!(
            "pool        {} ({} {}, {state}): {} capacity, {} free",
            p.name,
            p.kind,
            p.path,
            format_size(p.capacity),
            format_size(p.available)
        );
    }
    match &h.networks {
        None => println!("networks    not supported by this libvirtd"),
        Some(nets) if nets.is_empty() => println!("networks    none"),
        Some(nets) => {
            for n in nets {
                println!(
                    "network     {} (bridge {}, {}{})",
                    n.name,
                    n.bridge.as_deref().unwrap_or("-"),
                    if n.active { "active" } else { "inactive" },
                    if n.autostart { ", autostart" } else { "" }
                );
            }
        }
    }
}

/// Map herd-virt errors to exit codes (shared with `herd vm`).
pub(crate) fn virt_error(err: VirtError) -> anyhow::Error {
    let code = match &err {
        VirtError::BadUri(_) | VirtError::BadName(_) | VirtError::BadSize(_) => exit::USAGE,
        VirtError::DomainExists { .. } | VirtError::VolumeExists { .. } => exit::CONFLICT,
        VirtError::DomainNotFound { .. }
        | VirtError::PoolNotFound { .. }
        | VirtError::NetworkNotFound { .. } => exit::NOT_FOUND,
        VirtError::InsufficientSpace { .. }
        | VirtError::PoolInactive { .. }
        | VirtError::KvmUnavailable { .. }
        | VirtError::WrongState { .. } => exit::PLAN_REFUSED,
        _ => exit::FAILURE,
    };
    Exit::new(code, err.to_string()).into()
}

/// Map herd-fleet errors to exit codes (shared with `herd vm`).
pub(crate) fn fleet_error(err: FleetError) -> anyhow::Error {
    let message = err.to_string();
    let code = match err {
        FleetError::Client(e) => return super::inventory::client_error(e),
        FleetError::NotRecorded { source, .. } => {
            return super::inventory::client_error(source).context(message)
        }
        FleetError::NoLibvirtUri { .. } | FleetError::UnknownUri { .. } => exit::NOT_FOUND,
        FleetError::Gather(GatherError::NoVm { .. }) => exit::NOT_FOUND,
        FleetError::NotAHypervisor { .. } => exit::CONFLICT,
        FleetError::NoDestination(_) => exit::PLAN_REFUSED,
        FleetError::Gather(_) => exit::FAILURE,
    };
    Exit::new(code, message).into()
}
