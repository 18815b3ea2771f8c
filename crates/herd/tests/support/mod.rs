//! Shared by the integration tests that drive the real binaries: the `herd`
//! CLI run with a clean environment, and the real `herd serve` on a free
//! loopback port and a database (a fresh SQLite file, or any `--db`),
//! waited for until healthy and killed on drop. `auth` holds the fixtures of
//! the `auth_*` tests (users, keys, signed requests), `inventory` those of
//! the `inventory_*` tests (a schema and a fleet).

#![allow(dead_code)] // each test binary uses a different part

pub mod auth;
pub mod inventory;
pub mod netns;

use herd_client::Client;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HERD: &str = env!("CARGO_BIN_EXE_herd");

/// `herd ARGS`, with nothing from the environment or a config file pointing
/// it at another server, database or credential.
pub fn herd_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(HERD);
    cmd.args(args);
    for var in [
        "HERD_URL",
        "HERD_DB",
        "HERD_TOKEN",
        "HERD_KEY",
        "HERD_CONFIG",
        "HERD_LISTEN",
        "HERD_AUTH",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", "/nonexistent/herd-test");
    cmd
}

/// Runs `cmd` with `stdin` as its input (none: an empty stdin) and captures
/// stdout and stderr.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herd");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("herd output")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A running `herd serve`, killed on drop.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    /// Keeps the database directory of [`Server::start`] alive.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh SQLite database in a new temporary directory.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start_on(dir.path().join("inventory.sqlite"));
        server._dir = Some(dir);
        server
    }

    /// A server on an existing (or new) database: a SQLite file or a
    /// `postgres://` URL.
    pub fn start_on(db: impl AsRef<OsStr>) -> Server {
        Server::start_with(db, &[])
    }

    /// `herd serve --db DB EXTRA...` on a free loopback port.
    pub fn start_with(db: impl AsRef<OsStr>, extra: &[&str]) -> Server {
        let mut child = herd_command(&["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(extra)
            .env("RUST_LOG", "warn")
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
            _dir: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = server.client();
        while client.health_check().is_err() {
            assert!(Instant::now() < deadline, "herd serve never became healthy");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// An unsigned client of this server.
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

    /// `herd ARGS` talking to this server (`HERD_URL`).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = herd_command(args);
        cmd.env("HERD_URL", &self.url);
        cmd
    }

    /// Run the CLI against this server.
    pub fn herd(&self, args: &[&str]) -> Output {
        self.herd_with_stdin(args, None)
    }

    pub fn herd_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run(&mut self.command(args), stdin.map(str::as_bytes))
    }

    /// Raw HTTP, exactly these headers: (status, content type, body text).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (u16, String, String) {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let request = request.body(body.to_vec()).expect("request");
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

    /// Raw HTTP without headers: (status, content type, body text).
    pub fn http(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String, String) {
        self.request(method, path, &[], body.unwrap_or_default())
    }

    /// Raw HTTP with `headers` (and serveradmin's `application/x-json`
    /// content type when there is a body): (status, body text).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (u16, String) {
        let mut headers = headers.to_vec();
        if !body.is_empty() {
            headers.push(("Content-Type".into(), "application/x-json".into()));
        }
        let (status, _, text) = self.request(method, path, &headers, body);
        (status, text)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}
