//! No lost updates over HTTP: clients racing on the same `old` value.

mod support;

use herd_client::{ClientError, Commit, Filter, Query, Value};
use std::sync::{Arc, Barrier};
use support::inventory::load_fleet;
use support::Server;

fn memory_of(client: &herd_client::Client, hostname: &str) -> Value {
    client
        .get(hostname)
        .expect("read")
        .get("memory")
        .cloned()
        .expect("memory")
}

#[test]
fn two_clients_committing_against_the_same_old_value_exactly_one_wins_each_time() {
    let server = Server::start();
    let client = server.client();
    load_fleet(&client, 1, 1);
    let id = client.get("vm1").unwrap().object_id().unwrap();
    let rounds = 60;
    for round in 0..rounds {
        let old = memory_of(&client, "vm1");
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2i64)
            .map(|racer| {
                let barrier = Arc::clone(&barrier);
                let old = old.clone();
                let client = server.client();
                std::thread::spawn(move || {
                    let new = Value::number(10_000 * (round + 1) + racer);
                    let mut commit = Commit::default();
                    commit.changed.push(herd_client::Change::new(id).update(
                        "memory",
                        old,
                        new.clone(),
                    ));
                    barrier.wait();
                    (new, client.commit(&commit))
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners: Vec<&Value> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(v, _)| v)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for (_, result) in &results {
            if let Err(err) = result {
                assert!(
                    matches!(err, ClientError::Conflict { .. }),
                    "round {round}: the loser must get a conflict, got {err:?}"
                );
                assert!(err.to_string().contains("newer data available"), "{err}");
            }
        }
        assert_eq!(&memory_of(&client, "vm1"), winners[0], "round {round}");
    }
}

#[test]
fn concurrent_read_modify_write_with_retries_loses_no_increment() {
    let server = Server::start();
    let client = server.client();
    load_fleet(&client, 1, 1);
    let (threads, increments) = (4, 25);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let client = server.client();
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for _ in 0..increments {
                    loop {
                        let mut vm = client.get("vm1").expect("read");
                        let Some(Value::Number(n)) = vm.get("num_cpu").cloned() else {
                            panic!("num_cpu is a number");
                        };
                        vm.set("num_cpu", Value::number(n.as_i64().unwrap() + 1));
                        match client.commit(&herd_client::commit_of([&vm])) {
                            Ok(_) => break,
                            Err(ClientError::Conflict { .. }) => conflicts += 1,
                            Err(other) => panic!("unexpected error: {other}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let final_value = client
        .query(&Query::filter("hostname", Filter::Equals("vm1".into())).restrict(&["num_cpu"]))
        .unwrap()[0]
        .get("num_cpu")
        .cloned();
    // The fleet starts VMs at 2 CPUs.
    assert_eq!(
        final_value,
        Some(Value::number(2 + threads * increments)),
        "{conflicts} conflicts were retried"
    );
}
