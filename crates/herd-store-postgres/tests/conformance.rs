//! herd-store's engine-independent story, run on PostgreSQL: every case
//! gets a fresh database in one throwaway cluster (started once per run,
//! stopped when the test process exits).

use std::sync::Arc;

use herd_store::Store;
use herd_store_postgres::testing::TempPostgres;
use herd_store_postgres::{PgOptions, PgStore};

fn fresh_store() -> Arc<dyn Store> {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    Arc::new(PgStore::open(&url, &PgOptions::default()).unwrap_or_else(|e| panic!("{e}")))
}

herd_store::conformance_tests!(fresh_store);
