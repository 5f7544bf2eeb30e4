//! Reconciler and API benchmarks.
//!
//! - `reconcile-100k-routes`: 100k Route objects given to the reconciler as
//!   one bulk change, until every one is configured and in the FIB.
//! - `reconcile-single-change`: a daemon (embedded store, API on a unix
//!   socket, a memory-driver port); one Route's next hop changed through
//!   the API, 1k times, each timed from the API call until the FIB shows it
//!   (`p50_ms`, `p99_ms`; `api_p50_ms`, `api_p99_ms`: until the API call
//!   returned, which includes the store's fsync).
//! - `api-bulk-10k`, `api-single-1k`: the API alone, on the embedded store
//!   and on etcd in the same run.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use weir_agent::{kind, Desired};
use weir_agent::{Agent, AgentOptions};
use weir_model::{Object, Registry};
use weir_reconcile::Reconciler;

fn obj(reg: &Registry, v: Value) -> Object {
    reg.parse(&v).expect("valid object")
}

fn interface(reg: &Registry) -> Object {
    obj(
        reg,
        json!({"apiVersion": "weir/v1", "kind": "Interface", "metadata": {"name": "wan"},
               "spec": {"hostInterface": "mem0", "driver": "memory", "addresses": ["100.64.0.1/16"]}}),
    )
}

fn route(reg: &Registry, i: u32, gw: u8) -> Object {
    let p = Ipv4Addr::from(0x0a00_0000u32 + (i << 8));
    obj(
        reg,
        json!({"apiVersion": "weir/v1", "kind": "Route", "metadata": {"name": format!("r{i}")},
               "spec": {"prefix": format!("{p}/24"), "nextHop": {"address": format!("100.64.0.{gw}")}}}),
    )
}

pub fn reconcile_100k() -> Value {
    let reg = Registry::builtin();
    let agent = Arc::new(Mutex::new(Agent::start(AgentOptions {
        workers: 1,
        cores: Vec::new(),
        mirror: false,
    })));
    let mut rec: Reconciler<Desired> = Reconciler::new();
    kind::register_all(&agent, &mut rec);
    let ifc = interface(&reg);
    rec.set_desired(vec![(ifc.key(), Some(Desired::of(&ifc)))]);
    let n = 100_000u32;
    let batch: Vec<(String, Option<Desired>)> = (0..n)
        .map(|i| {
            let r = route(&reg, i, 2 + (i % 8) as u8);
            (r.key(), Some(Desired::of(&r)))
        })
        .collect();
    let t = Instant::now();
    rec.set_desired(batch);
    let configured = rec.summary().configured;
    // In the FIB: the last route resolves in the live snapshot.
    let last = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + ((n - 1) << 8);
    let in_fib = agent
        .lock()
        .unwrap()
        .control
        .config()
        .lookup4(0, last + 1)
        .is_some();
    let secs = t.elapsed().as_secs_f64();
    json!({"scenario": "reconcile-100k-routes", "routes": n, "seconds": secs,
           "configured": configured, "in_fib": in_fib, "packets": 0, "mpps": 0.0,
           "ns_per_packet": 0.0, "cycles_per_packet": 0.0})
}

pub fn reconcile_single_change() -> Result<Value, String> {
    let dir = std::env::temp_dir().join(weir_lab::unique_name("-rbench"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let args = weir_daemon::ServeArgs {
        config: None,
        store: dir.join("store.redb").to_string_lossy().into_owned(),
        listen: format!("unix:{}", dir.join("api.sock").display()),
        token_file: None,
        insecure: false,
        node: Some("bench".into()),
        workers: 1,
        cores: Vec::new(),
        no_mirror: true,
        ready_file: None,
        history: weir_store::DEFAULT_HISTORY,
        nat_sessions: weir_dataplane::modules::nat44::DEFAULT_CAPACITY,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let d = weir_daemon::Daemon::start(&args, stop).map_err(|e| e.1)?;
    let reg = Registry::builtin();
    let base = vec![interface(&reg), route(&reg, 1, 2)];
    d.rt.block_on(d.client.apply(&base, false))
        .map_err(|e| e.to_string())?;
    let probe = u32::from(Ipv4Addr::new(10, 0, 1, 1));
    // Watch the FIB as a worker does: through a snapshot reader, no lock.
    let reader = d.agent.lock().unwrap().control.reader();
    let via = |cfg: &weir_dataplane::Tables, gw: u8| -> bool {
        let want = IpAddr::V4(Ipv4Addr::new(100, 64, 0, gw));
        cfg.lookup4(0, probe)
            .and_then(|nh| cfg.nexthop(nh))
            .is_some_and(
                |n| matches!(n, weir_dataplane::NextHop::Neighbour { addr, .. } if *addr == want),
            )
    };
    let mut times = Vec::new();
    let mut api_times = Vec::new();
    for i in 0..1000 {
        let gw = if i % 2 == 0 { 3 } else { 2 };
        let r = route(&reg, 1, gw);
        let t = Instant::now();
        d.rt.block_on(d.client.put(&r)).map_err(|e| e.to_string())?;
        api_times.push(t.elapsed().as_secs_f64() * 1e3);
        while !via(&reader.load(), gw) {
            if t.elapsed().as_secs() > 5 {
                return Err("a route change did not reach the FIB in 5 s".into());
            }
            // Check often, but leave the CPU to the daemon's threads (two
            // cores: a spinning observer would slow what it measures).
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    d.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    times.sort_by(|a, b| a.total_cmp(b));
    api_times.sort_by(|a, b| a.total_cmp(b));
    let p = |v: &[f64], q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    Ok(
        json!({"scenario": "reconcile-single-change", "changes": times.len(),
              "p50_ms": p(&times, 0.5), "p99_ms": p(&times, 0.99), "max_ms": times[times.len() - 1],
              "api_p50_ms": p(&api_times, 0.5), "api_p99_ms": p(&api_times, 0.99),
              "packets": 0, "mpps": 0.0, "ns_per_packet": 0.0, "cycles_per_packet": 0.0}),
    )
}

pub const SCENARIOS: &[&str] = &[
    "reconcile-100k-routes",
    "reconcile-single-change",
    "api-bulk-10k",
    "api-single-1k",
];

/// One JSON line per result (the API scenarios run on the embedded store
/// and on a real etcd started for the run).
pub fn run(name: &str) -> Result<Vec<String>, String> {
    let line = |v: Value| v.to_string();
    match name {
        "reconcile-100k-routes" => Ok(vec![line(reconcile_100k())]),
        "reconcile-single-change" => Ok(vec![line(reconcile_single_change()?)]),
        "api-bulk-10k" | "api-single-1k" => {
            let mut out = Vec::new();
            let mut v = weir_api::bench::run(name, None)?;
            v["scenario"] = json!(name);
            v["store"] = json!("embedded");
            out.push(line(v));
            let etcd = weir_store::testing::EtcdServer::start();
            let ep = etcd.endpoint().replace("http://", "etcd://");
            let mut v = weir_api::bench::run(name, Some(&ep))?;
            v["scenario"] = json!(name);
            v["store"] = json!("etcd");
            out.push(line(v));
            Ok(out)
        }
        _ => Err(format!("unknown scenario {name:?}")),
    }
}
