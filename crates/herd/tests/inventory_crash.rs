//! `kill -9` of the server in the middle of a stream of commits: after a
//! restart every commit is wholly present, with its history, or wholly
//! absent, and every acknowledged commit is present.

mod support;

use herd_client::{Change, Client, Commit, Filter, HistoryQuery, Query, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::inventory::{load_fleet, object};
use support::Server;

const WRITERS: usize = 4;

/// Commit `i` of writer `w`: create `w{w}-c{i}-a` and `-b`, and move the
/// writer's counter VM's `num_cpu` from `i` to `i + 1` (compare-and-swap).
fn commit_for(writer: usize, counter_id: i64, i: i64) -> Commit {
    let mut commit = Commit::default();
    for suffix in ["a", "b"] {
        commit.created.push(object(serde_json::json!({
            "hostname": format!("w{writer}-c{i}-{suffix}"), "servertype": "vm",
            "intern_ip": format!("10.{}.{}.{}", 100 + writer, i / 100, (i % 100) * 2 + if suffix == "b" { 2 } else { 1 }),
            "hypervisor": "hv1", "memory": i, "tags": ["crash", format!("w{writer}")]
        })));
    }
    commit.changed.push(Change::new(counter_id).update(
        "num_cpu",
        Value::number(i),
        Value::number(i + 1),
    ));
    commit
}

fn hostnames_matching(client: &Client, pattern: &str) -> Vec<String> {
    client
        .query(&Query::filter("hostname", Filter::Regexp(pattern.into())).restrict(&["hostname"]))
        .unwrap()
        .iter()
        .map(|o| o.hostname().unwrap().to_string())
        .collect()
}

#[test]
fn kill_9_during_commits_leaves_every_commit_whole_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.sqlite");
    let server = Server::start_on(&db);
    let client = server.client();
    load_fleet(&client, 1, 0);
    // One counter VM per writer, num_cpu starting at 0.
    let mut setup = Commit::default();
    for w in 0..WRITERS {
        setup.created.push(object(serde_json::json!({
            "hostname": format!("counter{w}"), "servertype": "vm", "hypervisor": "hv1", "num_cpu": 0,
            "intern_ip": format!("10.99.0.{}", w + 1)
        })));
    }
    client.commit(&setup).unwrap();
    drop(server);
    // Several crashes in a row, each followed by a full check of the state.
    let mut acknowledged: Vec<Vec<(i64, i64)>> = vec![Vec::new(); WRITERS];
    for round in 0..3 {
        let mut server = Server::start_on(&db);
        let present = check_state(&server.client(), &acknowledged);
        let acked = stream_until_killed(&mut server, &present);
        for (w, acked) in acked.into_iter().enumerate() {
            acknowledged[w].extend(acked);
        }
        eprintln!(
            "round {round}: {} commits acknowledged so far",
            acknowledged.iter().map(Vec::len).sum::<usize>()
        );
    }
    let server = Server::start_on(&db);
    check_state(&server.client(), &acknowledged);
}

/// Writers commit from where their counters stand until the server is
/// killed; returns each writer's acknowledged `(i, commit_id)`.
fn stream_until_killed(server: &mut Server, start: &[i64]) -> Vec<Vec<(i64, i64)>> {
    let client = server.client();
    let counters: Vec<i64> = (0..WRITERS)
        .map(|w| {
            client
                .get(&format!("counter{w}"))
                .unwrap()
                .object_id()
                .unwrap()
        })
        .collect();
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = server.client();
            let counter = counters[w];
            let first = start[w];
            let acknowledged = Arc::clone(&acknowledged);
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in first.. {
                    match client.commit(&commit_for(w, counter, i)) {
                        Ok(id) => {
                            acked.push((i, id));
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => return acked,
                    }
                }
                acked
            })
        })
        .collect();
    // Let a good number of commits through, then crash mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.load(Ordering::SeqCst) < 40 {
        assert!(Instant::now() < deadline, "commits did not go through");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    writers.into_iter().map(|w| w.join().unwrap()).collect()
}

/// Check that every writer's commits `0..n` are wholly present (both
/// objects, the counter at `n`, three changes in history) and none after,
/// and that every acknowledged commit is among them. Returns each `n`.
fn check_state(client: &Client, acknowledged: &[Vec<(i64, i64)>]) -> Vec<i64> {
    let mut result = Vec::new();
    for (w, acked) in acknowledged.iter().enumerate() {
        let counter = client.get(&format!("counter{w}")).unwrap();
        let Some(Value::Number(n)) = counter.get("num_cpu") else {
            panic!("counter{w} has no num_cpu");
        };
        let present = n.as_i64().unwrap();
        // Every acknowledged commit survived.
        let highest_acked = acked.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
        assert!(
            present >= highest_acked,
            "writer {w}: commits up to {highest_acked} acknowledged, {present} present"
        );
        let names = hostnames_matching(client, &format!("^w{w}-c"));
        let mut by_commit: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for name in names {
            let i: i64 = name
                .trim_start_matches(&format!("w{w}-c"))
                .trim_end_matches("-a")
                .trim_end_matches("-b")
                .parse()
                .unwrap();
            by_commit.entry(i).or_default().push(name);
        }
        // Commits 0..present are wholly there (both objects), none after.
        let expected: Vec<i64> = (0..present).collect();
        assert_eq!(
            by_commit.keys().copied().collect::<Vec<_>>(),
            expected,
            "writer {w}"
        );
        for (i, names) in &by_commit {
            assert_eq!(names.len(), 2, "writer {w} commit {i}: {names:?}");
        }
        // The counter's history: its creation plus one change per commit,
        // and each of those commits holds all three of its changes.
        let counter_history = client
            .history(&HistoryQuery {
                object_id: counter.object_id(),
                limit: Some(10_000),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(counter_history.len() as i64, present + 1, "writer {w}");
        let increments = counter_history.iter().filter(|r| {
            r.changes
                .iter()
                .all(|c| c.kind == herd_model::ChangeKind::Changed)
        });
        for record in increments {
            let full = client
                .history(&HistoryQuery {
                    commit_id: Some(record.commit_id),
                    ..Default::default()
                })
                .unwrap();
            let touched: Vec<&str> = full[0]
                .changes
                .iter()
                .map(|c| c.hostname.as_str())
                .collect();
            assert_eq!(touched.len(), 3, "commit {}: {touched:?}", record.commit_id);
            assert!(
                touched.contains(&format!("counter{w}").as_str()),
                "{touched:?}"
            );
        }
        for (i, id) in acked {
            let record = &client
                .history(&HistoryQuery {
                    commit_id: Some(*id),
                    ..Default::default()
                })
                .unwrap()[0];
            let names: Vec<&str> = record.changes.iter().map(|c| c.hostname.as_str()).collect();
            assert!(
                names.contains(&format!("w{w}-c{i}-a").as_str())
                    && names.contains(&format!("w{w}-c{i}-b").as_str()),
                "acknowledged commit {id} of writer {w}: {names:?}"
            );
        }
        result.push(present);
    }
    result
}
