//! The engine: every call's history, the agents, and the tallies of the site's
//! days, rolling window and queues, kept exact under out-of-order, late and
//! duplicate events. Time comes in as a value; nothing here knows a clock.

use std::collections::{BTreeMap, BTreeSet};

// Call and event ids are hashed on every event: a fast hasher pays; they come
// from authenticated sources, and a flood of colliding ids costs only speed.
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use crate::call::{Call, Live, LiveState, Status};
use crate::day::DayRule;
use crate::definition::Definition;
use crate::event::{AgentStatus, Event, EventKind, HistoryEvent};
use crate::outcome::Verdict;
use crate::stats::{Contribution, FigureSettings, Tally};

/// Everything the engine is told once, at start.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The definitions computed, the default first.
    pub definitions: Vec<Definition>,
    /// Service level and short-abandon thresholds.
    pub figures: FigureSettings,
    /// How time is cut into the site's days.
    pub day: DayRule,
    /// Length of the rolling window.
    pub window: SignedDuration,
    /// Events for a call finished longer ago than this change no box (`None`: never late).
    pub late_window: Option<SignedDuration>,
    /// Unfinished calls silent this long are expired (`None`: never).
    pub stale_after: Option<SignedDuration>,
    /// Days of tallies kept in memory before today (`None`: all).
    pub keep_days: Option<u32>,
    /// "Now" follows the latest event time seen (replays) instead of being set from outside.
    pub feed_clock: bool,
    /// Ignore events whose id was seen before. Off when a store in front
    /// already refuses repeated ids (its unique index remembers them longer).
    pub dedupe_ids: bool,
    /// Keep the [`Changes`] that [`Engine::take_changes`] hands on (the hub
    /// reads them; an engine alone, as in `classify`, need not keep them).
    pub track_changes: bool,
    /// Distinct queue names tallied; further names count under [`OTHER_QUEUE`].
    pub max_queues: usize,
    /// Calls open at once; the pipeline refuses a batch that would open more.
    pub max_open_calls: usize,
    /// How far ahead of the machine's clock an event may be dated; the
    /// pipeline refuses a batch with one further ahead.
    pub max_future: SignedDuration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            definitions: Definition::built_ins(&Default::default()),
            figures: FigureSettings::default(),
            day: DayRule::utc(),
            window: SignedDuration::from_mins(60),
            late_window: Some(SignedDuration::from_mins(60)),
            stale_after: Some(SignedDuration::from_hours(4)),
            keep_days: Some(2),
            feed_clock: false,
            dedupe_ids: true,
            track_changes: false,
            max_queues: 1_000,
            max_open_calls: 200_000,
            max_future: SignedDuration::from_mins(5),
        }
    }
}

/// The queue that events naming queues beyond [`EngineSettings::max_queues`] count under.
pub const OTHER_QUEUE: &str = "(other)";

/// Most events one call keeps. Every event re-classifies its call from its
/// history, so this bounds the work (and memory) one call can cause; real
/// calls, even long ring-all ones, stay far below it.
pub const MAX_CALL_EVENTS: usize = 2_000;

/// What happened to a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Events taken in (late ones and ones for full calls included).
    pub accepted: u64,
    /// Events ignored because their id was seen before.
    pub duplicates: u64,
    /// Events for calls finished longer than the late window ago.
    pub late: u64,
    /// Events for a call that already holds [`MAX_CALL_EVENTS`].
    pub call_full: u64,
}

/// What became of one call event.
enum Taken {
    Applied,
    Late,
    CallFull,
}

/// A finished call as the tallies count it.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    /// Its finishing time.
    pub finished_at: Timestamp,
    /// The site day it counts in.
    pub day: Date,
    /// Outcome, wait, reach and queue.
    pub verdict: Verdict,
    /// What it adds to a tally.
    pub contribution: Contribution,
}

/// The tallies of one scope: all calls, and per queue.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Every call of the scope.
    pub all: Tally,
    /// Calls by their queue.
    pub queues: BTreeMap<String, Tally>,
}

impl Scope {
    /// Adds (`sign` = 1) or removes (-1) a finished call.
    pub fn apply(&mut self, counted: &Counted, sign: i64, settings: &EngineSettings) {
        let c = &counted.contribution;
        self.all
            .apply(c, sign, &settings.definitions, &settings.figures);
        if let Some(queue) = &counted.verdict.queue {
            // Look up before inserting: the name is allocated only for a new queue.
            if !self.queues.contains_key(queue) {
                self.queues.insert(queue.clone(), Tally::default());
            }
            let tally = self.queues.get_mut(queue).expect("inserted above");
            tally.apply(c, sign, &settings.definitions, &settings.figures);
            if tally.is_empty() {
                self.queues.remove(queue);
            }
        }
    }
}

/// Counts of live calls per state, and their queue entries for "longest waiting".
#[derive(Debug, Clone, Default)]
pub struct LiveTally {
    /// Calls per [`LiveState`], by [`LiveState::index`].
    pub states: [i64; 5],
    /// (queue entry, call) of queued calls, oldest first.
    pub queued: BTreeSet<(Timestamp, Arc<str>)>,
}

impl LiveTally {
    fn apply(&mut self, call: &Arc<str>, live: &Live, sign: i64) {
        self.states[live.state.index()] += sign;
        if live.state == LiveState::Queued {
            let key = (live.since, call.clone());
            if sign > 0 {
                self.queued.insert(key);
            } else {
                self.queued.remove(&key);
            }
        }
    }

    /// Whether no call is counted.
    pub fn is_empty(&self) -> bool {
        self.states.iter().all(|&n| n == 0)
    }

    /// The oldest queue entry among queued calls.
    pub fn oldest_queued_since(&self) -> Option<Timestamp> {
        self.queued.first().map(|(since, _)| *since)
    }
}

/// An agent's latest known status.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentEntry {
    /// The status.
    pub status: AgentStatus,
    /// Since when (the event's `at`).
    pub since: Timestamp,
    /// The queues it serves, if told.
    pub queues: Vec<String>,
    /// Why it is away (a pause reason), if told.
    pub reason: Option<String>,
    arrival: u64,
}

struct CallEntry {
    /// The map's own key, shared with the indexes.
    key: Arc<str>,
    call: Call,
    counted: Option<Counted>,
    live: Option<Live>,
    /// The time under which it sits in `live_by_last_event`, while live.
    indexed_last_at: Option<Timestamp>,
    /// Whether the log was told this call is full.
    warned_full: bool,
    first_arrival: u64,
}

/// What the engine changed, as it is now: the one stream the store's
/// derived rows, the supervisor's ledger and the publisher all read. A call
/// or agent changed twice appears once, with its latest state.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    /// Finished calls whose count changed, as they count now.
    pub counted: HashMap<Arc<str>, Counted>,
    /// Agents whose state changed, as they are now.
    pub agents: HashMap<String, AgentEntry>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.counted.is_empty() && self.agents.is_empty()
    }

    /// Adds `newer` on top of these: where both hold a call or an agent, the newer wins.
    pub fn merge(&mut self, newer: Changes) {
        if self.is_empty() {
            *self = newer;
            return;
        }
        self.counted.extend(newer.counted);
        self.agents.extend(newer.agents);
    }
}

/// The whole state of the site.
pub struct Engine {
    settings: Arc<EngineSettings>,
    now: Timestamp,
    arrivals: u64,
    calls: HashMap<Arc<str>, CallEntry>,
    /// Calls dropped from memory after the late window, with their finishing time.
    retired: HashMap<Arc<str>, Timestamp>,
    /// Finished calls whose events were dropped, since no more will come
    /// (see [`Engine::settle`]): their count, by first arrival.
    settled: HashMap<Arc<str>, (u64, Counted)>,
    seen_ids: HashMap<Box<str>, Timestamp>,
    agents: BTreeMap<String, AgentEntry>,
    days: BTreeMap<Date, Scope>,
    window: Scope,
    in_window: BTreeSet<(Timestamp, Arc<str>)>,
    finished_by_time: BTreeSet<(Timestamp, Arc<str>)>,
    live_by_last_event: BTreeSet<(Timestamp, Arc<str>)>,
    live: LiveTally,
    live_queues: BTreeMap<String, LiveTally>,
    late_events: u64,
    refused_call_full: u64,
    expired_calls: u64,
    /// Queue names seen, at most [`EngineSettings::max_queues`] of them.
    queues_seen: BTreeSet<String>,
    /// Queue names counted under [`OTHER_QUEUE`] because the cap was reached.
    queues_folded: u64,
    /// Today, cached with its bounds (see [`Engine::turn_day`]).
    today: Date,
    day_start: Timestamp,
    next_day_start: Timestamp,
    /// What changed since [`Engine::take_changes`] was last called.
    changes: Changes,
}

impl Engine {
    /// An empty site at `now`.
    pub fn new(settings: Arc<EngineSettings>, now: Timestamp) -> Engine {
        let today = settings.day.day_of(now);
        let day_start = settings.day.start_of(today);
        let next_day_start = settings.day.next_start(now);
        Engine {
            settings,
            now,
            arrivals: 0,
            calls: HashMap::default(),
            retired: HashMap::default(),
            settled: HashMap::default(),
            seen_ids: HashMap::default(),
            agents: BTreeMap::new(),
            days: BTreeMap::new(),
            window: Scope::default(),
            in_window: BTreeSet::new(),
            finished_by_time: BTreeSet::new(),
            live_by_last_event: BTreeSet::new(),
            live: LiveTally::default(),
            live_queues: BTreeMap::new(),
            late_events: 0,
            refused_call_full: 0,
            expired_calls: 0,
            queues_seen: BTreeSet::new(),
            queues_folded: 0,
            today,
            day_start,
            next_day_start,
            changes: Changes::default(),
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The engine's now.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Takes in a batch of valid events, in order.
    pub fn ingest(&mut self, events: Vec<Event>) -> IngestReport {
        let mut report = IngestReport::default();
        for mut event in events {
            if let Some(id) = event.id.as_ref().filter(|_| self.settings.dedupe_ids) {
                if self.seen_ids.contains_key(id.as_str()) {
                    report.duplicates += 1;
                    continue;
                }
                self.seen_ids.insert(id.as_str().into(), event.at);
            }
            report.accepted += 1;
            if self.settings.feed_clock && event.at > self.now {
                self.advance(event.at);
            }
            self.arrivals += 1;
            self.fold_queue(&mut event.kind);
            match event.call {
                None => self.set_agent_status(event.at, event.kind),
                Some(call) => match self.add_call_event(call, event.at, event.kind) {
                    Taken::Applied => {}
                    Taken::Late => report.late += 1,
                    Taken::CallFull => report.call_full += 1,
                },
            }
        }
        self.late_events += report.late;
        self.refused_call_full += report.call_full;
        report
    }

    /// Moves time forward to `now` (never back): ages the rolling window,
    /// expires stale calls and forgets what is past keeping.
    pub fn advance(&mut self, now: Timestamp) {
        if now <= self.now {
            return;
        }
        self.now = now;
        self.age_window();
        self.expire_stale();
        self.retire_finished();
        self.turn_day();
    }

    /// Counts a queue name beyond [`EngineSettings::max_queues`] under
    /// [`OTHER_QUEUE`]: every name costs a tally on every board, and a
    /// source inventing names must not grow the snapshot without bound.
    fn fold_queue(&mut self, kind: &mut EventKind) {
        let queue = match kind {
            EventKind::Queued { queue } => queue,
            EventKind::Offered {
                queue: Some(queue), ..
            }
            | EventKind::TimedOut { queue: Some(queue) }
            | EventKind::Transferred {
                to_queue: Some(queue),
                ..
            } => queue,
            _ => return,
        };
        if self.queues_seen.contains(queue.as_str()) {
            return;
        }
        if self.queues_seen.len() < self.settings.max_queues {
            self.queues_seen.insert(queue.clone());
            return;
        }
        if self.queues_folded == 0 {
            tracing::warn!(
                "more than {} queue names (limits.max_queues): {queue:?} and any further ones count under {OTHER_QUEUE:?}",
                self.settings.max_queues
            );
        }
        self.queues_folded += 1;
        *queue = OTHER_QUEUE.to_owned();
    }

    /// How many calls open now, and how many more `events` would open: calls
    /// the engine does not know that the batch does not also end.
    pub fn open_calls_after(&self, events: &[Event]) -> (usize, usize) {
        let mut new: BTreeMap<&str, bool> = BTreeMap::new();
        for event in events {
            let Some(call) = event.call.as_deref() else {
                continue;
            };
            if self.calls.contains_key(call) || self.retired.contains_key(call) {
                continue;
            }
            let ends = matches!(event.kind, EventKind::Ended { .. });
            *new.entry(call).or_default() |= ends;
        }
        let opening = new.values().filter(|ended| !**ended).count();
        (self.open_calls(), opening)
    }

    /// Calls not finished yet.
    pub fn open_calls(&self) -> usize {
        self.live_by_last_event.len()
    }

    /// Events whose queue was counted under [`OTHER_QUEUE`] (see [`EngineSettings::max_queues`]).
    pub fn queues_folded(&self) -> u64 {
        self.queues_folded
    }

    fn set_agent_status(&mut self, at: Timestamp, kind: EventKind) {
        let EventKind::AgentStatus {
            agent,
            status,
            queues,
            reason,
        } = kind
        else {
            return;
        };
        let arrival = self.arrivals;
        let newer = |e: &AgentEntry| (at, arrival) >= (e.since, e.arrival);
        if self.agents.get(&agent).is_none_or(newer) {
            let queues = queues.unwrap_or_else(|| {
                self.agents
                    .get(&agent)
                    .map(|e| e.queues.clone())
                    .unwrap_or_default()
            });
            let entry = AgentEntry {
                status,
                since: at,
                queues,
                reason,
                arrival,
            };
            if self.settings.track_changes {
                self.changes.agents.insert(agent.clone(), entry.clone());
            }
            self.agents.insert(agent, entry);
        }
    }

    /// Puts back an agent's recorded state (at restart), without moving the
    /// clock; any later status replayed for it wins.
    pub fn restore_agent(
        &mut self,
        agent: String,
        status: AgentStatus,
        since: Timestamp,
        queues: Vec<String>,
        reason: Option<String>,
    ) {
        let entry = AgentEntry {
            status,
            since,
            queues,
            reason,
            arrival: 0,
        };
        self.agents.insert(agent, entry);
    }

    /// Adds an event to its call and recounts the call, unless it came too
    /// late to count or the call is full.
    fn add_call_event(&mut self, call: String, at: Timestamp, kind: EventKind) -> Taken {
        if self.retired.contains_key(call.as_str()) {
            return Taken::Late;
        }
        // Finished before this instant: too late to change a box.
        let late_before = self.settings.late_window.map(|w| self.now - w);
        let arrival = self.arrivals;
        let event = HistoryEvent { at, arrival, kind };
        let key = match self.calls.get_mut(call.as_str()) {
            Some(entry)
                if late_before.is_some_and(|before| {
                    entry
                        .counted
                        .as_ref()
                        .is_some_and(|c| c.finished_at < before)
                }) =>
            {
                return Taken::Late;
            }
            Some(entry) if entry.call.history().len() >= MAX_CALL_EVENTS => {
                if !entry.warned_full {
                    entry.warned_full = true;
                    tracing::warn!(call = ?entry.key, "call holds {MAX_CALL_EVENTS} events; ignoring more");
                }
                return Taken::CallFull;
            }
            Some(entry) => {
                entry.call.insert(event);
                entry.key.clone()
            }
            None => {
                let key: Arc<str> = Arc::from(call);
                let mut entry = CallEntry {
                    key: key.clone(),
                    call: Call::default(),
                    counted: None,
                    live: None,
                    indexed_last_at: None,
                    warned_full: false,
                    first_arrival: arrival,
                };
                entry.call.insert(event);
                self.calls.insert(key.clone(), entry);
                key
            }
        };
        self.recount(&key);
        Taken::Applied
    }

    /// Replaces what a call adds to the tallies with what it adds now.
    fn recount(&mut self, key: &Arc<str>) {
        let Some(entry) = self.calls.get_mut(key) else {
            return;
        };
        let (counted, live) = match entry.call.status() {
            Status::Finished { at, verdict } => (Some(count_of(&self.settings, at, verdict)), None),
            Status::Live(live) => (None, Some(live)),
        };
        let last_at = entry.call.last_at().unwrap_or(self.now);
        // Take the old values out, update the tallies, then put the new ones
        // back: no clones on this per-event path.
        let old_counted = entry.counted.take();
        let old_live = entry.live.take();
        let old_indexed = entry.indexed_last_at.take();
        if old_counted != counted {
            if let Some(new) = &counted
                && self.settings.track_changes
            {
                self.changes.counted.insert(key.clone(), new.clone());
            }
            if let Some(old) = &old_counted {
                self.count(key, old, -1);
            }
            if let Some(new) = &counted {
                self.count(key, new, 1);
            }
        }
        if old_live != live {
            if let Some(old) = &old_live {
                self.count_live(key, old, -1);
            }
            if let Some(new) = &live {
                self.count_live(key, new, 1);
            }
        }
        if old_indexed != live.as_ref().map(|_| last_at) {
            if let Some(old_at) = old_indexed {
                self.live_by_last_event.remove(&(old_at, key.clone()));
            }
            if live.is_some() {
                self.live_by_last_event.insert((last_at, key.clone()));
            }
        }
        if let Some(entry) = self.calls.get_mut(key) {
            entry.indexed_last_at = live.as_ref().map(|_| last_at);
            entry.counted = counted;
            entry.live = live;
        }
    }

    fn count(&mut self, key: &Arc<str>, counted: &Counted, sign: i64) {
        let settings = self.settings.clone();
        if self.keeps_day(counted.day) {
            let day = self.days.entry(counted.day).or_default();
            day.apply(counted, sign, &settings);
            if day.all.is_empty() {
                // A late event moved its only call to another day: the day
                // holds nothing, as if never counted (else it would list).
                self.days.remove(&counted.day);
            }
        }
        let index_key = (counted.finished_at, key.clone());
        if sign > 0 {
            self.finished_by_time.insert(index_key.clone());
            if counted.finished_at > self.now - settings.window {
                self.window.apply(counted, 1, &settings);
                self.in_window.insert(index_key);
            }
        } else {
            self.finished_by_time.remove(&index_key);
            if self.in_window.remove(&index_key) {
                self.window.apply(counted, -1, &settings);
            }
        }
    }

    fn count_live(&mut self, key: &Arc<str>, live: &Live, sign: i64) {
        self.live.apply(key, live, sign);
        if let Some(queue) = &live.queue {
            if !self.live_queues.contains_key(queue) {
                self.live_queues.insert(queue.clone(), LiveTally::default());
            }
            let tally = self.live_queues.get_mut(queue).expect("inserted above");
            tally.apply(key, live, sign);
            if tally.is_empty() {
                self.live_queues.remove(queue);
            }
        }
    }

    fn keeps_day(&self, day: Date) -> bool {
        match self.settings.keep_days {
            None => true,
            Some(keep) => self
                .today
                .checked_sub(jiff::Span::new().days(i64::from(keep)))
                .is_ok_and(|oldest| day >= oldest),
        }
    }

    fn age_window(&mut self) {
        let horizon = self.now - self.settings.window;
        while let Some((finished_at, key)) = self.in_window.first().cloned() {
            if finished_at > horizon {
                break;
            }
            self.in_window.pop_first();
            let settled = || self.settled.get(&key).map(|(_, c)| c.clone());
            if let Some(counted) = self
                .calls
                .get(&key)
                .and_then(|e| e.counted.clone())
                .or_else(settled)
            {
                let settings = self.settings.clone();
                self.window.apply(&counted, -1, &settings);
            }
        }
    }

    fn expire_stale(&mut self) {
        let Some(stale_after) = self.settings.stale_after else {
            return;
        };
        let horizon = self.now - stale_after;
        while let Some((last_at, key)) = self.live_by_last_event.first().cloned() {
            if last_at > horizon {
                break;
            }
            if let Some(entry) = self.calls.get_mut(&key) {
                entry.call.expire(last_at + stale_after);
                self.expired_calls += 1;
                tracing::info!(call = ?key, "expired after no event for {stale_after:#}");
            }
            self.live_by_last_event.pop_first();
            self.recount(&key);
        }
    }

    /// Drops calls finished longer ago than the late window, remembering their ids.
    fn retire_finished(&mut self) {
        let Some(late_window) = self.settings.late_window else {
            return;
        };
        let horizon = self.now - late_window;
        while let Some((finished_at, key)) = self.finished_by_time.first().cloned() {
            if finished_at >= horizon {
                break;
            }
            self.finished_by_time.pop_first();
            if self.in_window.remove(&(finished_at, key.clone()))
                && let Some(counted) = self.calls.get(&key).and_then(|e| e.counted.clone())
            {
                let settings = self.settings.clone();
                self.window.apply(&counted, -1, &settings);
            }
            self.calls.remove(&key);
            self.retired.insert(key, finished_at);
        }
    }

    /// Follows the day: when `now` leaves the cached day, finds the new one
    /// and forgets days, retired calls and ids past keeping. Cheap otherwise,
    /// since a feed clock advances on nearly every event.
    fn turn_day(&mut self) {
        if (self.day_start..self.next_day_start).contains(&self.now) {
            return;
        }
        let rule = &self.settings.day;
        self.today = rule.day_of(self.now);
        self.day_start = rule.start_of(self.today);
        self.next_day_start = rule.next_start(self.now);
        let Some(keep) = self.settings.keep_days else {
            return;
        };
        let Ok(oldest) = self
            .today
            .checked_sub(jiff::Span::new().days(i64::from(keep)))
        else {
            return;
        };
        self.days.retain(|day, _| *day >= oldest);
        // An id or retired call older than the kept days can only repeat or
        // extend a call whose events would now be late: no box could change.
        let horizon = rule.start_of(oldest);
        self.retired
            .retain(|_, finished_at| *finished_at >= horizon);
        self.seen_ids.retain(|_, at| *at >= horizon);
    }

    /// Drops the events of `call` if it is finished, keeping its count: for
    /// a reader that knows no more events will come for it (`classify`
    /// holding whole files), so that memory holds counts, not histories.
    /// It stays in [`Engine::finished_calls`]; a live call is kept whole.
    pub fn settle(&mut self, call: &str) {
        if self.calls.get(call).is_none_or(|e| e.counted.is_none()) {
            return;
        }
        let Some((key, entry)) = self.calls.remove_entry(call) else {
            return;
        };
        let Some(counted) = entry.counted else { return };
        // Its place in the rolling window stays (aging finds it settled).
        self.finished_by_time
            .remove(&(counted.finished_at, key.clone()));
        self.settled.insert(key, (entry.first_arrival, counted));
    }

    /// Counts a call that finished long enough ago to be settled (past the
    /// late window) from its recorded count, without its events: it joins
    /// its day's tallies and the retired calls, as live it would have.
    pub fn restore_settled(&mut self, call: &str, counted: &Counted) {
        debug_assert!(
            !self.calls.contains_key(call),
            "{call} is replayed, not settled"
        );
        // Its queue was folded when it was live: only a name kept then comes back.
        if let Some(queue) = &counted.verdict.queue
            && queue != OTHER_QUEUE
            && self.queues_seen.len() < self.settings.max_queues
        {
            self.queues_seen.insert(queue.clone());
        }
        if self.keeps_day(counted.day) {
            let settings = self.settings.clone();
            let day = self.days.entry(counted.day).or_default();
            day.apply(counted, 1, &settings);
        }
        self.retired.insert(Arc::from(call), counted.finished_at);
    }

    /// How a call finished at `finished_at` with `verdict` counts.
    pub fn count_of(&self, finished_at: Timestamp, verdict: Verdict) -> Counted {
        count_of(&self.settings, finished_at, verdict)
    }

    /// Whether "now" is known: always on the wall clock; on a feed clock,
    /// once an event has moved it (before that, "today" would be 1970-01-01).
    pub fn knows_now(&self) -> bool {
        !(self.settings.feed_clock && self.now == Timestamp::UNIX_EPOCH)
    }

    /// Today's site day.
    pub fn today(&self) -> Date {
        self.today
    }

    /// The tallies of a day, if it is kept.
    pub fn day(&self, day: Date) -> Option<&Scope> {
        self.days.get(&day)
    }

    /// The days kept, oldest first.
    pub fn days(&self) -> impl Iterator<Item = (&Date, &Scope)> {
        self.days.iter()
    }

    /// The rolling window's tallies.
    pub fn window(&self) -> &Scope {
        &self.window
    }

    /// Live calls per state, and queue entries.
    pub fn live(&self) -> &LiveTally {
        &self.live
    }

    /// Live calls per queue.
    pub fn live_queues(&self) -> &BTreeMap<String, LiveTally> {
        &self.live_queues
    }

    /// Agents by name.
    pub fn agents(&self) -> &BTreeMap<String, AgentEntry> {
        &self.agents
    }

    /// Events that arrived after their call's late window.
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// Events refused because their call was full.
    pub fn refused_call_full(&self) -> u64 {
        self.refused_call_full
    }

    /// Calls expired as stale so far.
    pub fn expired_calls(&self) -> u64 {
        self.expired_calls
    }

    /// Calls held in memory (live, finished and recently retired).
    pub fn calls_in_memory(&self) -> usize {
        self.calls.len()
    }

    /// Finished calls in memory (settled ones too), in order of first arrival.
    pub fn finished_calls(&self) -> Vec<(&str, &Counted)> {
        let mut calls: Vec<(u64, &str, &Counted)> = self
            .calls
            .iter()
            .filter_map(|(k, e)| e.counted.as_ref().map(|c| (e.first_arrival, &**k, c)))
            .chain(
                self.settled
                    .iter()
                    .map(|(k, (arrival, c))| (*arrival, &**k, c)),
            )
            .collect();
        calls.sort_by_key(|(arrival, _, _)| *arrival);
        calls.into_iter().map(|(_, k, c)| (k, c)).collect()
    }

    /// Live calls in memory, with their state.
    pub fn live_calls(&self) -> impl Iterator<Item = (&str, &Live)> {
        self.calls
            .iter()
            .filter_map(|(k, e)| e.live.as_ref().map(|l| (&**k, l)))
    }

    /// What changed since the last call (with `track_changes`), taken once:
    /// whoever drains it hands it to every consumer.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// The sorted history of a call in memory.
    pub fn history(&self, call: &str) -> Option<&[HistoryEvent]> {
        self.calls.get(call).map(|e| e.call.history())
    }
}

/// How a call finished at `finished_at` with `verdict` counts under `settings`
/// (for past days read from the store off the engine's lock).
pub fn count_of(settings: &EngineSettings, finished_at: Timestamp, verdict: Verdict) -> Counted {
    let contribution = Contribution {
        outcome: verdict.outcome,
        wait_ms: verdict.wait_ms,
        reached_staff: verdict.reached_staff,
        boxes: settings
            .definitions
            .iter()
            .map(|d| d.box_of(verdict.outcome, verdict.wait_ms, verdict.reached_staff))
            .collect(),
    };
    Counted {
        finished_at,
        day: settings.day.day_of(finished_at),
        verdict,
        contribution,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EndedBy, EventKind as K};
    use crate::outcome::Outcome;
    use jiff::civil::{Time, date};
    use jiff::tz::TimeZone;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ev(call: &str, at: &str, kind: K) -> Event {
        Event {
            id: None,
            call: Some(call.into()),
            at: ts(at),
            kind,
        }
    }

    fn queued(call: &str, at: &str) -> Event {
        ev(call, at, K::Queued { queue: "q".into() })
    }

    fn ended(call: &str, at: &str) -> Event {
        ev(
            call,
            at,
            K::Ended {
                by: EndedBy::Caller,
            },
        )
    }

    fn engine(settings: EngineSettings, now: &str) -> Engine {
        Engine::new(Arc::new(settings), ts(now))
    }

    fn day_calls(e: &Engine, day: Date) -> i64 {
        e.day(day).map_or(0, |s| s.all.calls())
    }

    fn abandoned_today(e: &Engine) -> i64 {
        e.day(e.today())
            .map_or(0, |s| s.all.outcome_count(Outcome::QueueAbandoned))
    }

    /// A settled call leaves memory but counts as before: in the finished
    /// calls (same order), the day and the rolling window as it ages; a
    /// live call asked to settle stays whole.
    #[test]
    fn settled_calls_count_as_kept_ones() {
        let settings = || EngineSettings {
            late_window: None,
            feed_clock: true,
            ..Default::default()
        };
        let (mut kept, mut settled) = (
            engine(settings(), "2026-11-20T09:00:00Z"),
            engine(settings(), "2026-11-20T09:00:00Z"),
        );
        let batches = [
            vec![
                queued("a", "2026-11-20T10:00:00Z"),
                queued("b", "2026-11-20T10:01:00Z"),
            ],
            vec![
                ended("a", "2026-11-20T10:02:00Z"),
                queued("c", "2026-11-20T10:03:00Z"),
            ],
            vec![ended("c", "2026-11-20T10:04:00Z")],
        ];
        for (batch, done) in batches.into_iter().zip([vec![], vec!["a", "b"], vec!["c"]]) {
            kept.ingest(batch.clone());
            settled.ingest(batch);
            for call in done {
                settled.settle(call);
            }
        }
        assert_eq!(settled.calls_in_memory(), 1, "b is live: kept");
        assert_eq!(kept.finished_calls(), settled.finished_calls());
        let today = kept.today();
        let figures = |e: &Engine| (day_calls(e, today), e.window().all.calls(), e.live().states);
        assert_eq!(figures(&kept), figures(&settled));
        for at in ["2026-11-20T11:02:30Z", "2026-11-20T11:30:00Z"] {
            kept.advance(ts(at));
            settled.advance(ts(at));
            assert_eq!(figures(&kept), figures(&settled), "at {at}");
        }
        assert_eq!(settled.window().all.calls(), 0, "both aged out");
    }

    #[test]
    fn queue_names_beyond_the_cap_count_under_other() {
        let settings = EngineSettings {
            max_queues: 2,
            ..Default::default()
        };
        let mut e = engine(settings, "2026-11-20T12:00:00Z");
        let on = |call: &str, queue: &str| {
            ev(
                call,
                "2026-11-20T11:00:00Z",
                K::Queued {
                    queue: queue.into(),
                },
            )
        };
        e.ingest(vec![
            on("a", "x"),
            on("b", "y"),
            on("c", "z"),
            on("d", "x"),
            on("e", "w"),
        ]);
        let queues: Vec<&str> = e.live_queues().keys().map(String::as_str).collect();
        assert_eq!(queues, [OTHER_QUEUE, "x", "y"]);
        assert_eq!(e.live_queues()[OTHER_QUEUE].states.iter().sum::<i64>(), 2);
        assert_eq!(e.queues_folded(), 2);
    }

    #[test]
    fn calls_a_batch_would_open() {
        let mut e = engine(EngineSettings::default(), "2026-11-20T12:00:00Z");
        e.ingest(vec![queued("a", "2026-11-20T11:00:00Z")]);
        // (events, open now, opening): known calls and calls the batch ends open nothing.
        let cases = [
            (vec![queued("a", "2026-11-20T11:01:00Z")], 0),
            (vec![queued("b", "2026-11-20T11:01:00Z")], 1),
            (
                vec![
                    queued("b", "2026-11-20T11:01:00Z"),
                    ended("b", "2026-11-20T11:02:00Z"),
                ],
                0,
            ),
            (
                vec![
                    queued("b", "2026-11-20T11:01:00Z"),
                    queued("b", "2026-11-20T11:01:30Z"),
                    queued("c", "2026-11-20T11:01:00Z"),
                ],
                2,
            ),
        ];
        for (events, opening) in cases {
            assert_eq!(e.open_calls_after(&events), (1, opening), "{events:?}");
        }
    }

    #[test]
    fn midnight_turn_with_the_wall_clock_needs_no_event() {
        let mut e = engine(EngineSettings::default(), "2026-11-20T23:59:00Z");
        e.ingest(vec![
            queued("a", "2026-11-20T23:58:00Z"),
            ended("a", "2026-11-20T23:58:30Z"),
        ]);
        assert_eq!(e.today(), date(2026, 11, 20));
        assert_eq!(abandoned_today(&e), 1);
        e.advance(ts("2026-11-21T00:00:00Z"));
        assert_eq!(e.today(), date(2026, 11, 21));
        assert_eq!(abandoned_today(&e), 0, "boxes reset when the day turns");
        assert_eq!(day_calls(&e, date(2026, 11, 20)), 1, "yesterday is kept");
        assert_eq!(
            e.window().all.calls(),
            1,
            "the rolling window spans midnight"
        );
    }

    #[test]
    fn midnight_turn_with_the_feed_clock_follows_events() {
        let settings = EngineSettings {
            feed_clock: true,
            ..Default::default()
        };
        let mut e = engine(settings, "1970-01-01T00:00:00Z");
        e.ingest(vec![
            queued("a", "2026-11-20T23:50:00Z"),
            ended("a", "2026-11-20T23:55:00Z"),
        ]);
        assert_eq!((e.today(), abandoned_today(&e)), (date(2026, 11, 20), 1));
        // A call still going at midnight counts on the day it finishes.
        e.ingest(vec![
            queued("b", "2026-11-20T23:59:00Z"),
            ended("b", "2026-11-21T00:00:30Z"),
        ]);
        assert_eq!((e.today(), abandoned_today(&e)), (date(2026, 11, 21), 1));
        assert_eq!(day_calls(&e, date(2026, 11, 20)), 1);
    }

    #[test]
    fn day_start_and_dst_count_the_right_hours() {
        let london = DayRule::new(TimeZone::get("Europe/London").unwrap(), Time::midnight());
        let settings = EngineSettings {
            day: london,
            feed_clock: true,
            keep_days: None,
            ..Default::default()
        };
        let mut e = engine(settings, "1970-01-01T00:00:00Z");
        // 2026-03-29 is 23 hours long in London; 2026-10-25 is 25.
        let calls = [
            ("s1", "2026-03-29T00:30:00Z"), // 00:30 GMT, the 29th
            ("s2", "2026-03-29T22:59:00Z"), // 23:59 BST, the 29th
            ("s3", "2026-03-29T23:00:00Z"), // 00:00 BST, the 30th
            ("f1", "2026-10-25T00:30:00Z"), // 01:30 BST, the 25th
            ("f2", "2026-10-25T23:59:00Z"), // 23:59 GMT, the 25th
            ("f3", "2026-10-26T00:00:00Z"), // 00:00 GMT, the 26th
        ];
        for (call, at) in calls {
            e.ingest(vec![queued(call, at), ended(call, at)]);
        }
        assert_eq!(day_calls(&e, date(2026, 3, 29)), 2);
        assert_eq!(day_calls(&e, date(2026, 3, 30)), 1);
        assert_eq!(day_calls(&e, date(2026, 10, 25)), 2);
        assert_eq!(day_calls(&e, date(2026, 10, 26)), 1);
    }

    #[test]
    fn day_starting_inside_a_skipped_hour() {
        // Sao Paulo skipped 00:00-01:00 on 2018-11-04; a 00:30 day start begins at the jump.
        let rule = DayRule::new(
            TimeZone::get("America/Sao_Paulo").unwrap(),
            Time::new(0, 30, 0, 0).unwrap(),
        );
        let settings = EngineSettings {
            day: rule,
            feed_clock: true,
            keep_days: None,
            ..Default::default()
        };
        let mut e = engine(settings, "1970-01-01T00:00:00Z");
        e.ingest(vec![
            queued("a", "2018-11-04T02:59:00Z"),
            ended("a", "2018-11-04T02:59:59Z"),
        ]);
        e.ingest(vec![
            queued("b", "2018-11-04T03:00:00Z"),
            ended("b", "2018-11-04T03:00:01Z"),
        ]);
        assert_eq!(day_calls(&e, date(2018, 11, 3)), 1);
        assert_eq!(day_calls(&e, date(2018, 11, 4)), 1);
    }

    #[test]
    fn stale_calls_expire_and_a_later_end_reclassifies_them() {
        let mut e = engine(EngineSettings::default(), "2026-11-20T09:00:00Z");
        e.ingest(vec![queued("a", "2026-11-20T09:00:00Z")]);
        assert_eq!(e.live().states[LiveState::Queued.index()], 1);
        e.advance(ts("2026-11-20T12:59:59Z"));
        assert_eq!(e.expired_calls(), 0);
        e.advance(ts("2026-11-20T13:00:00Z"));
        assert_eq!(e.expired_calls(), 1);
        assert_eq!(e.live().states[LiveState::Queued.index()], 0);
        let today = e.day(e.today()).unwrap();
        assert_eq!(today.all.outcome_count(Outcome::Expired), 1);
        let report = e.ingest(vec![ended("a", "2026-11-20T09:10:00Z")]);
        assert_eq!(report.late, 0);
        let today = e.day(e.today()).unwrap();
        assert_eq!(today.all.outcome_count(Outcome::Expired), 0);
        assert_eq!(today.all.outcome_count(Outcome::QueueAbandoned), 1);
    }

    #[test]
    fn a_call_moved_to_another_day_leaves_no_empty_day() {
        // Two `ended`, the later one first: the call counts after midnight,
        // then moves back to the day of its first `ended`.
        let mut e = engine(EngineSettings::default(), "2026-11-22T00:10:00Z");
        e.ingest(vec![
            queued("a", "2026-11-21T23:55:00Z"),
            ended("a", "2026-11-22T00:00:02Z"),
        ]);
        assert_eq!(day_calls(&e, date(2026, 11, 22)), 1);
        e.ingest(vec![ended("a", "2026-11-21T23:57:41Z")]);
        let days: Vec<Date> = e.days().map(|(d, _)| *d).collect();
        assert_eq!(days, [date(2026, 11, 21)], "no empty day is kept");
    }

    #[test]
    fn events_after_the_late_window_change_no_box() {
        let mut e = engine(EngineSettings::default(), "2026-11-20T09:00:00Z");
        e.ingest(vec![
            queued("a", "2026-11-20T09:00:00Z"),
            ended("a", "2026-11-20T09:01:00Z"),
        ]);
        e.advance(ts("2026-11-20T09:30:00Z"));
        // Within the late window: the call is corrected (answered now).
        let r = e.ingest(vec![ev(
            "a",
            "2026-11-20T09:00:30Z",
            K::Answered {
                agent: "amy".into(),
            },
        )]);
        assert_eq!(r.late, 0);
        assert_eq!(
            e.day(e.today())
                .unwrap()
                .all
                .outcome_count(Outcome::Answered),
            1
        );
        // Past it (finished 09:01, now 10:02): stored as late, no box moves.
        e.advance(ts("2026-11-20T10:02:00Z"));
        let r = e.ingest(vec![ev("a", "2026-11-20T09:00:40Z", K::DeadEnd)]);
        assert_eq!((r.accepted, r.late), (1, 1));
        assert_eq!(e.late_events(), 1);
        let today = e.day(e.today()).unwrap();
        assert_eq!(today.all.outcome_count(Outcome::Answered), 1);
        assert_eq!(today.all.outcome_count(Outcome::DeadEnd), 0);
        assert_eq!(e.calls_in_memory(), 0, "the call was retired from memory");
    }

    #[test]
    fn the_rolling_window_shrinks_as_calls_age_out() {
        let mut e = engine(EngineSettings::default(), "2026-11-20T09:00:00Z");
        e.ingest(vec![
            queued("a", "2026-11-20T09:00:00Z"),
            ended("a", "2026-11-20T09:00:10Z"),
        ]);
        e.advance(ts("2026-11-20T09:30:00Z"));
        e.ingest(vec![
            queued("b", "2026-11-20T09:30:00Z"),
            ended("b", "2026-11-20T09:30:10Z"),
        ]);
        assert_eq!(e.window().all.calls(), 2);
        e.advance(ts("2026-11-20T10:00:10Z"));
        assert_eq!(e.window().all.calls(), 1);
        e.advance(ts("2026-11-20T10:30:10Z"));
        assert_eq!(e.window().all.calls(), 0);
        assert_eq!(day_calls(&e, e.today()), 2);
    }

    #[test]
    fn a_call_holds_a_bounded_number_of_events() {
        let mut e = engine(EngineSettings::default(), "2026-11-20T09:00:00Z");
        let start = ts("2026-11-20T09:00:00Z");
        let events: Vec<Event> = (0..MAX_CALL_EVENTS + 10)
            .map(|i| Event {
                id: None,
                call: Some("long".into()),
                at: start + SignedDuration::from_millis(i as i64),
                kind: K::IvrInput { digits: None },
            })
            .collect();
        let r = e.ingest(events);
        assert_eq!((r.accepted, r.call_full), (MAX_CALL_EVENTS as u64 + 10, 10));
        assert_eq!(e.history("long").unwrap().len(), MAX_CALL_EVENTS);
        assert_eq!(e.refused_call_full(), 10);
    }

    #[test]
    fn duplicates_by_id_are_ignored() {
        let mut e = engine(EngineSettings::default(), "2026-11-20T09:00:00Z");
        let mut a = queued("a", "2026-11-20T09:00:00Z");
        a.id = Some("e1".into());
        let r = e.ingest(vec![a.clone(), a]);
        assert_eq!((r.accepted, r.duplicates), (1, 1));
    }
}
