//! The routes hosted contact centres post to, each taking the vendor's own
//! request as it sends it: `POST /api/sources/connect` (Amazon Connect
//! contact events from an EventBridge API destination, behind an ingest
//! token) and `POST /api/sources/taskrouter` (Twilio TaskRouter callbacks,
//! behind `X-Twilio-Signature` instead). Like `POST /api/events`, a request
//! is stored whole before the answer, or refused whole with nothing applied.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, WebError};
use crate::event::Event;
use crate::pipeline::SubmitError;
use crate::source::hosted::{RequestError, connect, taskrouter};
use crate::source::{SourceConfig, SourceSettings};

/// The header Twilio signs its requests with.
const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Why a vendor's request was not taken.
#[derive(Debug, thiserror::Error)]
pub enum HostedError {
    /// No source of the route's kind (or of the name asked) is configured.
    #[error("{0}")]
    NoSource(String),
    /// Several sources of the kind and no `?source=NAME` to choose.
    #[error("{0}")]
    Ambiguous(String),
    /// The vendor signature is missing or wrong.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The body, or one record of it, cannot be read; nothing was applied.
    #[error(transparent)]
    Refused(#[from] RequestError),
    /// The pipeline refused the batch (too many open calls, store down);
    /// nothing was applied. Answered as `POST /api/events` answers it.
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl IntoResponse for HostedError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, body) = match self {
            HostedError::Submit(e) => return WebError::Refused(e).into_response(),
            HostedError::NoSource(_) => (StatusCode::NOT_FOUND, json!({"error": message})),
            HostedError::Ambiguous(_) => (StatusCode::BAD_REQUEST, json!({"error": message})),
            HostedError::Forbidden(_) => (StatusCode::FORBIDDEN, json!({"error": message})),
            HostedError::Refused(RequestError::Record { index, error }) => (
                StatusCode::BAD_REQUEST,
                json!({"error": message, "index": index, "field": error.field}),
            ),
            HostedError::Refused(RequestError::Body(_)) => {
                (StatusCode::BAD_REQUEST, json!({"error": message}))
            }
        };
        (status, Json(body)).into_response()
    }
}

/// `?source=NAME`: which source of the kind, when several are configured.
#[derive(Debug, Deserialize)]
pub struct SourceQuery {
    source: Option<String>,
}

/// `POST /api/sources/connect`: one EventBridge event or an array of them.
pub async fn post_connect(
    State(app): State<Arc<AppState>>,
    Query(query): Query<SourceQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, HostedError> {
    let source = source_of(&app, "connect", query.source.as_deref())?;
    let SourceSettings::Connect(settings) = &source.settings else {
        return Err(no_source("connect", None));
    };
    let body = body.map_err(|r| RequestError::Body(r.body_text()))?;
    let max = app.config.security.limits.max_events_per_batch;
    let mapped = connect::Mapper::new(&source.naming, settings).map_request(&body, max);
    ingest(&app, source, mapped).await
}

/// `POST /api/sources/taskrouter`: one TaskRouter event callback, signed.
pub async fn post_taskrouter(
    State(app): State<Arc<AppState>>,
    Query(query): Query<SourceQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, HostedError> {
    let source = source_of(&app, "taskrouter", query.source.as_deref())?;
    let SourceSettings::TaskRouter(settings) = &source.settings else {
        return Err(no_source("taskrouter", None));
    };
    let body = body.map_err(|r| RequestError::Body(r.body_text()))?;
    let form = taskrouter::parse_form(&body);
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(HostedError::Forbidden("X-Twilio-Signature is missing"))?;
    let url = match &settings.public_url {
        Some(url) => url.clone(),
        None => request_url(&app, &headers, &uri),
    };
    if !settings.signature_valid(&url, &form, signature) {
        return Err(HostedError::Forbidden(
            "X-Twilio-Signature does not sign this request (check the auth token, and public_url behind a proxy)",
        ));
    }
    let mapped = taskrouter::Mapper::new(&source.naming, &settings.activities).map_request(&form);
    ingest(&app, source, mapped).await
}

/// The URL as the client addressed it: `Host` and the path with its query;
/// `https` only when a trusted proxy says so.
fn request_url(app: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let https = app.config.security.web.trust_proxy
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let scheme = if https { "https" } else { "http" };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{host}{path}")
}

/// Stores what a request mapped to, or counts its bad record and refuses it.
async fn ingest(
    app: &AppState,
    source: &SourceConfig,
    mapped: Result<Vec<Event>, RequestError>,
) -> Result<Json<serde_json::Value>, HostedError> {
    let status = app.sources.get(&source.name);
    let events = mapped.inspect_err(|e| {
        app.hub
            .counters()
            .rejected_batches
            .fetch_add(1, Ordering::Relaxed);
        if let Some(status) = &status {
            let position = match e {
                RequestError::Record { index, .. } => format!("request record {index}"),
                RequestError::Body(_) => "request body".to_owned(),
            };
            status.skip(&position, &e.to_string());
        }
    })?;
    let events = app.hub.without_future(events, |event, e| {
        if let Some(status) = &status {
            status.skip(&format!("event {:?}", event.id), &e.to_string());
        }
    });
    let latest = events.iter().map(|e| e.at).max();
    let queues = events.iter().filter_map(crate::source::queue_of).collect();
    let report = app.hub.ingest(events).await?;
    if let Some(status) = status {
        status.ingested(report.accepted, latest, queues);
    }
    Ok(Json(
        json!({"accepted": report.accepted, "duplicates": report.duplicates}),
    ))
}

/// The source of `kind` this request is for: the one named by `?source=`,
/// else the only one of the kind.
fn source_of<'a>(
    app: &'a AppState,
    kind: &str,
    wanted: Option<&str>,
) -> Result<&'a SourceConfig, HostedError> {
    let mut of_kind = app
        .config
        .sources
        .iter()
        .filter(|s| s.settings.kind() == kind);
    if let Some(name) = wanted {
        return of_kind
            .find(|s| s.name == name)
            .ok_or_else(|| no_source(kind, Some(name)));
    }
    let all: Vec<&SourceConfig> = of_kind.collect();
    match all.as_slice() {
        [] => Err(no_source(kind, None)),
        [one] => Ok(one),
        many => {
            let names: Vec<&str> = many.iter().map(|s| s.name.as_str()).collect();
            Err(HostedError::Ambiguous(format!(
                "several sources of kind {kind} are configured: add ?source=NAME to the URL (one of: {})",
                names.join(", ")
            )))
        }
    }
}

fn no_source(kind: &str, name: Option<&str>) -> HostedError {
    HostedError::NoSource(match name {
        Some(name) => format!("no source of kind {kind} is named {name:?} in the configuration"),
        None => format!(
            "no source of kind {kind} is configured: add a [[source]] with kind = \"{kind}\" to the configuration"
        ),
    })
}
