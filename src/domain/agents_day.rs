//! The agents' day: per agent, today's calls offered, answered and declined
//! (or not answered in time), talk time (answer to end), and time in each
//! status, folded from the events the engine accepted. Knows no clock and no
//! store: time comes in as values, and a restart folds today's stored events
//! again (see `journal::agents`), so the figures come out the same. That
//! pass runs once the server is up: the day waits for it
//! ([`AgentsDay::awaiting`]), keeping what it takes meanwhile apart.
//!
//! The figures depend only on the set of events taken (and, for two status
//! changes of an agent at the same instant, their order of arrival): a call's
//! marks are kept sorted and its share of the figures recounted on each one,
//! so out-of-order and late events land where they belong. Times are kept
//! to the millisecond, as the store indexes them.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, TryRecvError};

use crate::day::DayRule;
use crate::event::{AgentStatus, Event, EventKind};

/// Agents tallied in a day; names beyond are not (a source inventing names
/// must not grow memory without bound).
pub const MAX_DAY_AGENTS: usize = 10_000;
/// Calls tallied in a day.
pub const MAX_DAY_CALLS: usize = 2_000_000;
/// Marks (offers, answers...) one call keeps, as the engine bounds its events.
pub const MAX_CALL_MARKS: usize = crate::engine::MAX_CALL_EVENTS;
/// Status changes one agent keeps in a day.
pub const MAX_STATUS_CHANGES: usize = 20_000;
/// How far before the day's start a status change is looked for: the latest
/// one in this span is the status the agent starts the day in. It stays
/// under the shortest day (23 hours), so a day's turn keeps every change it needs.
pub const OPENING_LOOKBACK: SignedDuration = SignedDuration::from_hours(12);
/// Where arrivals start in a day awaiting its stored part: after any
/// arrival of that part, so same-instant ties keep the store's order first.
const LATER_ARRIVALS: u64 = 1 << 48;

/// What the agents' day reads of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// An event of a call that bears on its agents.
    Call {
        /// The call.
        call: &'a str,
        /// When it happened.
        at: Timestamp,
        /// What happened.
        mark: CallMark<'a>,
    },
    /// An agent's status changed.
    Status {
        /// The agent.
        agent: &'a str,
        /// When.
        at: Timestamp,
        /// The new status.
        status: AgentStatus,
    },
}

/// A call's event as the agents' day reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMark<'a> {
    /// The agent's phone rang.
    Offered(&'a str),
    /// The agent declined or did not answer in time.
    Declined(&'a str),
    /// The agent answered.
    Answered(&'a str),
    /// The answering agent transferred the caller (ringing this agent, if named).
    Transferred(Option<&'a str>),
    /// The call ended.
    Ended,
}

impl<'a> Input<'a> {
    /// What `event` tells the agents' day, if anything.
    pub fn of(event: &'a Event) -> Option<Input<'a>> {
        let mark = match &event.kind {
            EventKind::AgentStatus { agent, status, .. } => {
                return Some(Input::Status {
                    agent,
                    at: event.at,
                    status: *status,
                });
            }
            EventKind::Offered { agent, .. } => CallMark::Offered(agent),
            EventKind::Declined { agent } => CallMark::Declined(agent),
            EventKind::Answered { agent } => CallMark::Answered(agent),
            EventKind::Transferred { to_agent, .. } => CallMark::Transferred(to_agent.as_deref()),
            EventKind::Ended { .. } => CallMark::Ended,
            _ => return None,
        };
        Some(Input::Call {
            call: event.call.as_deref()?,
            at: event.at,
            mark,
        })
    }
}

/// One agent's call figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallFigures {
    /// Times its phone rang (an `offered`, or a transfer to it).
    pub offered: i64,
    /// Calls it answered.
    pub answered: i64,
    /// Offers it declined or let ring out.
    pub declined: i64,
    /// Answered calls whose talk is over (ended, or transferred on).
    pub handled: i64,
    /// Their talk time, answer to end, in milliseconds.
    pub talk_ms: i64,
}

impl CallFigures {
    fn add(&mut self, other: &CallFigures, sign: i64) {
        self.offered += sign * other.offered;
        self.answered += sign * other.answered;
        self.declined += sign * other.declined;
        self.handled += sign * other.handled;
        self.talk_ms += sign * other.talk_ms;
    }

    /// Average handle time (answer to end) in milliseconds, once a call is handled.
    pub fn average_handle_ms(&self) -> Option<i64> {
        (self.handled > 0).then(|| self.talk_ms / self.handled)
    }
}

type AgentId = u32;

/// Milliseconds since the epoch.
fn ms(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// Same-instant order of a call's marks (events.md's rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum MarkKind {
    Offered,
    Declined,
    Answered,
    Transferred,
    Ended,
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    at_ms: i64,
    kind: MarkKind,
    agent: Option<AgentId>,
}

/// A call of today: its marks sorted by (time, rank, arrival), and what it adds to each agent.
#[derive(Debug, Default)]
struct DayCall {
    marks: Vec<Mark>,
    share: Vec<(AgentId, CallFigures)>,
}

/// A status change's place in an agent's timeline: its time, then arrival.
type StatusKey = (i64, u64);

/// One agent's statuses today.
#[derive(Debug, Default)]
struct Timeline {
    /// The latest change before the day's start (within the lookback).
    opening: Option<(StatusKey, AgentStatus)>,
    /// Today's changes.
    changes: BTreeMap<StatusKey, AgentStatus>,
    /// Milliseconds per status between changes, by `AgentStatus::ALL` index.
    closed_ms: [i64; 5],
}

fn index(status: AgentStatus) -> usize {
    AgentStatus::ALL
        .iter()
        .position(|s| *s == status)
        .unwrap_or_default()
}

/// An agent's day.
#[derive(Debug)]
pub struct AgentDay {
    name: String,
    calls: CallFigures,
    timeline: Timeline,
}

impl AgentDay {
    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its call figures today.
    pub fn calls(&self) -> &CallFigures {
        &self.calls
    }

    /// Milliseconds spent in each status today up to its latest change, in
    /// `AgentStatus::ALL` order; the time since counts for [`AgentsDay::timing`].
    pub fn status_ms(&self) -> [i64; 5] {
        self.timeline.closed_ms
    }
}

/// Today's figures of every agent, and the calls they come from.
#[derive(Debug)]
pub struct AgentsDay {
    day: Option<Date>,
    start_ms: i64,
    next_ms: i64,
    arrivals: u64,
    names: HashMap<String, AgentId>,
    agents: Vec<AgentDay>,
    calls: HashMap<Box<str>, DayCall>,
    /// Inputs not tallied because a bound was reached.
    dropped: u64,
    /// The part folded from the store at a restart, until it has arrived.
    stored: Option<Receiver<AgentsDay>>,
}

impl Default for AgentsDay {
    /// Takes everything until the first [`AgentsDay::roll`] sets the day.
    fn default() -> AgentsDay {
        AgentsDay {
            day: None,
            start_ms: i64::MIN,
            next_ms: i64::MAX,
            arrivals: 0,
            names: HashMap::default(),
            agents: Vec::new(),
            calls: HashMap::default(),
            dropped: 0,
            stored: None,
        }
    }
}

impl AgentsDay {
    /// Starts `today` (by `rule`) if the day turned: keeps only what still
    /// bears on it (calls' marks from its start, status changes within the
    /// lookback) and recounts from them.
    /// Merges the stored part first if it has arrived.
    pub fn roll(&mut self, rule: &DayRule, today: Date) {
        self.complete(rule, false);
        if self.day == Some(today) {
            return;
        }
        let start = rule.start_of(today);
        let mut old = std::mem::take(self);
        self.day = Some(today);
        self.start_ms = ms(start);
        self.next_ms = ms(rule.next_start(start));
        self.arrivals = old.arrivals;
        self.stored = old.stored.take();
        self.absorb(&old);
    }

    /// A day (of `rule`, `today`) whose stored events a restart's pass is
    /// folding; that part arrives on `stored`. What this takes meanwhile is
    /// merged after it, as if taken after every stored event.
    pub fn awaiting(stored: Receiver<AgentsDay>, rule: &DayRule, today: Date) -> AgentsDay {
        let mut day = AgentsDay {
            arrivals: LATER_ARRIVALS,
            ..AgentsDay::default()
        };
        day.roll(rule, today);
        day.stored = Some(stored);
        day
    }

    /// Merges the stored part, if awaited and arrived (`wait`: waiting for
    /// it). A pass that failed sends nothing: what is here then stands.
    pub fn complete(&mut self, rule: &DayRule, wait: bool) {
        let Some(receiver) = &self.stored else {
            return;
        };
        let stored = match wait {
            true => receiver.recv().ok(),
            false => match receiver.try_recv() {
                Err(TryRecvError::Empty) => return,
                arrived => arrived.ok(),
            },
        };
        self.stored = None;
        let Some(mut stored) = stored else { return };
        if let Some(today) = self.day {
            stored.roll(rule, today);
        }
        let taken = std::mem::replace(self, stored);
        self.absorb(&taken);
        self.arrivals = self.arrivals.max(taken.arrivals);
    }

    /// Takes again what `other` holds that bears on this day.
    fn absorb(&mut self, old: &AgentsDay) {
        for agent in &old.agents {
            let t = &agent.timeline;
            let changes = t.changes.iter().map(|(k, s)| (*k, *s));
            for ((at_ms, arrival), status) in t.opening.into_iter().chain(changes) {
                self.take_status(&agent.name, at_ms, arrival, status);
            }
        }
        for (call, day_call) in &old.calls {
            let start_ms = self.start_ms;
            for mark in day_call.marks.iter().filter(|m| m.at_ms >= start_ms) {
                let agent = mark.agent.map(|a| old.agents[a as usize].name.as_str());
                self.take_mark(call, *mark, agent);
            }
        }
    }

    /// Takes an event the engine accepted.
    pub fn take(&mut self, event: &Event) {
        if let Some(input) = Input::of(event) {
            self.take_input(input);
        }
    }

    /// Takes what an accepted event tells (the store's replay calls this directly).
    pub fn take_input(&mut self, input: Input<'_>) {
        self.arrivals += 1;
        match input {
            Input::Status { agent, at, status } => {
                self.take_status(agent, ms(at), self.arrivals, status);
            }
            Input::Call { call, at, mark } => {
                let (kind, agent) = match mark {
                    CallMark::Offered(a) => (MarkKind::Offered, Some(a)),
                    CallMark::Declined(a) => (MarkKind::Declined, Some(a)),
                    CallMark::Answered(a) => (MarkKind::Answered, Some(a)),
                    CallMark::Transferred(a) => (MarkKind::Transferred, a),
                    CallMark::Ended => (MarkKind::Ended, None),
                };
                let mark = Mark {
                    at_ms: ms(at),
                    kind,
                    agent: None,
                };
                if mark.at_ms >= self.start_ms {
                    self.take_mark(call, mark, agent);
                }
            }
        }
    }

    /// The agents tallied today, in no particular order.
    pub fn agents(&self) -> impl Iterator<Item = &AgentDay> {
        self.agents.iter()
    }

    /// The agent named `name`, if tallied today.
    pub fn agent(&self, name: &str) -> Option<&AgentDay> {
        self.names.get(name).map(|id| &self.agents[*id as usize])
    }

    /// The status `agent` is being timed in now, since when (the day's start
    /// at the earliest): its latest change, or the one it opened the day in.
    pub fn timing(&self, agent: &AgentDay) -> Option<(AgentStatus, Timestamp)> {
        let t = &agent.timeline;
        let (at_ms, status) = match t.changes.last_key_value() {
            Some(((at, _), status)) => ((*at).clamp(self.start_ms, self.next_ms), *status),
            None => (self.start_ms, t.opening?.1),
        };
        Some((
            status,
            Timestamp::from_millisecond(at_ms).unwrap_or_default(),
        ))
    }

    /// Inputs not tallied because a bound was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Counts an input not tallied, saying so once a day.
    fn drop_one(&mut self) {
        if self.dropped == 0 {
            tracing::warn!(
                "the agents' day reached a bound ({MAX_DAY_AGENTS} agents, {MAX_DAY_CALLS} calls, \
                 {MAX_CALL_MARKS} events a call or {MAX_STATUS_CHANGES} status changes an agent): \
                 further ones are not tallied today"
            );
        }
        self.dropped += 1;
    }

    /// The agent's id, making one for a new name while under the bound.
    fn agent_id(&mut self, name: &str) -> Option<AgentId> {
        if let Some(id) = self.names.get(name) {
            return Some(*id);
        }
        if self.agents.len() >= MAX_DAY_AGENTS {
            return None;
        }
        let id = AgentId::try_from(self.agents.len()).ok()?;
        self.names.insert(name.to_owned(), id);
        self.agents.push(AgentDay {
            name: name.to_owned(),
            calls: CallFigures::default(),
            timeline: Timeline::default(),
        });
        Some(id)
    }

    fn take_status(&mut self, agent: &str, at_ms: i64, arrival: u64, status: AgentStatus) {
        let lookback_ms = OPENING_LOOKBACK.as_millis() as i64;
        if at_ms < self.start_ms.saturating_sub(lookback_ms) {
            return;
        }
        let Some(id) = self.agent_id(agent) else {
            self.drop_one();
            return;
        };
        let (start, next) = (self.start_ms, self.next_ms);
        let timeline = &mut self.agents[id as usize].timeline;
        if timeline.changes.len() >= MAX_STATUS_CHANGES {
            self.drop_one();
            return;
        }
        timeline.insert((at_ms, arrival), status, start, next);
    }

    fn take_mark(&mut self, call: &str, mut mark: Mark, agent: Option<&str>) {
        if let Some(name) = agent {
            match self.agent_id(name) {
                Some(id) => mark.agent = Some(id),
                None => {
                    self.drop_one();
                    return;
                }
            }
        }
        if !self.calls.contains_key(call) && self.calls.len() >= MAX_DAY_CALLS {
            self.drop_one();
            return;
        }
        if !self.calls.contains_key(call) {
            self.calls.insert(call.into(), DayCall::default());
        }
        let Some(day_call) = self.calls.get_mut(call) else {
            return;
        };
        if day_call.marks.len() >= MAX_CALL_MARKS {
            self.drop_one();
            return;
        }
        // After every mark at or before it in (time, rank): arrival breaks ties.
        let place = day_call
            .marks
            .partition_point(|m| (m.at_ms, m.kind) <= (mark.at_ms, mark.kind));
        day_call.marks.insert(place, mark);
        let share = share_of(&day_call.marks, self.start_ms, self.next_ms);
        let old = std::mem::replace(&mut day_call.share, share);
        for (id, figures) in &old {
            self.agents[*id as usize].calls.add(figures, -1);
        }
        for (id, figures) in &day_call.share {
            self.agents[*id as usize].calls.add(figures, 1);
        }
    }
}

impl Timeline {
    /// Adds a change, moving the time between its neighbours to the right status.
    fn insert(&mut self, key: StatusKey, status: AgentStatus, start: i64, next: i64) {
        let at = |k: StatusKey| k.0.clamp(start, next);
        if key.0 < start {
            // Only the latest change before the day matters: the day opens in its status.
            if self.opening.is_some_and(|(k, _)| k >= key) {
                return;
            }
            let old = self.opening.replace((key, status));
            if let Some((first, _)) = self.changes.first_key_value() {
                let span = at(*first) - start;
                if let Some((_, was)) = old {
                    self.closed_ms[index(was)] -= span;
                }
                self.closed_ms[index(status)] += span;
            }
            return;
        }
        let before = self
            .changes
            .range(..key)
            .next_back()
            .map(|(k, s)| (at(*k), *s))
            .or(self.opening.map(|(_, s)| (start, s)));
        let after = self.changes.range(key..).next().map(|(k, _)| at(*k));
        if let (Some((from, was)), Some(to)) = (before, after) {
            self.closed_ms[index(was)] -= to - from;
        }
        if let Some((from, was)) = before {
            self.closed_ms[index(was)] += at(key) - from;
        }
        if let Some(to) = after {
            self.closed_ms[index(status)] += to - at(key);
        }
        self.changes.insert(key, status);
    }
}

/// What a call's sorted marks add to each agent: offers, declines and
/// answers dated today, and each talk that began today, from its answer to
/// the call's end, a transfer, or another agent's answer. A mark repeating
/// one of the same agent at the same instant counts once (so a transfer to
/// an agent and its `offered` are one offer); an answer or a decline with no
/// offer to that agent before it implies one (sources often send none).
fn share_of(marks: &[Mark], start: i64, next: i64) -> Vec<(AgentId, CallFigures)> {
    let today = |at: i64| (start..next).contains(&at);
    let mut shares: Vec<(AgentId, CallFigures)> = Vec::new();
    // Offers to each agent not yet answered or declined.
    let mut ringing: Vec<(AgentId, i64)> = Vec::new();
    let mut talking: Option<(AgentId, i64)> = None;
    let mut ended = false;
    for (i, mark) in marks.iter().enumerate() {
        if let Some(id) = mark.agent.filter(|_| !repeats_earlier(marks, i)) {
            let pending = entry(&mut ringing, id);
            let implied = match mark.kind {
                MarkKind::Offered | MarkKind::Transferred => {
                    *pending += 1;
                    1
                }
                _ if *pending > 0 => {
                    *pending -= 1;
                    0
                }
                _ => 1,
            };
            if today(mark.at_ms) {
                let f = entry(&mut shares, id);
                f.offered += implied;
                f.declined += i64::from(mark.kind == MarkKind::Declined);
                f.answered += i64::from(mark.kind == MarkKind::Answered);
            }
        }
        if ended {
            continue;
        }
        let talk_ends = match mark.kind {
            MarkKind::Answered => talking.is_none_or(|(a, _)| Some(a) != mark.agent),
            MarkKind::Transferred | MarkKind::Ended => true,
            MarkKind::Offered | MarkKind::Declined => false,
        };
        if !talk_ends {
            continue;
        }
        if let Some((id, from)) = talking.take()
            && today(from)
        {
            let f = entry(&mut shares, id);
            f.handled += 1;
            f.talk_ms += mark.at_ms - from;
        }
        match mark.kind {
            MarkKind::Answered => talking = mark.agent.map(|id| (id, mark.at_ms)),
            MarkKind::Ended => ended = true,
            _ => {}
        }
    }
    shares.retain(|(_, f)| *f != CallFigures::default());
    shares
}

/// The value kept for `id` in a short list, added as default if missing.
fn entry<T: Default>(list: &mut Vec<(AgentId, T)>, id: AgentId) -> &mut T {
    let i = match list.iter().position(|(a, _)| *a == id) {
        Some(i) => i,
        None => {
            list.push((id, T::default()));
            list.len() - 1
        }
    };
    &mut list[i].1
}

/// Whether the mark at `i` repeats an earlier one at the same instant: the
/// same agent, rung (an offer or a transfer to it), declined or answered again.
fn repeats_earlier(marks: &[Mark], i: usize) -> bool {
    let class = |kind| match kind {
        MarkKind::Transferred => MarkKind::Offered,
        other => other,
    };
    let mark = marks[i];
    marks[..i]
        .iter()
        .rev()
        .take_while(|m| m.at_ms == mark.at_ms)
        .any(|m| m.agent == mark.agent && class(m.kind) == class(mark.kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    /// An agent and the call figures it should have.
    type Want = (&'static str, CallFigures);
    type Summary = BTreeMap<String, (CallFigures, [i64; 5], Option<(AgentStatus, Timestamp)>)>;

    /// An owned input, to shuffle and replay.
    #[derive(Debug, Clone)]
    enum In {
        Call(&'static str, &'static str, Owned),
        Status(&'static str, &'static str, AgentStatus),
    }

    #[derive(Debug, Clone)]
    enum Owned {
        Offered(&'static str),
        Declined(&'static str),
        Answered(&'static str),
        Transferred(Option<&'static str>),
        Ended,
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// `HH:MM:SS` on 2026-11-20, or a whole RFC 3339 time.
    fn instant(when: &str) -> Timestamp {
        match when.len() {
            8 => ts(&format!("2026-11-20T{when}Z")),
            _ => ts(when),
        }
    }

    fn take(day: &mut AgentsDay, input: &In) {
        let input = match input {
            In::Call(call, when, mark) => Input::Call {
                call,
                at: instant(when),
                mark: match mark {
                    Owned::Offered(a) => CallMark::Offered(a),
                    Owned::Declined(a) => CallMark::Declined(a),
                    Owned::Answered(a) => CallMark::Answered(a),
                    Owned::Transferred(a) => CallMark::Transferred(*a),
                    Owned::Ended => CallMark::Ended,
                },
            },
            In::Status(agent, when, status) => Input::Status {
                agent,
                at: instant(when),
                status: *status,
            },
        };
        day.take_input(input);
    }

    fn today() -> AgentsDay {
        let mut day = AgentsDay::default();
        day.roll(&DayRule::utc(), date(2026, 11, 20));
        day
    }

    fn fold(inputs: &[In]) -> AgentsDay {
        let mut day = today();
        for input in inputs {
            take(&mut day, input);
        }
        day
    }

    fn summary(day: &AgentsDay) -> Summary {
        day.agents()
            .filter(|a| *a.calls() != CallFigures::default() || day.timing(a).is_some())
            .map(|a| {
                let s = (*a.calls(), a.status_ms(), day.timing(a));
                (a.name().to_owned(), s)
            })
            .collect()
    }

    fn calls(
        offered: i64,
        answered: i64,
        declined: i64,
        handled: i64,
        talk_secs: i64,
    ) -> CallFigures {
        CallFigures {
            offered,
            answered,
            declined,
            handled,
            talk_ms: talk_secs * 1000,
        }
    }

    fn of(day: &AgentsDay, agent: &str) -> CallFigures {
        day.agent(agent).map(|a| *a.calls()).unwrap_or_default()
    }

    use Owned::*;

    /// (what happened, each agent's call figures): journeys of one call.
    #[test]
    fn a_call_adds_offers_answers_declines_and_talk_to_its_agents() {
        let cases: Vec<(&str, Vec<In>, Vec<Want>)> = vec![
            (
                "offered, answered, ended",
                vec![
                    In::Call("c", "09:00:05", Offered("amy")),
                    In::Call("c", "09:00:10", Answered("amy")),
                    In::Call("c", "09:02:10", Ended),
                ],
                vec![("amy", calls(1, 1, 0, 1, 120))],
            ),
            (
                "an answer with no offer implies one; a live talk is not handled yet",
                vec![In::Call("c", "09:00:10", Answered("amy"))],
                vec![("amy", calls(1, 1, 0, 0, 0))],
            ),
            (
                "one agent declines (or lets it ring out), another answers",
                vec![
                    In::Call("c", "09:00:05", Offered("amy")),
                    In::Call("c", "09:00:20", Declined("amy")),
                    In::Call("c", "09:00:20", Offered("ben")),
                    In::Call("c", "09:00:30", Answered("ben")),
                    In::Call("c", "09:01:30", Ended),
                ],
                vec![
                    ("amy", calls(1, 0, 1, 0, 0)),
                    ("ben", calls(1, 1, 0, 1, 60)),
                ],
            ),
            (
                "a transfer to an agent ends the first talk and rings the second once",
                vec![
                    In::Call("c", "09:00:05", Offered("amy")),
                    In::Call("c", "09:00:10", Answered("amy")),
                    In::Call("c", "09:01:10", Transferred(Some("ben"))),
                    In::Call("c", "09:01:10", Offered("ben")),
                    In::Call("c", "09:01:15", Answered("ben")),
                    In::Call("c", "09:03:15", Ended),
                ],
                vec![
                    ("amy", calls(1, 1, 0, 1, 60)),
                    ("ben", calls(1, 1, 0, 1, 120)),
                ],
            ),
            (
                "a transfer to a queue ends the talk; the next answer starts another",
                vec![
                    In::Call("c", "09:00:10", Answered("amy")),
                    In::Call("c", "09:00:40", Transferred(None)),
                    In::Call("c", "09:01:00", Answered("amy")),
                    In::Call("c", "09:01:30", Ended),
                ],
                vec![("amy", calls(2, 2, 0, 2, 60))],
            ),
            (
                "repeated events without ids count once; events after the end add no talk",
                vec![
                    In::Call("c", "09:00:05", Offered("amy")),
                    In::Call("c", "09:00:05", Offered("amy")),
                    In::Call("c", "09:00:10", Answered("amy")),
                    In::Call("c", "09:00:10", Answered("amy")),
                    In::Call("c", "09:00:40", Ended),
                    In::Call("c", "09:00:50", Ended),
                    In::Call("c", "09:00:55", Answered("ben")),
                ],
                vec![
                    ("amy", calls(1, 1, 0, 1, 30)),
                    ("ben", calls(1, 1, 0, 0, 0)),
                ],
            ),
            (
                "an end alone adds nothing",
                vec![In::Call("c", "09:00:10", Ended)],
                vec![],
            ),
        ];
        for (what, inputs, want) in cases {
            let day = fold(&inputs);
            for (agent, figures) in &want {
                assert_eq!(of(&day, agent), *figures, "{what}: {agent}");
            }
            let busy = day
                .agents()
                .filter(|a| *a.calls() != CallFigures::default())
                .count();
            assert_eq!(busy, want.len(), "{what}");
        }
    }

    /// A day of calls and statuses, out of order and late: every order of
    /// arrival gives the same figures, so a restart that folds the stored
    /// events again (in any order) finds the day as it was.
    #[test]
    fn any_order_of_arrival_gives_the_same_day() {
        let inputs = vec![
            In::Status("amy", "2026-11-19T22:00:00Z", AgentStatus::Offline),
            In::Status("amy", "2026-11-20T08:00:00Z", AgentStatus::Available),
            // Her status moves before the call's events arrive.
            In::Status("amy", "2026-11-20T09:00:10Z", AgentStatus::Busy),
            In::Status("amy", "2026-11-20T09:02:10Z", AgentStatus::WrapUp),
            In::Status("amy", "2026-11-20T09:03:00Z", AgentStatus::Available),
            In::Call("a", "09:00:05", Offered("amy")),
            In::Call("a", "09:00:10", Answered("amy")),
            In::Call("a", "09:02:10", Ended),
            In::Call("b", "09:10:00", Offered("ben")),
            In::Call("b", "09:10:15", Declined("ben")),
            In::Call("b", "09:10:15", Offered("amy")),
            In::Call("b", "09:10:20", Answered("amy")),
            In::Call("b", "09:11:00", Transferred(Some("ben"))),
            In::Call("b", "09:11:05", Answered("ben")),
            In::Call("b", "09:12:05", Ended),
            In::Status("ben", "2026-11-20T09:30:00Z", AgentStatus::Away),
        ];
        let want = summary(&fold(&inputs));
        assert_eq!(want["amy"].0, calls(2, 2, 0, 2, 160));
        assert_eq!(want["ben"].0, calls(2, 1, 1, 1, 60));
        let mut seed = 11u64;
        for _ in 0..200 {
            let mut shuffled = inputs.clone();
            for i in (1..shuffled.len()).rev() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                shuffled.swap(i, (seed >> 33) as usize % (i + 1));
            }
            assert_eq!(summary(&fold(&shuffled)), want, "{shuffled:?}");
        }
    }

    #[test]
    fn time_in_each_status_from_the_day_start() {
        let day = fold(&[
            In::Status("amy", "2026-11-19T18:00:00Z", AgentStatus::Offline),
            In::Status("amy", "2026-11-20T08:00:00Z", AgentStatus::Available),
            In::Status("amy", "2026-11-20T09:00:00Z", AgentStatus::Busy),
            // Late: her lunch, between the two.
            In::Status("amy", "2026-11-20T08:30:00Z", AgentStatus::Away),
            // Too long before the day to say how it opened.
            In::Status("ben", "2026-11-19T06:00:00Z", AgentStatus::Available),
        ]);
        let amy = day.agent("amy").unwrap();
        let hour = 3_600_000;
        // available, busy, wrap_up, away, offline
        assert_eq!(amy.status_ms(), [hour / 2, 0, 0, hour / 2, 8 * hour]);
        assert_eq!(
            day.timing(amy),
            Some((AgentStatus::Busy, ts("2026-11-20T09:00:00Z")))
        );
        assert!(day.agent("ben").is_none());
        // Only the opening status: it is timed from the day's start.
        let day = fold(&[In::Status("cat", "2026-11-19T23:00:00Z", AgentStatus::Away)]);
        let cat = day.agent("cat").unwrap();
        assert_eq!(cat.status_ms(), [0; 5]);
        assert_eq!(
            day.timing(cat),
            Some((AgentStatus::Away, ts("2026-11-20T00:00:00Z")))
        );
    }

    /// The day turns: figures start afresh, the last status opens the new
    /// day, and what is kept equals folding the new day's events alone.
    #[test]
    fn the_day_turns_and_keeps_what_bears_on_the_new_day() {
        let before = [
            In::Status("amy", "2026-11-20T09:00:00Z", AgentStatus::Available),
            In::Status("amy", "2026-11-20T23:50:00Z", AgentStatus::Busy),
            In::Call("a", "23:50:00", Answered("amy")),
        ];
        let after = [
            In::Call("a", "2026-11-21T00:10:00Z", Ended),
            In::Status("amy", "2026-11-21T00:10:00Z", AgentStatus::WrapUp),
        ];
        let mut live = fold(&before);
        assert_eq!(of(&live, "amy"), calls(1, 1, 0, 0, 0));
        live.roll(&DayRule::utc(), date(2026, 11, 21));
        assert_eq!(of(&live, "amy"), CallFigures::default());
        for input in &after {
            take(&mut live, input);
        }
        // A restart on the new day folds every stored event again.
        let mut rebuilt = AgentsDay::default();
        rebuilt.roll(&DayRule::utc(), date(2026, 11, 21));
        for input in before.iter().chain(&after) {
            take(&mut rebuilt, input);
        }
        assert_eq!(summary(&live), summary(&rebuilt));
        let amy = live.agent("amy").unwrap();
        assert_eq!(
            *amy.calls(),
            CallFigures::default(),
            "the talk began yesterday"
        );
        let ten_minutes = 600_000;
        assert_eq!(amy.status_ms(), [0, ten_minutes, 0, 0, 0]);
        assert_eq!(
            live.timing(amy),
            Some((AgentStatus::WrapUp, ts("2026-11-21T00:10:00Z")))
        );
    }

    /// After a restart, what is taken while the store's pass runs is merged
    /// after that pass's part: the same day as folding everything in order.
    #[test]
    fn a_day_awaiting_its_stored_part_merges_it_first() {
        let stored = [
            In::Status("amy", "2026-11-19T23:00:00Z", AgentStatus::Away),
            In::Call("a", "09:00:10", Answered("amy")),
            In::Status("amy", "09:00:10", AgentStatus::Busy),
        ];
        let live = [
            // The same instant as a stored change: it came later, so it wins.
            In::Status("amy", "09:00:10", AgentStatus::Available),
            In::Call("a", "09:01:10", Ended),
        ];
        let all = fold(&stored.iter().chain(&live).cloned().collect::<Vec<_>>());
        let (send, receive) = std::sync::mpsc::sync_channel(1);
        let mut day = AgentsDay::awaiting(receive, &DayRule::utc(), date(2026, 11, 20));
        for input in &live {
            take(&mut day, input);
        }
        day.complete(&DayRule::utc(), false);
        assert_eq!(of(&day, "amy"), CallFigures::default(), "not arrived yet");
        send.send(fold(&stored)).unwrap();
        day.complete(&DayRule::utc(), true);
        assert_eq!(summary(&day), summary(&all));
        assert_eq!(of(&day, "amy"), calls(1, 1, 0, 1, 60));
        let amy = day.agent("amy").unwrap();
        assert_eq!(day.timing(amy).map(|t| t.0), Some(AgentStatus::Available));
        // A pass that failed sends nothing: the day stands as it is.
        let (send, receive) = std::sync::mpsc::sync_channel::<AgentsDay>(1);
        let mut day = AgentsDay::awaiting(receive, &DayRule::utc(), date(2026, 11, 20));
        take(&mut day, &live[1]);
        drop(send);
        day.complete(&DayRule::utc(), true);
        assert_eq!(summary(&day), summary(&fold(&live[1..])));
    }
}
