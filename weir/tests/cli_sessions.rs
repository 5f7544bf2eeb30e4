//! `weir get sessions` and the NAT part of `weir stats`, against `weir
//! serve --nat-sessions`: the filters reach the daemon, bad ones are a
//! usage error, and a NatRule's counters show up per rule.

use std::process::Command;
use std::time::{Duration, Instant};

mod api_common;
use api_common::{Daemon, WEIR};

const RULE: &str = "\
apiVersion: weir/v1
kind: NatRule
metadata: { name: out, node: t }
spec:
  type: snat44
  match: { source: [10.0.0.0/24] }
  translate: { addresses: [203.0.113.5/32] }
";

#[test]
fn get_sessions_and_nat_stats() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.redb");
    let serve = Daemon::start(
        Command::new(WEIR),
        dir.path(),
        &[
            "--store",
            store.to_str().unwrap(),
            "--node",
            "t",
            "--no-mirror",
            "--nat-sessions",
            "2048",
        ],
    );
    let (code, out) = serve.cli(&["apply", "-f", "-"], Some(RULE));
    assert_eq!(code, 0, "{out}");

    // Applied: the rule is in the stats, with the table's capacity.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let (code, out) = serve.cli(&["stats"], None);
        assert_eq!(code, 0, "{out}");
        if out.contains("NAT RULE") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        stats.contains("NAT: 0 of 2048 sessions in use"),
        "{stats}\n{}",
        serve.log()
    );
    let row = stats
        .lines()
        .find(|l| l.starts_with("out "))
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["out", "0", "0", "0"]
    );

    let (code, out) = serve.cli(&["get", "sessions"], None);
    assert_eq!((code, out.as_str()), (0, "0 sessions (showing 0)\n"));
    let (code, out) = serve.cli(
        &[
            "get",
            "sessions",
            "--vpc",
            "default",
            "--rule",
            "out",
            "--inside",
            "10.0.0.2",
            "--outside",
            "203.0.113.5",
            "--protocol",
            "udp",
            "--limit",
            "5",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!({"total": 0, "items": []}));

    let (code, out) = serve.cli(&["get", "sessions", "--protocol", "bogus"], None);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("protocol") && out.contains("bogus"), "{out}");
    let (code, out) = serve.cli(&["get", "sessions", "--inside", "not an address"], None);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("inside"), "{out}");
    let (code, out) = serve.cli(&["get", "natrule", "--rule", "out"], None);
    assert_eq!(code, 2, "filters are for sessions only: {out}");
}
