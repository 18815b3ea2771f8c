//! The measuring and printing of the fleet benchmark, shared by every
//! engine's `store` bench so their figures sit side by side: the load, the
//! five queries (p50/p99, q/s on one thread, CPU ms/query, q/s on two
//! threads, and with JSON encoding), then the single-change and big
//! commits. Each bench only opens its engine and calls [`load`] and
//! [`report`].

use std::path::Path;
use std::time::{Duration, Instant};

use herd_model::{Change, Commit, Filter, Number, Query, Restrict, Value};

use super::{BenchParams, FleetError};
use crate::{Store, StoreError};

/// Why a benchmark run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "commit target {0} is not in the store (or has no object_id); \
         regenerate bench_params.json with make_params.py for this dataset"
    )]
    CommitTarget(String),
    #[error("a query thread failed: {0}")]
    Thread(String),
}

/// Where the store does its work, which decides whether the calling
/// thread's CPU time is worth printing for commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// The engine runs on the calling thread (SQLite): commit lines show
    /// CPU time.
    InProcess,
    /// The engine is a server process (PostgreSQL): the calling thread's
    /// CPU time would say little, so commit lines leave it out.
    InServer,
}

/// CPU time of the calling thread (the machine is shared; wall time
/// includes waiting for a core).
pub fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// The `p` quantile (0.0..=1.0) of sorted durations; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Loads the fleet in `dir` into an empty store, 5000 objects per commit,
/// and prints the `load:` line; `opened` is when opening the store began,
/// so the figure includes it.
pub fn load(store: &dyn Store, dir: &Path, opened: Instant) -> Result<usize, BenchError> {
    let cpu0 = thread_cpu();
    let n = super::load(store, dir, 5_000, &mut |_| {})?;
    let load = opened.elapsed();
    println!(
        "load: {n} objects in {:.2} s ({:.0} objects/s, 5000 per commit; {:.2} s CPU)",
        load.as_secs_f64(),
        n as f64 / load.as_secs_f64(),
        (thread_cpu() - cpu0).as_secs_f64()
    );
    Ok(n)
}

/// Runs and prints the five queries, then the commits.
pub fn report(store: &dyn Store, params: &BenchParams, work: Work) -> Result<(), BenchError> {
    queries(store, params)?;
    commits(store, params, work)
}

/// The query table: one line per query.
pub fn queries(store: &dyn Store, params: &BenchParams) -> Result<(), BenchError> {
    println!("query  results  p50 ms  p99 ms  q/s (1 thread)  CPU ms/query  q/s (2 threads)  +JSON q/s (2 threads)");
    for id in ['a', 'b', 'c', 'd', 'e'] {
        let results = store.query(&super::query(params, id, 0))?.len();
        let runs = if id == 'a' { 20_000 } else { 2_000 };
        let mut lat = Vec::with_capacity(runs);
        let t = Instant::now();
        let cpu0 = thread_cpu();
        for i in 0..runs {
            let q = super::query(params, id, i);
            let s = Instant::now();
            let r = store.query(&q)?;
            lat.push(s.elapsed());
            std::hint::black_box(r);
        }
        let single = runs as f64 / t.elapsed().as_secs_f64();
        let cpu_ms = ms(thread_cpu() - cpu0) / runs as f64;
        lat.sort();
        let two = concurrent(store, params, id, runs, false)?;
        let two_json = concurrent(store, params, id, runs, true)?;
        println!(
            "{id}      {results:>6}  {:>6.3}  {:>6.3}  {single:>14.0}  {cpu_ms:>12.3}  {two:>15.0}  {two_json:>21.0}",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
        );
    }
    Ok(())
}

/// Queries/s with two threads sharing the store (the machine has 2
/// cores); with `json`, each result is also encoded as the HTTP layer does.
fn concurrent(
    store: &dyn Store,
    params: &BenchParams,
    id: char,
    runs: usize,
    json: bool,
) -> Result<f64, BenchError> {
    let t = Instant::now();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|k| {
                scope.spawn(move || -> Result<(), BenchError> {
                    for i in 0..runs / 2 {
                        let r = store.query(&super::query(params, id, i * 2 + k))?;
                        if json {
                            let body = serde_json::to_vec(&r)
                                .map_err(|e| BenchError::Thread(e.to_string()))?;
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
            t.join()
                .map_err(|_| BenchError::Thread("bench thread panicked".into()))??;
        }
        Ok::<(), BenchError>(())
    })?;
    Ok(runs as f64 / t.elapsed().as_secs_f64())
}

/// 2000 single-change commits on the params' commit target, then one
/// commit changing `num_cpu` of every VM with `game_world <= 5`.
pub fn commits(store: &dyn Store, params: &BenchParams, work: Work) -> Result<(), BenchError> {
    let target = store.query(&Query::filter(
        "hostname",
        Filter::Equals(params.commit_hostname.as_str().into()),
    ))?;
    let first = target.first();
    let id = first
        .and_then(|o| o.object_id())
        .ok_or_else(|| BenchError::CommitTarget(params.commit_hostname.clone()))?;
    let mut cpu = first
        .and_then(|o| o.get("num_cpu"))
        .cloned()
        .unwrap_or(Value::Null);
    let commits = 2_000;
    let mut lat = Vec::with_capacity(commits);
    let t = Instant::now();
    let cpu0 = thread_cpu();
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
    let cpu_ms = ms(thread_cpu() - cpu0) / commits as f64;
    lat.sort();
    let cpu_each = match work {
        Work::InProcess => format!(", {cpu_ms:.3} ms CPU each"),
        Work::InServer => String::new(),
    };
    println!(
        "commit (1 change each): {rate:.0} commits/s = changes/s, p50 {:.3} ms, p99 {:.3} ms{cpu_each}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
    );

    let vms = store.query(&Query {
        restrict: Some(vec![Restrict::Attribute("num_cpu".into())]),
        ..Query::filter("game_world", Filter::LessThanOrEquals(Value::number(5)))
    })?;
    let changes: Vec<Change> = vms
        .iter()
        .filter_map(|o| {
            let old = o.get("num_cpu")?.clone();
            let new = match &old {
                Value::Number(n) => Value::Number(Number::new(n.get() + 1.0)?),
                _ => return None,
            };
            Some(Change::new(o.object_id()?).update("num_cpu", old, new))
        })
        .collect();
    let count = changes.len();
    let t = Instant::now();
    let cpu0 = thread_cpu();
    store.commit(
        &Commit {
            changed: changes,
            ..Commit::default()
        },
        "bench",
    )?;
    let rate = count as f64 / t.elapsed().as_secs_f64();
    match work {
        Work::InProcess => println!(
            "commit ({count} changes in one): {rate:.0} changes/s ({:.0} changes per CPU second)",
            count as f64 / (thread_cpu() - cpu0).as_secs_f64()
        ),
        Work::InServer => println!("commit ({count} changes in one): {rate:.0} changes/s"),
    }
    Ok(())
}
