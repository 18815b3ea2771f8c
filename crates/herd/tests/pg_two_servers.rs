//! Two real `herd serve` processes on one PostgreSQL database (a throwaway
//! cluster on loopback) behave as one server: no update is lost when
//! clients spread over both race on the same `old` value, and a signed
//! request accepted by one is refused as a replay by the other.

mod support;

use std::sync::{Arc, Barrier};

use herd_auth::Signer;
use herd_client::{Change, Client, ClientError, Commit, Value};
use herd_model::{
    Attribute, AttributeType, IpAddrType, Object, SchemaChange, Servertype, ServertypeAttribute,
};
use herd_store::auth::{AuthStore, StoredToken, User};
use herd_store::Store;
use herd_store_postgres::testing::TempPostgres;
use herd_store_postgres::{PgOptions, PgStore};
use support::Server;

const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// A client of `server` signing with alice's token.
fn signed_client(server: &Server) -> Client {
    server
        .client()
        .with_signer(Box::new(herd_auth::TokenSigner::new(TOKEN).expect("token")))
}

/// A fresh database with a `vm` servertype, `vm1` (memory 0), and an
/// administrator `alice` with a token, so both servers authenticate.
fn database() -> String {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let store = PgStore::open(&url, &PgOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut vm = Servertype::new("vm", IpAddrType::Null);
    vm.attributes.push(ServertypeAttribute::new("memory"));
    store
        .change_schema(
            &[
                SchemaChange::CreateAttribute {
                    attribute: Attribute::new("memory", AttributeType::Number),
                },
                SchemaChange::CreateServertype { servertype: vm },
            ],
            "test",
        )
        .unwrap();
    let mut o = Object::default();
    o.fields.insert("hostname".into(), "vm1".into());
    o.fields.insert("servertype".into(), "vm".into());
    o.fields.insert("memory".into(), Value::number(0));
    store
        .commit(
            &Commit {
                created: vec![o],
                ..Commit::default()
            },
            "setup",
        )
        .unwrap();
    store
        .add_user(&User {
            name: "alice".into(),
            admin: true,
            read_only: false,
            disabled: false,
        })
        .unwrap();
    store
        .add_token(&StoredToken {
            user: "alice".into(),
            name: "test".into(),
            app_id: herd_auth::verify::token_app_id(TOKEN),
            secret: TOKEN.into(),
        })
        .unwrap();
    url
}

fn memory(client: &Client) -> Value {
    client
        .get("vm1")
        .expect("read vm1")
        .get("memory")
        .cloned()
        .expect("memory")
}

#[test]
fn clients_racing_through_two_servers_never_lose_an_update() {
    let db = database();
    // One server answers from its read cache, the other in SQL; the
    // reader asks the cached one, whichever server the winner went through.
    let servers = [
        Server::start_on(&db),
        Server::start_with(&db, &["--no-read-cache"]),
    ];
    let reader = signed_client(&servers[0]);
    let id = reader.get("vm1").unwrap().object_id().unwrap();
    for round in 0..30i64 {
        let old = memory(&reader);
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(i, server)| {
                let (client, barrier, old) = (signed_client(server), barrier.clone(), old.clone());
                let new = Value::number(1000 * (round + 1) + i as i64);
                std::thread::spawn(move || {
                    let mut commit = Commit::default();
                    commit
                        .changed
                        .push(Change::new(id).update("memory", old, new.clone()));
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
        for (_, r) in &results {
            if let Err(e) = r {
                assert!(
                    matches!(e, ClientError::Conflict { .. })
                        && e.to_string().contains("newer data available"),
                    "round {round}: the loser must get a conflict, got {e:?}"
                );
            }
        }
        // Both servers see the winner's value.
        for s in &servers {
            assert_eq!(&memory(&signed_client(s)), winners[0], "round {round}");
        }
    }

    // Read-modify-write increments spread over both servers: every
    // successful commit counts, none is lost.
    let start = match memory(&reader) {
        Value::Number(n) => n.as_i64().unwrap(),
        other => panic!("{other:?}"),
    };
    let (workers, each) = (4usize, 10i64);
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let client = signed_client(&servers[w % 2]);
            std::thread::spawn(move || {
                let mut done = 0;
                while done < each {
                    let Value::Number(old) = memory(&client) else {
                        panic!("memory is not a number")
                    };
                    let old = old.as_i64().unwrap();
                    let mut commit = Commit::default();
                    commit.changed.push(Change::new(id).update(
                        "memory",
                        Value::number(old),
                        Value::number(old + 1),
                    ));
                    match client.commit(&commit) {
                        Ok(_) => done += 1,
                        Err(ClientError::Conflict { .. }) => {}
                        Err(e) => panic!("worker {w}: {e}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        memory(&signed_client(&servers[1])),
        Value::number(start + workers as i64 * each)
    );
}

#[test]
fn a_signed_request_replayed_to_the_second_server_is_refused() {
    let db = database();
    let (first, second) = (Server::start_on(&db), Server::start_on(&db));
    let path = "/api/dataset/query";
    let body = br#"{"filters":{"hostname":"vm1"},"restrict":["hostname","memory"]}"#;
    let signer = herd_auth::TokenSigner::new(TOKEN).unwrap();
    let headers = signer.sign_request("POST", path, body).unwrap();

    let (status, text) = first.send("POST", path, &headers, body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("vm1"), "{text}");

    let (status, text) = second.send("POST", path, &headers, body);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("replayed request"), "{text}");

    // Unsigned: refused too; freshly signed: the second server answers.
    let (status, _) = second.send("POST", path, &[], body);
    assert_eq!(status, 401);
    let fresh = signer.sign_request("POST", path, body).unwrap();
    let (status, text) = second.send("POST", path, &fresh, body);
    assert_eq!(status, 200, "{text}");
}
