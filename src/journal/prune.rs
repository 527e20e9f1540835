//! Retention: forgets events and finished calls older than the days kept,
//! at most once an hour of engine time.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use super::Journal;

/// How often old data is pruned.
const PRUNE_EVERY: SignedDuration = SignedDuration::from_hours(1);

/// When the store was last pruned, and how many days it keeps.
#[derive(Debug)]
pub struct Pruner {
    retention_days: u32,
    last_prune: Timestamp,
}

impl Pruner {
    /// Keeps `retention_days` days; the first call prunes.
    pub fn new(retention_days: u32) -> Pruner {
        Pruner {
            retention_days,
            last_prune: Timestamp::UNIX_EPOCH,
        }
    }

    /// Prunes past retention if an hour passed since the last time, as of
    /// `now` on the site's `today`. Failures are logged: the next hour retries.
    pub fn maybe_prune(&mut self, journal: &mut Journal, now: Timestamp, today: Date) {
        if now.duration_since(self.last_prune) < PRUNE_EVERY {
            return;
        }
        self.last_prune = now;
        let first_day = today
            .checked_sub(jiff::Span::new().days(i64::from(self.retention_days)))
            .unwrap_or(today);
        let before = now - SignedDuration::from_hours(24 * i64::from(self.retention_days));
        match journal.prune(before, first_day) {
            Ok((0, 0)) => {}
            Ok((events, calls)) => {
                tracing::info!(events, calls, "pruned data older than {first_day}")
            }
            Err(e) => tracing::error!("pruning: {e}"),
        }
    }
}
