//! The daemon's own API endpoints, next to the object API: what the
//! reconciler is doing and how traffic flows.
//!
//! | path | what |
//! |---|---|
//! | `GET /v1/status` | objects by state, and each object's state |
//! | `GET /v1/history?limit=N` | the last reconciler transactions with their operations |
//! | `GET /v1/graph` | the dependency graph in Graphviz DOT |
//! | `GET /v1/stats` | dataplane counters: per node and per drop reason, and NAT per rule |
//! | `GET /v1/sessions?vpc=&rule=&inside=&outside=&protocol=&limit=` | live NAT sessions |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use weir_agent::Agent;
use weir_agent::Desired;
use weir_api::openapi_parts::{ok, responses, schema_ref, unsigned_query};
use weir_api::{ApiError, Detail};
use weir_reconcile::Reconciler;

type Rec = Arc<Mutex<Reconciler<Desired>>>;

#[derive(Clone)]
struct Daemon {
    rec: Rec,
    agent: Arc<Mutex<Agent>>,
}

/// The daemon's endpoints with their part of the OpenAPI document.
pub fn extra(rec: Rec, agent: Arc<Mutex<Agent>>) -> weir_api::Extra {
    let (paths, schemas) = openapi_paths();
    weir_api::Extra {
        router: router(rec, agent),
        paths,
        schemas,
    }
}

pub fn router(rec: Rec, agent: Arc<Mutex<Agent>>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/history", get(history))
        .route("/v1/graph", get(graph))
        .route("/v1/stats", get(stats))
        .route("/v1/sessions", get(sessions))
        .with_state(Daemon { rec, agent })
}

async fn status(State(d): State<Daemon>) -> Json<Value> {
    let reg = weir_model::builtin();
    let rec = d.rec.lock().unwrap();
    let s = rec.summary();
    let objects: Vec<Value> = rec
        .statuses()
        .into_iter()
        .map(|(k, st)| {
            let m = crate::status_of(reg, &st);
            json!({ "key": k, "state": m.state, "reason": m.reason, "attempts": m.attempts, "lastTransition": m.last_transition })
        })
        .collect();
    Json(json!({ "summary": summary_json(&s), "objects": objects }))
}

/// `?limit=`: plain decimal digits, as the document says.
fn limit(q: Result<Query<HashMap<String, String>>, QueryRejection>) -> Result<usize, ApiError> {
    let Query(q) =
        q.map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))?;
    let Some(v) = q.get("limit") else {
        return Ok(20);
    };
    let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    v.parse::<u64>()
        .ok()
        .filter(|_| digits)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or_else(|| {
            ApiError::bad_request(format!("?limit= takes a number of transactions, got {v:?}"))
                .with_detail(Detail::new("", "", "limit", "expected an unsigned integer"))
        })
}

async fn history(
    State(d): State<Daemon>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(q)?;
    let rec = d.rec.lock().unwrap();
    let all: Vec<_> = rec.history().collect();
    let n = limit.min(all.len());
    let items: Vec<Value> = all[all.len() - n..]
        .iter()
        .map(|t| {
            json!({
                "seq": t.seq,
                "at": humantime::format_rfc3339_millis(t.at).to_string(),
                "kind": format!("{:?}", t.kind),
                "operations": t.operation_lines(),
                "notes": t.notes,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn graph(State(d): State<Daemon>) -> Response {
    let dot = d.rec.lock().unwrap().graph_dot();
    ([(header::CONTENT_TYPE, "text/vnd.graphviz")], dot).into_response()
}

async fn stats(State(d): State<Daemon>) -> Json<Value> {
    let per_worker = d.agent.lock().unwrap().worker_stats();
    let workers: Vec<Value> = per_worker
        .iter()
        .map(|w| json!({ "rxPackets": w.rx_packets, "txPackets": w.tx_packets }))
        .collect();
    let st = weir_dataplane::WorkerStats::merge(&per_worker);
    let nodes: Vec<Value> = st
        .nodes
        .iter()
        .map(|(n, s)| json!({ "node": n, "calls": s.calls, "packets": s.packets, "cycles": s.cycles }))
        .collect();
    let reasons: serde_json::Map<String, Value> = st
        .drops()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.to_string(), json!(n)))
        .collect();
    let nat = crate::nat::stats(&d.agent);
    Json(
        json!({ "rxPackets": st.rx_packets, "txPackets": st.tx_packets, "workers": workers, "nodes": nodes, "reasons": reasons, "nat": nat }),
    )
}

async fn sessions(
    State(d): State<Daemon>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) =
        q.map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))?;
    let filter = crate::nat::Filter::parse(&q)?;
    let agent = d.agent.clone();
    // A walk of the whole session table: off the runtime's threads.
    tokio::task::spawn_blocking(move || crate::nat::sessions(&agent, &filter))
        .await
        .map(Json)
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The OpenAPI `paths` of these endpoints and the schemas they use.
pub fn openapi_paths() -> (Map<String, Value>, Map<String, Value>) {
    let count = json!({"type": "integer", "minimum": 0});
    let text_or_null = json!({"type": ["string", "null"]});
    let mut schemas = Map::new();
    schemas.insert("DaemonStatus".into(), json!({
        "type": "object", "required": ["summary", "objects"], "properties": {
            "summary": {"type": "object",
                "required": ["configured", "pending", "retrying", "failed", "invalid"],
                "properties": {"configured": count, "pending": count, "retrying": count,
                    "failed": count, "invalid": count}},
            "objects": {"type": "array", "items": {"type": "object",
                "required": ["key", "state", "attempts"], "properties": {
                    "key": {"type": "string"},
                    "state": {"enum": ["configured", "pending", "failed", "invalid", "unknown"]},
                    "reason": text_or_null, "attempts": count,
                    "lastTransition": text_or_null}}},
        }
    }));
    schemas.insert(
        "History".into(),
        json!({
            "type": "object", "required": ["items"], "properties": {
                "items": {"type": "array", "items": {"type": "object",
                    "required": ["seq", "at", "kind", "operations", "notes"], "properties": {
                        "seq": count, "at": {"type": "string"},
                        "kind": {"enum": ["SetDesired", "ResyncFull", "ResyncDownstream", "Retry"]},
                        "operations": {"type": "array", "items": {"type": "string"}},
                        "notes": {"type": "array", "items": {"type": "string"}}}}},
            }
        }),
    );
    schemas.insert("Stats".into(), json!({
        "type": "object", "required": ["rxPackets", "txPackets", "workers", "nodes", "reasons"], "properties": {
            "rxPackets": count, "txPackets": count,
            "workers": {"type": "array", "description": "each worker's packets, in worker order",
                "items": {"type": "object", "required": ["rxPackets", "txPackets"], "properties": {
                    "rxPackets": count, "txPackets": count}}},
            "nodes": {"type": "array", "items": {"type": "object",
                "required": ["node", "calls", "packets", "cycles"], "properties": {
                    "node": {"type": "string"}, "calls": count, "packets": count, "cycles": count}}},
            "reasons": {"type": "object", "additionalProperties": count,
                "description": "packets dropped per reason, reasons with none left out"},
            "nat": {"type": "object", "required": ["capacity", "active", "rules"],
                "description": "NAT44: the session table and each rule's sessions",
                "properties": {
                    "capacity": count, "active": count,
                    "rules": {"type": "array", "items": {"type": "object",
                        "required": ["name", "active", "created", "expired"], "properties": {
                            "name": {"type": "string"}, "active": count,
                            "created": count, "expired": count}}}}},
        }
    }));
    let endpoint =
        json!({"type": "string", "description": "address:port (ICMP: the query identifier)"});
    schemas.insert("Sessions".into(), json!({
        "type": "object", "required": ["total", "items"], "properties": {
            "total": {"type": "integer", "minimum": 0,
                "description": "sessions the filters take, items holding at most limit of them"},
            "items": {"type": "array", "items": {"type": "object",
                "required": ["vpc", "rule", "protocol", "inside", "outside", "remote", "state", "idle"],
                "properties": {
                    "vpc": {"type": ["string", "null"], "description": "the VPC of the inside host"},
                    "rule": {"type": ["string", "null"], "description": "the NatRule that made the session"},
                    "protocol": {"type": "string", "description": "tcp, udp, icmp or the protocol number"},
                    "inside": endpoint, "outside": endpoint.clone(), "remote": endpoint.clone(),
                    "state": {"enum": ["active", "syn-sent", "established", "fin-wait", "closing", "reset"],
                        "description": "TCP's state; active for other protocols"},
                    "idle": {"type": "integer", "minimum": 0, "description": "seconds since the last packet"}}}},
        }
    }));
    let mut paths = Map::new();
    paths.insert("/v1/status".into(), json!({"get": {
        "operationId": "daemonStatus", "tags": ["daemon"],
        "summary": "Objects by reconciler state, and each object's state",
        "responses": responses(&[("200", ok("The reconciler's view", schema_ref("DaemonStatus")))], &["401"]),
    }}));
    paths.insert("/v1/history".into(), json!({"get": {
        "operationId": "daemonHistory", "tags": ["daemon"],
        "summary": "The last reconciler transactions, oldest first",
        "parameters": [{"name": "limit", "in": "query", "required": false,
            "schema": unsigned_query("How many transactions (default 20)")}],
        "responses": responses(&[("200", ok("Transactions", schema_ref("History")))], &["400", "401"]),
    }}));
    paths.insert(
        "/v1/graph".into(),
        json!({"get": {
            "operationId": "daemonGraph", "tags": ["daemon"],
            "summary": "The dependency graph in Graphviz DOT",
            "responses": responses(&[("200", json!({"description": "DOT text",
                "content": {"text/vnd.graphviz": {"schema": {"type": "string"}}}}))], &["401"]),
        }}),
    );
    let text_query = |d: &str| json!({"type": "string", "description": d});
    paths.insert("/v1/sessions".into(), json!({"get": {
        "operationId": "daemonSessions", "tags": ["daemon"],
        "summary": "Live NAT sessions, filtered",
        "parameters": [
            {"name": "vpc", "in": "query", "required": false, "schema": text_query("The VPC of the inside host")},
            {"name": "rule", "in": "query", "required": false, "schema": text_query("The NatRule's name")},
            {"name": "inside", "in": "query", "required": false, "schema": text_query("The inside host's IPv4 address")},
            {"name": "outside", "in": "query", "required": false, "schema": text_query("The translated IPv4 address")},
            {"name": "protocol", "in": "query", "required": false, "schema": text_query("tcp, udp, icmp or a protocol number")},
            {"name": "limit", "in": "query", "required": false,
                "schema": unsigned_query("How many sessions to list (default 1000)")}],
        "responses": responses(&[("200", ok("Sessions", schema_ref("Sessions")))], &["400", "401"]),
    }}));
    paths.insert(
        "/v1/stats".into(),
        json!({"get": {
            "operationId": "daemonStats", "tags": ["daemon"],
            "summary": "Dataplane counters: per node and per drop reason, and NAT per rule",
            "responses": responses(&[("200", ok("Counters", schema_ref("Stats")))], &["401"]),
        }}),
    );
    (paths, schemas)
}

/// The reconciler's summary as `/v1/status` gives it.
pub fn summary_json(s: &weir_reconcile::Summary) -> Value {
    json!({
        "configured": s.configured,
        "pending": s.pending,
        "retrying": s.retrying,
        "failed": s.failed,
        "invalid": s.invalid,
    })
}
