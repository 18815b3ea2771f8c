//! The serveradmin endpoints answer with serveradmin's shapes, plus herd's
//! schema and history endpoints.

mod support;

use serde_json::{json, Value};
use support::inventory::load_fleet;
use support::Server;

fn ok_json(server: &Server, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string());
    let (status, content_type, text) =
        server.http(method, path, body.as_deref().map(str::as_bytes));
    assert_eq!(status, 200, "{method} {path}: {text}");
    assert_eq!(content_type, "application/x-json");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["status"], "success", "{text}");
    json
}

#[test]
fn health_check_answers_242_like_serveradmin() {
    let server = Server::start();
    let (status, _, _) = server.http("GET", "/api/health_check", None);
    assert_eq!(status, 242);
}

#[test]
fn query_returns_objects_with_restricted_attributes_and_joined_relations() {
    let server = Server::start();
    load_fleet(&server.client(), 2, 5);
    let json = ok_json(
        &server,
        "POST",
        "/api/dataset/query",
        Some(json!({
            "filters": {"servertype": "vm", "memory": {"GreaterThanOrEquals": 2048}},
            "restrict": ["hostname", "memory", {"hypervisor": ["hostname", "num_cpu"]}],
            "order_by": ["hostname"]
        })),
    );
    let result = json["result"].as_array().unwrap();
    assert_eq!(result.len(), 5);
    assert_eq!(result[0]["hostname"], "vm1");
    assert_eq!(result[0]["memory"], 2048);
    assert_eq!(result[0]["hypervisor"]["num_cpu"], 32);
    assert!(result[0]["object_id"].is_number());
    // The text syntax, parsed by the client, gives the same objects.
    let client = server.client();
    let q = herd_client::parse_query("servertype=vm memory=GreaterThanOrEquals(2048)").unwrap();
    assert_eq!(client.query(&q).unwrap().len(), 5);
}

#[test]
fn commit_returns_its_id_and_history_shows_author_and_diffs() {
    let server = Server::start();
    let client = server.client();
    load_fleet(&client, 1, 1);
    let id = client.get("vm1").unwrap().object_id().unwrap();
    let json = ok_json(
        &server,
        "POST",
        "/api/dataset/commit",
        Some(json!({"changed": [{"object_id": id,
            "memory": {"action": "update", "old": 2048, "new": 4096},
            "tags": {"action": "multi", "add": ["db"], "remove": ["web"]}}]})),
    );
    let commit_id = json["commit_id"].as_i64().unwrap();
    let history = ok_json(&server, "GET", "/api/history?hostname=vm1", None);
    let latest = &history["result"][0];
    assert_eq!(latest["commit_id"], commit_id);
    assert_eq!(latest["author"], "anonymous");
    let attributes = &latest["changes"][0]["attributes"];
    assert_eq!(attributes["memory"], json!({"old": 2048, "new": 4096}));
    assert_eq!(attributes["tags"], json!({"old": ["web"], "new": ["db"]}));
    let by_commit = ok_json(
        &server,
        "GET",
        &format!("/api/history?commit_id={commit_id}"),
        None,
    );
    assert_eq!(by_commit["result"][0]["changes"][0]["hostname"], "vm1");
}

#[test]
fn new_object_attributes_and_schema_describe_the_servertypes() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 0);
    let json = ok_json(
        &server,
        "GET",
        "/api/dataset/new_object?servertype=vm",
        None,
    );
    assert_eq!(json["result"]["servertype"], "vm");
    assert_eq!(json["result"]["memory"], 1024, "the servertype's default");
    assert_eq!(json["result"]["hostname"], Value::Null);
    let attributes = ok_json(&server, "GET", "/api/dataset/attributes", None);
    let tags = attributes["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["attribute_id"] == "tags")
        .unwrap();
    assert_eq!(tags["multi"], true);
    assert_eq!(tags["type"], "string");
    let schema = ok_json(&server, "GET", "/api/schema", None);
    assert_eq!(
        schema["result"]["servertypes"]["vm"]["ip_addr_type"],
        "host"
    );
}

/// The response head of a raw HTTP/1.1 request (so nothing decodes it).
fn raw_head(server: &Server, accept_encoding: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /api/dataset/query HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: {accept_encoding}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split("\r\n\r\n").next().unwrap().to_lowercase()
}

#[test]
fn answers_are_gzipped_when_the_client_accepts_it() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 50);
    let body = json!({"filters": {}}).to_string();
    let head = raw_head(&server, "gzip", &body);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let head = raw_head(&server, "identity", &body);
    assert!(!head.contains("content-encoding"), "{head}");
    // And the client, which asks for gzip, reads the answer.
    assert_eq!(
        server
            .client()
            .query(&herd_client::Query::default())
            .unwrap()
            .len(),
        51
    );
}
