//! Builds the board documents of [`crate::protocol`] from the engine: today's
//! board (with live figures and the boards' queue groups) and a past day's.
//! The hub diffs and sends them as JSON, so each has a `Value` form too.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::Value;

use crate::call::LiveState;
use crate::engine::{Engine, LiveTally, Scope};
use crate::protocol::{
    AgentCounts, Figures, Group, LiveFigures, PastBoard, PastQueue, Queue, TodayBoard, Window,
    to_value,
};
use crate::stats::Tally;

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

fn definitions(engine: &Engine, tally: &Tally) -> BTreeMap<String, Figures> {
    engine
        .settings()
        .definitions
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name().to_owned(), tally.figures(i, d)))
        .collect()
}

/// Today's queues: those with finished calls today or calls in progress.
fn queues(engine: &Engine, scope: Option<&Scope>) -> BTreeMap<String, Queue> {
    let empty = Tally::default();
    let mut names: Vec<&String> = scope.map(|s| s.queues.keys().collect()).unwrap_or_default();
    names.extend(engine.live_queues().keys());
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let tally = scope.and_then(|s| s.queues.get(name)).unwrap_or(&empty);
            let live = engine
                .live_queues()
                .get(name)
                .map(LiveFigures::from)
                .unwrap_or_default();
            let queue = Queue {
                live,
                outcomes: tally.outcomes(),
                definitions: definitions(engine, tally),
            };
            (name.clone(), queue)
        })
        .collect()
}

fn past_queues(engine: &Engine, scope: &Scope) -> BTreeMap<String, PastQueue> {
    scope
        .queues
        .iter()
        .map(|(name, tally)| {
            let queue = PastQueue {
                outcomes: tally.outcomes(),
                definitions: definitions(engine, tally),
            };
            (name.clone(), queue)
        })
        .collect()
}

fn agents_where(engine: &Engine, serves: impl Fn(&[String]) -> bool) -> AgentCounts {
    let mut counts = AgentCounts::default();
    for agent in engine.agents().values().filter(|a| serves(&a.queues)) {
        counts.add(agent.status);
    }
    counts
}

/// The typed board of today, with under `groups.NAME` the figures of each
/// (name, queues) group summed over its queues (boards with a queue filter read them).
pub fn today_board(engine: &Engine, groups: &[(String, Vec<String>)]) -> TodayBoard {
    let today = engine.today();
    let scope = engine.day(today);
    let empty = Tally::default();
    let all = scope.map_or(&empty, |s| &s.all);
    let window = engine.window();
    TodayBoard {
        now: to_millis(engine.now()),
        day: engine.knows_now().then_some(today),
        timezone: engine.settings().day.time_zone_name(),
        live: LiveFigures::from(engine.live()),
        agents: agents_where(engine, |_| true),
        outcomes: all.outcomes(),
        definitions: definitions(engine, all),
        window: Window {
            minutes: engine.settings().window.as_mins(),
            outcomes: window.all.outcomes(),
            definitions: definitions(engine, &window.all),
        },
        queues: queues(engine, scope),
        groups: groups
            .iter()
            .map(|(name, members)| (name.clone(), group(engine, scope, members)))
            .collect(),
        // The hub adds the sources' state: the engine does not know it.
        feeds_down: BTreeMap::new(),
    }
}

/// The typed board of a day from its final tallies, without live figures.
pub fn day_board(engine: &Engine, day: Date, scope: &Scope) -> PastBoard {
    PastBoard {
        now: to_millis(engine.now()),
        day,
        timezone: engine.settings().day.time_zone_name(),
        outcomes: scope.all.outcomes(),
        definitions: definitions(engine, &scope.all),
        queues: past_queues(engine, scope),
    }
}

/// The board of today as it stands (without `seq`, which the hub adds).
pub fn today(engine: &Engine) -> Value {
    today_with_groups(engine, &[])
}

/// Today's board as JSON, with the figures of each (name, queues) group.
pub fn today_with_groups(engine: &Engine, groups: &[(String, Vec<String>)]) -> Value {
    to_value(&today_board(engine, groups))
}

/// The board of a day from its final tallies, as JSON.
pub fn past_board(engine: &Engine, day: Date, scope: &Scope) -> Value {
    to_value(&day_board(engine, day, scope))
}

/// The board of a day kept in memory, from its final tallies; `None` when not kept.
pub fn past_day(engine: &Engine, day: Date) -> Option<Value> {
    engine.day(day).map(|scope| past_board(engine, day, scope))
}

/// One group's live figures, agents and definitions: its queues summed. An
/// agent counts for a group when it serves one of the queues, or lists none
/// (it then serves every queue).
fn group(engine: &Engine, scope: Option<&Scope>, members: &[String]) -> Group {
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
    Group {
        live: figures,
        agents: agents_where(engine, serves),
        definitions: definitions(engine, &tally),
    }
}

/// Boards show time to the millisecond: finer digits are noise to a reader
/// and would change the board's bytes on every publish.
fn to_millis(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::board::{board_now, every_tile, lookup, path_base};
    use crate::engine::EngineSettings;
    use crate::feed::{Layout, parse_batch};

    /// One call answered after 30 s in queue `sales` and finished, one
    /// waiting there now, and an agent serving it.
    const CALLS: &str = r#"
{"call":"done","at":"2026-11-20T09:00:00Z","type":"call_started","direction":"inbound"}
{"call":"done","at":"2026-11-20T09:00:10Z","type":"queued","queue":"sales"}
{"call":"done","at":"2026-11-20T09:00:40Z","type":"answered","agent":"amy"}
{"call":"done","at":"2026-11-20T09:02:00Z","type":"ended"}
{"call":"waiting","at":"2026-11-20T09:04:00Z","type":"queued","queue":"sales"}
{"at":"2026-11-20T09:00:00Z","type":"agent_status","agent":"amy","status":"available","queues":["sales"]}
"#;

    /// The group a board called `sales-board` with queue `sales` reads.
    fn groups() -> Vec<(String, Vec<String>)> {
        vec![("sales-board".to_owned(), vec!["sales".to_owned()])]
    }

    fn engine() -> Engine {
        let now = "2026-11-20T09:05:00Z".parse().unwrap();
        let mut engine = Engine::new(Arc::new(EngineSettings::default()), now);
        engine.ingest(parse_batch(CALLS.as_bytes(), Layout::Ndjson).unwrap());
        engine
    }

    #[test]
    fn every_tile_path_resolves_to_a_value() {
        let engine = engine();
        let board = today_with_groups(&engine, &groups());
        let now = board_now(&board);
        let (group, queues) = &groups()[0];
        let bases = ["".to_owned(), path_base(group, queues)];
        let mut checked = 0;
        for definition in &engine.settings().definitions {
            for base in &bases {
                for tile in every_tile(definition, base) {
                    let value = lookup(&board, &tile.path);
                    assert!(
                        tile.format.number(value, now).is_some(),
                        "tile {} of {}: {} is {value:?} in {board:#}",
                        tile.name,
                        definition.name(),
                        tile.path,
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "only {checked} tiles checked");
    }

    #[test]
    fn the_json_reads_back_as_the_typed_documents() {
        let mut engine = engine();
        let today = today_board(&engine, &groups());
        let json = today_with_groups(&engine, &groups());
        assert_eq!(serde_json::from_value::<TodayBoard>(json).unwrap(), today);

        let day = engine.today();
        engine.advance("2026-11-21T09:00:00Z".parse().unwrap());
        let past = past_day(&engine, day).expect("yesterday is kept");
        let typed: PastBoard = serde_json::from_value(past).unwrap();
        assert_eq!((typed.day, typed.outcomes["answered"]), (day, 1));
        assert!(typed.queues.contains_key("sales"));
    }

    #[test]
    fn figures_without_a_value_are_left_out() {
        let engine = Engine::new(
            Arc::new(EngineSettings::default()),
            "2026-11-20T09:05:00Z".parse().unwrap(),
        );
        let board = today(&engine);
        let figures = &board["definitions"]["reachable"];
        assert_eq!(figures["offered"], 0);
        for absent in ["service_level", "asa_secs", "longest_wait_secs"] {
            assert!(figures.get(absent).is_none(), "{absent} in {figures}");
        }
        assert!(board["live"].get("oldest_queued_since").is_none());
        assert!(board.get("groups").is_none());
    }
}
