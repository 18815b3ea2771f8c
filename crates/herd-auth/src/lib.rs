//! Request authentication: the canonical signed message, signing (ssh-agent, key files, tokens), verification, the replay window and principals. It knows nothing about HTTP frameworks or databases.

/// Something that can authenticate an outgoing API request: an ssh-agent key,
/// a key file or a token. The client calls it as late as possible, just
/// before sending, so a slow signer cannot make a request stale on arrival.
pub trait Signer: Send + Sync {
    /// Headers to add to the request `method path_and_query` with `body`.
    fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, SignError>;
}

/// Why a request could not be signed.
#[derive(Debug)]
pub struct SignError(pub String);

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SignError {}
