//! The fleet-100k benchmark on PostgreSQL, in process: load time, the five
//! queries (p50 and queries/s, one thread and two threads), commit rate.
//! The same work as `herd-store-sqlite`'s `store` bench (both measure and
//! print with `herd_store::fleet::bench`), so the figures sit side by side.
//!
//!     OUT_DIR=/tmp/fleet/dataset python3 gen_dataset.py && OUT_DIR=/tmp/fleet/dataset python3 make_params.py
//!     cargo bench -p herd-store-postgres --bench store -- /tmp/fleet/dataset
//!
//! It starts a throwaway PostgreSQL on loopback with default durability
//! (fsync and synchronous commit on), or uses `HERD_BENCH_PG_URL`
//! (an empty database, or one this bench loaded before). Without a
//! directory argument (as `cargo test --benches` runs it) it prints how to
//! run it and exits.

use std::path::Path;
use std::time::Instant;

use herd_store::fleet;
use herd_store::fleet::bench::{self, Work};
use herd_store_postgres::testing::TempPostgres;
use herd_store_postgres::{PgOptions, PgStore};

fn main() {
    let Some(dir) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        eprintln!("usage: cargo bench -p herd-store-postgres --bench store -- FLEET_DATASET_DIR");
        return;
    };
    if let Err(e) = run(Path::new(&dir)) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(url) = std::env::var("HERD_BENCH_PG_URL") {
        return run_on(dir, &url);
    }
    let cluster = TempPostgres::start_durable()?;
    let url = cluster.fresh_database()?;
    run_on(dir, &url)
}

fn run_on(dir: &Path, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let params = fleet::params(dir)?;
    let t = Instant::now();
    let store = PgStore::open(url, &PgOptions::default())?;
    if store.is_empty()? {
        bench::load(&store, dir, t)?;
    } else {
        println!("reused {}", herd_store_postgres::redact(url));
    }
    bench::report(&store, &params, Work::InServer)?;
    Ok(())
}
