//! The HTTP handlers.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use weir_model::{check_name, key, key_prefix, Object, Status, API_VERSION};
use weir_store::{EventKind, StoreError};

use crate::cache::{decode, root_prefix};
use crate::error::{summary, ApiError, Detail};
use crate::selector::Selector;
use crate::server::Reach;
use crate::write::{commit, Action, Op};
use crate::Shared;

type S = State<Arc<Shared>>;
type Q = Result<Query<HashMap<String, String>>, QueryRejection>;
type R = Result<Response, ApiError>;

pub fn router(shared: Arc<Shared>) -> Router {
    let r = Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .route("/v1/kinds", get(kinds))
        .route("/v1/apply", post(apply))
        .route("/v1/watch", get(watch))
        .route("/v1/{plural}", get(list).post(create))
        .route(
            "/v1/{plural}/{name}",
            get(get_one).put(put_one).delete(delete_one),
        )
        .route("/v1/{plural}/{name}/status", put(put_status))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared.clone());
    let r = match shared.state.extra.clone() {
        Some(extra) => r.merge(extra.router),
        None => r,
    };
    // Outermost first: every error in the JSON shape, then the browser
    // checks (before the token is looked at), then the token.
    r.fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), auth))
        .layer(middleware::from_fn_with_state(shared, browser_guard))
        .layer(middleware::from_fn(json_errors))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no such path: {}", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(shared): S, req: Request, next: Next) -> Response {
    if let Some(token) = &shared.state.token {
        if req.uri().path() != "/livez" {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let ok = given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()));
            if !ok {
                let mut resp =
                    ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                        .into_response();
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
                return resp;
            }
        }
    }
    next.run(req).await
}

/// Refuses what a web page in an operator's browser could send: a
/// cross-origin request (403), or, on loopback, a request for another
/// host name, which is how DNS rebinding reaches a local server (421).
async fn browser_guard(State(shared): S, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Reach::Loopback(ip) = shared.reach {
        if headers.get(header::HOST).is_some() && !host.is_some_and(|h| loopback_host(h, ip)) {
            let given = String::from_utf8_lossy(headers[header::HOST].as_bytes()).into_owned();
            return ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host {given:?} is not this server: on loopback it answers to \
                     localhost, 127.0.0.1 or [::1]"
                ),
            )
            .with_detail(Detail::new("", "", "Host", "not a loopback name"))
            .into_response();
        }
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if let Some(site @ ("cross-site" | "same-site")) = site.as_deref() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("cross-origin request refused (Sec-Fetch-Site: {site})"),
        )
        .with_detail(Detail::new("", "", "Sec-Fetch-Site", "not same-origin"))
        .into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes()).to_ascii_lowercase();
        let own = host.is_some_and(|h| {
            let h = h.to_ascii_lowercase();
            origin == format!("http://{h}") || origin == format!("https://{h}")
        });
        if !own {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "cross-origin request refused: Origin {origin:?} is not this server ({})",
                    host.unwrap_or("no Host")
                ),
            )
            .with_detail(Detail::new("", "", "Origin", "not this server's origin"))
            .into_response();
        }
    }
    next.run(req).await
}

/// Whether a `Host` header names the loopback server at `ip`:
/// `localhost`, `127.0.0.1`, `[::1]` or `ip` itself, with any port.
fn loopback_host(host: &str, ip: std::net::IpAddr) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, port))
                if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) =>
            {
                addr
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bracketed = host.starts_with('[');
    match name.parse::<std::net::IpAddr>() {
        Ok(a @ std::net::IpAddr::V4(_)) if !bracketed => {
            a == std::net::IpAddr::from([127, 0, 0, 1]) || a == ip
        }
        Ok(a @ std::net::IpAddr::V6(_)) if bracketed => {
            a == std::net::Ipv6Addr::LOCALHOST || a == ip
        }
        _ => false,
    }
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.parse::<u16>().is_ok()
}

/// Puts every error answer in the JSON shape, whoever made it: axum's
/// own rejections (a path or body that does not parse, 413 from a body
/// limit, 405 on a merged router) are plain text or empty.
async fn json_errors(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    use http_body_util::BodyExt;
    let (parts, body) = resp.into_parts();
    let text = match http_body_util::Limited::new(body, 64 << 10).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
        Err(_) => String::new(),
    };
    let error = if !text.is_empty() {
        text
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        format!("method {method} not allowed on {path}")
    } else {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    };
    let mut out = ApiError::new(status, error).into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

async fn livez() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(shared): S) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), shared.state.store.revision()).await {
        Ok(Ok(rev)) => Json(json!({"status": "ready", "node": shared.state.node, "revision": rev}))
            .into_response(),
        Ok(Err(e)) => ApiError::unavailable(format!("store unreachable: {e}")).into_response(),
        Err(_) => ApiError::unavailable("store unreachable: timed out").into_response(),
    }
}

async fn openapi(State(shared): S) -> Json<Value> {
    Json(crate::openapi::openapi(&shared.state))
}

async fn kinds(State(shared): S) -> Json<Value> {
    let reg = &shared.state.registry;
    let list: Vec<Value> = reg
        .kinds()
        .filter_map(|k| {
            let kind = reg.get(k)?;
            Some(json!({
                "kind": kind.name(),
                "plural": kind.plural(),
                "builtin": kind.builtin(),
                "columns": kind.columns(),
                "schema": reg.schema(k),
                "specSchema": kind.spec_schema(),
            }))
        })
        .collect();
    Json(json!({"apiVersion": API_VERSION, "kinds": list}))
}

// ---- request helpers ----

fn query(q: Q) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(m)| m)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
}

fn flag(q: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("") | Some("true") | Some("1") => Ok(true),
        Some(v) => Err(
            ApiError::bad_request(format!("?{name}= takes true or false, got {v:?}"))
                .with_detail(Detail::new("", "", name, "expected true or false")),
        ),
    }
}

fn number(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name)
        .map(|v| {
            // Digits only: u64's parser would also take a leading '+'.
            let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
            v.parse::<u64>().ok().filter(|_| digits).ok_or_else(|| {
                ApiError::bad_request(format!("?{name}= takes a revision number, got {v:?}"))
                    .with_detail(Detail::new("", "", name, "expected an unsigned integer"))
            })
        })
        .transpose()
}

/// The kind served at `/v1/{plural}`.
fn kind_of(shared: &Shared, plural: &str) -> Result<String, ApiError> {
    shared
        .state
        .registry
        .lookup(plural)
        .map(|k| k.name().to_string())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "unknown kind {plural:?}; GET /v1/kinds lists the known kinds"
            ))
        })
}

fn path_name(kind: &str, name: &str) -> Result<(), ApiError> {
    check_name(name).map_err(|r| {
        ApiError::bad_request(format!("bad name in path: {r}")).with_detail(Detail::new(
            kind,
            name,
            "metadata.name",
            r,
        ))
    })
}

fn path2(p: Result<Path<(String, String)>, PathRejection>) -> Result<(String, String), ApiError> {
    p.map(|Path(x)| x)
        .map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))
}

/// The kind and name of a `/<plural>/<name>` path, both checked.
fn kind_and_name(
    shared: &Shared,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), ApiError> {
    let (plural, name) = path2(p)?;
    let kind = kind_of(shared, &plural)?;
    path_name(&kind, &name)?;
    Ok((kind, name))
}

async fn read_body(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let max = shared.state.limits.max_body_bytes;
    // Bodies a little over the limit are read to the end (and dropped) so
    // that the client, still sending, gets to read the 413.
    let drain = max.saturating_mul(4).max(32 << 20);
    let too_large =
        || ApiError::too_large(format!("request body is over the limit of {max} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > drain as u64) {
        return Err(too_large());
    }
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total > drain {
                return Err(too_large());
            }
            if total <= max {
                buf.extend_from_slice(&data);
            }
        }
    }
    if total > max {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Format {
    Json,
    Yaml,
    /// No Content-Type: JSON if the body starts with `{` or `[`, else YAML.
    Sniff,
}

/// The body's format from its Content-Type: JSON or YAML only. Anything
/// else is a 415, `text/plain` included: a web page can send that
/// cross-site without asking first.
pub(crate) fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Format::Sniff);
    };
    let ct = String::from_utf8_lossy(ct.as_bytes()).to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" => Ok(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(Format::Yaml),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type {essence:?}: send application/json or application/yaml"
            ),
        )
        .with_detail(Detail::new(
            "",
            "",
            "Content-Type",
            "expected application/json or application/yaml",
        ))),
    }
}

/// Bodies larger than this are parsed on the blocking pool, so that one
/// large request does not hold up the others.
const PARSE_INLINE_MAX: usize = 64 << 10;

/// The body of a write, its format checked first. A body of another
/// format is still read (up to the limit) before the 415, so that the
/// client, still sending, gets to read the answer.
async fn write_body(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Format, Bytes), ApiError> {
    let format = format_of(headers);
    let bytes = read_body(shared, headers, body).await;
    let format = format?;
    Ok((format, bytes?))
}

/// Runs `parse` over `bytes`: on this task if the body is small, on the
/// blocking pool if not.
async fn parse_off<T: Send + 'static>(
    bytes: Bytes,
    parse: impl FnOnce(&[u8]) -> T + Send + 'static,
) -> Result<T, ApiError> {
    if bytes.len() <= PARSE_INLINE_MAX {
        return Ok(parse(&bytes));
    }
    tokio::task::spawn_blocking(move || parse(&bytes))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("parsing the body failed: {e}"),
            )
        })
}

/// The documents of a body: JSON (an object, an array of objects, or
/// `{"items": [...]}`) or YAML (several documents; sequences are spread).
pub(crate) fn documents(format: Format, body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let malformed = |what: &str, e: String| {
        ApiError::bad_request(format!("malformed {what}: {e}")).with_detail(Detail::new(
            "",
            "",
            "",
            format!("malformed {what}: {e}"),
        ))
    };
    let format = match format {
        Format::Sniff => match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | Some(b'[') => Format::Json,
            _ => Format::Yaml,
        },
        f => f,
    };
    match format {
        Format::Json | Format::Sniff => {
            // The same strict reader as YAML: duplicate keys refused, 245.0
            // read as the integer JSON Schema says it is.
            let v: Value = weir_model::yaml::json_value(body).map_err(|e| {
                let reason = e.to_string();
                malformed(
                    "JSON",
                    reason.trim_start_matches("malformed JSON: ").to_string(),
                )
            })?;
            Ok(match v {
                Value::Array(items) => items,
                Value::Object(m)
                    if m.get("items").is_some_and(Value::is_array) && !m.contains_key("spec") =>
                {
                    match m.into_iter().find(|(k, _)| k == "items") {
                        Some((_, Value::Array(items))) => items,
                        _ => Vec::new(),
                    }
                }
                v => vec![v],
            })
        }
        Format::Yaml => {
            let text = std::str::from_utf8(body)
                .map_err(|e| malformed("YAML", format!("not UTF-8: {e}")))?;
            weir_model::yaml::documents(text).map_err(|errs| {
                let reason = errs.to_string();
                malformed("YAML", reason)
            })
        }
    }
}

/// Parses one document into an object (status dropped: clients do not
/// write it here) and the revision it expects, if any.
fn parse_doc(
    shared: &Shared,
    mut doc: Value,
    index: Option<usize>,
) -> Result<(Object, Option<u64>), Vec<Detail>> {
    // A status sent here is ignored, but must still be a status.
    if let Value::Object(m) = &mut doc {
        if m.get("status").is_some_and(Value::is_null) {
            m.remove("status");
        }
    }
    match shared.state.registry.parse(&doc) {
        Ok(mut o) => {
            o.status = None;
            let expect = o.metadata.revision.take();
            o.metadata.generation = None;
            o.metadata.creation_timestamp = None;
            Ok((o, expect))
        }
        Err(errs) => Err(errs
            .into_iter()
            .map(|e| {
                let mut d = Detail::from(e);
                d.index = index;
                d
            })
            .collect()),
    }
}

async fn single(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let (format, bytes) = write_body(shared, headers, body).await?;
    let mut docs = parse_off(bytes, move |b| documents(format, b)).await??;
    if docs.len() != 1 {
        return Err(ApiError::bad_request(format!(
            "expected one object in the body, got {}; use POST /v1/apply for several",
            docs.len()
        )));
    }
    Ok(docs.remove(0))
}

fn check_kind(obj: &Object, kind: &str, name: Option<&str>) -> Result<(), ApiError> {
    if obj.kind != kind {
        return Err(ApiError::bad_request(format!(
            "the body is a {}, the path is for {kind}",
            obj.kind
        ))
        .with_detail(Detail::new(
            &obj.kind,
            obj.name(),
            "kind",
            format!("must be {kind} on this path"),
        )));
    }
    if let Some(n) = name {
        if obj.name() != n {
            return Err(ApiError::bad_request(format!(
                "the body names {:?}, the path {n:?}",
                obj.name()
            ))
            .with_detail(Detail::new(
                kind,
                obj.name(),
                "metadata.name",
                format!("must be {n:?} as in the path"),
            )));
        }
    }
    Ok(())
}

fn object_response(status: StatusCode, o: Option<Object>) -> Response {
    (status, Json(o)).into_response()
}

// ---- CRUD ----

async fn list(State(shared): S, Path(plural): Path<String>, q: Q) -> R {
    let q = query(q)?;
    let kind = kind_of(&shared, &plural)?;
    let sel =
        Selector::parse(q.get("labelSelector").map(String::as_str).unwrap_or("")).map_err(|r| {
            ApiError::bad_request(format!("bad labelSelector: {r}")).with_detail(Detail::new(
                &kind,
                "",
                "labelSelector",
                r,
            ))
        })?;
    let (kvs, rev) = shared.state.store.list(&key_prefix(&kind)).await?;
    let items: Vec<Object> = kvs
        .iter()
        .filter_map(decode)
        .filter(|o| sel.matches(&o.metadata.labels))
        .collect();
    Ok(Json(json!({
        "apiVersion": API_VERSION,
        "kind": format!("{kind}List"),
        "revision": rev,
        "items": items,
    }))
    .into_response())
}

async fn get_one(State(shared): S, p: Result<Path<(String, String)>, PathRejection>) -> R {
    let (kind, name) = kind_and_name(&shared, p)?;
    match shared.state.store.get(&key(&kind, &name)).await? {
        Some(kv) => match decode(&kv) {
            Some(o) => Ok(Json(o).into_response()),
            None => Err(ApiError::unavailable(format!(
                "{kind}/{name} is stored in a form this server cannot read"
            ))),
        },
        None => Err(ApiError::not_found(format!("{kind}/{name} not found"))),
    }
}

async fn create(
    State(shared): S,
    Path(plural): Path<String>,
    q: Q,
    headers: HeaderMap,
    body: Body,
) -> R {
    let q = query(q)?;
    let kind = kind_of(&shared, &plural)?;
    let dry = flag(&q, "dryRun")?;
    let doc = single(&shared, &headers, body).await?;
    let (obj, expect) =
        parse_doc(&shared, doc, None).map_err(|d| ApiError::invalid(summary(&d), d))?;
    check_kind(&obj, &kind, None)?;
    let (mut out, _) = commit(
        &shared,
        vec![Op::Upsert {
            obj,
            expect,
            create_only: true,
        }],
        None,
        dry,
    )
    .await?;
    let o = out.pop().and_then(|o| o.object);
    Ok(object_response(StatusCode::CREATED, o))
}

async fn put_one(
    State(shared): S,
    p: Result<Path<(String, String)>, PathRejection>,
    q: Q,
    headers: HeaderMap,
    body: Body,
) -> R {
    let (kind, name) = kind_and_name(&shared, p)?;
    let q = query(q)?;
    let dry = flag(&q, "dryRun")?;
    let doc = single(&shared, &headers, body).await?;
    let (obj, expect) =
        parse_doc(&shared, doc, None).map_err(|d| ApiError::invalid(summary(&d), d))?;
    check_kind(&obj, &kind, Some(&name))?;
    let (mut out, _) = commit(
        &shared,
        vec![Op::Upsert {
            obj,
            expect,
            create_only: false,
        }],
        None,
        dry,
    )
    .await?;
    let o = out.pop().expect("one outcome");
    let status = if o.action == Action::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(object_response(status, o.object))
}

async fn delete_one(State(shared): S, p: Result<Path<(String, String)>, PathRejection>, q: Q) -> R {
    let (kind, name) = kind_and_name(&shared, p)?;
    let q = query(q)?;
    let dry = flag(&q, "dryRun")?;
    let expect = number(&q, "revision")?;
    let (out, rev) = commit(&shared, vec![Op::Delete { kind, name, expect }], None, dry).await?;
    let mut o = out.into_iter().next().expect("one outcome");
    o.object = None;
    if dry {
        o.revision = rev;
    }
    Ok(Json(json!({"kind": o.kind, "name": o.name, "action": o.action, "revision": o.revision, "dryRun": dry})).into_response())
}

async fn put_status(
    State(shared): S,
    p: Result<Path<(String, String)>, PathRejection>,
    q: Q,
    headers: HeaderMap,
    body: Body,
) -> R {
    let (kind, name) = kind_and_name(&shared, p)?;
    let q = query(q)?;
    let dry = flag(&q, "dryRun")?;
    let mut expect = number(&q, "revision")?;
    let doc = single(&shared, &headers, body).await?;
    // Either a whole object with a status, or the status alone.
    let status_value = match &doc {
        Value::Object(m) if m.contains_key("apiVersion") || m.contains_key("metadata") => {
            // A whole object must be a valid one, for this path.
            let status = m.get("status").cloned().unwrap_or(Value::Null);
            let (obj, rev) = parse_doc(&shared, doc.clone(), None)
                .map_err(|d| ApiError::invalid(summary(&d), d))?;
            check_kind(&obj, &kind, Some(&name))?;
            expect = expect.or(rev);
            status
        }
        _ => doc.clone(),
    };
    let status: Status = weir_model::registry::parse_status(&status_value).map_err(|errs| {
        let d: Vec<Detail> = errs
            .into_iter()
            .map(|e| Detail::new(&kind, &name, &e.field, e.reason))
            .collect();
        ApiError::invalid(summary(&d), d)
    })?;
    let (mut out, _) = commit(
        &shared,
        vec![Op::Status {
            kind,
            name,
            status,
            expect,
        }],
        None,
        dry,
    )
    .await?;
    let o = out.pop().and_then(|o| o.object);
    Ok(object_response(StatusCode::OK, o))
}

// ---- apply ----

/// The objects of an apply body (each with the revision it expects), and
/// the details of those that do not parse.
type Parsed = (Vec<(Object, Option<u64>)>, Vec<Detail>);

fn apply_objects(shared: &Shared, format: Format, body: &[u8]) -> Result<Parsed, ApiError> {
    let docs = documents(format, body)?;
    let max = shared.state.limits.max_objects;
    if docs.len() > max {
        return Err(ApiError::too_large(format!(
            "{} objects in one apply, the limit is {max}",
            docs.len()
        )));
    }
    if docs.is_empty() {
        return Err(ApiError::bad_request("the body holds no objects"));
    }
    let mut details = Vec::new();
    let mut objects = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        match parse_doc(shared, doc, Some(i)) {
            Ok(x) => objects.push(x),
            Err(d) => details.extend(d),
        }
    }
    Ok((objects, details))
}

async fn apply(State(shared): S, q: Q, headers: HeaderMap, body: Body) -> R {
    let q = query(q)?;
    let dry = flag(&q, "dryRun")?;
    let (format, bytes) = write_body(&shared, &headers, body).await?;
    let parsing = shared.clone();
    let (objects, mut details) =
        parse_off(bytes, move |b| apply_objects(&parsing, format, b)).await??;
    let mut first: HashMap<(String, String), usize> = HashMap::new();
    for (i, (o, _)) in objects.iter().enumerate() {
        if let Some(j) = first.insert((o.kind.clone(), o.metadata.name.clone()), i) {
            let mut d = Detail::new(
                &o.kind,
                o.name(),
                "metadata.name",
                format!(
                    "{}/{} appears more than once (also at index {j})",
                    o.kind,
                    o.name()
                ),
            );
            d.index = Some(i);
            details.push(d);
            first.insert((o.kind.clone(), o.metadata.name.clone()), j);
        }
    }
    if !details.is_empty() {
        return Err(ApiError::invalid(summary(&details), details));
    }
    let n = objects.len();
    let ops: Vec<Op> = objects
        .into_iter()
        .map(|(obj, expect)| Op::Upsert {
            obj,
            expect,
            create_only: false,
        })
        .collect();
    let (mut outcomes, rev) = commit(&shared, ops, Some((0..n).collect()), dry).await?;
    if !dry {
        for o in &mut outcomes {
            o.object = None;
        }
    }
    Ok(Json(json!({"revision": rev, "dryRun": dry, "results": outcomes})).into_response())
}

// ---- watch ----

fn event_line(v: Value) -> Result<Bytes, Infallible> {
    let mut s = serde_json::to_vec(&v).expect("JSON");
    s.push(b'\n');
    Ok(Bytes::from(s))
}

async fn watch(State(shared): S, q: Q) -> R {
    let q = query(q)?;
    let from = number(&q, "fromRevision")?.unwrap_or(0);
    let reg = &shared.state.registry;
    // Lowercase kind -> kind name, for the kinds asked for.
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for word in q
        .get("kinds")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .map(|w| w.trim_matches(' '))
        .filter(|w| !w.is_empty())
    {
        let k = reg.lookup(word).ok_or_else(|| {
            ApiError::not_found(format!("unknown kind {word:?} in ?kinds="))
                .with_detail(Detail::new(word, "", "kinds", "unknown kind"))
        })?;
        wanted.insert(k.name().to_ascii_lowercase(), k.name().to_string());
    }
    let all: BTreeMap<String, String> = reg
        .kinds()
        .map(|k| (k.to_ascii_lowercase(), k.to_string()))
        .collect();
    let prefix = if wanted.len() == 1 {
        key_prefix(wanted.values().next().unwrap())
    } else {
        root_prefix()
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(256);
    match shared.state.store.watch(&prefix, from).await {
        Err(StoreError::Compacted {
            compact_revision, ..
        }) => {
            let _ = tx
                .send(event_line(json!({
                    "type": "RELIST",
                    "revision": compact_revision,
                    "code": "compacted",
                    "error": format!("compacted: revision {from} is no longer in the history (it starts at {compact_revision}); list again and watch from the list's revision + 1"),
                })))
                .await;
        }
        Err(e) => return Err(e.into()),
        Ok(mut w) => {
            let mut closing = shared.closing.subscribe();
            tokio::spawn(async move {
                let mut last = from.saturating_sub(1);
                if *closing.borrow() {
                    return;
                }
                let mut beat = tokio::time::interval(Duration::from_secs(15));
                beat.tick().await;
                loop {
                    let line = tokio::select! {
                        ev = w.next() => match ev {
                            Some(Ok(ev)) => {
                                last = ev.revision;
                                let rest = &ev.kv.key[root_prefix().len().min(ev.kv.key.len())..];
                                let Some((lk, name)) = rest.split_once('/') else { continue };
                                let kind = if wanted.is_empty() { all.get(lk) } else { wanted.get(lk) };
                                let Some(kind) = kind else { continue };
                                let (ty, obj) = match ev.kind {
                                    EventKind::Put => (
                                        if ev.kv.version == 1 { "ADDED" } else { "MODIFIED" },
                                        decode(&ev.kv).map(|o| serde_json::to_value(o).expect("JSON")),
                                    ),
                                    EventKind::Delete => ("DELETED", Some(json!({
                                        "apiVersion": API_VERSION,
                                        "kind": kind,
                                        "metadata": {"name": name, "revision": ev.revision},
                                    }))),
                                };
                                let Some(obj) = obj else { continue };
                                json!({"type": ty, "revision": ev.revision, "object": obj})
                            }
                            Some(Err(StoreError::Compacted { compact_revision, .. })) => {
                                let _ = tx.send(event_line(json!({
                                    "type": "RELIST",
                                    "revision": compact_revision,
                                    "code": "compacted",
                                    "error": format!("compacted: the watch fell behind the history (it starts at {compact_revision}); list again and watch from the list's revision + 1"),
                                }))).await;
                                break;
                            }
                            Some(Err(e)) => {
                                let _ = tx.send(event_line(json!({"type": "ERROR", "revision": last, "error": e.to_string()}))).await;
                                break;
                            }
                            None => break,
                        },
                        _ = beat.tick() => json!({"type": "BOOKMARK", "revision": last}),
                        _ = closing.changed() => break,
                    };
                    if tx.send(event_line(line)).await.is_err() {
                        break;
                    }
                }
            });
        }
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}
