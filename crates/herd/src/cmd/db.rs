//! `herd db`: the inventory database itself — which engine a `--db` names,
//! copying an installation between engines, comparing two of them, and
//! applying PostgreSQL migrations.
//!
//! A database is named by a path or URL: `sqlite:PATH` or a plain path is
//! the embedded SQLite file, `postgres://...` (or `postgresql://...`) a
//! PostgreSQL database.

use super::exit::{self, Exit};
use super::Global;
use herd_store::auth::AuthStore;
use herd_store::{Store, StoreError};
use herd_store_postgres::copy::{self, Export};
use herd_store_postgres::{redact, PgOptions, PgStore};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  herd db copy --from sqlite:/var/lib/herd/inventory.sqlite --to postgres://herd@db1/herd
  herd db copy --from sqlite:herd.sqlite --to postgres://herd@db1/herd --dry-run
  herd db check --from sqlite:herd.sqlite --to postgres://herd@db1/herd
  herd db migrate --db postgres://herd@db1/herd

Stop `herd serve` on the SQLite file before copying (the file is locked
while a server runs). The target PostgreSQL database must be empty: create
it with `createdb -O herd herd`.")]
pub struct Args {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum DbCommand {
    /// Copy schema, objects (with their ids), history and users into an
    /// empty PostgreSQL database, then check that both hold the same.
    Copy(CopyArgs),
    /// Check that two databases hold the same schema, objects and history.
    Check(CheckArgs),
    /// Apply herd's schema migrations to a PostgreSQL database (servers
    /// also do this on start).
    Migrate(MigrateArgs),
}

#[derive(clap::Args, Debug)]
pub struct CopyArgs {
    /// Source database: `sqlite:PATH`, a path, or `postgres://...`.
    #[arg(long)]
    pub from: String,
    /// Target PostgreSQL database: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    #[arg(long)]
    pub to: String,
    /// Read the source and report what would be copied; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[arg(long)]
    pub from: String,
    #[arg(long)]
    pub to: String,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// PostgreSQL database URL.
    #[arg(long, env = "HERD_DB")]
    pub db: String,
}

pub fn run(_global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        DbCommand::Copy(a) => copy_cmd(a),
        DbCommand::Check(a) => check_cmd(a),
        DbCommand::Migrate(a) => {
            open_postgres(&a.db)?;
            println!(
                "{}: herd schema is at migration {}",
                redact(&a.db),
                herd_store_postgres::migration_count()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The engine a `--db` value names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Engine {
    pub fn parse(db: &str) -> Engine {
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            Engine::Postgres(db.to_owned())
        } else {
            let path = db.strip_prefix("sqlite:").unwrap_or(db);
            let path = path.strip_prefix("//").unwrap_or(path);
            Engine::Sqlite(PathBuf::from(path))
        }
    }

    fn describe(&self) -> String {
        match self {
            Engine::Sqlite(p) => format!("sqlite:{}", p.display()),
            Engine::Postgres(u) => redact(u),
        }
    }
}

/// The inventory store and the auth store of one database.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub auth: Arc<dyn AuthStore>,
}

/// Opens the database `--db` names (used by `herd serve`): a SQLite file
/// (created on first start) or a PostgreSQL database (migrated on start).
pub fn open(db: &Path) -> Result<Opened, Exit> {
    match Engine::parse(&db.to_string_lossy()) {
        Engine::Postgres(url) => {
            let store = Arc::new(open_postgres(&url)?);
            Ok(Opened {
                store: store.clone(),
                auth: store,
            })
        }
        Engine::Sqlite(path) => {
            let store = herd_store_sqlite::SqliteStore::open(&path).map_err(|e| {
                Exit::new(
                    exit::FAILURE,
                    format!("cannot open the inventory database {}: {e}", path.display()),
                )
            })?;
            let auth = herd_store_sqlite::auth::SqliteAuthStore::open(&path).map_err(|e| {
                Exit::new(
                    exit::FAILURE,
                    format!("cannot open the user database {}: {e}", path.display()),
                )
            })?;
            Ok(Opened {
                store: Arc::new(store),
                auth: Arc::new(auth),
            })
        }
    }
}

fn open_postgres(url: &str) -> Result<PgStore, Exit> {
    open_postgres_with(url, &PgOptions::default())
}

fn open_postgres_with(url: &str, options: &PgOptions) -> Result<PgStore, Exit> {
    PgStore::open(url, options).map_err(|e| Exit::new(exit::FAILURE, e.to_string()))
}

fn store_error(context: &str, e: StoreError) -> Exit {
    let code = match &e {
        StoreError::Conflict(_) => exit::CONFLICT,
        StoreError::NotFound(_) => exit::NOT_FOUND,
        StoreError::Validation(_) => exit::USAGE,
        StoreError::Internal(_) => exit::FAILURE,
    };
    Exit::new(code, format!("{context}: {e}"))
}

/// Users, keys, tokens (with secrets) and groups of one database.
struct Accounts {
    users: Vec<herd_store::auth::User>,
    keys: Vec<herd_store::auth::StoredKey>,
    tokens: Vec<herd_store::auth::StoredToken>,
    groups: Vec<herd_store::auth::AclGroup>,
}

fn read_accounts(auth: &dyn AuthStore) -> Result<Accounts, StoreError> {
    let mut tokens = Vec::new();
    for t in auth.tokens(None)? {
        if let Some((full, _)) = auth.token_by_app_id(&t.app_id)? {
            tokens.push(full);
        }
    }
    Ok(Accounts {
        users: auth.users()?,
        keys: auth.keys(None)?,
        tokens,
        groups: auth.groups()?,
    })
}

fn write_accounts(auth: &dyn AuthStore, a: &Accounts) -> Result<(), StoreError> {
    for u in &a.users {
        auth.add_user(u)?;
    }
    for k in &a.keys {
        auth.add_key(k)?;
    }
    for t in &a.tokens {
        auth.add_token(t)?;
    }
    for g in &a.groups {
        auth.put_group(g)?;
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct CopyReport {
    from: String,
    to: String,
    dry_run: bool,
    servertypes: usize,
    attributes: usize,
    objects: usize,
    commits: usize,
    users: usize,
    keys: usize,
    tokens: usize,
    groups: usize,
    /// Differences found after copying (empty: both hold the same).
    differences: Vec<String>,
}

fn copy_cmd(a: CopyArgs) -> anyhow::Result<ExitCode> {
    let from = Engine::parse(&a.from);
    let Engine::Postgres(to_url) = Engine::parse(&a.to) else {
        return Err(Exit::new(
            exit::USAGE,
            format!(
                "--to {} is not a PostgreSQL URL: copying goes into PostgreSQL (postgres://USER@HOST/DB)",
                a.to
            ),
        )
        .into());
    };
    let progress = |msg: &str| {
        if !a.json {
            eprintln!("{msg}");
        }
    };
    if let Engine::Sqlite(path) = &from {
        if !path.exists() {
            return Err(Exit::new(
                exit::NOT_FOUND,
                format!("--from {}: no such SQLite file", path.display()),
            )
            .into());
        }
    }
    progress(&format!("reading {}", from.describe()));
    let source = open(Path::new(&a.from))?;
    let data =
        copy::export(source.store.as_ref()).map_err(|e| store_error("reading the source", e))?;
    let accounts = read_accounts(source.auth.as_ref())
        .map_err(|e| store_error("reading the source's users", e))?;
    let mut report = CopyReport {
        from: from.describe(),
        to: redact(&to_url),
        dry_run: a.dry_run,
        servertypes: data.schema.servertypes.len(),
        attributes: data.schema.attributes.len(),
        objects: data.objects.len(),
        commits: data.commits.len(),
        users: accounts.users.len(),
        keys: accounts.keys.len(),
        tokens: accounts.tokens.len(),
        groups: accounts.groups.len(),
        differences: Vec::new(),
    };
    if !a.dry_run {
        progress(&format!(
            "copying {} objects and {} commits into {}",
            report.objects, report.commits, report.to
        ));
        let target = open_postgres(&to_url)?;
        target
            .import(&data)
            .map_err(|e| store_error("writing the target", e))?;
        write_accounts(&target, &accounts)
            .map_err(|e| store_error("copying users, keys and tokens", e))?;
        progress("checking that both databases hold the same objects and history");
        let copied =
            copy::export(&target).map_err(|e| store_error("reading the target back", e))?;
        report.differences = copy::compare(&data, &copied);
    }
    print_report(&report, a.json);
    if !report.differences.is_empty() {
        return Err(Exit::new(
            exit::FAILURE,
            "the copy differs from the source (see above): do not switch servers to it; drop and recreate the target database, then copy again",
        )
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &CopyReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".into())
        );
        return;
    }
    let verb = if r.dry_run { "would copy" } else { "copied" };
    println!(
        "{verb} {} servertypes, {} attributes, {} objects, {} commits, {} users, {} keys, {} tokens, {} groups\n  from {}\n  to   {}",
        r.servertypes, r.attributes, r.objects, r.commits, r.users, r.keys, r.tokens, r.groups, r.from, r.to
    );
    if !r.dry_run {
        if r.differences.is_empty() {
            println!("check: both hold the same schema, objects and history");
        } else {
            for d in &r.differences {
                println!("difference: {d}");
            }
        }
    }
}

fn check_cmd(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let read = |db: &str| -> Result<Export, Exit> {
        let opened = open(Path::new(db))?;
        copy::export(opened.store.as_ref()).map_err(|e| store_error(db, e))
    };
    let (x, y) = (read(&a.from)?, read(&a.to)?);
    let differences = copy::compare(&x, &y);
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "same": differences.is_empty(), "differences": differences })
        );
    } else if differences.is_empty() {
        println!(
            "same: {} objects and {} commits in both",
            x.objects.len(),
            x.commits.len()
        );
    } else {
        for d in &differences {
            println!("difference: {d}");
        }
    }
    if differences.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(exit::FAILURE))
    }
}

/// `herd serve --db postgres://...`: the inventory API on PostgreSQL, with
/// users, keys and the replay memory in the same database (so several
/// servers on one database behave as one). `None` if `db` names SQLite.
pub fn serve_postgres(
    db: &Path,
    addr: std::net::SocketAddr,
    body_limit: usize,
    flags: &super::users::AuthFlags,
    read_cache: bool,
) -> anyhow::Result<Option<ExitCode>> {
    let Engine::Postgres(url) = Engine::parse(&db.to_string_lossy()) else {
        return Ok(None);
    };
    herd_server::init_logging();
    let options = PgOptions {
        read_cache,
        ..PgOptions::default()
    };
    let store = Arc::new(open_postgres_with(&url, &options)?);
    let settings = herd_server::Settings {
        body_limit,
        ..herd_server::Settings::default()
    };
    let mut state = herd_server::AppState::new(store.clone(), settings);
    let users = store
        .users()
        .map_err(|e| store_error("reading the users", e))?;
    let authenticate = match flags.auth {
        super::users::AuthMode::Off => false,
        super::users::AuthMode::On => true,
        super::users::AuthMode::Auto => !users.is_empty(),
    };
    if !authenticate && flags.auth == super::users::AuthMode::Auto {
        eprintln!(
            "note: no users yet, so requests are not authenticated (loopback only); \
             create an administrator and restart"
        );
    }
    if authenticate {
        state = state.with_auth(herd_server::auth::Auth {
            store,
            settings: herd_auth::Settings {
                window_secs: flags.auth_window,
                legacy_ssh_rsa: flags.legacy_ssh_rsa,
                serveradmin_schemes: !flags.no_serveradmin_auth,
                // PostgreSQL keeps the replay memory: it survives restarts.
                nonces_since: None,
            },
        });
    }
    herd_server::run(addr, state, |bound| {
        use std::io::Write;
        // Scripts and tests read this line to learn the port.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{bound}");
        let _ = out.flush();
    })
    .map_err(|e| match e {
        herd_server::ServeError::NotLoopback(_) => Exit::new(exit::REFUSED, e.to_string()),
        other => Exit::new(exit::FAILURE, other.to_string()),
    })?;
    Ok(Some(ExitCode::SUCCESS))
}
