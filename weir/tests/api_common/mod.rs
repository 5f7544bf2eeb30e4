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
