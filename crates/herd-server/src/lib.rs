//! herd's HTTP API: serveradmin's endpoints (`/api/dataset/query`,
//! `/api/dataset/commit`, `/api/dataset/new_object`,
//! `/api/dataset/attributes`, `/api/health_check`) plus herd's own schema
//! and history endpoints, the auth middleware and ACLs. Central items:
//! [`AppState`], [`router`] and [`run`]. Only this crate knows HTTP on the
//! server side; it knows no SQL (it talks to any [`herd_store::Store`]).
//!
//! Request flow: bytes → JSON → model types ([`herd_model::Query`],
//! [`herd_model::Commit`], ...) at the edge of each handler → the store,
//! called on tokio's blocking pool → a `{"status": "success", ...}` body, or
//! an [`ApiError`] mapped to a status in exactly one place (`error.rs`).
//! The wire format is documented in `docs/api.md`.
//!
//! Authentication is layered onto the API routes in one place,
//! [`auth::layer`] (owned by `auth.rs`); it tells handlers who is calling
//! by inserting an [`Author`] request extension, which commits record.

pub mod acl;
pub mod auth;
mod body;
mod dataset;
mod error;
mod extensions;

pub use body::DEFAULT_BODY_LIMIT;
pub use error::{ApiError, X_JSON};

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Extension, Router};
use herd_store::{Store, StoreError};
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;

/// What every handler can reach: the store and the settings.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    /// Users, keys and verifier settings; `None` serves unauthenticated (see auth.rs).
    pub auth: Option<Arc<auth::Auth>>,
}

/// Settings of the HTTP API.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Author recorded for commits when no auth middleware named the caller.
    pub anonymous_author: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            body_limit: DEFAULT_BODY_LIMIT,
            anonymous_author: "anonymous".to_string(),
        }
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> AppState {
        AppState {
            store,
            settings: Arc::new(settings),
            auth: None,
        }
    }

    /// Run a read-only store call and map its error: in place when the
    /// store answers reads from memory ([`Store::fast_reads`]), else on
    /// the blocking pool. In place saves two thread switches per request,
    /// which on a small machine cost more than a point query itself.
    pub async fn read_store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        if self.store.fast_reads() {
            f(self.store.as_ref()).map_err(ApiError::from)
        } else {
            self.with_store(f).await
        }
    }

    /// Run a store call on the blocking pool (the store is synchronous and
    /// may wait on disk or locks) and map its error.
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
            .map_err(ApiError::from)
    }
}

/// Who made a request, as commits record it. The auth middleware inserts it
/// into the request's extensions; without one, commits are recorded under
/// [`Settings::anonymous_author`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author(pub String);

/// The whole HTTP application: API routes, authentication, body limit,
/// gzip, JSON errors for unknown routes and a panic guard.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit;
    let api = Router::new()
        .route("/api/dataset/query", post(dataset::query))
        .route("/api/dataset/commit", post(dataset::commit))
        .route("/api/dataset/new_object", get(dataset::new_object))
        .route("/api/dataset/attributes", get(dataset::attributes))
        .route(
            "/api/schema",
            get(extensions::schema).post(extensions::change_schema),
        )
        .route("/api/history", get(extensions::history));
    // The one place authentication is added (see auth.rs).
    let api = auth::layer(api, &state);
    Router::new()
        // The health check stays unauthenticated, as in serveradmin: load
        // balancers call it.
        .route("/api/health_check", get(dataset::health_check))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(Extension(body::BodyLimit(body_limit)))
        // Fastest gzip: most of the size saving for a fraction of the
        // default level's CPU time, which every large answer pays.
        .layer(
            CompressionLayer::new()
                .gzip(true)
                .quality(tower_http::CompressionLevel::Fastest),
        )
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no endpoint {method} {}; the endpoints are listed in docs/api.md",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} does not accept {method}; see docs/api.md",
        uri.path()
    ))
}

fn panicked(cause: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let text = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    axum::response::IntoResponse::into_response(ApiError::internal(format!(
        "handler panicked: {text}"
    )))
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("refusing to listen on {0}: requests are not authenticated yet, so anyone who can reach that address could read and change the inventory; listen on a loopback address (127.0.0.1 or ::1) instead")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}; is another server using the port?")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the server's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}

/// Whether the server may listen on `addr`: anything but loopback needs
/// authentication in force.
pub fn check_listen_address(addr: SocketAddr, authenticated: bool) -> Result<(), ServeError> {
    if addr.ip().is_loopback() || authenticated {
        Ok(())
    } else {
        Err(ServeError::NotLoopback(addr))
    }
}

/// Bind `addr` and serve `state` until Ctrl-C or SIGTERM. `on_ready` is
/// called with the bound address (the real port when `addr` has port 0)
/// once the server accepts connections.
pub fn run(
    addr: SocketAddr,
    state: AppState,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    check_listen_address(addr, auth::enforced(&state))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("herd-serve")
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        on_ready(bound);
        tracing::info!(%bound, "herd API listening");
        // Without TCP_NODELAY, a response written in two parts (head, then
        // body) waits for the client's delayed ACK: ~40 ms per request.
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%err, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(ServeError::Serve)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, only SIGTERM stops the server.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Log to stderr, filtered by `RUST_LOG` (default: `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_allowed_without_authentication() {
        for addr in ["127.0.0.1:0", "[::1]:8740", "127.0.0.2:1"] {
            assert!(check_listen_address(addr.parse().unwrap(), false).is_ok());
        }
    }

    #[test]
    fn other_addresses_need_authentication() {
        let addr: SocketAddr = "0.0.0.0:8740".parse().unwrap();
        let err = check_listen_address(addr, false).unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(check_listen_address(addr, true).is_ok());
    }
}
