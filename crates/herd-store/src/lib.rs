//! The `Store` trait: query, all-or-nothing commits with compare-and-swap on
//! old values, history and schema. Engines live in their own crates
//! (`herd-store-sqlite`, ...); this crate knows no SQL dialect and no HTTP.
//!
//! # Contract every engine keeps
//!
//! - [`Store::query`] checks the query against the schema (unknown attributes,
//!   functions that do not apply to a type, bad regexps and literals are
//!   [`StoreError::Validation`]) and returns objects with `object_id` plus the
//!   restricted fields, relations joined as nested objects, ordered by
//!   `order_by` then `object_id`. No restrict: every attribute of the
//!   object's servertype (computed ones included).
//! - [`Store::commit`] applies created, changed and deleted objects in one
//!   transaction, or nothing. Every `old` value is compared (after typing)
//!   with the stored value at commit time: a mismatch, or a changed or
//!   deleted object that no longer exists, fails the whole commit with
//!   [`StoreError::Conflict`] ("newer data available"), so no update is
//!   ever lost. `multi` changes add and remove single values and commute,
//!   so they never conflict. Validation failures name the
//!   object, the attribute and the rule. A successful commit returns its id
//!   and appears in history with author, time and per-object diffs.
//! - [`Store::change_schema`] applies a batch of schema changes in one
//!   transaction, or nothing. Each change is validated against the schema
//!   the changes before it produce and against the objects that exist; the
//!   first refusal fails the whole batch and names the change
//!   ([`refused_schema_change`]: "schema change 3 of 5 (delete_attribute
//!   os): ..."). A successful batch returns its id and appears in
//!   [`Store::schema_history`] with author, time and every change, as
//!   given; it appears in no object's history.
//! - [`Store::query_json`] returns exactly the bytes `serde_json::to_vec`
//!   makes of [`Store::query`]'s answer; engines may write them directly.
//! - The trait is synchronous; callers in async code use `spawn_blocking`,
//!   except for reads of a store whose [`Store::fast_reads`] is true.
//!
//! [`schema_change`] holds the rules of schema changes every engine
//! applies: engines answer a few facts about their objects and write what
//! [`schema_change::check_schema_changes`] accepted.
//!
//! [`fleet`] loads the benchmark fleet into any store and builds its five
//! queries; the `conformance` feature adds `conformance_tests!`, the
//! story every engine's tests run.
//!
//! Errors map to HTTP status as: `Conflict` 409, `Validation` 400,
//! `NotFound` 404, `Internal` 500 (log it, do not show it).

pub mod auth;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod fleet;
pub mod schema_change;

use herd_model::{
    CommitId, CommitRecord, DatetimeJson, Object, ObjectId, Query, Schema, SchemaChange,
};
use serde::{Deserialize, Serialize};

pub use herd_model::Commit;

/// An inventory store engine.
pub trait Store: Send + Sync + 'static {
    /// The current schema (servertypes and attributes).
    fn schema(&self) -> Result<Schema, StoreError>;

    /// Objects matching the query's filters.
    fn query(&self, query: &Query) -> Result<Vec<Object>, StoreError>;

    /// [`Store::query`]'s answer as the JSON array the API sends, byte for
    /// byte what `serde_json::to_vec` makes of it. Engines that can write
    /// it without building the objects first override this.
    fn query_json(&self, query: &Query) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(&self.query(query)?)
            .map_err(|e| StoreError::Internal(format!("cannot encode the answer: {e}")))
    }

    /// Whether reads (`schema`, `query`, `query_json`, `new_object`) are
    /// answered from memory, without waiting on disk, network or a lock a
    /// writer holds across I/O. The HTTP server then runs them on its own
    /// threads instead of handing them to a blocking pool, which saves two
    /// thread switches per request.
    fn fast_reads(&self) -> bool {
        false
    }

    /// Applies a commit atomically; `author` is recorded in history as given
    /// (for example `"alice (key laptop)"`).
    fn commit(&self, commit: &Commit, author: &str) -> Result<CommitId, StoreError>;

    /// A template for a new object of a servertype: `hostname` and
    /// `intern_ip` null, every attribute at its default (null or empty set).
    fn new_object(&self, servertype: &str) -> Result<Object, StoreError>;

    /// Every commit that touched the object, oldest first, each reduced to
    /// that object's change. Deleted objects keep their history.
    fn object_history(&self, object_id: ObjectId) -> Result<Vec<CommitRecord>, StoreError>;

    /// One commit with all its changes.
    fn commit_record(&self, commit_id: CommitId) -> Result<CommitRecord, StoreError>;

    /// The latest commits, newest first, at most `limit`.
    fn recent_commits(&self, limit: usize) -> Result<Vec<CommitRecord>, StoreError>;

    /// Creates, alters or deletes servertypes and attributes: every change
    /// of the batch, in order, in one transaction, or none. `author` is
    /// recorded in the schema history as given. An empty batch is refused.
    /// A refused change fails the batch with its error passed through
    /// [`refused_schema_change`], so the message names the change.
    fn change_schema(
        &self,
        changes: &[SchemaChange],
        author: &str,
    ) -> Result<SchemaChangeId, StoreError>;

    /// The latest schema change batches, newest first, at most `limit`.
    fn schema_history(&self, limit: usize) -> Result<Vec<SchemaRecord>, StoreError>;
}

/// The id of one applied batch of schema changes; ids grow with time.
pub type SchemaChangeId = i64;

/// One applied batch of schema changes, as history keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRecord {
    pub schema_change_id: SchemaChangeId,
    pub author: String,
    pub time: DatetimeJson,
    /// Every change of the batch, in the order applied.
    pub changes: Vec<SchemaChange>,
}

/// Checks a query against the schema ([`herd_model::compile`]); a refusal
/// is a validation error (400) of rule `query` naming the attribute.
pub fn compile_query(
    query: &Query,
    schema: &Schema,
) -> Result<herd_model::CompiledQuery, StoreError> {
    herd_model::compile(query, schema).map_err(|e| {
        let mut v = ValidationError::new("query", e.message);
        v.attribute = e.attribute;
        StoreError::Validation(v)
    })
}

/// Refuses an empty batch of schema changes.
pub fn empty_schema_batch() -> StoreError {
    StoreError::invalid(
        "schema",
        "the batch holds no schema changes; send at least one",
    )
}

/// `err`, the refusal of change `index` (from 0) of `changes`, naming the
/// change: "schema change 3 of 5 (delete_attribute os): <why>; nothing was
/// applied". Internal errors stay as they are (their text is not shown).
pub fn refused_schema_change(
    index: usize,
    changes: &[SchemaChange],
    err: StoreError,
) -> StoreError {
    let context = format!(
        "schema change {} of {} ({})",
        index + 1,
        changes.len(),
        changes
            .get(index)
            .map(describe_schema_change)
            .unwrap_or_default()
    );
    const TAIL: &str = "; nothing was applied";
    match err {
        StoreError::Validation(mut v) => {
            v.message = format!("{context}: {}{TAIL}", v.message);
            StoreError::Validation(v)
        }
        StoreError::NotFound(m) => StoreError::NotFound(format!("{context}: {m}{TAIL}")),
        StoreError::Conflict(m) => StoreError::Conflict(format!("{context}: {m}")),
        internal @ StoreError::Internal(_) => internal,
    }
}

/// `"delete_attribute os"`: a change's action and the id it concerns.
pub fn describe_schema_change(change: &SchemaChange) -> String {
    match change {
        SchemaChange::CreateAttribute { attribute } => {
            format!("create_attribute {}", attribute.attribute_id)
        }
        SchemaChange::UpdateAttribute { attribute } => {
            format!("update_attribute {}", attribute.attribute_id)
        }
        SchemaChange::DeleteAttribute { attribute_id } => {
            format!("delete_attribute {attribute_id}")
        }
        SchemaChange::CreateServertype { servertype } => {
            format!("create_servertype {}", servertype.servertype_id)
        }
        SchemaChange::UpdateServertype { servertype } => {
            format!("update_servertype {}", servertype.servertype_id)
        }
        SchemaChange::DeleteServertype { servertype_id } => {
            format!("delete_servertype {servertype_id}")
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another commit changed the data since the caller read it.
    #[error("newer data available: {0}; query the object again and retry")]
    Conflict(String),

    /// The request breaks a rule of the schema or the query language.
    #[error("{0}")]
    Validation(#[from] ValidationError),

    /// A named object, commit, servertype or attribute does not exist.
    #[error("{0}")]
    NotFound(String),

    /// The engine failed (I/O, corrupted data): not the caller's fault.
    #[error("internal store error: {0}")]
    Internal(String),
}

/// A broken rule, naming the object (if any), the attribute (if any) and
/// the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{message}", object.as_ref().map(|o| format!("object {o}: ")).unwrap_or_default(), attribute.as_ref().map(|a| format!("attribute {a}: ")).unwrap_or_default())]
pub struct ValidationError {
    /// Hostname (or `#object_id`) of the object concerned.
    pub object: Option<String>,
    pub attribute: Option<String>,
    /// Short rule name, stable for scripts: `hostname`, `unique_ip`,
    /// `network_overlap`, `regexp`, `required`, `type`, `readonly`,
    /// `unknown_attribute`, `multi`, `relation`, `query`, `schema`, ...
    pub rule: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(rule: &'static str, message: impl Into<String>) -> ValidationError {
        ValidationError {
            object: None,
            attribute: None,
            rule,
            message: message.into(),
        }
    }

    pub fn object(mut self, object: impl Into<String>) -> ValidationError {
        self.object = Some(object.into());
        self
    }

    pub fn attribute(mut self, attribute: impl Into<String>) -> ValidationError {
        self.attribute = Some(attribute.into());
        self
    }
}

impl StoreError {
    /// A validation error without object or attribute.
    pub fn invalid(rule: &'static str, message: impl Into<String>) -> StoreError {
        StoreError::Validation(ValidationError::new(rule, message))
    }

    /// The HTTP status this error maps to.
    pub fn http_status(&self) -> u16 {
        match self {
            StoreError::Conflict(_) => 409,
            StoreError::Validation(_) => 400,
            StoreError::NotFound(_) => 404,
            StoreError::Internal(_) => 500,
        }
    }
}
