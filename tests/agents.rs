//! The agents' day in `GET /api/supervisor`: per agent, today's calls
//! offered, answered and declined, talk time, time in each status, the
//! current status with its pause reason and the call it is on; the same
//! after a restart on the same store, and afresh when the day has turned.

mod common;

use std::sync::Arc;

use common::TestServer;
use jiff::Timestamp;
use serde_json::{Value, json};
use wallboard::clock::{Clock, WallClock};
use wallboard::config::Config;
use wallboard::server::ServeOptions;

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wallboard-test-agents-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn server(dir: &std::path::Path, now: &str) -> TestServer {
    let now: Timestamp = now.parse().unwrap();
    let wall: WallClock = Arc::new(move || now);
    TestServer::start_with(ServeOptions {
        clock: Clock::Wall,
        wall,
        data_dir: Some(dir.to_owned()),
        ..ServeOptions::new(Config::default())
    })
    .await
}

/// The agents' day, by agent name.
async fn agents_day(server: &TestServer) -> Value {
    let (status, text) = server.get("/api/supervisor").await;
    assert_eq!(status, 200, "{text}");
    let detail: Value = serde_json::from_str(&text).unwrap();
    let day = &detail["agents_day"];
    let rows = day["agents"].as_array().expect("agents_day.agents");
    assert_eq!(day["total"], rows.len());
    let by_name = rows
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_owned(), a.clone()));
    Value::Object(by_name.collect())
}

fn line(id: &str, call: Option<&str>, at: &str, kind: &str, extra: Value) -> String {
    let mut event = json!({"id": id, "type": kind, "at": format!("2026-11-20T{at}Z")});
    if let Some(call) = call {
        event["call"] = json!(call);
    }
    if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
        event.extend(extra);
    }
    event.to_string()
}

/// Amy answers two calls (one she transfers to Ben) and goes to lunch; Ben
/// lets one ring out and is on a call now.
fn morning() -> Vec<String> {
    let status = |id: &str, at: &str, agent: &str, status: &str| {
        line(
            id,
            None,
            at,
            "agent_status",
            json!({"agent": agent, "status": status}),
        )
    };
    let call = |id: &str, call: &str, at: &str, kind: &str, extra: Value| {
        line(id, Some(call), at, kind, extra)
    };
    vec![
        line(
            "s0",
            None,
            "00:00:00",
            "agent_status",
            json!({"agent": "amy", "status": "offline"}),
        )
        .replace("2026-11-20T00:00:00Z", "2026-11-19T20:00:00Z"),
        status("s1", "08:00:00", "amy", "available"),
        status("s2", "08:30:00", "ben", "available"),
        status("s3", "09:00:10", "amy", "busy"),
        status("s4", "09:05:00", "amy", "wrap_up"),
        status("s5", "09:06:00", "amy", "available"),
        line(
            "s6",
            None,
            "09:40:00",
            "agent_status",
            json!({"agent": "amy", "status": "away", "reason": "Lunch"}),
        ),
        call("a1", "a", "09:00:00", "queued", json!({"queue": "sales"})),
        call("a2", "a", "09:00:05", "offered", json!({"agent": "amy"})),
        call("a3", "a", "09:00:10", "answered", json!({"agent": "amy"})),
        call("a4", "a", "09:05:00", "ended", json!({})),
        call("b1", "b", "09:10:00", "queued", json!({"queue": "sales"})),
        call("b2", "b", "09:10:05", "offered", json!({"agent": "ben"})),
        call("b3", "b", "09:10:20", "declined", json!({"agent": "ben"})),
        call("b4", "b", "09:10:20", "offered", json!({"agent": "amy"})),
        call("b5", "b", "09:10:30", "answered", json!({"agent": "amy"})),
        call(
            "b6",
            "b",
            "09:12:30",
            "transferred",
            json!({"to_agent": "ben"}),
        ),
        call("b7", "b", "09:12:40", "answered", json!({"agent": "ben"})),
        call("b8", "b", "09:20:40", "ended", json!({})),
        call("c1", "c", "09:50:00", "queued", json!({"queue": "sales"})),
        call("c2", "c", "09:50:05", "offered", json!({"agent": "ben"})),
        call("c3", "c", "09:50:10", "answered", json!({"agent": "ben"})),
    ]
}

#[tokio::test]
async fn the_agents_day_is_in_the_detail_and_survives_a_restart() {
    let dir = temp_dir();
    let server = server(&dir, "2026-11-20T10:00:00Z").await;
    let lines = morning();
    // Late half first, then the rest, then a batch again (repeated ids).
    let (early, late) = lines.split_at(lines.len() / 2);
    server.post_ok(&late.join("\n")).await;
    server.post_ok(&early.join("\n")).await;
    server.post_ok(&lines[5..12].join("\n")).await;
    let day = agents_day(&server).await;

    let amy = &day["amy"];
    assert_eq!(
        (
            &amy["offered"],
            &amy["answered"],
            &amy["declined"],
            &amy["handled"]
        ),
        (&json!(2), &json!(2), &json!(0), &json!(2))
    );
    assert_eq!(amy["talk_secs"], 290.0 + 120.0);
    assert_eq!(amy["aht_secs"], 205.0);
    assert_eq!(
        (&amy["status"], &amy["reason"]),
        (&json!("away"), &json!("Lunch"))
    );
    assert_eq!(amy["since"], "2026-11-20T09:40:00Z");
    assert_eq!(
        amy["status_secs"],
        json!({"available": 3610.0 + 2040.0, "busy": 290.0, "wrap_up": 60.0, "away": 0.0, "offline": 8.0 * 3600.0}),
        "closed spans; the day opened with her offline"
    );
    assert_eq!(
        amy["timing"],
        json!({"status": "away", "since": "2026-11-20T09:40:00Z"})
    );
    assert!(amy.get("call").is_none());

    let ben = &day["ben"];
    assert_eq!(
        (
            &ben["offered"],
            &ben["answered"],
            &ben["declined"],
            &ben["handled"]
        ),
        (&json!(3), &json!(2), &json!(1), &json!(1)),
        "rung by a queue twice and by a transfer once"
    );
    assert_eq!(
        (&ben["talk_secs"], &ben["aht_secs"]),
        (&json!(480.0), &json!(480.0))
    );
    assert_eq!(
        ben["call"],
        json!({"call": "c", "state": "talking", "since": "2026-11-20T09:50:10Z"})
    );
    assert_eq!(
        ben["timing"],
        json!({"status": "available", "since": "2026-11-20T08:30:00Z"})
    );
    server.stop().await.unwrap();

    // The same store, the same time: the same day, folded again from the events.
    let server = self::server(&dir, "2026-11-20T10:00:00Z").await;
    assert_eq!(agents_day(&server).await, day);
    server.stop().await.unwrap();

    // Amy logs off in the evening.
    let server = self::server(&dir, "2026-11-20T19:00:00Z").await;
    let off = line(
        "s7",
        None,
        "18:30:00",
        "agent_status",
        json!({"agent": "amy", "status": "offline"}),
    );
    server.post_ok(&off).await;
    server.stop().await.unwrap();

    // The next morning: figures start afresh; Amy opens the day as she left it.
    let server = self::server(&dir, "2026-11-21T07:00:00Z").await;
    let next = agents_day(&server).await;
    let amy = &next["amy"];
    assert_eq!(
        (&amy["offered"], &amy["talk_secs"]),
        (&json!(0), &json!(0.0))
    );
    assert_eq!(amy["status_secs"]["away"], 0.0);
    assert_eq!(
        amy["timing"],
        json!({"status": "offline", "since": "2026-11-21T00:00:00Z"})
    );
    assert!(next["ben"]["aht_secs"].is_null());
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
