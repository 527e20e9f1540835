//! `wallboard replay`: sends a recorded feed to a running server, paced by the
//! events' own times (scaled) or as fast as the server accepts them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::event::Event;
use crate::feed::FileError;

/// Events sent in one request at most.
const MAX_BATCH: usize = 1000;
/// How often progress is reported on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What to replay, where, how fast.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// NDJSON or JSON array file.
    pub file: PathBuf,
    /// The server's base URL (or its `/api/events` URL).
    pub to: String,
    /// Times real time; `None` sends as fast as accepted.
    pub speed: Option<f64>,
    /// Bearer token for ingest, if the server wants one.
    pub token: Option<String>,
    /// The file's format: our events, or a vendor's records mapped to them.
    pub format: crate::source::Format,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read or holds an invalid event (nothing was sent).
    #[error(transparent)]
    Input(#[from] FileError),
    /// The server could not be reached.
    #[error("sending to {url}: {source}")]
    Send {
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The server refused a batch.
    #[error("{url} refused events {first}..{last}: HTTP {status}: {body}")]
    Refused {
        /// The URL.
        url: String,
        /// First event index of the batch.
        first: usize,
        /// Last event index of the batch.
        last: usize,
        /// The status.
        status: u16,
        /// The server's answer.
        body: String,
    },
}

/// What a replay sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events the server accepted.
    pub accepted: u64,
    /// Events the server ignored as duplicates.
    pub duplicates: u64,
}

/// Replays the file; returns what the server accepted.
pub async fn run(options: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    let (file, format) = (options.file.clone(), options.format);
    let events =
        tokio::task::spawn_blocking(move || crate::source::offline::read_file(format, &file))
            .await
            .expect("reading the feed does not panic")?;
    let url = events_url(&options.to);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut report = ReplayReport::default();
    let first_at = events.first().map(|e| e.at);
    let mut next = 0;
    while next < events.len() {
        let end = batch_end(&events, next, options.speed.is_some());
        if let (Some(speed), Some(first_at)) = (options.speed, first_at) {
            tokio::time::sleep_until(due(started, first_at, events[next].at, speed).into()).await;
        }
        let sent = send(
            &client,
            &url,
            options.token.as_deref(),
            &events[next..end],
            next,
        )
        .await?;
        report.accepted += sent.accepted;
        report.duplicates += sent.duplicates;
        next = end;
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            let rate = next as f64 / started.elapsed().as_secs_f64();
            eprintln!("replay: {next}/{} events sent ({rate:.0}/s)", events.len());
        }
    }
    eprintln!(
        "replay: done, {} events in {:.1?} ({} accepted, {} duplicates)",
        events.len(),
        started.elapsed(),
        report.accepted,
        report.duplicates
    );
    Ok(report)
}

fn events_url(to: &str) -> String {
    let base = to.trim_end_matches('/');
    if base.ends_with("/api/events") {
        base.to_owned()
    } else {
        format!("{base}/api/events")
    }
}

/// The end of the batch starting at `start`: paced, the events due at the same
/// instant; unpaced, as many as fit in a batch.
fn batch_end(events: &[Event], start: usize, paced: bool) -> usize {
    let limit = (start + MAX_BATCH).min(events.len());
    if !paced {
        return limit;
    }
    let at = events[start].at;
    (start + 1..limit)
        .find(|&i| events[i].at != at)
        .unwrap_or(limit)
}

/// When an event is due: its offset from the first event, scaled. Events out
/// of order (earlier than one already sent) are due at once.
fn due(started: Instant, first_at: Timestamp, at: Timestamp, speed: f64) -> Instant {
    let offset = at.duration_since(first_at).as_secs_f64().max(0.0) / speed.max(1e-9);
    started + Duration::try_from_secs_f64(offset).unwrap_or(Duration::MAX / 4)
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    batch: &[Event],
    first: usize,
) -> Result<ReplayReport, ReplayError> {
    let body: String = batch.iter().map(|e| e.to_json_line() + "\n").collect();
    let mut request = client
        .post(url)
        .header("content-type", "application/x-ndjson")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let send_error = |source| ReplayError::Send {
        url: url.to_owned(),
        source,
    };
    let response = request.send().await.map_err(send_error)?;
    let status = response.status();
    let text = response.text().await.map_err(send_error)?;
    if !status.is_success() {
        return Err(ReplayError::Refused {
            url: url.to_owned(),
            first,
            last: first + batch.len() - 1,
            status: status.as_u16(),
            body: text,
        });
    }
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let count = |key: &str| {
        answer
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    Ok(ReplayReport {
        accepted: count("accepted"),
        duplicates: count("duplicates"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_pacing() {
        assert_eq!(events_url("http://h:1/"), "http://h:1/api/events");
        assert_eq!(events_url("http://h:1/api/events"), "http://h:1/api/events");
        let t0: Timestamp = "2026-11-20T09:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-11-20T09:01:00Z".parse().unwrap();
        let start = Instant::now();
        assert_eq!(due(start, t0, t1, 60.0) - start, Duration::from_secs(1));
        assert_eq!(due(start, t1, t0, 1.0), start);
    }
}
