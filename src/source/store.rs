//! Storing for a running source: events and checkpoints are retried with
//! [`Backoff`] until they are written or the server stops, and a store that
//! refuses shows in the source's status (`failed`, `last_error` "store: …")
//! once, not once per retry, until it works again.

use std::fmt::Display;

use serde_json::Value;

use super::{Backoff, Context, SourceState};
use crate::engine::IngestReport;
use crate::event::Event;

/// The server stopped before the store took what was handed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is stopping")]
pub struct Stopped;

impl Context {
    /// Stores events a mapping built, retrying while the store refuses
    /// (nothing of a refused batch was applied), so a source never reads on
    /// past what the store has not taken. `Err` only when the server stops.
    pub async fn store(&self, events: Vec<Event>) -> Result<IngestReport, Stopped> {
        if events.is_empty() {
            return Ok(IngestReport::default());
        }
        self.retry("store", || self.ingest(events.clone())).await
    }

    /// Saves the checkpoint, retrying while it cannot be written; a failure
    /// shows in the status as "checkpoint: …". `Err` only when the server stops.
    pub async fn store_checkpoint(&self, value: &Value) -> Result<(), Stopped> {
        self.retry("checkpoint", || self.save_checkpoint(value.clone()))
            .await
    }

    /// Runs `attempt` until it succeeds. The first failure sets `failed` with
    /// the reason; success after failures puts back the state from before.
    async fn retry<T, E: Display, F: Future<Output = Result<T, E>>>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, Stopped> {
        let mut backoff = Backoff::default();
        let mut before: Option<SourceState> = None;
        loop {
            let error = match attempt().await {
                Ok(done) => {
                    if let Some(state) = before {
                        if state == SourceState::Failed {
                            tracing::info!(source = %self.name(), "{what} works again");
                        }
                        self.status().set_state(state, None, self.now());
                    }
                    return Ok(done);
                }
                Err(e) => format!("{what}: {e}"),
            };
            let status = self.status();
            if before.is_none() {
                let state = status.view().state;
                before = Some(state);
                if state == SourceState::Failed {
                    // No state change to log it: say it once here.
                    tracing::warn!(source = %self.name(), "{error}; retrying");
                }
            }
            status.set_state(SourceState::Failed, Some(error), self.now());
            if !backoff.wait(self.shutdown()).await {
                return Err(Stopped);
            }
        }
    }
}
