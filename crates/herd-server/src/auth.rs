//! Authentication of API requests. Placeholder written by the API owner so
//! the router has its hook; the auth owner replaces this file.
//!
//! Contract with `lib.rs`:
//! - [`layer`] wraps the API routes (everything but `/api/health_check`)
//!   with the middleware. It is called exactly once, in `herd_server::router`.
//! - The middleware inserts a [`crate::Author`] request extension naming the
//!   caller; commits record it.
//! - [`enforced`] says whether requests are authenticated; while it is
//!   false, `herd serve` listens on loopback addresses only.

use crate::AppState;
use axum::Router;

/// Add authentication to the API routes. Today: none.
pub fn layer(api: Router<AppState>, _state: &AppState) -> Router<AppState> {
    api
}

/// Whether every API request is authenticated.
pub fn enforced(_state: &AppState) -> bool {
    false
}
