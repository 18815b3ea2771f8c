//! Why a request was refused, and why one could not be signed.

/// Why the server refused to authenticate a request. Every variant maps to a
/// status with [`AuthError::status`]; the message is safe to send to the
/// client and says what to do next. Only [`AuthError::Directory`] is internal.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the request is not signed: send X-Timestamp with X-Herd-Signatures (herd's scheme), X-PublicKeys + X-Signatures or X-Application + X-SecurityToken (serveradmin's); see docs/auth.md")]
    NoCredentials,
    #[error("missing header {0}: it is required with the credentials sent; see docs/auth.md")]
    MissingHeader(&'static str),
    #[error("malformed header {header}: {reason}")]
    Malformed {
        header: &'static str,
        reason: String,
    },
    #[error("credentials of several schemes in one request ({0}): send one scheme only")]
    MixedSchemes(String),
    #[error("{count} public keys in one request, at most {max} are allowed: load fewer keys into the agent or pass --key FILE")]
    TooManyKeys { count: usize, max: usize },
    #[error("X-PublicKeys lists {keys} keys but X-Signatures has {signatures} signatures: send one signature per key, in the same order")]
    CountMismatch { keys: usize, signatures: usize },
    #[error("X-Timestamp {timestamp} is {skew} s away from the server's clock (allowed ±{window} s): sync the client's clock (NTP) and sign again")]
    StaleTimestamp {
        timestamp: i64,
        skew: i64,
        window: i64,
    },
    #[error("the request was signed at {timestamp}, before this server started ({since}): it could replay one the previous server accepted, which this one can not tell; sign it again (if this repeats, the client's clock is behind)")]
    SignedBeforeStart { timestamp: i64, since: i64 },
    #[error("signature namespace is '{0}', expected 'herd-api': sign with `ssh-keygen -Y sign -n herd-api`")]
    WrongNamespace(String),
    #[error("the serveradmin signing scheme is switched off on this server: use herd's client or sign with herd's scheme (docs/auth.md)")]
    ServeradminSchemeOff,
    #[error("none of the {count} public key(s) in the request is registered ({fingerprints}): ask an administrator to run `herd key add USER PUBKEY_FILE`")]
    UnknownKey { count: usize, fingerprints: String },
    #[error(
        "unknown token (X-Application {0}): create one with `herd token create USER --name NAME`"
    )]
    UnknownToken(String),
    #[error("the signature of key {fingerprint} does not match this request: it was made by another key or the request changed after signing (body, path, method, timestamp or nonce)")]
    BadSignature { fingerprint: String },
    #[error("the token MAC does not match this request: the token is wrong or the request changed after signing")]
    BadTokenMac,
    #[error("key {fingerprint} signed with ssh-rsa (RSA with SHA-1), which this server refuses: sign with rsa-sha2-256 or rsa-sha2-512 (paramiko: sign_ssh_data(data, algorithm=\"rsa-sha2-512\")), or ask the operator to enable the legacy ssh-rsa setting")]
    Sha1Refused { fingerprint: String },
    #[error("key {fingerprint} has algorithm {algorithm}, which herd does not accept: use Ed25519, ECDSA (P-256/384/521) or RSA")]
    UnsupportedAlgorithm {
        fingerprint: String,
        algorithm: String,
    },
    #[error(
        "the request carries keys of several users ({0}): sign with the keys of one user only"
    )]
    SeveralUsers(String),
    #[error("user '{0}' is disabled: ask an administrator to enable the account")]
    UserDisabled(String),
    #[error("nonce {0} was already used: this is a replayed request; sign every request with a fresh nonce")]
    ReplayedNonce(String),
    #[error("the request body is larger than {limit} bytes, the limit for signed requests")]
    BodyTooLarge { limit: usize },
    #[error("the user directory is unavailable")]
    Directory(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AuthError {
    /// HTTP status for this refusal: 401 for anything about the credentials,
    /// 403 for a known but disabled user, 413 for an oversized body, 500 only
    /// when the directory itself failed.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::UserDisabled(_) => 403,
            AuthError::BodyTooLarge { .. } => 413,
            AuthError::Directory(_) => 500,
            _ => 401,
        }
    }

    /// True when the message must not go to the client (it is logged instead).
    pub fn is_internal(&self) -> bool {
        matches!(self, AuthError::Directory(_))
    }
}

/// Why a request could not be signed on the client.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no ssh-agent: SSH_AUTH_SOCK is not set; start one (`eval $(ssh-agent)` and `ssh-add`), pass --key FILE or set HERD_TOKEN")]
    NoAgent,
    #[error("ssh-agent at {path}")]
    AgentConnect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ssh-agent protocol")]
    Agent(#[from] crate::agent::AgentError),
    #[error("the ssh-agent holds no key herd can sign with: `ssh-add` a key, or pass --key FILE")]
    NoUsableKey,
    #[error("cannot read key file {path}")]
    ReadKey {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an OpenSSH private key ({reason}): pass the private key, e.g. ~/.ssh/id_ed25519")]
    ParseKey { path: String, reason: String },
    #[error("key file {path} is passphrase-protected: set HERD_KEY_PASSPHRASE, run herd on a terminal to be asked, or load the key into ssh-agent")]
    PassphraseNeeded { path: String },
    #[error("wrong passphrase for {path}")]
    WrongPassphrase { path: String },
    #[error("signing with {key} failed: {reason}")]
    Sign { key: String, reason: String },
    #[error("HERD_TOKEN is empty or not printable ASCII: set it to the token `herd token create` printed")]
    BadToken,
    #[error("signing took {seconds} s each time, longer than a request stays fresh ({max_age} s): check the hardware key or the agent")]
    TooSlow { seconds: i64, max_age: i64 },
    #[error("this signer does not produce serveradmin-style signatures")]
    Unsupported,
}
