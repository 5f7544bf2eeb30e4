//! Who may call: the bearer token, browser requests refused, the Host
//! header on loopback, and every error answered in JSON.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, Detail};
use crate::server::Reach;

use super::*;

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) async fn auth(State(shared): S, req: Request, next: Next) -> Response {
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
pub(super) async fn browser_guard(State(shared): S, req: Request, next: Next) -> Response {
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
pub(super) fn loopback_host(host: &str, ip: std::net::IpAddr) -> bool {
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

pub(super) fn is_port(p: &str) -> bool {
    !p.is_empty() && p.parse::<u16>().is_ok()
}

/// Puts every error answer in the JSON shape, whoever made it: axum's
/// own rejections (a path or body that does not parse, 413 from a body
/// limit, 405 on a merged router) are plain text or empty.
pub(super) async fn json_errors(req: Request, next: Next) -> Response {
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
