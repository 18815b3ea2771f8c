//! Header names and parsing them into [`Credentials`]: pure, no crypto.

use crate::error::AuthError;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use ssh_key::{encoding::Decode, public::KeyData, Signature, SshSig};

pub const TIMESTAMP: &str = "x-timestamp";
pub const NONCE: &str = "x-nonce";
pub const HERD_SIGNATURES: &str = "x-herd-signatures";
pub const HERD_TOKEN_MAC: &str = "x-herd-token-mac";
pub const PUBLIC_KEYS: &str = "x-publickeys";
pub const SIGNATURES: &str = "x-signatures";
pub const APPLICATION: &str = "x-application";
pub const SECURITY_TOKEN: &str = "x-securitytoken";

/// Most keys one request may carry (serveradmin's clients send every agent key).
pub const MAX_KEYS: usize = 20;

/// Parsed credentials of one request. Nothing here is verified yet.
#[derive(Debug)]
pub struct Credentials {
    pub timestamp: i64,
    pub scheme: Scheme,
}

/// The four ways a request can be signed.
#[derive(Debug)]
pub enum Scheme {
    /// herd's scheme: SSHSIG signatures (each carries its key) over the
    /// canonical request.
    HerdKeys {
        nonce: String,
        signatures: Vec<SshSig>,
    },
    /// herd's scheme with a token: HMAC-SHA256 over the canonical request.
    HerdToken {
        nonce: String,
        app_id: String,
        mac: Vec<u8>,
    },
    /// serveradmin: raw SSH signatures over `"<ts>:<body>"`, key `i` signed
    /// by signature `i`.
    ServeradminKeys { keys: Vec<(KeyData, Signature)> },
    /// serveradmin: HMAC-SHA1 over `"<ts>:<body>"`.
    ServeradminToken { app_id: String, mac: Vec<u8> },
}

impl Scheme {
    /// Short name for logs and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::HerdKeys { .. } => "herd-sshsig",
            Scheme::HerdToken { .. } => "herd-token",
            Scheme::ServeradminKeys { .. } => "serveradmin-ssh",
            Scheme::ServeradminToken { .. } => "serveradmin-token",
        }
    }
}

impl Credentials {
    /// Parse the auth headers. `header(name)` returns the raw value of a
    /// header (lower-case name) if present.
    pub fn parse<'a>(header: impl Fn(&'static str) -> Option<&'a [u8]>) -> Result<Self, AuthError> {
        let text = |name: &'static str| -> Result<Option<&'a str>, AuthError> {
            match header(name) {
                None => Ok(None),
                Some(raw) => std::str::from_utf8(raw)
                    .map(|s| Some(s.trim()))
                    .map_err(|_| malformed(name, "not ASCII text")),
            }
        };
        let herd_sigs = text(HERD_SIGNATURES)?;
        let herd_mac = text(HERD_TOKEN_MAC)?;
        let public_keys = text(PUBLIC_KEYS)?;
        let signatures = text(SIGNATURES)?;
        let application = text(APPLICATION)?;
        let security_token = text(SECURITY_TOKEN)?;

        let mut present = Vec::new();
        if herd_sigs.is_some() {
            present.push("X-Herd-Signatures");
        }
        if herd_mac.is_some() {
            present.push("X-Herd-Token-Mac");
        }
        if public_keys.is_some() || signatures.is_some() {
            present.push("X-PublicKeys/X-Signatures");
        }
        if security_token.is_some() {
            present.push("X-SecurityToken");
        }
        if present.len() > 1 {
            return Err(AuthError::MixedSchemes(present.join(", ")));
        }
        if present.is_empty() {
            return Err(match application {
                Some(_) => AuthError::MissingHeader("X-SecurityToken"),
                None => AuthError::NoCredentials,
            });
        }

        let timestamp = match text(TIMESTAMP)? {
            None => return Err(AuthError::MissingHeader("X-Timestamp")),
            Some(ts) => ts
                .parse::<i64>()
                .map_err(|_| malformed(TIMESTAMP, "expected unix seconds, e.g. 1764778800"))?,
        };

        let scheme = if let Some(sigs) = herd_sigs {
            let nonce = parse_nonce(text(NONCE)?)?;
            let items = split_list(HERD_SIGNATURES, sigs)?;
            let signatures = items
                .iter()
                .map(|item| {
                    let blob = decode_b64(HERD_SIGNATURES, item)?;
                    decode_exact::<SshSig>(&blob).map_err(|e| {
                        malformed(
                            HERD_SIGNATURES,
                            &format!("not an SSHSIG blob ({e}): send the base64 between the armor lines of `ssh-keygen -Y sign` output"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Scheme::HerdKeys { nonce, signatures }
        } else if let Some(mac) = herd_mac {
            let nonce = parse_nonce(text(NONCE)?)?;
            let app_id = parse_app_id(text(APPLICATION)?)?;
            Scheme::HerdToken {
                nonce,
                app_id,
                mac: decode_hex(HERD_TOKEN_MAC, mac)?,
            }
        } else if let Some(token) = security_token {
            let app_id = parse_app_id(text(APPLICATION)?)?;
            Scheme::ServeradminToken {
                app_id,
                mac: decode_hex(SECURITY_TOKEN, token)?,
            }
        } else {
            let keys = public_keys.ok_or(AuthError::MissingHeader("X-PublicKeys"))?;
            let sigs = signatures.ok_or(AuthError::MissingHeader("X-Signatures"))?;
            let keys = split_list(PUBLIC_KEYS, keys)?;
            let sigs = split_list(SIGNATURES, sigs)?;
            if keys.len() != sigs.len() {
                return Err(AuthError::CountMismatch {
                    keys: keys.len(),
                    signatures: sigs.len(),
                });
            }
            let pairs = keys
                .iter()
                .zip(&sigs)
                .map(|(key, sig)| {
                    let key =
                        decode_exact::<KeyData>(&decode_b64(PUBLIC_KEYS, key)?).map_err(|e| {
                            malformed(PUBLIC_KEYS, &format!("not an SSH public key blob ({e})"))
                        })?;
                    let sig =
                        decode_exact::<Signature>(&decode_b64(SIGNATURES, sig)?).map_err(|e| {
                            malformed(SIGNATURES, &format!("not an SSH signature blob ({e})"))
                        })?;
                    Ok((key, sig))
                })
                .collect::<Result<Vec<_>, AuthError>>()?;
            Scheme::ServeradminKeys { keys: pairs }
        };
        Ok(Credentials { timestamp, scheme })
    }
}

fn malformed(header: &'static str, reason: &str) -> AuthError {
    AuthError::Malformed {
        header: display_name(header),
        reason: reason.to_string(),
    }
}

fn display_name(header: &'static str) -> &'static str {
    match header {
        TIMESTAMP => "X-Timestamp",
        NONCE => "X-Nonce",
        HERD_SIGNATURES => "X-Herd-Signatures",
        HERD_TOKEN_MAC => "X-Herd-Token-Mac",
        PUBLIC_KEYS => "X-PublicKeys",
        SIGNATURES => "X-Signatures",
        APPLICATION => "X-Application",
        SECURITY_TOKEN => "X-SecurityToken",
        other => other,
    }
}

/// Comma-separated list, at most [`MAX_KEYS`] items, none empty.
fn split_list<'a>(header: &'static str, value: &'a str) -> Result<Vec<&'a str>, AuthError> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.len() > MAX_KEYS {
        return Err(AuthError::TooManyKeys {
            count: items.len(),
            max: MAX_KEYS,
        });
    }
    if items.iter().any(|i| i.is_empty()) {
        return Err(malformed(header, "empty item in the comma-separated list"));
    }
    Ok(items)
}

fn decode_b64(header: &'static str, value: &str) -> Result<Vec<u8>, AuthError> {
    STANDARD
        .decode(value)
        .map_err(|e| malformed(header, &format!("invalid base64 ({e})")))
}

fn decode_hex(header: &'static str, value: &str) -> Result<Vec<u8>, AuthError> {
    hex::decode(value).map_err(|_| malformed(header, "expected lower-case hex"))
}

/// Decode an SSH wire structure that must fill the whole blob.
fn decode_exact<T: Decode>(mut blob: &[u8]) -> Result<T, String>
where
    T::Error: std::fmt::Display,
{
    let value = T::decode(&mut blob).map_err(|e| e.to_string())?;
    if !blob.is_empty() {
        return Err(format!("{} trailing bytes", blob.len()));
    }
    Ok(value)
}

/// A nonce: 16 to 128 characters of `[A-Za-z0-9_-]` (hex or base64url).
fn parse_nonce(value: Option<&str>) -> Result<String, AuthError> {
    let nonce = value.ok_or(AuthError::MissingHeader("X-Nonce"))?;
    let ok_chars = nonce
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !(16..=128).contains(&nonce.len()) || !ok_chars {
        return Err(malformed(
            NONCE,
            "expected 16 to 128 characters of [A-Za-z0-9_-], e.g. `openssl rand -hex 16`",
        ));
    }
    Ok(nonce.to_string())
}

/// `X-Application`: the SHA-1 hex of the token (40 hex digits).
fn parse_app_id(value: Option<&str>) -> Result<String, AuthError> {
    let app_id = value.ok_or(AuthError::MissingHeader("X-Application"))?;
    if app_id.len() != 40 || !app_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed(
            APPLICATION,
            "expected the 40-digit SHA-1 hex of the token",
        ));
    }
    Ok(app_id.to_ascii_lowercase())
}
