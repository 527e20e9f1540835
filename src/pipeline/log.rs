//! The log a batch is made durable in before it is applied. Today the SQLite
//! journal; a replicated log (NATS JetStream, say) fits the same trait: its
//! `append` returns once the log acknowledged, and every node applies in log order.

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
    journal: Journal,
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
