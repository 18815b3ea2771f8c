//! SQLite engine of [`AuthStore`]: its own `auth_*` tables beside the
//! inventory's. Every operation is one statement or one transaction, except
//! the replay window's nonces: they live in process memory
//! ([`NonceMemory`], one per database file, shared by every store of the
//! process on that file), because the inventory store already holds the
//! file exclusively for one process (`<db>.lock`), and a write transaction
//! per signed request was most of its cost. A restarted server starts with
//! an empty memory: a request captured less than the replay window before a
//! restart could be replayed once after it.

use herd_store::auth::{AclGroup, AttributeMode, AuthStore, StoredKey, StoredToken, User};
use herd_store::{StoreError, ValidationError};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::SqliteStore;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS auth_users (
    name TEXT PRIMARY KEY,
    admin INTEGER NOT NULL DEFAULT 0,
    read_only INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS auth_keys (
    fingerprint TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES auth_users(name) ON DELETE CASCADE,
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_keys_user ON auth_keys(user);
CREATE TABLE IF NOT EXISTS auth_tokens (
    user TEXT NOT NULL REFERENCES auth_users(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    app_id TEXT NOT NULL UNIQUE,
    secret TEXT NOT NULL,
    PRIMARY KEY (user, name)
);
CREATE TABLE IF NOT EXISTS auth_groups (
    name TEXT PRIMARY KEY,
    query TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('allow', 'deny')),
    attributes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_group_members (
    grp TEXT NOT NULL REFERENCES auth_groups(name) ON DELETE CASCADE,
    user TEXT NOT NULL REFERENCES auth_users(name) ON DELETE CASCADE,
    PRIMARY KEY (grp, user)
);
CREATE TABLE IF NOT EXISTS auth_nonces (
    nonce TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_nonces_expiry ON auth_nonces(expires_at);
";

/// Creates the auth tables if they are missing.
pub fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).map_err(internal)
}

/// [`AuthStore`] over SQLite: either sharing the inventory store's
/// connection (what `herd serve` does: the inventory holds the file
/// exclusively) or with a connection of its own (tools and tests, when no
/// server has the file open).
pub struct SqliteAuthStore {
    conn: Conn,
    /// Beside the inventory's writer connection: a connection of its own
    /// for the lookups every request makes (keys, tokens, groups). In WAL
    /// mode it never waits for a commit writing to disk.
    reader: Option<Mutex<Connection>>,
    nonces: Arc<Mutex<NonceMemory>>,
}

/// The nonces of the replay window still in force: each with its expiry,
/// and the same nonces bucketed by expiry so forgetting the expired ones
/// costs only what is forgotten.
#[derive(Default)]
pub struct NonceMemory {
    expiry: HashMap<String, i64>,
    by_expiry: BTreeMap<i64, Vec<String>>,
}

impl NonceMemory {
    /// Records `nonce` until `expires_at`; `false` if it is recorded and not
    /// expired at `now`. Forgets the nonces expired before `now` first.
    pub fn remember(&mut self, nonce: &str, expires_at: i64, now: i64) -> bool {
        let live = self.by_expiry.split_off(&now);
        let expired = std::mem::replace(&mut self.by_expiry, live);
        for (at, nonces) in expired {
            for n in nonces {
                // A nonce recorded again later has a newer expiry: keep it.
                if self.expiry.get(&n) == Some(&at) {
                    self.expiry.remove(&n);
                }
            }
        }
        if self.expiry.contains_key(nonce) {
            return false;
        }
        self.expiry.insert(nonce.to_owned(), expires_at);
        self.by_expiry
            .entry(expires_at)
            .or_default()
            .push(nonce.to_owned());
        true
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }
}

/// The process's nonce memory for the database file at `path` (one per
/// file, whatever path spelling or store reaches it).
fn nonce_memory(path: &Path) -> Result<Arc<Mutex<NonceMemory>>, StoreError> {
    static MEMORIES: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<NonceMemory>>>>> = OnceLock::new();
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut memories = MEMORIES
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| StoreError::Internal("nonce memory lock poisoned".into()))?;
    Ok(Arc::clone(memories.entry(key).or_default()))
}

enum Conn {
    Own(Mutex<Connection>),
    Shared(Arc<SqliteStore>),
}

impl SqliteAuthStore {
    /// Opens (creating if needed) the database at `path` with a connection
    /// of its own, and migrates the auth tables.
    pub fn open(path: &Path) -> Result<SqliteAuthStore, StoreError> {
        let busy = |e: rusqlite::Error| {
            if matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::DatabaseBusy || f.code == ErrorCode::DatabaseLocked)
            {
                StoreError::Internal(format!(
                    "{} is in use by a running `herd serve`, which holds it exclusively: stop the server to manage users on the file",
                    path.display()
                ))
            } else {
                internal(e)
            }
        };
        let conn = Connection::open(path).map_err(internal)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(internal)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
        )
        .map_err(busy)?;
        conn.execute_batch(SCHEMA).map_err(busy)?;
        Ok(SqliteAuthStore {
            conn: Conn::Own(Mutex::new(conn)),
            reader: None,
            nonces: nonce_memory(path)?,
        })
    }

    /// The auth tables in the inventory store's own database, over its
    /// connection.
    pub fn shared(store: Arc<SqliteStore>) -> Result<SqliteAuthStore, StoreError> {
        {
            let conn = store.conn()?;
            conn.execute_batch("PRAGMA foreign_keys=ON;")
                .map_err(internal)?;
            migrate(&conn)?;
        }
        let reader = Connection::open_with_flags(
            &store.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(internal)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(2))
            .map_err(internal)?;
        Ok(SqliteAuthStore {
            nonces: nonce_memory(&store.path)?,
            reader: Some(Mutex::new(reader)),
            conn: Conn::Shared(store),
        })
    }

    /// Run a lookup on the reader connection (over the inventory's
    /// connection when there is none).
    fn lookup<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.reader {
            Some(reader) => {
                let mut conn = reader
                    .lock()
                    .map_err(|_| StoreError::Internal("auth store lock poisoned".into()))?;
                f(&mut conn)
            }
            None => self.with(f),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.conn {
            Conn::Own(conn) => {
                let mut conn = conn
                    .lock()
                    .map_err(|_| StoreError::Internal("auth store lock poisoned".into()))?;
                f(&mut conn)
            }
            Conn::Shared(store) => {
                let mut conn = store.conn()?;
                f(&mut conn)
            }
        }
    }
}

fn internal(e: rusqlite::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// A name or key that is taken: a validation error with a stable rule name
/// (`user_exists`, `key_owned`, `token_exists`), so the CLI can map it to
/// its conflict exit code and the API to a 400 with a clear message.
pub fn taken(rule: &'static str, message: String) -> StoreError {
    StoreError::Validation(ValidationError::new(rule, message))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        name: row.get(0)?,
        admin: row.get(1)?,
        read_only: row.get(2)?,
        disabled: row.get(3)?,
    })
}

fn get_user(conn: &Connection, name: &str) -> Result<User, StoreError> {
    conn.query_row(
        "SELECT name, admin, read_only, disabled FROM auth_users WHERE name = ?1",
        [name],
        user_from_row,
    )
    .optional()
    .map_err(internal)?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no user '{name}': list users with `herd user list`"
        ))
    })
}

fn group_members(conn: &Connection, group: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT user FROM auth_group_members WHERE grp = ?1 ORDER BY user")
        .map_err(internal)?;
    let rows = stmt.query_map([group], |r| r.get(0)).map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

fn load_groups(
    conn: &Connection,
    sql: &str,
    arg: Option<&str>,
) -> Result<Vec<AclGroup>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(internal)?;
    let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, String, String, String)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    };
    let rows: Vec<_> = match arg {
        Some(a) => stmt.query_map([a], map),
        None => stmt.query_map([], map),
    }
    .map_err(internal)?
    .collect::<Result<_, _>>()
    .map_err(internal)?;
    rows.into_iter()
        .map(|(name, query, mode, attributes)| {
            Ok(AclGroup {
                members: group_members(conn, &name)?,
                name,
                query,
                mode: if mode == "deny" {
                    AttributeMode::Deny
                } else {
                    AttributeMode::Allow
                },
                attributes: attributes
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

impl AuthStore for SqliteAuthStore {
    fn add_user(&self, user: &User) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO auth_users (name, admin, read_only, disabled) VALUES (?1, ?2, ?3, ?4)",
                params![user.name, user.admin, user.read_only, user.disabled],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    taken(
                        "user_exists",
                        format!("user '{}' already exists", user.name),
                    )
                } else {
                    internal(e)
                }
            })?;
            Ok(())
        })
    }

    fn user(&self, name: &str) -> Result<User, StoreError> {
        self.with(|conn| get_user(conn, name))
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare("SELECT name, admin, read_only, disabled FROM auth_users ORDER BY name")
                .map_err(internal)?;
            let rows = stmt.query_map([], user_from_row).map_err(internal)?;
            rows.collect::<Result<_, _>>().map_err(internal)
        })
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), StoreError> {
        self.with(|conn| {
            let n = conn
                .execute(
                    "UPDATE auth_users SET disabled = ?2 WHERE name = ?1",
                    params![name, disabled],
                )
                .map_err(internal)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no user '{name}'")));
            }
            Ok(())
        })
    }

    fn add_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.transaction().map_err(internal)?;
            get_user(&tx, &key.user)?;
            let owner: Option<String> = tx
                .query_row(
                    "SELECT user FROM auth_keys WHERE fingerprint = ?1",
                    [&key.fingerprint],
                    |r| r.get(0),
                )
                .optional()
                .map_err(internal)?;
            if let Some(owner) = owner {
                return Err(taken(
                    "key_owned",
                    format!(
                        "key {} already belongs to user '{owner}': one key belongs to exactly one user; remove it there first (`herd key remove {}`)",
                        key.fingerprint, key.fingerprint
                    ),
                ));
            }
            tx.execute(
                "INSERT INTO auth_keys (fingerprint, user, algorithm, public_key) VALUES (?1, ?2, ?3, ?4)",
                params![key.fingerprint, key.user, key.algorithm, key.public_key],
            )
            .map_err(internal)?;
            tx.commit().map_err(internal)
        })
    }

    fn keys(&self, user: Option<&str>) -> Result<Vec<StoredKey>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT fingerprint, user, algorithm, public_key FROM auth_keys
                     WHERE ?1 IS NULL OR user = ?1 ORDER BY user, fingerprint",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map([user], |r| {
                    Ok(StoredKey {
                        fingerprint: r.get(0)?,
                        user: r.get(1)?,
                        algorithm: r.get(2)?,
                        public_key: r.get(3)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<_, _>>().map_err(internal)
        })
    }

    fn remove_key(&self, fingerprint: &str) -> Result<StoredKey, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "DELETE FROM auth_keys WHERE fingerprint = ?1
                 RETURNING fingerprint, user, algorithm, public_key",
                [fingerprint],
                |r| {
                    Ok(StoredKey {
                        fingerprint: r.get(0)?,
                        user: r.get(1)?,
                        algorithm: r.get(2)?,
                        public_key: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(internal)?
            .ok_or_else(|| {
                StoreError::NotFound(format!("no key {fingerprint}: see `herd key list`"))
            })
        })
    }

    fn key_owners(&self, fingerprints: &[String]) -> Result<Vec<(String, User)>, StoreError> {
        self.lookup(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT k.fingerprint, u.name, u.admin, u.read_only, u.disabled
                     FROM auth_keys k JOIN auth_users u ON u.name = k.user WHERE k.fingerprint = ?1",
                )
                .map_err(internal)?;
            let mut out = Vec::new();
            for fp in fingerprints {
                let found = stmt
                    .query_row([fp], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            User {
                                name: r.get(1)?,
                                admin: r.get(2)?,
                                read_only: r.get(3)?,
                                disabled: r.get(4)?,
                            },
                        ))
                    })
                    .optional()
                    .map_err(internal)?;
                out.extend(found);
            }
            Ok(out)
        })
    }

    fn add_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        self.with(|conn| {
            get_user(conn, &token.user)?;
            conn.execute(
                "INSERT INTO auth_tokens (user, name, app_id, secret) VALUES (?1, ?2, ?3, ?4)",
                params![token.user, token.name, token.app_id, token.secret],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    taken(
                        "token_exists",
                        format!(
                            "user '{}' already has a token named '{}': pick another name or remove it first",
                            token.user, token.name
                        ),
                    )
                } else {
                    internal(e)
                }
            })?;
            Ok(())
        })
    }

    fn tokens(&self, user: Option<&str>) -> Result<Vec<StoredToken>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT user, name, app_id FROM auth_tokens
                     WHERE ?1 IS NULL OR user = ?1 ORDER BY user, name",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map([user], |r| {
                    Ok(StoredToken {
                        user: r.get(0)?,
                        name: r.get(1)?,
                        app_id: r.get(2)?,
                        secret: String::new(),
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<_, _>>().map_err(internal)
        })
    }

    fn remove_token(&self, user: &str, name: &str) -> Result<(), StoreError> {
        self.with(|conn| {
            let n = conn
                .execute(
                    "DELETE FROM auth_tokens WHERE user = ?1 AND name = ?2",
                    params![user, name],
                )
                .map_err(internal)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "user '{user}' has no token '{name}'"
                )));
            }
            Ok(())
        })
    }

    fn token_by_app_id(&self, app_id: &str) -> Result<Option<(StoredToken, User)>, StoreError> {
        self.lookup(|conn| {
            conn.query_row(
                "SELECT t.user, t.name, t.app_id, t.secret, u.admin, u.read_only, u.disabled
                 FROM auth_tokens t JOIN auth_users u ON u.name = t.user WHERE t.app_id = ?1",
                [app_id],
                |r| {
                    Ok((
                        StoredToken {
                            user: r.get(0)?,
                            name: r.get(1)?,
                            app_id: r.get(2)?,
                            secret: r.get(3)?,
                        },
                        User {
                            name: r.get(0)?,
                            admin: r.get(4)?,
                            read_only: r.get(5)?,
                            disabled: r.get(6)?,
                        },
                    ))
                },
            )
            .optional()
            .map_err(internal)
        })
    }

    fn put_group(&self, group: &AclGroup) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.transaction().map_err(internal)?;
            for member in &group.members {
                get_user(&tx, member)?;
            }
            let mode = match group.mode {
                AttributeMode::Allow => "allow",
                AttributeMode::Deny => "deny",
            };
            tx.execute(
                "INSERT INTO auth_groups (name, query, mode, attributes) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET query = ?2, mode = ?3, attributes = ?4",
                params![group.name, group.query, mode, group.attributes.join(",")],
            )
            .map_err(internal)?;
            tx.execute(
                "DELETE FROM auth_group_members WHERE grp = ?1",
                [&group.name],
            )
            .map_err(internal)?;
            for member in &group.members {
                tx.execute(
                    "INSERT OR IGNORE INTO auth_group_members (grp, user) VALUES (?1, ?2)",
                    params![group.name, member],
                )
                .map_err(internal)?;
            }
            tx.commit().map_err(internal)
        })
    }

    fn groups(&self) -> Result<Vec<AclGroup>, StoreError> {
        self.with(|conn| {
            load_groups(
                conn,
                "SELECT name, query, mode, attributes FROM auth_groups ORDER BY name",
                None,
            )
        })
    }

    fn groups_of(&self, user: &str) -> Result<Vec<AclGroup>, StoreError> {
        self.lookup(|conn| {
            load_groups(
                conn,
                "SELECT g.name, g.query, g.mode, g.attributes FROM auth_groups g
                 JOIN auth_group_members m ON m.grp = g.name WHERE m.user = ?1 ORDER BY g.name",
                Some(user),
            )
        })
    }

    fn remove_group(&self, name: &str) -> Result<(), StoreError> {
        self.with(|conn| {
            let n = conn
                .execute("DELETE FROM auth_groups WHERE name = ?1", [name])
                .map_err(internal)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no group '{name}'")));
            }
            Ok(())
        })
    }

    /// Lookups run on a reader connection and nonces live in memory, so
    /// nothing a request needs waits on a commit's disk writes.
    fn fast_reads(&self) -> bool {
        self.reader.is_some()
    }

    fn remember_nonce(&self, nonce: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        let mut nonces = self
            .nonces
            .lock()
            .map_err(|_| StoreError::Internal("nonce memory lock poisoned".into()))?;
        Ok(nonces.remember(nonce, expires_at, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteAuthStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAuthStore::open(&dir.path().join("herd.db")).unwrap();
        (dir, store)
    }

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            admin: false,
            read_only: false,
            disabled: false,
        }
    }

    fn key(fp: &str, owner: &str) -> StoredKey {
        StoredKey {
            fingerprint: fp.into(),
            user: owner.into(),
            algorithm: "ssh-ed25519".into(),
            public_key: "ssh-ed25519 AAAA".into(),
        }
    }

    #[test]
    fn a_key_belongs_to_exactly_one_user() {
        let (_d, s) = store();
        s.add_user(&user("alice")).unwrap();
        s.add_user(&user("bob")).unwrap();
        s.add_key(&key("SHA256:a", "alice")).unwrap();
        let err = s.add_key(&key("SHA256:a", "bob")).unwrap_err();
        assert!(
            matches!(err, StoreError::Validation(ref v) if v.rule == "key_owned" && v.message.contains("already belongs to user 'alice'")),
            "{err}"
        );
        let owners = s
            .key_owners(&["SHA256:a".into(), "SHA256:zzz".into()])
            .unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].1.name, "alice");
        assert_eq!(s.remove_key("SHA256:a").unwrap().user, "alice");
        s.add_key(&key("SHA256:a", "bob")).unwrap();
    }

    #[test]
    fn duplicate_user_is_refused_and_disable_sticks() {
        let (_d, s) = store();
        s.add_user(&user("alice")).unwrap();
        assert!(matches!(
            s.add_user(&user("alice")),
            Err(StoreError::Validation(ref v)) if v.rule == "user_exists"
        ));
        s.set_disabled("alice", true).unwrap();
        assert!(s.user("alice").unwrap().disabled);
        assert!(matches!(
            s.set_disabled("nobody", true),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn nonce_is_accepted_once_until_it_expires() {
        let (_d, s) = store();
        assert!(s.remember_nonce("n1", 100, 50).unwrap());
        assert!(!s.remember_nonce("n1", 100, 60).unwrap());
        // After expiry the row is forgotten.
        assert!(s.remember_nonce("n1", 300, 200).unwrap());
    }

    #[test]
    fn nonces_are_shared_between_two_stores_on_one_database_in_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteAuthStore::open(&dir.path().join("herd.db")).unwrap();
        let b = SqliteAuthStore::open(&dir.path().join("herd.db")).unwrap();
        assert!(a.remember_nonce("shared", 100, 0).unwrap());
        assert!(!b.remember_nonce("shared", 100, 0).unwrap());
        let other = SqliteAuthStore::open(&dir.path().join("other.db")).unwrap();
        assert!(other.remember_nonce("shared", 100, 0).unwrap());
    }

    #[test]
    fn nonce_memory_forgets_only_what_expired() {
        let mut m = NonceMemory::default();
        assert!(m.remember("a", 10, 0));
        assert!(m.remember("b", 20, 0));
        assert!(!m.remember("a", 30, 5));
        assert!(m.remember("a", 30, 11), "a expired at 10");
        assert!(!m.remember("b", 40, 11), "b lives until 20");
        assert_eq!(m.len(), 2);
        // b's bucket expires; a, recorded again with a later expiry, stays.
        assert!(m.remember("c", 50, 21));
        assert_eq!(m.len(), 2, "b forgotten, a and c kept");
        assert!(!m.remember("a", 60, 21));
        assert!(m.remember("a", 60, 31));
        assert!(!m.is_empty());
    }

    #[test]
    fn auth_tables_live_beside_the_inventory_over_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let inventory = Arc::new(SqliteStore::open(&dir.path().join("herd.db")).unwrap());
        let s = SqliteAuthStore::shared(inventory.clone()).unwrap();
        s.add_user(&user("alice")).unwrap();
        assert!(s.remember_nonce("n", 10, 0).unwrap());
        drop(s);
        let again = SqliteAuthStore::shared(inventory).unwrap();
        assert_eq!(again.users().unwrap(), vec![user("alice")]);
        assert!(!again.remember_nonce("n", 10, 0).unwrap());
    }

    #[test]
    fn tokens_and_groups_round_trip() {
        let (_d, s) = store();
        s.add_user(&user("ci")).unwrap();
        let t = StoredToken {
            user: "ci".into(),
            name: "deploy".into(),
            app_id: "ab".repeat(20),
            secret: "s".into(),
        };
        s.add_token(&t).unwrap();
        assert!(
            matches!(s.add_token(&t), Err(StoreError::Validation(ref v)) if v.rule == "token_exists")
        );
        assert_eq!(s.tokens(None).unwrap()[0].secret, "");
        assert_eq!(
            s.token_by_app_id(&"ab".repeat(20))
                .unwrap()
                .unwrap()
                .0
                .secret,
            "s"
        );
        let g = AclGroup {
            name: "web".into(),
            query: "servertype=vm project=web".into(),
            mode: AttributeMode::Deny,
            attributes: vec!["hypervisor".into(), "intern_ip".into()],
            members: vec!["ci".into()],
        };
        s.put_group(&g).unwrap();
        assert_eq!(s.groups_of("ci").unwrap(), vec![g]);
        s.remove_token("ci", "deploy").unwrap();
        assert!(s.token_by_app_id(&"ab".repeat(20)).unwrap().is_none());
    }
}
