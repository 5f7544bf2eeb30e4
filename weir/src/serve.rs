//! `weir serve`: the daemon. Reads a day-0 file of `weir/v1` objects,
//! attaches to the host interfaces it names, runs the workers, and stops
//! cleanly on SIGTERM or SIGINT (interfaces released, XDP programs
//! detached, kernel mirrors deleted).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_agent::{Agent, AgentError, AgentOptions};
use weir_model::{InterfaceSpec, Object, Registry, RouteSpec, VpcSpec};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Day-0 file of weir/v1 objects (multi-document YAML).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Worker threads (one per core).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// CPUs to pin the workers to, e.g. 1 or 2,3.
    #[arg(long, value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// Do not create kernel mirrors (TAPs) for the interfaces.
    #[arg(long)]
    pub no_mirror: bool,
    /// Write "ready" to this file once every day-0 object is applied.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

/// Order in which kinds are applied: what others refer to first.
const ORDER: &[&str] = &["Vpc", "Interface", "Route"];

fn load(path: &PathBuf) -> Result<Vec<Object>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reg = Registry::builtin();
    let objects = reg
        .parse_yaml(&text)
        .map_err(|e| format!("{}: invalid objects:\n{e}", path.display()))?;
    reg.validate_set(&objects)
        .map_err(|e| format!("{}: inconsistent objects:\n{e}", path.display()))?;
    Ok(objects)
}

fn apply(agent: &mut Agent, o: &Object) -> Result<(), AgentError> {
    let bad = |e: weir_model::ValidationErrors| AgentError::Invalid(e.to_string());
    match o.kind.as_str() {
        "Vpc" => agent.apply_vpc(o.name(), &o.typed::<VpcSpec>().map_err(bad)?),
        "Interface" => agent.apply_interface(o.name(), &o.typed::<InterfaceSpec>().map_err(bad)?),
        "Route" => agent.apply_route(o.name(), &o.typed::<RouteSpec>().map_err(bad)?),
        k => Err(AgentError::Invalid(format!(
            "kind {k} is not handled by this daemon yet"
        ))),
    }
}

pub fn run(args: ServeArgs) -> i32 {
    let objects = match args.config.as_ref().map(load).transpose() {
        Ok(o) => o.unwrap_or_default(),
        Err(e) => {
            eprintln!("weir serve: {e}");
            return 2;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("weir serve: cannot handle signal {sig}: {e}");
            return 1;
        }
    }
    let mut agent = Agent::start(AgentOptions {
        workers: args.workers,
        cores: args.cores.clone(),
        mirror: !args.no_mirror,
    });
    let mut failed = 0;
    for kind in ORDER {
        for o in objects.iter().filter(|o| o.kind == *kind) {
            match apply(&mut agent, o) {
                Ok(()) => eprintln!("weir serve: {} {} configured", o.kind, o.name()),
                Err(e) => {
                    failed += 1;
                    eprintln!("weir serve: {} {}: {e}", o.kind, o.name());
                }
            }
        }
    }
    for o in objects.iter().filter(|o| !ORDER.contains(&o.kind.as_str())) {
        eprintln!(
            "weir serve: {} {}: kind not handled by this daemon yet",
            o.kind,
            o.name()
        );
    }
    for (name, p) in agent.interfaces() {
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
    if let Some(f) = &args.ready_file {
        let _ = std::fs::write(f, if failed == 0 { "ready\n" } else { "degraded\n" });
    }
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if agent.poll() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        if last.elapsed() > Duration::from_secs(60) {
            last = Instant::now();
            let s = agent.stats();
            eprintln!(
                "weir serve: rx {} tx {} packets",
                s.rx_packets, s.tx_packets
            );
        }
    }
    eprintln!("weir serve: stopping");
    let stats = agent.shutdown();
    print!("{}", crate::report::stats_table(&stats));
    0
}
