//! The durable store: nothing acknowledged is lost, a restart rebuilds the
//! same board, past days read back as they ended, a bad store is refused.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::date;
use serde_json::Value;
use wallboard::clock::{Clock, WallClock};
use wallboard::config::Config;
use wallboard::feed::{Layout, parse_batch};
use wallboard::hub::{Hub, StoreSettings};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wallboard-test-{name}-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A wall clock the test moves by hand.
fn manual_clock(start: &str) -> (WallClock, Arc<AtomicI64>) {
    let ms = Arc::new(AtomicI64::new(
        start.parse::<Timestamp>().unwrap().as_millisecond(),
    ));
    let read = ms.clone();
    let clock: WallClock =
        Arc::new(move || Timestamp::from_millisecond(read.load(Ordering::SeqCst)).unwrap());
    (clock, ms)
}

fn open(dir: &Path, clock: Clock, wall: &WallClock) -> Hub {
    let store = StoreSettings {
        dir: dir.to_owned(),
        retention_days: 90,
    };
    // A clock standing amid the journeys sees their later events ahead of it, on purpose.
    let settings = wallboard::engine::EngineSettings {
        max_future: jiff::SignedDuration::from_hours(2),
        ..Config::default().engine
    };
    Hub::open(settings, clock, wall.clone(), store).expect("store opens")
}

fn events(ndjson: &str) -> Vec<wallboard::event::Event> {
    parse_batch(ndjson.as_bytes(), Layout::Ndjson).unwrap()
}

fn journeys() -> String {
    std::fs::read_to_string("tests/data/journeys.ndjson").unwrap()
}

/// The supervisor's detail as published now.
fn detail(hub: &Hub) -> Value {
    hub.publish();
    hub.detail_feed().latest().document.clone()
}

fn board(hub: &Hub) -> Value {
    hub.publish();
    hub.latest().document.clone()
}

/// A restart rebuilds exactly the board that was there (with the same clock):
/// at 10:00, amid the calls (all replayed), and at 20:00, long after them
/// (settled: counted from their recorded rows).
#[tokio::test]
async fn restart_rebuilds_the_same_board() {
    for clock in ["2026-11-20T10:00:00Z", "2026-11-20T20:00:00Z"] {
        restart_at(clock).await;
    }
}

async fn restart_at(clock: &str) {
    let dir = temp_dir("restart");
    let (wall, _) = manual_clock(clock);
    let agents_before;
    let before = {
        let hub = open(&dir, Clock::Wall, &wall);
        let all = journeys();
        let lines: Vec<&str> = all.lines().collect();
        // Several batches, out of order, with duplicates.
        for chunk in lines.chunks(17).rev() {
            hub.ingest(events(&chunk.join("\n"))).await.unwrap();
        }
        hub.ingest(events(&lines[..20].join("\n"))).await.unwrap();
        // An agent's queues, set once and kept by a later status without them.
        hub.ingest(events(concat!(
            r#"{"id":"s1","at":"2026-11-20T08:00:00Z","type":"agent_status","agent":"amy","status":"available","queues":["results"]}"#, "\n",
            r#"{"id":"s2","at":"2026-11-20T09:30:00Z","type":"agent_status","agent":"amy","status":"busy"}"#, "\n",
            r#"{"id":"s3","at":"2026-11-20T09:31:00Z","type":"agent_status","agent":"bob","status":"away","reason":"Lunch"}"#,
        )))
        .await
        .unwrap();
        agents_before = hub.with_engine(|e| e.agents().clone());
        board(&hub)
    };
    // The first hub is gone (its writer recorded the finished calls on the way out).
    for _ in 0..2 {
        let hub = open(&dir, Clock::Wall, &wall);
        assert_eq!(board(&hub), before, "restart at {clock}");
        let agents = hub.with_engine(|e| e.agents().clone());
        assert_eq!(agents["amy"].queues, ["results"], "restart at {clock}");
        assert_eq!(agents["amy"].status, agents_before["amy"].status);
        assert_eq!(
            agents["bob"].reason.as_deref(),
            Some("Lunch"),
            "a pause reason too"
        );
        let supervisor = detail(&hub);
        drop(hub);
        let hub = open(&dir, Clock::Wall, &wall);
        assert_eq!(detail(&hub), supervisor, "the supervisor's detail too");
    }
    assert!(before["outcomes"]["answered"].as_i64().unwrap() > 0);
}

/// The day turns at midnight with no event; yesterday reads back as it ended,
/// with a late correction made after midnight, also after a restart.
#[tokio::test]
async fn past_days_read_back_after_the_day_turns() {
    let dir = temp_dir("pastday");
    let (wall, ms) = manual_clock("2026-11-20T23:50:00Z");
    let hub = open(&dir, Clock::Wall, &wall);
    hub.ingest(events(concat!(
        r#"{"id":"a1","call":"a","at":"2026-11-20T23:40:00Z","type":"queued","queue":"q"}"#,
        "\n",
        r#"{"id":"a2","call":"a","at":"2026-11-20T23:41:00Z","type":"ended"}"#,
        "\n",
        r#"{"id":"b1","call":"b","at":"2026-11-20T23:42:00Z","type":"queued","queue":"q"}"#,
        "\n",
        r#"{"id":"b2","call":"b","at":"2026-11-20T23:42:30Z","type":"answered","agent":"amy"}"#,
        "\n",
        r#"{"id":"b3","call":"b","at":"2026-11-20T23:45:00Z","type":"ended"}"#,
    )))
    .await
    .unwrap();
    let evening = board(&hub);
    assert_eq!(evening["day"], "2026-11-20");
    assert_eq!(evening["outcomes"]["queue_abandoned"], 1);

    // Midnight passes with no event: the board turns to the new day.
    ms.store(
        "2026-11-21T00:10:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond(),
        Ordering::SeqCst,
    );
    let night = board(&hub);
    assert_eq!(night["day"], "2026-11-21");
    assert_eq!(night["outcomes"], serde_json::json!({}));

    // A late event (within the late window) corrects yesterday's call `a`.
    let r = hub
        .ingest(events(
            r#"{"id":"a3","call":"a","at":"2026-11-20T23:40:30Z","type":"answered","agent":"bob"}"#,
        ))
        .await
        .unwrap();
    assert_eq!(r.accepted, 1);
    let expect = |past: &Value| {
        assert_eq!(past["day"], "2026-11-20");
        assert_eq!(past["outcomes"], serde_json::json!({"answered": 2}));
        assert_eq!(past["definitions"]["reachable"]["boxes"]["answered"], 2);
        assert!(past.get("live").is_none());
    };
    // The writer records derived rows when idle; wait for it, bounded.
    let mut past = Value::Null;
    for _ in 0..100 {
        past = hub
            .past_day(date(2026, 11, 20))
            .await
            .unwrap()
            .unwrap_or_default();
        if past["outcomes"]["answered"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    expect(&past);
    assert!(hub.past_day(date(2026, 11, 19)).await.unwrap().is_none());
    drop(hub);

    let hub = open(&dir, Clock::Wall, &wall);
    expect(&hub.past_day(date(2026, 11, 20)).await.unwrap().unwrap());
    assert_eq!(board(&hub)["day"], "2026-11-21");
}

/// A file that is not our store is refused and left as it was.
#[test]
fn a_corrupt_store_is_refused_not_overwritten() {
    let dir = temp_dir("corrupt");
    let file = dir.join("wallboard.sqlite3");
    let garbage = b"this is not a database, it is somebody's notes\n".repeat(200);
    std::fs::write(&file, &garbage).unwrap();
    let (wall, _) = manual_clock("2026-11-20T10:00:00Z");
    let store = StoreSettings {
        dir: dir.clone(),
        retention_days: 90,
    };
    let err = Hub::open(Config::default().engine, Clock::Wall, wall, store)
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(message.contains("wallboard.sqlite3"), "{message}");
    assert_eq!(std::fs::read(&file).unwrap(), garbage);
}

/// The real binary on a data dir, with its address read from stdout.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        Server::start_logging_to(dir, Stdio::null())
    }

    /// Started, with its log (stderr) going to `log`.
    fn start_logging_to(dir: &Path, log: Stdio) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wallboard"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--clock",
                "feed",
                "--data-dir",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(|addr| format!("http://{addr}"))
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One finished call per batch, so the board counts acknowledged batches.
fn call_batch(n: u64) -> String {
    format!(
        "{{\"id\":\"k{n}a\",\"call\":\"k{n}\",\"at\":\"2026-11-20T09:00:00Z\",\"type\":\"queued\",\"queue\":\"q\"}}\n\
         {{\"id\":\"k{n}b\",\"call\":\"k{n}\",\"at\":\"2026-11-20T09:00:0{}Z\",\"type\":\"ended\"}}\n",
        n % 10
    )
}

fn finished_calls(snapshot: &Value) -> i64 {
    snapshot["outcomes"]
        .as_object()
        .map_or(0, |o| o.values().filter_map(Value::as_i64).sum())
}

/// SIGKILL while posting: after a restart the store holds every acknowledged
/// batch, plus at most the batches that were in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_event() {
    let dir = temp_dir("sigkill");
    let server = Server::start(&dir);
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    const POSTERS: u64 = 4;
    let posters: Vec<_> = (0..POSTERS)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{}/api/events", server.base));
            let (next, acked) = (next.clone(), acked.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(call_batch(n))
                        .send()
                        .await;
                    if !matches!(&sent, Ok(r) if r.status().is_success()) {
                        return;
                    }
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Kill at a varying point, after some acknowledged batches.
    let target = 50 + u64::from(Timestamp::now().subsec_nanosecond().unsigned_abs()) % 200;
    while acked.load(Ordering::SeqCst) < target {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for poster in posters {
        poster.await.unwrap();
    }
    let acked = acked.load(Ordering::SeqCst);
    drop(server);

    let server = Server::start(&dir);
    let snapshot: Value = client
        .get(format!("{}/api/snapshot", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored = finished_calls(&snapshot) as u64;
    // Each poster has at most one batch in flight when the kill lands.
    assert!(
        (acked..=acked + POSTERS).contains(&stored),
        "stored {stored} calls, {acked} acknowledged"
    );
}

/// A crash after events are committed but before their finished calls are
/// recorded: the restart records them, so the past day is complete.
#[tokio::test]
async fn a_restart_records_finished_calls_a_crash_left_out() {
    let dir = temp_dir("heal");
    {
        let mut journal = wallboard::journal::Journal::open(&dir).unwrap();
        let batch = events(&journeys());
        let received = "2026-11-20T12:00:00Z".parse().unwrap();
        journal
            .append(
                &[wallboard::pipeline::Append {
                    events: &batch,
                    received,
                }],
                &Default::default(),
            )
            .unwrap();
    }
    let (wall, _) = manual_clock("2026-11-21T12:00:00Z");
    let hub = open(&dir, Clock::Wall, &wall);
    let past = hub
        .past_day(date(2026, 11, 20))
        .await
        .unwrap()
        .expect("the day is recorded");
    assert_eq!(past["outcomes"]["answered"], 7);
    assert_eq!(past["definitions"]["reachable"]["boxes"]["missed"], 12);
}

/// Overwrites the middle of `index`'s root page with junk, as a bad sector would.
fn damage_index_page(db: &Path, index: &str) {
    use std::io::{Seek, SeekFrom, Write};
    let (page_size, root): (i64, i64) = {
        let conn = rusqlite::Connection::open(db).unwrap();
        // Everything into the main file first, so the damage is what a restart reads.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = ?1",
                [index],
                |r| r.get(0),
            )
            .unwrap();
        (size, root)
    };
    let mut file = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    file.seek(SeekFrom::Start(((root - 1) * page_size + 8) as u64))
        .unwrap();
    file.write_all(&vec![0xA5; page_size as usize / 2]).unwrap();
}

fn wallboard_store(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wallboard"))
        .arg("store")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

/// A store with a damaged index is refused on start with the way out named;
/// `store check` says so, and `store rebuild` keeps every readable event, so
/// the board comes back whole. Failed before the check: the damaged store
/// was served and took repeated ids again.
#[tokio::test]
async fn a_damaged_store_is_refused_then_rebuilt() {
    let dir = temp_dir("damaged");
    let (wall, _) = manual_clock("2026-11-20T20:00:00Z");
    let before = {
        let hub = open(&dir, Clock::Wall, &wall);
        hub.ingest(events(&journeys())).await.unwrap();
        board(&hub)
    };
    let backup = dir.join("backup.sqlite3");
    let backed_up = wallboard_store(&["backup", backup.to_str().unwrap()], &dir);
    assert!(backed_up.status.success(), "{backed_up:?}");
    assert!(wallboard_store(&["check"], &dir).status.success());

    damage_index_page(&dir.join(wallboard::journal::DB_FILE), "events_call");
    let store = StoreSettings {
        dir: dir.clone(),
        retention_days: 90,
    };
    let refused = Hub::open(Config::default().engine, Clock::Wall, wall.clone(), store)
        .err()
        .expect("a damaged store is refused")
        .to_string();
    assert!(refused.contains("is damaged"), "{refused}");
    assert!(refused.contains("wallboard store rebuild"), "{refused}");
    let check = wallboard_store(&["check"], &dir);
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("damaged"));

    let rebuilt = wallboard_store(&["rebuild"], &dir);
    let said = String::from_utf8_lossy(&rebuilt.stdout);
    assert!(rebuilt.status.success(), "{rebuilt:?}");
    let lines = journeys().lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        said.contains(&format!("{lines} events kept, 0 unreadable")),
        "{said}"
    );
    let hub = open(&dir, Clock::Wall, &wall);
    assert_eq!(board(&hub), before, "every event was readable");
    let again = hub.ingest(events(&journeys())).await.unwrap();
    assert_eq!(again.accepted, 0, "repeated ids are refused again");
}

/// Events lost under the store's feet (a damaged WAL dropped the tail) are
/// said loudly at the next start: the count acknowledged is kept outside the
/// WAL. Before, such a restart served the shorter store without a word.
#[test]
fn a_restart_that_finds_acknowledged_events_missing_logs_an_error() {
    let dir = temp_dir("lost");
    {
        let mut journal = wallboard::journal::Journal::open(&dir).unwrap();
        let batch = events(&journeys());
        let received = "2026-11-20T12:00:00Z".parse().unwrap();
        let appended = [wallboard::pipeline::Append {
            events: &batch,
            received,
        }];
        journal.append(&appended, &Default::default()).unwrap();
    }
    let db = rusqlite::Connection::open(dir.join(wallboard::journal::DB_FILE)).unwrap();
    let lost = db
        .execute(
            "DELETE FROM events WHERE seq > (SELECT max(seq) - 5 FROM events)",
            [],
        )
        .unwrap();
    drop(db);
    assert_eq!(lost, 5);
    // Started means listening: the check ran before.
    let mut server = Server::start_logging_to(&dir, Stdio::piped());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut log = String::new();
    let stderr = server.child.stderr.take().unwrap();
    std::io::Read::read_to_string(&mut { stderr }, &mut log).unwrap();
    assert!(log.contains("ERROR"), "{log}");
    assert!(log.contains("5 acknowledged events are lost"), "{log}");
}
