//! Property tests: arbitrary bytes never panic the parser, and arbitrary
//! (even nonsensical) event sequences never panic the engine, whose boxes
//! always add up to its finished calls. More cases: `PROPTEST_CASES=100000`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Value, json};
use wallboard::engine::{Engine, EngineSettings};
use wallboard::event::{Event, TYPE_NAMES};
use wallboard::feed::{self, BatchLimits, Layout};
use wallboard::snapshot;

const BASE: &str = "2026-11-20T23:00:00Z";

fn base() -> Timestamp {
    BASE.parse().unwrap()
}

/// Bytes that look a little like a feed, so the parser gets past its first byte.
fn feedish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b",".to_vec()),
        Just(b":".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\n".to_vec()),
        Just(br#""type":"ended""#.to_vec()),
        Just(br#""call":"c1""#.to_vec()),
        Just(br#""at":"2026-11-20T09:00:00Z""#.to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..64).prop_map(|pieces| pieces.concat())
}

/// One event of a small world (3 calls, 3 agents, 2 queues), in JSON, maybe invalid.
fn event_json() -> impl Strategy<Value = Value> {
    (
        0..TYPE_NAMES.len(),
        0..4u8,
        0..7200i64,
        prop::option::of(0..20u8),
        0..3u8,
        0..2u8,
        0..5usize,
        0..3usize,
    )
        .prop_map(|(kind, call, secs, id, agent, queue, status, by)| {
            let status = ["available", "busy", "wrap_up", "away", "offline"][status];
            let by = ["caller", "agent", "system"][by];
            let at = base() + SignedDuration::from_secs(secs - 3600);
            let mut event = json!({
                "type": TYPE_NAMES[kind],
                "at": at.to_string(),
                "agent": format!("a{agent}"),
                "queue": format!("q{queue}"),
                "status": status,
                "by": by,
                "direction": if call == 3 { "outbound" } else { "inbound" },
                "to_queue": format!("q{}", 1 - queue),
            });
            if TYPE_NAMES[kind] != "agent_status" {
                event["call"] = json!(format!("c{call}"));
            }
            if let Some(id) = id {
                event["id"] = json!(format!("e{id}"));
            }
            event
        })
}

fn parse_one(value: &Value) -> Option<Event> {
    feed::parse_batch(value.to_string().as_bytes(), Layout::Sniff)
        .ok()?
        .pop()
}

fn settings() -> Arc<EngineSettings> {
    // Nothing late, stale or forgotten: every finished call stays countable.
    Arc::new(EngineSettings {
        late_window: None,
        stale_after: None,
        keep_days: None,
        ..EngineSettings::default()
    })
}

/// Boxes add up to finished calls, per definition, day and queue; no count is negative.
fn check_invariants(engine: &Engine) -> Result<(), TestCaseError> {
    let mut finished_by_day: BTreeMap<String, i64> = BTreeMap::new();
    for (_, counted) in engine.finished_calls() {
        *finished_by_day.entry(counted.day.to_string()).or_default() += 1;
    }
    let days: Vec<_> = engine.days().map(|(day, _)| *day).collect();
    for day in days {
        let board = snapshot::past_day(engine, day).expect("a kept day has a board");
        let outcomes: i64 = sum(&board["outcomes"])?;
        let expected = finished_by_day.get(&day.to_string()).copied().unwrap_or(0);
        prop_assert_eq!(outcomes, expected, "outcomes of {} vs finished calls", day);
        check_scope(&board, outcomes)?;
        for (name, queue) in board["queues"].as_object().into_iter().flatten() {
            let calls = sum(&queue["outcomes"])?;
            prop_assert!(calls > 0, "queue {} is kept empty", name);
            check_scope(queue, calls)?;
        }
    }
    let today = snapshot::today(engine);
    let window_calls = sum(&today["window"]["outcomes"])?;
    check_scope(&today["window"], window_calls)?;
    for (state, n) in today["live"].as_object().into_iter().flatten() {
        if let Some(n) = n.as_i64() {
            prop_assert!(n >= 0, "live {} is {}", state, n);
        }
    }
    Ok(())
}

fn check_scope(scope: &Value, calls: i64) -> Result<(), TestCaseError> {
    for (name, def) in scope["definitions"].as_object().into_iter().flatten() {
        prop_assert_eq!(sum(&def["boxes"])?, calls, "boxes of {}", name);
    }
    Ok(())
}

fn sum(counts: &Value) -> Result<i64, TestCaseError> {
    for (name, n) in common::counts_in(counts) {
        prop_assert!(n >= 0, "{} is negative: {}", name, n);
    }
    Ok(common::sum(counts))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let limits = BatchLimits { max_events: Some(5), max_depth: Some(4) };
        for layout in [Layout::Sniff, Layout::Ndjson] {
            let _ = feed::parse_batch(&bytes, layout);
            let _ = feed::parse_batch_within(&bytes, layout, limits);
        }
    }

    #[test]
    fn feedish_bytes_never_panic_the_parser(bytes in feedish_bytes()) {
        let limits = BatchLimits { max_events: Some(5), max_depth: Some(4) };
        for layout in [Layout::Sniff, Layout::Ndjson] {
            let unlimited = feed::parse_batch(&bytes, layout);
            let limited = feed::parse_batch_within(&bytes, layout, limits);
            // Limits only ever refuse more; what they accept is what the parser reads.
            if let Ok(events) = limited {
                prop_assert_eq!(Ok(events), unlimited);
            }
        }
    }

    #[test]
    fn arbitrary_events_never_panic_the_engine(
        batches in prop::collection::vec(prop::collection::vec(event_json(), 0..12), 0..12),
        advances in prop::collection::vec(0..7200i64, 12),
    ) {
        let mut engine = Engine::new(settings(), base() - SignedDuration::from_hours(1));
        for (batch, advance) in batches.iter().zip(advances) {
            let events: Vec<Event> = batch.iter().filter_map(parse_one).collect();
            engine.ingest(events);
            engine.advance(base() + SignedDuration::from_secs(advance - 3600));
            check_invariants(&engine)?;
        }
    }
}

#[test]
fn the_generated_events_are_mostly_valid() {
    // The engine property is only as good as the events that get past the parser.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = event_json();
    let valid = (0..200)
        .filter(|_| parse_one(&strategy.new_tree(&mut runner).unwrap().current()).is_some())
        .count();
    assert!(valid > 150, "only {valid} of 200 generated events parse");
}
