//! A query's read transaction on one pooled connection: it ends (committed
//! or rolled back) before the connection goes back to the pool, even when
//! the database refuses the query, and the connection's cached prepared
//! statements keep answering after commits and failures.

use herd_model::{
    parse_query, Attribute, AttributeType, Change, Commit, Filter, IpAddrType, Object, Query,
    Restrict, SchemaChange, Servertype, ServertypeAttribute, Value,
};
use herd_store::{Store, StoreError};
use herd_store_postgres::testing::TempPostgres;
use herd_store_postgres::{PgOptions, PgStore};

/// A store on a fresh database with a single connection, so every call
/// reuses the connection (and the transaction state) the one before left.
fn one_connection_store() -> (PgStore, String) {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let store = PgStore::open(
        &url,
        &PgOptions {
            max_connections: 1,
            read_cache: false,
        },
    )
    .unwrap();
    let mut host = Servertype::new("host", IpAddrType::Null);
    host.attributes.push(ServertypeAttribute::new("cores"));
    let mut guest = Servertype::new("guest", IpAddrType::Null);
    guest.attributes.push(ServertypeAttribute::new("host"));
    guest.attributes.push(ServertypeAttribute::new("cores"));
    let mut relation = Attribute::new("host", AttributeType::Relation);
    relation.target_servertype = Some("host".into());
    store
        .change_schema(
            &[
                SchemaChange::CreateAttribute {
                    attribute: Attribute::new("cores", AttributeType::Number),
                },
                SchemaChange::CreateServertype { servertype: host },
                SchemaChange::CreateAttribute {
                    attribute: relation,
                },
                SchemaChange::CreateServertype { servertype: guest },
            ],
            "test",
        )
        .unwrap();
    let object = |fields: &[(&str, Value)]| {
        let mut o = Object::default();
        for (k, v) in fields {
            o.fields.insert((*k).to_owned(), v.clone());
        }
        o
    };
    store
        .commit(
            &Commit {
                created: vec![object(&[
                    ("hostname", "h1".into()),
                    ("servertype", "host".into()),
                    ("cores", Value::number(8)),
                ])],
                ..Commit::default()
            },
            "test",
        )
        .unwrap();
    store
        .commit(
            &Commit {
                created: vec![object(&[
                    ("hostname", "g1".into()),
                    ("servertype", "guest".into()),
                    ("host", "h1".into()),
                    ("cores", Value::number(2)),
                ])],
                ..Commit::default()
            },
            "test",
        )
        .unwrap();
    (store, url)
}

fn cores_of_host(store: &PgStore) -> Value {
    let q = Query {
        restrict: Some(vec![Restrict::Related {
            attribute: "host".into(),
            restrict: vec![Restrict::Attribute("cores".into())],
        }]),
        ..Query::filter("hostname", Filter::Equals("g1".into()))
    };
    let found = store.query(&q).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    match found[0].get("host") {
        Some(Value::Object(host)) => host.get("cores").cloned().unwrap_or(Value::Null),
        other => panic!("host is {other:?}"),
    }
}

#[test]
fn a_query_after_a_commit_sees_it_on_the_same_connection() {
    let (store, _) = one_connection_store();
    assert_eq!(cores_of_host(&store), Value::number(8));
    let h1 = store.query(&parse_query("hostname=h1").unwrap()).unwrap()[0]
        .object_id()
        .unwrap();
    store
        .commit(
            &Commit {
                changed: vec![Change::new(h1).update("cores", Value::number(8), Value::number(16))],
                ..Commit::default()
            },
            "test",
        )
        .unwrap();
    // Had the query's snapshot stayed open, this would still say 8.
    assert_eq!(cores_of_host(&store), Value::number(16));
}

#[test]
fn a_query_the_database_refuses_leaves_the_connection_usable() {
    let (store, url) = one_connection_store();
    assert_eq!(cores_of_host(&store), Value::number(8));
    // A relation value that is no object id (only possible by writing the
    // table by hand): loading g1's related objects fails in the database.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    db.execute(
        "UPDATE server_attribute SET value = 'not-an-id'
         WHERE attribute_id = 'host'",
        &[],
    )
    .unwrap();
    match store.query(&parse_query("hostname=g1").unwrap()) {
        Err(StoreError::Internal(m)) => assert!(m.contains("PostgreSQL"), "{m}"),
        other => panic!("expected a database error, got {other:?}"),
    }
    // Also a failure while the transaction is open: the next query on the
    // one connection must not run inside an aborted transaction.
    let h1 = store.query(&parse_query("hostname=h1").unwrap()).unwrap();
    assert_eq!(h1.len(), 1);
    let id: i64 = db
        .query_one("SELECT object_id FROM server WHERE hostname = 'h1'", &[])
        .unwrap()
        .get(0);
    db.execute(
        "UPDATE server_attribute SET value = $1 WHERE attribute_id = 'host'",
        &[&id.to_string()],
    )
    .unwrap();
    assert_eq!(cores_of_host(&store), Value::number(8));
}
