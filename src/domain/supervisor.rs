//! The supervisor's detail document: live calls, agents, today's callers to
//! call back and calls per 15 minutes. It holds caller numbers and agent
//! names, so it is published apart from the board and only ever sent to the
//! supervisor routes. Reads the engine; knows no web and no clock.
//!
//! The engine forgets finished calls after its late window, so the
//! [`Ledger`] keeps today's finished calls (their box per definition, caller
//! and wait) for the day's chart and call-back list; it resets when the day turns.

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::call::LiveState;
use crate::engine::{Changes, Counted, Engine};
use crate::event::EventKind;
use crate::outcome::Outcome;
use crate::source::status::StatusView;

/// Live calls listed at most (the count of all is sent too).
pub const MAX_LIVE_CALLS: usize = 500;
/// Callers to call back listed at most, newest first.
pub const MAX_CALLBACKS: usize = 500;
/// Agents listed at most.
pub const MAX_AGENTS: usize = 1000;
/// Width of a chart bar.
pub const BIN: SignedDuration = SignedDuration::from_mins(15);
/// The boxes charted and listed for calling back (in each definition that has them).
pub const CHART_BOXES: [&str; 3] = ["answered", "missed", "abandoned"];
/// Boxes whose callers may want a call back.
const CALLBACK_BOXES: [&str; 3] = ["missed", "abandoned", "timed_out"];

/// One finished call of today, as the supervisor needs it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    finished_at: Timestamp,
    outcome: Outcome,
    wait_ms: Option<i64>,
    queue: Option<String>,
    caller: Option<String>,
    /// Box index per definition.
    boxes: Vec<usize>,
}

/// Today's finished inbound calls, kept for the whole day.
#[derive(Debug, Default)]
pub struct Ledger {
    day: Option<Date>,
    calls: HashMap<String, Entry>,
    changed: bool,
    /// The call-back list and chart as last built (rebuilt only on a change).
    built: Option<(Value, Value)>,
}

impl Ledger {
    /// Records how a finished call counts now (a reclassified call replaces
    /// its entry); calls of other days and outbound calls are ignored.
    pub fn record(&mut self, call: &str, counted: &Counted) {
        let outcome = counted.verdict.outcome;
        if Some(counted.day) != self.day || outcome.is_outbound() || outcome == Outcome::Expired {
            return;
        }
        let entry = Entry {
            finished_at: counted.finished_at,
            outcome,
            wait_ms: counted.verdict.wait_ms,
            queue: counted.verdict.queue.clone(),
            caller: counted.verdict.caller.clone(),
            boxes: counted.contribution.boxes.clone(),
        };
        if self.calls.get(call) != Some(&entry) {
            self.calls.insert(call.to_owned(), entry);
            self.changed = true;
        }
    }

    /// Starts `today` afresh if the day turned.
    pub fn roll(&mut self, today: Date) {
        if self.day != Some(today) {
            self.day = Some(today);
            self.calls.clear();
            self.changed = true;
        }
    }

    /// Takes in what the engine changed, `today` being the engine's day after it.
    pub fn take(&mut self, today: Date, changes: &Changes) {
        self.roll(today);
        for (call, counted) in &changes.counted {
            self.record(call, counted);
        }
    }

    /// Today's calls counted.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is counted today.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// Builds the detail document (without `seq`, which the hub adds).
pub fn detail(engine: &Engine, ledger: &mut Ledger) -> Value {
    let (callbacks, chart) = match &ledger.built {
        Some(built) if !ledger.changed => built.clone(),
        _ => {
            let built = (callbacks(engine, ledger), chart(engine, ledger));
            ledger.built = Some(built.clone());
            ledger.changed = false;
            built
        }
    };
    let (live_total, live_calls) = live_calls(engine);
    json!({
        "day": engine.knows_now().then(|| engine.today()),
        "live_calls": live_calls,
        "live_calls_total": live_total,
        "agents": agents(engine),
        "callbacks": callbacks,
        "chart": chart,
        "limits": {"live_calls": MAX_LIVE_CALLS, "callbacks": MAX_CALLBACKS, "agents": MAX_AGENTS},
    })
}

fn caller_of(engine: &Engine, call: &str) -> Option<String> {
    engine.history(call)?.iter().find_map(|e| match &e.kind {
        EventKind::CallStarted { from, .. } => from.clone(),
        _ => None,
    })
}

/// Live calls, queued first and oldest first within a state.
fn live_calls(engine: &Engine) -> (usize, Vec<Value>) {
    let mut calls: Vec<_> = engine.live_calls().collect();
    calls.sort_by_key(|(id, live)| (live.state.index(), live.since, *id));
    let total = calls.len();
    let listed = calls
        .into_iter()
        .take(MAX_LIVE_CALLS)
        .map(|(id, live)| {
            let mut call = Map::new();
            call.insert("call".into(), id.into());
            call.insert("state".into(), live.state.as_str().into());
            call.insert("since".into(), live.since.to_string().into());
            if let Some(q) = &live.queue {
                call.insert("queue".into(), q.clone().into());
            }
            if let Some(a) = &live.agent {
                call.insert("agent".into(), a.clone().into());
            }
            if let Some(c) = caller_of(engine, id) {
                call.insert("caller".into(), c.into());
            }
            Value::Object(call)
        })
        .collect();
    (total, listed)
}

/// Agents by name, with the call they are on (talking, or ringing).
fn agents(engine: &Engine) -> Vec<Value> {
    let mut on_call: HashMap<&str, (&str, LiveState)> = HashMap::new();
    for (id, live) in engine.live_calls() {
        if let Some(agent) = &live.agent {
            let rank = |s: LiveState| u8::from(s == LiveState::Talking);
            let better = on_call
                .get(agent.as_str())
                .is_none_or(|(_, s)| rank(live.state) > rank(*s));
            if better {
                on_call.insert(agent, (id, live.state));
            }
        }
    }
    engine
        .agents()
        .iter()
        .take(MAX_AGENTS)
        .map(|(name, a)| {
            let mut agent = json!({
                "name": name,
                "status": a.status.as_str(),
                "since": a.since.to_string(),
                "queues": a.queues,
            });
            if let Some(reason) = &a.reason {
                agent["reason"] = json!(reason);
            }
            if let Some((call, state)) = on_call.get(name.as_str()) {
                agent["call"] = json!({"call": call, "state": state.as_str()});
            }
            agent
        })
        .collect()
}

/// Today's callers whose call landed in a call-back box of some definition,
/// newest first, each with its box per definition (the page filters by the
/// definition chosen) and whether the same number was answered later today.
fn callbacks(engine: &Engine, ledger: &Ledger) -> Value {
    let defs = &engine.settings().definitions;
    let box_name = |e: &Entry, d: usize| defs[d].boxes()[e.boxes[d]].as_str();
    let mut answered_last: HashMap<&str, Timestamp> = HashMap::new();
    for e in ledger.calls.values() {
        if let (Some(caller), Outcome::Answered) = (&e.caller, e.outcome) {
            let last = answered_last.entry(caller).or_insert(e.finished_at);
            *last = (*last).max(e.finished_at);
        }
    }
    let mut listed: Vec<(&String, &Entry)> = ledger
        .calls
        .iter()
        .filter(|(_, e)| (0..defs.len()).any(|d| CALLBACK_BOXES.contains(&box_name(e, d))))
        .collect();
    let total = listed.len();
    listed.sort_by(|a, b| (b.1.finished_at, b.0).cmp(&(a.1.finished_at, a.0)));
    let calls: Vec<Value> = listed
        .into_iter()
        .take(MAX_CALLBACKS)
        .map(|(id, e)| {
            let boxes: Map<String, Value> = defs
                .iter()
                .enumerate()
                .map(|(d, def)| (def.name().to_owned(), box_name(e, d).into()))
                .collect();
            let answered_later = e
                .caller
                .as_deref()
                .and_then(|c| answered_last.get(c))
                .is_some_and(|at| *at > e.finished_at);
            json!({
                "call": id,
                "caller": e.caller,
                "finished_at": e.finished_at.to_string(),
                "wait_secs": e.wait_ms.map(|w| w as f64 / 1000.0),
                "queue": e.queue,
                "outcome": e.outcome.as_str(),
                "boxes": boxes,
                "answered_later": answered_later,
            })
        })
        .collect();
    json!({"total": total, "calls": calls})
}

/// Calls per 15 minutes of today, per definition, for the charted boxes.
fn chart(engine: &Engine, ledger: &Ledger) -> Value {
    let settings = engine.settings();
    let today = engine.today();
    let start = settings.day.start_of(today);
    let end = settings.day.next_start(start);
    let bins = usize::try_from(end.duration_since(start).as_secs() / BIN.as_secs())
        .unwrap_or(96)
        .clamp(1, 200);
    let mut definitions = Map::new();
    for (d, def) in settings.definitions.iter().enumerate() {
        let charted: Vec<(usize, &str)> = CHART_BOXES
            .iter()
            .filter_map(|b| def.box_index(b).map(|i| (i, *b)))
            .collect();
        let mut series = vec![vec![0i64; bins]; charted.len()];
        for e in ledger.calls.values() {
            let bin = (e.finished_at.duration_since(start).as_secs() / BIN.as_secs()).max(0);
            let bin = usize::try_from(bin).unwrap_or(0).min(bins - 1);
            if let Some(s) = charted.iter().position(|(i, _)| *i == e.boxes[d]) {
                series[s][bin] += 1;
            }
        }
        let named: Map<String, Value> = charted
            .iter()
            .zip(series)
            .map(|((_, name), counts)| ((*name).to_owned(), json!(counts)))
            .collect();
        definitions.insert(def.name().to_owned(), Value::Object(named));
    }
    json!({
        "start": start.to_string(),
        "bin_minutes": BIN.as_mins(),
        "definitions": definitions,
    })
}

/// The sources as the supervisor lists them, in configuration order: their
/// status (without their queues) and, for those down at `now`, `down_since`.
pub fn sources(views: &[StatusView], now: Timestamp) -> Value {
    let listed = views.iter().map(|view| {
        let mut source = json!(view);
        if let Some(object) = source.as_object_mut() {
            object.remove("queues");
            if let Some(since) = view.down_since(now) {
                object.insert("down_since".to_owned(), json!(since));
            }
        }
        source
    });
    Value::Array(listed.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSettings;
    use crate::event::Event;
    use std::sync::Arc;

    fn event(v: Value) -> Event {
        Event::from_json(&v).unwrap()
    }

    #[test]
    fn detail_lists_live_calls_agents_callbacks_and_bins() {
        let now: Timestamp = "2026-11-20T09:30:00Z".parse().unwrap();
        let settings = EngineSettings {
            track_changes: true,
            ..EngineSettings::default()
        };
        let mut engine = Engine::new(Arc::new(settings), now);
        let at = |m: u32| format!("2026-11-20T09:{m:02}:00Z");
        engine.ingest(vec![
            event(json!({"type":"agent_status","at":at(0),"agent":"amy","status":"available"})),
            event(
                json!({"type":"call_started","call":"a","at":at(1),"direction":"inbound","channel":"voice","from":"+44 7700 900001"}),
            ),
            event(json!({"type":"queued","call":"a","at":at(2),"queue":"sales"})),
            event(json!({"type":"ended","call":"a","at":at(3)})),
            event(
                json!({"type":"call_started","call":"b","at":at(20),"direction":"inbound","channel":"voice","from":"+44 7700 900001"}),
            ),
            event(json!({"type":"queued","call":"b","at":at(20),"queue":"sales"})),
            event(json!({"type":"answered","call":"b","at":at(21),"agent":"amy"})),
            event(json!({"type":"ended","call":"b","at":at(25)})),
            event(
                json!({"type":"call_started","call":"c","at":at(28),"direction":"inbound","channel":"voice","from":"+44 7700 900123"}),
            ),
            event(json!({"type":"queued","call":"c","at":at(28),"queue":"sales"})),
            event(json!({"type":"answered","call":"c","at":at(29),"agent":"amy"})),
        ]);
        let mut ledger = Ledger::default();
        ledger.take(engine.today(), &engine.take_changes());
        let d = detail(&engine, &mut ledger);
        assert_eq!(ledger.len(), 2);
        assert_eq!(d["live_calls"][0]["caller"], "+44 7700 900123");
        assert_eq!(d["live_calls"][0]["agent"], "amy");
        assert_eq!(d["live_calls"][0]["state"], "talking");
        assert_eq!(d["agents"][0]["name"], "amy");
        assert_eq!(d["agents"][0]["call"]["call"], "c");
        assert_eq!(d["callbacks"]["total"], 1);
        let missed = &d["callbacks"]["calls"][0];
        assert_eq!(missed["caller"], "+44 7700 900001");
        assert_eq!(missed["boxes"]["reachable"], "missed");
        assert_eq!(missed["answered_later"], true);
        let reachable = &d["chart"]["definitions"]["reachable"];
        assert_eq!(reachable["missed"].as_array().unwrap().len(), 96);
        assert_eq!(reachable["missed"][36], 1, "09:00-09:15 is bin 36");
        assert_eq!(reachable["answered"][37], 1);
    }

    #[test]
    fn the_ledger_resets_when_the_day_turns() {
        let mut ledger = Ledger::default();
        let day: Date = "2026-11-20".parse().unwrap();
        ledger.roll(day);
        let engine = Engine::new(Arc::new(EngineSettings::default()), Timestamp::UNIX_EPOCH);
        let verdict = crate::outcome::Verdict {
            outcome: Outcome::QueueAbandoned,
            wait_ms: Some(1000),
            reached_staff: true,
            queue: None,
            agent: None,
            caller: None,
            times: Default::default(),
        };
        let counted = engine.count_of("2026-11-20T10:00:00Z".parse().unwrap(), verdict.clone());
        ledger.record("x", &counted);
        let yesterday = engine.count_of("2026-11-19T10:00:00Z".parse().unwrap(), verdict);
        ledger.record("y", &yesterday);
        assert_eq!(ledger.len(), 1);
        ledger.roll("2026-11-21".parse().unwrap());
        assert!(ledger.is_empty());
    }
}
