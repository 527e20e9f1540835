//! AMI event blocks → events (spec/sources.md, "Asterisk Manager Interface"):
//! pure, no I/O and no clock. The live client and the offline reader both
//! feed blocks through one [`Mapper`], which keeps what the table needs
//! across blocks: each caller channel's queue state and each agent's queues.

use std::collections::{BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};

use super::wire::Block;
use crate::event::{AgentStatus, Direction, EndedBy, Event, EventKind, MAX_AGENT_QUEUES};
use crate::event::{MAX_REASON_BYTES, MAX_TEXT_BYTES};
use crate::source::text::{cut, parse_epoch};
use crate::source::{Naming, checked};

/// Offline, the first block without a `Timestamp` is stamped at this time.
pub const OFFLINE_START: Timestamp = Timestamp::constant(1_767_225_600, 0);
/// Offline, a block without a `Timestamp` comes this long after the one before.
const OFFLINE_STEP: SignedDuration = SignedDuration::from_millis(1);
/// Calls followed at once; past this, finished and the oldest are forgotten
/// (a caller whose `Hangup` we missed must not hold memory for ever).
const MAX_CALLS: usize = 50_000;
/// Agents followed at once.
const MAX_AGENTS: usize = 10_000;
/// The headers that name the agent of an agent event, first present wins:
/// Asterisk 12+ writes `MemberName`/`Interface`, 11 `AgentName`/`Member`/`Location`.
const AGENT_KEYS: [&str; 5] = ["MemberName", "Interface", "AgentName", "Member", "Location"];

/// Where a block's time comes from when it has no `Timestamp` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Live: the time it was received.
    Received(Timestamp),
    /// Offline: 1 ms after the event block before it.
    Offline,
}

/// What the table needs to remember of one caller channel.
#[derive(Debug, Clone)]
struct CallState {
    /// Known to have joined a queue.
    queued: bool,
    /// An `ended` was given.
    finished: bool,
    /// Answered, completed or abandoned since the last join.
    resolved: bool,
    /// The last leave since the last join: its time and queue.
    left: Option<(Timestamp, Option<String>)>,
    /// `QUEUESTATUS` as last set since the last join.
    queue_status: Option<String>,
    /// `timed_out` was given since the last join.
    timed_out: bool,
    /// Its latest block's time, to forget the oldest first.
    last_at: Timestamp,
}

impl CallState {
    fn new(at: Timestamp) -> CallState {
        CallState {
            queued: false,
            finished: false,
            resolved: false,
            left: None,
            queue_status: None,
            timed_out: false,
            last_at: at,
        }
    }
}

/// An agent's queues and latest status, for `QueueMemberRemoved`.
#[derive(Debug, Clone, Default)]
struct AgentState {
    queues: BTreeSet<String>,
    /// Whether any event told us of its queues (else `queues` is not sent).
    queues_known: bool,
    status: Option<AgentStatus>,
}

/// Maps event blocks to events, keeping per-call and per-agent state.
#[derive(Debug)]
pub struct Mapper {
    naming: Naming,
    calls: HashMap<String, CallState>,
    agents: HashMap<String, AgentState>,
    /// The time given to the latest event block.
    previous: Option<Timestamp>,
}

/// The events of one block, with ids from its dedup key.
struct Emit<'a> {
    naming: &'a Naming,
    key: Option<String>,
    events: Vec<Event>,
}

impl Emit<'_> {
    fn push(&mut self, call: Option<&str>, at: Timestamp, kind: EventKind) {
        // The slot is the event's type, not its place in the block: a block
        // read again gives each event the same id whatever the call's state.
        let slot = usize::from(kind.rank());
        let id = self
            .key
            .as_ref()
            .map(|key| self.naming.event_id(key.as_bytes(), slot));
        self.events.push(Event {
            id,
            call: call.map(|c| self.naming.call(c)),
            at,
            kind,
        });
    }
}

impl Mapper {
    /// A mapper writing ids and names as `naming` says.
    pub fn new(naming: Naming) -> Mapper {
        Mapper {
            naming,
            calls: HashMap::new(),
            agents: HashMap::new(),
            previous: None,
        }
    }

    /// The time given to the latest event block (a feed clock's "now").
    pub fn latest(&self) -> Option<Timestamp> {
        self.previous
    }

    /// The events of one block. Blocks without `Event` (answers to our
    /// actions) give none; `Err` says why an event block could not be read.
    pub fn map(&mut self, block: &Block, arrival: Arrival) -> Result<Vec<Event>, String> {
        let Some(name) = block.event() else {
            return Ok(Vec::new());
        };
        let at = self.stamp(block, arrival);
        let mut emit = Emit {
            naming: &self.naming,
            key: dedup_key(block, name),
            events: Vec::new(),
        };
        let mut state = State {
            calls: &mut self.calls,
            agents: &mut self.agents,
            naming: &self.naming,
        };
        state.apply(name, block, at, &mut emit)?;
        let events = emit.events;
        for event in &events {
            checked(event).map_err(|e| format!("{name}: {e}"))?;
        }
        self.bound();
        Ok(events)
    }

    /// The block's time: its `Timestamp`, else when it arrived.
    fn stamp(&mut self, block: &Block, arrival: Arrival) -> Timestamp {
        let at = timestamp(block).unwrap_or_else(|| match arrival {
            Arrival::Received(at) => at,
            Arrival::Offline => self.previous.map_or(OFFLINE_START, |p| {
                p.saturating_add(OFFLINE_STEP).unwrap_or(p)
            }),
        });
        self.previous = Some(at);
        at
    }

    /// Keeps the state within bounds: finished calls go first, then the
    /// ones heard from longest ago.
    fn bound(&mut self) {
        if self.calls.len() > MAX_CALLS {
            self.calls.retain(|_, c| !c.finished);
        }
        if self.calls.len() > MAX_CALLS {
            let mut times: Vec<Timestamp> = self.calls.values().map(|c| c.last_at).collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            self.calls.retain(|_, c| c.last_at > cut);
        }
        if self.agents.len() > MAX_AGENTS {
            self.agents.clear();
        }
    }
}

/// The mutable state one block works on.
struct State<'a> {
    calls: &'a mut HashMap<String, CallState>,
    agents: &'a mut HashMap<String, AgentState>,
    naming: &'a Naming,
}

impl State<'_> {
    fn apply(
        &mut self,
        name: &str,
        b: &Block,
        at: Timestamp,
        out: &mut Emit,
    ) -> Result<(), String> {
        match name {
            "QueueCallerJoin" | "Join" => self.join(b, at, out),
            "AgentCalled" => {
                let (uid, agent) = (uniqueid(b)?, self.agent(b)?);
                let queue = text(b, "Queue");
                self.touch(uid, at);
                out.push(Some(uid), at, EventKind::Offered { agent, queue });
                Ok(())
            }
            "AgentRingNoAnswer" | "AgentDump" => {
                let (uid, agent) = (uniqueid(b)?, self.agent(b)?);
                self.touch(uid, at);
                out.push(Some(uid), at, EventKind::Declined { agent });
                Ok(())
            }
            "AgentConnect" => {
                let (uid, agent) = (uniqueid(b)?, self.agent(b)?);
                self.queued_before(uid, b, at, "HoldTime", out)?;
                let call = self.touch(uid, at);
                call.resolved = true;
                call.left = None;
                out.push(Some(uid), at, EventKind::Answered { agent });
                Ok(())
            }
            "AgentComplete" => {
                let uid = uniqueid(b)?;
                let by = match b.present("Reason") {
                    Some("agent" | "transfer") => EndedBy::Agent,
                    _ => EndedBy::Caller,
                };
                self.end(uid, at, by, out);
                Ok(())
            }
            "QueueCallerAbandon" => {
                let uid = uniqueid(b)?;
                self.queued_before(uid, b, at, "HoldTime", out)?;
                self.end(uid, at, EndedBy::Caller, out);
                Ok(())
            }
            "QueueEntry" => self.entry(b, at, out),
            "QueueCallerLeave" | "Leave" => {
                self.leave(b, at, out);
                Ok(())
            }
            "VarSet" => self.var_set(b, at, out),
            "Hangup" => {
                let Some(uid) = b.present("Uniqueid") else {
                    return Ok(());
                };
                if let Some(call) = self.calls.remove(uid)
                    && !call.finished
                {
                    out.push(
                        Some(uid),
                        at,
                        EventKind::Ended {
                            by: EndedBy::Caller,
                        },
                    );
                }
                Ok(())
            }
            "QueueMemberAdded" => {
                let agent = self.agent(b)?;
                let queue = text(b, "Queue");
                let state = self.agents.entry(agent.clone()).or_default();
                add_queue(state, queue);
                self.status(agent, AgentStatus::Available, None, at, out);
                Ok(())
            }
            "QueueMemberRemoved" => {
                let agent = self.agent(b)?;
                let state = self.agents.entry(agent.clone()).or_default();
                if let Some(queue) = b.present("Queue") {
                    state.queues.remove(queue);
                    state.queues_known = true;
                }
                match (state.queues.is_empty(), state.status) {
                    (true, _) => self.status(agent, AgentStatus::Offline, None, at, out),
                    // Still a member elsewhere: the same status, fewer queues.
                    (false, Some(status)) => self.status(agent, status, None, at, out),
                    (false, None) => {}
                }
                Ok(())
            }
            // A pause event says paused or not; a member's state says paused,
            // else its device state (which may leave the status unchanged).
            "QueueMemberPause" | "QueueMemberPaused" => {
                self.member(b, Some(AgentStatus::Available), at, out)
            }
            "QueueMemberStatus" | "QueueMember" => self.member(b, device_status(b), at, out),
            _ => Ok(()),
        }
    }

    /// A member's status: `away` with its reason when `Paused: 1`, else
    /// `unpaused` (if any); the block's queue joins the agent's queues.
    fn member(
        &mut self,
        b: &Block,
        unpaused: Option<AgentStatus>,
        at: Timestamp,
        out: &mut Emit,
    ) -> Result<(), String> {
        let agent = self.agent(b)?;
        let state = self.agents.entry(agent.clone()).or_default();
        add_queue(state, text(b, "Queue"));
        if b.present("Paused") == Some("1") {
            self.status(agent, AgentStatus::Away, pause_reason(b), at, out);
        } else if let Some(status) = unpaused {
            self.status(agent, status, None, at, out);
        }
        Ok(())
    }

    /// `QueueCallerJoin`: a new call is started; every join queues it and
    /// starts a new round of the leave/`QUEUESTATUS` rules.
    fn join(&mut self, b: &Block, at: Timestamp, out: &mut Emit) -> Result<(), String> {
        let uid = uniqueid(b)?;
        let queue = required(b, "Queue")?;
        if !self.calls.contains_key(uid) {
            out.push(Some(uid), at, call_started(b));
        }
        let call = self.touch(uid, at);
        call.queued = true;
        call.resolved = false;
        call.left = None;
        call.queue_status = None;
        call.timed_out = false;
        out.push(Some(uid), at, EventKind::Queued { queue });
        Ok(())
    }

    /// `QueueEntry` (an answer to `QueueStatus`): what we missed while away.
    fn entry(&mut self, b: &Block, at: Timestamp, out: &mut Emit) -> Result<(), String> {
        let uid = uniqueid(b)?;
        let queue = required(b, "Queue")?;
        let since = at.saturating_sub(secs(b, "Wait")).unwrap_or(at);
        let known = self.calls.get(uid).map(|c| c.queued);
        if known.is_none() {
            out.push(Some(uid), since, call_started(b));
        }
        if known != Some(true) {
            self.touch(uid, at).queued = true;
            out.push(Some(uid), since, EventKind::Queued { queue });
        }
        Ok(())
    }

    /// `QueueCallerLeave`: left alive; a timeout only once `QUEUESTATUS` says so.
    fn leave(&mut self, b: &Block, at: Timestamp, out: &mut Emit) {
        let Some(uid) = b.present("Uniqueid") else {
            return;
        };
        let Some(call) = self.calls.get_mut(uid) else {
            return;
        };
        call.last_at = at;
        if call.resolved {
            return;
        }
        call.left = Some((at, text(b, "Queue")));
        timeout_if_due(uid, call, out);
    }

    /// `VarSet`: only `QUEUESTATUS` of a caller channel matters.
    fn var_set(&mut self, b: &Block, at: Timestamp, out: &mut Emit) -> Result<(), String> {
        if !b
            .present("Variable")
            .is_some_and(|v| v.eq_ignore_ascii_case("QUEUESTATUS"))
        {
            return Ok(());
        }
        let uid = uniqueid(b)?;
        let value = b.present("Value").unwrap_or_default().to_ascii_uppercase();
        if matches!(value.as_str(), "JOINEMPTY" | "JOINUNAVAIL" | "FULL") {
            if !self.calls.contains_key(uid) {
                out.push(Some(uid), at, call_started(b));
            }
            self.touch(uid, at);
            out.push(Some(uid), at, EventKind::Closed);
            return Ok(());
        }
        if let Some(call) = self.calls.get_mut(uid) {
            call.last_at = at;
            call.queue_status = Some(value);
            timeout_if_due(uid, call, out);
        }
        Ok(())
    }

    /// For a call not yet known as queued, `queued` at `t − HoldTime`: we
    /// joined after it did.
    fn queued_before(
        &mut self,
        uid: &str,
        b: &Block,
        at: Timestamp,
        key: &str,
        out: &mut Emit,
    ) -> Result<(), String> {
        if self.calls.get(uid).is_some_and(|c| c.queued) {
            return Ok(());
        }
        let queue = required(b, "Queue")?;
        let since = at.saturating_sub(secs(b, key)).unwrap_or(at);
        self.touch(uid, at).queued = true;
        out.push(Some(uid), since, EventKind::Queued { queue });
        Ok(())
    }

    fn end(&mut self, uid: &str, at: Timestamp, by: EndedBy, out: &mut Emit) {
        let call = self.touch(uid, at);
        call.finished = true;
        call.resolved = true;
        call.left = None;
        out.push(Some(uid), at, EventKind::Ended { by });
    }

    /// The call's state, created when new.
    fn touch(&mut self, uid: &str, at: Timestamp) -> &mut CallState {
        let call = self
            .calls
            .entry(uid.to_owned())
            .or_insert_with(|| CallState::new(at));
        call.last_at = call.last_at.max(at);
        call
    }

    /// The agent of an agent event, as displayed.
    fn agent(&self, b: &Block) -> Result<String, String> {
        let vendor = AGENT_KEYS
            .iter()
            .find_map(|k| b.present(k))
            .ok_or("no MemberName, Interface, AgentName, Member or Location")?;
        Ok(self.naming.agent(vendor))
    }

    fn status(
        &mut self,
        agent: String,
        status: AgentStatus,
        reason: Option<String>,
        at: Timestamp,
        out: &mut Emit,
    ) {
        let state = self.agents.entry(agent.clone()).or_default();
        state.status = Some(status);
        let queues = state
            .queues_known
            .then(|| state.queues.iter().cloned().collect());
        out.push(
            None,
            at,
            EventKind::AgentStatus {
                agent,
                status,
                queues,
                reason,
            },
        );
    }
}

/// A timeout is due once the call left unresolved and its `QUEUESTATUS`
/// says the queue put it out; given once per join, at the leave's time.
fn timeout_if_due(uid: &str, call: &mut CallState, out: &mut Emit) {
    let timed_out = matches!(
        call.queue_status.as_deref(),
        Some("TIMEOUT" | "LEAVEEMPTY" | "LEAVEUNAVAIL")
    );
    if let (true, false, false, Some((left_at, queue))) =
        (timed_out, call.resolved, call.timed_out, &call.left)
    {
        call.timed_out = true;
        let queue = queue.clone();
        out.push(Some(uid), *left_at, EventKind::TimedOut { queue });
    }
}

fn call_started(b: &Block) -> EventKind {
    EventKind::CallStarted {
        direction: Direction::Inbound,
        channel: "voice".to_owned(),
        from: text(b, "CallerIDNum").filter(|n| n != "<unknown>"),
        to: None,
        line: None,
        dialer: false,
    }
}

fn add_queue(state: &mut AgentState, queue: Option<String>) {
    if let Some(queue) = queue
        && state.queues.len() < MAX_AGENT_QUEUES
    {
        state.queues.insert(queue);
        state.queues_known = true;
    }
}

/// A device state (`Status`) as an agent status; `None`: unchanged.
fn device_status(b: &Block) -> Option<AgentStatus> {
    match b.present("Status")?.parse::<u8>().ok()? {
        1 => Some(AgentStatus::Available),
        2 | 3 | 7 | 8 => Some(AgentStatus::Busy),
        4 | 5 => Some(AgentStatus::Offline),
        _ => None,
    }
}

/// `PausedReason` (Asterisk 13+), else `Reason` (older), cut to what events.md allows.
fn pause_reason(b: &Block) -> Option<String> {
    let reason = b.present("PausedReason").or_else(|| b.present("Reason"))?;
    Some(cut(reason, MAX_REASON_BYTES).to_owned())
}

/// A free-text value that is there and not empty, cut to events.md's bound.
fn text(b: &Block, key: &str) -> Option<String> {
    b.present(key).map(|v| cut(v, MAX_TEXT_BYTES).to_owned())
}

fn required(b: &Block, key: &str) -> Result<String, String> {
    text(b, key).ok_or_else(|| format!("no {key}"))
}

fn uniqueid(b: &Block) -> Result<&str, String> {
    b.present("Uniqueid")
        .ok_or_else(|| "no Uniqueid".to_owned())
}

/// Whole seconds: missing or not a number counts as 0.
fn secs(b: &Block, key: &str) -> SignedDuration {
    let secs = b
        .present(key)
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    SignedDuration::from_secs(i64::from(secs))
}

/// The `Timestamp` header: epoch seconds with an optional fraction; not a
/// number (or out of range) counts as absent.
fn timestamp(b: &Block) -> Option<Timestamp> {
    parse_epoch(b.present("Timestamp")?)
}

/// The key that makes a block's ids: `Uniqueid`, `Event` and
/// `SequenceNumber` (else `Timestamp`), as sources.md says; with neither, the
/// block has no dedup key and its events no id, so it is never taken for a
/// repeat. Agent events have no `Uniqueid`, and `SequenceNumber` restarts
/// with Asterisk: the key also holds the `Timestamp` beside the sequence
/// number, the agent and the queue, so two members' events in one second
/// (or a number reused after a PBX restart) stay two events.
fn dedup_key(b: &Block, event: &str) -> Option<String> {
    let sequence = b.present("SequenceNumber");
    let stamp = b.present("Timestamp");
    if sequence.is_none() && stamp.is_none() {
        return None;
    }
    let uid = b.present("Uniqueid").unwrap_or_default();
    let agent = AGENT_KEYS
        .iter()
        .find_map(|k| b.present(k))
        .unwrap_or_default();
    let queue = b.present("Queue").unwrap_or_default();
    let (sequence, stamp) = (sequence.unwrap_or_default(), stamp.unwrap_or_default());
    Some(format!(
        "{uid}\n{event}\n{sequence}\n{stamp}\n{agent}\n{queue}"
    ))
}

#[cfg(test)]
mod tests;
