//! The embedded SQLite engine of the `herd_store::Store` trait. It knows nothing about HTTP.
pub mod auth;
