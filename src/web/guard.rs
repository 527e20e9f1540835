//! The security layers around every route, outermost first: security
//! headers, the WebSocket `Origin` check, tokens and roles, and a handler's
//! panic → 500; and around the ingest route alone, its rate and the body's
//! size and time limits. (A panic
//! elsewhere ends only its connection's task.)

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::MethodRouter;
use tower_http::catch_panic::CatchPanicLayer;

use super::headers::{self, SecurityHeaders};
use super::limits::{self, IngestRate};
use super::{AppState, auth};

/// The ingest routes' own layers: they alone take a body. The rate limit runs
/// first, then the body is read under its size and time limits, both after
/// the caller's token was checked (so no one unknown gets a body buffered).
pub fn ingest(
    route: MethodRouter<Arc<AppState>>,
    state: &Arc<AppState>,
) -> MethodRouter<Arc<AppState>> {
    let limits = &state.config.security.limits;
    route
        .layer(from_fn_with_state(
            Arc::new(limits.clone()),
            limits::read_body,
        ))
        .layer(from_fn_with_state(
            Arc::new(IngestRate::new(limits.ingest_rate_per_sec)),
            limits::limit_ingest_rate,
        ))
}

/// Refuses cross-site posts to a JSON route before anything else of it runs:
/// a foreign `Origin` (403) or a body that is not JSON or NDJSON (415). See
/// [`headers::same_origin_json`]; a route taking another body type (a form)
/// needs its own content-type rule.
pub fn json_from_own_origin(
    route: MethodRouter<Arc<AppState>>,
    state: &Arc<AppState>,
) -> MethodRouter<Arc<AppState>> {
    route.layer(from_fn_with_state(state.clone(), headers::same_origin_json))
}

/// Wraps `routes` in every security layer (a layer added later runs first).
pub fn harden(routes: Router, state: &Arc<AppState>) -> Router {
    let security = &state.config.security;
    routes
        .layer(CatchPanicLayer::custom(limits::panic_response))
        .layer(from_fn_with_state(state.clone(), auth::require_role))
        .layer(from_fn_with_state(state.clone(), headers::check_origin))
        .layer(from_fn_with_state(
            Arc::new(SecurityHeaders::new(&security.web)),
            headers::add_security_headers,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, system_clock};
    use crate::config::Config;
    use crate::hub::Hub;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_and_the_server_carries_on() {
        let config = Config::default();
        let hub = Hub::in_memory(config.engine.clone(), Clock::Wall, system_clock());
        let state = Arc::new(AppState {
            hub: Arc::new(hub),
            config: Arc::new(config),
            shutdown: crate::shutdown::channel().1,
            sources: Arc::default(),
            alerts: Arc::default(),
        });
        let routes = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }));
        let app = harden(routes, &state);
        let call = |path: &'static str| {
            app.clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
        };
        let response = call("/boom").await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().contains_key("content-security-policy"));
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"error":"internal error"}"#);
        assert_eq!(call("/fine").await.unwrap().status(), StatusCode::OK);
    }
}
