//! The read cache: the database's objects in a [`Dataset`] (the same
//! in-memory index the SQLite engine answers from), kept current by
//! version numbers the database hands out.
//!
//! Every commit takes the next `data_version` and records the objects it
//! wrote in `data_change`; every batch of schema changes (and an import)
//! takes the next `schema_version`. A query first reads both versions (one
//! round trip). If the cache is at least that new it answers from memory;
//! if only data changed it reloads the objects of the `data_change` rows
//! after its version; if the schema changed, or the rows it needs were
//! pruned, it reloads everything. The versions are read before the data,
//! so an answer is never older than the newest commit that had finished
//! when the query began (a client sees its own commits).
//!
//! The data version is one row, so commits take their versions in the
//! order they become visible. Commits queue for it up front
//! ([`DATA_LOCK`]) instead of racing for it: a `SERIALIZABLE` commit that
//! updated the row after another had done so since its snapshot would
//! fail, and under steady load some would fail every retry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use herd_model::{ObjectId, Schema, Value};
use herd_store_memory::{Dataset, Obj};
use postgres::{GenericClient, Transaction};

use crate::query::{attributes_join, decode_object, OBJECT_COLUMNS};
use crate::{internal, sql, StoreError};

/// A commit's first statement: it waits for the commits before it to end.
/// `LOCK TABLE` takes no snapshot, so the transaction's snapshot (taken
/// by its next statement) sees them, and its own update of the row can
/// not conflict. Queries (`SELECT`) are not blocked by this mode.
pub(crate) const DATA_LOCK: &str = "LOCK TABLE data_version IN EXCLUSIVE MODE";

/// `data_change` rows kept behind the newest; a cache further behind
/// reloads everything.
pub(crate) const KEPT_VERSIONS: i64 = 10_000;

/// Called by a commit, inside its transaction, after its writes: takes the
/// next data version and records the objects written (created, updated,
/// deleted).
pub(crate) fn record_change(
    tx: &mut Transaction<'_>,
    objects: &[ObjectId],
) -> Result<(), StoreError> {
    let version: i64 = tx
        .query_one(
            "UPDATE data_version SET version = version + 1 RETURNING version",
            &[],
        )
        .map_err(internal)?
        .get(0);
    tx.execute(
        "INSERT INTO data_change (version, objects) VALUES ($1, $2)",
        &[&version, &objects],
    )
    .map_err(internal)?;
    tx.execute(
        "DELETE FROM data_change WHERE version <= $1",
        &[&(version - KEPT_VERSIONS)],
    )
    .map_err(internal)?;
    Ok(())
}

/// What the database is at: `(schema_version, data_version)`.
pub(crate) const VERSIONS: &str =
    "SELECT s.version, d.version FROM schema_version s, data_version d";

/// The dataset and the versions it holds.
struct Cached {
    schema_version: i64,
    data_version: i64,
    data: Dataset,
}

/// One server's copy of the objects. Queries read it under a shared lock;
/// a refresh reads the database without the lock and takes it exclusively
/// only to put the reloaded objects in.
#[derive(Default)]
pub(crate) struct ReadCache {
    current: RwLock<Option<Cached>>,
    /// One refresh at a time (so the dataset does not change between a
    /// refresh reading its versions and putting objects in); the others
    /// wait and then find it done.
    refreshing: Mutex<()>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Internal("a cache refresh panicked; restart the server".into())
}

impl ReadCache {
    /// `f` on the dataset if it holds at least these versions.
    pub fn read<T>(
        &self,
        schema_version: i64,
        data_version: i64,
        f: impl FnOnce(&Dataset) -> T,
    ) -> Result<Option<T>, StoreError> {
        let guard = self.current.read().map_err(poisoned)?;
        Ok(guard
            .as_ref()
            .filter(|c| c.schema_version >= schema_version && c.data_version >= data_version)
            .map(|c| f(&c.data)))
    }

    /// Brings the cache to what `tx` sees (a `REPEATABLE READ` transaction
    /// begun after the versions the caller wants were read).
    pub fn refresh(
        &self,
        tx: &mut impl GenericClient,
        schema_version: i64,
        data_version: i64,
    ) -> Result<(), StoreError> {
        let _one = self.refreshing.lock().map_err(poisoned)?;
        if self.read(schema_version, data_version, |_| ())?.is_some() {
            return Ok(());
        }
        let row = tx.query_one(VERSIONS, &[]).map_err(internal)?;
        let (now_schema, now_data): (i64, i64) = (row.get(0), row.get(1));
        let base = {
            let guard = self.current.read().map_err(poisoned)?;
            guard
                .as_ref()
                .map(|c| (c.schema_version, c.data_version, c.data.schema.clone()))
        };
        let changed = match &base {
            Some((s, d, schema)) if *s == now_schema => changed_since(tx, *d, now_data)?
                .map(|ids| load(tx, schema, Some(&ids)).map(|objects| (ids, objects)))
                .transpose()?,
            _ => None,
        };
        match changed {
            Some((ids, objects)) => {
                let mut guard = self.current.write().map_err(poisoned)?;
                let Some(c) = guard.as_mut() else {
                    return Err(StoreError::Internal("the read cache vanished".into()));
                };
                for id in ids {
                    c.data.remove(id);
                }
                for obj in objects.into_values() {
                    c.data.insert(obj);
                }
                c.data_version = now_data;
                tracing::debug!(data_version = now_data, "read cache refreshed");
            }
            None => {
                let started = std::time::Instant::now();
                let data = full(tx)?;
                tracing::info!(
                    objects = data.objects.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    schema_version = now_schema,
                    data_version = now_data,
                    "read cache loaded from the database"
                );
                *self.current.write().map_err(poisoned)? = Some(Cached {
                    schema_version: now_schema,
                    data_version: now_data,
                    data,
                });
            }
        }
        Ok(())
    }
}

/// The objects written after version `since` up to `now`, or `None` when
/// some of those rows are gone (pruned): then only a full load will do.
fn changed_since(
    tx: &mut impl GenericClient,
    since: i64,
    now: i64,
) -> Result<Option<Vec<ObjectId>>, StoreError> {
    if now == since {
        return Ok(Some(Vec::new()));
    }
    let rows = tx
        .query(
            "SELECT objects FROM data_change WHERE version > $1 AND version <= $2",
            &[&since, &now],
        )
        .map_err(internal)?;
    if rows.len() as i64 != now - since {
        return Ok(None);
    }
    let mut ids: Vec<ObjectId> = rows
        .iter()
        .flat_map(|r| r.get::<_, Vec<ObjectId>>(0))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

/// Everything: the schema and every object.
fn full(tx: &mut impl GenericClient) -> Result<Dataset, StoreError> {
    let schema = sql::load_schema(tx)?;
    let objects = load(tx, &schema, None)?;
    Dataset::new(schema, objects).map_err(|e| {
        StoreError::Internal(format!(
            "the database's schema does not hold together: {e}; run `herd db check`"
        ))
    })
}

/// Loads the objects with these ids (all with `None`); ids without an
/// object are left out.
fn load(
    tx: &mut impl GenericClient,
    schema: &Schema,
    ids: Option<&[ObjectId]>,
) -> Result<BTreeMap<ObjectId, Obj>, StoreError> {
    let rows = match ids {
        Some([]) => Ok(Vec::new()),
        Some(ids) => tx.query(
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM server s {} WHERE s.object_id = ANY($1)",
                attributes_join(None)
            ),
            &[&ids],
        ),
        // One pass over each table instead of a lookup per object.
        None => tx.query(
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM server s LEFT JOIN (
                     SELECT object_id, array_agg(attribute_id) AS ids, array_agg(value) AS vals
                     FROM server_attribute GROUP BY object_id) x USING (object_id)"
            ),
            &[],
        ),
    }
    .map_err(internal)?;
    let mut keys: BTreeMap<String, Arc<str>> = BTreeMap::new();
    let mut key = |k: String| {
        keys.entry(k)
            .or_insert_with_key(|k| k.as_str().into())
            .clone()
    };
    let mut out = BTreeMap::new();
    for r in &rows {
        let o = decode_object(schema, r, 0)?;
        let attrs = o
            .attrs
            .into_iter()
            .filter(|(_, v)| !matches!(v, Value::Null))
            .map(|(k, v)| (key(k), v))
            .collect();
        out.insert(
            o.id,
            Obj {
                id: o.id,
                hostname: o.hostname,
                servertype: key(o.servertype),
                intern_ip: o.intern_ip,
                attrs,
            },
        );
    }
    Ok(out)
}
