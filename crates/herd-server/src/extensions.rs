//! herd's own endpoints beside serveradmin's: the schema and the history.
//! Same conventions: `application/x-json`, `{"status": "success", ...}`,
//! errors as `{"error": {"message": ...}}`.

use crate::body::{success, JsonBody};
use crate::error::ApiError;
use crate::{AppState, Author};
use axum::extract::{Query as UrlQuery, State};
use axum::response::Response;
use axum::Extension;
use herd_model::{CommitRecord, Filter, Query, SchemaChange, Value};
use herd_store::SchemaRecord;
use serde_json::{json, Value as Json};
use std::collections::HashMap;

/// How many commits `/api/history` returns when no `limit` is given, and the
/// most it returns at all.
pub const DEFAULT_HISTORY_LIMIT: usize = 100;
pub const MAX_HISTORY_LIMIT: usize = 10_000;

/// `GET /api/schema` → `{"status": "success", "result": {"attributes":
/// {...}, "servertypes": {...}}}`.
pub async fn schema(State(state): State<AppState>) -> Result<Response, ApiError> {
    let schema = state.read_store(|store| store.schema()).await?;
    Ok(success(json!({ "result": schema })))
}

/// `POST /api/schema` `{"changes": [{"action": "create_attribute", ...}]}`
/// (or one change object) → `{"status": "success", "applied": N,
/// "schema_change_id": ID}`.
///
/// The batch is applied whole, in one transaction, or not at all: a refused
/// change fails it with a message naming the change ("schema change 3 of 5
/// (delete_attribute os): ...; nothing was applied"). The batch is recorded
/// in the schema history under the caller's name.
pub async fn change_schema(
    State(state): State<AppState>,
    author: Option<Extension<Author>>,
    JsonBody(body): JsonBody<Json>,
) -> Result<Response, ApiError> {
    let changes = parse_schema_changes(body)?;
    let author = author
        .map(|Extension(Author(a))| a)
        .unwrap_or_else(|| state.settings.anonymous_author.clone());
    let applied = changes.len();
    let id = state
        .with_store(move |store| store.change_schema(&changes, &author))
        .await?;
    Ok(success(
        json!({ "applied": applied, "schema_change_id": id }),
    ))
}

fn parse_schema_changes(body: Json) -> Result<Vec<SchemaChange>, ApiError> {
    SchemaChange::parse_batch(body).map_err(ApiError::BadRequest)
}

/// `GET /api/history?object_id=N | hostname=H | commit_id=N | schema
/// [&limit=N]` → `{"status": "success", "result": [record...]}`, newest
/// first. Without a selector: the latest commits. Each commit:
/// `commit_id`, `author`, `time` and `changes` (per object: `object_id`,
/// `hostname`, `kind`, and `attributes` with `old`/`new`). With `schema`:
/// the latest batches of schema changes instead, each with
/// `schema_change_id`, `author`, `time` and `changes` (parsed, defaults
/// filled in).
pub async fn history(
    State(state): State<AppState>,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let selector = HistorySelector::from_params(&params)?;
    let records = state
        .with_store(move |store| {
            let commits = match selector.what {
                What::Schema => {
                    return store.schema_history(selector.limit).map(Records::Schema)
                }
                What::Recent => store.recent_commits(selector.limit)?,
                What::Commit(id) => vec![store.commit_record(id)?],
                What::Object(id) => newest_first(store.object_history(id)?, selector.limit),
                What::Hostname(hostname) => {
                    let query = Query::filter("hostname", Filter::Equals(Value::String(hostname.clone())))
                        .restrict(&["object_id"]);
                    let id = store
                        .query(&query)?
                        .first()
                        .and_then(|o| o.object_id())
                        .ok_or_else(|| {
                            herd_store::StoreError::NotFound(format!(
                                "no object has hostname {hostname:?}; for a deleted object ask by object_id"
                            ))
                        })?;
                    newest_first(store.object_history(id)?, selector.limit)
                }
            };
            Ok(Records::Commits(commits))
        })
        .await?;
    Ok(success(json!({ "result": records })))
}

/// What `/api/history` answers with: object commits or schema batches.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Records {
    Commits(Vec<CommitRecord>),
    Schema(Vec<SchemaRecord>),
}

fn newest_first<T>(mut oldest_first: Vec<T>, limit: usize) -> Vec<T> {
    oldest_first.reverse();
    oldest_first.truncate(limit);
    oldest_first
}

#[derive(Debug, PartialEq)]
enum What {
    Recent,
    Schema,
    Commit(i64),
    Object(i64),
    Hostname(String),
}

#[derive(Debug, PartialEq)]
struct HistorySelector {
    what: What,
    limit: usize,
}

impl HistorySelector {
    fn from_params(params: &HashMap<String, String>) -> Result<HistorySelector, ApiError> {
        let int = |name: &str| -> Result<Option<i64>, ApiError> {
            params
                .get(name)
                .map(|v| {
                    v.parse().map_err(|_| {
                        ApiError::BadRequest(format!("{name} must be an integer, not {v:?}"))
                    })
                })
                .transpose()
        };
        if let Some(unknown) = params.keys().find(|k| {
            !["object_id", "hostname", "commit_id", "schema", "limit"].contains(&k.as_str())
        }) {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter {unknown:?}: use object_id, hostname, commit_id or schema, and limit"
            )));
        }
        let schema = match params.get("schema").map(String::as_str) {
            None => None,
            Some("" | "1" | "true") => Some(What::Schema),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "schema takes no value, not {other:?}: ask /api/history?schema for the schema changes"
                )))
            }
        };
        let limit = match int("limit")? {
            None => DEFAULT_HISTORY_LIMIT,
            Some(n) if n >= 1 && n as usize <= MAX_HISTORY_LIMIT => n as usize,
            Some(n) => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be between 1 and {MAX_HISTORY_LIMIT}, not {n}"
                )))
            }
        };
        let selectors = [
            int("object_id")?.map(What::Object),
            params.get("hostname").cloned().map(What::Hostname),
            int("commit_id")?.map(What::Commit),
            schema,
        ];
        let mut given = selectors.into_iter().flatten();
        let what = given.next().unwrap_or(What::Recent);
        if given.next().is_some() {
            return Err(ApiError::BadRequest(
                "give only one of object_id, hostname, commit_id and schema".to_string(),
            ));
        }
        Ok(HistorySelector { what, limit })
    }
}

/// Parse a raw body (for tests of this module).
#[cfg(test)]
fn changes_of(text: &str) -> Result<Vec<SchemaChange>, ApiError> {
    parse_schema_changes(crate::body::parse_json(text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn history_selects_one_thing_with_a_bounded_limit() {
        let s =
            HistorySelector::from_params(&params(&[("hostname", "vm1"), ("limit", "5")])).unwrap();
        assert_eq!(s.what, What::Hostname("vm1".into()));
        assert_eq!(s.limit, 5);
        assert_eq!(
            HistorySelector::from_params(&params(&[])).unwrap().what,
            What::Recent
        );
        assert_eq!(
            HistorySelector::from_params(&params(&[("schema", "")]))
                .unwrap()
                .what,
            What::Schema
        );
        for bad in [
            params(&[("schema", "no")]),
            params(&[("schema", ""), ("commit_id", "2")]),
            params(&[("object_id", "x")]),
            params(&[("object_id", "1"), ("commit_id", "2")]),
            params(&[("limit", "0")]),
            params(&[("limit", "99999999")]),
            params(&[("objectid", "1")]),
        ] {
            assert!(HistorySelector::from_params(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schema_changes_come_as_a_list_or_one_object() {
        let one = r#"{"action": "delete_attribute", "attribute_id": "os"}"#;
        assert_eq!(changes_of(one).unwrap().len(), 1);
        let list = format!(r#"{{"changes": [{one}, {one}]}}"#);
        assert_eq!(changes_of(&list).unwrap().len(), 2);
        assert_eq!(
            changes_of(&format!("[{one}, {one}, {one}]")).unwrap().len(),
            3
        );
        let err = changes_of(r#"{"changes": 5}"#).unwrap_err().to_string();
        assert!(err.contains("\"changes\" must be a list"), "{err}");
        let err = changes_of(r#"{"action": "drop_table"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema change 1"), "{err}");
    }
}
