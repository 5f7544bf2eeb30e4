#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;
use weir_api::client::Client;
use weir_api::{bind, serve, ApiState, Listen};
use weir_store::Store;

pub struct Server {
    pub client: Client,
    pub url: String,
    pub store: Arc<dyn Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start_with(state: ApiState) -> Server {
    let listener = bind(&Listen::Tcp(([127, 0, 0, 1], 0).into()))
        .await
        .unwrap();
    let url = listener.url();
    let store = state.store.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        client: Client::new(&url).unwrap(),
        url,
        store,
        stop: Some(tx),
    }
}

pub async fn start(store: Arc<dyn Store>) -> Server {
    start_with(ApiState::new(store)).await
}

pub async fn embedded() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = weir_store::open(dir.path().join("s.redb").to_str().unwrap())
        .await
        .unwrap();
    (store, dir)
}

impl Server {
    /// Any request; the answer's status and JSON body (Null if none).
    pub async fn req(&self, method: &str, path: &str, body: Option<(&str, &str)>) -> (u16, Value) {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (st, bytes) = self
            .client
            .raw(
                m,
                path,
                body.map(|(ct, b)| (ct, Bytes::from(b.to_string()))),
            )
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (st.as_u16(), v)
    }
    pub async fn json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        self.req(method, path, Some(("application/json", &body.to_string())))
            .await
    }
    pub async fn rev(&self) -> u64 {
        self.store.revision().await.unwrap()
    }
}

pub fn route(name: &str, prefix: &str) -> Value {
    serde_json::json!({
        "apiVersion": "weir/v1", "kind": "Route",
        "metadata": {"name": name},
        "spec": {"prefix": prefix, "blackhole": true}
    })
}

/// The `details` of an error answer, as `(index, kind, name, field)`.
pub fn fields(v: &Value) -> Vec<String> {
    v["details"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}
