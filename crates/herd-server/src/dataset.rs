//! serveradmin's endpoints, with its request and response shapes.

use crate::body::{success, success_raw_result, JsonBody};
use crate::error::ApiError;
use crate::{AppState, Author};
use axum::extract::{Query as UrlQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use herd_model::{Attribute, AttributeType, Commit, Query, Schema};
use serde_json::{json, Value as Json};
use std::collections::HashMap;

/// `GET /api/health_check`: serveradmin answers 242 (its load balancer's
/// convention) when the node is healthy; so does herd, after checking that
/// the store answers. 503 when it does not.
pub async fn health_check(State(state): State<AppState>) -> Response {
    match state.read_store(|store| store.schema().map(|_| ())).await {
        Ok(()) => {
            let status = StatusCode::from_u16(242).unwrap_or(StatusCode::OK);
            (status, "").into_response()
        }
        Err(err) => {
            tracing::error!(%err, "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// `POST /api/dataset/query` `{"filters": {...}, "restrict": [...] | null,
/// "order_by": [...] | null}` → `{"status": "success", "result": [...]}`.
pub async fn query(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Json>,
) -> Result<Response, ApiError> {
    let query = parse_query(body)?;
    let objects = state
        .read_store(move |store| store.query_json(&query))
        .await?;
    Ok(success_raw_result(objects))
}

/// Turn a query body into the model's [`Query`], with serveradmin's rules:
/// `filters` must be an object, an empty `restrict` means every attribute.
pub fn parse_query(mut body: Json) -> Result<Query, ApiError> {
    let Some(map) = body.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the query must be a JSON object with \"filters\", \"restrict\" and \"order_by\""
                .to_string(),
        ));
    };
    match map.get("filters") {
        Some(Json::Object(_)) => {}
        Some(_) | None => {
            return Err(ApiError::BadRequest(
                "\"filters\" must be an object of attribute: filter, e.g. {\"hostname\": \"vm1\"}"
                    .to_string(),
            ))
        }
    }
    if matches!(map.get("restrict"), Some(Json::Array(a)) if a.is_empty()) {
        map.insert("restrict".to_string(), Json::Null);
    }
    if let Some(unknown) = map
        .keys()
        .find(|k| !["filters", "restrict", "order_by"].contains(&k.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "unknown query field {unknown:?}: a query has \"filters\", \"restrict\" and \"order_by\""
        )));
    }
    serde_json::from_value(body).map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))
}

/// `POST /api/dataset/commit` `{"created": [...], "changed": [...],
/// "deleted": [...]}` → `{"status": "success", "commit_id": N}`.
pub async fn commit(
    State(state): State<AppState>,
    author: Option<Extension<Author>>,
    JsonBody(body): JsonBody<Json>,
) -> Result<Response, ApiError> {
    let commit = parse_commit(body)?;
    let author = author
        .map(|Extension(Author(a))| a)
        .unwrap_or_else(|| state.settings.anonymous_author.clone());
    let commit_id = state
        .with_store(move |store| store.commit(&commit, &author))
        .await?;
    Ok(success(json!({ "commit_id": commit_id })))
}

/// Turn a commit body into the model's [`Commit`]. Old adminapi versions
/// send `"changes": {"<object_id>": {...}}` instead of `"changed": [...]`;
/// both are accepted.
pub fn parse_commit(mut body: Json) -> Result<Commit, ApiError> {
    let Some(map) = body.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the commit must be a JSON object with \"created\", \"changed\" and \"deleted\" lists"
                .to_string(),
        ));
    };
    if let Some(changes) = map.remove("changes") {
        let Json::Object(changes) = changes else {
            return Err(ApiError::BadRequest(
                "\"changes\" must be an object of object_id: changes".to_string(),
            ));
        };
        let mut changed = Vec::with_capacity(changes.len());
        for (id, mut change) in changes {
            let id: i64 = id.parse().map_err(|_| {
                ApiError::BadRequest(format!("\"changes\" key {id:?} is not an object_id"))
            })?;
            if let Json::Object(c) = &mut change {
                c.insert("object_id".to_string(), id.into());
            }
            changed.push(change);
        }
        map.insert("changed".to_string(), Json::Array(changed));
    }
    for (key, value) in map.iter() {
        match key.as_str() {
            "created" | "changed" | "deleted" if value.is_array() || value.is_null() => {}
            "created" | "changed" | "deleted" => {
                return Err(ApiError::BadRequest(format!("\"{key}\" must be a list")))
            }
            // adminapi sends these; herd always validates.
            "skip_validation" | "force_changes" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown commit field {other:?}: a commit has \"created\", \"changed\" and \"deleted\""
                )))
            }
        }
    }
    map.retain(|k, v| !v.is_null() && ["created", "changed", "deleted"].contains(&k.as_str()));
    serde_json::from_value(body).map_err(|e| ApiError::BadRequest(format!("invalid commit: {e}")))
}

/// `GET /api/dataset/new_object?servertype=X` → `{"result": {...}}`: an
/// object of the servertype with its defaults, to fill in and commit.
pub async fn new_object(
    State(state): State<AppState>,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let servertype = params.get("servertype").cloned().ok_or_else(|| {
        ApiError::BadRequest(
            "give the servertype: /api/dataset/new_object?servertype=vm".to_string(),
        )
    })?;
    let object = state
        .read_store(move |store| store.new_object(&servertype))
        .await?;
    Ok(success(json!({ "result": object })))
}

/// `GET /api/dataset/attributes` → every attribute in serveradmin's shape,
/// the special ones (`object_id`, `hostname`, ...) included.
pub async fn attributes(State(state): State<AppState>) -> Result<Response, ApiError> {
    let schema = state.read_store(|store| store.schema()).await?;
    Ok(success(
        json!({ "result": serveradmin_attributes(&schema) }),
    ))
}

fn serveradmin_attributes(schema: &Schema) -> Vec<Json> {
    let specials = [
        ("object_id", AttributeType::Number),
        ("hostname", AttributeType::String),
        ("servertype", AttributeType::String),
        ("intern_ip", AttributeType::Inet),
    ];
    let special = specials
        .iter()
        .filter(|(id, _)| !schema.attributes.contains_key(*id))
        .map(|(id, ty)| {
            let mut a = Attribute::new(id, *ty);
            a.readonly = *id == "object_id";
            a.group = "base".to_string();
            a
        });
    schema
        .attributes
        .values()
        .cloned()
        .chain(special)
        .map(|a| {
            json!({
                "attribute_id": a.attribute_id,
                "type": a.attribute_type,
                "multi": a.is_multi(),
                "hovertext": a.hovertext,
                "group": a.group,
                "help_link": a.help_link,
                "inet_address_family": a.inet_address_family,
                "readonly": a.readonly,
                "clone": a.clone,
                "history": a.history,
                "regexp": a.regexp,
                "reversed_attribute": a.reversed_attribute,
                "target_servertypes": a.target_servertype.into_iter().collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        match result {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn filters_must_be_an_object() {
        assert!(bad(parse_query(json!({"filters": [1]}))).contains("\"filters\" must be"));
        assert!(bad(parse_query(json!("hostname=vm1"))).contains("JSON object"));
    }

    #[test]
    fn an_empty_restrict_means_every_attribute() {
        let q = parse_query(json!({"filters": {}, "restrict": []})).unwrap();
        assert_eq!(q.restrict, None);
    }

    #[test]
    fn unknown_filter_functions_are_named() {
        let m = bad(parse_query(json!({"filters": {"hostname": {"Bogus": 1}}})));
        assert!(m.contains("Bogus"), "{m}");
    }

    #[test]
    fn old_adminapi_changes_map_becomes_changed_list() {
        let c = parse_commit(json!({
            "changes": {"7": {"memory": {"action": "update", "old": 1, "new": 2}}},
            "deleted": []
        }))
        .unwrap();
        assert_eq!(c.changed[0].object_id, 7);
    }

    #[test]
    fn commit_lists_must_be_lists() {
        assert!(bad(parse_commit(json!({"deleted": 5}))).contains("\"deleted\" must be a list"));
        assert!(bad(parse_commit(json!({"deleted": ["x"]}))).contains("invalid commit"));
    }
}
