//! The one place where errors become HTTP responses.
//!
//! Every handler returns `Result<_, ApiError>`. The status code is chosen
//! here and nowhere else: a conflict is a 409, bad input a 400 (unparsable)
//! or 422 (well-formed but refused by the schema), a missing object a 404,
//! authentication 401 and permission 403. Internal errors are logged with
//! their cause and answered with a generic message: their text never reaches
//! the client.
//!
//! Bodies have serveradmin's shape, `{"error": {"message": "..."}}`, with the
//! content type `application/x-json` that adminapi checks before it reads
//! the message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herd_store::{StoreError, ValidationError};

/// serveradmin's content type for every API body, success or error.
pub const X_JSON: &str = "application/x-json";

/// Why a request failed, as the client is told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read: malformed JSON, a missing field, a
    /// query syntax error. The message says what to fix.
    #[error("{0}")]
    BadRequest(String),
    /// The inventory refuses the request: unknown attribute, wrong type,
    /// bad regexp, a broken validation rule. The body names the rule, the
    /// object and the attribute.
    #[error("{0}")]
    Invalid(ValidationError),
    /// A named object, servertype, attribute or commit does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A compare-and-swap failed or a name is taken: the client should
    /// re-read and retry.
    #[error("{0}")]
    Conflict(String),
    /// The request carries no valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The credentials are valid but do not allow this request.
    #[error("{0}")]
    Forbidden(String),
    /// The body is larger than the server accepts.
    #[error("request body is larger than the limit of {limit} bytes; split the commit into smaller ones")]
    PayloadTooLarge { limit: usize },
    /// No route for this method and path.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Something broke inside the server. The cause is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message the client sees.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "internal server error; the cause is in the server log".to_string()
            }
            other => other.to_string(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error while serving a request");
        } else {
            tracing::debug!(%status, message = %self, "request refused");
        }
        let mut error = serde_json::json!({ "message": self.public_message() });
        if let ApiError::Invalid(v) = &self {
            error["rule"] = v.rule.into();
            if let Some(object) = &v.object {
                error["object"] = object.as_str().into();
            }
            if let Some(attribute) = &v.attribute {
                error["attribute"] = attribute.as_str().into();
            }
        }
        let body = serde_json::json!({ "error": error });
        x_json(status, &body)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::Conflict(_) => ApiError::Conflict(err.to_string()),
            StoreError::Validation(v) => ApiError::Invalid(v),
            StoreError::NotFound(message) => ApiError::NotFound(message),
            StoreError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// A JSON body with serveradmin's content type.
pub fn x_json(status: StatusCode, body: &serde_json::Value) -> Response {
    // Serialising a `serde_json::Value` cannot fail: its map keys are strings.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(X_JSON));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(err: ApiError) -> (StatusCode, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let bytes = futures_body(response);
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn futures_body(response: Response) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_stale_old_value_is_a_409_saying_newer_data_is_available() {
        let (status, body) = body_of(StoreError::Conflict("vm1 memory is 2048".into()).into());
        assert_eq!(status, StatusCode::CONFLICT);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("newer data available"), "{message}");
    }

    #[test]
    fn validation_errors_name_rule_object_and_attribute() {
        let v = ValidationError::new("unique_ip", "10.0.0.1 is taken by vm2")
            .object("vm1")
            .attribute("intern_ip");
        let (status, body) = body_of(StoreError::Validation(v).into());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["rule"], "unique_ip");
        assert_eq!(body["error"]["object"], "vm1");
        assert_eq!(body["error"]["attribute"], "intern_ip");
    }

    #[test]
    fn internal_causes_are_not_sent() {
        let (status, body) =
            body_of(StoreError::Internal("disk I/O error at /secret/path".into()).into());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("/secret/path"));
    }
}
