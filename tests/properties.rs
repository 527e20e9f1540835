//! Properties of the engine: the order events arrive in, their batching and
//! repeated deliveries change nothing, and every definition's boxes add up.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::sum;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};
use wallboard::engine::{Counted, Engine, EngineSettings};
use wallboard::event::Event;
use wallboard::snapshot;

/// One step of a call after its (optional) `call_started`.
#[derive(Debug, Clone)]
enum Step {
    Ivr,
    Input,
    Closed,
    SelfServed,
    DeadEnd,
    Queued(u8),
    Offered(u8),
    Declined(u8),
    Answered(u8),
    TransferToQueue(u8),
    TransferToAgent(u8),
    Transfer,
    Voicemail,
    Callback,
    TimedOut,
    VoicemailDropped,
}

const QUEUES: [&str; 3] = ["appointments", "results", "billing"];
const AGENTS: [&str; 3] = ["amy", "bob", "cat"];

fn step() -> impl Strategy<Value = Step> {
    let n = 0u8..3;
    prop_oneof![
        2 => Just(Step::Ivr),
        2 => Just(Step::Input),
        1 => Just(Step::Closed),
        1 => Just(Step::SelfServed),
        1 => Just(Step::DeadEnd),
        4 => n.clone().prop_map(Step::Queued),
        3 => n.clone().prop_map(Step::Offered),
        2 => n.clone().prop_map(Step::Declined),
        4 => n.clone().prop_map(Step::Answered),
        1 => n.clone().prop_map(Step::TransferToQueue),
        1 => n.prop_map(Step::TransferToAgent),
        1 => Just(Step::Transfer),
        1 => Just(Step::Voicemail),
        1 => Just(Step::Callback),
        2 => Just(Step::TimedOut),
        1 => Just(Step::VoicemailDropped),
    ]
}

/// How a call starts: no `call_started`, or one with a direction and dialer flag.
#[derive(Debug, Clone)]
enum Start {
    Implicit,
    Inbound,
    Outbound { dialer: bool },
}

/// One call: when it starts, its events with the gap before each, and how many `ended`.
#[derive(Debug, Clone)]
struct Journey {
    start_secs: i64,
    start: Start,
    steps: Vec<(Step, i64)>,
    ends: Vec<i64>,
}

fn journey() -> impl Strategy<Value = Journey> {
    // Calls start over 30 hours from 20:00 UTC, so they span several days.
    let start = prop_oneof![
        2 => Just(Start::Implicit),
        6 => Just(Start::Inbound),
        2 => any::<bool>().prop_map(|dialer| Start::Outbound { dialer }),
    ];
    let gap_ms = 1i64..180_000;
    (
        0i64..30 * 3600,
        start,
        prop::collection::vec((step(), gap_ms.clone()), 0..8),
        // Mostly one `ended`; sometimes none (still live) or two (the earliest counts).
        prop_oneof![1 => Just(0usize), 6 => Just(1), 1 => Just(2)]
            .prop_flat_map(move |n| prop::collection::vec(gap_ms.clone(), n)),
    )
        .prop_map(|(start_secs, start, steps, ends)| Journey {
            start_secs,
            start,
            steps,
            ends,
        })
}

/// The JSON events of a call, each with its own id and a strictly later `at`.
fn events_of(call: usize, journey: &Journey) -> Vec<Value> {
    let base: Timestamp = "2026-11-20T20:00:00Z".parse().unwrap();
    let mut at = base + SignedDuration::from_secs(journey.start_secs);
    let name = format!("c{call}");
    let mut events = Vec::new();
    let mut push = |at: Timestamp, mut event: Value| {
        event["id"] = json!(format!("{name}#{}", events.len()));
        event["call"] = json!(name);
        event["at"] = json!(at.to_string());
        events.push(event);
    };
    match journey.start {
        Start::Implicit => {}
        Start::Inbound => push(at, json!({"type": "call_started"})),
        Start::Outbound { dialer } => push(
            at,
            json!({"type": "call_started", "direction": "outbound", "dialer": dialer}),
        ),
    }
    for (step, gap_ms) in &journey.steps {
        at += SignedDuration::from_millis(*gap_ms);
        let q = |i: &u8| QUEUES[usize::from(*i)];
        let a = |i: &u8| AGENTS[usize::from(*i)];
        let event = match step {
            Step::Ivr => json!({"type": "ivr_started", "menu": "main"}),
            Step::Input => json!({"type": "ivr_input", "digits": "1"}),
            Step::Closed => json!({"type": "closed"}),
            Step::SelfServed => json!({"type": "self_served", "how": "sms"}),
            Step::DeadEnd => json!({"type": "dead_end"}),
            Step::Queued(i) => json!({"type": "queued", "queue": q(i)}),
            Step::Offered(i) => json!({"type": "offered", "agent": a(i)}),
            Step::Declined(i) => json!({"type": "declined", "agent": a(i)}),
            Step::Answered(i) => json!({"type": "answered", "agent": a(i)}),
            Step::TransferToQueue(i) => json!({"type": "transferred", "to_queue": q(i)}),
            Step::TransferToAgent(i) => json!({"type": "transferred", "to_agent": a(i)}),
            Step::Transfer => json!({"type": "transferred"}),
            Step::Voicemail => json!({"type": "voicemail"}),
            Step::Callback => json!({"type": "callback_requested"}),
            Step::TimedOut => json!({"type": "timed_out"}),
            Step::VoicemailDropped => json!({"type": "voicemail_dropped"}),
        };
        push(at, event);
    }
    for gap_ms in &journey.ends {
        at += SignedDuration::from_millis(*gap_ms);
        push(at, json!({"type": "ended", "by": "caller"}));
    }
    let no_event = matches!(journey.start, Start::Implicit)
        && journey.steps.is_empty()
        && journey.ends.is_empty();
    if no_event {
        push(at, json!({"type": "ended"}));
    }
    events
}

/// Settings under which only the events decide the result.
fn settings() -> Arc<EngineSettings> {
    Arc::new(EngineSettings {
        feed_clock: true,
        late_window: None,
        stale_after: None,
        keep_days: None,
        ..Default::default()
    })
}

/// A fresh engine fed `events` in batches of `batch` events.
fn feed(events: &[Value], batch: usize) -> Engine {
    let mut engine = Engine::new(settings(), Timestamp::UNIX_EPOCH);
    for chunk in events.chunks(batch.max(1)) {
        let parsed = chunk
            .iter()
            .map(|v| Event::from_json(v).unwrap_or_else(|e| panic!("{v}: {e}")))
            .collect();
        engine.ingest(parsed);
    }
    engine
}

fn finished(engine: &Engine) -> BTreeMap<String, Counted> {
    engine
        .finished_calls()
        .into_iter()
        .map(|(call, counted)| (call.to_owned(), counted.clone()))
        .collect()
}

/// Each kept day's board, minus `now`.
fn days(engine: &Engine) -> BTreeMap<String, Value> {
    engine
        .days()
        .map(|(day, _)| {
            let mut board = snapshot::past_day(engine, *day).expect("a kept day has a board");
            board.as_object_mut().unwrap().remove("now");
            (day.to_string(), board)
        })
        .collect()
}

/// Journeys; their events in order; the same shuffled with some repeated; a batch size.
fn scenario() -> impl Strategy<Value = (Vec<Value>, Vec<Value>, usize)> {
    prop::collection::vec(journey(), 1..12)
        .prop_flat_map(|journeys| {
            let in_order: Vec<Value> = journeys
                .iter()
                .enumerate()
                .flat_map(|(i, j)| events_of(i, j))
                .collect();
            let repeats = prop::collection::vec(any::<Index>(), 0..8);
            (Just(in_order), repeats)
        })
        .prop_flat_map(|(in_order, repeats)| {
            let mut arrivals = in_order.clone();
            arrivals.extend(repeats.iter().map(|i| i.get(&in_order).clone()));
            let len = arrivals.len();
            (Just(in_order), Just(arrivals).prop_shuffle(), 1..=len)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arrival_order_batching_and_duplicates_change_nothing(
        (in_order, arrivals, batch) in scenario()
    ) {
        let reference = feed(&in_order, in_order.len());
        let shuffled = feed(&arrivals, batch);

        prop_assert_eq!(finished(&shuffled), finished(&reference));
        prop_assert_eq!(days(&shuffled), days(&reference));
        prop_assert_eq!(snapshot::today(&shuffled), snapshot::today(&reference));

        // Every call either finished or is still live, once.
        let calls = in_order.iter().filter_map(|e| e["call"].as_str()).collect::<std::collections::BTreeSet<_>>();
        prop_assert_eq!(
            reference.finished_calls().len() + reference.live_calls().count(),
            calls.len()
        );
    }

    #[test]
    fn every_definition_puts_each_finished_call_in_one_box(
        (in_order, arrivals, batch) in scenario()
    ) {
        for engine in [feed(&in_order, in_order.len()), feed(&arrivals, batch)] {
            let mut per_day: BTreeMap<String, i64> = BTreeMap::new();
            for (_, counted) in engine.finished_calls() {
                *per_day.entry(counted.day.to_string()).or_default() += 1;
            }
            let days = days(&engine);
            let kept: Vec<&String> = days.keys().collect();
            prop_assert_eq!(kept, per_day.keys().collect::<Vec<_>>());
            for (day, board) in &days {
                let finished = per_day[day];
                prop_assert_eq!(sum(&board["outcomes"]), finished, "outcomes of {}", day);
                for (name, figures) in board["definitions"].as_object().unwrap() {
                    prop_assert_eq!(
                        sum(&figures["boxes"]), finished,
                        "boxes of {} on {}: {}", name, day, figures
                    );
                }
            }
        }
    }
}
