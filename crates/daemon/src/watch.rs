//! Following the store: the objects meant for this node, as the
//! reconciler wants them, and every change after.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_agent::Desired;
use weir_model::Object;
use weir_store::{EventKind, Store};

/// The reconciler's desired state from a list of the store, recording
/// each object's generation.
pub(crate) fn desired_of(
    list: &[weir_store::KeyValue],
    node: &str,
    generations: &Generations,
) -> Vec<(String, Desired)> {
    let mut gens = generations.lock().unwrap();
    gens.clear();
    list.iter()
        .filter_map(|kv| {
            let o = decode(&kv.value)?;
            let d = wanted(&o, node)?;
            gens.insert(kv.key.clone(), o.metadata.generation.unwrap_or(1));
            Some((kv.key.clone(), d))
        })
        .collect()
}

/// Keeps etcd's history to about the last `keep` revisions, as the
/// embedded store does by itself. Every daemon sharing the cluster may do
/// it; compacting twice to the same revision is harmless.
pub(crate) async fn compact_etcd(store: Arc<dyn Store>, keep: u64) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        if let Ok(rev) = store.revision().await {
            if rev > keep {
                let _ = store.compact(rev - keep).await;
            }
        }
    }
}

/// Follow the store from `from`, forever: every change, in order; a
/// relist when the history was compacted away.
pub(crate) async fn follow(store: Arc<dyn Store>, mut from: u64, tx: mpsc::Sender<Change>) {
    loop {
        match store.watch("/weir/v1/", from).await {
            Ok(mut w) => {
                while let Some(ev) = w.next().await {
                    let Ok(ev) = ev else { break };
                    from = ev.revision + 1;
                    let c = match ev.kind {
                        EventKind::Put => match decode(&ev.kv.value) {
                            Some(o) => Change::Put(ev.kv.key, Box::new(o), ev.revision),
                            None => continue,
                        },
                        EventKind::Delete => Change::Delete(ev.kv.key, ev.revision),
                    };
                    if tx.send(c).is_err() {
                        return;
                    }
                }
            }
            Err(weir_store::StoreError::Compacted { .. }) => {
                if tx.send(Change::Relist).is_err() {
                    return;
                }
                from = store.revision().await.unwrap_or(from) + 1;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The `metadata.generation` of each object as last handed to the
/// reconciler: what its status describes (`status.observedGeneration`).
pub(crate) type Generations = Arc<Mutex<HashMap<String, u64>>>;

/// What the store watch hands the control loop.
pub(crate) enum Change {
    Put(String, Box<Object>, u64),
    Delete(String, u64),
    Relist,
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "weir".into())
}

pub(crate) fn decode(value: &[u8]) -> Option<Object> {
    serde_json::from_slice(value).ok()
}

/// The reconciler's view of an object, if it is meant for this node: every
/// built-in kind goes to the reconciler, those the agent does not apply to
/// a descriptor that says so in their status.
pub(crate) fn wanted(o: &Object, node: &str) -> Option<Desired> {
    (weir_model::builtin().get(&o.kind).is_some() && weir_api::meant_for(o, node))
        .then(|| Desired::of(o))
}
