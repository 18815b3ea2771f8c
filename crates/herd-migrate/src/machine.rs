//! The migration as an explicit state machine, pure: each state owns its
//! data, [`next_action`] says what to do in a state, and [`step`] turns a
//! state and the outcome of that action into the next state. `exec` performs
//! the actions against libvirt; everything here is unit-tested without it.
//!
//! ```mermaid
//! stateDiagram-v2
//!     [*] --> Start
//!     Start --> Locked: Locked
//!     Start --> RolledBack: Failed / Cancelled
//!     Locked --> Preparing: VolumeCreated
//!     Preparing --> Preparing: VolumeCreated / VolumeCopied
//!     Preparing --> Moved: Migrated (live) / MigrateFailed, VM on destination
//!     Preparing --> DefinedOnDestination: Defined (offline)
//!     DefinedOnDestination --> Moved: SourceUndefined
//!     Preparing --> Stuck: MigrateFailed, VM found nowhere
//!     Locked --> Undoing: Failed / Cancelled
//!     Preparing --> Undoing: Failed / Cancelled / MigrateFailed, VM on source
//!     DefinedOnDestination --> Undoing: Failed / Cancelled
//!     Undoing --> Undoing: UndoDone / UndoFailed
//!     Undoing --> RolledBack: nothing left to undo
//!     Moved --> Cleaning: Verified
//!     Moved --> Cleaning: Failed (a warning: the VM has moved)
//!     Cleaning --> Cleaning: CleanupDone / CleanupFailed
//!     Cleaning --> Done: nothing left
//!     Done --> [*]
//!     RolledBack --> [*]
//!     Stuck --> [*]
//! ```
//!
//! The point of no return is `Moved`: once the VM runs on the destination
//! nothing is undone, and a failure in a later step (deleting a source
//! volume, the inventory) becomes a warning in the report.

use crate::facts::LockFacts;
use crate::plan::{DestDisk, Mode, Plan, Step};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Start,
    Locked {
        lock: LockFacts,
    },
    /// Destination volumes being created (and, offline, filled).
    Preparing {
        lock: LockFacts,
        /// Disk indexes (into `plan.disks`) whose destination volume herd created.
        created: Vec<usize>,
        /// Disk indexes already copied (offline).
        copied: Vec<usize>,
    },
    /// Offline: the domain is defined on the destination, still on the source.
    DefinedOnDestination {
        lock: LockFacts,
        created: Vec<usize>,
    },
    /// The VM runs (or is defined) on the destination and not on the source.
    Moved {
        moved: Moved,
    },
    /// Verified; the remaining cleanups run in order.
    Cleaning {
        moved: Moved,
        todo: Vec<Cleanup>,
    },
    Done {
        moved: Moved,
    },
    Undoing {
        cause: Failure,
        todo: Vec<Undo>,
        leftovers: Vec<String>,
    },
    RolledBack {
        cause: Failure,
        /// What could not be undone, with the command to finish by hand.
        leftovers: Vec<String>,
    },
    /// A failed migration left the VM neither clearly on the source nor on
    /// the destination: nothing is deleted, the lock stays.
    Stuck {
        cause: Failure,
        detail: String,
    },
}

/// What a finished migration carries through its last steps.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Moved {
    pub lock: Option<LockFacts>,
    pub stats: Stats,
    pub warnings: Vec<String>,
    pub deleted: Vec<String>,
}

/// Figures from libvirt's completed job statistics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    pub bytes: u64,
    pub disk_bytes: u64,
    pub memory_bytes: u64,
    pub downtime_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Failure {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// A step failed; `message` is libvirt's (or herd's) error.
    Step { step: String, message: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Interrupted => write!(f, "interrupted"),
            Failure::Step { step, message } => write!(f, "{step} failed: {message}"),
        }
    }
}

/// Where a VM was found after `migrate` returned an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whereabouts {
    /// Still active on the source: the migration did not happen.
    Source,
    /// Active on the destination and gone from the source: it did happen.
    Destination,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Remove a domain a failed migration left on the destination.
    DestinationDomain,
    /// Delete a destination volume herd created (index into `plan.disks`).
    DestinationVolume(usize),
    UnlockSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    DeleteSourceVolume(usize),
    UpdateInventory { from: String, to: String },
    Unlock,
    Record,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Locked(LockFacts),
    VolumeCreated(usize),
    VolumeCopied(usize),
    Migrated(Stats),
    MigrateFailed {
        cause: Failure,
        whereabouts: Whereabouts,
    },
    Defined,
    SourceUndefined,
    Verified,
    CleanupDone(Cleanup),
    CleanupFailed(Cleanup, String),
    UndoDone(Undo),
    UndoFailed(Undo, String),
    Failed(Failure),
}

/// What the executor should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Lock,
    CreateVolume(usize),
    MigrateLive,
    CopyVolume(usize),
    DefineOnDestination,
    UndefineOnSource,
    Verify,
    Cleanup(Cleanup),
    Undo(Undo),
    Finish,
}

impl Action {
    /// Actions before the point of no return may be interrupted.
    pub fn interruptible(&self) -> bool {
        matches!(
            self,
            Action::Lock
                | Action::CreateVolume(_)
                | Action::MigrateLive
                | Action::CopyVolume(_)
                | Action::DefineOnDestination
        )
    }
}

/// Disk indexes whose destination herd creates.
fn new_volumes(plan: &Plan) -> impl Iterator<Item = usize> + '_ {
    plan.disks
        .iter()
        .enumerate()
        .filter(|(_, d)| matches!(d.dest, DestDisk::NewVolume { .. }))
        .map(|(i, _)| i)
}

pub fn next_action(plan: &Plan, state: &State) -> Action {
    match state {
        State::Start => Action::Lock,
        State::Locked { .. } => match new_volumes(plan).next() {
            Some(i) => Action::CreateVolume(i),
            None => after_prepared(plan, &[]),
        },
        State::Preparing {
            created, copied, ..
        } => match new_volumes(plan).find(|i| !created.contains(i)) {
            Some(i) => Action::CreateVolume(i),
            None => after_prepared(plan, copied),
        },
        State::DefinedOnDestination { .. } => Action::UndefineOnSource,
        State::Moved { .. } => Action::Verify,
        State::Cleaning { todo, .. } => match todo.first() {
            Some(c) => Action::Cleanup(c.clone()),
            None => Action::Finish,
        },
        State::Undoing { todo, .. } => match todo.first() {
            Some(u) => Action::Undo(u.clone()),
            None => Action::Finish,
        },
        State::Done { .. } | State::RolledBack { .. } | State::Stuck { .. } => Action::Finish,
    }
}

fn after_prepared(plan: &Plan, copied: &[usize]) -> Action {
    match plan.mode {
        Mode::Live => Action::MigrateLive,
        Mode::Offline => match (0..plan.disks.len()).find(|i| !copied.contains(i)) {
            Some(i) => Action::CopyVolume(i),
            None => Action::DefineOnDestination,
        },
    }
}

pub fn step(plan: &Plan, state: State, event: Event) -> State {
    use Event as E;
    use State as S;
    match (state, event) {
        (S::Start, E::Locked(lock)) => S::Locked { lock },
        (S::Start, E::Failed(cause)) => S::RolledBack {
            cause,
            leftovers: vec![],
        },

        (S::Locked { lock }, E::VolumeCreated(i)) => S::Preparing {
            lock,
            created: vec![i],
            copied: vec![],
        },
        (S::Locked { lock }, E::VolumeCopied(i)) => S::Preparing {
            lock,
            created: vec![],
            copied: vec![i],
        },
        (
            S::Preparing {
                lock,
                mut created,
                copied,
            },
            E::VolumeCreated(i),
        ) => {
            created.push(i);
            S::Preparing {
                lock,
                created,
                copied,
            }
        }
        (
            S::Preparing {
                lock,
                created,
                mut copied,
            },
            E::VolumeCopied(i),
        ) => {
            copied.push(i);
            S::Preparing {
                lock,
                created,
                copied,
            }
        }
        (S::Locked { lock }, E::Migrated(stats))
        | (S::Preparing { lock, .. }, E::Migrated(stats)) => S::Moved {
            moved: Moved {
                lock: Some(lock),
                stats,
                ..Moved::default()
            },
        },
        (S::Locked { lock }, E::MigrateFailed { cause, whereabouts }) => {
            after_failed_migration(lock, vec![], cause, whereabouts)
        }
        (S::Preparing { lock, created, .. }, E::MigrateFailed { cause, whereabouts }) => {
            after_failed_migration(lock, created, cause, whereabouts)
        }
        (S::Locked { lock }, E::Defined) => S::DefinedOnDestination {
            lock,
            created: vec![],
        },
        (S::Preparing { lock, created, .. }, E::Defined) => {
            S::DefinedOnDestination { lock, created }
        }
        (S::DefinedOnDestination { lock, .. }, E::SourceUndefined) => S::Moved {
            moved: Moved {
                lock: Some(lock),
                ..Moved::default()
            },
        },

        // Failures before the point of no return: undo what was done.
        (S::Locked { lock: _ }, E::Failed(cause)) => undoing(cause, vec![], false),
        (S::Preparing { created, .. }, E::Failed(cause)) => undoing(cause, created, false),
        (S::DefinedOnDestination { created, .. }, E::Failed(cause)) => {
            undoing(cause, created, true)
        }

        (S::Moved { moved }, E::Verified) => S::Cleaning {
            todo: cleanups(plan),
            moved,
        },
        (S::Moved { mut moved }, E::Failed(cause)) => {
            moved.warnings.push(format!(
                "{cause}; the VM has moved to the destination, check it there; the source volumes were kept"
            ));
            let mut todo = cleanups(plan);
            todo.retain(|c| !matches!(c, Cleanup::DeleteSourceVolume(_)));
            S::Cleaning { todo, moved }
        }
        (
            S::Cleaning {
                mut moved,
                mut todo,
            },
            E::CleanupDone(c),
        ) => {
            if let Cleanup::DeleteSourceVolume(i) = &c {
                if let Some(d) = plan.disks.get(*i) {
                    moved
                        .deleted
                        .push(format!("{}/{}", d.source_pool, d.source_volume));
                }
            }
            if c == Cleanup::Unlock {
                moved.lock = None;
            }
            todo.retain(|t| t != &c);
            next_cleaning(moved, todo)
        }
        (
            S::Cleaning {
                mut moved,
                mut todo,
            },
            E::CleanupFailed(c, message),
        ) => {
            moved.warnings.push(message);
            todo.retain(|t| t != &c);
            next_cleaning(moved, todo)
        }
        // Interruptions after the point of no return do not undo the move.
        (S::Cleaning { moved, todo }, E::Failed(_)) => S::Cleaning { moved, todo },

        (
            S::Undoing {
                cause,
                mut todo,
                leftovers,
            },
            E::UndoDone(u),
        ) => {
            todo.retain(|t| t != &u);
            next_undoing(cause, todo, leftovers)
        }
        (
            S::Undoing {
                cause,
                mut todo,
                mut leftovers,
            },
            E::UndoFailed(u, message),
        ) => {
            todo.retain(|t| t != &u);
            leftovers.push(message);
            next_undoing(cause, todo, leftovers)
        }
        // A second interruption while undoing changes nothing: undo goes on.
        (
            S::Undoing {
                cause,
                todo,
                leftovers,
            },
            E::Failed(_),
        ) => S::Undoing {
            cause,
            todo,
            leftovers,
        },

        // Anything else is a herd bug; stop without deleting anything.
        (state, event) => S::Stuck {
            cause: Failure::Step {
                step: "migration".into(),
                message: format!("unexpected event {event:?} in state {}", state.name()),
            },
            detail: "herd stopped without undoing anything; check both hosts".into(),
        },
    }
}

fn after_failed_migration(
    lock: LockFacts,
    created: Vec<usize>,
    cause: Failure,
    whereabouts: Whereabouts,
) -> State {
    match whereabouts {
        Whereabouts::Source => undoing(cause, created, false),
        Whereabouts::Destination => State::Moved {
            moved: Moved {
                lock: Some(lock),
                warnings: vec![format!(
                    "libvirt reported an error ({cause}) but the VM runs on the destination and is gone from the source"
                )],
                ..Moved::default()
            },
        },
        Whereabouts::Unknown => State::Stuck {
            detail: "the VM runs neither on the source nor on the destination; herd deleted nothing and kept the lock: inspect both hosts (virsh list --all)".into(),
            cause,
        },
    }
}

fn undoing(cause: Failure, created: Vec<usize>, defined: bool) -> State {
    let mut todo = Vec::new();
    if defined || !created.is_empty() {
        todo.push(Undo::DestinationDomain);
    }
    todo.extend(created.into_iter().rev().map(Undo::DestinationVolume));
    todo.push(Undo::UnlockSource);
    State::Undoing {
        cause,
        todo,
        leftovers: vec![],
    }
}

fn next_undoing(cause: Failure, todo: Vec<Undo>, leftovers: Vec<String>) -> State {
    if todo.is_empty() {
        State::RolledBack { cause, leftovers }
    } else {
        State::Undoing {
            cause,
            todo,
            leftovers,
        }
    }
}

fn next_cleaning(moved: Moved, todo: Vec<Cleanup>) -> State {
    if todo.is_empty() {
        State::Done { moved }
    } else {
        State::Cleaning { moved, todo }
    }
}

/// The cleanups after a verified move, from the plan's steps.
fn cleanups(plan: &Plan) -> Vec<Cleanup> {
    let mut todo = Vec::new();
    for s in &plan.steps {
        match s {
            Step::DeleteSourceVolume { pool, name } => {
                if let Some(i) = plan
                    .disks
                    .iter()
                    .position(|d| &d.source_pool == pool && &d.source_volume == name)
                {
                    todo.push(Cleanup::DeleteSourceVolume(i));
                }
            }
            Step::UpdateInventory { from, to } => todo.push(Cleanup::UpdateInventory {
                from: from.clone(),
                to: to.clone(),
            }),
            Step::Unlock => todo.push(Cleanup::Unlock),
            Step::RecordHistory => todo.push(Cleanup::Record),
            _ => {}
        }
    }
    todo
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Start => "start",
            State::Locked { .. } => "locked",
            State::Preparing { .. } => "preparing",
            State::DefinedOnDestination { .. } => "defined-on-destination",
            State::Moved { .. } => "moved",
            State::Cleaning { .. } => "cleaning",
            State::Done { .. } => "done",
            State::Undoing { .. } => "undoing",
            State::RolledBack { .. } => "rolled-back",
            State::Stuck { .. } => "stuck",
        }
    }
}

#[cfg(test)]
mod tests;
