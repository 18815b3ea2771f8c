//! The embedded SQLite engine of the `herd_store::Store` trait. It knows
//! nothing about HTTP.
//!
//! Central type: [`SqliteStore`]. The file (created on first open, WAL,
//! migrated by `PRAGMA user_version`) is the source of truth: typed tables
//! for the schema, one row per object (its attribute values as a JSON
//! column), and the commit log with per-object diffs. On open every object is loaded into an in-memory
//! dataset with one ordered index per attribute; queries run there (index
//! range scans for equality, literal regexp prefixes, comparisons and inet
//! containment, the most selective filter first) under a read lock, so
//! they never wait for the disk. Commits are serialized by one writer: plan
//! and validate against the dataset, write one SQLite transaction, then
//! swap the new objects in. A batch of schema changes goes the same way:
//! checked whole against the dataset (`schema_change`), written with its
//! history row in one transaction, then the new schema swapped in. A lock
//! file (`<db>.lock`) keeps a second process from opening the store and
//! changing the file behind the dataset's back; other connections of this
//! process (the auth store) may share the file.

pub mod auth;
mod plan;
mod schema_change;
mod sql;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use herd_model::{CommitId, CommitRecord, Object, ObjectId, Query, Schema, SchemaChange, Value};
use herd_store::{compile_query, Commit, SchemaChangeId, SchemaRecord, Store, StoreError};
use rusqlite::Connection;

use herd_store_memory::Dataset;

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    path: PathBuf,
    /// The writer; also serves history reads.
    conn: Mutex<Connection>,
    data: RwLock<Dataset>,
    /// Held (locked) for the store's lifetime.
    _lock: std::fs::File,
}

fn internal(context: &str, path: &Path, e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == rusqlite::ErrorCode::DatabaseBusy
            || f.code == rusqlite::ErrorCode::DatabaseLocked
        {
            return StoreError::Internal(format!(
                "{context}: {} is in use by another process (another herd serve?); stop it or use another --db",
                path.display()
            ));
        }
    }
    StoreError::Internal(format!("{context} ({}): {e}", path.display()))
}

impl SqliteStore {
    /// Opens the file, creating and migrating it if needed, and loads every
    /// object into memory.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let lock = lock_file(path)?;
        let mut conn = sql::open(path).map_err(|e| internal("opening the database", path, e))?;
        sql::migrate(&mut conn).map_err(|e| internal("migrating the database", path, e))?;
        let data =
            sql::load_dataset(&conn).map_err(|e| internal("loading the database", path, e))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            data: RwLock::new(data),
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of objects.
    pub fn len(&self) -> Result<usize, StoreError> {
        Ok(self.read()?.objects.len())
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Dataset>, StoreError> {
        self.data
            .read()
            .map_err(|_| StoreError::Internal("a commit panicked; restart the server".into()))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Dataset>, StoreError> {
        self.data
            .write()
            .map_err(|_| StoreError::Internal("a commit panicked; restart the server".into()))
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Internal("a commit panicked; restart the server".into()))
    }

    fn sql_error(&self, context: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        let context = context.to_owned();
        move |e| internal(&context, &self.path, e)
    }
}

/// Takes the exclusive lock on `<db>.lock`, so one process at a time
/// serves a database file.
#[allow(clippy::incompatible_msrv)] // File::try_lock: Rust 1.89; the toolchain is newer.
fn lock_file(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            StoreError::Internal(format!(
                "can not create the lock file {}: {e}; check the directory's permissions",
                lock_path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Internal(format!(
            "{} is in use by another process (another herd serve?): stop it or use another --db",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Internal(format!(
            "can not lock {}: {e}",
            lock_path.display()
        ))),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Store for SqliteStore {
    fn schema(&self) -> Result<Schema, StoreError> {
        Ok(self.read()?.schema.clone())
    }

    fn query(&self, query: &Query) -> Result<Vec<Object>, StoreError> {
        let data = self.read()?;
        let compiled = compile_query(query, &data.schema)?;
        Ok(data.query(&compiled))
    }

    fn query_json(&self, query: &Query) -> Result<Vec<u8>, StoreError> {
        let data = self.read()?;
        let compiled = compile_query(query, &data.schema)?;
        Ok(data.query_json(&compiled))
    }

    /// Reads come from the in-memory dataset; a commit holds its write
    /// lock only to swap objects in, never across disk I/O.
    fn fast_reads(&self) -> bool {
        true
    }

    fn commit(&self, commit: &Commit, author: &str) -> Result<CommitId, StoreError> {
        if commit.is_empty() {
            return Err(StoreError::invalid("commit", "the commit changes nothing"));
        }
        let mut conn = self.conn()?;
        let plan = plan::Planner(&*self.read()?).plan(commit)?;
        let id = sql::write_commit(&mut conn, &plan, author, unix_now())
            .map_err(self.sql_error("writing the commit"))?;
        plan::apply(&mut *self.write()?, plan);
        Ok(id)
    }

    fn new_object(&self, servertype: &str) -> Result<Object, StoreError> {
        let data = self.read()?;
        let st = data.schema.servertype(servertype).ok_or_else(|| {
            StoreError::NotFound(format!("servertype {servertype} does not exist"))
        })?;
        let mut o = Object::default();
        o.fields.insert("object_id".into(), Value::Null);
        o.fields.insert("hostname".into(), Value::Null);
        o.fields
            .insert("servertype".into(), Value::String(servertype.into()));
        o.fields.insert("intern_ip".into(), Value::Null);
        for sa in &st.attributes {
            let multi = data.schema.is_multi(&sa.attribute_id);
            let value = match &sa.default_value {
                Some(Value::Set(items)) if multi => Value::set(items.clone()),
                Some(v) if multi => Value::set(vec![v.clone()]),
                Some(v) => v.clone(),
                None if multi => Value::Set(Vec::new()),
                None => Value::Null,
            };
            o.fields.insert(sa.attribute_id.clone(), value);
        }
        Ok(o)
    }

    fn object_history(&self, object_id: ObjectId) -> Result<Vec<CommitRecord>, StoreError> {
        let conn = self.conn()?;
        let records = sql::read_history(&conn, Some(object_id), None, None)
            .map_err(self.sql_error("reading history"))?;
        if records.is_empty()
            && !sql::object_exists(&conn, object_id).map_err(self.sql_error("reading history"))?
            && !self.read()?.objects.contains_key(&object_id)
        {
            return Err(StoreError::NotFound(format!(
                "object {object_id} never existed"
            )));
        }
        Ok(records)
    }

    fn commit_record(&self, commit_id: CommitId) -> Result<CommitRecord, StoreError> {
        let conn = self.conn()?;
        sql::read_history(&conn, None, Some(commit_id), None)
            .map_err(self.sql_error("reading history"))?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("commit {commit_id} does not exist")))
    }

    fn recent_commits(&self, limit: usize) -> Result<Vec<CommitRecord>, StoreError> {
        let conn = self.conn()?;
        sql::read_history(&conn, None, None, Some(limit)).map_err(self.sql_error("reading history"))
    }

    /// Checks the whole batch against the dataset, writes it in one SQLite
    /// transaction, and only then swaps the schema and the stripped objects
    /// into memory.
    fn change_schema(
        &self,
        changes: &[SchemaChange],
        author: &str,
    ) -> Result<SchemaChangeId, StoreError> {
        let mut conn = self.conn()?;
        let plan = schema_change::plan(&*self.read()?, changes)?;
        let id = sql::write_schema_changes(&mut conn, changes, &plan, author, unix_now())
            .map_err(self.sql_error("writing the schema changes"))?;
        let mut data = self.write()?;
        data.set_schema(plan.schema).map_err(StoreError::Internal)?;
        for obj in plan.stripped {
            data.remove(obj.id);
            data.insert(obj);
        }
        Ok(id)
    }

    fn schema_history(&self, limit: usize) -> Result<Vec<SchemaRecord>, StoreError> {
        let conn = self.conn()?;
        sql::read_schema_history(&conn, limit).map_err(self.sql_error("reading schema history"))
    }
}
