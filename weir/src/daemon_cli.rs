//! `weir status`, `weir history`, `weir graph`, `weir stats`: what the
//! daemon's reconciler and dataplane are doing, over its API.

use axum::http::Method;
use serde_json::Value;

use crate::cli::{output, Conn};

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
        /// Print the daemon's JSON as it is.
        #[arg(long)]
        json: bool,
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
            print!("{}", weir_dataplane::modules::registry().graph().dot());
            Ok(())
        }
        DaemonCmd::Graph { conn, .. } => get(&conn, "/v1/graph").map(|t| print!("{t}")),
        DaemonCmd::Status { conn } => {
            get(&conn, "/v1/status").map(|t| print!("{}", output::status(&json(&t))))
        }
        DaemonCmd::History { conn, limit } => get(&conn, &format!("/v1/history?limit={limit}"))
            .map(|t| print!("{}", output::history(&json(&t)))),
        DaemonCmd::Stats { conn, json: true } => get(&conn, "/v1/stats").map(|t| println!("{t}")),
        DaemonCmd::Stats { conn, .. } => {
            get(&conn, "/v1/stats").map(|t| print!("{}", output::stats(&json(&t))))
        }
    };
    match r {
        Ok(()) => 0,
        Err(code) => code,
    }
}
