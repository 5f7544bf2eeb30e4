//! `weir serve`: the daemon. Keeps desired state in the store (embedded
//! by default, or etcd), serves the API, and reconciles the objects meant
//! for this node into the dataplane: pending while their dependencies are
//! missing, retried when they fail, status written back to each object.
//! A day-0 file is applied through the API at start. SIGTERM or SIGINT stop
//! it cleanly (interfaces released, XDP programs detached, kernel mirrors
//! deleted).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_agent::descriptors::{self, Desired, KINDS};
use weir_agent::{Agent, AgentOptions};
use weir_model::{Object, ObjectRef, Registry, State, Status};
use weir_reconcile::{Reconciler, StatusChange};
use weir_store::{EventKind, Store};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Day-0 file of weir/v1 objects (multi-document YAML), applied
    /// through the API at start.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Where desired state lives: a file (embedded store) or etcd://HOST:PORT[,HOST:PORT].
    #[arg(long, default_value = "/var/lib/weir/store.redb")]
    pub store: String,
    /// API address: 127.0.0.1:PORT, [::1]:PORT, unix:/path, or an address
    /// other hosts can reach (0.0.0.0:PORT, [::]:PORT, ...), which needs
    /// --token-file.
    #[arg(long, default_value = "127.0.0.1:7900")]
    pub listen: String,
    /// Bearer token file; every request but /livez must carry the token.
    /// Required to listen beyond loopback.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Listen beyond loopback without a token: anyone who can reach the
    /// address can change the configuration. Warns at every start.
    #[arg(long)]
    pub insecure: bool,
    /// This gateway's node name: objects with another metadata.node are
    /// left to their node.
    #[arg(long)]
    pub node: Option<String>,
    /// Worker threads (one per core).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// CPUs to pin the workers to, e.g. 1 or 2,3.
    #[arg(long, value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// Do not create kernel mirrors (TAPs) for the interfaces.
    #[arg(long)]
    pub no_mirror: bool,
    /// Write "ready" to this file once the day-0 objects are reconciled.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Revisions of store history to keep for watches (older ones are
    /// compacted away; a watch from before them is told to relist).
    #[arg(long, default_value_t = weir_store::DEFAULT_HISTORY, value_parser = clap::value_parser!(u64).range(1..))]
    pub history: u64,
}

/// The `metadata.generation` of each object as last handed to the
/// reconciler: what its status describes (`status.observedGeneration`).
type Generations = Arc<Mutex<HashMap<String, u64>>>;

/// What the store watch hands the control loop.
enum Change {
    Put(String, Box<Object>, u64),
    Delete(String, u64),
    Relist,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "weir".into())
}

fn decode(value: &[u8]) -> Option<Object> {
    serde_json::from_slice(value).ok()
}

/// The reconciler's view of an object, if this daemon handles it.
fn wanted(o: &Object, node: &str) -> Option<Desired> {
    (KINDS.contains(&o.kind.as_str()) && weir_api::meant_for(o, node)).then(|| Desired::of(o))
}

fn to_ref(reg: &Registry, key: &str) -> ObjectRef {
    let rest = key.trim_start_matches("/weir/v1/");
    let (kind, name) = rest.split_once('/').unwrap_or((rest, ""));
    let kind = reg
        .lookup(kind)
        .map(|k| k.name().to_string())
        .unwrap_or_else(|| kind.to_string());
    ObjectRef::new(kind, if name.is_empty() { "*" } else { name })
}

/// The object status for a reconciler state.
pub fn status_of(reg: &Registry, s: &weir_reconcile::Status) -> Status {
    use weir_reconcile::State as R;
    let (state, reason, missing) = match &s.state {
        R::Configured => (State::Configured, None, Vec::new()),
        R::Pending { missing } => (
            State::Pending,
            Some(format!("waiting for {}", missing.join(", "))),
            missing
                .iter()
                .map(|k| to_ref(reg, k.trim_end_matches('*')))
                .collect(),
        ),
        R::Retrying { error, .. } => (
            State::Failed,
            Some(format!("{error} (retrying)")),
            Vec::new(),
        ),
        R::Failed { error, .. } => (State::Failed, Some(error.clone()), Vec::new()),
        R::Invalid { reason } => (State::Invalid, Some(reason.clone()), Vec::new()),
        R::Removed => (State::Unknown, None, Vec::new()),
    };
    Status {
        state,
        reason,
        missing,
        attempts: s.attempts,
        last_transition: Some(humantime::format_rfc3339_seconds(s.last_transition).to_string()),
        observed_generation: None,
    }
}

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
        let (status_tx, status_rx) = mpsc::channel::<Vec<StatusChange>>();
        let generations: Generations = Arc::default();
        let spec_tx = status_tx.clone();
        let mut rec: Reconciler<Desired> = Reconciler::new();
        for d in descriptors::all(&agent) {
            rec.register(d);
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
            extra: Some(crate::daemon_api::extra(rec.clone(), agent.clone())),
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
            let reg = Registry::builtin();
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
                    status_rt.block_on(write_statuses(&*sstore, &reg, &sgens, chunk));
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

/// The reconciler's desired state from a list of the store, recording
/// each object's generation.
fn desired_of(
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
async fn compact_etcd(store: Arc<dyn Store>, keep: u64) {
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
async fn follow(store: Arc<dyn Store>, mut from: u64, tx: mpsc::Sender<Change>) {
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

/// The daemon's control loop: store changes into the reconciler, retries,
/// and the dataplane's slow path (neighbours, held packets).
#[allow(clippy::too_many_arguments)]
fn control_loop(
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

pub fn run(args: ServeArgs) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("weir serve: cannot handle signal {sig}: {e}");
            return 1;
        }
    }
    let daemon = match Daemon::start(&args, stop.clone()) {
        Ok(d) => d,
        Err(StartError(code, e)) => {
            eprintln!("weir serve: {e}");
            return code;
        }
    };
    {
        let rec = daemon.rec.lock().unwrap();
        eprintln!(
            "weir serve: ready ({})",
            crate::cli::output::summary_line(&rec.summary())
        );
        for (name, p) in daemon.agent.lock().unwrap().interfaces() {
            let mirror = p.mirror.as_ref().map(|m| m.1.as_str()).unwrap_or("-");
            eprintln!(
                "weir serve: interface {name}: {} via {}, mirror {mirror}{}",
                p.spec.host_interface,
                p.driver,
                p.fallback
                    .as_ref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(f) = &args.ready_file {
        let _ = std::fs::write(f, "ready\n");
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("weir serve: stopping");
    let stats = daemon.shutdown();
    print!("{}", crate::report::stats_table(&stats));
    0
}

/// Write statuses into their objects: one store transaction for the batch
/// (each object compared on its revision), object by object if that fails.
async fn write_statuses(
    store: &dyn Store,
    reg: &Registry,
    generations: &Generations,
    items: &[(String, weir_reconcile::Status)],
) {
    use weir_store::{Compare, Txn};
    // Status is derived: a crash loses at most the latest statuses, which
    // the next start recomputes, so these commits do not wait for the disk
    // (and do not hold up the next desired-state write behind an fsync).
    let mut txn = Txn::new().relaxed();
    let mut singles = Vec::new();
    for (key, st) in items {
        if matches!(st.state, weir_reconcile::State::Removed) {
            continue;
        }
        let Ok(Some(kv)) = store.get(key).await else {
            continue;
        };
        let Some(mut o) = decode(&kv.value) else {
            continue;
        };
        let mut s = status_of(reg, st);
        // The generation the reconciler was handed, not the stored one: a
        // newer spec may be in the store and not reconciled yet.
        s.observed_generation = generations
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .or(o.metadata.generation);
        if o.status.as_ref().is_some_and(|cur| same_status(cur, &s)) {
            continue;
        }
        o.status = Some(s);
        let Ok(v) = serde_json::to_vec(&o) else {
            continue;
        };
        txn = txn
            .when(Compare::ModRevision(key.clone(), kv.mod_revision))
            .put(key.clone(), v.clone());
        singles.push((key.clone(), kv.mod_revision, v));
    }
    if singles.is_empty() {
        return;
    }
    if let Ok(r) = store.txn(txn).await {
        if r.succeeded {
            return;
        }
    }
    // Someone changed some of them meanwhile: write the others one by one;
    // the changed ones get a fresh status when they are reconciled.
    for (key, rev, v) in singles {
        let t = Txn::new()
            .relaxed()
            .when(Compare::ModRevision(key.clone(), rev))
            .put(key, v);
        let _ = store.txn(t).await;
    }
}

/// Equal but for the transition time.
fn same_status(a: &Status, b: &Status) -> bool {
    a.state == b.state
        && a.reason == b.reason
        && a.missing == b.missing
        && a.attempts == b.attempts
        && a.observed_generation == b.observed_generation
}
