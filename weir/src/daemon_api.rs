//! The daemon's own API endpoints, next to the object API: what the
//! reconciler is doing and how traffic flows.
//!
//! | path | what |
//! |---|---|
//! | `GET /v1/status` | objects by state, and each object's state |
//! | `GET /v1/history?limit=N` | the last reconciler transactions with their operations |
//! | `GET /v1/graph` | the dependency graph in Graphviz DOT |
//! | `GET /v1/stats` | dataplane counters: per node and per drop reason |

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use weir_agent::descriptors::Desired;
use weir_agent::Agent;
use weir_model::Registry;
use weir_reconcile::Reconciler;

type Rec = Arc<Mutex<Reconciler<Desired>>>;

#[derive(Clone)]
struct Daemon {
    rec: Rec,
    agent: Arc<Mutex<Agent>>,
}

pub fn router(rec: Rec, agent: Arc<Mutex<Agent>>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/history", get(history))
        .route("/v1/graph", get(graph))
        .route("/v1/stats", get(stats))
        .with_state(Daemon { rec, agent })
}

async fn status(State(d): State<Daemon>) -> Json<Value> {
    let reg = Registry::builtin();
    let rec = d.rec.lock().unwrap();
    let s = rec.summary();
    let objects: Vec<Value> = rec
        .statuses()
        .into_iter()
        .map(|(k, st)| {
            let m = crate::serve::status_of(&reg, &st);
            json!({ "key": k, "state": m.state, "reason": m.reason, "attempts": m.attempts, "lastTransition": m.last_transition })
        })
        .collect();
    Json(json!({ "summary": crate::cli::output::summary_json(&s), "objects": objects }))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn history(
    State(d): State<Daemon>,
    weir_api::Query(q): weir_api::Query<Limit>,
) -> Json<Value> {
    let rec = d.rec.lock().unwrap();
    let all: Vec<_> = rec.history().collect();
    let n = q.limit.unwrap_or(20).min(all.len());
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
    Json(json!({ "items": items }))
}

async fn graph(State(d): State<Daemon>) -> impl IntoResponse {
    let dot = d.rec.lock().unwrap().graph_dot();
    ([(header::CONTENT_TYPE, "text/vnd.graphviz")], dot)
}

async fn stats(State(d): State<Daemon>) -> Json<Value> {
    let st = d.agent.lock().unwrap().stats();
    let nodes: Vec<Value> = st
        .nodes
        .iter()
        .map(|(n, s)| json!({ "node": n, "calls": s.calls, "packets": s.packets, "cycles": s.cycles }))
        .collect();
    let reasons: serde_json::Map<String, Value> = weir_dataplane::Reason::ALL
        .iter()
        .filter(|r| st.reason(**r) > 0)
        .map(|r| (r.name().to_string(), json!(st.reason(*r))))
        .collect();
    Json(
        json!({ "rxPackets": st.rx_packets, "txPackets": st.tx_packets, "nodes": nodes, "reasons": reasons }),
    )
}
