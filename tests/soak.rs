//! The soak: run on purpose, not by `cargo test`'s default run.
//!
//! ```sh
//! WALLBOARD_SOAK_MINUTES=2 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! The real binary with a store, under `--clock feed`, for N minutes (default
//! 2): posters send whole calls (the shared journeys, renamed and shifted)
//! and retry a batch until it is acknowledged; slow and non-reading
//! WebSocket clients hang on; the server is SIGKILLed and restarted every
//! 10 to 20 s. At the end, after one more restart, the board must equal
//! `wallboard classify` of every batch sent: an acknowledged batch is never
//! sent again, so one lost by the store shows as a difference.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use common::WsClient;
use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::Value;

const POSTERS: usize = 8;
const CALLS_PER_BATCH: u64 = 3;
const SLOW_CLIENTS: usize = 4;
const DEAF_CLIENTS: usize = 8;

/// The real binary on `dir`, its base URL read from its first line.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wallboard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--clock", "feed"])
            .arg("--data-dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wallboard starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server {
            child,
            base: format!("http://{addr}"),
        }
    }

    /// Resident memory in KiB, from `/proc` (Linux).
    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The journeys as templates: each call's events, with times relative to
/// the template's first event.
fn templates() -> Vec<Vec<Value>> {
    let mut calls: Vec<(String, Vec<Value>)> = Vec::new();
    for line in common::journey_lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let call = event["call"].as_str().unwrap().to_owned();
        match calls.iter_mut().find(|(c, _)| *c == call) {
            Some((_, events)) => events.push(event),
            None => calls.push((call, vec![event])),
        }
    }
    calls.into_iter().map(|(_, events)| events).collect()
}

/// Call `n`: template `n % len`, renamed, its times moved so that call `n`
/// starts `n * 20 ms` after `base` (every call on one day: 1M calls is 5.6 h).
fn call(templates: &[Vec<Value>], base: Timestamp, n: u64) -> String {
    let template = &templates[(n % templates.len() as u64) as usize];
    let first: Timestamp = template[0]["at"].as_str().unwrap().parse().unwrap();
    let start = base + SignedDuration::from_millis(20 * n as i64);
    let mut out = String::new();
    for event in template {
        let mut event = event.clone();
        let at: Timestamp = event["at"].as_str().unwrap().parse().unwrap();
        event["at"] = (start + at.duration_since(first)).to_string().into();
        for key in ["id", "call"] {
            event[key] = format!("s{n}-{}", event[key].as_str().unwrap()).into();
        }
        out += &event.to_string();
        out.push('\n');
    }
    out
}

/// What the run counted.
#[derive(Default)]
struct Figures {
    batches: AtomicU64,
    attempts_failed: AtomicU64,
    refused: AtomicU64,
    duplicates: AtomicU64,
    latency_max_ms: AtomicU64,
    latency_sum_ms: AtomicU64,
    ws_messages: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a long soak: WALLBOARD_SOAK_MINUTES=2 cargo test --release --test soak -- --ignored"]
async fn soak_loses_nothing_acknowledged() {
    let minutes: f64 = std::env::var("WALLBOARD_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(2.0);
    let run_for = Duration::from_secs_f64(minutes * 60.0);
    let dir = std::env::temp_dir().join(format!("wallboard-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Yesterday at 06:00 UTC: in the past for the machine's clock, one day for the board.
    let day = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date() - 1.day();
    let base = day
        .at(6, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let templates = Arc::new(templates());

    let server = Server::start(&dir);
    let url = Arc::new(RwLock::new(server.base.clone()));
    let sent = Arc::new(Mutex::new(
        std::fs::File::create(dir.join("sent.ndjson")).unwrap(),
    ));
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let figures = Arc::new(Figures::default());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let posters: Vec<_> = (0..POSTERS)
        .map(|_| {
            let (url, sent, next, stop) = (url.clone(), sent.clone(), next.clone(), stop.clone());
            let (figures, client, templates) = (figures.clone(), client.clone(), templates.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let first = next.fetch_add(CALLS_PER_BATCH, Ordering::SeqCst);
                    let batch: String = (first..first + CALLS_PER_BATCH)
                        .map(|n| call(&templates, base, n))
                        .collect();
                    // Recorded before the first attempt: every batch sent counts.
                    sent.lock().unwrap().write_all(batch.as_bytes()).unwrap();
                    // Until acknowledged, whatever happens to the server.
                    loop {
                        let target = format!("{}/api/events", url.read().unwrap());
                        let began = Instant::now();
                        let reply = client
                            .post(&target)
                            .header("content-type", "application/x-ndjson")
                            .body(batch.clone())
                            .send()
                            .await;
                        match reply {
                            Ok(r) if r.status().is_success() => {
                                let body: Value = r.json().await.unwrap_or_default();
                                let ms = began.elapsed().as_millis() as u64;
                                figures.latency_sum_ms.fetch_add(ms, Ordering::Relaxed);
                                figures.latency_max_ms.fetch_max(ms, Ordering::Relaxed);
                                let dups = body["duplicates"].as_u64().unwrap_or(0);
                                figures.duplicates.fetch_add(dups, Ordering::Relaxed);
                                figures.batches.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Ok(r) => {
                                // A refusal (the server is shutting or full): retry.
                                assert!(
                                    r.status().is_server_error() || r.status() == 429,
                                    "batch refused: {} {}",
                                    r.status(),
                                    r.text().await.unwrap_or_default()
                                );
                                figures.refused.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                figures.attempts_failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();

    let started = Instant::now();
    let mut server = server;
    let mut restarts = 0u64;
    let mut rss_max_kib = 0u64;
    let mut clients: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    while started.elapsed() < run_for {
        clients.extend(ws_clients(&server.base, &figures));
        let live_for = Duration::from_millis(
            10_000 + u64::from(Timestamp::now().subsec_nanosecond().unsigned_abs()) % 10_000,
        );
        tokio::time::sleep(live_for.min(run_for.saturating_sub(started.elapsed()))).await;
        rss_max_kib = rss_max_kib.max(server.rss_kib().unwrap_or(0));
        if started.elapsed() >= run_for {
            break;
        }
        server.kill();
        for client in clients.drain(..) {
            client.abort();
        }
        server = Server::start(&dir);
        *url.write().unwrap() = server.base.clone();
        restarts += 1;
    }
    stop.store(true, Ordering::SeqCst);
    for poster in posters {
        poster.await.unwrap();
    }
    for client in clients.drain(..) {
        client.abort();
    }
    server.kill();
    sent.lock().unwrap().flush().unwrap();

    // One more restart: the board is rebuilt from the store alone.
    let server = Server::start(&dir);
    let board: Value = client
        .get(format!("{}/api/snapshot", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws = WsClient::connect(&format!("{}/ws", server.base.replace("http", "ws"))).await;
    assert_eq!(
        common::figures(&ws.board),
        common::figures(&board),
        "a new WebSocket client sees the board the API serves"
    );
    let classified = Command::new(env!("CARGO_BIN_EXE_wallboard"))
        .arg("classify")
        .arg(dir.join("sent.ndjson"))
        .output()
        .unwrap();
    assert!(classified.status.success(), "classify failed");
    let expected: Value = serde_json::from_slice(&classified.stdout).unwrap();

    let batches = figures.batches.load(Ordering::Relaxed);
    let calls = batches * CALLS_PER_BATCH;
    println!(
        "soak: {minutes} min, {restarts} SIGKILL restarts, {batches} batches acknowledged \
         ({calls} calls, {} events), {} attempts failed (server down) and retried, {} refused and retried, \
         {} duplicates on retry, ack latency mean {:.1} ms max {} ms, {} WebSocket messages read, \
         server RSS max {} MiB",
        std::fs::read_to_string(dir.join("sent.ndjson"))
            .unwrap()
            .lines()
            .count(),
        figures.attempts_failed.load(Ordering::Relaxed),
        figures.refused.load(Ordering::Relaxed),
        figures.duplicates.load(Ordering::Relaxed),
        figures.latency_sum_ms.load(Ordering::Relaxed) as f64 / batches.max(1) as f64,
        figures.latency_max_ms.load(Ordering::Relaxed),
        figures.ws_messages.load(Ordering::Relaxed),
        rss_max_kib / 1024,
    );
    assert!(
        restarts >= 1 || minutes < 0.3,
        "the server was never killed"
    );
    assert_eq!(
        expected["calls"].as_u64(),
        Some(calls),
        "every batch sent is classified"
    );
    assert_eq!(board["day"], day.to_string());
    assert_eq!(
        nonzero(&board["outcomes"]),
        nonzero(&expected["outcomes"]),
        "outcomes: the board after {restarts} kills against classify"
    );
    for (name, figures) in expected["definitions"].as_object().unwrap() {
        assert_eq!(
            nonzero(&board["definitions"][name]["boxes"]),
            nonzero(&figures["boxes"]),
            "definition {name}"
        );
    }
    server.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Counts without the zeros (the board leaves them out, classify prints them).
fn nonzero(counts: &Value) -> Vec<(String, i64)> {
    common::counts_in(counts)
        .filter(|(_, n)| *n != 0)
        .map(|(k, n)| (k.to_owned(), n))
        .collect()
}

/// Slow readers (one message every 300 ms) and clients that never read,
/// for one life of the server.
fn ws_clients(base: &str, figures: &Arc<Figures>) -> Vec<tokio::task::JoinHandle<()>> {
    let url = format!("{}/ws", base.replace("http", "ws"));
    let slow = (0..SLOW_CLIENTS).map(|_| {
        let (url, figures) = (url.clone(), figures.clone());
        tokio::spawn(async move {
            let Ok((mut socket, _)) = tokio_tungstenite::connect_async(&url).await else {
                return;
            };
            while let Some(Ok(_)) = socket.next().await {
                figures.ws_messages.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    });
    let deaf = (0..DEAF_CLIENTS).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let Ok((socket, _)) = tokio_tungstenite::connect_async(&url).await else {
                return;
            };
            // Held, never read, until this life of the server ends.
            std::future::pending::<()>().await;
            drop(socket);
        })
    });
    slow.chain(deaf).collect()
}
