//! weir's management API: REST over HTTP/1.1 (axum), JSON or YAML bodies.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /v1/{plural}?labelSelector=a=b,c!=d` | list (`{kind: RouteList, revision, items}`) |
//! | `POST /v1/{plural}` | create (409 if it exists) |
//! | `GET /v1/{plural}/{name}` | one object, `metadata.revision` filled in |
//! | `PUT /v1/{plural}/{name}` | create or replace; a set `metadata.revision` must be current (409) |
//! | `DELETE /v1/{plural}/{name}?revision=N` | delete (404 if absent, 409 if stale) |
//! | `PUT /v1/{plural}/{name}/status` | the agent's status write |
//! | `POST /v1/apply` | many objects in one transaction, all or nothing |
//! | `GET /v1/watch?kinds=Route,Vpc&fromRevision=N` | NDJSON events; `RELIST` when compacted |
//! | `GET /v1/kinds` | registered kinds and their JSON Schemas |
//! | `GET /openapi.json` | OpenAPI 3.1 document |
//! | `GET /livez`, `GET /readyz` | liveness; readiness (store reachable) |
//!
//! `docs/api.md` has the whole picture: the daemon's endpoints, query
//! parameters, error codes, limits, schemathesis and the fuzzers.
//!
//! Writes take `?dryRun=true` (validate fully, store nothing). Every error
//! is `{ "error": "...", "details": [{kind, name, field, reason}] }` with
//! 400 (malformed body or parameter, the parameter named in `field`), 401
//! (token), 403 (cross-origin), 404, 405, 409 (stale revision, exists),
//! 413 (body or object count over the limits), 415 (not JSON or YAML),
//! 421 (foreign `Host` on loopback), 422 (validation, including
//! cross-object conflicts) or 503 (store down, or too many connections).
//!
//! ## Who can reach it
//!
//! - **Listening.** Loopback (`127.0.0.1:7900`, `[::1]:7900`) and unix
//!   sockets (`unix:/path`, mode 0600) need no token. Any other address
//!   (`0.0.0.0`, `[::]`, a NIC's address) needs a token file:
//!   [`run_server`] refuses to start without one unless
//!   [`ServerOptions::insecure`], which warns at every start.
//! - **Token.** With a token, every request but `/livez` needs
//!   `Authorization: Bearer <token>` (401 otherwise).
//! - **Browsers.** A web page in an operator's browser must not drive the
//!   API. Checked before the token: a request whose `Origin` is not the
//!   server's own (`http://` or `https://` + its `Host`), or with
//!   `Sec-Fetch-Site: cross-site` or `same-site`, is a 403; on a loopback
//!   listener, a `Host` other than `localhost`, `127.0.0.1`, `[::1]` or
//!   the listener's own address (any port) is a 421, which stops DNS
//!   rebinding. Write bodies must be `application/json`,
//!   `application/yaml`, `application/x-yaml` or `text/yaml` (parameters
//!   such as `; charset=utf-8` allowed), else 415: `text/plain` and form
//!   types, which a page can send without a preflight, are refused. A body
//!   with no `Content-Type` is read as JSON if it starts with `{` or `[`,
//!   else as YAML.
//!
//! ## Connections
//!
//! HTTP/1.1 with keep-alive, served with hyper directly ([`Limits`]):
//! a request head must arrive within `header_read_timeout` (30 s); a
//! connection with no request in progress is closed after
//! `idle_timeout` (30 s); a watch stream is a request in progress, so it
//! stays open (a `BOOKMARK` every 15 s). At most `max_connections` are
//! open (default: the open-file limit, raised to the hard limit at
//! start, less an eighth and at least 64 spare): a newcomer at the cap
//! closes the connection idle the longest, or, when none is idle, is
//! answered 503 with `Retry-After: 1`, so `/livez` and `/readyz` answer
//! rather than hang. Bodies over 64 KiB are parsed off the async
//! workers. At shutdown the listener closes, watch streams end and the
//! server returns once every connection has closed.
//!
//! Server-set fields: `metadata.generation` (1 on create, +1 per spec
//! change), `metadata.revision` (the store's mod revision, filled on read),
//! `metadata.creationTimestamp`; `status` is kept across spec updates and
//! ignored when clients send it (except on `/status`). Writing an object
//! with the same spec, labels and node is a no-op (no new revision).

pub mod bench;
mod cache;
pub mod client;
mod conns;
pub mod error;
mod openapi;
mod query;
mod routes;
pub mod selector;
mod server;
mod write;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OnceCell};
use weir_model::{Object, Registry};
use weir_store::Store;

pub use conns::raise_open_files;
pub use error::{ApiError, Detail, ErrorBody};
pub use openapi::openapi;
pub use query::Query;

/// Pieces for describing extra endpoints in the OpenAPI document.
pub mod openapi_parts {
    pub use crate::openapi::{ok, responses, schema_ref, unsigned_query};
}
pub use server::{
    bind, read_token, run_server, serve, Listen, Listener, Server, ServerError, ServerOptions,
};
pub use write::{Action, Outcome};

/// Limits on requests and connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most objects in one apply.
    pub max_objects: usize,
    /// How long a client has to send a whole request head (from the
    /// moment the server waits for it).
    pub header_read_timeout: Duration,
    /// How long a connection with no request in progress stays open.
    /// A watch stream is a request in progress until it ends.
    pub idle_timeout: Duration,
    /// Most connections open at once; `None`: the open-file limit less a
    /// margin. At the cap, a new connection closes the one idle the
    /// longest, or is answered 503 when none is idle.
    pub max_connections: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_objects: 50_000,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_connections: None,
        }
    }
}

/// What the API serves from.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    /// When set, every request but `/livez` needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    pub limits: Limits,
    /// This gateway's node name (reported by `/readyz`).
    pub node: String,
    /// More routes served next to the API's (the daemon's own endpoints),
    /// behind the same token check, and their part of the OpenAPI document.
    pub extra: Option<Extra>,
}

/// Endpoints served next to the API's (the daemon's `/v1/status`, ...),
/// with their entries in the OpenAPI document: whoever adds a route
/// describes it.
#[derive(Clone)]
pub struct Extra {
    pub router: axum::Router,
    /// Entries for the document's `paths`, keyed by path.
    pub paths: serde_json::Map<String, serde_json::Value>,
    /// Schemas those paths refer to, for `components.schemas`.
    pub schemas: serde_json::Map<String, serde_json::Value>,
}

impl ApiState {
    /// Built-in kinds, no token, default limits, node `local`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        ApiState {
            store,
            registry: Registry::builtin(),
            token: None,
            limits: Limits::default(),
            node: "local".into(),
            extra: None,
        }
    }
}

/// State shared by the handlers of one router.
pub(crate) struct Shared {
    pub state: ApiState,
    pub write_lock: Mutex<()>,
    /// The guard key's mod revision as last seen by this server
    /// ([`write::GUARD_UNKNOWN`] until read).
    pub guard_rev: std::sync::atomic::AtomicU64,
    cache: OnceCell<Arc<cache::Cache>>,
    /// Set at shutdown: connections close once idle, watch streams end.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// How clients reach the listener (for the `Host` check).
    pub reach: server::Reach,
}

impl Shared {
    fn new(state: ApiState, reach: server::Reach) -> Arc<Self> {
        Arc::new(Shared {
            state,
            write_lock: Mutex::new(()),
            guard_rev: std::sync::atomic::AtomicU64::new(write::GUARD_UNKNOWN),
            cache: OnceCell::new(),
            closing: tokio::sync::watch::channel(false).0,
            reach,
        })
    }

    pub async fn cache(&self) -> Result<Arc<cache::Cache>, ApiError> {
        self.cache
            .get_or_try_init(|| {
                cache::Cache::start(self.state.store.clone(), self.state.registry.clone())
            })
            .await
            .cloned()
            .map_err(ApiError::from)
    }
}

/// The API's routes over `state`.
pub fn router(state: ApiState) -> axum::Router {
    routes::router(Shared::new(state, server::Reach::Network))
}

/// The documents of a request body, as every write endpoint reads them:
/// by `Content-Type` (sniffed when absent), JSON (an object, an array of
/// objects or `{"items": [...]}`) or YAML (several documents; sequences
/// spread), read strictly. Each document still has to pass
/// [`Registry::parse`]. Errors are the API's 400 and 415 answers.
pub fn decode_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<serde_json::Value>, ApiError> {
    let mut headers = axum::http::HeaderMap::new();
    if let Some(ct) = content_type {
        let v = axum::http::HeaderValue::from_str(ct).map_err(|_| {
            ApiError::bad_request(format!("Content-Type {ct:?} is not a valid header value"))
        })?;
        headers.insert(axum::http::header::CONTENT_TYPE, v);
    }
    routes::documents(routes::format_of(&headers)?, body)
}

/// Whether a daemon on `node` should act on `object`: objects without
/// `metadata.node` are meant for every node.
pub fn meant_for(object: &Object, node: &str) -> bool {
    object.metadata.node.as_deref().is_none_or(|n| n == node)
}
