//! The pipeline every event goes through: take a batch, make it durable in
//! the [`Log`], apply it in log order, and hand what the engine changed on,
//! once, to every consumer (the log's derived rows, the supervisor's ledger;
//! the publisher is woken). Without a log, batches are applied at once.
//! Lock rule: the state's mutex is never held across `.await`.

mod log;
mod replica;
mod writer;

pub use log::{Append, Log, SqliteLog};
pub use replica::{Delivered, Progress};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use tokio::sync::{Notify, oneshot};

use crate::clock::Timekeeper;
use crate::engine::{Changes, Engine, IngestReport};
use crate::event::Event;
use crate::journal::JournalError;
use crate::summaries::RecordedDays;
use crate::supervisor::Ledger;

/// Why a batch was not taken; nothing of it was applied.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// An event is dated further ahead of the machine's clock than
    /// `limits.max_future_secs`: under a feed clock it would move "now" there.
    #[error(
        "event {index}: `at` {at} is more than {max_secs} s ahead of the server's clock (limits.max_future_secs)"
    )]
    Future {
        /// 0-based position of the event in the batch.
        index: usize,
        /// Its time.
        at: Timestamp,
        /// The skew allowed, in seconds.
        max_secs: i64,
    },
    /// The batch would open more calls than `limits.max_open_calls`; retry
    /// once calls have ended or expired.
    #[error(
        "{open} calls are open and the batch would open {opening} more, beyond limits.max_open_calls ({max}); nothing of it was applied"
    )]
    OpenCalls {
        /// Calls open now.
        open: usize,
        /// Calls the batch would open.
        opening: usize,
        /// The limit.
        max: usize,
    },
    /// The log could not take it.
    #[error(transparent)]
    Store(#[from] JournalError),
    /// The cluster did not acknowledge every event (no quorum of NATS
    /// servers, or none reachable): this node applied nothing of it, though
    /// events acknowledged before the failure will be applied on every node.
    #[error("the cluster did not store the batch: {0}")]
    NotReplicated(String),
}

/// The engine and everything kept from its changes, under one lock.
pub struct State {
    /// The whole state of the site.
    pub engine: Engine,
    /// Today's finished calls for the supervisor's detail.
    pub ledger: Ledger,
    /// Changes not yet recorded as derived rows (`None`: no log records them).
    unrecorded: Option<Changes>,
    /// The days whose recorded calls changed, for the trends' cache.
    pub recorded: RecordedDays,
}

impl State {
    /// Hands what the engine changed to every consumer: the ledger now, the
    /// log at its next write. Called after every step that moves the engine.
    fn settle(&mut self) {
        let changes = self.engine.take_changes();
        self.ledger.take(self.engine.today(), &changes);
        if let Some(unrecorded) = &mut self.unrecorded {
            unrecorded.merge(changes);
        }
    }

    /// Moves the engine to now (per the clock policy) and settles.
    fn tick(&mut self, time: &Timekeeper) {
        time.tick(&mut self.engine);
        self.settle();
    }

    /// Refuses `events` if they would open calls beyond the limit.
    fn admit(&self, events: &[Event]) -> Result<(), SubmitError> {
        let max = self.engine.settings().max_open_calls;
        let (open, opening) = self.engine.open_calls_after(events);
        if opening > 0 && open + opening > max {
            return Err(SubmitError::OpenCalls { open, opening, max });
        }
        Ok(())
    }

    /// Takes the changes waiting to be recorded.
    fn take_unrecorded(&mut self) -> Changes {
        self.unrecorded
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Notes that the log recorded `derived` (the trends' cache reads it).
    fn note_recorded(&mut self, derived: &Changes) {
        self.recorded.note(derived, &self.engine);
    }

    /// Gives back changes that could not be recorded; a change made since is newer and wins.
    fn put_back(&mut self, mut older: Changes) {
        if let Some(unrecorded) = &mut self.unrecorded {
            older.merge(std::mem::take(unrecorded));
            *unrecorded = older;
        }
    }
}

/// What the front and the writer thread share.
struct Shared {
    state: Mutex<State>,
    /// The engine's `max_future`, read without its lock.
    max_future: jiff::SignedDuration,
    time: Timekeeper,
    applied: Notify,
    commits: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the engine as consistent as
        // the last completed event; carrying on beats stopping the board.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The way in for events, and the lock on the state they build.
pub struct Pipeline {
    shared: Arc<Shared>,
    /// The log's writer thread; `None` applies batches at once (memory only).
    writer: Option<writer::Writer>,
    /// In a cluster: the stream batches go to, and the thread applying it.
    replica: Option<replica::Replica>,
}

impl Pipeline {
    /// Applies every batch at once; nothing is durable.
    pub fn in_memory(engine: Engine, ledger: Ledger, time: Timekeeper) -> Pipeline {
        Pipeline {
            shared: Pipeline::shared(engine, ledger, time, None),
            writer: None,
            replica: None,
        }
    }

    /// Appends every batch to `log` (group commit) before applying it.
    /// `engine` and `ledger` hold everything the log held (see [`crate::journal::restore`]).
    pub fn durable(engine: Engine, ledger: Ledger, time: Timekeeper, log: impl Log) -> Pipeline {
        let shared = Pipeline::shared(engine, ledger, time, Some(Changes::default()));
        Pipeline {
            writer: Some(writer::Writer::spawn(shared.clone(), log)),
            shared,
            replica: None,
        }
    }

    /// A node of a cluster: publishes every batch to `stream` and applies
    /// the stream, in order, into `journal` (pruned to `retention_days`),
    /// from the sequence it records. `engine` and `ledger` hold what
    /// `journal` held; the stream is followed once [`Pipeline::take_feed`]'s
    /// sender is fed.
    pub fn replicated(
        engine: Engine,
        ledger: Ledger,
        time: Timekeeper,
        journal: crate::journal::Journal,
        retention_days: u32,
        stream: crate::cluster::stream::StreamWriter,
    ) -> Result<Pipeline, JournalError> {
        let shared = Pipeline::shared(engine, ledger, time, Some(Changes::default()));
        let replica = replica::Replica::spawn(shared.clone(), journal, retention_days, stream)?;
        Ok(Pipeline {
            shared,
            writer: None,
            replica: Some(replica),
        })
    }

    /// In a cluster, once: the stream sequence applied through and the
    /// sender the stream's follower hands messages to the applier through.
    pub fn take_feed(&self) -> Option<(u64, tokio::sync::mpsc::Sender<Vec<Delivered>>)> {
        self.replica.as_ref().and_then(|r| r.take_feed())
    }

    /// In a cluster: keeps the follower task (stopped with the pipeline) and
    /// the stream's last sequence at start, which this node catches up to.
    pub fn followed(&self, task: tokio::task::AbortHandle, target: u64) {
        if let Some(replica) = &self.replica {
            replica.followed(task, target);
        }
    }

    /// In a cluster, how far this node has applied the stream.
    pub fn progress(&self) -> Option<Progress> {
        self.replica.as_ref().map(|r| r.progress())
    }

    fn shared(
        engine: Engine,
        ledger: Ledger,
        time: Timekeeper,
        unrecorded: Option<Changes>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            max_future: engine.settings().max_future,
            state: Mutex::new(State {
                engine,
                ledger,
                unrecorded,
                recorded: RecordedDays::default(),
            }),
            time,
            applied: Notify::new(),
            commits: AtomicU64::new(0),
        })
    }

    /// Takes in a batch of valid events: durable in the log (if any) when
    /// this returns, and applied.
    pub async fn submit(&self, events: Vec<Event>) -> Result<IngestReport, SubmitError> {
        self.check_future(&events)?;
        if let Some(replica) = &self.replica {
            // Checked and timed as a single node does, then applied when the
            // stream brings the batch back (the applier wakes the publisher).
            let received = {
                let mut state = self.shared.state();
                state.tick(&self.shared.time);
                state.admit(&events)?;
                state.engine.now()
            };
            return replica.submit(events, received).await;
        }
        let report = match &self.writer {
            None => {
                let mut state = self.shared.state();
                state.tick(&self.shared.time);
                state.admit(&events)?;
                let report = state.engine.ingest(events);
                state.settle();
                report
            }
            Some(writer) => {
                let (reply, answer) = oneshot::channel();
                writer.send(writer::Request { events, reply })?;
                answer.await.map_err(|_| JournalError::Stopped)??
            }
        };
        self.shared.applied.notify_one();
        Ok(report)
    }

    /// Refuses a batch with an event dated further ahead of the machine's
    /// clock than allowed, whatever the clock policy: a replayed day is in
    /// the past, and a live feed is never ahead by more than a clock's skew.
    pub fn check_future(&self, events: &[Event]) -> Result<(), SubmitError> {
        let max = self.shared.max_future;
        let latest = (self.shared.time.wall)()
            .saturating_add(max)
            .unwrap_or(Timestamp::MAX);
        match events.iter().position(|e| e.at > latest) {
            None => Ok(()),
            Some(index) => Err(SubmitError::Future {
                index,
                at: events[index].at,
                max_secs: max.as_secs(),
            }),
        }
    }

    /// The state, locked as it is (keep it short; never across `.await`).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }

    /// The state, locked and moved to now.
    pub fn current(&self) -> MutexGuard<'_, State> {
        let mut state = self.shared.state();
        state.tick(&self.shared.time);
        state
    }

    /// Woken after batches were applied.
    pub fn applied(&self) -> &Notify {
        &self.shared.applied
    }

    /// Group commits made.
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// The clock policy.
    pub fn time(&self) -> &Timekeeper {
        &self.shared.time
    }
}
