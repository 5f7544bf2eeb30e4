//! `weir status`, `weir history`, `weir graph`, `weir stats`: what the
//! daemon's reconciler and dataplane are doing, over its API.

use axum::http::Method;
use serde_json::Value;

use crate::cli::Conn;

#[derive(clap::Subcommand, Debug)]
pub enum DaemonCmd {
    /// Objects by state (configured, pending, failed, invalid) and each one's state.
    Status {
        #[command(flatten)]
        conn: Conn,
    },
    /// The last reconciler transactions, with their operations in order.
    History {
        #[command(flatten)]
        conn: Conn,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The reconciler's dependency graph in Graphviz DOT (pipe to `dot -Tsvg`);
    /// with --nodes, the dataplane's node graph instead (no daemon needed).
    Graph {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        nodes: bool,
    },
    /// Dataplane counters: per node and per drop reason.
    Stats {
        #[command(flatten)]
        conn: Conn,
    },
}

fn get(conn: &Conn, path: &str) -> Result<String, i32> {
    let client = crate::cli::client(conn)?;
    let rt = crate::cli::runtime();
    match rt.block_on(client.raw(Method::GET, path, None)) {
        Ok((s, body)) if s.is_success() => Ok(String::from_utf8_lossy(&body).into_owned()),
        Ok((s, body)) => {
            eprintln!("error: {s}: {}", String::from_utf8_lossy(&body));
            Err(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(1)
        }
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub fn run(cmd: DaemonCmd) -> i32 {
    let r = match cmd {
        DaemonCmd::Graph { nodes: true, .. } => {
            print!("{}", weir_dataplane::nodes::graph().dot());
            Ok(())
        }
        DaemonCmd::Graph { conn, .. } => get(&conn, "/v1/graph").map(|t| print!("{t}")),
        DaemonCmd::Status { conn } => get(&conn, "/v1/status").map(|t| {
            let v = json(&t);
            println!("{}", v["summary"].as_str().unwrap_or(""));
            println!("\n{:<44} {:<11} {:>8}  REASON", "KEY", "STATE", "ATTEMPTS");
            for o in v["objects"].as_array().into_iter().flatten() {
                println!(
                    "{:<44} {:<11} {:>8}  {}",
                    o["key"].as_str().unwrap_or(""),
                    o["state"].as_str().unwrap_or(""),
                    o["attempts"].as_u64().unwrap_or(0),
                    o["reason"].as_str().unwrap_or("")
                );
            }
        }),
        DaemonCmd::History { conn, limit } => get(&conn, &format!("/v1/history?limit={limit}"))
            .map(|t| {
                for h in json(&t)["items"].as_array().into_iter().flatten() {
                    println!(
                        "#{} {} {}",
                        h["seq"],
                        h["at"].as_str().unwrap_or(""),
                        h["kind"].as_str().unwrap_or("")
                    );
                    for op in h["operations"].as_array().into_iter().flatten() {
                        println!("    {}", op.as_str().unwrap_or(""));
                    }
                    for n in h["notes"].as_array().into_iter().flatten() {
                        println!("    note: {}", n.as_str().unwrap_or(""));
                    }
                }
            }),
        DaemonCmd::Stats { conn } => get(&conn, "/v1/stats").map(|t| {
            let v = json(&t);
            println!(
                "rx {} packets, tx {} packets",
                v["rxPackets"], v["txPackets"]
            );
            println!(
                "\n{:<14} {:>10} {:>10} {:>11}",
                "NODE", "CALLS", "PACKETS", "CYCLES/PKT"
            );
            for n in v["nodes"].as_array().into_iter().flatten() {
                let (c, p, cy) = (
                    n["calls"].as_u64().unwrap_or(0),
                    n["packets"].as_u64().unwrap_or(0),
                    n["cycles"].as_u64().unwrap_or(0),
                );
                if c > 0 {
                    println!(
                        "{:<14} {:>10} {:>10} {:>11.1}",
                        n["node"].as_str().unwrap_or(""),
                        c,
                        p,
                        cy as f64 / p.max(1) as f64
                    );
                }
            }
            println!("\n{:<36} {:>8}", "REASON", "COUNT");
            for (k, n) in v["reasons"].as_object().into_iter().flatten() {
                println!("{k:<36} {n:>8}");
            }
        }),
    };
    match r {
        Ok(()) => 0,
        Err(code) => code,
    }
}
