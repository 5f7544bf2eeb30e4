//! Listening and serving: TCP (127.0.0.1 by default) or a unix socket.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use weir_store::Store;

use crate::{routes, ApiState, Shared};

/// Where the API listens: `127.0.0.1:7900`, `[::1]:7900` or `unix:/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for Listen {
    type Err = ServerError;
    fn from_str(s: &str) -> Result<Self, ServerError> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(ServerError::BadListen(s.into()));
            }
            return Ok(Listen::Unix(PathBuf::from(p)));
        }
        let s2 = s.strip_prefix("http://").unwrap_or(s);
        let s2 = s2.replace("localhost:", "127.0.0.1:");
        s2.parse()
            .map(Listen::Tcp)
            .map_err(|_| ServerError::BadListen(s.into()))
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "http://{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Listener {
    /// The address clients use (`http://127.0.0.1:port` or `unix:/path`).
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("http://{a}"))
                .unwrap_or_default(),
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }
}

/// Everything that can stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("bad listen address {0:?}: use IP:PORT or unix:/path")]
    BadListen(String),
    #[error("listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("token file {0}: {1}")]
    Token(PathBuf, String),
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
}

/// Binds the address; for a unix socket, removes a stale socket file
/// first and makes the new one owner-only (0600).
pub async fn bind(listen: &Listen) -> Result<Listener, ServerError> {
    match listen {
        Listen::Tcp(a) => tokio::net::TcpListener::bind(a)
            .await
            .map(Listener::Tcp)
            .map_err(|e| ServerError::Bind(listen.to_string(), e)),
        Listen::Unix(p) => {
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            if let Ok(m) = std::fs::symlink_metadata(p) {
                if m.file_type().is_socket() {
                    let _ = std::fs::remove_file(p);
                }
            }
            let l = tokio::net::UnixListener::bind(p)
                .map_err(|e| ServerError::Bind(listen.to_string(), e))?;
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600));
            Ok(Listener::Unix(l, p.clone()))
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes; open watch
/// streams are ended then, and the call returns once connections close.
pub async fn serve(
    listener: Listener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let shared: Arc<Shared> = Shared::new(state);
    let app = routes::router(shared.clone());
    let signal = async move {
        shutdown.await;
        shared.closing.send_replace(true);
    };
    match listener {
        Listener::Tcp(l) => axum::serve(l, app).with_graceful_shutdown(signal).await?,
        Listener::Unix(l, p) => {
            let r = axum::serve(l, app).with_graceful_shutdown(signal).await;
            let _ = std::fs::remove_file(&p);
            r?
        }
    }
    Ok(())
}

/// What `weir serve` passes to [`run_server`].
pub struct ServerOptions {
    /// `127.0.0.1:7900` or `unix:/run/weir/api.sock`.
    pub listen: String,
    pub store: Arc<dyn Store>,
    /// File holding the bearer token; `None`: no authentication (listen
    /// on loopback or a unix socket then).
    pub token_file: Option<PathBuf>,
    pub node: String,
    /// More routes served next to the API's (behind the same token check).
    pub extra: Option<crate::Extra>,
}

/// Reads a token file (trimmed; must not be empty).
pub fn read_token(path: &std::path::Path) -> Result<String, ServerError> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Token(path.to_path_buf(), e.to_string()))?;
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err(ServerError::Token(path.to_path_buf(), "empty".into()));
    }
    Ok(t)
}

/// Binds `opts.listen` and serves until `shutdown` completes.
pub async fn run_server(
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listen: Listen = opts.listen.parse()?;
    let token = opts.token_file.as_deref().map(read_token).transpose()?;
    let listener = bind(&listen).await?;
    let mut state = ApiState::new(opts.store);
    state.token = token;
    state.node = opts.node;
    state.extra = opts.extra;
    serve(listener, state, shutdown).await
}
