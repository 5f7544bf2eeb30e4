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
//! 400 (malformed body or parameter), 401 (token), 404, 409 (stale
//! revision, exists), 413 (body or object count over the limits), 415,
//! 422 (validation, including cross-object conflicts) or 503 (store down).
//!
//! Server-set fields: `metadata.generation` (1 on create, +1 per spec
//! change), `metadata.revision` (the store's mod revision, filled on read),
//! `metadata.creationTimestamp`; `status` is kept across spec updates and
//! ignored when clients send it (except on `/status`). Writing an object
//! with the same spec, labels and node is a no-op (no new revision).

pub mod bench;
mod cache;
pub mod client;
pub mod error;
mod openapi;
mod routes;
pub mod selector;
mod server;
mod write;

use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};
use weir_model::{Object, Registry};
use weir_store::Store;

pub use error::{ApiError, Detail, ErrorBody};
pub use openapi::openapi;

/// Pieces for describing extra endpoints in the OpenAPI document.
pub mod openapi_parts {
    pub use crate::openapi::{ok, responses, schema_ref, unsigned_query};
}
pub use server::{
    bind, read_token, run_server, serve, Listen, Listener, ServerError, ServerOptions,
};
pub use write::{Action, Outcome};

/// Size and count limits on requests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most objects in one apply.
    pub max_objects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_objects: 50_000,
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
    cache: OnceCell<Arc<cache::Cache>>,
    pub closing: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    fn new(state: ApiState) -> Arc<Self> {
        Arc::new(Shared {
            state,
            write_lock: Mutex::new(()),
            cache: OnceCell::new(),
            closing: tokio::sync::watch::channel(false).0,
        })
    }

    pub async fn cache(&self) -> Result<Arc<cache::Cache>, ApiError> {
        self.cache
            .get_or_try_init(|| cache::Cache::start(self.state.store.clone()))
            .await
            .cloned()
            .map_err(ApiError::from)
    }
}

/// The API's routes over `state`.
pub fn router(state: ApiState) -> axum::Router {
    routes::router(Shared::new(state))
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
    routes::documents(&headers, body)
}

/// Whether a daemon on `node` should act on `object`: objects without
/// `metadata.node` are meant for every node.
pub fn meant_for(object: &Object, node: &str) -> bool {
    object.metadata.node.as_deref().is_none_or(|n| n == node)
}
