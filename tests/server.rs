//! Integration tests against a real server on an ephemeral port, with real
//! HTTP and WebSocket clients.

mod common;

use std::time::Instant;

use common::{JOURNEYS, Received, TestServer, calls_ended_in, figures, journey_lines, sum, within};
use serde_json::{Value, json};
use wallboard::config::Config;

/// Finished calls the journeys hold (every journey ends).
fn journey_calls() -> i64 {
    calls_ended_in(&journey_lines())
}

/// Posts the journeys in chunks, as NDJSON; returns the events sent.
async fn post_journeys_in_chunks(server: &TestServer, chunk: usize) -> u64 {
    let lines = journey_lines();
    for part in lines.chunks(chunk) {
        let reply = server.post_ok(&part.join("\n")).await;
        assert_eq!(
            reply,
            json!({"accepted": part.len(), "duplicates": 0}),
            "a fresh chunk is accepted whole"
        );
    }
    lines.len() as u64
}

/// The snapshot once every journey posted so far is counted.
async fn settled_snapshot(server: &TestServer, finished: i64) -> Value {
    server
        .snapshot_when(|s| sum(&s["outcomes"]) == finished)
        .await
}

// Read your writes: `GET /api/snapshot` right after a POST answered holds
// every event of it (no sleep, no polling), and its seq never goes back.
#[tokio::test]
async fn a_snapshot_read_after_a_post_holds_every_event_of_it() {
    let server = TestServer::start().await;
    let fresh = server.snapshot().await;
    assert_eq!(
        fresh["day"],
        Value::Null,
        "a feed clock has no day before its first event"
    );
    let lines = journey_lines();
    let mut seq = 0;
    for posted in (1..=lines.len()).step_by(3) {
        let part = &lines[posted.saturating_sub(3)..posted];
        server.post_ok(&part.join("\n")).await;
        let snapshot = server.snapshot().await;
        assert_eq!(
            sum(&snapshot["outcomes"]),
            calls_ended_in(&lines[..posted]),
            "after {posted} events: {snapshot}"
        );
        let now = snapshot["seq"].as_u64().expect("seq");
        assert!(now >= seq, "seq went back from {seq} to {now}");
        seq = now;
        assert!(snapshot["day"].is_string(), "{snapshot}");
    }
}

// WebSocket: a client that folds every delta into its first snapshot holds
// exactly what `GET /api/snapshot` returns at the same seq.

#[tokio::test]
async fn ws_clients_fold_deltas_into_the_snapshot() {
    let server = TestServer::start().await;
    let mut early = server.ws().await;
    assert_eq!(early.seq, 0, "a fresh server is at seq 0");
    assert_eq!(sum(&early.board["outcomes"]), 0);

    post_journeys_in_chunks(&server, 9).await;
    let snapshot = settled_snapshot(&server, journey_calls()).await;
    let seq = snapshot["seq"].as_u64().expect("snapshot seq");
    assert!(seq > 0, "posting events moved the board");

    early.wait_for_seq(seq).await;
    assert_eq!(early.snapshots, 1, "no resync was needed");
    assert_eq!(early.deltas, seq, "one delta per seq from 0");
    assert_eq!(early.board, snapshot, "folded board == snapshot");

    // A client arriving now starts from the current board and follows on.
    let mut late = server.ws().await;
    assert_eq!(late.seq, seq);
    assert_eq!(late.board, snapshot, "late client's snapshot");

    let queued = r#"{"id":"late-1","call":"late-call","at":"2026-11-20T11:42:00Z","type":"queued","queue":"results"}"#;
    server.post_ok(queued).await;
    let after = server
        .snapshot_when(|s| s["live"]["queued"] == json!(1))
        .await;
    let after_seq = after["seq"].as_u64().unwrap();
    early.wait_for_seq(after_seq).await;
    late.wait_for_seq(after_seq).await;
    assert_eq!(early.board, after, "early client after one more event");
    assert_eq!(late.board, after, "late client after one more event");
    assert_eq!(late.deltas, after_seq - seq);
}

#[tokio::test]
async fn ws_board_matches_the_offline_classification() {
    let server = TestServer::start().await;
    let mut client = server.ws().await;
    post_journeys_in_chunks(&server, 40).await;
    client
        .wait_until(|b| sum(&b["outcomes"]) == journey_calls())
        .await;

    let expected: Vec<Value> = include_str!("data/expected.ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut outcomes = serde_json::Map::new();
    for call in &expected {
        let name = call["outcome"].as_str().unwrap().to_owned();
        let n = outcomes.get(&name).and_then(Value::as_i64).unwrap_or(0);
        outcomes.insert(name, (n + 1).into());
    }
    assert_eq!(client.board["outcomes"], Value::Object(outcomes));
    for (definition, figures) in client.board["definitions"].as_object().unwrap() {
        let mut boxes: Vec<(&str, i64)> = Vec::new();
        for call in &expected {
            let name = call["boxes"][definition].as_str().unwrap();
            match boxes.iter_mut().find(|(b, _)| *b == name) {
                Some((_, n)) => *n += 1,
                None => boxes.push((name, 1)),
            }
        }
        for (name, n) in boxes {
            assert_eq!(figures["boxes"][name], json!(n), "{definition}.{name}");
        }
        assert_eq!(sum(&figures["boxes"]), journey_calls(), "{definition}");
    }
}

// Ingest: a batch is applied whole or not at all, and errors say where.

/// NDJSON of events `1..` that would change the board, then `bad` as line 3.
fn batch_with_bad_third_line(bad: &str) -> String {
    [
        r#"{"id":"r1","call":"reject-1","at":"2026-11-20T11:40:00Z","type":"queued","queue":"results"}"#,
        r#"{"id":"r2","call":"reject-2","at":"2026-11-20T11:40:01Z","type":"answered","agent":"zoe"}"#,
        bad,
        r#"{"id":"r4","call":"reject-1","at":"2026-11-20T11:40:05Z","type":"ended"}"#,
    ]
    .join("\n")
}

#[tokio::test]
async fn a_rejected_batch_leaves_the_board_unchanged() {
    let server = TestServer::start().await;
    let lines = journey_lines();
    server.post_ok(&lines.join("\n")).await;
    let before = settled_snapshot(&server, journey_calls()).await;

    let cases = [
        (
            r#"{"id":"r3","call":"reject-3","at":"2026-11-20T11:40:02Z","type":"teleported"}"#,
            "type",
        ),
        (
            r#"{"id":"r3","call":"reject-3","at":"half past eleven","type":"ended"}"#,
            "at",
        ),
        (
            r#"{"id":"r3","at":"2026-11-20T11:40:02Z","type":"ended"}"#,
            "call",
        ),
        (
            r#"{"id":"r3","call":"reject-3","at":"2026-11-20T11:40:02Z","type":"queued"}"#,
            "queue",
        ),
        (
            r#"{"id":"r3","call":"reject-3","at":"2026-11-20T11:40:02Z","type":"answered","agent":7}"#,
            "agent",
        ),
        (
            r#"{"id":"r3","call":"","at":"2026-11-20T11:40:02Z","type":"ended"}"#,
            "call",
        ),
    ];
    for (bad, field) in cases {
        let (status, reply) = server.post_ndjson(&batch_with_bad_third_line(bad)).await;
        assert_eq!(status, 400, "{bad}: {reply}");
        assert_eq!(reply["index"], json!(2), "{bad}: {reply}");
        assert_eq!(reply["field"], json!(field), "{bad}: {reply}");
        let error = reply["error"].as_str().expect("error text");
        assert!(error.contains(field), "{error:?} names {field}");
        assert!(error.contains("line 3"), "{error:?} names the line");
    }

    // The same as a JSON array: the index is the array position.
    let array = format!(
        "[{}]",
        batch_with_bad_third_line(cases[0].0)
            .lines()
            .collect::<Vec<_>>()
            .join(",")
    );
    let (status, reply) = server.post_json(&array).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        (&reply["index"], &reply["field"]),
        (&json!(2), &json!("type"))
    );

    // Broken JSON on line 3: the index is right, no field is to blame.
    let (status, reply) = server
        .post_ndjson(&batch_with_bad_third_line(r#"{"id":"r3","call":"#))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["index"], json!(2), "{reply}");
    assert!(reply["field"].is_null(), "{reply}");

    // An agent coming online marks a point after every rejected batch: once
    // it shows, anything the rejected batches had applied would show too.
    let marker = r#"{"at":"2026-11-20T09:00:00Z","type":"agent_status","agent":"marker","status":"available"}"#;
    server.post_ok(marker).await;
    let after = server
        .snapshot_when(|s| s["agents"]["available"] != before["agents"]["available"])
        .await;
    let mut expected = figures(&before);
    expected["agents"]["available"] = json!(before["agents"]["available"].as_i64().unwrap() + 1);
    assert_eq!(
        figures(&after),
        expected,
        "only the marker changed the board"
    );

    // Nothing of the rejected batches was kept, not even their ids.
    let valid: String = batch_with_bad_third_line("")
        .lines()
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        server.post_ok(&valid).await,
        json!({"accepted": 3, "duplicates": 0})
    );

    // Posting the journeys again: every event is a duplicate.
    assert_eq!(
        server.post_ok(JOURNEYS).await,
        json!({"accepted": 0, "duplicates": lines.len()})
    );
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("wallboard_batches_rejected_total 8\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn duplicates_within_a_batch_and_across_batches_are_counted() {
    let server = TestServer::start().await;
    let a = r#"{"id":"d1","call":"dup","at":"2026-11-20T10:00:00Z","type":"queued","queue":"q"}"#;
    let b = r#"{"id":"d2","call":"dup","at":"2026-11-20T10:00:30Z","type":"ended"}"#;
    let no_id = r#"{"call":"dup","at":"2026-11-20T10:00:31Z","type":"ended"}"#;
    assert_eq!(
        server.post_ok(&[a, a, b].join("\n")).await,
        json!({"accepted": 2, "duplicates": 1})
    );
    assert_eq!(
        server.post_ok(&[b, a, no_id, no_id].join("\n")).await,
        json!({"accepted": 2, "duplicates": 2}),
        "events without an id are never duplicates"
    );
    let board = server.snapshot_when(|s| sum(&s["outcomes"]) == 1).await;
    assert_eq!(board["outcomes"]["queue_abandoned"], json!(1), "{board}");
}

// Content types: a JSON object, a JSON array, NDJSON with or without its type.

#[tokio::test]
async fn ingest_accepts_object_array_and_ndjson() {
    let server = TestServer::start().await;
    let event = |id: &str, call: &str| {
        format!(
            r#"{{"id":"{id}","call":"{call}","at":"2026-11-20T10:00:00Z","type":"queued","queue":"q"}}"#
        )
    };

    let single = event("o1", "object");
    assert_eq!(
        server.post_json(&single).await,
        (200, json!({"accepted": 1, "duplicates": 0}))
    );

    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<Value>(&event("o2", "pretty")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        server.post_json(&pretty).await,
        (200, json!({"accepted": 1, "duplicates": 0}))
    );

    let array = format!(
        "[{}, {}, {}]",
        event("a1", "array"),
        event("a2", "array2"),
        single
    );
    assert_eq!(
        server.post_json(&array).await,
        (200, json!({"accepted": 2, "duplicates": 1}))
    );
    assert_eq!(
        server.post_json("[]").await,
        (200, json!({"accepted": 0, "duplicates": 0}))
    );

    let ndjson = format!(
        "{}\n\n{}\r\n{}\n",
        event("n1", "nd1"),
        event("n2", "nd2"),
        event("a1", "array")
    );
    assert_eq!(
        server.post_ndjson(&ndjson).await,
        (200, json!({"accepted": 2, "duplicates": 1}))
    );

    let sniffed = format!("{}\n{}", event("s1", "sn1"), event("s2", "sn2"));
    assert_eq!(
        server.post(sniffed, "application/json").await,
        (200, json!({"accepted": 2, "duplicates": 0})),
        "NDJSON sent as JSON"
    );

    let board = server
        .snapshot_when(|s| s["live"]["queued"] == json!(8))
        .await;
    assert_eq!(board["queues"]["q"]["live"]["queued"], json!(8), "{board}");
}

// Malformed and over-size bodies.

#[tokio::test]
async fn malformed_bodies_are_refused_with_json_errors() {
    let server = TestServer::start().await;
    for body in [
        b"{\"type\":\"closed\",".to_vec(),
        b"[{\"type\":\"closed\"},".to_vec(),
        b"not json at all".to_vec(),
        b"{\"type\":\"closed\",\"call\":\"\xff\xfe\",\"at\":\"2026-11-20T10:00:00Z\"}".to_vec(),
        b"\xff\xfe\x00{".to_vec(),
        b"42".to_vec(),
        b"[1, 2]".to_vec(),
    ] {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (status, reply) = server.post(body, "application/json").await;
        assert_eq!(status, 400, "{shown:?}: {reply}");
        assert!(reply["error"].is_string(), "{shown:?}: {reply}");
        assert_eq!(reply["index"], json!(0), "{shown:?}: {reply}");
    }
    let board = server.snapshot().await;
    assert_eq!(board["live"]["in_ivr"], json!(0));
}

#[tokio::test]
async fn an_over_size_body_is_refused_with_413() {
    let server = TestServer::start().await;
    let limit = Config::default().security.limits.body_bytes;
    // Blank lines, then one valid event: only the size can be refused.
    let event = r#"{"call":"big","at":"2026-11-20T10:00:00Z","type":"ivr_started"}"#;
    let padded = |len: usize| format!("{}{event}\n", "\n".repeat(len - event.len() - 1));

    let (status, reply) = server.post_ndjson(&padded(limit + 1)).await;
    assert_eq!(status, 413, "{reply}");
    assert!(
        reply["error"].as_str().is_some_and(|e| e.contains("limit")),
        "{reply}"
    );

    let (status, reply) = server.post_ndjson(&padded(limit)).await;
    assert_eq!(status, 200, "exactly the limit is fine: {reply}");
    assert_eq!(reply, json!({"accepted": 1, "duplicates": 0}));
}

/// NDJSON of `n` IVR events of one call, one millisecond apart.
fn one_long_call(n: usize) -> String {
    let start: jiff::Timestamp = "2026-11-20T10:00:00Z".parse().unwrap();
    (0..n)
        .map(|i| {
            let at = start + jiff::SignedDuration::from_millis(i as i64);
            format!(r#"{{"call":"long","at":"{at}","type":"ivr_input","digits":"1"}}"#)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_full_size_batch_for_one_call_does_not_stall_the_server() {
    let server = TestServer::start_detached();
    for n in [2_000, 4_000, 8_000] {
        let started = Instant::now();
        server.post_ok(&one_long_call(n)).await;
        eprintln!("{n} events of one call: {:?}", started.elapsed());
    }
    // As many events as one batch may hold, all for one call.
    let body = one_long_call(Config::default().security.limits.max_events_per_batch);
    assert!(body.len() < Config::default().security.limits.body_bytes);
    within(server.post_ok(&body)).await;
    let (status, _) = within(server.get("/healthz")).await;
    assert_eq!(status, 200);
}

// The server-rendered page shows the snapshot's figures.

/// (data-box, data-path, data-format, text of [data-value]) of every tile.
fn tiles(html: &str) -> Vec<(String, String, String, String)> {
    let attr = |tag: &str, name: &str| -> String {
        let start = tag
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("{name} in {tag}"))
            + name.len()
            + 2;
        tag[start..start + tag[start..].find('"').unwrap()].to_owned()
    };
    html.split("<section")
        .skip(1)
        .map(|section| {
            let tag = &section[..section.find('>').unwrap()];
            let value_at = section.find("data-value").expect("tile has [data-value]");
            let rest = &section[value_at..];
            let open = rest.find('>').unwrap() + 1;
            let text = &rest[open..open + rest[open..].find('<').unwrap()];
            (
                attr(tag, "data-box"),
                attr(tag, "data-path"),
                attr(tag, "data-format"),
                text.trim().to_owned(),
            )
        })
        .collect()
}

/// Seconds as m:ss or h:mm:ss, rounded to the nearest second: written again
/// here on purpose, so the page is checked against an independent oracle.
fn clock(secs: f64) -> String {
    let total = secs.round() as i64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A figure of the board as a tile should show it.
fn shown(board: &Value, path: &str, format: &str) -> String {
    let value = path.split('.').try_fold(board, |v, k| v.get(k));
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return "–".into();
    };
    match format {
        "count" => value.as_i64().unwrap().to_string(),
        "percent" => format!("{}%", (value.as_f64().unwrap() * 100.0).round()),
        "secs" => clock(value.as_f64().unwrap()),
        "since" => {
            let now: jiff::Timestamp = board["now"].as_str().unwrap().parse().unwrap();
            let since: jiff::Timestamp = value.as_str().unwrap().parse().unwrap();
            clock(now.duration_since(since).as_secs_f64())
        }
        other => panic!("unknown tile format {other}"),
    }
}

#[tokio::test]
async fn the_page_shows_the_snapshot_figures() {
    let server = TestServer::start().await;
    server.post_ok(JOURNEYS).await;
    let live = [
        r#"{"id":"p1","call":"waiting","at":"2026-11-20T11:40:00Z","type":"queued","queue":"results"}"#,
        r#"{"id":"p2","call":"talking","at":"2026-11-20T11:41:00Z","type":"answered","agent":"amy"}"#,
        r#"{"id":"p3","at":"2026-11-20T11:41:00Z","type":"agent_status","agent":"bob","status":"available"}"#,
    ];
    server.post_ok(&live.join("\n")).await;
    let board = server
        .snapshot_when(|s| {
            sum(&s["outcomes"]) == journey_calls() && s["agents"]["available"] == json!(1)
        })
        .await;

    let (status, html) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("data-seq=\"{}\"", board["seq"])),
        "page seq"
    );
    let tiles = tiles(&html);
    let names: Vec<&str> = tiles.iter().map(|t| t.0.as_str()).collect();
    for expected in [
        "queued",
        "longest_waiting",
        "answered",
        "missed",
        "abandoned",
        "service_level",
        "abandon_rate",
        "asa",
        "talking",
        "agents_available",
    ] {
        assert!(names.contains(&expected), "tile {expected} in {names:?}");
    }
    for (name, path, format, text) in &tiles {
        assert_eq!(text, &shown(&board, path, format), "tile {name} ({path})");
    }
    let tile = |name: &str| tiles.iter().find(|t| t.0 == name).unwrap().3.clone();
    assert_eq!(tile("queued"), "1");
    assert_eq!(
        tile("longest_waiting"),
        "1:40",
        "now 11:41:40, queued since 11:40:00"
    );
    assert_eq!(tile("talking"), "1");
    assert_eq!(tile("agents_available"), "1");

    let (status, script) = server.get("/static/board.js").await;
    assert_eq!(status, 200);
    assert!(script.contains("/ws"));
    assert_eq!(server.get("/static/nope.js").await.0, 404);
}

#[tokio::test]
async fn the_page_rounds_percentages_like_the_live_script() {
    let server = TestServer::start().await;
    let mut events = Vec::new();
    for i in 0..7 {
        events.push(format!(
            r#"{{"call":"ok-{i}","at":"2026-11-20T10:00:0{i}Z","type":"answered","agent":"amy"}}"#
        ));
        events.push(format!(
            r#"{{"call":"ok-{i}","at":"2026-11-20T10:01:0{i}Z","type":"ended"}}"#
        ));
    }
    events.push(r#"{"call":"gone","at":"2026-11-20T10:02:00Z","type":"ended"}"#.into());
    server.post_ok(&events.join("\n")).await;
    let board = server.snapshot_when(|s| sum(&s["outcomes"]) == 8).await;
    assert_eq!(
        board["definitions"]["reachable"]["abandon_rate"],
        json!(0.125)
    );

    let (_, html) = server.get("/").await;
    let tiles = tiles(&html);
    let rate = tiles.iter().find(|t| t.0 == "abandon_rate").unwrap();
    assert_eq!(
        rate.3, "13%",
        "1 of 8 is 12.5%, which Math.round shows as 13%"
    );
}

// Health and metrics.

#[tokio::test]
async fn healthz_and_metrics() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).expect("healthz is JSON");
    assert_eq!(health["ok"], json!(true));

    server.post_ok(&journey_lines()[..5].join("\n")).await;
    let (status, metrics) = server.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE wallboard_events_accepted_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nwallboard_events_accepted_total 5\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nwallboard_events_duplicate_total 0\n"),
        "{metrics}"
    );

    let _client = server.ws().await;
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics.contains("\nwallboard_ws_clients 1\n"), "{metrics}");
}

#[tokio::test]
async fn snapshot_of_a_day() {
    let server = TestServer::start().await;
    server.post_ok(JOURNEYS).await;
    let today = settled_snapshot(&server, journey_calls()).await;
    assert_eq!(today["day"], json!("2026-11-20"));
    let (status, body) = server.get("/api/snapshot?day=2026-11-20").await;
    assert_eq!(status, 200);
    let day: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(day["outcomes"], today["outcomes"]);
    assert_eq!(server.get("/api/snapshot?day=2026-11-19").await.0, 404);
    assert_eq!(server.get("/api/snapshot?day=yesterday").await.0, 400);
}

// Latency from POST to the delta at a connected client: printed, not asserted.

#[tokio::test]
async fn latency_from_post_to_delta() {
    let server = TestServer::start().await;
    server.post_ok(&journey_lines()[..10].join("\n")).await;
    let settled = server
        .snapshot_when(|s| sum(&s["outcomes"]) == calls_ended_in(&journey_lines()[..10]))
        .await;
    let mut client = server.ws().await;
    client.wait_for_seq(settled["seq"].as_u64().unwrap()).await;

    let mut samples = Vec::new();
    for i in 0..5 {
        let event = format!(
            r#"{{"id":"lat-{i}","call":"lat-{i}","at":"2026-11-20T09:30:0{i}Z","type":"queued","queue":"q"}}"#
        );
        let started = Instant::now();
        server.post_ok(&event).await;
        let got = within(client.receive()).await;
        samples.push(started.elapsed());
        assert_eq!(got, Received::Delta);
        assert_eq!(client.board["live"]["queued"], json!(i + 1));
    }
    eprintln!("POST → WebSocket delta latency (fold window included): {samples:?}");
}

// Shutdown: stopping the server closes WebSockets and returns.

#[tokio::test]
async fn stopping_the_server_closes_websockets() {
    let server = TestServer::start().await;
    let client = server.ws().await;
    let addr = server.addr;
    within(server.stop()).await.expect("clean stop");
    within(client.closed()).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

// `wallboard replay` sends a recorded feed to a running server.

#[tokio::test]
async fn replay_sends_a_recorded_feed_once() {
    use wallboard::replay::{ReplayOptions, run};
    let server = TestServer::start().await;
    let options = ReplayOptions {
        file: "tests/data/journeys.ndjson".into(),
        to: server.base.clone(),
        speed: None,
        token: None,
        format: wallboard::source::Format::Events,
    };
    let sent = run(&options).await.expect("replayed");
    let lines = JOURNEYS.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    assert_eq!((sent.accepted, sent.duplicates), (lines, 0));
    let again = run(&options).await.expect("replayed again");
    assert_eq!((again.accepted, again.duplicates), (0, lines));

    // Paced by the events' own times: two events a minute apart at 600× take about 0.1 s.
    let paced = std::env::temp_dir().join(format!("wallboard-paced-{}.ndjson", std::process::id()));
    std::fs::write(
        &paced,
        concat!(
            r#"{"type":"queued","call":"p","at":"2026-11-20T12:00:00Z","queue":"q"}"#,
            "\n",
            r#"{"type":"ended","call":"p","at":"2026-11-20T12:01:00Z"}"#,
            "\n",
        ),
    )
    .unwrap();
    let started = Instant::now();
    let sent = run(&ReplayOptions {
        file: paced.clone(),
        speed: Some(600.0),
        ..options.clone()
    })
    .await
    .expect("paced replay");
    assert_eq!(sent.accepted, 2);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(100),
        "paced, not sent at once"
    );

    let bad = std::env::temp_dir().join(format!("wallboard-bad-{}.ndjson", std::process::id()));
    std::fs::write(
        &bad,
        "{\"type\":\"queued\",\"call\":\"x\",\"at\":\"soon\",\"queue\":\"q\"}\n",
    )
    .unwrap();
    let err = run(&ReplayOptions {
        file: bad.clone(),
        ..options
    })
    .await
    .expect_err("refused");
    assert!(
        err.to_string().contains("line 1") && err.to_string().contains("`at`"),
        "{err}"
    );
    let _ = (std::fs::remove_file(paced), std::fs::remove_file(bad));
}
