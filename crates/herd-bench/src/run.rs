//! Load the fleet, run the measurements, print the table.

use crate::fleet::{Fleet, Params};
use anyhow::{bail, Context};
use herd_client::{Change, Client, Commit, Value};
use herd_store::auth::{AuthStore, StoredKey, User};
use herd_store::Store;
use herd_store_sqlite::auth::SqliteAuthStore;
use herd_store_sqlite::SqliteStore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Settings {
    pub clients: usize,
    pub duration: Duration,
    pub sequential: usize,
    pub batch: usize,
    /// Sign every request: a key is made in this directory and registered
    /// for an admin user, and the server authenticates.
    pub sign_dir: Option<PathBuf>,
    /// Which of the five queries to run (a-e).
    pub queries: Vec<char>,
    /// Also time the queries directly on the store.
    pub in_process: bool,
    /// PostgreSQL: answer queries from the read cache.
    pub read_cache: bool,
}

/// serveradmin 4.26 on the same kind of machine (fleet-100k README):
/// requests/s with 4 concurrent clients, and sequential p50 in ms.
const SERVERADMIN_RPS: [f64; 5] = [74.0, 25.0, 6.8, 21.0, 21.0];
const SERVERADMIN_P50_MS: [f64; 5] = [21.0, 69.0, 274.0, 98.0, 94.0];
const SERVERADMIN_COMMIT_P50_MS: f64 = 55.0;
const QUERIES: [char; 5] = ['a', 'b', 'c', 'd', 'e'];

fn expected_count(id: char, p: &Params) -> usize {
    match id {
        'a' => 1,
        'b' => p.game_world_count,
        'c' => p.regexp_count,
        'd' => p.hypervisor_count,
        _ => p.net24_count,
    }
}

pub fn run(fleet: &Fleet, params: &Params, db: &Path, settings: &Settings) -> anyhow::Result<()> {
    let bench = fleet.bench_params()?;
    let query_for = |id: char, i: usize, _: &Params| herd_store::fleet::query(&bench, id, i);
    let (store, auth): (Arc<dyn Store>, Arc<dyn AuthStore>) =
        match db.to_str().filter(|d| d.starts_with("postgres")) {
            Some(url) => {
                // --db postgres://... (pg)
                let options = herd_store_postgres::PgOptions {
                    read_cache: settings.read_cache,
                    ..Default::default()
                };
                let pg = Arc::new(herd_store_postgres::PgStore::open(url, &options)?);
                (pg.clone(), pg)
            }
            None => {
                let sqlite = Arc::new(
                    SqliteStore::open(db)
                        .with_context(|| format!("cannot open {}", db.display()))?,
                );
                let auth = Arc::new(SqliteAuthStore::shared(Arc::clone(&sqlite))?);
                (sqlite, auth)
            }
        };
    let key = match &settings.sign_dir {
        Some(dir) => Some(register_bench_key(auth.as_ref(), dir)?),
        None => None,
    };
    let mut state = herd_server::AppState::new(
        Arc::clone(&store),
        herd_server::Settings {
            // The loader sends thousands of objects per commit.
            body_limit: 512 * 1024 * 1024,
            anonymous_author: "herd-bench".to_string(),
        },
    );
    if key.is_some() {
        state = state.with_auth(herd_server::auth::Auth {
            store: auth,
            settings: herd_auth::Settings::default(),
        });
    }
    let addr = start_server(state)?;
    let url = format!("http://{addr}");
    let make_client = || -> anyhow::Result<Client> {
        // Loopback: compression would only cost CPU (serveradmin's adminapi
        // does not ask for it either).
        let client = Client::new(&url)?.without_compression();
        Ok(match &key {
            Some(path) => client.with_signer(Box::new(
                herd_auth::KeyFileSigner::load(path, None)
                    .with_context(|| format!("cannot load key {}", path.display()))?,
            )),
            None => client,
        })
    };
    let client = make_client()?;
    println!("# herd-bench: fleet {}, server {url}", fleet.dir.display());
    println!(
        "# {} concurrent clients, {:.1} s per concurrent run, {} sequential requests; signed: {}",
        settings.clients,
        settings.duration.as_secs_f64(),
        settings.sequential,
        if key.is_some() {
            "yes (Ed25519 key file, herd's SSHSIG scheme)"
        } else {
            "no"
        }
    );
    println!();

    if store.schema()?.servertypes.is_empty() {
        load(fleet, &client, settings.batch)?;
    } else {
        println!(
            "database {} already loaded; skipping the load",
            db.display()
        );
    }

    for id in QUERIES {
        let n = client.query(&query_for(id, 0, params))?.len();
        let expected = expected_count(id, params);
        if n != expected {
            bail!("query {id} returned {n} objects, the fleet's parameters say {expected}");
        }
    }

    println!();
    println!("| query | results | herd req/s ({c} clients, HTTP) | serveradmin req/s | ratio | herd p50 ms (sequential HTTP) | serveradmin p50 ms | herd p50 ms (in process) | herd req/s ({c} threads, in process) |", c = settings.clients);
    println!("|---|---|---|---|---|---|---|---|---|");
    for (k, id) in QUERIES.into_iter().enumerate() {
        if !settings.queries.contains(&id) {
            continue;
        }
        let clients = (0..settings.clients)
            .map(|_| make_client())
            .collect::<anyhow::Result<Vec<_>>>()?;
        let http = concurrent(settings.clients, settings.duration, |t, i| {
            clients[t]
                .query(&query_for(id, i * settings.clients + t, params))
                .map(|r| r.len())
                .map_err(anyhow::Error::from)
        })?;
        let seq = sequential(settings.sequential, |i| {
            client
                .query(&query_for(id, i, params))
                .map(|r| r.len())
                .map_err(anyhow::Error::from)
        })?;
        let (in_process_p50, in_process_rate) = if settings.in_process {
            // What the server does for a query: the answer as JSON bytes.
            let seq = sequential(settings.sequential, |i| {
                store
                    .query_json(&query_for(id, i, params))
                    .map(|r| r.len())
                    .map_err(anyhow::Error::from)
            })?;
            let conc = concurrent(settings.clients, settings.duration, |t, i| {
                store
                    .query_json(&query_for(id, i * settings.clients + t, params))
                    .map(|r| r.len())
                    .map_err(anyhow::Error::from)
            })?;
            (
                format!("{:.2}", seq.p50_ms()),
                format!("{:.0}", conc.rate()),
            )
        } else {
            ("—".to_string(), "—".to_string())
        };
        println!(
            "| {id} | {} | {:.0} | {} | {:.0}× | {:.2} | {} | {} | {} |",
            expected_count(id, params),
            http.rate(),
            SERVERADMIN_RPS[k],
            http.rate() / SERVERADMIN_RPS[k],
            seq.p50_ms(),
            SERVERADMIN_P50_MS[k],
            in_process_p50,
            in_process_rate,
        );
    }

    // The commit: num_cpu of one VM, compare-and-swap on the value read.
    let vm = client.get(&params.commit_hostname)?;
    let id = vm.object_id().context("commit VM has no object_id")?;
    let mut current = number(vm.get("num_cpu"));
    let seq = sequential(settings.sequential, |_| {
        let next = if current == 64 { 1 } else { current + 1 };
        let mut commit = Commit::default();
        commit.changed.push(Change::new(id).update(
            "num_cpu",
            Value::number(current),
            Value::number(next),
        ));
        client.commit(&commit)?;
        current = next;
        Ok(1)
    })?;
    // Concurrent commits, each client on its own VM (no conflicts).
    let targets: Vec<(Client, i64, std::sync::Mutex<i64>)> = (0..settings.clients)
        .map(|t| -> anyhow::Result<_> {
            let c = make_client()?;
            let vm = c.get(&params.hostnames[t + 1])?;
            let id = vm.object_id().context("no object_id")?;
            let n = number(vm.get("num_cpu"));
            Ok((c, id, std::sync::Mutex::new(n)))
        })
        .collect::<anyhow::Result<_>>()?;
    let http = concurrent(settings.clients, settings.duration, |t, _| {
        let (c, id, n) = &targets[t];
        let mut n = n.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let next = if *n == 64 { 1 } else { *n + 1 };
        let mut commit = Commit::default();
        commit.changed.push(Change::new(*id).update(
            "num_cpu",
            Value::number(*n),
            Value::number(next),
        ));
        c.commit(&commit)?;
        *n = next;
        Ok(1)
    })?;
    println!(
        "| commit (1 change) | — | {:.0} | — | — | {:.2} | {} | — | — |",
        http.rate(),
        seq.p50_ms(),
        SERVERADMIN_COMMIT_P50_MS
    );
    Ok(())
}

fn number(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(1),
        _ => 1,
    }
}

/// Make an Ed25519 key with ssh-keygen in `dir` and register it for the
/// admin user `bench`; returns the private key file.
fn register_bench_key(auth: &dyn AuthStore, dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("bench_ed25519");
    if !path.exists() {
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "herd-bench", "-f"])
            .arg(&path)
            .status()
            .context("cannot run ssh-keygen")?;
        if !status.success() {
            bail!("ssh-keygen failed ({status})");
        }
    }
    let public = std::fs::read_to_string(path.with_extension("pub"))?;
    let key = herd_auth::keys::parse_public_key(&public)?;
    if auth.user("bench").is_err() {
        auth.add_user(&User {
            name: "bench".to_string(),
            admin: true,
            read_only: false,
            disabled: false,
        })?;
    }
    if auth
        .keys(Some("bench"))?
        .iter()
        .all(|k| k.fingerprint != key.fingerprint)
    {
        auth.add_key(&StoredKey {
            fingerprint: key.fingerprint.clone(),
            user: "bench".to_string(),
            algorithm: key.algorithm.clone(),
            public_key: key.openssh,
        })?;
    }
    Ok(path)
}

fn start_server(state: herd_server::AppState) -> anyhow::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        if let Err(e) = herd_server::run(addr, state, |bound| {
            let _ = tx.send(bound);
        }) {
            eprintln!("server failed: {e}");
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .context("the server did not start")
}

fn load(fleet: &Fleet, client: &Client, batch: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    client.change_schema(&fleet.schema_changes()?)?;
    let hypervisors = fleet.hypervisors()?;
    let vms = fleet.vms()?;
    let read = started.elapsed();
    let total = hypervisors.len() + vms.len();
    let t = Instant::now();
    client.commit(&Commit {
        created: hypervisors,
        ..Commit::default()
    })?;
    let mut done = 0;
    for chunk in vms.chunks(batch.max(1)) {
        client.commit(&Commit {
            created: chunk.to_vec(),
            ..Commit::default()
        })?;
        done += chunk.len();
        eprint!("\rloaded {done} VMs");
    }
    eprintln!();
    let load = t.elapsed();
    println!(
        "loaded {total} objects through the API in {:.1} s ({:.0} objects/s, commits of {batch}); reading the files took {:.1} s",
        load.as_secs_f64(),
        total as f64 / load.as_secs_f64(),
        read.as_secs_f64()
    );
    Ok(())
}

/// What a run measured.
struct Measured {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let mut l = self.latencies.clone();
        l.sort();
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l[i].as_secs_f64() * 1000.0
    }

    fn p50_ms(&self) -> f64 {
        self.percentile_ms(0.5)
    }
}

/// `threads` workers call `f(thread, i)` until `duration` is over.
fn concurrent(
    threads: usize,
    duration: Duration,
    f: impl Fn(usize, usize) -> anyhow::Result<usize> + Sync,
) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let results: Vec<anyhow::Result<Vec<Duration>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let mut i = 0;
                    while start.elapsed() < duration {
                        let t0 = Instant::now();
                        f(t, i)?;
                        lat.push(t0.elapsed());
                        i += 1;
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("worker panicked")))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut latencies = Vec::new();
    for r in results {
        latencies.extend(r?);
    }
    let m = Measured {
        requests: latencies.len(),
        elapsed,
        latencies,
    };
    eprintln!(
        "  concurrent: {} requests in {:.2} s, p50 {:.2} ms, p99 {:.2} ms",
        m.requests,
        m.elapsed.as_secs_f64(),
        m.p50_ms(),
        m.percentile_ms(0.99)
    );
    Ok(m)
}

/// `f(i)` called `n` times one after another.
fn sequential(
    n: usize,
    mut f: impl FnMut(usize) -> anyhow::Result<usize>,
) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        f(i)?;
        latencies.push(t0.elapsed());
    }
    let m = Measured {
        requests: n,
        elapsed: start.elapsed(),
        latencies,
    };
    eprintln!(
        "  sequential: {} requests, p50 {:.3} ms, p99 {:.3} ms",
        m.requests,
        m.p50_ms(),
        m.percentile_ms(0.99)
    );
    Ok(m)
}
