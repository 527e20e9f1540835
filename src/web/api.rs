//! The JSON API: `POST /api/events`, `GET /api/snapshot`, `GET /api/supervisor`,
//! `/healthz`, `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::json;

use super::{AppState, WebError};
use crate::feed::{self, Layout};
use crate::pipeline::SubmitError;
use crate::source::SourceState;
use crate::source::status::StatusView;

/// Bodies larger than this are parsed off the async threads.
const PARSE_INLINE_BYTES: usize = 256 * 1024;

/// `POST /api/events`: a JSON event, array or NDJSON; all or nothing.
pub async fn post_events(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, WebError> {
    // `limits::read_body` has already enforced the size and time limits.
    let body = body.map_err(|rejection| WebError::BadRequest(rejection.body_text()))?;
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    let layout = if ndjson {
        Layout::Ndjson
    } else {
        Layout::Sniff
    };
    let limits = feed::BatchLimits {
        max_events: Some(app.config.security.limits.max_events_per_batch),
        max_depth: Some(app.config.security.limits.max_json_depth),
    };
    let parsed = if body.len() > PARSE_INLINE_BYTES {
        tokio::task::spawn_blocking(move || feed::parse_batch_within(&body, layout, limits))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
    } else {
        feed::parse_batch_within(&body, layout, limits)
    };
    let events = parsed.inspect_err(|_| {
        app.hub
            .counters()
            .rejected_batches
            .fetch_add(1, Ordering::Relaxed);
    })?;
    let report = app.hub.ingest(events).await.inspect_err(|e| {
        if matches!(e, SubmitError::Future { .. }) {
            app.hub
                .counters()
                .rejected_batches
                .fetch_add(1, Ordering::Relaxed);
        }
    })?;
    Ok(Json(
        json!({"accepted": report.accepted, "duplicates": report.duplicates}),
    ))
}

/// Query of `GET /api/snapshot`.
#[derive(Deserialize)]
pub struct SnapshotQuery {
    day: Option<String>,
}

/// `GET /api/snapshot[?day=YYYY-MM-DD]`.
pub async fn snapshot(
    State(app): State<Arc<AppState>>,
    Query(query): Query<SnapshotQuery>,
) -> Result<Response, WebError> {
    let latest = app.hub.current();
    let Some(day) = query.day else {
        return Ok(json_text(latest.json()));
    };
    let day: Date = day
        .parse()
        .map_err(|_| WebError::BadRequest(format!("day {day:?} is not a date like 2026-11-20")))?;
    if latest.document.get("day").and_then(|d| d.as_str()) == Some(day.to_string().as_str()) {
        return Ok(json_text(latest.json()));
    }
    match app.hub.past_day(day).await {
        Ok(Some(board)) => Ok(Json(board).into_response()),
        Ok(None) => Err(WebError::NotFound(format!("no figures are kept for {day}"))),
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}

/// `GET /api/supervisor`: the supervisor's detail (live calls, agents,
/// callers to call back, calls per 15 minutes), with its `seq`.
pub async fn supervisor(State(app): State<Arc<AppState>>) -> Response {
    app.hub.catch_up();
    json_text(app.hub.detail_feed().latest().json())
}

/// `GET /api/sources`: each telephony source's state.
pub async fn sources(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({"sources": app.sources.views()}))
}

/// One `wallboard_source_*` series: name, type, help, and its value per source.
type SourceSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&StatusView) -> u64,
);

/// The `wallboard_source_*` series, one sample per source.
fn source_metrics(out: &mut String, views: &[StatusView]) {
    if views.is_empty() {
        return;
    }
    let series: [SourceSeries; 3] = [
        (
            "source_up",
            "gauge",
            "1 while the source is connected.",
            |v| u64::from(v.state == SourceState::Connected),
        ),
        (
            "source_events_total",
            "counter",
            "Events a source fed that the store took.",
            |v| v.events,
        ),
        (
            "source_skipped_total",
            "counter",
            "Vendor records a source could not read.",
            |v| v.skipped,
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(
            out,
            "# HELP wallboard_{name} {help}\n# TYPE wallboard_{name} {kind}"
        );
        for v in views {
            // Source names are a-z0-9-_ (validated), safe in a label as they are.
            let _ = writeln!(
                out,
                "wallboard_{name}{{source=\"{}\"}} {}",
                v.name,
                value(v)
            );
        }
    }
}

fn json_text(text: axum::body::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// `GET /healthz`.
/// A node of a cluster still applying what the stream held when it started
/// answers 503 `catching_up`, so a load balancer sends viewers elsewhere.
pub async fn healthz(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let seq = app.hub.latest().seq;
    match app.hub.pipeline().progress() {
        Some(p) if !p.caught_up() => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ok": false, "status": "catching_up", "seq": seq,
                        "stream_applied": p.applied, "stream_target": p.target})),
        ),
        Some(p) => (
            StatusCode::OK,
            Json(json!({"ok": true, "seq": seq, "stream_applied": p.applied})),
        ),
        None => (StatusCode::OK, Json(json!({"ok": true, "seq": seq}))),
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let c = app.hub.counters();
    let (late, full, expired, calls, open, folded) = app.hub.with_engine(|e| {
        (
            e.late_events(),
            e.refused_call_full(),
            e.expired_calls(),
            e.calls_in_memory(),
            e.open_calls(),
            e.queues_folded(),
        )
    });
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP wallboard_{name} {help}\n# TYPE wallboard_{name} {kind}\nwallboard_{name} {value}"
        );
    };
    metric(
        "events_accepted_total",
        "counter",
        "Events accepted.",
        c.accepted.load(Ordering::Relaxed),
    );
    metric(
        "events_duplicate_total",
        "counter",
        "Events ignored as duplicates.",
        c.duplicates.load(Ordering::Relaxed),
    );
    metric(
        "events_late_total",
        "counter",
        "Events after their call's late window.",
        late,
    );
    metric(
        "events_call_full_total",
        "counter",
        "Events refused because their call held too many.",
        full,
    );
    metric(
        "batches_rejected_total",
        "counter",
        "Batches rejected as invalid.",
        c.rejected_batches.load(Ordering::Relaxed),
    );
    metric(
        "calls_expired_total",
        "counter",
        "Calls expired as stale.",
        expired,
    );
    metric(
        "calls_in_memory",
        "gauge",
        "Calls held in memory.",
        calls as u64,
    );
    metric(
        "calls_open",
        "gauge",
        "Calls not finished yet (limits.max_open_calls caps them).",
        open as u64,
    );
    metric(
        "queues_folded_total",
        "counter",
        "Events whose queue counted under (other): limits.max_queues was reached.",
        folded,
    );
    metric(
        "ws_clients",
        "gauge",
        "WebSocket clients connected.",
        c.clients.load(Ordering::Relaxed),
    );
    metric(
        "ws_resyncs_total",
        "counter",
        "Snapshots sent to clients that fell behind.",
        c.resyncs.load(Ordering::Relaxed),
    );
    metric(
        "board_seq",
        "gauge",
        "Seq of the latest board.",
        app.hub.latest().seq,
    );
    source_metrics(&mut out, &app.sources.views());
    super::alerts::metrics(&mut out, &app.alerts);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
