//! `wallboard classify`: reads recorded events and prints outcomes and boxes,
//! using the very engine the server runs (with no late window and no expiry).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::day::DayRule;
use crate::engine::{Engine, EngineSettings};
use crate::event::Event;
use crate::feed::{self, FileError};
use crate::source::Format;
use crate::stats::Tally;

/// What to classify and how to print it.
#[derive(Debug, Clone, Default)]
pub struct ClassifyOptions {
    /// Definitions to show (empty: all).
    pub definitions: Vec<String>,
    /// One line per finished call instead of totals.
    pub calls: bool,
    /// Totals per local day.
    pub by_day: bool,
    /// Time zone for `--by-day` (default UTC).
    pub tz: Option<String>,
    /// Input files; none or `-` is standard input.
    pub files: Vec<PathBuf>,
    /// Their format: our events, or a vendor's records mapped to them.
    pub format: crate::source::Format,
}

/// Why classification failed.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// An input could not be read or holds an invalid event.
    #[error(transparent)]
    Input(#[from] FileError),
    /// A bad option.
    #[error("{0}")]
    Usage(String),
    /// Output failed.
    #[error("writing output: {0}")]
    Write(#[from] std::io::Error),
}

/// Classifies the inputs and writes the result to `out`.
pub fn run(
    options: &ClassifyOptions,
    config: &Config,
    out: &mut impl Write,
) -> Result<(), ClassifyError> {
    let mut settings = EngineSettings {
        late_window: None,
        stale_after: None,
        keep_days: None,
        feed_clock: true,
        ..config.engine.clone()
    };
    if let Some(tz) = &options.tz {
        let zone = jiff::tz::TimeZone::get(tz)
            .map_err(|_| ClassifyError::Usage(format!("--tz: {tz:?} is not an IANA time zone")))?;
        settings.day = DayRule::new(zone, jiff::civil::Time::midnight());
    }
    let shown = shown_definitions(&settings, &options.definitions)?;
    let inputs = if options.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        options.files.clone()
    };
    // Our own events from files: read a block at a time, each call settled
    // (its events dropped, its count kept) once its last event is in.
    let from_files = inputs.iter().all(|p| p.as_os_str() != "-");
    let mut prescan = match options.format {
        Format::Events if from_files => Prescan::of(&inputs),
        _ => None,
    };
    // Duplicates are then dropped here, remembering only ids seen twice in
    // the pre-scan rather than every id.
    settings.dedupe_ids &= prescan.is_none();
    let mut engine = Engine::new(Arc::new(settings), Timestamp::UNIX_EPOCH);
    for path in &inputs {
        match prescan.as_mut() {
            Some(prescan) => feed::read_file_each(path, |events| {
                prescan.ingest(&mut engine, events);
            })?,
            None => {
                engine.ingest(crate::source::offline::read_file(options.format, path)?);
            }
        }
    }
    if options.calls {
        write_calls(&engine, &shown, out)?;
    } else {
        let summary = if options.by_day {
            by_day(&engine, &shown)
        } else {
            let all = totals(&engine, |_| true);
            summary(&engine, &shown, &all, unfinished(&engine, |_| true))
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&summary).expect("json")
        )?;
    }
    // The process ends after this: freeing every call one by one took a
    // tenth of the run, for nothing.
    std::mem::forget(engine);
    Ok(())
}

/// What a first pass over the input files learns, to hold less in the second.
struct Prescan {
    /// Each call's events not read yet (by the second pass).
    left: HashMap<Box<str>, u32>,
    /// Hashes of ids met more than once (or colliding): only those are
    /// remembered to drop repeats, exactly as the engine would.
    repeated: HashSet<u64>,
    /// Ids with a hash in `repeated`, seen so far.
    seen: HashSet<Box<str>>,
}

impl Prescan {
    /// Reads the call and id of every event of `inputs`; `None` if one
    /// cannot be read as NDJSON events (then nothing is settled, and reading
    /// it again says why).
    fn of(inputs: &[PathBuf]) -> Option<Prescan> {
        /// The two fields this pass reads.
        #[derive(serde::Deserialize)]
        struct Keys {
            call: Option<String>,
            id: Option<String>,
        }
        let mut left: HashMap<Box<str>, u32> = HashMap::default();
        let (mut ids, mut repeated) = (HashSet::default(), HashSet::default());
        for path in inputs {
            let count = |event: Keys, _, _| {
                if let Some(call) = event.call {
                    *left.entry(call.into_boxed_str()).or_default() += 1;
                }
                if let Some(id) = event.id
                    && !ids.insert(id_hash(&id))
                {
                    repeated.insert(id_hash(&id));
                }
                Ok(())
            };
            match feed::each_value(path, count, |_| {}) {
                Ok(true) => {}
                Ok(false) | Err(_) => return None,
            }
        }
        Some(Prescan {
            left,
            repeated,
            seen: HashSet::default(),
        })
    }

    /// Ingests `events` without repeated ids, then settles the calls whose
    /// last event was among them.
    fn ingest(&mut self, engine: &mut Engine, mut events: Vec<Event>) {
        events.retain(|e| match &e.id {
            Some(id) if self.repeated.contains(&id_hash(id)) => {
                self.seen.insert(id.as_str().into())
            }
            _ => true,
        });
        let mut done = Vec::new();
        for call in events.iter().filter_map(|e| e.call.as_deref()) {
            if let Some(left) = self.left.get_mut(call) {
                *left -= 1;
                if *left == 0 {
                    self.left.remove(call);
                    done.push(call.to_owned());
                }
            }
        }
        engine.ingest(events);
        for call in done {
            engine.settle(&call);
        }
    }
}

fn id_hash(id: &str) -> u64 {
    use std::hash::BuildHasher as _;
    rustc_hash::FxBuildHasher.hash_one(id)
}

/// Indices of the definitions to show, in the order given (or all).
fn shown_definitions(
    settings: &EngineSettings,
    names: &[String],
) -> Result<Vec<usize>, ClassifyError> {
    if names.is_empty() {
        return Ok((0..settings.definitions.len()).collect());
    }
    names
        .iter()
        .map(|name| {
            settings
                .definitions
                .iter()
                .position(|d| d.name() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = settings.definitions.iter().map(|d| d.name()).collect();
                    ClassifyError::Usage(format!(
                        "--definition: no definition {name:?} (known: {})",
                        known.join(", ")
                    ))
                })
        })
        .collect()
}

fn write_calls(
    engine: &Engine,
    shown: &[usize],
    out: &mut impl Write,
) -> Result<(), ClassifyError> {
    let defs = &engine.settings().definitions;
    for (call, counted) in engine.finished_calls() {
        let boxes: Map<String, Value> = shown
            .iter()
            .map(|&i| {
                let def = &defs[i];
                (
                    def.name().to_owned(),
                    def.boxes()[counted.contribution.boxes[i]].clone().into(),
                )
            })
            .collect();
        let line = json!({
            "call": call,
            "outcome": counted.verdict.outcome.as_str(),
            "wait_secs": counted.verdict.wait_ms.map(|ms| ms as f64 / 1000.0),
            "boxes": boxes,
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn totals(engine: &Engine, include: impl Fn(Date) -> bool) -> Tally {
    let settings = engine.settings();
    let mut tally = Tally::default();
    for (_, counted) in engine.finished_calls() {
        if include(counted.day) {
            tally.apply(
                &counted.contribution,
                1,
                &settings.definitions,
                &settings.figures,
            );
        }
    }
    tally
}

fn unfinished(engine: &Engine, include: impl Fn(Date) -> bool) -> usize {
    let day = &engine.settings().day;
    engine
        .live_calls()
        .filter(|(call, _)| {
            let first = engine.history(call).and_then(|h| h.first()).map(|e| e.at);
            first.is_some_and(|at| include(day.day_of(at)))
        })
        .count()
}

fn summary(engine: &Engine, shown: &[usize], tally: &Tally, unfinished: usize) -> Value {
    let defs = &engine.settings().definitions;
    let definitions: Map<String, Value> = shown
        .iter()
        .map(|&i| (defs[i].name().to_owned(), json!(tally.figures(i, &defs[i]))))
        .collect();
    json!({
        "calls": tally.calls(),
        "unfinished": unfinished,
        "outcomes": tally.outcomes(),
        "definitions": definitions,
    })
}

fn by_day(engine: &Engine, shown: &[usize]) -> Value {
    let rule = &engine.settings().day;
    let mut days: BTreeMap<Date, ()> = engine
        .finished_calls()
        .iter()
        .map(|(_, c)| (c.day, ()))
        .collect();
    for (call, _) in engine.live_calls() {
        if let Some(first) = engine.history(call).and_then(|h| h.first()) {
            days.insert(rule.day_of(first.at), ());
        }
    }
    let out: Map<String, Value> = days
        .keys()
        .map(|&day| {
            let tally = totals(engine, |d| d == day);
            (
                day.to_string(),
                summary(engine, shown, &tally, unfinished(engine, |d| d == day)),
            )
        })
        .collect();
    Value::Object(out)
}
