//! The Asterisk `queue_log` source for real: the shared sample classified
//! offline, and a live server following a real file through rotation,
//! truncation and a SIGKILL, ending with the boxes `classify` gives for the
//! whole file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{TestServer, within};
use jiff::Timestamp;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use wallboard::config::Config;
use wallboard::hub::Clock;
use wallboard::server::ServeOptions;
use wallboard::source::Format;

const SAMPLE: &str = "../shared/data/asterisk-queue_log-sample.txt";
const SAMPLE_CSV: &str = "../shared/data/asterisk-queue_log-sample.db-export.csv";
/// 2026-11-26T08:00:00Z: every synthetic row falls on that one day.
const DAY_START: i64 = 1_795_680_000;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wallboard")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wb-queue-log-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open queue_log");
    file.write_all(text.as_bytes()).expect("append");
}

/// `wallboard classify --format queue-log FILE [--calls]`: (stdout, stderr).
fn classify(file: &Path, calls: bool) -> (String, String) {
    let mut command = std::process::Command::new(bin());
    command
        .args(["classify", "--format", "queue-log"])
        .arg(file);
    if calls {
        command.arg("--calls");
    }
    let output = command.output().expect("run classify");
    assert!(output.status.success(), "{output:?}");
    (
        String::from_utf8(output.stdout).expect("utf-8"),
        String::from_utf8(output.stderr).expect("utf-8"),
    )
}

// The shared sample: 108 calls enter the queue; 12 abandon, 1 times out, 91
// are answered, and 4 are still under way when the extract ends.
#[test]
fn the_shared_sample_classifies_offline() {
    let sample = Path::new(SAMPLE);
    if !sample.exists() {
        eprintln!("note: {SAMPLE} is absent; the sample test is skipped");
        return;
    }
    let (out, err) = classify(sample, false);
    let totals: Value = serde_json::from_str(&out).expect("JSON totals");
    assert_eq!(totals["calls"], 104, "{totals}");
    assert_eq!(totals["unfinished"], 4);
    assert_eq!(totals["outcomes"]["answered"], 91);
    assert_eq!(totals["outcomes"]["queue_abandoned"], 12);
    assert_eq!(totals["outcomes"]["timed_out"], 1);
    assert_eq!(totals["definitions"]["acd"]["boxes"]["timed_out"], 1);
    // The outbound rows (OUTDIAL, OUTANSWER...) carry a call we do not use.
    assert!(err.contains("257 records skipped"), "{err}");
    let (calls, _) = classify(sample, true);
    let lines: Vec<Value> = calls
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line per call"))
        .collect();
    assert_eq!(lines.len(), 104, "one line per finished queued call");
    assert!(
        lines
            .iter()
            .any(|l| l["call"] == "1543860451.3324" && l["outcome"] == "timed_out")
    );
}

// The database export gives the very events (ids too) of the pipe rows.
#[test]
fn the_database_export_gives_the_same_events() {
    let (pipe, csv) = (Path::new(SAMPLE), Path::new(SAMPLE_CSV));
    if !pipe.exists() || !csv.exists() {
        eprintln!("note: the shared queue_log sample is absent; the export test is skipped");
        return;
    }
    let read = |p| wallboard::source::offline::read_file(Format::QueueLog, p).expect("read");
    let (from_pipe, from_csv) = (read(pipe), read(csv));
    assert_eq!(from_pipe.len(), 1471);
    assert_eq!(from_pipe, from_csv);
}

/// A day's rows for calls `calls`, one journey of each kind in turn, with
/// agents logging in first and a last row a minute after the last call.
fn rows(calls: std::ops::Range<i64>) -> String {
    let mut out = String::new();
    let t0 = DAY_START + calls.start * 200;
    out += &format!("{t0}|NONE|q1|Agent/1|ADDMEMBER\n{t0}|NONE|q2|Agent/2|ADDMEMBER\n");
    for i in calls.clone() {
        let t = DAY_START + i * 200 + 1;
        let c = format!("{t}.{i}");
        let line = |dt: i64, queue: &str, agent: &str, rest: &str| {
            format!("{}|{c}|{queue}|{agent}|{rest}\n", t + dt)
        };
        out += &line(0, "q1", "NONE", &format!("ENTERQUEUE||555{i:04}|1"));
        out += &match i % 6 {
            0 => [
                line(15, "q1", "Agent/2", "RINGNOANSWER|15000"),
                line(22, "q1", "Agent/1", "CONNECT|22|x.1|5"),
                line(90, "q1", "Agent/1", "COMPLETECALLER|22|68|1"),
            ]
            .concat(),
            1 => line(40, "q1", "NONE", "ABANDON|1|1|40"),
            2 => [
                line(60, "q1", "NONE", "EXITWITHTIMEOUT|1|1|60"),
                line(61, "q2", "NONE", "ENTERQUEUE||555|1"),
                line(70, "q2", "Agent/2", "CONNECT|9|x.2|3"),
                line(95, "q2", "Agent/2", "COMPLETEAGENT|9|25|1"),
            ]
            .concat(),
            3 => line(30, "q1", "NONE", "EXITWITHKEY|5|1"),
            4 => [
                line(10, "q1", "Agent/1", "CONNECT|10|x.3|2"),
                line(50, "q1", "Agent/1", "BLINDTRANSFER|1142|ctx|10|40"),
            ]
            .concat(),
            _ => line(100, "q1", "NONE", "EXITWITHTIMEOUT|1|1|100"),
        };
    }
    let end = DAY_START + calls.end * 200 + 60;
    out += &format!("{end}|NONE|NONE|Agent/1|PAUSE|Lunch\n");
    out
}

/// The time of a chunk's last row, as the source reports it once stored.
fn last_time(chunk: &str) -> Timestamp {
    let epoch = chunk.lines().last().and_then(|l| l.split('|').next());
    Timestamp::from_second(epoch.expect("a row").parse().expect("epoch")).expect("time")
}

/// The server's `GET /api/sources` entry of the only source.
/// Polls the source's state until it is `state`; fails after [`common::WAIT`].
async fn source_when(client: &reqwest::Client, base: &str, state: &str) -> Value {
    within(async {
        loop {
            let s = source(client, base).await;
            if s["state"] == state {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

async fn source(client: &reqwest::Client, base: &str) -> Value {
    let text = client
        .get(format!("{base}/api/sources"))
        .send()
        .await
        .expect("GET /api/sources")
        .text()
        .await
        .expect("body");
    let sources: Value = serde_json::from_str(&text).expect("JSON");
    sources["sources"][0].clone()
}

/// Waits until the source has stored the row at `until`.
async fn stored_until(client: &reqwest::Client, base: &str, until: Timestamp) -> Value {
    within(async {
        loop {
            let s = source(client, base).await;
            let at = s["last_event_at"].as_str().and_then(|t| t.parse().ok());
            if at >= Some(until) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Waits until the board has counted `calls` calls; returns it.
async fn board_with(client: &reqwest::Client, base: &str, calls: i64) -> Value {
    within(async {
        loop {
            let text = client
                .get(format!("{base}/api/snapshot"))
                .send()
                .await
                .expect("GET /api/snapshot")
                .text()
                .await
                .expect("body");
            let board: Value = serde_json::from_str(&text).expect("JSON");
            if common::sum(&board["outcomes"]) >= calls {
                return board;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// The board's outcomes and boxes equal what `classify` makes of `file`.
fn assert_board_is_classify(board: &Value, file: &Path) {
    let (out, _) = classify(file, false);
    let totals: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(board["outcomes"], totals["outcomes"], "outcomes");
    let definitions = totals["definitions"].as_object().expect("definitions");
    for (name, figures) in definitions {
        assert_eq!(
            board["definitions"][name]["boxes"], figures["boxes"],
            "boxes of {name}"
        );
    }
}

fn config(path: &Path) -> String {
    format!(
        "[[source]]\nkind = \"queue-log\"\nname = \"pbx\"\npath = {:?}\nfrom = \"start\"\ncontinue_secs = 2\n",
        path.display().to_string()
    )
}

/// The built server, run as a process so that it can be killed outright.
struct Process {
    child: tokio::process::Child,
    base: String,
}

impl Process {
    async fn start(data: &Path, config: &Path) -> Process {
        let mut child = tokio::process::Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--clock", "feed"])
            .arg("--data-dir")
            .arg(data)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let base = within(async {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(line) = lines.next_line().await.expect("stdout line") {
                if let Some(url) = line.strip_prefix("wallboard: the board is at ") {
                    let url = url.split_whitespace().next().unwrap_or(url);
                    return url.trim_end_matches('/').to_owned();
                }
            }
            panic!("the server stopped before listening");
        })
        .await;
        Process { child, base }
    }

    /// SIGKILL: no shutdown, no last checkpoint.
    async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

// Rows appended in chunks, the file rotated (renamed while the writer still
// appends to it, then a new one), the server killed, rows written and the
// file rotated again while it is down, restarted: the board ends exactly as
// `classify` counts the whole content, nothing twice, nothing missing.
#[tokio::test]
async fn follows_rotation_and_survives_sigkill() {
    let dir = temp_dir("kill");
    let (log, data, config_file) = (dir.join("queue_log"), dir.join("data"), dir.join("wb.toml"));
    std::fs::write(&config_file, config(&log)).expect("config");
    let client = reqwest::Client::new();
    let chunks = [
        rows(0..7),
        rows(7..9),
        rows(9..13),
        rows(13..20),
        rows(20..24),
        rows(24..31),
    ];
    let mut whole = String::new();

    append(&log, &chunks[0]);
    let server = Process::start(&data, &config_file).await;
    stored_until(&client, &server.base, last_time(&chunks[0])).await;

    // Rotation: renamed, the writer finishes its rows in the old file, then
    // moves to a new one.
    append(&log, &chunks[1]);
    std::fs::rename(&log, dir.join("queue_log.1")).expect("rotate");
    append(&dir.join("queue_log.1"), &chunks[2]);
    append(&log, &chunks[3]);
    stored_until(&client, &server.base, last_time(&chunks[3])).await;
    server.kill().await;

    // While it is down: more rows, and another rotation.
    append(&log, &chunks[4]);
    std::fs::rename(&log, dir.join("queue_log.2")).expect("rotate");
    append(&log, &chunks[5]);
    for chunk in &chunks {
        whole += chunk;
    }
    let everything = dir.join("everything");
    std::fs::write(&everything, &whole).expect("whole");

    let server = Process::start(&data, &config_file).await;
    let status = stored_until(&client, &server.base, last_time(&chunks[5])).await;
    assert_eq!(status["state"], "connected");
    assert_eq!(status["skipped"], 0, "{status}");
    let (out, _) = classify(&everything, false);
    let calls = serde_json::from_str::<Value>(&out).expect("JSON")["calls"]
        .as_i64()
        .expect("calls");
    assert_eq!(calls, 31, "every synthetic call finishes");
    let board = board_with(&client, &server.base, calls).await;
    assert_board_is_classify(&board, &everything);
    server.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

// Truncated in place (copytruncate): the rest is read from the new start.
// Malformed rows are skipped and counted, never fatal.
#[tokio::test]
async fn follows_truncation_and_counts_malformed_rows() {
    let dir = temp_dir("truncate");
    let log = dir.join("queue_log");
    let first = rows(0..6);
    let bad = format!(
        "garbage\n1795690000|c|q\nnot-a-time|c|q|NONE|ABANDON\n1795690000|c9|q1|Agent/1|OUTDIAL|5551\n{}\n",
        "x".repeat(100_000)
    );
    let second = rows(6..12);
    append(&log, &first);
    let options = ServeOptions {
        config: Config::parse(&config(&log), "test").expect("config"),
        clock: Clock::Feed,
        ..ServeOptions::new(Config::default())
    };
    let server = TestServer::start_with(options).await;
    let client = reqwest::Client::new();
    stored_until(&client, &server.base, last_time(&first)).await;
    std::fs::write(&log, format!("{bad}{second}")).expect("truncate and write");
    let status = stored_until(&client, &server.base, last_time(&second)).await;
    assert_eq!(status["skipped"], 5, "{status}");
    let everything = dir.join("everything");
    std::fs::write(&everything, format!("{first}{second}")).expect("whole");
    let board = board_with(&client, &server.base, 12).await;
    assert_board_is_classify(&board, &everything);
    let _ = std::fs::remove_dir_all(&dir);
}

// A missing file is a failed source with the reason, retried until it appears.
#[tokio::test]
async fn a_missing_file_fails_then_recovers() {
    let dir = temp_dir("missing");
    let log = dir.join("queue_log");
    let options = ServeOptions {
        config: Config::parse(&config(&log), "test").expect("config"),
        clock: Clock::Feed,
        ..ServeOptions::new(Config::default())
    };
    let server = TestServer::start_with(options).await;
    let client = reqwest::Client::new();
    let failed = source_when(&client, &server.base, "failed").await;
    let error = failed["last_error"].as_str().expect("last_error");
    assert!(error.contains("queue_log"), "{error}");
    let chunk = rows(0..2);
    append(&log, &chunk);
    let status = stored_until(&client, &server.base, last_time(&chunk)).await;
    assert_eq!(status["state"], "connected");
    let _ = std::fs::remove_dir_all(&dir);
}

// `from = "end"` (the default): what the file held at the first start is
// history the board does not count; only rows written after it are read.
#[tokio::test]
async fn from_end_reads_only_what_is_written_after_the_first_start() {
    let dir = temp_dir("from-end");
    let log = dir.join("queue_log");
    let (old, new) = (rows(0..6), rows(6..12));
    append(&log, &old);
    let text = config(&log).replace("from = \"start\"\n", "");
    let options = ServeOptions {
        config: Config::parse(&text, "test").expect("config"),
        clock: Clock::Feed,
        ..ServeOptions::new(Config::default())
    };
    let server = TestServer::start_with(options).await;
    let client = reqwest::Client::new();
    within(async {
        while source(&client, &server.base).await["state"] != "connected" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    append(&log, &new);
    stored_until(&client, &server.base, last_time(&new)).await;
    let only_new = dir.join("new");
    std::fs::write(&only_new, &new).expect("new rows");
    let board = board_with(&client, &server.base, 6).await;
    assert_eq!(common::sum(&board["outcomes"]), 6, "{board}");
    assert_board_is_classify(&board, &only_new);
    let _ = std::fs::remove_dir_all(&dir);
}

// By the machine's clock, a caller who left with a key is ended once
// `continue_secs` have passed with no further row of the call.
#[tokio::test]
async fn by_the_machine_clock_a_held_exit_ends_after_continue_secs() {
    let dir = temp_dir("wall");
    let log = dir.join("queue_log");
    let now = Timestamp::now().as_second();
    append(&log, &format!("{}|w1|q1|NONE|ENTERQUEUE||555|1\n", now - 5));
    let options = ServeOptions {
        config: Config::parse(&config(&log).replace("= 2", "= 1"), "test").expect("config"),
        clock: Clock::Wall,
        ..ServeOptions::new(Config::default())
    };
    let server = TestServer::start_with(options).await;
    let client = reqwest::Client::new();
    append(&log, &format!("{now}|w1|q1|NONE|EXITWITHKEY|3|1\n"));
    let board = board_with(&client, &server.base, 1).await;
    assert_eq!(common::sum(&board["outcomes"]), 1);
    assert_eq!(board["outcomes"]["queue_abandoned"], 1, "{board}");
    let _ = std::fs::remove_dir_all(&dir);
}

// A checkpoint that cannot be written shows as `failed` ("checkpoint: …")
// once, reading waits meanwhile, and the source is `connected` again once
// it is written.
#[tokio::test]
async fn a_checkpoint_that_cannot_be_written_shows_as_failed() {
    let dir = temp_dir("checkpoint");
    let (log, data) = (dir.join("queue_log"), dir.join("data"));
    // Where the checkpoint is written first is taken by a directory: the
    // write fails (even for root, unlike a permission).
    let blocker = data.join("sources").join("pbx.json.partial");
    std::fs::create_dir_all(&blocker).expect("blocker");
    let chunk = rows(0..2);
    append(&log, &chunk);
    let options = ServeOptions {
        config: Config::parse(&config(&log), "test").expect("config"),
        data_dir: Some(data.clone()),
        clock: Clock::Feed,
        ..ServeOptions::new(Config::default())
    };
    let server = TestServer::start_with(options).await;
    let client = reqwest::Client::new();
    let failed = source_when(&client, &server.base, "failed").await;
    let error = failed["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("checkpoint: "), "{failed}");
    std::fs::remove_dir(&blocker).expect("unblock");
    let status = stored_until(&client, &server.base, last_time(&chunk)).await;
    let status = within(async {
        let mut status = status;
        while status["state"] != "connected" {
            tokio::time::sleep(Duration::from_millis(20)).await;
            status = source(&client, &server.base).await;
        }
        status
    })
    .await;
    assert_eq!(status["skipped"], 0, "{status}");
    assert!(data.join("sources").join("pbx.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// The store refuses (another process holds SQLite's write lock): `failed`
// with "store: …", then `connected` with every row stored once it works.
#[tokio::test]
async fn a_refusing_store_shows_as_failed_then_recovers() {
    let dir = temp_dir("store");
    let (log, data) = (dir.join("queue_log"), dir.join("data"));
    let options = ServeOptions {
        config: Config::parse(&config(&log), "test").expect("config"),
        data_dir: Some(data.clone()),
        clock: Clock::Feed,
        ..ServeOptions::new(Config::default())
    };
    let server = TestServer::start_with(options).await;
    let client = reqwest::Client::new();
    // Up (the file is missing: failed), then the lock, then the rows.
    within(async {
        while source(&client, &server.base).await["state"] != "failed" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let db = rusqlite::Connection::open(data.join(wallboard::journal::DB_FILE)).expect("store");
    db.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let chunk = rows(0..6);
    append(&log, &chunk);
    let failed = within(async {
        loop {
            let s = source(&client, &server.base).await;
            if s["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("store: "))
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    db.execute_batch("COMMIT").expect("unlock");
    let status = stored_until(&client, &server.base, last_time(&chunk)).await;
    assert_eq!(status["state"], "connected", "{status}");
    let everything = dir.join("everything");
    std::fs::write(&everything, &chunk).expect("whole");
    let board = board_with(&client, &server.base, 6).await;
    assert_board_is_classify(&board, &everything);
    let _ = std::fs::remove_dir_all(&dir);
}
