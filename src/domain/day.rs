//! The site's day: which local day an instant belongs to, in an IANA time zone
//! with a configurable start of day, correct across DST changes.

use jiff::civil::{Date, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// How a site cuts time into days.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRule {
    tz: TimeZone,
    start: Time,
}

impl DayRule {
    /// Days in `tz` starting at local time `start`.
    pub fn new(tz: TimeZone, start: Time) -> DayRule {
        DayRule { tz, start }
    }

    /// Days starting at midnight UTC.
    pub fn utc() -> DayRule {
        DayRule::new(TimeZone::UTC, Time::midnight())
    }

    /// The time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The local time each day starts at.
    pub fn start_time(&self) -> Time {
        self.start
    }

    /// The time zone's IANA name, or its offset when it is a fixed offset
    /// (no clock read: the domain takes time as a value). Zones come from
    /// the IANA database, so a rule with neither is not configured; it reads as UTC.
    pub fn time_zone_name(&self) -> String {
        match (self.tz.iana_name(), self.tz.to_fixed_offset()) {
            (Some(name), _) => name.to_owned(),
            (None, Ok(offset)) => offset.to_string(),
            (None, Err(_)) => "UTC".to_owned(),
        }
    }

    /// The first instant of local day `date`: the earliest instant whose local
    /// time on that date is at or after the start of day. A start inside a
    /// skipped hour begins the day when the clock jumps; a start inside a
    /// repeated hour begins it at the first pass.
    pub fn start_of(&self, date: Date) -> Timestamp {
        let local = date.to_datetime(self.start);
        let ambiguous = self.tz.to_ambiguous_timestamp(local);
        match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset }
            | AmbiguousOffset::Fold { before: offset, .. } => {
                offset.to_timestamp(local).unwrap_or(Timestamp::MAX)
            }
            AmbiguousOffset::Gap { after, .. } => {
                // The wall time does not exist: the day begins at the jump,
                // the first transition after that wall time read with the new offset.
                let probe = after.to_timestamp(local).unwrap_or(Timestamp::MAX);
                self.tz
                    .following(probe)
                    .next()
                    .map_or(probe, |transition| transition.timestamp())
            }
        }
    }

    /// The local day an instant belongs to.
    pub fn day_of(&self, at: Timestamp) -> Date {
        let date = self.tz.to_datetime(at).date();
        if at < self.start_of(date) {
            date.checked_sub(1.day()).unwrap_or(date)
        } else if date
            .checked_add(1.day())
            .is_ok_and(|next| at >= self.start_of(next))
        {
            date.checked_add(1.day()).unwrap_or(date)
        } else {
            date
        }
    }

    /// The first instant of the day after the one `at` belongs to.
    pub fn next_start(&self, at: Timestamp) -> Timestamp {
        let day = self.day_of(at);
        day.checked_add(1.day())
            .map_or(Timestamp::MAX, |next| self.start_of(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn rule(tz: &str, start: Time) -> DayRule {
        DayRule::new(TimeZone::get(tz).unwrap(), start)
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn days_are_23_24_and_25_hours_long_in_london() {
        let r = rule("Europe/London", Time::midnight());
        let hours = |d: Date| {
            let next = d.checked_add(1.day()).unwrap();
            (r.start_of(next).as_second() - r.start_of(d).as_second()) / 3600
        };
        assert_eq!(hours(date(2026, 3, 29)), 23);
        assert_eq!(hours(date(2026, 10, 25)), 25);
        assert_eq!(hours(date(2026, 11, 20)), 24);
        assert_eq!(r.day_of(ts("2026-10-25T23:59:59Z")), date(2026, 10, 25));
        assert_eq!(r.day_of(ts("2026-10-26T00:00:00Z")), date(2026, 10, 26));
        assert_eq!(r.day_of(ts("2026-07-01T23:00:00Z")), date(2026, 7, 2));
    }

    #[test]
    fn day_start_in_a_repeated_hour_is_monotonic() {
        // 01:30 happens twice in London on 2026-10-25; the day starts at the first.
        let r = rule("Europe/London", time(1, 30, 0, 0));
        let first = ts("2026-10-25T00:30:00Z");
        assert_eq!(r.start_of(date(2026, 10, 25)), first);
        assert_eq!(r.day_of(ts("2026-10-25T00:29:59Z")), date(2026, 10, 24));
        assert_eq!(r.day_of(first), date(2026, 10, 25));
        // Second pass through 01:00-02:00 local (01:00Z-02:00Z) stays on the 25th.
        assert_eq!(r.day_of(ts("2026-10-25T01:10:00Z")), date(2026, 10, 25));
    }

    #[test]
    fn day_start_in_a_skipped_hour_begins_at_the_jump() {
        // Sao Paulo (historically) skipped 00:00-01:00 on 2018-11-04.
        let r = rule("America/Sao_Paulo", time(0, 30, 0, 0));
        let jump = ts("2018-11-04T03:00:00Z"); // 00:00 at -03 becomes 01:00 at -02
        assert_eq!(r.start_of(date(2018, 11, 4)), jump);
        assert_eq!(r.day_of(ts("2018-11-04T02:59:59Z")), date(2018, 11, 3));
        assert_eq!(r.day_of(jump), date(2018, 11, 4));
        assert_eq!(
            r.next_start(ts("2018-11-04T12:00:00Z")),
            ts("2018-11-05T02:30:00Z")
        );
    }

    #[test]
    fn utc_midnight() {
        let r = DayRule::utc();
        assert_eq!(r.day_of(ts("2026-11-20T23:59:59.999Z")), date(2026, 11, 20));
        assert_eq!(
            r.next_start(ts("2026-11-20T10:00:00Z")),
            ts("2026-11-21T00:00:00Z")
        );
    }
}
