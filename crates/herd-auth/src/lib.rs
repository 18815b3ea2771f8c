//! Request authentication: the canonical signed message ([`canonical`]),
//! signing on the client ([`signer`]: ssh-agent, key files, tokens),
//! verification on the server ([`verify::authenticate`] → [`Principal`]), the
//! replay window and principals. It knows nothing about HTTP frameworks or
//! databases: headers arrive as a lookup function, users and nonces through
//! the [`Directory`] trait.

pub mod agent;
pub mod canonical;
pub mod error;
pub mod headers;
pub mod keys;
pub mod signer;
pub mod verify;

pub use error::{AuthError, SignError};
pub use headers::Credentials;
pub use signer::{AgentSigner, KeyFileSigner, TokenSigner};
pub use verify::{
    authenticate, Account, Directory, KeyOwner, Principal, Request, Settings, TokenOwner, Via,
};

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
