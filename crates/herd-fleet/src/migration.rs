//! Migrations between hypervisors named by the inventory: planning onto one
//! destination or the roomiest of several ([`Move`]), running a plan with
//! the inventory step attached ([`Runner`]), and emptying a hypervisor
//! VM by VM ([`Evacuation`], [`evacuate`]). herd-migrate does the planning,
//! placing and moving; this module adds the inventory names and objects.

use crate::inventory::MoveVm;
use crate::{FleetError, Hv};
use herd_client::{Client, TrackedObject};
use herd_migrate::exec::{self, Config, ExecError, Inventory, Notice, Report};
use herd_migrate::gather::{self, Hosts};
use herd_migrate::place::{self, Reservations};
use herd_migrate::plan::{self, Plan, Refusal, Request};
use serde::Serialize;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One VM to move: what every plan for it shares.
pub struct Move<'a> {
    pub vm: &'a str,
    /// The source's libvirt URI.
    pub source: &'a str,
    /// The source's inventory name, when it has one.
    pub source_name: Option<&'a str>,
    /// The VM's inventory object, read before planning. With it (and
    /// inventory names at both ends) the plan ends by moving the VM's
    /// `hypervisor` in the inventory.
    pub object: Option<&'a TrackedObject>,
    pub request: &'a Request,
}

/// A plan (or its refusal) onto one destination, with the connections to
/// run it over.
pub struct Planned {
    pub plan: Result<Plan, Refusal>,
    /// The destination's inventory name, when it has one.
    pub destination: Option<String>,
    pub hosts: Hosts,
}

impl Move<'_> {
    /// Plan the move onto `dest` (a libvirt URI) whose inventory name is
    /// `dest_name`.
    pub fn plan_to(&self, dest: &str, dest_name: Option<&str>) -> Result<Planned, FleetError> {
        let hosts = Hosts::open(self.source, dest)?;
        let facts = gather::gather(&hosts, self.vm)?;
        Ok(Planned {
            plan: plan::plan(&facts, &self.request_to(dest_name)),
            destination: dest_name.map(str::to_string),
            hosts,
        })
    }

    /// Plan the move onto every reachable candidate and keep the one with
    /// the most room ([`place::choose`]); unreachable candidates drop out.
    pub fn plan_best(&self, candidates: &[Hv]) -> Result<Planned, FleetError> {
        self.plan_best_beside(candidates, &Reservations::default())
    }

    /// [`Move::plan_best`] with the room of the moves in `held` (chosen,
    /// not yet finished) taken off their destinations first.
    pub fn plan_best_beside(
        &self,
        candidates: &[Hv],
        held: &Reservations,
    ) -> Result<Planned, FleetError> {
        let mut planned = Vec::new();
        for hv in candidates {
            let Ok(hosts) = Hosts::open(self.source, &hv.uri) else {
                continue;
            };
            let mut facts = gather::gather(&hosts, self.vm)?;
            held.apply(&mut facts);
            let plan = plan::plan(&facts, &self.request_to(Some(&hv.name)));
            planned.push((hv, facts, plan, hosts));
        }
        let options: Vec<place::Candidate> = planned
            .iter()
            .map(|(hv, facts, plan, _)| place::Candidate {
                name: &hv.name,
                facts,
                plan: plan.as_ref(),
            })
            .collect();
        let i = place::choose(self.vm, &options)?;
        let (hv, _, plan, hosts) = planned.swap_remove(i);
        Ok(Planned {
            plan,
            destination: Some(hv.name.clone()),
            hosts,
        })
    }

    fn request_to(&self, dest_name: Option<&str>) -> Request {
        let mut request = self.request.clone();
        request.inventory = inventory_step(self.object.is_some(), self.source_name, dest_name);
        request
    }
}

/// The `(from, to)` hypervisor names the plan's inventory step moves the
/// VM between: only for a VM the inventory has, between hypervisors it
/// names.
pub fn inventory_step(
    recorded: bool,
    from: Option<&str>,
    to: Option<&str>,
) -> Option<(String, String)> {
    match (recorded, from, to) {
        (true, Some(f), Some(t)) => Some((f.to_string(), t.to_string())),
        _ => None,
    }
}

/// How migrations run: herd-migrate's [`exec::Config`] less the observer
/// and the inventory, which come with each VM.
pub struct Runner {
    /// Set by SIGINT/SIGTERM ([`exec::cancel_on_signals`]).
    pub cancel: Arc<AtomicBool>,
    pub undo_timeout: Duration,
    /// The JSON-lines file finished migrations are appended to.
    pub history: Option<PathBuf>,
    /// Who takes the lock, e.g. `herd pid 42 on admin1`.
    pub owner: String,
}

impl Runner {
    /// Run `plan` over `hosts`, telling `observer` every notice; with
    /// `inventory`, the VM's `hypervisor` follows it.
    pub fn run(
        &self,
        plan: &Plan,
        hosts: &mut Hosts,
        mut inventory: Option<MoveVm>,
        observer: &(dyn Fn(&Notice) + Sync),
    ) -> Result<Report, ExecError> {
        let mut config = Config {
            cancel: Arc::clone(&self.cancel),
            undo_timeout: self.undo_timeout,
            poll_interval: Duration::from_millis(250),
            observer,
            inventory: inventory.as_mut().map(|i| i as &mut dyn Inventory),
            history: self.history.clone(),
            owner: self.owner.clone(),
        };
        exec::run(plan, hosts, &mut config)
    }

    /// A signal asked to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// Emptying one hypervisor: what every VM's move shares.
pub struct Evacuation<'a> {
    /// The source's libvirt URI.
    pub source: &'a str,
    /// The source's inventory name, when it has one.
    pub source_name: Option<&'a str>,
    pub candidates: &'a [Hv],
    pub request: &'a Request,
    /// The inventory, when one is configured: VM objects follow their VMs.
    pub inventory: Option<&'a Client>,
    /// Plan each VM, move none.
    pub dry_run: bool,
    pub runner: &'a Runner,
    /// The room of the moves chosen and not yet finished (on a dry run:
    /// of every VM planned so far), so VMs moving at once do not all pick
    /// the destination that had room for one.
    pub held: Mutex<Reservations>,
}

/// What became of one VM of an evacuation.
#[derive(Debug, Serialize)]
pub struct Evacuated {
    pub vm: String,
    pub status: Status,
    /// One line for people: the destination, or why not.
    pub detail: String,
    /// The plan, on a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// The finished migration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No candidate takes it (or its facts could not be read).
    Refused,
    /// Dry run: it would move.
    Planned,
    /// Not started: a signal asked to stop.
    Skipped,
    Moved,
    /// Started and undone.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Refused => "refused",
            Status::Planned => "planned",
            Status::Skipped => "skipped",
            Status::Moved => "moved",
            Status::Failed => "failed",
        }
    }

    /// The evacuation did what was asked for this VM.
    pub fn succeeded(self) -> bool {
        matches!(self, Status::Moved | Status::Planned)
    }
}

impl Evacuated {
    fn new(vm: &str, status: Status, detail: impl Into<String>) -> Evacuated {
        Evacuated {
            vm: vm.to_string(),
            status,
            detail: detail.into(),
            plan: None,
            report: None,
        }
    }
}

impl Evacuation<'_> {
    /// Move `vm` to the best candidate (plan it only, on a dry run),
    /// telling `observer` the migration's notices.
    pub fn one(&self, vm: &str, observer: &(dyn Fn(&Notice) + Sync)) -> Evacuated {
        let object = self.inventory.and_then(|c| c.get(vm).ok());
        // Held from planning to holding the room, so that two workers do
        // not both see the room one of them is about to take.
        let mut held = lock(&self.held);
        let planned = Move {
            vm,
            source: self.source,
            source_name: self.source_name,
            object: object.as_ref(),
            request: self.request,
        }
        .plan_best_beside(self.candidates, &held);
        let (plan, dest, mut hosts) = match planned {
            Ok(Planned {
                plan: Ok(plan),
                destination,
                hosts,
            }) => {
                let dest = destination.unwrap_or_else(|| plan.destination.clone());
                (plan, dest, hosts)
            }
            Ok(Planned { plan: Err(r), .. }) => {
                return Evacuated::new(vm, Status::Refused, r.to_string())
            }
            Err(e) => return Evacuated::new(vm, Status::Refused, e.to_string()),
        };
        // A dry run keeps every VM's room: the plans add up to where the
        // whole evacuation would put them.
        let reservation = held.hold(&plan);
        drop(held);
        if self.dry_run {
            let mut planned = Evacuated::new(vm, Status::Planned, format!("-> {dest}"));
            planned.plan = Some(plan);
            return planned;
        }
        let release = || lock(&self.held).release(&plan.destination, &reservation);
        if self.runner.cancelled() {
            release();
            return Evacuated::new(vm, Status::Skipped, "interrupted");
        }
        let inventory = self
            .inventory
            .zip(object)
            .map(|(c, o)| MoveVm::new(c.clone(), o));
        let outcome = self.runner.run(&plan, &mut hosts, inventory, observer);
        // Moved: the destination's own figures show the VM from now on.
        // Failed: it was undone, the room is free again.
        release();
        match outcome {
            Ok(r) => {
                let secs = r.duration_ms as f64 / 1000.0;
                let mut moved =
                    Evacuated::new(vm, Status::Moved, format!("-> {dest} in {secs:.1} s"));
                moved.report = Some(r);
                moved
            }
            Err(e) => Evacuated::new(vm, Status::Failed, e.to_string()),
        }
    }
}

/// Run `each` for every VM, `parallel` (at least one) at a time; the
/// results sorted by VM name.
pub fn evacuate(
    vms: &[String],
    parallel: usize,
    each: impl Fn(&str) -> Evacuated + Sync,
) -> Vec<Evacuated> {
    let queue = Mutex::new(vms.iter().collect::<VecDeque<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1) {
            s.spawn(|| loop {
                // Not `while let`: its guard would hold the queue during `each`.
                let Some(vm) = lock(&queue).pop_front() else {
                    return;
                };
                let r = each(vm);
                lock(&results).push(r);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by(|a, b| a.vm.cmp(&b.vm));
    results
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn the_inventory_step_needs_a_recorded_vm_and_both_names() {
        let step = Some(("hv1".to_string(), "hv2".to_string()));
        assert_eq!(inventory_step(true, Some("hv1"), Some("hv2")), step);
        assert_eq!(inventory_step(false, Some("hv1"), Some("hv2")), None);
        assert_eq!(inventory_step(true, None, Some("hv2")), None);
        assert_eq!(inventory_step(true, Some("hv1"), None), None);
    }

    #[test]
    fn only_moved_and_planned_vms_count_as_done() {
        let done: Vec<Status> = [
            Status::Refused,
            Status::Planned,
            Status::Skipped,
            Status::Moved,
            Status::Failed,
        ]
        .into_iter()
        .filter(|s| s.succeeded())
        .collect();
        assert_eq!(done, vec![Status::Planned, Status::Moved]);
    }

    #[test]
    fn evacuation_results_serialize_as_the_cli_prints_them() {
        let r = Evacuated::new("vm1", Status::Skipped, "interrupted");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"vm": "vm1", "status": "skipped", "detail": "interrupted"})
        );
        assert_eq!(Status::Refused.as_str(), "refused");
    }

    #[test]
    fn every_vm_is_handled_once_by_parallel_workers_and_sorted() {
        let vms: Vec<String> = ["vm3", "vm1", "vm4", "vm2", "vm5"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let seen = Mutex::new(Vec::new());
        let results = evacuate(&vms, 2, |vm| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            // The first VM waits for a second worker to join it.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while most.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            running.fetch_sub(1, Ordering::SeqCst);
            lock(&seen).push(vm.to_string());
            Evacuated::new(vm, Status::Moved, "")
        });
        let names: Vec<&str> = results.iter().map(|r| r.vm.as_str()).collect();
        assert_eq!(names, ["vm1", "vm2", "vm3", "vm4", "vm5"]);
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 5);
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 5);
        assert_eq!(most.load(Ordering::SeqCst), 2, "two at a time");
    }

    #[test]
    fn zero_workers_still_evacuate_one_at_a_time() {
        let vms = vec!["a".to_string(), "b".to_string()];
        let results = evacuate(&vms, 0, |vm| Evacuated::new(vm, Status::Failed, "x"));
        assert_eq!(results.len(), 2);
    }
}
