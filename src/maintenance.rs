//! Store maintenance, the way out when a store is damaged:
//! `wallboard store check` (SQLite's `quick_check`), `store backup FILE`
//! (SQLite's online backup, safe while the server runs) and `store rebuild`
//! (a fresh store from every event still readable; the next start derives
//! the finished calls and agents again by replaying them).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, params};

use crate::event::Event;
use crate::journal::{ACKED_FILE, DB_FILE, Journal, JournalError};

/// Events copied per query while rebuilding; a failing chunk is retried row by row.
const REBUILD_CHUNK: i64 = 1000;

/// What `store check` found.
#[derive(Debug)]
pub struct CheckReport {
    /// The database file.
    pub path: PathBuf,
    /// SQLite's first complaint, or `None` when sound.
    pub problem: Option<String>,
    /// How long the check took.
    pub took: Duration,
}

/// What `store rebuild` did.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Events copied into the new store.
    pub kept: u64,
    /// Rows that could not be read or no longer parse.
    pub unreadable: u64,
    /// Rows repeating an id already copied (a damaged unique index let them in).
    pub repeated: u64,
    /// Where the damaged store was moved.
    pub damaged_copy: PathBuf,
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
    move |source| JournalError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn read_only(path: &Path) -> Result<Connection, JournalError> {
    if !path.exists() {
        return Err(JournalError::Foreign {
            path: path.to_owned(),
            message: "there is no store here".into(),
        });
    }
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite(path))
}

/// Runs SQLite's `quick_check` on the store in `dir`.
pub fn check(dir: &Path) -> Result<CheckReport, JournalError> {
    let path = dir.join(DB_FILE);
    read_only(&path)?;
    let started = Instant::now();
    let problem = Journal::open_reader(dir)?.quick_check()?;
    Ok(CheckReport {
        path,
        problem,
        took: started.elapsed(),
    })
}

/// Copies the store in `dir` to `to` with SQLite's online backup: a
/// consistent copy even while the server writes. Refuses to overwrite.
pub fn backup(dir: &Path, to: &Path) -> Result<(), JournalError> {
    let path = dir.join(DB_FILE);
    let source = read_only(&path)?;
    if to.exists() {
        return Err(JournalError::Foreign {
            path: to.to_owned(),
            message: "already exists; choose a new file for the backup".into(),
        });
    }
    let mut copy = Connection::open(to).map_err(sqlite(to))?;
    rusqlite::backup::Backup::new(&source, &mut copy)
        .and_then(|b| b.run_to_completion(1024, Duration::ZERO, None))
        .map_err(sqlite(to))?;
    Ok(())
}

/// Rebuilds the store in `dir` from the events still readable: they go into
/// a fresh store (duplicates by id dropped), the damaged file is kept beside
/// it as `wallboard.sqlite3.damaged-EPOCH`, and the derived rows are left for
/// the next start to rebuild by replaying every event.
pub fn rebuild(dir: &Path) -> Result<RebuildReport, JournalError> {
    let path = dir.join(DB_FILE);
    let source = read_only(&path)?;
    let fresh_dir = dir.join("rebuild.partial");
    let _ = std::fs::remove_dir_all(&fresh_dir);
    drop(Journal::open(&fresh_dir)?);
    let fresh_path = fresh_dir.join(DB_FILE);
    let mut fresh = Connection::open(&fresh_path).map_err(sqlite(&fresh_path))?;
    let mut report = copy_events(&source, &path, &mut fresh, &fresh_path)?;
    drop(source);
    fresh
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(sqlite(&fresh_path))?;
    drop(fresh);
    let stamp = jiff::Timestamp::now().as_second();
    report.damaged_copy = dir.join(format!("{DB_FILE}.damaged-{stamp}"));
    swap_in(&path, &fresh_path, &report.damaged_copy)?;
    let _ = std::fs::remove_dir_all(&fresh_dir);
    // The old acknowledged seq described the old file; the new start counts afresh.
    let _ = std::fs::remove_file(dir.join(ACKED_FILE));
    Ok(report)
}

/// Moves the damaged database (and its WAL) aside and the fresh one in.
fn swap_in(path: &Path, fresh: &Path, damaged: &Path) -> Result<(), JournalError> {
    let io = |source: std::io::Error| JournalError::Dir {
        path: path.to_owned(),
        source,
    };
    std::fs::rename(path, damaged).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::rename(&side, format!("{}{suffix}", damaged.display())).map_err(io)?;
        }
    }
    std::fs::rename(fresh, path).map_err(io)
}

/// Copies every readable, parseable event in seq order.
fn copy_events(
    source: &Connection,
    source_path: &Path,
    fresh: &mut Connection,
    fresh_path: &Path,
) -> Result<RebuildReport, JournalError> {
    let last: i64 = source
        .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
        .map_err(sqlite(source_path))?;
    let tx = fresh.transaction().map_err(sqlite(fresh_path))?;
    let mut report = RebuildReport::default();
    {
        let mut insert = tx
            .prepare(
                "INSERT OR IGNORE INTO events (seq, received_ms, at_ms, call, id, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sqlite(fresh_path))?;
        let mut next = 1;
        while next <= last {
            let rows = match read_rows(source, next, next + REBUILD_CHUNK) {
                Ok(rows) => rows,
                // A damaged page in this range: take what each row still gives;
                // a row that errors is there but lost (an absent one reads empty).
                Err(_) => {
                    let mut rows = Vec::new();
                    for seq in next..next + REBUILD_CHUNK {
                        match read_rows(source, seq, seq + 1) {
                            Ok(row) => rows.extend(row),
                            Err(_) => report.unreadable += 1,
                        }
                    }
                    rows
                }
            };
            for row in rows {
                if Event::from_stored(&row.body).is_err() {
                    report.unreadable += 1;
                    continue;
                }
                let inserted = insert
                    .execute(params![
                        row.seq,
                        row.received_ms,
                        row.at_ms,
                        row.call,
                        row.id,
                        row.body
                    ])
                    .map_err(sqlite(fresh_path))?;
                match inserted {
                    1 => report.kept += 1,
                    _ => report.repeated += 1,
                }
            }
            next += REBUILD_CHUNK;
        }
    }
    tx.commit().map_err(sqlite(fresh_path))?;
    Ok(report)
}

struct RawRow {
    seq: i64,
    received_ms: i64,
    at_ms: i64,
    call: Option<String>,
    id: Option<String>,
    body: String,
}

fn read_rows(source: &Connection, from: i64, to: i64) -> rusqlite::Result<Vec<RawRow>> {
    let mut stmt = source.prepare_cached(
        "SELECT seq, received_ms, at_ms, call, id, body FROM events
         WHERE seq >= ?1 AND seq < ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![from, to], |r| {
        Ok(RawRow {
            seq: r.get(0)?,
            received_ms: r.get(1)?,
            at_ms: r.get(2)?,
            call: r.get(3)?,
            id: r.get(4)?,
            body: r.get(5)?,
        })
    })?;
    rows.collect()
}
