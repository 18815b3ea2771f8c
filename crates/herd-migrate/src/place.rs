//! Choosing a destination: pure scoring of the hypervisors a VM could go to.
//!
//! Each candidate was planned (facts gathered, [`crate::plan::plan`] run);
//! those that refused drop out with their reasons, the rest are ranked by
//! headroom: how many more VMs of this size would still fit after the move,
//! by memory and by disk, whichever is smaller. Ties go to the name first in
//! order, so the choice is stable.
//!
//! Moves running at the same time (an evacuation with `--parallel`, or a
//! dry run planning every VM before any moves) do not show in each other's
//! facts yet: a [`Reservation`] is the room a chosen move will take, and
//! [`Reservations`] subtracts the room of the moves still in flight from
//! a destination's facts before the next VM is planned onto it.

use std::collections::BTreeMap;

use crate::facts::Facts;
use crate::plan::{DestDisk, Mode, Plan, Refusal};
use serde::Serialize;

/// The room one planned move takes on its destination: memory for a live
/// move (a stopped VM takes none until it is started) and the bytes its
/// new volumes will hold, per pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reservation {
    pub memory: u64,
    pub pools: BTreeMap<String, u64>,
}

impl Reservation {
    pub fn of(plan: &Plan) -> Reservation {
        let mut pools = BTreeMap::new();
        for d in &plan.disks {
            if let DestDisk::NewVolume { pool, .. } = &d.dest {
                *pools.entry(pool.clone()).or_insert(0) += d.allocation;
            }
        }
        Reservation {
            memory: if plan.mode == Mode::Live {
                plan.memory
            } else {
                0
            },
            pools,
        }
    }
}

/// The moves chosen but not yet finished, by destination URI (pure
/// bookkeeping; the caller holds it across planning and moving).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reservations {
    held: BTreeMap<String, Vec<Reservation>>,
}

impl Reservations {
    /// The destination's facts as they will be once the moves held for it
    /// have landed.
    pub fn apply(&self, facts: &mut Facts) {
        let Some(held) = self.held.get(&facts.destination.uri) else {
            return;
        };
        for r in held {
            facts.destination.free_memory = facts.destination.free_memory.saturating_sub(r.memory);
            for pool in &mut facts.destination.pools {
                if let Some(bytes) = r.pools.get(&pool.name) {
                    pool.available = pool.available.saturating_sub(*bytes);
                }
            }
        }
    }

    /// Holds the room of `plan` on its destination.
    pub fn hold(&mut self, plan: &Plan) -> Reservation {
        let r = Reservation::of(plan);
        self.held
            .entry(plan.destination.clone())
            .or_default()
            .push(r.clone());
        r
    }

    /// Gives back one reservation held for `destination` (the move ended,
    /// either way: its room now shows in the facts, or was freed).
    pub fn release(&mut self, destination: &str, reservation: &Reservation) {
        if let Some(held) = self.held.get_mut(destination) {
            if let Some(i) = held.iter().position(|r| r == reservation) {
                held.swap_remove(i);
            }
            if held.is_empty() {
                self.held.remove(destination);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// One hypervisor the VM could move to, as planned.
pub struct Candidate<'a> {
    pub name: &'a str,
    pub facts: &'a Facts,
    pub plan: Result<&'a Plan, &'a Refusal>,
}

/// Why no candidate was chosen: each candidate's refusal.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("no hypervisor can take {vm}:{}", render(rejected))]
pub struct NoDestination {
    pub vm: String,
    pub rejected: Vec<(String, String)>,
}

fn render(rejected: &[(String, String)]) -> String {
    if rejected.is_empty() {
        return " there is no candidate (check --to or --to-query)".into();
    }
    rejected
        .iter()
        .map(|(name, why)| format!("\n  {name}: {why}"))
        .collect()
}

/// Headroom after the move, in VMs of this size.
pub fn headroom(facts: &Facts, plan: &Plan) -> f64 {
    let memory = plan.memory.max(1) as f64;
    let mem_after = facts.destination.free_memory.saturating_sub(plan.memory) as f64 / memory;
    let mut disk_after = f64::INFINITY;
    for pool in &facts.destination.pools {
        let need: u64 = plan
            .disks
            .iter()
            .filter(|d| matches!(&d.dest, DestDisk::NewVolume { pool: p, .. } if p == &pool.name))
            .map(|d| d.allocation)
            .sum();
        if need > 0 {
            disk_after = disk_after.min(pool.available.saturating_sub(need) as f64 / need as f64);
        }
    }
    mem_after.min(disk_after)
}

/// The index of the best candidate, or every candidate's refusal.
pub fn choose(vm: &str, options: &[Candidate]) -> Result<usize, NoDestination> {
    let mut best: Option<(usize, f64)> = None;
    for (i, o) in options.iter().enumerate() {
        let Ok(plan) = o.plan else { continue };
        let score = headroom(o.facts, plan);
        let better = match best {
            None => true,
            Some((b, s)) => score > s || (score == s && o.name < options[b].name),
        };
        if better {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i).ok_or_else(|| NoDestination {
        vm: vm.to_string(),
        rejected: options
            .iter()
            .filter_map(|o| match o.plan {
                Err(r) => Some((
                    o.name.to_string(),
                    r.reasons
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("; "),
                )),
                Ok(_) => None,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::*;
    use crate::plan::{plan, Request};

    const GIB: u64 = 1 << 30;

    fn facts(dest_uuid: &str, free_memory: u64, pool_free: u64) -> Facts {
        let vol = VolumeFacts {
            name: "vm1.qcow2".into(),
            path: "/images/vm1.qcow2".into(),
            capacity: 10 * GIB,
            allocation: GIB,
            format: "qcow2".into(),
        };
        let host = |uuid: &str, mem: u64, free: u64| HostFacts {
            uri: format!("qemu:///{uuid}"),
            host_uuid: uuid.into(),
            hostname: uuid.into(),
            free_memory: mem,
            pools: vec![PoolFacts {
                name: "default".into(),
                kind: "dir".into(),
                path: "/images".into(),
                active: true,
                available: free,
                volumes: vec![],
            }],
            networks: None,
            bridges: None,
            domains: vec![],
        };
        Facts {
            source: host("src", 0, 0),
            destination: host(dest_uuid, free_memory, pool_free),
            vm: VmFacts {
                name: "vm1".into(),
                uuid: "u".into(),
                state: VmState::Running,
                persistent: true,
                memory: GIB,
                disks: vec![DiskFacts {
                    target: "vda".into(),
                    device: "disk".into(),
                    source: DiskSource::File {
                        path: vol.path.clone(),
                    },
                    format: "qcow2".into(),
                    readonly: false,
                    shareable: false,
                    volume: Some(PoolVolume {
                        pool: "default".into(),
                        volume: vol,
                    }),
                }],
                interfaces: vec![],
                lock: None,
                job_active: false,
                xml: "<domain/>".into(),
                persistent_xml: None,
            },
            cpu: CpuVerdict::NotApplicable,
        }
    }

    /// Plans vm1 onto every candidate and chooses: the plans, and the
    /// index of the chosen one or every refusal.
    fn plan_and_choose(
        candidates: &[(&str, Facts)],
    ) -> (Vec<Result<Plan, Refusal>>, Result<usize, NoDestination>) {
        let plans: Vec<_> = candidates
            .iter()
            .map(|(_, f)| plan(f, &Request::default()))
            .collect();
        let options: Vec<Candidate> = candidates
            .iter()
            .zip(&plans)
            .map(|((name, f), p)| Candidate {
                name,
                facts: f,
                plan: p.as_ref(),
            })
            .collect();
        let chosen = choose("vm1", &options);
        (plans, chosen)
    }

    fn check(candidates: &[(&str, Facts)], expect: Result<&str, &[&str]>) {
        let name = |i: usize| candidates[i].0;
        match (plan_and_choose(candidates).1, expect) {
            (Ok(i), Ok(want)) => assert_eq!(name(i), want),
            (Err(e), Err(names)) => {
                let got: Vec<&str> = e.rejected.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(got, names);
            }
            (got, want) => panic!("got {:?}, want {want:?}", got.map(name)),
        }
    }

    #[test]
    fn held_moves_shrink_the_destination_until_released() {
        let a = facts("a", 4 * GIB, 100 * GIB);
        let plan_a = plan(&a, &Request::default()).unwrap();
        let mut held = Reservations::default();
        let r = held.hold(&plan_a);
        assert_eq!(r.memory, GIB, "a live move takes the VM's memory");
        assert_eq!(r.pools.get("default"), Some(&GIB), "and its allocation");

        let mut seen = a.clone();
        held.apply(&mut seen);
        assert_eq!(seen.destination.free_memory, 3 * GIB);
        assert_eq!(seen.destination.pools[0].available, 99 * GIB);
        // Other destinations are untouched.
        let mut b = facts("b", 4 * GIB, 100 * GIB);
        held.apply(&mut b);
        assert_eq!(b.destination.free_memory, 4 * GIB);

        held.release(&plan_a.destination, &r);
        assert!(held.is_empty());
        let mut again = a.clone();
        held.apply(&mut again);
        assert_eq!(again, a);
    }

    #[test]
    fn two_moves_planned_together_spread_over_equal_hosts() {
        // a and b are alike: the first VM goes to a (by name); with its
        // room held, the second goes to b, where alone it would go to a.
        let mut held = Reservations::default();
        let mut chosen = Vec::new();
        for _ in 0..2 {
            let mut candidates = [
                ("a", facts("a", 4 * GIB, 100 * GIB)),
                ("b", facts("b", 4 * GIB, 100 * GIB)),
            ];
            for (_, f) in &mut candidates {
                held.apply(f);
            }
            let (plans, i) = plan_and_choose(&candidates);
            let i = i.unwrap();
            held.hold(plans[i].as_ref().unwrap());
            chosen.push(candidates[i].0);
        }
        assert_eq!(chosen, ["a", "b"]);
    }

    #[test]
    fn a_destination_filled_by_held_moves_refuses_the_next() {
        // Room for one 1 GiB VM: the second plan onto it is refused.
        let mut held = Reservations::default();
        let first = plan(&facts("a", GIB + GIB / 2, 100 * GIB), &Request::default()).unwrap();
        held.hold(&first);
        let mut f = facts("a", GIB + GIB / 2, 100 * GIB);
        held.apply(&mut f);
        let refused = plan(&f, &Request::default()).unwrap_err();
        assert!(refused.to_string().contains("free memory"), "{refused}");
    }

    #[test]
    fn the_host_with_most_headroom_wins() {
        check(
            &[
                ("hv2", facts("a", 4 * GIB, 100 * GIB)),
                ("hv3", facts("b", 16 * GIB, 100 * GIB)),
            ],
            Ok("hv3"),
        );
    }

    #[test]
    fn disk_headroom_counts_as_much_as_memory() {
        check(
            &[
                ("hv2", facts("a", 16 * GIB, 2 * GIB)),
                ("hv3", facts("b", 8 * GIB, 100 * GIB)),
            ],
            Ok("hv3"),
        );
    }

    #[test]
    fn refused_hosts_are_skipped_and_ties_go_by_name() {
        check(
            &[
                ("hv4", facts("c", 8 * GIB, 100 * GIB)),
                ("hv2", facts("src", 64 * GIB, 100 * GIB)),
                ("hv3", facts("b", 8 * GIB, 100 * GIB)),
            ],
            Ok("hv3"),
        );
    }

    #[test]
    fn no_fitting_host_lists_every_refusal() {
        check(
            &[
                ("hv2", facts("a", GIB / 2, 100 * GIB)),
                ("hv3", facts("src", 64 * GIB, 100 * GIB)),
            ],
            Err(&["hv2", "hv3"]),
        );
    }
}
