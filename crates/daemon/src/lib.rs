//! The daemon behind `weir serve`, as a library that tests run in-process.
//! Keeps desired state in the store (embedded
//! by default, or etcd), serves the API, and reconciles the objects meant
//! for this node into the dataplane: pending while their dependencies are
//! missing, retried when they fail, status written back to each object.
//! A day-0 file is applied through the API at start. SIGTERM or SIGINT stop
//! it cleanly (interfaces released, XDP programs detached, kernel mirrors
//! deleted).

pub mod api;
mod args;
mod control;
pub mod nat;
mod status;
mod unsupported;
mod watch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_agent::{kind, Agent, AgentOptions, Desired};
use weir_reconcile::{Reconciler, StatusChange};
use weir_store::Store;

pub use api::summary_json;
pub use args::ServeArgs;
use control::control_loop;
pub use status::status_of;
use status::write_statuses;
use watch::{compact_etcd, desired_of, follow, hostname, Change, Generations};

/// A running daemon: the API, the reconciler and the dataplane.
pub struct Daemon {
    pub agent: Arc<Mutex<Agent>>,
    pub rec: Arc<Mutex<Reconciler<Desired>>>,
    pub client: weir_api::client::Client,
    pub rt: tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    control: Option<std::thread::JoinHandle<()>>,
    api: Option<tokio::task::JoinHandle<Result<(), weir_api::ServerError>>>,
    api_stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Why the daemon could not start, and the exit code to use.
pub struct StartError(pub i32, pub String);

impl Daemon {
    /// Start everything; returns once the day-0 objects are reconciled.
    pub fn start(args: &ServeArgs, stop: Arc<AtomicBool>) -> Result<Daemon, StartError> {
        let fail = |code: i32| move |e: String| StartError(code, e);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| StartError(1, e.to_string()))?;
        let node = args.node.clone().unwrap_or_else(hostname);
        if !args.store.starts_with("etcd://") {
            if let Some(dir) = std::path::Path::new(&args.store).parent() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        let store: Arc<dyn Store> = rt
            .block_on(async { weir_store::open_with_history(&args.store, args.history).await })
            .map_err(|e| StartError(1, format!("store {}: {e}", args.store)))?;
        if args.store.starts_with("etcd://") {
            // etcd keeps every revision until compacted; the embedded store
            // trims its history as it writes.
            rt.spawn(compact_etcd(store.clone(), args.history));
        }
        let token = args
            .token_file
            .as_ref()
            .map(|f| weir_api::read_token(f))
            .transpose()
            .map_err(|e| StartError(2, e.to_string()))?;

        // The dataplane and the reconciler driving it.
        let agent = Arc::new(Mutex::new(Agent::start(AgentOptions {
            workers: args.workers,
            cores: args.cores.clone(),
            mirror: !args.no_mirror,
        })));
        // Before any rule: the table is allocated with the first one.
        weir_dataplane::Nat44::set_capacity(&mut agent.lock().unwrap().control, args.nat_sessions);
        let (status_tx, status_rx) = mpsc::channel::<Vec<StatusChange>>();
        let generations: Generations = Arc::default();
        let spec_tx = status_tx.clone();
        let mut rec: Reconciler<Desired> = Reconciler::new();
        kind::register_all(&agent, &mut rec);
        for k in weir_model::builtin().kinds() {
            if !kind::applies(k) {
                rec.register(unsupported::Unsupported::new(k, &node));
            }
        }
        rec.on_change(move |t| {
            if !t.changes.is_empty() {
                let _ = status_tx.send(t.changes.clone());
            }
        });
        let rec = Arc::new(Mutex::new(rec));

        // The API, with the daemon's own endpoints.
        let (api_stop_tx, api_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let opts = weir_api::ServerOptions {
            listen: args.listen.clone(),
            store: store.clone(),
            token_file: args.token_file.clone(),
            insecure: args.insecure,
            node: node.clone(),
            extra: Some(api::extra(rec.clone(), agent.clone())),
        };
        // Bound here, so that a refused or busy address stops the start.
        let server = rt
            .block_on(weir_api::Server::start(opts))
            .map_err(|e| StartError(if e.is_usage() { 2 } else { 1 }, e.to_string()))?;
        let api = rt.spawn(server.serve(async {
            let _ = api_stop_rx.await;
        }));
        let server = match args.listen.strip_prefix("unix:") {
            Some(p) => format!("unix:{p}"),
            None => format!("http://{}", args.listen),
        };
        let client = weir_api::client::Client::new(&server)
            .map_err(|e| StartError(1, e.to_string()))?
            .with_token(token);

        // Start from what the store holds, then follow it.
        let (list, rev) = rt
            .block_on(store.list("/weir/v1/"))
            .map_err(|e| StartError(1, format!("store: {e}")))?;
        let desired = desired_of(&list, &node, &generations);
        eprintln!(
            "weir serve: node {node}, store {} at revision {rev}, {} objects to reconcile",
            args.store,
            desired.len()
        );
        rec.lock().unwrap().resync_full(desired);
        let (watch_tx, watch_rx) = mpsc::channel::<Change>();
        rt.spawn(follow(store.clone(), rev + 1, watch_tx));

        // Status back to the objects, off the control loop, in batches.
        let sstore = store.clone();
        let status_rt = rt.handle().clone();
        let sgens = generations.clone();
        std::thread::spawn(move || {
            let reg = weir_model::builtin();
            while let Ok(first) = status_rx.recv() {
                // Coalesce: the latest status per key over a short window.
                let mut latest = std::collections::BTreeMap::new();
                for c in first {
                    latest.insert(c.key.clone(), c.status);
                }
                let until = Instant::now() + Duration::from_millis(20);
                while let Ok(more) =
                    status_rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                {
                    for c in more {
                        latest.insert(c.key.clone(), c.status);
                    }
                }
                let items: Vec<_> = latest.into_iter().collect();
                for chunk in items.chunks(500) {
                    status_rt.block_on(write_statuses(&*sstore, reg, &sgens, chunk));
                }
            }
        });

        // Day-0 objects go in through the API like any other client's.
        let mut wait_for = rev;
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| StartError(2, format!("{}: {e}", path.display())))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match rt.block_on(client.apply_text(&text, false)) {
                    Ok(r) => {
                        wait_for = r.revision;
                        for o in &r.results {
                            eprintln!(
                                "weir serve: {}/{} {}",
                                o.kind.to_lowercase(),
                                o.name,
                                o.action.as_str()
                            );
                        }
                        break;
                    }
                    Err(e) if e.status().is_some() => {
                        return Err(fail(2)(format!("{}: {e}", path.display())));
                    }
                    Err(e) if Instant::now() > deadline => {
                        return Err(fail(1)(format!("API not reachable: {e}")));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }

        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let control = {
            let (rec, agent, store, stop) =
                (rec.clone(), agent.clone(), store.clone(), stop.clone());
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name("weir-control".into())
                .spawn(move || {
                    control_loop(
                        &handle,
                        &*store,
                        &node,
                        rec,
                        agent,
                        watch_rx,
                        rev,
                        wait_for,
                        ready_tx,
                        stop,
                        (generations, spec_tx),
                    )
                })
                .map_err(|e| StartError(1, e.to_string()))?
        };
        let _ = ready_rx.recv();
        Ok(Daemon {
            agent,
            rec,
            client,
            rt,
            stop,
            control: Some(control),
            api: Some(api),
            api_stop: Some(api_stop_tx),
        })
    }

    /// Stop the control loop and the API, release every port; the final
    /// dataplane counters.
    pub fn shutdown(mut self) -> weir_dataplane::WorkerStats {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(c) = self.control.take() {
            let _ = c.join();
        }
        if let Some(s) = self.api_stop.take() {
            let _ = s.send(());
        }
        if let Some(a) = self.api.take() {
            let _ = self.rt.block_on(a);
        }
        let stats = self.agent.lock().unwrap().shutdown();
        stats
    }
}
