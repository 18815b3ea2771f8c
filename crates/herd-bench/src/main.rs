//! `herd-bench`: the inventory benchmark of `shared/bench/fleet-100k` over
//! HTTP. It starts herd's API server in this process on a fresh SQLite file
//! (or uses `--url`), loads the fleet through the API, then runs the five
//! queries and the commit from concurrent clients, and prints requests/s and
//! latencies next to serveradmin's figures. The same work is also timed
//! directly on the store ("in process"), to show what HTTP costs.
//!
//! ```text
//! cargo run --release -p herd-bench -- --generate /work/shared/bench/fleet-100k
//! ```

mod fleet;
mod run;

/// The allocator the `herd` binary (`herd serve`) runs with: the server
/// here must allocate the way the real one does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;
use fleet::Fleet;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Benchmark herd's inventory API on the fleet-100k dataset")]
pub struct Args {
    /// Directory with schema.json, hypervisors.jsonl, vms.jsonl and bench_params.json.
    #[arg(long, conflicts_with = "generate")]
    pub fleet: Option<PathBuf>,
    /// Generate the fleet with the scripts in this directory (fleet-100k) into a temp dir.
    #[arg(long)]
    pub generate: Option<PathBuf>,
    /// Number of VMs to generate.
    #[arg(long, default_value_t = 100_000)]
    pub vms: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Seconds each concurrent measurement runs.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Requests per sequential (one client) latency measurement.
    #[arg(long, default_value_t = 200)]
    pub sequential: usize,
    /// Objects per commit while loading.
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
    /// SQLite file to use (default: a temporary one). Must be new or a
    /// database this tool loaded before (then loading is skipped).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Sign every request (Ed25519, herd's SSHSIG scheme) and have the
    /// server verify it: a key is made with ssh-keygen and registered for
    /// an admin user `bench`.
    #[arg(long)]
    pub sign: bool,
    /// Run only these of the five queries (letters a-e), e.g. `--queries cd`.
    #[arg(long, default_value = "abcde", value_parser = parse_queries)]
    pub queries: String,
    /// Skip the in-process measurements (HTTP only: handy under a profiler).
    #[arg(long)]
    pub http_only: bool,
    /// PostgreSQL only: answer queries in SQL, without the read cache.
    #[arg(long)]
    pub no_read_cache: bool,
}

fn parse_queries(s: &str) -> Result<String, String> {
    match s.chars().find(|c| !"abcde".contains(*c)) {
        Some(c) => Err(format!(
            "unknown query {c:?}: the fleet's queries are a, b, c, d and e"
        )),
        None if s.is_empty() => Err("name at least one query (a-e)".to_string()),
        None => Ok(s.to_string()),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let fleet = match (&args.fleet, &args.generate) {
        (Some(dir), _) => Fleet { dir: dir.clone() },
        (None, Some(generator)) => {
            eprintln!(
                "generating {} VMs with {} ...",
                args.vms,
                generator.display()
            );
            Fleet::generate(generator, tmp.path(), args.vms)?
        }
        (None, None) => anyhow::bail!("give --fleet DIR or --generate FLEET_100K_DIR"),
    };
    let params = fleet.params().context("fleet parameters")?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| tmp.path().join("bench.sqlite"));
    let settings = run::Settings {
        clients: args.clients,
        duration: Duration::from_secs_f64(args.seconds),
        sequential: args.sequential,
        batch: args.batch,
        sign_dir: args.sign.then(|| tmp.path().to_path_buf()),
        queries: args.queries.chars().collect(),
        in_process: !args.http_only,
        read_cache: !args.no_read_cache,
    };
    run::run(&fleet, &params, &db, &settings)
}
