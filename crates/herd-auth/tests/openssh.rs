//! Interoperability with real OpenSSH (ssh-agent, ssh-add, ssh-keygen -Y)
//! and with paramiko signing serveradmin-style requests.

mod common;

use common::*;
use herd_auth::{AgentSigner, AuthError, KeyFileSigner, Settings, Signer, Via};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PATH: &str = "/api/dataset/commit";
const BODY: &[u8] = br#"{"created":[],"changed":[],"deleted":[]}"#;

/// A real ssh-agent in the foreground, killed on drop.
struct AgentProc {
    child: Child,
    socket: PathBuf,
}

impl AgentProc {
    fn start(dir: &Path) -> AgentProc {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent runs (openssh-client)");
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "ssh-agent socket never appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        AgentProc { child, socket }
    }

    fn add(&self, key: &Path, extra: &[&str]) {
        let status = Command::new("ssh-add")
            .args(extra)
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .env_remove("DISPLAY")
            .env_remove("SSH_ASKPASS")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "ssh-add {}", key.display());
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn notes() -> (Arc<Mutex<Vec<String>>>, herd_auth::signer::Notes) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (
        seen,
        Box::new(move |n: &str| sink.lock().unwrap().push(n.to_string())),
    )
}

#[test]
fn agent_with_ed25519_ecdsa_and_rsa_keys_signs_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = AgentProc::start(tmp.path());
    let alice = account("alice");
    let mut dir = MemDir::default();
    let mut fps = Vec::new();
    for (name, kind, bits) in [
        ("ed", "ed25519", None),
        ("ec", "ecdsa", Some(384)),
        ("rsa", "rsa", Some(3072)),
    ] {
        let key = keygen(tmp.path(), name, kind, bits, "");
        agent.add(&key, &[]);
        fps.push(dir.add_key(&alice, &key));
    }
    let (seen, sink) = notes();
    let signer = AgentSigner::new(agent.socket.clone(), sink);
    let headers = signer.sign_request("POST", PATH, BODY).unwrap();
    let principal = check(&dir, &Settings::default(), &headers, "POST", PATH, BODY).unwrap();
    let Via::Keys(mut verified) = principal.via else {
        panic!("signed by keys")
    };
    verified.sort();
    fps.sort();
    assert_eq!(verified, fps, "every agent key signed and verified");
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn agent_key_that_cannot_sign_is_skipped_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = AgentProc::start(tmp.path());
    let good = keygen(tmp.path(), "good", "ed25519", None, "");
    let confirm = keygen(tmp.path(), "confirm", "ecdsa", Some(256), "");
    agent.add(&good, &[]);
    // -c: every use must be confirmed through ssh-askpass, which is not
    // available here, so the agent refuses to sign with this key.
    agent.add(&confirm, &["-c"]);
    let mut dir = MemDir::default();
    dir.add_key(&account("alice"), &good);
    let (seen, sink) = notes();
    let signer = AgentSigner::new(agent.socket.clone(), sink);
    let headers = signer
        .sign_request("GET", "/api/dataset/attributes", b"")
        .unwrap();
    check(
        &dir,
        &Settings::default(),
        &headers,
        "GET",
        "/api/dataset/attributes",
        b"",
    )
    .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].contains("skipping agent key") && seen[0].contains("confirm"),
        "{}",
        seen[0]
    );
}

#[test]
fn empty_agent_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = AgentProc::start(tmp.path());
    let (_seen, sink) = notes();
    let err = AgentSigner::new(agent.socket.clone(), sink)
        .sign_request("GET", "/", b"")
        .unwrap_err();
    assert!(matches!(err, herd_auth::SignError::NoUsableKey), "{err}");
}

/// The base64 between the armor lines of an `ssh-keygen -Y sign` file.
fn unarmor(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

#[test]
fn ssh_keygen_y_sign_output_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = account("alice");
    let mut dir = MemDir::default();
    for (name, kind, bits) in [
        ("ed", "ed25519", None),
        ("ec", "ecdsa", Some(521)),
        ("rsa", "rsa", Some(2048)),
    ] {
        let key = keygen(tmp.path(), name, kind, bits, "");
        dir.add_key(&alice, &key);
        let ts = now();
        let nonce = format!("{name}-0123456789abcdef");
        let message = herd_auth::canonical::CanonicalRequest {
            method: "POST",
            path_and_query: PATH,
            timestamp: ts,
            nonce: &nonce,
            body: BODY,
        }
        .to_bytes();
        let msg_file = tmp.path().join(format!("{name}.msg"));
        std::fs::write(&msg_file, &message).unwrap();
        let status = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "herd-api", "-f"])
            .arg(&key)
            .arg(&msg_file)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let sig = std::fs::read_to_string(msg_file.with_extension("msg.sig")).unwrap();
        let headers = vec![
            ("X-Timestamp".to_string(), ts.to_string()),
            ("X-Nonce".to_string(), nonce.clone()),
            ("X-Herd-Signatures".to_string(), unarmor(&sig)),
        ];
        check(&dir, &Settings::default(), &headers, "POST", PATH, BODY)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[test]
fn herd_signatures_verify_with_ssh_keygen() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, kind, bits) in [
        ("ed", "ed25519", None),
        ("ec", "ecdsa", Some(256)),
        ("rsa", "rsa", Some(2048)),
    ] {
        let key = keygen(tmp.path(), name, kind, bits, "");
        let headers = KeyFileSigner::load(&key, None)
            .unwrap()
            .sign_request("POST", PATH, BODY)
            .unwrap();
        let message = herd_auth::canonical::CanonicalRequest {
            method: "POST",
            path_and_query: PATH,
            timestamp: get(&headers, "X-Timestamp").parse().unwrap(),
            nonce: get(&headers, "X-Nonce"),
            body: BODY,
        }
        .to_bytes();
        let blob = get(&headers, "X-Herd-Signatures");
        let pem = format!(
            "-----BEGIN SSH SIGNATURE-----\n{}\n-----END SSH SIGNATURE-----\n",
            blob.as_bytes()
                .chunks(70)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let sig_file = tmp.path().join(format!("{name}.sig"));
        std::fs::write(&sig_file, pem).unwrap();
        let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let allowed = tmp.path().join(format!("{name}.allowed"));
        std::fs::write(&allowed, format!("alice {pubkey}")).unwrap();
        let mut child = Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", "herd-api", "-I", "alice", "-f"])
            .arg(&allowed)
            .arg("-s")
            .arg(&sig_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&message).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{kind}: ssh-keygen -Y verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn paramiko_headers(args: &[&str]) -> Vec<(String, String)> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../herd/tests/py/serveradmin_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("headers")
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "paramiko: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let map: std::collections::BTreeMap<String, String> =
        serde_json_lite(&String::from_utf8_lossy(&out.stdout));
    map.into_iter().collect()
}

/// Parse the flat `{"k": "v", ...}` object the script prints.
fn serde_json_lite(text: &str) -> std::collections::BTreeMap<String, String> {
    let inner = text.trim().trim_start_matches('{').trim_end_matches('}');
    inner
        .split("\", \"")
        .map(|pair| {
            let pair = pair.trim_matches('"');
            let (k, v) = pair.split_once("\": \"").expect("k: v");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn paramiko_serveradmin_signatures_are_accepted_and_sha1_rsa_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = account("alice");
    let mut dir = MemDir::default();
    let body = std::str::from_utf8(BODY).unwrap();
    for (name, kind, bits) in [
        ("ed", "ed25519", None),
        ("ec", "ecdsa", Some(256)),
        ("rsa", "rsa", Some(2048)),
    ] {
        let key = keygen(tmp.path(), name, kind, bits, "");
        dir.add_key(&alice, &key);
        let key = key.to_str().unwrap();
        let headers = paramiko_headers(&[
            "--key",
            key,
            "--rsa-algorithm",
            "rsa-sha2-512",
            "--body",
            body,
        ]);
        check(&dir, &Settings::default(), &headers, "POST", PATH, BODY)
            .unwrap_or_else(|e| panic!("paramiko {kind}: {e}"));
        // The serveradmin scheme covers only timestamp and body.
        let err = check(&dir, &Settings::default(), &headers, "POST", PATH, b"{}").unwrap_err();
        assert!(matches!(err, AuthError::BadSignature { .. }), "{err}");
        if kind == "rsa" {
            // ssh-rsa (SHA-1): what old paramiko and old agents produce.
            let sha1 =
                paramiko_headers(&["--key", key, "--rsa-algorithm", "ssh-rsa", "--body", body]);
            let err = check(&dir, &Settings::default(), &sha1, "POST", PATH, BODY).unwrap_err();
            assert!(matches!(err, AuthError::Sha1Refused { .. }), "{err}");
            assert_eq!(err.status(), 401);
            assert!(
                err.to_string().contains("ssh-rsa (RSA with SHA-1)"),
                "{err}"
            );
            let legacy = Settings {
                legacy_ssh_rsa: true,
                ..Settings::default()
            };
            check(&dir, &legacy, &sha1, "POST", PATH, BODY).unwrap();
        }
    }
}

#[test]
fn paramiko_with_ssh_agent_keys_is_accepted_by_the_known_key() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = AgentProc::start(tmp.path());
    let known = keygen(tmp.path(), "known", "ed25519", None, "");
    let unknown = keygen(tmp.path(), "unknown", "ecdsa", Some(256), "");
    agent.add(&known, &[]);
    agent.add(&unknown, &[]);
    let mut dir = MemDir::default();
    let fp = dir.add_key(&account("alice"), &known);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../herd/tests/py/serveradmin_client.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["headers", "--agent", "--body", "{}"])
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let headers: Vec<_> = serde_json_lite(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .collect();
    assert_eq!(get(&headers, "X-PublicKeys").split(',').count(), 2);
    let p = check(&dir, &Settings::default(), &headers, "POST", PATH, b"{}").unwrap();
    assert_eq!(p.via, Via::Keys(vec![fp]));
}
