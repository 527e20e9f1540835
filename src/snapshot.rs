//! The board as JSON (interfaces.md "The snapshot"), read from the engine.
//! Figures without a value are left out rather than `null`, so that a JSON
//! Merge Patch (where `null` deletes) can carry every change exactly.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::call::LiveState;
use crate::engine::{Engine, LiveTally, Scope};
use crate::event::AgentStatus;
use crate::stats::{Figures, Tally};

#[derive(Serialize)]
struct Board {
    now: Timestamp,
    day: Date,
    timezone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<LiveFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Map<String, Value>>,
    outcomes: Map<String, Value>,
    definitions: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<Window>,
    queues: Map<String, Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    groups: Map<String, Value>,
}

#[derive(Serialize)]
struct Window {
    minutes: i64,
    outcomes: Map<String, Value>,
    definitions: Map<String, Value>,
}

#[derive(Serialize)]
struct LiveFigures {
    queued: i64,
    ringing: i64,
    talking: i64,
    in_ivr: i64,
    other: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    oldest_queued_since: Option<Timestamp>,
}

impl From<&LiveTally> for LiveFigures {
    fn from(t: &LiveTally) -> Self {
        let n = |s: LiveState| t.states[s.index()];
        LiveFigures {
            queued: n(LiveState::Queued),
            ringing: n(LiveState::Ringing),
            talking: n(LiveState::Talking),
            in_ivr: n(LiveState::InIvr),
            other: n(LiveState::Other),
            oldest_queued_since: t.oldest_queued_since(),
        }
    }
}

fn to_value<T: Serialize>(value: T) -> Value {
    serde_json::to_value(value).expect("board values serialize")
}

fn definitions(engine: &Engine, tally: &Tally) -> Map<String, Value> {
    engine
        .settings()
        .definitions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                d.name().to_owned(),
                to_value::<Figures>(tally.figures(i, d)),
            )
        })
        .collect()
}

fn queues(engine: &Engine, scope: Option<&Scope>, with_live: bool) -> Map<String, Value> {
    let empty = Tally::default();
    let mut names: Vec<&String> = scope.map(|s| s.queues.keys().collect()).unwrap_or_default();
    if with_live {
        names.extend(engine.live_queues().keys());
        names.sort();
        names.dedup();
    }
    names
        .into_iter()
        .map(|name| {
            let tally = scope.and_then(|s| s.queues.get(name)).unwrap_or(&empty);
            let mut queue = Map::new();
            if with_live {
                let live = engine.live_queues().get(name).map_or_else(
                    || LiveFigures::from(&LiveTally::default()),
                    LiveFigures::from,
                );
                queue.insert("live".into(), to_value(live));
            }
            queue.insert("outcomes".into(), Value::Object(tally.outcomes()));
            queue.insert(
                "definitions".into(),
                Value::Object(definitions(engine, tally)),
            );
            (name.clone(), Value::Object(queue))
        })
        .collect()
}

fn agents(engine: &Engine) -> Map<String, Value> {
    agents_where(engine, |_| true)
}

fn agents_where(engine: &Engine, serves: impl Fn(&[String]) -> bool) -> Map<String, Value> {
    let mut counts = [0i64; 5];
    for agent in engine.agents().values().filter(|a| serves(&a.queues)) {
        counts[AgentStatus::ALL
            .iter()
            .position(|s| *s == agent.status)
            .unwrap_or(0)] += 1;
    }
    AgentStatus::ALL
        .iter()
        .zip(counts)
        .map(|(s, n)| (s.as_str().to_owned(), n.into()))
        .collect()
}

/// The board of today as it stands (without `seq`, which the hub adds).
pub fn today(engine: &Engine) -> Value {
    today_with_groups(engine, &[])
}

/// Today's board with, under `groups.NAME`, the figures of each (name,
/// queues) group summed over its queues (boards with a queue filter read them).
pub fn today_with_groups(engine: &Engine, groups: &[(String, Vec<String>)]) -> Value {
    let today = engine.today();
    let scope = engine.day(today);
    let empty = Tally::default();
    let all = scope.map_or(&empty, |s| &s.all);
    let window = engine.window();
    to_value(Board {
        now: to_millis(engine.now()),
        day: today,
        timezone: engine.settings().day.time_zone_name(),
        live: Some(LiveFigures::from(engine.live())),
        agents: Some(agents(engine)),
        outcomes: all.outcomes(),
        definitions: definitions(engine, all),
        window: Some(Window {
            minutes: engine.settings().window.as_mins(),
            outcomes: window.all.outcomes(),
            definitions: definitions(engine, &window.all),
        }),
        queues: queues(engine, scope, true),
        groups: groups
            .iter()
            .map(|(name, members)| (name.clone(), group(engine, scope, members)))
            .collect(),
    })
}

/// The board of a day from its final tallies, without live figures.
pub fn past_board(engine: &Engine, day: Date, scope: &Scope) -> Value {
    to_value(Board {
        now: to_millis(engine.now()),
        day,
        timezone: engine.settings().day.time_zone_name(),
        live: None,
        agents: None,
        outcomes: scope.all.outcomes(),
        definitions: definitions(engine, &scope.all),
        window: None,
        queues: queues(engine, Some(scope), false),
        groups: Map::new(),
    })
}

/// The board of a day kept in memory, from its final tallies; `None` when not kept.
pub fn past_day(engine: &Engine, day: Date) -> Option<Value> {
    engine.day(day).map(|scope| past_board(engine, day, scope))
}

/// One group's live figures, agents and definitions: its queues summed. An
/// agent counts for a group when it serves one of the queues, or lists none
/// (it then serves every queue).
fn group(engine: &Engine, scope: Option<&Scope>, members: &[String]) -> Value {
    let mut tally = Tally::default();
    let mut live = LiveTally::default();
    let mut oldest: Option<Timestamp> = None;
    for queue in members {
        if let Some(t) = scope.and_then(|s| s.queues.get(queue)) {
            tally.merge(t);
        }
        if let Some(l) = engine.live_queues().get(queue) {
            for (sum, n) in live.states.iter_mut().zip(l.states) {
                *sum += n;
            }
            oldest = oldest.into_iter().chain(l.oldest_queued_since()).min();
        }
    }
    let mut figures = LiveFigures::from(&live);
    figures.oldest_queued_since = oldest;
    let serves =
        |queues: &[String]| queues.is_empty() || queues.iter().any(|q| members.contains(q));
    let mut group = Map::new();
    group.insert("live".into(), to_value(figures));
    group.insert("agents".into(), Value::Object(agents_where(engine, serves)));
    group.insert(
        "definitions".into(),
        Value::Object(definitions(engine, &tally)),
    );
    Value::Object(group)
}

/// Boards show time to the millisecond: finer digits are noise to a reader
/// and would change the board's bytes on every publish.
fn to_millis(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}
