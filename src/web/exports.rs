//! `GET /api/calls?day=YYYY-MM-DD[&format=csv]` (supervisor): every finished
//! call of a kept day as a download, streamed from the store on a blocking
//! thread through a bounded channel, never built whole; and
//! `GET /api/calls/days`, the days that can be asked for.
//!
//! The store's rows of finished calls lag the engine by up to a write; the
//! export first has the writer record them, so a call reclassified a moment
//! ago shows its latest outcome.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::AppState;
use crate::export::{Encoder, Format};
use crate::journal::{Journal, JournalError};
use crate::pipeline::SubmitError;

/// Bytes gathered before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks in flight between the reading thread and the socket: with
/// [`CHUNK_BYTES`], bounds what a slow client makes the server hold.
const CHUNKS_IN_FLIGHT: usize = 4;
/// How long a client may stop reading before the export gives up: until
/// then it holds a blocking thread and a read snapshot of the store (which
/// keeps SQLite from checkpointing its write-ahead log).
const STALLED_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// Why an export cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A parameter is malformed.
    #[error("{message}")]
    BadParameter {
        /// `day` or `format`.
        field: &'static str,
        /// What is wrong, in words.
        message: String,
    },
    /// The day is not kept (before retention, or after today).
    #[error("{0}")]
    NotKept(String),
    /// The server runs without a store, which exports read.
    #[error("exports read the store, and this server runs without one: start it with --data-dir")]
    NoStore,
    /// The store could not record the latest rows; details go to the log.
    #[error("the event store is unavailable")]
    Unavailable(#[from] SubmitError),
    /// The store failed; details go to the log.
    #[error("internal error")]
    Store(#[from] JournalError),
}

impl IntoResponse for ExportError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ExportError::BadParameter { field, .. } => (
                StatusCode::BAD_REQUEST,
                json!({"error": self.to_string(), "field": field}),
            ),
            ExportError::NotKept(_) | ExportError::NoStore => {
                (StatusCode::NOT_FOUND, json!({"error": self.to_string()}))
            }
            ExportError::Unavailable(e) => {
                tracing::error!("export: {e}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": self.to_string()}),
                )
            }
            ExportError::Store(e) => {
                tracing::error!("export: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": self.to_string()}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// Query of `GET /api/calls`.
#[derive(Debug, Deserialize)]
pub struct CallsQuery {
    day: Option<String>,
    format: Option<String>,
}

/// The days that can be exported: from the first kept to today.
struct Kept {
    first_day: Date,
    today: Date,
}

impl Kept {
    /// `None` before the server knows its day (a feed clock with no event yet).
    fn of(app: &AppState) -> Option<Kept> {
        let today = app.hub.with_engine(|e| e.knows_now().then(|| e.today()))?;
        // The same first day as the pruning keeps (`journal::Pruner`).
        let days = jiff::Span::new().days(i64::from(app.config.retention_days));
        Some(Kept {
            first_day: today.checked_sub(days).unwrap_or(today),
            today,
        })
    }

    fn check(&self, day: Date) -> Result<(), ExportError> {
        if day > self.today {
            return Err(ExportError::NotKept(format!(
                "{day} is after today ({})",
                self.today
            )));
        }
        if day < self.first_day {
            return Err(ExportError::NotKept(format!(
                "{day} is no longer kept: the first day kept is {}",
                self.first_day
            )));
        }
        Ok(())
    }
}

/// `GET /api/calls/days`: `{"today", "first_day", "timezone"}` for the
/// page's day picker.
pub async fn days(
    State(app): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ExportError> {
    app.hub.store().ok_or(ExportError::NoStore)?;
    let kept = Kept::of(&app);
    Ok(Json(json!({
        "today": kept.as_ref().map(|k| k.today),
        "first_day": kept.as_ref().map(|k| k.first_day),
        "timezone": app.config.engine.day.time_zone_name(),
    })))
}

/// `GET /api/calls?day=YYYY-MM-DD[&format=json|csv]`: the day's finished
/// calls (today when `day` is left out), as an attachment.
pub async fn calls(
    State(app): State<Arc<AppState>>,
    Query(query): Query<CallsQuery>,
) -> Result<Response, ExportError> {
    let format = match query.format.as_deref() {
        None => Format::Json,
        Some(name) => Format::from_name(name).ok_or_else(|| ExportError::BadParameter {
            field: "format",
            message: format!("format {name:?} is not one of json, csv"),
        })?,
    };
    let asked = query
        .day
        .as_deref()
        .map(|day| {
            day.parse::<Date>().map_err(|_| ExportError::BadParameter {
                field: "day",
                message: format!("day {day:?} is not a date like 2026-11-20"),
            })
        })
        .transpose()?;
    let dir = app.hub.store().ok_or(ExportError::NoStore)?.dir.clone();
    let kept = Kept::of(&app)
        .ok_or_else(|| ExportError::NotKept("the server has seen no event yet".into()))?;
    let day = asked.unwrap_or(kept.today);
    kept.check(day)?;
    app.hub.record_derived().await?;
    let (zone, definitions) = app.hub.with_engine(|e| {
        let settings = e.settings();
        (
            settings.day.time_zone().clone(),
            settings.definitions.clone(),
        )
    });
    let encoder = Encoder::new(format, day, zone, definitions);
    // Opened here, so a store that cannot be read is a 500, not a cut download.
    let reader = tokio::task::spawn_blocking(move || Journal::open_reader(&dir))
        .await
        .map_err(|_| JournalError::Stopped)??;
    let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || stream_day(&reader, day, encoder, &chunks));
    let body = Body::from_stream(futures_util::stream::unfold(received, |mut r| async {
        r.recv().await.map(|chunk| (chunk, r))
    }));
    let disposition = format!(
        "attachment; filename=\"calls-{day}.{}\"",
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            // Caller numbers: never kept by a shared cache.
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// Reads the day's stored rows in order and sends the encoded file in
/// chunks; stops early when the client is gone. A store error mid-way ends
/// the body with an error, so the client sees a broken download rather than
/// a short file that looks whole.
fn stream_day(
    reader: &Journal,
    day: Date,
    mut encoder: Encoder,
    chunks: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    // Runs on a blocking thread of the runtime, so its handle is there.
    let runtime = tokio::runtime::Handle::current();
    let send = |encoder: &mut Encoder| -> ControlFlow<()> {
        let bytes = Bytes::from(encoder.take());
        match runtime.block_on(chunks.send_timeout(Ok(bytes), STALLED_AFTER)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                tracing::warn!("export of {day}: the client stopped reading; given up");
                ControlFlow::Break(())
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => ControlFlow::Break(()),
        }
    };
    let read = reader.each_finished_on(day, |row| {
        encoder.push(&row.call, row.finished_at, &row.verdict);
        if encoder.buffered() >= CHUNK_BYTES {
            return send(&mut encoder);
        }
        ControlFlow::Continue(())
    });
    if let Err(e) = read {
        tracing::error!("export of {day}: {e}");
        let _ = chunks.blocking_send(Err(std::io::Error::other("the store failed mid-export")));
        return;
    }
    encoder.finish();
    let _ = send(&mut encoder);
}
