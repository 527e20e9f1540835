//! The log a batch is made durable in before it is applied: the SQLite
//! journal. A cluster's log (NATS JetStream) is not one more `Log`: there a
//! batch is applied when the stream brings it back, on every node, in stream
//! order (see `replica.rs`), and the journal is each node's cache of it.

use jiff::Timestamp;
use jiff::civil::Date;

use crate::engine::Changes;
use crate::event::Event;
use crate::journal::{Journal, JournalError, Pruner};

/// One batch to append: its events and the engine time it is applied at.
pub struct Append<'a> {
    /// The events, all valid.
    pub events: &'a [Event],
    /// The engine's now when applied.
    pub received: Timestamp,
}

/// A durable, ordered log of batches, with the rows derived from them.
pub trait Log: Send + 'static {
    /// Makes `batches` durable in this order, with the derived rows changed by
    /// every batch applied before them; returns, per batch, which events are
    /// new (a repeated id is not).
    fn append(
        &mut self,
        batches: &[Append<'_>],
        derived: &Changes,
    ) -> Result<Vec<Vec<bool>>, JournalError>;

    /// Records derived rows that changed without new events (expiry, late
    /// corrections already appended).
    fn record(&mut self, derived: &Changes) -> Result<(), JournalError>;

    /// Housekeeping while idle at engine time `now` on the site's `today`.
    fn maintain(&mut self, now: Timestamp, today: Date);
}

/// The SQLite journal with its retention.
pub struct SqliteLog {
    /// The store; a cluster node's applier also writes through it directly,
    /// recording the stream sequence with each chunk.
    pub(super) journal: Journal,
    pruner: Pruner,
}

impl SqliteLog {
    /// The journal, pruned to `retention_days`.
    pub fn new(journal: Journal, retention_days: u32) -> SqliteLog {
        SqliteLog {
            journal,
            pruner: Pruner::new(retention_days),
        }
    }
}

impl Log for SqliteLog {
    fn append(
        &mut self,
        batches: &[Append<'_>],
        derived: &Changes,
    ) -> Result<Vec<Vec<bool>>, JournalError> {
        self.journal.append(batches, derived)
    }

    fn record(&mut self, derived: &Changes) -> Result<(), JournalError> {
        self.journal.record_derived(derived)
    }

    fn maintain(&mut self, now: Timestamp, today: Date) {
        self.pruner.maybe_prune(&mut self.journal, now, today);
    }
}
