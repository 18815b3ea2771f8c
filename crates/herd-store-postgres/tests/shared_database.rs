//! What several servers on one PostgreSQL database rely on: migrations run
//! once when they start together, the replay memory and the compare-and-
//! swap are shared, and account rules hold across connections. Each
//! `PgStore` here stands for one server (its own connection pool).

use std::sync::{Arc, Barrier};

use herd_model::{
    Attribute, AttributeType, Change, Commit, IpAddrType, Object, Query, SchemaChange, Servertype,
    ServertypeAttribute, Value,
};
use herd_store::auth::{AclGroup, AttributeMode, AuthStore, StoredKey, StoredToken, User};
use herd_store::{Store, StoreError};
use herd_store_postgres::testing::TempPostgres;
use herd_store_postgres::{PgOptions, PgStore};

fn fresh_url() -> String {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"))
}

fn open(url: &str) -> PgStore {
    PgStore::open(url, &PgOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn counter_fixture(store: &dyn Store) -> i64 {
    let mut st = Servertype::new("thing", IpAddrType::Null);
    st.attributes.push(ServertypeAttribute::new("counter"));
    store
        .change_schema(
            &[
                SchemaChange::CreateAttribute {
                    attribute: Attribute::new("counter", AttributeType::Number),
                },
                SchemaChange::CreateServertype { servertype: st },
            ],
            "test",
        )
        .unwrap();
    let mut o = Object::default();
    o.fields.insert("hostname".into(), "thing1".into());
    o.fields.insert("servertype".into(), "thing".into());
    o.fields.insert("counter".into(), Value::number(0));
    store
        .commit(
            &Commit {
                created: vec![o],
                ..Commit::default()
            },
            "test",
        )
        .unwrap();
    let found = store
        .query(&herd_model::parse_query("hostname=thing1").unwrap())
        .unwrap();
    found[0].object_id().unwrap()
}

fn counter(store: &dyn Store) -> i64 {
    let q: Query = herd_model::parse_query("hostname=thing1").unwrap();
    match store.query(&q).unwrap()[0].get("counter") {
        Some(Value::Number(n)) => n.as_i64().unwrap(),
        other => panic!("counter is {other:?}"),
    }
}

/// Runs `work(w, server, barrier)` on `workers` threads at once, worker
/// `w` on server `w % 2`; every worker must reach the barrier once.
fn on_two_servers<T: Send>(
    servers: &[PgStore; 2],
    workers: usize,
    work: impl Fn(usize, &PgStore, &Barrier) -> T + Sync,
) -> Vec<T> {
    let barrier = Barrier::new(workers);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (work, barrier) = (&work, &barrier);
                s.spawn(move || work(w, &servers[w % 2], barrier))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn servers_starting_together_apply_each_migration_once() {
    let url = fresh_url();
    let barrier = Arc::new(Barrier::new(4));
    let starters: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PgStore::open(&url, &PgOptions::default()).map(|_| ())
            })
        })
        .collect();
    for s in starters {
        s.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    }
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let applied: i64 = client
        .query_one("SELECT count(*) FROM herd_migration", &[])
        .unwrap()
        .get(0);
    assert_eq!(applied as usize, herd_store_postgres::migration_count());
}

#[test]
fn increments_through_two_servers_are_never_lost() {
    let url = fresh_url();
    let servers = [open(&url), open(&url)];
    let id = counter_fixture(&servers[0]);
    let (workers, each) = (6, 15);
    let conflicts: usize = on_two_servers(&servers, workers, |w, store, barrier| {
        barrier.wait();
        let mut conflicts = 0;
        let mut done = 0;
        while done < each {
            let old = counter(store);
            let commit = Commit {
                changed: vec![Change::new(id).update(
                    "counter",
                    Value::number(old),
                    Value::number(old + 1),
                )],
                ..Commit::default()
            };
            match store.commit(&commit, &format!("worker {w}")) {
                Ok(_) => done += 1,
                Err(StoreError::Conflict(m)) => {
                    assert!(m.contains("counter") || m.contains("same data"), "{m}");
                    conflicts += 1;
                }
                Err(e) => panic!("worker {w}: {e}"),
            }
        }
        conflicts
    })
    .into_iter()
    .sum();
    let total = (workers * each) as i64;
    assert_eq!(counter(&servers[1]), total);
    // Every successful increment is one commit in the object's history.
    let history = servers[0].object_history(id).unwrap();
    assert_eq!(history.len() as i64, total + 1);
    assert!(
        conflicts > 0,
        "the workers never raced; the test proves nothing"
    );
}

#[test]
fn a_nonce_is_accepted_by_exactly_one_of_two_servers() {
    let url = fresh_url();
    let servers = [Arc::new(open(&url)), Arc::new(open(&url))];
    for round in 0..20 {
        let nonce = format!("nonce-{round}");
        let barrier = Arc::new(Barrier::new(6));
        let racers: Vec<_> = (0..6)
            .map(|i| {
                let store = servers[i % 2].clone();
                let (barrier, nonce) = (barrier.clone(), nonce.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.remember_nonce(&nonce, 1_000 + 30, 1_000).unwrap()
                })
            })
            .collect();
        let accepted = racers
            .into_iter()
            .filter(|_| true)
            .map(|r| r.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(accepted, 1, "round {round}");
    }
    // Still inside the window on the other server: refused.
    assert!(!servers[1].remember_nonce("nonce-0", 1_040, 1_010).unwrap());
    // After it expired, the nonce may be used again.
    assert!(servers[1].remember_nonce("nonce-0", 1_100, 1_031).unwrap());
    // ... and recording it forgot the other expired ones on the way.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let left: Vec<String> = client
        .query("SELECT nonce FROM auth_nonces", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ["nonce-0"]);
}

#[test]
fn accounts_keep_their_rules_across_servers() {
    let url = fresh_url();
    let (a, b) = (open(&url), open(&url));
    let user = |name: &str| User {
        name: name.into(),
        admin: false,
        read_only: false,
        disabled: false,
    };
    a.add_user(&user("alice")).unwrap();
    a.add_user(&user("bob")).unwrap();
    assert!(matches!(
        b.add_user(&user("alice")),
        Err(StoreError::Conflict(_))
    ));
    let key = StoredKey {
        fingerprint: "SHA256:abc".into(),
        user: "alice".into(),
        algorithm: "ssh-ed25519".into(),
        public_key: "ssh-ed25519 AAAA alice@laptop".into(),
    };
    a.add_key(&key).unwrap();
    match b.add_key(&StoredKey {
        user: "bob".into(),
        ..key.clone()
    }) {
        Err(StoreError::Conflict(m)) => assert!(m.contains("alice"), "{m}"),
        other => panic!("a key of two users must be refused, got {other:?}"),
    }
    assert!(matches!(
        b.add_key(&StoredKey {
            user: "nobody".into(),
            fingerprint: "SHA256:x".into(),
            ..key.clone()
        }),
        Err(StoreError::NotFound(_))
    ));
    let owners = b
        .key_owners(&["SHA256:nope".into(), "SHA256:abc".into()])
        .unwrap();
    assert_eq!(owners, vec![("SHA256:abc".to_string(), user("alice"))]);
    b.set_disabled("alice", true).unwrap();
    assert!(a.user("alice").unwrap().disabled);

    let token = StoredToken {
        user: "bob".into(),
        name: "ci".into(),
        app_id: "0123abcd".into(),
        secret: "s3cret".into(),
    };
    a.add_token(&token).unwrap();
    assert!(matches!(b.add_token(&token), Err(StoreError::Conflict(_))));
    assert_eq!(b.tokens(Some("bob")).unwrap()[0].secret, "");
    let (found, owner) = b.token_by_app_id("0123abcd").unwrap().unwrap();
    assert_eq!(
        (found.secret.as_str(), owner.name.as_str()),
        ("s3cret", "bob")
    );
    b.remove_token("bob", "ci").unwrap();
    assert!(a.token_by_app_id("0123abcd").unwrap().is_none());

    let group = AclGroup {
        name: "web".into(),
        query: "servertype=vm project=web".into(),
        mode: AttributeMode::Deny,
        attributes: vec!["owner".into()],
        members: vec!["bob".into(), "alice".into()],
    };
    a.put_group(&group).unwrap();
    let stored = b.groups_of("bob").unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].members,
        vec!["alice".to_string(), "bob".to_string()]
    );
    assert_eq!(stored[0].mode, AttributeMode::Deny);
    assert!(b.groups_of("carol").unwrap().is_empty());
    b.remove_group("web").unwrap();
    assert!(a.groups().unwrap().is_empty());
    assert_eq!(a.remove_key("SHA256:abc").unwrap().user, "alice");
}

#[test]
fn containment_filters_can_use_the_gist_index() {
    let url = fresh_url();
    let _store = open(&url);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client.batch_execute("SET enable_seqscan = off").unwrap();
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT object_id FROM server WHERE intern_ip <<= '10.0.0.0/16'::inet",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("server_intern_ip")),
        "{plan:#?}"
    );
}

#[test]
fn commits_on_different_objects_through_two_servers_all_succeed() {
    let url = fresh_url();
    let servers = [open(&url), open(&url)];
    counter_fixture(&servers[0]);
    let (workers, each) = (8, 20);
    on_two_servers(&servers, workers, |w, store, barrier| {
        let mut o = Object::default();
        o.fields.insert("hostname".into(), format!("own{w}").into());
        o.fields.insert("servertype".into(), "thing".into());
        o.fields.insert("counter".into(), Value::number(0));
        let created = Commit {
            created: vec![o],
            ..Commit::default()
        };
        store.commit(&created, "test").unwrap();
        let q = herd_model::parse_query(&format!("hostname=own{w}")).unwrap();
        let id = store.query(&q).unwrap()[0].object_id().unwrap();
        barrier.wait();
        for i in 0..each {
            let commit = Commit {
                changed: vec![Change::new(id).update(
                    "counter",
                    Value::number(i),
                    Value::number(i + 1),
                )],
                ..Commit::default()
            };
            if let Err(e) = store.commit(&commit, "test") {
                panic!("worker {w}, commit {i} of its own object failed: {e}");
            }
        }
    });
    for (i, server) in servers.iter().enumerate() {
        let q = herd_model::parse_query("servertype=thing").unwrap();
        let found: Vec<Object> = server
            .query(&q)
            .unwrap()
            .into_iter()
            .filter(|o| o.hostname() != Some("thing1"))
            .collect();
        assert_eq!(found.len(), workers, "server {i}");
        for o in found {
            assert_eq!(o.get("counter"), Some(&Value::number(each)), "server {i}");
        }
    }
}

#[test]
fn a_database_migrated_by_a_newer_herd_is_refused() {
    let url = fresh_url();
    drop(open(&url));
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let next = herd_store_postgres::migration_count() as i32 + 1;
    client
        .execute("INSERT INTO herd_migration (version) VALUES ($1)", &[&next])
        .unwrap();
    let err = match PgStore::open(&url, &PgOptions::default()) {
        Ok(_) => panic!("a database a newer herd migrated was opened"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("migrated by a newer herd"), "{err}");
    assert!(err.contains("run the newer herd binary"), "{err}");
}
