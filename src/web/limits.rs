//! Limits on what one request may cost: its body (size, then 413; time, then
//! 408), the ingest rate of a token (then 429), and a panic in a handler,
//! which becomes a 500 while the server carries on.

use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use futures_util::StreamExt;
use serde_json::json;

use super::auth::Principal;
use crate::security::Limits;

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

/// Reads an ingest request's body whole before its handler sees it: over
/// `body_bytes` is 413, slower than `body_read_timeout` is 408.
pub async fn read_body(
    State(limits): State<Arc<Limits>>,
    request: Request,
    next: Next,
) -> Response {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is over the limit of {} bytes (limits.body_bytes)",
                limits.body_bytes
            ),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.body_bytes as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let mut chunks = body.into_data_stream();
    // Trust a declared length only so far: the bytes have yet to arrive.
    let mut buffer = Vec::with_capacity(declared.unwrap_or(0).min(64 * 1024) as usize);
    let reading = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                )
            })?;
            if buffer.len() + chunk.len() > limits.body_bytes {
                return Err(too_large());
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(limits.body_read_timeout, reading).await {
        Ok(Ok(())) => {}
        Ok(Err(response)) => return response,
        Err(_) => {
            let mut response = error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s (limits.body_read_timeout_secs)",
                    limits.body_read_timeout.as_secs()
                ),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    }
    next.run(Request::from_parts(parts, Body::from(Bytes::from(buffer))))
        .await
}

/// Who a rate is counted for: a token, or an address when auth is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sender {
    Token(usize),
    Address(IpAddr),
    Unknown,
}

/// A token bucket per sender: `rate` requests a second, bursts up to `max(rate, 1)`.
struct Bucket {
    tokens: f64,
    filled_at: Instant,
}

/// Senders tracked before full buckets are forgotten (a full bucket is the
/// same as none, so forgetting it changes no answer).
const PRUNE_ABOVE: usize = 4096;

/// The ingest rate limit (`limits.ingest_rate_per_sec`).
pub struct IngestRate {
    rate: Option<f64>,
    buckets: DashMap<Sender, Mutex<Bucket>>,
    /// The map's size that triggers the next prune: doubled from what a
    /// prune leaves, so pruning stays amortised O(1) a request.
    prune_at: AtomicUsize,
}

impl IngestRate {
    /// A limiter of `rate` requests a second per token (`None`: no limit).
    pub fn new(rate: Option<f64>) -> IngestRate {
        IngestRate {
            rate,
            buckets: DashMap::new(),
            prune_at: AtomicUsize::new(PRUNE_ABOVE),
        }
    }

    /// Forgets the senders whose bucket has refilled by `now`, once the map
    /// grew past its mark: without this, every address that ever posted
    /// (auth off, IPv6) would be kept for the life of the server.
    fn prune(&self, rate: f64, now: Instant) {
        if self.buckets.len() <= self.prune_at.load(Ordering::Relaxed) {
            return;
        }
        let burst = rate.max(1.0);
        self.buckets.retain(|_, bucket| {
            let bucket = bucket.get_mut().unwrap_or_else(|p| p.into_inner());
            let elapsed = now
                .saturating_duration_since(bucket.filled_at)
                .as_secs_f64();
            bucket.tokens + elapsed * rate < burst
        });
        let mark = (2 * self.buckets.len()).max(PRUNE_ABOVE);
        self.prune_at.store(mark, Ordering::Relaxed);
    }

    /// `Ok` to go ahead, or how long to wait.
    fn take(&self, sender: Sender, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        self.prune(rate, now);
        let burst = rate.max(1.0);
        let entry = self.buckets.entry(sender).or_insert_with(|| {
            Mutex::new(Bucket {
                tokens: burst,
                filled_at: now,
            })
        });
        let mut bucket = entry.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now
            .saturating_duration_since(bucket.filled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.filled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// Limits `POST /api/events` per token; over the rate is 429 with `Retry-After`.
pub async fn limit_ingest_rate(
    State(limiter): State<Arc<IngestRate>>,
    request: Request,
    next: Next,
) -> Response {
    if limiter.rate.is_none() {
        return next.run(request).await;
    }
    let token = request
        .extensions()
        .get::<Principal>()
        .and_then(|p| p.token);
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let sender = match (token, address) {
        (Some(token), _) => Sender::Token(token),
        (None, Some(ip)) => Sender::Address(ip),
        (None, None) => Sender::Unknown,
    };
    match limiter.take(sender, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many ingest requests for this token (limits.ingest_rate_per_sec); retry in {secs} s"
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
    }
}

/// A handler's panic as the client sees it: a plain 500; the details go to the log.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!("a request handler panicked: {detail:?}");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate() {
        let limiter = IngestRate::new(Some(2.0));
        let t0 = Instant::now();
        let s = Sender::Token(0);
        assert!(limiter.take(s, t0).is_ok());
        assert!(limiter.take(s, t0).is_ok());
        let wait = limiter.take(s, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        assert!(limiter.take(Sender::Token(1), t0).is_ok(), "per token");
        assert!(limiter.take(s, t0 + Duration::from_millis(500)).is_ok());
        assert!(IngestRate::new(None).take(s, t0).is_ok());
    }

    #[test]
    fn senders_seen_once_are_forgotten_once_their_bucket_is_full_again() {
        // One request each from many addresses (auth off, IPv6 gives an
        // attacker plenty): the map must not keep them all for ever.
        let limiter = IngestRate::new(Some(10.0));
        let t0 = Instant::now();
        let address = |n: u32| {
            Sender::Address(IpAddr::from([
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                (n >> 16) as u16,
                n as u16,
            ]))
        };
        for n in 0..(3 * PRUNE_ABOVE as u32) {
            let at = t0 + Duration::from_millis(u64::from(n));
            assert!(limiter.take(address(n), at).is_ok());
        }
        assert!(
            limiter.buckets.len() <= 2 * PRUNE_ABOVE,
            "{} buckets kept",
            limiter.buckets.len()
        );
        // A sender still over its rate is not forgotten by a prune.
        let busy = Sender::Token(7);
        let late = t0 + Duration::from_secs(3600);
        while limiter.take(busy, late).is_ok() {}
        for n in 0..(2 * PRUNE_ABOVE as u32) {
            let _ = limiter.take(address(n), late);
        }
        assert!(
            limiter.take(busy, late).is_err(),
            "the busy sender's bucket survived"
        );
    }
}
