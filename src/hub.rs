//! The hub owns the engine and publishes the board: events go in through
//! [`Hub::ingest`]; one publisher task folds what changed within a short window
//! into one JSON Merge Patch, serializes it once and shares the bytes with
//! every client. Lock rule: the engine mutex is never held across `.await`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use crate::engine::{Engine, EngineSettings, IngestReport};
use crate::event::Event;
use crate::{patch, snapshot};

/// Changes arriving within this window after the first go into one delta.
pub const FOLD_WINDOW: Duration = Duration::from_millis(20);
/// With no change, the board is still republished this often (the clock moves).
pub const TICK: Duration = Duration::from_secs(1);
/// Deltas a slow client may fall behind before it is resynced with a snapshot.
const BACKLOG: usize = 256;

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// The machine's clock.
    Wall,
    /// The latest event time seen (replays of recorded days).
    Feed,
}

/// A published board: its seq, the value, and the serialized snapshot.
#[derive(Debug)]
pub struct Published {
    /// The last delta folded into it.
    pub seq: u64,
    /// The board without `seq`.
    pub board: Value,
    /// The snapshot JSON (the board with `seq`), serialized once.
    pub json: String,
}

impl Published {
    fn new(seq: u64, board: Value) -> Published {
        let mut with_seq = board.clone();
        if let Value::Object(map) = &mut with_seq {
            map.insert("seq".into(), seq.into());
        }
        Published {
            seq,
            json: with_seq.to_string(),
            board,
        }
    }

    /// The WebSocket message that hands a client this board.
    pub fn snapshot_message(&self) -> Utf8Bytes {
        format!(
            r#"{{"type":"snapshot","seq":{},"board":{}}}"#,
            self.seq, self.json
        )
        .into()
    }
}

/// A delta message, serialized once for every client.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Its seq.
    pub seq: u64,
    /// `{"type":"delta","seq":N,"patch":...}`.
    pub text: Utf8Bytes,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events accepted.
    pub accepted: AtomicU64,
    /// Duplicate events ignored.
    pub duplicates: AtomicU64,
    /// Batches rejected as invalid.
    pub rejected_batches: AtomicU64,
    /// WebSocket clients connected now.
    pub clients: AtomicU64,
    /// Snapshots sent to clients that fell behind.
    pub resyncs: AtomicU64,
}

/// The engine, the latest board, and the fan-out to clients.
pub struct Hub {
    engine: Mutex<Engine>,
    clock: Clock,
    changed: Notify,
    latest: RwLock<Arc<Published>>,
    frames: broadcast::Sender<Frame>,
    /// Counters for `/metrics`.
    pub counters: Counters,
}

impl Hub {
    /// A hub over a fresh engine.
    pub fn new(settings: EngineSettings, clock: Clock) -> Hub {
        let settings = EngineSettings {
            feed_clock: clock == Clock::Feed,
            ..settings
        };
        let start = match clock {
            Clock::Wall => Timestamp::now(),
            Clock::Feed => Timestamp::UNIX_EPOCH,
        };
        let engine = Engine::new(Arc::new(settings), start);
        let board = snapshot::today(&engine);
        Hub {
            engine: Mutex::new(engine),
            clock,
            changed: Notify::new(),
            latest: RwLock::new(Arc::new(Published::new(0, board))),
            frames: broadcast::channel(BACKLOG).0,
            counters: Counters::default(),
        }
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        // A panic while holding the lock cannot leave half an update behind
        // that matters more than stopping would, so a poisoned lock is used on.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a batch of valid events and wakes the publisher.
    pub fn ingest(&self, events: Vec<Event>) -> IngestReport {
        let report = {
            let mut engine = self.engine();
            if self.clock == Clock::Wall {
                engine.advance(Timestamp::now());
            }
            engine.ingest(events)
        };
        self.counters
            .accepted
            .fetch_add(report.accepted, Ordering::Relaxed);
        self.counters
            .duplicates
            .fetch_add(report.duplicates, Ordering::Relaxed);
        self.changed.notify_one();
        report
    }

    /// Runs `f` with the engine locked (keep it short; never across `.await`).
    pub fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.engine())
    }

    /// The latest published board.
    pub fn latest(&self) -> Arc<Published> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Subscribes to deltas. Subscribe first, then read [`Hub::latest`], so no
    /// delta falls between the snapshot and the stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.frames.subscribe()
    }

    /// The board of a past day, while it is kept; today's is [`Hub::latest`].
    pub fn past_day(&self, day: Date) -> Option<Value> {
        snapshot::past_day(&self.engine(), day)
    }

    /// Builds the board now and, if it changed, publishes it as a delta.
    pub fn publish(&self) {
        let board = {
            let mut engine = self.engine();
            if self.clock == Clock::Wall {
                engine.advance(Timestamp::now());
            }
            snapshot::today(&engine)
        };
        let previous = self.latest();
        let Some(patch) = patch::diff(&previous.board, &board) else {
            return;
        };
        let seq = previous.seq + 1;
        let text = json!({"type": "delta", "seq": seq, "patch": patch}).to_string();
        // Publish the board before the delta: a client that reads `latest`
        // after subscribing then sees either this seq or the delta to it.
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(Published::new(seq, board));
        let _ = self.frames.send(Frame {
            seq,
            text: text.into(),
        });
    }

    /// The publisher: after a change, waits out the fold window and publishes;
    /// otherwise publishes on every tick. Returns when `shutdown` resolves.
    pub async fn run_publisher(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = self.changed.notified() => tokio::time::sleep(FOLD_WINDOW).await,
                _ = tick.tick() => {}
            }
            self.publish();
        }
    }
}
