//! A typed, blocking client of herd's HTTP API that signs every request.
//! Central type: [`Client`]. It speaks serveradmin's protocol (so it also
//! works against serveradmin for the endpoints both have) and knows nothing
//! about how the server stores objects.
//!
//! ```no_run
//! use herd_client::{commit_of, parse_query, Client};
//! # fn main() -> Result<(), herd_client::ClientError> {
//! let client = Client::new("http://127.0.0.1:8740")?;
//! // Text syntax, parsed locally (syntax errors point at the column).
//! let query = parse_query("servertype=vm hypervisor=hv1")?.restrict(&["hostname", "memory"]);
//! let vms = client.query(&query)?;
//! // Change one attribute with compare-and-swap on the value just read.
//! let mut vm = client.get("vm1")?;
//! vm.set("memory", 4096);
//! let commit_id = client.commit(&commit_of([&vm]))?;
//! # let _ = (vms, commit_id); Ok(()) }
//! ```
//!
//! * Every request is signed just before it is sent by the optional
//!   [`herd_auth::Signer`] given with [`Client::with_signer`].
//! * Answers are accepted gzip-compressed.
//! * Server errors come back as [`ClientError`] variants a caller can act on:
//!   [`ClientError::Conflict`] (someone changed the object since it was read:
//!   re-read and retry), [`ClientError::NotFound`], [`ClientError::Invalid`]
//!   (the server refused the input; the message says why),
//!   [`ClientError::Refused`] (authentication or permission).

mod commit;
pub mod edit;
mod object;

pub use commit::{add_changes, commit_of};
pub use herd_model::{
    AttributeChange, Change, Commit, CommitId, CommitRecord, Filter, Object, ObjectId, Query,
    Restrict, Schema, SchemaChange, Value,
};
pub use object::TrackedObject;

use herd_auth::Signer;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// A connection to one herd (or serveradmin) server. Cloning is cheap and
/// shares the connection pool and the signer.
#[derive(Clone)]
pub struct Client {
    /// `scheme://host:port` without a trailing slash.
    origin: String,
    /// Path prefix before `/api`, empty or starting with `/`.
    prefix: String,
    agent: ureq::Agent,
    signer: Option<Arc<dyn Signer>>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0:?} is not a server URL: give one like http://127.0.0.1:8740")]
    BadUrl(String),
    #[error("cannot reach the herd server at {url}: {reason}; check that `herd serve` runs there, or set --url, HERD_URL or `url` in the config file")]
    Unreachable { url: String, reason: String },
    /// The server refused the input (HTTP 400 or 422).
    #[error("{message}")]
    Invalid { status: u16, message: String },
    /// The object, servertype, attribute or commit does not exist (404).
    #[error("{message}")]
    NotFound { message: String },
    /// Newer data is available, or the name is taken (409): re-read, retry.
    #[error("{message}")]
    Conflict { message: String },
    /// Authentication failed or the permission is missing (401, 403).
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// The server failed (5xx) or answered something this client does not
    /// understand.
    #[error("the server at {url} failed: {message}")]
    Server { url: String, message: String },
    #[error("cannot sign the request: {0}")]
    Sign(#[from] herd_auth::SignError),
    /// A text query did not parse. The message points at the column.
    #[error("{0}")]
    Query(String),
}

impl ClientError {
    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Invalid { status, .. } | ClientError::Refused { status, .. } => {
                Some(*status)
            }
            ClientError::NotFound { .. } => Some(404),
            ClientError::Conflict { .. } => Some(409),
            _ => None,
        }
    }
}

/// How long one request may take before the client gives up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

impl Client {
    /// A client of the server at `url` (`http://host:port`, optionally with a
    /// path prefix; a trailing `/api` as in serveradmin's
    /// `SERVERADMIN_BASE_URL` is accepted and dropped).
    pub fn new(url: &str) -> Result<Client, ClientError> {
        let (origin, prefix) = split_url(url)?;
        Ok(Client {
            origin,
            prefix,
            agent: agent(true),
            signer: None,
        })
    }

    /// Do not ask for gzip-compressed answers. On a fast link (loopback, a
    /// LAN) compressing costs more CPU on both ends than it saves.
    pub fn without_compression(mut self) -> Client {
        self.agent = agent(false);
        self
    }

    /// Sign every request with `signer`, called just before each send.
    pub fn with_signer(mut self, signer: Box<dyn Signer>) -> Client {
        self.signer = Some(Arc::from(signer));
        self
    }

    /// The server's base URL as given (without `/api`).
    pub fn url(&self) -> String {
        format!("{}{}", self.origin, self.prefix)
    }

    /// `GET /api/health_check`: Ok when the server answers.
    pub fn health_check(&self) -> Result<(), ClientError> {
        self.send("GET", "/api/health_check", None).map(|_| ())
    }

    /// `POST /api/dataset/query`: the objects matching `query`, with the
    /// attributes of its `restrict` (all when `None`).
    pub fn query(&self, query: &Query) -> Result<Vec<TrackedObject>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            result: Vec<herd_model::Object>,
        }
        let body = serde_json::to_vec(query).map_err(|e| ClientError::Query(e.to_string()))?;
        let answer: Answer = self.call("POST", "/api/dataset/query", Some(body))?;
        Ok(answer.result.into_iter().map(TrackedObject::from).collect())
    }

    /// Parse `text` in the query language and run it.
    pub fn query_text(&self, text: &str) -> Result<Vec<TrackedObject>, ClientError> {
        self.query(&parse_query(text)?)
    }

    /// The one object with this hostname, with all its attributes.
    pub fn get(&self, hostname: &str) -> Result<TrackedObject, ClientError> {
        let query = Query::filter("hostname", Filter::Equals(Value::from(hostname)));
        self.query(&query)?
            .pop()
            .ok_or_else(|| ClientError::NotFound {
                message: format!("no object has hostname {hostname:?}"),
            })
    }

    /// `GET /api/dataset/new_object?servertype=X`: a new object of the
    /// servertype with its defaults filled in, ready to be completed and
    /// committed (it goes to the `created` list of [`commit_of`]).
    pub fn new_object(&self, servertype: &str) -> Result<TrackedObject, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            result: herd_model::Object,
        }
        let path = format!("/api/dataset/new_object?servertype={}", encode(servertype));
        let answer: Answer = self.call("GET", &path, None)?;
        Ok(TrackedObject::new_unsaved(answer.result))
    }

    /// `POST /api/dataset/commit`: apply the whole commit or nothing.
    pub fn commit(&self, commit: &Commit) -> Result<CommitId, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            commit_id: CommitId,
        }
        let body = serde_json::to_vec(commit).map_err(|e| ClientError::Server {
            url: self.url(),
            message: format!("cannot encode the commit: {e}"),
        })?;
        let answer: Answer = self.call("POST", "/api/dataset/commit", Some(body))?;
        Ok(answer.commit_id)
    }

    /// `GET /api/dataset/attributes`: every attribute, serveradmin's shape.
    pub fn attributes(&self) -> Result<Vec<serde_json::Value>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            result: Vec<serde_json::Value>,
        }
        let answer: Answer = self.call("GET", "/api/dataset/attributes", None)?;
        Ok(answer.result)
    }

    /// `GET /api/schema` (herd): every servertype and attribute.
    pub fn schema(&self) -> Result<Schema, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            result: Schema,
        }
        let answer: Answer = self.call("GET", "/api/schema", None)?;
        Ok(answer.result)
    }

    /// `POST /api/schema` (herd): apply a batch of schema changes, all or
    /// none; returns the batch's id in the schema history
    /// (`/api/history?schema`). A refusal names the change that failed.
    pub fn change_schema(&self, changes: &[SchemaChange]) -> Result<i64, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            schema_change_id: i64,
        }
        let body = serde_json::to_vec(&serde_json::json!({ "changes": changes }))
            .map_err(|e| ClientError::Query(e.to_string()))?;
        let answer: Answer = self.call("POST", "/api/schema", Some(body))?;
        Ok(answer.schema_change_id)
    }

    /// `GET /api/history` (herd): commits touching an object or one commit,
    /// newest first.
    pub fn history(&self, query: &HistoryQuery) -> Result<Vec<CommitRecord>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            result: Vec<CommitRecord>,
        }
        let answer: Answer = self.call("GET", &query.path(), None)?;
        Ok(answer.result)
    }

    /// `GET /api/history?schema` (herd): the latest batches of schema
    /// changes, newest first, at most `limit` (the server's default, 100,
    /// if `None`; the server refuses 0 and more than 10000).
    pub fn schema_history(&self, limit: Option<usize>) -> Result<Vec<SchemaRecord>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            result: Vec<SchemaRecord>,
        }
        let path = match limit {
            Some(limit) => format!("/api/history?schema&limit={limit}"),
            None => "/api/history?schema".to_string(),
        };
        let answer: Answer = self.call("GET", &path, None)?;
        Ok(answer.result)
    }

    /// Any endpoint: send `body` (JSON) and return the parsed answer. For
    /// endpoints this crate has no typed method for yet.
    pub fn request_json(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let bytes = match body {
            Some(v) => Some(serde_json::to_vec(v).map_err(|e| ClientError::Query(e.to_string()))?),
            None => None,
        };
        self.call(method, path_and_query, bytes)
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let bytes = self.send(method, path_and_query, body)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Server {
            url: self.url(),
            message: format!("unexpected answer to {method} {path_and_query}: {e}"),
        })
    }

    /// Send one request and return the body of a 2xx answer; map anything
    /// else to the matching [`ClientError`].
    fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ClientError> {
        let full_path = format!("{}{}", self.prefix, path_and_query);
        let uri = format!("{}{}", self.origin, full_path);
        let body = body.unwrap_or_default();
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-type", "application/x-json");
        // Signing last: a slow signer (an ssh-agent asking for confirmation)
        // must not make the timestamp stale before the request leaves.
        if let Some(signer) = &self.signer {
            for (name, value) in signer.sign_request(method, &full_path, &body)? {
                request = request.header(name, value);
            }
        }
        let request = request
            .body(body)
            .map_err(|e| ClientError::BadUrl(format!("{uri}: {e}")))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| ClientError::Unreachable {
                url: self.url(),
                reason: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| ClientError::Unreachable {
                url: self.url(),
                reason: format!("the answer broke off: {e}"),
            })?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let message = error_message(&bytes, status);
        Err(match status {
            400 | 413 | 422 => ClientError::Invalid { status, message },
            401 | 403 => ClientError::Refused { status, message },
            404 => ClientError::NotFound { message },
            409 => ClientError::Conflict { message },
            _ => ClientError::Server {
                url: self.url(),
                message: format!("HTTP {status}: {message}"),
            },
        })
    }
}

/// One applied batch of schema changes, as `GET /api/history?schema`
/// returns it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaRecord {
    /// The batch's id; ids grow with time.
    pub schema_change_id: i64,
    /// Who applied it (user and key).
    pub author: String,
    pub time: herd_model::DatetimeJson,
    /// Every change of the batch, in the order applied.
    pub changes: Vec<SchemaChange>,
}

/// Which commits [`Client::history`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Commits that touched this object.
    pub object_id: Option<ObjectId>,
    /// Commits that touched an object with this hostname (now or then).
    pub hostname: Option<String>,
    /// Just this commit.
    pub commit_id: Option<CommitId>,
    /// At most this many commits (the server's default if `None`).
    pub limit: Option<usize>,
}

impl HistoryQuery {
    fn path(&self) -> String {
        let mut params = Vec::new();
        if let Some(id) = self.object_id {
            params.push(format!("object_id={id}"));
        }
        if let Some(hostname) = &self.hostname {
            params.push(format!("hostname={}", encode(hostname)));
        }
        if let Some(id) = self.commit_id {
            params.push(format!("commit_id={id}"));
        }
        if let Some(limit) = self.limit {
            params.push(format!("limit={limit}"));
        }
        if params.is_empty() {
            "/api/history".to_string()
        } else {
            format!("/api/history?{}", params.join("&"))
        }
    }
}

/// Parse the text query syntax; the error message shows the query with a
/// caret under the column at fault.
pub fn parse_query(text: &str) -> Result<Query, ClientError> {
    herd_model::parse_query(text).map_err(|e| ClientError::Query(e.render(text)))
}

fn agent(gzip: bool) -> ureq::Agent {
    let builder = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(DEFAULT_TIMEOUT))
        .user_agent(concat!("herd-client/", env!("CARGO_PKG_VERSION")));
    let builder = if gzip {
        builder
    } else {
        builder.accept_encoding("identity")
    };
    builder.build().new_agent()
}

/// The message of serveradmin's `{"error": {"message": ...}}`, or the body
/// as text when it has another shape.
fn error_message(bytes: &[u8], status: u16) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Some(message) = json.pointer("/error/message").and_then(|m| m.as_str()) {
            return message.to_string();
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status} without a message")
    } else {
        text.chars().take(500).collect()
    }
}

fn split_url(url: &str) -> Result<(String, String), ClientError> {
    let bad = || ClientError::BadUrl(url.to_string());
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let scheme_len = url.len() - rest.len();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || path.contains(['?', '#']) {
        return Err(bad());
    }
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix("/api").unwrap_or(path);
    Ok((
        format!("{}{}", &url[..scheme_len], authority),
        path.to_string(),
    ))
}

/// Percent-encode a query-string value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_their_prefix_and_drop_a_trailing_api() {
        let check = |url: &str, origin: &str, prefix: &str| {
            let (o, p) = split_url(url).unwrap();
            assert_eq!((o.as_str(), p.as_str()), (origin, prefix), "{url}");
        };
        check("http://127.0.0.1:8740", "http://127.0.0.1:8740", "");
        check("http://127.0.0.1:8740/", "http://127.0.0.1:8740", "");
        check("https://sa.example.com/api", "https://sa.example.com", "");
        check("http://h/herd/api/", "http://h", "/herd");
    }

    #[test]
    fn urls_without_scheme_or_host_are_refused() {
        for url in ["127.0.0.1:8740", "http://", "ftp://x", "http://h/?q=1"] {
            assert!(split_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn error_messages_come_from_serveradmin_shaped_bodies() {
        assert_eq!(
            error_message(br#"{"error":{"message":"newer data available"}}"#, 409),
            "newer data available"
        );
        assert_eq!(error_message(b"plain text", 502), "plain text");
        assert_eq!(error_message(b"", 502), "HTTP 502 without a message");
    }

    #[test]
    fn query_string_values_are_percent_encoded() {
        assert_eq!(encode("vm"), "vm");
        assert_eq!(encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}
