//! Faults and floods (issue 9), each against a real server: a WebSocket
//! client that stops reading, log injection through ids, the file-descriptor
//! limit, cross-site posts, and a graceful stop on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, WsClient, within};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wallboard::config::Config;
use wallboard::server::ServeOptions;

/// A fresh directory under the system's temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wallboard-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `n` queued calls in distinct queues from distinct callers, as NDJSON: each
/// batch changes many figures, so its deltas are large.
fn flood_batch(batch: usize, n: usize) -> String {
    (0..n)
        .map(|i| {
            json!({
                "id": format!("b{batch}-{i}"), "call": format!("b{batch}-{i}"),
                "at": format!("2026-11-20T09:{:02}:{:02}Z", batch % 60, i % 60),
                "type": "queued", "queue": format!("queue-{batch}-{i}"),
                "from": format!("+4416329{batch:03}{i:04}"),
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Opens a WebSocket by hand with a tiny receive buffer, then never reads it.
async fn non_reader(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101", "the handshake succeeds");
    stream
}

/// The value of a metric at `base`.
async fn metric_at(base: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("http://{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Item 2: a client that stops reading is dropped within the ping timeout,
/// while a client alongside keeps receiving every delta. The server runs as
/// its own process, so a busy test runtime cannot starve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_stops_reading_is_dropped() {
    // Long enough for the reading client, in a debug build on a busy machine,
    // to take each delta in time.
    const PING_TIMEOUT: Duration = Duration::from_secs(5);
    let server = Binary::start("ws", "[limits]\nws_ping_timeout_secs = 5\n", "");
    let addr: std::net::SocketAddr = server.base.parse().unwrap();
    let mut reader = WsClient::connect(&format!("ws://{addr}/ws")).await;
    let _board = non_reader(addr, "/ws").await;
    let _detail = non_reader(addr, "/ws/supervisor").await;
    within(async {
        while metric_at(&server.base, "wallboard_ws_clients").await != 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Batches of 5,000 new queues: each delta (some 6 MB) is more than the
    // kernel buffers take, so a send to a client that reads nothing waits.
    // The clock starts when the first delta reaches the reading client.
    let first_seq = reader.seq;
    let url = format!("http://{addr}/api/events");
    let status = post_to(&url, flood_batch(0, 5000), "application/x-ndjson").await;
    assert_eq!(status, 200);
    within(reader.receive()).await;
    let started = Instant::now();
    // Then smaller batches into the same queues, so deltas keep coming
    // without a debug build's server spending its cores on ever larger boards.
    let flooding = tokio::spawn(async move {
        for round in 0..10 {
            let batch: Vec<String> = (0..50)
                .map(|i| {
                    json!({
                        "id": format!("r{round}-{i}"), "call": format!("r{round}-{i}"),
                        "at": format!("2026-11-20T10:{round:02}:{:02}Z", i % 60),
                        "type": "queued", "queue": format!("queue-0-{}", i * 100 + round),
                    })
                    .to_string()
                })
                .collect();
            let status = post_to(&url, batch.join("\n"), "application/x-ndjson").await;
            assert_eq!(status, 200);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // The reading client reads all along, as a board does (checking only
    // each message's type and seq: folding 6 MB deltas in a debug build on a
    // busy machine would make it a slow reader itself).
    let (target, mut target_seen) = tokio::sync::watch::channel(u64::MAX);
    let (mut seq, mut deltas) = (reader.seq, reader.deltas);
    let mut socket = reader.into_socket();
    let reading = tokio::spawn(async move {
        #[derive(serde::Deserialize)]
        struct Head {
            r#type: String,
            seq: u64,
        }
        while seq < *target_seen.borrow() {
            let message = tokio::select! {
                message = socket.next() => message,
                _ = target_seen.changed() => continue,
            };
            let text = match message.expect("open").expect("no error") {
                Message::Text(text) => text,
                _ => continue,
            };
            let head: Head = serde_json::from_str(&text).expect("a board message");
            assert_eq!(head.r#type, "delta", "never resynced");
            assert_eq!(head.seq, seq + 1, "no delta missed");
            (seq, deltas) = (head.seq, deltas + 1);
        }
        (seq, deltas)
    });
    let deadline = started + PING_TIMEOUT + Duration::from_secs(5);
    loop {
        let clients = metric_at(&server.base, "wallboard_ws_clients").await;
        assert_ne!(clients, 0, "the reading client was dropped too");
        if clients == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "clients that read nothing are still held {:?} after the first delta",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    flooding.await.unwrap();
    let health: serde_json::Value = reqwest::get(server.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seq = health["seq"].as_u64().unwrap();
    target.send(seq).unwrap();
    let (read_seq, deltas) = within(reading).await.unwrap();
    assert_eq!(read_seq, seq);
    assert_eq!(deltas, seq - first_seq, "every delta arrived");
}

/// A child `wallboard serve` on port 0; killed when dropped.
struct Binary {
    child: Child,
    base: String,
    /// Where its stderr goes (a file: a pipe nobody reads could fill and block it).
    log: PathBuf,
}

impl Binary {
    /// Starts `sh -c "PREFIX; exec wallboard serve ..."` and reads the address it prints.
    fn start(name: &str, config: &str, prefix: &str) -> Binary {
        let dir = temp_dir(name);
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let script = format!(
            "{prefix} exec \"$0\" serve --listen 127.0.0.1:0 --data-dir \"$1/data\" \
             --clock feed --config \"$1/config.toml\""
        );
        let log = dir.join("stderr.log");
        let mut child = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_wallboard")])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the binary");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Binary { child, base, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.base)
    }

    /// Sends SIGTERM.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit (at most 20 s) and returns its success and stderr.
    fn exit(mut self) -> (bool, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = std::fs::read_to_string(&self.log).unwrap_or_default();
        (status.success(), stderr)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let stderr = std::fs::read_to_string(&self.log).unwrap_or_default();
            let status = self.child.try_wait();
            eprintln!("the server ({status:?}), its stderr:\n{stderr}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post_to(url: &str, body: String, content_type: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST")
        .status()
}

/// Item 4: an id with a newline and terminal escapes cannot forge log lines.
#[tokio::test]
async fn ids_cannot_forge_log_lines() {
    let server = Binary::start("logs", "[site]\nstale_after_minutes = 1\n", "");
    let evil = "evil\n2026-12-01T00:00:00Z ERROR wallboard: FAKE\u{1b}[31m";
    let events = [
        json!({"id": "e1", "call": evil, "at": "2026-11-20T09:00:00Z", "type": "queued", "queue": "sales\n2026-12-01T00:00:00Z ERROR wallboard: FAKE"}),
        json!({"id": "e2", "call": "later", "at": "2026-11-20T09:10:00Z", "type": "call_started"}),
    ];
    for event in events {
        let status = post_to(
            &server.url("/api/events"),
            event.to_string(),
            "application/json",
        )
        .await;
        assert_eq!(status, 200);
    }
    within(async {
        loop {
            let text = reqwest::get(server.url("/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if text.contains("wallboard_calls_expired_total 1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    server.terminate();
    let (_, stderr) = server.exit();
    assert!(stderr.contains("expired"), "the expiry is logged: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no escape byte in the log: {stderr:?}"
    );
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("2026-12-01T00:00:00Z ERROR")),
        "no forged line: {stderr}"
    );
}

/// Item 6: a process started with few descriptors still answers `/healthz`
/// while many connections are open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn few_descriptors_do_not_hang_the_server() {
    let config = "[limits]\nmax_connections_per_ip = 1000\n";
    let server = Binary::start("fds", config, "ulimit -Sn 256;");
    let addr: std::net::SocketAddr = server.base.parse().unwrap();
    let mut open = Vec::new();
    for _ in 0..400 {
        open.push(TcpStream::connect(addr).await.unwrap());
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let answer = client.get(server.url("/healthz")).send().await;
    assert!(
        matches!(&answer, Ok(r) if r.status() == 200),
        "/healthz with 400 connections open: {answer:?}"
    );
    drop(open);
}

/// Item 7: `/api/events` takes JSON and NDJSON only, and no foreign `Origin`.
#[tokio::test]
async fn cross_site_posts_are_refused() {
    let server = TestServer::start().await;
    let url = server.url("/api/events");
    let event =
        json!({"id": "x1", "call": "x", "at": "2026-11-20T09:00:00Z", "type": "call_started"})
            .to_string();
    let http = reqwest::Client::new();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = http.post(&url).body(event.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        let reply: serde_json::Value = response.json().await.unwrap();
        assert!(
            reply["error"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{reply}"
        );
    }
    let foreign = http
        .post(&url)
        .header("content-type", "application/json")
        .header("origin", "http://evil.example")
        .body(event.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let own = http
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .header("origin", server.base.as_str())
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}

/// Item 7, the same rule for Amazon Connect's route (EventBridge posts JSON
/// and no Origin); TaskRouter's form posts are signed instead.
#[tokio::test]
async fn cross_site_posts_to_the_connect_route_are_refused() {
    let config = Config::parse("[[source]]\nkind = \"connect\"\nname = \"aws\"\n", "test").unwrap();
    let server = TestServer::start_with(ServeOptions::new(config)).await;
    let url = server.url("/api/sources/connect");
    let http = reqwest::Client::new();
    let post = |content_type: &'static str, origin: Option<&str>| {
        let mut request = http
            .post(&url)
            .header("content-type", content_type)
            .body("[]");
        if let Some(origin) = origin {
            request = request.header("origin", origin.to_owned());
        }
        request.send()
    };
    assert_eq!(post("text/plain", None).await.unwrap().status(), 415);
    let foreign = post("application/json", Some("http://evil.example"));
    assert_eq!(foreign.await.unwrap().status(), 403);
    let own = post("application/json; charset=utf-8", None).await.unwrap();
    assert_eq!(own.status(), 200, "EventBridge's own posts pass");
}

/// Item 8: SIGTERM lets an in-flight request finish, closes WebSockets with
/// 1001 and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_and_closes_sockets() {
    let server = Binary::start("term", "", "");
    let clients = [
        WsClient::connect(&format!("ws://{}/ws", server.base)).await,
        WsClient::connect(&format!("ws://{}/ws", server.base)).await,
    ];
    let body = flood_batch(0, 200);
    let (first, rest) = body.split_at(body.len() / 2);
    let mut post = TcpStream::connect(&server.base).await.unwrap();
    let head = format!(
        "POST /api/events HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-ndjson\r\n\
         content-length: {}\r\n\r\n",
        server.base,
        body.len()
    );
    post.write_all(head.as_bytes()).await.unwrap();
    post.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    post.write_all(rest.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = within(post.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "in-flight POST: {reply:?}"
    );
    for client in clients {
        let code = within(close_code(client)).await;
        assert_eq!(code, Some(CloseCode::Away), "the close code");
    }
    let (success, stderr) = server.exit();
    assert!(success, "exit status: {stderr}");
}

/// Reads until a Close frame; its code, if any.
async fn close_code(client: WsClient) -> Option<CloseCode> {
    let mut socket = client.into_socket();
    while let Some(message) = socket.next().await {
        match message {
            Ok(Message::Close(frame)) => return frame.map(|f| f.code),
            Ok(_) => continue,
            Err(e) => panic!("no Close frame: {e}"),
        }
    }
    panic!("closed without a Close frame")
}

/// Item 2's other side: a client that answers pings but sends nothing else
/// stays connected well past the ping timeout.
#[tokio::test]
async fn a_quiet_client_that_answers_pings_stays() {
    let config = wallboard::config::Config::parse("[limits]\nws_ping_timeout_secs = 1\n", "t.toml")
        .expect("valid");
    let server = TestServer::start_with(wallboard::server::ServeOptions {
        clock: wallboard::hub::Clock::Feed,
        ..wallboard::server::ServeOptions::new(config)
    })
    .await;
    let mut socket = server.ws().await.into_socket();
    // Reading answers the pings (tungstenite replies by itself).
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(3500);
    let mut pings = 0;
    while let Ok(message) = tokio::time::timeout_at(quiet_until, socket.next()).await {
        match message {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(_)) => {}
            other => panic!("the connection ended: {other:?}"),
        }
    }
    assert!(pings >= 3, "pinged every third of the timeout: {pings}");
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics.contains("wallboard_ws_clients 1"), "{metrics}");
}
