//! `weir serve`: runs the daemon (`weir-daemon`) until SIGTERM or SIGINT,
//! then prints the final counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use weir_daemon::ServeArgs;
use weir_daemon::{Daemon, StartError};

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
        let names: Vec<String> = daemon
            .agent
            .lock()
            .unwrap()
            .interfaces()
            .keys()
            .cloned()
            .collect();
        for name in names {
            let key = weir_model::key("Interface", &name);
            let Some(p) = rec.metadata::<weir_agent::PortState>(&key) else {
                continue;
            };
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
