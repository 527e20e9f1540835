//! A node of a cluster (`[cluster]`): batches are published to the cluster's
//! stream and answered once acknowledged and applied here; one applier
//! thread applies the whole stream in stream order (what this node and every
//! other took), recording each chunk in the local journal (the node's cache)
//! with the stream sequence it is applied through, in one transaction.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};

use super::{Append, Shared, SqliteLog, SubmitError, writer};
use crate::cluster::stream::StreamWriter;
use crate::engine::IngestReport;
use crate::event::Event;
use crate::journal::{Journal, JournalError};

/// How long an answered batch waits to be applied here (read-your-writes);
/// past it the batch is answered all the same: it is stored in the cluster.
const APPLY_WAIT: Duration = Duration::from_secs(5);
/// How often the applier, when idle, records derived rows and prunes.
const APPLIER_IDLE: Duration = Duration::from_millis(500);
/// Chunks read ahead of the applier.
const CHUNKS_AHEAD: usize = 8;
/// Stream sequences kept of events the journal found repeated, for answers.
const REPEATS_KEPT: u64 = 1_000_000;
/// Pause before retrying a chunk the journal could not take.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// One message of the stream, decoded: its sequence, the engine time the
/// accepting node applied it at, and its event (`None`: unreadable, skipped).
#[derive(Debug)]
pub struct Delivered {
    /// Its stream sequence.
    pub seq: u64,
    /// When the accepting node applied it.
    pub received: Timestamp,
    /// The event.
    pub event: Option<Event>,
}

/// How far this node has applied the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The stream sequence applied through.
    pub applied: u64,
    /// The stream's last sequence when this node started: until it is
    /// applied, the node is catching up.
    pub target: u64,
}

impl Progress {
    /// Whether the node has applied what the stream held when it started.
    pub fn caught_up(&self) -> bool {
        self.applied >= self.target
    }
}

/// What the applier and the front share besides the state.
struct Applied {
    /// The stream sequence applied through.
    through: watch::Sender<u64>,
    /// Sequences of recent events the journal found repeated (beyond
    /// JetStream's duplicate window), so an answer counts them as duplicates.
    repeated: Mutex<BTreeSet<u64>>,
    target: AtomicU64,
    stop: AtomicBool,
}

/// The replicated way in: the stream publisher, the applier thread, and the
/// sender the stream follower feeds it through (taken once).
pub(super) struct Replica {
    stream: StreamWriter,
    applied: Arc<Applied>,
    feed: Mutex<Option<(u64, mpsc::Sender<Vec<Delivered>>)>>,
    follower: Mutex<Option<tokio::task::AbortHandle>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    /// Starts the applier over `journal`, which holds the stream through
    /// the sequence it records.
    pub fn spawn(
        shared: Arc<Shared>,
        journal: Journal,
        retention_days: u32,
        stream: StreamWriter,
    ) -> Result<Replica, JournalError> {
        let through = journal.stream_applied()?;
        let applied = Arc::new(Applied {
            through: watch::Sender::new(through),
            repeated: Mutex::new(BTreeSet::new()),
            target: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let (feed, chunks) = mpsc::channel(CHUNKS_AHEAD);
        // The single node's log: the applier records chunks through its
        // journal with the stream sequence, and it prunes the same way.
        let mut log = SqliteLog::new(journal, retention_days);
        let on_thread = applied.clone();
        let thread = std::thread::Builder::new()
            .name("stream-applier".into())
            .spawn(move || apply_loop(&shared, &mut log, chunks, &on_thread))
            .map_err(|_| JournalError::Stopped)?;
        Ok(Replica {
            stream,
            applied,
            feed: Mutex::new(Some((through, feed))),
            follower: Mutex::new(None),
            thread: Some(thread),
        })
    }

    /// The sequence to follow after and the way to the applier, once.
    pub fn take_feed(&self) -> Option<(u64, mpsc::Sender<Vec<Delivered>>)> {
        self.feed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Keeps the follower task, to stop it with the pipeline; `target` is
    /// the stream's last sequence as it started.
    pub fn followed(&self, task: tokio::task::AbortHandle, target: u64) {
        self.applied.target.store(target, Ordering::SeqCst);
        *self.follower.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
    }

    /// How far the stream is applied.
    pub fn progress(&self) -> Progress {
        Progress {
            applied: *self.applied.through.borrow(),
            target: self.applied.target.load(Ordering::SeqCst),
        }
    }

    /// Publishes a batch chosen to apply at `received`, then waits until
    /// this node applied it (bounded by [`APPLY_WAIT`]).
    pub async fn submit(
        &self,
        events: Vec<Event>,
        received: Timestamp,
    ) -> Result<IngestReport, SubmitError> {
        if events.is_empty() {
            return Ok(IngestReport::default());
        }
        let acks = self
            .stream
            .publish(&events, received)
            .await
            .map_err(|e| SubmitError::NotReplicated(e.to_string()))?;
        let last = acks.iter().map(|a| a.seq).max().unwrap_or_default();
        let mut through = self.applied.through.subscribe();
        if tokio::time::timeout(APPLY_WAIT, through.wait_for(|s| *s >= last))
            .await
            .is_err()
        {
            tracing::warn!(
                "a batch stored in the cluster through seq {last} is not applied here after {APPLY_WAIT:?}; answered all the same"
            );
        }
        let repeated = self
            .applied
            .repeated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let duplicates = acks
            .iter()
            .filter(|a| a.duplicate || repeated.contains(&a.seq))
            .count() as u64;
        Ok(IngestReport {
            accepted: acks.len() as u64 - duplicates,
            duplicates,
            ..IngestReport::default()
        })
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(task) = self
            .follower
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        // The applier stops at its next wake-up (at most `APPLIER_IDLE`)
        // after recording what changed; waiting leaves nothing to heal.
        self.applied.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn apply_loop(
    shared: &Shared,
    log: &mut SqliteLog,
    mut chunks: mpsc::Receiver<Vec<Delivered>>,
    applied: &Applied,
) {
    // A runtime of its own, for nothing but waiting on the channel with a timeout.
    let waiting = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a timer runtime");
    loop {
        if applied.stop.load(Ordering::SeqCst) {
            writer::idle(shared, log);
            return;
        }
        // The timer is made inside the runtime it belongs to.
        let next =
            waiting.block_on(async { tokio::time::timeout(APPLIER_IDLE, chunks.recv()).await });
        match next {
            Ok(Some(chunk)) => apply(shared, log, chunk, applied),
            Ok(None) => {
                writer::idle(shared, log);
                return;
            }
            Err(_) => writer::idle(shared, log),
        }
    }
}

/// A run of events the accepting node applied at one time.
struct Run {
    received: Timestamp,
    events: Vec<Event>,
    seqs: Vec<u64>,
}

/// Records a chunk in the journal with the sequence it ends at, then applies
/// it: each run at the time its node applied it, as a replay does, so every
/// node decides lateness and expiry alike. Retries until the journal takes it.
fn apply(shared: &Shared, log: &mut SqliteLog, chunk: Vec<Delivered>, applied: &Applied) {
    let done = *applied.through.borrow();
    let Some(last) = chunk.iter().map(|d| d.seq).max().filter(|s| *s > done) else {
        return;
    };
    let mut runs: Vec<Run> = Vec::new();
    for d in chunk.into_iter().filter(|d| d.seq > done) {
        let Some(event) = d.event else { continue };
        match runs.last_mut() {
            Some(run) if run.received == d.received => {
                run.events.push(event);
                run.seqs.push(d.seq);
            }
            _ => runs.push(Run {
                received: d.received,
                events: vec![event],
                seqs: vec![d.seq],
            }),
        }
    }
    loop {
        let mut state = shared.state();
        let derived = state.take_unrecorded();
        let appends: Vec<Append<'_>> = runs
            .iter()
            .map(|r| Append {
                events: &r.events,
                received: r.received,
            })
            .collect();
        match log.journal.append_applied(&appends, &derived, Some(last)) {
            Ok(fresh) => {
                // As the writer does: the trends' cache learns which days
                // the store now holds changes for.
                state.note_recorded(&derived);
                let mut repeats = Vec::new();
                for (run, fresh) in runs.into_iter().zip(fresh) {
                    state.engine.advance(run.received);
                    let mut events = Vec::with_capacity(run.events.len());
                    for ((event, seq), new) in run.events.into_iter().zip(run.seqs).zip(fresh) {
                        if new {
                            events.push(event);
                        } else {
                            repeats.push(seq);
                        }
                    }
                    // Through the state, not the engine alone, so the
                    // agents' day sees what every node applies.
                    state.ingest(events);
                }
                state.settle();
                drop(state);
                shared.commits.fetch_add(1, Ordering::Relaxed);
                if !repeats.is_empty() {
                    let mut repeated = applied
                        .repeated
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    repeated.extend(repeats);
                    *repeated = repeated.split_off(&last.saturating_sub(REPEATS_KEPT));
                }
                applied.through.send_replace(last);
                shared.applied.notify_one();
                return;
            }
            Err(e) => {
                state.put_back(derived);
                drop(state);
                tracing::error!(
                    "recording the stream through seq {last}: {e}; retrying in {RETRY_PAUSE:?}"
                );
                if applied.stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(RETRY_PAUSE);
            }
        }
    }
}
