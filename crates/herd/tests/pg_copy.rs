//! `herd db copy` moves a SQLite installation into PostgreSQL: the same
//! objects (ids kept), the same history, the same users, and a check that
//! says so; then the copy works as an inventory on its own.

use std::process::Command;

use herd_model::{
    parse_query, Attribute, AttributeType, Change, Commit, IpAddrType, Object, SchemaChange,
    Servertype, ServertypeAttribute, Value,
};
use herd_store::auth::{AuthStore, StoredKey, StoredToken, User};
use herd_store::Store;
use herd_store_postgres::testing::TempPostgres;
use herd_store_postgres::{PgOptions, PgStore};

const HERD: &str = env!("CARGO_BIN_EXE_herd");

fn herd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(HERD)
        .args(args)
        .env_remove("HERD_DB")
        .env_remove("HERD_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/herd-test")
        .output()
        .expect("run herd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn object(fields: &[(&str, Value)]) -> Object {
    Object {
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

/// A SQLite installation with relations, addresses, a multi attribute, a
/// deleted object, several commits and a user with a key and a token.
fn sqlite_installation(path: &std::path::Path) {
    let store = herd_store_sqlite::SqliteStore::open(path).expect("open sqlite");
    let schema = |c: SchemaChange| {
        store
            .change_schema(&[c], "test")
            .unwrap_or_else(|e| panic!("{e}"))
    };
    schema(SchemaChange::CreateAttribute {
        attribute: Attribute::new("num_cpu", AttributeType::Number),
    });
    let mut hv = Servertype::new("hypervisor", IpAddrType::Host);
    hv.attributes.push(ServertypeAttribute::new("num_cpu"));
    schema(SchemaChange::CreateServertype { servertype: hv });
    for (id, ty, multi) in [
        ("tags", AttributeType::String, true),
        ("hypervisor", AttributeType::Relation, false),
        ("mac", AttributeType::Macaddr, false),
    ] {
        let mut a = Attribute::new(id, ty);
        a.multi = multi;
        if id == "hypervisor" {
            a.target_servertype = Some("hypervisor".into());
        }
        schema(SchemaChange::CreateAttribute { attribute: a });
    }
    let mut vm = Servertype::new("vm", IpAddrType::Host);
    for a in ["num_cpu", "tags", "hypervisor", "mac"] {
        vm.attributes.push(ServertypeAttribute::new(a));
    }
    schema(SchemaChange::CreateServertype { servertype: vm });
    let mut created = vec![
        object(&[
            ("hostname", "hv1".into()),
            ("servertype", "hypervisor".into()),
            ("intern_ip", "10.0.0.1".into()),
            ("num_cpu", Value::number(64)),
        ]),
        object(&[
            ("hostname", "hv2".into()),
            ("servertype", "hypervisor".into()),
            ("intern_ip", "10.0.0.2".into()),
            ("num_cpu", Value::number(32)),
        ]),
    ];
    for i in 1..=20 {
        created.push(object(&[
            ("hostname", format!("vm{i}").into()),
            ("servertype", "vm".into()),
            ("intern_ip", format!("10.1.{}.{}", i / 10, i).into()),
            ("num_cpu", Value::number(i % 4 + 1)),
            (
                "tags",
                Value::set(vec!["web".into(), format!("t{i}").into()]),
            ),
            ("hypervisor", if i % 2 == 0 { "hv1" } else { "hv2" }.into()),
            ("mac", format!("52:54:00:00:00:{i:02x}").into()),
        ]));
    }
    store
        .commit(
            &Commit {
                created,
                ..Commit::default()
            },
            "alice",
        )
        .unwrap();
    let id = |h: &str| {
        store
            .query(&parse_query(&format!("hostname={h}")).unwrap())
            .unwrap()[0]
            .object_id()
            .unwrap()
    };
    store
        .commit(
            &Commit {
                changed: vec![Change::new(id("vm3"))
                    .update("num_cpu", Value::number(4), Value::number(8))
                    .update("hypervisor", "hv2".into(), "hv1".into())],
                ..Commit::default()
            },
            "bob",
        )
        .unwrap();
    store
        .commit(
            &Commit {
                deleted: vec![id("vm20")],
                ..Commit::default()
            },
            "alice",
        )
        .unwrap();
    drop(store);
    let auth = herd_store_sqlite::auth::SqliteAuthStore::open(path).expect("open sqlite auth");
    auth.add_user(&User {
        name: "alice".into(),
        admin: true,
        read_only: false,
        disabled: false,
    })
    .unwrap();
    auth.add_key(&StoredKey {
        fingerprint: "SHA256:alicekey".into(),
        user: "alice".into(),
        algorithm: "ssh-ed25519".into(),
        public_key: "ssh-ed25519 AAAAC3Nza alice@laptop".into(),
    })
    .unwrap();
    auth.add_token(&StoredToken {
        user: "alice".into(),
        name: "ci".into(),
        app_id: "a1b2c3".into(),
        secret: "the-secret".into(),
    })
    .unwrap();
}

#[test]
fn copy_moves_objects_history_and_users_and_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("inventory.sqlite");
    sqlite_installation(&sqlite);
    let from = format!("sqlite:{}", sqlite.display());
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let to = cluster.fresh_database().unwrap();

    // A dry run reads the source and writes nothing.
    let (code, out, err) = herd(&["db", "copy", "--from", &from, "--to", &to, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("would copy") && out.contains("21 objects") && out.contains("3 commits"),
        "{out}"
    );
    let target = PgStore::open(&to, &PgOptions::default()).unwrap();
    assert!(target.is_empty().unwrap(), "a dry run must not write");

    let (code, out, err) = herd(&["db", "copy", "--from", &from, "--to", &to, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["objects"], 21);
    assert_eq!(report["commits"], 3);
    assert_eq!(report["users"], 1);
    assert_eq!(report["tokens"], 1);
    assert_eq!(report["differences"], serde_json::json!([]));

    let (code, out, _) = herd(&["db", "check", "--from", &from, "--to", &to]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("same: 21 objects and 3 commits"), "{out}");

    // The copy is an inventory of its own: relations, containment (GiST),
    // history and accounts came along, and new ids continue after the old.
    let q = |text: &str| target.query(&parse_query(text).unwrap()).unwrap();
    assert_eq!(q("hypervisor=hv1").len(), 10);
    assert_eq!(q("intern_ip=ContainedBy(10.1.1.0/24)").len(), 10);
    assert!(q("hostname=vm20").is_empty());
    let vm3 = &q("hostname=vm3")[0];
    assert_eq!(vm3.get("num_cpu"), Some(&Value::number(8)));
    let history = target.object_history(vm3.object_id().unwrap()).unwrap();
    assert_eq!(
        history
            .iter()
            .map(|c| c.author.as_str())
            .collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    let (token, owner) = target.token_by_app_id("a1b2c3").unwrap().unwrap();
    assert_eq!(
        (token.secret.as_str(), owner.name.as_str()),
        ("the-secret", "alice")
    );
    assert_eq!(
        target
            .key_owners(&["SHA256:alicekey".into()])
            .unwrap()
            .len(),
        1
    );
    let commit = target
        .commit(
            &Commit {
                created: vec![object(&[
                    ("hostname", "vm99".into()),
                    ("servertype", "vm".into()),
                    ("intern_ip", "10.9.9.9".into()),
                ])],
                ..Commit::default()
            },
            "carol",
        )
        .unwrap();
    assert!(commit > 3, "commit ids continue after the copied ones");
    let vm99 = q("hostname=vm99")[0].object_id().unwrap();
    assert!(
        vm99 > 22,
        "object ids continue after the copied ones (deleted included)"
    );

    // The target is no longer empty: copying again is refused, nothing changes.
    let (code, out, err) = herd(&["db", "copy", "--from", &from, "--to", &to]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("not empty"), "{err}");
    let (code, out, _) = herd(&["db", "check", "--from", &from, "--to", &to]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("difference"), "{out}");
}
