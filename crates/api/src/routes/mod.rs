//! The HTTP handlers.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use weir_model::{check_name, key, key_prefix, Object, Status, API_VERSION};
use weir_store::{EventKind, StoreError};

use crate::cache::{decode, root_prefix};
use crate::error::{summary, ApiError, Detail};
use crate::selector::Selector;
use crate::write::{commit, Action, Op};
use crate::Shared;

mod body;
mod guard;

use body::*;
pub(crate) use body::{documents, format_of, Format};
use guard::*;

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
