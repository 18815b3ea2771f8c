//! A throwaway PostgreSQL cluster on loopback, for tests (feature `testing`).
//!
//! [`TempPostgres::start`] runs Debian's `initdb` and `pg_ctl` from
//! `/usr/lib/postgresql/<version>/bin` in a fresh temporary directory, on a
//! free port of 127.0.0.1, with its unix socket inside that directory.
//! PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` user (`runuser -u postgres --`).
//!
//! Cleanup happens even when a test panics or its process is killed: a
//! small watchdog shell waits for the test process to exit, then stops the
//! cluster and deletes its directory. Dropping a [`TempPostgres`] does the
//! same at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Why the throwaway cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    #[error("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: install Debian's postgresql (scripts/deps does)")]
    NoBinaries,
    #[error("{step} failed: {detail}")]
    Step { step: String, detail: String },
    #[error("creating database {name}: {source}")]
    CreateDatabase {
        name: String,
        source: postgres::Error,
    },
}

/// A running throwaway cluster; stopped and deleted on drop.
pub struct TempPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    databases: AtomicUsize,
}

impl TempPostgres {
    /// Initialises and starts a cluster (a few seconds), tuned for tests:
    /// no fsync, asynchronous commit.
    pub fn start() -> Result<TempPostgres, TestingError> {
        TempPostgres::start_with(false)
    }

    /// A cluster with PostgreSQL's default durability (fsync, synchronous
    /// commit), as benchmarks need.
    pub fn start_durable() -> Result<TempPostgres, TestingError> {
        TempPostgres::start_with(true)
    }

    fn start_with(durable: bool) -> Result<TempPostgres, TestingError> {
        let bin = server_binaries()?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("herd-pg-")
            .tempdir()
            .map_err(|e| step("creating the temporary directory", e))?
            .keep();
        if as_postgres {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir),
                "chown of the temporary directory to postgres",
            )?;
        }
        let cluster = TempPostgres {
            dir,
            bin,
            port: 0,
            as_postgres,
            databases: AtomicUsize::new(0),
        };
        cluster.watch_parent();
        let data = cluster.dir.join("data");
        run(
            cluster
                .command("initdb")
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data),
            "initdb",
        )?;
        let mut cluster = cluster;
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let tuning = if durable {
                "-c shared_buffers=512MB"
            } else {
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            };
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 {tuning} -c max_connections=200",
                cluster.dir.display()
            );
            let result = run(
                cluster
                    .command("pg_ctl")
                    .args(["-w", "-t", "60", "-D"])
                    .arg(&data)
                    .arg("-l")
                    .arg(cluster.dir.join("log"))
                    .args(["-o", &options, "start"]),
                "pg_ctl start",
            );
            match result {
                Ok(()) => {
                    cluster.port = port;
                    return Ok(cluster);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(TestingError::NoBinaries))
    }

    /// One cluster per test process, started on first use.
    pub fn shared() -> Result<&'static TempPostgres, TestingError> {
        static SHARED: OnceLock<Result<TempPostgres, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| TempPostgres::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| TestingError::Step {
                step: "starting the shared test cluster".into(),
                detail: e.clone(),
            })
    }

    /// The loopback port the cluster listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of a database of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new, empty database and returns its URL.
    pub fn fresh_database(&self) -> Result<String, TestingError> {
        let name = format!(
            "herd_test_{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::SeqCst)
        );
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .map_err(|source| TestingError::CreateDatabase {
                name: name.clone(),
                source,
            })?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|source| TestingError::CreateDatabase {
                name: name.clone(),
                source,
            })?;
        Ok(self.url(&name))
    }

    /// The cluster's directory (data, log and socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Spawns a detached shell that stops the cluster and removes its
    /// directory once this process is gone.
    fn watch_parent(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let runas = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             if [ -f '{dir}/data/postmaster.pid' ]; then {runas}'{pg_ctl}' -D '{dir}/data' -m immediate stop >/dev/null 2>&1; fi; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display(),
            pg_ctl = pg_ctl.display(),
        );
        // The watchdog's own failure only means a leftover temp dir.
        let _ = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn step(what: &str, e: impl std::fmt::Display) -> TestingError {
    TestingError::Step {
        step: what.to_owned(),
        detail: e.to_string(),
    }
}

fn run(command: &mut Command, what: &str) -> Result<(), TestingError> {
    let out = command.output().map_err(|e| step(what, e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(step(
        what,
        format!(
            "{}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `pg_ctl`.
fn server_binaries() -> Result<PathBuf, TestingError> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| TestingError::NoBinaries)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, b)| b)
        .ok_or(TestingError::NoBinaries)
}

fn free_port() -> Result<u16, TestingError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| step("finding a free loopback port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| step("finding a free loopback port", e))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
