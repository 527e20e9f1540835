//! The durable store (SQLite, WAL, `synchronous=FULL`): every accepted event
//! in arrival order, with the engine time it was applied at (so a replay
//! makes the same late and expiry decisions), plus two derived tables that a
//! replay can always rebuild: each finished call as it last counted (past
//! days and exports) and each agent's latest status.

mod prune;
mod rebuild;

pub use prune::Pruner;
pub use rebuild::restore;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::Date;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::engine::Changes;
use crate::event::{AgentStatus, Event};
use crate::outcome::{CallTimes, Outcome, Verdict};

/// The schema this build writes; a store with another is refused, never rewritten.
const SCHEMA_VERSION: i64 = 3;
/// The database file's name in the data directory.
pub const DB_FILE: &str = "wallboard.sqlite3";

const SCHEMA: &str = "
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    call TEXT,
    id TEXT UNIQUE,
    body TEXT NOT NULL
);
CREATE INDEX events_call ON events(call);
CREATE INDEX events_received ON events(received_ms);
CREATE INDEX events_at ON events(at_ms);
CREATE TABLE finished_calls (
    call TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    outcome TEXT NOT NULL,
    wait_ms INTEGER,
    reached_staff INTEGER NOT NULL,
    queue TEXT,
    agent TEXT,
    caller TEXT,
    finished_at TEXT NOT NULL,
    started_at TEXT,
    queued_at TEXT,
    answered_at TEXT
);
CREATE INDEX finished_calls_day ON finished_calls(day);
CREATE INDEX finished_calls_day_finished ON finished_calls(day, finished_at, call);
CREATE TABLE agents (
    agent TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    queues TEXT NOT NULL,
    reason TEXT
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// From version 2 to 3: the times exports show, and their order.
const TO_VERSION_3: &str = "
ALTER TABLE finished_calls ADD COLUMN started_at TEXT;
ALTER TABLE finished_calls ADD COLUMN queued_at TEXT;
ALTER TABLE finished_calls ADD COLUMN answered_at TEXT;
CREATE INDEX finished_calls_day_finished ON finished_calls(day, finished_at, call);
";

/// A day's finished calls, as [`Journal::finished_row`] reads them.
const FINISHED_ON: &str = "SELECT call, finished_at, outcome, wait_ms, reached_staff, queue, agent,
    caller, started_at, queued_at, answered_at FROM finished_calls WHERE day = ?1";
/// The same in order of finishing (read along its index, never sorted whole).
const FINISHED_IN_ORDER: &str = "SELECT call, finished_at, outcome, wait_ms, reached_staff, queue,
    agent, caller, started_at, queued_at, answered_at FROM finished_calls
    INDEXED BY finished_calls_day_finished WHERE day = ?1 ORDER BY finished_at, call";

/// `meta` key: every finished call touched by events up to this seq is recorded.
const DERIVED_THROUGH: &str = "derived_through";
/// `meta` key: the cluster's stream is applied up to this sequence (`[cluster]` only).
const STREAM_APPLIED: &str = "stream_applied";

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The data directory cannot be created.
    #[error("cannot create data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused (unreadable, corrupt, full disk...).
    #[error("store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file is a database, but not one this build understands.
    #[error("store {path}: {message}; refusing to touch it")]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A stored event no longer parses (the store was edited or damaged).
    #[error("store {path}: stored event {seq} is unreadable: {message}")]
    BadRow {
        /// The database file.
        path: PathBuf,
        /// Its seq.
        seq: i64,
        /// Why.
        message: String,
    },
    /// A group commit failed; every batch in the group shares its error.
    #[error("committing events: {0}")]
    Commit(std::sync::Arc<JournalError>),
    /// The store failed SQLite's integrity check: refused, never served.
    #[error(
        "store {path} is damaged ({problem}); the server will not serve it. Restore a backup \
         (made with `wallboard store backup FILE`), or run `wallboard store rebuild --data-dir DIR` \
         to keep every event that is still readable"
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// SQLite's first complaint.
        problem: String,
    },
    /// The writer thread has stopped.
    #[error("the store's writer has stopped")]
    Stopped,
}

/// A finished call as the past-day table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRow {
    /// The call id.
    pub call: String,
    /// Its finishing time.
    pub finished_at: Timestamp,
    /// The site day it counts in.
    pub day: Date,
    /// Outcome, wait, reach, queue, agent, caller, times.
    pub verdict: Verdict,
}

/// An agent as the store last recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    /// Its name.
    pub agent: String,
    /// Its status.
    pub status: AgentStatus,
    /// Since when.
    pub since: Timestamp,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// Why it is away, if told.
    pub reason: Option<String>,
}

/// The side file that records, outside the WAL, the last seq acknowledged.
pub const ACKED_FILE: &str = "acknowledged";

/// The open store.
pub struct Journal {
    path: PathBuf,
    conn: Connection,
    /// The seq of the last event appended.
    last_seq: i64,
    /// Where each commit records its last seq, so that a restart that finds
    /// fewer events than were acknowledged says so loudly (see [`Acked`]).
    acked: Option<Acked>,
}

/// A store being opened: readable, not yet writable, while SQLite's
/// integrity check runs on its own connection and thread.
pub struct Opening {
    dir: PathBuf,
    check: std::thread::JoinHandle<Result<(), JournalError>>,
    journal: Journal,
}

impl Opening {
    /// The store, for reading while the check runs.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// `error`, met while reading, or the check's verdict if the store is
    /// damaged (a damaged page may fail any read: the check says why).
    pub fn fail(self, error: JournalError) -> JournalError {
        self.finish().err().unwrap_or(error)
    }

    /// Waits for the integrity check: the store if it passed, else
    /// [`JournalError::Damaged`]. Nothing was written to the store before.
    pub fn finish(self) -> Result<Journal, JournalError> {
        let Opening {
            dir,
            check,
            mut journal,
        } = self;
        check.join().expect("the store check does not panic")?;
        journal.compare_acknowledged(&dir);
        Ok(journal)
    }
}

/// The last seq acknowledged, kept in a small file beside the database and
/// written after each commit: it can lag the store (a crash between the two)
/// but never lead it, so a store that holds less than it says was lost.
struct Acked(std::fs::File);

impl Acked {
    fn open(dir: &Path) -> std::io::Result<(Acked, Option<i64>)> {
        use std::io::Read as _;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(ACKED_FILE))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok((Acked(file), text.trim().parse().ok()))
    }

    fn record(&self, seq: i64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        // Fixed width, so each write replaces the last one whole.
        self.0.write_all_at(format!("{seq:>20}\n").as_bytes(), 0)
    }
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Journal {
    /// Opens (creating if missing) the store in `dir`. A file that is not a
    /// wallboard store is refused, never emptied; a damaged one is refused.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        Journal::start_open(dir)?.finish()
    }

    /// Opens the store like [`Journal::open`], with its integrity check
    /// running on another thread meanwhile (it reads the whole file): the
    /// store can be read at once, and [`Opening::finish`] refuses it if the
    /// check fails.
    pub fn start_open(dir: &Path) -> Result<Opening, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(|source| JournalError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let journal = Journal {
            path,
            conn,
            last_seq: 0,
            acked: None,
        };
        journal.prepare()?;
        let check_dir = dir.to_owned();
        let check = std::thread::Builder::new()
            .name("store-check".into())
            .spawn(move || Journal::open_reader(&check_dir)?.refuse_damage())
            .map_err(|source| JournalError::Dir {
                path: dir.to_owned(),
                source,
            })?;
        let mut opening = Opening {
            dir: dir.to_owned(),
            check,
            journal,
        };
        let last_seq = opening
            .journal
            .conn
            .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
            .map_err(opening.journal.sqlite());
        match last_seq {
            Ok(seq) => {
                opening.journal.last_seq = seq;
                Ok(opening)
            }
            Err(e) => Err(opening.fail(e)),
        }
    }

    /// A second, read-only connection (for past-day reads off the writer).
    pub fn open_reader(dir: &Path) -> Result<Journal, JournalError> {
        let path = dir.join(DB_FILE);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| JournalError::Sqlite {
            path: path.clone(),
            source,
        })?;
        Ok(Journal {
            path,
            conn,
            last_seq: 0,
            acked: None,
        })
    }

    /// SQLite's `quick_check`: `Ok(None)` when the store is sound, else the
    /// first problem it names (a damaged page, an index out of step).
    pub fn quick_check(&self) -> Result<Option<String>, JournalError> {
        let e = self.sqlite();
        let mut stmt = self.conn.prepare("PRAGMA quick_check").map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        let mut problems = Vec::new();
        while let Some(row) = rows.next().map_err(&e)? {
            let line: String = row.get(0).map_err(&e)?;
            if line != "ok" {
                problems.push(line);
            }
        }
        Ok(match problems.len() {
            0 => None,
            1 => problems.pop(),
            n => Some(format!("{} and {} more problems", problems[0], n - 1)),
        })
    }

    /// Refuses a damaged store: serving one would count what it lost as
    /// never having happened, and take repeated ids again.
    fn refuse_damage(&self) -> Result<(), JournalError> {
        let problem = match self.quick_check() {
            Ok(None) => return Ok(()),
            Ok(Some(problem)) => problem,
            // A page so damaged that the check itself cannot read it.
            Err(JournalError::Sqlite { source, .. }) => source.to_string(),
            Err(other) => return Err(other),
        };
        Err(JournalError::Damaged {
            path: self.path.clone(),
            problem,
        })
    }

    /// Opens the acknowledged-seq file and logs at error when the store
    /// holds fewer events than a run before acknowledged (a damaged WAL).
    fn compare_acknowledged(&mut self, dir: &Path) {
        match Acked::open(dir) {
            Ok((acked, recorded)) => {
                if let Some(recorded) = recorded.filter(|r| *r > self.last_seq) {
                    tracing::error!(
                        "store {}: events up to seq {recorded} were acknowledged, but it holds \
                         events only up to seq {}: {} acknowledged events are lost",
                        self.path.display(),
                        self.last_seq,
                        recorded - self.last_seq
                    );
                }
                let _ = acked.record(self.last_seq);
                self.acked = Some(acked);
            }
            Err(e) => tracing::error!("cannot keep {ACKED_FILE} in {}: {e}", dir.display()),
        }
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
        |source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn prepare(&self) -> Result<(), JournalError> {
        let e = self.sqlite();
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(&e)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Foreign {
                path: self.path.clone(),
                message: format!("cannot switch to WAL (journal mode {mode})"),
            });
        }
        self.conn
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;")
            .map_err(&e)?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&e)?;
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(&e)?;
        match (version, tables) {
            (0, 0) => {
                let tx = self.conn.unchecked_transaction().map_err(&e)?;
                tx.execute_batch(SCHEMA).map_err(&e)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(&e)?;
                tx.commit().map_err(&e)
            }
            (SCHEMA_VERSION, _) => Ok(()),
            (1 | 2, _) => {
                let tx = self.conn.unchecked_transaction().map_err(&e)?;
                if version == 1 {
                    // Version 2 added the agents' pause reasons.
                    tx.execute_batch("ALTER TABLE agents ADD COLUMN reason TEXT;")
                        .map_err(&e)?;
                }
                // Version 3 added the calls' times for exports; rows written
                // before keep them empty.
                tx.execute_batch(TO_VERSION_3).map_err(&e)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(&e)?;
                tx.commit().map_err(&e)
            }
            (v, _) => Err(JournalError::Foreign {
                path: self.path.clone(),
                message: format!(
                    "it has schema version {v} and {tables} objects, this build writes version {SCHEMA_VERSION}"
                ),
            }),
        }
    }

    /// Appends batches in one transaction (one fsync for all of them), with
    /// the derived rows changed by every event appended before them.
    /// Returns, per batch, which of its events were new (not a repeated id).
    pub fn append(
        &mut self,
        batches: &[crate::pipeline::Append<'_>],
        derived: &Changes,
    ) -> Result<Vec<Vec<bool>>, JournalError> {
        self.append_applied(batches, derived, None)
    }

    /// [`Journal::append`], recording in the same transaction that the
    /// cluster's stream is applied through `stream_seq` (when given), so a
    /// restart resumes the stream exactly after what the store holds.
    pub fn append_applied(
        &mut self,
        batches: &[crate::pipeline::Append<'_>],
        derived: &Changes,
        stream_seq: Option<u64>,
    ) -> Result<Vec<Vec<bool>>, JournalError> {
        let path = self.path.clone();
        let e = |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let mut fresh = Vec::with_capacity(batches.len());
        let mut last_seq = self.last_seq;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (received_ms, at_ms, call, id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(e)?;
            for batch in batches {
                let mut new = Vec::with_capacity(batch.events.len());
                for event in batch.events {
                    let body = event.to_json_line();
                    let inserted = insert
                        .execute(params![
                            ms(batch.received),
                            ms(event.at),
                            event.call,
                            event.id,
                            body
                        ])
                        .map_err(e)?;
                    if inserted == 1 {
                        // Read at once: other inserts move `last_insert_rowid` too.
                        last_seq = tx.last_insert_rowid();
                    }
                    new.push(inserted == 1);
                }
                fresh.push(new);
            }
        }
        write_derived(&tx, derived, self.last_seq).map_err(e)?;
        if let Some(seq) = stream_seq {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![STREAM_APPLIED, i64::try_from(seq).unwrap_or(i64::MAX)],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        self.last_seq = last_seq;
        if let Some(acked) = &self.acked
            && let Err(e) = acked.record(last_seq)
        {
            tracing::error!("recording the acknowledged seq: {e}");
        }
        Ok(fresh)
    }

    /// Records derived rows, with every event appended so far applied (they
    /// may lag the events; the watermark says how far they are complete).
    pub fn record_derived(&mut self, derived: &Changes) -> Result<(), JournalError> {
        let path = self.path.clone();
        let e = |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        write_derived(&tx, derived, self.last_seq).map_err(e)?;
        tx.commit().map_err(e)
    }

    /// The calls that events after `seq` belong to.
    pub fn calls_touched_after(
        &self,
        seq: i64,
    ) -> Result<rustc_hash::FxHashSet<String>, JournalError> {
        let e = self.sqlite();
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT call FROM events WHERE seq > ?1 AND call IS NOT NULL")
            .map_err(&e)?;
        let mut rows = stmt.query([seq]).map_err(&e)?;
        let mut calls = rustc_hash::FxHashSet::default();
        while let Some(row) = rows.next().map_err(&e)? {
            calls.insert(row.get(0).map_err(&e)?);
        }
        Ok(calls)
    }

    /// Every finished call touched by events up to this seq is recorded.
    pub fn derived_through(&self) -> Result<i64, JournalError> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [DERIVED_THROUGH],
                |r| r.get(0),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(self.sqlite())
    }

    /// The cluster stream's sequence this store has applied through (0: none).
    pub fn stream_applied(&self) -> Result<u64, JournalError> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [STREAM_APPLIED],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
            .map_err(self.sqlite())
    }

    /// The latest time the store has seen: of an event, or of applying one.
    pub fn latest_time(&self) -> Result<Option<Timestamp>, JournalError> {
        self.conn
            .query_row(
                "SELECT max((SELECT max(received_ms) FROM events), (SELECT max(at_ms) FROM events))",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|v| v.map(from_ms))
            .map_err(self.sqlite())
    }

    /// Every agent's state as last recorded.
    pub fn agents(&self) -> Result<Vec<AgentRow>, JournalError> {
        let e = self.sqlite();
        let mut stmt = self
            .conn
            .prepare("SELECT agent, status, since_ms, queues, reason FROM agents")
            .map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        let mut agents = Vec::new();
        while let Some(row) = rows.next().map_err(&e)? {
            let agent: String = row.get(0).map_err(&e)?;
            let status: String = row.get(1).map_err(&e)?;
            let queues: String = row.get(3).map_err(&e)?;
            let bad = |what: &str| JournalError::Foreign {
                path: self.path.clone(),
                message: format!("agent {agent}: unreadable {what}"),
            };
            agents.push(AgentRow {
                status: AgentStatus::ALL
                    .into_iter()
                    .find(|s| s.as_str() == status)
                    .ok_or_else(|| bad("status"))?,
                since: from_ms(row.get(2).map_err(&e)?),
                queues: serde_json::from_str(&queues).map_err(|_| bad("queues"))?,
                reason: row.get(4).map_err(&e)?,
                agent,
            });
        }
        Ok(agents)
    }

    /// Calls every event of every call active since `horizon` (by its events'
    /// times or by when they were applied) or touched after the derived-rows
    /// watermark, in arrival order, as (seq, engine time applied, event).
    pub fn replay_since(
        &self,
        horizon: Timestamp,
        watermark: i64,
        skip: &rustc_hash::FxHashSet<String>,
        mut each: impl FnMut(i64, Timestamp, Event),
    ) -> Result<(), JournalError> {
        // The calls that matter, then one forward scan from the earliest of
        // their events in seq order (rowid order: no sort), filtered here.
        // Only rows from the first one that makes its call matter are read
        // to find them: a plain rowid scan, deduplicated here (SQLite would
        // walk the whole `events_call` index for a `DISTINCT call`, with a
        // row lookup per entry).
        let e = self.sqlite();
        let mut relevant: rustc_hash::FxHashSet<String> = rustc_hash::FxHashSet::default();
        let mut calls = self
            .conn
            .prepare(
                "SELECT call, received_ms, at_ms, seq FROM events
                 WHERE seq >= ?1 AND call IS NOT NULL ORDER BY seq",
            )
            .map_err(&e)?;
        let from = self.first_seq_since(horizon, watermark)?;
        let mut rows = calls.query([from]).map_err(&e)?;
        while let Some(row) = rows.next().map_err(&e)? {
            let matters = row.get::<_, i64>(1).map_err(&e)? >= ms(horizon)
                || row.get::<_, i64>(2).map_err(&e)? >= ms(horizon)
                || row.get::<_, i64>(3).map_err(&e)? > watermark;
            let Ok(Some(call)) = row.get_ref(0).map_err(&e)?.as_str_or_null() else {
                continue;
            };
            if matters && !relevant.contains(call) && !skip.contains(call) {
                relevant.insert(call.to_owned());
            }
        }
        let mut first_of = self
            .conn
            .prepare_cached("SELECT min(seq) FROM events WHERE call = ?1")
            .map_err(&e)?;
        // Agent events after the watermark are replayed too (the table holds
        // agents as of the watermark).
        let mut start = watermark + 1;
        for call in &relevant {
            let first: Option<i64> = first_of.query_row([call], |r| r.get(0)).map_err(&e)?;
            start = start.min(first.unwrap_or(i64::MAX));
        }
        let mut scan = self
            .conn
            .prepare("SELECT seq, received_ms, call, body FROM events WHERE seq >= ?1 ORDER BY seq")
            .map_err(&e)?;
        let mut rows = scan.query([start]).map_err(&e)?;
        while let Some(row) = rows.next().map_err(&e)? {
            let seq: i64 = row.get(0).map_err(&e)?;
            let wanted = match row.get_ref(2).map_err(&e)?.as_str_or_null() {
                Ok(Some(call)) => relevant.contains(call),
                Ok(None) => seq > watermark,
                Err(_) => false,
            };
            if !wanted {
                continue;
            }
            let received: i64 = row.get(1).map_err(&e)?;
            let body =
                row.get_ref(3)
                    .map_err(&e)?
                    .as_str()
                    .map_err(|err| JournalError::BadRow {
                        path: self.path.clone(),
                        seq,
                        message: err.to_string(),
                    })?;
            each(seq, from_ms(received), self.parse_row(seq, body)?);
        }
        Ok(())
    }

    /// The first seq of an event applied or happening at `horizon` or later,
    /// or after `watermark`: each from its index, which holds the seq.
    fn first_seq_since(&self, horizon: Timestamp, watermark: i64) -> Result<i64, JournalError> {
        let first = |sql: &str| -> Result<i64, JournalError> {
            self.conn
                .query_row(sql, [ms(horizon)], |r| r.get::<_, Option<i64>>(0))
                .map(|seq| seq.unwrap_or(i64::MAX))
                .map_err(self.sqlite())
        };
        // `INDEXED BY`: else SQLite walks the table in rowid order until the
        // first match, which in a store of many days reads most of it.
        let received = first(
            "SELECT min(seq) FROM events INDEXED BY events_received WHERE received_ms >= ?1",
        )?;
        let at = first("SELECT min(seq) FROM events INDEXED BY events_at WHERE at_ms >= ?1")?;
        Ok(received.min(at).min(watermark.saturating_add(1)))
    }

    fn parse_row(&self, seq: i64, body: &str) -> Result<Event, JournalError> {
        let bad = |message: String| JournalError::BadRow {
            path: self.path.clone(),
            seq,
            message,
        };
        Event::from_stored(body).map_err(|e| bad(e.to_string()))
    }

    /// The finished calls of a past day.
    pub fn finished_on(&self, day: Date) -> Result<Vec<FinishedRow>, JournalError> {
        let mut rows = Vec::new();
        self.read_finished(FINISHED_ON, day, |row| {
            rows.push(row);
            ControlFlow::Continue(())
        })?;
        Ok(rows)
    }

    /// Hands the finished calls of `day` to `each` one at a time, in order
    /// of finishing time (then call id), until it breaks: a day of any size
    /// is read in bounded memory.
    pub fn each_finished_on(
        &self,
        day: Date,
        each: impl FnMut(FinishedRow) -> ControlFlow<()>,
    ) -> Result<(), JournalError> {
        self.read_finished(FINISHED_IN_ORDER, day, each)
    }

    fn read_finished(
        &self,
        sql: &str,
        day: Date,
        mut each: impl FnMut(FinishedRow) -> ControlFlow<()>,
    ) -> Result<(), JournalError> {
        let e = self.sqlite();
        let mut stmt = self.conn.prepare(sql).map_err(&e)?;
        let mut rows = stmt.query([day.to_string()]).map_err(&e)?;
        while let Some(row) = rows.next().map_err(&e)? {
            if each(self.finished_row(row, day)?).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// One row of [`FINISHED_ON`] or [`FINISHED_IN_ORDER`].
    fn finished_row(&self, r: &rusqlite::Row<'_>, day: Date) -> Result<FinishedRow, JournalError> {
        let e = self.sqlite();
        let call: String = r.get(0).map_err(&e)?;
        let bad = |message: String| JournalError::Foreign {
            path: self.path.clone(),
            message,
        };
        let time = |i: usize, what: &str| -> Result<Option<Timestamp>, JournalError> {
            let text: Option<String> = r.get(i).map_err(&e)?;
            text.map(|t| {
                t.parse()
                    .map_err(|_| bad(format!("call {call}: bad {what} time {t:?}")))
            })
            .transpose()
        };
        let finished_at =
            time(1, "finishing")?.ok_or_else(|| bad(format!("call {call}: no finishing time")))?;
        let outcome: String = r.get(2).map_err(&e)?;
        let verdict = Verdict {
            outcome: Outcome::from_name(&outcome)
                .ok_or_else(|| bad(format!("call {call}: unknown outcome {outcome:?}")))?,
            wait_ms: r.get(3).map_err(&e)?,
            reached_staff: r.get(4).map_err(&e)?,
            queue: r.get(5).map_err(&e)?,
            agent: r.get(6).map_err(&e)?,
            caller: r.get(7).map_err(&e)?,
            times: CallTimes {
                started_at: time(8, "start")?,
                queued_at: time(9, "queueing")?,
                answered_at: time(10, "answer")?,
            },
        };
        Ok(FinishedRow {
            call,
            finished_at,
            day,
            verdict,
        })
    }

    /// Whether any finished call is recorded for `day`.
    pub fn has_day(&self, day: Date) -> Result<bool, JournalError> {
        self.conn
            .query_row(
                "SELECT 1 FROM finished_calls WHERE day = ?1 LIMIT 1",
                [day.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(self.sqlite())
    }

    /// Forgets events both applied and happening before `before` (a feed
    /// clock applies its first batch at the epoch), and days before `first_day`.
    pub fn prune(
        &mut self,
        before: Timestamp,
        first_day: Date,
    ) -> Result<(usize, usize), JournalError> {
        let e = self.sqlite();
        let events = self
            .conn
            .execute(
                "DELETE FROM events WHERE received_ms < ?1 AND at_ms < ?1",
                [ms(before)],
            )
            .map_err(&e)?;
        let calls = self
            .conn
            .execute(
                "DELETE FROM finished_calls WHERE day < ?1",
                [first_day.to_string()],
            )
            .map_err(&e)?;
        if events > 0
            && let Some(acked) = &self.acked
        {
            // Pruning may remove the newest events of an idle store: the
            // store then holds less than was acknowledged, and rightly so.
            let held: i64 = self
                .conn
                .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
                .map_err(&e)?;
            if let Err(e) = acked.record(held) {
                tracing::error!("recording the acknowledged seq: {e}");
            }
        }
        Ok((events, calls))
    }
}

/// Upserts derived rows and moves the watermark to `through` (the last
/// event seq whose effects they include).
fn write_derived(
    tx: &rusqlite::Transaction<'_>,
    derived: &Changes,
    through: i64,
) -> rusqlite::Result<()> {
    let mut agent = tx.prepare_cached(
        "INSERT INTO agents (agent, status, since_ms, queues, reason) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(agent) DO UPDATE SET status = excluded.status,
           since_ms = excluded.since_ms, queues = excluded.queues, reason = excluded.reason",
    )?;
    for (name, a) in &derived.agents {
        let queues = serde_json::to_string(&a.queues).expect("strings serialize");
        agent.execute(params![
            name,
            a.status.as_str(),
            ms(a.since),
            queues,
            a.reason
        ])?;
    }
    let finished = &derived.counted;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
        params![DERIVED_THROUGH, through],
    )?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO finished_calls (call, day, outcome, wait_ms, reached_staff, queue, agent, caller,
           finished_at, started_at, queued_at, answered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(call) DO UPDATE SET day = excluded.day, outcome = excluded.outcome,
           wait_ms = excluded.wait_ms, reached_staff = excluded.reached_staff, queue = excluded.queue,
           agent = excluded.agent, caller = excluded.caller, finished_at = excluded.finished_at,
           started_at = excluded.started_at, queued_at = excluded.queued_at,
           answered_at = excluded.answered_at",
    )?;
    for (call, c) in finished {
        let call: &str = call;
        let v = &c.verdict;
        upsert.execute(params![
            call,
            c.day.to_string(),
            v.outcome.as_str(),
            v.wait_ms,
            v.reached_staff,
            v.queue,
            v.agent,
            v.caller,
            c.finished_at.to_string(),
            v.times.started_at.map(|t| t.to_string()),
            v.times.queued_at.map(|t| t.to_string()),
            v.times.answered_at.map(|t| t.to_string()),
        ])?;
    }
    Ok(())
}
