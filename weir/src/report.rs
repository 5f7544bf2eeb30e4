//! Counter tables shared by the commands that print them.

use std::fmt::Write as _;

use weir_dataplane::{Reason, WorkerStats};

/// Per-node counters (grout style) and drop reasons.
pub fn stats_table(st: &WorkerStats) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "rx {} packets, tx {} packets",
        st.rx_packets, st.tx_packets
    );
    let _ = writeln!(
        s,
        "\n{:<14} {:>10} {:>10} {:>10} {:>11}",
        "NODE", "CALLS", "PACKETS", "PKTS/CALL", "CYCLES/PKT"
    );
    for (name, n) in &st.nodes {
        if n.calls == 0 {
            continue;
        }
        let _ = writeln!(
            s,
            "{:<14} {:>10} {:>10} {:>10.1} {:>11.1}",
            name,
            n.calls,
            n.packets,
            n.packets as f64 / n.calls as f64,
            n.cycles as f64 / n.packets.max(1) as f64
        );
    }
    let _ = writeln!(s, "\n{:<36} {:>8}", "REASON", "COUNT");
    for r in Reason::ALL {
        let n = st.reason(*r);
        if n > 0 {
            let _ = writeln!(s, "{:<36} {:>8}", r.name(), n);
        }
    }
    s
}
