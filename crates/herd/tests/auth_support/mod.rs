//! Shared by the `auth_*` tests: a database with users, keys, a token and an
//! ACL group made through the real CLI, the real `herd serve` with
//! authentication on, real ssh-keygen keys, and raw HTTP to send requests
//! exactly as signed (or tampered with).

#![allow(dead_code)]

use herd_auth::{KeyFileSigner, Signer};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HERD: &str = env!("CARGO_BIN_EXE_herd");

/// A temp dir with a database and key files.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("herd.sqlite");
        Site { dir, db }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run `herd ARGS --db DB`.
    pub fn herd(&self, args: &[&str]) -> Output {
        self.herd_stdin(args, None)
    }

    pub fn herd_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(HERD)
            .args(args)
            .arg("--db")
            .arg(&self.db)
            .env_remove("HERD_URL")
            .env_remove("HERD_DB")
            .env_remove("HERD_TOKEN")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("herd runs");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// `herd ARGS` must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.herd(args);
        assert!(
            out.status.success(),
            "herd {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new key pair from ssh-keygen; returns the private key path.
    pub fn keygen(&self, name: &str, kind: &str, bits: Option<u32>) -> PathBuf {
        let path = self.path(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&path);
        if let Some(bits) = bits {
            cmd.args(["-b", &bits.to_string()]);
        }
        assert!(cmd.status().expect("ssh-keygen").success());
        path
    }

    /// A new Ed25519 key registered for `user`.
    pub fn user_key(&self, user: &str, name: &str) -> PathBuf {
        let key = self.keygen(name, "ed25519", None);
        self.ok(&[
            "key",
            "add",
            user,
            key.with_extension("pub").to_str().unwrap(),
        ]);
        key
    }
}

/// A running `herd serve`, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    pub fn start(site: &Site, extra: &[&str]) -> Server {
        let mut child = Command::new(HERD)
            .args(["serve", "--listen", "127.0.0.1:0", "--auth", "on", "--db"])
            .arg(&site.db)
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
            .expect("listening line");
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("herd serve did not start: {line:?}");
        };
        let server = Server {
            child,
            url: addr.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.send("GET", "/api/health_check", &[], b"").0 != 242 {
            assert!(Instant::now() < deadline, "herd serve never became healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Send a raw request; returns status and body text.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if !body.is_empty() {
            req = req.header("Content-Type", "application/x-json");
        }
        let req = req.body(body.to_vec()).expect("request");
        let mut resp = agent.run(req).expect("server answers");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, text)
    }

    /// Sign with `key` and send.
    pub fn signed(&self, key: &Path, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let headers = sign(key, method, path, body);
        self.send(method, path, &headers, body)
    }

    /// A typed client signing with `key`.
    pub fn client(&self, key: &Path) -> herd_client::Client {
        herd_client::Client::new(&self.url)
            .expect("client")
            .with_signer(Box::new(KeyFileSigner::load(key, None).expect("key")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sign(key: &Path, method: &str, path: &str, body: &[u8]) -> Vec<(String, String)> {
    KeyFileSigner::load(key, None)
        .expect("key loads")
        .sign_request(method, path, body)
        .expect("signs")
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .expect("header present")
}

pub fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value.to_string()));
}

pub fn now() -> i64 {
    herd_auth::signer::unix_now()
}

/// A schema (project/os/num_cpu on `vm`) and two VMs: web1 (project web)
/// and db1 (project db).
pub fn load_fleet(server: &Server, admin_key: &Path) {
    let schema = serde_json::json!({"changes": [
        {"action": "create_attribute", "attribute": {"attribute_id": "project", "type": "string"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "os", "type": "string"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "num_cpu", "type": "number"}},
        {"action": "create_servertype", "servertype": {"servertype_id": "vm", "ip_addr_type": "host",
            "attributes": [{"attribute_id": "project"}, {"attribute_id": "os"}, {"attribute_id": "num_cpu"}]}},
    ]});
    let body = serde_json::to_vec(&schema).unwrap();
    let (status, text) = server.signed(admin_key, "POST", "/api/schema", &body);
    assert_eq!(status, 200, "{text}");
    let commit = serde_json::json!({"created": [
        {"hostname": "web1", "servertype": "vm", "intern_ip": "10.0.0.1", "project": "web", "os": "bookworm", "num_cpu": 2},
        {"hostname": "db1", "servertype": "vm", "intern_ip": "10.0.0.2", "project": "db", "os": "bookworm", "num_cpu": 4},
    ]});
    let (status, text) = server.signed(
        admin_key,
        "POST",
        "/api/dataset/commit",
        &serde_json::to_vec(&commit).unwrap(),
    );
    assert_eq!(status, 200, "{text}");
}

/// object_id of a hostname, queried as `key`.
pub fn object_id(server: &Server, key: &Path, hostname: &str) -> i64 {
    let body = serde_json::to_vec(
        &serde_json::json!({"filters": {"hostname": hostname}, "restrict": ["object_id"]}),
    )
    .unwrap();
    let (status, text) = server.signed(key, "POST", "/api/dataset/query", &body);
    assert_eq!(status, 200, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["result"][0]["object_id"].as_i64().expect("object_id")
}

/// The error message of a refusal body.
pub fn message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|j| j["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("error body with a message: {body}"))
}
