//! Faults and floods (issue 9) against a real server: events dated ahead of
//! the machine's clock, pruning measured from it, caps on queue names and
//! open calls, and past days served as soon as they have events.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{TestServer, sum};
use jiff::Timestamp;
use serde_json::Value;
use wallboard::clock::{Clock, WallClock};
use wallboard::config::Config;
use wallboard::server::ServeOptions;

/// A wall clock standing still at `at`, which the test may move.
fn manual_clock(at: &str) -> (WallClock, Arc<AtomicI64>) {
    let ms = Arc::new(AtomicI64::new(
        at.parse::<Timestamp>().unwrap().as_millisecond(),
    ));
    let read = ms.clone();
    let clock: WallClock =
        Arc::new(move || Timestamp::from_millisecond(read.load(Ordering::SeqCst)).unwrap());
    (clock, ms)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wallboard-floods-{name}-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server with `config`, `clock` over a wall standing at 2026-11-20T12:00Z,
/// and a store when `store` names one.
async fn server(config: &str, clock: Clock, store: Option<&str>) -> TestServer {
    let (wall, _) = manual_clock("2026-11-20T12:00:00Z");
    TestServer::start_with(ServeOptions {
        clock,
        wall,
        data_dir: store.map(temp_dir),
        ..ServeOptions::new(Config::parse(config, "test.toml").unwrap())
    })
    .await
}

/// One finished call on `queue`, waiting from `at` (a time on 2026-11-20).
fn call(id: &str, queue: &str, at: &str) -> String {
    format!(
        "{{\"id\":\"{id}-1\",\"call\":\"{id}\",\"at\":\"2026-11-20T{at}Z\",\"type\":\"queued\",\"queue\":\"{queue}\"}}\n\
         {{\"id\":\"{id}-2\",\"call\":\"{id}\",\"at\":\"2026-11-20T{at}.500Z\",\"type\":\"ended\"}}\n"
    )
}

/// One call left waiting on `queue`.
fn open_call(id: &str) -> String {
    format!(
        "{{\"id\":\"{id}-1\",\"call\":\"{id}\",\"at\":\"2026-11-20T11:00:00Z\",\"type\":\"queued\",\"queue\":\"q\"}}\n"
    )
}

/// A metric's value from `/metrics`.
async fn metric(server: &TestServer, name: &str) -> Option<u64> {
    let (_, text) = server.get("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().unwrap())
}

fn calls_on(board: &Value) -> i64 {
    sum(&board["outcomes"])
}

/// An event a year ahead is refused whole with a 400 naming `at` and its
/// index, under either clock; the board never moves to that year.
#[tokio::test]
async fn an_event_dated_ahead_of_the_machine_is_refused() {
    for clock in [Clock::Feed, Clock::Wall] {
        let server = server("", clock, None).await;
        let batch = format!(
            "{}{}",
            call("a", "q", "11:00:00"),
            r#"{"id":"z","call":"z","at":"2027-11-20T12:00:00Z","type":"queued","queue":"q"}"#
        );
        let (status, reply) = server.post_ndjson(&batch).await;
        assert_eq!(status, 400, "{clock:?}: {reply}");
        assert_eq!(reply["index"], 2, "{reply}");
        assert_eq!(reply["field"], "at", "{reply}");
        assert!(reply["error"].as_str().unwrap().contains("`at`"), "{reply}");
        assert_eq!(
            metric(&server, "wallboard_batches_rejected_total").await,
            Some(1)
        );
        // Nothing of it was applied; a batch within the skew is taken.
        assert_eq!(calls_on(&server.snapshot().await), 0);
        let ahead =
            r#"{"id":"y","call":"y","at":"2026-11-20T12:04:00Z","type":"queued","queue":"q"}"#;
        server.post_ok(&call("a", "q", "11:00:00")).await;
        server.post_ok(ahead).await;
        let board = server.snapshot().await;
        assert_eq!(board["day"], "2026-11-20", "{clock:?}");
        assert_eq!(calls_on(&board), 1);
    }
}

/// The skew is configurable: `max_future_secs = 0` refuses a second ahead.
#[tokio::test]
async fn the_skew_allowed_is_configured() {
    let server = server("[limits]\nmax_future_secs = 0", Clock::Feed, None).await;
    let (status, reply) = server
        .post_ndjson(r#"{"call":"z","at":"2026-11-20T12:00:01Z","type":"queued","queue":"q"}"#)
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["index"], 0);
    server
        .post_ok(r#"{"call":"z","at":"2026-11-20T12:00:00Z","type":"queued","queue":"q"}"#)
        .await;
}

/// Even with the skew check opened wide, an event a year ahead under the feed
/// clock does not make the pruning forget a day inside the retention as the
/// machine's clock measures it.
#[tokio::test]
async fn pruning_keeps_the_days_the_machines_clock_keeps() {
    let config = "[limits]\nmax_future_secs = 40000000\n[store]\nretention_days = 7";
    let server = server(config, Clock::Feed, Some("prune")).await;
    server.post_ok(&call("a", "q", "10:00:00")).await;
    server.post_ok(&call("b", "q", "10:05:00")).await;
    server
        .post_ok(r#"{"id":"z","call":"z","at":"2027-11-20T12:00:00Z","type":"queued","queue":"q"}"#)
        .await;
    assert_eq!(server.snapshot().await["day"], "2027-11-20");
    let (status, text) = server.get("/api/snapshot?day=2026-11-20").await;
    assert_eq!(status, 200, "{text}");
    // The writer prunes when idle (every 500 ms without a batch); give it
    // three turns. Nothing can be awaited: the point is that nothing happens.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, text) = server.get("/api/snapshot?day=2026-11-20").await;
    assert_eq!(status, 200, "the day was pruned: {text}");
    let past: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(calls_on(&past), 2, "{past}");
}

/// Queue names beyond `max_queues` count under `(other)`: no call is lost,
/// the snapshot holds at most the cap plus one, and a metric counts them.
#[tokio::test]
async fn queues_beyond_the_cap_count_under_other() {
    let server = server("[limits]\nmax_queues = 3", Clock::Feed, None).await;
    let mut batch = String::new();
    for i in 0..6 {
        batch += &call(&format!("c{i}"), &format!("q{i}"), &format!("10:0{i}:00"));
    }
    server.post_ok(&batch).await;
    // A known name still counts as itself.
    server.post_ok(&call("again", "q1", "10:30:00")).await;
    let board = server.snapshot().await;
    assert_eq!(calls_on(&board), 7);
    let queues: Vec<&str> = board["queues"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(queues, ["(other)", "q0", "q1", "q2"], "{board}");
    assert_eq!(sum(&board["queues"]["(other)"]["outcomes"]), 3);
    assert_eq!(sum(&board["queues"]["q1"]["outcomes"]), 2);
    assert_eq!(
        metric(&server, "wallboard_queues_folded_total").await,
        Some(3)
    );
}

/// A batch that would open calls beyond `max_open_calls` is refused whole
/// with 429 and `Retry-After`, before it is stored; batches that open
/// nothing new, or end what they open, still go in.
#[tokio::test]
async fn open_calls_beyond_the_cap_are_refused_whole() {
    let config = "[limits]\nmax_open_calls = 3";
    let server = server(config, Clock::Feed, Some("open")).await;
    server.post_ok(&(open_call("a") + &open_call("b"))).await;
    assert_eq!(metric(&server, "wallboard_calls_open").await, Some(2));

    let response = reqwest::Client::new()
        .post(server.url("/api/events"))
        .header("content-type", "application/x-ndjson")
        .body(format!("{}{}", open_call("c"), open_call("d")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "5");
    let reply: Value = response.json().await.unwrap();
    assert!(
        reply["error"].as_str().unwrap().contains("max_open_calls"),
        "{reply}"
    );
    let board = server.snapshot().await;
    assert_eq!(board["live"]["queued"], 2, "nothing of it applied: {board}");

    // Whole calls open nothing; one more open call reaches the cap exactly.
    server.post_ok(&call("e", "q", "11:10:00")).await;
    server.post_ok(&open_call("c")).await;
    assert_eq!(metric(&server, "wallboard_calls_open").await, Some(3));
    let (status, _) = server.post_ndjson(&open_call("d")).await;
    assert_eq!(status, 429);
    // Ending one makes room; events for open calls always go in.
    server
        .post_ok(r#"{"id":"a-2","call":"a","at":"2026-11-20T11:20:00Z","type":"ended"}"#)
        .await;
    server.post_ok(&open_call("d")).await;
    assert_eq!(metric(&server, "wallboard_calls_open").await, Some(3));
}

/// Under the feed clock with a store, `?day=` for the engine's today and for
/// yesterday answers as soon as their events are in (not once the writer
/// has recorded them when idle).
#[tokio::test]
async fn a_day_is_served_as_soon_as_it_has_events() {
    let server = server("", Clock::Feed, Some("today")).await;
    server.post_ok(&call("a", "q", "10:00:00")).await;
    let (status, text) = server.get("/api/snapshot?day=2026-11-20").await;
    assert_eq!(status, 200, "{text}");
    // The next day's first call turns the engine's day; yesterday reads back at once.
    server
        .post_ok(&call("b", "q", "11:00:00").replace("2026-11-20", "2026-11-19"))
        .await;
    let (status, text) = server.get("/api/snapshot?day=2026-11-19").await;
    assert_eq!(status, 200, "{text}");
    let past: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(calls_on(&past), 1, "{past}");
}

/// A source drops an event dated ahead of the machine's clock and counts it
/// as skipped; the rest of what it read goes in, and the board keeps its day.
#[tokio::test]
async fn a_source_skips_events_dated_ahead() {
    let dir = temp_dir("source");
    let log = dir.join("queue_log");
    // 2026-11-26T08:00:00Z, and a year later.
    let (today, ahead) = (1_795_680_000_i64, 1_795_680_000_i64 + 365 * 86_400);
    let call = |t: i64, id: &str| {
        format!(
            "{t}|{id}|q1|NONE|ENTERQUEUE||5551|1\n{}|{id}|q1|NONE|ABANDON|1|1|40\n",
            t + 40
        )
    };
    std::fs::write(
        &log,
        [
            call(today, "c1"),
            call(ahead, "c2"),
            call(today + 100, "c3"),
        ]
        .concat(),
    )
    .unwrap();
    let config = format!(
        "[[source]]\nkind = \"queue-log\"\nname = \"pbx\"\npath = {:?}\nfrom = \"start\"\n",
        log.display().to_string()
    );
    let (wall, _) = manual_clock("2026-11-26T12:00:00Z");
    let server = TestServer::start_with(ServeOptions {
        clock: Clock::Feed,
        wall,
        ..ServeOptions::new(Config::parse(&config, "test.toml").unwrap())
    })
    .await;
    let status = common::within(async {
        loop {
            let (_, text) = server.get("/api/sources").await;
            let sources: Value = serde_json::from_str(&text).unwrap();
            let source = sources["sources"][0].clone();
            if source["skipped"].as_u64() > Some(0) && source["last_event_at"].is_string() {
                return source;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        status["last_event_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-26"),
        "{status}"
    );
    let board = server.snapshot().await;
    assert_eq!(board["day"], "2026-11-26", "{board}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A commit that fails (here: another process holds the store's write lock)
/// is logged as what it is, with its error and that nothing of the batch was
/// applied; the writer carries on and the next batch goes in.
#[tokio::test]
async fn a_failed_commit_is_logged_as_such_and_the_writer_carries_on() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = temp_dir("commit");
    let log = dir.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wallboard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--clock", "feed"])
        .arg("--data-dir")
        .arg(&dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
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
    let url = format!("http://{addr}/api/events");
    let client = reqwest::Client::new();
    let post = |body: String| {
        let request = client
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .body(body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(call("a", "q", "10:00:00")).await, 200);

    let lock = rusqlite::Connection::open(dir.join("wallboard.sqlite3")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    assert_eq!(post(call("b", "q", "10:01:00")).await, 503);
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    assert_eq!(post(call("b", "q", "10:01:00")).await, 200);
    let _ = child.kill();
    let _ = child.wait();

    let logged = std::fs::read_to_string(&log).unwrap();
    let failed = logged
        .lines()
        .find(|l| l.contains("journal commit failed"))
        .unwrap_or_else(|| panic!("no commit failure logged: {logged}"));
    assert!(failed.contains("locked"), "the error is in it: {failed}");
    assert!(
        failed.contains("nothing of its 1 batches (2 events) was applied"),
        "{failed}"
    );
    assert!(!logged.contains("stopped"), "{logged}");
    let _ = std::fs::remove_dir_all(&dir);
}
