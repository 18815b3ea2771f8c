//! `herd vm create|start|stop|delete|list|info|migrate`: VMs over libvirt
//! (herd-virt). `--on HV` takes a libvirt URI or an inventory hypervisor.

use super::exit::{self, Exit};
use super::hv::virt_error;
use super::Global;
use herd_client::{commit_of, Client, ClientError, Filter, Query, Value};
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
    /// Compare the inventory's VMs with libvirt's domains and repair the
    /// inventory: record unrecorded VMs, correct hypervisor, memory,
    /// num_cpu, disk_size_gib and state. VMs the inventory places on a
    /// checked hypervisor but no checked hypervisor runs are reported only.
    Sync(SyncArgs),
}

#[derive(clap::Args, Debug)]
struct SyncArgs {
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
        Command::Start(a) => {
            let hv = open(global, &a.on)?;
            let d = hv.start(&a.name).map_err(virt_error)?;
            record(global, &a.on, &hv, &d)?;
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
            record(global, &a.on, &hv, &d)?;
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
        Command::Sync(a) => sync(global, a),
    }
}

/// Record a VM in the inventory, when there is one that knows `hv`.
fn record(global: &Global, on: &On, hv: &Hypervisor, d: &DomainFacts) -> anyhow::Result<()> {
    match Recorder::find(global, on, hv)? {
        Some(r) => r.record(d),
        None => Ok(()),
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
    let recorder = Recorder::find(global, &a.on, &hv)?;
    let mut d = hv.create_vm(&spec).map_err(virt_error)?;
    if a.start {
        d = hv.start(&spec.name).map_err(virt_error)?;
    }
    if let Some(r) = &recorder {
        r.record(&d)?;
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
    let recorder = Recorder::find(global, &a.on, &hv)?;
    let deleted = hv
        .delete(&a.name, a.keep_disks, a.force)
        .map_err(virt_error)?;
    if let Some(r) = &recorder {
        r.forget(&a.name)?;
    }
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

/// The inventory and the hypervisor's name there, when an inventory is
/// configured and knows the hypervisor.
struct Recorder {
    client: Client,
    hypervisor: String,
}

impl Recorder {
    fn find(global: &Global, on: &On, hv: &Hypervisor) -> anyhow::Result<Option<Recorder>> {
        let Some(client) = inventory(global)? else {
            return Ok(None);
        };
        let hypervisor = match on.on.as_deref() {
            Some(name) if !name.contains("://") => Some(name.to_string()),
            _ => hypervisor_named_by_uri(&client, hv.uri())?,
        };
        match hypervisor {
            Some(hypervisor) => Ok(Some(Recorder { client, hypervisor })),
            None => {
                eprintln!(
                    "note: {} is not a hypervisor in the inventory (no libvirt_uri matches); \
                     register it with `herd hv bootstrap '{}' --name NAME`",
                    hv.uri(),
                    hv.uri()
                );
                Ok(None)
            }
        }
    }

    /// Create or update the VM's object from what libvirt says.
    fn record(&self, d: &DomainFacts) -> anyhow::Result<()> {
        let wanted = vm_attributes(d, &self.hypervisor);
        let mut object = match self.client.get(&d.name) {
            Ok(o) => o,
            Err(ClientError::NotFound { .. }) => {
                let mut o = self
                    .client
                    .new_object("vm")
                    .map_err(super::inventory::client_error)?;
                o.set("hostname", d.name.as_str());
                o
            }
            Err(e) => return Err(super::inventory::client_error(e)),
        };
        for (attribute, value) in wanted {
            if object.get(attribute) != Some(&value) {
                object.set(attribute, value);
            }
        }
        if object.is_dirty() {
            self.client
                .commit(&commit_of([&object]))
                .map_err(|e| inventory_failed(&d.name, e))?;
        }
        Ok(())
    }

    fn forget(&self, name: &str) -> anyhow::Result<()> {
        match self.client.get(name) {
            Ok(mut o) => {
                o.delete();
                self.client
                    .commit(&commit_of([&o]))
                    .map_err(|e| inventory_failed(name, e))?;
                Ok(())
            }
            Err(ClientError::NotFound { .. }) => Ok(()),
            Err(e) => Err(super::inventory::client_error(e)),
        }
    }
}

fn inventory_failed(name: &str, e: ClientError) -> anyhow::Error {
    super::inventory::client_error(e).context(format!(
        "libvirt has the change but the inventory does not; `herd vm sync` repairs {name}"
    ))
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

/// The hostname of the inventory hypervisor whose `libvirt_uri` is `uri`.
fn hypervisor_named_by_uri(client: &Client, uri: &str) -> anyhow::Result<Option<String>> {
    let query = Query::filter("servertype", Filter::Equals(Value::from("hypervisor")))
        .and("libvirt_uri", Filter::Equals(Value::from(uri)));
    let found = client
        .query(&query)
        .map_err(super::inventory::client_error)?;
    Ok(found.first().and_then(|o| o.hostname()).map(str::to_string))
}

/// Register a hypervisor (servertype `hypervisor`, `libvirt_uri`) or
/// update its URI. Returns what happened: created, updated or unchanged.
pub(crate) fn register_hypervisor(
    client: &Client,
    name: &str,
    uri: &str,
) -> anyhow::Result<&'static str> {
    let (mut object, outcome) = match client.get(name) {
        Ok(o) => {
            if o.servertype() != Some("hypervisor") {
                return Err(Exit::new(
                    exit::CONFLICT,
                    format!(
                        "{name} exists in the inventory as a {}, not a hypervisor; pass --name with another hostname",
                        o.servertype().unwrap_or("object")
                    ),
                )
                .into());
            }
            if o.get("libvirt_uri") == Some(&Value::from(uri)) {
                return Ok("unchanged");
            }
            (o, "updated")
        }
        Err(ClientError::NotFound { .. }) => {
            let mut o = client
                .new_object("hypervisor")
                .map_err(super::inventory::client_error)?;
            o.set("hostname", name);
            (o, "created")
        }
        Err(e) => return Err(super::inventory::client_error(e)),
    };
    object.set("libvirt_uri", uri);
    client
        .commit(&commit_of([&object]))
        .map_err(super::inventory::client_error)?;
    Ok(outcome)
}

/// The inventory attributes of a VM as libvirt describes it: `hypervisor`
/// (relation), `memory` (MiB), `num_cpu`, `disk_size_gib` (rounded up) and
/// `state`.
pub(crate) fn vm_attributes(d: &DomainFacts, hypervisor: &str) -> Vec<(&'static str, Value)> {
    const GIB: u64 = 1 << 30;
    vec![
        ("hypervisor", Value::from(hypervisor)),
        ("memory", Value::from((d.memory >> 20) as i64)),
        ("num_cpu", Value::from(i64::from(d.vcpus))),
        (
            "disk_size_gib",
            Value::from(d.disk_capacity().div_ceil(GIB) as i64),
        ),
        ("state", Value::from(state_name(d.state))),
    ]
}

fn state_name(s: herd_virt::DomainState) -> &'static str {
    use herd_virt::DomainState as S;
    match s {
        S::Running => "running",
        S::Paused => "paused",
        S::Shutdown => "shutdown",
        S::Shutoff => "shutoff",
        S::Crashed => "crashed",
        S::Suspended => "suspended",
        S::Other => "unknown",
    }
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

/// A difference between the inventory and libvirt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Drift {
    /// A domain on a checked hypervisor that the inventory lacks.
    Unrecorded { vm: String, hypervisor: String },
    /// An attribute whose inventory value differs from libvirt's.
    Changed {
        vm: String,
        attribute: String,
        inventory: Option<Value>,
        libvirt: Value,
    },
    /// The inventory places the VM on a checked hypervisor, but no checked
    /// hypervisor has it.
    Vanished { vm: String, hypervisor: String },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Unrecorded { vm, hypervisor } => {
                write!(f, "{vm}: on {hypervisor} but not in the inventory")
            }
            Drift::Changed {
                vm,
                attribute,
                inventory,
                libvirt,
            } => match inventory {
                Some(old) => write!(
                    f,
                    "{vm}: {attribute} is {old} in the inventory, {libvirt} in libvirt"
                ),
                None => write!(
                    f,
                    "{vm}: {attribute} is unset in the inventory, {libvirt} in libvirt"
                ),
            },
            Drift::Vanished { vm, hypervisor } => write!(
                f,
                "{vm}: the inventory places it on {hypervisor}, but no checked hypervisor has it"
            ),
        }
    }
}

/// Every difference between what the checked hypervisors run
/// (`observed`: hypervisor name and its domains) and the inventory's VMs
/// (hostname and attributes).
pub(crate) fn drift(
    observed: &[(String, Vec<DomainFacts>)],
    inventory: &[(String, std::collections::BTreeMap<String, Value>)],
) -> Vec<Drift> {
    let mut out = Vec::new();
    for (hypervisor, domains) in observed {
        for d in domains {
            let Some((_, attrs)) = inventory.iter().find(|(name, _)| *name == d.name) else {
                out.push(Drift::Unrecorded {
                    vm: d.name.clone(),
                    hypervisor: hypervisor.clone(),
                });
                continue;
            };
            for (attribute, value) in vm_attributes(d, hypervisor) {
                let current = attrs.get(attribute).filter(|v| **v != Value::Null);
                if current != Some(&value) {
                    out.push(Drift::Changed {
                        vm: d.name.clone(),
                        attribute: attribute.to_string(),
                        inventory: current.cloned(),
                        libvirt: value,
                    });
                }
            }
        }
    }
    for (name, attrs) in inventory {
        let Some(Value::String(hypervisor)) = attrs.get("hypervisor") else {
            continue;
        };
        let checked = observed.iter().any(|(hv, _)| hv == hypervisor);
        let seen = observed
            .iter()
            .any(|(_, domains)| domains.iter().any(|d| d.name == *name));
        if checked && !seen {
            out.push(Drift::Vanished {
                vm: name.clone(),
                hypervisor: hypervisor.clone(),
            });
        }
    }
    out
}

fn sync(global: &Global, a: SyncArgs) -> anyhow::Result<ExitCode> {
    let Some(client) = inventory(global)? else {
        return Err(Exit::new(
            exit::USAGE,
            "herd vm sync compares libvirt with the inventory: configure one with --url, HERD_URL or `url` in the config file",
        )
        .into());
    };
    let hypervisors = sync_targets(global, &client, &a.on)?;
    let mut observed = Vec::new();
    let mut unreachable = Vec::new();
    for (name, uri) in &hypervisors {
        match Hypervisor::open(Some(uri)).and_then(|hv| hv.domains()) {
            Ok(domains) => observed.push((name.clone(), domains)),
            Err(e) => {
                if !a.json {
                    eprintln!("warning: {name} skipped: {e}");
                }
                unreachable.push(name.clone());
            }
        }
    }
    let vms = client
        .query(&Query::filter(
            "servertype",
            Filter::Equals(Value::from("vm")),
        ))
        .map_err(super::inventory::client_error)?;
    let inventory_vms: Vec<(String, std::collections::BTreeMap<String, Value>)> = vms
        .iter()
        .filter_map(|o| Some((o.hostname()?.to_string(), o.object().fields.clone())))
        .collect();
    let found = drift(&observed, &inventory_vms);
    if !a.dry_run {
        repair(&client, &observed, &found)?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "checked": observed.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                "unreachable": unreachable,
                "drift": found,
                "repaired": !a.dry_run,
            }))?
        );
    } else {
        let verb = if a.dry_run { "found" } else { "repaired" };
        for d in &found {
            let fixed = !a.dry_run && !matches!(d, Drift::Vanished { .. });
            println!("{d}{}", if fixed { " (repaired)" } else { "" });
        }
        println!(
            "{} hypervisor(s) checked, {} difference(s) {verb}",
            observed.len(),
            found.len()
        );
    }
    Ok(if unreachable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILURE)
    })
}

/// The hypervisors `herd vm sync` checks: name and libvirt URI.
fn sync_targets(
    global: &Global,
    client: &Client,
    on: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    if on.is_empty() {
        let found = client
            .query(&Query::filter(
                "servertype",
                Filter::Equals(Value::from("hypervisor")),
            ))
            .map_err(super::inventory::client_error)?;
        return Ok(found
            .iter()
            .filter_map(|o| match o.get("libvirt_uri") {
                Some(Value::String(uri)) => Some((o.hostname()?.to_string(), uri.clone())),
                _ => None,
            })
            .collect());
    }
    on.iter()
        .map(|hv| {
            if hv.contains("://") {
                let name = hypervisor_named_by_uri(client, hv)?.ok_or_else(|| {
                    Exit::new(
                        exit::NOT_FOUND,
                        format!("{hv} is not a hypervisor in the inventory; register it with `herd hv bootstrap '{hv}' --name NAME`"),
                    )
                })?;
                Ok((name, hv.clone()))
            } else {
                Ok((hv.clone(), inventory_uri(global, hv)?))
            }
        })
        .collect()
}

/// Apply the repairs: create unrecorded VMs, set changed attributes (one
/// commit per VM, compare-and-swap on the values read).
fn repair(
    client: &Client,
    observed: &[(String, Vec<DomainFacts>)],
    found: &[Drift],
) -> anyhow::Result<()> {
    for (hypervisor, domains) in observed {
        for d in domains {
            let touched = found.iter().any(|x| match x {
                Drift::Unrecorded { vm, .. } | Drift::Changed { vm, .. } => *vm == d.name,
                Drift::Vanished { .. } => false,
            });
            if touched {
                Recorder {
                    client: clone_client(client)?,
                    hypervisor: hypervisor.clone(),
                }
                .record(d)?;
            }
        }
    }
    Ok(())
}

fn clone_client(client: &Client) -> anyhow::Result<Client> {
    Client::new(&client.url()).map_err(super::inventory::client_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_virt::{DiskFacts, DomainState};
    use std::collections::BTreeMap;

    fn domain(name: &str, state: DomainState) -> DomainFacts {
        DomainFacts {
            name: name.into(),
            uuid: String::new(),
            state,
            persistent: true,
            autostart: false,
            domain_type: "qemu".into(),
            memory: 512 << 20,
            vcpus: 2,
            disks: vec![DiskFacts {
                target: "vda".into(),
                device: "disk".into(),
                path: None,
                pool: Some("default".into()),
                volume: Some(format!("{name}.qcow2")),
                format: Some("qcow2".into()),
                capacity: Some((10 << 30) + 1),
                allocation: Some(0),
            }],
            nics: vec![],
        }
    }

    fn recorded(name: &str, hv: &str) -> (String, BTreeMap<String, Value>) {
        let attrs = vm_attributes(&domain(name, DomainState::Running), hv)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        (name.to_string(), attrs)
    }

    #[test]
    fn vm_attributes_use_mib_and_whole_gib_rounded_up() {
        let attrs = vm_attributes(&domain("vm1", DomainState::Shutoff), "hv1");
        assert_eq!(
            attrs,
            vec![
                ("hypervisor", Value::from("hv1")),
                ("memory", Value::from(512)),
                ("num_cpu", Value::from(2)),
                ("disk_size_gib", Value::from(11)),
                ("state", Value::from("shutoff")),
            ]
        );
    }

    #[test]
    fn matching_inventory_has_no_drift() {
        let observed = vec![("hv1".to_string(), vec![domain("vm1", DomainState::Running)])];
        assert_eq!(drift(&observed, &[recorded("vm1", "hv1")]), vec![]);
    }

    #[test]
    fn unrecorded_changed_moved_and_vanished_vms_are_found() {
        let observed = vec![
            (
                "hv1".to_string(),
                vec![
                    domain("vm1", DomainState::Shutoff),
                    domain("new", DomainState::Running),
                ],
            ),
            (
                "hv2".to_string(),
                vec![domain("moved", DomainState::Running)],
            ),
        ];
        let inventory = vec![
            recorded("vm1", "hv1"),
            recorded("moved", "hv1"),
            recorded("gone", "hv2"),
            recorded("elsewhere", "hv9"),
        ];
        let found = drift(&observed, &inventory);
        assert_eq!(
            found,
            vec![
                Drift::Changed {
                    vm: "vm1".into(),
                    attribute: "state".into(),
                    inventory: Some(Value::from("running")),
                    libvirt: Value::from("shutoff"),
                },
                Drift::Unrecorded {
                    vm: "new".into(),
                    hypervisor: "hv1".into()
                },
                Drift::Changed {
                    vm: "moved".into(),
                    attribute: "hypervisor".into(),
                    inventory: Some(Value::from("hv1")),
                    libvirt: Value::from("hv2"),
                },
                Drift::Vanished {
                    vm: "gone".into(),
                    hypervisor: "hv2".into()
                },
            ]
        );
    }
}
