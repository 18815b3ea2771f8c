//! `herd user|key|token`: API users, their SSH public keys and tokens, and
//! ACL groups (`herd user group`). These commands work on the database
//! directly (`--db`: a SQLite file or a `postgres://` URL, like Django's
//! `createsuperuser`), which is how the first administrator is made.

use super::db::Engine;
use super::exit::{Exit, CONFLICT, FAILURE, NOT_FOUND, USAGE};
use super::Global;
use herd_auth::keys::parse_public_key;
use herd_store::auth::{AclGroup, AttributeMode, AuthStore, StoredKey, StoredToken, User};
use herd_store::StoreError;
use herd_store_postgres::{PgOptions, PgStore};
use herd_store_sqlite::auth::SqliteAuthStore;
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the users live.
#[derive(clap::Args, Debug)]
pub struct DbArgs {
    /// The herd database `herd serve --db` uses: a SQLite file, or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    #[arg(long, env = "HERD_DB", default_value = "herd.sqlite")]
    pub db: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(clap::Subcommand, Debug)]
enum UserCommand {
    /// Create a user (`--admin` for a superuser; the first one is made this way).
    Add {
        name: String,
        /// Superuser: no ACL applies; may change the schema.
        #[arg(long, conflicts_with = "read_only")]
        admin: bool,
        /// May query but not change anything.
        #[arg(long)]
        read_only: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Refuse every request of a user from now on (keys and tokens stay registered).
    Disable {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Accept a disabled user's requests again.
    Enable {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List users with their roles, key and token counts.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// ACL groups: which objects (a query) and attributes members may change.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
}

#[derive(clap::Subcommand, Debug)]
enum GroupCommand {
    /// Create or replace a group.
    ///
    /// Example: `herd user group add web --query 'servertype=vm project=web'
    /// --allow os,comment --member alice --member bob`
    Add {
        name: String,
        /// Text query selecting the objects members may change, create or delete.
        #[arg(long)]
        query: String,
        /// Only these attributes may be changed (comma-separated).
        #[arg(
            long,
            value_delimiter = ',',
            conflicts_with = "deny",
            required_unless_present = "deny"
        )]
        allow: Vec<String>,
        /// Every attribute but these may be changed (comma-separated; may be empty: `--deny ''`).
        #[arg(long, value_delimiter = ',')]
        deny: Option<Vec<String>>,
        /// A member (repeat for more).
        #[arg(long = "member")]
        members: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List groups.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove a group.
    Remove {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KeyCommand {
    /// Register a public key for a user (a key belongs to exactly one user).
    Add {
        user: String,
        /// The .pub file, or `-` to read the key from stdin.
        pubkey_file: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List registered keys.
    List {
        /// Only this user's keys.
        user: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Unregister a key by fingerprint (`SHA256:...`, see `herd key list`).
    Remove {
        fingerprint: String,
        /// Show what would be removed, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TokenCommand {
    /// Create a token for a user; it is printed once and cannot be shown again.
    Create {
        user: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tokens (names only, never secrets).
    List {
        user: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a user's token.
    Remove {
        user: String,
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Print a line to stdout; a closed pipe (`| head`) ends output quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The user tables of the database `--db` names: PostgreSQL for a
/// `postgres://` URL (migrated, as `herd serve` would), else the SQLite file
/// at exactly that path (the one `herd serve --db PATH` opens).
fn open(db: &DbArgs) -> anyhow::Result<Box<dyn AuthStore>> {
    if let Engine::Postgres(url) = Engine::parse(&db.db.to_string_lossy()) {
        let store = PgStore::open(&url, &PgOptions::default())
            .map_err(|e| Exit::new(FAILURE, e.to_string()))?;
        return Ok(Box::new(store));
    }
    let store = SqliteAuthStore::open(&db.db)
        .map_err(|e| exit(e, &format!("cannot open {}", db.db.display())))?;
    Ok(Box::new(store))
}

/// Map a store error to the exit code scripts rely on.
fn exit(err: StoreError, context: &str) -> anyhow::Error {
    let code = match err {
        StoreError::Conflict(_) => CONFLICT,
        StoreError::NotFound(_) => NOT_FOUND,
        StoreError::Validation(ref v)
            if ["user_exists", "key_owned", "token_exists"].contains(&v.rule) =>
        {
            CONFLICT
        }
        StoreError::Validation(_) => USAGE,
        StoreError::Internal(_) => FAILURE,
    };
    let message = if context.is_empty() {
        err.to_string()
    } else {
        format!("{context}: {err}")
    };
    Exit::new(code, message).into()
}

fn ok() -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}

fn check_name(kind: &str, name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if !valid {
        return Err(Exit::new(
            USAGE,
            format!("{kind} name {name:?} is not valid: use 1 to 64 of [A-Za-z0-9._-@]"),
        )
        .into());
    }
    Ok(())
}

pub fn user(_global: &Global, args: UserArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        UserCommand::Add {
            name,
            admin,
            read_only,
            db,
        } => {
            check_name("user", &name)?;
            open(&db)?
                .add_user(&User {
                    name: name.clone(),
                    admin,
                    read_only,
                    disabled: false,
                })
                .map_err(|e| exit(e, ""))?;
            let role = if admin {
                "administrator"
            } else if read_only {
                "read-only user"
            } else {
                "user"
            };
            eprintln!("created {role} '{name}'; register a key with `herd key add {name} ~/.ssh/id_ed25519.pub`");
            ok()
        }
        UserCommand::Disable { name, db } => {
            open(&db)?
                .set_disabled(&name, true)
                .map_err(|e| exit(e, ""))?;
            eprintln!("disabled user '{name}': every request it signs is refused now");
            ok()
        }
        UserCommand::Enable { name, db } => {
            open(&db)?
                .set_disabled(&name, false)
                .map_err(|e| exit(e, ""))?;
            eprintln!("enabled user '{name}'");
            ok()
        }
        UserCommand::List { json, db } => {
            let store = open(&db)?;
            let users = store.users().map_err(|e| exit(e, ""))?;
            let keys = store.keys(None).map_err(|e| exit(e, ""))?;
            let tokens = store.tokens(None).map_err(|e| exit(e, ""))?;
            let count = |name: &str| {
                (
                    keys.iter().filter(|k| k.user == name).count(),
                    tokens.iter().filter(|t| t.user == name).count(),
                )
            };
            if json {
                let rows: Vec<_> = users
                    .iter()
                    .map(|u| {
                        let (k, t) = count(&u.name);
                        json!({"name": u.name, "admin": u.admin, "read_only": u.read_only,
                               "disabled": u.disabled, "keys": k, "tokens": t})
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let mut table = table(&["user", "role", "state", "keys", "tokens"]);
                for u in &users {
                    let (k, t) = count(&u.name);
                    let role = if u.admin {
                        "admin"
                    } else if u.read_only {
                        "read-only"
                    } else {
                        "user"
                    };
                    let state = if u.disabled { "disabled" } else { "active" };
                    table.add_row(vec![
                        u.name.clone(),
                        role.into(),
                        state.into(),
                        k.to_string(),
                        t.to_string(),
                    ]);
                }
                out!("{table}");
            }
            ok()
        }
        UserCommand::Group { command } => group(command),
    }
}

fn group(command: GroupCommand) -> anyhow::Result<ExitCode> {
    match command {
        GroupCommand::Add {
            name,
            query,
            allow,
            deny,
            members,
            db,
        } => {
            check_name("group", &name)?;
            herd_model::parse_query(&query)
                .map_err(|e| Exit::new(USAGE, format!("--query: {}", e.render(&query))))?;
            let (mode, attributes) = match deny {
                Some(deny) => (AttributeMode::Deny, deny),
                None => (AttributeMode::Allow, allow),
            };
            let attributes = attributes.into_iter().filter(|a| !a.is_empty()).collect();
            open(&db)?
                .put_group(&AclGroup {
                    name: name.clone(),
                    query,
                    mode,
                    attributes,
                    members,
                })
                .map_err(|e| exit(e, ""))?;
            eprintln!("group '{name}' saved");
            ok()
        }
        GroupCommand::List { json, db } => {
            let groups = open(&db)?.groups().map_err(|e| exit(e, ""))?;
            if json {
                let rows: Vec<_> = groups
                    .iter()
                    .map(|g| {
                        json!({"name": g.name, "query": g.query,
                               "mode": if g.mode == AttributeMode::Allow { "allow" } else { "deny" },
                               "attributes": g.attributes, "members": g.members})
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let mut table = table(&["group", "query", "attributes", "members"]);
                for g in &groups {
                    let attrs = match g.mode {
                        AttributeMode::Allow => format!("only {}", g.attributes.join(",")),
                        AttributeMode::Deny => format!("all but {}", g.attributes.join(",")),
                    };
                    table.add_row(vec![
                        g.name.clone(),
                        g.query.clone(),
                        attrs,
                        g.members.join(", "),
                    ]);
                }
                out!("{table}");
            }
            ok()
        }
        GroupCommand::Remove { name, db } => {
            open(&db)?.remove_group(&name).map_err(|e| exit(e, ""))?;
            eprintln!("group '{name}' removed");
            ok()
        }
    }
}

pub fn key(_global: &Global, args: KeyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeyCommand::Add {
            user,
            pubkey_file,
            db,
        } => {
            let text = if pubkey_file == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            } else {
                std::fs::read_to_string(&pubkey_file)
                    .map_err(|e| Exit::new(USAGE, format!("cannot read {pubkey_file}: {e}")))?
            };
            let key = parse_public_key(&text).map_err(|e| Exit::new(USAGE, e.to_string()))?;
            open(&db)?
                .add_key(&StoredKey {
                    fingerprint: key.fingerprint.clone(),
                    user: user.clone(),
                    algorithm: key.algorithm.clone(),
                    public_key: key.openssh,
                })
                .map_err(|e| exit(e, ""))?;
            eprintln!(
                "added {} key {} for user '{user}'",
                key.algorithm, key.fingerprint
            );
            ok()
        }
        KeyCommand::List { user, json, db } => {
            let keys = open(&db)?.keys(user.as_deref()).map_err(|e| exit(e, ""))?;
            if json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({"user": k.user, "fingerprint": k.fingerprint,
                                    "algorithm": k.algorithm, "public_key": k.public_key})
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let mut table = table(&["user", "fingerprint", "algorithm", "comment"]);
                for k in &keys {
                    let comment = k.public_key.splitn(3, ' ').nth(2).unwrap_or("").to_string();
                    table.add_row(vec![
                        k.user.clone(),
                        k.fingerprint.clone(),
                        k.algorithm.clone(),
                        comment,
                    ]);
                }
                out!("{table}");
            }
            ok()
        }
        KeyCommand::Remove {
            fingerprint,
            dry_run,
            db,
        } => {
            let store = open(&db)?;
            if dry_run {
                let key = store
                    .keys(None)
                    .map_err(|e| exit(e, ""))?
                    .into_iter()
                    .find(|k| k.fingerprint == fingerprint)
                    .ok_or_else(|| {
                        Exit::new(
                            NOT_FOUND,
                            format!("no key {fingerprint}: see `herd key list`"),
                        )
                    })?;
                eprintln!(
                    "would remove {} key {} of user '{}'",
                    key.algorithm, key.fingerprint, key.user
                );
                return ok();
            }
            let key = store.remove_key(&fingerprint).map_err(|e| exit(e, ""))?;
            eprintln!("removed key {} of user '{}'", key.fingerprint, key.user);
            ok()
        }
    }
}

pub fn token(_global: &Global, args: TokenArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TokenCommand::Create {
            user,
            name,
            json,
            db,
        } => {
            check_name("token", &name)?;
            let secret = herd_auth::signer::new_token()?;
            let app_id = herd_auth::verify::token_app_id(&secret);
            open(&db)?
                .add_token(&StoredToken {
                    user: user.clone(),
                    name: name.clone(),
                    app_id: app_id.clone(),
                    secret: secret.clone(),
                })
                .map_err(|e| exit(e, ""))?;
            if json {
                out!(
                    "{}",
                    json!({"user": user, "name": name, "token": secret, "app_id": app_id})
                );
            } else {
                out!("{secret}");
                eprintln!("token '{name}' for user '{user}' created; it is shown only this once: set HERD_TOKEN={secret} to use it");
            }
            ok()
        }
        TokenCommand::List { user, json, db } => {
            let tokens = open(&db)?
                .tokens(user.as_deref())
                .map_err(|e| exit(e, ""))?;
            if json {
                let rows: Vec<_> = tokens
                    .iter()
                    .map(|t| json!({"user": t.user, "name": t.name, "app_id": t.app_id}))
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let mut table = table(&["user", "token", "X-Application"]);
                for t in &tokens {
                    table.add_row(vec![t.user.clone(), t.name.clone(), t.app_id.clone()]);
                }
                out!("{table}");
            }
            ok()
        }
        TokenCommand::Remove { user, name, db } => {
            open(&db)?
                .remove_token(&user, &name)
                .map_err(|e| exit(e, ""))?;
            eprintln!("revoked token '{name}' of user '{user}'");
            ok()
        }
    }
}

fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(header.to_vec());
    table
}

/// `herd serve`'s authentication flags.
#[derive(clap::Args, Debug, Clone)]
pub struct AuthFlags {
    /// Authenticate requests: `auto` (on as soon as the database has a
    /// user, else off and loopback only), `on`, or `off` (loopback only).
    #[arg(long, value_enum, default_value = "auto", env = "HERD_AUTH")]
    pub auth: AuthMode,
    /// Accept RSA signatures with SHA-1 (`ssh-rsa`), as very old clients send.
    #[arg(long)]
    pub legacy_ssh_rsa: bool,
    /// Refuse serveradmin's signing schemes (no nonce, path not signed).
    #[arg(long)]
    pub no_serveradmin_auth: bool,
    /// Accepted clock skew of signed requests, in seconds.
    #[arg(long, default_value_t = 16)]
    pub auth_window: i64,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Auto,
    On,
    Off,
}

/// Put the auth store (in the inventory's database) and the verifier
/// settings into the server state, as `flags` say.
pub fn with_auth(
    state: herd_server::AppState,
    store: std::sync::Arc<herd_store_sqlite::SqliteStore>,
    flags: &AuthFlags,
) -> anyhow::Result<herd_server::AppState> {
    if flags.auth == AuthMode::Off {
        return Ok(state);
    }
    let auth =
        SqliteAuthStore::shared(store).map_err(|e| exit(e, "cannot open the user tables"))?;
    if flags.auth == AuthMode::Auto && auth.users().map_err(|e| exit(e, ""))?.is_empty() {
        eprintln!(
            "note: no users yet, so requests are not authenticated (loopback only); \
             create an administrator with `herd user add NAME --admin --db FILE` and restart"
        );
        return Ok(state);
    }
    Ok(state.with_auth(herd_server::auth::Auth {
        store: std::sync::Arc::new(auth),
        settings: herd_auth::Settings {
            window_secs: flags.auth_window,
            legacy_ssh_rsa: flags.legacy_ssh_rsa,
            serveradmin_schemes: !flags.no_serveradmin_auth,
            // The SQLite engine keeps the replay memory in this process.
            nonces_since: Some(herd_auth::signer::unix_now()),
        },
    }))
}
