//! HTTP and WebSocket: the router ([`app`]) and the errors clients see.
//! - [`api`]: ingest, snapshot, health and metrics; [`hosted`]: the routes
//!   hosted contact centres post their own events to.
//! - [`ws`]: the board's WebSocket; [`exports`]: a day's calls as a file.
//! - [`pages`]: the server-rendered boards and supervisor page; [`assets`]:
//!   their scripts and styles; [`trends`]: the supervisor's trends.
//! - Security: [`guard`] wraps every route in [`auth`] (tokens and roles),
//!   [`headers`] (CSP, `Origin`) and [`limits`]; [`conn`] accepts connections.

pub mod alerts;
pub mod api;
pub mod assets;
pub mod auth;
pub mod conn;
pub mod exports;
pub mod guard;
pub mod headers;
pub mod hosted;
pub mod limits;
pub mod pages;
pub mod trends;
mod upgrade;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::config::Config;
use crate::feed::FeedError;
use crate::hub::Hub;
use crate::pipeline::SubmitError;
use crate::shutdown::Signal;

/// What every handler shares.
pub struct AppState {
    /// The engine and the board's fan-out.
    pub hub: Arc<Hub>,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Fires when the server is shutting down (WebSockets close).
    pub shutdown: Signal,
    /// Every telephony source's status.
    pub sources: Arc<crate::source::Sources>,
    /// Alert rules and targets (for the test route and `/metrics`).
    pub alerts: Arc<crate::alert::Alerts>,
}

/// The router with every route, hardened by [`guard::harden`].
pub fn app(state: Arc<AppState>) -> Router {
    let body_bytes = state.config.security.limits.body_bytes;
    let routes = Router::new()
        .route("/", get(pages::board))
        .route("/board/{name}", get(pages::named_board))
        .route(
            "/api/events",
            guard::json_from_own_origin(guard::ingest(post(api::post_events), &state), &state),
        )
        .route(
            "/api/sources/connect",
            guard::json_from_own_origin(guard::ingest(post(hosted::post_connect), &state), &state),
        )
        .route(
            "/api/sources/taskrouter",
            guard::ingest(post(hosted::post_taskrouter), &state),
        )
        .route("/api/snapshot", get(api::snapshot))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/ws", get(ws::upgrade))
        .route("/static/{file}", get(assets::asset))
        .merge(supervisor_routes())
        .layer(axum::extract::DefaultBodyLimit::max(body_bytes))
        .with_state(state.clone());
    guard::harden(routes, &state)
}

/// The routes that carry caller numbers and agent names: for supervisors only
/// (the auth layer restricts this router as a whole).
pub fn supervisor_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/supervisor", get(pages::supervisor))
        .route("/api/supervisor", get(api::supervisor))
        .route("/api/sources", get(api::sources))
        .route("/api/calls", get(exports::calls))
        .route("/api/calls/days", get(exports::days))
        .route("/api/trends", get(trends::trends))
        .route("/ws/supervisor", get(ws::upgrade_supervisor))
        .route("/api/alerts/test", post(alerts::test))
}

/// An error a client caused (4xx) or the server suffered (5xx).
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A batch with an invalid event; nothing of it was applied.
    #[error("{0}")]
    BadBatch(#[from] FeedError),
    /// A malformed request other than a batch.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// The store cannot take events now; nothing of the batch was applied.
    #[error("the event store is unavailable; nothing of the batch was applied")]
    Unavailable(String),
    /// The pipeline refused the batch (too far ahead, too many open calls,
    /// or the store failed); nothing of it was applied.
    #[error("{0}")]
    Refused(#[from] SubmitError),
    /// Our fault; details go to the log only.
    #[error("internal error")]
    Internal(String),
}

/// `Retry-After` when too many calls are open: long enough for some to end.
const RETRY_OPEN_CALLS_SECS: &str = "5";

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            WebError::BadBatch(e) => (
                StatusCode::BAD_REQUEST,
                json!({"error": self.to_string(), "index": e.index, "line": e.line, "field": e.field()}),
            ),
            WebError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, json!({"error": self.to_string()}))
            }
            WebError::NotFound(_) => (StatusCode::NOT_FOUND, json!({"error": self.to_string()})),
            WebError::Unavailable(detail) => {
                tracing::error!("store unavailable: {detail:?}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": self.to_string()}),
                )
            }
            WebError::Refused(SubmitError::Future { index, .. }) => (
                StatusCode::BAD_REQUEST,
                json!({"error": self.to_string(), "index": index, "field": "at"}),
            ),
            WebError::Refused(SubmitError::OpenCalls { .. }) => {
                let body = json!({"error": self.to_string()});
                let headers = [(axum::http::header::RETRY_AFTER, RETRY_OPEN_CALLS_SECS)];
                return (StatusCode::TOO_MANY_REQUESTS, headers, axum::Json(body)).into_response();
            }
            WebError::Refused(SubmitError::Store(e)) => {
                return WebError::Unavailable(e.to_string()).into_response();
            }
            WebError::Refused(SubmitError::NotReplicated(detail)) => {
                tracing::error!("batch not stored in the cluster: {detail}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "the cluster did not store the batch (no quorum of NATS servers reachable); this node applied nothing of it. Retry with the same event ids: events already stored are then ignored as duplicates"}),
                )
            }
            WebError::Internal(detail) => {
                tracing::error!("internal error: {detail:?}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal error"}),
                )
            }
        };
        (status, axum::Json(body)).into_response()
    }
}
