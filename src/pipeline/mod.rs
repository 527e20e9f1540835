//! The pipeline every event goes through: take a batch, make it durable in
//! the [`Log`], apply it in log order, and hand what the engine changed on,
//! once, to every consumer (the log's derived rows, the supervisor's ledger;
//! the publisher is woken). Without a log, batches are applied at once.
//! Lock rule: the state's mutex is never held across `.await`.

mod log;
mod writer;

pub use log::{Append, Log, SqliteLog};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, oneshot};

use crate::clock::Timekeeper;
use crate::engine::{Changes, Engine, IngestReport};
use crate::event::Event;
use crate::journal::JournalError;
use crate::supervisor::Ledger;

/// The engine and everything kept from its changes, under one lock.
pub struct State {
    /// The whole state of the site.
    pub engine: Engine,
    /// Today's finished calls for the supervisor's detail.
    pub ledger: Ledger,
    /// Changes not yet recorded as derived rows (`None`: no log records them).
    unrecorded: Option<Changes>,
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

    /// Takes the changes waiting to be recorded.
    fn take_unrecorded(&mut self) -> Changes {
        self.unrecorded
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
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
}

impl Pipeline {
    /// Applies every batch at once; nothing is durable.
    pub fn in_memory(engine: Engine, ledger: Ledger, time: Timekeeper) -> Pipeline {
        Pipeline {
            shared: Pipeline::shared(engine, ledger, time, None),
            writer: None,
        }
    }

    /// Appends every batch to `log` (group commit) before applying it.
    /// `engine` and `ledger` hold everything the log held (see [`crate::journal::restore`]).
    pub fn durable(engine: Engine, ledger: Ledger, time: Timekeeper, log: impl Log) -> Pipeline {
        let shared = Pipeline::shared(engine, ledger, time, Some(Changes::default()));
        Pipeline {
            writer: Some(writer::Writer::spawn(shared.clone(), log)),
            shared,
        }
    }

    fn shared(
        engine: Engine,
        ledger: Ledger,
        time: Timekeeper,
        unrecorded: Option<Changes>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                engine,
                ledger,
                unrecorded,
            }),
            time,
            applied: Notify::new(),
            commits: AtomicU64::new(0),
        })
    }

    /// Takes in a batch of valid events: durable in the log (if any) when
    /// this returns, and applied.
    pub async fn submit(&self, events: Vec<Event>) -> Result<IngestReport, JournalError> {
        let report = match &self.writer {
            None => {
                let mut state = self.shared.state();
                state.tick(&self.shared.time);
                let report = state.engine.ingest(events);
                state.settle();
                report
            }
            Some(writer) => {
                let (reply, answer) = oneshot::channel();
                writer.send(writer::Request { events, reply })?;
                let answer = answer.await.map_err(|_| JournalError::Stopped)?;
                answer.map_err(JournalError::Commit)?
            }
        };
        self.shared.applied.notify_one();
        Ok(report)
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
