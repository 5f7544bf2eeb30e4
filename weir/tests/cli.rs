//! The `weir` command end to end: the benchmark prints the promised JSON,
//! the demo forwards, unknown scenarios are refused.

use std::process::Command;

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

#[test]
fn bench_prints_one_json_object_per_scenario() {
    let out = weir()
        .args(["bench", "--json", "--packets", "200000", "ipv4-fwd-1route"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["scenario"], "ipv4-fwd-1route");
    assert!(v["packets"].as_u64().unwrap() >= 200_000);
    for f in ["mpps", "ns_per_packet", "cycles_per_packet"] {
        assert!(v[f].as_f64().unwrap() > 0.0, "{f} in {v}");
    }
    // Every packet of the scenario is forwarded.
    assert_eq!(v["forwarded"].as_u64(), v["packets"].as_u64());
}

#[test]
fn bench_refuses_unknown_scenarios() {
    let out = weir().args(["bench", "--json", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scenario \"nope\""));
}

#[test]
fn demo_forwards_and_shows_counters() {
    let out = weir().args(["demo", "--rounds", "10"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name:?} in:\n{text}"))
            .split_whitespace()
            .rev()
            .take(2)
            .map(|x| x.parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    };
    // Columns: lan, wan (reversed here).
    assert_eq!(row("UDP 10.0.0.2 -> 8.8.8.8"), vec![1, 0]);
    assert_eq!(row("ping 10.0.0.1"), vec![0, 1]);
    assert_eq!(row("1472-byte UDP, no DF"), vec![2, 0]);
    assert!(text.contains("ip4-input/bad-checksum"), "{text}");
    assert!(text.contains("eth-input    -> ip4-input"));
}
