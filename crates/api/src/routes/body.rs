//! Request bodies: size limits, media types, JSON and YAML documents
//! parsed strictly (large ones off the async threads).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;
use weir_model::Object;

use crate::error::{ApiError, Detail};
use crate::Shared;

pub(super) async fn read_body(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
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
pub(super) const PARSE_INLINE_MAX: usize = 64 << 10;

/// The body of a write, its format checked first. A body of another
/// format is still read (up to the limit) before the 415, so that the
/// client, still sending, gets to read the answer.
pub(super) async fn write_body(
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
pub(super) async fn parse_off<T: Send + 'static>(
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
pub(super) fn parse_doc(
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

pub(super) async fn single(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
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

pub(super) fn check_kind(obj: &Object, kind: &str, name: Option<&str>) -> Result<(), ApiError> {
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
