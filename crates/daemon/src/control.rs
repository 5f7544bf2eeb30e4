//! The control loop: store changes into the reconciler, retries, and the
//! dataplane's slow path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use weir_agent::Agent;
use weir_agent::Desired;
use weir_reconcile::{Reconciler, StatusChange};
use weir_store::Store;

use crate::watch::{desired_of, wanted, Change, Generations};

/// The daemon's control loop: store changes into the reconciler, retries,
/// and the dataplane's slow path (neighbours, held packets).
#[allow(clippy::too_many_arguments)]
pub(crate) fn control_loop(
    rt: &tokio::runtime::Handle,
    store: &dyn Store,
    node: &str,
    rec: Arc<Mutex<Reconciler<Desired>>>,
    agent: Arc<Mutex<Agent>>,
    watch_rx: mpsc::Receiver<Change>,
    mut seen: u64,
    wait_for: u64,
    ready: mpsc::Sender<()>,
    stop: Arc<AtomicBool>,
    (generations, status_tx): (Generations, mpsc::Sender<Vec<StatusChange>>),
) {
    let mut ready = Some(ready);
    // A change that arrived while waiting, to handle first.
    let mut woken: Option<Change> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut batch: Vec<(String, Option<Desired>)> = Vec::new();
        let mut relist = false;
        // Keys whose spec changed: their status must name the new
        // generation even when their state stays the same (the reconciler
        // reports only changes of state).
        let mut respec: Vec<String> = Vec::new();
        while let Some(c) = woken.take().or_else(|| watch_rx.try_recv().ok()) {
            match c {
                Change::Put(k, o, r) => {
                    seen = r;
                    let d = wanted(&o, node);
                    let mut gens = generations.lock().unwrap();
                    if d.is_some() {
                        let g = o.metadata.generation.unwrap_or(1);
                        if gens.insert(k.clone(), g) != Some(g) {
                            respec.push(k.clone());
                        }
                    } else {
                        gens.remove(&k);
                    }
                    batch.push((k, d));
                }
                Change::Delete(k, r) => {
                    seen = r;
                    generations.lock().unwrap().remove(&k);
                    batch.push((k, None));
                }
                Change::Relist => relist = true,
            }
        }
        let busy = !batch.is_empty() || relist;
        {
            let mut rec = rec.lock().unwrap();
            if relist {
                if let Ok((list, r)) = rt.block_on(store.list("/weir/v1/")) {
                    seen = r;
                    let desired = desired_of(&list, node, &generations);
                    respec.extend(desired.iter().map(|(k, _)| k.clone()));
                    rec.resync_full(desired);
                }
            }
            if !batch.is_empty() {
                rec.set_desired(batch);
            }
            let restated: Vec<StatusChange> = respec
                .into_iter()
                .filter_map(|key| rec.status(&key).map(|status| StatusChange { key, status }))
                .collect();
            if !restated.is_empty() {
                let _ = status_tx.send(restated);
            }
            rec.tick(Instant::now());
        }
        let polled = agent.lock().unwrap().poll();
        if seen >= wait_for {
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
        }
        if !busy && polled == 0 {
            // Idle: wait for the next store change, but come back soon for
            // the slow path (neighbour timers, held packets) and retries.
            match watch_rx.recv_timeout(Duration::from_micros(200)) {
                Ok(c) => woken = Some(c),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_micros(200))
                }
            }
        }
    }
}
