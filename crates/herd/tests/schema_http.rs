//! `POST /api/schema` applies a batch of schema changes whole or not at
//! all, on the real `herd serve` over SQLite and over PostgreSQL, and every
//! applied batch is in `GET /api/history?schema` under the caller's name.

mod support;

use herd_client::SchemaChange;
use herd_store_postgres::testing::TempPostgres;
use serde_json::{json, Value};
use support::auth::{message, Site};
use support::inventory::load_fleet;
use support::Server;

/// (status, parsed body) of a request with a JSON body (or none).
fn call(server: &Server, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let body = body.map(|b| serde_json::to_vec(b).expect("body"));
    let (status, content_type, text) = server.http(method, path, body.as_deref());
    assert_eq!(
        content_type, "application/x-json",
        "{method} {path}: {text}"
    );
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    (status, json)
}

/// `GET /api/schema`'s body, byte for byte.
fn schema_text(server: &Server) -> String {
    let (status, _, text) = server.http("GET", "/api/schema", None);
    assert_eq!(status, 200, "{text}");
    text
}

fn schema_history(server: &Server) -> Value {
    let (status, json) = call(server, "GET", "/api/history?schema", None);
    assert_eq!(status, 200, "{json}");
    json["result"].clone()
}

/// Adds `rack`, makes hypervisors keep only `num_cpu` and `rack` (which
/// drops every hypervisor's memory) and creates `rack_unit`: valid on the
/// fleet fixture, and the third change needs the first.
fn rack_changes() -> Vec<Value> {
    vec![
        json!({"action": "create_attribute", "attribute": {"attribute_id": "rack", "type": "string"}}),
        json!({"action": "update_servertype", "servertype": {"servertype_id": "hypervisor", "ip_addr_type": "host",
            "attributes": [{"attribute_id": "num_cpu"}, {"attribute_id": "rack"}]}}),
        json!({"action": "create_servertype", "servertype": {"servertype_id": "rack_unit", "ip_addr_type": "null",
            "attributes": [{"attribute_id": "rack"}]}}),
    ]
}

/// A batch refused at its last change leaves the schema, the objects and
/// the schema history as they were, and says which change failed and why.
fn refused_batch_changes_nothing(server: &Server) {
    let client = server.client();
    load_fleet(&client, 1, 2);
    let schema = schema_text(server);
    let history = schema_history(server);
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    let hv1 = || client.get("hv1").expect("hv1");
    assert_eq!(
        hv1().get("memory").map(|m| m.to_text()),
        Some("262144".into())
    );

    // os is used by vm: the fourth change is refused.
    let mut changes = rack_changes();
    changes.push(json!({"action": "delete_attribute", "attribute_id": "os"}));
    let (status, body) = call(
        server,
        "POST",
        "/api/schema",
        Some(&json!({ "changes": changes })),
    );
    assert_eq!(status, 400, "{body}");
    let text = message(&body.to_string());
    assert!(
        text.starts_with("schema change 4 of 4 (delete_attribute os): ")
            && text.contains("vm")
            && text.ends_with("nothing was applied"),
        "{text}"
    );
    assert_eq!(body["error"]["rule"], "schema_in_use", "{body}");
    assert_eq!(schema_text(server), schema, "the schema changed");
    assert_eq!(schema_history(server), history);
    assert_eq!(
        hv1().get("memory").map(|m| m.to_text()),
        Some("262144".into())
    );

    // An unknown servertype at the end: 404, same guarantee.
    let mut changes = rack_changes();
    changes.push(json!({"action": "delete_servertype", "servertype_id": "ghost"}));
    let (status, body) = call(
        server,
        "POST",
        "/api/schema",
        Some(&json!({ "changes": changes })),
    );
    assert_eq!(status, 404, "{body}");
    let text = message(&body.to_string());
    assert!(
        text.starts_with("schema change 4 of 4 (delete_servertype ghost): "),
        "{text}"
    );
    assert_eq!(schema_text(server), schema, "the schema changed");
    assert_eq!(schema_history(server), history);

    // An empty batch is refused too.
    let (status, body) = call(
        server,
        "POST",
        "/api/schema",
        Some(&json!({ "changes": [] })),
    );
    assert_eq!(status, 400, "{body}");
    assert!(message(&body.to_string()).contains("no schema changes"));
    assert_eq!(schema_text(server), schema);

    // The CLI says the same and exits with 2 (bad input).
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("schema.json");
    let mut changes = rack_changes();
    changes.push(json!({"action": "delete_attribute", "attribute_id": "os"}));
    std::fs::write(&file, json!(changes).to_string()).expect("write the file");
    let out = server.herd(&["schema", "apply", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", support::stderr(&out));
    assert!(
        support::stderr(&out).contains("schema change 4 of 4 (delete_attribute os)"),
        "{}",
        support::stderr(&out)
    );
    assert_eq!(schema_text(server), schema);

    // Without the bad change the batch applies whole, as one record.
    let out = server.herd_with_stdin(
        &["schema", "apply", "-"],
        Some(&json!(rack_changes()).to_string()),
    );
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(support::stdout(&out).starts_with("applied 3 schema changes as schema change "));
    assert_eq!(hv1().get("memory"), None);
    let after = schema_history(server);
    assert_eq!(after.as_array().map(Vec::len), Some(2), "{after}");
    // Recorded as applied: parsed, with every default filled in.
    let parsed = |v: Value| -> Vec<SchemaChange> { serde_json::from_value(v).expect("changes") };
    assert_eq!(
        parsed(after[0]["changes"].clone()),
        parsed(json!(rack_changes()))
    );
    assert_eq!(after[0]["author"], "anonymous");
    assert_eq!(after[1], history[0]);
}

#[test]
fn refused_batch_changes_nothing_on_sqlite() {
    refused_batch_changes_nothing(&Server::start());
}

#[test]
fn refused_batch_changes_nothing_on_postgres() {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    refused_batch_changes_nothing(&Server::start_on(&url));
}

#[test]
fn schema_history_records_the_signed_author_of_each_batch() {
    let site = Site::new();
    site.ok(&["user", "add", "alice", "--admin"]);
    let alice = site.user_key("alice", "alice-laptop");
    let server = site.serve(&[]);
    let body = serde_json::to_vec(&json!({"changes": [
        {"action": "create_attribute", "attribute": {"attribute_id": "os", "type": "string"}},
        {"action": "create_servertype", "servertype": {"servertype_id": "vm", "ip_addr_type": "host",
            "attributes": [{"attribute_id": "os"}]}},
    ]}))
    .unwrap();
    let (status, text) = server.signed(&alice, "POST", "/api/schema", &body);
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["applied"], 2);
    let id = answer["schema_change_id"]
        .as_i64()
        .expect("schema_change_id");

    let (status, text) = server.signed(&alice, "GET", "/api/history?schema&limit=5", b"");
    assert_eq!(status, 200, "{text}");
    let history: Value = serde_json::from_str(&text).unwrap();
    let records = history["result"].as_array().expect("a list");
    assert_eq!(records.len(), 1, "{history}");
    let record = &records[0];
    assert_eq!(record["schema_change_id"], id);
    assert!(
        record["author"]
            .as_str()
            .is_some_and(|a| a.starts_with("alice")),
        "{record}"
    );
    assert_eq!(record["changes"][1]["action"], "create_servertype");
    assert!(record["time"].as_str().is_some_and(|t| t.starts_with("20")));
    // Object commits are a different history.
    let (status, text) = server.signed(&alice, "GET", "/api/history", b"");
    assert_eq!(status, 200, "{text}");
    let commits: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(commits["result"], json!([]), "{text}");
    let (status, text) = server.signed(&alice, "GET", "/api/history?schema=yes", b"");
    assert_eq!(status, 400, "{text}");
    assert!(message(&text).contains("schema takes no value"), "{text}");
}

/// `herd schema history` through the real binary: a table for people
/// (id, time, author, what changed), JSON for scripts that is exactly what
/// the typed client reads, newest first, at most `--limit`.
fn schema_history_cli(server: &Server) {
    let client = server.client();
    load_fleet(&client, 1, 1);
    let out = server.herd_with_stdin(
        &["schema", "apply", "-"],
        Some(&json!(rack_changes()).to_string()),
    );
    assert!(out.status.success(), "{}", support::stderr(&out));
    let five: Vec<Value> = (1..=5)
        .map(|i| json!({"action": "create_attribute", "attribute": {"attribute_id": format!("extra{i}"), "type": "number"}}))
        .collect();
    let newest = client
        .change_schema(&serde_json::from_value::<Vec<SchemaChange>>(json!(five)).unwrap())
        .expect("five attributes");

    let typed = client.schema_history(None).expect("typed schema history");
    assert_eq!(typed.len(), 3, "fleet, rack, five: {typed:?}");
    assert_eq!(typed[0].schema_change_id, newest);
    assert!(typed
        .windows(2)
        .all(|w| w[0].schema_change_id > w[1].schema_change_id));
    assert_eq!(typed[0].changes.len(), 5);
    assert_eq!(
        client.schema_history(Some(1)).expect("limit 1"),
        typed[..1].to_vec()
    );

    let out = server.herd(&["schema", "history", "--json"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let scripted: Vec<herd_client::SchemaRecord> =
        serde_json::from_str(&support::stdout(&out)).expect("JSON records");
    assert_eq!(scripted, typed);
    let out = server.herd(&["schema", "history", "--limit", "2", "--json"]);
    let scripted: Vec<herd_client::SchemaRecord> =
        serde_json::from_str(&support::stdout(&out)).expect("JSON records");
    assert_eq!(scripted, typed[..2].to_vec());

    let out = server.herd(&["schema", "history"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let text = support::stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let header = lines
        .iter()
        .position(|l| l.contains("id") && l.contains("author") && l.contains("changes"))
        .unwrap_or_else(|| panic!("no header:\n{text}"));
    let rows: Vec<&str> = lines[header + 1..]
        .iter()
        .copied()
        .filter(|l| l.chars().any(|c| c.is_ascii_alphanumeric()))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[0].contains(&newest.to_string())
            && rows[0].contains("anonymous")
            && rows[0].contains(&typed[0].time.0.to_string())
            && rows[0].contains("create_attribute extra1, create_attribute extra2, create_attribute extra3, and 2 more"),
        "{text}"
    );
    assert!(
        rows[1].contains(
            "create_attribute rack, update_servertype hypervisor, create_servertype rack_unit"
        ) && !rows[1].contains("more"),
        "{text}"
    );

    // A limit the server refuses: a clear message, no table.
    let out = server.herd(&["schema", "history", "--limit", "0"]);
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("limit must be between 1 and"),
        "{}",
        support::stderr(&out)
    );
    assert!(support::stdout(&out).is_empty());
}

#[test]
fn schema_history_cli_on_sqlite() {
    schema_history_cli(&Server::start());
}

#[test]
fn schema_history_cli_on_postgres() {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    schema_history_cli(&Server::start_on(&url));
}
