//! When an alert rule speaks: the level a figure is at (a tile's state) is
//! observed over time, and a change is announced only once it has held for
//! the rule's hold time, in either direction, so a figure hovering at a
//! threshold never flaps. Pure: time comes in with each observation.

use jiff::{SignedDuration, Timestamp};

use crate::board::TileState;

/// How long a level must hold before it is announced, and how often a level
/// still held is announced again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A level is announced once the figure has stayed at it (or past it)
    /// this long; a clearing once it has stayed below it this long.
    pub hold: SignedDuration,
    /// While a warn or alert level stands, it is announced again this long
    /// after the last message; `None` never.
    pub renotify: Option<SignedDuration>,
}

/// What a rule announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The figure now stands at `level` (warn or alert), coming from `from`:
    /// a rise, or an alert eased to a warning.
    Entered {
        /// The level now.
        level: TileState,
        /// The level announced before.
        from: TileState,
    },
    /// The figure is back within bounds after `from`.
    Cleared {
        /// The level announced before.
        from: TileState,
    },
    /// `level` still stands, `renotify` after the last message.
    Renotify {
        /// The level that stands.
        level: TileState,
    },
}

/// One rule's memory: the level last announced and since when the figure
/// has been at least, or at most, each level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// The level last announced, as a rank (0 ok, 1 warn, 2 alert).
    announced: usize,
    /// `[warn, alert]`: since when every observation was at or past it.
    at_least: [Option<Timestamp>; 2],
    /// `[ok, warn]`: since when every observation was at or below it.
    at_most: [Option<Timestamp>; 2],
    /// When the rule last sent a message (for renotify).
    last_sent: Option<Timestamp>,
}

/// Levels by rank: a higher rank is worse.
const LEVELS: [TileState; 3] = [TileState::Ok, TileState::Warn, TileState::Alert];

fn rank(level: TileState) -> usize {
    match level {
        TileState::Ok => 0,
        TileState::Warn => 1,
        TileState::Alert => 2,
    }
}

impl Watch {
    /// The level last announced (`Ok` at first).
    pub fn announced(&self) -> TileState {
        LEVELS[self.announced]
    }

    /// Takes the figure's level at `now` and says what to announce, if
    /// anything. A rise is announced to the highest level the figure has
    /// stayed at or past for the whole hold; a fall to the lowest level it
    /// has stayed at or below for the whole hold. A level that went back
    /// before its hold ran out leaves no trace: nothing is sent.
    pub fn observe(&mut self, level: TileState, now: Timestamp, timing: &Timing) -> Option<Change> {
        let seen = rank(level);
        for (i, since) in self.at_least.iter_mut().enumerate() {
            *since = if seen > i { since.or(Some(now)) } else { None };
        }
        for (i, since) in self.at_most.iter_mut().enumerate() {
            *since = if seen <= i { since.or(Some(now)) } else { None };
        }
        // A clock that stepped back holds nothing until it passes the start again.
        let held =
            |since: Option<Timestamp>| since.is_some_and(|s| now.duration_since(s) >= timing.hold);
        let risen = (0..2)
            .rev()
            .find(|&i| held(self.at_least[i]))
            .map(|i| i + 1);
        let fallen = (0..2).find(|&i| held(self.at_most[i]));
        let from = self.announced();
        let change = match (risen, fallen) {
            (Some(up), _) if up > self.announced => {
                self.announced = up;
                Change::Entered {
                    level: LEVELS[up],
                    from,
                }
            }
            (_, Some(0)) if self.announced > 0 => {
                self.announced = 0;
                Change::Cleared { from }
            }
            (_, Some(down)) if down < self.announced => {
                self.announced = down;
                Change::Entered {
                    level: LEVELS[down],
                    from,
                }
            }
            _ => {
                let due = timing
                    .renotify
                    .zip(self.last_sent)
                    .is_some_and(|(every, last)| now.duration_since(last) >= every);
                if self.announced == 0 || !due {
                    return None;
                }
                Change::Renotify { level: from }
            }
        };
        self.last_sent = Some(now);
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: TileState = TileState::Ok;
    const WARN: TileState = TileState::Warn;
    const ALERT: TileState = TileState::Alert;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn timing(hold: i64, renotify: Option<i64>) -> Timing {
        Timing {
            hold: SignedDuration::from_secs(hold),
            renotify: renotify.map(SignedDuration::from_secs),
        }
    }

    /// Feeds (second, level) observations; returns (second, change) for each announcement.
    fn run(timing: &Timing, seen: &[(i64, TileState)]) -> Vec<(i64, Change)> {
        let mut watch = Watch::default();
        seen.iter()
            .filter_map(|&(s, level)| watch.observe(level, at(s), timing).map(|c| (s, c)))
            .collect()
    }

    fn entered(level: TileState, from: TileState) -> Change {
        Change::Entered { level, from }
    }

    /// (what it shows, timing, (second, level) seen, (second, change) announced).
    type Case<'a> = (&'a str, Timing, &'a [(i64, TileState)], &'a [(i64, Change)]);

    #[test]
    fn journeys_of_a_figure() {
        let cases: &[Case<'_>] = &[
            (
                "held past the hold: one entered, then one cleared",
                timing(60, None),
                &[
                    (0, OK),
                    (10, ALERT),
                    (40, ALERT),
                    (70, ALERT),
                    (80, ALERT),
                    (90, OK),
                    (120, OK),
                    (150, OK),
                    (200, OK),
                ],
                &[
                    (70, entered(ALERT, OK)),
                    (150, Change::Cleared { from: ALERT }),
                ],
            ),
            (
                "back within bounds before the hold ran out: nothing at all",
                timing(60, None),
                &[(0, ALERT), (30, ALERT), (59, OK), (100, OK), (200, OK)],
                &[],
            ),
            (
                "flapping across the threshold never holds",
                timing(10, None),
                &[
                    (0, WARN),
                    (5, OK),
                    (9, WARN),
                    (14, OK),
                    (18, WARN),
                    (23, OK),
                    (27, WARN),
                    (36, OK),
                ],
                &[],
            ),
            (
                "warn, then alert: each announced once it has held",
                timing(10, None),
                &[
                    (0, WARN),
                    (10, WARN),
                    (15, ALERT),
                    (20, ALERT),
                    (25, ALERT),
                    (30, ALERT),
                ],
                &[(10, entered(WARN, OK)), (25, entered(ALERT, WARN))],
            ),
            (
                "warn held first is announced, then alert once alert has held",
                timing(10, None),
                &[(0, WARN), (3, ALERT), (10, ALERT), (13, ALERT)],
                &[(10, entered(WARN, OK)), (13, entered(ALERT, WARN))],
            ),
            (
                "straight to alert: warn is not announced on the way",
                timing(10, None),
                &[(0, ALERT), (5, ALERT), (10, ALERT)],
                &[(10, entered(ALERT, OK))],
            ),
            (
                "an alert eased to warn, then cleared",
                timing(10, None),
                &[
                    (0, ALERT),
                    (10, ALERT),
                    (12, WARN),
                    (22, WARN),
                    (25, OK),
                    (35, OK),
                ],
                &[
                    (10, entered(ALERT, OK)),
                    (22, entered(WARN, ALERT)),
                    (35, Change::Cleared { from: WARN }),
                ],
            ),
            (
                "alert straight to ok clears once, not via warn",
                timing(10, None),
                &[(0, ALERT), (10, ALERT), (11, OK), (21, OK), (40, OK)],
                &[
                    (10, entered(ALERT, OK)),
                    (21, Change::Cleared { from: ALERT }),
                ],
            ),
            (
                "a dip below the level that comes back does not clear",
                timing(10, None),
                &[
                    (0, ALERT),
                    (10, ALERT),
                    (12, OK),
                    (18, ALERT),
                    (25, OK),
                    (30, ALERT),
                    (60, ALERT),
                ],
                &[(10, entered(ALERT, OK))],
            ),
            (
                "renotify while it stands, counted from the last message",
                timing(10, Some(100)),
                &[
                    (0, WARN),
                    (10, WARN),
                    (50, WARN),
                    (109, WARN),
                    (110, WARN),
                    (150, WARN),
                    (210, WARN),
                    (215, OK),
                    (225, OK),
                    (400, OK),
                ],
                &[
                    (10, entered(WARN, OK)),
                    (110, Change::Renotify { level: WARN }),
                    (210, Change::Renotify { level: WARN }),
                    (225, Change::Cleared { from: WARN }),
                ],
            ),
            (
                "no hold: every change at once",
                timing(0, None),
                &[(0, OK), (1, WARN), (2, ALERT), (3, OK)],
                &[
                    (1, entered(WARN, OK)),
                    (2, entered(ALERT, WARN)),
                    (3, Change::Cleared { from: ALERT }),
                ],
            ),
            (
                "a clock stepping back holds nothing early",
                timing(10, None),
                &[(100, ALERT), (50, ALERT), (105, ALERT), (110, ALERT)],
                &[(110, entered(ALERT, OK))],
            ),
        ];
        for (name, timing, seen, expected) in cases {
            assert_eq!(&run(timing, seen), expected, "{name}");
        }
    }

    #[test]
    fn the_announced_level_follows_the_messages() {
        let mut watch = Watch::default();
        let t = timing(5, None);
        assert_eq!(watch.announced(), OK);
        watch.observe(ALERT, at(0), &t);
        assert_eq!(watch.announced(), OK, "not yet held");
        watch.observe(ALERT, at(5), &t);
        assert_eq!(watch.announced(), ALERT);
    }
}
