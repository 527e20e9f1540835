//! The hub owns the engine and publishes the board. Events go in through
//! [`Hub::ingest`]: with a store, a writer thread commits every waiting batch
//! in one transaction (group commit) and only then applies them, in journal
//! order; one publisher task folds what changed within a short window into one
//! JSON Merge Patch, serializes it once and shares the bytes with every client.
//! Lock rule: the engine mutex is never held across `.await`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, mpsc};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, oneshot};

use crate::engine::{Engine, EngineSettings, IngestReport, Scope};
use crate::event::Event;
use crate::journal::{Append, Derived, Journal, JournalError};
use crate::supervisor::{self, Ledger};
use crate::{patch, snapshot};

/// Changes arriving within this window after the first go into one delta.
pub const FOLD_WINDOW: Duration = Duration::from_millis(20);
/// With no change, the board is still republished this often (the clock moves).
pub const TICK: Duration = Duration::from_secs(1);
/// Deltas a slow client may fall behind before it is resynced with a snapshot.
const BACKLOG: usize = 256;
/// Most events committed in one group.
const GROUP_EVENTS: usize = 100_000;
/// How often the writer, when idle, records derived rows and prunes.
const WRITER_IDLE: Duration = Duration::from_millis(500);
/// How often old data is pruned.
const PRUNE_EVERY: SignedDuration = SignedDuration::from_hours(1);

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// The machine's clock.
    Wall,
    /// The latest event time seen (replays of recorded days).
    Feed,
}

/// The wall clock, injectable so tests can cross midnight without waiting.
pub type WallClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The machine's clock.
pub fn system_clock() -> WallClock {
    Arc::new(Timestamp::now)
}

/// The durable store's settings.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Directory of the database.
    pub dir: PathBuf,
    /// Days of events and finished calls kept.
    pub retention_days: u32,
}

/// A published document (the board, or the supervisor's detail): its seq,
/// the value, and the serialized snapshot.
#[derive(Debug)]
pub struct Published {
    /// The last delta folded into it.
    pub seq: u64,
    /// The document without `seq`.
    pub board: Value,
    /// The snapshot JSON (the document with `seq`), serialized once and
    /// shared by every request for it.
    pub json: bytes::Bytes,
    /// Its key in a snapshot message: `board` or `detail`.
    key: &'static str,
    /// The snapshot message, built once on first use and shared by every
    /// client that connects (or resyncs) at this seq.
    message: std::sync::OnceLock<Utf8Bytes>,
}

impl Published {
    fn new(key: &'static str, seq: u64, board: Value) -> Published {
        // `seq` goes in front of the serialized object (not into a copy of it).
        let body = board.to_string();
        let json = match body.strip_prefix('{') {
            Some("}") | None => format!(r#"{{"seq":{seq}}}"#),
            Some(rest) => format!(r#"{{"seq":{seq},{rest}"#),
        };
        Published {
            seq,
            json: json.into(),
            board,
            key,
            message: std::sync::OnceLock::new(),
        }
    }

    /// The WebSocket message that hands a client this document.
    pub fn snapshot_message(&self) -> Utf8Bytes {
        self.message
            .get_or_init(|| {
                format!(
                    r#"{{"type":"snapshot","seq":{},"{}":{}}}"#,
                    self.seq,
                    self.key,
                    std::str::from_utf8(&self.json).expect("serialized JSON is UTF-8")
                )
                .into()
            })
            .clone()
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

/// One published document and its fan-out: the latest version, and a delta
/// (JSON Merge Patch, serialized once) broadcast for every change.
pub struct Feed {
    key: &'static str,
    latest: RwLock<Arc<Published>>,
    frames: broadcast::Sender<Frame>,
}

impl Feed {
    fn new(key: &'static str, value: Value) -> Feed {
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

    /// Publishes `value` as a delta if it differs from the latest.
    fn publish(&self, value: Value) {
        let previous = self.latest();
        let Some(patch) = patch::diff(&previous.board, &value) else {
            return;
        };
        let seq = previous.seq + 1;
        let text = json!({"type": "delta", "seq": seq, "patch": patch}).to_string();
        // Publish the document before the delta: a client that reads `latest`
        // after subscribing then sees either this seq or the delta to it.
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(Published::new(self.key, seq, value));
        let _ = self.frames.send(Frame {
            seq,
            text: text.into(),
        });
    }
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
    /// Group commits made.
    pub commits: AtomicU64,
}

/// What the writer thread and the hub share.
struct Core {
    engine: Mutex<Engine>,
    clock: Clock,
    wall: WallClock,
    changed: Notify,
    counters: Counters,
}

impl Core {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock leaves the engine as consistent as
        // the last completed event; carrying on beats stopping the board.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves a wall-clock engine to the current time (a feed clock moves itself).
    fn tick(&self, engine: &mut Engine) {
        if self.clock == Clock::Wall {
            engine.advance((self.wall)());
        }
    }
}

/// A batch waiting for the writer.
struct Request {
    events: Vec<Event>,
    reply: oneshot::Sender<Result<IngestReport, String>>,
}

/// The engine, the latest board, the store's writer and the fan-out to clients.
pub struct Hub {
    core: Arc<Core>,
    board: Feed,
    writer: Option<mpsc::Sender<Request>>,
    /// The writer thread, joined on drop so its last flush completes.
    writer_thread: Option<std::thread::JoinHandle<()>>,
    store: Option<StoreSettings>,
    // The supervisor's detail, published beside the board (see `supervisor.rs`).
    detail: Feed,
    ledger: Mutex<Ledger>,
    /// (board, queues) of boards with a queue filter, summed in the snapshot.
    groups: RwLock<Vec<(String, Vec<String>)>>,
}

impl Hub {
    /// A hub with no store: everything lives in memory.
    pub fn in_memory(settings: EngineSettings, clock: Clock, wall: WallClock) -> Hub {
        let start = start_time(clock, &wall, None);
        let engine = Engine::new(Arc::new(with_clock(settings, clock)), start);
        Hub::assemble(engine, clock, wall, None, None)
    }

    /// A hub over the store in `store.dir`: rebuilds the board from it before
    /// returning, then commits every batch before applying it.
    pub fn open(
        settings: EngineSettings,
        clock: Clock,
        wall: WallClock,
        store: StoreSettings,
    ) -> Result<Hub, JournalError> {
        let mut journal = Journal::open(&store.dir)?;
        let started = std::time::Instant::now();
        let now = start_time(clock, &wall, journal.latest_time()?);
        let settings = Arc::new(EngineSettings {
            dedupe_ids: false,
            track_changes: true,
            ..with_clock(settings, clock)
        });
        let mut engine = Engine::new(settings.clone(), Timestamp::UNIX_EPOCH);
        let rebuilt = rebuild(&mut engine, &journal, &store.dir, now)?;
        let replayed = rebuilt.events;
        engine.advance(now);
        // Settled calls count in today's tallies and the supervisor's ledger;
        // the ledger also takes every call the replay counted.
        let mut ledger = Ledger::default();
        ledger.roll(engine.today());
        for row in &rebuilt.settled {
            let counted = engine.count_of(row.finished_at, row.verdict.clone());
            engine.restore_settled(&row.call, &counted);
            ledger.record(&row.call, &counted);
        }
        ledger.update(&mut engine);
        let replay_time = started.elapsed();
        // Rows up to the watermark were recorded before: heal only what came
        // after it, and expiries, which no event marks.
        let mut derived = take_derived(&mut engine);
        derived.finished.retain(|(call, c)| {
            rebuilt.touched.contains(call) || c.verdict.outcome == crate::outcome::Outcome::Expired
        });
        journal.record_derived(&derived)?;
        let record_time = started.elapsed() - replay_time;
        tracing::info!(
            events = replayed,
            settled = rebuilt.settled.len(),
            calls = engine.calls_in_memory(),
            "rebuilt the board from {} in {:.2?} (replay {replay_time:.2?}, finished calls {record_time:.2?})",
            store.dir.display(),
            started.elapsed()
        );
        let (tx, rx) = mpsc::channel();
        let hub = Hub::assemble(engine, clock, wall, Some(tx), Some(store.clone()));
        *hub.ledger.lock().unwrap_or_else(|p| p.into_inner()) = ledger;
        let core = hub.core.clone();
        let mut hub = hub;
        hub.writer_thread = Some(
            std::thread::Builder::new()
                .name("journal-writer".into())
                .spawn(move || write_loop(&core, journal, &rx, &store))
                .expect("spawning the journal writer"),
        );
        Ok(hub)
    }

    fn assemble(
        engine: Engine,
        clock: Clock,
        wall: WallClock,
        writer: Option<mpsc::Sender<Request>>,
        store: Option<StoreSettings>,
    ) -> Hub {
        let board = snapshot::today(&engine);
        Hub {
            core: Arc::new(Core {
                engine: Mutex::new(engine),
                clock,
                wall,
                changed: Notify::new(),
                counters: Counters::default(),
            }),
            board: Feed::new("board", board),
            writer,
            writer_thread: None,
            store,
            detail: Feed::new("detail", json!({})),
            ledger: Mutex::new(Ledger::default()),
            groups: RwLock::new(Vec::new()),
        }
    }

    /// Counters for `/metrics`.
    pub fn counters(&self) -> &Counters {
        &self.core.counters
    }

    /// Takes in a batch of valid events: durable in the store (if any) before
    /// this returns, then applied; wakes the publisher.
    pub async fn ingest(&self, events: Vec<Event>) -> Result<IngestReport, JournalError> {
        let report = match &self.writer {
            None => {
                let mut engine = self.core.engine();
                self.core.tick(&mut engine);
                engine.ingest(events)
            }
            Some(writer) => {
                let (reply, answer) = oneshot::channel();
                writer
                    .send(Request { events, reply })
                    .map_err(|_| JournalError::Stopped)?;
                let answer = answer.await.map_err(|_| JournalError::Stopped)?;
                answer.map_err(|message| {
                    tracing::error!("journal commit failed: {message:?}");
                    JournalError::Stopped
                })?
            }
        };
        let counters = &self.core.counters;
        counters
            .accepted
            .fetch_add(report.accepted, Ordering::Relaxed);
        counters
            .duplicates
            .fetch_add(report.duplicates, Ordering::Relaxed);
        self.core.changed.notify_one();
        Ok(report)
    }

    /// Runs `f` with the engine locked (keep it short; never across `.await`).
    pub fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.core.engine())
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
    pub fn board(&self) -> &Feed {
        &self.board
    }

    /// The supervisor's detail feed: caller numbers and agent names, for
    /// supervisor routes only.
    pub fn detail(&self) -> &Feed {
        &self.detail
    }

    /// Sets the queue groups the board sums for boards with a queue filter.
    pub fn set_groups(&self, groups: Vec<(String, Vec<String>)>) {
        *self.groups.write().unwrap_or_else(|p| p.into_inner()) = groups;
    }

    /// The board of a past day as it ended (with its late corrections), from
    /// the store if there is one, else from memory; `None` if not kept.
    pub async fn past_day(&self, day: Date) -> Result<Option<Value>, JournalError> {
        let Some(store) = &self.store else {
            return Ok(self.with_engine(|e| snapshot::past_day(e, day)));
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

    /// Builds the board and the detail now and publishes what changed as deltas.
    pub fn publish(&self) {
        let groups = self
            .groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (board, detail) = {
            let mut engine = self.core.engine();
            self.core.tick(&mut engine);
            let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
            (
                snapshot::today_with_groups(&engine, &groups),
                supervisor::detail(&mut engine, &mut ledger),
            )
        };
        self.board.publish(board);
        self.detail.publish(detail);
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
                () = self.core.changed.notified() => tokio::time::sleep(FOLD_WINDOW).await,
                _ = tick.tick() => {}
            }
            self.publish();
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Closing the channel stops the writer once it has recorded what
        // changed since its last flush; wait for that, so a clean stop leaves
        // nothing for the next start to heal.
        self.writer = None;
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

/// The derived rows the engine changed since they were last taken.
fn take_derived(engine: &mut Engine) -> Derived {
    Derived {
        finished: engine
            .take_changed()
            .into_iter()
            .map(|(k, c)| (k.to_string(), c))
            .collect(),
        agents: engine.take_changed_agents(),
    }
}

fn with_clock(settings: EngineSettings, clock: Clock) -> EngineSettings {
    EngineSettings {
        feed_clock: clock == Clock::Feed,
        ..settings
    }
}

/// "Now" at start: the wall clock, or for a feed clock the latest time the store saw.
fn start_time(clock: Clock, wall: &WallClock, latest_stored: Option<Timestamp>) -> Timestamp {
    match clock {
        Clock::Wall => wall(),
        Clock::Feed => latest_stored.unwrap_or(Timestamp::UNIX_EPOCH),
    }
}

/// Events parsed per chunk handed from the reading thread to the engine.
const REPLAY_CHUNK: usize = 4096;

/// What a rebuild did: events replayed; the calls that events after the
/// derived-rows watermark touched (their recorded rows may be stale); and the
/// settled calls, counted from their rows instead of replayed.
struct Rebuilt {
    events: u64,
    touched: rustc_hash::FxHashSet<String>,
    settled: Vec<crate::journal::FinishedRow>,
}

/// Rebuilds `engine` from the store as of `now`. Calls that finished before
/// the rolling and late windows opened can no longer change: they are counted
/// from their recorded rows (one row, not all their events). Every other call
/// active since then, less `stale_after` (an unfinished call may be that
/// quiet), is replayed at the times it was applied. A second thread reads and
/// parses the store while this one feeds the engine.
fn rebuild(
    engine: &mut Engine,
    journal: &Journal,
    dir: &std::path::Path,
    now: Timestamp,
) -> Result<Rebuilt, JournalError> {
    let s = engine.settings().clone();
    let reach_back = [s.window, s.late_window.unwrap_or_default()]
        .into_iter()
        .max()
        .unwrap_or_default();
    let settled_before = now - reach_back - SignedDuration::from_hours(1);
    let horizon = settled_before - s.stale_after.unwrap_or_default();
    let watermark = journal.derived_through()?;
    let touched = journal.calls_touched_after(watermark)?;
    let today = s.day.day_of(now);
    let mut settled = Vec::new();
    for day in [today.yesterday().unwrap_or(today), today] {
        let rows = journal.finished_on(day)?;
        settled.extend(
            rows.into_iter()
                .filter(|r| r.finished_at < settled_before && !touched.contains(&r.call)),
        );
    }
    let skip: rustc_hash::FxHashSet<String> = settled.iter().map(|r| r.call.clone()).collect();
    for a in journal.agents()? {
        engine.restore_agent(a.agent, a.status, a.since, a.queues, a.reason);
    }
    let mut events = 0u64;
    let (chunks, received_chunks) = mpsc::sync_channel::<Vec<(Timestamp, Event)>>(8);
    std::thread::scope(|scope| {
        let skip = &skip;
        let reader = scope.spawn(move || {
            let reader = Journal::open_reader(dir)?;
            let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
            reader.replay_since(horizon, watermark, skip, |_, received, event| {
                chunk.push((received, event));
                if chunk.len() == REPLAY_CHUNK {
                    let _ = chunks.send(std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(REPLAY_CHUNK),
                    ));
                }
            })?;
            let _ = chunks.send(chunk);
            Ok::<_, JournalError>(())
        });
        for chunk in received_chunks {
            events += chunk.len() as u64;
            apply_in_order(engine, chunk);
        }
        reader.join().expect("the store reader does not panic")
    })?;
    Ok(Rebuilt {
        events,
        touched,
        settled,
    })
}

/// Applies replayed events as live did: each run of one applied time at that time.
fn apply_in_order(engine: &mut Engine, chunk: Vec<(Timestamp, Event)>) {
    let mut run: Vec<Event> = Vec::new();
    let mut run_at = None;
    for (received, event) in chunk {
        if run_at.is_some_and(|at| at != received) {
            engine.advance(run_at.unwrap_or(received));
            engine.ingest(std::mem::take(&mut run));
        }
        run_at = Some(received);
        run.push(event);
    }
    if let Some(at) = run_at {
        engine.advance(at);
        engine.ingest(run);
    }
}

/// The writer thread: commits waiting batches together, then applies them in
/// that order. The engine stays locked from choosing the batches' time to
/// applying them, so a replay at that recorded time decides exactly as live did.
fn write_loop(
    core: &Core,
    mut journal: Journal,
    requests: &mpsc::Receiver<Request>,
    store: &StoreSettings,
) {
    let mut last_prune = Timestamp::UNIX_EPOCH;
    loop {
        let first = match requests.recv_timeout(WRITER_IDLE) {
            Ok(request) => request,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                idle(core, &mut journal, store, &mut last_prune);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Shutting down: record what changed since the last flush.
                idle(core, &mut journal, store, &mut last_prune);
                return;
            }
        };
        let mut group = vec![first];
        let mut size = group[0].events.len();
        while size < GROUP_EVENTS {
            match requests.try_recv() {
                Ok(request) => {
                    size += request.events.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        commit_group(core, &mut journal, group);
    }
}

fn commit_group(core: &Core, journal: &mut Journal, group: Vec<Request>) {
    let mut engine = core.engine();
    core.tick(&mut engine);
    let received = engine.now();
    let derived = take_derived(&mut engine);
    let appends: Vec<Append<'_>> = group
        .iter()
        .map(|r| Append {
            events: &r.events,
            received,
        })
        .collect();
    let fresh = match journal.append(&appends, &derived) {
        Ok(fresh) => fresh,
        Err(e) => {
            engine.put_back_changed(derived.finished, derived.agents);
            drop(engine);
            let message = e.to_string();
            for request in group {
                let _ = request.reply.send(Err(message.clone()));
            }
            return;
        }
    };
    core.counters.commits.fetch_add(1, Ordering::Relaxed);
    let mut replies = Vec::with_capacity(group.len());
    for (request, fresh) in group.into_iter().zip(fresh) {
        let repeated = fresh.iter().filter(|new| !**new).count() as u64;
        let events: Vec<Event> = request
            .events
            .into_iter()
            .zip(fresh)
            .filter_map(|(event, new)| new.then_some(event))
            .collect();
        let mut report = engine.ingest(events);
        report.duplicates += repeated;
        replies.push((request.reply, report));
    }
    drop(engine);
    core.changed.notify_one();
    for (reply, report) in replies {
        let _ = reply.send(Ok(report));
    }
}

/// Records derived rows that changed without new events (expiry, late
/// corrections already committed) and prunes past retention.
fn idle(core: &Core, journal: &mut Journal, store: &StoreSettings, last_prune: &mut Timestamp) {
    let (derived, now, first_day) = {
        let mut engine = core.engine();
        let now = engine.now();
        let today = engine.today();
        let first_day = today
            .checked_sub(jiff::Span::new().days(i64::from(store.retention_days)))
            .unwrap_or(today);
        (take_derived(&mut engine), now, first_day)
    };
    if !derived.is_empty()
        && let Err(e) = journal.record_derived(&derived)
    {
        tracing::error!("recording finished calls and agents: {e}");
        // Kept for the next try: the watermark did not move past them.
        core.engine()
            .put_back_changed(derived.finished, derived.agents);
    }
    if now.duration_since(*last_prune) >= PRUNE_EVERY {
        *last_prune = now;
        let before = now - SignedDuration::from_hours(24 * i64::from(store.retention_days));
        match journal.prune(before, first_day) {
            Ok((0, 0)) => {}
            Ok((events, calls)) => {
                tracing::info!(events, calls, "pruned data older than {first_day}")
            }
            Err(e) => tracing::error!("pruning: {e}"),
        }
    }
}
