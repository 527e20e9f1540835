//! The hub: the one front the web layer and the sources talk to. Events go
//! in through `Hub::ingest` (the [`pipeline`](crate::pipeline) makes them
//! durable and applies them); the publisher task publishes a change at once,
//! folds what follows it within a short window into one delta per document,
//! and fans it out (see [`publish`](crate::publish)).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use jiff::civil::Date;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::clock::Timekeeper;
// Re-exported: sources and tests name the clock through the hub they feed.
pub use crate::clock::{Clock, WallClock, system_clock};
use crate::engine::{Engine, EngineSettings, IngestReport, Scope};
use crate::event::Event;
use crate::journal::{self, Journal, JournalError};
use crate::pipeline::{Pipeline, SqliteLog, SubmitError};
use crate::protocol::to_value;
use crate::publish::{FOLD_WINDOW, Feed, Frame, Published, TICK};
use crate::snapshot;
use crate::source::Sources;
use crate::summaries::Summaries;
use crate::supervisor::{self, Ledger};
use crate::trends::Trends;

/// The durable store's settings.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Directory of the database.
    pub dir: PathBuf,
    /// Days of events and finished calls kept.
    pub retention_days: u32,
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

/// The pipeline, the published documents and the counters.
pub struct Hub {
    pipeline: Pipeline,
    board: Feed,
    // The supervisor's detail, published beside the board (see `supervisor.rs`).
    detail: Feed,
    /// Held while building and publishing, so two publishers never race on a seq.
    publishing: Mutex<()>,
    /// A batch was applied since the last publish (read-your-writes, see [`Hub::current`]).
    pending: AtomicBool,
    counters: Counters,
    store: Option<StoreSettings>,
    /// (board, queues) of boards with a queue filter, summed in the snapshot.
    groups: RwLock<Vec<(String, Vec<String>)>>,
    /// The sources whose state the board and the detail show, and the wall
    /// clock their times are in.
    sources: RwLock<Option<(Arc<Sources>, WallClock)>>,
    /// The trends' cached daily summaries.
    summaries: Summaries,
}

impl Hub {
    /// A hub with no store: everything lives in memory.
    pub fn in_memory(settings: EngineSettings, clock: Clock, wall: WallClock) -> Hub {
        let time = Timekeeper::new(clock, wall);
        let settings = EngineSettings {
            track_changes: true,
            ..time.settings(settings)
        };
        let engine = Engine::new(Arc::new(settings), time.start_time(None));
        let mut ledger = Ledger::default();
        ledger.roll(engine.today());
        Hub::assemble(Pipeline::in_memory(engine, ledger, time), None)
    }

    /// A hub over the store in `store.dir`: rebuilds the board from it before
    /// returning, then commits every batch before applying it.
    pub fn open(
        settings: EngineSettings,
        clock: Clock,
        wall: WallClock,
        store: StoreSettings,
    ) -> Result<Hub, JournalError> {
        let time = Timekeeper::new(clock, wall);
        let (journal, engine, ledger) = Hub::restore(settings, &time, &store)?;
        let log = SqliteLog::new(journal, store.retention_days);
        Ok(Hub::assemble(
            Pipeline::durable(engine, ledger, time, log),
            Some(store),
        ))
    }

    /// A node of a cluster over its store in `store.dir` (its cache of the
    /// stream): rebuilds the board from it, then publishes every batch to
    /// `stream` and applies the stream once [`Hub::pipeline`]'s feed is followed.
    pub fn open_replicated(
        settings: EngineSettings,
        clock: Clock,
        wall: WallClock,
        store: StoreSettings,
        stream: crate::cluster::stream::StreamWriter,
    ) -> Result<Hub, JournalError> {
        let time = Timekeeper::new(clock, wall);
        let (journal, engine, ledger) = Hub::restore(settings, &time, &store)?;
        let pipeline =
            Pipeline::replicated(engine, ledger, time, journal, store.retention_days, stream)?;
        Ok(Hub::assemble(pipeline, Some(store)))
    }

    /// Opens the store and rebuilds the engine and ledger from it.
    fn restore(
        settings: EngineSettings,
        time: &Timekeeper,
        store: &StoreSettings,
    ) -> Result<(Journal, Engine, Ledger), JournalError> {
        let opening = Journal::start_open(&store.dir)?;
        let latest = match opening.journal().latest_time() {
            Ok(latest) => latest,
            Err(e) => return Err(opening.fail(e)),
        };
        let now = time.start_time(latest);
        let settings = Arc::new(EngineSettings {
            dedupe_ids: false,
            track_changes: true,
            ..time.settings(settings)
        });
        journal::restore(opening, &store.dir, settings, now)
    }

    /// The pipeline (a cluster node follows the stream into it).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    fn assemble(pipeline: Pipeline, store: Option<StoreSettings>) -> Hub {
        let board = snapshot::today(&pipeline.state().engine);
        Hub {
            summaries: Summaries::new(store.clone()),
            pipeline,
            board: Feed::new("board", board),
            detail: Feed::new("detail", json!({})),
            publishing: Mutex::new(()),
            pending: AtomicBool::new(false),
            counters: Counters::default(),
            store,
            groups: RwLock::new(Vec::new()),
            sources: RwLock::new(None),
        }
    }

    /// The store's settings, if there is one.
    pub fn store(&self) -> Option<&StoreSettings> {
        self.store.as_ref()
    }

    /// Waits until the store's derived rows (finished calls, agents) hold
    /// every change applied before this call: an empty batch through the
    /// writer records them in its commit, as every batch does.
    pub async fn record_derived(&self) -> Result<(), SubmitError> {
        self.pipeline.submit(Vec::new()).await.map(|_| ())
    }

    /// Counters for `/metrics`.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Group commits made.
    pub fn commits(&self) -> u64 {
        self.pipeline.commits()
    }

    /// Takes in a batch of valid events: durable in the store (if any) before
    /// this returns, then applied; wakes the publisher.
    pub async fn ingest(&self, events: Vec<Event>) -> Result<IngestReport, SubmitError> {
        let report = self.pipeline.submit(events).await?;
        // Set once applied, before answering: a read after this reply publishes first.
        self.pending.store(true, Ordering::SeqCst);
        let counters = &self.counters;
        counters
            .accepted
            .fetch_add(report.accepted, Ordering::Relaxed);
        counters
            .duplicates
            .fetch_add(report.duplicates, Ordering::Relaxed);
        Ok(report)
    }

    /// `events` without those dated too far ahead of the machine's clock
    /// (see [`SubmitError::Future`]); `skip` is told of each one dropped.
    /// Sources drop them and carry on, where a client posting gets a 400.
    pub fn without_future(
        &self,
        mut events: Vec<Event>,
        mut skip: impl FnMut(&Event, &SubmitError),
    ) -> Vec<Event> {
        events.retain(
            |event| match self.pipeline.check_future(std::slice::from_ref(event)) {
                Ok(()) => true,
                Err(e) => {
                    skip(event, &e);
                    false
                }
            },
        );
        events
    }

    /// Runs `f` with the engine locked (keep it short; never across `.await`).
    pub fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.pipeline.state().engine)
    }

    /// The latest published board.
    pub fn latest(&self) -> Arc<Published> {
        self.board.latest()
    }

    /// Subscribes to deltas. Subscribe first, then read [`Hub::latest`], so no
    /// delta falls between the snapshot and the stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.board.subscribe()
    }

    /// The board's feed.
    pub fn board_feed(&self) -> &Feed {
        &self.board
    }

    /// The supervisor's detail feed: caller numbers and agent names, for
    /// supervisor routes only. Publishing builds the detail only while a
    /// client is subscribed to it, so this publishes the board and the
    /// detail first (one state, consistent seqs): its latest is current.
    pub fn detail_feed(&self) -> &Feed {
        let _publishing = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        self.publish_locked(true);
        &self.detail
    }

    /// Sets the queue groups the board sums for boards with a queue filter.
    pub fn set_groups(&self, groups: Vec<(String, Vec<String>)>) {
        *self.groups.write().unwrap_or_else(|p| p.into_inner()) = groups;
    }

    /// Sets the sources whose state is published (`feeds_down` on the board,
    /// `sources` in the detail); `wall` is the clock of their times.
    pub fn set_sources(&self, sources: Arc<Sources>, wall: WallClock) {
        *self.sources.write().unwrap_or_else(|p| p.into_inner()) = Some((sources, wall));
    }

    /// The board of a past day as it ended (with its late corrections), from
    /// memory while the engine holds the day, else from the store if there
    /// is one; `None` if not kept.
    pub async fn past_day(&self, day: Date) -> Result<Option<Value>, JournalError> {
        // Days the engine still holds are exact in memory (late corrections
        // in), while the store's rows lag until the writer records them.
        let held = self.with_engine(|e| snapshot::past_day(e, day));
        let Some(store) = self.store.as_ref().filter(|_| held.is_none()) else {
            return Ok(held);
        };
        let dir = store.dir.clone();
        let rows = tokio::task::spawn_blocking(move || {
            let reader = Journal::open_reader(&dir)?;
            if !reader.has_day(day)? {
                return Ok(None);
            }
            reader.finished_on(day).map(Some)
        })
        .await
        .map_err(|_| JournalError::Stopped)??;
        let Some(rows) = rows else { return Ok(None) };
        Ok(Some(self.with_engine(|engine| {
            let mut scope = Scope::default();
            for row in rows {
                let counted = engine.count_of(row.finished_at, row.verdict);
                scope.apply(&counted, 1, engine.settings());
            }
            snapshot::past_board(engine, day, &scope)
        })))
    }

    /// The trends of the `span_days` days before today and today so far
    /// (see [`crate::summaries`]).
    pub async fn trends(&self, span_days: u32) -> Result<Trends, JournalError> {
        self.summaries.trends(&self.pipeline, span_days).await
    }

    /// Builds the board (and the detail, if watched) now and publishes what
    /// changed as deltas.
    pub fn publish(&self) {
        let _publishing = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        self.publish_locked(self.detail.watched());
    }

    /// The board with every batch answered so far in it: publishes first if
    /// one was applied since the last publish, so that seq and the deltas
    /// stay consistent with what is served.
    pub fn current(&self) -> Arc<Published> {
        self.catch_up();
        self.latest()
    }

    /// Publishes now if a batch was applied since the last publish; else
    /// waits for a publish under way (it may hold the batch a reader just wrote).
    pub fn catch_up(&self) {
        let _publishing = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        if self.pending.load(Ordering::SeqCst) {
            self.publish_locked(self.detail.watched());
        }
    }

    /// Publishes, with the detail if `detail` (else it keeps its last
    /// version and seq); the caller holds `publishing`.
    fn publish_locked(&self, detail: bool) {
        // Cleared before reading the state: a batch applied after this read
        // sets it again, and the next reader publishes it.
        self.pending.store(false, Ordering::SeqCst);
        let groups = self
            .groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (mut board, mut detail) = {
            let mut state = self.pipeline.current();
            let state = &mut *state;
            // The ledger took every counted call as it was applied; only the
            // document is skipped while nobody watches it.
            let detail = detail.then(|| supervisor::detail(&state.engine, &mut state.ledger));
            (snapshot::today_board(&state.engine, &groups), detail)
        };
        let sources = self
            .sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((sources, wall)) = sources {
            let now = wall();
            board.feeds_down = sources.feeds_down(now);
            if let Some(detail) = detail.as_mut() {
                detail["sources"] = supervisor::sources(&sources.views(), now);
            }
        }
        self.board.publish(to_value(&board));
        if let Some(detail) = detail {
            self.detail.publish(detail);
        }
    }

    /// The publisher: publishes a change at once, unless one went out less
    /// than the fold window ago (then at the window's end, with all that
    /// came in the meantime); otherwise publishes on every tick. Returns
    /// when `shutdown` resolves.
    pub async fn run_publisher(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let sources = self
            .sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // Without sources, a Notify never notified.
        let sources_changed = sources.map(|(s, _)| s.changed()).unwrap_or_default();
        // When the last publish for a change began: an isolated event goes
        // out at once, while a storm still makes one delta per window.
        let mut changed_at = tokio::time::Instant::now() - FOLD_WINDOW;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                // A source went down or came back: boards show it now, not on the next tick.
                () = sources_changed.notified() => {}
                () = self.pipeline.applied().notified() => {
                    tokio::time::sleep_until(changed_at + FOLD_WINDOW).await;
                    changed_at = tokio::time::Instant::now();
                }
                _ = tick.tick() => {}
            }
            self.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{Layout, parse_batch};

    fn hub() -> Hub {
        Hub::in_memory(EngineSettings::default(), Clock::Feed, system_clock())
    }

    /// Nobody watching: the detail is not built (its seq stays), yet a
    /// supervisor who comes after the calls sees what one watching all
    /// along sees, since the ledger took every call as it was applied.
    #[tokio::test]
    async fn the_detail_is_built_only_while_watched_and_whole_when_asked() {
        let journeys = include_str!("../tests/data/journeys.ndjson");
        let events = parse_batch(journeys.as_bytes(), Layout::Ndjson).unwrap();
        let (watched, unwatched) = (hub(), hub());
        let _supervisor = watched.detail_feed().subscribe();
        for hub in [&watched, &unwatched] {
            for batch in events.chunks(5) {
                hub.ingest(batch.to_vec()).await.unwrap();
                hub.publish();
            }
        }
        assert_eq!(unwatched.detail.latest().seq, 0, "nobody watched it");
        assert!(
            unwatched.latest().seq > 1,
            "the board is published all the same"
        );
        assert!(
            watched.detail.latest().seq > 1,
            "a watched detail follows the calls"
        );

        let asked = unwatched.detail_feed().latest();
        let expected = watched.detail_feed().latest();
        assert_eq!(asked.seq, 1, "built once, when asked");
        assert_eq!(asked.document, expected.document);
        assert!(asked.document["callbacks"]["total"].as_u64() > Some(0));
        assert!(asked.document["chart"].is_object());
    }
}
