//! A small client of the API over HTTP/1.1, on TCP or a unix socket.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use weir_model::{Object, Status};

use crate::error::ErrorBody;
use crate::write::Outcome;

/// The default server address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7900";

/// What a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{}", .body.error)]
    Api { status: u16, body: ErrorBody },
    /// Could not connect or the connection broke.
    #[error("{0}")]
    Transport(String),
    /// The answer was not what the API sends.
    #[error("unexpected answer: {0}")]
    Decode(String),
    #[error("bad server address {0:?}: use http://HOST:PORT or unix:/path")]
    BadAddress(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
    /// The `weir` CLI's exit code: 2 usage/validation, 3 not found, 4
    /// conflict, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self.status() {
            Some(400 | 413 | 415 | 422) => 2,
            Some(404) => 3,
            Some(409) => 4,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone)]
enum Addr {
    Tcp(String),
    Unix(PathBuf),
}

/// A list answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectList {
    pub revision: u64,
    pub items: Vec<Object>,
}

/// An apply (or delete) answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResponse {
    pub revision: u64,
    #[serde(default)]
    pub dry_run: bool,
    pub results: Vec<Outcome>,
}

/// A registered kind, from `GET /v1/kinds`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindInfo {
    pub kind: String,
    pub plural: String,
    #[serde(default)]
    pub builtin: bool,
    #[serde(default)]
    pub spec_schema: serde_json::Value,
}

/// One watch event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchEvent {
    /// ADDED, MODIFIED, DELETED, BOOKMARK, RELIST or ERROR.
    #[serde(rename = "type")]
    pub kind: String,
    pub revision: u64,
    #[serde(default)]
    pub object: Option<Object>,
    #[serde(default)]
    pub error: Option<String>,
    /// On RELIST: `compacted`.
    #[serde(default)]
    pub code: Option<String>,
}

/// The events of a watch, in order.
pub struct Watch {
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
}

impl Watch {
    /// The next event; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, ClientError>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                return Some(
                    serde_json::from_slice(&line).map_err(|e| ClientError::Decode(e.to_string())),
                );
            }
            if self.done {
                return None;
            }
            match self.body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(ClientError::Transport(e.to_string())));
                }
                None => self.done = true,
            }
        }
    }
}

/// The plural used in paths for a kind word (`Route`, `route`, `routes`).
pub fn plural(word: &str) -> String {
    if let Some(k) = weir_model::builtin().lookup(word) {
        return k.plural().to_string();
    }
    if word.chars().any(|c| c.is_ascii_uppercase()) {
        weir_model::registry::plural_of(word)
    } else {
        word.to_string()
    }
}

/// A client of one API server. Requests on one client run one at a time
/// over a kept-alive connection (watches use their own).
pub struct Client {
    addr: Addr,
    token: Option<String>,
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl Client {
    /// `http://host:port`, `host:port` or `unix:/path`.
    pub fn new(server: &str) -> Result<Client, ClientError> {
        let addr = if let Some(p) = server.strip_prefix("unix:") {
            Addr::Unix(PathBuf::from(p.trim_start_matches("//")))
        } else {
            let rest = server.strip_prefix("http://").unwrap_or(server);
            if server.starts_with("https://") || rest.is_empty() {
                return Err(ClientError::BadAddress(server.into()));
            }
            let hostport = rest.trim_end_matches('/');
            if hostport.contains('/') {
                return Err(ClientError::BadAddress(server.into()));
            }
            let hostport = if hostport
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                hostport.to_string()
            } else {
                format!("{hostport}:80")
            };
            Addr::Tcp(hostport)
        };
        Ok(Client {
            addr,
            token: None,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    pub fn with_token(mut self, token: Option<String>) -> Client {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let t = |e: std::io::Error| {
            ClientError::Transport(format!(
                "cannot reach the weir API at {}: {e}",
                self.describe()
            ))
        };
        let h = |e: hyper::Error| ClientError::Transport(e.to_string());
        match &self.addr {
            Addr::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a).await.map_err(t)?;
                let _ = s.set_nodelay(true);
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                    .await
                    .map_err(h)?;
                tokio::spawn(conn);
                Ok(send)
            }
            Addr::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p).await.map_err(t)?;
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                    .await
                    .map_err(h)?;
                tokio::spawn(conn);
                Ok(send)
            }
        }
    }

    fn describe(&self) -> String {
        match &self.addr {
            Addr::Tcp(a) => format!("http://{a}"),
            Addr::Unix(p) => format!("unix:{}", p.display()),
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let host = match &self.addr {
            Addr::Tcp(a) => a.clone(),
            Addr::Unix(_) => "localhost".into(),
        };
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host);
        if let Some(t) = &self.token {
            b = b.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some((ct, bytes)) => {
                b = b.header(hyper::header::CONTENT_TYPE, ct);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        b.body(body)
            .map_err(|e| ClientError::BadAddress(format!("{path}: {e}")))
    }

    /// Sends a request and reads the whole answer.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let mut guard = self.conn.lock().await;
        let mut sender = match guard.take() {
            Some(mut s) => match s.ready().await {
                Ok(()) => s,
                Err(_) => self.connect().await?,
            },
            None => self.connect().await?,
        };
        let req = self.request(method.clone(), path, body.clone())?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) if e.is_canceled() || e.is_closed() => {
                // The kept-alive connection went away: once more on a new one.
                sender = self.connect().await?;
                let req = self.request(method, path, body)?;
                sender
                    .send_request(req)
                    .await
                    .map_err(|e| ClientError::Transport(e.to_string()))?
            }
            Err(e) => return Err(ClientError::Transport(e.to_string())),
        };
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
            .to_bytes();
        *guard = Some(sender);
        Ok((status, bytes))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.raw(method, path, body).await?;
        if !status.is_success() {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
                error: format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
                ),
                ..Default::default()
            });
            return Err(ClientError::Api {
                status: status.as_u16(),
                body,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    fn json_body(v: &impl Serialize) -> Option<(&'static str, Bytes)> {
        Some((
            "application/json",
            Bytes::from(serde_json::to_vec(v).expect("JSON")),
        ))
    }

    /// One object.
    pub async fn get(&self, kind: &str, name: &str) -> Result<Object, ClientError> {
        self.call(Method::GET, &format!("/v1/{}/{name}", plural(kind)), None)
            .await
    }

    /// Objects of a kind, optionally by label selector (`a=b,c!=d`).
    pub async fn list(
        &self,
        kind: &str,
        selector: Option<&str>,
    ) -> Result<ObjectList, ClientError> {
        let mut path = format!("/v1/{}", plural(kind));
        if let Some(s) = selector.filter(|s| !s.is_empty()) {
            path.push_str("?labelSelector=");
            path.push_str(&encode(s));
        }
        self.call(Method::GET, &path, None).await
    }

    /// Creates an object (409 if it exists).
    pub async fn create(&self, obj: &Object) -> Result<Object, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/{}", plural(&obj.kind)),
            Self::json_body(obj),
        )
        .await
    }

    /// Creates or replaces an object; a set `metadata.revision` must be current.
    pub async fn put(&self, obj: &Object) -> Result<Object, ClientError> {
        self.call(
            Method::PUT,
            &format!("/v1/{}/{}", plural(&obj.kind), obj.name()),
            Self::json_body(obj),
        )
        .await
    }

    /// Applies objects in one transaction.
    pub async fn apply(
        &self,
        objects: &[Object],
        dry_run: bool,
    ) -> Result<ApplyResponse, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/apply?dryRun={dry_run}"),
            Self::json_body(&objects),
        )
        .await
    }

    /// Applies a YAML (multi-document) or JSON text in one transaction.
    pub async fn apply_text(
        &self,
        text: &str,
        dry_run: bool,
    ) -> Result<ApplyResponse, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/apply?dryRun={dry_run}"),
            Some(("application/yaml", Bytes::from(text.to_string()))),
        )
        .await
    }

    /// Deletes an object; with `revision`, only if it is still current.
    pub async fn delete(
        &self,
        kind: &str,
        name: &str,
        revision: Option<u64>,
    ) -> Result<Outcome, ClientError> {
        let mut path = format!("/v1/{}/{name}", plural(kind));
        if let Some(r) = revision {
            path.push_str(&format!("?revision={r}"));
        }
        self.call(Method::DELETE, &path, None).await
    }

    /// Writes an object's status.
    pub async fn put_status(
        &self,
        kind: &str,
        name: &str,
        status: &Status,
    ) -> Result<Object, ClientError> {
        self.call(
            Method::PUT,
            &format!("/v1/{}/{name}/status", plural(kind)),
            Self::json_body(status),
        )
        .await
    }

    /// The registered kinds.
    pub async fn kinds(&self) -> Result<Vec<KindInfo>, ClientError> {
        #[derive(Deserialize)]
        struct Kinds {
            kinds: Vec<KindInfo>,
        }
        let k: Kinds = self.call(Method::GET, "/v1/kinds", None).await?;
        Ok(k.kinds)
    }

    /// Watches kinds (all when empty) from a revision (0: from now).
    pub async fn watch(&self, kinds: &[&str], from_revision: u64) -> Result<Watch, ClientError> {
        let mut path = format!("/v1/watch?fromRevision={from_revision}");
        if !kinds.is_empty() {
            path.push_str("&kinds=");
            path.push_str(&encode(&kinds.join(",")));
        }
        let mut sender = self.connect().await?;
        let req = self.request(Method::GET, &path, None)?;
        let resp: Response<Incoming> = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
                error: String::from_utf8_lossy(&bytes).into_owned(),
                ..Default::default()
            });
            return Err(ClientError::Api { status, body });
        }
        Ok(Watch {
            body: resp.into_body(),
            buf: Vec::new(),
            done: false,
        })
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
