//! Verification: from parsed credentials and a directory of users to a
//! [`Principal`] or an [`AuthError`]. The directory (keys, tokens, nonces) is
//! a trait so this module stays free of databases and HTTP.

use crate::canonical::{serveradmin_message, CanonicalRequest, NAMESPACE};
use crate::error::AuthError;
use crate::headers::{Credentials, Scheme};
use hmac::{Hmac, KeyInit, Mac};
use ssh_key::public::KeyData;
use ssh_key::sha2::Sha256;
use ssh_key::{Algorithm, HashAlg, Signature};
use std::collections::BTreeSet;

/// Operator settings of the verifier.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Accepted clock skew in seconds, either way (serveradmin uses 16).
    pub window_secs: i64,
    /// Accept `ssh-rsa` (RSA with SHA-1) signatures. Off by default.
    pub legacy_ssh_rsa: bool,
    /// Accept serveradmin's schemes (no nonce, path not signed). On by
    /// default so existing clients work; switch off when all use herd's.
    pub serveradmin_schemes: bool,
    /// Unix seconds from which the replay memory holds every nonce, when
    /// it does not survive a restart (kept in the server's memory): a
    /// request with a nonce signed earlier could be a replay of one the
    /// previous server accepted, so it is refused. `None` when the memory
    /// is durable (a database).
    pub nonces_since: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window_secs: 16,
            legacy_ssh_rsa: false,
            serveradmin_schemes: true,
            nonces_since: None,
        }
    }
}

/// The request as the server received it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

/// A user as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub admin: bool,
    pub read_only: bool,
    pub disabled: bool,
}

/// A registered key and its owner.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    /// `SHA256:...` fingerprint, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub user: Account,
}

/// A registered token and its owner.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub name: String,
    /// The token itself: both HMAC schemes need it to recompute the MAC.
    pub secret: String,
    pub user: Account,
}

/// Where users, keys, tokens and seen nonces live (the database).
pub trait Directory {
    /// The owners of those of `fingerprints` that are registered.
    fn key_owners(&self, fingerprints: &[String]) -> Result<Vec<KeyOwner>, DirectoryError>;
    /// The token whose SHA-1 hex is `app_id`.
    fn token(&self, app_id: &str) -> Result<Option<TokenOwner>, DirectoryError>;
    /// Record `nonce` until `expires_at` (unix seconds); false if it was
    /// already recorded and has not expired.
    fn remember_nonce(
        &self,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, DirectoryError>;
}

/// A failure of the directory itself (not a refusal).
pub type DirectoryError = Box<dyn std::error::Error + Send + Sync>;

/// Who made an authenticated request, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: Account,
    pub via: Via,
}

/// The credential that authenticated a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The registered keys whose signatures verified (`SHA256:...`).
    Keys(Vec<String>),
    /// A token, by its name.
    Token(String),
}

impl std::fmt::Display for Principal {
    /// `alice (key SHA256:...)` or `ci (token deploy)`: the history author.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.via {
            Via::Keys(fps) => write!(f, "{} (key {})", self.user.name, fps.join(", ")),
            Via::Token(name) => write!(f, "{} (token {})", self.user.name, name),
        }
    }
}

/// Authenticate one request: window, lookup, signatures, owner, nonce.
///
/// Unknown keys among known ones are ignored (clients send every agent key);
/// every known key must verify, and all of them must belong to one user.
pub fn authenticate(
    credentials: &Credentials,
    request: Request<'_>,
    now: i64,
    settings: &Settings,
    directory: &dyn Directory,
) -> Result<Principal, AuthError> {
    let skew = credentials.timestamp.saturating_sub(now);
    if skew.saturating_abs() > settings.window_secs {
        return Err(AuthError::StaleTimestamp {
            timestamp: credentials.timestamp,
            skew: skew.saturating_abs(),
            window: settings.window_secs,
        });
    }
    let ts = credentials.timestamp;
    let has_nonce = matches!(
        credentials.scheme,
        Scheme::HerdKeys { .. } | Scheme::HerdToken { .. }
    );
    if let Some(since) = settings
        .nonces_since
        .filter(|since| has_nonce && ts < *since)
    {
        return Err(AuthError::SignedBeforeStart {
            timestamp: ts,
            since,
        });
    }
    let (principal, nonce) = match &credentials.scheme {
        Scheme::HerdKeys { nonce, signatures } => {
            let message = CanonicalRequest {
                method: request.method,
                path_and_query: request.path_and_query,
                timestamp: ts,
                nonce,
                body: request.body,
            }
            .to_bytes();
            let mut presented = Vec::with_capacity(signatures.len());
            for sig in signatures {
                if sig.namespace() != NAMESPACE {
                    return Err(AuthError::WrongNamespace(sig.namespace().to_string()));
                }
                presented.push((sig.public_key().clone(), sig));
            }
            let principal = verify_keys(&presented, directory, |key, sig| {
                check_algorithm(key, sig.signature(), settings)?;
                ssh_key::PublicKey::from(key.clone())
                    .verify(NAMESPACE, &message, sig)
                    .map_err(|_| bad_signature(key))
            })?;
            (principal, Some(nonce))
        }
        Scheme::ServeradminKeys { keys } => {
            if !settings.serveradmin_schemes {
                return Err(AuthError::ServeradminSchemeOff);
            }
            let message = serveradmin_message(ts, request.body);
            let presented: Vec<(KeyData, &Signature)> =
                keys.iter().map(|(k, s)| (k.clone(), s)).collect();
            let principal = verify_keys(&presented, directory, |key, sig| {
                check_algorithm(key, sig, settings)?;
                verify_raw(key, &message, sig)
            })?;
            (principal, None)
        }
        Scheme::HerdToken { nonce, app_id, mac } => {
            let owner = lookup_token(directory, app_id)?;
            let message = CanonicalRequest {
                method: request.method,
                path_and_query: request.path_and_query,
                timestamp: ts,
                nonce,
                body: request.body,
            }
            .to_bytes();
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(owner.secret.as_bytes())
                .map_err(|_| AuthError::BadTokenMac)?;
            m.update(&message);
            m.verify_slice(mac).map_err(|_| AuthError::BadTokenMac)?;
            (token_principal(owner), Some(nonce))
        }
        Scheme::ServeradminToken { app_id, mac } => {
            if !settings.serveradmin_schemes {
                return Err(AuthError::ServeradminSchemeOff);
            }
            let owner = lookup_token(directory, app_id)?;
            let message = serveradmin_message(ts, request.body);
            let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(owner.secret.as_bytes())
                .map_err(|_| AuthError::BadTokenMac)?;
            m.update(&message);
            m.verify_slice(mac).map_err(|_| AuthError::BadTokenMac)?;
            (token_principal(owner), None)
        }
    };
    if principal.user.disabled {
        return Err(AuthError::UserDisabled(principal.user.name));
    }
    if let Some(nonce) = nonce {
        let scoped = format!("{}:{}", principal.user.name, nonce);
        let fresh = directory
            .remember_nonce(&scoped, ts + settings.window_secs + 1, now)
            .map_err(AuthError::Directory)?;
        if !fresh {
            return Err(AuthError::ReplayedNonce(nonce.clone()));
        }
    }
    Ok(principal)
}

/// `SHA256:...` fingerprint of a public key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// SHA-1 hex of a token: its `X-Application` id.
pub fn token_app_id(token: &str) -> String {
    use sha1::Digest as _;
    hex::encode(sha1::Sha1::digest(token.as_bytes()))
}

fn verify_keys<S>(
    presented: &[(KeyData, S)],
    directory: &dyn Directory,
    verify: impl Fn(&KeyData, &S) -> Result<(), AuthError>,
) -> Result<Principal, AuthError> {
    let fingerprints: Vec<String> = presented.iter().map(|(k, _)| fingerprint(k)).collect();
    let owners = directory
        .key_owners(&fingerprints)
        .map_err(AuthError::Directory)?;
    if owners.is_empty() {
        return Err(AuthError::UnknownKey {
            count: fingerprints.len(),
            fingerprints: fingerprints.join(", "),
        });
    }
    let users: BTreeSet<&str> = owners.iter().map(|o| o.user.name.as_str()).collect();
    if users.len() > 1 {
        return Err(AuthError::SeveralUsers(
            users.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    let mut verified = Vec::new();
    for ((key, sig), fp) in presented.iter().zip(&fingerprints) {
        if !owners.iter().any(|o| &o.fingerprint == fp) || verified.contains(fp) {
            continue;
        }
        verify(key, sig)?;
        verified.push(fp.clone());
    }
    let user = owners
        .into_iter()
        .next()
        .map(|o| o.user)
        .ok_or(AuthError::NoCredentials)?;
    Ok(Principal {
        user,
        via: Via::Keys(verified),
    })
}

/// Refuse SHA-1 RSA unless the legacy setting is on, and anything but
/// Ed25519, ECDSA and RSA.
fn check_algorithm(key: &KeyData, sig: &Signature, settings: &Settings) -> Result<(), AuthError> {
    match sig.algorithm() {
        Algorithm::Rsa { hash: None } if !settings.legacy_ssh_rsa => Err(AuthError::Sha1Refused {
            fingerprint: fingerprint(key),
        }),
        Algorithm::Rsa { .. } | Algorithm::Ed25519 | Algorithm::Ecdsa { .. } => Ok(()),
        other => Err(AuthError::UnsupportedAlgorithm {
            fingerprint: fingerprint(key),
            algorithm: other.as_str().to_string(),
        }),
    }
}

fn verify_raw(key: &KeyData, message: &[u8], sig: &Signature) -> Result<(), AuthError> {
    use ::signature::Verifier as _;
    if sig.algorithm().is_rsa() != key.algorithm().is_rsa()
        || (!sig.algorithm().is_rsa() && sig.algorithm() != key.algorithm())
    {
        return Err(bad_signature(key));
    }
    key.verify(message, sig).map_err(|_| bad_signature(key))
}

fn bad_signature(key: &KeyData) -> AuthError {
    AuthError::BadSignature {
        fingerprint: fingerprint(key),
    }
}

fn lookup_token(directory: &dyn Directory, app_id: &str) -> Result<TokenOwner, AuthError> {
    directory
        .token(app_id)
        .map_err(AuthError::Directory)?
        .ok_or_else(|| AuthError::UnknownToken(app_id.to_string()))
}

fn token_principal(owner: TokenOwner) -> Principal {
    Principal {
        user: owner.user,
        via: Via::Token(owner.name),
    }
}
