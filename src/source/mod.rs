//! Sources: what turns a telephony system's records into the events of
//! events.md and feeds them through the ordinary ingest path (stored before
//! they count, duplicates dropped by id). `spec/sources.md` is the contract.
//!
//! Every source is configured by a `[[source]]` table ([`SourceConfig`]),
//! named, and reported on through its [`Status`] (`GET /api/sources`,
//! `/metrics`, the pages). A running source gets a [`Context`]: the hub to
//! ingest into, the clock, its status, its checkpoint and the shutdown signal.
//! Offline, `classify` and `replay` read the same vendor formats ([`Format`])
//! through the same mappings.

pub mod ami;
pub mod checkpoint;
pub mod config;
pub mod demo;
pub mod esl;
pub mod header;
pub mod hosted;
pub mod offline;
pub mod queue_log;
mod reconnect;
pub mod status;
mod store;
mod text;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::clock::{Clock, WallClock};
use crate::engine::IngestReport;
use crate::event::Event;
use crate::hub::Hub;
use crate::shutdown::Signal;

pub use checkpoint::Checkpoints;
pub use config::{Naming, SourceConfig, SourceSettings};
pub use reconnect::{Link, STEADY, Session, reconnect};
pub use status::{SourceState, Sources, Status};
pub use store::Stopped;

/// The input formats `classify` and `replay` read (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Our own events (events.md): NDJSON or a JSON array.
    #[default]
    Events,
    /// Asterisk `queue_log` rows, or their database export (CSV with a header).
    QueueLog,
    /// Asterisk Manager Interface event blocks (a capture or a console log).
    Ami,
    /// FreeSWITCH `event plain` blocks (mod_callcenter).
    Esl,
    /// Amazon Connect contact events: NDJSON (or an array) of EventBridge events.
    Connect,
    /// Twilio TaskRouter callbacks: one a line, JSON fields or the form body.
    #[value(name = "taskrouter")]
    Taskrouter,
}

/// A vendor record that gave no event because it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where it was: a line number, a byte offset, a block number.
    pub position: String,
    /// Why it was skipped.
    pub why: String,
}

/// What mapping some vendor records gave: events, and the records skipped.
#[derive(Debug, Default)]
pub struct Mapped {
    /// The events, valid by events.md.
    pub events: Vec<Event>,
    /// The records that could not be read.
    pub skipped: Vec<Skipped>,
}

/// A deterministic event id for the `n`th event made from one vendor record,
/// so that reading the same record again (after a restart, a reconnect or a
/// rotation) yields the same id and the store drops the repeat.
pub fn record_id(source: &str, record: &[u8], n: usize) -> String {
    format!("{source}:{:032x}:{n}", fnv1a_128(record))
}

/// FNV-1a, 128 bits: stable across builds and platforms (unlike std's hasher),
/// and wide enough that distinct records of one source never share an id.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

/// Checks an event a mapping built against events.md, exactly as
/// `POST /api/events` would (lengths, required fields), by the same parser.
pub fn checked(event: &Event) -> Result<Event, crate::event::EventError> {
    let value = serde_json::to_value(event).unwrap_or(Value::Null);
    Event::from_json(&value)
}

/// Why a running source could not hand over its events.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The store refused or stopped, or too many calls are open: nothing
    /// of the batch was applied; retry.
    #[error(transparent)]
    Store(#[from] crate::pipeline::SubmitError),
    /// The checkpoint could not be written.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] std::io::Error),
}

/// What a running source is handed.
#[derive(Clone)]
pub struct Context {
    hub: Arc<Hub>,
    status: Arc<Status>,
    naming: Arc<Naming>,
    checkpoints: Checkpoints,
    clock: Clock,
    wall: WallClock,
    shutdown: Signal,
}

impl Context {
    /// A context for the source `status` names.
    pub fn new(
        hub: Arc<Hub>,
        status: Arc<Status>,
        naming: Naming,
        checkpoints: Checkpoints,
        (clock, wall): (Clock, WallClock),
        shutdown: Signal,
    ) -> Context {
        Context {
            hub,
            status,
            naming: Arc::new(naming),
            checkpoints,
            clock,
            wall,
            shutdown,
        }
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        self.status.name()
    }

    /// How call ids and agent names are written for this source.
    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    /// The machine's time (injected, so tests can move it).
    pub fn now(&self) -> Timestamp {
        (self.wall)()
    }

    /// The site's time zone (the demo keeps office hours in it).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.hub
            .with_engine(|e| e.settings().day.time_zone().clone())
    }

    /// Whether "now" follows the feed (`--clock feed`) rather than the machine.
    pub fn feed_clock(&self) -> bool {
        self.clock == Clock::Feed
    }

    /// The source's status, to report its state and skipped records.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Resolves when the server stops.
    pub fn shutdown(&self) -> Signal {
        self.shutdown.clone()
    }

    /// Ingests events a mapping built: durable and applied when this returns
    /// `Ok`. An event that breaks events.md is skipped and counted (a mapping
    /// fed hostile input must not stop the source); a store failure is an
    /// error, and nothing of the batch was applied: retry it.
    pub async fn ingest(&self, events: Vec<Event>) -> Result<IngestReport, SourceError> {
        let mut valid = Vec::with_capacity(events.len());
        for event in &events {
            match checked(event) {
                Ok(event) => valid.push(event),
                Err(e) => self
                    .status
                    .skip(&format!("event {:?}", event.id), &e.to_string()),
            }
        }
        let valid = self.hub.without_future(valid, |event, e| {
            self.status
                .skip(&format!("event {:?}", event.id), &e.to_string())
        });
        if valid.is_empty() {
            return Ok(IngestReport::default());
        }
        let latest = valid.iter().map(|e| e.at).max();
        let queues: Vec<String> = valid.iter().filter_map(queue_of).collect();
        let report = self.hub.ingest(valid).await?;
        self.status.ingested(report.accepted, latest, queues);
        Ok(report)
    }

    /// The checkpoint saved last (file identity and offset, pending exits...).
    pub fn checkpoint(&self) -> Option<Value> {
        self.checkpoints.load(self.name())
    }

    /// Saves the checkpoint durably. Save only what the store has taken:
    /// a restart resumes here, and anything read again is dropped by id.
    pub async fn save_checkpoint(&self, value: Value) -> Result<(), SourceError> {
        Ok(self.checkpoints.save(self.name(), value).await?)
    }
}

/// The queue an event names, so a board knows which sources feed it.
pub(crate) fn queue_of(event: &Event) -> Option<String> {
    use crate::event::EventKind;
    match &event.kind {
        EventKind::Queued { queue } => Some(queue.clone()),
        EventKind::Offered { queue, .. } | EventKind::TimedOut { queue } => queue.clone(),
        _ => None,
    }
}

/// Capped exponential backoff between reconnects: 250 ms, doubling to 30 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MOST: Duration = Duration::from_secs(30);

    /// Back to the shortest wait (after a connection that worked).
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// The wait before the next try, doubling the one after it.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MOST);
        delay
    }

    /// Waits before the next try; `false` when the server is stopping instead.
    pub async fn wait(&mut self, shutdown: Signal) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = shutdown.wait() => false,
        }
    }
}

/// Starts every configured source; each runs until the server stops. In a
/// cluster (`placement`), each source that reads something runs on one node
/// at a time, under a lease, with its checkpoint in the cluster.
pub fn start_all(
    configs: &[SourceConfig],
    hub: &Arc<Hub>,
    sources: &Sources,
    checkpoints: &Checkpoints,
    clock: (Clock, WallClock),
    shutdown: &Signal,
    placement: Option<crate::cluster::placement::Placement>,
) -> Vec<tokio::task::JoinHandle<()>> {
    if let Some(placement) = placement {
        return placement.start_all(configs, hub, sources, clock, shutdown);
    }
    configs
        .iter()
        .filter_map(|config| {
            let status = sources.get(&config.name)?;
            let context = Context::new(
                hub.clone(),
                status,
                config.naming.clone(),
                checkpoints.clone(),
                clock.clone(),
                shutdown.clone(),
            );
            config.settings.start(context)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_stable_and_distinct() {
        let a = record_id("pbx", b"1700000000|c1|q|NONE|ENTERQUEUE||555|1", 0);
        assert_eq!(
            a,
            record_id("pbx", b"1700000000|c1|q|NONE|ENTERQUEUE||555|1", 0)
        );
        assert_ne!(
            a,
            record_id("pbx", b"1700000000|c1|q|NONE|ENTERQUEUE||555|1", 1)
        );
        assert_ne!(
            a,
            record_id("pbx", b"1700000001|c1|q|NONE|ENTERQUEUE||555|1", 0)
        );
        assert_ne!(
            a,
            record_id("pbx2", b"1700000000|c1|q|NONE|ENTERQUEUE||555|1", 0)
        );
        // A known value: the hash must never change, or a restart counts twice.
        assert_eq!(
            record_id("s", b"", 0),
            "s:6c62272e07bb014262b821756295c58d:0"
        );
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert_eq!(delays[0], Duration::from_millis(250));
        assert_eq!(delays[1], Duration::from_millis(500));
        assert_eq!(delays[9], Duration::from_secs(30));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(250));
    }
}
