//! Authentication of API requests: a middleware in front of every API route
//! (the health check stays open) that buffers the body up to the limit,
//! verifies the credentials with [`herd_auth::authenticate`] against the
//! [`AuthStore`], applies the per-route role rules and the commit ACLs
//! (`acl.rs`), and hands the handler an [`Author`] and the
//! [`herd_auth::Principal`] as request extensions.
//!
//! Contract with `lib.rs`:
//! - [`layer`] wraps the API routes; it is called exactly once, in
//!   `herd_server::router`. Without [`AppState::with_auth`] nothing is added.
//! - [`enforced`] says whether requests are authenticated; while it is
//!   false, `herd serve` listens on loopback addresses only.

use crate::error::ApiError;
use crate::{AppState, Author};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use herd_auth::verify::DirectoryError;
use herd_auth::{AuthError, Credentials, Directory, KeyOwner, Principal, TokenOwner};
use herd_store::auth::{AuthStore, User};
use std::sync::Arc;

/// What the middleware needs: where users live and the verifier settings.
pub struct Auth {
    pub store: Arc<dyn AuthStore>,
    pub settings: herd_auth::Settings,
}

impl AppState {
    /// Authenticate every API request against `auth`.
    pub fn with_auth(mut self, auth: Auth) -> AppState {
        self.auth = Some(Arc::new(auth));
        self
    }
}

/// Add authentication to the API routes.
pub fn layer(api: Router<AppState>, state: &AppState) -> Router<AppState> {
    if state.auth.is_none() {
        return api;
    }
    api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware,
    ))
}

/// Whether every API request is authenticated.
pub fn enforced(state: &AppState) -> bool {
    state.auth.is_some()
}

/// Header names whose repetition is refused (a proxy or client bug, or an
/// attempt to make two components read different values).
const SINGLE_HEADERS: [&str; 8] = [
    herd_auth::headers::TIMESTAMP,
    herd_auth::headers::NONCE,
    herd_auth::headers::HERD_SIGNATURES,
    herd_auth::headers::HERD_TOKEN_MAC,
    herd_auth::headers::PUBLIC_KEYS,
    herd_auth::headers::SIGNATURES,
    herd_auth::headers::APPLICATION,
    herd_auth::headers::SECURITY_TOKEN,
];

async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match authenticate(&state, req).await {
        Ok((req, _principal)) => next.run(req).await,
        Err(err) => err.into_response(),
    }
}

/// Verify `req`; on success return it (body restored) with the principal
/// inserted as extensions.
async fn authenticate(state: &AppState, req: Request) -> Result<(Request, Principal), ApiError> {
    let Some(auth) = state.auth.clone() else {
        return Err(ApiError::internal("auth middleware without auth settings"));
    };
    let limit = state.settings.body_limit;
    let (mut parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(refusal(AuthError::BodyTooLarge { limit }));
    }
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| refusal(AuthError::BodyTooLarge { limit }))?;

    for name in SINGLE_HEADERS {
        if parts.headers.get_all(name).iter().count() > 1 {
            return Err(ApiError::Unauthorized(format!(
                "header {name} appears more than once: send it once"
            )));
        }
    }
    let credentials = Credentials::parse(|name| parts.headers.get(name).map(|v| v.as_bytes()))
        .map_err(refusal)?;
    let method = parts.method.as_str().to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());

    let verify = {
        let auth = Arc::clone(&auth);
        let body = body.clone();
        let method = method.clone();
        let path = path_and_query.clone();
        move || {
            herd_auth::authenticate(
                &credentials,
                herd_auth::Request {
                    method: &method,
                    path_and_query: &path,
                    body: &body,
                },
                herd_auth::signer::unix_now(),
                &auth.settings,
                &StoreDirectory(auth.store.as_ref()),
            )
        }
    };
    // A signature check is ~50 µs of CPU: in place, unless the directory
    // may wait on a network or a disk.
    let verified = if auth.store.fast_reads() {
        verify()
    } else {
        tokio::task::spawn_blocking(verify)
            .await
            .map_err(|e| ApiError::internal(format!("auth task failed: {e}")))?
    };
    let principal = verified.map_err(refusal)?;
    tracing::debug!(principal = %principal, "authenticated");

    crate::acl::check_route(&principal.user, &method, parts.uri.path())
        .map_err(|denied| ApiError::Forbidden(denied.to_string()))?;
    if method == "POST" && parts.uri.path() == "/api/dataset/commit" && !principal.user.admin {
        crate::acl::authorize_commit(state, &auth, &principal, &body).await?;
    }

    parts.extensions.insert(Author(principal.to_string()));
    parts.extensions.insert(principal.clone());
    Ok((Request::from_parts(parts, Body::from(body)), principal))
}

/// Map a refusal to the API error (and its status) it stands for.
fn refusal(err: AuthError) -> ApiError {
    match err.status() {
        403 => ApiError::Forbidden(err.to_string()),
        413 => match err {
            AuthError::BodyTooLarge { limit } => ApiError::PayloadTooLarge { limit },
            other => ApiError::internal(other),
        },
        500 => {
            let cause = match &err {
                AuthError::Directory(source) => source.to_string(),
                other => other.to_string(),
            };
            ApiError::internal(format!("auth directory: {cause}"))
        }
        _ => ApiError::Unauthorized(err.to_string()),
    }
}

/// The [`AuthStore`] seen as the verifier's [`Directory`].
struct StoreDirectory<'a>(&'a dyn AuthStore);

fn account(user: User) -> herd_auth::Account {
    herd_auth::Account {
        name: user.name,
        admin: user.admin,
        read_only: user.read_only,
        disabled: user.disabled,
    }
}

impl Directory for StoreDirectory<'_> {
    fn key_owners(&self, fingerprints: &[String]) -> Result<Vec<KeyOwner>, DirectoryError> {
        Ok(self
            .0
            .key_owners(fingerprints)?
            .into_iter()
            .map(|(fingerprint, user)| KeyOwner {
                fingerprint,
                user: account(user),
            })
            .collect())
    }

    fn token(&self, app_id: &str) -> Result<Option<TokenOwner>, DirectoryError> {
        Ok(self
            .0
            .token_by_app_id(app_id)?
            .map(|(token, user)| TokenOwner {
                name: token.name,
                secret: token.secret,
                user: account(user),
            }))
    }

    fn remember_nonce(
        &self,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, DirectoryError> {
        Ok(self.0.remember_nonce(nonce, expires_at, now)?)
    }
}
