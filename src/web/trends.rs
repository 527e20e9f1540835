//! `GET /api/trends?days=7|28`: the supervisor's trends (past days per
//! definition, today against a usual weekday), as [`crate::trends::Trends`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::{AppState, WebError};
use crate::trends::{SPANS_DAYS, Trends};

/// Query of `GET /api/trends`.
#[derive(Deserialize)]
pub struct TrendsQuery {
    days: Option<String>,
}

/// `GET /api/trends[?days=7|28]` (7 when not given).
pub async fn trends(
    State(app): State<Arc<AppState>>,
    Query(query): Query<TrendsQuery>,
) -> Result<Json<Trends>, WebError> {
    let span = match query.days.as_deref() {
        None => SPANS_DAYS[0],
        Some(days) => days
            .parse()
            .ok()
            .filter(|d| SPANS_DAYS.contains(d))
            .ok_or_else(|| WebError::BadRequest(format!("days must be 7 or 28, not {days:?}")))?,
    };
    let trends = app
        .hub
        .trends(span)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(Json(trends))
}
