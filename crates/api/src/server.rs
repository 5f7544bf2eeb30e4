//! Listening and serving: TCP (127.0.0.1 by default) or a unix socket.
//!
//! A TCP address beyond loopback needs a token (or `insecure`); the
//! connections themselves are run by [`crate::conns`].

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use weir_store::Store;

use crate::{conns, routes, ApiState, Shared};

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

impl Listen {
    /// Whether other hosts can reach this address: any TCP address but
    /// loopback (`0.0.0.0` and `[::]` included).
    pub fn beyond_loopback(&self) -> bool {
        match self {
            Listen::Tcp(a) => !a.ip().to_canonical().is_loopback(),
            Listen::Unix(_) => false,
        }
    }
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
    #[error(
        "refusing to serve {0} without a token: other hosts can reach it; \
         pass --token-file, listen on loopback or a unix socket, \
         or pass --insecure to serve it unauthenticated anyway"
    )]
    NoToken(String),
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
}

impl ServerError {
    /// Whether the error is in what the operator asked for (a bad address,
    /// token file or combination), rather than in the system.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ServerError::BadListen(_) | ServerError::Token(..) | ServerError::NoToken(_)
        )
    }
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

/// How browsers and other hosts can reach a listener, for the checks on
/// `Host` and `Origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// A loopback TCP address: only `Host: localhost`, `127.0.0.1`,
    /// `[::1]` or this address are accepted (DNS rebinding).
    Loopback(IpAddr),
    /// Beyond loopback, or not known (a router built without a listener).
    Network,
    /// A unix socket: browsers cannot reach it.
    Unix,
}

impl Listener {
    fn reach(&self) -> Reach {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) if a.ip().to_canonical().is_loopback() => Reach::Loopback(a.ip()),
                _ => Reach::Network,
            },
            Listener::Unix(..) => Reach::Unix,
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
    let shared: Arc<Shared> = Shared::new(state, listener.reach());
    let app = routes::router(shared.clone());
    match listener {
        Listener::Tcp(l) => conns::run(conns::Accept::Tcp(l), app, shared, shutdown).await?,
        Listener::Unix(l, p) => {
            let r = conns::run(conns::Accept::Unix(l), app, shared, shutdown).await;
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
    /// File holding the bearer token; `None`: no authentication, which
    /// needs a loopback address or a unix socket unless `insecure`.
    pub token_file: Option<PathBuf>,
    /// Serve without a token beyond loopback (a warning is printed at
    /// every start).
    pub insecure: bool,
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

/// A server that has checked its options and bound its address, ready
/// to [`serve`](Server::serve).
pub struct Server {
    listener: Listener,
    state: ApiState,
}

impl Server {
    /// Checks the options (a token is needed beyond loopback unless
    /// `insecure`), raises the open-file limit and binds the address.
    pub async fn start(opts: ServerOptions) -> Result<Server, ServerError> {
        let listen: Listen = opts.listen.parse()?;
        let token = opts.token_file.as_deref().map(read_token).transpose()?;
        if token.is_none() && listen.beyond_loopback() {
            if !opts.insecure {
                return Err(ServerError::NoToken(listen.to_string()));
            }
            eprintln!(
                "weir: warning: serving {listen} without a token (--insecure): \
                 anyone who can reach it can read and change this gateway's configuration"
            );
        }
        conns::raise_open_files();
        let listener = bind(&listen).await?;
        let mut state = ApiState::new(opts.store);
        state.token = token;
        state.node = opts.node;
        state.extra = opts.extra;
        Ok(Server { listener, state })
    }

    /// The address clients use (`http://127.0.0.1:port` or `unix:/path`).
    pub fn url(&self) -> String {
        self.listener.url()
    }

    /// Serves until `shutdown` completes (see [`serve`]).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        serve(self.listener, self.state, shutdown).await
    }
}

/// Checks `opts`, binds and serves until `shutdown` completes.
pub async fn run_server(
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::start(opts).await?.serve(shutdown).await
}
