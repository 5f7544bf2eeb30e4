//! What the CLI prints for people, against a real daemon: `weir status`,
//! `history`, `stats` and `describe` give aligned tables and whole lines,
//! never a Rust debug representation.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use weir_lab::Netns;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// A `weir serve` with no interfaces in a namespace of its own, API on a
/// unix socket; killed on drop (the namespace goes with the `Netns`).
struct Daemon {
    child: Child,
    sock: String,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(ns: &Netns, dir: &Path) -> Daemon {
        let ready = dir.join("ready");
        let sock = format!("unix:{}", dir.join("api.sock").display());
        let log = dir.join("weir.log");
        let child = ns
            .command(WEIR)
            .args(["serve", "--no-mirror", "--listen", &sock, "--store"])
            .arg(dir.join("store.redb"))
            .arg("--ready-file")
            .arg(&ready)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, sock, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "not ready: {}", d.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = Command::new(WEIR);
        c.args(args).args(["--server", &self.sock]);
        c.env_remove("WEIR_SERVER").env_remove("WEIR_TOKEN");
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut p = c.spawn().unwrap();
        if let Some(t) = stdin {
            use std::io::Write;
            p.stdin.take().unwrap().write_all(t.as_bytes()).unwrap();
        }
        let o = p.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "weir {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn out(&self, args: &[&str]) -> String {
        String::from_utf8(self.cli(args, None).stdout).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let d = Daemon::start(&ns, dir.path());
    d.cli(&["apply", "-f", "-"], Some(PENDING_ROUTE));

    // Both routes wait for Vpc blue.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let s = d.out(&["status"]);
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

    let history = d.out(&["history"]);
    readable("history", &history);
    assert!(history.starts_with('#'), "{history}");
    assert!(history.contains("  change\n"), "{history}");

    let stats = d.out(&["stats"]);
    readable("stats", &stats);
    assert!(stats.starts_with("rx 0 packets, tx 0 packets\n"), "{stats}");

    let describe = d.out(&["describe", "route", "a-route-with-a-rather-long-name"]);
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
