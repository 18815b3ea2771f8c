//! The PostgreSQL engine of [`herd_store::Store`] and
//! [`herd_store::auth::AuthStore`]: [`PgStore`], for installations where
//! several stateless herd servers share one database.
//!
//! Everything that must be shared lives in the database: objects, schema,
//! history, users and keys, the replay (nonce) memory, and the locks
//! (migrations run under an advisory lock; commits rely on `SERIALIZABLE`
//! transactions, see `commit`). A server keeps a cache of the schema,
//! checked against the database's schema version in every transaction,
//! and (unless [`PgOptions::read_cache`] is off) a read cache of every
//! object that queries are answered from, checked against the database's
//! versions before each query (`cache`).
//!
//! Addresses are native `inet` values with GiST (`inet_ops`) indexes, so
//! `ContainedBy`, `Contains` and `Overlaps` use an index. This crate knows
//! nothing about HTTP; it speaks the synchronous `Store` trait (callers in
//! async code use `spawn_blocking`).

mod auth;
mod cache;
mod commit;
pub mod copy;
mod pool;
mod query;
mod schema;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use herd_model::{
    ChangeKind, CommitId, CommitRecord, Datetime, DatetimeJson, Object, ObjectChange, ObjectId,
    Query, Schema, SchemaChange, Value,
};
use herd_store::{
    compile_query, Commit, SchemaChangeId, SchemaRecord, Store, StoreError, ValidationError,
};
use herd_store_memory::Dataset;
use postgres::{GenericClient, IsolationLevel};

use crate::cache::ReadCache;
use crate::pool::Pool;
use crate::query::{Catalog, Snapshot};

pub use crate::sql::migration_count;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{url} is not a PostgreSQL URL: {source} (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)")]
    Url {
        url: String,
        source: postgres::Error,
    },
    #[error("cannot connect to PostgreSQL at {url}: {source}; check that the server runs and the URL, user and password are right")]
    Connect {
        url: String,
        source: postgres::Error,
    },
    #[error("applying herd's schema migrations to {url} failed: {source}; the user needs CREATE rights on the database")]
    Migrate {
        url: String,
        source: postgres::Error,
    },
    #[error("{url} was migrated by a newer herd ({applied} migrations; this herd knows {known}): run the newer herd binary on every server of this database")]
    TooNew {
        url: String,
        applied: usize,
        known: usize,
    },
}

/// How to open a [`PgStore`].
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Most connections this server opens at once.
    pub max_connections: usize,
    /// Answer queries from an in-memory copy of the objects, brought up
    /// to date before each query (one round trip when nothing changed).
    /// Costs memory (about as much as the SQLite engine's dataset) and a
    /// full load on the first query; off, every query runs in SQL.
    pub read_cache: bool,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            max_connections: 16,
            read_cache: true,
        }
    }
}

/// A herd store in a PostgreSQL database; cheap to share between threads.
pub struct PgStore {
    pool: Pool,
    catalog: RwLock<Option<(i64, Arc<Catalog>)>>,
    cache: Option<ReadCache>,
}

/// Commits that lose a serialization race are retried this often before
/// the caller is told to retry.
const COMMIT_ATTEMPTS: usize = 20;

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`) and
    /// applies pending migrations.
    pub fn open(url: &str, options: &PgOptions) -> Result<PgStore, OpenError> {
        let shown = redact(url);
        let config: postgres::Config = url.parse().map_err(|source| OpenError::Url {
            url: shown.clone(),
            source,
        })?;
        let pool = Pool::new(config, options.max_connections);
        let mut client = pool.get().map_err(|source| OpenError::Connect {
            url: shown.clone(),
            source,
        })?;
        match sql::migrate(&mut client).map_err(|source| OpenError::Migrate {
            url: shown.clone(),
            source,
        })? {
            sql::Migrated::Current => {}
            sql::Migrated::TooNew { applied } => {
                return Err(OpenError::TooNew {
                    url: shown,
                    applied,
                    known: sql::migration_count(),
                })
            }
        }
        drop(client);
        Ok(PgStore {
            pool,
            catalog: RwLock::new(None),
            cache: options.read_cache.then(ReadCache::default),
        })
    }

    fn client(&self) -> Result<pool::Pooled<'_>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Internal(format!("cannot get a PostgreSQL connection: {e}")))
    }

    /// Runs one statement on a pooled connection, prepared once per
    /// connection (the per-request lookups of authentication: an unprepared
    /// statement costs a second round trip every time).
    fn prepared<T>(
        &self,
        sql: &str,
        run: impl FnOnce(&mut postgres::Client, &postgres::Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut pooled = self.client()?;
        let (client, statements) = pooled.parts();
        let result = statements
            .get(client, sql)
            .and_then(|statement| run(client, &statement));
        if result.is_err() {
            statements.clear();
        }
        result.map_err(internal)
    }

    /// The schema and its derived facts as of this transaction.
    fn catalog(&self, c: &mut impl GenericClient) -> Result<Arc<Catalog>, StoreError> {
        let version = sql::schema_version(c)?;
        self.catalog_at(version, c)
    }

    /// The catalog of schema version `version` (read in this transaction).
    fn catalog_at(
        &self,
        version: i64,
        c: &mut impl GenericClient,
    ) -> Result<Arc<Catalog>, StoreError> {
        if let Ok(guard) = self.catalog.read() {
            if let Some((v, cat)) = &*guard {
                if *v == version {
                    return Ok(cat.clone());
                }
            }
        }
        let catalog = Arc::new(Catalog::new(sql::load_schema(c)?)?);
        if let Ok(mut guard) = self.catalog.write() {
            *guard = Some((version, catalog.clone()));
        }
        Ok(catalog)
    }

    /// Runs `f` in a read-only snapshot transaction.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>, &Catalog) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.client()?;
        let mut tx = read_only(&mut client)?;
        let catalog = self.catalog(&mut tx)?;
        let out = f(&mut tx, &catalog)?;
        tx.commit().map_err(internal)?;
        Ok(out)
    }

    /// Runs `f` on a [`Snapshot`] of one `REPEATABLE READ READ ONLY`
    /// transaction that uses the connection's prepared statements; the
    /// transaction's start and the schema version share one round trip.
    fn read_snapshot<T>(
        &self,
        f: impl FnOnce(&Snapshot<'_, postgres::Client>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut pooled = self.client()?;
        let (client, statements) = pooled.parts();
        let mut tx = query::ReadTx::begin(client)?;
        let catalog = self.catalog_at(tx.schema_version, tx.client())?;
        let out = f(&Snapshot::with_statements(
            tx.client(),
            statements,
            &catalog,
        ))?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` on the read cache once it holds what the database held when
    /// this call began: one round trip for the versions, and a refresh in a
    /// `REPEATABLE READ` transaction if they moved.
    fn cached<T>(&self, cache: &ReadCache, f: impl Fn(&Dataset) -> T) -> Result<T, StoreError> {
        let row = self.prepared(cache::VERSIONS, |c, s| c.query_one(s, &[]))?;
        let (schema_version, data_version): (i64, i64) = (row.get(0), row.get(1));
        if let Some(out) = cache.read(schema_version, data_version, &f)? {
            return Ok(out);
        }
        let mut client = self.client()?;
        let mut tx = read_only(&mut client)?;
        cache.refresh(&mut tx, schema_version, data_version)?;
        tx.commit().map_err(internal)?;
        cache
            .read(schema_version, data_version, &f)?
            .ok_or_else(|| StoreError::Internal("the read cache fell behind its refresh".into()))
    }

    /// Runs `f` in a `SERIALIZABLE` transaction, retrying it from the
    /// start when PostgreSQL reports a serialization failure. With
    /// `data_lock`, the transaction first waits for the other commits'
    /// (`cache::DATA_LOCK`), so it takes its snapshot after they ended and
    /// its data version after theirs.
    fn write<T>(
        &self,
        data_lock: bool,
        mut f: impl FnMut(&mut postgres::Transaction<'_>, &Catalog) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.client()?;
        for attempt in 0..COMMIT_ATTEMPTS {
            let result = (|| {
                let mut tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::Serializable)
                    .start()
                    .map_err(internal)?;
                if data_lock {
                    tx.batch_execute(cache::DATA_LOCK).map_err(internal)?;
                }
                let catalog = self.catalog(&mut tx)?;
                let out = f(&mut tx, &catalog)?;
                tx.commit().map_err(internal)?;
                Ok(out)
            })();
            match result {
                Err(e) if is_retryable(&e) => {
                    // Back off a little, more each time, so racing servers spread out.
                    let jitter = (std::process::id() as u64 + attempt as u64 * 7) % 5;
                    std::thread::sleep(std::time::Duration::from_millis(
                        (attempt as u64 + 1) * 2 + jitter,
                    ));
                }
                other => return other,
            }
        }
        Err(StoreError::Conflict(
            "other commits kept changing the same data at the same time".into(),
        ))
    }

    /// Copies a whole installation into this (empty) database: schema,
    /// objects with their ids, and history with its commit ids. See
    /// [`copy`].
    pub fn import(&self, data: &copy::Export) -> Result<(), StoreError> {
        self.write(false, |tx, _| copy::import(tx, data))?;
        // The schema changed under the cache's version number's nose.
        if let Ok(mut guard) = self.catalog.write() {
            *guard = None;
        }
        Ok(())
    }

    /// Whether the database holds no objects, no history and no schema.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let mut client = self.client()?;
        let row = client
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM server) AND NOT EXISTS (SELECT 1 FROM commit_log)
                    AND NOT EXISTS (SELECT 1 FROM attribute) AND NOT EXISTS (SELECT 1 FROM servertype)
                    AND NOT EXISTS (SELECT 1 FROM schema_log)",
                &[],
            )
            .map_err(internal)?;
        Ok(row.get(0))
    }
}

/// A `REPEATABLE READ READ ONLY` transaction: one snapshot for all it reads.
fn read_only(client: &mut postgres::Client) -> Result<postgres::Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(internal)
}

/// SQLSTATE 40001 (serialization_failure) and 40P01 (deadlock_detected).
const RETRY_MARK: &str = "serialization failure, retry: ";

fn is_retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Internal(m) if m.starts_with(RETRY_MARK))
}

/// Maps a database error; serialization failures are marked for retry.
pub(crate) fn internal(e: postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StoreError::Internal(format!("{RETRY_MARK}{e}"))
        }
        _ => StoreError::Internal(match e.as_db_error() {
            Some(db) => format!("PostgreSQL: {}", db.message()),
            None => format!("PostgreSQL: {e}"),
        }),
    }
}

/// The URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Store for PgStore {
    fn schema(&self) -> Result<Schema, StoreError> {
        self.read(|_, catalog| Ok(catalog.schema.clone()))
    }

    fn query(&self, query: &Query) -> Result<Vec<Object>, StoreError> {
        if let Some(cache) = &self.cache {
            return self.cached(cache, |data| {
                Ok(data.query(&compile_query(query, &data.schema)?))
            })?;
        }
        self.read_snapshot(|snapshot| {
            snapshot.query(&compile_query(query, &snapshot.catalog.schema)?)
        })
    }

    fn query_json(&self, query: &Query) -> Result<Vec<u8>, StoreError> {
        match &self.cache {
            Some(cache) => self.cached(cache, |data| {
                Ok(data.query_json(&compile_query(query, &data.schema)?))
            })?,
            None => serde_json::to_vec(&self.query(query)?)
                .map_err(|e| StoreError::Internal(format!("writing the answer: {e}"))),
        }
    }

    fn commit(&self, commit: &Commit, author: &str) -> Result<CommitId, StoreError> {
        let time = now();
        self.write(true, |tx, catalog| {
            commit::apply(tx, catalog, commit, author, time)
        })
    }

    fn new_object(&self, servertype: &str) -> Result<Object, StoreError> {
        self.read(|_, catalog| schema::template(&catalog.schema, servertype))
    }

    fn object_history(&self, object_id: ObjectId) -> Result<Vec<CommitRecord>, StoreError> {
        self.read(|tx, _| {
            let records = read_history(tx, HistoryOf::Object(object_id))?;
            if records.is_empty() {
                return Err(StoreError::NotFound(format!(
                    "object {object_id} has no history: it never existed"
                )));
            }
            Ok(records)
        })
    }

    fn commit_record(&self, commit_id: CommitId) -> Result<CommitRecord, StoreError> {
        self.read(|tx, _| {
            read_history(tx, HistoryOf::Commit(commit_id))?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::NotFound(format!("there is no commit {commit_id}")))
        })
    }

    fn recent_commits(&self, limit: usize) -> Result<Vec<CommitRecord>, StoreError> {
        self.read(|tx, _| read_history(tx, HistoryOf::Recent(limit)))
    }

    /// The whole batch in one `SERIALIZABLE` transaction, retried from
    /// the start like a commit.
    fn change_schema(
        &self,
        changes: &[SchemaChange],
        author: &str,
    ) -> Result<SchemaChangeId, StoreError> {
        let time = now();
        self.write(false, |tx, catalog| {
            schema::apply_batch(tx, catalog, changes, author, time)
        })
    }

    fn schema_history(&self, limit: usize) -> Result<Vec<SchemaRecord>, StoreError> {
        self.read(|tx, _| schema::history(tx, limit))
    }
}

pub(crate) enum HistoryOf {
    Object(ObjectId),
    Commit(CommitId),
    Recent(usize),
}

/// History rows grouped into records.
pub(crate) fn read_history(
    c: &mut impl GenericClient,
    of: HistoryOf,
) -> Result<Vec<CommitRecord>, StoreError> {
    const COLUMNS: &str =
        "c.commit_id, c.author, c.time, oc.object_id, oc.hostname, oc.kind, oc.attributes::text";
    let rows = match of {
        HistoryOf::Object(o) => c.query(
            &format!(
                "SELECT {COLUMNS} FROM object_change oc JOIN commit_log c USING (commit_id)
                 WHERE oc.object_id = $1 ORDER BY c.commit_id"
            ),
            &[&o],
        ),
        HistoryOf::Commit(id) => c.query(
            &format!(
                "SELECT {COLUMNS} FROM commit_log c LEFT JOIN object_change oc USING (commit_id)
                 WHERE c.commit_id = $1 ORDER BY oc.object_id"
            ),
            &[&id],
        ),
        HistoryOf::Recent(limit) => c.query(
            &format!(
                "SELECT {COLUMNS}
                 FROM (SELECT * FROM commit_log ORDER BY commit_id DESC LIMIT $1) c
                 LEFT JOIN object_change oc USING (commit_id)
                 ORDER BY c.commit_id DESC, oc.object_id"
            ),
            &[&(limit.min(i64::MAX as usize) as i64)],
        ),
    }
    .map_err(internal)?;
    let mut out: Vec<CommitRecord> = Vec::new();
    for r in rows {
        let commit_id: CommitId = r.get(0);
        if out.last().map(|c| c.commit_id) != Some(commit_id) {
            out.push(CommitRecord {
                commit_id,
                author: r.get(1),
                time: DatetimeJson(Datetime { unix: r.get(2) }),
                changes: Vec::new(),
            });
        }
        let Some(object_id) = r.get::<_, Option<ObjectId>>(3) else {
            continue;
        };
        let attributes: String = r.get(6);
        let change = ObjectChange {
            object_id,
            hostname: r.get(4),
            kind: sql::enum_parse::<ChangeKind>(r.get(5))?,
            attributes: serde_json::from_str(&attributes)
                .map_err(|e| StoreError::Internal(format!("history of object {object_id}: {e}")))?,
        };
        if let Some(last) = out.last_mut() {
            last.changes.push(change);
        }
    }
    Ok(out)
}

/// `Value::Null` or an empty set, as the attribute takes it.
pub(crate) fn empty_value(multi: bool) -> Value {
    if multi {
        Value::Set(Vec::new())
    } else {
        Value::Null
    }
}
