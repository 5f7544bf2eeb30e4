//! The `weir` command.

mod bench;
mod bench_e2e;
mod bench_reconcile;
mod cli;
mod daemon_cli;
mod demo;
mod lab;
mod report;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "weir: a software VPC gateway and network control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the dataplane on generated traffic and show what it does.
    Demo {
        /// Rounds of bulk traffic (128 packets each) for the counters.
        #[arg(long, default_value_t = 1000)]
        rounds: usize,
    },
    /// Measure forwarding and lookup speed.
    Bench {
        /// Print one JSON object per scenario and line.
        #[arg(long)]
        json: bool,
        /// Packets per forwarding scenario.
        #[arg(long, default_value_t = 20_000_000)]
        packets: u64,
        /// CPU to pin the benchmark to.
        #[arg(long)]
        core: Option<usize>,
        /// Scenarios to run (all when none is named).
        scenarios: Vec<String>,
    },
    /// The daemon's reconciler and counters: status, history, graph, stats.
    #[command(flatten)]
    Daemon(daemon_cli::DaemonCmd),
    /// Run the gateway daemon.
    Serve(serve::ServeArgs),
    /// Labs of network namespaces: up, down, exec, status.
    #[command(subcommand)]
    Lab(lab::LabCmd),
    /// Management API clients: apply, get, describe, delete, diff, watch.
    #[command(flatten)]
    Api(cli::ApiCommand),
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { rounds } => demo::run(rounds),
        Command::Daemon(c) => std::process::exit(daemon_cli::run(c)),
        Command::Serve(a) => std::process::exit(serve::run(a)),
        Command::Lab(c) => std::process::exit(lab::run(c)),
        Command::Api(c) => std::process::exit(cli::run(c)),
        Command::Bench {
            json,
            packets,
            core,
            scenarios,
        } => {
            let names: Vec<String> = if scenarios.is_empty() {
                bench::SCENARIOS.iter().map(|s| s.to_string()).collect()
            } else {
                scenarios
            };
            // Scenarios on real interfaces run only when named.
            for n in names
                .iter()
                .filter(|n| bench_e2e::SCENARIOS.contains(&n.as_str()))
            {
                match bench_e2e::run(n, 1.0, 5, &["afxdp", "afpacket"]) {
                    Ok(rs) => {
                        for r in rs {
                            println!("{}", serde_json::to_string(&r).expect("serializable"));
                        }
                    }
                    Err(e) => {
                        eprintln!("weir bench {n}: {e}");
                        std::process::exit(1);
                    }
                }
            }
            // Management-plane scenarios, also only when named.
            for n in names
                .iter()
                .filter(|n| bench_reconcile::SCENARIOS.contains(&n.as_str()))
            {
                match bench_reconcile::run(n) {
                    Ok(lines) => {
                        for l in lines {
                            println!("{l}");
                        }
                    }
                    Err(e) => {
                        eprintln!("weir bench {n}: {e}");
                        std::process::exit(1);
                    }
                }
            }
            let names: Vec<String> = names
                .into_iter()
                .filter(|n| {
                    !bench_e2e::SCENARIOS.contains(&n.as_str())
                        && !bench_reconcile::SCENARIOS.contains(&n.as_str())
                })
                .collect();
            if names.is_empty() {
                return;
            }
            if let Some(bad) = names
                .iter()
                .find(|n| !bench::SCENARIOS.contains(&n.as_str()))
            {
                eprintln!(
                    "weir bench: unknown scenario {bad:?}; known: {}, {}, {}",
                    bench::SCENARIOS.join(", "),
                    bench_reconcile::SCENARIOS.join(", "),
                    bench_e2e::SCENARIOS.join(", ")
                );
                std::process::exit(2);
            }
            let opts = bench::Options { packets, core };
            for n in &names {
                match bench::run(n, &opts) {
                    Ok(r) if json => {
                        println!("{}", serde_json::to_string(&r).expect("serializable"))
                    }
                    Ok(r) => println!(
                        "{:<22} {:>8.2} Mpps {:>7.1} ns/pkt {:>7.1} cycles/pkt{}",
                        r.scenario,
                        r.mpps,
                        r.ns_per_packet,
                        r.cycles_per_packet,
                        r.ratio
                            .map(|x| format!("  ratio {x:.1} vs reference"))
                            .unwrap_or_default()
                    ),
                    Err(e) => {
                        eprintln!("weir bench: {e}");
                        std::process::exit(2);
                    }
                }
            }
        }
    }
}
