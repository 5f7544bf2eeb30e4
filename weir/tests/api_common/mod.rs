//! Shared by the API tests of the `weir` binary: a `weir api-server`
//! child process and a minimal HTTP client on std.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "weir-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `weir api-server` process; SIGKILLed on drop.
pub struct ApiServer {
    pub child: Child,
    pub url: String,
}

impl ApiServer {
    pub fn start(store: &Path, listen: &str, extra: &[&str]) -> ApiServer {
        let mut child = Command::new(WEIR)
            .args(["api-server", "--store"])
            .arg(store)
            .args(["--listen", listen])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run weir api-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        ApiServer { child, url }
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn hostport(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `weir ARGS` against a server.
pub fn weir(server: &str, args: &[&str]) -> Output {
    weir_env(server, args, &[])
}

pub fn weir_env(server: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(WEIR);
    c.args(args).arg("--server").arg(server);
    c.env_remove("WEIR_SERVER").env_remove("WEIR_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run weir")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One HTTP/1.1 request (Connection: close); the status and body.
pub fn http(
    hostport: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(hostport)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad answer {resp:?}")))?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    // Chunked bodies are not expected (the API sends Content-Length).
    Ok((status, body.to_string()))
}

/// A `weir serve` with its API on a unix socket in `dir` and its log in
/// `dir/weir.log`, started by `cmd` (`weir` itself, or `weir` under
/// `ip netns exec`); waited for until ready, killed on drop.
pub struct Daemon {
    child: Option<Child>,
    pub sock: String,
    log: PathBuf,
}

impl Daemon {
    /// `cmd serve --listen unix:DIR/api.sock --ready-file … ARGS`.
    pub fn start(cmd: Command, dir: &Path, args: &[&str]) -> Daemon {
        let sock = format!("unix:{}", dir.join("api.sock").display());
        Daemon::start_on(cmd, dir, &sock, args)
    }

    /// The same, listening on `listen` (`127.0.0.1:PORT` or `unix:PATH`).
    pub fn start_on(mut cmd: Command, dir: &Path, listen: &str, args: &[&str]) -> Daemon {
        let ready = dir.join("ready");
        let _ = std::fs::remove_file(&ready);
        let sock = match listen.strip_prefix("unix:") {
            Some(_) => listen.to_string(),
            None => format!("http://{listen}"),
        };
        let log = dir.join("weir.log");
        let child = cmd
            .args(["serve", "--listen", listen, "--ready-file"])
            .arg(&ready)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("run weir serve");
        let d = Daemon {
            child: Some(child),
            sock,
            log,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !ready.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "weir serve not ready:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `weir ARGS --server SOCK`, with `stdin` fed in.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = Command::new(WEIR);
        c.args(args).args(["--server", &self.sock]);
        c.env_remove("WEIR_SERVER").env_remove("WEIR_TOKEN");
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut p = c.spawn().expect("run weir");
        if let Some(text) = stdin {
            p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        p.wait_with_output().unwrap()
    }

    /// The exit code of `weir ARGS` and what it printed (stdout, then stderr).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (i32, String) {
        let o = self.run(args, stdin);
        (o.status.code().unwrap_or(-1), stdout(&o) + &stderr(&o))
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s; the exit
    /// code of a clean exit.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Some(s) = c.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// SIGKILL, as a crash would: nothing is cleaned up by weir itself.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_9();
    }
}
