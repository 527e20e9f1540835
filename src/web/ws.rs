//! `GET /ws` (the board) and `GET /ws/supervisor` (the supervisor's detail):
//! a snapshot, then every delta in seq order; a client that falls behind is
//! sent a fresh snapshot. One loop per socket sends, reads and pings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::hub::Hub;
use crate::publish::Feed;

/// Clients send almost nothing: a small read buffer (tungstenite's default is 128 KiB).
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// How often an idle connection is pinged (more often when `limits.ws_ping_timeout_secs` is short).
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// Upgrades to the board's WebSocket.
pub async fn upgrade(State(app): State<Arc<AppState>>, ws: WebSocketUpgrade) -> Response {
    upgrade_to(ws, app, Hub::board_feed)
}

/// Upgrades to the supervisor's detail WebSocket (caller numbers, agent names).
pub async fn upgrade_supervisor(
    State(app): State<Arc<AppState>>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade_to(ws, app, Hub::detail_feed)
}

fn upgrade_to(ws: WebSocketUpgrade, app: Arc<AppState>, feed: fn(&Hub) -> &Feed) -> Response {
    // Largest message a client may send (`limits.ws_max_message_bytes`); more closes the connection.
    let max_message = app.config.security.limits.ws_max_message_bytes;
    ws.read_buffer_size(READ_BUFFER_BYTES.min(max_message))
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| serve(socket, app, feed))
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

/// A published message as a WebSocket text message (it was serialized as JSON, so UTF-8).
fn text(json: bytes::Bytes) -> Message {
    Message::Text(Utf8Bytes::try_from(json).unwrap_or_else(|_| Utf8Bytes::from_static("{}")))
}

async fn serve(socket: WebSocket, app: Arc<AppState>, feed: fn(&Hub) -> &Feed) {
    let hub: &Hub = &app.hub;
    let _guard = ClientGuard::new(&hub.counters().clients);
    let feed = feed(hub);
    let (mut sink, mut stream) = socket.split();
    // Subscribe before reading the snapshot so nothing falls between them.
    let mut frames = feed.subscribe();
    let snapshot = feed.latest();
    let mut seq = snapshot.seq;
    if sink.send(text(snapshot.snapshot_message())).await.is_err() {
        return;
    }

    // A peer silent for this long (no pong, no message) is dropped.
    let peer_timeout = app.config.security.limits.ws_ping_timeout;
    let mut ping = tokio::time::interval(PING_EVERY.min(peer_timeout / 3));
    ping.reset();
    let mut last_heard = Instant::now();
    let shutdown = app.shutdown.clone().wait();
    tokio::pin!(shutdown);
    loop {
        let outgoing = tokio::select! {
            frame = frames.recv() => match frame {
                Ok(frame) if frame.seq <= seq => continue,
                Ok(frame) if frame.seq == seq + 1 => {
                    seq = frame.seq;
                    text(frame.text)
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    hub.counters().resyncs.fetch_add(1, Ordering::Relaxed);
                    let snapshot = feed.latest();
                    seq = snapshot.seq;
                    text(snapshot.snapshot_message())
                }
                Err(RecvError::Closed) => break,
            },
            // Any message (pongs included) proves the peer alive; a close, an
            // error or an oversized message ends the connection.
            message = stream.next() => match message {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {
                    last_heard = Instant::now();
                    continue;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > peer_timeout {
                    break;
                }
                Message::Ping(Default::default())
            }
            () = &mut shutdown => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        };
        if sink.send(outgoing).await.is_err() {
            break;
        }
    }
}
