//! herd-store's engine-independent story, run on PostgreSQL twice: with
//! the read cache (queries answered from memory, the default) and without
//! it (queries in SQL). Every case gets a fresh database in one throwaway
//! cluster (started once per run, stopped when the test process exits).

use std::sync::Arc;

use herd_store::Store;
use herd_store_postgres::testing::TempPostgres;
use herd_store_postgres::{PgOptions, PgStore};

fn fresh(read_cache: bool) -> Arc<dyn Store> {
    let cluster = TempPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let options = PgOptions {
        read_cache,
        ..PgOptions::default()
    };
    Arc::new(PgStore::open(&url, &options).unwrap_or_else(|e| panic!("{e}")))
}

mod read_cache {
    fn fresh_store() -> std::sync::Arc<dyn herd_store::Store> {
        super::fresh(true)
    }

    herd_store::conformance_tests!(fresh_store);
}

mod sql_queries {
    fn fresh_store() -> std::sync::Arc<dyn herd_store::Store> {
        super::fresh(false)
    }

    herd_store::conformance_tests!(fresh_store);
}
