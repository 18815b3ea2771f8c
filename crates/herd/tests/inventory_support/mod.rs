//! Shared by the `inventory_*` integration tests: start the real `herd serve`
//! binary on a free loopback port and a temporary SQLite file, talk to it
//! through `herd-client`, raw HTTP and the CLI, and stop it on drop.

#![allow(dead_code)] // each test binary uses a different part

use herd_client::{Client, SchemaChange};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HERD: &str = env!("CARGO_BIN_EXE_herd");

/// A running `herd serve`.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub db: PathBuf,
    /// Keeps the database directory alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh database in a new temporary directory.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("inventory.sqlite");
        let mut server = Server::start_on(&db);
        server._dir = Some(dir);
        server
    }

    /// A server on an existing (or new) database file.
    pub fn start_on(db: &Path) -> Server {
        Server::start_with(db, &[])
    }

    pub fn start_with(db: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(HERD)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(extra)
            .env("RUST_LOG", "warn")
            .env_remove("HERD_URL")
            .env_remove("HERD_CONFIG")
            .env("XDG_CONFIG_HOME", "/nonexistent/herd-test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start herd serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let status = child.wait();
            panic!("herd serve did not start (first line {line:?}, exit {status:?})");
        };
        let server = Server {
            child: Some(child),
            url: addr.to_string(),
            db: db.to_path_buf(),
            _dir: None,
        };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = self.client();
        while client.health_check().is_err() {
            assert!(Instant::now() < deadline, "herd serve never became healthy");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url).expect("client")
    }

    /// Kill the server with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// Run the CLI against this server.
    pub fn herd(&self, args: &[&str]) -> Output {
        self.herd_with_stdin(args, None)
    }

    pub fn herd_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new(HERD)
            .args(args)
            .env("HERD_URL", &self.url)
            .env_remove("HERD_CONFIG")
            .env("XDG_CONFIG_HOME", "/nonexistent/herd-test")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run herd");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("herd output")
    }

    /// Raw HTTP: method, path, body → (status, content type, body text).
    pub fn http(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String, String) {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .body(body.unwrap_or_default().to_vec())
            .expect("request");
        let mut response = agent.run(request).expect("HTTP round trip");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .unwrap_or_default();
        (status, content_type, text)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A small schema: hypervisors, VMs (with a relation to their hypervisor, a
/// multi attribute and a regexp), routers and networks.
pub fn fleet_schema() -> Vec<SchemaChange> {
    let json = serde_json::json!([
        {"action": "create_attribute", "attribute": {"attribute_id": "memory", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "num_cpu", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "os", "type": "string", "regexp": "^[a-z]+$"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "tags", "type": "string", "multi": true}},
        {"action": "create_servertype", "servertype": {"servertype_id": "hypervisor", "ip_addr_type": "host",
            "attributes": [{"attribute_id": "num_cpu"}, {"attribute_id": "memory"}]}},
        {"action": "create_attribute", "attribute": {"attribute_id": "hypervisor", "type": "relation", "target_servertype": "hypervisor"}},
        {"action": "create_servertype", "servertype": {"servertype_id": "vm", "ip_addr_type": "host",
            "attributes": [{"attribute_id": "hypervisor"}, {"attribute_id": "memory", "default_value": 1024},
                           {"attribute_id": "num_cpu"}, {"attribute_id": "os"}, {"attribute_id": "tags"}]}},
    ]);
    serde_json::from_value(json).expect("fixture schema parses")
}

/// Apply the fixture schema and create `hypervisors` hypervisors `hv1..`
/// and `vms` VMs `vm1..` spread over them.
pub fn load_fleet(client: &Client, hypervisors: usize, vms: usize) {
    client.change_schema(&fleet_schema()).expect("schema");
    let mut commit = herd_client::Commit::default();
    for i in 1..=hypervisors {
        commit.created.push(object(serde_json::json!({
            "hostname": format!("hv{i}"), "servertype": "hypervisor",
            "intern_ip": format!("10.0.0.{i}"), "num_cpu": 32, "memory": 262144
        })));
    }
    for i in 1..=vms {
        commit.created.push(object(serde_json::json!({
            "hostname": format!("vm{i}"), "servertype": "vm",
            "intern_ip": format!("10.1.{}.{}", i / 250, i % 250 + 1),
            "hypervisor": format!("hv{}", i % hypervisors.max(1) + 1),
            "memory": 2048, "num_cpu": 2, "os": "bookworm", "tags": ["web"]
        })));
    }
    client.commit(&commit).expect("fleet");
}

pub fn object(json: serde_json::Value) -> herd_client::Object {
    serde_json::from_value(json).expect("object")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
