//! Test harness: a real server on an ephemeral port, HTTP helpers, and a
//! WebSocket client that folds deltas into its own copy of the board.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wallboard::clock::Clock;
use wallboard::config::Config;
use wallboard::server::{self, ServeOptions, Server};

/// How long any wait for the server may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// The recorded journeys shared with the conformance test, one event a line.
pub const JOURNEYS: &str = include_str!("../data/journeys.ndjson");

/// A server running in this test's runtime; stops when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://ADDR`, without a trailing slash.
    pub base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), server::ServeError>>>,
}

impl TestServer {
    /// A server with the default configuration and the feed clock, so that
    /// recorded days count as "today" whatever the machine's date.
    pub async fn start() -> TestServer {
        TestServer::start_with(ServeOptions {
            clock: Clock::Feed,
            ..ServeOptions::new(Config::default())
        })
        .await
    }

    /// A server with these options on `127.0.0.1:0`.
    pub async fn start_with(options: ServeOptions) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = Server::open(options).await?;
            server
                .run(listener, async move {
                    let _ = stopped.await;
                })
                .await
        });
        TestServer {
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A server on a thread and runtime of its own, for tests that may block
    /// it: the test's timeouts still fire, and it is left behind on failure.
    pub fn start_detached() -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let options = ServeOptions {
                    clock: Clock::Feed,
                    ..ServeOptions::new(Config::default())
                };
                let server = Server::open(options).await?;
                server
                    .run(listener, async move {
                        let _ = stopped.await;
                    })
                    .await
            })
        });
        TestServer {
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: None,
        }
    }

    /// Stops the server and waits until it has shut down.
    pub async fn stop(mut self) -> Result<(), server::ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => within(task).await.expect("server task panicked"),
            None => Ok(()),
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The WebSocket URL of `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Posts a body with a content type to `/api/events`: (status, JSON reply).
    pub async fn post(&self, body: impl Into<reqwest::Body>, content_type: &str) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/api/events"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST /api/events");
        let status = response.status().as_u16();
        let text = response.text().await.expect("reply body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("reply {status} is not JSON ({e}): {text:?}"));
        (status, json)
    }

    /// Posts a JSON object or array.
    pub async fn post_json(&self, body: &str) -> (u16, Value) {
        self.post(body.to_owned(), "application/json").await
    }

    /// Posts NDJSON.
    pub async fn post_ndjson(&self, body: &str) -> (u16, Value) {
        self.post(body.to_owned(), "application/x-ndjson").await
    }

    /// Posts NDJSON that must be accepted whole; returns the reply.
    pub async fn post_ok(&self, body: &str) -> Value {
        let (status, reply) = self.post_ndjson(body).await;
        assert_eq!(status, 200, "rejected: {reply}");
        reply
    }

    /// `GET path`: (status, body text).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// `GET /api/snapshot`.
    pub async fn snapshot(&self) -> Value {
        let (status, text) = self.get("/api/snapshot").await;
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).expect("snapshot is JSON")
    }

    /// Polls `GET /api/snapshot` until `done` holds for it; fails after [`WAIT`].
    /// Polling is the only way to observe this from outside over plain HTTP.
    pub async fn snapshot_when(&self, done: impl Fn(&Value) -> bool) -> Value {
        within(async {
            loop {
                let snapshot = self.snapshot().await;
                if done(&snapshot) {
                    return snapshot;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
    }

    /// A WebSocket client on `/ws`, holding the first snapshot.
    pub async fn ws(&self) -> WsClient {
        WsClient::connect(&format!("ws://{}/ws", self.addr)).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Awaits `future`, failing the test after [`WAIT`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("timed out waiting for the server")
}

/// What a [`WsClient`] last received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A full board (the first message, or a resync).
    Snapshot,
    /// A delta, folded in.
    Delta,
}

/// A board client: the first snapshot, then every delta folded into it.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The board as folded so far, with `seq` set as the snapshot carries it.
    pub board: Value,
    /// The seq of the board.
    pub seq: u64,
    /// Deltas folded so far.
    pub deltas: u64,
    /// Snapshots received so far (the first included).
    pub snapshots: u64,
}

impl WsClient {
    /// Connects and reads the first message, which must be a snapshot.
    pub async fn connect(url: &str) -> WsClient {
        let (socket, _) = within(tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket handshake");
        let mut client = WsClient {
            socket,
            board: Value::Null,
            seq: 0,
            deltas: 0,
            snapshots: 0,
        };
        let first = within(client.receive()).await;
        assert_eq!(first, Received::Snapshot, "the first message is a snapshot");
        client
    }

    /// Reads the next board message and folds it in. A delta must carry the
    /// seq right after the board's; anything else fails the test.
    pub async fn receive(&mut self) -> Received {
        loop {
            let message = self
                .socket
                .next()
                .await
                .expect("the server closed the WebSocket")
                .expect("WebSocket error");
            let text = match message {
                Message::Text(text) => text,
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected WebSocket message {other:?}"),
            };
            let msg: Value = serde_json::from_str(&text).expect("message is JSON");
            let seq = msg["seq"].as_u64().expect("message has a seq");
            match msg["type"].as_str() {
                Some("snapshot") => {
                    assert_eq!(msg["board"]["seq"], seq, "snapshot's board carries its seq");
                    self.board = msg["board"].clone();
                    self.seq = seq;
                    self.snapshots += 1;
                    return Received::Snapshot;
                }
                Some("delta") => {
                    assert_eq!(seq, self.seq + 1, "delta seq rises by one: {text}");
                    wallboard::patch::apply(&mut self.board, &msg["patch"]);
                    self.board["seq"] = seq.into();
                    self.seq = seq;
                    self.deltas += 1;
                    return Received::Delta;
                }
                other => panic!("unknown message type {other:?}: {text}"),
            }
        }
    }

    /// Folds messages until the board reaches `seq`; fails after [`WAIT`].
    pub async fn wait_for_seq(&mut self, seq: u64) {
        within(async {
            while self.seq < seq {
                self.receive().await;
            }
        })
        .await;
        assert_eq!(self.seq, seq, "overshot the awaited seq");
    }

    /// Folds messages until `done` holds for the board; fails after [`WAIT`].
    pub async fn wait_until(&mut self, done: impl Fn(&Value) -> bool) {
        within(async {
            while !done(&self.board) {
                self.receive().await;
            }
        })
        .await;
    }

    /// Reads until the server closes the connection.
    pub async fn closed(mut self) {
        while let Some(Ok(message)) = self.socket.next().await {
            if let Message::Close(_) = message {
                continue;
            }
        }
    }

    /// The socket itself, to read what follows the board's messages (a Close frame).
    pub fn into_socket(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.socket
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// The sum of the counts in a JSON object of counts (absent: 0).
pub fn sum(counts: &Value) -> i64 {
    counts_in(counts).map(|(_, n)| n).sum()
}

/// Each (name, count) of a JSON object of counts.
pub fn counts_in(counts: &Value) -> impl Iterator<Item = (&str, i64)> {
    counts
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, n)| (name.as_str(), n.as_i64().unwrap_or(0)))
}

/// The board without the fields that move on their own (`now`, `seq`).
pub fn figures(board: &Value) -> Value {
    let mut board = board.clone();
    if let Value::Object(map) = &mut board {
        map.remove("now");
        map.remove("seq");
    }
    board
}

/// The journeys, one event a line.
pub fn journey_lines() -> Vec<&'static str> {
    JOURNEYS.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Distinct calls that an NDJSON chunk ends.
pub fn calls_ended_in(lines: &[&str]) -> i64 {
    let mut calls: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("line is JSON"))
        .filter(|v| v["type"] == "ended")
        .map(|v| v["call"].as_str().unwrap_or_default().to_owned())
        .collect();
    calls.sort();
    calls.dedup();
    calls.len() as i64
}
