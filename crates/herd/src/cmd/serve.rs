//! `herd serve`: the inventory HTTP API on the embedded SQLite store.

use super::exit::{self, Exit};
use super::Global;
use crate::config::{Config, DEFAULT_DB, DEFAULT_LISTEN};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  herd serve                                   # herd.sqlite, 127.0.0.1:8740
  herd serve --db /var/lib/herd/inventory.sqlite --listen 127.0.0.1:8740
  herd serve --listen 127.0.0.1:0              # any free port; the first line says which

The database file is created (with an empty schema) on first start. The
first line on stdout is `listening on http://ADDR`. Until request
authentication is in force, only loopback addresses are accepted.")]
pub struct Args {
    /// SQLite database file (default: `serve.db` in the config file, else herd.sqlite).
    #[arg(long, env = "HERD_DB")]
    pub db: Option<PathBuf>,
    /// Address to listen on (default: `serve.listen` in the config file, else 127.0.0.1:8740).
    #[arg(long, env = "HERD_LISTEN")]
    pub listen: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = herd_server::DEFAULT_BODY_LIMIT)]
    pub max_body: usize,
    /// PostgreSQL only: answer every query in SQL instead of from this
    /// server's in-memory copy of the objects (which costs about as much
    /// memory as the SQLite engine's and is checked against the database
    /// before each query). Also `serve.read_cache = false` in the config file.
    #[arg(long, env = "HERD_NO_READ_CACHE")]
    pub no_read_cache: bool,
    #[command(flatten)]
    pub auth: super::users::AuthFlags,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(global)?;
    let db = args
        .db
        .or(config.serve.db)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    let listen = args
        .listen
        .or(config.serve.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let addr: SocketAddr = listen.parse().map_err(|_| {
        Exit::new(
            exit::USAGE,
            format!("--listen {listen:?} is not an address like 127.0.0.1:8740"),
        )
    })?;
    let read_cache = !args.no_read_cache && config.serve.read_cache.unwrap_or(true);
    if let Some(code) = super::db::serve_postgres(&db, addr, args.max_body, &args.auth, read_cache)?
    {
        return Ok(code); // postgres://... (pg)
    }
    herd_server::init_logging();
    let store = herd_store_sqlite::SqliteStore::open(&db).map_err(|e| {
        Exit::new(
            exit::FAILURE,
            format!("cannot open the inventory database {}: {e}", db.display()),
        )
    })?;
    let settings = herd_server::Settings {
        body_limit: args.max_body,
        ..herd_server::Settings::default()
    };
    let store = Arc::new(store);
    let state = herd_server::AppState::new(store.clone(), settings);
    let state = super::users::with_auth(state, store, &args.auth)?;
    herd_server::run(addr, state, |bound| {
        // Scripts and tests read this line to learn the port.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{bound}");
        let _ = out.flush();
    })
    .map_err(|e| match e {
        herd_server::ServeError::NotLoopback(_) => Exit::new(exit::REFUSED, e.to_string()),
        other => Exit::new(exit::FAILURE, other.to_string()),
    })?;
    Ok(ExitCode::SUCCESS)
}
