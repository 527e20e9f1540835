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
                let live = engine.live_queues().get(name).cloned().unwrap_or_default();
                queue.insert("live".into(), to_value(LiveFigures::from(&live)));
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
    let mut counts = [0i64; 5];
    for agent in engine.agents().values() {
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
    let today = engine.today();
    let scope = engine.day(today);
    let empty = Tally::default();
    let all = scope.map_or(&empty, |s| &s.all);
    let window = engine.window();
    to_value(Board {
        now: engine.now(),
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
    })
}

/// The board of a day from its final tallies, without live figures.
pub fn past_board(engine: &Engine, day: Date, scope: &Scope) -> Value {
    to_value(Board {
        now: engine.now(),
        day,
        timezone: engine.settings().day.time_zone_name(),
        live: None,
        agents: None,
        outcomes: scope.all.outcomes(),
        definitions: definitions(engine, &scope.all),
        window: None,
        queues: queues(engine, Some(scope), false),
    })
}

/// The board of a day kept in memory, from its final tallies; `None` when not kept.
pub fn past_day(engine: &Engine, day: Date) -> Option<Value> {
    engine.day(day).map(|scope| past_board(engine, day, scope))
}
