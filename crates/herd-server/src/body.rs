//! Reading request bodies and writing response bodies.
//!
//! Bodies are read as bytes and parsed here, so that every failure (too
//! large, not JSON, not the expected shape) becomes an [`ApiError`] with a
//! message that says what is wrong, instead of axum's plain-text rejections.

use crate::error::{x_json, ApiError};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// A request body parsed as JSON into `T`.
///
/// The content type is not checked: adminapi sends `application/x-json` (in
/// a `Content-Encoding` header, even), curl sends form types, and all of
/// them mean JSON here.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(DEFAULT_BODY_LIMIT);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parse a JSON body, naming the line and column of the first problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "the request body is empty; send a JSON object".to_string(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
}

/// The body size limit in force, put into request extensions by the router
/// so that the error message can name it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// The default limit of a request body: 16 MiB, enough for a commit that
/// creates tens of thousands of objects.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// A successful serveradmin-style answer: `{"status": "success", ...}` with
/// the fields of `fields` (which must be a JSON object) merged in.
pub fn success(fields: serde_json::Value) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("status".to_string(), "success".into());
    if let serde_json::Value::Object(map) = fields {
        body.extend(map);
    }
    x_json(StatusCode::OK, &serde_json::Value::Object(body))
}

/// `{"status": "success", "result": RESULT}` around `result`, which is
/// already JSON (a store's [`herd_store::Store::query_json`]).
pub fn success_raw_result(result: Vec<u8>) -> Response {
    const HEAD: &[u8] = br#"{"status":"success","result":"#;
    let mut bytes = Vec::with_capacity(HEAD.len() + result.len() + 1);
    bytes.extend_from_slice(HEAD);
    bytes.extend_from_slice(&result);
    bytes.push(b'}');
    json_response(bytes)
}

/// A 200 answer with a JSON body, typed as serveradmin types it.
fn json_response(bytes: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(crate::error::X_JSON),
    );
    response
}
