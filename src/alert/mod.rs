//! Alerts: `[[alert]]` rules watch a tile's figure on the published board
//! and tell `[[alert_target]]`s (a generic webhook, Slack, Teams) when it has
//! held past a threshold, when it clears, and again while it stands.
//! - [`config`]: the rules and targets as written, validated against the boards.
//! - [`rule`]: when a rule speaks (hold, clear, renotify); pure, time passed in.
//! - [`message`]: what a message says and each target's body.
//! - [`deliver`]: one task and bounded outbox per target, retries with backoff;
//!   [`http`]: the POST itself.
//!
//! The watcher reads the board the publisher has already built (never the
//! engine), so alerting adds nothing to the ingest or publishing path. Time
//! is the board's `now`: the wall clock, or under `--clock feed` the feed's
//! time, so a hold of `for_secs` is that much feed time.

pub mod config;
pub mod deliver;
pub mod http;
pub mod message;
pub mod rule;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;

pub use config::{AlertConfig, Rule, Scope, Target, TargetKind};
use deliver::{Outbox, Outcome};
use message::{Notice, Shown, State, level_of};
use rule::{Change, Watch};

use crate::board::{DEFAULT_BOARD, TileState, board_now};
use crate::hub::Hub;
use crate::shutdown::Signal;

/// How often the watcher looks for a newly published board (the publisher
/// publishes after each change and at least every second).
pub const WATCH_EVERY: Duration = Duration::from_millis(200);

/// The rules and each target's outbox.
#[derive(Default)]
pub struct Alerts {
    config: AlertConfig,
    outboxes: Vec<Arc<Outbox>>,
    /// Whether this node sends what the rules announce. In a cluster every
    /// node watches (so the one taking over knows what was announced) but
    /// only the holder of the alerts' lease sends; alone, always.
    silenced: AtomicBool,
}

/// How a test message to one target went.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// The target's name.
    pub target: String,
    /// Its kind.
    pub kind: &'static str,
    /// Whether it took the message (a 2xx answer).
    pub ok: bool,
    /// Its HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why not, if it did not take it.
    pub error: Option<String>,
}

impl Alerts {
    /// The alerting of `config`, not yet running.
    pub fn new(config: AlertConfig) -> Alerts {
        let outboxes = config
            .targets
            .iter()
            .map(|t| Arc::new(Outbox::new(t.clone())))
            .collect();
        Alerts {
            config,
            outboxes,
            silenced: AtomicBool::new(false),
        }
    }

    /// Whether this node has rules to watch.
    pub fn has_rules(&self) -> bool {
        !self.config.rules.is_empty()
    }

    /// Makes this node send (`true`) or only watch (`false`).
    pub fn set_sending(&self, sending: bool) {
        self.silenced.store(!sending, Ordering::SeqCst);
    }

    /// The targets' outboxes (with their counters), in the config's order.
    pub fn outboxes(&self) -> &[Arc<Outbox>] {
        &self.outboxes
    }

    /// The board's address as people reach it (see [`AlertConfig::link`]).
    pub fn link(&self, path: &str) -> String {
        self.config.link(path)
    }

    /// Starts one delivery task per target and, if there are rules, the
    /// watcher of `hub`'s board; all end when `stop` resolves.
    pub fn start(self: &Arc<Self>, hub: Arc<Hub>, stop: &Signal) -> Vec<JoinHandle<()>> {
        let mut tasks: Vec<JoinHandle<()>> = self
            .outboxes
            .iter()
            .map(|outbox| tokio::spawn(outbox.clone().run(stop.clone().wait())))
            .collect();
        if !self.config.rules.is_empty() {
            tasks.push(tokio::spawn(self.clone().watch(hub, stop.clone())));
        }
        tasks
    }

    /// Evaluates the rules on each newly published board.
    async fn watch(self: Arc<Self>, hub: Arc<Hub>, stop: Signal) {
        let mut watches = vec![Watch::default(); self.config.rules.len()];
        let mut every = tokio::time::interval(WATCH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = stop.wait();
        tokio::pin!(stop);
        let mut seen = None;
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = every.tick() => {}
            }
            let latest = hub.latest();
            if seen == Some(latest.seq) {
                continue;
            }
            seen = Some(latest.seq);
            self.evaluate(&mut watches, &latest.document);
        }
    }

    /// Observes every rule's level on `board` and queues what they announce.
    pub fn evaluate(&self, watches: &mut [Watch], board: &Value) {
        let Some(now) = board_now(board) else {
            return;
        };
        for (rule, watch) in self.config.rules.iter().zip(watches) {
            let value = rule.reading(board);
            let level = rule.threshold.state(value);
            let Some(change) = watch.observe(level, now, &rule.timing) else {
                continue;
            };
            let notice = Arc::new(self.notice(rule, change, value, now));
            if self.silenced.load(Ordering::SeqCst) {
                tracing::debug!(rule = %rule.name, "alert left to the node holding the alerts' lease");
                continue;
            }
            tracing::info!(
                rule = %rule.name,
                state = notice.state.as_str(),
                level = notice.level.as_str(),
                "alert: {}",
                notice.headline()
            );
            for &target in &rule.targets {
                self.outboxes[target].push(notice.clone());
            }
        }
    }

    /// What `rule` says of `change`, with the figure's `value` at `at`.
    fn notice(&self, rule: &Rule, change: Change, value: Option<f64>, at: Timestamp) -> Notice {
        let (state, level, previous) = match change {
            Change::Entered { level, from } => (State::Entered, level, from),
            Change::Cleared { from } => (State::Cleared, TileState::Ok, from),
            Change::Renotify { level } => (State::Renotify, level, level),
        };
        // A clearing names the level it left.
        let crossed = if state == State::Cleared {
            previous
        } else {
            level
        };
        let format = rule.tile.format;
        let (board, title, queue) = match &rule.scope {
            Scope::Board { name, title } => (name.clone(), title.clone(), None),
            Scope::Queue(queue) => (
                DEFAULT_BOARD.to_owned(),
                format!("Queue {queue}"),
                Some(queue.clone()),
            ),
        };
        Notice {
            state,
            rule: rule.name.clone(),
            board,
            title,
            queue,
            tile: Some(rule.tile.name.clone()),
            figure: Some(rule.tile.label.clone()),
            value: value.map(|v| Shown::of(format, v)),
            level,
            previous,
            threshold: level_of(&rule.threshold, crossed).map(|t| Shown::of(format, t)),
            below: rule.threshold.below,
            at,
            url: self.config.link(&rule.board_path()),
        }
    }

    /// Sends `notice` once to every target at the same time, bypassing the
    /// outboxes (a person is waiting for the answer); counted like any message.
    pub async fn test(&self, notice: &Notice) -> Vec<TestResult> {
        let tries = self.outboxes.iter().map(|outbox| async move {
            let outcome = outbox.try_once(notice).await;
            let counters = &outbox.counters;
            let (ok, status, error) = match outcome {
                Outcome::Sent(reply) => (true, Some(reply.status), None),
                Outcome::Refused(reply) => (
                    false,
                    Some(reply.status),
                    Some(format!("answered {}: {}", reply.status, reply.body.trim())),
                ),
                Outcome::Retry { why, status, .. } => (false, status, Some(why)),
            };
            let counter = if ok { &counters.sent } else { &counters.failed };
            counter.fetch_add(1, Ordering::Relaxed);
            TestResult {
                target: outbox.target.name.clone(),
                kind: outbox.target.kind.as_str(),
                ok,
                status,
                error,
            }
        });
        futures_util::future::join_all(tries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    /// The rules run on the board's own `now`: under the feed clock that is
    /// the feed's time, however fast it arrives.
    #[test]
    fn the_hold_runs_on_the_boards_time() {
        let config = Config::parse(
            r#"
            [[alert_target]]
            name = "hook"
            kind = "webhook"
            url = "http://127.0.0.1:9/hook"
            [[alert]]
            board = "default"
            tile = "service_level"
            for_secs = 30
            targets = ["hook"]
            "#,
            "t.toml",
        )
        .unwrap();
        let alerts = Alerts::new(config.alerts);
        let mut watches = vec![Watch::default(); 1];
        let board = |now: &str, sl: f64| json!({"now": now, "definitions": {"reachable": {"service_level": sl}}});
        let sent = || {
            std::iter::from_fn(|| alerts.outboxes()[0].pop())
                .map(|n| (n.state, n.level, n.value.clone().map(|v| v.text)))
                .collect::<Vec<_>>()
        };
        for (now, sl) in [("09:00:00", 0.9), ("09:00:10", 0.5), ("09:00:39", 0.5)] {
            alerts.evaluate(&mut watches, &board(&format!("2026-11-20T{now}Z"), sl));
        }
        assert!(sent().is_empty(), "29 s of feed time is not 30");
        alerts.evaluate(&mut watches, &board("2026-11-20T09:00:40Z", 0.55));
        // The built-in board's service level: warn below 80 %, alert below 60 %.
        assert_eq!(
            sent(),
            vec![(State::Entered, TileState::Alert, Some("55%".to_owned()))]
        );
        alerts.evaluate(&mut watches, &json!({"definitions": {}}));
        assert!(sent().is_empty(), "a board without a time is skipped");
    }
}
