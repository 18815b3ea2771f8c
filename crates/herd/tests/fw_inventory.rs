//! `herd fw` reading the whitelist policy from a real `herd serve`: the
//! schema preset loads through the schema API, the seed's router and zone
//! are objects in the inventory, and `herd fw render ROUTER` prints what the
//! same objects give from a policy file.

mod support;

use support::inventory::object;
use support::{stderr, stdout, Server};

fn seed_objects() -> Vec<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(include_str!(
        "../../herd-firewall/tests/seed/inventory.json"
    ))
    .expect("fixture");
    let mut objects = v["objects"].as_array_mut().expect("objects").clone();
    // routers are hosts in the preset: apply connects to intern_ip
    objects[0]["intern_ip"] = serde_json::json!("192.0.2.254");
    objects
}

#[test]
fn render_reads_router_and_zones_from_the_inventory() {
    let server = Server::start();
    let client = server.client();
    let preset: Vec<herd_client::SchemaChange> =
        serde_json::from_str(herd_firewall::inventory::SCHEMA_PRESET).expect("preset");
    client
        .change_schema(&preset)
        .expect("the preset loads through the schema API");
    for o in seed_objects() {
        let mut commit = herd_client::Commit::default();
        commit.created.push(object(o));
        client.commit(&commit).expect("create");
    }
    let from_inventory = server.herd(&["fw", "render", "router1"]);
    assert!(
        from_inventory.status.success(),
        "{}",
        stderr(&from_inventory)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("policy.json");
    std::fs::write(&file, serde_json::to_string(&seed_objects()).expect("json")).expect("write");
    let from_file = server.herd(&[
        "fw",
        "render",
        "router1",
        "--policy",
        file.to_str().expect("utf8"),
    ]);
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert_eq!(stdout(&from_inventory), stdout(&from_file));
    assert!(stdout(&from_inventory).contains("option dest_ip '213.73.91.35'"));
}

#[test]
fn an_unknown_router_is_not_found() {
    let server = Server::start();
    let client = server.client();
    let preset: Vec<herd_client::SchemaChange> =
        serde_json::from_str(herd_firewall::inventory::SCHEMA_PRESET).expect("preset");
    client.change_schema(&preset).expect("preset");
    let out = server.herd(&["fw", "render", "nosuchrouter"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}
