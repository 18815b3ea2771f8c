//! The `auth_*` tests' fixtures: a database with users, keys, a token and an
//! ACL group made through the real CLI, real ssh-keygen keys, `herd serve`
//! with authentication on, and raw HTTP to send requests exactly as signed
//! (or tampered with).

use super::{herd_command, run, Server};
use herd_auth::{KeyFileSigner, Signer};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temp dir for key files, and a database.
pub struct Site {
    pub dir: tempfile::TempDir,
    /// `--db`: `herd.sqlite` in `dir`, or a `postgres://` URL.
    pub db: OsString,
}

impl Site {
    /// A site on a new SQLite file.
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("herd.sqlite").into_os_string();
        Site { dir, db }
    }

    /// A site on the database `db` names (a `postgres://` URL).
    pub fn on(db: &str) -> Site {
        Site {
            dir: tempfile::tempdir().expect("temp dir"),
            db: db.into(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run `herd ARGS --db DB`.
    pub fn herd(&self, args: &[&str]) -> Output {
        self.herd_stdin(args, None)
    }

    pub fn herd_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(herd_command(args).arg("--db").arg(&self.db), stdin)
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

    /// `herd serve --auth on` on this site's database.
    pub fn serve(&self, extra: &[&str]) -> Server {
        Server::start_with(&self.db, &[&["--auth", "on"], extra].concat())
    }
}

impl Server {
    /// Sign with `key` and send.
    pub fn signed(&self, key: &Path, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let headers = sign(key, method, path, body);
        self.send(method, path, &headers, body)
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
