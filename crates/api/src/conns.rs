//! Connections: HTTP/1.1 served with hyper directly, so that each one has
//! a header-read timeout and an idle timeout, and their number stays under
//! the open-file limit.
//!
//! A connection is idle while no request is in progress on it; a watch
//! stream is a request in progress until it ends, so it is never idle.
//! An idle connection is closed after [`Limits::idle_timeout`], and a
//! request head must arrive whole within [`Limits::header_read_timeout`].
//! At the connection cap a new connection closes the one idle the
//! longest, or, when none is idle, is answered 503 and closed: either
//! way `/livez` and `/readyz` get an answer instead of a hang.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::{Limits, Shared};

/// Where connections come from.
pub(crate) enum Accept {
    Tcp(TcpListener),
    Unix(UnixListener),
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Accept {
    async fn accept(&self) -> std::io::Result<Stream> {
        match self {
            Accept::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
            Accept::Unix(l) => Ok(Stream::Unix(l.accept().await?.0)),
        }
    }
}

/// One open connection, as the table sees it.
struct Conn {
    /// Requests in progress (from the request head to the end of the
    /// response body).
    busy: AtomicUsize,
    /// When the connection last became idle, in ms since `epoch`.
    idle_since: AtomicU64,
    epoch: Instant,
    /// Asks the connection to close (it is being shed).
    close: tokio::sync::Notify,
}

impl Conn {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// How long the connection has been idle; `None` while busy.
    fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.idle_since.load(Ordering::Acquire);
        Some(Duration::from_millis(self.now().saturating_sub(since)))
    }
}

/// Marks a connection busy for as long as it lives: from the request
/// head until the response body is dropped (written out or abandoned).
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: Arc<Conn>) -> Busy {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Busy(conn)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now(), Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until it is done.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The open connections.
struct Table {
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Connections being answered 503 (at the cap, none idle).
    refusing: AtomicUsize,
}

impl Table {
    fn new() -> Table {
        Table {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            refusing: AtomicUsize::new(0),
        }
    }

    fn len(&self) -> usize {
        self.open.lock().unwrap().len()
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.epoch.elapsed().as_millis() as u64),
            epoch: self.epoch,
            close: tokio::sync::Notify::new(),
        });
        self.open.lock().unwrap().insert(id, conn.clone());
        (id, conn)
    }

    fn remove(&self, id: u64) {
        self.open.lock().unwrap().remove(&id);
    }

    /// Asks the connection idle the longest to close, and stops counting
    /// it; false when no connection is idle.
    fn shed_oldest_idle(&self) -> bool {
        let mut open = self.open.lock().unwrap();
        let oldest = open
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.idle_since.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| open.remove(&id)) {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The soft limit on open files.
pub(crate) fn open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur
}

/// Raises the soft limit on open files to the hard limit, so that the
/// default connection cap (derived from it) is as high as the system
/// allows. Returns the soft limit in force.
pub fn raise_open_files() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `lim`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let mut raised = lim;
            raised.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

/// The connection cap for an open-file limit: the limit less a margin
/// for the store, the dataplane's sockets and the connections being
/// closed or refused.
pub(crate) fn max_connections_for(open_files: u64) -> usize {
    let files = open_files.min(1 << 20) as usize;
    let margin = (files / 8).max(64);
    files.saturating_sub(margin).max(8)
}

/// Accepts and serves connections until `shutdown` completes; then stops
/// listening, tells every connection and watch stream to end
/// (`Shared::closing`) and returns once all are closed.
pub(crate) async fn run(
    accept: Accept,
    app: axum::Router,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = shared.state.limits;
    let max = limits
        .max_connections
        .unwrap_or_else(|| max_connections_for(open_file_limit()));
    let table = Arc::new(Table::new());
    // Every connection task holds a sender: when all are gone, so are the
    // connections.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let app = TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            s = accept.accept() => s,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) if is_connection_error(&e) => continue,
            Err(_) => {
                // Out of file descriptors, most likely: make room, and give
                // the closing connection a moment.
                table.shed_oldest_idle();
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if table.len() >= max && !table.shed_oldest_idle() {
            refuse(stream, &table, max);
            continue;
        }
        let (id, conn) = table.add();
        let (app, table, closing, done) = (
            app.clone(),
            table.clone(),
            shared.closing.subscribe(),
            done_tx.clone(),
        );
        tokio::spawn(async move {
            match stream {
                Stream::Tcp(s) => serve_one(s, app, conn.clone(), limits, closing).await,
                Stream::Unix(s) => serve_one(s, app, conn.clone(), limits, closing).await,
            }
            table.remove(id);
            drop(done);
        });
    }
    drop(accept);
    shared.closing.send_replace(true);
    drop(done_tx);
    let _ = done_rx.recv().await;
    Ok(())
}

/// Errors of one connection that was being accepted, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Serves one connection until it closes: by the client, after
/// `idle_timeout` without a request, when shed, or at shutdown.
async fn serve_one<IO>(
    io: IO,
    app: TowerToHyperService<axum::Router>,
    conn: Arc<Conn>,
    limits: Limits,
    mut closing: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let c = conn.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = Busy::new(c.clone());
        let answer = hyper::service::Service::call(&app, req);
        async move {
            let resp = answer.await?;
            Ok::<_, Infallible>(resp.map(|inner| Tracked { inner, _busy: busy }))
        }
    });
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(http);
    // Once set, the connection finishes what it is doing and closes.
    let mut ending = *closing.borrow_and_update();
    if ending {
        http.as_mut().graceful_shutdown();
    }
    loop {
        let wait = match conn.idle_for() {
            Some(d) if d >= limits.idle_timeout && !ending => {
                http.as_mut().graceful_shutdown();
                ending = true;
                continue;
            }
            Some(d) => limits.idle_timeout - d.min(limits.idle_timeout),
            None => limits.idle_timeout,
        };
        tokio::select! {
            _ = http.as_mut() => break,
            _ = closing.changed(), if !ending => {
                http.as_mut().graceful_shutdown();
                ending = true;
            }
            _ = conn.close.notified(), if !ending => {
                http.as_mut().graceful_shutdown();
                ending = true;
            }
            _ = tokio::time::sleep(wait), if !ending => {}
        }
    }
}

/// Answers a connection over the cap with a 503 and closes it; past a
/// few dozen such answers at once, just closes it.
fn refuse(stream: Stream, table: &Arc<Table>, max: usize) {
    if table.refusing.fetch_add(1, Ordering::AcqRel) >= 64 {
        table.refusing.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let table = table.clone();
    tokio::spawn(async move {
        let body = serde_json::json!({
            "error": format!("too many open connections (the limit is {max}); try again"),
            "details": [],
        })
        .to_string();
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            match stream {
                Stream::Tcp(s) => answer_and_close(s, answer.as_bytes()).await,
                Stream::Unix(s) => answer_and_close(s, answer.as_bytes()).await,
            }
        })
        .await;
        table.refusing.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Writes `answer`, then reads what the client sent until it closes, so
/// that closing does not reset the connection before it reads the answer.
async fn answer_and_close<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO, answer: &[u8]) {
    if io.write_all(answer).await.is_err() {
        return;
    }
    let _ = io.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut left = 64 << 10;
    while left > 0 {
        match io.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(n) => left -= n.min(left),
        }
    }
}
