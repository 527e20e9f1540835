//! Every row of the AMI table, from small literal blocks.

use super::*;
use crate::source::ami::map_file;

/// Maps a capture offline; each event in brief: `CALL@SECS TYPE DETAIL`.
fn brief(text: &str) -> Vec<String> {
    let mapped = map_file(text.as_bytes(), &Naming::offline("ami"));
    assert!(mapped.skipped.is_empty(), "{:?}", mapped.skipped);
    mapped.events.iter().map(describe).collect()
}

fn describe(e: &Event) -> String {
    let at = e.at.as_millisecond() as f64 / 1000.0;
    let detail = match &e.kind {
        EventKind::CallStarted { from, .. } => format!("call_started {from:?}"),
        EventKind::Queued { queue } => format!("queued {queue}"),
        EventKind::Offered { agent, queue } => format!("offered {agent} {queue:?}"),
        EventKind::Declined { agent } => format!("declined {agent}"),
        EventKind::Answered { agent } => format!("answered {agent}"),
        EventKind::TimedOut { queue } => format!("timed_out {queue:?}"),
        EventKind::Closed => "closed".to_owned(),
        EventKind::Ended { by } => format!("ended {by:?}"),
        EventKind::AgentStatus {
            agent,
            status,
            queues,
            reason,
        } => format!("{agent} {} {queues:?} {reason:?}", status.as_str()),
        other => format!("{other:?}"),
    };
    match &e.call {
        Some(call) => format!("{call}@{at} {detail}"),
        None => format!("@{at} {detail}"),
    }
}

/// One event block with a `Timestamp` of 1000 + `t` seconds.
fn block(event: &str, t: f64, headers: &[(&str, &str)]) -> String {
    let mut text = format!("Event: {event}\r\nTimestamp: {:.6}\r\n", 1000.0 + t);
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text + "\r\n"
}

fn join(t: f64, uid: &str, queue: &str) -> String {
    block(
        "QueueCallerJoin",
        t,
        &[("Uniqueid", uid), ("Queue", queue), ("CallerIDNum", "555")],
    )
}

#[test]
fn a_join_starts_and_queues_once_per_call_and_the_old_name_works() {
    let text = [
        join(0.0, "c1", "Q1"),
        block(
            "Join",
            1.0,
            &[
                ("Uniqueid", "c2"),
                ("Queue", "Q2"),
                ("CallerIDNum", "<unknown>"),
            ],
        ),
        join(2.0, "c1", "Q2"),
    ]
    .concat();
    assert_eq!(
        brief(&text),
        [
            "c1@1000 call_started Some(\"555\")",
            "c1@1000 queued Q1",
            "c2@1001 call_started None",
            "c2@1001 queued Q2",
            "c1@1002 queued Q2",
        ]
    );
}

#[test]
fn agent_rows_name_the_first_agent_header_present() {
    let text = [
        join(0.0, "c1", "Q1"),
        block(
            "AgentCalled",
            1.0,
            &[
                ("Uniqueid", "c1"),
                ("Queue", "Q1"),
                ("MemberName", ""),
                ("Interface", "PJSIP/2001"),
            ],
        ),
        block(
            "AgentRingNoAnswer",
            16.0,
            &[("Uniqueid", "c1"), ("Member", "PJSIP/2001")],
        ),
        block(
            "AgentDump",
            17.0,
            &[("Uniqueid", "c1"), ("AgentName", "Agent/7")],
        ),
        block(
            "AgentCalled",
            18.0,
            &[("Uniqueid", "c1"), ("Location", "SIP/9"), ("Queue", "Q1")],
        ),
        block(
            "AgentConnect",
            20.0,
            &[
                ("Uniqueid", "c1"),
                ("MemberName", "Amy"),
                ("Interface", "SIP/9"),
                ("HoldTime", "20"),
            ],
        ),
        block(
            "AgentComplete",
            80.0,
            &[
                ("Uniqueid", "c1"),
                ("MemberName", "Amy"),
                ("Reason", "agent"),
            ],
        ),
        block("Hangup", 81.0, &[("Uniqueid", "c1")]),
    ]
    .concat();
    assert_eq!(
        brief(&text),
        [
            "c1@1000 call_started Some(\"555\")",
            "c1@1000 queued Q1",
            "c1@1001 offered PJSIP/2001 Some(\"Q1\")",
            "c1@1016 declined PJSIP/2001",
            "c1@1017 declined Agent/7",
            "c1@1018 offered SIP/9 Some(\"Q1\")",
            "c1@1020 answered Amy",
            "c1@1080 ended Agent",
        ],
        "a Hangup after the end adds nothing"
    );
}

#[test]
fn complete_reasons_say_who_ended() {
    for (reason, by) in [
        ("agent", "Agent"),
        ("transfer", "Agent"),
        ("caller", "Caller"),
        ("", "Caller"),
    ] {
        let text = [
            join(0.0, "c1", "Q1"),
            block(
                "AgentComplete",
                5.0,
                &[("Uniqueid", "c1"), ("Reason", reason)],
            ),
        ]
        .concat();
        assert_eq!(brief(&text)[2], format!("c1@1005 ended {by}"), "{reason:?}");
    }
}

#[test]
fn connect_and_abandon_of_a_call_joined_before_us_queue_it_back_by_hold_time() {
    let text = [
        block(
            "AgentConnect",
            30.0,
            &[
                ("Uniqueid", "c1"),
                ("Queue", "Q1"),
                ("MemberName", "Amy"),
                ("HoldTime", "12"),
            ],
        ),
        // Asterisk 11 spelled it `Holdtime`; a bad number counts as 0.
        block(
            "QueueCallerAbandon",
            40.0,
            &[("Uniqueid", "c2"), ("Queue", "Q1"), ("Holdtime", "25")],
        ),
        block(
            "QueueCallerAbandon",
            41.0,
            &[("Uniqueid", "c3"), ("Queue", "Q1"), ("HoldTime", "x")],
        ),
        join(50.0, "c4", "Q1"),
        block(
            "QueueCallerAbandon",
            60.0,
            &[("Uniqueid", "c4"), ("Queue", "Q1"), ("HoldTime", "10")],
        ),
    ]
    .concat();
    assert_eq!(
        brief(&text),
        [
            "c1@1018 queued Q1",
            "c1@1030 answered Amy",
            "c2@1015 queued Q1",
            "c2@1040 ended Caller",
            "c3@1041 queued Q1",
            "c3@1041 ended Caller",
            "c4@1050 call_started Some(\"555\")",
            "c4@1050 queued Q1",
            "c4@1060 ended Caller",
        ]
    );
}

#[test]
fn queue_entries_rebuild_only_what_is_not_known() {
    let entry = |t, uid: &str, wait: &str| {
        block(
            "QueueEntry",
            t,
            &[
                ("Uniqueid", uid),
                ("Queue", "Q1"),
                ("CallerIDNum", "777"),
                ("Wait", wait),
            ],
        )
    };
    let text = [
        join(0.0, "known", "Q1"),
        block(
            "VarSet",
            1.0,
            &[
                ("Uniqueid", "closed"),
                ("Variable", "QUEUESTATUS"),
                ("Value", "FULL"),
            ],
        ),
        entry(100.0, "known", "100"),
        entry(100.0, "new", "42"),
        entry(100.0, "closed", "3"),
        entry(100.0, "nowait", ""),
        entry(101.0, "new", "43"),
    ]
    .concat();
    assert_eq!(
        brief(&text),
        [
            "known@1000 call_started Some(\"555\")",
            "known@1000 queued Q1",
            "closed@1001 call_started None",
            "closed@1001 closed",
            "new@1058 call_started Some(\"777\")",
            "new@1058 queued Q1",
            "closed@1097 queued Q1",
            "nowait@1100 call_started Some(\"777\")",
            "nowait@1100 queued Q1",
        ]
    );
}

fn status(t: f64, uid: &str, value: &str) -> String {
    block(
        "VarSet",
        t,
        &[
            ("Uniqueid", uid),
            ("Variable", "QUEUESTATUS"),
            ("Value", value),
        ],
    )
}

fn leave(t: f64, uid: &str) -> String {
    block("QueueCallerLeave", t, &[("Uniqueid", uid), ("Queue", "Q1")])
}

#[test]
fn a_leave_is_a_timeout_only_when_queuestatus_says_so() {
    for (value, timed_out) in [
        ("TIMEOUT", true),
        ("LEAVEEMPTY", true),
        ("LEAVEUNAVAIL", true),
        ("CONTINUE", false),
        ("", false),
    ] {
        let text = [
            join(0.0, "c1", "Q1"),
            leave(60.0, "c1"),
            status(60.5, "c1", value),
            block("Hangup", 90.0, &[("Uniqueid", "c1")]),
        ]
        .concat();
        let mut want = vec!["c1@1000 call_started Some(\"555\")", "c1@1000 queued Q1"];
        if timed_out {
            want.push("c1@1060 timed_out Some(\"Q1\")");
        }
        want.push("c1@1090 ended Caller");
        assert_eq!(brief(&text), want, "{value:?}");
    }
}

#[test]
fn queuestatus_counts_only_since_the_last_join_and_when_the_leave_was_unresolved() {
    let text = [
        // Set before the leave: it counts when the leave comes.
        join(0.0, "early", "Q1"),
        status(59.0, "early", "TIMEOUT"),
        leave(60.0, "early"),
        // Answered after the leave (as Asterisk orders it): no timeout.
        join(0.0, "answered", "Q1"),
        leave(10.0, "answered"),
        block(
            "AgentConnect",
            10.1,
            &[
                ("Uniqueid", "answered"),
                ("MemberName", "Amy"),
                ("Queue", "Q1"),
            ],
        ),
        status(70.0, "answered", "TIMEOUT"),
        // A second join forgets the first's status.
        join(0.0, "twice", "Q1"),
        status(5.0, "twice", "TIMEOUT"),
        join(6.0, "twice", "Q2"),
        leave(7.0, "twice"),
        // Unknown channels give nothing.
        leave(8.0, "stranger"),
        status(8.5, "stranger", "TIMEOUT"),
        block("Hangup", 9.0, &[("Uniqueid", "stranger")]),
    ]
    .concat();
    let events = brief(&text);
    let timeouts: Vec<&String> = events.iter().filter(|e| e.contains("timed_out")).collect();
    assert_eq!(
        timeouts,
        ["early@1060 timed_out Some(\"Q1\")"],
        "{events:#?}"
    );
    assert!(!events.iter().any(|e| e.starts_with("stranger")));
}

#[test]
fn join_refusals_are_closed_calls_that_end_at_hangup() {
    for value in ["JOINEMPTY", "JOINUNAVAIL", "FULL"] {
        let text = [
            block(
                "VarSet",
                0.0,
                &[
                    ("Uniqueid", "c1"),
                    ("CallerIDNum", "555"),
                    ("Variable", "QUEUESTATUS"),
                    ("Value", value),
                ],
            ),
            block("Hangup", 3.0, &[("Uniqueid", "c1")]),
            block("Hangup", 4.0, &[("Uniqueid", "c1")]),
        ]
        .concat();
        assert_eq!(
            brief(&text),
            [
                "c1@1000 call_started Some(\"555\")",
                "c1@1000 closed",
                "c1@1003 ended Caller",
            ],
            "{value}"
        );
    }
}

#[test]
fn members_added_paused_and_removed_keep_their_queues() {
    let member = |event: &str, t, queue: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![
            ("Queue", queue),
            ("MemberName", "Amy"),
            ("Interface", "SIP/1"),
        ];
        headers.extend_from_slice(extra);
        block(event, t, &headers)
    };
    let text = [
        member("QueueMemberAdded", 0.0, "Q1", &[]),
        block(
            "QueueMemberAdded",
            1.0,
            &[("Queue", "Q2"), ("Location", "Agent/9")],
        ),
        member("QueueMemberAdded", 2.0, "Q2", &[]),
        member(
            "QueueMemberPause",
            3.0,
            "Q1",
            &[("Paused", "1"), ("PausedReason", "lunch")],
        ),
        member("QueueMemberPaused", 4.0, "Q1", &[("Paused", "0")]),
        member(
            "QueueMemberPause",
            5.0,
            "Q1",
            &[("Paused", "1"), ("PausedReason", "")],
        ),
        member("QueueMemberRemoved", 6.0, "Q1", &[]),
        member("QueueMemberRemoved", 7.0, "Q2", &[]),
    ]
    .concat();
    assert_eq!(
        brief(&text),
        [
            "@1000 Amy available Some([\"Q1\"]) None",
            "@1001 Agent/9 available Some([\"Q2\"]) None",
            "@1002 Amy available Some([\"Q1\", \"Q2\"]) None",
            "@1003 Amy away Some([\"Q1\", \"Q2\"]) Some(\"lunch\")",
            "@1004 Amy available Some([\"Q1\", \"Q2\"]) None",
            "@1005 Amy away Some([\"Q1\", \"Q2\"]) None",
            "@1006 Amy away Some([\"Q2\"]) None",
            "@1007 Amy offline Some([]) None",
        ]
    );
}

#[test]
fn member_status_follows_the_device_state_and_pauses() {
    let cases = [
        ("0", "0", None),
        ("1", "0", Some("available")),
        ("2", "0", Some("busy")),
        ("3", "0", Some("busy")),
        ("4", "0", Some("offline")),
        ("5", "0", Some("offline")),
        ("6", "0", None),
        ("7", "0", Some("busy")),
        ("8", "0", Some("busy")),
        ("x", "0", None),
        ("2", "1", Some("away")),
    ];
    for event in ["QueueMemberStatus", "QueueMember"] {
        for (code, paused, want) in cases {
            let text = block(
                event,
                0.0,
                &[
                    ("Queue", "Q1"),
                    ("MemberName", "Amy"),
                    ("Status", code),
                    ("Paused", paused),
                    ("PausedReason", "training"),
                ],
            );
            let got = brief(&text);
            let want: Vec<String> = want
                .map(|s| {
                    let reason = if s == "away" {
                        "Some(\"training\")"
                    } else {
                        "None"
                    };
                    format!("@1000 Amy {s} Some([\"Q1\"]) {reason}")
                })
                .into_iter()
                .collect();
            assert_eq!(got, want, "{event} Status {code} Paused {paused}");
        }
    }
}

#[test]
fn times_come_from_timestamps_else_one_millisecond_after_the_block_before() {
    let text = "Event: QueueCallerJoin\nUniqueid: a\nQueue: Q\n\n\
                Event: Hangup\nUniqueid: a\nTimestamp: nonsense\n\n\
                Event: QueueCallerJoin\nUniqueid: b\nQueue: Q\nTimestamp: 1767225700.25\n\n\
                Event: Hangup\nUniqueid: b\n\n";
    let mapped = map_file(text.as_bytes(), &Naming::offline("ami"));
    let times: Vec<String> = mapped.events.iter().map(|e| e.at.to_string()).collect();
    assert_eq!(
        times,
        [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.001Z",
            "2026-01-01T00:01:40.25Z",
            "2026-01-01T00:01:40.25Z",
            "2026-01-01T00:01:40.251Z",
        ]
    );
    let mut mapper = Mapper::new(Naming::offline("ami"));
    let live: Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
    let frames = super::super::wire::frames(b"Event: QueueCallerJoin\nUniqueid: a\nQueue: Q\n");
    let super::super::wire::Frame::Block(b) = &frames[0] else {
        panic!()
    };
    let events = mapper.map(b, Arrival::Received(live)).unwrap();
    assert_eq!(events[0].at, live, "live, the time received");
    assert_eq!(mapper.latest(), Some(live));
}

#[test]
fn ids_come_from_uniqueid_event_and_sequence_else_timestamp_else_none() {
    let naming = Naming {
        source: "pbx".into(),
        prefix: true,
        agents: [("SIP/1".to_owned(), "Amy".to_owned())].into(),
    };
    let ids = |text: &str| -> Vec<Option<String>> {
        map_file(text.as_bytes(), &naming)
            .events
            .into_iter()
            .map(|e| e.id)
            .collect()
    };
    let seq = "Event: QueueCallerJoin\nUniqueid: a\nQueue: Q\nSequenceNumber: 7\nTimestamp: 5\n\n";
    let seq_other_time =
        "Event: QueueCallerJoin\nUniqueid: a\nQueue: Q\nSequenceNumber: 7\nTimestamp: 6\n\n";
    let time_only = "Event: QueueCallerJoin\nUniqueid: a\nQueue: Q\nTimestamp: 5\n\n";
    let neither = "Event: QueueCallerJoin\nUniqueid: a\nQueue: Q\n\n";
    let a = ids(seq);
    assert_eq!(a.len(), 2);
    assert!(a[0].as_deref().is_some_and(|id| id.starts_with("pbx:")));
    assert_ne!(a[0], a[1], "each event of a block has its own id");
    assert_ne!(
        a,
        ids(seq_other_time),
        "a sequence number reused after a PBX restart is another event"
    );
    assert_ne!(a, ids(time_only));
    assert_eq!(ids(time_only), ids(time_only), "deterministic");
    assert_eq!(ids(neither), [None, None], "never a duplicate");
    // Agent events carry no Uniqueid: two members in one second stay two.
    let member = |name: &str| {
        format!(
            "Event: QueueMemberStatus\nQueue: Q\nMemberName: {name}\nStatus: 1\nTimestamp: 5\n\n"
        )
    };
    let (amy, bob) = (ids(&member("amy")), ids(&member("bob")));
    assert_eq!(amy.len(), 1);
    assert_ne!(amy, bob, "distinct members, distinct ids");
    assert_eq!(amy, ids(&member("amy")), "the same record, the same id");
    let events = map_file(
        b"Event: AgentCalled\nUniqueid: a\nInterface: SIP/1\nSequenceNumber: 1\n\n",
        &naming,
    )
    .events;
    assert_eq!(events[0].call.as_deref(), Some("pbx:a"));
    assert!(matches!(&events[0].kind, EventKind::Offered { agent, .. } if agent == "Amy"));
}

#[test]
fn unreadable_event_blocks_are_skipped_and_counted_and_others_ignored() {
    let text = format!(
        "Response: Success\nMessage: Pong\n\n\
         just a console line\n\n\
         Foo: bar\n\n\
         Event: QueueCallerJoin\nQueue: Q\n\n\
         Event: AgentCalled\nUniqueid: a\n\n\
         Event: QueueCallerJoin\nUniqueid: {}\nQueue: Q\n\n\
         Event: Newexten\nUniqueid: a\n\n\
         Event: QueueCallerJoin\nUniqueid: ok\nQueue: Q\n\n",
        "u".repeat(200)
    );
    let mapped = map_file(text.as_bytes(), &Naming::offline("ami"));
    let skipped: Vec<(&str, &str)> = mapped
        .skipped
        .iter()
        .map(|s| (s.position.as_str(), s.why.as_str()))
        .collect();
    // Offline, blocks without `Event` are console output, not records.
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(skipped[0], ("line 8", "no Uniqueid"));
    assert!(skipped[1].1.contains("no MemberName"), "{skipped:?}");
    assert!(
        skipped[2].1.contains("call"),
        "an over-long call id: {skipped:?}"
    );
    assert_eq!(mapped.events.len(), 2, "the good call still counts");
}
