//! Publishing: each document (the board, the supervisor's detail) is held as
//! its latest version and fanned out as deltas (JSON Merge Patch), each
//! serialized once and shared as bytes by every client. Knows no web types.

pub mod protocol;

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::patch;

/// A change is published at once; those arriving within this window after
/// it go into one delta at the window's end.
pub const FOLD_WINDOW: Duration = Duration::from_millis(20);
/// With no change, the board is still republished this often (the clock moves).
pub const TICK: Duration = Duration::from_secs(1);
/// Deltas a slow client may fall behind before it is resynced with a snapshot.
const BACKLOG: usize = 256;

/// A published document (the board, or the supervisor's detail): its seq,
/// the value, and the serialized snapshot.
#[derive(Debug)]
pub struct Published {
    /// The last delta folded into it.
    pub seq: u64,
    /// The document (board or detail) without `seq`.
    pub document: Value,
    /// The snapshot JSON (the document with `seq`), serialized once on first
    /// use (most versions are never asked for) and shared by every request.
    json: OnceLock<Bytes>,
    /// Its key in a snapshot message: `board` or `detail`.
    key: &'static str,
    /// The snapshot message (UTF-8 JSON), built once on first use and shared
    /// by every client that connects (or resyncs) at this seq.
    message: OnceLock<Bytes>,
}

impl Published {
    fn new(key: &'static str, seq: u64, document: Value) -> Published {
        Published {
            seq,
            json: OnceLock::new(),
            document,
            key,
            message: OnceLock::new(),
        }
    }

    /// The snapshot JSON: the document with `seq` (UTF-8).
    pub fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                // `seq` goes in front of the serialized object (not into a copy of it).
                let (seq, body) = (self.seq, self.document.to_string());
                let json = match body.strip_prefix('{') {
                    Some("}") | None => format!(r#"{{"seq":{seq}}}"#),
                    Some(rest) => format!(r#"{{"seq":{seq},{rest}"#),
                };
                json.into()
            })
            .clone()
    }

    /// The snapshot message that hands a client this document (UTF-8 JSON).
    pub fn snapshot_message(&self) -> Bytes {
        self.message
            .get_or_init(|| {
                let json = self.json();
                let json = std::str::from_utf8(&json).expect("serialized JSON is UTF-8");
                protocol::snapshot_text(self.key, self.seq, json).into()
            })
            .clone()
    }
}

/// A delta message, serialized once for every client.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Its seq.
    pub seq: u64,
    /// `{"type":"delta","seq":N,"patch":...}` (UTF-8 JSON).
    pub text: Bytes,
}

/// One published document and its fan-out: the latest version, and a delta
/// (JSON Merge Patch, serialized once) broadcast for every change.
pub struct Feed {
    key: &'static str,
    latest: RwLock<Arc<Published>>,
    frames: broadcast::Sender<Frame>,
}

impl Feed {
    /// A feed whose first version (seq 0) is `value`, sent under `key` in snapshots.
    pub fn new(key: &'static str, value: Value) -> Feed {
        Feed {
            key,
            latest: RwLock::new(Arc::new(Published::new(key, 0, value))),
            frames: broadcast::channel(BACKLOG).0,
        }
    }

    /// The latest published version.
    pub fn latest(&self) -> Arc<Published> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Subscribes to deltas. Subscribe first, then read [`Feed::latest`], so no
    /// delta falls between the snapshot and the stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.frames.subscribe()
    }

    /// Whether a client is subscribed to its deltas.
    pub fn watched(&self) -> bool {
        self.frames.receiver_count() > 0
    }

    /// Publishes `value` as a new seq if it differs from the latest, with a
    /// delta to it if anyone is subscribed (a client that subscribes later
    /// starts from the snapshot). Callers publish one feed from one place at
    /// a time (the hub's publish lock).
    pub fn publish(&self, value: Value) {
        let previous = self.latest();
        let seq = previous.seq + 1;
        let patch = if self.watched() {
            let Some(patch) = patch::diff(&previous.document, &value) else {
                return;
            };
            Some(patch)
        } else if previous.document == value {
            return;
        } else {
            None
        };
        // Publish the document before the delta: a client that reads `latest`
        // after subscribing then sees either this seq or the delta to it.
        let published = Arc::new(Published::new(self.key, seq, value));
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = published.clone();
        // Asked again after the write: a client that subscribed since read
        // `latest` before it, maybe, and needs the delta.
        let patch = match patch {
            None if self.watched() => patch::diff(&previous.document, &published.document),
            patch => patch,
        };
        if let Some(patch) = patch {
            let _ = self.frames.send(Frame {
                seq,
                text: protocol::delta_text(seq, patch).into(),
            });
        }
    }
}
