//! The store conformance story on a fresh SQLite file per test.

use std::sync::Arc;

use herd_store::Store;
use herd_store_sqlite::SqliteStore;

/// A store on a file in a temporary directory that lives as long as the
/// process (each test gets its own).
fn fresh() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("herd.sqlite")).expect("open store");
    // Keep the directory until the test process exits.
    std::mem::forget(dir);
    Arc::new(store)
}

herd_store::conformance_tests!(fresh);
