//! Public keys as users register them: parsed once, checked, fingerprinted.

use crate::verify::fingerprint;
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, PublicKey};

/// A public key that herd accepts for signing requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedKey {
    /// `SHA256:...`
    pub fingerprint: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...
    pub algorithm: String,
    /// `algorithm base64 comment`, as in an authorized_keys file.
    pub openssh: String,
}

/// Why a public key cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an OpenSSH public key ({0}): pass the .pub file, e.g. ~/.ssh/id_ed25519.pub")]
    Parse(String),
    #[error("{0} keys are not accepted: use Ed25519, ECDSA (P-256/384/521) or RSA of at least 2048 bits")]
    Algorithm(String),
    #[error("this RSA key has {0} bits; herd accepts RSA keys of at least 2048 bits")]
    RsaTooShort(u32),
}

/// Parse one public key line (`ssh-ed25519 AAAA... comment`).
pub fn parse_public_key(text: &str) -> Result<AcceptedKey, KeyError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| KeyError::Parse("empty input".into()))?;
    let key = PublicKey::from_openssh(line).map_err(|e| KeyError::Parse(e.to_string()))?;
    check_key(key.key_data())?;
    Ok(AcceptedKey {
        fingerprint: fingerprint(key.key_data()),
        algorithm: key.algorithm().as_str().to_string(),
        openssh: key
            .to_openssh()
            .map_err(|e| KeyError::Parse(e.to_string()))?,
    })
}

fn check_key(key: &KeyData) -> Result<(), KeyError> {
    match key {
        KeyData::Ed25519(_) | KeyData::Ecdsa(_) => Ok(()),
        KeyData::Rsa(rsa) => {
            let bits =
                u32::try_from(rsa.n().as_positive_bytes().map_or(0, |b| b.len() * 8)).unwrap_or(0);
            if bits < 2048 {
                return Err(KeyError::RsaTooShort(bits));
            }
            Ok(())
        }
        other => Err(KeyError::Algorithm(match other.algorithm() {
            Algorithm::Rsa { .. } => "ssh-rsa".into(),
            a => a.as_str().to_string(),
        })),
    }
}
