//! Request authentication end to end: the real `herd serve` with users made
//! by the real CLI, clients that are real OpenSSH (ssh-agent, ssh-keygen +
//! curl), paramiko, and the `herd` CLI itself; every refusal with its status
//! and message.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::auth::*;
use support::Server;

const QUERY: &str = "/api/dataset/query";
const BODY: &[u8] = br#"{"filters":{"hostname":"web1"}}"#;

struct Fixture {
    site: Site,
    server: Server,
    alice: PathBuf,
}

/// alice (admin) with an Ed25519 key, the fleet loaded, a server with a
/// 4 KiB body limit.
fn fixture() -> Fixture {
    let site = Site::new();
    site.ok(&["user", "add", "alice", "--admin"]);
    let alice = site.user_key("alice", "alice");
    let server = site.serve(&["--max-body", "4096"]);
    load_fleet(&server, &alice);
    Fixture {
        site,
        server,
        alice,
    }
}

fn refused(
    f: &Fixture,
    headers: &[(String, String)],
    path: &str,
    body: &[u8],
    status: u16,
    fragment: &str,
) {
    let (got, text) = f.server.send("POST", path, headers, body);
    assert_eq!(got, status, "{text}");
    let msg = message(&text);
    assert!(
        msg.contains(fragment),
        "message {msg:?} should contain {fragment:?}"
    );
}

/// A real ssh-agent, killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path, keys: &[&Path]) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "agent socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        for key in keys {
            let ok = Command::new("ssh-add")
                .arg(key)
                .env("SSH_AUTH_SOCK", &socket)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            assert!(ok, "ssh-add {}", key.display());
        }
        Agent { child, socket }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn herd_cli_signs_with_ed25519_ecdsa_and_rsa_keys_from_ssh_agent() {
    let f = fixture();
    let ec = f.site.keygen("alice-ec", "ecdsa", Some(384));
    let rsa = f.site.keygen("alice-rsa", "rsa", Some(3072));
    for key in [&ec, &rsa] {
        f.site.ok(&[
            "key",
            "add",
            "alice",
            key.with_extension("pub").to_str().unwrap(),
        ]);
    }
    let agent = Agent::start(f.site.dir.path(), &[&f.alice, &ec, &rsa]);
    let out = f
        .server
        .command(&["query", "hostname=web1"])
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "herd query via agent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("web1"));
}

#[test]
fn every_agent_key_type_alone_is_accepted() {
    let f = fixture();
    for (name, kind, bits) in [
        ("e1", "ed25519", None),
        ("e2", "ecdsa", Some(256)),
        ("e3", "ecdsa", Some(521)),
        ("e4", "rsa", Some(2048)),
    ] {
        let key = f.site.keygen(name, kind, bits);
        f.site.ok(&[
            "key",
            "add",
            "alice",
            key.with_extension("pub").to_str().unwrap(),
        ]);
        let dir = f.site.path(&format!("agent-{name}"));
        std::fs::create_dir(&dir).unwrap();
        let agent = Agent::start(&dir, &[&key]);
        let signer = herd_auth::AgentSigner::new(agent.socket.clone(), Box::new(|_| {}));
        let headers = herd_auth::Signer::sign_request(&signer, "POST", QUERY, BODY).unwrap();
        let (status, text) = f.server.send("POST", QUERY, &headers, BODY);
        assert_eq!(status, 200, "{kind}: {text}");
    }
}

#[test]
fn commits_record_the_user_and_the_key_in_history() {
    let f = fixture();
    let id = object_id(&f.server, &f.alice, "web1");
    let commit = serde_json::json!({"changed": [{"object_id": id, "os": {"action": "update", "old": "bookworm", "new": "trixie"}}]});
    let (status, text) = f.server.signed(
        &f.alice,
        "POST",
        "/api/dataset/commit",
        &serde_json::to_vec(&commit).unwrap(),
    );
    assert_eq!(status, 200, "{text}");
    let path = format!("/api/history?object_id={id}");
    let (status, text) = f.server.signed(&f.alice, "GET", &path, b"");
    assert_eq!(status, 200, "{text}");
    let fp = Command::new("ssh-keygen")
        .args(["-l", "-f"])
        .arg(f.alice.with_extension("pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!("alice (key {fp})")),
        "history: {text}"
    );
}

#[test]
fn token_from_herd_token_is_accepted_by_the_cli() {
    let f = fixture();
    let token = f.site.ok(&["token", "create", "alice", "--name", "deploy"]);
    let out = f
        .server
        .command(&["query", "hostname=db1"])
        .env("HERD_TOKEN", token.trim())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("db1"));
}

/// The recipe of docs/auth.md, run by a shell: printf, ssh-keygen -Y sign, curl.
#[test]
fn ssh_keygen_y_sign_and_curl_are_accepted() {
    let f = fixture();
    let script = r#"
set -eu
body='{"filters":{"hostname":"web1"}}'
path=/api/dataset/query
ts=$(date +%s)
nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
hash=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
printf 'herd-api-v1\n%s\n%s\n%s\n%s\n%s\n' POST "$path" "$ts" "$nonce" "$hash" > "$DIR/request.txt"
ssh-keygen -q -Y sign -n herd-api -f "$KEY" "$DIR/request.txt"
sig=$(sed '1d;$d' "$DIR/request.txt.sig" | tr -d '\n')
curl -sS -w '\n%{http_code}' -X POST \
  -H "X-Timestamp: $ts" -H "X-Nonce: $nonce" -H "X-Herd-Signatures: $sig" \
  -H 'Content-Type: application/x-json' --data-binary "$body" "$URL$path"
"#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("DIR", f.site.dir.path())
        .env("KEY", &f.alice)
        .env("URL", &f.server.url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.trim_end().ends_with("200"), "{text}");
    assert!(text.contains("\"web1\""), "{text}");
}

fn paramiko(args: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/serveradmin_client.py");
    Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3")
}

fn paramiko_headers(args: &[&str]) -> Vec<(String, String)> {
    let out = paramiko(&[&["headers"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&out.stdout).unwrap();
    map.into_iter().collect()
}

#[test]
fn paramiko_serveradmin_style_requests_are_accepted() {
    let f = fixture();
    let rsa = f.site.keygen("alice-rsa", "rsa", Some(2048));
    f.site.ok(&[
        "key",
        "add",
        "alice",
        rsa.with_extension("pub").to_str().unwrap(),
    ]);
    let body = std::str::from_utf8(BODY).unwrap();
    for key in [&f.alice, &rsa] {
        let out = paramiko(&[
            "send",
            &f.server.url,
            QUERY,
            "--key",
            key.to_str().unwrap(),
            "--body",
            body,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("200\n"),
            "paramiko {}: {text}",
            key.display()
        );
        assert!(text.contains("web1"));
    }
}

#[test]
fn sha1_rsa_is_refused_unless_the_legacy_setting_is_on() {
    let site = Site::new();
    site.ok(&["user", "add", "alice"]);
    let rsa = site.keygen("rsa", "rsa", Some(2048));
    site.ok(&[
        "key",
        "add",
        "alice",
        rsa.with_extension("pub").to_str().unwrap(),
    ]);
    let headers = paramiko_headers(&["--key", rsa.to_str().unwrap(), "--rsa-algorithm", "ssh-rsa"]);
    {
        let server = site.serve(&[]);
        let (status, text) = server.send("GET", "/api/dataset/attributes", &headers, b"");
        assert_eq!(status, 401, "{text}");
        assert!(
            message(&text).contains("ssh-rsa (RSA with SHA-1), which this server refuses"),
            "{text}"
        );
    }
    let server = site.serve(&["--legacy-ssh-rsa"]);
    let headers = paramiko_headers(&["--key", rsa.to_str().unwrap(), "--rsa-algorithm", "ssh-rsa"]);
    let (status, text) = server.send("GET", "/api/dataset/attributes", &headers, b"");
    assert_eq!(status, 200, "{text}");
}

#[test]
fn body_or_path_changed_after_signing_is_refused() {
    let f = fixture();
    let headers = sign(&f.alice, "POST", QUERY, BODY);
    refused(
        &f,
        &headers,
        QUERY,
        br#"{"filters":{"hostname":"db1"}}"#,
        401,
        "request changed after signing",
    );
    let headers = sign(&f.alice, "POST", "/api/dataset/query?restrict=x", BODY);
    refused(
        &f,
        &headers,
        QUERY,
        BODY,
        401,
        "request changed after signing",
    );
}

#[test]
fn replayed_request_is_refused() {
    let f = fixture();
    let headers = sign(&f.alice, "POST", QUERY, BODY);
    assert_eq!(f.server.send("POST", QUERY, &headers, BODY).0, 200);
    refused(
        &f,
        &headers,
        QUERY,
        BODY,
        401,
        "was already used: this is a replayed request",
    );
}

#[test]
fn a_request_signed_before_a_restart_is_refused_after_it() {
    // The SQLite engine's replay memory lives in the server process: a
    // request accepted before a restart (crash or not) must not be
    // accepted again by the next server inside the ±16 s window.
    let mut f = fixture();
    let headers = sign(&f.alice, "POST", QUERY, BODY);
    assert_eq!(f.server.send("POST", QUERY, &headers, BODY).0, 200);
    f.server.kill9();
    // The next server starts in a later second than the signature's.
    std::thread::sleep(Duration::from_millis(1100));
    f.server = f.site.serve(&["--max-body", "4096"]);
    refused(&f, &headers, QUERY, BODY, 401, "before this server started");
    // Signed afresh, the same request is accepted.
    let again = sign(&f.alice, "POST", QUERY, BODY);
    assert_eq!(f.server.send("POST", QUERY, &again, BODY).0, 200);
}

#[test]
fn timestamp_outside_the_window_is_refused() {
    let f = fixture();
    let mut headers = sign(&f.alice, "POST", QUERY, BODY);
    set(&mut headers, "X-Timestamp", &(now() - 60).to_string());
    refused(
        &f,
        &headers,
        QUERY,
        BODY,
        401,
        "away from the server's clock (allowed ±16 s)",
    );
}

#[test]
fn unknown_key_and_signature_by_another_key_are_refused() {
    let f = fixture();
    let stranger = f.site.keygen("stranger", "ed25519", None);
    refused(
        &f,
        &sign(&stranger, "POST", QUERY, BODY),
        QUERY,
        BODY,
        401,
        "is registered",
    );
    // serveradmin scheme: alice's public key, the stranger's signature.
    let mut headers = paramiko_headers(&[
        "--key",
        stranger.to_str().unwrap(),
        "--body",
        std::str::from_utf8(BODY).unwrap(),
    ]);
    let alice_pub = std::fs::read_to_string(f.alice.with_extension("pub")).unwrap();
    set(
        &mut headers,
        "X-PublicKeys",
        alice_pub.split_whitespace().nth(1).unwrap(),
    );
    refused(&f, &headers, QUERY, BODY, 401, "made by another key");
}

#[test]
fn keys_of_two_users_and_disabled_users_are_refused() {
    let f = fixture();
    f.site.ok(&["user", "add", "bob"]);
    let bob = f.site.user_key("bob", "bob");
    let body = std::str::from_utf8(BODY).unwrap();
    let both = paramiko_headers(&[
        "--key",
        f.alice.to_str().unwrap(),
        "--key",
        bob.to_str().unwrap(),
        "--body",
        body,
    ]);
    refused(
        &f,
        &both,
        QUERY,
        BODY,
        401,
        "keys of several users (alice, bob)",
    );
    assert_eq!(f.server.signed(&bob, "POST", QUERY, BODY).0, 200);
    f.site.ok(&["user", "disable", "bob"]);
    refused(
        &f,
        &sign(&bob, "POST", QUERY, BODY),
        QUERY,
        BODY,
        403,
        "user 'bob' is disabled",
    );
}

#[test]
fn missing_or_malformed_headers_are_401_never_500() {
    let f = fixture();
    let good = sign(&f.alice, "POST", QUERY, BODY);
    let without = |name: &str| {
        let mut h = good.clone();
        h.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        h
    };
    let with = |name: &str, value: &str| {
        let mut h = good.clone();
        set(&mut h, name, value);
        h
    };
    refused(&f, &[], QUERY, BODY, 401, "the request is not signed");
    refused(
        &f,
        &without("X-Timestamp"),
        QUERY,
        BODY,
        401,
        "missing header X-Timestamp",
    );
    refused(
        &f,
        &without("X-Nonce"),
        QUERY,
        BODY,
        401,
        "missing header X-Nonce",
    );
    refused(
        &f,
        &with("X-Timestamp", "soon"),
        QUERY,
        BODY,
        401,
        "malformed header X-Timestamp",
    );
    refused(
        &f,
        &with("X-Herd-Signatures", "%%%"),
        QUERY,
        BODY,
        401,
        "malformed header X-Herd-Signatures",
    );
    refused(
        &f,
        &with(
            "X-Herd-Signatures",
            "U1NIU0lHIGp1bms=", /* base64("SSHSIG junk") */
        ),
        QUERY,
        BODY,
        401,
        "not an SSHSIG blob",
    );
    refused(
        &f,
        &with("X-SecurityToken", "00"),
        QUERY,
        BODY,
        401,
        "several schemes",
    );
    let sa = vec![
        ("X-Timestamp".to_string(), now().to_string()),
        ("X-PublicKeys".to_string(), "AAAA".to_string()),
    ];
    refused(&f, &sa, QUERY, BODY, 401, "missing header X-Signatures");
    let mut twice = good.clone();
    twice.push(("X-Timestamp".into(), now().to_string()));
    refused(&f, &twice, QUERY, BODY, 401, "appears more than once");
    // The health check needs no credentials (242: serveradmin's "healthy").
    assert_eq!(f.server.send("GET", "/api/health_check", &[], b"").0, 242);
}

#[test]
fn more_than_twenty_keys_are_refused() {
    let f = fixture();
    let headers = sign(&f.alice, "POST", QUERY, BODY);
    let one = header(&headers, "X-Herd-Signatures").to_string();
    let mut many = headers.clone();
    set(&mut many, "X-Herd-Signatures", &vec![one; 21].join(","));
    refused(
        &f,
        &many,
        QUERY,
        BODY,
        401,
        "21 public keys in one request, at most 20",
    );
}

#[test]
fn body_over_the_limit_is_413() {
    let f = fixture();
    let big = format!(r#"{{"filters":{{"hostname":"{}"}}}}"#, "x".repeat(5000));
    let headers = sign(&f.alice, "POST", QUERY, big.as_bytes());
    refused(
        &f,
        &headers,
        QUERY,
        big.as_bytes(),
        413,
        "larger than the limit of 4096 bytes",
    );
}

#[test]
fn passphrase_protected_key_file_signs_with_herd_key_passphrase() {
    let f = fixture();
    let locked = f.site.path("locked");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "correct horse", "-f"])
        .arg(&locked)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    f.site.ok(&[
        "key",
        "add",
        "alice",
        locked.with_extension("pub").to_str().unwrap(),
    ]);
    let run = |passphrase: &str| {
        f.server
            .command(&["query", "hostname=web1", "--key"])
            .arg(&locked)
            .env("HERD_KEY_PASSPHRASE", passphrase)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run("correct horse");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("web1"));
    let out = run("wrong");
    assert_eq!(out.status.code(), Some(5), "refused exit code");
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
}
