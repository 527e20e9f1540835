//! The `queue_log` mapping of spec/sources.md: rows in, events out, with the
//! state the tables need (a call's first row, exits waiting to see whether
//! the call continues, each agent's queues). Pure: no I/O, no clock; time
//! comes in as the rows' own times or as a value the caller passes.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::row::{CsvHeader, Row, parse_pipe};
use crate::event::{AgentStatus, EndedBy, Event, EventKind, MAX_AGENT_QUEUES, MAX_REASON_BYTES};
use crate::source::text::cut;
use crate::source::{Mapped, Naming, Skipped, checked};

/// Calls remembered at most (calls whose exit never comes are dropped oldest
/// first, so a PBX that loses rows cannot grow memory without bound).
const MAX_CALLS: usize = 20_000;
/// Agents remembered at most.
const MAX_AGENTS: usize = 10_000;

/// Each event a row can give has its own slot in the row's ids, so a row
/// gives the same id for an event whether or not its other events are given
/// (a call's first row, an `ended` released later, a restart).
mod slot {
    pub const CALL_STARTED: usize = 0;
    pub const QUEUED: usize = 1;
    pub const OFFERED: usize = 2;
    pub const DECLINED: usize = 3;
    pub const ANSWERED: usize = 4;
    pub const IVR_INPUT: usize = 5;
    pub const TIMED_OUT: usize = 6;
    pub const CLOSED: usize = 7;
    pub const ENDED: usize = 8;
    pub const AGENT_STATUS: usize = 9;
    pub const WRAP_UP_DONE: usize = 10;
}

/// When exits waiting for their `ended` are let go (besides [`Mapper::release_due`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Only at the end ([`Mapper::finish`]): offline, the whole file is there
    /// to look ahead in.
    AtEnd,
    /// Also when a later row of any call is more than `continue_secs` past
    /// the exit (`--clock feed`: the rows' times are the clock).
    ByRows,
}

/// Settings of the mapping.
#[derive(Debug, Clone)]
pub struct MapSettings {
    /// How long after an exit another row of the call continues it.
    pub continue_after: SignedDuration,
    /// How long an agent is in wrap-up after a call; `None`: available at once.
    pub wrap_up: Option<SignedDuration>,
    /// When pending exits are released.
    pub release: Release,
}

impl Default for MapSettings {
    fn default() -> Self {
        MapSettings {
            continue_after: SignedDuration::from_secs(10),
            wrap_up: None,
            release: Release::AtEnd,
        }
    }
}

/// A call seen and not yet finished.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct CallState {
    /// The latest time of its rows that gave events.
    latest: Timestamp,
}

/// An agent as the rows left it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AgentState {
    status: String,
    queues: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// What a pending event waits on: another row of a call, or of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Waits {
    /// The vendor call id of an exit.
    Call(String),
    /// The display name of an agent in wrap-up.
    Agent(String),
}

/// An event held back until it is known that nothing cancels it.
#[derive(Debug, Clone)]
struct Pending {
    waits: Waits,
    /// The time of the row that made it.
    since: Timestamp,
    /// Until when a row cancels it.
    until: Timestamp,
    event: Event,
}

#[derive(Serialize, Deserialize)]
struct SavedPending {
    waits: Waits,
    since: Timestamp,
    until: Timestamp,
    event: Value,
}

/// The mapping's state as the checkpoint keeps it.
#[derive(Default, Serialize, Deserialize)]
struct Saved {
    calls: Vec<(String, Timestamp)>,
    agents: BTreeMap<String, AgentState>,
    pending: Vec<SavedPending>,
}

/// Maps rows to events, one source's worth of state.
pub struct Mapper {
    naming: Naming,
    settings: MapSettings,
    calls: HashMap<String, CallState>,
    agents: BTreeMap<String, AgentState>,
    pending: Vec<Pending>,
}

/// The row types of the call table.
enum CallRow {
    Enter,
    Ring,
    Dump,
    Connect,
    Complete(EndedBy),
    Handed,
    Abandon,
    ExitKey,
    ExitTimeout,
    Turned,
    Did,
}

fn call_row(event: &str) -> Option<CallRow> {
    Some(match event {
        "ENTERQUEUE" => CallRow::Enter,
        "RINGNOANSWER" | "RINGCANCELED" => CallRow::Ring,
        "AGENTDUMP" | "SYSCOMPAT" => CallRow::Dump,
        "CONNECT" => CallRow::Connect,
        "COMPLETEAGENT" => CallRow::Complete(EndedBy::Agent),
        "COMPLETECALLER" => CallRow::Complete(EndedBy::Caller),
        "TRANSFER" | "BLINDTRANSFER" | "ATTENDEDTRANSFER" => CallRow::Handed,
        "ABANDON" => CallRow::Abandon,
        "EXITWITHKEY" => CallRow::ExitKey,
        "EXITWITHTIMEOUT" | "EXITEMPTY" => CallRow::ExitTimeout,
        "JOINEMPTY" | "JOINUNAVAIL" | "FULL" | "CLOSED" => CallRow::Turned,
        "DID" => CallRow::Did,
        _ => return None,
    })
}

/// The row types of the agent table.
enum AgentRow {
    Join,
    Leave,
    Logoff,
    Pause,
    Unpause,
    Connect,
    Done,
}

fn agent_row(event: &str) -> Option<AgentRow> {
    Some(match event {
        "AGENTLOGIN" | "AGENTCALLBACKLOGIN" | "ADDMEMBER" => AgentRow::Join,
        "REMOVEMEMBER" => AgentRow::Leave,
        "AGENTLOGOFF" | "AGENTCALLBACKLOGOFF" => AgentRow::Logoff,
        "PAUSE" | "PAUSEALL" => AgentRow::Pause,
        "UNPAUSE" | "UNPAUSEALL" => AgentRow::Unpause,
        "CONNECT" => AgentRow::Connect,
        "COMPLETEAGENT" | "COMPLETECALLER" | "TRANSFER" | "BLINDTRANSFER" | "ATTENDEDTRANSFER" => {
            AgentRow::Done
        }
        _ => return None,
    })
}

/// Whether a `callid` names a call (`NONE`, `MANAGER`, `CLI`, `REALTIME` do not).
fn is_call(callid: &str) -> bool {
    !matches!(callid, "" | "NONE" | "MANAGER" | "CLI" | "REALTIME")
}

/// `NONE` (or nothing) as no value.
fn named(field: &str) -> Option<&str> {
    (!field.is_empty() && field != "NONE").then_some(field)
}

/// The events of one row, each with its slot's deterministic id.
struct Out<'a> {
    naming: &'a Naming,
    key: Vec<u8>,
    call: Option<String>,
    at: Timestamp,
    events: Vec<Event>,
}

impl Out<'_> {
    fn make(&self, slot: usize, at: Timestamp, kind: EventKind) -> Event {
        let call = match kind {
            EventKind::AgentStatus { .. } => None,
            _ => self.call.clone(),
        };
        Event {
            id: Some(self.naming.event_id(&self.key, slot)),
            call,
            at,
            kind,
        }
    }

    fn push(&mut self, slot: usize, kind: EventKind) {
        self.push_at(slot, self.at, kind);
    }

    fn push_at(&mut self, slot: usize, at: Timestamp, kind: EventKind) {
        let event = self.make(slot, at, kind);
        self.events.push(event);
    }
}

impl Mapper {
    /// A mapping with no state yet, writing ids and names by `naming`.
    pub fn new(naming: Naming, settings: MapSettings) -> Mapper {
        Mapper {
            naming,
            settings,
            calls: HashMap::new(),
            agents: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    /// Maps one row, appending its events to `out`; `Err` says why the row
    /// gives nothing and is to be counted as skipped (a row that carries no
    /// call and that we do not use gives `Ok` and nothing).
    pub fn map(&mut self, row: &Row, out: &mut Vec<Event>) -> Result<(), String> {
        if self.settings.release == Release::ByRows {
            // A row more than the wait past a held event: its time is up.
            self.release(out, |p| p.until < row.at);
        }
        let call_kind = call_row(&row.event);
        let agent_kind = agent_row(&row.event);
        let has_call = is_call(&row.callid);
        if call_kind.is_none() && agent_kind.is_none() {
            return match has_call {
                true => Err(format!("{} rows are not used", row.event)),
                false => Ok(()),
            };
        }
        self.check(row, has_call && call_kind.is_some(), agent_kind.is_some())?;
        let mut o = Out {
            naming: &self.naming,
            key: row.canonical(),
            call: has_call.then(|| self.naming.call(&row.callid)),
            at: row.at,
            events: Vec::new(),
        };
        let mut held = Vec::new();
        let agent = self.naming.agent(&row.agent);
        if let (Some(kind), true) = (call_kind, has_call) {
            held.extend(Self::call_events(
                (&mut self.calls, &mut self.pending),
                self.settings.continue_after,
                (row, &agent),
                kind,
                &mut o,
            ));
        }
        if let Some(kind) = agent_kind {
            held.extend(Self::agent_events(
                &mut self.agents,
                &mut self.pending,
                &self.settings,
                row,
                &agent,
                kind,
                &mut o,
            ));
        }
        // A last guard: what reaches the store must be valid by events.md.
        for event in o.events.iter().chain(held.iter().map(|p| &p.event)) {
            checked(event).map_err(|e| format!("gives an invalid event: {e}"))?;
        }
        out.append(&mut o.events);
        self.pending.extend(held);
        self.bound();
        Ok(())
    }

    /// Refuses rows whose fields cannot make valid events, before any state moves.
    fn check(&self, row: &Row, call: bool, agent: bool) -> Result<(), String> {
        use crate::event::{MAX_ID_BYTES, MAX_TEXT_BYTES};
        if call && self.naming.call(&row.callid).len() > MAX_ID_BYTES {
            return Err(format!("callid is longer than {MAX_ID_BYTES} bytes"));
        }
        if row.queue.len() > MAX_TEXT_BYTES || row.agent.len() > MAX_TEXT_BYTES {
            return Err(format!(
                "queue or agent is longer than {MAX_TEXT_BYTES} bytes"
            ));
        }
        if call && row.event == "ENTERQUEUE" && named(&row.queue).is_none() {
            return Err("ENTERQUEUE names no queue".to_owned());
        }
        // The data fields that become event text (caller id, DID, key
        // pressed): refused here, or a later check would fail after the
        // call's state (a held exit) had already moved.
        let copied = match call.then(|| call_row(&row.event)).flatten() {
            Some(CallRow::Enter) => row.data(1),
            Some(CallRow::Did | CallRow::ExitKey) => row.data(0),
            _ => "",
        };
        if copied.len() > MAX_TEXT_BYTES {
            return Err(format!(
                "{} data is longer than {MAX_TEXT_BYTES} bytes",
                row.event
            ));
        }
        let needs_agent = agent
            || (call
                && matches!(
                    call_row(&row.event),
                    Some(CallRow::Ring | CallRow::Dump | CallRow::Connect)
                ));
        if needs_agent && named(&row.agent).is_none() {
            return Err(format!("{} names no agent", row.event));
        }
        Ok(())
    }

    fn call_events(
        (calls, pending): (&mut HashMap<String, CallState>, &mut Vec<Pending>),
        continue_after: SignedDuration,
        (row, agent): (&Row, &str),
        kind: CallRow,
        o: &mut Out<'_>,
    ) -> Option<Pending> {
        let at = row.at;
        let previous = calls.get(&row.callid).map(|c| c.latest);
        let first = previous.is_none();
        // Another row of the call at most `continue_after` after an exit
        // (by the rows' times) continues the call: the exit's `ended` goes.
        pending.retain(|p| {
            !(p.waits == Waits::Call(row.callid.clone()) && p.since <= at && at <= p.until)
        });
        calls.insert(
            row.callid.clone(),
            CallState {
                latest: previous.map_or(at, |l| l.max(at)),
            },
        );
        let agent = || agent.to_owned();
        let queue = named(&row.queue).map(str::to_owned);
        let mut exit: Option<EndedBy> = None;
        let mut ended: Option<EndedBy> = None;
        match kind {
            CallRow::Enter => {
                if first {
                    o.push(slot::CALL_STARTED, started(named(row.data(1)), None));
                }
                let queue = queue.unwrap_or_default();
                o.push(slot::QUEUED, EventKind::Queued { queue });
            }
            CallRow::Ring => {
                let ring = SignedDuration::from_millis(number(row.data(0)));
                let offered = EventKind::Offered {
                    agent: agent(),
                    queue,
                };
                o.push_at(slot::OFFERED, at - ring, offered);
                o.push(slot::DECLINED, EventKind::Declined { agent: agent() });
            }
            CallRow::Dump => o.push(slot::DECLINED, EventKind::Declined { agent: agent() }),
            CallRow::Connect => {
                if !row.data(2).is_empty() {
                    let ring = SignedDuration::from_secs(number(row.data(2)));
                    let offered = EventKind::Offered {
                        agent: agent(),
                        queue,
                    };
                    o.push_at(slot::OFFERED, at - ring, offered);
                }
                o.push(slot::ANSWERED, EventKind::Answered { agent: agent() });
            }
            CallRow::Complete(by) => ended = Some(by),
            CallRow::Handed => ended = Some(EndedBy::Agent),
            CallRow::Abandon => ended = Some(EndedBy::Caller),
            CallRow::ExitKey => {
                let digits = Some(row.data(0).to_owned()).filter(|d| !d.is_empty());
                o.push(slot::IVR_INPUT, EventKind::IvrInput { digits });
                exit = Some(EndedBy::Caller);
            }
            CallRow::ExitTimeout => {
                o.push(slot::TIMED_OUT, EventKind::TimedOut { queue });
                exit = Some(EndedBy::System);
            }
            CallRow::Turned => {
                if first {
                    o.push(slot::CALL_STARTED, started(None, None));
                }
                o.push(slot::CLOSED, EventKind::Closed);
                exit = Some(EndedBy::System);
            }
            CallRow::Did => o.push(slot::CALL_STARTED, started(None, named(row.data(0)))),
        }
        if let Some(by) = ended {
            o.push(slot::ENDED, EventKind::Ended { by });
            calls.remove(&row.callid);
        }
        let by = exit?;
        match previous {
            // A row read before this exit but later by the rows' times
            // already continues the call.
            Some(latest) if latest > at && latest <= at + continue_after => None,
            _ => Some(Pending {
                waits: Waits::Call(row.callid.clone()),
                since: at,
                until: at + continue_after,
                event: o.make(slot::ENDED, at, EventKind::Ended { by }),
            }),
        }
    }
}

impl Mapper {
    #[allow(clippy::too_many_arguments)]
    fn agent_events(
        agents: &mut BTreeMap<String, AgentState>,
        pending: &mut Vec<Pending>,
        settings: &MapSettings,
        row: &Row,
        agent: &str,
        kind: AgentRow,
        o: &mut Out<'_>,
    ) -> Option<Pending> {
        let at = row.at;
        // Any later status of the agent before its wrap-up is over replaces it.
        let waits = Waits::Agent(agent.to_owned());
        pending.retain(|p| !(p.waits == waits && p.since <= at && at < p.until));
        let state = agents
            .entry(agent.to_owned())
            .or_insert_with(|| AgentState {
                status: AgentStatus::Offline.as_str().to_owned(),
                queues: Vec::new(),
                reason: None,
            });
        let queue = named(&row.queue);
        let mut queues_changed = false;
        let wrap_up = matches!(kind, AgentRow::Done)
            .then_some(settings.wrap_up)
            .flatten();
        let (status, reason) = match kind {
            AgentRow::Join => {
                if let Some(q) = queue
                    && !state.queues.iter().any(|s| s == q)
                    && state.queues.len() < MAX_AGENT_QUEUES
                {
                    state.queues.push(q.to_owned());
                }
                queues_changed = true;
                (AgentStatus::Available, None)
            }
            AgentRow::Leave => {
                state.queues.retain(|s| Some(s.as_str()) != queue);
                queues_changed = true;
                match state.queues.is_empty() {
                    true => (AgentStatus::Offline, None),
                    false => (status_named(&state.status), state.reason.clone()),
                }
            }
            AgentRow::Logoff => (AgentStatus::Offline, None),
            AgentRow::Pause => (AgentStatus::Away, reason_of(row.data(0))),
            AgentRow::Unpause => (AgentStatus::Available, None),
            AgentRow::Connect => (AgentStatus::Busy, None),
            AgentRow::Done if wrap_up.is_some() => (AgentStatus::WrapUp, None),
            AgentRow::Done => (AgentStatus::Available, None),
        };
        state.status = status.as_str().to_owned();
        state.reason.clone_from(&reason);
        let queues = queues_changed.then(|| state.queues.clone());
        o.push(
            slot::AGENT_STATUS,
            EventKind::AgentStatus {
                agent: agent.to_owned(),
                status,
                queues,
                reason,
            },
        );
        let wrap_up = wrap_up?;
        Some(Pending {
            waits,
            since: at,
            until: at + wrap_up,
            event: o.make(
                slot::WRAP_UP_DONE,
                at + wrap_up,
                EventKind::AgentStatus {
                    agent: agent.to_owned(),
                    status: AgentStatus::Available,
                    queues: None,
                    reason: None,
                },
            ),
        })
    }

    /// Lets go of the held events whose time to be cancelled is over by
    /// `now` (the machine's clock, once the file has been read to its end).
    pub fn release_due(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        self.release(out, |p| p.until <= now);
    }

    /// Lets go of every held event: the input is over (offline, or a test).
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.release(out, |_| true);
    }

    /// Whether events are held back.
    pub fn holding(&self) -> bool {
        !self.pending.is_empty()
    }

    fn release(&mut self, out: &mut Vec<Event>, due: impl Fn(&Pending) -> bool) {
        if !self.pending.iter().any(&due) {
            return;
        }
        let (released, kept): (Vec<Pending>, Vec<Pending>) =
            std::mem::take(&mut self.pending).into_iter().partition(due);
        self.pending = kept;
        for p in released {
            match &p.waits {
                Waits::Call(callid) => {
                    if !self.pending.iter().any(|q| q.waits == p.waits) {
                        self.calls.remove(callid);
                    }
                }
                Waits::Agent(agent) => {
                    if let Some(state) = self.agents.get_mut(agent) {
                        state.status = AgentStatus::Available.as_str().to_owned();
                        state.reason = None;
                    }
                }
            }
            out.push(p.event);
        }
    }

    /// Keeps memory bounded when a PBX loses exit rows or has many agents.
    fn bound(&mut self) {
        if self.calls.len() > MAX_CALLS {
            let mut by_age: Vec<(Timestamp, String)> = self
                .calls
                .iter()
                .map(|(id, c)| (c.latest, id.clone()))
                .collect();
            by_age.sort();
            for (_, id) in by_age.into_iter().take(MAX_CALLS / 10) {
                if !self
                    .pending
                    .iter()
                    .any(|p| p.waits == Waits::Call(id.clone()))
                {
                    self.calls.remove(&id);
                }
            }
        }
        while self.agents.len() > MAX_AGENTS {
            self.agents.pop_first();
        }
    }

    /// The state to keep in the checkpoint: calls under way, agents, held events.
    pub fn save(&self) -> Value {
        let saved = Saved {
            calls: self
                .calls
                .iter()
                .map(|(id, c)| (id.clone(), c.latest))
                .collect(),
            agents: self.agents.clone(),
            pending: self
                .pending
                .iter()
                .map(|p| SavedPending {
                    waits: p.waits.clone(),
                    since: p.since,
                    until: p.until,
                    event: serde_json::to_value(&p.event).unwrap_or(Value::Null),
                })
                .collect(),
        };
        serde_json::to_value(saved).unwrap_or(Value::Null)
    }

    /// Takes back the state [`Mapper::save`] gave; a damaged one is ignored
    /// (the ids drop whatever is read again).
    pub fn restore(&mut self, value: &Value) {
        let Ok(saved) = Saved::deserialize(value) else {
            tracing::warn!("queue_log: the saved mapping state is damaged; starting afresh");
            return;
        };
        self.calls = saved
            .calls
            .into_iter()
            .map(|(id, latest)| (id, CallState { latest }))
            .collect();
        self.agents = saved.agents;
        self.pending = saved
            .pending
            .into_iter()
            .filter_map(|p| {
                Some(Pending {
                    waits: p.waits,
                    since: p.since,
                    until: p.until,
                    event: Event::from_json(&p.event).ok()?,
                })
            })
            .collect();
    }
}

/// A `call_started` of an inbound voice call.
fn started(from: Option<&str>, to: Option<&str>) -> EventKind {
    EventKind::CallStarted {
        direction: crate::event::Direction::Inbound,
        channel: "voice".to_owned(),
        from: from.map(str::to_owned),
        to: to.map(str::to_owned),
        line: None,
        dialer: false,
    }
}

/// A whole number of a data field; anything else counts as 0.
fn number(field: &str) -> i64 {
    field
        .trim()
        .parse::<i64>()
        .unwrap_or(0)
        .clamp(0, 86_400_000)
}

/// A pause reason, cut to what events.md allows.
fn reason_of(field: &str) -> Option<String> {
    Some(cut(field.trim(), MAX_REASON_BYTES).to_owned()).filter(|r| !r.is_empty())
}

fn status_named(name: &str) -> AgentStatus {
    AgentStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .unwrap_or(AgentStatus::Available)
}

/// Maps a whole file offline: Asterisk's pipe rows, or a database export
/// (recognised by its header line). Held exits are let go at the end, so
/// each looks ahead through the whole file.
pub fn map_file(bytes: &[u8], naming: &Naming, settings: MapSettings) -> Mapped {
    let mut mapper = Mapper::new(naming.clone(), settings);
    let mut mapped = Mapped::default();
    let mut header: Option<CsvHeader> = None;
    let mut seen_first = false;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if !seen_first {
            seen_first = true;
            header = CsvHeader::parse(line);
            if header.is_some() {
                continue;
            }
        }
        let row = match &header {
            Some(header) => header.row(line),
            None => parse_pipe(line),
        };
        if let Err(why) = row.and_then(|row| mapper.map(&row, &mut mapped.events)) {
            mapped.skipped.push(Skipped {
                position: format!("line {}", i + 1),
                why,
            });
        }
    }
    mapper.finish(&mut mapped.events);
    mapped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event in brief: `SECS CALL TYPE {fields}` (the id left out).
    fn brief(e: &Event) -> String {
        let mut v = serde_json::to_value(e).unwrap();
        let o = v.as_object_mut().unwrap();
        for k in ["id", "call", "at", "type"] {
            o.remove(k);
        }
        for (k, default) in [("direction", "inbound"), ("channel", "voice")] {
            if o.get(k).and_then(Value::as_str) == Some(default) {
                o.remove(k);
            }
        }
        if o.get("dialer") == Some(&Value::Bool(false)) {
            o.remove("dialer");
        }
        let secs = e.at.as_millisecond() as f64 / 1000.0;
        let call = e.call.as_deref().unwrap_or("-");
        let fields = if o.is_empty() {
            String::new()
        } else {
            format!(" {v}")
        };
        format!("{secs} {call} {}{fields}", e.kind.type_name())
    }

    fn settings(release: Release, wrap_up: Option<i64>) -> MapSettings {
        MapSettings {
            continue_after: SignedDuration::from_secs(10),
            wrap_up: wrap_up.map(SignedDuration::from_secs),
            release,
        }
    }

    /// Maps rows (one a line), then lets go of what is held.
    fn map_rows(rows: &str, settings: MapSettings) -> (Vec<String>, Vec<String>) {
        let mapped = map_file(rows.as_bytes(), &Naming::offline("t"), settings);
        let skipped = mapped.skipped.iter().map(|s| s.why.clone()).collect();
        (mapped.events.iter().map(brief).collect(), skipped)
    }

    fn events(rows: &str) -> Vec<String> {
        let (events, skipped) = map_rows(rows, MapSettings::default());
        assert!(skipped.is_empty(), "{skipped:?}");
        events
    }

    #[test]
    fn every_call_row_of_the_table() {
        let cases: &[(&str, &[&str])] = &[
            (
                "100|c|q|NONE|ENTERQUEUE||5550100|1\n101|c|q2|NONE|ENTERQUEUE||5550100|1",
                &[
                    r#"100 c call_started {"from":"5550100"}"#,
                    r#"100 c queued {"queue":"q"}"#,
                    r#"101 c queued {"queue":"q2"}"#,
                ],
            ),
            (
                "100|c|q|Agent/1|RINGNOANSWER|2500",
                &[
                    r#"97.5 c offered {"agent":"Agent/1","queue":"q"}"#,
                    r#"100 c declined {"agent":"Agent/1"}"#,
                ],
            ),
            (
                "100|c|NONE|Agent/1|RINGCANCELED|1000",
                &[
                    r#"99 c offered {"agent":"Agent/1"}"#,
                    r#"100 c declined {"agent":"Agent/1"}"#,
                ],
            ),
            (
                "100|c|q|Agent/1|AGENTDUMP",
                &[r#"100 c declined {"agent":"Agent/1"}"#],
            ),
            (
                "100|c|q|Agent/1|SYSCOMPAT",
                &[r#"100 c declined {"agent":"Agent/1"}"#],
            ),
            (
                "100.25|c|q|Agent/1|CONNECT|30|1.5|6",
                &[
                    r#"94.25 c offered {"agent":"Agent/1","queue":"q"}"#,
                    r#"100.25 c answered {"agent":"Agent/1"}"#,
                    r#"100.25 - agent_status {"agent":"Agent/1","status":"busy"}"#,
                ],
            ),
            (
                "100|c|q|Agent/1|CONNECT|30",
                &[
                    r#"100 c answered {"agent":"Agent/1"}"#,
                    r#"100 - agent_status {"agent":"Agent/1","status":"busy"}"#,
                ],
            ),
            (
                "100|c|q|Agent/1|COMPLETEAGENT|5|60|1",
                &[
                    r#"100 c ended {"by":"agent"}"#,
                    r#"100 - agent_status {"agent":"Agent/1","status":"available"}"#,
                ],
            ),
            (
                "100|c|q|Agent/1|COMPLETECALLER|5|60|1",
                &[
                    r#"100 c ended {"by":"caller"}"#,
                    r#"100 - agent_status {"agent":"Agent/1","status":"available"}"#,
                ],
            ),
            (
                "100|c|q|NONE|ABANDON|1|1|45",
                &[r#"100 c ended {"by":"caller"}"#],
            ),
            (
                "100|c|q|NONE|EXITWITHKEY|5|1",
                &[
                    r#"100 c ivr_input {"digits":"5"}"#,
                    r#"100 c ended {"by":"caller"}"#,
                ],
            ),
            (
                "100|c|q|NONE|EXITWITHTIMEOUT|1|2|300",
                &[
                    r#"100 c timed_out {"queue":"q"}"#,
                    r#"100 c ended {"by":"system"}"#,
                ],
            ),
            (
                "100|c|q|NONE|EXITEMPTY|1|2|3",
                &[
                    r#"100 c timed_out {"queue":"q"}"#,
                    r#"100 c ended {"by":"system"}"#,
                ],
            ),
            (
                "100|c|NONE|NONE|DID|5550199",
                &[r#"100 c call_started {"to":"5550199"}"#],
            ),
        ];
        for (rows, want) in cases {
            assert_eq!(events(rows), *want, "{rows}");
        }
        for transfer in ["TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"] {
            let rows = format!("100|c|q|Agent/1|{transfer}|1142|ctx|5|60");
            assert_eq!(
                events(&rows),
                [
                    r#"100 c ended {"by":"agent"}"#,
                    r#"100 - agent_status {"agent":"Agent/1","status":"available"}"#
                ],
                "{transfer}: ended by the agent, not transferred"
            );
        }
        for turned in ["JOINEMPTY", "JOINUNAVAIL", "FULL", "CLOSED"] {
            let rows = format!("100|c|q|NONE|{turned}|1|1|0");
            assert_eq!(
                events(&rows),
                [
                    "100 c call_started",
                    "100 c closed",
                    r#"100 c ended {"by":"system"}"#
                ],
                "{turned}"
            );
        }
    }

    #[test]
    fn every_agent_row_of_the_table() {
        let rows = "\
            100|NONE|q1|Agent/1|ADDMEMBER\n\
            101|NONE|q2|Agent/1|AGENTLOGIN\n\
            102|NONE|q1|Agent/1|ADDMEMBER\n\
            103|NONE|NONE|Agent/1|PAUSE|Lunch\n\
            104|NONE|q1|Agent/1|REMOVEMEMBER\n\
            105|NONE|NONE|Agent/1|UNPAUSE\n\
            106|NONE|q2|Agent/1|REMOVEMEMBER\n\
            107|NONE|NONE|Agent/2|AGENTCALLBACKLOGIN|hint:2@default\n\
            108|NONE|NONE|Agent/2|PAUSEALL\n\
            109|NONE|NONE|Agent/2|UNPAUSEALL\n\
            110|NONE|NONE|Agent/2|AGENTCALLBACKLOGOFF|hint|25\n\
            111|NONE|NONE|Agent/3|AGENTLOGOFF\n\
            112|NONE|q|Agent/4|REMOVEMEMBER\n";
        let status = |secs, agent, status: &str, rest: &str| {
            format!(r#"{secs} - agent_status {{"agent":"{agent}"{rest},"status":"{status}"}}"#)
        };
        assert_eq!(
            events(rows),
            [
                status(100, "Agent/1", "available", r#","queues":["q1"]"#),
                status(101, "Agent/1", "available", r#","queues":["q1","q2"]"#),
                status(102, "Agent/1", "available", r#","queues":["q1","q2"]"#),
                status(103, "Agent/1", "away", r#","reason":"Lunch""#),
                status(
                    104,
                    "Agent/1",
                    "away",
                    r#","queues":["q2"],"reason":"Lunch""#
                ),
                status(105, "Agent/1", "available", ""),
                status(106, "Agent/1", "offline", r#","queues":[]"#),
                status(107, "Agent/2", "available", r#","queues":[]"#),
                status(108, "Agent/2", "away", ""),
                status(109, "Agent/2", "available", ""),
                status(110, "Agent/2", "offline", ""),
                status(111, "Agent/3", "offline", ""),
                status(112, "Agent/4", "offline", r#","queues":[]"#),
            ]
        );
    }

    #[test]
    fn wrap_up_ends_after_its_time_unless_the_agent_moves_first() {
        let rows = "\
            100|c1|q|Agent/1|COMPLETEAGENT|5|60|1\n\
            100|c2|q|Agent/2|COMPLETECALLER|5|60|1\n\
            110|NONE|NONE|Agent/2|PAUSE|Break\n";
        let (events, _) = map_rows(rows, settings(Release::AtEnd, Some(30)));
        assert_eq!(
            events,
            [
                r#"100 c1 ended {"by":"agent"}"#,
                r#"100 - agent_status {"agent":"Agent/1","status":"wrap_up"}"#,
                r#"100 c2 ended {"by":"caller"}"#,
                r#"100 - agent_status {"agent":"Agent/2","status":"wrap_up"}"#,
                r#"110 - agent_status {"agent":"Agent/2","reason":"Break","status":"away"}"#,
                r#"130 - agent_status {"agent":"Agent/1","status":"available"}"#,
            ]
        );
    }

    #[test]
    fn a_call_continues_by_the_rows_own_times_whatever_their_order() {
        // Sent on to a second queue 4 s after timing out of the first.
        let continued = "\
            100|c|q1|NONE|ENTERQUEUE||555|1\n\
            160|c|q1|NONE|EXITWITHTIMEOUT|1|1|60\n\
            164|c|q2|NONE|ENTERQUEUE||555|1\n\
            170|c|q2|NONE|ABANDON|1|1|6\n";
        let ends = |events: &[String]| events.iter().filter(|e| e.contains("ended")).count();
        let got = events(continued);
        assert_eq!(ends(&got), 1, "{got:?}");
        assert!(got.contains(&r#"160 c timed_out {"queue":"q1"}"#.to_owned()));
        assert!(got.contains(&r#"170 c ended {"by":"caller"}"#.to_owned()));
        // The same rows with the second queue's entry written first.
        let reordered = "\
            100|c|q1|NONE|ENTERQUEUE||555|1\n\
            164|c|q2|NONE|ENTERQUEUE||555|1\n\
            160|c|q1|NONE|EXITWITHTIMEOUT|1|1|60\n\
            170|c|q2|NONE|ABANDON|1|1|6\n";
        assert_eq!(ends(&events(reordered)), 1);
        // Too late to continue: the exit ends the call, the next row is late.
        let late = continued.replace("164|", "175|").replace("170|", "180|");
        let got = events(&late);
        assert!(
            got.contains(&r#"160 c ended {"by":"system"}"#.to_owned()),
            "{got:?}"
        );
        // A row of the same second written before the exit does not continue it.
        let before = "\
            100|c|q|NONE|ENTERQUEUE||555|1\n\
            130|c|q|Agent/1|RINGCANCELED|3000\n\
            130|c|q|NONE|EXITWITHKEY|1|1\n";
        assert!(events(before).contains(&r#"130 c ended {"by":"caller"}"#.to_owned()));
        // Nor does an earlier row written after it.
        let older = "\
            100|c|q|NONE|ENTERQUEUE||555|1\n\
            130|c|q|NONE|EXITWITHKEY|1|1\n\
            129|c|q|Agent/1|RINGNOANSWER|3000\n";
        assert!(events(older).contains(&r#"130 c ended {"by":"caller"}"#.to_owned()));
    }

    #[test]
    fn held_exits_are_let_go_by_later_rows_or_the_clock() {
        let naming = Naming::offline("t");
        let row = |line: &str| super::super::row::parse_pipe(line.as_bytes()).unwrap();
        let mut m = Mapper::new(naming.clone(), settings(Release::ByRows, None));
        let mut out = Vec::new();
        m.map(&row("100|c|q|NONE|EXITWITHTIMEOUT|1|1|60"), &mut out)
            .unwrap();
        assert_eq!(out.len(), 1, "timed_out at once, the ended held");
        m.map(&row("110|d|q|NONE|ENTERQUEUE||5|1"), &mut out)
            .unwrap();
        assert_eq!(out.len(), 3, "10 s past the exit is not more than 10 s");
        // The held exit survives a restart through the saved state.
        let mut restarted = Mapper::new(naming.clone(), settings(Release::ByRows, None));
        restarted.restore(&serde_json::from_str(&m.save().to_string()).unwrap());
        m.map(&row("110.5|d|q|NONE|ABANDON|1|1|0"), &mut out)
            .unwrap();
        let ended = &out[3];
        assert_eq!(
            brief(ended),
            r#"100 c ended {"by":"system"}"#,
            "let go first"
        );
        let mut again = Vec::new();
        restarted
            .map(&row("110.5|d|q|NONE|ABANDON|1|1|0"), &mut again)
            .unwrap();
        assert_eq!(again.first(), Some(ended), "same ended, same id");
        // By the machine's clock.
        let mut m = Mapper::new(naming, settings(Release::AtEnd, None));
        let mut out = Vec::new();
        m.map(&row("100|c|q|NONE|EXITWITHKEY|3"), &mut out).unwrap();
        m.release_due("1970-01-01T00:01:49Z".parse().unwrap(), &mut out);
        assert!(m.holding());
        m.release_due("1970-01-01T00:01:50Z".parse().unwrap(), &mut out);
        assert!(!m.holding());
        assert_eq!(brief(&out[1]), r#"100 c ended {"by":"caller"}"#);
    }

    #[test]
    fn rows_without_a_call_and_rows_that_cannot_be_used() {
        let rows = "\
            100|NONE|NONE|NONE|QUEUESTART\n\
            101|MANAGER|q|Agent/1|ADDMEMBER\n\
            102|NONE|q|Agent/1|CONNECT|1|2|3\n\
            103|REALTIME|q|NONE|ENTERQUEUE||5|1\n\
            104|c|NONE|Agent/1|OUTDIAL|5551\n\
            105|c|q|NONE|INFO|x\n\
            106|c|NONE|NONE|ENTERQUEUE||5|1\n\
            107|c|q|NONE|RINGNOANSWER|1000\n\
            108|c|q|Agent/1|PAUSE\n\
            garbage\n\
            x|c|q|NONE|ABANDON\n";
        let (events, skipped) = map_rows(rows, MapSettings::default());
        assert_eq!(
            events,
            [
                r#"101 - agent_status {"agent":"Agent/1","queues":["q"],"status":"available"}"#,
                r#"102 - agent_status {"agent":"Agent/1","status":"busy"}"#,
                r#"108 - agent_status {"agent":"Agent/1","status":"away"}"#,
            ]
        );
        assert_eq!(skipped.len(), 6, "{skipped:?}");
    }

    #[test]
    fn agents_are_named_by_the_source_and_kept_under_that_name() {
        let mut naming = Naming::offline("t");
        naming.prefix = true;
        naming.agents.insert("Local/1@agents".into(), "Amy".into());
        naming.agents.insert("Agent/1".into(), "Amy".into());
        let rows = "\
            100|NONE|q|Local/1@agents|ADDMEMBER\n\
            101|c|q|Agent/1|CONNECT|1|x|1\n\
            102|NONE|NONE|Agent/1|REMOVEMEMBER\n";
        let mapped = map_file(rows.as_bytes(), &naming, MapSettings::default());
        let got: Vec<String> = mapped.events.iter().map(brief).collect();
        assert_eq!(
            got,
            [
                r#"100 - agent_status {"agent":"Amy","queues":["q"],"status":"available"}"#,
                r#"100 t:c offered {"agent":"Amy","queue":"q"}"#,
                r#"101 t:c answered {"agent":"Amy"}"#,
                r#"101 - agent_status {"agent":"Amy","status":"busy"}"#,
                r#"102 - agent_status {"agent":"Amy","queues":["q"],"status":"busy"}"#,
            ],
            "one agent under two vendor names; REMOVEMEMBER of no queue keeps the status"
        );
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let rows = "100|c|q|NONE|ENTERQUEUE||555|1\n101|c|q|Agent/1|RINGNOANSWER|1000\n";
        let a = map_file(
            rows.as_bytes(),
            &Naming::offline("t"),
            MapSettings::default(),
        );
        let b = map_file(
            rows.as_bytes(),
            &Naming::offline("t"),
            MapSettings::default(),
        );
        assert_eq!(a.events, b.events);
        let mut ids: Vec<_> = a.events.iter().map(|e| e.id.clone().unwrap()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4);
        // The queued of the second ENTERQUEUE keeps its id without the call_started.
        let second = "99|c|q|NONE|DID|1\n100|c|q|NONE|ENTERQUEUE||555|1\n";
        let c = map_file(
            second.as_bytes(),
            &Naming::offline("t"),
            MapSettings::default(),
        );
        assert_eq!(c.events[1], a.events[1]);
    }

    #[test]
    fn an_over_long_row_leaves_the_held_exit_of_its_call_alone() {
        // Before: the DID row moved the call's state (the held exit was
        // taken as continued) and only then failed its check, so the call
        // lost its `ended` and would have finished as expired.
        let long = "5".repeat(2000);
        let rows = format!(
            "100|c|q|NONE|ENTERQUEUE||5550100|1\n110|c|q|NONE|EXITWITHTIMEOUT|1|1|10\n112|c|q|NONE|DID|{long}"
        );
        let (events, skipped) = map_rows(&rows, MapSettings::default());
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("longer than"), "{skipped:?}");
        assert_eq!(
            events.last().map(String::as_str),
            Some(r#"110 c ended {"by":"system"}"#)
        );
    }

    #[test]
    fn hostile_input_is_skipped_never_fatal() {
        let mut junk: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        junk.extend_from_slice(b"\n100|c|q|NONE|ENTERQUEUE||555|1\n");
        junk.extend(std::iter::repeat_n(b'|', 1 << 20));
        junk.extend_from_slice(b"\n100|");
        junk.extend(std::iter::repeat_n(b'c', 200));
        junk.extend_from_slice(b"|q|NONE|ABANDON\n100|c|q|NONE|PAUSE|");
        junk.extend(std::iter::repeat_n("é", 200).collect::<String>().bytes());
        junk.extend_from_slice(b"\n");
        let mapped = map_file(&junk, &Naming::offline("t"), MapSettings::default());
        assert!(mapped.skipped.len() >= 3, "{:?}", mapped.skipped);
        assert!(
            mapped.events.iter().all(|e| checked(e).is_ok()),
            "every event given is valid"
        );
    }
}
