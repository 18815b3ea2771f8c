//! The fleet-100k benchmark, in process: load time, the five queries
//! (p50 and queries/s, one thread and two threads), commit rate, reopen
//! time. The measuring and printing is `herd_store::fleet::bench`, shared
//! with `herd-store-postgres`'s `store` bench.
//!
//!     OUT_DIR=/tmp/fleet/dataset python3 gen_dataset.py && OUT_DIR=/tmp/fleet/dataset python3 make_params.py
//!     cargo bench -p herd-store-sqlite --bench store -- /tmp/fleet/dataset
//!
//! `HERD_BENCH_DB=/tmp/fleet.sqlite` keeps the loaded file and reuses it
//! on the next run. Without a directory argument (as `cargo test --benches` runs it) it
//! prints how to run it and exits.

use std::path::{Path, PathBuf};
use std::time::Instant;

use herd_store::fleet;
use herd_store::fleet::bench::{self, thread_cpu, Work};
use herd_store_sqlite::SqliteStore;

/// glibc's allocator degrades badly on this workload (many small
/// short-lived allocations beside a large long-lived heap); `herd serve`
/// uses mimalloc too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let Some(dir) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        eprintln!("usage: cargo bench -p herd-store-sqlite --bench store -- FLEET_DATASET_DIR");
        return;
    };
    if let Err(e) = run(Path::new(&dir)) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(db) = std::env::var("HERD_BENCH_DB") {
        return run_on(dir, Path::new(&db));
    }
    let tmp = std::env::temp_dir().join(format!("herd-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let db: PathBuf = tmp.join("fleet.sqlite");
    let result = run_on(dir, &db);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn run_on(dir: &Path, db: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let params = fleet::params(dir)?;
    let t = Instant::now();
    let store = SqliteStore::open(db)?;
    if store.is_empty()? {
        bench::load(&store, dir, t)?;
    } else {
        println!(
            "reused {} ({} objects, opened in {:.2} s)",
            db.display(),
            store.len()?,
            t.elapsed().as_secs_f64()
        );
    }
    bench::report(&store, &params, Work::InProcess)?;

    drop(store);
    let t = Instant::now();
    let cpu0 = thread_cpu();
    let reopened = SqliteStore::open(db)?;
    println!(
        "reopen: {} objects loaded from the file in {:.2} s ({:.2} s CPU)",
        reopened.len()?,
        t.elapsed().as_secs_f64(),
        (thread_cpu() - cpu0).as_secs_f64()
    );
    Ok(())
}
