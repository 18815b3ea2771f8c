//! The fleet-100k benchmark on PostgreSQL, in process: load time, the five
//! queries (p50 and queries/s, one thread and two threads), commit rate.
//! The same work as `herd-store-sqlite`'s `store` bench (both use
//! `herd_store::fleet`), so the figures sit side by side.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use herd_model::{Change, Commit, Filter, Query, Value};
use herd_store::fleet;
use herd_store::Store;
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

/// CPU time of the calling thread (the machine is shared; wall time
/// includes waiting for a core).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(url) = std::env::var("HERD_BENCH_PG_URL") {
        return bench(dir, &url);
    }
    let cluster = TempPostgres::start_durable()?;
    let url = cluster.fresh_database()?;
    bench(dir, &url)
}

fn bench(dir: &Path, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let params = fleet::params(dir)?;
    let t = Instant::now();
    let store = Arc::new(PgStore::open(url, &PgOptions::default())?);
    if store.is_empty()? {
        let cpu0 = thread_cpu();
        let n = fleet::load(&*store, dir, 5_000, &mut |_| {})?;
        let load = t.elapsed();
        println!(
            "load: {n} objects in {:.2} s ({:.0} objects/s, 5000 per commit; {:.2} s CPU)",
            load.as_secs_f64(),
            n as f64 / load.as_secs_f64(),
            (thread_cpu() - cpu0).as_secs_f64()
        );
    } else {
        println!("reused {}", herd_store_postgres::redact(url));
    }

    println!("query  results  p50 ms  p99 ms  q/s (1 thread)  CPU ms/query  q/s (2 threads)  +JSON q/s (2 threads)");
    for id in ['a', 'b', 'c', 'd', 'e'] {
        let results = store.query(&fleet::query(&params, id, 0))?.len();
        let runs = if id == 'a' { 20_000 } else { 2_000 };
        let mut lat = Vec::with_capacity(runs);
        let t = Instant::now();
        let cpu0 = thread_cpu();
        for i in 0..runs {
            let q = fleet::query(&params, id, i);
            let s = Instant::now();
            let r = store.query(&q)?;
            lat.push(s.elapsed());
            std::hint::black_box(r);
        }
        let single = runs as f64 / t.elapsed().as_secs_f64();
        let cpu_ms = (thread_cpu() - cpu0).as_secs_f64() * 1e3 / runs as f64;
        lat.sort();
        let two = concurrent(&store, &params, id, runs, false)?;
        let two_json = concurrent(&store, &params, id, runs, true)?;
        println!(
            "{id}      {results:>6}  {:>6.3}  {:>6.3}  {single:>14.0}  {cpu_ms:>12.3}  {two:>15.0}  {two_json:>21.0}",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
        );
    }

    let target = store.query(&Query::filter(
        "hostname",
        Filter::Equals(params.commit_hostname.as_str().into()),
    ))?;
    let id = target[0]
        .object_id()
        .ok_or("commit target has no object_id")?;
    let mut cpu = target[0].get("num_cpu").cloned().unwrap_or(Value::Null);
    let commits = 2_000;
    let mut lat = Vec::with_capacity(commits);
    let t = Instant::now();
    for i in 0..commits {
        let new = Value::number(1 + (i as i64 % 64));
        let c = Commit {
            changed: vec![Change::new(id).update("num_cpu", cpu.clone(), new.clone())],
            ..Commit::default()
        };
        let s = Instant::now();
        store.commit(&c, "bench")?;
        lat.push(s.elapsed());
        cpu = new;
    }
    let rate = commits as f64 / t.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "commit (1 change each): {rate:.0} commits/s = changes/s, p50 {:.3} ms, p99 {:.3} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );

    let vms = store.query(&Query {
        restrict: Some(vec![herd_model::Restrict::Attribute("num_cpu".into())]),
        ..Query::filter("game_world", Filter::LessThanOrEquals(Value::number(5)))
    })?;
    let changes: Vec<Change> = vms
        .iter()
        .filter_map(|o| {
            let old = o.get("num_cpu")?.clone();
            let new = match &old {
                Value::Number(n) => Value::Number(herd_model::Number::new(n.get() + 1.0)?),
                _ => return None,
            };
            Some(Change::new(o.object_id()?).update("num_cpu", old, new))
        })
        .collect();
    let count = changes.len();
    let t = Instant::now();
    store.commit(
        &Commit {
            changed: changes,
            ..Commit::default()
        },
        "bench",
    )?;
    println!(
        "commit ({count} changes in one): {:.0} changes/s",
        count as f64 / t.elapsed().as_secs_f64()
    );

    Ok(())
}

/// Queries/s with two threads sharing the store (the machine has 2 cores).
fn concurrent(
    store: &Arc<PgStore>,
    params: &fleet::BenchParams,
    id: char,
    runs: usize,
    json: bool,
) -> Result<f64, Box<dyn std::error::Error>> {
    let t = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|k| {
            let store = store.clone();
            let params = params.clone();
            std::thread::spawn(move || -> Result<(), String> {
                for i in 0..runs / 2 {
                    let r = store
                        .query(&fleet::query(&params, id, i * 2 + k))
                        .map_err(|e| e.to_string())?;
                    if json {
                        let body = serde_json::to_vec(&r).map_err(|e| e.to_string())?;
                        std::hint::black_box(body);
                    } else {
                        std::hint::black_box(r);
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "bench thread panicked")??;
    }
    Ok(runs as f64 / t.elapsed().as_secs_f64())
}
