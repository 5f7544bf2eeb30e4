//! What the CLI prints for people, against a real daemon: `weir status`,
//! `history`, `stats` and `describe` give aligned tables and whole lines,
//! never a Rust debug representation.

use std::path::Path;
use std::time::{Duration, Instant};

use weir_lab::Netns;

mod api_common;
use api_common::{Daemon, WEIR};

/// A `weir serve` with no interfaces in a namespace of its own (the
/// namespace goes with the `Netns`).
fn daemon(ns: &Netns, dir: &Path) -> Daemon {
    let store = dir.join("store.redb");
    Daemon::start(
        ns.command(WEIR),
        dir,
        &["--no-mirror", "--store", store.to_str().unwrap()],
    )
}

/// What `weir ARGS` printed, which must have succeeded.
fn out(d: &Daemon, args: &[&str]) -> String {
    let o = d.run(args, None);
    assert!(
        o.status.success(),
        "weir {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// For people: whole lines, no trailing blanks, no debug structs.
fn readable(what: &str, s: &str) {
    assert!(s.ends_with('\n'), "{what}: no final newline: {s:?}");
    for l in s.lines() {
        assert_eq!(l, l.trim_end(), "{what}: trailing blanks in {l:?}");
    }
    for bad in ["Summary {", "Some(", "None", "SetDesired", "\"", "{ "] {
        assert!(!s.contains(bad), "{what}: {bad:?} in\n{s}");
    }
}

/// The column where `word` starts on `line`.
fn col(line: &str, word: &str) -> usize {
    line.find(word)
        .unwrap_or_else(|| panic!("{word:?} not in {line:?}"))
}

const PENDING_ROUTE: &str = "\
apiVersion: weir/v1
kind: Route
metadata: { name: a-route-with-a-rather-long-name }
spec: { vpc: blue, prefix: 10.1.0.0/16, blackhole: true }
---
apiVersion: weir/v1
kind: Route
metadata: { name: r2 }
spec: { vpc: blue, prefix: 10.2.0.0/16, blackhole: true }
";

#[test]
fn status_history_stats_and_describe_are_tables_for_people() {
    let ns = Netns::new("cli").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&ns, dir.path());
    let (code, text) = d.cli(&["apply", "-f", "-"], Some(PENDING_ROUTE));
    assert_eq!(code, 0, "{text}");

    // Both routes wait for Vpc blue.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let s = out(&d, &["status"]);
        if s.matches("pending").count() >= 2 {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    readable("status", &status);
    let l: Vec<&str> = status.lines().collect();
    assert_eq!(
        l[0].split_whitespace().collect::<Vec<_>>(),
        ["CONFIGURED", "PENDING", "RETRYING", "FAILED", "INVALID"],
        "{status}"
    );
    assert_eq!(
        l[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "2", "0", "0", "0"],
        "{status}"
    );
    let header = l
        .iter()
        .position(|x| x.starts_with("KEY"))
        .expect("object table");
    let (state, reason) = (col(l[header], "STATE"), col(l[header], "REASON"));
    let rows = &l[header + 1..];
    assert_eq!(rows.len(), 2, "{status}");
    for r in rows {
        assert_eq!(col(r, "pending"), state, "{status}");
        assert_eq!(col(r, "waiting for"), reason, "{status}");
    }

    let history = out(&d, &["history"]);
    readable("history", &history);
    assert!(history.starts_with('#'), "{history}");
    assert!(history.contains("  change\n"), "{history}");

    let stats = out(&d, &["stats"]);
    readable("stats", &stats);
    assert!(stats.starts_with("rx 0 packets, tx 0 packets\n"), "{stats}");

    // Status reaches the stored object in batches, after `weir status`
    // (the reconciler's own view) shows it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let describe = loop {
        let s = out(
            &d,
            &["describe", "route", "a-route-with-a-rather-long-name"],
        );
        if s.contains("Observed generation") {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    readable("describe", &describe);
    let value_col = col(describe.lines().next().unwrap(), "a-route");
    for l in describe.lines() {
        let Some((k, v)) = l.split_once(": ").or_else(|| l.split_once(":  ")) else {
            continue;
        };
        // Spec lines are YAML, indented by two; everything else is one column.
        if l.starts_with("  ") && !k.trim_start().starts_with(char::is_uppercase) {
            continue;
        }
        assert_eq!(
            col(l, v.trim_start()),
            value_col,
            "{l:?} is not in the value column\n{describe}"
        );
    }
    assert!(describe.contains("  Observed generation:  "), "{describe}");
}
