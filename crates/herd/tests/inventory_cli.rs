//! The inventory commands of the CLI against a real `herd serve`.

mod support;

use support::inventory::load_fleet;
use support::{herd_command, stderr, stdout, Server};

fn code(output: &std::process::Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

#[test]
fn query_prints_a_table_for_people_and_json_for_scripts() {
    let server = Server::start();
    load_fleet(&server.client(), 2, 3);
    let out = server.herd(&[
        "query",
        "servertype=vm",
        "-a",
        "hostname",
        "-a",
        "hypervisor.num_cpu",
        "--order-by",
        "hostname",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("hypervisor.num_cpu"), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("vm")).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("vm1") && lines[0].contains("32"),
        "{text}"
    );

    let out = server.herd(&["query", "vm2", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json[0]["hostname"], "vm2");
    assert_eq!(json[0]["memory"], 2048);
}

#[test]
fn a_query_syntax_error_points_at_the_column_and_exits_2() {
    let server = Server::start();
    let out = server.herd(&["query", "memory=GreaterThan(1024"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("memory=GreaterThan(1024\n"), "{err}");
    assert!(err.contains('^'), "{err}");
}

#[test]
fn set_changes_values_and_history_shows_them() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 1);
    let out = server.herd(&["set", "vm1", "memory=4096", "tags+=db", "tags-=web", "os="]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("commit "), "{}", stdout(&out));
    let vm = server.client().get("vm1").unwrap();
    assert_eq!(vm.get("memory"), Some(&herd_client::Value::number(4096)));
    assert_eq!(
        vm.get("tags"),
        Some(&herd_client::Value::set(vec!["db".into()]))
    );
    assert_eq!(vm.get("os"), Some(&herd_client::Value::Null));

    let out = server.herd(&["history", "vm1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("memory") && text.contains("2048") && text.contains("4096"),
        "{text}"
    );

    let out = server.herd(&["set", "vm1", "memory=lots"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("lots"), "{}", stderr(&out));
    let out = server.herd(&["set", "ghost", "memory=1"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
}

#[test]
fn dry_run_changes_nothing() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 1);
    let out = server.herd(&["set", "vm1", "memory=8192", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("vm1 memory: 2048 -> 8192"),
        "{}",
        stdout(&out)
    );
    let vm = server.client().get("vm1").unwrap();
    assert_eq!(vm.get("memory"), Some(&herd_client::Value::number(2048)));
}

#[test]
fn create_one_and_in_bulk_then_delete() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 0);
    let out = server.herd(&[
        "create",
        "vm",
        "web1",
        "intern_ip=10.9.0.1",
        "hypervisor=hv1",
        "tags=a,b",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let web1 = server.client().get("web1").unwrap();
    assert_eq!(
        web1.get("memory"),
        Some(&herd_client::Value::number(1024)),
        "default"
    );

    let lines: String = (1..=25)
        .map(|i| {
            format!(
                "{{\"hostname\": \"bulk{i}\", \"servertype\": \"vm\", \"hypervisor\": \"hv1\", \"intern_ip\": \"10.8.0.{i}\"}}\n"
            )
        })
        .collect();
    let out = server.herd_with_stdin(
        &["create", "--file", "-", "--batch", "10", "--json"],
        Some(&lines),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["created"], 25);
    assert_eq!(json["commit_ids"].as_array().unwrap().len(), 3);

    // A bad line stops everything before anything is sent.
    let out = server.herd_with_stdin(
        &["create", "--file", "-"],
        Some("{\"hostname\": \"x1\", \"servertype\": \"vm\"}\n{oops\n"),
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("stdin:2"), "{}", stderr(&out));
    assert!(server.client().get("x1").is_err());

    // Deleting many needs --yes.
    let out = server.herd(&["delete", "bulk.*"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    let out = server.herd(&["delete", "bulk.*", "--yes"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let left = server
        .client()
        .query(&herd_client::parse_query("bulk.*").unwrap())
        .unwrap();
    assert!(left.is_empty());
    let out = server.herd(&["delete", "bulk1"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
}

#[test]
fn schema_apply_and_show() {
    let server = Server::start();
    load_fleet(&server.client(), 1, 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schema.json");
    std::fs::write(
        &file,
        r#"[{"action": "create_attribute", "attribute": {"attribute_id": "rack", "type": "string"}}]"#,
    )
    .unwrap();
    let out = server.herd(&["schema", "apply", file.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = server.herd(&["schema", "show"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("rack"), "{}", stdout(&out));
    let out = server.herd(&["schema", "show", "vm"]);
    assert!(stdout(&out).contains("hypervisor"), "{}", stdout(&out));
    let out = server.herd(&["schema", "show", "nosuch"]);
    assert_eq!(code(&out), 4);
}

#[test]
fn serve_refuses_non_loopback_addresses_until_auth_is_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = herd_command(&["serve", "--listen", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("x.sqlite"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));
}

#[test]
fn an_unreachable_server_is_named_with_what_to_do() {
    let out = herd_command(&["query", "vm1", "--url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("herd serve"), "{}", stderr(&out));
}
