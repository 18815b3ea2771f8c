//! Shared helpers: real ssh-keygen keys in a temp dir, an in-memory directory.
#![allow(dead_code)]

use herd_auth::verify::{fingerprint, DirectoryError};
use herd_auth::{
    Account, Credentials, Directory, KeyOwner, Principal, Request, Settings, TokenOwner,
};
use ssh_key::PublicKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub fn keygen(dir: &Path, name: &str, kind: &str, bits: Option<u32>, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&path);
    if let Some(bits) = bits {
        cmd.args(["-b", &bits.to_string()]);
    }
    let status = cmd
        .status()
        .expect("ssh-keygen runs (openssh-client installed by scripts/deps)");
    assert!(status.success(), "ssh-keygen -t {kind} failed");
    path
}

pub fn public_key(private: &Path) -> PublicKey {
    let text = std::fs::read_to_string(private.with_extension("pub")).expect("public key file");
    PublicKey::from_openssh(&text).expect("valid public key")
}

#[derive(Default)]
pub struct MemDir {
    pub keys: HashMap<String, Account>,
    pub tokens: HashMap<String, TokenOwner>,
    pub nonces: Mutex<HashMap<String, i64>>,
}

pub fn account(name: &str) -> Account {
    Account {
        name: name.into(),
        admin: false,
        read_only: false,
        disabled: false,
    }
}

impl MemDir {
    pub fn add_key(&mut self, user: &Account, private: &Path) -> String {
        let fp = fingerprint(public_key(private).key_data());
        self.keys.insert(fp.clone(), user.clone());
        fp
    }
}

impl Directory for MemDir {
    fn key_owners(&self, fingerprints: &[String]) -> Result<Vec<KeyOwner>, DirectoryError> {
        Ok(fingerprints
            .iter()
            .filter_map(|fp| {
                self.keys.get(fp).map(|user| KeyOwner {
                    fingerprint: fp.clone(),
                    user: user.clone(),
                })
            })
            .collect())
    }
    fn token(&self, app_id: &str) -> Result<Option<TokenOwner>, DirectoryError> {
        Ok(self.tokens.get(app_id).cloned())
    }
    fn remember_nonce(
        &self,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, DirectoryError> {
        let mut nonces = self.nonces.lock().unwrap();
        nonces.retain(|_, exp| *exp >= now);
        Ok(nonces.insert(nonce.to_string(), expires_at).is_none())
    }
}

pub fn now() -> i64 {
    herd_auth::signer::unix_now()
}

/// Authenticate `headers` for `method path` with `body` against `dir`.
pub fn check(
    dir: &MemDir,
    settings: &Settings,
    headers: &[(String, String)],
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Principal, herd_auth::AuthError> {
    check_at(dir, settings, headers, method, path, body, now())
}

/// [`check`] with the server's clock at `now`, for tests of the window
/// that must not depend on how long signing took.
pub fn check_at(
    dir: &MemDir,
    settings: &Settings,
    headers: &[(String, String)],
    method: &str,
    path: &str,
    body: &[u8],
    now: i64,
) -> Result<Principal, herd_auth::AuthError> {
    let creds = Credentials::parse(|name| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    })?;
    herd_auth::authenticate(
        &creds,
        Request {
            method,
            path_and_query: path,
            body,
        },
        now,
        settings,
        dir,
    )
}

pub fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value.to_string()));
}

pub fn get<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("header {name} present"))
}
