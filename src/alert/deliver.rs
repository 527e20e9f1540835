//! Delivery: one task per target drains its own bounded outbox, posting each
//! message with retries and capped exponential backoff. Nothing here is on
//! the ingest or publishing path: a slow or failing target only fills its
//! own outbox, whose oldest message is dropped (and counted) when full.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::config::Target;
use super::http::{Endpoint, Reply, post_json};
use super::message::Notice;

/// Messages a target may have waiting; past this the oldest is dropped.
pub const OUTBOX_CAPACITY: usize = 64;
/// How long one try may take, connecting included.
pub const TRY_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries per message before it counts as failed.
pub const MAX_TRIES: u32 = 8;
/// The wait before the first retry; it doubles with each one...
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// ...up to this (also the most a `Retry-After` is honoured for).
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// One target's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages the target took (a 2xx answer).
    pub sent: AtomicU64,
    /// Messages given up on: refused outright (4xx) or every try failed.
    pub failed: AtomicU64,
    /// Messages dropped unsent because the outbox was full.
    pub dropped: AtomicU64,
}

/// How a try went.
#[derive(Debug)]
pub enum Outcome {
    /// The target took it.
    Sent(Reply),
    /// Worth another try: a 5xx, 408 or 429 (`status`), or no answer.
    Retry {
        /// What went wrong, for the log.
        why: String,
        /// The status, if it answered.
        status: Option<u16>,
        /// The wait it asked for (`Retry-After`).
        wait: Option<Duration>,
    },
    /// Not worth another (another 4xx, a redirect): the target refuses it.
    Refused(Reply),
}

/// A target and its outbox.
pub struct Outbox {
    /// Where its messages go.
    pub target: Target,
    /// Its counters.
    pub counters: Counters,
    queue: Mutex<VecDeque<Arc<Notice>>>,
    ready: Notify,
}

impl Outbox {
    /// An empty outbox for `target`.
    pub fn new(target: Target) -> Outbox {
        Outbox {
            target,
            counters: Counters::default(),
            queue: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
        }
    }

    /// Queues `notice` without waiting; drops the oldest waiting one when full.
    pub fn push(&self, notice: Arc<Notice>) {
        let dropped = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = if queue.len() >= OUTBOX_CAPACITY {
                queue.pop_front()
            } else {
                None
            };
            queue.push_back(notice);
            dropped
        };
        if let Some(old) = dropped {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                alert_target = %self.target.name,
                rule = %old.rule,
                "alert outbox full: dropped its oldest message"
            );
        }
        self.ready.notify_one();
    }

    /// Takes the oldest waiting message.
    pub(crate) fn pop(&self) -> Option<Arc<Notice>> {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    /// Tries `notice` once.
    pub async fn try_once(&self, notice: &Notice) -> Outcome {
        let body = Bytes::from(notice.body(self.target.kind).to_string());
        let to = Endpoint {
            url: &self.target.url,
            header: self.target.header.as_ref(),
            tls: &self.target.tls,
        };
        match post_json(&to, body, TRY_TIMEOUT).await {
            Ok(reply) if (200..300).contains(&reply.status) => Outcome::Sent(reply),
            Ok(reply) if reply.status >= 500 || matches!(reply.status, 408 | 429) => {
                Outcome::Retry {
                    why: format!("answered {}", reply.status),
                    status: Some(reply.status),
                    wait: reply.retry_after_secs.map(Duration::from_secs),
                }
            }
            Ok(reply) => Outcome::Refused(reply),
            // A target that cannot be reached now may be soon (a restart, a blip).
            Err(e) => Outcome::Retry {
                why: e.to_string(),
                status: None,
                wait: None,
            },
        }
    }

    /// Sends `notice`, retrying with backoff; counts how it ended.
    pub async fn deliver(&self, notice: &Notice) {
        let mut wait = FIRST_RETRY;
        for attempt in 1..=MAX_TRIES {
            match self.try_once(notice).await {
                Outcome::Sent(_) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Outcome::Refused(reply) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        alert_target = %self.target.name,
                        rule = %notice.rule,
                        status = reply.status,
                        body = %reply.body,
                        "alert target refused the message; not retried"
                    );
                    return;
                }
                Outcome::Retry {
                    why, wait: asked, ..
                } => {
                    if attempt == MAX_TRIES {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            alert_target = %self.target.name,
                            rule = %notice.rule,
                            "alert not delivered after {MAX_TRIES} tries: {why}"
                        );
                        return;
                    }
                    let pause = asked.unwrap_or(wait).min(MAX_RETRY_WAIT);
                    tracing::warn!(
                        alert_target = %self.target.name,
                        rule = %notice.rule,
                        "alert try {attempt} failed ({why}); again in {pause:?}"
                    );
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(MAX_RETRY_WAIT);
                }
            }
        }
    }

    /// The target's task: delivers queued messages in order, one at a time,
    /// until `stop` resolves (what is still queued then is not sent).
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let Some(notice) = self.pop() else {
                tokio::select! {
                    () = &mut stop => return,
                    () = self.ready.notified() => continue,
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = self.deliver(&notice) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::message::State;
    use crate::board::TileState;

    fn notice(rule: usize) -> Arc<Notice> {
        Arc::new(Notice {
            state: State::Entered,
            rule: rule.to_string(),
            board: "default".into(),
            title: "Wallboard".into(),
            queue: None,
            tile: None,
            figure: None,
            value: None,
            level: TileState::Alert,
            previous: TileState::Ok,
            threshold: None,
            below: false,
            at: jiff::Timestamp::UNIX_EPOCH,
            url: "/".into(),
        })
    }

    /// A target that cannot keep up loses its oldest messages, counted, and
    /// the caller never waits.
    #[test]
    fn a_full_outbox_drops_its_oldest() {
        let target = Target {
            name: "slow".into(),
            kind: crate::alert::TargetKind::Webhook,
            url: "http://127.0.0.1:9/".parse().unwrap(),
            header: None,
            tls: crate::alert::http::tls_config(None).unwrap(),
        };
        let outbox = Outbox::new(target);
        for rule in 0..OUTBOX_CAPACITY + 3 {
            outbox.push(notice(rule));
        }
        assert_eq!(outbox.counters.dropped.load(Ordering::Relaxed), 3);
        let kept: Vec<String> =
            std::iter::from_fn(|| outbox.pop().map(|n| n.rule.clone())).collect();
        assert_eq!(kept.len(), OUTBOX_CAPACITY);
        assert_eq!(kept.first().map(String::as_str), Some("3"));
        assert_eq!(kept.last(), Some(&(OUTBOX_CAPACITY + 2).to_string()));
    }
}
