//! Transport security and robustness: who may reach the API and how
//! (token beyond loopback, browser checks, media types), and what a
//! client can hold (idle connections, the connection cap, large bodies).
//! Requests go over raw TCP where the headers or the connection matter.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{route, start_with, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_api::{ApiState, Limits, ServerError, ServerOptions};

/// The server's `host:port`.
fn addr(s: &Server) -> String {
    s.url.trim_start_matches("http://").to_string()
}

/// A request with `Host: <addr>` (unless `headers` set Host) and
/// `Connection: close`.
fn request(method: &str, path: &str, addr: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        r += &format!("Host: {addr}\r\n");
    }
    for (k, v) in headers {
        r += &format!("{k}: {v}\r\n");
    }
    r += &format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    r
}

/// Sends raw request bytes on a new connection; the status and JSON
/// body of the answer (Null if the body is not JSON).
async fn send(addr: &str, raw: &str) -> (u16, Value) {
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(raw.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).await.unwrap();
        buf
    })
    .await
    .expect("no answer within 5 s");
    parse_answer(&answer)
}

fn parse_answer(answer: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn call(
    s: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let a = addr(s);
    send(&a, &request(method, path, &a, headers, body)).await
}

/// An error answer in the documented shape, naming `field` (if not empty).
fn assert_error_shape(v: &Value, field: &str) {
    assert!(v["error"].is_string(), "no error string: {v}");
    assert!(v["details"].is_array(), "no details: {v}");
    if !field.is_empty() {
        assert!(
            common::fields(v).iter().any(|f| f == field),
            "{field} not named: {v}"
        );
    }
}

async fn server(limits: Limits) -> (Server, tempfile::TempDir) {
    let (store, dir) = common::embedded().await;
    let mut state = ApiState::new(store);
    state.limits = limits;
    (start_with(state).await, dir)
}

const ROUTE_YAML: &str =
    "apiVersion: weir/v1\nkind: Route\nmetadata: {name: r1}\nspec: {prefix: 10.0.0.0/8, blackhole: true}\n";

fn options(listen: &str, store: Arc<dyn weir_store::Store>) -> ServerOptions {
    ServerOptions {
        listen: listen.into(),
        store,
        token_file: None,
        insecure: false,
        node: "t".into(),
        extra: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_needs_a_token_or_insecure() {
    let (store, dir) = common::embedded().await;
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:7900"] {
        match weir_api::Server::start(options(listen, store.clone())).await {
            Err(e @ ServerError::NoToken(_)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("--token-file") && msg.contains("--insecure"),
                    "{msg}"
                );
                assert!(e.is_usage());
            }
            Err(e) => panic!("{listen}: wrong error {e}"),
            Ok(s) => panic!("{listen}: served at {} without a token", s.url()),
        }
    }
    // Loopback and unix sockets need no token.
    let sock = format!("unix:{}", dir.path().join("api.sock").display());
    for listen in ["127.0.0.1:0", sock.as_str()] {
        let s = weir_api::Server::start(options(listen, store.clone())).await;
        assert!(s.is_ok(), "{listen}: {:?}", s.err());
    }
    // With a token, or with --insecure, it serves.
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let mut o = options("0.0.0.0:0", store.clone());
    o.token_file = Some(token);
    assert!(weir_api::Server::start(o).await.is_ok());
    let mut o = options("0.0.0.0:0", store.clone());
    o.insecure = true;
    let s = weir_api::Server::start(o).await.unwrap();
    let port = s.url().rsplit(':').next().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(s.serve(async {
        let _ = rx.await;
    }));
    let a = format!("127.0.0.1:{port}");
    let (st, _) = send(&a, &request("GET", "/v1/routes", &a, &[], "")).await;
    assert_eq!(st, 200);
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_take_json_or_yaml_only() {
    let (s, _dir) = server(Limits::default()).await;
    let before = s.rev().await;
    // A form or fetch() from a web page sends text/plain without asking.
    for (method, path) in [
        ("POST", "/v1/apply"),
        ("POST", "/v1/routes"),
        ("PUT", "/v1/routes/r1"),
    ] {
        for ct in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let (st, v) = call(&s, method, path, &[("Content-Type", ct)], ROUTE_YAML).await;
            assert_eq!(st, 415, "{method} {path} as {ct}: {v}");
            assert_error_shape(&v, "Content-Type");
        }
    }
    assert_eq!(s.rev().await, before, "a refused body was stored");
    // The JSON and YAML types, with parameters, and no type at all.
    let json_body = route("r2", "10.2.0.0/16").to_string();
    let yaml = |name: &str, n: u8| {
        ROUTE_YAML
            .replace("r1", name)
            .replace("10.0.0.0/8", &format!("10.{n}.0.0/16"))
    };
    let cases = [
        ("application/yaml", yaml("y1", 11)),
        ("application/x-yaml", yaml("y2", 12)),
        ("text/yaml; charset=utf-8", yaml("y3", 13)),
        ("Application/JSON; charset=utf-8", json_body.clone()),
    ];
    for (ct, body) in &cases {
        let (st, v) = call(&s, "POST", "/v1/apply", &[("Content-Type", ct)], body).await;
        assert_eq!(st, 200, "{ct}: {v}");
    }
    let (st, v) = call(&s, "POST", "/v1/apply", &[], &yaml("n1", 14)).await;
    assert_eq!(st, 200, "no Content-Type: {v}");
    assert_eq!(s.client.list("Route", None).await.unwrap().items.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_requests_are_refused_before_auth() {
    let (store, _dir) = common::embedded().await;
    let mut state = ApiState::new(store);
    state.token = Some("s3cret".into());
    let s = start_with(state).await;
    let a = addr(&s);
    let auth = ("Authorization", "Bearer s3cret");
    let yaml = ("Content-Type", "application/yaml");
    for bad in [
        ("Origin", "http://evil.example"),
        ("Origin", "null"),
        ("Origin", "http://127.0.0.1:1"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ] {
        for (method, path, body) in [
            ("POST", "/v1/apply", ROUTE_YAML),
            ("GET", "/v1/routes", ""),
            ("DELETE", "/v1/routes/r1", ""),
        ] {
            // 403 with the token, and 403 (not 401) without it.
            for headers in [vec![bad, auth, yaml], vec![bad, yaml]] {
                let (st, v) = call(&s, method, path, &headers, body).await;
                assert_eq!(st, 403, "{method} {path} with {headers:?}: {v}");
                assert_error_shape(&v, bad.0);
            }
        }
    }
    assert_eq!(s.rev().await, 0, "a cross-origin write was stored");
    // The server's own origin, and fetch metadata saying so, are fine.
    let own = format!("http://{a}");
    for ok in [
        ("Origin", own.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
        ("Sec-Fetch-Site", "none"),
    ] {
        let (st, v) = call(&s, "GET", "/v1/routes", &[ok, auth], "").await;
        assert_eq!(st, 200, "{ok:?}: {v}");
    }
    let (st, v) = call(
        &s,
        "POST",
        "/v1/apply",
        &[("Origin", &own), auth, yaml],
        ROUTE_YAML,
    )
    .await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_answers_only_to_loopback_host_names() {
    let (s, dir) = server(Limits::default()).await;
    let a = addr(&s);
    let port = a.rsplit(':').next().unwrap();
    for bad in [
        "evil.example",
        &format!("evil.example:{port}"),
        "127.0.0.1.nip.io",
        "10.0.0.1",
        "localhost.evil.example",
    ] {
        for (method, path, body) in [("GET", "/v1/routes", ""), ("POST", "/v1/apply", ROUTE_YAML)] {
            let (st, v) = call(
                &s,
                method,
                path,
                &[("Host", bad), ("Content-Type", "application/yaml")],
                body,
            )
            .await;
            assert_eq!(st, 421, "{method} Host {bad}: {v}");
            assert_error_shape(&v, "Host");
        }
    }
    assert_eq!(s.rev().await, 0);
    for good in [
        "localhost".to_string(),
        format!("LOCALHOST:{port}"),
        "127.0.0.1".into(),
        format!("127.0.0.1:{port}"),
        "[::1]".into(),
        format!("[::1]:{port}"),
    ] {
        let (st, v) = call(&s, "GET", "/v1/routes", &[("Host", &good)], "").await;
        assert_eq!(st, 200, "Host {good}: {v}");
    }
    // HTTP/1.0 without a Host header.
    let (st, _) = send(&a, "GET /livez HTTP/1.0\r\n\r\n").await;
    assert_eq!(st, 200);

    // A unix socket has no host name to check.
    let path = dir.path().join("api.sock");
    let listener = weir_api::bind(&format!("unix:{}", path.display()).parse().unwrap())
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(weir_api::serve(
        listener,
        ApiState::new(s.store.clone()),
        async {
            let _ = rx.await;
        },
    ));
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let mut c = tokio::net::UnixStream::connect(&path).await.unwrap();
        c.write_all(request("GET", "/v1/routes", "evil.example", &[], "").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).await.unwrap();
        buf
    })
    .await
    .unwrap();
    assert_eq!(parse_answer(&answer).0, 200);
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

fn quick() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

/// Reads until the server closes the connection; how long that took
/// (panics after `within`).
async fn closed_within(c: &mut TcpStream, within: Duration) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the connection was not closed");
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_watch_streams_are_not() {
    let (s, _dir) = server(quick()).await;
    let a = addr(&s);
    // Kept alive after an answer, then idle.
    let mut kept = TcpStream::connect(&a).await.unwrap();
    kept.write_all(format!("GET /livez HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Connected, never a byte sent.
    let mut silent = TcpStream::connect(&a).await.unwrap();
    // Half a request head, never finished.
    let mut slow = TcpStream::connect(&a).await.unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    // A watch stream with nothing to say for longer than the idle timeout.
    let mut watch = TcpStream::connect(&a).await.unwrap();
    watch
        .write_all(format!("GET /v1/watch?kinds=routes HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    for c in [&mut kept, &mut silent, &mut slow] {
        let took = closed_within(c, Duration::from_secs(4)).await;
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The watch is still open and still delivers.
    assert_eq!(
        s.json("PUT", "/v1/routes/w1", &route("w1", "10.1.0.0/16"))
            .await
            .0,
        201
    );
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.contains("\"w1\"") {
            let n = watch.read(&mut buf).await.unwrap();
            assert!(n > 0, "the watch stream was closed: {seen}");
            seen += &String::from_utf8_lossy(&buf[..n]);
        }
    })
    .await
    .expect("no event on the watch stream");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("ADDED"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_probes_still_answer() {
    let (s, _dir) = server(Limits {
        max_connections: Some(4),
        ..Limits::default()
    })
    .await;
    let a = addr(&s);
    // Four idle connections fill the cap; the oldest is shed for each
    // newcomer, and the probes answer.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(&a).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for path in ["/livez", "/readyz"] {
        let t = Instant::now();
        let (st, v) = call(&s, "GET", path, &[], "").await;
        assert_eq!(st, 200, "{path}: {v}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{path} took {:?}",
            t.elapsed()
        );
    }
    // The first probe found the cap reached and shed the oldest; the
    // second found the cap reached again, or room if the first had already
    // closed, so the newest idle connections are still open.
    closed_within(&mut idle[0], Duration::from_secs(2)).await;
    let mut buf = [0u8; 16];
    for newest in &idle[2..] {
        assert!(
            matches!(newest.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a newer idle connection was closed before an older one"
        );
    }
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Four watch streams: none idle, so a newcomer is told 503 at once.
    let mut watches = Vec::new();
    for _ in 0..4 {
        let mut w = TcpStream::connect(&a).await.unwrap();
        w.write_all(format!("GET /v1/watch HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let n = w.read(&mut [0u8; 1024]).await.unwrap();
        assert!(n > 0);
        watches.push(w);
    }
    let t = Instant::now();
    let (st, v) = call(&s, "GET", "/livez", &[], "").await;
    assert_eq!(st, 503, "{v}");
    assert_error_shape(&v, "");
    assert!(t.elapsed() < Duration::from_secs(2));
    // One watch ends: room again.
    drop(watches.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(call(&s, "GET", "/livez", &[], "").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_watches_and_closes_connections() {
    let (store, _dir) = common::embedded().await;
    let listener = weir_api::bind(&"127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let a = listener.url().trim_start_matches("http://").to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(weir_api::serve(listener, ApiState::new(store), async {
        let _ = rx.await;
    }));
    let mut watch = TcpStream::connect(&a).await.unwrap();
    watch
        .write_all(format!("GET /v1/watch HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert!(watch.read(&mut [0u8; 1024]).await.unwrap() > 0);
    let mut idle = TcpStream::connect(&a).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("shutdown did not finish")
        .unwrap()
        .unwrap();
    closed_within(&mut watch, Duration::from_secs(1)).await;
    closed_within(&mut idle, Duration::from_secs(1)).await;
    assert!(TcpStream::connect(&a).await.is_err(), "still listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_naming_the_parameter() {
    #[derive(serde::Deserialize)]
    struct Limit {
        #[allow(dead_code)]
        limit: Option<usize>,
    }
    // Routes added next to the API's, as the daemon does: one with this
    // crate's query extractor, others with axum's own extractors.
    let extra = axum::Router::new()
        .route(
            "/v1/history",
            axum::routing::get(|weir_api::Query(_q): weir_api::Query<Limit>| async { "[]" }),
        )
        .route(
            "/v1/echo",
            axum::routing::post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }),
        )
        .route(
            "/v1/small",
            axum::routing::post(|b: axum::body::Bytes| async move { b })
                .layer(axum::extract::DefaultBodyLimit::max(16)),
        )
        .route(
            "/v1/items/{n}",
            axum::routing::get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move { n.to_string() },
            ),
        );
    let (store, _dir) = common::embedded().await;
    let mut state = ApiState::new(store);
    state.extra = Some(weir_api::Extra {
        router: extra,
        paths: Default::default(),
        schemas: Default::default(),
    });
    let s = start_with(state).await;
    assert_eq!(
        s.json("PUT", "/v1/routes/r1", &route("r1", "10.0.0.0/8"))
            .await
            .0,
        201
    );
    let before = s.rev().await;
    let cases = [
        ("GET", "/v1/history?limit=abc", 400, "limit"),
        ("GET", "/v1/history?limit=-1", 400, "limit"),
        ("POST", "/v1/apply?dryRun=maybe", 400, "dryRun"),
        ("DELETE", "/v1/routes/r1?revision=-1", 400, "revision"),
        ("DELETE", "/v1/routes/r1?dryRun=2", 400, "dryRun"),
        ("GET", "/v1/watch?fromRevision=abc", 400, "fromRevision"),
        ("PUT", "/v1/routes/r1?dryRun=yes", 400, "dryRun"),
        (
            "GET",
            "/v1/routes?labelSelector=a%3Db%3Dc",
            400,
            "labelSelector",
        ),
        ("POST", "/v1/echo", 400, ""),
        ("GET", "/v1/items/minus-one", 400, ""),
        ("POST", "/v1/history", 405, ""),
        ("PATCH", "/v1/routes", 405, ""),
        ("GET", "/nowhere", 404, ""),
    ];
    for (method, path, want, field) in cases {
        let headers = [("Content-Type", "application/json")];
        let (st, v) = call(&s, method, path, &headers, "{\"not\": json").await;
        assert_eq!(st, want, "{method} {path}: {v}");
        assert_error_shape(&v, field);
        if !field.is_empty() {
            assert!(v["error"].as_str().unwrap().contains(field), "{path}: {v}");
        }
    }
    assert_eq!(s.rev().await, before);
    // A body over axum's own limit on an extra route: 413, JSON.
    let big = "x".repeat(100);
    let (st, v) = call(
        &s,
        "POST",
        "/v1/small",
        &[("Content-Type", "application/json")],
        &big,
    )
    .await;
    assert_eq!(st, 413, "{v}");
    assert_error_shape(&v, "");
}

/// A large body is parsed off the async workers: while the server parses
/// one, on a runtime with a single worker, it still answers probes.
#[test]
fn large_bodies_do_not_stall_other_requests() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.redb");
    let sock = dir.path().join("api.sock");
    let listen: weir_api::Listen = format!("unix:{}", sock.display()).parse().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = weir_store::open(db.to_str().unwrap()).await.unwrap();
            let listener = weir_api::bind(&listen).await.unwrap();
            url_tx.send(listener.url()).unwrap();
            weir_api::serve(listener, ApiState::new(store), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        })
    });
    let _url = url_rx.recv().unwrap();
    // One Route with a long unknown field: parsed whole, then refused.
    let mut body = String::from("apiVersion: weir/v1\nkind: Route\nmetadata: {name: big}\nspec:\n  prefix: 10.0.0.0/8\n  blackhole: true\n  junk: [");
    while body.len() < 7 << 20 {
        body += "12345678, ";
    }
    body += "0]\n";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (apply_took, slowest_probe) = rt.block_on(async {
        let sock2 = sock.clone();
        let apply = tokio::spawn(async move {
            let t = Instant::now();
            let mut c = tokio::net::UnixStream::connect(&sock2).await.unwrap();
            let req = request(
                "POST",
                "/v1/apply",
                "localhost",
                &[("Content-Type", "application/yaml")],
                &body,
            );
            c.write_all(req.as_bytes()).await.unwrap();
            let mut buf = Vec::new();
            c.read_to_end(&mut buf).await.unwrap();
            let (st, v) = parse_answer(&buf);
            assert_eq!(st, 422, "{v}");
            t.elapsed()
        });
        let mut slowest = Duration::ZERO;
        tokio::time::sleep(Duration::from_millis(100)).await;
        while !apply.is_finished() {
            let t = Instant::now();
            let mut c = tokio::net::UnixStream::connect(&sock).await.unwrap();
            c.write_all(request("GET", "/livez", "localhost", &[], "").as_bytes())
                .await
                .unwrap();
            let mut buf = Vec::new();
            c.read_to_end(&mut buf).await.unwrap();
            assert_eq!(parse_answer(&buf).0, 200);
            slowest = slowest.max(t.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (apply.await.unwrap(), slowest)
    });
    let _ = tx.send(());
    server.join().unwrap();
    assert!(
        slowest_probe < apply_took / 4,
        "a probe took {slowest_probe:?} while the large apply took {apply_took:?}"
    );
    eprintln!("large apply {apply_took:?}, slowest probe meanwhile {slowest_probe:?}");
}
