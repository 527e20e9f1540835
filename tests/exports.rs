//! `GET /api/calls`: a day's finished calls as JSON and CSV from a real
//! server on port 0 with a store, checked against `wallboard classify
//! --calls` of the same events, read back with a real CSV reader; its
//! errors and auth; a restart and a version-2 store; and (run on purpose)
//! the memory a 100,000-call day takes to export.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{JOURNEYS, TestServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use wallboard::clock::{Clock, WallClock};
use wallboard::config::Config;
use wallboard::server::ServeOptions;

const DAY: &str = "2026-11-20";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wallboard-exports-{name}-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixed_clock(at: &str) -> WallClock {
    let at: Timestamp = at.parse().unwrap();
    Arc::new(move || at)
}

/// A server on `dir` with the feed clock (the recorded day is today).
async fn start_feed(dir: &Path) -> TestServer {
    TestServer::start_with(ServeOptions {
        clock: Clock::Feed,
        data_dir: Some(dir.to_owned()),
        ..ServeOptions::new(Config::default())
    })
    .await
}

/// A server on `dir` whose wall clock stands at `now`.
async fn start_at(dir: &Path, now: &str, config: Config) -> TestServer {
    TestServer::start_with(ServeOptions {
        clock: Clock::Wall,
        wall: fixed_clock(now),
        data_dir: Some(dir.to_owned()),
        ..ServeOptions::new(config)
    })
    .await
}

/// `GET path` with optional bearer token: (status, content type, body bytes).
async fn fetch(server: &TestServer, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut request = reqwest::Client::new().get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

async fn export_json(server: &TestServer, day: &str) -> Value {
    let (status, content_type, body) = fetch(server, &format!("/api/calls?day={day}"), None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/json");
    serde_json::from_slice(&body).unwrap()
}

/// The CSV export read with the `csv` crate, as (header, rows).
async fn export_csv(server: &TestServer, day: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let path = format!("/api/calls?day={day}&format=csv");
    let (status, content_type, body) = fetch(server, &path, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        content_type.starts_with("text/csv; charset=utf-8"),
        "{content_type}"
    );
    let text = String::from_utf8(body).expect("UTF-8");
    let text = text
        .strip_prefix('\u{feff}')
        .expect("a BOM for spreadsheets");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// `wallboard classify --calls` of `events`: call id → its line.
fn classify_calls(events: &str) -> BTreeMap<String, Value> {
    let dir = temp_dir("classify");
    let file = dir.join("events.ndjson");
    std::fs::write(&file, events).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wallboard"))
        .args(["classify", "--calls"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["call"].as_str().unwrap().to_owned(), v))
        .collect()
}

/// Every call of the recorded day, in JSON and CSV, has the outcome, wait
/// and boxes `classify --calls` gives it; the CSV and the JSON agree; and a
/// restart (the day now read from the store alone) exports the same file.
#[tokio::test]
async fn a_day_exports_as_classify_counts_it_and_survives_a_restart() {
    let dir = temp_dir("day");
    let server = start_feed(&dir).await;
    server.post_ok(JOURNEYS).await;
    let expected = classify_calls(JOURNEYS);
    assert!(expected.len() > 10, "the journeys hold many finished calls");

    let doc = export_json(&server, DAY).await;
    assert_eq!(doc["day"], DAY);
    assert_eq!(doc["timezone"], "UTC");
    let calls = doc["calls"].as_array().unwrap();
    let exported: BTreeMap<String, &Value> = calls
        .iter()
        .map(|c| (c["call"].as_str().unwrap().to_owned(), c))
        .collect();
    assert_eq!(exported.len(), calls.len(), "each call once");
    assert_eq!(
        exported.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (call, line) in &expected {
        let row = exported[call];
        assert_eq!(row["outcome"], line["outcome"], "{call}");
        assert_eq!(row["wait_secs"], line["wait_secs"], "{call}");
        assert_eq!(row["boxes"], line["boxes"], "{call}");
    }
    let finished: Vec<&str> = calls
        .iter()
        .map(|c| c["finished_at_utc"].as_str().unwrap())
        .collect();
    assert!(finished.is_sorted(), "in order of finishing");

    // One journey's moments, from its events in tests/data/journeys.ndjson.
    let j01 = exported["j01-answered-from-queue"];
    assert_eq!(j01["started_at_utc"], "2026-11-20T09:00:00Z");
    assert_eq!(j01["started_at"], "2026-11-20T09:00:00+00:00");
    assert_eq!(j01["queued_at_utc"], "2026-11-20T09:00:10Z");
    assert_eq!(j01["finished_at_utc"], "2026-11-20T09:05:00Z");
    assert!(j01["answered_at_utc"].is_string(), "{j01}");
    assert_eq!(j01["queue"], "appointments");

    let (header, rows) = export_csv(&server, DAY).await;
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), calls.len());
    for (row, json) in rows.iter().zip(calls) {
        assert_eq!(row[col("call")], json["call"].as_str().unwrap());
        let line = &expected[&row[col("call")]];
        assert_eq!(row[col("outcome")], line["outcome"].as_str().unwrap());
        for (definition, shown) in line["boxes"].as_object().unwrap() {
            assert_eq!(&row[col(&format!("box_{definition}"))], shown);
        }
        let wait = line["wait_secs"].as_f64().map(|w| w.to_string());
        assert_eq!(row[col("wait_secs")], wait.unwrap_or_default());
    }
    server.stop().await.unwrap();

    // Three days on: the engine no longer holds the day; the store alone has it.
    let later = start_at(&dir, "2026-11-23T12:00:00Z", Config::default()).await;
    let again = export_json(&later, DAY).await;
    assert_eq!(again, doc, "the store keeps every column");
    later.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A call reclassified by a late event shows its latest outcome at once,
/// before the store's rows catch up, and after a restart.
#[tokio::test]
async fn a_reclassified_call_shows_its_latest_outcome() {
    let dir = temp_dir("late");
    let server = start_at(&dir, "2026-11-20T10:30:00Z", Config::default()).await;
    let event = |id: &str, at: &str, rest: Value| {
        let mut e = json!({"id": id, "call": "c1", "at": format!("2026-11-20T{at}Z")});
        e.as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        e.to_string() + "\n"
    };
    let first = [
        event(
            "1",
            "10:00:00",
            json!({"type": "call_started", "from": "+44 20 7946 0000"}),
        ),
        event("2", "10:00:05", json!({"type": "queued", "queue": "=cmd"})),
        event("3", "10:03:00", json!({"type": "ended"})),
    ]
    .concat();
    server.post_ok(&first).await;
    let outcome = |doc: &Value| doc["calls"][0]["outcome"].clone();
    assert_eq!(outcome(&export_json(&server, DAY).await), "queue_abandoned");

    server
        .post_ok(&event(
            "4",
            "10:01:00",
            json!({"type": "answered", "agent": "amy"}),
        ))
        .await;
    let doc = export_json(&server, DAY).await;
    assert_eq!(doc["calls"].as_array().unwrap().len(), 1);
    assert_eq!(outcome(&doc), "answered");
    assert_eq!(doc["calls"][0]["answered_at_utc"], "2026-11-20T10:01:00Z");
    assert_eq!(doc["calls"][0]["caller"], "+44 20 7946 0000", "raw in JSON");

    let (header, rows) = export_csv(&server, DAY).await;
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows[0][col("outcome")], "answered");
    assert_eq!(
        rows[0][col("caller")],
        "'+44 20 7946 0000",
        "defused in CSV"
    );
    assert_eq!(rows[0][col("queue")], "'=cmd");
    server.stop().await.unwrap();

    let later = start_at(&dir, "2026-11-21T09:00:00Z", Config::default()).await;
    assert_eq!(export_json(&later, DAY).await, doc);
    later.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad parameters name themselves; days not kept and a server without a
/// store say why; `day` left out means today.
#[tokio::test]
async fn bad_requests_and_days_not_kept_are_refused_clearly() {
    let dir = temp_dir("errors");
    let config = Config::parse("[store]\nretention_days = 7\n", "test.toml").unwrap();
    let server = start_at(&dir, "2026-11-20T12:00:00Z", config).await;
    let cases = [
        ("/api/calls?day=20-11-2026", 400, Some("day")),
        ("/api/calls?day=2026-02-30", 400, Some("day")),
        ("/api/calls?day=2026-11-20&format=xlsx", 400, Some("format")),
        ("/api/calls?day=2026-11-21", 404, None),
        ("/api/calls?day=2026-11-12", 404, None),
    ];
    for (path, status, field) in cases {
        let (got, _, body) = fetch(&server, path, None).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"].is_string(), "{body}");
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{path}: {body}");
        }
    }
    let (status, _, body) = fetch(&server, "/api/calls?day=2026-11-12", None).await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("first day kept is 2026-11-13"));
    for kept in ["/api/calls?day=2026-11-13", "/api/calls"] {
        let (status, _, body) = fetch(&server, kept, None).await;
        assert_eq!(status, 200, "{kept}");
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["calls"], json!([]));
    }
    let (status, _, body) = fetch(&server, "/api/calls/days", None).await;
    assert_eq!(status, 200);
    let days: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        days,
        json!({"today": "2026-11-20", "first_day": "2026-11-13", "timezone": "UTC"})
    );
    server.stop().await.unwrap();

    let memory = TestServer::start().await;
    let (status, _, body) = fetch(&memory, "/api/calls", None).await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("--data-dir"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Exports carry caller numbers: supervisors only.
#[tokio::test]
async fn exports_need_a_supervisor_token() {
    let dir = temp_dir("auth");
    let tokens = "[auth]\ningest_tokens = [\"ingest-1\"]\nviewer_tokens = [\"viewer-1\"]\nsupervisor_tokens = [\"super-1\"]\n";
    let config = Config::parse(tokens, "test.toml").unwrap();
    let server = start_at(&dir, "2026-11-20T12:00:00Z", config).await;
    for path in ["/api/calls", "/api/calls?format=csv", "/api/calls/days"] {
        for token in [None, Some("ingest-1"), Some("viewer-1")] {
            let (status, _, _) = fetch(&server, path, token).await;
            assert_eq!(status, 401, "{path} with {token:?}");
        }
        let (status, _, _) = fetch(&server, path, Some("super-1")).await;
        assert_eq!(status, 200, "{path}");
    }
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store written by version 2 (or 1) is migrated in place: its calls
/// export with their times empty, new calls with theirs.
#[tokio::test]
async fn a_version_2_store_is_migrated_in_place() {
    migrates_in_place(2).await;
}

#[tokio::test]
async fn a_version_1_store_is_migrated_in_place() {
    migrates_in_place(1).await;
}

async fn migrates_in_place(version: i64) {
    let dir = temp_dir(&format!("v{version}"));
    {
        let db = rusqlite::Connection::open(dir.join(wallboard::journal::DB_FILE)).unwrap();
        let schema = match version {
            // Version 2 added the agents' pause reasons.
            1 => VERSION_2_SCHEMA.replace(
                ",\n    queues TEXT NOT NULL, reason TEXT)",
                ",\n    queues TEXT NOT NULL)",
            ),
            _ => VERSION_2_SCHEMA.to_owned(),
        };
        assert_eq!(schema.contains("reason"), version == 2);
        db.execute_batch(&schema).unwrap();
        db.execute(
            "INSERT INTO finished_calls VALUES ('old', ?1, 'answered', 4000, 1, 'sales', 'amy', '=1+1', '2026-11-20T08:00:00Z')",
            [DAY],
        )
        .unwrap();
        db.pragma_update(None, "user_version", version).unwrap();
    }
    let server = start_at(&dir, "2026-11-20T12:00:00Z", Config::default()).await;
    let new = [
        json!({"id": "n1", "call": "new", "at": "2026-11-20T11:00:00Z", "type": "call_started"}),
        json!({"id": "n2", "call": "new", "at": "2026-11-20T11:00:03Z", "type": "queued", "queue": "sales"}),
        json!({"id": "n3", "call": "new", "at": "2026-11-20T11:02:00Z", "type": "ended"}),
    ]
    .iter()
    .map(|e| e.to_string() + "\n")
    .collect::<String>();
    server.post_ok(&new).await;
    server.stop().await.unwrap();

    let db = rusqlite::Connection::open(dir.join(wallboard::journal::DB_FILE)).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
    drop(db);
    let later = start_at(&dir, "2026-11-21T12:00:00Z", Config::default()).await;
    let doc = export_json(&later, DAY).await;
    let calls = doc["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{doc}");
    assert_eq!(calls[0]["call"], "old");
    assert_eq!(calls[0]["outcome"], "answered");
    assert_eq!(calls[0]["wait_secs"], 4.0);
    assert_eq!(
        calls[0]["started_at"],
        Value::Null,
        "not known before version 3"
    );
    assert_eq!(calls[1]["call"], "new");
    assert_eq!(calls[1]["outcome"], "queue_abandoned");
    assert_eq!(calls[1]["started_at_utc"], "2026-11-20T11:00:00Z");
    assert_eq!(calls[1]["queued_at_utc"], "2026-11-20T11:00:03Z");
    let (header, rows) = export_csv(&later, DAY).await;
    let caller = header.iter().position(|h| h == "caller").unwrap();
    assert_eq!(rows[0][caller], "'=1+1");
    later.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The store's schema as version 2 wrote it (src/journal/mod.rs before 3).
const VERSION_2_SCHEMA: &str = "
CREATE TABLE events (seq INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, call TEXT, id TEXT UNIQUE, body TEXT NOT NULL);
CREATE INDEX events_call ON events(call);
CREATE INDEX events_received ON events(received_ms);
CREATE INDEX events_at ON events(at_ms);
CREATE TABLE finished_calls (call TEXT PRIMARY KEY, day TEXT NOT NULL, outcome TEXT NOT NULL,
    wait_ms INTEGER, reached_staff INTEGER NOT NULL, queue TEXT, agent TEXT, caller TEXT,
    finished_at TEXT NOT NULL);
CREATE INDEX finished_calls_day ON finished_calls(day);
CREATE TABLE agents (agent TEXT PRIMARY KEY, status TEXT NOT NULL, since_ms INTEGER NOT NULL,
    queues TEXT NOT NULL, reason TEXT);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// Calls in the memory test's day.
const DAY_CALLS: u64 = 100_000;

/// One inbound call's events (as benches/store.rs makes them).
fn call_events(n: u64, start: Timestamp) -> Vec<wallboard::event::Event> {
    use wallboard::event::{Direction, EndedBy, Event, EventKind};
    let call = format!("bench-{n}");
    let at = |secs: i64| start + SignedDuration::from_secs(secs);
    let agent = format!("agent-{}", n % 40);
    let kinds = [
        (
            0,
            EventKind::CallStarted {
                direction: Direction::Inbound,
                channel: "voice".into(),
                from: Some(format!("+44 7700 9{:05}", n % 100_000)),
                to: None,
                line: Some("main".into()),
                dialer: false,
            },
        ),
        (
            7,
            EventKind::Queued {
                queue: ["appointments", "results"][(n % 2) as usize].into(),
            },
        ),
        (10 + (n % 90) as i64, EventKind::Answered { agent }),
        (
            130 + (n % 300) as i64,
            EventKind::Ended {
                by: EndedBy::Caller,
            },
        ),
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, (secs, kind))| Event {
            id: Some(format!("{call}#{i}")),
            call: Some(call.clone()),
            at: at(secs),
            kind,
        })
        .collect()
}

/// Peak and current resident memory of a process, in KiB (Linux `/proc`).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The memory an export of a 100,000-call day takes: the real binary on a
/// store holding such a day (five days ago, so only the store has it); its
/// peak resident memory before and after streaming the CSV. Run on purpose:
///
/// ```sh
/// cargo test --test exports -- --ignored --nocapture memory
/// ```
#[tokio::test]
#[ignore = "fills a 100,000-call store; run on purpose (see the README)"]
async fn memory_of_exporting_a_100000_call_day_is_bounded() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use wallboard::hub::{Hub, StoreSettings};

    let dir = temp_dir("memory");
    let today = Timestamp::now();
    let day_start = (today - SignedDuration::from_hours(5 * 24))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .start_of_day()
        .unwrap()
        .timestamp()
        + SignedDuration::from_hours(6);
    let day = day_start.to_zoned(jiff::tz::TimeZone::UTC).date();
    let filled = std::time::Instant::now();
    {
        let end = day_start + SignedDuration::from_hours(17);
        let store = StoreSettings {
            dir: dir.clone(),
            retention_days: 90,
        };
        let wall: WallClock = Arc::new(move || end);
        let hub = Hub::open(Config::default().engine, Clock::Wall, wall, store).unwrap();
        let spacing_ms = 16 * 3600 * 1000 / DAY_CALLS as i64;
        let mut batch = Vec::new();
        for n in 0..DAY_CALLS {
            let start = day_start + SignedDuration::from_millis(spacing_ms * n as i64);
            batch.extend(call_events(n, start));
            if batch.len() >= 20_000 {
                hub.ingest(std::mem::take(&mut batch)).await.unwrap();
            }
        }
        hub.ingest(batch).await.unwrap();
    }
    println!(
        "filled the store with {DAY_CALLS} calls of {day} in {:?}",
        filled.elapsed()
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_wallboard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let client = reqwest::Client::new();
    // Warm up: one small request, so the runtime's threads exist before measuring.
    let url = format!("http://{addr}/api/calls/days");
    assert!(client.get(&url).send().await.unwrap().status().is_success());
    let (peak_before, rss_before) = memory_kib(child.id());

    let exported = std::time::Instant::now();
    let url = format!("http://{addr}/api/calls?day={day}&format=csv");
    let mut response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let (peak_after, rss_after) = memory_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(lines as u64, DAY_CALLS + 1, "a header and a row per call");
    let growth_kib = peak_after.saturating_sub(peak_before);
    println!(
        "exported {DAY_CALLS} calls ({:.1} MiB of CSV) in {:?}; server peak RSS {} KiB before, {} KiB after: +{} KiB (RSS {} -> {} KiB)",
        bytes as f64 / 1_048_576.0,
        exported.elapsed(),
        peak_before,
        peak_after,
        growth_kib,
        rss_before,
        rss_after
    );
    // The file is ~20 MiB; a server that built it whole would grow by more.
    assert!(
        (growth_kib as usize) * 1024 < bytes / 2,
        "peak grew by {growth_kib} KiB for a {bytes}-byte file"
    );
}
