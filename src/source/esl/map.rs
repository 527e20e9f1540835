//! mod_callcenter's `callcenter::info` events and the caller's
//! `CHANNEL_HANGUP_COMPLETE`, mapped to the events of events.md
//! (spec/sources.md, "FreeSWITCH `mod_callcenter`"). Pure: records and their
//! times come in, events go out; the live client and the offline reader
//! share it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::frame::{self, Headers};
use crate::event::{AgentStatus, Direction, EndedBy, Event, EventKind};
use crate::source::{Mapped, Naming, Skipped};

/// Offline, an event block without `Event-Date-Timestamp` before any that has
/// one is stamped from here on, 1 ms apart (as for AMI).
pub const OFFLINE_START: Timestamp = Timestamp::constant(1_767_225_600, 0);
/// Calls remembered (to know a call's first `member-queue-start` and whether
/// a hang-up finishes it); the oldest are forgotten past this.
const MAX_CALLS: usize = 100_000;
/// Agents whose status is remembered (for `Waiting` after `On Break`).
const MAX_AGENTS: usize = 10_000;
/// Unfinished calls (and held exits) a checkpoint keeps, the newest: more
/// calls than that under way at once is no call centre this serves.
const SAVED_CALLS: usize = 1_000;

/// Each event a record can give has a fixed slot in its id, so that a record
/// read twice gives the same ids whatever the call's state the second time.
mod slot {
    pub const CALL_STARTED: usize = 0;
    pub const QUEUED: usize = 1;
    pub const OFFERED: usize = 2;
    pub const DECLINED: usize = 3;
    pub const ANSWERED: usize = 4;
    pub const TIMED_OUT: usize = 5;
    pub const ENDED: usize = 6;
    pub const AGENT_STATUS: usize = 7;
}

/// One event as read: decoded headers, its time, and what its ids hash.
#[derive(Debug, Clone)]
pub struct Record {
    headers: Headers,
    at: Timestamp,
    key: Vec<u8>,
}

impl Record {
    /// Reads an `event plain` block; its time is `Event-Date-Timestamp`, else
    /// `fallback()`. A block with no header or no event name is unreadable.
    pub fn read(bytes: &[u8], fallback: impl FnOnce() -> Timestamp) -> Result<Record, String> {
        let headers = Headers::parse_event(bytes);
        if headers.is_empty() {
            return Err("no `Key: Value` header".to_owned());
        }
        if headers.get("Event-Name").is_none() && headers.get("CC-Action").is_none() {
            return Err("no Event-Name".to_owned());
        }
        let at = stamp(&headers).unwrap_or_else(fallback);
        // The event's own UUID names it wherever it is read; without one,
        // its bytes do.
        let key = match headers.non_empty("Event-UUID") {
            Some(uuid) => uuid.as_bytes().to_vec(),
            None => bytes.to_vec(),
        };
        Ok(Record { headers, at, key })
    }

    /// When it happened.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    fn action(&self) -> Option<&str> {
        self.headers.get("CC-Action")
    }

    fn session(&self) -> Option<&str> {
        self.headers.non_empty("CC-Member-Session-UUID")
    }

    /// The exit whose `ended` waits to see whether the call continues.
    fn may_continue(&self) -> bool {
        self.action() == Some("member-queue-end")
            && self.headers.get("CC-Cause") == Some("Cancel")
            && matches!(
                self.headers.get("CC-Cancel-Reason"),
                Some("TIMEOUT" | "NO_AGENT_TIMEOUT" | "BREAK_OUT")
            )
    }
}

/// `Event-Date-Timestamp` (microseconds since the epoch); not a number or out
/// of range counts as absent.
fn stamp(headers: &Headers) -> Option<Timestamp> {
    let micros: i64 = headers.get("Event-Date-Timestamp")?.trim().parse().ok()?;
    Timestamp::from_microsecond(micros).ok()
}

/// Whether an exit that may continue does, as far as the caller knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookahead {
    /// Another `member-queue-start` of the call follows in time (offline).
    Continues,
    /// None follows (offline).
    Ends,
    /// Not known yet (live): the `ended` waits, see [`Mapper::due`].
    Unknown,
}

#[derive(Debug, Default)]
struct CallState {
    started: bool,
    finished: bool,
}

/// An exit's `ended`, held back while the call may still continue.
#[derive(Debug, Clone)]
struct Pending {
    event: Event,
}

/// What an agent's status says, so `Waiting` does not undo `On Break`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Presence {
    Available,
    Away,
    Offline,
}

/// The mapping with the state its table needs: each call's progress, the
/// exits whose `ended` waits, each agent's status.
#[derive(Debug)]
pub struct Mapper {
    naming: Naming,
    continue_for: SignedDuration,
    calls: HashMap<String, CallState>,
    order: VecDeque<String>,
    pending: HashMap<String, Pending>,
    agents: HashMap<String, Presence>,
}

impl Mapper {
    /// A mapping writing ids by `naming`; a call continues within `continue_secs`.
    pub fn new(naming: Naming, continue_secs: u64) -> Mapper {
        Mapper {
            naming,
            continue_for: SignedDuration::from_secs(
                i64::try_from(continue_secs).unwrap_or(i64::MAX),
            ),
            calls: HashMap::new(),
            order: VecDeque::new(),
            pending: HashMap::new(),
            agents: HashMap::new(),
        }
    }

    /// The events of one record; `Err` (why) when it cannot be read.
    pub fn apply(&mut self, record: &Record, look: Lookahead) -> Result<Vec<Event>, String> {
        match record.headers.get("Event-Name") {
            Some("CHANNEL_HANGUP_COMPLETE") => Ok(self.hangup(record)),
            Some(name) if name != "CUSTOM" => Ok(Vec::new()),
            _ => match record.action() {
                Some(action) => self.callcenter(action, record, look),
                None => Ok(Vec::new()),
            },
        }
    }

    /// The held `ended`s whose `continue_secs` have passed by `now`: their
    /// calls did not continue.
    pub fn due(&mut self, now: Timestamp) -> Vec<Event> {
        let limit = self.continue_for;
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.event.at.saturating_add(limit).is_ok_and(|end| end < now))
            .map(|(call, _)| call.clone())
            .collect();
        due.iter().filter_map(|call| self.settle(call)).collect()
    }

    /// Every held `ended` (the end of a file).
    pub fn flush(&mut self) -> Vec<Event> {
        let calls: Vec<String> = self.pending.keys().cloned().collect();
        calls.iter().filter_map(|call| self.settle(call)).collect()
    }

    fn settle(&mut self, call: &str) -> Option<Event> {
        let pending = self.pending.remove(call)?;
        if let Some(state) = self.calls.get_mut(call) {
            state.finished = true;
        }
        Some(pending.event)
    }

    fn hangup(&mut self, record: &Record) -> Vec<Event> {
        let Some(uuid) = record.headers.non_empty("Unique-ID") else {
            return Vec::new();
        };
        // The caller hung up after leaving a queue: it cannot continue, so the
        // exit's own `ended` (at the exit's time) stands.
        if let Some(ended) = self.settle(uuid) {
            return vec![ended];
        }
        match self.calls.get_mut(uuid) {
            Some(state) if !state.finished => {
                state.finished = true;
                let call = self.naming.call(uuid);
                let by = EndedBy::Caller;
                vec![self.event(record, slot::ENDED, Some(call), EventKind::Ended { by })]
            }
            _ => Vec::new(),
        }
    }

    fn callcenter(
        &mut self,
        action: &str,
        record: &Record,
        look: Lookahead,
    ) -> Result<Vec<Event>, String> {
        let h = &record.headers;
        let required = |key: &str| {
            h.non_empty(key)
                .map(str::to_owned)
                .ok_or_else(|| format!("{action} without {key}"))
        };
        match action {
            "member-queue-start" => {
                let session = required("CC-Member-Session-UUID")?;
                let queue = required("CC-Queue")?;
                Ok(self.queue_start(record, &session, queue))
            }
            "agent-offering" | "bridge-agent-start" | "bridge-agent-fail" => {
                let session = required("CC-Member-Session-UUID")?;
                let agent = self.naming.agent(&required("CC-Agent")?);
                self.remember(&session);
                let (slot, kind) = match action {
                    "agent-offering" => (
                        slot::OFFERED,
                        EventKind::Offered {
                            agent,
                            queue: h.non_empty("CC-Queue").map(str::to_owned),
                        },
                    ),
                    "bridge-agent-start" => (slot::ANSWERED, EventKind::Answered { agent }),
                    _ => (slot::DECLINED, EventKind::Declined { agent }),
                };
                let call = self.naming.call(&session);
                Ok(vec![self.event(record, slot, Some(call), kind)])
            }
            "member-queue-end" => {
                let session = required("CC-Member-Session-UUID")?;
                self.queue_end(record, &session, look)
            }
            "agent-status-change" => {
                let agent = required("CC-Agent")?;
                Ok(self.agent_status(record, &agent))
            }
            "agent-state-change" => {
                let agent = required("CC-Agent")?;
                Ok(self.agent_state(record, &agent))
            }
            _ => Ok(Vec::new()),
        }
    }

    fn queue_start(&mut self, record: &Record, session: &str, queue: String) -> Vec<Event> {
        // Back in a queue within `continue_secs`: the held `ended` is void.
        self.pending.remove(session);
        let state = self.remember(session);
        let first = !state.started;
        state.started = true;
        // A start after the call's `ended` is a late event: it is live again.
        state.finished = false;
        let call = self.naming.call(session);
        let mut events = Vec::with_capacity(2);
        if first {
            let from = record
                .headers
                .non_empty("CC-Member-CID-Number")
                .map(str::to_owned);
            events.push(self.event(
                record,
                slot::CALL_STARTED,
                Some(call.clone()),
                EventKind::CallStarted {
                    direction: Direction::Inbound,
                    channel: "voice".to_owned(),
                    from,
                    to: None,
                    line: None,
                    dialer: false,
                },
            ));
        }
        events.push(self.event(
            record,
            slot::QUEUED,
            Some(call),
            EventKind::Queued { queue },
        ));
        events
    }

    fn queue_end(
        &mut self,
        record: &Record,
        session: &str,
        look: Lookahead,
    ) -> Result<Vec<Event>, String> {
        let h = &record.headers;
        let (timed_out, by) = match (h.get("CC-Cause"), h.get("CC-Cancel-Reason")) {
            (Some("Terminated"), _) => (false, EndedBy::Caller),
            // Older mod_callcenter sends no reason: the caller hung up.
            (Some("Cancel"), None | Some("NONE")) => (false, EndedBy::Caller),
            (Some("Cancel"), Some("BREAK_OUT")) => (false, EndedBy::Caller),
            (Some("Cancel"), Some("TIMEOUT" | "NO_AGENT_TIMEOUT")) => (true, EndedBy::System),
            (cause, reason) => {
                return Err(format!(
                    "member-queue-end with CC-Cause {cause:?}, CC-Cancel-Reason {reason:?}"
                ));
            }
        };
        self.remember(session);
        let call = self.naming.call(session);
        let mut events = Vec::with_capacity(2);
        if timed_out {
            let queue = h.non_empty("CC-Queue").map(str::to_owned);
            events.push(self.event(
                record,
                slot::TIMED_OUT,
                Some(call.clone()),
                EventKind::TimedOut { queue },
            ));
        }
        let ended = self.event(record, slot::ENDED, Some(call), EventKind::Ended { by });
        let look = if record.may_continue() {
            look
        } else {
            Lookahead::Ends
        };
        match look {
            Lookahead::Continues => {}
            Lookahead::Ends => {
                self.pending.remove(session);
                if let Some(state) = self.calls.get_mut(session) {
                    state.finished = true;
                }
                events.push(ended);
            }
            Lookahead::Unknown => {
                self.pending
                    .insert(session.to_owned(), Pending { event: ended });
            }
        }
        Ok(events)
    }

    fn agent_status(&mut self, record: &Record, vendor: &str) -> Vec<Event> {
        let (presence, status) = match record.headers.get("CC-Agent-Status") {
            Some("Available" | "Available (On Demand)") => {
                (Presence::Available, AgentStatus::Available)
            }
            Some("On Break") => (Presence::Away, AgentStatus::Away),
            Some("Logged Out") => (Presence::Offline, AgentStatus::Offline),
            _ => return Vec::new(),
        };
        if self.agents.len() >= MAX_AGENTS && !self.agents.contains_key(vendor) {
            self.agents.clear();
        }
        self.agents.insert(vendor.to_owned(), presence);
        vec![self.agent_event(record, vendor, status)]
    }

    fn agent_state(&mut self, record: &Record, vendor: &str) -> Vec<Event> {
        let status = match record.headers.get("CC-Agent-State") {
            Some("In a queue call") => AgentStatus::Busy,
            // Back to waiting after a call, but a break or a log-out stands.
            Some("Waiting") => match self.agents.get(vendor) {
                Some(Presence::Away | Presence::Offline) => return Vec::new(),
                _ => AgentStatus::Available,
            },
            _ => return Vec::new(),
        };
        vec![self.agent_event(record, vendor, status)]
    }

    fn agent_event(&self, record: &Record, vendor: &str, status: AgentStatus) -> Event {
        let kind = EventKind::AgentStatus {
            agent: self.naming.agent(vendor),
            status,
            queues: None,
            reason: None,
        };
        self.event(record, slot::AGENT_STATUS, None, kind)
    }

    /// The call's state, created when new; the oldest calls are forgotten
    /// past [`MAX_CALLS`] so memory stays bounded.
    fn remember(&mut self, session: &str) -> &mut CallState {
        if !self.calls.contains_key(session) {
            if self.calls.len() >= MAX_CALLS
                && let Some(oldest) = self.order.pop_front()
            {
                self.calls.remove(&oldest);
            }
            self.order.push_back(session.to_owned());
        }
        self.calls.entry(session.to_owned()).or_default()
    }

    fn event(&self, record: &Record, slot: usize, call: Option<String>, kind: EventKind) -> Event {
        Event {
            id: Some(self.naming.event_id(&record.key, slot)),
            call,
            at: record.at,
            kind,
        }
    }
}

/// The mapping's state in a checkpoint: what a restart must not forget.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// Unfinished calls, oldest first, and whether their start was seen.
    calls: Vec<(String, bool)>,
    /// The held `ended`s by call.
    pending: BTreeMap<String, Value>,
    /// Agents whose status a `Waiting` must not undo.
    agents: BTreeMap<String, Presence>,
}

impl Mapper {
    /// The state a restart needs, for [`Context::store_checkpoint`]: held
    /// exits (so a pending `ended` survives), the newest unfinished calls
    /// (a hang-up ends them, a new start continues them) and agents on break
    /// or logged out; bounded by [`SAVED_CALLS`] and [`MAX_AGENTS`].
    ///
    /// [`Context::store_checkpoint`]: crate::source::Context::store_checkpoint
    pub fn save(&self) -> Value {
        let unfinished: Vec<(String, bool)> = self
            .order
            .iter()
            .filter_map(|call| {
                let state = self.calls.get(call).filter(|s| !s.finished)?;
                Some((call.clone(), state.started))
            })
            .collect();
        let calls = unfinished[unfinished.len().saturating_sub(SAVED_CALLS)..].to_vec();
        let mut held: Vec<(&String, &Pending)> = self.pending.iter().collect();
        held.sort_by_key(|(call, p)| (p.event.at, *call));
        let pending = held[held.len().saturating_sub(SAVED_CALLS)..]
            .iter()
            .map(|(call, p)| {
                let event = serde_json::to_value(&p.event).unwrap_or(Value::Null);
                ((*call).clone(), event)
            })
            .collect();
        let agents = self
            .agents
            .iter()
            .filter(|(_, p)| **p != Presence::Available)
            .map(|(agent, p)| (agent.clone(), *p))
            .collect();
        let saved = Saved {
            calls,
            pending,
            agents,
        };
        serde_json::to_value(saved).unwrap_or(Value::Null)
    }

    /// Takes back the state [`Mapper::save`] gave; a damaged one is ignored
    /// (the source then starts afresh, as before checkpoints).
    pub fn restore(&mut self, value: &Value) {
        let Ok(saved) = Saved::deserialize(value) else {
            tracing::warn!("esl: the saved mapping state is damaged; starting afresh");
            return;
        };
        for (call, started) in saved.calls {
            self.remember(&call).started = started;
        }
        for (call, event) in saved.pending {
            if let Ok(event) = Event::from_json(&event) {
                self.remember(&call);
                self.pending.insert(call, Pending { event });
            }
        }
        for (agent, presence) in saved.agents.into_iter().take(MAX_AGENTS) {
            self.agents.insert(agent, presence);
        }
    }
}

/// Maps a whole file of event blocks, looking ahead for calls that continue.
pub fn map_file(bytes: &[u8], naming: &Naming, continue_secs: u64) -> Mapped {
    let mut mapped = Mapped::default();
    let mut records = Vec::new();
    let mut last: Option<Timestamp> = None;
    for (n, block) in frame::file_blocks(bytes).into_iter().enumerate() {
        let fallback = || {
            last.and_then(|t| t.checked_add(SignedDuration::from_millis(1)).ok())
                .unwrap_or(OFFLINE_START)
        };
        match Record::read(block.bytes, fallback) {
            Ok(record) => {
                last = Some(record.at);
                records.push((n, block.offset, record));
            }
            Err(why) => mapped.skipped.push(skipped(n, block.offset, why)),
        }
    }
    let continues = continuing_exits(&records, continue_secs);
    let mut mapper = Mapper::new(naming.clone(), continue_secs);
    for (i, (n, offset, record)) in records.iter().enumerate() {
        let look = if continues.contains(&i) {
            Lookahead::Continues
        } else {
            Lookahead::Ends
        };
        match mapper.apply(record, look) {
            Ok(events) => mapped.events.extend(events),
            Err(why) => mapped.skipped.push(skipped(*n, *offset, why)),
        }
    }
    mapped
}

/// Indices of the exits followed, at most `continue_secs` later (by the
/// records' times), by another `member-queue-start` of the same call.
fn continuing_exits(records: &[(usize, usize, Record)], continue_secs: u64) -> HashSet<usize> {
    let window = SignedDuration::from_secs(i64::try_from(continue_secs).unwrap_or(i64::MAX));
    let mut starts: HashMap<&str, Vec<(usize, Timestamp)>> = HashMap::new();
    for (i, (_, _, r)) in records.iter().enumerate() {
        if r.action() == Some("member-queue-start")
            && let Some(session) = r.session()
        {
            starts.entry(session).or_default().push((i, r.at));
        }
    }
    records
        .iter()
        .enumerate()
        .filter(|(i, (_, _, r))| {
            let Some(session) = r.session().filter(|_| r.may_continue()) else {
                return false;
            };
            let until = r.at.saturating_add(window).unwrap_or(r.at);
            starts.get(session).is_some_and(|list| {
                list.iter()
                    .any(|&(j, t)| (t > r.at || (t == r.at && j > *i)) && t <= until)
            })
        })
        .map(|(i, _)| i)
        .collect()
}

fn skipped(n: usize, offset: usize, why: String) -> Skipped {
    Skipped {
        position: format!("block {} (byte {offset})", n + 1),
        why,
    }
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
