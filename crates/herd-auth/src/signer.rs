//! Client-side signers: ssh-agent keys, a key file, a token. Each signs
//! herd's canonical request with a fresh timestamp and nonce, and signs again
//! when signing took so long that the request would arrive stale.

use crate::agent::Agent;
use crate::canonical::{CanonicalRequest, NAMESPACE};
use crate::error::SignError;
use crate::headers::MAX_KEYS;
use crate::verify::{fingerprint, token_app_id};
use crate::Signer;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use hmac::{Hmac, KeyInit, Mac};
use ssh_key::encoding::Encode;
use ssh_key::sha2::Sha256;
use ssh_key::{HashAlg, PrivateKey, SshSig};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Headers a signer adds to a request.
pub type Headers = Vec<(String, String)>;

/// A request signed longer ago than this is signed again before sending: a
/// quarter of serveradmin's ±16 s window leaves room for the network.
pub const MAX_SIGNING_SECS: i64 = 4;

/// How many times signing is attempted before giving up as too slow.
const SIGNING_ATTEMPTS: usize = 3;

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A fresh 128-bit nonce as 32 hex digits.
pub fn new_nonce() -> Result<String, SignError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| SignError::Sign {
        key: "nonce".into(),
        reason: e.to_string(),
    })?;
    Ok(hex::encode(bytes))
}

/// Take the timestamp just before signing; if `sign` took longer than
/// [`MAX_SIGNING_SECS`], sign again with a fresh timestamp and nonce.
/// Returns the headers with `X-Timestamp` and `X-Nonce` added.
pub fn sign_fresh(
    clock: &dyn Fn() -> i64,
    mut sign: impl FnMut(i64, &str) -> Result<Headers, SignError>,
) -> Result<Headers, SignError> {
    let mut slowest = 0;
    for _ in 0..SIGNING_ATTEMPTS {
        let timestamp = clock();
        let nonce = new_nonce()?;
        let mut headers = sign(timestamp, &nonce)?;
        let took = clock().saturating_sub(timestamp);
        if took <= MAX_SIGNING_SECS {
            headers.push(("X-Timestamp".into(), timestamp.to_string()));
            headers.push(("X-Nonce".into(), nonce));
            return Ok(headers);
        }
        slowest = slowest.max(took);
    }
    Err(SignError::TooSlow {
        seconds: slowest,
        max_age: MAX_SIGNING_SECS,
    })
}

/// The signed bytes of herd's scheme for this request.
fn canonical(method: &str, path_and_query: &str, body: &[u8], ts: i64, nonce: &str) -> Vec<u8> {
    CanonicalRequest {
        method,
        path_and_query,
        timestamp: ts,
        nonce,
        body,
    }
    .to_bytes()
}

fn encode_sshsig(sig: &SshSig) -> Result<String, SignError> {
    let blob = sig.encode_vec().map_err(|e| SignError::Sign {
        key: "sshsig".into(),
        reason: e.to_string(),
    })?;
    Ok(STANDARD.encode(blob))
}

/// Callback for notes the user should see (skipped agent keys).
pub type Notes = Box<dyn Fn(&str) + Send + Sync>;

/// Signs with every usable key in ssh-agent (up to [`MAX_KEYS`]); the server
/// picks the ones it knows. Keys the agent cannot sign with are skipped with
/// a note, once.
pub struct AgentSigner {
    socket: PathBuf,
    notes: Notes,
    skipped: Mutex<BTreeSet<Vec<u8>>>,
    clock: fn() -> i64,
}

impl AgentSigner {
    /// The agent at `$SSH_AUTH_SOCK`.
    pub fn from_env(notes: Notes) -> Result<AgentSigner, SignError> {
        let socket = std::env::var_os("SSH_AUTH_SOCK").ok_or(SignError::NoAgent)?;
        Ok(AgentSigner::new(PathBuf::from(socket), notes))
    }

    pub fn new(socket: PathBuf, notes: Notes) -> AgentSigner {
        AgentSigner {
            socket,
            notes,
            skipped: Mutex::new(BTreeSet::new()),
            clock: unix_now,
        }
    }

    fn is_skipped(&self, blob: &[u8]) -> bool {
        self.skipped
            .lock()
            .map(|s| s.contains(blob))
            .unwrap_or(false)
    }

    fn skip(&self, blob: &[u8], note: &str) {
        let first = self
            .skipped
            .lock()
            .map(|mut s| s.insert(blob.to_vec()))
            .unwrap_or(true);
        if first {
            (self.notes)(note);
        }
    }
}

impl Signer for AgentSigner {
    fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Headers, SignError> {
        let mut agent = Agent::connect(&self.socket).map_err(|source| SignError::AgentConnect {
            path: self.socket.display().to_string(),
            source,
        })?;
        let identities = agent.identities()?;
        let mut usable = Vec::new();
        for id in identities {
            match &id.key {
                _ if self.is_skipped(&id.blob) => {}
                None => self.skip(
                    &id.blob,
                    &format!(
                        "skipping agent key '{}': herd cannot use this key type",
                        id.comment
                    ),
                ),
                Some(key) => usable.push((id.blob.clone(), key.clone(), id.comment.clone())),
            }
        }
        usable.truncate(MAX_KEYS);
        sign_fresh(&self.clock, |ts, nonce| {
            let message = canonical(method, path_and_query, body, ts, nonce);
            let signed_data =
                SshSig::signed_data(NAMESPACE, HashAlg::Sha512, &message).map_err(|e| {
                    SignError::Sign {
                        key: "agent".into(),
                        reason: e.to_string(),
                    }
                })?;
            let mut sigs = Vec::new();
            for (blob, key, comment) in &usable {
                if self.is_skipped(blob) {
                    continue;
                }
                let flags = if key.algorithm().is_rsa() {
                    crate::agent::FLAG_RSA_SHA2_512
                } else {
                    0
                };
                let signed = agent
                    .sign(blob, &signed_data, flags)
                    .map_err(|e| e.to_string())
                    .and_then(|sig| {
                        SshSig::new(key.clone(), NAMESPACE, HashAlg::Sha512, sig)
                            .map_err(|e| e.to_string())
                    });
                match signed {
                    Ok(sig) => sigs.push(encode_sshsig(&sig)?),
                    Err(reason) => self.skip(
                        blob,
                        &format!(
                            "skipping agent key {} '{}': the agent cannot sign with it ({reason})",
                            fingerprint(key),
                            comment
                        ),
                    ),
                }
            }
            if sigs.is_empty() {
                return Err(SignError::NoUsableKey);
            }
            Ok(vec![("X-Herd-Signatures".into(), sigs.join(","))])
        })
    }
}

/// Signs with one private key file (OpenSSH format, optionally encrypted).
pub struct KeyFileSigner {
    key: PrivateKey,
    /// An Ed25519 key, expanded once: ssh-key rebuilds the signing key and
    /// checks it against the public key on every signature, which takes
    /// twice as long as the signature itself.
    ed25519: Option<ed25519_dalek::SigningKey>,
    clock: fn() -> i64,
}

impl KeyFileSigner {
    /// Load `path`, decrypting with `passphrase` when the file is encrypted.
    pub fn load(path: &Path, passphrase: Option<&str>) -> Result<KeyFileSigner, SignError> {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| SignError::ReadKey {
            path: shown.clone(),
            source,
        })?;
        let key = PrivateKey::from_openssh(&text).map_err(|e| SignError::ParseKey {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let key = if key.is_encrypted() {
            let pass = passphrase.ok_or_else(|| SignError::PassphraseNeeded {
                path: shown.clone(),
            })?;
            key.decrypt(pass).map_err(|_| SignError::WrongPassphrase {
                path: shown.clone(),
            })?
        } else {
            key
        };
        let ed25519 = match key.key_data().ed25519() {
            Some(pair) => Some(ed25519_dalek::SigningKey::try_from(pair).map_err(|e| {
                SignError::ParseKey {
                    path: shown.clone(),
                    reason: format!("the private and public halves do not match: {e}"),
                }
            })?),
            None => None,
        };
        Ok(KeyFileSigner {
            key,
            ed25519,
            clock: unix_now,
        })
    }

    /// Load `path`; the passphrase of an encrypted file comes from
    /// `HERD_KEY_PASSPHRASE`, else from a prompt on the terminal.
    pub fn load_interactive(path: &Path) -> Result<KeyFileSigner, SignError> {
        match KeyFileSigner::load(path, None) {
            Err(SignError::PassphraseNeeded { path: shown }) => {
                let pass = match std::env::var("HERD_KEY_PASSPHRASE") {
                    Ok(p) => p,
                    Err(_) => rpassword::prompt_password(format!("Passphrase for {shown}: "))
                        .map_err(|_| SignError::PassphraseNeeded {
                            path: shown.clone(),
                        })?,
                };
                KeyFileSigner::load(path, Some(&pass))
            }
            other => other,
        }
    }

    /// `SHA256:...` fingerprint of the key.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.key.public_key().key_data())
    }
}

impl Signer for KeyFileSigner {
    fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Headers, SignError> {
        sign_fresh(&self.clock, |ts, nonce| {
            let message = canonical(method, path_and_query, body, ts, nonce);
            let failed = |e: ssh_key::Error| SignError::Sign {
                key: self.fingerprint(),
                reason: e.to_string(),
            };
            let sig = match &self.ed25519 {
                Some(key) => {
                    use signature::Signer as _;
                    let data = SshSig::signed_data(NAMESPACE, HashAlg::Sha512, &message)
                        .map_err(failed)?;
                    let raw = ssh_key::Signature::new(
                        ssh_key::Algorithm::Ed25519,
                        key.sign(&data).to_bytes().to_vec(),
                    )
                    .map_err(failed)?;
                    SshSig::new(
                        self.key.public_key().key_data().clone(),
                        NAMESPACE,
                        HashAlg::Sha512,
                        raw,
                    )
                    .map_err(failed)?
                }
                None => self
                    .key
                    .sign(NAMESPACE, HashAlg::Sha512, &message)
                    .map_err(failed)?,
            };
            Ok(vec![("X-Herd-Signatures".into(), encode_sshsig(&sig)?)])
        })
    }
}

/// Signs with a token: HMAC-SHA256 over herd's canonical request.
pub struct TokenSigner {
    token: String,
    app_id: String,
    clock: fn() -> i64,
}

impl TokenSigner {
    pub fn new(token: &str) -> Result<TokenSigner, SignError> {
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SignError::BadToken);
        }
        Ok(TokenSigner {
            token: token.to_string(),
            app_id: token_app_id(token),
            clock: unix_now,
        })
    }

    /// The token in `HERD_TOKEN`, if set.
    pub fn from_env() -> Option<Result<TokenSigner, SignError>> {
        std::env::var("HERD_TOKEN")
            .ok()
            .map(|t| TokenSigner::new(&t))
    }
}

impl Signer for TokenSigner {
    fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Headers, SignError> {
        sign_fresh(&self.clock, |ts, nonce| {
            let message = canonical(method, path_and_query, body, ts, nonce);
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.token.as_bytes())
                .map_err(|_| SignError::BadToken)?;
            mac.update(&message);
            Ok(vec![
                ("X-Application".into(), self.app_id.clone()),
                (
                    "X-Herd-Token-Mac".into(),
                    hex::encode(mac.finalize().into_bytes()),
                ),
            ])
        })
    }
}

/// A fresh random token: 32 bytes as 64 hex digits (shown once).
pub fn new_token() -> Result<String, SignError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SignError::Sign {
        key: "token".into(),
        reason: e.to_string(),
    })?;
    Ok(hex::encode(bytes))
}

/// The signer the CLI uses when nothing else is said: `HERD_TOKEN` if set,
/// else `key` (a private key file, passphrase from `HERD_KEY_PASSPHRASE` or
/// a prompt), else the keys in ssh-agent. `None` when none is available.
pub fn default_signer(
    key: Option<&Path>,
    notes: Notes,
) -> Result<Option<Box<dyn Signer>>, SignError> {
    if let Some(token) = TokenSigner::from_env() {
        return Ok(Some(Box::new(token?)));
    }
    if let Some(path) = key {
        return Ok(Some(Box::new(KeyFileSigner::load_interactive(path)?)));
    }
    match AgentSigner::from_env(notes) {
        Ok(agent) => Ok(Some(Box::new(agent))),
        Err(SignError::NoAgent) => Ok(None),
        Err(other) => Err(other),
    }
}
