//! The `esl` source against a test FreeSWITCH event socket: a real TCP
//! listener speaking the protocol (auth request, replies, `text/event-plain`
//! frames with `Content-Length`) that plays recorded mod_callcenter calls.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestServer, within};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use wallboard::classify::{self, ClassifyOptions};
use wallboard::config::Config;
use wallboard::hub::Clock;
use wallboard::server::ServeOptions;
use wallboard::source::Format;

/// Recorded calls: answered; abandoned after an agent did not answer; timed
/// out and sent on to a second queue, answered there; timed out with no
/// agent; left with a key; agents' status and state changes.
const FIXTURE: &str = "tests/data/esl-callcenter.txt";
const PASSWORD: &str = "ClueCon";

fn fixture_blocks() -> Vec<String> {
    std::fs::read_to_string(FIXTURE)
        .expect("fixture")
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| format!("{}\n", b.trim_end()))
        .collect()
}

/// An event as the socket frames it (the body ends with a blank line).
fn event_frame(block: &str) -> Vec<u8> {
    let body = format!("{block}\n");
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What one connection that logs in is sent, and what happens after.
struct Script {
    frames: Vec<Vec<u8>>,
    close: bool,
}

/// What the test server saw.
#[derive(Debug, Default)]
struct Seen {
    logins: usize,
    refused: usize,
    subscriptions: Vec<String>,
}

/// A FreeSWITCH event socket in inbound mode, on 127.0.0.1:0.
struct EslServer {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl EslServer {
    /// Plays `scripts` to successive logged-in connections (further ones get
    /// nothing and are held open).
    async fn start(scripts: Vec<Script>) -> EslServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        tokio::spawn(async move {
            let mut scripts = scripts.into_iter();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                if let Some(stream) = login(stream, &shared).await {
                    let script = scripts.next().unwrap_or(Script {
                        frames: Vec::new(),
                        close: false,
                    });
                    tokio::spawn(play(stream, script));
                }
            }
        });
        EslServer { port, seen }
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }
}

/// Reads one command (lines up to a blank one).
async fn command(read: &mut BufReader<&mut TcpStream>) -> Option<String> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line.trim().is_empty() {
            return Some(text);
        }
        text.push_str(line.trim_end());
    }
}

/// The socket's login: `auth/request`, `auth PASSWORD`, then the `event`
/// subscription. `None` when the client was refused or went away.
async fn login(mut stream: TcpStream, seen: &Mutex<Seen>) -> Option<TcpStream> {
    stream
        .write_all(b"Content-Type: auth/request\n\n")
        .await
        .ok()?;
    let mut read = BufReader::new(&mut stream);
    let auth = command(&mut read).await?;
    if auth != format!("auth {PASSWORD}") {
        seen.lock().unwrap().refused += 1;
        let notice = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";
        let reply = format!(
            "Content-Type: command/reply\nReply-Text: -ERR invalid\n\n\
             Content-Type: text/disconnect-notice\nContent-Length: {}\n\n{notice}",
            notice.len()
        );
        drop(read);
        stream.write_all(reply.as_bytes()).await.ok()?;
        return None;
    }
    drop(read);
    stream
        .write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
        .await
        .ok()?;
    let mut read = BufReader::new(&mut stream);
    let subscription = command(&mut read).await?;
    drop(read);
    stream
        .write_all(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
        .await
        .ok()?;
    let mut seen = seen.lock().unwrap();
    seen.logins += 1;
    seen.subscriptions.push(subscription);
    Some(stream)
}

async fn play(mut stream: TcpStream, script: Script) {
    for frame in script.frames {
        // Each frame in two writes: the client must not take half a frame
        // for a whole one.
        let (a, b) = frame.split_at(frame.len() / 2);
        if stream.write_all(a).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        if stream.write_all(b).await.is_err() {
            return;
        }
    }
    if script.close {
        // The connection drops mid-call (FreeSWITCH restarted, a network cut).
        return;
    }
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink).await;
}

fn config(port: u16, password: &str) -> Config {
    let text = format!(
        "[[source]]\nkind = \"esl\"\nname = \"pbx1\"\nhost = \"127.0.0.1\"\nport = {port}\npassword = \"{password}\"\n"
    );
    Config::parse(&text, "test").expect("config")
}

async fn server_for(port: u16, password: &str) -> TestServer {
    TestServer::start_with(ServeOptions {
        // Recorded times count as today.
        clock: Clock::Feed,
        ..ServeOptions::new(config(port, password))
    })
    .await
}

async fn source(server: &TestServer) -> Value {
    let (status, text) = server.get("/api/sources").await;
    assert_eq!(status, 200, "{text}");
    let sources: Value = serde_json::from_str(&text).expect("JSON");
    sources["sources"][0].clone()
}

/// `classify --format esl` of the fixture, as the library runs it.
fn classified() -> Value {
    let options = ClassifyOptions {
        files: vec![FIXTURE.into()],
        format: Format::Esl,
        ..ClassifyOptions::default()
    };
    let mut out = Vec::new();
    classify::run(&options, &Config::default(), &mut out).expect("classify");
    serde_json::from_slice(&out).expect("classify prints JSON")
}

#[tokio::test]
async fn recorded_calls_survive_a_dropped_connection_and_match_classify() {
    let blocks = fixture_blocks();
    let drop_after = blocks
        .iter()
        .position(|b| b.contains("CC-Cancel-Reason: TIMEOUT"))
        .expect("the timed-out call")
        + 1;
    let frames = |range: std::ops::Range<usize>| -> Vec<Vec<u8>> {
        blocks[range].iter().map(|b| event_frame(b)).collect()
    };
    // The server drops the first connection just after a caller timed out
    // of its first queue (the call goes on to a second one).
    let first = frames(0..drop_after);
    // After the reconnect the last two frames come again (nothing may count
    // twice), then a frame holding no event and one too large to buffer
    // (both skipped), then broken framing: the source drops this one itself.
    let lost = drop_after + 6;
    let mut second = frames(drop_after - 2..lost);
    second.push(event_frame("this is not an event"));
    second.push(event_frame(&format!(
        "Event-Name: CUSTOM\nX-Pad: {}",
        "x".repeat(300 * 1024)
    )));
    second.push(b"Content-Length: many\nContent-Type: text/event-plain\n\n".to_vec());
    let third = frames(lost..blocks.len());
    let esl = EslServer::start(vec![
        Script {
            frames: first,
            close: true,
        },
        Script {
            frames: second,
            close: false,
        },
        Script {
            frames: third,
            close: false,
        },
    ])
    .await;
    let server = server_for(esl.port, PASSWORD).await;

    let expected = classified();
    assert_eq!(expected["calls"], 5, "{expected}");
    assert_eq!(expected["unfinished"], 0, "{expected}");
    let snapshot = server
        .snapshot_when(|s| s["outcomes"] == expected["outcomes"])
        .await;
    for (name, figures) in expected["definitions"].as_object().expect("definitions") {
        assert_eq!(
            snapshot["definitions"][name]["boxes"], figures["boxes"],
            "{name}"
        );
    }
    assert_eq!(esl.seen(|s| s.logins), 3, "reconnected twice");
    assert!(esl.seen(|s| {
        s.subscriptions
            .iter()
            .all(|c| c == "event plain CUSTOM callcenter::info CHANNEL_HANGUP_COMPLETE")
    }));
    // Every event the offline reading gives, each once: the resent frames
    // are dropped by id, and the exit of the call that went on to a second
    // queue gave no `ended` of its own. (The board may show the last call
    // before the agents' last changes are stored: wait for the count.)
    let offline =
        wallboard::source::offline::read_file(Format::Esl, FIXTURE.as_ref()).expect("read");
    let pbx = within(async {
        loop {
            let pbx = source(&server).await;
            if pbx["skipped"] == 2 && pbx["state"] == "connected" && pbx["events"] == offline.len()
            {
                return pbx;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(pbx["kind"], "esl");
    assert_eq!(
        snapshot["agents"],
        serde_json::json!({"available": 1, "busy": 0, "wrap_up": 0, "away": 1, "offline": 1}),
        "1000 back to waiting, 1001 on break (its waiting ignored), 1002 logged out"
    );
    let error = pbx["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("framing lost"), "{pbx}");
    assert!(pbx["queues"].as_array().unwrap().len() == 3, "{pbx}");
}

#[tokio::test]
async fn a_bad_password_is_refused_and_retried() {
    let esl = EslServer::start(Vec::new()).await;
    let server = server_for(esl.port, "not-the-password").await;
    let pbx = within(async {
        loop {
            let pbx = source(&server).await;
            if pbx["state"] == "failed" && esl.seen(|s| s.refused) >= 2 {
                return pbx;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let error = pbx["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("auth refused"), "{pbx}");
    assert!(
        !error.contains("not-the-password"),
        "no password in errors: {pbx}"
    );
    assert_eq!(esl.seen(|s| s.logins), 0);
}

/// The binary reads the same file: a summary on stdout, exit status 0, and
/// an unreadable block counted on stderr.
#[test]
fn the_binary_classifies_an_esl_file() {
    let dir = std::env::temp_dir().join(format!("wallboard-esl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("capture.txt");
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    std::fs::write(&file, format!("garbage\n\n{text}")).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wallboard"))
        .args(["classify", "--format", "esl"])
        .arg(&file)
        .output()
        .expect("run wallboard");
    assert!(output.status.success(), "{output:?}");
    let summary: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(summary["calls"], 5);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 records skipped"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// By the machine's clock, a timed-out caller whose call goes nowhere else
/// ends `continue_secs` after the exit, even with nothing more on the socket.
#[tokio::test]
async fn a_held_exit_ends_by_the_machine_clock() {
    use std::sync::atomic::{AtomicI64, Ordering};

    // Call "d": it joins, no agent answers, the queue puts it out; its
    // hang-up never comes.
    let frames = fixture_blocks()
        .iter()
        .filter(|b| b.contains("Dee%20Caller") && !b.contains("CHANNEL_HANGUP_COMPLETE"))
        .map(|b| event_frame(b))
        .collect::<Vec<_>>();
    assert_eq!(frames.len(), 2, "member-queue-start and member-queue-end");
    let esl = EslServer::start(vec![Script {
        frames,
        close: false,
    }])
    .await;
    let exit: jiff::Timestamp = "2026-11-20T10:03:50Z".parse().unwrap();
    let now = Arc::new(AtomicI64::new(exit.as_second() + 5));
    let clock = now.clone();
    let server = TestServer::start_with(ServeOptions {
        wall: Arc::new(move || jiff::Timestamp::from_second(clock.load(Ordering::SeqCst)).unwrap()),
        ..ServeOptions::new(config(esl.port, PASSWORD))
    })
    .await;
    let fed = |n: u64| {
        let server = &server;
        async move {
            within(async {
                while source(server).await["events"] != n {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
        }
    };
    // call_started, queued, timed_out: the `ended` waits.
    fed(3).await;
    // Longer than a tick of the source, so a wrongly early `ended` would show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        source(&server).await["events"],
        3,
        "not before continue_secs"
    );
    now.store(exit.as_second() + 11, Ordering::SeqCst);
    fed(4).await;
    let snapshot = server
        .snapshot_when(|s| s["outcomes"]["timed_out"] == 1)
        .await;
    assert_eq!(common::sum(&snapshot["outcomes"]), 1, "{snapshot}");
}

/// A held exit survives a restart: the server stops while a timed-out
/// caller's `ended` waits for `continue_secs`, and the next run ends the
/// call from its checkpoint once they have passed.
#[tokio::test]
async fn a_held_exit_survives_a_restart() {
    use std::sync::atomic::{AtomicI64, Ordering};

    let dir = std::env::temp_dir().join(format!("wb-esl-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Call "d" joins and is put out by the queue's timeout; nothing follows.
    let frames = fixture_blocks()
        .iter()
        .filter(|b| b.contains("Dee%20Caller") && !b.contains("CHANNEL_HANGUP_COMPLETE"))
        .map(|b| event_frame(b))
        .collect::<Vec<_>>();
    let esl = EslServer::start(vec![Script {
        frames,
        close: false,
    }])
    .await;
    let exit: jiff::Timestamp = "2026-11-20T10:03:50Z".parse().unwrap();
    let now = Arc::new(AtomicI64::new(exit.as_second() + 5));
    let start = || {
        let clock = now.clone();
        TestServer::start_with(ServeOptions {
            wall: Arc::new(move || {
                jiff::Timestamp::from_second(clock.load(Ordering::SeqCst)).unwrap()
            }),
            data_dir: Some(dir.clone()),
            ..ServeOptions::new(config(esl.port, PASSWORD))
        })
    };
    let server = start().await;
    within(async {
        while source(&server).await["events"] != 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let board = server.snapshot().await;
    assert_eq!(
        common::sum(&board["outcomes"]),
        0,
        "the ended waits: {board}"
    );
    server.stop().await.expect("stopped");

    now.store(exit.as_second() + 11, Ordering::SeqCst);
    let server = start().await;
    let snapshot = server
        .snapshot_when(|s| s["outcomes"]["timed_out"] == 1)
        .await;
    assert_eq!(common::sum(&snapshot["outcomes"]), 1, "{snapshot}");
    // The board may show the call a moment before the status counts it.
    within(async {
        while source(&server).await["events"] != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// FreeSWITCH takes the login and drops the socket at once, again and
/// again: `connecting` (as AMI says), with why, and a growing wait between
/// tries instead of one every 250 ms.
#[tokio::test]
async fn a_socket_that_drops_every_session_is_not_hammered() {
    let scripts = (0..50)
        .map(|_| Script {
            frames: Vec::new(),
            close: true,
        })
        .collect();
    let esl = EslServer::start(scripts).await;
    let server = server_for(esl.port, PASSWORD).await;
    let pbx = within(async {
        loop {
            let pbx = source(&server).await;
            if pbx["state"] == "connecting" && esl.seen(|s| s.logins) >= 2 {
                return pbx;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let error = pbx["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("closed"), "{pbx}");
    // Waits of 0.25, 0.5, 1 and 2 s: four logins in three seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let logins = esl.seen(|s| s.logins);
    assert!((3..=5).contains(&logins), "{logins} logins in 3 s");
}
