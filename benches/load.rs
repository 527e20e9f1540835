//! `cargo bench --bench load`: the server beside the minimal program doing
//! the same job, both in one run, with their ratio (issue 13's table).
//! Durable ingest against a bare SQLite insert loop; POST → every viewer
//! latency and memory per idle viewer against a bare axum WebSocket
//! broadcast server; `classify` against a parse-only loop; restart (from
//! `store.rs`). Medians of 3. `WALLBOARD_BENCH=ingest|viewers|classify|restart`
//! runs one part; `WALLBOARD_BENCH_VIEWERS=10000` sets the viewers (1,000).
//!
//! Servers and the two classify programs run as child processes (this
//! binary again, with `WALLBOARD_LOAD_ROLE` set), so their memory is their own.

#[allow(dead_code)]
#[path = "store.rs"]
mod store;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite;
use wallboard::clock::Clock;
use wallboard::config::Config;
use wallboard::event::Event;
use wallboard::server::{self, ServeOptions};

use store::{call_events, median, temp_dir};

const RUNS: usize = 3;
/// Which child this process is (unset: the parent).
const ROLE: &str = "WALLBOARD_LOAD_ROLE";
/// A child server's data directory, or a classify child's input file.
const PATH: &str = "WALLBOARD_LOAD_PATH";
/// Events in the classify input.
const CLASSIFY_EVENTS: usize = 1_000_000;
/// Single-event POSTs timed per viewer run.
const POSTS: usize = 30;
/// Calls posted before viewers connect, so the board is a busy day's (its snapshot ~14 KB).
const WARM_CALLS: u64 = 3_000;
const DAY_START: &str = "2026-11-20T06:00:00Z";

fn main() {
    raise_descriptor_limit();
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    // `cargo test --all-targets` runs bench binaries too; measure only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/load.rs: run with `cargo bench --bench load`");
        return;
    }
    let part = std::env::var("WALLBOARD_BENCH").ok();
    let runs = |name: &str| part.as_deref().is_none_or(|p| p == name);
    let viewers: usize = std::env::var("WALLBOARD_BENCH_VIEWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut table = Vec::new();
    if runs("ingest") {
        table.extend(runtime.block_on(ingest()));
    }
    if runs("viewers") {
        table.extend(runtime.block_on(viewers_part(viewers)));
    }
    if runs("classify") {
        table.extend(classify_part());
    }
    if runs("restart") {
        let figures = runtime.block_on(store::restart());
        table.push(Row::new(
            "restart on a 100,000-call day (s)",
            figures.restart_secs,
            figures.parse_and_engine_secs,
            "parse + engine of all 700,000 events",
        ));
    }
    println!("\n| what | ours | minimal | ratio ours/minimal | minimal program |");
    println!("|---|---|---|---|---|");
    for row in &table {
        println!(
            "| {} | {} | {} | {:.2} | {} |",
            row.what,
            figure(row.ours),
            figure(row.minimal),
            row.ours / row.minimal,
            row.counterpart
        );
    }
}

/// One line of the table.
struct Row {
    what: String,
    ours: f64,
    minimal: f64,
    counterpart: &'static str,
}

impl Row {
    fn new(what: impl Into<String>, ours: f64, minimal: f64, counterpart: &'static str) -> Row {
        Row {
            what: what.into(),
            ours,
            minimal,
            counterpart,
        }
    }
}

fn figure(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// 10,000 viewers need 10,000 descriptors here as in the server.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A line of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

// ---- children ----

fn child(role: &str) {
    let path = PathBuf::from(std::env::var(PATH).unwrap_or_default());
    match role {
        "ours" | "bare" => serve(role, path),
        "classify" => {
            let options = wallboard::classify::ClassifyOptions {
                files: vec![path],
                ..Default::default()
            };
            wallboard::classify::run(&options, &Config::default(), &mut std::io::sink()).unwrap();
            println!("{}", status_kib(std::process::id(), "VmHWM"));
        }
        "parse" => {
            println!("parsed {}", parse_only(&path));
            println!("{}", status_kib(std::process::id(), "VmHWM"));
        }
        _ => panic!("{ROLE}={role}: no such role"),
    }
}

/// A server on 127.0.0.1:0 that prints its address and stops when its stdin closes.
fn serve(role: &str, dir: PathBuf) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let stdin_closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                std::io::copy(&mut std::io::stdin(), &mut std::io::sink())
            })
            .await;
        };
        if role == "bare" {
            let app = bare_app();
            axum::serve(listener, app)
                .with_graceful_shutdown(stdin_closed)
                .await
                .unwrap();
            return;
        }
        let mut config = Config::default();
        config.security.limits.max_connections_per_ip = 50_000;
        config.security.limits.max_connections = 50_000;
        let options = ServeOptions {
            clock: Clock::Feed,
            data_dir: Some(dir),
            ..ServeOptions::new(config)
        };
        server::run(listener, options, stdin_closed).await.unwrap();
    });
}

/// The minimal broadcast server: `POST /publish` sends its body to every
/// socket on `/ws`, which first gets a small snapshot.
fn bare_app() -> axum::Router {
    use axum::routing::{get, post};
    let (frames, _) = broadcast::channel::<Bytes>(256);
    axum::Router::new()
        .route("/ws", get(bare_upgrade))
        .route(
            "/publish",
            post(
                |State(frames): State<broadcast::Sender<Bytes>>, body: Bytes| async move {
                    let _ = frames.send(body);
                },
            ),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(frames)
}

async fn bare_upgrade(
    State(frames): State<broadcast::Sender<Bytes>>,
    ws: WebSocketUpgrade,
) -> axum::response::Response {
    // The read buffer as ours (tungstenite would touch all of its 128 KiB default).
    ws.read_buffer_size(4 * 1024)
        .on_upgrade(move |socket: WebSocket| async move {
            let mut frames = frames.subscribe();
            let (mut sink, mut stream) = socket.split();
            let hello = Utf8Bytes::from_static(r#"{"type":"snapshot","seq":0,"board":{}}"#);
            if sink.send(Message::Text(hello)).await.is_err() {
                return;
            }
            tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            while let Ok(frame) = frames.recv().await {
                let text =
                    Utf8Bytes::try_from(frame).unwrap_or_else(|_| Utf8Bytes::from_static("{}"));
                if sink.send(Message::Text(text)).await.is_err() {
                    return;
                }
            }
        })
}

/// A stored event as typed fields, the least a reader of the format must do.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct TypedEvent {
    id: Option<String>,
    call: Option<String>,
    at: Timestamp,
    #[serde(rename = "type")]
    kind: String,
    direction: Option<String>,
    channel: Option<String>,
    from: Option<String>,
    to: Option<String>,
    line: Option<String>,
    dialer: Option<bool>,
    menu: Option<String>,
    digits: Option<String>,
    queue: Option<String>,
    agent: Option<String>,
    by: Option<String>,
}

/// Reads the file whole and parses each line into a `TypedEvent`; how many.
fn parse_only(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let mut parsed = 0;
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let event: TypedEvent = serde_json::from_slice(line).unwrap();
        std::hint::black_box(&event);
        parsed += 1;
    }
    parsed
}

/// A child process of this binary; killed when dropped.
struct Child {
    process: std::process::Child,
    addr: String,
}

impl Child {
    fn server(role: &str, dir: &Path) -> Child {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, role)
            .env(PATH, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut addr = String::new();
        BufReader::new(process.stdout.take().unwrap())
            .read_line(&mut addr)
            .unwrap();
        Child {
            process,
            addr: addr.trim().to_owned(),
        }
    }

    fn pid(&self) -> u32 {
        self.process.id()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// NDJSON bodies of `per_post` events, from calls numbered from `first`.
fn bodies(calls: std::ops::Range<u64>, per_post: usize) -> Vec<String> {
    let start: Timestamp = DAY_START.parse().unwrap();
    let events: Vec<Event> = calls
        .flat_map(|n| call_events(n, start + SignedDuration::from_secs(10 * n as i64)))
        .collect();
    events
        .chunks(per_post)
        .map(|chunk| chunk.iter().map(|e| e.to_json_line() + "\n").collect())
        .collect()
}

async fn post_all(http: &reqwest::Client, url: &str, bodies: Arc<Vec<String>>, posters: usize) {
    let tasks: Vec<_> = (0..posters)
        .map(|p| {
            let (http, bodies, url) = (http.clone(), bodies.clone(), url.to_owned());
            tokio::spawn(async move {
                for body in bodies.iter().skip(p).step_by(posters) {
                    post(&http, &url, body.clone()).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

async fn post(http: &reqwest::Client, url: &str, body: String) {
    let reply = http
        .post(url)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success(), "{}", reply.status());
}

// ---- (a) durable ingest ----

async fn ingest() -> Vec<Row> {
    let mut rows = Vec::new();
    for (posters, per_post, events) in [(8, 1_000, 80_000), (1, 50, 20_000)] {
        let bodies = Arc::new(bodies(0..(events / 7 + 1) as u64, per_post));
        let bodies = Arc::new(bodies[..events / per_post].to_vec());
        let lines: Vec<&str> = bodies.iter().flat_map(|b| b.lines()).collect();
        let (mut ours, mut bare) = (Vec::new(), Vec::new());
        for run in 0..RUNS {
            let dir = temp_dir(&format!("load-ingest-{run}"));
            let server = Child::server("ours", &dir);
            let http = reqwest::Client::new();
            let base = format!("http://{}", server.addr);
            wait_healthy(&http, &base).await;
            let began = Instant::now();
            post_all(
                &http,
                &format!("{base}/api/events"),
                bodies.clone(),
                posters,
            )
            .await;
            ours.push(events as f64 / began.elapsed().as_secs_f64());
            drop(server);
            let _ = std::fs::remove_dir_all(&dir);
            bare.push(sqlite_rate(&lines, per_post, run));
        }
        println!("ingest {posters} × {per_post}: ours {ours:.0?} events/s, bare SQLite {bare:.0?}");
        rows.push(Row::new(
            format!("durable ingest, {posters} poster(s) × {per_post} events per POST (events/s)"),
            median(ours),
            median(bare),
            "SQLite insert loop, WAL, synchronous=FULL, a transaction per batch, integer ids",
        ));
    }
    rows
}

/// Events/s of a bare SQLite loop: one transaction per `batch` lines, sequential ids.
fn sqlite_rate(lines: &[&str], batch: usize, run: usize) -> f64 {
    let dir = temp_dir(&format!("load-sqlite-{run}"));
    let mut db = rusqlite::Connection::open(dir.join("bare.db")).unwrap();
    db.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .unwrap();
    db.pragma_update(None, "synchronous", "FULL").unwrap();
    db.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        [],
    )
    .unwrap();
    let began = Instant::now();
    for (b, chunk) in lines.chunks(batch).enumerate() {
        let tx = db.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO events (id, body) VALUES (?1, ?2)")
                .unwrap();
            for (i, line) in chunk.iter().enumerate() {
                insert.execute(((b * batch + i) as i64, line)).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let rate = lines.len() as f64 / began.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

// ---- (b) latency and (c) memory per idle viewer ----

/// One viewer run's figures.
struct ViewerRun {
    p50_ms: f64,
    p99_ms: f64,
    kib_per_viewer: f64,
}

async fn viewers_part(viewers: usize) -> Vec<Row> {
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        ours.push(viewer_run("ours", viewers, run).await);
        bare.push(viewer_run("bare", viewers, run).await);
    }
    let pick = |runs: &[ViewerRun], f: fn(&ViewerRun) -> f64| median(runs.iter().map(f).collect());
    let counterpart = "axum WebSocket broadcast server";
    vec![
        Row::new(
            format!("POST → every viewer p50, {viewers} viewers (ms)"),
            pick(&ours, |r| r.p50_ms),
            pick(&bare, |r| r.p50_ms),
            counterpart,
        ),
        Row::new(
            format!("POST → every viewer p99, {viewers} viewers (ms)"),
            pick(&ours, |r| r.p99_ms),
            pick(&bare, |r| r.p99_ms),
            counterpart,
        ),
        Row::new(
            format!("memory per idle viewer, {viewers} viewers (KiB)"),
            pick(&ours, |r| r.kib_per_viewer),
            pick(&bare, |r| r.kib_per_viewer),
            "the same, its first message small",
        ),
    ]
}

async fn viewer_run(role: &str, viewers: usize, run: usize) -> ViewerRun {
    let dir = temp_dir(&format!("load-viewers-{run}"));
    let server = Child::server(role, &dir);
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    wait_healthy(&http, &base).await;
    let publish = if role == "ours" {
        let url = format!("{base}/api/events");
        post_all(&http, &url, Arc::new(bodies(0..WARM_CALLS, 1_000)), 1).await;
        url
    } else {
        format!("{base}/publish")
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = status_kib(server.pid(), "VmRSS");

    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    let url = format!("ws://{}/ws", server.addr);
    let readers: Vec<_> = futures_util::stream::iter(0..viewers)
        .map(|v| connect_viewer(url.clone(), v, arrived.clone()))
        .buffer_unordered(64)
        .collect()
        .await;
    let snapshot_bytes = readers.iter().map(|(_, len)| *len).max().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = status_kib(server.pid(), "VmRSS");

    let mut samples = Vec::with_capacity(POSTS * viewers);
    for i in 0..POSTS {
        while arrivals.try_recv().is_ok() {}
        let body = format!(
            r#"{{"id":"lat-{i}","call":"lat-{i}","at":"2026-11-20T15:00:{:02}Z","type":"queued","queue":"appointments"}}"#,
            i % 60
        );
        let sent = Instant::now();
        post(&http, &publish, body).await;
        let mut seen = vec![false; viewers];
        let mut got = 0;
        while got < viewers {
            match tokio::time::timeout(Duration::from_secs(20), arrivals.recv()).await {
                Ok(Some((v, at))) if at >= sent && !seen[v] => {
                    seen[v] = true;
                    got += 1;
                    samples.push(at - sent);
                }
                Ok(Some(_)) => {}
                _ => panic!("{role}: post {i} reached {got} of {viewers} viewers"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (reader, _) in readers {
        reader.abort();
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let figures = ViewerRun {
        p50_ms: ms(samples[samples.len() / 2]),
        p99_ms: ms(samples[samples.len() * 99 / 100]),
        kib_per_viewer: (after - before) / viewers as f64,
    };
    println!(
        "{role}, {viewers} viewers: p50 {:.1} ms, p99 {:.1} ms, {:.1} KiB per viewer (snapshot {snapshot_bytes} B)",
        figures.p50_ms, figures.p99_ms, figures.kib_per_viewer
    );
    figures
}

/// Connects viewer `v`, reads its snapshot, then reports the arrival of each
/// text message; returns its reading task and the snapshot's length.
async fn connect_viewer(
    url: String,
    v: usize,
    arrived: mpsc::UnboundedSender<(usize, Instant)>,
) -> (tokio::task::JoinHandle<()>, usize) {
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let snapshot = loop {
        match socket.next().await {
            Some(Ok(tungstenite::Message::Text(text))) => break text.len(),
            Some(Ok(_)) => {}
            other => panic!("viewer {v}: {other:?}"),
        }
    };
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_text() && arrived.send((v, Instant::now())).is_err() {
                return;
            }
        }
    });
    (reader, snapshot)
}

// ---- (d) classify ----

fn classify_part() -> Vec<Row> {
    let dir = temp_dir("load-classify");
    let file = dir.join("events.ndjson");
    write_events(&file, CLASSIFY_EVENTS);
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ours.push(run_program("classify", &file));
        bare.push(run_program("parse", &file));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let rate =
        |runs: &[(f64, f64)]| median(runs.iter().map(|r| CLASSIFY_EVENTS as f64 / r.0).collect());
    let peak = |runs: &[(f64, f64)]| median(runs.iter().map(|r| r.1 / 1024.0).collect());
    println!("classify: ours {ours:.2?}, parse-only {bare:.2?} (s, peak KiB)");
    vec![
        Row::new(
            "`classify` of 1,000,000 events (events/s)",
            rate(&ours),
            rate(&bare),
            "parse each line into a typed struct",
        ),
        Row::new(
            "`classify` of 1,000,000 events, peak memory (MiB)",
            peak(&ours),
            peak(&bare),
            "the same",
        ),
    ]
}

/// `events` events of whole calls (the last one cut), one a line.
fn write_events(path: &Path, events: usize) {
    let start: Timestamp = DAY_START.parse().unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let all = (0..).flat_map(|n: u64| {
        // Calls 0.25 s apart: about ten hours of a busy day.
        call_events(n, start + SignedDuration::from_millis(250 * n as i64))
    });
    for event in all.take(events) {
        writeln!(out, "{}", event.to_json_line()).unwrap();
    }
    out.flush().unwrap();
}

/// Runs a program child on `file`: (seconds from start to exit, peak KiB).
fn run_program(role: &str, file: &Path) -> (f64, f64) {
    let began = Instant::now();
    let output = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env(PATH, file)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let secs = began.elapsed().as_secs_f64();
    assert!(output.status.success(), "{role} failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let peak = stdout
        .lines()
        .last()
        .and_then(|l| l.parse().ok())
        .unwrap_or(f64::NAN);
    (secs, peak)
}
