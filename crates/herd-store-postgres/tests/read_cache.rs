//! The read cache of one server (a `PgStore`) stays true to a database
//! that another server writes: every commit, deletion, rename and schema
//! change made elsewhere shows in the next query, also when the change
//! log the cache reloads from has been pruned behind it.

use herd_model::{
    parse_query, Attribute, AttributeType, Change, Commit, IpAddrType, Object, SchemaChange,
    Servertype, ServertypeAttribute, Value,
};
use herd_store::{Store, StoreError};
use herd_store_postgres::testing::TempPostgres;
use herd_store_postgres::{PgOptions, PgStore};

fn two_servers() -> (PgStore, PgStore, String) {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let open = || PgStore::open(&url, &PgOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (open(), open());
    (a, b, url)
}

fn thing_servertype(with_counter: bool) -> Servertype {
    let mut st = Servertype::new("thing", IpAddrType::Null);
    if with_counter {
        st.attributes.push(ServertypeAttribute::new("counter"));
    }
    st.attributes.push(ServertypeAttribute::new("note"));
    st
}

fn schema(store: &dyn Store) {
    store
        .change_schema(
            &[
                SchemaChange::CreateAttribute {
                    attribute: Attribute::new("counter", AttributeType::Number),
                },
                SchemaChange::CreateAttribute {
                    attribute: Attribute::new("note", AttributeType::String),
                },
                SchemaChange::CreateServertype {
                    servertype: thing_servertype(true),
                },
            ],
            "test",
        )
        .unwrap();
}

fn create(store: &dyn Store, hostname: &str, counter: i64) -> i64 {
    let mut o = Object::default();
    o.fields.insert("hostname".into(), hostname.into());
    o.fields.insert("servertype".into(), "thing".into());
    o.fields.insert("counter".into(), Value::number(counter));
    let commit = Commit {
        created: vec![o],
        ..Commit::default()
    };
    store.commit(&commit, "test").unwrap();
    Ask::query(store, &q(&format!("hostname={hostname}")))[0]
        .object_id()
        .unwrap()
}

fn q(text: &str) -> herd_model::Query {
    parse_query(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

trait Ask {
    fn query(&self, query: &herd_model::Query) -> Vec<Object>;
    fn hostnames(&self, text: &str) -> Vec<String>;
}

impl<S: Store + ?Sized> Ask for S {
    fn query(&self, query: &herd_model::Query) -> Vec<Object> {
        Store::query(self, query).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hostnames(&self, text: &str) -> Vec<String> {
        let mut names: Vec<String> = Ask::query(self, &q(text))
            .iter()
            .map(|o| o.hostname().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }
}

fn counter_of(store: &dyn Store, hostname: &str) -> Option<Value> {
    Ask::query(store, &q(&format!("hostname={hostname}")))[0]
        .get("counter")
        .cloned()
}

fn set_counter(store: &dyn Store, id: i64, old: i64, new: i64) {
    let commit = Commit {
        changed: vec![Change::new(id).update("counter", Value::number(old), Value::number(new))],
        ..Commit::default()
    };
    store.commit(&commit, "test").unwrap();
}

fn delete(store: &dyn Store, id: i64) {
    let commit = Commit {
        deleted: vec![id],
        ..Commit::default()
    };
    store.commit(&commit, "test").unwrap();
}

#[test]
fn a_server_answers_what_another_server_committed() {
    let (a, b, _) = two_servers();
    schema(&b);
    let one = create(&b, "thing1", 0);
    assert_eq!(a.hostnames("servertype=thing"), ["thing1"]);

    set_counter(&b, one, 0, 5);
    assert_eq!(counter_of(&a, "thing1"), Some(Value::number(5)));
    assert_eq!(a.hostnames("counter=5"), ["thing1"], "the index moved too");
    assert!(a.hostnames("counter=0").is_empty());

    let two = create(&b, "thing2", 7);
    assert_eq!(a.hostnames("servertype=thing"), ["thing1", "thing2"]);

    delete(&b, one);
    assert_eq!(a.hostnames("servertype=thing"), ["thing2"]);
    assert!(a.hostnames("hostname=thing1").is_empty());

    let rename = Commit {
        changed: vec![Change::new(two).update("hostname", "thing2".into(), "thing3".into())],
        ..Commit::default()
    };
    b.commit(&rename, "test").unwrap();
    assert!(a.hostnames("hostname=thing2").is_empty());
    assert_eq!(a.hostnames("hostname=thing3"), ["thing3"]);

    // A schema change elsewhere: the servertype drops `counter`, then the
    // attribute goes.
    b.change_schema(
        &[SchemaChange::UpdateServertype {
            servertype: thing_servertype(false),
        }],
        "test",
    )
    .unwrap();
    assert_eq!(counter_of(&a, "thing3"), None);
    b.change_schema(
        &[SchemaChange::DeleteAttribute {
            attribute_id: "counter".into(),
        }],
        "test",
    )
    .unwrap();
    match Store::query(&a, &q("counter=7")) {
        Err(StoreError::Validation(v)) => assert!(v.message.contains("counter"), "{v}"),
        other => panic!("a query on a deleted attribute answered {other:?}"),
    }
    assert_eq!(a.hostnames("servertype=thing"), ["thing3"]);
}

#[test]
fn a_server_whose_change_log_was_pruned_reloads_everything() {
    let (a, b, url) = two_servers();
    schema(&b);
    let one = create(&b, "thing1", 0);
    assert_eq!(counter_of(&a, "thing1"), Some(Value::number(0)));

    set_counter(&b, one, 0, 1);
    // As if more than the kept number of commits had happened since `a`
    // last looked: the rows naming what changed are gone.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client.execute("DELETE FROM data_change", &[]).unwrap();
    create(&b, "thing2", 2);

    assert_eq!(counter_of(&a, "thing1"), Some(Value::number(1)));
    assert_eq!(a.hostnames("servertype=thing"), ["thing1", "thing2"]);
}

#[test]
fn the_change_log_keeps_one_row_per_commit() {
    let (_a, b, url) = two_servers();
    schema(&b);
    let one = create(&b, "thing1", 0);
    let two = create(&b, "thing2", 0);
    set_counter(&b, two, 0, 1);
    delete(&b, one);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows: Vec<(i64, Vec<i64>)> = client
        .query(
            "SELECT version, objects FROM data_change ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let objects: Vec<&[i64]> = rows.iter().map(|(_, o)| o.as_slice()).collect();
    assert_eq!(objects, [&[one][..], &[two], &[two], &[one]]);
    let versions: Vec<i64> = rows.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions,
        [2, 3, 4, 5],
        "consecutive, from the migration's 1"
    );
}

#[test]
fn a_commit_on_one_server_is_in_the_next_answer_of_another_under_load() {
    // One writer commits through b and then asks a; readers keep a's cache
    // busy refreshing meanwhile. Every answer a gives after a commit
    // returned holds that commit (never an older counter).
    let (a, b, _) = two_servers();
    schema(&b);
    let id = create(&b, "thing1", 0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    /// Stops the readers however the writer ends (a failed assertion too).
    struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let mut last = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Some(Value::Number(n)) = counter_of(&a, "thing1") else {
                        panic!("thing1 lost its counter");
                    };
                    let n = n.as_i64().unwrap();
                    assert!(n >= last, "a went back from {last} to {n}");
                    last = n;
                }
            });
        }
        let _stop = Stop(&stop);
        for i in 0..40 {
            set_counter(&b, id, i, i + 1);
            assert_eq!(counter_of(&a, "thing1"), Some(Value::number(i + 1)));
        }
    });
}
