//! Counter tables shared by the commands that print them.

use weir_dataplane::WorkerStats;

/// Per-node counters (grout style) and drop reasons, laid out as
/// `weir stats` lays out the daemon's.
pub fn stats_table(st: &WorkerStats) -> String {
    let nodes: Vec<serde_json::Value> = st
        .nodes
        .iter()
        .map(|(n, c)| {
            serde_json::json!({ "node": n, "calls": c.calls, "packets": c.packets, "cycles": c.cycles })
        })
        .collect();
    let reasons: serde_json::Map<String, serde_json::Value> = st
        .drops()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.to_string(), n.into()))
        .collect();
    crate::cli::output::stats(&serde_json::json!({
        "rxPackets": st.rx_packets,
        "txPackets": st.tx_packets,
        "nodes": nodes,
        "reasons": reasons,
    }))
}
