//! Asterisk `queue_log` (kind `queue-log`, spec/sources.md): the rows
//! ([`row`]), what they become ([`map`]), and the live source that follows
//! the file ([`follow`]) and resumes where the store says it stopped.

pub mod follow;
pub mod map;
pub mod row;

use std::path::PathBuf;
use std::time::Duration;

use jiff::SignedDuration;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ConfigError;
use crate::source::{Backoff, Context, Mapped, Naming, SourceState};
use follow::{Batch, Follower, Piece, Position};
use map::{MapSettings, Mapper, Release};

/// How often the file is looked at (at most 250 ms behind, spec).
const POLL_EVERY: Duration = Duration::from_millis(150);
/// Bytes read before their rows are mapped and stored (bounds a batch).
const BATCH_BYTES: usize = 1024 * 1024;
/// Longest `continue_secs` or `wrapup_secs` accepted.
const MAX_WAIT_SECS: u64 = 86_400;

/// Where reading starts the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum From {
    /// The whole file.
    Start,
    /// Only what is written after the first start.
    #[default]
    End,
}

/// A `[[source]]` of kind `queue-log`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The file (default `/var/log/asterisk/queue_log`).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Where the first start reads from.
    #[serde(default)]
    pub from: From,
    /// How long after an exit another row of the call continues it.
    #[serde(default = "default_continue_secs")]
    pub continue_secs: u64,
    /// How long an agent is in wrap-up after a call (none: available at once).
    #[serde(default)]
    pub wrapup_secs: Option<u64>,
}

fn default_path() -> PathBuf {
    PathBuf::from("/var/log/asterisk/queue_log")
}

fn default_continue_secs() -> u64 {
    10
}

impl Settings {
    /// Reads the kind's keys of a `[[source]]` table; `key` names it in errors.
    pub fn parse(table: toml::Table, key: &str) -> Result<Settings, ConfigError> {
        let settings: Settings = crate::source::config::kind_settings(table, key)?;
        for (name, value) in [
            ("continue_secs", Some(settings.continue_secs)),
            ("wrapup_secs", settings.wrapup_secs),
        ] {
            if value.is_some_and(|v| v > MAX_WAIT_SECS) {
                return Err(crate::config::error::invalid(
                    &format!("{key}.{name}"),
                    format!("must be at most {MAX_WAIT_SECS}"),
                ));
            }
        }
        Ok(settings)
    }

    fn map_settings(&self, release: Release) -> MapSettings {
        let secs = |s: u64| SignedDuration::from_secs(s.min(MAX_WAIT_SECS) as i64);
        MapSettings {
            continue_after: secs(self.continue_secs),
            wrap_up: self.wrapup_secs.map(secs),
            release,
        }
    }
}

/// Maps a whole file offline (`--format queue-log`): pipe rows, or the
/// database export recognised by its header line.
pub fn map_offline(bytes: &[u8]) -> Mapped {
    map::map_file(bytes, &Naming::offline("queue-log"), MapSettings::default())
}

/// Follows the file until the server stops.
pub async fn run(context: Context, settings: Settings) {
    let saved = context.checkpoint();
    let resume: Option<Position> = saved
        .as_ref()
        .and_then(|s| Position::deserialize(s.get("file")?).ok());
    let release = match context.feed_clock() {
        true => Release::ByRows,
        false => Release::AtEnd,
    };
    let mut mapper = Mapper::new(context.naming().clone(), settings.map_settings(release));
    if let Some(state) = saved.as_ref().and_then(|s| s.get("mapping")) {
        mapper.restore(state);
    }
    let from_end = settings.from == From::End && saved.is_none();
    let follower = Follower::new(settings.path.clone(), resume, from_end);
    let mut source = Live {
        context,
        mapper,
        saved,
        backoff: Backoff::default(),
    };
    source.follow(follower).await;
}

/// The running source's state between polls.
struct Live {
    context: Context,
    mapper: Mapper,
    /// The checkpoint saved last.
    saved: Option<Value>,
    backoff: Backoff,
}

impl Live {
    async fn follow(&mut self, mut follower: Follower) {
        let stop = self.context.shutdown();
        loop {
            let polled = tokio::task::spawn_blocking(move || {
                let batch = follower.poll(BATCH_BYTES);
                (follower, batch)
            })
            .await;
            let Ok((returned, batch)) = polled else {
                tracing::error!("queue_log: the reader stopped");
                return;
            };
            follower = returned;
            let wait = match batch {
                Ok(batch) => {
                    let at_end = batch.at_end;
                    if !self.take(batch).await {
                        return;
                    }
                    at_end
                }
                Err(e) => {
                    let why = format!("{}: {e}", follower.path().display());
                    self.set_state(SourceState::Failed, Some(why));
                    if !self.backoff.wait(stop.clone()).await {
                        return;
                    }
                    false
                }
            };
            if wait {
                tokio::select! {
                    () = tokio::time::sleep(POLL_EVERY) => {}
                    () = stop.clone().wait() => return,
                }
            }
        }
    }

    /// Maps, stores and checkpoints one batch; `false` when the server stops.
    async fn take(&mut self, batch: Batch) -> bool {
        self.set_state(SourceState::Connected, None);
        self.backoff.reset();
        let mut events = Vec::new();
        for piece in batch.pieces {
            let (at, why) = match piece {
                Piece::Line(at, line) => match row::parse_pipe(&line)
                    .and_then(|row| self.mapper.map(&row, &mut events))
                {
                    Ok(()) => continue,
                    Err(why) => (at, why),
                },
                Piece::TooLong(at) => (at, format!("longer than {} bytes", row::MAX_LINE_BYTES)),
                Piece::Unfinished(at) => (at, "unfinished when the file was rotated".to_owned()),
            };
            self.context.status().skip(&format!("byte {at}"), &why);
        }
        // By the machine's clock, a held exit is let go once its time is up
        // and the file, read to its end, holds no further row of the call.
        if batch.at_end && !self.context.feed_clock() {
            self.mapper.release_due(self.context.now(), &mut events);
        }
        // The checkpoint must not pass events the store has not taken.
        if self.context.store(events).await.is_err() {
            return false;
        }
        let checkpoint = json!({"file": batch.position, "mapping": self.mapper.save()});
        if self.saved.as_ref() != Some(&checkpoint) {
            if self.context.store_checkpoint(&checkpoint).await.is_err() {
                return false;
            }
            self.saved = Some(checkpoint);
        }
        true
    }

    fn set_state(&self, state: SourceState, error: Option<String>) {
        self.context
            .status()
            .set_state(state, error, self.context.now());
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::source::SourceSettings;

    #[test]
    fn settings_have_the_spec_defaults_and_errors_name_the_key() {
        let c = Config::parse("[[source]]\nkind = \"queue-log\"\nname = \"pbx\"\n", "t").unwrap();
        let SourceSettings::QueueLog(s) = &c.sources[0].settings else {
            panic!("a queue-log source");
        };
        assert_eq!(s.path, std::path::Path::new("/var/log/asterisk/queue_log"));
        assert_eq!(
            (s.from, s.continue_secs, s.wrapup_secs),
            (super::From::End, 10, None)
        );
        assert_eq!(c.sources[0].settings.kind(), "queue-log");
        let c = Config::parse(
            "[[source]]\nkind = \"queue-log\"\nname = \"pbx\"\npath = \"/tmp/q\"\nfrom = \"start\"\ncontinue_secs = 3\nwrapup_secs = 15\n",
            "t",
        )
        .unwrap();
        let SourceSettings::QueueLog(s) = &c.sources[0].settings else {
            panic!("a queue-log source");
        };
        assert_eq!(
            (s.from, s.continue_secs, s.wrapup_secs),
            (super::From::Start, 3, Some(15))
        );
        for (extra, key) in [
            ("from = \"middle\"", "source[0]"),
            ("continue_secs = -1", "source[0]"),
            ("tail = true", "source[0]"),
            ("continue_secs = 100000", "source[0].continue_secs"),
        ] {
            let text = format!("[[source]]\nkind = \"queue-log\"\nname = \"pbx\"\n{extra}\n");
            let e = Config::parse(&text, "t").unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}")), "{extra}: {e}");
        }
    }
}
