//! The trends' daily summaries ([`crate::trends`]): past days read from the
//! store's finished calls and summed up on a blocking thread, off the
//! engine's lock, then cached. A cached day is summed up again only once the
//! store has recorded a change to it ([`RecordedDays`]). Today, and the past
//! days the engine still holds, come from the engine's tallies: exact at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::ToSpan;
use jiff::civil::Date;

use crate::engine::{Changes, Engine, EngineSettings, count_of};
use crate::hub::StoreSettings;
use crate::journal::{Journal, JournalError};
use crate::pipeline::Pipeline;
use crate::trends::{self, DaySummary, Trends};

/// Days whose versions are kept at most before old ones are forgotten.
const MAX_VERSIONED_DAYS: usize = 100;
/// How far back versions are kept once pruned: past the longest span charted.
const VERSIONS_KEPT_DAYS: i64 = 40;

/// Which days the store's finished calls changed on, as a version per day
/// that rises each time the store records a change to it. Noted by the
/// pipeline after the store committed (never before: a summary read between
/// the change and its commit would be cached stale).
#[derive(Debug, Default)]
pub struct RecordedDays {
    versions: BTreeMap<Date, u64>,
    /// Bumped for every day when any day may have changed (no late window).
    all: u64,
    last: u64,
}

impl RecordedDays {
    /// Notes that the store recorded `changes`, the engine being as it is
    /// now. A late event may move a call's finishing time to another day,
    /// and a change names only its new day: so every day a changeable call
    /// may have counted in (within the late window of now, and a day more
    /// for the store's lag behind the engine) gets a new version too.
    pub fn note(&mut self, changes: &Changes, engine: &Engine) {
        if changes.counted.is_empty() {
            return;
        }
        self.last += 1;
        let version = self.last;
        for counted in changes.counted.values() {
            self.versions.insert(counted.day, version);
        }
        let settings = engine.settings();
        let Some(late_window) = settings.late_window else {
            self.all = version;
            return;
        };
        let earliest = engine
            .now()
            .saturating_sub(late_window)
            .map(|t| settings.day.day_of(t))
            .unwrap_or(engine.today());
        let mut day = earliest.yesterday().unwrap_or(earliest);
        while day <= engine.today() {
            self.versions.insert(day, version);
            let Ok(next) = day.tomorrow() else { break };
            day = next;
        }
        if self.versions.len() > MAX_VERSIONED_DAYS {
            let kept_from = engine.today().saturating_sub(VERSIONS_KEPT_DAYS.days());
            self.versions.retain(|day, _| *day >= kept_from);
        }
    }

    /// The version of `day`'s recorded calls: it changes whenever they do.
    pub fn version(&self, day: Date) -> u64 {
        self.versions.get(&day).copied().unwrap_or(0).max(self.all)
    }
}

/// The daily summaries of past days, cached with the version they were read at.
pub struct Summaries {
    store: Option<StoreSettings>,
    cache: Mutex<BTreeMap<Date, (u64, Arc<DaySummary>)>>,
}

/// What one request takes from the engine, under its lock.
struct Taken {
    settings: Arc<EngineSettings>,
    now: jiff::Timestamp,
    today: DaySummary,
    /// Past days the engine holds, summed up from its tallies.
    held: BTreeMap<Date, DaySummary>,
    /// Past days to read from the store, with their versions.
    stored: BTreeMap<Date, u64>,
    /// The oldest day any request may want now: cached days before it are dropped.
    oldest: Date,
}

impl Summaries {
    /// Summaries over the store in `store`; `None`: only what the engine holds.
    pub fn new(store: Option<StoreSettings>) -> Summaries {
        Summaries {
            store,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    /// The trends of the `span_days` days before today, and today so far
    /// against the same weekday of past weeks.
    pub async fn trends(
        &self,
        pipeline: &Pipeline,
        span_days: u32,
    ) -> Result<Trends, JournalError> {
        let Some(taken) = self.take(pipeline, span_days) else {
            let state = pipeline.state();
            return Ok(trends::unknown(state.engine.settings(), span_days));
        };
        let stored = self.stored(&taken).await?;
        let today = taken.today.day;
        let series: Vec<DaySummary> = trends::series_days(today, span_days)
            .into_iter()
            .map(|day| match taken.held.get(&day) {
                Some(held) => held.clone(),
                None => stored.get(&day).map_or_else(
                    || DaySummary::empty(day, &taken.settings),
                    |s| (**s).clone(),
                ),
            })
            .collect();
        let compared: Vec<&DaySummary> = trends::compared_days(today)
            .iter()
            .filter_map(|day| stored.get(day).map(|s| &**s))
            .collect();
        Ok(trends::document(
            &taken.settings,
            taken.now,
            span_days,
            &taken.today,
            &series,
            &compared,
        ))
    }

    /// Reads what the request needs from the engine, briefly locked; `None`
    /// while "now" is unknown.
    fn take(&self, pipeline: &Pipeline, span_days: u32) -> Option<Taken> {
        let state = pipeline.current();
        let engine = &state.engine;
        if !engine.knows_now() {
            return None;
        }
        let settings = Arc::new(engine.settings().clone());
        let today = engine.today();
        let summed = |day: Date| {
            engine
                .day(day)
                .map(|scope| DaySummary::from_tally(day, &scope.all, &settings))
        };
        let series = trends::series_days(today, span_days);
        let held: BTreeMap<Date, DaySummary> = series
            .iter()
            .filter_map(|&day| summed(day).map(|s| (day, s)))
            .collect();
        let first_kept = self
            .store
            .as_ref()
            .map(|s| today.saturating_sub(i64::from(s.retention_days).days()));
        let longest = trends::SPANS_DAYS
            .iter()
            .max()
            .copied()
            .unwrap_or(span_days);
        let oldest = today
            .saturating_sub(i64::from(longest).days())
            .max(first_kept.unwrap_or(today));
        let stored = series
            .iter()
            .filter(|day| !held.contains_key(day))
            .chain(&trends::compared_days(today))
            .filter(|day| first_kept.is_some_and(|first| **day >= first))
            .map(|&day| (day, state.recorded.version(day)))
            .collect();
        Some(Taken {
            today: summed(today).unwrap_or_else(|| DaySummary::empty(today, &settings)),
            now: engine.now(),
            held,
            stored,
            oldest,
            settings,
        })
    }

    /// The summaries of the stored days `taken` wants: from the cache when
    /// their version is unchanged, else read from the store and cached.
    async fn stored(&self, taken: &Taken) -> Result<BTreeMap<Date, Arc<DaySummary>>, JournalError> {
        let Some(store) = &self.store else {
            return Ok(BTreeMap::new());
        };
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            // Days no span charts or compares any more (today moved on, or
            // retention forgot them) are dropped; the other span's are kept.
            cache.retain(|day, _| *day >= taken.oldest);
            for (&day, &version) in &taken.stored {
                match cache.get(&day) {
                    Some((cached, summary)) if *cached == version => {
                        found.insert(day, summary.clone());
                    }
                    _ => missing.push((day, version)),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let dir = store.dir.clone();
        let settings = taken.settings.clone();
        let computed = tokio::task::spawn_blocking(move || sum_up(&dir, &missing, &settings))
            .await
            .map_err(|_| JournalError::Stopped)??;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for (version, summary) in computed {
            let summary = Arc::new(summary);
            cache.insert(summary.day, (version, summary.clone()));
            found.insert(summary.day, summary);
        }
        Ok(found)
    }
}

/// Sums up each day from the store's finished calls (a blocking read).
fn sum_up(
    dir: &std::path::Path,
    days: &[(Date, u64)],
    settings: &EngineSettings,
) -> Result<Vec<(u64, DaySummary)>, JournalError> {
    let reader = Journal::open_reader(dir)?;
    days.iter()
        .map(|&(day, version)| {
            let rows = reader.finished_on(day)?;
            let calls = rows
                .into_iter()
                .map(|row| count_of(settings, row.finished_at, row.verdict));
            Ok((version, DaySummary::from_calls(day, calls, settings)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::json;

    #[test]
    fn a_recorded_change_versions_its_day_and_the_days_a_call_may_have_left() {
        let now: jiff::Timestamp = "2026-11-20T00:30:00Z".parse().unwrap();
        let settings = EngineSettings {
            track_changes: true,
            ..EngineSettings::default()
        };
        let mut engine = Engine::new(Arc::new(settings), now);
        let event = |v: serde_json::Value| Event::from_json(&v).unwrap();
        engine.ingest(vec![
            event(json!({"type":"queued","call":"old","at":"2026-11-10T09:00:00Z","queue":"q"})),
            event(json!({"type":"ended","call":"old","at":"2026-11-10T09:01:00Z"})),
        ]);
        let mut recorded = RecordedDays::default();
        let day = |s: &str| s.parse::<Date>().unwrap();
        assert_eq!(recorded.version(day("2026-11-10")), 0);
        recorded.note(&engine.take_changes(), &engine);
        let first = recorded.version(day("2026-11-10"));
        assert!(first > 0);
        // Within an hour of midnight a call may have left yesterday (and the
        // day before, for the store's lag): they move too; older days do not.
        assert_eq!(recorded.version(day("2026-11-19")), first);
        assert_eq!(recorded.version(day("2026-11-18")), first);
        assert_eq!(recorded.version(day("2026-11-17")), 0);
        recorded.note(&Changes::default(), &engine);
        assert_eq!(
            recorded.version(day("2026-11-10")),
            first,
            "nothing recorded"
        );
    }
}
