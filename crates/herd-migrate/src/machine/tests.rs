use super::*;
use crate::plan::{DiskMove, MigrateOptions};

fn disk(target: &str) -> DiskMove {
    DiskMove {
        target: target.into(),
        source_pool: "default".into(),
        source_volume: format!("vm1-{target}.qcow2"),
        source_path: format!("/images/vm1-{target}.qcow2"),
        capacity: 1 << 30,
        allocation: 1 << 20,
        source_format: "qcow2".into(),
        dest: DestDisk::NewVolume {
            pool: "default".into(),
            name: format!("vm1-{target}.qcow2"),
            path: format!("/images/vm1-{target}.qcow2"),
            format: "qcow2".into(),
            block: false,
        },
    }
}

fn plan(mode: Mode, disks: Vec<DiskMove>) -> Plan {
    let mut steps = vec![Step::Verify];
    for d in &disks {
        steps.push(Step::DeleteSourceVolume {
            pool: d.source_pool.clone(),
            name: d.source_volume.clone(),
        });
    }
    steps.push(Step::UpdateInventory {
        from: "hv1".into(),
        to: "hv2".into(),
    });
    steps.push(Step::Unlock);
    steps.push(Step::RecordHistory);
    Plan {
        vm: "vm1".into(),
        vm_uuid: "u".into(),
        source: "a".into(),
        destination: "b".into(),
        mode,
        disks,
        memory: 1 << 26,
        options: MigrateOptions::default(),
        dest_xml: None,
        persist_xml: None,
        steps,
        warnings: vec![],
    }
}

fn lock() -> LockFacts {
    LockFacts {
        owner: "herd test".into(),
        destination: "b".into(),
        since: 1,
        ..LockFacts::default()
    }
}

/// Drive the machine: answer each action with the event `answer` gives,
/// and return the actions taken and the final state.
fn drive(plan: &Plan, mut answer: impl FnMut(&Action) -> Event) -> (Vec<Action>, State) {
    let mut state = State::Start;
    let mut actions = Vec::new();
    for _ in 0..100 {
        let action = next_action(plan, &state);
        if action == Action::Finish {
            return (actions, state);
        }
        actions.push(action.clone());
        let event = answer(&action);
        state = step(plan, state, event);
    }
    panic!("machine did not finish: {state:?}");
}

fn ok(action: &Action) -> Event {
    match action {
        Action::Lock => Event::Locked(lock()),
        Action::CreateVolume(i) => Event::VolumeCreated(*i),
        Action::MigrateLive => Event::Migrated(Stats::default()),
        Action::CopyVolume(i) => Event::VolumeCopied(*i),
        Action::DefineOnDestination => Event::Defined,
        Action::UndefineOnSource => Event::SourceUndefined,
        Action::Verify => Event::Verified,
        Action::Cleanup(c) => Event::CleanupDone(c.clone()),
        Action::Undo(u) => Event::UndoDone(u.clone()),
        Action::Finish => unreachable!(),
    }
}

fn failed(what: &str) -> Failure {
    Failure::Step {
        step: what.into(),
        message: "boom".into(),
    }
}

#[test]
fn live_migration_runs_every_step_in_order() {
    let p = plan(Mode::Live, vec![disk("vda"), disk("vdb")]);
    let (actions, state) = drive(&p, ok);
    assert_eq!(
        actions,
        vec![
            Action::Lock,
            Action::CreateVolume(0),
            Action::CreateVolume(1),
            Action::MigrateLive,
            Action::Verify,
            Action::Cleanup(Cleanup::DeleteSourceVolume(0)),
            Action::Cleanup(Cleanup::DeleteSourceVolume(1)),
            Action::Cleanup(Cleanup::UpdateInventory {
                from: "hv1".into(),
                to: "hv2".into()
            }),
            Action::Cleanup(Cleanup::Unlock),
            Action::Cleanup(Cleanup::Record),
        ]
    );
    let State::Done { moved } = state else {
        panic!("{state:?}")
    };
    assert_eq!(
        moved.deleted,
        ["default/vm1-vda.qcow2", "default/vm1-vdb.qcow2"]
    );
    assert_eq!(moved.lock, None);
}

#[test]
fn offline_migration_copies_defines_then_undefines() {
    let p = plan(Mode::Offline, vec![disk("vda")]);
    let (actions, state) = drive(&p, ok);
    assert_eq!(
        &actions[..5],
        &[
            Action::Lock,
            Action::CreateVolume(0),
            Action::CopyVolume(0),
            Action::DefineOnDestination,
            Action::UndefineOnSource,
        ]
    );
    assert!(matches!(state, State::Done { .. }));
}

#[test]
fn interrupted_migration_deletes_created_volumes_newest_first_and_unlocks() {
    let p = plan(Mode::Live, vec![disk("vda"), disk("vdb")]);
    let (actions, state) = drive(&p, |a| match a {
        Action::MigrateLive => Event::MigrateFailed {
            cause: Failure::Interrupted,
            whereabouts: Whereabouts::Source,
        },
        a => ok(a),
    });
    assert_eq!(
        &actions[4..],
        &[
            Action::Undo(Undo::DestinationDomain),
            Action::Undo(Undo::DestinationVolume(1)),
            Action::Undo(Undo::DestinationVolume(0)),
            Action::Undo(Undo::UnlockSource),
        ]
    );
    assert_eq!(
        state,
        State::RolledBack {
            cause: Failure::Interrupted,
            leftovers: vec![]
        }
    );
}

#[test]
fn failure_creating_the_second_volume_undoes_only_the_first() {
    let p = plan(Mode::Live, vec![disk("vda"), disk("vdb")]);
    let (actions, state) = drive(&p, |a| match a {
        Action::CreateVolume(1) => Event::Failed(failed("create volume")),
        a => ok(a),
    });
    assert_eq!(
        &actions[3..],
        &[
            Action::Undo(Undo::DestinationDomain),
            Action::Undo(Undo::DestinationVolume(0)),
            Action::Undo(Undo::UnlockSource),
        ]
    );
    assert!(matches!(state, State::RolledBack { .. }));
}

#[test]
fn failure_to_lock_leaves_nothing_to_undo() {
    let p = plan(Mode::Live, vec![disk("vda")]);
    let (actions, state) = drive(&p, |a| match a {
        Action::Lock => Event::Failed(failed("lock")),
        a => ok(a),
    });
    assert_eq!(actions, vec![Action::Lock]);
    assert!(matches!(state, State::RolledBack { leftovers, .. } if leftovers.is_empty()));
}

#[test]
fn undo_that_cannot_finish_is_reported_as_a_leftover() {
    let p = plan(Mode::Live, vec![disk("vda")]);
    let (_, state) = drive(&p, |a| match a {
        Action::MigrateLive => Event::MigrateFailed {
            cause: failed("migrate"),
            whereabouts: Whereabouts::Source,
        },
        Action::Undo(u @ Undo::DestinationVolume(_)) => {
            Event::UndoFailed(u.clone(), "delete it by hand".into())
        }
        a => ok(a),
    });
    assert_eq!(
        state,
        State::RolledBack {
            cause: failed("migrate"),
            leftovers: vec!["delete it by hand".into()]
        }
    );
}

#[test]
fn error_after_the_vm_reached_the_destination_goes_forward() {
    let p = plan(Mode::Live, vec![disk("vda")]);
    let (actions, state) = drive(&p, |a| match a {
        Action::MigrateLive => Event::MigrateFailed {
            cause: failed("migrate"),
            whereabouts: Whereabouts::Destination,
        },
        a => ok(a),
    });
    assert!(actions.contains(&Action::Cleanup(Cleanup::DeleteSourceVolume(0))));
    assert!(!actions.iter().any(|a| matches!(a, Action::Undo(_))));
    let State::Done { moved } = state else {
        panic!()
    };
    assert_eq!(moved.warnings.len(), 1);
}

#[test]
fn vm_found_nowhere_deletes_nothing_and_keeps_the_lock() {
    let p = plan(Mode::Live, vec![disk("vda")]);
    let (actions, state) = drive(&p, |a| match a {
        Action::MigrateLive => Event::MigrateFailed {
            cause: failed("migrate"),
            whereabouts: Whereabouts::Unknown,
        },
        a => ok(a),
    });
    assert_eq!(actions.last(), Some(&Action::MigrateLive));
    assert!(matches!(state, State::Stuck { .. }));
}

#[test]
fn failed_cleanup_after_the_move_is_a_warning() {
    let p = plan(Mode::Live, vec![disk("vda")]);
    let (_, state) = drive(&p, |a| match a {
        Action::Cleanup(c @ Cleanup::UpdateInventory { .. }) => {
            Event::CleanupFailed(c.clone(), "newer data available".into())
        }
        a => ok(a),
    });
    let State::Done { moved } = state else {
        panic!()
    };
    assert_eq!(moved.warnings, ["newer data available"]);
    assert_eq!(moved.lock, None, "unlocked anyway");
}

#[test]
fn offline_failure_after_define_removes_the_destination_domain() {
    let p = plan(Mode::Offline, vec![disk("vda")]);
    let (actions, _) = drive(&p, |a| match a {
        Action::UndefineOnSource => Event::Failed(failed("undefine")),
        a => ok(a),
    });
    assert_eq!(
        &actions[5..],
        &[
            Action::Undo(Undo::DestinationDomain),
            Action::Undo(Undo::DestinationVolume(0)),
            Action::Undo(Undo::UnlockSource),
        ]
    );
}

#[test]
fn only_steps_before_the_move_are_interruptible() {
    assert!(Action::MigrateLive.interruptible());
    assert!(!Action::Verify.interruptible());
    assert!(!Action::Cleanup(Cleanup::Unlock).interruptible());
    assert!(!Action::Undo(Undo::UnlockSource).interruptible());
}

#[test]
fn failed_verification_keeps_the_source_volumes() {
    let p = plan(Mode::Live, vec![disk("vda")]);
    let (actions, state) = drive(&p, |a| match a {
        Action::Verify => Event::Failed(failed("verify")),
        a => ok(a),
    });
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::Cleanup(Cleanup::DeleteSourceVolume(_)))));
    assert!(actions.contains(&Action::Cleanup(Cleanup::Unlock)));
    assert!(matches!(state, State::Done { .. }));
}
