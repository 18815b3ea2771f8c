//! Verification and signing cost per key type, printed as figures.
//!
//! ```text
//! cargo bench -p herd-auth --bench verify
//! ```
//!
//! Keys come from the real ssh-keygen. "verify" is the whole server-side
//! decision without the database: header parsing, window, owner lookup in
//! memory, signature check (nonces are accepted without being stored, so
//! the same request can be verified again and again).

use herd_auth::verify::{fingerprint, DirectoryError};
use herd_auth::{
    authenticate, Account, Credentials, Directory, KeyFileSigner, KeyOwner, Request, Settings,
    Signer, TokenOwner,
};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Dir {
    keys: HashMap<String, Account>,
}

impl Directory for Dir {
    fn key_owners(&self, fps: &[String]) -> Result<Vec<KeyOwner>, DirectoryError> {
        Ok(fps
            .iter()
            .filter_map(|fp| {
                self.keys.get(fp).map(|u| KeyOwner {
                    fingerprint: fp.clone(),
                    user: u.clone(),
                })
            })
            .collect())
    }
    fn token(&self, _: &str) -> Result<Option<TokenOwner>, DirectoryError> {
        Ok(None)
    }
    fn remember_nonce(&self, _: &str, _: i64, _: i64) -> Result<bool, DirectoryError> {
        Ok(true)
    }
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`):
/// unlike wall time, it does not grow while other processes hold the CPUs.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Mean CPU time per call over at least `min` of CPU time (after a warm-up).
fn time(min: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..3 {
        f();
    }
    let start = cpu_ns();
    let wall = Instant::now();
    let mut n = 0u64;
    while cpu_ns() - start < min.as_nanos() as u64 && wall.elapsed() < min * 20 {
        f();
        n += 1;
    }
    Duration::from_nanos((cpu_ns() - start) / n.max(1))
}

fn keygen(dir: &Path, name: &str, kind: &str, bits: Option<u32>) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", "", "-f"]).arg(&path);
    if let Some(b) = bits {
        cmd.args(["-b", &b.to_string()]);
    }
    assert!(cmd.status().expect("ssh-keygen").success());
    path
}

fn main() {
    let tmp = tempfile::tempdir().expect("tmp");
    let body = br#"{"filters":{"hostname":"vm1"},"restrict":["hostname","num_cpu"]}"#;
    let path = "/api/dataset/query";
    let settings = Settings::default();
    let min = Duration::from_millis(700);
    println!("# herd-auth: CPU time per request (thread run time, so other load on the machine does not count), {} CPUs", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    println!("| key | sign (client) | verify herd SSHSIG (server) | verify serveradmin raw sig (server) |");
    println!("|---|---|---|---|");
    for (name, kind, bits) in [
        ("Ed25519", "ed25519", None),
        ("ECDSA P-256", "ecdsa", Some(256)),
        ("ECDSA P-384", "ecdsa", Some(384)),
        ("ECDSA P-521", "ecdsa", Some(521)),
        ("RSA 2048", "rsa", Some(2048)),
        ("RSA 4096", "rsa", Some(4096)),
    ] {
        let file = keygen(tmp.path(), &name.replace(' ', "_"), kind, bits);
        let signer = KeyFileSigner::load(&file, None).expect("key");
        let key = ssh_key::PrivateKey::read_openssh_file(&file).expect("key");
        let alice = Account {
            name: "alice".into(),
            admin: false,
            read_only: false,
            disabled: false,
        };
        let dir = Dir {
            keys: [(fingerprint(key.public_key().key_data()), alice)].into(),
        };
        let sign = time(min, || {
            signer.sign_request("POST", path, body).expect("sign");
        });
        let headers = signer.sign_request("POST", path, body).expect("sign");
        let verify_herd = time(min, || {
            let creds = Credentials::parse(|n| {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.as_bytes())
            })
            .expect("parse");
            let req = Request {
                method: "POST",
                path_and_query: path,
                body,
            };
            authenticate(&creds, req, herd_auth::signer::unix_now(), &settings, &dir)
                .expect("verify");
        });
        // serveradmin scheme: a raw signature over "<ts>:<body>".
        let ts = herd_auth::signer::unix_now();
        let message = herd_auth::canonical::serveradmin_message(ts, body);
        let raw = {
            use signature::Signer as _;
            let sig: ssh_key::Signature = if key.algorithm().is_rsa() {
                let ssh_key::private::KeypairData::Rsa(kp) = key.key_data() else {
                    unreachable!()
                };
                (kp, Some(ssh_key::HashAlg::Sha512))
                    .try_sign(&message)
                    .expect("sign")
            } else {
                key.try_sign(&message).expect("sign")
            };
            ssh_key::encoding::Encode::encode_vec(&sig).expect("encode")
        };
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let sa = [
            ("x-timestamp".to_string(), ts.to_string()),
            (
                "x-publickeys".to_string(),
                b64.encode(
                    ssh_key::encoding::Encode::encode_vec(key.public_key().key_data())
                        .expect("blob"),
                ),
            ),
            ("x-signatures".to_string(), b64.encode(&raw)),
        ];
        let verify_sa = time(min, || {
            let creds =
                Credentials::parse(|n| sa.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_bytes()))
                    .expect("parse");
            let req = Request {
                method: "POST",
                path_and_query: path,
                body,
            };
            authenticate(&creds, req, herd_auth::signer::unix_now(), &settings, &dir)
                .expect("verify");
        });
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.1} µs |",
            micros(sign),
            micros(verify_herd),
            micros(verify_sa)
        );
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
