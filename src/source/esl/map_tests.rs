//! Every row of the `esl` table, from small literal event blocks.

use super::*;

const T0: i64 = 1_763_632_800; // 2025-11-20T10:00:00Z

/// An `event plain` block: the headers given, values percent-encoded as
/// FreeSWITCH sends them, stamped `secs` after `T0`.
fn block(secs: f64, headers: &[(&str, &str)]) -> String {
    let micros = T0 * 1_000_000 + (secs * 1e6) as i64;
    let mut text = format!("Event-Date-Timestamp: {micros}\n");
    let custom = headers.iter().any(|(k, _)| *k == "CC-Action");
    if custom {
        text.push_str("Event-Name: CUSTOM\nEvent-Subclass: callcenter%3A%3Ainfo\n");
    }
    for (k, v) in headers {
        let encoded: String = v
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        text.push_str(&format!("{k}: {encoded}\n"));
    }
    text.push('\n');
    text
}

fn cc(secs: f64, action: &str, call: &str, more: &[(&str, &str)]) -> String {
    let mut h = vec![("CC-Action", action), ("CC-Member-Session-UUID", call)];
    h.extend_from_slice(more);
    block(secs, &h)
}

fn start(secs: f64, call: &str, queue: &str) -> String {
    cc(
        secs,
        "member-queue-start",
        call,
        &[
            ("CC-Queue", queue),
            ("CC-Member-CID-Number", "+44 7700 900123"),
            ("Unique-ID", call),
        ],
    )
}

fn cancel(secs: f64, call: &str, reason: &str) -> String {
    cc(
        secs,
        "member-queue-end",
        call,
        &[
            ("CC-Queue", "support@default"),
            ("CC-Cause", "Cancel"),
            ("CC-Cancel-Reason", reason),
        ],
    )
}

fn hangup(secs: f64, call: &str) -> String {
    block(
        secs,
        &[
            ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
            ("Unique-ID", call),
            ("Hangup-Cause", "NORMAL_CLEARING"),
        ],
    )
}

/// Each event as `secs type call detail`, in a stable order.
fn show(events: &[Event]) -> Vec<String> {
    let mut lines: Vec<(i64, u8, String)> = events
        .iter()
        .map(|e| {
            let secs = e.at.as_millisecond() - T0 * 1000;
            let detail = match &e.kind {
                EventKind::CallStarted { from, .. } => from.clone().unwrap_or_default(),
                EventKind::Queued { queue } => queue.clone(),
                EventKind::Offered { agent, queue } => {
                    format!("{agent} {}", queue.clone().unwrap_or_default())
                }
                EventKind::Declined { agent } | EventKind::Answered { agent } => agent.clone(),
                EventKind::TimedOut { queue } => queue.clone().unwrap_or_default(),
                EventKind::Ended { by } => format!("{by:?}"),
                EventKind::AgentStatus { agent, status, .. } => {
                    format!("{agent} {}", status.as_str())
                }
                other => format!("{other:?}"),
            };
            let line = format!(
                "{}.{:03} {} {} {detail}",
                secs / 1000,
                secs % 1000,
                e.kind.type_name(),
                e.call.clone().unwrap_or_else(|| "-".into())
            );
            (secs, e.kind.rank(), line)
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, _, l)| l).collect()
}

fn offline(text: &str) -> (Vec<String>, Mapped) {
    let mapped = map_file(text.as_bytes(), &Naming::offline("esl"), 10);
    for e in &mapped.events {
        crate::source::checked(e).expect("valid by events.md");
    }
    (show(&mapped.events), mapped)
}

/// The same records fed one by one as the live source does (feed clock:
/// held exits come due by later records' times), then the rest flushed.
fn live(text: &str) -> Vec<String> {
    let mut mapper = Mapper::new(Naming::offline("esl"), 10);
    let mut events = Vec::new();
    for block in frame::file_blocks(text.as_bytes()) {
        let record = Record::read(block.bytes, || OFFLINE_START).unwrap();
        events.extend(mapper.due(record.at()));
        events.extend(
            mapper
                .apply(&record, Lookahead::Unknown)
                .unwrap_or_default(),
        );
    }
    events.extend(mapper.flush());
    show(&events)
}

#[test]
fn an_answered_call() {
    let text = [
        start(0.0, "c1", "support@default"),
        cc(
            2.0,
            "agent-offering",
            "c1",
            &[
                ("CC-Agent", "1000@default"),
                ("CC-Queue", "support@default"),
            ],
        ),
        cc(
            7.5,
            "bridge-agent-start",
            "c1",
            &[("CC-Agent", "1000@default")],
        ),
        cc(
            60.0,
            "bridge-agent-end",
            "c1",
            &[("CC-Agent", "1000@default")],
        ),
        cc(
            60.0,
            "member-queue-end",
            "c1",
            &[("CC-Cause", "Terminated"), ("CC-Agent", "1000@default")],
        ),
        hangup(60.1, "c1"),
    ]
    .concat();
    let (events, mapped) = offline(&text);
    assert_eq!(
        events,
        [
            "0.000 call_started c1 +44 7700 900123",
            "0.000 queued c1 support@default",
            "2.000 offered c1 1000@default support@default",
            "7.500 answered c1 1000@default",
            "60.000 ended c1 Caller",
        ]
    );
    assert!(mapped.skipped.is_empty());
    assert_eq!(live(&text), events, "live gives the same");
}

#[test]
fn a_failed_offer_then_the_caller_hangs_up() {
    let text = [
        start(0.0, "c2", "support@default"),
        cc(1.0, "agent-offering", "c2", &[("CC-Agent", "1001@default")]),
        cc(
            16.0,
            "bridge-agent-fail",
            "c2",
            &[
                ("CC-Agent", "1001@default"),
                ("CC-Hangup-Cause", "NO_ANSWER"),
            ],
        ),
        cancel(30.0, "c2", "NONE"),
        hangup(30.0, "c2"),
    ]
    .concat();
    let (events, _) = offline(&text);
    assert_eq!(
        events,
        [
            "0.000 call_started c2 +44 7700 900123",
            "0.000 queued c2 support@default",
            "1.000 offered c2 1001@default ",
            "16.000 declined c2 1001@default",
            "30.000 ended c2 Caller",
        ]
    );
    assert_eq!(live(&text), events);
}

#[test]
fn timeouts_end_by_the_system_unless_the_call_continues() {
    for reason in ["TIMEOUT", "NO_AGENT_TIMEOUT"] {
        let ends = [
            start(0.0, "c3", "support@default"),
            cancel(120.0, "c3", reason),
            hangup(125.0, "c3"),
        ]
        .concat();
        let (events, _) = offline(&ends);
        assert_eq!(
            events[2..],
            [
                "120.000 timed_out c3 support@default",
                "120.000 ended c3 System"
            ],
            "{reason}"
        );
        assert_eq!(live(&ends), events, "{reason}: the hang-up settles it live");

        // Sent on to a second queue 3 s later: one call, ended there.
        let continues = [
            start(0.0, "c3", "support@default"),
            cancel(120.0, "c3", reason),
            start(123.0, "c3", "sales@default"),
            cc(
                125.0,
                "bridge-agent-start",
                "c3",
                &[("CC-Agent", "1002@default")],
            ),
            cc(
                200.0,
                "member-queue-end",
                "c3",
                &[("CC-Cause", "Terminated")],
            ),
        ]
        .concat();
        let (events, _) = offline(&continues);
        assert_eq!(
            events,
            [
                "0.000 call_started c3 +44 7700 900123",
                "0.000 queued c3 support@default",
                "120.000 timed_out c3 support@default",
                "123.000 queued c3 sales@default",
                "125.000 answered c3 1002@default",
                "200.000 ended c3 Caller",
            ],
            "{reason}: call_started only once, no ended at the first exit"
        );
        assert_eq!(live(&continues), events, "{reason}");
    }
}

#[test]
fn a_second_start_too_late_does_not_continue() {
    let text = [
        start(0.0, "c4", "support@default"),
        cancel(60.0, "c4", "TIMEOUT"),
        start(71.0, "c4", "sales@default"),
        cc(
            90.0,
            "member-queue-end",
            "c4",
            &[("CC-Cause", "Cancel"), ("CC-Cancel-Reason", "NONE")],
        ),
    ]
    .concat();
    let (events, _) = offline(&text);
    assert_eq!(
        events,
        [
            "0.000 call_started c4 +44 7700 900123",
            "0.000 queued c4 support@default",
            "60.000 timed_out c4 support@default",
            "60.000 ended c4 System",
            "71.000 queued c4 sales@default",
            "90.000 ended c4 Caller",
        ]
    );
    assert_eq!(live(&text), events);
    let exactly = text.replace(
        &start(71.0, "c4", "sales@default"),
        &start(70.0, "c4", "sales@default"),
    );
    let (events, _) = offline(&exactly);
    assert!(
        !events.contains(&"60.000 ended c4 System".to_owned()),
        "{events:?}"
    );
}

#[test]
fn break_out_ends_by_the_caller_unless_the_call_continues() {
    let text = [
        start(0.0, "c5", "support@default"),
        cancel(40.0, "c5", "BREAK_OUT"),
        hangup(55.0, "c5"),
    ]
    .concat();
    let (events, _) = offline(&text);
    assert_eq!(events[2..], ["40.000 ended c5 Caller"]);
    assert_eq!(live(&text), events);
    let continues = [
        start(0.0, "c5", "support@default"),
        cancel(40.0, "c5", "BREAK_OUT"),
        start(41.0, "c5", "callback@default"),
    ]
    .concat();
    let (events, _) = offline(&continues);
    assert_eq!(events[2..], ["41.000 queued c5 callback@default"]);
}

#[test]
fn a_hangup_ends_a_known_unfinished_call_only() {
    let text = [
        start(0.0, "c6", "support@default"),
        hangup(9.0, "c6"),
        hangup(10.0, "c6"),
        hangup(11.0, "agent-leg"),
        cc(
            12.0,
            "member-queue-end",
            "c6",
            &[("CC-Cause", "Cancel"), ("CC-Cancel-Reason", "NONE")],
        ),
    ]
    .concat();
    let (events, _) = offline(&text);
    assert_eq!(
        events[2..],
        ["9.000 ended c6 Caller", "12.000 ended c6 Caller"]
    );
}

#[test]
fn agent_status_and_state() {
    let status = |secs, agent, s| {
        block(
            secs,
            &[
                ("CC-Action", "agent-status-change"),
                ("CC-Agent", agent),
                ("CC-Agent-Status", s),
            ],
        )
    };
    let state = |secs, agent, s| {
        block(
            secs,
            &[
                ("CC-Action", "agent-state-change"),
                ("CC-Agent", agent),
                ("CC-Agent-State", s),
            ],
        )
    };
    let text = [
        status(0.0, "1000@default", "Available"),
        status(1.0, "1001@default", "Available (On Demand)"),
        status(2.0, "1002@default", "On Break"),
        state(3.0, "1000@default", "Receiving"),
        state(4.0, "1000@default", "In a queue call"),
        state(5.0, "1000@default", "Waiting"),
        state(6.0, "1002@default", "Waiting"),
        status(7.0, "1002@default", "Logged Out"),
        state(8.0, "1003@default", "Waiting"),
        status(9.0, "1003@default", "Unknown"),
        state(10.0, "1001@default", "Idle"),
    ]
    .concat();
    let (events, mapped) = offline(&text);
    assert_eq!(
        events,
        [
            "0.000 agent_status - 1000@default available",
            "1.000 agent_status - 1001@default available",
            "2.000 agent_status - 1002@default away",
            "4.000 agent_status - 1000@default busy",
            "5.000 agent_status - 1000@default available",
            "7.000 agent_status - 1002@default offline",
            "8.000 agent_status - 1003@default available",
        ]
    );
    assert!(mapped.skipped.is_empty());
}

#[test]
fn names_come_through_the_naming() {
    let mut naming = Naming::offline("fs1");
    naming.prefix = true;
    naming.agents.insert("1000@default".into(), "Amy".into());
    let text = [
        start(0.0, "c7", "support@default"),
        cc(
            1.0,
            "bridge-agent-start",
            "c7",
            &[("CC-Agent", "1000@default")],
        ),
    ]
    .concat();
    let mapped = map_file(text.as_bytes(), &naming, 10);
    assert_eq!(mapped.events[0].call.as_deref(), Some("fs1:c7"));
    assert!(matches!(&mapped.events[2].kind, EventKind::Answered { agent } if agent == "Amy"));
}

#[test]
fn ids_are_deterministic_and_a_repeat_gives_the_same_ids() {
    let uuid = |u: &str, b: String| b.replacen('\n', &format!("\nEvent-UUID: {u}\n"), 1);
    let text = [
        uuid("e1", start(0.0, "c8", "q")),
        uuid("e2", cancel(5.0, "c8", "NONE")),
    ]
    .concat();
    let a = map_file(text.as_bytes(), &Naming::offline("esl"), 10);
    let b = map_file(text.as_bytes(), &Naming::offline("esl"), 10);
    let ids = |m: &Mapped| {
        m.events
            .iter()
            .map(|e| e.id.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    // The live source reading the start again (a resent frame) after the call
    // began gives `queued` the id it had the first time.
    let mut mapper = Mapper::new(Naming::offline("esl"), 10);
    let first = Record::read(uuid("e1", start(0.0, "c8", "q")).as_bytes(), || {
        OFFLINE_START
    })
    .unwrap();
    let once = mapper.apply(&first, Lookahead::Unknown).unwrap();
    let again = mapper.apply(&first, Lookahead::Unknown).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, once[1].id);
    // The Event-UUID names the event, not its bytes (the same event re-read
    // with different framing or header order).
    let reordered = format!("Event-UUID: e1\n{}", start(0.0, "c8", "q"));
    let r = Record::read(reordered.as_bytes(), || OFFLINE_START).unwrap();
    let mut fresh = Mapper::new(Naming::offline("esl"), 10);
    assert_eq!(
        fresh.apply(&r, Lookahead::Unknown).unwrap()[0].id,
        once[0].id
    );
}

#[test]
fn unstamped_blocks_follow_the_previous_one_by_a_millisecond() {
    let bare = "Event-Name: CUSTOM\nCC-Action: member-queue-start\nCC-Member-Session-UUID: c9\nCC-Queue: q\n\n\
                Event-Name: CUSTOM\nCC-Action: agent-offering\nCC-Member-Session-UUID: c9\nCC-Agent: a\n\n";
    let mapped = map_file(bare.as_bytes(), &Naming::offline("esl"), 10);
    assert_eq!(mapped.events[0].at, OFFLINE_START);
    assert_eq!(
        mapped.events[2].at.as_millisecond(),
        OFFLINE_START.as_millisecond() + 1
    );
    assert_eq!(OFFLINE_START.to_string(), "2026-01-01T00:00:00Z");

    let after = format!("{}{bare}", start(0.0, "c0", "q"));
    let mapped = map_file(after.as_bytes(), &Naming::offline("esl"), 10);
    assert_eq!(
        mapped.events[2].at.as_millisecond(),
        T0 * 1000 + 1,
        "1 ms after a stamped block"
    );
}

#[test]
fn unreadable_blocks_are_skipped_and_counted() {
    let text = [
        "garbage without a colon\n\n".to_owned(),
        "Foo: bar\n\n".to_owned(),
        cc(1.0, "member-queue-start", "c10", &[]),
        block(2.0, &[("CC-Action", "agent-offering"), ("CC-Queue", "q")]),
        cc(3.0, "member-queue-end", "c10", &[("CC-Cause", "Exploded")]),
        block(
            4.0,
            &[
                ("CC-Action", "agent-status-change"),
                ("CC-Agent-Status", "Available"),
            ],
        ),
        // Events we do not use are not errors.
        block(5.0, &[("Event-Name", "HEARTBEAT")]),
        cc(6.0, "members-count", "c10", &[("CC-Count", "3")]),
        start(7.0, "c10", "q"),
    ]
    .concat();
    let (events, mapped) = offline(&text);
    assert_eq!(mapped.skipped.len(), 6, "{:?}", mapped.skipped);
    assert!(
        mapped.skipped[0].position.starts_with("block 1"),
        "{:?}",
        mapped.skipped[0]
    );
    assert!(
        mapped.skipped[2].why.contains("CC-Queue"),
        "{:?}",
        mapped.skipped[2]
    );
    assert_eq!(events.len(), 2);
}

#[test]
fn live_exits_wait_for_the_clock() {
    let mut mapper = Mapper::new(Naming::offline("esl"), 10);
    let read = |text: String| Record::read(text.as_bytes(), || OFFLINE_START).unwrap();
    mapper
        .apply(&read(start(0.0, "c11", "q")), Lookahead::Unknown)
        .unwrap();
    let exit = mapper
        .apply(&read(cancel(30.0, "c11", "TIMEOUT")), Lookahead::Unknown)
        .unwrap();
    assert_eq!(
        show(&exit),
        ["30.000 timed_out c11 support@default"],
        "timed_out at once"
    );
    let at = |secs: i64| Timestamp::from_second(T0 + secs).unwrap();
    assert!(
        mapper.due(at(40)).is_empty(),
        "not before continue_secs have passed"
    );
    assert_eq!(
        show(&mapper.due(at(41))),
        ["30.000 ended c11 System"],
        "at the exit's time"
    );
    assert!(mapper.due(at(100)).is_empty(), "once");
    assert!(
        mapper
            .apply(&read(hangup(50.0, "c11")), Lookahead::Unknown)
            .unwrap()
            .is_empty()
    );
}

/// What a checkpoint keeps comes back after a restart: the held `ended`
/// (due at the same time, with the same id), a call a later start continues
/// (no second `call_started`), a call a hang-up ends, an agent's break.
#[test]
fn a_saved_mapping_restores_held_exits_calls_and_agents() {
    let read = |text: String| Record::read(text.as_bytes(), || OFFLINE_START).unwrap();
    let on_break = block(
        0.5,
        &[
            ("CC-Action", "agent-status-change"),
            ("CC-Agent", "1002@default"),
            ("CC-Agent-Status", "On Break"),
        ],
    );
    let waiting = block(
        40.0,
        &[
            ("CC-Action", "agent-state-change"),
            ("CC-Agent", "1002@default"),
            ("CC-Agent-State", "Waiting"),
        ],
    );
    let mut before = Mapper::new(Naming::offline("esl"), 10);
    for text in [
        start(0.0, "held", "q"),
        start(1.0, "talking", "q"),
        start(2.0, "continues", "q"),
        on_break,
        cancel(30.0, "held", "TIMEOUT"),
        cancel(31.0, "continues", "BREAK_OUT"),
    ] {
        before.apply(&read(text), Lookahead::Unknown).unwrap();
    }
    let saved = before.save();
    assert_eq!(saved["calls"].as_array().map(Vec::len), Some(3), "{saved}");

    let mut after = Mapper::new(Naming::offline("esl"), 10);
    after.restore(&saved);
    let at = |secs: i64| Timestamp::from_second(T0 + secs).unwrap();
    assert!(after.due(at(40)).is_empty(), "not before continue_secs");
    let mut events = after
        .apply(&read(start(35.0, "continues", "q2")), Lookahead::Unknown)
        .unwrap();
    events.extend(after.due(at(41)));
    events.extend(
        after
            .apply(&read(hangup(42.0, "talking")), Lookahead::Unknown)
            .unwrap(),
    );
    events.extend(after.apply(&read(waiting), Lookahead::Unknown).unwrap());
    assert_eq!(
        show(&events),
        [
            "30.000 ended held System",
            "35.000 queued continues q2",
            "42.000 ended talking Caller",
        ],
        "the break stands, and no second call_started"
    );
    let mut again = Mapper::new(Naming::offline("esl"), 10);
    again.restore(&before.save());
    assert_eq!(
        again.due(at(41))[0].id,
        before.due(at(41))[0].id,
        "the held ended keeps its id"
    );
    let mut damaged = Mapper::new(Naming::offline("esl"), 10);
    damaged.restore(&serde_json::json!({"calls": 3}));
    assert!(
        damaged.save()["calls"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

/// A checkpoint stays bounded however many calls are left unfinished.
#[test]
fn a_saved_mapping_is_bounded() {
    let mut mapper = Mapper::new(Naming::offline("esl"), 10);
    for i in 0..(SAVED_CALLS + 50) {
        let text = start(i as f64, &format!("c{i}"), "q");
        let record = Record::read(text.as_bytes(), || OFFLINE_START).unwrap();
        mapper.apply(&record, Lookahead::Unknown).unwrap();
    }
    let saved = mapper.save();
    let calls = saved["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), SAVED_CALLS);
    assert_eq!(calls[SAVED_CALLS - 1][0], format!("c{}", SAVED_CALLS + 49));
}
