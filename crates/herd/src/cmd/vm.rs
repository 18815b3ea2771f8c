//! `herd vm create|start|stop|delete|list|info|migrate|sync`: VMs over
//! libvirt (herd-virt), recorded in the inventory when one is configured
//! (herd-fleet). `--on HV` takes a libvirt URI or an inventory hypervisor.
//! `show` prints what libvirt says; `sync` is `herd vm sync`.

mod show;
mod sync;

use super::exit::{self, Exit};
use super::hv::{fleet_error, virt_error};
use super::Global;
use herd_client::Client;
use herd_fleet::inventory as fleet;
use herd_fleet::Recorder;
use herd_virt::{parse_size, Accel, DomainFacts, Hypervisor, Nic, Stop, VmSpec, VolumeFormat};
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
    /// Compare the inventory's VMs with libvirt's domains and repair the
    /// inventory: record unrecorded VMs, correct hypervisor, memory,
    /// num_cpu, disk_size_gib and state. VMs the inventory places on a
    /// checked hypervisor but no checked hypervisor runs are reported only.
    Sync(sync::SyncArgs),
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
    /// Name of the VM (letters, digits, '.', '_', '-'); its disk is NAME.FORMAT.
    name: String,
    #[command(flatten)]
    on: On,
    /// Memory (512M, 2G).
    #[arg(long, default_value = "512M")]
    memory: String,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 1)]
    vcpus: u32,
    /// Disk capacity (10G); the volume is created sparse.
    #[arg(long, default_value = "10G")]
    disk: String,
    /// Disk image format.
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
    /// Name of the VM.
    name: String,
    #[command(flatten)]
    on: On,
}

#[derive(clap::Args, Debug)]
struct StopArgs {
    /// Name of the VM.
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
    /// Name of the VM.
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
        Command::Start(a) => start(global, a),
        Command::Stop(a) => stop(global, a),
        Command::Delete(a) => delete(global, a),
        Command::List(a) => list(global, a),
        Command::Info(a) => info(global, a),
        Command::Migrate(a) => super::migrate::migrate(global, a),
        Command::Sync(a) => sync::run(global, a),
    }
}

fn create(global: &Global, a: CreateArgs) -> anyhow::Result<ExitCode> {
    let spec = a.spec()?;
    let hv = open(global, &a.on)?;
    if a.dry_run {
        let plan = hv.plan_vm(&spec).map_err(virt_error)?;
        return show::json_or(a.on.json, &plan, || show::create_plan(&hv, &spec, &plan));
    }
    let recorder = recorder(global, &a.on, &hv)?;
    let mut d = hv.create_vm(&spec).map_err(virt_error)?;
    if a.start {
        d = hv.start(&spec.name).map_err(virt_error)?;
    }
    if let Some(r) = &recorder {
        r.record(&d).map_err(fleet_error)?;
    }
    let what = if a.start {
        "created and started"
    } else {
        "created"
    };
    show::done(a.on.json, &d, what)
}

impl CreateArgs {
    /// The VM to create, checked as far as the arguments go.
    fn spec(&self) -> anyhow::Result<VmSpec> {
        let usage = |e: herd_virt::VirtError| Exit::new(exit::USAGE, e.to_string());
        let spec = VmSpec {
            name: self.name.clone(),
            memory: parse_size(&self.memory).map_err(usage)?,
            vcpus: self.vcpus,
            disk: parse_size(&self.disk).map_err(usage)?,
            format: match self.format {
                Format::Qcow2 => VolumeFormat::Qcow2,
                Format::Raw => VolumeFormat::Raw,
            },
            pool: self.pool.clone(),
            nic: self.nic(),
            accel: match self.accel {
                AccelArg::Auto => None,
                AccelArg::Kvm => Some(Accel::Kvm),
                AccelArg::Tcg => Some(Accel::Tcg),
            },
        };
        if spec.vcpus == 0 || spec.memory < (1 << 20) || spec.disk == 0 {
            let message = "a VM needs at least 1 vCPU, 1 MiB of memory and a disk larger than 0";
            return Err(Exit::new(exit::USAGE, message).into());
        }
        Ok(spec)
    }

    fn nic(&self) -> Nic {
        if self.no_network {
            Nic::None
        } else if let Some(b) = &self.bridge {
            Nic::Bridge(b.clone())
        } else if let Some(d) = &self.macvtap {
            Nic::Macvtap(d.clone())
        } else {
            Nic::Network(
                self.network
                    .clone()
                    .unwrap_or_else(|| "default".to_string()),
            )
        }
    }
}

fn start(global: &Global, a: NameArgs) -> anyhow::Result<ExitCode> {
    let hv = open(global, &a.on)?;
    let d = hv.start(&a.name).map_err(virt_error)?;
    record(global, &a.on, &hv, &d)?;
    show::done(a.on.json, &d, "started")
}

fn stop(global: &Global, a: StopArgs) -> anyhow::Result<ExitCode> {
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
    record(global, &a.on, &hv, &d)?;
    show::done(a.on.json, &d, "stopped")
}

fn delete(global: &Global, a: DeleteArgs) -> anyhow::Result<ExitCode> {
    let hv = open(global, &a.on)?;
    if a.dry_run {
        let d = hv.domain(&a.name).map_err(virt_error)?;
        show::delete_plan(a.on.json, hv.uri(), &d, a.keep_disks);
        return Ok(ExitCode::SUCCESS);
    }
    let recorder = recorder(global, &a.on, &hv)?;
    let deleted = hv
        .delete(&a.name, a.keep_disks, a.force)
        .map_err(virt_error)?;
    if let Some(r) = &recorder {
        r.forget(&a.name).map_err(fleet_error)?;
    }
    show::json_or(a.on.json, &deleted, || show::deleted(hv.uri(), &deleted))
}

fn list(global: &Global, a: ListArgs) -> anyhow::Result<ExitCode> {
    let hv = open(global, &a.on)?;
    let domains = hv.domains().map_err(virt_error)?;
    show::json_or(a.on.json, &domains, || show::table(&domains))
}

fn info(global: &Global, a: NameArgs) -> anyhow::Result<ExitCode> {
    let hv = open(global, &a.on)?;
    let d = hv.domain(&a.name).map_err(virt_error)?;
    show::json_or(a.on.json, &d, || show::info(hv.uri(), &d))
}

/// Connect to `--on`: a URI as it is, anything else as an inventory name.
fn open(global: &Global, on: &On) -> anyhow::Result<Hypervisor> {
    let uri = match on.on.as_deref() {
        None => None,
        Some(text) if herd_fleet::is_uri(text) => Some(text.to_string()),
        Some(name) => Some(inventory_uri(global, name)?),
    };
    Hypervisor::open(uri.as_deref()).map_err(virt_error)
}

/// Record a VM in the inventory, when there is one that knows `hv`.
fn record(global: &Global, on: &On, hv: &Hypervisor, d: &DomainFacts) -> anyhow::Result<()> {
    match recorder(global, on, hv)? {
        Some(r) => r.record(d).map_err(fleet_error),
        None => Ok(()),
    }
}

/// The recorder of `hv`'s VMs, when an inventory is configured and knows `hv`.
fn recorder(global: &Global, on: &On, hv: &Hypervisor) -> anyhow::Result<Option<Recorder>> {
    let Some(client) = inventory(global)? else {
        return Ok(None);
    };
    let name = match on.on.as_deref() {
        Some(name) if !herd_fleet::is_uri(name) => Some(name.to_string()),
        _ => fleet::hypervisor_named_by_uri(&client, hv.uri()).map_err(fleet_error)?,
    };
    if name.is_none() {
        eprintln!(
            "note: {} is not a hypervisor in the inventory (no libvirt_uri matches); \
             register it with `herd hv bootstrap '{}' --name NAME`",
            hv.uri(),
            hv.uri()
        );
    }
    Ok(name.map(|name| Recorder::new(client, name)))
}

/// The inventory client when one is configured (--url, HERD_URL or `url`
/// in the config file); `None` otherwise.
pub(crate) fn inventory(global: &Global) -> anyhow::Result<Option<Client>> {
    let configured = global.url.is_some() || crate::config::Config::load(global)?.url.is_some();
    if !configured {
        return Ok(None);
    }
    super::inventory::client(global).map(Some)
}

/// The `libvirt_uri` of an inventory hypervisor.
pub(crate) fn inventory_uri(global: &Global, name: &str) -> anyhow::Result<String> {
    let client = super::inventory::client(global)?;
    fleet::hypervisor_uri(&client, name).map_err(fleet_error)
}
