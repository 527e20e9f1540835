//! Browser hardening: a strict Content-Security-Policy and friends on every
//! response, and the `Origin` check that stops other sites opening our
//! WebSockets with a visitor's cookie (cross-site WebSocket hijacking).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::security::WebPolicy;

/// The Content-Security-Policy: our own script and styles only, no inline script.
pub fn content_security_policy(web: &WebPolicy) -> String {
    let ancestors = if web.frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        web.frame_ancestors.join(" ")
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors {ancestors}; base-uri 'none'; form-action 'self'; \
         object-src 'none'"
    )
}

/// The headers every response carries, built once.
#[derive(Clone)]
pub struct SecurityHeaders(Vec<(header::HeaderName, HeaderValue)>);

impl SecurityHeaders {
    /// From the browser policy (validated to be header-safe).
    pub fn new(web: &WebPolicy) -> SecurityHeaders {
        let csp = HeaderValue::from_str(&content_security_policy(web))
            .unwrap_or(HeaderValue::from_static("default-src 'none'"));
        SecurityHeaders(vec![
            (header::CONTENT_SECURITY_POLICY, csp),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ])
    }
}

/// Adds the security headers to every response.
pub async fn add_security_headers(
    State(headers): State<Arc<SecurityHeaders>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    for (name, value) in &headers.0 {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// Refuses WebSocket upgrades from foreign origins (403); clients that send no
/// `Origin` (not browsers) pass, and still need their token.
pub async fn check_origin(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let websocket =
        request.uri().path().starts_with("/ws") || request.headers().contains_key(header::UPGRADE);
    if websocket && !origin_allowed(request.headers(), &app.config.security.web) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(
                json!({"error": "this origin may not open the board's WebSocket; \
                               add it to [web] allowed_origins if it should"}),
            ),
        )
            .into_response();
    }
    next.run(request).await
}

/// Body types `POST /api/events` takes: none a browser may send cross-site
/// without a preflight (`text/plain`, forms).
pub const JSON_TYPES: [&str; 2] = ["application/json", "application/x-ndjson"];

/// Whether a `Content-Type` is one of `accepted` (parameters such as `charset` aside).
pub fn content_type_in(headers: &HeaderMap, accepted: &[&str]) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            let media = media.trim();
            accepted.iter().any(|a| media.eq_ignore_ascii_case(a))
        })
}

/// Refuses a cross-site post to an ingest route: a foreign `Origin` is 403
/// (the WebSocket rule), a body that is not JSON or NDJSON 415, so a page the
/// operator visits cannot post events to a server without tokens.
pub async fn same_origin_json(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if !origin_allowed(request.headers(), &app.config.security.web) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": "this origin may not post events; \
                                       add it to [web] allowed_origins if it should"})),
        )
            .into_response();
    }
    if !content_type_in(request.headers(), &JSON_TYPES) {
        let given = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| format!("{:?}", String::from_utf8_lossy(v.as_bytes())))
            .unwrap_or_else(|| "none".to_owned());
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            axum::Json(json!({"error": format!(
                "the body's content type must be application/json or application/x-ndjson, not {given}"
            )})),
        )
            .into_response();
    }
    next.run(request).await
}

/// `host[:port]` without a default port, lowercased.
fn authority(host: &str, scheme: Option<&str>) -> String {
    let host = host.trim().trim_end_matches('/').to_ascii_lowercase();
    let default_port = match scheme {
        Some("https" | "wss") => Some(":443"),
        Some("http" | "ws") => Some(":80"),
        _ => None,
    };
    match default_port {
        Some(port) => host.strip_suffix(port).map(str::to_owned).unwrap_or(host),
        None => host
            .strip_suffix(":80")
            .or_else(|| host.strip_suffix(":443"))
            .map(str::to_owned)
            .unwrap_or(host),
    }
}

/// Whether the request's `Origin` (if any) is the server's own host or allowed.
pub fn origin_allowed(headers: &HeaderMap, web: &WebPolicy) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let normalized = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if web.allowed_origins.contains(&normalized) {
        return true;
    }
    let Some((scheme, host)) = normalized.split_once("://") else {
        return false; // "null" and other opaque origins
    };
    let own_hosts = [header::HOST.as_str(), "x-forwarded-host"];
    own_hosts
        .iter()
        .take(if web.trust_proxy { 2 } else { 1 })
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .any(|own| authority(own, None) == authority(host, Some(scheme)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(origin: Option<&str>, host: &str, web: &WebPolicy) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        origin_allowed(&headers, web)
    }

    #[test]
    fn origins() {
        let web = WebPolicy {
            allowed_origins: vec!["https://dash.example.com".into()],
            ..WebPolicy::default()
        };
        let table = [
            (None, "board:8080", true),
            (Some("http://board:8080"), "board:8080", true),
            (Some("https://BOARD:8080"), "board:8080", true),
            (Some("https://board"), "board:443", true),
            (Some("http://board"), "board", true),
            (Some("http://board:8081"), "board:8080", false),
            (Some("http://evil.example"), "board:8080", false),
            (Some("null"), "board:8080", false),
            (Some("https://dash.example.com"), "board:8080", true),
            (
                Some("https://dash.example.com.evil.io"),
                "board:8080",
                false,
            ),
        ];
        for (origin, host, expected) in table {
            assert_eq!(allowed(origin, host, &web), expected, "{origin:?} {host}");
        }
    }

    #[test]
    fn json_content_types() {
        let table = [
            (Some("application/json"), true),
            (Some("Application/JSON; charset=utf-8"), true),
            (Some("application/x-ndjson"), true),
            (Some("text/plain"), false),
            (Some("application/x-www-form-urlencoded"), false),
            (Some("application/jsonx"), false),
            (None, false),
        ];
        for (content_type, expected) in table {
            let mut headers = HeaderMap::new();
            if let Some(value) = content_type {
                headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            }
            assert_eq!(
                content_type_in(&headers, &JSON_TYPES),
                expected,
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn csp_frame_ancestors() {
        let mut web = WebPolicy::default();
        assert!(content_security_policy(&web).contains("frame-ancestors 'none';"));
        web.frame_ancestors = vec!["'self'".into(), "https://dash.example.com".into()];
        let csp = content_security_policy(&web);
        assert!(csp.contains("frame-ancestors 'self' https://dash.example.com;"));
        assert!(csp.contains("script-src 'self';"));
    }
}
