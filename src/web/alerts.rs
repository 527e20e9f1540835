//! `POST /api/alerts/test` (supervisor): a test message to every alert
//! target, answered with how each went; and the `wallboard_alerts_*` metrics.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::json;

use super::headers::origin_allowed;
use super::{AppState, WebError};
use crate::alert::Alerts;
use crate::alert::deliver::Counters;
use crate::alert::message::{Notice, State as NoticeState};
use crate::board::TileState;

/// `POST /api/alerts/test`: `200 {"targets": [...]}` when every target took
/// the message, `502` with the same body when one did not.
pub async fn test(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    // A page on another site could post here with a supervisor's cookie.
    if !origin_allowed(&headers, &app.config.security.web) {
        let body = json!({"error": "this origin may not send test alerts"});
        return Ok((StatusCode::FORBIDDEN, Json(body)).into_response());
    }
    if app.alerts.outboxes().is_empty() {
        return Err(WebError::NotFound(
            "no [[alert_target]] is configured".to_owned(),
        ));
    }
    let board = &app.config.boards.default;
    let notice = Notice {
        state: NoticeState::Test,
        rule: "test".to_owned(),
        board: board.name.clone(),
        title: board.title.clone(),
        queue: None,
        tile: None,
        figure: None,
        value: None,
        level: TileState::Ok,
        previous: TileState::Ok,
        threshold: None,
        below: false,
        at: Timestamp::now(),
        url: app.alerts.link("/"),
    };
    let results = app.alerts.test(&notice).await;
    let status = if results.iter().all(|r| r.ok) {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    Ok((status, Json(json!({"targets": results}))).into_response())
}

/// One of a target's counters.
type CounterOf = fn(&Counters) -> &AtomicU64;

/// The `wallboard_alerts_*` counters, one sample per target.
pub fn metrics(out: &mut String, alerts: &Alerts) {
    let outboxes = alerts.outboxes();
    if outboxes.is_empty() {
        return;
    }
    let series: [(&str, &str, CounterOf); 3] = [
        (
            "sent",
            "Alert messages a target took (tests included).",
            |c| &c.sent,
        ),
        (
            "failed",
            "Alert messages a target refused, or that failed every try.",
            |c| &c.failed,
        ),
        (
            "dropped",
            "Alert messages dropped unsent: the target's outbox was full.",
            |c| &c.dropped,
        ),
    ];
    for (name, help, counter) in series {
        let _ = writeln!(
            out,
            "# HELP wallboard_alerts_{name}_total {help}\n# TYPE wallboard_alerts_{name}_total counter"
        );
        for outbox in outboxes {
            // Target names are a-z0-9-_ (validated), safe in a label as they are.
            let _ = writeln!(
                out,
                "wallboard_alerts_{name}_total{{target=\"{}\"}} {}",
                outbox.target.name,
                counter(&outbox.counters).load(Ordering::Relaxed)
            );
        }
    }
}
