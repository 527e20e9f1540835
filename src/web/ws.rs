//! `GET /ws` (the board) and `GET /ws/supervisor` (the supervisor's detail):
//! a snapshot, then every delta in seq order; a client that falls behind is
//! sent a fresh snapshot, one that reads nothing is closed. Per socket, one
//! loop sends and pings and a task reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::AppState;
use super::upgrade::{Socket, Upgrade};
use crate::hub::Hub;
use crate::publish::Feed;

/// Clients send almost nothing: a small read buffer (tungstenite's default is 128 KiB).
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// A message longer than this goes out as fragments this long: tungstenite's
/// write buffer keeps the capacity of the longest frame it ever held, so a
/// whole ~14 KB snapshot would stay held by every idle connection.
const FRAGMENT_BYTES: usize = 1024;
/// How often an idle connection is pinged (more often when `limits.ws_ping_timeout_secs` is short).
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// Upgrades to the board's WebSocket.
pub async fn upgrade(State(app): State<Arc<AppState>>, ws: Upgrade) -> Response {
    upgrade_to(ws, app, Hub::board_feed)
}

/// Upgrades to the supervisor's detail WebSocket (caller numbers, agent names).
pub async fn upgrade_supervisor(State(app): State<Arc<AppState>>, ws: Upgrade) -> Response {
    upgrade_to(ws, app, Hub::detail_feed)
}

fn upgrade_to(ws: Upgrade, app: Arc<AppState>, feed: fn(&Hub) -> &Feed) -> Response {
    // Largest message a client may send (`limits.ws_max_message_bytes`); more closes the connection.
    let max_message = app.config.security.limits.ws_max_message_bytes;
    // No write buffering: each frame goes to the socket as it is sent, so
    // the buffer never holds more than one fragment.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES.min(max_message))
        .write_buffer_size(0)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    ws.on_upgrade(config, move |socket| serve(socket, app, feed))
}

/// Counts a client while it is connected.
struct ClientGuard<'a>(&'a AtomicU64);

impl<'a> ClientGuard<'a> {
    fn new(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        ClientGuard(count)
    }
}

impl Drop for ClientGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the sending loop sends next.
enum Outgoing {
    /// A published message (serialized JSON, so UTF-8): whole if short, else in fragments.
    Text(Bytes),
    /// A ping or a close.
    Control(Message),
}

async fn serve(socket: Socket, app: Arc<AppState>, feed: fn(&Hub) -> &Feed) {
    let hub: &Hub = &app.hub;
    let _guard = ClientGuard::new(&hub.counters().clients);
    let feed = feed(hub);
    let (mut sink, stream) = socket.split();
    // A peer silent for this long (no pong, no message) is dropped, and a
    // send that blocks this long (a client that reads nothing) closes it.
    let peer_timeout = app.config.security.limits.ws_ping_timeout;
    // Subscribe before reading the snapshot so nothing falls between them.
    let mut frames = feed.subscribe();
    let snapshot = feed.latest();
    let mut seq = snapshot.seq;
    let first = Outgoing::Text(snapshot.snapshot_message());
    if send_within(&mut sink, first, peer_timeout).await.is_err() {
        return;
    }

    // Reading apart from sending, so a send that waits never delays a pong.
    let heard = Arc::new(Heard::new());
    let mut reading = tokio::spawn(read(stream, heard.clone()));
    let mut ping = tokio::time::interval(PING_EVERY.min(peer_timeout / 3));
    ping.reset();
    // When the oldest unanswered ping went out ([`Heard`] milliseconds).
    let mut unanswered_since: Option<u64> = None;
    let shutdown = app.shutdown.clone().wait();
    tokio::pin!(shutdown);
    loop {
        let outgoing = tokio::select! {
            frame = frames.recv() => match frame {
                Ok(frame) if frame.seq <= seq => continue,
                Ok(frame) if frame.seq == seq + 1 => {
                    seq = frame.seq;
                    Outgoing::Text(frame.text)
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    hub.counters().resyncs.fetch_add(1, Ordering::Relaxed);
                    let snapshot = feed.latest();
                    seq = snapshot.seq;
                    Outgoing::Text(snapshot.snapshot_message())
                }
                Err(RecvError::Closed) => break,
            },
            // The peer closed, erred or sent an oversized message.
            _ = &mut reading => return,
            _ = ping.tick() => {
                // Silence counts from the oldest ping not answered since (a
                // long send may have delayed the pings themselves).
                let now = heard.now();
                match unanswered_since {
                    Some(sent) if heard.at() >= sent => unanswered_since = Some(now),
                    Some(sent) if Duration::from_millis(now - sent) > peer_timeout => break,
                    Some(_) => {}
                    None => unanswered_since = Some(now),
                }
                Outgoing::Control(Message::Ping(Default::default()))
            }
            () = &mut shutdown => {
                let going_away = CloseFrame {
                    code: CloseCode::Away,
                    reason: "going away".into(),
                };
                let close = Outgoing::Control(Message::Close(Some(going_away)));
                if send_within(&mut sink, close, CLOSE_WAIT).await.is_ok() {
                    // Wait (briefly) for the peer's close, so the connection ends cleanly.
                    let _ = tokio::time::timeout(CLOSE_WAIT, &mut reading).await;
                }
                break;
            }
        };
        if send_within(&mut sink, outgoing, peer_timeout)
            .await
            .is_err()
        {
            break;
        }
    }
    reading.abort();
}

/// How long a closing connection waits for its Close frame to go out and the peer's to come back.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Sends `message`, failing if the peer has not taken it within `limit`:
/// a client that reads nothing cannot hold its task and its queued frames.
async fn send_within(
    sink: &mut SplitSink<Socket, Message>,
    message: Outgoing,
    limit: Duration,
) -> Result<(), ()> {
    match tokio::time::timeout(limit, send(sink, message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(()),
    }
}

/// Sends a message; text longer than [`FRAGMENT_BYTES`] as fragments, which
/// the client joins into the one message (a cut may fall inside a UTF-8
/// character: the message is checked whole).
async fn send(
    sink: &mut SplitSink<Socket, Message>,
    message: Outgoing,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let json = match message {
        Outgoing::Control(message) => return sink.send(message).await,
        Outgoing::Text(json) if json.len() <= FRAGMENT_BYTES => {
            let text = Utf8Bytes::try_from(json).unwrap_or_else(|_| Utf8Bytes::from_static("{}"));
            return sink.send(Message::Text(text)).await;
        }
        Outgoing::Text(json) => json,
    };
    let mut start = 0;
    while start < json.len() {
        let end = (start + FRAGMENT_BYTES).min(json.len());
        let opcode = if start == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        let fragment = Frame::message(
            json.slice(start..end),
            OpCode::Data(opcode),
            end == json.len(),
        );
        sink.feed(Message::Frame(fragment)).await?;
        start = end;
    }
    sink.flush().await
}

/// When the peer was last heard from (written by the reading task).
struct Heard {
    start: Instant,
    millis: AtomicU64,
}

impl Heard {
    fn new() -> Heard {
        Heard {
            start: Instant::now(),
            millis: AtomicU64::new(0),
        }
    }

    /// Milliseconds since `start`; a message in the same millisecond as a
    /// ping counts as its answer.
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Records a message from the peer.
    fn heard(&self) {
        self.millis.store(self.now(), Ordering::Relaxed);
    }

    /// When the peer was last heard (milliseconds since `start`).
    fn at(&self) -> u64 {
        self.millis.load(Ordering::Relaxed)
    }
}

/// Reads until the peer closes or errs; any message (pongs included) proves it alive.
async fn read(mut stream: SplitStream<Socket>, heard: Arc<Heard>) {
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Close(_) = message {
            return;
        }
        heard.heard();
    }
}
