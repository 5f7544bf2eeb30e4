//! `weir serve` writes status back to each object: after a spec change
//! that leaves the state as it was (configured to configured),
//! `status.observedGeneration` still follows `metadata.generation`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// `weir serve` on an embedded store and a unix socket; killed on drop.
struct Serve {
    child: Child,
    sock: String,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(dir: &Path) -> Serve {
        let ready = dir.join("ready");
        let sock = format!("unix:{}", dir.join("api.sock").display());
        let log = dir.join("weir.log");
        let child = Command::new(WEIR)
            .arg("serve")
            .arg("--store")
            .arg(dir.join("store.redb"))
            .args(["--listen", &sock, "--node", "t", "--no-mirror"])
            .arg("--ready-file")
            .arg(&ready)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        let s = Serve { child, sock, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "not ready:\n{}", s.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn cli(&self, args: &[&str], stdin: Option<&str>) -> (i32, String) {
        let mut c = Command::new(WEIR);
        c.args(args).env("WEIR_SERVER", &self.sock);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut p = c.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write;
            p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        let out = p.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn route(prefix: &str) -> String {
    format!(
        "apiVersion: weir/v1\nkind: Route\nmetadata: {{ name: sink, node: t }}\nspec: {{ prefix: {prefix}, blackhole: true }}\n"
    )
}

#[test]
fn observed_generation_follows_spec_changes() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    for (i, prefix) in ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
        .iter()
        .enumerate()
    {
        let (code, out) = serve.cli(&["apply", "-f", "-"], Some(&route(prefix)));
        assert_eq!(code, 0, "{out}");
        let want = i as u64 + 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, out) = serve.cli(&["get", "route", "sink", "-o", "json"], None);
            assert_eq!(code, 0, "{out}");
            let o: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(o["metadata"]["generation"], want, "{o}");
            if o["status"]["observedGeneration"] == want {
                assert_eq!(o["status"]["state"], "configured", "{o}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "observedGeneration never reached {want}: {o}\n{}",
                serve.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
