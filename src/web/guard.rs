//! The security layers around every route, outermost first: panic → 500,
//! security headers, the WebSocket `Origin` check, tokens and roles, the
//! ingest rate, and the body's size and time limits.

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use tower_http::catch_panic::CatchPanicLayer;

use super::headers::{self, SecurityHeaders};
use super::limits::{self, IngestRate};
use super::{AppState, auth};

/// Wraps `routes` in every security layer (a layer added later runs first).
pub fn harden(routes: Router, state: &Arc<AppState>) -> Router {
    let security = &state.config.security;
    routes
        .layer(from_fn_with_state(
            Arc::new(security.limits.clone()),
            limits::read_body,
        ))
        .layer(from_fn_with_state(
            Arc::new(IngestRate::new(security.limits.ingest_rate_per_sec)),
            limits::limit_ingest_rate,
        ))
        .layer(from_fn_with_state(state.clone(), auth::require_role))
        .layer(from_fn_with_state(state.clone(), headers::check_origin))
        .layer(from_fn_with_state(
            Arc::new(SecurityHeaders::new(&security.web)),
            headers::add_security_headers,
        ))
        .layer(CatchPanicLayer::custom(limits::panic_response))
}
