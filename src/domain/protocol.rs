//! The board document as it goes over the wire (interfaces.md "The snapshot"):
//! today's board, which `GET /api/snapshot` and `/ws` carry, and a past day's
//! board (`?day=`). [`crate::snapshot`] builds them from the engine; tiles read
//! them through dotted paths (`definitions.nhs.asa_secs`), which the tests
//! check against these types.
//!
//! Figures without a value are left out rather than `null`, so that a JSON
//! Merge Patch (where `null` deletes) can carry every change exactly. The
//! `seq` of a published board is added by the hub, beside these fields.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::AgentStatus;
/// One definition's boxes and figures (defined beside the tallies it is read from).
pub use crate::stats::Figures;

/// Today's board: live figures, agents, the day's and the window's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TodayBoard {
    /// The server's now, to the millisecond (feed time with `--clock feed`).
    pub now: Timestamp,
    /// The site day the figures cover; `null` under a feed clock that has
    /// seen no event yet (its "now" is still unknown).
    pub day: Option<Date>,
    /// The site's time zone, an IANA name.
    pub timezone: String,
    /// Calls in progress, by state.
    pub live: LiveFigures,
    /// Agents by status.
    pub agents: AgentCounts,
    /// Outcome name → finished calls of the day, for the outcomes that occurred.
    pub outcomes: BTreeMap<String, i64>,
    /// Definition name → the day's figures under it.
    pub definitions: BTreeMap<String, Figures>,
    /// The figures of the rolling window.
    pub window: Window,
    /// Queue name → its live calls and the day's figures in it.
    pub queues: BTreeMap<String, Queue>,
    /// Board name → the figures of its queues summed (boards with a queue filter).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Group>,
    /// Source name → since when it is down, for the sources that are down
    /// (left out when none is; see `source::status` for the rule).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feeds_down: BTreeMap<String, FeedDown>,
}

/// A source that is down, as boards show it ("feed down since 10:42").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedDown {
    /// When it stopped feeding.
    pub since: Timestamp,
    /// The queues its events named; empty when it has fed none yet, and
    /// then every board shows it (it may feed any of them).
    pub queues: BTreeSet<String>,
}

impl FeedDown {
    /// Whether a board over `board_queues` (empty: every queue) shows it.
    pub fn concerns(&self, board_queues: &[String]) -> bool {
        board_queues.is_empty()
            || self.queues.is_empty()
            || board_queues.iter().any(|q| self.queues.contains(q))
    }
}

/// A past day's board, from its final tallies: no live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastBoard {
    /// The server's now when the board was built, to the millisecond.
    pub now: Timestamp,
    /// The site day the figures cover.
    pub day: Date,
    /// The site's time zone, an IANA name.
    pub timezone: String,
    /// Outcome name → finished calls of the day, for the outcomes that occurred.
    pub outcomes: BTreeMap<String, i64>,
    /// Definition name → the day's figures under it.
    pub definitions: BTreeMap<String, Figures>,
    /// Queue name → the day's figures in it.
    pub queues: BTreeMap<String, PastQueue>,
}

/// Calls in progress, by state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveFigures {
    /// Waiting in a queue.
    pub queued: i64,
    /// Ringing an agent directly.
    pub ringing: i64,
    /// Talking to an agent.
    pub talking: i64,
    /// In the IVR, not yet anywhere else.
    pub in_ivr: i64,
    /// Anything else (voicemail, transfers in flight...).
    pub other: i64,
    /// When the longest-waiting queued call joined its queue; absent when none waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_queued_since: Option<Timestamp>,
}

/// Agents by their current status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCounts {
    /// Ready for calls.
    pub available: i64,
    /// On a call or otherwise occupied.
    pub busy: i64,
    /// Finishing the last call's paperwork.
    pub wrap_up: i64,
    /// Logged in but away.
    pub away: i64,
    /// Logged out.
    pub offline: i64,
}

impl AgentCounts {
    /// Counts one more agent of `status`.
    pub fn add(&mut self, status: AgentStatus) {
        *match status {
            AgentStatus::Available => &mut self.available,
            AgentStatus::Busy => &mut self.busy,
            AgentStatus::WrapUp => &mut self.wrap_up,
            AgentStatus::Away => &mut self.away,
            AgentStatus::Offline => &mut self.offline,
        } += 1;
    }
}

/// The figures of the calls finished within the rolling window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The window's length.
    pub minutes: i64,
    /// Outcome name → finished calls, for the outcomes that occurred.
    pub outcomes: BTreeMap<String, i64>,
    /// Definition name → the window's figures under it.
    pub definitions: BTreeMap<String, Figures>,
}

/// One queue today: its live calls and the day's figures in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// Calls in progress in it, by state.
    pub live: LiveFigures,
    /// Outcome name → finished calls, for the outcomes that occurred.
    pub outcomes: BTreeMap<String, i64>,
    /// Definition name → the day's figures under it.
    pub definitions: BTreeMap<String, Figures>,
}

/// One queue of a past day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastQueue {
    /// Outcome name → finished calls, for the outcomes that occurred.
    pub outcomes: BTreeMap<String, i64>,
    /// Definition name → the day's figures under it.
    pub definitions: BTreeMap<String, Figures>,
}

/// A board's queues summed on the server, so its ratios stay exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Calls in progress in its queues, by state.
    pub live: LiveFigures,
    /// Agents serving one of its queues (or every queue), by status.
    pub agents: AgentCounts,
    /// Definition name → the day's figures of its queues under it.
    pub definitions: BTreeMap<String, Figures>,
}

/// The document as JSON, for the merge-patch diff and the wire.
pub fn to_value<T: Serialize>(document: &T) -> Value {
    // Only maps with string keys, numbers, strings and timestamps: cannot fail.
    serde_json::to_value(document).expect("board documents serialize")
}
