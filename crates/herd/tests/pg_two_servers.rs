//! Two real `herd serve` processes on one PostgreSQL database (a throwaway
//! cluster on loopback) behave as one server: no update is lost when
//! clients spread over both race on the same `old` value, and a signed
//! request accepted by one is refused as a replay by the other.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use herd_auth::Signer;
use herd_client::{Change, Client, ClientError, Commit, Value};
use herd_model::{
    Attribute, AttributeType, IpAddrType, Object, SchemaChange, Servertype, ServertypeAttribute,
};
use herd_store::auth::{AuthStore, StoredToken, User};
use herd_store::Store;
use herd_store_postgres::testing::TempPostgres;
use herd_store_postgres::{PgOptions, PgStore};

const HERD: &str = env!("CARGO_BIN_EXE_herd");
const TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// A running `herd serve`, killed on drop.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(db: &str) -> Serve {
        let mut child = Command::new(HERD)
            .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
            .env("RUST_LOG", "warn")
            .env_remove("HERD_URL")
            .env_remove("HERD_DB")
            .env_remove("HERD_CONFIG")
            .env("XDG_CONFIG_HOME", "/nonexistent/herd-test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start herd serve");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let Some(url) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
            let _ = child.kill();
            panic!("herd serve did not start: {line:?}, {:?}", child.wait());
        };
        let serve = Serve { child, url };
        let deadline = Instant::now() + Duration::from_secs(20);
        while serve.client().health_check().is_err() {
            assert!(Instant::now() < deadline, "herd serve never became healthy");
            std::thread::sleep(Duration::from_millis(20));
        }
        serve
    }

    fn client(&self) -> Client {
        Client::new(&self.url)
            .expect("client")
            .with_signer(Box::new(herd_auth::TokenSigner::new(TOKEN).expect("token")))
    }

    /// One raw HTTP/1.1 request with the given headers; (status, body).
    fn send(&self, path: &str, headers: &[(String, String)], body: &[u8]) -> (u16, String) {
        let addr = self.url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).expect("connect");
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("write");
        stream.write_all(body).expect("write body");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database with a `vm` servertype, `vm1` (memory 0), and an
/// administrator `alice` with a token, so both servers authenticate.
fn database() -> String {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let store = PgStore::open(&url, &PgOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    store
        .change_schema(&SchemaChange::CreateAttribute {
            attribute: Attribute::new("memory", AttributeType::Number),
        })
        .unwrap();
    let mut vm = Servertype::new("vm", IpAddrType::Null);
    vm.attributes.push(ServertypeAttribute::new("memory"));
    store
        .change_schema(&SchemaChange::CreateServertype { servertype: vm })
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
    let servers = [Serve::start(&db), Serve::start(&db)];
    let reader = servers[0].client();
    let id = reader.get("vm1").unwrap().object_id().unwrap();
    for round in 0..30i64 {
        let old = memory(&reader);
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(i, server)| {
                let (client, barrier, old) = (server.client(), barrier.clone(), old.clone());
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
            assert_eq!(&memory(&s.client()), winners[0], "round {round}");
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
            let client = servers[w % 2].client();
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
        memory(&servers[1].client()),
        Value::number(start + workers as i64 * each)
    );
}

#[test]
fn a_signed_request_replayed_to_the_second_server_is_refused() {
    let db = database();
    let (first, second) = (Serve::start(&db), Serve::start(&db));
    let path = "/api/dataset/query";
    let body = br#"{"filters":{"hostname":"vm1"},"restrict":["hostname","memory"]}"#;
    let signer = herd_auth::TokenSigner::new(TOKEN).unwrap();
    let headers = signer.sign_request("POST", path, body).unwrap();

    let (status, text) = first.send(path, &headers, body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("vm1"), "{text}");

    let (status, text) = second.send(path, &headers, body);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("replayed request"), "{text}");

    // Unsigned: refused too; freshly signed: the second server answers.
    let (status, _) = second.send(path, &[], body);
    assert_eq!(status, 401);
    let fresh = signer.sign_request("POST", path, body).unwrap();
    let (status, text) = second.send(path, &fresh, body);
    assert_eq!(status, 200, "{text}");
}
