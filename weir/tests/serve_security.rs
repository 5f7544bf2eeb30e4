//! `weir serve` and its API: no unauthenticated listening beyond
//! loopback unless asked for, and the daemon's own endpoints answer bad
//! parameters in the API's JSON error shape.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// `weir serve ARGS` on an embedded store in `dir`; killed on drop.
struct Serve {
    child: Child,
    log: std::path::PathBuf,
}

impl Serve {
    fn spawn(dir: &Path, args: &[&str]) -> Serve {
        let log = dir.join("weir.log");
        let child = Command::new(WEIR)
            .arg("serve")
            .arg("--store")
            .arg(dir.join("store.redb"))
            .args(["--node", "t", "--no-mirror", "--ready-file"])
            .arg(dir.join("ready"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        Serve { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the ready file, or for the process to exit (its code).
    fn ready_or_exit(&mut self, dir: &Path) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st.code().unwrap_or(-1));
            }
            if dir.join("ready").exists() {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "neither ready nor exited:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn no_token_beyond_loopback_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Serve::spawn(dir.path(), &["--listen", "0.0.0.0:0"]);
    assert_eq!(s.ready_or_exit(dir.path()), Some(2), "{}", s.log());
    assert!(
        s.log()
            .contains("refusing to serve http://0.0.0.0:0 without a token"),
        "{}",
        s.log()
    );
    let mut s = Serve::spawn(dir.path(), &["--listen", "0.0.0.0:0", "--insecure"]);
    assert_eq!(s.ready_or_exit(dir.path()), None, "{}", s.log());
    assert!(
        s.log()
            .contains("warning: serving http://0.0.0.0:0 without a token"),
        "{}",
        s.log()
    );
    let help = Command::new(WEIR)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--insecure"), "{help}");
}

#[test]
fn daemon_endpoints_answer_bad_parameters_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let listen = format!("unix:{}", sock.display());
    let mut s = Serve::spawn(dir.path(), &["--listen", &listen]);
    assert_eq!(s.ready_or_exit(dir.path()), None, "{}", s.log());
    let get = |path: &str| -> (u16, serde_json::Value) {
        let mut c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap_or_default())
    };
    assert_eq!(get("/v1/history?limit=3").0, 200);
    for bad in ["abc", "-1"] {
        let (st, v) = get(&format!("/v1/history?limit={bad}"));
        assert_eq!(st, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains("limit"), "{v}");
        assert_eq!(v["details"][0]["field"], "limit", "{v}");
    }
    let (st, v) = get("/v1/graph/nope");
    assert_eq!(st, 404);
    assert!(v["error"].is_string(), "{v}");
}
