//! Bad input gets a 4xx with a clear message in serveradmin's error shape,
//! never a 500 and never a crash.

mod support;

use serde_json::json;
use support::inventory::load_fleet;
use support::Server;

/// Send `body` to `path` and check the status, the content type, the error
/// shape and that the message contains `needle`.
fn check(server: &Server, method: &str, path: &str, body: &[u8], status: u16, needle: &str) {
    let (got, content_type, text) = server.http(method, path, Some(body));
    let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
    assert_eq!(got, status, "{method} {path} {shown}: {text}");
    assert_eq!(content_type, "application/x-json", "{path} {shown}");
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
    let message = json["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {text}"));
    assert!(
        message.to_lowercase().contains(&needle.to_lowercase()),
        "{method} {path} {shown}: message {message:?} lacks {needle:?}"
    );
}

fn query(server: &Server, body: serde_json::Value, status: u16, needle: &str) {
    check(
        server,
        "POST",
        "/api/dataset/query",
        body.to_string().as_bytes(),
        status,
        needle,
    );
}

fn commit(server: &Server, body: serde_json::Value, status: u16, needle: &str) {
    check(
        server,
        "POST",
        "/api/dataset/commit",
        body.to_string().as_bytes(),
        status,
        needle,
    );
}

#[test]
fn malformed_bodies_are_400_with_the_position() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 1);
    let path = "/api/dataset/query";
    check(
        &server,
        "POST",
        path,
        b"{\"filters\": {",
        400,
        "not valid JSON",
    );
    check(
        &server,
        "POST",
        path,
        b"{\"filters\": {}} trailing",
        400,
        "column",
    );
    check(&server, "POST", path, b"", 400, "empty");
    check(
        &server,
        "POST",
        path,
        b"\xff\xfe\x00garbage",
        400,
        "not valid JSON",
    );
    check(&server, "POST", path, b"[1, 2]", 400, "JSON object");
    query(
        &server,
        json!({"filters": "hostname=vm1"}),
        400,
        "\"filters\" must be",
    );
    query(
        &server,
        json!({"filters": {}, "limit": 5}),
        400,
        "unknown query field \"limit\"",
    );
    query(
        &server,
        json!({"filters": {}, "restrict": [1]}),
        400,
        "restrict",
    );
}

#[test]
fn unknown_attributes_wrong_types_and_bad_regexps_are_400_naming_them() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 1);
    query(
        &server,
        json!({"filters": {"colour": "red"}}),
        400,
        "colour",
    );
    query(
        &server,
        json!({"filters": {"memory": {"GreaterThan": "lots"}}}),
        400,
        "lots",
    );
    query(
        &server,
        json!({"filters": {"hostname": {"Regexp": "(unclosed"}}}),
        400,
        "regex",
    );
    query(
        &server,
        json!({"filters": {"hostname": {"Bogus": 1}}}),
        400,
        "Bogus",
    );
    query(
        &server,
        json!({"filters": {}, "restrict": ["colour"]}),
        400,
        "colour",
    );
    query(
        &server,
        json!({"filters": {}, "order_by": ["colour"]}),
        400,
        "colour",
    );
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 1);
    let mut filter = json!("vm1");
    // Deeper than herd's filter limit, within the JSON parser's.
    for _ in 0..50 {
        filter = json!({ "Not": filter });
    }
    query(
        &server,
        json!({"filters": {"hostname": filter}}),
        400,
        "deeper",
    );
    // Deeper than the JSON parser's own limit.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    check(
        &server,
        "POST",
        "/api/dataset/query",
        deep.as_bytes(),
        400,
        "recursion limit",
    );
    let (status, _, _) = server.http("GET", "/api/health_check", None);
    assert_eq!(status, 242, "the server survived");
}

#[test]
fn oversized_bodies_are_413_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path().join("db.sqlite"), &["--max-body", "65536"]);
    let big = json!({"filters": {"hostname": "x".repeat(100_000)}}).to_string();
    check(
        &server,
        "POST",
        "/api/dataset/query",
        big.as_bytes(),
        413,
        "65536 bytes",
    );
    let (status, _, _) = server.http("GET", "/api/health_check", None);
    assert_eq!(status, 242);
}

#[test]
fn sql_looking_and_quote_laden_strings_are_just_data() {
    let server = Server::start();
    let client = server.client();
    load_fleet(&client, 1, 1);
    for evil in [
        "'; DROP TABLE objects; --",
        "\" OR 1=1 --",
        "vm1' OR '1'='1",
        "%' OR hostname LIKE '%",
        "\\'; SELECT * FROM sqlite_master; --",
        "\u{0}nul",
    ] {
        let (status, _, text) = server.http(
            "POST",
            "/api/dataset/query",
            Some(
                json!({"filters": {"hostname": evil}})
                    .to_string()
                    .as_bytes(),
            ),
        );
        assert_eq!(status, 200, "{evil}: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["result"], json!([]), "{evil}");
        // As a regexp too (where it is a valid one) and as a restrict.
        query(&server, json!({"filters": {}, "restrict": [evil]}), 400, "");
    }
    // Quotes in a string attribute round-trip exactly.
    let mut vm = client.get("vm1").unwrap();
    let id = vm.object_id().unwrap();
    let tag = "o'reilly \"quoted\" ; -- DROP";
    vm.set("tags", herd_client::Value::set(vec![tag.into()]));
    client.commit(&herd_client::commit_of([&vm])).unwrap();
    let back = client.get("vm1").unwrap();
    assert_eq!(back.object_id(), Some(id));
    assert_eq!(
        back.get("tags"),
        Some(&herd_client::Value::set(vec![tag.into()]))
    );
    // Hostnames with quotes are refused by hostname validation, not by SQL.
    commit(
        &server,
        json!({"created": [{"hostname": "x'; DROP TABLE objects; --", "servertype": "vm",
            "hypervisor": "hv1", "intern_ip": "10.7.0.2"}]}),
        400,
        "hostname",
    );
    assert_eq!(
        client.query(&herd_client::Query::default()).unwrap().len(),
        2
    );
}

#[test]
fn bad_commits_are_refused_whole_with_the_reason() {
    let server = Server::start();
    let client = server.client();
    load_fleet(&client, 1, 1);
    let id = client.get("vm1").unwrap().object_id().unwrap();
    commit(
        &server,
        json!({"created": {}}),
        400,
        "\"created\" must be a list",
    );
    commit(&server, json!({"deleted": ["vm1"]}), 400, "invalid commit");
    commit(
        &server,
        json!({"changed": [{"memory": {"action": "update", "old": 2048, "new": 1}}]}),
        400,
        "object_id",
    );
    commit(
        &server,
        json!({"changed": [{"object_id": id, "memory": {"action": "explode"}}]}),
        400,
        "memory",
    );
    commit(
        &server,
        json!({"frobnicate": []}),
        400,
        "unknown commit field",
    );
    commit(
        &server,
        json!({"changed": [{"object_id": id, "colour": {"action": "update", "old": null, "new": "red"}}]}),
        400,
        "colour",
    );
    commit(
        &server,
        json!({"changed": [{"object_id": id, "memory": {"action": "update", "old": 2048, "new": "lots"}}]}),
        400,
        "lots",
    );
    commit(
        &server,
        json!({"changed": [{"object_id": id, "os": {"action": "update", "old": "bookworm", "new": "Not Lowercase"}}]}),
        400,
        "regexp",
    );
    // A stale old value fails the whole commit, including its valid parts.
    commit(
        &server,
        json!({
            "created": [{"hostname": "vm-new", "servertype": "vm", "hypervisor": "hv1", "intern_ip": "10.7.0.1"}],
            "changed": [{"object_id": id, "memory": {"action": "update", "old": 1, "new": 4096}}]
        }),
        409,
        "newer data available",
    );
    assert!(
        client.get("vm-new").is_err(),
        "the created part was rolled back"
    );
    assert_eq!(
        client.get("vm1").unwrap().get("memory"),
        Some(&herd_client::Value::number(2048))
    );
}

#[test]
fn unknown_routes_methods_and_parameters_get_json_errors() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 0);
    check(
        &server,
        "GET",
        "/api/nope",
        b"",
        404,
        "no endpoint GET /api/nope",
    );
    check(
        &server,
        "GET",
        "/api/dataset/query",
        b"",
        405,
        "does not accept GET",
    );
    check(
        &server,
        "GET",
        "/api/dataset/new_object",
        b"",
        400,
        "servertype",
    );
    check(
        &server,
        "GET",
        "/api/history?object_id=abc",
        b"",
        400,
        "integer",
    );
    check(
        &server,
        "GET",
        "/api/history?hostname=ghost",
        b"",
        404,
        "ghost",
    );
    check(
        &server,
        "POST",
        "/api/schema",
        b"{\"action\": \"drop_table\"}",
        400,
        "schema change 1",
    );
}
