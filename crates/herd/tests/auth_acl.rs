//! ACLs on commits through the real server: a group scoped by a query with
//! an allow-list, a read-only user, a user in no group, a superuser.

mod support;

use std::path::PathBuf;
use support::auth::*;
use support::Server;

struct Fixture {
    _site: Site,
    server: Server,
    alice: PathBuf,
    bob: PathBuf,
    carol: PathBuf,
    erin: PathBuf,
}

/// alice: admin. bob: group `web` (project=web, may change only `os`).
/// carol: read-only. erin: in no group.
fn fixture() -> Fixture {
    let site = Site::new();
    site.ok(&["user", "add", "alice", "--admin"]);
    site.ok(&["user", "add", "bob"]);
    site.ok(&["user", "add", "carol", "--read-only"]);
    site.ok(&["user", "add", "erin"]);
    site.ok(&[
        "user",
        "group",
        "add",
        "web",
        "--query",
        "servertype=vm project=web",
        "--allow",
        "os",
        "--member",
        "bob",
    ]);
    let alice = site.user_key("alice", "alice");
    let bob = site.user_key("bob", "bob");
    let carol = site.user_key("carol", "carol");
    let erin = site.user_key("erin", "erin");
    let server = site.serve(&[]);
    load_fleet(&server, &alice);
    Fixture {
        _site: site,
        server,
        alice,
        bob,
        carol,
        erin,
    }
}

fn change(
    f: &Fixture,
    hostname: &str,
    attribute: &str,
    old: serde_json::Value,
    new: serde_json::Value,
) -> Vec<u8> {
    let id = object_id(&f.server, &f.alice, hostname);
    let commit = serde_json::json!({"changed": [{"object_id": id, attribute: {"action": "update", "old": old, "new": new}}]});
    serde_json::to_vec(&commit).unwrap()
}

fn commit_as(f: &Fixture, key: &std::path::Path, body: &[u8]) -> (u16, String) {
    f.server.signed(key, "POST", "/api/dataset/commit", body)
}

#[test]
fn group_member_may_change_an_allowed_attribute_in_scope() {
    let f = fixture();
    let body = change(&f, "web1", "os", "bookworm".into(), "trixie".into());
    let (status, text) = commit_as(&f, &f.bob, &body);
    assert_eq!(status, 200, "{text}");
}

#[test]
fn change_outside_the_group_scope_is_denied_naming_the_rule() {
    let f = fixture();
    let body = change(&f, "db1", "os", "bookworm".into(), "trixie".into());
    let (status, text) = commit_as(&f, &f.bob, &body);
    assert_eq!(status, 403, "{text}");
    assert_eq!(
        message(&text),
        "commit refused for user 'bob': group 'web': object db1 is outside its scope 'servertype=vm project=web'"
    );
}

#[test]
fn attribute_outside_the_allow_list_is_denied_naming_the_rule() {
    let f = fixture();
    let body = change(&f, "web1", "num_cpu", 2.into(), 8.into());
    let (status, text) = commit_as(&f, &f.bob, &body);
    assert_eq!(status, 403, "{text}");
    assert_eq!(
        message(&text),
        "commit refused for user 'bob': group 'web': attribute 'num_cpu' of web1 is not in its allow-list [os]"
    );
}

#[test]
fn creating_an_object_outside_the_scope_is_denied() {
    let f = fixture();
    let commit = serde_json::json!({"created": [
        {"hostname": "db2", "servertype": "vm", "intern_ip": "10.0.0.3", "project": "db", "os": "bookworm"}]});
    let (status, text) = commit_as(&f, &f.bob, &serde_json::to_vec(&commit).unwrap());
    assert_eq!(status, 403, "{text}");
    assert!(
        message(&text).contains("new object db2 is outside its scope"),
        "{text}"
    );
}

#[test]
fn read_only_user_may_query_but_not_commit() {
    let f = fixture();
    let query = br#"{"filters":{"hostname":"web1"}}"#;
    assert_eq!(
        f.server
            .signed(&f.carol, "POST", "/api/dataset/query", query)
            .0,
        200
    );
    let body = change(&f, "web1", "os", "bookworm".into(), "trixie".into());
    let (status, text) = commit_as(&f, &f.carol, &body);
    assert_eq!(status, 403, "{text}");
    assert!(
        message(&text).contains("user 'carol' is read-only"),
        "{text}"
    );
}

#[test]
fn user_in_no_group_may_not_commit_and_only_admins_change_the_schema() {
    let f = fixture();
    let body = change(&f, "web1", "os", "bookworm".into(), "trixie".into());
    let (status, text) = commit_as(&f, &f.erin, &body);
    assert_eq!(status, 403, "{text}");
    assert!(message(&text).contains("belongs to no ACL group"), "{text}");
    let schema = br#"{"changes":[{"action":"create_attribute","attribute":{"attribute_id":"x","type":"string"}}]}"#;
    let (status, text) = f.server.signed(&f.bob, "POST", "/api/schema", schema);
    assert_eq!(status, 403, "{text}");
    assert!(
        message(&text).contains("only administrators may change the schema"),
        "{text}"
    );
}

#[test]
fn superuser_is_not_limited_by_groups() {
    let f = fixture();
    let body = change(&f, "db1", "num_cpu", 4.into(), 16.into());
    let (status, text) = commit_as(&f, &f.alice, &body);
    assert_eq!(status, 200, "{text}");
}
