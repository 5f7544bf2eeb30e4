//! Test support (cargo feature `testing`): a real etcd server per test and
//! the conformance suite every [`Store`](crate::Store) backend must pass.

pub mod conformance;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where Debian's `etcd-server` package puts the binary; `WEIR_ETCD`
/// overrides it.
pub const ETCD_BIN: &str = "/usr/bin/etcd";

fn etcd_bin() -> PathBuf {
    std::env::var_os("WEIR_ETCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ETCD_BIN))
}

/// Installs etcd with apt-get (`etcd-server`) if the binary is missing.
/// Panics if that fails.
pub fn ensure_etcd() {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if etcd_bin().exists() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "etcd-server"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        assert!(
            install(),
            "etcd is missing and `apt-get install etcd-server` failed"
        );
    }
    assert!(
        etcd_bin().exists(),
        "apt-get installed etcd-server but {} is missing",
        etcd_bin().display()
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A single-member etcd on free 127.0.0.1 ports with a temporary data
/// directory. Killed, and its directory deleted, on drop (also when a test
/// panics); it also dies with the thread that started it (`PR_SET_PDEATHSIG`),
/// so start it from the test's own thread.
pub struct EtcdServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

impl EtcdServer {
    /// Starts etcd (installing it first if needed) and waits until it is
    /// healthy. Panics on failure, with etcd's log.
    pub fn start() -> Self {
        ensure_etcd();
        let mut last_error = String::new();
        for _ in 0..3 {
            let mut server = Self {
                child: None,
                dir: tempfile::Builder::new()
                    .prefix("weir-etcd-")
                    .tempdir()
                    .expect("create a temporary directory"),
                client_port: free_port(),
                peer_port: free_port(),
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("etcd did not start: {last_error}");
    }

    /// The client URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// The end of etcd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open the etcd log: {e}"))?;
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new(etcd_bin());
        cmd.arg("--name")
            .arg("weir-test")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("weir-test={peer}")])
            .args(["--max-txn-ops", "100000"])
            .args(["--max-request-bytes", "33554432"])
            .args(["--quota-backend-bytes", "4294967296"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between
        // fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("run {}: {e}", etcd_bin().display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("etcd exited with {status}:\n{}", self.log_tail()));
            }
            if healthy(self.client_port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("etcd not healthy after 30 s:\n{}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills etcd (SIGKILL) and keeps its data.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Kills etcd and starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        // The ports stay ours: nothing else binds them in the meantime
        // unless very unlucky, and then this panics with etcd's log.
        if let Err(e) = self.spawn() {
            panic!("etcd did not restart: {e}");
        }
    }

    /// Freezes etcd (SIGSTOP): its connections stay open and nothing is
    /// answered, as with a hung server.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen etcd carry on (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        let child = self.child.as_ref().expect("etcd is running");
        // SAFETY: a plain kill(2) of our own child, which has not been
        // waited for (so its pid is not reused).
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill etcd with signal {sig}");
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The data directory's path, for tests that inspect it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET /health` on the client port answers `"health":"true"`.
fn healthy(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}
