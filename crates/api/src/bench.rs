//! The API benchmark: the server in-process on a loopback port, driven
//! through [`Client`](crate::client::Client) over real HTTP.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};
use weir_model::Registry;
use weir_store::Store;

use crate::client::Client;
use crate::{bind, serve, ApiState, Listen};

/// One bulk apply of many Route objects.
#[derive(Debug, Clone, Serialize)]
pub struct BulkBench {
    pub scenario: &'static str,
    pub objects: usize,
    pub seconds: f64,
    pub objects_per_sec: f64,
}

/// Single-object PUTs one after another.
#[derive(Debug, Clone, Serialize)]
pub struct SingleBench {
    pub scenario: &'static str,
    pub puts: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

fn route(name: &str, i: u32) -> Value {
    json!({
        "apiVersion": "weir/v1",
        "kind": "Route",
        "metadata": {"name": name, "labels": {"bench": "api"}},
        "spec": {
            "prefix": format!("{}/32", Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i))),
            "nextHop": {"address": "192.0.2.1"},
        }
    })
}

async fn start(
    store: Arc<dyn Store>,
) -> Result<
    (
        Client,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
    String,
> {
    let listener = bind(&Listen::Tcp(([127, 0, 0, 1], 0).into()))
        .await
        .map_err(|e| e.to_string())?;
    let url = listener.url();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut state = ApiState::new(store);
    state.registry = Registry::builtin();
    let task = tokio::spawn(async move {
        let _ = serve(listener, state, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok((Client::new(&url).map_err(|e| e.to_string())?, tx, task))
}

/// Applies `n` Route objects (`bench-r-<i>`) in one request.
pub async fn bench_bulk(store: Arc<dyn Store>, n: usize) -> Result<BulkBench, String> {
    let (client, stop, task) = start(store).await?;
    let body: Vec<Value> = (0..n as u32)
        .map(|i| route(&format!("bench-r-{i}"), i))
        .collect();
    let body = bytes::Bytes::from(serde_json::to_vec(&body).expect("JSON"));
    let t = Instant::now();
    let (status, answer) = client
        .raw(
            hyper::Method::POST,
            "/v1/apply",
            Some(("application/json", body)),
        )
        .await
        .map_err(|e| e.to_string())?;
    let seconds = t.elapsed().as_secs_f64();
    let _ = stop.send(());
    drop(client);
    let _ = task.await;
    if !status.is_success() {
        return Err(format!(
            "apply answered {status}: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(500)])
        ));
    }
    Ok(BulkBench {
        scenario: "api-bulk-10k",
        objects: n,
        seconds,
        objects_per_sec: n as f64 / seconds,
    })
}

/// `n` PUTs of one new Route each (`bench-s-<i>`), one after another.
pub async fn bench_single(store: Arc<dyn Store>, n: usize) -> Result<SingleBench, String> {
    let (client, stop, task) = start(store).await?;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n as u32 {
        let name = format!("bench-s-{i}");
        let body =
            bytes::Bytes::from(serde_json::to_vec(&route(&name, 0x0010_0000 + i)).expect("JSON"));
        let t = Instant::now();
        let (status, answer) = client
            .raw(
                hyper::Method::PUT,
                &format!("/v1/routes/{name}"),
                Some(("application/json", body)),
            )
            .await
            .map_err(|e| e.to_string())?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        if !status.is_success() {
            return Err(format!(
                "PUT answered {status}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(500)])
            ));
        }
    }
    let _ = stop.send(());
    drop(client);
    let _ = task.await;
    let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1]
        }
    };
    Ok(SingleBench {
        scenario: "api-single-1k",
        puts: n,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
        mean_ms: mean,
    })
}

/// Runs a scenario (`api-bulk-10k` or `api-single-1k`) against the store
/// at `location` (`etcd://...` or a file path; a fresh temporary embedded
/// store when `None`), in a runtime of its own. Returns the JSON line.
pub fn run(scenario: &str, location: Option<&str>) -> Result<Value, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let loc = match location {
            Some(l) => l.to_string(),
            None => dir.path().join("bench.redb").display().to_string(),
        };
        let store = weir_store::open(&loc).await.map_err(|e| e.to_string())?;
        match scenario {
            "api-bulk-10k" => bench_bulk(store, 10_000)
                .await
                .map(|r| serde_json::to_value(r).expect("JSON")),
            "api-single-1k" => bench_single(store, 1_000)
                .await
                .map(|r| serde_json::to_value(r).expect("JSON")),
            s => Err(format!("unknown API scenario {s:?}")),
        }
    })
}
