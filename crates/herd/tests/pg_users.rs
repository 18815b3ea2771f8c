//! `herd user`, `herd key` and `herd token` on a PostgreSQL database (a
//! throwaway cluster on loopback): what the CLI writes through a
//! `postgres://` URL is what `herd serve --db postgres://...` authenticates
//! against, with the same exit codes as on SQLite.

mod support;

use herd_store_postgres::testing::TempPostgres;
use support::auth::{load_fleet, message, Site};
use support::{stderr, stdout, Server};

const QUERY: &str = "/api/dataset/query";
const BODY: &[u8] = br#"{"filters":{"hostname":"web1"}}"#;

/// A site whose `--db` is a fresh database of the shared test cluster.
fn postgres_site() -> Site {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    Site::on(&url)
}

fn fingerprint(key: &std::path::Path) -> String {
    let text = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    herd_auth::keys::parse_public_key(&text)
        .expect("key parses")
        .fingerprint
}

#[test]
fn a_key_added_on_postgres_signs_requests_that_herd_serve_on_postgres_accepts() {
    let site = postgres_site();
    site.ok(&["user", "add", "alice", "--admin"]);
    let alice = site.user_key("alice", "alice");

    // The CLI reads back what it wrote.
    let users: serde_json::Value =
        serde_json::from_str(&site.ok(&["user", "list", "--json"])).expect("user list --json");
    assert_eq!(
        users,
        serde_json::json!([{"name": "alice", "admin": true, "read_only": false,
                            "disabled": false, "keys": 1, "tokens": 0}])
    );
    let keys: serde_json::Value =
        serde_json::from_str(&site.ok(&["key", "list", "--json"])).expect("key list --json");
    assert_eq!(keys[0]["fingerprint"], fingerprint(&alice).as_str());

    // `--auth auto`: the server sees alice, so it authenticates.
    let server = Server::start_on(&site.db);
    load_fleet(&server, &alice);
    let (status, text) = server.signed(&alice, "POST", QUERY, BODY);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"web1\""), "{text}");

    let stranger = site.keygen("stranger", "ed25519", None);
    let (status, text) = server.signed(&stranger, "POST", QUERY, BODY);
    assert_eq!(status, 401, "{text}");
    assert_eq!(
        message(&text),
        format!(
            "none of the 1 public key(s) in the request is registered ({}): \
             ask an administrator to run `herd key add USER PUBKEY_FILE`",
            fingerprint(&stranger)
        )
    );
    let (status, text) = server.send("POST", QUERY, &[], BODY);
    assert_eq!(status, 401, "unsigned: {text}");

    // A key removed through the CLI is refused by the running server.
    site.ok(&["key", "remove", &fingerprint(&alice)]);
    let (status, text) = server.signed(&alice, "POST", QUERY, BODY);
    assert_eq!(status, 401, "{text}");
    assert!(message(&text).contains("is registered"), "{text}");
}

#[test]
fn a_token_created_on_postgres_is_accepted_by_herd_serve_on_postgres() {
    let site = postgres_site();
    site.ok(&["user", "add", "ci"]);
    site.ok(&["user", "add", "alice", "--admin"]);
    let alice = site.user_key("alice", "alice");
    let token = site.ok(&["token", "create", "ci", "--name", "deploy"]);
    let server = Server::start_on(&site.db);
    load_fleet(&server, &alice);
    let out = server
        .command(&["query", "hostname=db1"])
        .env("HERD_TOKEN", token.trim())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("herd query");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("db1"), "{}", stdout(&out));
}

#[test]
fn user_commands_on_postgres_keep_their_exit_codes() {
    let site = postgres_site();
    site.ok(&["user", "add", "alice"]);
    let out = site.herd(&["user", "add", "alice"]);
    assert_eq!(out.status.code(), Some(3), "taken: {}", stderr(&out));

    let key = site.user_key("alice", "alice");
    site.ok(&["user", "add", "bob"]);
    let pubkey = key.with_extension("pub");
    let out = site.herd(&["key", "add", "bob", pubkey.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "owned: {}", stderr(&out));
    assert!(stderr(&out).contains("alice"), "{}", stderr(&out));

    let out = site.herd(&["key", "remove", "SHA256:nosuchkey"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));

    let unreachable = Site::on("postgres://herd:secret@127.0.0.1:1/herd");
    let out = unreachable.herd(&["user", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("cannot connect to PostgreSQL at postgres://herd:***@127.0.0.1:1/herd"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("secret"), "{}", stderr(&out));
}
