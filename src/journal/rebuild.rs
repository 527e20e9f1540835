//! Rebuilds the engine and the supervisor's ledger from the store at start:
//! settled calls from their recorded rows, every other recent call by
//! replaying its events at the times they were applied, then heals the
//! derived rows past the watermark. Then a pass over today's events, on a
//! thread of its own, folds the agents' day again (the server need not wait).

use std::path::Path;
use std::sync::{Arc, mpsc};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use rustc_hash::FxHashSet;

use super::{FinishedRow, Journal, JournalError, Opening};
use crate::agents_day::{AgentsDay, OPENING_LOOKBACK};
use crate::day::DayRule;
use crate::engine::{Engine, EngineSettings};
use crate::event::Event;
use crate::outcome::Outcome;
use crate::supervisor::Ledger;

/// Events parsed per chunk handed from the reading thread to the engine.
const REPLAY_CHUNK: usize = 4096;

/// The store, and the engine and ledger rebuilt from it as of `now`, with
/// the derived rows the replay found stale already recorded. The rebuild
/// runs while the store's integrity check does; a damaged store is refused
/// before anything is written to it. `settings` must keep changes.
pub fn restore(
    opening: Opening,
    dir: &Path,
    settings: Arc<EngineSettings>,
    now: Timestamp,
) -> Result<(Journal, Engine, Ledger), JournalError> {
    let started = std::time::Instant::now();
    let rule = settings.day.clone();
    let mut engine = Engine::new(settings, Timestamp::UNIX_EPOCH);
    let rebuilt = rebuild(&mut engine, opening.journal(), dir, now);
    // The check's verdict first: a damaged store may also fail the rebuild.
    let mut journal = opening.finish()?;
    let rebuilt = rebuilt?;
    engine.advance(now);
    let mut changes = engine.take_changes();
    let mut ledger = Ledger::default();
    // Events appended from now on are taken live, so the pass stops before them.
    ledger.agents = fold_agents_day(dir, rule, engine.today(), journal.last_seq());
    // Settled calls count in today's tallies and the supervisor's ledger;
    // the ledger also takes every call the replay counted.
    ledger.roll(engine.today());
    for row in &rebuilt.settled {
        let counted = engine.count_of(row.finished_at, row.verdict.clone());
        engine.restore_settled(&row.call, &counted);
        ledger.record(&row.call, &counted);
    }
    ledger.take(engine.today(), &changes);
    let replay_time = started.elapsed();
    // Rows up to the watermark were recorded before: heal only what came
    // after it, and expiries, which no event marks.
    changes.counted.retain(|call, c| {
        rebuilt.touched.contains(&**call) || c.verdict.outcome == Outcome::Expired
    });
    journal.record_derived(&changes)?;
    let record_time = started.elapsed() - replay_time;
    tracing::info!(
        events = rebuilt.events,
        settled = rebuilt.settled.len(),
        calls = engine.calls_in_memory(),
        "rebuilt the board from {} in {:.2?} (replay {replay_time:.2?}, finished calls {record_time:.2?})",
        dir.display(),
        started.elapsed()
    );
    Ok((journal, engine, ledger))
}

/// The agents' day of `today`, awaiting the pass that folds the store's
/// events of that day up to seq `through` (and the status changes of the
/// lookback before it) on a thread and connection of its own. A failed
/// pass is logged; the day then holds only what comes after the restart.
fn fold_agents_day(dir: &Path, rule: DayRule, today: Date, through: i64) -> AgentsDay {
    let (send, stored) = mpsc::sync_channel(1);
    let awaiting = AgentsDay::awaiting(stored, &rule, today);
    let dir = dir.to_owned();
    let pass = move || {
        let started = std::time::Instant::now();
        let mut day = AgentsDay::default();
        day.roll(&rule, today);
        let start = rule.start_of(today);
        let read = Journal::open_reader(&dir).and_then(|reader| {
            reader.agents_day_since(start - OPENING_LOOKBACK, start, through, |input| {
                day.take_input(input);
            })
        });
        match read {
            Ok(events) => {
                tracing::info!(
                    events,
                    "folded the agents' day in {:.2?}",
                    started.elapsed()
                );
                let _ = send.send(day);
            }
            Err(e) => tracing::error!("the agents' day lacks the events before the restart: {e}"),
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("agents-day".into())
        .spawn(pass)
    {
        tracing::error!("the agents' day lacks the events before the restart: {e}");
    }
    awaiting
}

/// What a rebuild did: events replayed; the calls that events after the
/// derived-rows watermark touched (their recorded rows may be stale); and the
/// settled calls, counted from their rows instead of replayed.
struct Rebuilt {
    events: u64,
    touched: FxHashSet<String>,
    settled: Vec<FinishedRow>,
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
    dir: &Path,
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
    let skip: FxHashSet<String> = settled.iter().map(|r| r.call.clone()).collect();
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
