//! Each source's state as people see it (`GET /api/sources`, `/metrics`,
//! the pages): connected or not since when, events taken, records skipped;
//! and which feeds are down, for the boards' "feed down since 10:42" line.
//!
//! A source is down when it is `failed`, or `connecting` after having been
//! connected, or still on its very first try [`STARTUP_GRACE`] after start
//! (so a PBX that answers within a few seconds of our start never flashes
//! the line). It is down since it first stopped feeding: the moment it left
//! `connected` (a reconnect failing on is the same outage), or its first
//! failure, or its start for a first try that hangs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::sync::Notify;

use crate::protocol::FeedDown;

/// Skipped records logged at warn per source; the rest are only counted.
const LOGGED_SKIPS: u64 = 5;
/// Queues remembered per source (for the boards' "feed down" line).
const MAX_QUEUES: usize = 1000;
/// How long a source's first try may take before boards call it down.
pub const STARTUP_GRACE: SignedDuration = SignedDuration::from_secs(5);

/// Whether a source is feeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Trying to reach the telephony system.
    Connecting,
    /// Reading (or, for HTTP sources, ready to be posted to).
    Connected,
    /// The last try failed; retrying after a backoff.
    Failed,
    /// In a cluster: another node holds the lease and runs it (`node`).
    Standby,
}

impl SourceState {
    /// Its name in the API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Connecting => "connecting",
            SourceState::Connected => "connected",
            SourceState::Failed => "failed",
            SourceState::Standby => "standby",
        }
    }
}

/// One source's state, as `GET /api/sources` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    /// The source's name.
    pub name: String,
    /// Its kind (`queue-log`, `ami`...).
    pub kind: &'static str,
    /// Connected or not.
    pub state: SourceState,
    /// Since when it is in that state.
    pub since: Timestamp,
    /// The time of the latest event it fed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<Timestamp>,
    /// Events it fed that the store took (duplicates not counted).
    pub events: u64,
    /// Vendor records it could not read.
    pub skipped: u64,
    /// What went wrong last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// In a cluster, the node that runs the source: this one, or the lease
    /// holder when `standby`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The queues its events named.
    pub queues: BTreeSet<String>,
    /// When it stopped feeding (left `connected`, or first failed); `None`
    /// while connected or on its first try.
    #[serde(skip)]
    pub stopped_at: Option<Timestamp>,
}

impl StatusView {
    /// Since when the source is down at `now` (see the module's rule), or
    /// `None` when it is feeding or still within its first try's grace.
    pub fn down_since(&self, now: Timestamp) -> Option<Timestamp> {
        match (self.state, self.stopped_at) {
            // A standby node's copy is not down: the leader runs it.
            (SourceState::Connected | SourceState::Standby, _) => None,
            (_, Some(stopped)) => Some(stopped),
            (_, None) => (now.duration_since(self.since) >= STARTUP_GRACE).then_some(self.since),
        }
    }
}

/// A source's live status, shared by the source and the web layer.
#[derive(Debug)]
pub struct Status {
    name: String,
    view: Mutex<StatusView>,
    /// Notified on every state change, so the boards show it promptly.
    changed: Arc<Notify>,
}

impl Status {
    /// A source that has not connected yet.
    pub fn new(name: &str, kind: &'static str, now: Timestamp) -> Status {
        Status::notifying(name, kind, now, Arc::new(Notify::new()))
    }

    fn notifying(name: &str, kind: &'static str, now: Timestamp, changed: Arc<Notify>) -> Status {
        Status {
            name: name.to_owned(),
            changed,
            view: Mutex::new(StatusView {
                name: name.to_owned(),
                kind,
                state: SourceState::Connecting,
                since: now,
                last_event_at: None,
                events: 0,
                skipped: 0,
                last_error: None,
                node: None,
                queues: BTreeSet::new(),
                stopped_at: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StatusView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A copy of the status now.
    pub fn view(&self) -> StatusView {
        self.lock().clone()
    }

    /// Moves to `state`, logging the change once (not once per retry).
    pub fn set_state(&self, state: SourceState, error: Option<String>, now: Timestamp) {
        let mut view = self.lock();
        if error.is_some() {
            view.last_error.clone_from(&error);
        }
        if view.state == state {
            return;
        }
        match state {
            // Standing by is no outage of this node's; a takeover starts
            // with the first try's grace.
            SourceState::Connected | SourceState::Standby => view.stopped_at = None,
            _ => view.stopped_at = view.stopped_at.or(Some(now)),
        }
        view.state = state;
        view.since = now;
        drop(view);
        // A stored permit if the publisher is busy: the change is not lost.
        self.changed.notify_one();
        match (state, error) {
            (SourceState::Connected, _) => tracing::info!(source = %self.name, "source connected"),
            (_, Some(e)) => tracing::warn!(source = %self.name, "source {}: {e:?}", state.as_str()),
            (_, None) => tracing::info!(source = %self.name, "source {}", state.as_str()),
        }
    }

    /// In a cluster: another node, `leader`, holds the lease and runs it.
    pub fn stand_by(&self, leader: &str, now: Timestamp) {
        self.set_node(leader);
        self.set_state(SourceState::Standby, None, now);
    }

    /// In a cluster: this node, `node`, took the lease and starts the source,
    /// as at the server's start (connecting, with the first try's grace).
    pub fn take_over(&self, node: &str, now: Timestamp) {
        let mut view = self.lock();
        view.node = Some(node.to_owned());
        view.state = SourceState::Connecting;
        view.since = now;
        view.stopped_at = None;
        drop(view);
        self.changed.notify_one();
        tracing::info!(source = %self.name, "source taken over by this node ({node})");
    }

    fn set_node(&self, node: &str) {
        let mut view = self.lock();
        if view.node.as_deref() != Some(node) {
            view.node = Some(node.to_owned());
            drop(view);
            self.changed.notify_one();
        }
    }

    /// Counts a vendor record that could not be read; logs the first few.
    pub fn skip(&self, position: &str, why: &str) {
        let mut view = self.lock();
        view.skipped += 1;
        let skipped = view.skipped;
        drop(view);
        if skipped <= LOGGED_SKIPS {
            // Debug formatting: a vendor record may hold newlines or escapes.
            tracing::warn!(source = %self.name, "skipped the record at {position:?}: {why:?}");
        }
    }

    /// Records events the store took.
    pub fn ingested(&self, events: u64, latest: Option<Timestamp>, queues: Vec<String>) {
        let mut view = self.lock();
        view.events += events;
        view.last_event_at = view.last_event_at.max(latest);
        for queue in queues {
            if view.queues.len() >= MAX_QUEUES {
                break;
            }
            view.queues.insert(queue);
        }
    }
}

/// Every configured source's status.
#[derive(Debug, Default)]
pub struct Sources {
    statuses: Vec<Arc<Status>>,
    changed: Arc<Notify>,
}

impl Sources {
    /// The statuses of these sources, all connecting.
    pub fn new(configs: &[super::SourceConfig], now: Timestamp) -> Sources {
        let changed = Arc::new(Notify::new());
        let status = |c: &super::SourceConfig| {
            Status::notifying(&c.name, c.settings.kind(), now, changed.clone())
        };
        Sources {
            statuses: configs.iter().map(|c| Arc::new(status(c))).collect(),
            changed,
        }
    }

    /// Notified when any source changes state.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// The sources down at `now`, by name, with since when and their queues.
    pub fn feeds_down(&self, now: Timestamp) -> BTreeMap<String, FeedDown> {
        self.views()
            .into_iter()
            .filter_map(|v| {
                let since = v.down_since(now)?;
                Some((
                    v.name,
                    FeedDown {
                        since,
                        queues: v.queues,
                    },
                ))
            })
            .collect()
    }

    /// The status of the source called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Status>> {
        self.statuses.iter().find(|s| s.name() == name).cloned()
    }

    /// Every source's status, in configuration order.
    pub fn views(&self) -> Vec<StatusView> {
        self.statuses.iter().map(|s| s.view()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changes_keep_since_and_the_last_error() {
        let t0: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-12-01T10:42:00Z".parse().unwrap();
        let s = Status::new("pbx", "ami", t0);
        s.set_state(SourceState::Failed, Some("refused".into()), t1);
        s.set_state(
            SourceState::Failed,
            Some("refused again".into()),
            t1 + jiff::SignedDuration::from_secs(5),
        );
        let v = s.view();
        assert_eq!(
            (v.state, v.since),
            (SourceState::Failed, t1),
            "a retry is no new state"
        );
        assert_eq!(v.last_error.as_deref(), Some("refused again"));
        s.skip("line 3", "too few fields");
        s.ingested(2, Some(t1), vec!["q".into()]);
        let v = s.view();
        assert_eq!((v.events, v.skipped, v.last_event_at), (2, 1, Some(t1)));
        assert!(v.queues.contains("q"));
    }

    /// A node that takes a source over gets the first try's grace, as at start.
    #[test]
    fn a_takeover_starts_like_a_first_try() {
        let s = Status::new("pbx", "queue-log", at(0));
        s.set_state(SourceState::Failed, Some("no file".into()), at(1));
        s.stand_by("n1", at(10));
        let v = s.view();
        assert_eq!(
            (v.state, v.node.as_deref()),
            (SourceState::Standby, Some("n1"))
        );
        assert_eq!(v.down_since(at(60)), None, "the leader runs it");
        s.take_over("n2", at(60));
        let v = s.view();
        assert_eq!(
            (v.state, v.node.as_deref()),
            (SourceState::Connecting, Some("n2"))
        );
        assert_eq!(v.down_since(at(64)), None, "within the grace");
        assert_eq!(v.down_since(at(65)), Some(at(60)), "hangs past the grace");
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_795_000_000 + secs).unwrap()
    }

    /// What happens, the state changes (state, at second), when we look, and
    /// since when the source is down then (or not).
    type Case = (
        &'static str,
        &'static [(SourceState, i64)],
        i64,
        Option<i64>,
    );

    /// The rule for "down", case by case.
    #[test]
    fn down_follows_the_rule() {
        use SourceState::*;
        let cases: &[Case] = &[
            ("first try, within the grace", &[], 4, None),
            ("first try hanging past the grace", &[], 5, Some(0)),
            ("refused at once", &[(Failed, 1)], 1, Some(1)),
            ("connected", &[(Connected, 1)], 60, None),
            ("dropped", &[(Connected, 1), (Connecting, 30)], 30, Some(30)),
            (
                "dropped, then retries fail",
                &[(Connected, 1), (Connecting, 30), (Failed, 31)],
                40,
                Some(30),
            ),
            (
                "back again",
                &[(Connected, 1), (Connecting, 30), (Connected, 35)],
                40,
                None,
            ),
            (
                "standing by while another node runs it",
                &[(Connected, 1), (Standby, 30)],
                60,
                None,
            ),
            (
                "a second outage counts from its own start",
                &[(Failed, 1), (Connected, 2), (Connecting, 50)],
                60,
                Some(50),
            ),
        ];
        for (what, steps, now, want) in cases {
            let s = Status::new("pbx", "ami", at(0));
            for (state, t) in *steps {
                s.set_state(*state, None, at(*t));
            }
            assert_eq!(s.view().down_since(at(*now)), want.map(at), "{what}");
        }
    }
}
