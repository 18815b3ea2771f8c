//! SQLite-specific behaviour: persistence across restarts, one process per
//! file, sharing the file with the auth store, crash consistency.

use std::process::Command;
use std::time::Duration;

use herd_model::{Change, Commit, Object, Query, Value};
use herd_store::{Store, StoreError};
use herd_store_sqlite::SqliteStore;

fn created(json: serde_json::Value) -> Commit {
    let objects: Vec<Object> = serde_json::from_value(json).expect("objects");
    Commit {
        created: objects,
        ..Commit::default()
    }
}

fn counter_fixture(store: &SqliteStore) {
    herd_store::conformance::fixture_schema(store);
    store
        .commit(
            &created(
                serde_json::json!([{"hostname": "hv1", "servertype": "hypervisor",
                "intern_ip": "10.0.0.1", "num_cpu": 0}]),
            ),
            "test",
        )
        .expect("fixture");
}

#[test]
fn data_and_history_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herd.sqlite");
    let commit_id = {
        let store = SqliteStore::open(&path).unwrap();
        herd_store::conformance::fixture(&store);
        let id = store
            .query(&Query::filter(
                "hostname",
                herd_model::Filter::Equals("vm1.example.com".into()),
            ))
            .unwrap()[0]
            .object_id()
            .unwrap();
        store
            .commit(
                &Commit {
                    changed: vec![Change::new(id).update(
                        "num_cpu",
                        Value::number(4),
                        Value::number(12),
                    )],
                    ..Commit::default()
                },
                "alice",
            )
            .unwrap()
    };
    let before_schema;
    let all_before;
    {
        let store = SqliteStore::open(&path).unwrap();
        before_schema = store.schema().unwrap();
        all_before = store.query(&Query::default()).unwrap();
        assert_eq!(all_before.len(), 8);
        assert_eq!(store.commit_record(commit_id).unwrap().author, "alice");
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema().unwrap(), before_schema);
    assert_eq!(store.query(&Query::default()).unwrap(), all_before);
    let vm1 = all_before
        .iter()
        .find(|o| o.hostname() == Some("vm1.example.com"))
        .unwrap();
    assert_eq!(vm1.get("num_cpu"), Some(&Value::number(12)));
    assert_eq!(
        vm1.get("seen").map(Value::to_text).as_deref(),
        Some("2024-01-01T10:00:00+00:00")
    );
}

#[test]
fn a_second_process_can_not_open_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herd.sqlite");
    let _first = SqliteStore::open(&path).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Internal(m)) => assert!(m.contains("in use by another process"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the file was opened twice"),
    }
}

#[test]
fn auth_store_shares_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herd.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let _auth = herd_store_sqlite::auth::SqliteAuthStore::open(&path).unwrap();
    counter_fixture(&store);
    assert_eq!(store.len().unwrap(), 1);
}

/// Runs in a child process (see below): commits forever, one object per
/// commit, until killed.
#[test]
fn crash_child_commits_forever() {
    let Ok(path) = std::env::var("HERD_CRASH_CHILD_DB") else {
        return;
    };
    let store = SqliteStore::open(std::path::Path::new(&path)).unwrap();
    counter_fixture(&store);
    for i in 0.. {
        let c = created(serde_json::json!([
            {"hostname": format!("a{i}"), "servertype": "hypervisor", "intern_ip": format!("10.1.{}.{}", i / 250, i % 250 + 1)},
            {"hostname": format!("b{i}"), "servertype": "hypervisor", "intern_ip": format!("10.2.{}.{}", i / 250, i % 250 + 1)},
        ]));
        store.commit(&c, "child").unwrap();
        println!("committed {i}");
    }
}

/// kill -9 in the middle of a stream of commits: after reopening, every
/// commit is wholly present (both objects and its history) or wholly absent.
#[test]
fn commits_are_atomic_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herd.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_commits_forever",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HERD_CRASH_CHILD_DB", &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let names: Vec<String> = store
        .query(&Query::default())
        .unwrap()
        .iter()
        .filter_map(|o| o.hostname().map(str::to_owned))
        .collect();
    let a = names.iter().filter(|n| n.starts_with('a')).count();
    let b = names.iter().filter(|n| n.starts_with('b')).count();
    assert!(a > 10, "the child committed for a while ({a} commits)");
    assert_eq!(a, b, "every commit wholly present or absent");
    let commits = store.recent_commits(1_000_000).unwrap();
    assert_eq!(
        commits.len(),
        a + 1,
        "one history record per surviving commit (plus the fixture)"
    );
    assert!(commits
        .iter()
        .take(a)
        .all(|c| c.changes.len() == 2 && c.author == "child"));
}
