//! Each source's state as people see it (`GET /api/sources`, `/metrics`,
//! the pages): connected or not since when, events taken, records skipped.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use serde::Serialize;

/// Skipped records logged at warn per source; the rest are only counted.
const LOGGED_SKIPS: u64 = 5;
/// Queues remembered per source (for the boards' "feed down" line).
const MAX_QUEUES: usize = 1000;

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
}

impl SourceState {
    /// Its name in the API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Connecting => "connecting",
            SourceState::Connected => "connected",
            SourceState::Failed => "failed",
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
    /// The queues its events named.
    pub queues: BTreeSet<String>,
}

/// A source's live status, shared by the source and the web layer.
#[derive(Debug)]
pub struct Status {
    name: String,
    view: Mutex<StatusView>,
}

impl Status {
    /// A source that has not connected yet.
    pub fn new(name: &str, kind: &'static str, now: Timestamp) -> Status {
        Status {
            name: name.to_owned(),
            view: Mutex::new(StatusView {
                name: name.to_owned(),
                kind,
                state: SourceState::Connecting,
                since: now,
                last_event_at: None,
                events: 0,
                skipped: 0,
                last_error: None,
                queues: BTreeSet::new(),
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
        view.state = state;
        view.since = now;
        drop(view);
        match (state, error) {
            (SourceState::Connected, _) => tracing::info!(source = %self.name, "source connected"),
            (_, Some(e)) => tracing::warn!(source = %self.name, "source {}: {e:?}", state.as_str()),
            (_, None) => tracing::info!(source = %self.name, "source {}", state.as_str()),
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
}

impl Sources {
    /// The statuses of these sources, all connecting.
    pub fn new(configs: &[super::SourceConfig], now: Timestamp) -> Sources {
        Sources {
            statuses: configs
                .iter()
                .map(|c| Arc::new(Status::new(&c.name, c.settings.kind(), now)))
                .collect(),
        }
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
}
