//! The AMI source against a test Asterisk manager over real TCP (`pbx`):
//! reconnects and resyncs, refuses a bad secret, skips what it cannot read,
//! speaks TLS (the manager behind a TLS front made here); and offline, `classify --format ami` of the shared capture.

mod common;
mod pbx;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, within};
use pbx::{Pbx, Plan, Session};
use serde_json::Value;
use wallboard::classify::{self, ClassifyOptions};
use wallboard::config::Config;
use wallboard::event::EventKind;
use wallboard::hub::Clock;
use wallboard::server::ServeOptions;
use wallboard::source::{Format, offline};

/// The shared capture of one queued call (a console log with manager debug on).
const CAPTURE: &str = "../shared/data/asterisk-ami-trace-one-queued-call.txt";
/// The day the written traces happen: 2026-11-20T09:00:00Z.
const DAY_START: f64 = 1_795_165_200.0;

/// A trace being written: event blocks at times, rendered in time order.
#[derive(Default)]
struct Trace {
    blocks: Vec<(f64, Vec<(String, String)>)>,
}

impl Trace {
    /// An event at `DAY_START + t` seconds.
    fn event(&mut self, t: f64, event: &str, fields: &[(&str, &str)]) {
        let mut headers = vec![("Event".to_owned(), event.to_owned())];
        headers.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.blocks.push((DAY_START + t, headers));
    }

    /// A caller's channel event.
    fn caller(&mut self, t: f64, event: &str, uid: &str, fields: &[(&str, &str)]) {
        let channel = format!("PJSIP/trunk-{uid}");
        let mut all = vec![
            ("Channel", channel.as_str()),
            ("CallerIDNum", "01632960123"),
            ("CallerIDName", "Caller"),
            ("Uniqueid", uid),
            ("Linkedid", uid),
        ];
        all.extend_from_slice(fields);
        self.event(t, event, &all);
    }

    fn member(&mut self, t: f64, event: &str, agent: &str, fields: &[(&str, &str)]) {
        let mut all = vec![
            ("Queue", "Q1"),
            ("MemberName", agent),
            ("Interface", agent),
            ("StateInterface", agent),
        ];
        all.extend_from_slice(fields);
        self.event(t, event, &all);
    }

    /// The shared capture's event blocks, 50 ms apart from `t`.
    fn capture(&mut self, t: f64, text: &str) {
        for (i, block) in text.split("\n\n").enumerate() {
            let headers: Vec<(String, String)> = block
                .lines()
                .filter_map(|l| l.split_once(':'))
                .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic()))
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .collect();
            if headers.iter().any(|(k, _)| k == "Event") {
                self.blocks.push((DAY_START + t + i as f64 * 0.05, headers));
            }
        }
    }

    /// The blocks in time order as Asterisk sends them, each with a
    /// `Timestamp` (and a `SequenceNumber` unless it has one).
    fn render(mut self) -> Vec<String> {
        self.blocks.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut seq = 9000;
        self.blocks
            .into_iter()
            .map(|(at, headers)| {
                let mut text = String::new();
                for (i, (k, v)) in headers.iter().enumerate() {
                    text += &format!("{k}: {v}\r\n");
                    if i == 0 {
                        text += &format!("Timestamp: {at:.6}\r\n");
                        if !headers.iter().any(|(k, _)| k == "SequenceNumber") {
                            seq += 1;
                            text += &format!("SequenceNumber: {seq}\r\n");
                        }
                    }
                }
                text + "\r\n"
            })
            .collect()
    }
}

/// Whether the shared data is here; says so when it is not.
fn shared_capture() -> Option<String> {
    match std::fs::read_to_string(CAPTURE) {
        Ok(text) => Some(text),
        Err(_) => {
            println!("note: {CAPTURE} is absent; the shared capture is left out");
            None
        }
    }
}

/// Agents, then the shared capture's answered call (when present), then
/// calls written here: abandoned, paused agent, timed out, answered.
fn day_trace() -> Trace {
    let mut t = Trace::default();
    t.member(
        0.0,
        "QueueMemberAdded",
        "SIP/777",
        &[("Status", "1"), ("Paused", "0")],
    );
    t.member(
        0.5,
        "QueueMemberAdded",
        "PJSIP/bob",
        &[("Status", "1"), ("Paused", "0")],
    );
    if let Some(capture) = shared_capture() {
        t.capture(10.0, &capture);
    }
    // Abandoned: rings Bob, who does not answer; the caller hangs up.
    let c = "1795165240.10";
    t.caller(40.0, "Newchannel", c, &[("Exten", "100")]);
    t.caller(
        40.2,
        "QueueCallerJoin",
        c,
        &[("Queue", "Q1"), ("Position", "1"), ("Count", "1")],
    );
    t.caller(
        41.0,
        "AgentCalled",
        c,
        &[
            ("Queue", "Q1"),
            ("MemberName", "PJSIP/bob"),
            ("Interface", "PJSIP/bob"),
        ],
    );
    t.member(
        41.0,
        "QueueMemberStatus",
        "PJSIP/bob",
        &[("Status", "6"), ("Paused", "0")],
    );
    t.caller(
        56.0,
        "AgentRingNoAnswer",
        c,
        &[
            ("Queue", "Q1"),
            ("MemberName", "PJSIP/bob"),
            ("RingTime", "15"),
        ],
    );
    t.member(
        56.0,
        "QueueMemberStatus",
        "PJSIP/bob",
        &[("Status", "1"), ("Paused", "0")],
    );
    t.caller(
        70.2,
        "QueueCallerAbandon",
        c,
        &[
            ("Queue", "Q1"),
            ("Position", "1"),
            ("OriginalPosition", "1"),
            ("HoldTime", "30"),
        ],
    );
    t.caller(
        70.2,
        "QueueCallerLeave",
        c,
        &[("Queue", "Q1"), ("Position", "1"), ("Count", "0")],
    );
    t.caller(
        70.3,
        "Hangup",
        c,
        &[("Cause", "16"), ("Cause-txt", "Normal Clearing")],
    );
    // Bob goes to lunch.
    t.member(
        80.0,
        "QueueMemberPause",
        "PJSIP/bob",
        &[("Status", "1"), ("Paused", "1"), ("PausedReason", "lunch")],
    );
    // Timed out: the queue's timeout puts the caller out to voicemail.
    let c = "1795165300.20";
    t.caller(100.0, "Newchannel", c, &[("Exten", "100")]);
    t.caller(
        100.5,
        "QueueCallerJoin",
        c,
        &[("Queue", "Q1"), ("Position", "1"), ("Count", "1")],
    );
    t.caller(101.0, "MusicOnHoldStart", c, &[("Class", "default")]);
    t.caller(
        160.5,
        "QueueCallerLeave",
        c,
        &[("Queue", "Q1"), ("Position", "1"), ("Count", "0")],
    );
    t.caller(
        160.501,
        "VarSet",
        c,
        &[("Variable", "QUEUESTATUS"), ("Value", "TIMEOUT")],
    );
    t.caller(
        160.6,
        "Newexten",
        c,
        &[("Application", "VoiceMail"), ("AppData", "100@default")],
    );
    t.caller(
        190.0,
        "Hangup",
        c,
        &[("Cause", "16"), ("Cause-txt", "Normal Clearing")],
    );
    // Answered by SIP/777 after 5 s, who ends the call a minute later.
    let c = "1795165400.30";
    t.caller(200.0, "Newchannel", c, &[("Exten", "100")]);
    t.caller(
        200.5,
        "QueueCallerJoin",
        c,
        &[("Queue", "Q1"), ("Position", "1"), ("Count", "1")],
    );
    t.caller(
        201.0,
        "AgentCalled",
        c,
        &[
            ("Queue", "Q1"),
            ("MemberName", "SIP/777"),
            ("Interface", "SIP/777"),
        ],
    );
    t.caller(201.1, "MusicOnHoldStart", c, &[("Class", "default")]);
    t.member(
        201.2,
        "QueueMemberStatus",
        "SIP/777",
        &[("Status", "6"), ("Paused", "0")],
    );
    t.caller(
        205.5,
        "QueueCallerLeave",
        c,
        &[("Queue", "Q1"), ("Position", "1"), ("Count", "0")],
    );
    t.caller(
        205.5,
        "AgentConnect",
        c,
        &[
            ("Queue", "Q1"),
            ("MemberName", "SIP/777"),
            ("Interface", "SIP/777"),
            ("HoldTime", "5"),
            ("RingTime", "4"),
        ],
    );
    t.member(
        205.6,
        "QueueMemberStatus",
        "SIP/777",
        &[("Status", "2"), ("Paused", "0")],
    );
    t.caller(
        265.5,
        "AgentComplete",
        c,
        &[
            ("Queue", "Q1"),
            ("MemberName", "SIP/777"),
            ("HoldTime", "5"),
            ("TalkTime", "60"),
            ("Reason", "agent"),
        ],
    );
    t.caller(
        265.6,
        "Hangup",
        c,
        &[("Cause", "16"), ("Cause-txt", "Normal Clearing")],
    );
    t.member(
        265.7,
        "QueueMemberStatus",
        "SIP/777",
        &[("Status", "1"), ("Paused", "0")],
    );
    t
}

/// A scratch directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wb-ami-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `classify --format ami` of a file: the summary JSON.
fn classify(path: &Path, calls: bool) -> String {
    let options = ClassifyOptions {
        files: vec![path.to_owned()],
        format: Format::Ami,
        calls,
        ..ClassifyOptions::default()
    };
    let mut out = Vec::new();
    classify::run(&options, &Config::default(), &mut out).expect("classify");
    String::from_utf8(out).expect("utf-8")
}

/// The `[[source]]` of kind `ami` for a test manager.
fn config(port: u16, secret_line: &str) -> Config {
    let text = format!(
        "[[source]]\nkind = \"ami\"\nname = \"pbx\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         username = \"wallboard\"\n{secret_line}\nping_secs = 0.2\nping_timeout_secs = 0.5\n"
    );
    Config::parse(&text, "test").expect("config")
}

async fn server(config: Config, dir: &Path) -> TestServer {
    TestServer::start_with(ServeOptions {
        config,
        data_dir: Some(dir.join("data")),
        clock: Clock::Feed,
        ..ServeOptions::new(Config::default())
    })
    .await
}

/// The source as `GET /api/sources` lists it, once `done` holds.
async fn source_when(server: &TestServer, done: impl Fn(&Value) -> bool) -> Value {
    within(async {
        loop {
            let (status, text) = server.get("/api/sources").await;
            assert_eq!(status, 200, "{text}");
            let sources: Value = serde_json::from_str(&text).expect("JSON");
            let source = sources["sources"][0].clone();
            if done(&source) {
                return source;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Every definition's boxes.
fn boxes(summary: &Value) -> Value {
    let definitions = summary["definitions"].as_object().expect("definitions");
    definitions
        .iter()
        .map(|(name, d)| (name.clone(), d["boxes"].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn index_of(trace: &[String], needle: &str) -> usize {
    trace
        .iter()
        .position(|b| b.contains(needle))
        .unwrap_or_else(|| panic!("no block with {needle:?}"))
}

/// The line drops twice: once just before a caller joins (missed, then
/// rebuilt from `QueueEntry` at now − Wait), once while a call rings (its
/// entry is known, so nothing is added). The board ends as the offline
/// classification of the whole trace.
#[tokio::test]
async fn reconnects_resyncs_and_ends_as_the_offline_classification() {
    let dir = scratch("resync");
    let trace = day_trace().render();
    let file = dir.join("trace.txt");
    std::fs::write(&file, trace.concat()).expect("write trace");
    let expected: Value = serde_json::from_str(&classify(&file, false)).expect("summary");
    let calls = expected["calls"].as_i64().expect("calls");
    assert!(calls >= 3, "{expected}");
    for outcome in ["answered", "timed_out", "queue_abandoned"] {
        assert_eq!(
            expected["outcomes"][outcome],
            1 + i64::from(outcome == "answered" && shared_capture().is_some()),
            "{outcome}: {expected}"
        );
    }

    let join = index_of(
        &trace,
        "Uniqueid: 1795165300.20\r\nLinkedid: 1795165300.20\r\nQueue: Q1",
    );
    let ringing = index_of(
        &trace,
        "Uniqueid: 1795165400.30\r\nLinkedid: 1795165400.30\r\nQueue: Q1\r\nMemberName: SIP/777",
    );
    let sessions = vec![
        Session {
            from: 0,
            to: join,
            close: true,
            answer_pings: true,
        },
        // The join and the music on hold happen while the source is away.
        Session {
            from: join + 2,
            to: ringing + 1,
            close: true,
            answer_pings: true,
        },
        // Dropped while ringing; the music on hold is missed, nothing else.
        Session {
            from: ringing + 2,
            to: trace.len(),
            close: false,
            answer_pings: true,
        },
    ];
    assert!(
        trace[join + 1].contains("MusicOnHoldStart")
            && trace[ringing + 1].contains("MusicOnHoldStart")
    );
    let pbx = Pbx::start(Plan {
        secret: "s3cret".into(),
        trace: trace.clone(),
        sessions,
    })
    .await;
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, "s3cret\n").expect("secret file");
    let line = format!("secret_file = {:?}", secret_file.display().to_string());
    let server = server(config(pbx.port, &line), &dir).await;

    let want = boxes(&expected);
    let board = server
        .snapshot_when(|s| common::sum(&s["definitions"]["reachable"]["boxes"]) == calls)
        .await;
    assert_eq!(boxes(&board), want, "board {board}");
    assert_eq!(pbx.logins(), 3, "two drops, two reconnections");
    let source = source_when(&server, |s| s["state"] == "connected").await;
    assert_eq!(source["skipped"], 0, "{source}");
    assert_eq!(source["kind"], "ami");
    // Bob's pause reason came through, and SIP/777 is free again.
    let agents = within(async {
        loop {
            let (_, text) = server.get("/api/supervisor").await;
            let detail: Value = serde_json::from_str(&text).expect("JSON");
            let agents = detail["agents"].as_array().cloned().unwrap_or_default();
            if agents.len() >= 2 {
                return agents;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let agent = |name: &str| {
        agents
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(agent("PJSIP/bob")["status"], "away", "{agents:?}");
    assert_eq!(agent("PJSIP/bob")["reason"], "lunch", "{agents:?}");
    assert_eq!(agent("PJSIP/bob")["queues"], serde_json::json!(["Q1"]));
    assert_eq!(agent("SIP/777")["status"], "available", "{agents:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Unanswered pings make the source reconnect.
#[tokio::test]
async fn an_unanswered_ping_makes_it_reconnect() {
    let dir = scratch("ping");
    let trace = day_trace().render();
    let sessions = vec![Session {
        from: 0,
        to: 2,
        close: false,
        answer_pings: false,
    }];
    let pbx = Pbx::start(Plan {
        secret: "s3cret".into(),
        trace,
        sessions,
    })
    .await;
    let server = server(config(pbx.port, "secret = \"s3cret\""), &dir).await;
    within(async {
        while pbx.logins() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(pbx.pings() >= 1);
    let source = source_when(&server, |s| {
        s["state"] == "connected" && s["last_error"].is_string()
    })
    .await;
    assert!(
        source["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("Ping"),
        "{source}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A wrong secret: `failed`, with Asterisk's reason, retried.
#[tokio::test]
async fn a_bad_secret_fails_with_the_reason_and_is_retried() {
    let dir = scratch("secret");
    let pbx = Pbx::start(Plan {
        secret: "right".into(),
        trace: Vec::new(),
        sessions: Vec::new(),
    })
    .await;
    let server = server(config(pbx.port, "secret = \"wrong\""), &dir).await;
    let source = source_when(&server, |s| s["state"] == "failed").await;
    let error = source["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("Authentication failed"), "{source}");
    within(async {
        while pbx.connections() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(pbx.logins(), 0);
    let source = source_when(&server, |_| true).await;
    assert_eq!(source["state"], "failed", "retries stay failed: {source}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Blocks without `Event`, junk, an oversized block and an over-long line
/// are skipped and counted; the call after them still counts.
#[tokio::test]
async fn malformed_blocks_are_counted_never_fatal() {
    let dir = scratch("malformed");
    let mut trace = vec![
        "Foo: bar\r\nBaz: qux\r\n\r\n".to_owned(),
        "this is not a header\r\nnor this\r\n\r\n".to_owned(),
        format!(
            "Event: VarSet\r\n{}\r\n",
            "Pad: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n".repeat(1500)
        ),
        format!("Event: VarSet\r\nValue: {}\r\n\r\n", "y".repeat(9000)),
        "Event: AgentCalled\r\nTimestamp: 1795165200\r\nQueue: Q1\r\n\r\n".to_owned(),
    ];
    let mut t = Trace::default();
    let c = "1795165210.1";
    t.caller(10.0, "QueueCallerJoin", c, &[("Queue", "Q1")]);
    t.caller(
        12.0,
        "AgentConnect",
        c,
        &[
            ("Queue", "Q1"),
            ("MemberName", "SIP/777"),
            ("HoldTime", "2"),
        ],
    );
    t.caller(
        30.0,
        "AgentComplete",
        c,
        &[
            ("Queue", "Q1"),
            ("MemberName", "SIP/777"),
            ("Reason", "caller"),
        ],
    );
    trace.extend(t.render());
    let sessions = vec![Session {
        from: 0,
        to: trace.len(),
        close: false,
        answer_pings: true,
    }];
    let pbx = Pbx::start(Plan {
        secret: "s".into(),
        trace,
        sessions,
    })
    .await;
    let server = server(config(pbx.port, "secret = \"s\""), &dir).await;
    let board = server
        .snapshot_when(|s| s["definitions"]["reachable"]["boxes"]["answered"] == 1)
        .await;
    assert_eq!(common::sum(&board["definitions"]["reachable"]["boxes"]), 1);
    let source = source_when(&server, |s| s["skipped"] == 5).await;
    assert_eq!(source["state"], "connected", "{source}");
    assert_eq!(pbx.logins(), 1, "never fatal: no reconnection");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shared capture is one call through Q1, answered by SIP/777.
#[test]
fn the_shared_capture_classifies_as_one_answered_call_through_q1() {
    if !Path::new(CAPTURE).exists() {
        println!("note: {CAPTURE} is absent; skipped");
        return;
    }
    let lines = classify(Path::new(CAPTURE), true);
    let calls: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(calls.len(), 1, "{lines}");
    assert_eq!(calls[0]["outcome"], "answered");
    assert_eq!(calls[0]["call"], "1514295827.372");
    let events = offline::read_file(Format::Ami, Path::new(CAPTURE)).expect("read");
    let kinds: Vec<String> = events
        .iter()
        .filter(|e| e.call.is_some())
        .map(|e| match &e.kind {
            EventKind::Queued { queue } => format!("queued {queue}"),
            EventKind::Offered { agent, .. } => format!("offered {agent}"),
            EventKind::Answered { agent } => format!("answered {agent}"),
            other => serde_json::to_value(other).expect("json")["type"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "call_started",
            "queued Q1",
            "offered SIP/777",
            "answered SIP/777",
            "ended"
        ]
    );
}

/// The command line reads AMI captures too: `wallboard classify --format ami`.
#[test]
fn the_binary_classifies_an_ami_capture() {
    let dir = scratch("binary");
    let file = dir.join("trace.txt");
    std::fs::write(&file, day_trace().render().concat()).expect("write trace");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wallboard"))
        .args(["classify", "--format", "ami", "--calls"])
        .arg(&file)
        .output()
        .expect("run wallboard");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let outcomes: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("JSON")["outcome"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    for outcome in ["answered", "timed_out", "queue_abandoned"] {
        assert!(outcomes.iter().any(|o| o == outcome), "{outcome}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Nothing listening: `failed`, naming the address.
#[tokio::test]
async fn an_unreachable_manager_is_failed_naming_the_address() {
    let dir = scratch("unreachable");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let server = server(config(port, "secret = \"s\""), &dir).await;
    let source = source_when(&server, |s| s["state"] == "failed").await;
    let error = source["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{source}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The store refuses (another process holds SQLite's write lock): the
/// source says `failed` with "store: …" instead of `connected`, reads no
/// further meanwhile, and once the store takes events again it is
/// `connected` and nothing read while it refused is lost.
#[tokio::test]
async fn a_refusing_store_shows_as_failed_and_loses_nothing() {
    let dir = scratch("store");
    let trace = day_trace().render();
    let file = dir.join("trace.txt");
    std::fs::write(&file, trace.concat()).expect("write trace");
    let expected: Value = serde_json::from_str(&classify(&file, false)).expect("summary");
    let calls = expected["calls"].as_i64().expect("calls");
    // The manager answers only once the lock is taken: until then the
    // source's connection waits in the listener's backlog.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = server(config(port, "secret = \"s\""), &dir).await;
    source_when(&server, |_| true).await;
    let db = rusqlite::Connection::open(dir.join("data").join(wallboard::journal::DB_FILE))
        .expect("open the store");
    db.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let sessions = vec![Session {
        from: 0,
        to: trace.len(),
        close: false,
        answer_pings: true,
    }];
    let pbx = Pbx::start_on(
        listener,
        Plan {
            secret: "s".into(),
            trace,
            sessions,
        },
    );
    let source = source_when(&server, |s| s["state"] == "failed").await;
    let error = source["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("store: "), "{source}");
    assert_eq!(source["events"], 0, "{source}");

    db.execute_batch("COMMIT").expect("release the lock");
    let source = source_when(&server, |s| s["state"] == "connected").await;
    assert_eq!(
        pbx.logins(),
        1,
        "the store's trouble is no reason to reconnect"
    );
    let board = server
        .snapshot_when(|s| common::sum(&s["definitions"]["reachable"]["boxes"]) == calls)
        .await;
    assert_eq!(boxes(&board), boxes(&expected), "board {board} ({source})");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A manager that takes the login and drops the line at once is retried
/// with a growing wait (the backoff starts over only after a session that
/// did work), and the source says `connecting`, with why, meanwhile.
#[tokio::test]
async fn a_manager_that_drops_every_session_is_not_hammered() {
    let dir = scratch("flap");
    let drop_at_once = Session {
        from: 0,
        to: 0,
        close: true,
        answer_pings: true,
    };
    let pbx = Pbx::start(Plan {
        secret: "s".into(),
        trace: Vec::new(),
        sessions: vec![drop_at_once; 50],
    })
    .await;
    let server = server(config(pbx.port, "secret = \"s\""), &dir).await;
    let source = source_when(&server, |s| s["state"] == "connecting" && pbx.logins() >= 2).await;
    let error = source["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("closed"), "{source}");
    // Waits of 0.25, 0.5, 1 and 2 s: four logins in three seconds, where a
    // backoff reset at each login would make a dozen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let logins = pbx.logins();
    assert!((3..=5).contains(&logins), "{logins} logins in 3 s");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A self-signed certificate for `localhost`, made now: the server's TLS
/// configuration, and the certificate as PEM.
fn localhost_certificate() -> (Arc<tokio_rustls::rustls::ServerConfig>, String) {
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let key = PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    // rustls deprecates ring for lacking post-quantum groups; it is what
    // the client uses.
    #[allow(deprecated)]
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server config");
    (Arc::new(config), cert.pem())
}

/// Serves TLS on a port of its own and passes what it decrypts to the test
/// manager on `pbx_port`, as Asterisk's `tlsbindaddr` serves the manager.
async fn tls_front(config: Arc<tokio_rustls::rustls::ServerConfig>, pbx_port: u16) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses our certificate ends here.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", pbx_port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// One abandoned call, as Asterisk reports it.
fn one_call() -> Vec<String> {
    let mut t = Trace::default();
    let c = "1795165240.10";
    t.caller(40.0, "Newchannel", c, &[("Exten", "100")]);
    let joined = [("Queue", "Q1"), ("Position", "1"), ("Count", "1")];
    t.caller(40.2, "QueueCallerJoin", c, &joined);
    let abandon = [("Queue", "Q1"), ("Position", "1"), ("HoldTime", "30")];
    t.caller(70.2, "QueueCallerAbandon", c, &abandon);
    let left = [("Queue", "Q1"), ("Position", "1"), ("Count", "0")];
    t.caller(70.2, "QueueCallerLeave", c, &left);
    let hangup = [("Cause", "16"), ("Cause-txt", "Normal Clearing")];
    t.caller(70.3, "Hangup", c, &hangup);
    t.render()
}

/// The test manager behind a TLS front playing `trace`, and the port of
/// the front.
async fn tls_manager(
    config: Arc<tokio_rustls::rustls::ServerConfig>,
    trace: Vec<String>,
) -> (Pbx, u16) {
    let session = Session {
        from: 0,
        to: trace.len(),
        close: false,
        answer_pings: true,
    };
    let pbx = Pbx::start(Plan {
        secret: "s".into(),
        trace,
        sessions: vec![session],
    })
    .await;
    let port = tls_front(config, pbx.port).await;
    (pbx, port)
}

/// Over TLS, trusting the manager's self-signed certificate through
/// `ca_file` and checking it carries `server_name`: the call is counted as
/// offline classification counts it.
#[tokio::test]
async fn over_tls_with_its_certificate_the_call_is_counted() {
    let dir = scratch("tls");
    let trace = one_call();
    let file = dir.join("trace.txt");
    std::fs::write(&file, trace.concat()).expect("write trace");
    let expected: Value = serde_json::from_str(&classify(&file, false)).expect("summary");
    assert_eq!(expected["calls"], 1, "{expected}");
    let (tls, pem) = localhost_certificate();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, pem).expect("write the certificate");
    let (pbx, port) = tls_manager(tls, trace).await;
    let line = format!(
        "secret = \"s\"\ntls = true\nserver_name = \"localhost\"\nca_file = {:?}",
        ca_file.display().to_string()
    );
    let server = server(config(port, &line), &dir).await;
    let board = server
        .snapshot_when(|s| common::sum(&s["definitions"]["reachable"]["boxes"]) == 1)
        .await;
    assert_eq!(boxes(&board), boxes(&expected), "board {board}");
    let source = source_when(&server, |s| s["state"] == "connected").await;
    assert_eq!(source["last_error"], Value::Null, "{source}");
    assert_eq!(pbx.logins(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over TLS without `ca_file`, a self-signed certificate is not trusted:
/// `failed`, saying why, and the manager never sees a login.
#[tokio::test]
async fn an_untrusted_certificate_is_failed_naming_tls() {
    let dir = scratch("tls-untrusted");
    let (tls, _) = localhost_certificate();
    let (pbx, port) = tls_manager(tls, one_call()).await;
    let line = "secret = \"s\"\ntls = true\nserver_name = \"localhost\"";
    let server = server(config(port, line), &dir).await;
    let source = source_when(&server, |s| s["state"] == "failed").await;
    let error = source["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("TLS: ") && error.contains("UnknownIssuer"),
        "{source}"
    );
    assert_eq!(pbx.logins(), 0, "{source}");
    let _ = std::fs::remove_dir_all(&dir);
}
