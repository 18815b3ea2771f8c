//! The planner: a pure function from [`Facts`] and a [`Request`] to a
//! [`Plan`] of ordered steps, or a [`Refusal`] that lists every reason at
//! once. It never talks to libvirt; `gather` collects the facts and `exec`
//! runs the plan.

use crate::facts::{
    CpuVerdict, DiskFacts, DiskSource, Facts, HostFacts, InterfaceFacts, PoolFacts, VmFacts,
    VmState,
};
use crate::xml::{self, DiskRewrite};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What the operator asked for, besides source, VM and destination.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Request {
    /// `--offline`: copy the disks of a shut-off VM. Without it a running VM
    /// moves live and a shut-off one offline.
    pub offline: bool,
    pub options: MigrateOptions,
    /// `--disk vda=pool:NAME` or `--disk vda=block:/dev/sdb`: where a disk goes
    /// when not into the destination pool of the source pool's name.
    pub placements: BTreeMap<String, Placement>,
    /// `(from, to)` hypervisor names when an inventory is configured.
    pub inventory: Option<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Bandwidth cap in MiB/s, for memory and disks.
    pub bandwidth_mib_s: Option<u64>,
    /// Longest pause of the guest at switch-over, in milliseconds.
    pub max_downtime_ms: Option<u64>,
    pub auto_converge: bool,
    /// Parallel migration connections for memory.
    pub parallel: Option<u32>,
    pub keep_source_disks: bool,
    /// QEMU migration stream URI (`tcp://10.0.0.2`); default: derived from the destination URI.
    pub migrate_uri: Option<String>,
    /// Address the destination listens on for memory and disks.
    pub listen_address: Option<String>,
}

/// Where one disk should go on the destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Placement {
    /// A new volume of the disk's name in this destination pool.
    Pool { pool: String },
    /// An existing block device the operator names; herd writes the disk onto
    /// it and never deletes it.
    Block { dev: String },
}

impl std::str::FromStr for Placement {
    type Err = String;

    /// `pool:NAME` or `block:/dev/PATH`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("pool", name)) if !name.is_empty() => Ok(Placement::Pool {
                pool: name.to_string(),
            }),
            Some(("block", dev)) if dev.starts_with('/') => Ok(Placement::Block {
                dev: dev.to_string(),
            }),
            _ => Err(format!(
                "'{s}' is not a placement: use pool:NAME or block:/dev/PATH"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Live,
    Offline,
}

/// A ready-to-run migration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub vm: String,
    pub vm_uuid: String,
    pub source: String,
    pub destination: String,
    pub mode: Mode,
    pub disks: Vec<DiskMove>,
    /// Memory the VM needs on the destination, in bytes.
    pub memory: u64,
    pub options: MigrateOptions,
    /// Destination XML when a disk changes path, type or format.
    pub dest_xml: Option<String>,
    /// Persistent definition for the destination when `dest_xml` is set.
    pub persist_xml: Option<String>,
    pub steps: Vec<Step>,
    /// Things worth knowing that do not stop the migration.
    pub warnings: Vec<String>,
}

/// One disk that is copied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiskMove {
    pub target: String,
    pub source_pool: String,
    pub source_volume: String,
    pub source_path: String,
    pub capacity: u64,
    pub allocation: u64,
    pub source_format: String,
    pub dest: DestDisk,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum DestDisk {
    /// herd creates it (sparse) before the copy and deletes it on undo.
    NewVolume {
        pool: String,
        name: String,
        path: String,
        format: String,
        block: bool,
    },
    /// An existing device named by the operator: never created nor deleted.
    ExistingBlock { dev: String },
}

impl DestDisk {
    pub fn path(&self) -> &str {
        match self {
            DestDisk::NewVolume { path, .. } => path,
            DestDisk::ExistingBlock { dev } => dev,
        }
    }
}

/// The ordered steps of a plan; the executor runs them in this order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum Step {
    Lock,
    CreateVolume {
        pool: String,
        name: String,
        capacity: u64,
        format: String,
    },
    MigrateLive {
        disks: Vec<String>,
        flags: Vec<String>,
    },
    CopyVolume {
        from_pool: String,
        from: String,
        to_pool: String,
        to: String,
    },
    DefineOnDestination,
    UndefineOnSource,
    Verify,
    DeleteSourceVolume {
        pool: String,
        name: String,
    },
    UpdateInventory {
        from: String,
        to: String,
    },
    Unlock,
    RecordHistory,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Lock => write!(f, "lock the VM (herd metadata on the source domain)"),
            Step::CreateVolume {
                pool,
                name,
                capacity,
                format,
            } => write!(
                f,
                "create volume {pool}/{name} on the destination: {format}, {}, sparse",
                human_bytes(*capacity)
            ),
            Step::MigrateLive { disks, flags } => write!(
                f,
                "migrate live with disks {} ({})",
                disks.join(", "),
                flags.join("|")
            ),
            Step::CopyVolume {
                from_pool,
                from,
                to_pool,
                to,
            } => write!(
                f,
                "copy volume {from_pool}/{from} to {to_pool}/{to} (sparse stream)"
            ),
            Step::DefineOnDestination => write!(f, "define the domain on the destination"),
            Step::UndefineOnSource => write!(f, "undefine the domain on the source"),
            Step::Verify => write!(
                f,
                "verify: on the destination in the expected state, gone from the source"
            ),
            Step::DeleteSourceVolume { pool, name } => {
                write!(f, "delete source volume {pool}/{name}")
            }
            Step::UpdateInventory { from, to } => {
                write!(f, "inventory: hypervisor {from} -> {to} (compare-and-swap)")
            }
            Step::Unlock => write!(f, "unlock the VM"),
            Step::RecordHistory => write!(f, "record duration, bytes and downtime"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Live => "live",
            Mode::Offline => "offline",
        };
        writeln!(
            f,
            "migrate {} ({mode}) from {} to {}",
            self.vm, self.source, self.destination
        )?;
        writeln!(f, "memory: {}", human_bytes(self.memory))?;
        for d in &self.disks {
            let dest = match &d.dest {
                DestDisk::NewVolume {
                    pool, name, format, ..
                } => format!("new volume {pool}/{name} ({format})"),
                DestDisk::ExistingBlock { dev } => format!("existing block device {dev} (raw)"),
            };
            writeln!(
                f,
                "disk {}: {}/{} ({}, {} used of {}) -> {dest}",
                d.target,
                d.source_pool,
                d.source_volume,
                d.source_format,
                human_bytes(d.allocation),
                human_bytes(d.capacity)
            )?;
        }
        if self.dest_xml.is_some() {
            writeln!(f, "destination XML: rewritten for the new disk paths/types")?;
        }
        writeln!(f, "steps:")?;
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(f, "  {}. {s}", i + 1)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// Why a migration cannot be planned. Each message says what to do next.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Reason {
    #[error("source and destination are the same host (host UUID {uuid}): choose another destination, or give each libvirtd its own host_uuid")]
    SameHost { uuid: String },
    #[error("the destination already has a domain named '{vm}': rename or remove it there first (herd never replaces a domain)")]
    DomainOnDestination { vm: String },
    #[error("destination pool '{pool}' already holds a volume '{volume}' (the name of disk {disk}): herd never overwrites a volume; remove or rename it on the destination, or place {disk} elsewhere with --disk {disk}=pool:OTHER")]
    VolumeExists {
        disk: String,
        pool: String,
        volume: String,
    },
    #[error("the destination has no storage pool '{pool}' for disk {disk}: create it (herd hv bootstrap) or choose one with --disk {disk}=pool:NAME")]
    PoolMissing { disk: String, pool: String },
    #[error("destination pool '{pool}' is not active: start it with `virsh pool-start {pool}` on the destination")]
    PoolInactive { pool: String },
    #[error("destination pool '{pool}' has {} free, {} needs {} ({}): choose another hypervisor or free space", human_bytes(*available), vm, human_bytes(*needed), disks.join(", "))]
    NotEnoughSpace {
        pool: String,
        vm: String,
        available: u64,
        needed: u64,
        disks: Vec<String>,
    },
    #[error("the destination has {} free memory, {vm} needs {}: choose another hypervisor or free memory there", human_bytes(*available), human_bytes(*needed))]
    NotEnoughMemory {
        vm: String,
        available: u64,
        needed: u64,
    },
    #[error("{vm} uses network '{network}', which is not active on the destination: define and start it there first")]
    NetworkMissing { vm: String, network: String },
    #[error(
        "{vm} uses bridge '{bridge}', which the destination does not have: create it there first"
    )]
    BridgeMissing { vm: String, bridge: String },
    #[error("the destination cannot run {vm}'s CPU ({detail}): choose a destination with the same CPU, or give the VM a CPU model both hosts support")]
    CpuIncompatible { vm: String, detail: String },
    #[error("{vm} is already being migrated to {destination} by {owner} since {since} (unix time): wait for it, or if that process is gone run `herd vm migrate {vm} --break-lock --from URI`")]
    Locked {
        vm: String,
        owner: String,
        destination: String,
        since: u64,
    },
    #[error("libvirt reports a job running on {vm} (a migration, save or dump): wait for it or abort it with `virsh domjobabort {vm}`")]
    JobActive { vm: String },
    #[error("{vm} is running: drop --offline for a live migration, or shut it down first")]
    RunningButOffline { vm: String },
    #[error(
        "{vm} is in a state herd cannot move (crashed, saving, ...): start or shut it down first"
    )]
    UnsupportedState { vm: String },
    #[error("{vm} is transient (not defined) and shut off: there is nothing to move")]
    TransientShutOff { vm: String },
    #[error("disk {disk} ({path}) is not a volume of any storage pool on the source: define a pool for its directory (virsh pool-define-as) so herd can copy it")]
    DiskNotInPool { disk: String, path: String },
    #[error("--disk names {disk}, which {vm} does not have")]
    UnknownDisk { vm: String, disk: String },
    #[error("disk {disk} is {format} and an offline copy keeps the format, but its destination is a raw block device: migrate it live, or place it in a file pool")]
    OfflineFormatChange { disk: String, format: String },
    #[error("block device {dev} is the destination of disks {first} and {second}: give each disk its own device")]
    BlockTwice {
        dev: String,
        first: String,
        second: String,
    },
    #[error("cannot rewrite {vm}'s domain XML for the new disk locations ({detail}): migrate without --disk, and report this")]
    XmlRewrite { vm: String, detail: String },
    #[error("disk {disk} is a CD-ROM/floppy with media ({path}): eject it first (virsh change-media {vm} {disk} --eject)")]
    RemovableMedia {
        vm: String,
        disk: String,
        path: String,
    },
}

/// Every reason a migration cannot go ahead, in the order found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Refusal {
    pub vm: String,
    pub reasons: Vec<Reason>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing to migrate {} ({} reason{}); nothing was changed:",
            self.vm,
            self.reasons.len(),
            if self.reasons.len() == 1 { "" } else { "s" }
        )?;
        for r in &self.reasons {
            write!(f, "\n  - {r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusal {}

/// Plan the migration of `facts.vm` from `facts.source` to `facts.destination`.
pub fn plan(facts: &Facts, request: &Request) -> Result<Plan, Refusal> {
    let vm = &facts.vm;
    let src = &facts.source;
    let dst = &facts.destination;
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();

    if src.host_uuid == dst.host_uuid {
        reasons.push(Reason::SameHost {
            uuid: src.host_uuid.clone(),
        });
    }
    if dst.domains.iter().any(|d| d == &vm.name) {
        reasons.push(Reason::DomainOnDestination {
            vm: vm.name.clone(),
        });
    }
    if let Some(lock) = &vm.lock {
        reasons.push(Reason::Locked {
            vm: vm.name.clone(),
            owner: lock.owner.clone(),
            destination: lock.destination.clone(),
            since: lock.since,
        });
    }
    if vm.job_active {
        reasons.push(Reason::JobActive {
            vm: vm.name.clone(),
        });
    }

    let mode = match (vm.state, request.offline) {
        (VmState::Running | VmState::Paused, false) => Some(Mode::Live),
        (VmState::Running | VmState::Paused, true) => {
            reasons.push(Reason::RunningButOffline {
                vm: vm.name.clone(),
            });
            None
        }
        (VmState::ShutOff, _) if !vm.persistent => {
            reasons.push(Reason::TransientShutOff {
                vm: vm.name.clone(),
            });
            None
        }
        (VmState::ShutOff, _) => Some(Mode::Offline),
        (VmState::Other, _) => {
            reasons.push(Reason::UnsupportedState {
                vm: vm.name.clone(),
            });
            None
        }
    };

    if mode == Some(Mode::Live) && dst.free_memory < vm.memory {
        reasons.push(Reason::NotEnoughMemory {
            vm: vm.name.clone(),
            available: dst.free_memory,
            needed: vm.memory,
        });
    }
    if mode == Some(Mode::Live) {
        match &facts.cpu {
            CpuVerdict::Incompatible { detail } => reasons.push(Reason::CpuIncompatible {
                vm: vm.name.clone(),
                detail: detail.clone(),
            }),
            CpuVerdict::Unknown { detail } => warnings.push(format!(
                "libvirt could not compare {}'s CPU with the destination's ({detail})",
                vm.name
            )),
            CpuVerdict::Identical | CpuVerdict::Superset | CpuVerdict::NotApplicable => {}
        }
    }
    check_interfaces(vm, dst, &mut reasons, &mut warnings);

    for disk in request.placements.keys() {
        if !vm.disks.iter().any(|d| &d.target == disk) {
            reasons.push(Reason::UnknownDisk {
                vm: vm.name.clone(),
                disk: disk.clone(),
            });
        }
    }

    let disks = plan_disks(facts, request, mode, &mut reasons, &mut warnings);

    let rewrites: Vec<DiskRewrite> = disks
        .iter()
        .filter(|d| d.dest.path() != d.source_path || d.dest_is_block_change())
        .map(|d| DiskRewrite {
            target: d.target.clone(),
            path: d.dest.path().to_string(),
            block: d.dest_block(),
            format: d.dest_format().to_string(),
        })
        .collect();
    let mut dest_xml = None;
    let mut persist_xml = None;
    if !rewrites.is_empty() {
        let live = xml::rewrite_disks(&vm.xml, &rewrites);
        let persistent = vm
            .persistent_xml
            .as_deref()
            .map(|x| xml::rewrite_disks(x, &rewrites))
            .transpose();
        match (live, persistent) {
            (Ok(d), Ok(p)) => {
                dest_xml = Some(d);
                persist_xml = p;
            }
            (Err(e), _) | (_, Err(e)) => reasons.push(Reason::XmlRewrite {
                vm: vm.name.clone(),
                detail: e.to_string(),
            }),
        }
    }

    if !reasons.is_empty() {
        return Err(Refusal {
            vm: vm.name.clone(),
            reasons,
        });
    }
    let mode = mode.unwrap_or(Mode::Live);

    let steps = steps(request, mode, &disks);
    Ok(Plan {
        vm: vm.name.clone(),
        vm_uuid: vm.uuid.clone(),
        source: src.uri.clone(),
        destination: dst.uri.clone(),
        mode,
        disks,
        memory: vm.memory,
        options: request.options.clone(),
        dest_xml,
        persist_xml,
        steps,
        warnings,
    })
}

impl DiskMove {
    fn dest_block(&self) -> bool {
        match &self.dest {
            DestDisk::NewVolume { block, .. } => *block,
            DestDisk::ExistingBlock { .. } => true,
        }
    }

    fn dest_format(&self) -> &str {
        match &self.dest {
            DestDisk::NewVolume { format, .. } => format,
            DestDisk::ExistingBlock { .. } => "raw",
        }
    }

    fn dest_is_block_change(&self) -> bool {
        self.dest_block() || self.dest_format() != self.source_format
    }
}

/// The live migration flags herd uses, by libvirt name.
pub fn live_flags(options: &MigrateOptions) -> Vec<String> {
    let mut flags = vec![
        "LIVE",
        "PERSIST_DEST",
        "UNDEFINE_SOURCE",
        "NON_SHARED_DISK",
        "ABORT_ON_ERROR",
    ];
    if options.auto_converge {
        flags.push("AUTO_CONVERGE");
    }
    if options.parallel.is_some_and(|n| n > 1) {
        flags.push("PARALLEL");
    }
    flags.into_iter().map(String::from).collect()
}

fn steps(request: &Request, mode: Mode, disks: &[DiskMove]) -> Vec<Step> {
    let mut steps = vec![Step::Lock];
    for d in disks {
        if let DestDisk::NewVolume {
            pool, name, format, ..
        } = &d.dest
        {
            steps.push(Step::CreateVolume {
                pool: pool.clone(),
                name: name.clone(),
                capacity: d.capacity,
                format: format.clone(),
            });
        }
    }
    match mode {
        Mode::Live => steps.push(Step::MigrateLive {
            disks: disks.iter().map(|d| d.target.clone()).collect(),
            flags: live_flags(&request.options),
        }),
        Mode::Offline => {
            for d in disks {
                if let DestDisk::NewVolume { pool, name, .. } = &d.dest {
                    steps.push(Step::CopyVolume {
                        from_pool: d.source_pool.clone(),
                        from: d.source_volume.clone(),
                        to_pool: pool.clone(),
                        to: name.clone(),
                    });
                }
            }
            steps.push(Step::DefineOnDestination);
            steps.push(Step::UndefineOnSource);
        }
    }
    steps.push(Step::Verify);
    if !request.options.keep_source_disks {
        for d in disks {
            steps.push(Step::DeleteSourceVolume {
                pool: d.source_pool.clone(),
                name: d.source_volume.clone(),
            });
        }
    }
    if let Some((from, to)) = &request.inventory {
        steps.push(Step::UpdateInventory {
            from: from.clone(),
            to: to.clone(),
        });
    }
    steps.push(Step::Unlock);
    steps.push(Step::RecordHistory);
    steps
}

fn check_interfaces(
    vm: &VmFacts,
    dst: &HostFacts,
    reasons: &mut Vec<Reason>,
    warnings: &mut Vec<String>,
) {
    for iface in &vm.interfaces {
        match iface {
            InterfaceFacts::Network { network } => match &dst.networks {
                Some(nets) if !nets.contains(network) => reasons.push(Reason::NetworkMissing {
                    vm: vm.name.clone(),
                    network: network.clone(),
                }),
                Some(_) => {}
                None => warnings.push(format!(
                    "the destination's libvirt cannot list networks: check that '{network}' exists there"
                )),
            },
            InterfaceFacts::Bridge { bridge } => match &dst.bridges {
                Some(bridges) if !bridges.contains(bridge) => {
                    reasons.push(Reason::BridgeMissing {
                        vm: vm.name.clone(),
                        bridge: bridge.clone(),
                    })
                }
                Some(_) => {}
                None => warnings.push(format!(
                    "the destination's libvirt cannot list bridges: check that '{bridge}' exists there"
                )),
            },
            InterfaceFacts::Other { .. } => {}
        }
    }
}

/// Decide where every disk goes, collecting refusals along the way.
fn plan_disks(
    facts: &Facts,
    request: &Request,
    mode: Option<Mode>,
    reasons: &mut Vec<Reason>,
    warnings: &mut Vec<String>,
) -> Vec<DiskMove> {
    let vm = &facts.vm;
    let dst = &facts.destination;
    let mut moves = Vec::new();
    for disk in &vm.disks {
        let Some(moved) = plan_disk(vm, disk, dst, request, mode, reasons, warnings) else {
            continue;
        };
        moves.push(moved);
    }

    // Space, per destination pool, summed over the disks going there.
    let mut per_pool: BTreeMap<&str, (u64, Vec<String>)> = BTreeMap::new();
    for m in &moves {
        if let DestDisk::NewVolume { pool, .. } = &m.dest {
            let entry = per_pool.entry(pool.as_str()).or_default();
            entry.0 += needed_space(m);
            entry.1.push(m.target.clone());
        }
    }
    for (pool, (needed, disks)) in per_pool {
        let Some(p) = dst.pools.iter().find(|p| p.name == pool) else {
            continue;
        };
        if p.available < needed {
            reasons.push(Reason::NotEnoughSpace {
                pool: pool.to_string(),
                vm: vm.name.clone(),
                available: p.available,
                needed,
                disks,
            });
        }
    }

    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for m in &moves {
        if let DestDisk::ExistingBlock { dev } = &m.dest {
            if let Some(first) = seen.insert(dev, &m.target) {
                reasons.push(Reason::BlockTwice {
                    dev: dev.clone(),
                    first: first.to_string(),
                    second: m.target.clone(),
                });
            }
        }
    }
    moves
}

/// Bytes a copied disk takes in its destination pool: what it uses on the
/// source (herd pre-creates sparse volumes), all of it on a block pool.
fn needed_space(m: &DiskMove) -> u64 {
    match &m.dest {
        DestDisk::NewVolume { block: true, .. } => m.capacity,
        DestDisk::NewVolume { .. } => m.allocation,
        DestDisk::ExistingBlock { .. } => 0,
    }
}

fn plan_disk(
    vm: &VmFacts,
    disk: &DiskFacts,
    dst: &HostFacts,
    request: &Request,
    mode: Option<Mode>,
    reasons: &mut Vec<Reason>,
    warnings: &mut Vec<String>,
) -> Option<DiskMove> {
    let path = match &disk.source {
        DiskSource::Empty => return None,
        DiskSource::Network { protocol } => {
            warnings.push(format!(
                "disk {} is on shared {protocol} storage: it is not copied",
                disk.target
            ));
            return None;
        }
        DiskSource::File { path } => path.clone(),
        DiskSource::Block { dev } => dev.clone(),
        DiskSource::Volume { pool, volume } => format!("{pool}/{volume}"),
    };
    if disk.device == "cdrom" || disk.device == "floppy" {
        reasons.push(Reason::RemovableMedia {
            vm: vm.name.clone(),
            disk: disk.target.clone(),
            path,
        });
        return None;
    }
    if disk.shareable {
        warnings.push(format!(
            "disk {} is shareable: assumed to be shared storage, not copied",
            disk.target
        ));
        return None;
    }
    let Some(src_vol) = &disk.volume else {
        reasons.push(Reason::DiskNotInPool {
            disk: disk.target.clone(),
            path,
        });
        return None;
    };
    let name = src_vol.volume.name.clone();

    let dest = match request.placements.get(&disk.target) {
        Some(Placement::Block { dev }) => {
            if mode == Some(Mode::Offline) && disk.format != "raw" {
                reasons.push(Reason::OfflineFormatChange {
                    disk: disk.target.clone(),
                    format: disk.format.clone(),
                });
            }
            warnings.push(format!(
                "disk {} goes onto the existing block device {dev}, which is overwritten and must be at least {}; herd will not delete it on undo",
                disk.target,
                human_bytes(src_vol.volume.capacity)
            ));
            DestDisk::ExistingBlock { dev: dev.clone() }
        }
        placement => {
            let pool_name = match placement {
                Some(Placement::Pool { pool }) => pool.clone(),
                _ => src_vol.pool.clone(),
            };
            let Some(pool) = dst.pools.iter().find(|p| p.name == pool_name) else {
                reasons.push(Reason::PoolMissing {
                    disk: disk.target.clone(),
                    pool: pool_name,
                });
                return None;
            };
            check_pool(disk, pool, &name, reasons);
            let block = pool.holds_block_devices();
            let format = if block {
                "raw".to_string()
            } else {
                src_vol.volume.format.clone()
            };
            if block && mode == Some(Mode::Offline) && format != disk.format {
                reasons.push(Reason::OfflineFormatChange {
                    disk: disk.target.clone(),
                    format: disk.format.clone(),
                });
            }
            DestDisk::NewVolume {
                pool: pool.name.clone(),
                path: join_path(&pool.path, &name),
                name: name.clone(),
                format,
                block,
            }
        }
    };
    Some(DiskMove {
        target: disk.target.clone(),
        source_pool: src_vol.pool.clone(),
        source_volume: name,
        source_path: src_vol.volume.path.clone(),
        capacity: src_vol.volume.capacity,
        allocation: src_vol.volume.allocation,
        source_format: disk.format.clone(),
        dest,
    })
}

fn check_pool(disk: &DiskFacts, pool: &PoolFacts, name: &str, reasons: &mut Vec<Reason>) {
    if !pool.active {
        reasons.push(Reason::PoolInactive {
            pool: pool.name.clone(),
        });
    }
    let path = join_path(&pool.path, name);
    if pool.volume(name).is_some() || pool.volumes.iter().any(|v| v.path == path) {
        reasons.push(Reason::VolumeExists {
            disk: disk.target.clone(),
            pool: pool.name.clone(),
            volume: name.to_string(),
        });
    }
}

fn join_path(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// `1.5 GiB`, `300.0 KiB`, `12 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests;
