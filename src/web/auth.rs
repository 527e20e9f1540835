//! Tokens and roles: which role each route needs ([`required`]), where a
//! request's token comes from (`Authorization: Bearer`, a `token` query
//! parameter, or the `wallboard_token` cookie a query token sets), and the
//! middleware that lets a request through or answers 401.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::security::MAX_TOKEN_BYTES;

use super::AppState;
use crate::config::Config;
use crate::security::{Auth, Role};

/// The header a vendor's connection may carry the ingest token in instead of `Authorization`.
pub const TOKEN_HEADER: &str = "x-wallboard-token";
/// The cookie a `?token=` page visit sets.
pub const COOKIE: &str = "wallboard_token";
/// How long the cookie lasts: a TV kiosk opened once keeps working (browsers cap at 400 days).
const COOKIE_MAX_AGE_SECS: u64 = 400 * 24 * 3600;

/// What a route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Anyone: liveness and assets, which hold no data.
    Open,
    /// An ingest token.
    Ingest,
    /// A viewer or supervisor token.
    Viewer,
    /// A supervisor token.
    Supervisor,
}

/// The role a route needs. New routes are classified here; unknown paths
/// need a supervisor. `board_is_public` says whether `/board/{name}` is public
/// (asked with `""` for the default board of `/`).
pub fn required(method: &Method, path: &str, board_is_public: impl Fn(&str) -> bool) -> Need {
    let _ = method; // Every method of a path needs the same role.
    match path {
        "/healthz" | "/favicon.ico" => Need::Open,
        _ if path.starts_with("/static/") => Need::Open,
        "/api/events" | "/api/sources/connect" => Need::Ingest,
        // Twilio cannot send a token: its signature, checked by the handler, stands in.
        "/api/sources/taskrouter" => Need::Open,
        "/api/snapshot" | "/ws" => Need::Viewer,
        "/" if board_is_public("") => Need::Viewer,
        "/" => Need::Supervisor,
        _ => match path.strip_prefix("/board/") {
            Some(name) if !name.contains('/') && board_is_public(name) => Need::Viewer,
            _ => Need::Supervisor,
        },
    }
}

/// Whether a holder of `role` may use a route that needs `need`.
/// Supervisors see everything viewers see; ingest is for machines only.
pub fn allows(role: Role, need: &Need) -> bool {
    match need {
        Need::Open => true,
        Need::Ingest => role == Role::Ingest,
        Need::Viewer => matches!(role, Role::Viewer | Role::Supervisor),
        Need::Supervisor => role == Role::Supervisor,
    }
}

/// Whether `/board/{name}` may be shown to viewers: only a configured, public board.
pub fn board_is_public(config: &Config, name: &str) -> bool {
    let board = match name {
        "" => Some(&config.boards.default),
        _ => config.boards.get(name),
    };
    board.is_some_and(|b| b.public)
}

/// Which token a request presented and what it may do; set by the middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// Index of the token among the configured ones (`None` when auth is off).
    pub token: Option<usize>,
    /// Its role (`None` when auth is off).
    pub role: Option<Role>,
}

/// The role of `presented`, compared against every token in time that
/// depends on neither: fixed-width buffers (a slice comparison would return
/// early on a length mismatch) and a branch-free choice of the match.
pub fn role_of(auth: &Auth, presented: &str) -> Option<(usize, Role)> {
    fn padded(bytes: &[u8]) -> [u8; MAX_TOKEN_BYTES] {
        let mut buffer = [0u8; MAX_TOKEN_BYTES];
        let n = bytes.len().min(MAX_TOKEN_BYTES);
        buffer[..n].copy_from_slice(&bytes[..n]);
        buffer
    }
    let theirs = padded(presented.as_bytes());
    let their_len = presented.len() as u64;
    let mut found = u64::MAX;
    for (i, (token, _)) in auth.tokens.iter().enumerate() {
        let equal =
            padded(token.as_bytes()).ct_eq(&theirs) & (token.len() as u64).ct_eq(&their_len);
        found.conditional_assign(&(i as u64), equal);
    }
    let i = usize::try_from(found)
        .ok()
        .filter(|&i| i < auth.tokens.len())?;
    Some((i, auth.tokens[i].1))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `X-Wallboard-Token: <token>`, for the vendor routes whose senders set a
/// header's name and value but not an `Authorization` scheme as such.
fn plain_header<'h>(headers: &'h HeaderMap, path: &str) -> Option<&'h str> {
    if !path.starts_with("/api/sources/") {
        return None;
    }
    let value = headers.get(TOKEN_HEADER)?.to_str().ok()?;
    Some(value.trim())
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The `token` query parameter, and the query without it.
fn query_token(query: Option<&str>) -> (Option<&str>, Vec<&str>) {
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("token", value)) => token = Some(value),
            _ if pair == "token" => token = Some(""),
            _ => rest.push(pair),
        }
    }
    (token, rest)
}

fn is_websocket(request: &Request) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether a path is a page a person opens (and so gets a page, not JSON, on 401).
pub fn is_page(path: &str) -> bool {
    !["/api/", "/ws", "/static/", "/metrics", "/healthz"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// The middleware: classify, find the token, check the role.
pub async fn require_role(
    State(app): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = &app.config.security.auth;
    let path = request.uri().path().to_owned();
    let need = required(request.method(), &path, |name| {
        board_is_public(&app.config, name)
    });
    if !auth.enabled() || need == Need::Open {
        request.extensions_mut().insert(Principal {
            token: None,
            role: None,
        });
        return next.run(request).await;
    }
    let page = is_page(&path);
    let websocket = is_websocket(&request);
    let (from_query, rest) = query_token(request.uri().query());
    let presented = match from_query {
        Some(token) if page || websocket => Some(token),
        _ => bearer(request.headers())
            .or_else(|| plain_header(request.headers(), &path))
            .or_else(|| cookie(request.headers())),
    };
    let Some((index, role)) = presented.and_then(|t| role_of(auth, t)) else {
        return unauthorized(page, presented.is_some(), &need);
    };
    if !allows(role, &need) {
        return unauthorized(page, true, &need);
    }
    if let (Some(token), true, false) = (from_query, page, websocket) {
        let secure = app.config.security.web.trust_proxy && forwarded_https(request.headers());
        return set_cookie_and_redirect(&path, &rest, token, secure);
    }
    request.extensions_mut().insert(Principal {
        token: Some(index),
        role: Some(role),
    });
    next.run(request).await
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Keeps the token out of the address bar and history: cookie, then the same URL without it.
fn set_cookie_and_redirect(path: &str, rest: &[&str], token: &str, secure: bool) -> Response {
    let location = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={COOKIE_MAX_AGE_SECS}{secure}"
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    // Tokens and paths were checked to be header-safe; fall back to "/" regardless.
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("/")),
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const TOKEN_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Token needed</title></head><body><h1>A token is needed</h1>\
<p>This board needs an access token. Open it with <code>?token=YOUR-TOKEN</code> \
added to the address once; this browser will remember it.</p></body></html>\n";

fn unauthorized(page: bool, had_token: bool, need: &Need) -> Response {
    let mut response = if page {
        (StatusCode::UNAUTHORIZED, Html(TOKEN_PAGE)).into_response()
    } else {
        let needed = match need {
            Need::Ingest => "an ingest token",
            Need::Viewer => "a viewer or supervisor token",
            _ => "a supervisor token",
        };
        let error = if had_token {
            format!("this token is not valid here: this needs {needed}")
        } else {
            format!("a token is needed: send `Authorization: Bearer <token>` with {needed}")
        };
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": error})),
        )
            .into_response()
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"wallboard\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_roles() {
        let public = |name: &str| name == "lobby" || name.is_empty();
        let get = Method::GET;
        let table = [
            ("/healthz", Need::Open),
            ("/static/board.js", Need::Open),
            ("/api/events", Need::Ingest),
            ("/api/sources/connect", Need::Ingest),
            ("/api/sources/taskrouter", Need::Open),
            ("/api/sources", Need::Supervisor),
            ("/", Need::Viewer),
            ("/api/snapshot", Need::Viewer),
            ("/ws", Need::Viewer),
            ("/board/lobby", Need::Viewer),
            ("/board/secret", Need::Supervisor),
            ("/board/lobby/x", Need::Supervisor),
            ("/supervisor", Need::Supervisor),
            ("/ws/supervisor", Need::Supervisor),
            ("/api/supervisor", Need::Supervisor),
            ("/api/calls", Need::Supervisor),
            ("/api/alerts/test", Need::Supervisor),
            ("/metrics", Need::Supervisor),
            ("/anything-new", Need::Supervisor),
        ];
        for (path, need) in table {
            assert_eq!(required(&get, path, public), need, "{path}");
        }
        let nothing_public = |_: &str| false;
        assert_eq!(required(&get, "/", nothing_public), Need::Supervisor);
        assert!(allows(Role::Supervisor, &Need::Viewer));
        assert!(!allows(Role::Supervisor, &Need::Ingest));
        assert!(!allows(Role::Viewer, &Need::Supervisor));
        assert!(!allows(Role::Ingest, &Need::Viewer));
    }

    #[test]
    fn tokens_from_every_place() {
        let auth = Auth {
            tokens: vec![("abc".into(), Role::Viewer), ("abcd".into(), Role::Ingest)],
        };
        assert_eq!(role_of(&auth, "abcd"), Some((1, Role::Ingest)));
        assert_eq!(role_of(&auth, "abc"), Some((0, Role::Viewer)));
        assert_eq!(role_of(&auth, "ab"), None);
        assert_eq!(role_of(&auth, ""), None);

        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer  abc".parse().unwrap());
        headers.insert(
            header::COOKIE,
            "x=1; wallboard_token=t1; y=2".parse().unwrap(),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        assert_eq!(cookie(&headers), Some("t1"));

        assert_eq!(
            query_token(Some("a=1&token=t&b=2")),
            (Some("t"), vec!["a=1", "b=2"])
        );
        assert_eq!(query_token(None), (None, vec![]));
    }
}
