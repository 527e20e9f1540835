//! Trends: each day summed up (the board's figures per definition, and the
//! offered calls per wall-clock minute of the day), and "today so far"
//! against the same weekday of past weeks at the same local time of day.
//! Fed counted calls or tallies; no store, no clock.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::ToSpan;
use jiff::civil::{Date, Time, Weekday};
use serde::Serialize;

use crate::day::DayRule;
use crate::engine::{Counted, EngineSettings};
use crate::stats::{Figures, Tally};

/// Wall-clock minutes in a day: a day of 23 or 25 hours still has these labels.
pub const MINUTES_PER_DAY: usize = 24 * 60;
/// How many past same weekdays make "a usual Tuesday".
pub const COMPARED_WEEKS: i64 = 4;
/// The spans the trends can cover, in days.
pub const SPANS_DAYS: [u32; 2] = [7, 28];

/// One day summed up, as the trends read it.
#[derive(Debug, Clone, PartialEq)]
pub struct DaySummary {
    /// The site day.
    pub day: Date,
    /// Finished calls counted (inbound and outbound): 0 for a day with no record.
    pub calls: i64,
    /// The figures per definition, in the definitions' order.
    pub figures: Vec<Figures>,
    /// Offered calls per wall-clock minute since the day's start time;
    /// empty when not known (a day summed from its tally alone).
    pub offered_by_minute: Vec<u32>,
}

impl DaySummary {
    /// Sums up `day` from its finished calls, with the same tally (hence the
    /// same rules) as the board.
    pub fn from_calls(
        day: Date,
        calls: impl IntoIterator<Item = Counted>,
        settings: &EngineSettings,
    ) -> DaySummary {
        let mut tally = Tally::default();
        let mut by_minute = vec![0u32; MINUTES_PER_DAY];
        for call in calls {
            let c = &call.contribution;
            tally.apply(c, 1, &settings.definitions, &settings.figures);
            if c.offered() {
                let minute = &mut by_minute[minute_of_day(&settings.day, call.finished_at)];
                *minute = minute.saturating_add(1);
            }
        }
        DaySummary {
            offered_by_minute: by_minute,
            ..DaySummary::from_tally(day, &tally, settings)
        }
    }

    /// Sums up `day` from its tally (today, or a day the engine holds): the
    /// figures only, without the calls' times.
    pub fn from_tally(day: Date, tally: &Tally, settings: &EngineSettings) -> DaySummary {
        DaySummary {
            day,
            calls: tally.calls(),
            figures: settings
                .definitions
                .iter()
                .enumerate()
                .map(|(i, def)| tally.figures(i, def))
                .collect(),
            offered_by_minute: Vec::new(),
        }
    }

    /// A day with no call counted.
    pub fn empty(day: Date, settings: &EngineSettings) -> DaySummary {
        DaySummary::from_tally(day, &Tally::default(), settings)
    }

    /// Offered calls: the same in every definition.
    pub fn offered(&self) -> i64 {
        self.figures.first().map_or(0, |f| f.offered)
    }

    /// Offered calls finished before wall-clock minute `minute` of the day
    /// (see [`minute_of_day`]); `None` when the times are not known.
    pub fn offered_before(&self, minute: usize) -> Option<u64> {
        if self.offered_by_minute.is_empty() {
            return None;
        }
        let before = &self.offered_by_minute[..minute.min(self.offered_by_minute.len())];
        Some(before.iter().map(|&n| u64::from(n)).sum())
    }

    /// The day as the trends document shows it.
    fn shown(&self, settings: &EngineSettings) -> DayFigures {
        DayFigures {
            day: self.day,
            weekday: weekday_name(self.day.weekday()),
            calls: self.calls,
            definitions: settings
                .definitions
                .iter()
                .zip(&self.figures)
                .map(|(def, f)| (def.name().to_owned(), f.clone()))
                .collect(),
        }
    }
}

/// The wall-clock minute of the site's day that `at` falls in, counted from
/// the configured start of day: 11:00 is minute 660 of a midnight day on
/// every date, whatever DST did to the hours before it.
pub fn minute_of_day(rule: &DayRule, at: Timestamp) -> usize {
    let minutes = |t: Time| i32::from(t.hour()) * 60 + i32::from(t.minute());
    let wall = rule.time_zone().to_datetime(at).time();
    let since_start = (minutes(wall) - minutes(rule.start_time())).rem_euclid(24 * 60);
    usize::try_from(since_start).unwrap_or(0)
}

/// The `span` days before `today`, oldest first.
pub fn series_days(today: Date, span: u32) -> Vec<Date> {
    (1..=i64::from(span))
        .rev()
        .filter_map(|back| today.checked_sub(back.days()).ok())
        .collect()
}

/// The same weekday in each of the [`COMPARED_WEEKS`] weeks before `today`.
pub fn compared_days(today: Date) -> Vec<Date> {
    (1..=COMPARED_WEEKS)
        .filter_map(|week| today.checked_sub((7 * week).days()).ok())
        .collect()
}

/// The trends document of `GET /api/trends`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trends {
    /// Today's site day; `null` while "now" is unknown (a feed clock before its first event).
    pub day: Option<Date>,
    /// The server's now.
    pub now: Option<Timestamp>,
    /// The site's time zone.
    pub timezone: String,
    /// How many past days `days` covers.
    pub span_days: u32,
    /// The past days, oldest first, one per day (a day with no record has no calls).
    pub days: Vec<DayFigures>,
    /// Today so far.
    pub today: Option<DayFigures>,
    /// Today so far against the same weekday of past weeks; `null` without one.
    pub comparison: Option<Comparison>,
}

/// One day's figures in the document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayFigures {
    /// The site day.
    pub day: Date,
    /// Its weekday, in English.
    pub weekday: &'static str,
    /// Finished calls counted.
    pub calls: i64,
    /// Definition name → its figures, as the snapshot shows them.
    pub definitions: BTreeMap<String, Figures>,
}

/// Today's offered calls so far against the same weekday's average at this time of day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Today's weekday.
    pub weekday: &'static str,
    /// The local time of day compared at, `HH:MM`.
    pub at: String,
    /// Offered calls today so far.
    pub today: i64,
    /// The mean of the past same weekdays' offered calls before `at`.
    pub usual: f64,
    /// How many past same weekdays the mean is over.
    pub weeks: usize,
    /// `today ÷ usual − 1`; `null` when `usual` is 0.
    pub change: Option<f64>,
    /// "12 % busier than a usual Tuesday by 11:00"; `null` when `usual` is 0.
    pub sentence: Option<String>,
}

/// Builds the document: `series` are the summaries of [`series_days`],
/// `compared` those of [`compared_days`] that the store holds.
pub fn document(
    settings: &EngineSettings,
    now: Timestamp,
    span_days: u32,
    today: &DaySummary,
    series: &[DaySummary],
    compared: &[&DaySummary],
) -> Trends {
    Trends {
        day: Some(today.day),
        now: Some(now),
        timezone: settings.day.time_zone_name(),
        span_days,
        days: series.iter().map(|s| s.shown(settings)).collect(),
        today: Some(today.shown(settings)),
        comparison: compare(&settings.day, now, today.offered(), compared),
    }
}

/// The document while "now" is not known yet.
pub fn unknown(settings: &EngineSettings, span_days: u32) -> Trends {
    Trends {
        day: None,
        now: None,
        timezone: settings.day.time_zone_name(),
        span_days,
        days: Vec::new(),
        today: None,
        comparison: None,
    }
}

/// Today's `today_offered` calls so far against the mean, over the past days
/// of today's weekday that hold calls, of their offered calls before the same
/// wall-clock minute. `None` when no such day is held.
pub fn compare(
    rule: &DayRule,
    now: Timestamp,
    today_offered: i64,
    past: &[&DaySummary],
) -> Option<Comparison> {
    let today = rule.day_of(now);
    let minute = minute_of_day(rule, now);
    let counts: Vec<u64> = past
        .iter()
        .filter(|s| s.calls > 0 && s.day < today && s.day.weekday() == today.weekday())
        .filter_map(|s| s.offered_before(minute))
        .collect();
    if counts.is_empty() {
        return None;
    }
    let usual = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
    let change = (usual > 0.0).then(|| today_offered as f64 / usual - 1.0);
    let wall = rule.time_zone().to_datetime(now).time();
    let at = format!("{:02}:{:02}", wall.hour(), wall.minute());
    let weekday = weekday_name(today.weekday());
    Some(Comparison {
        weekday,
        sentence: change.map(|change| sentence(change, weekday, &at)),
        at,
        today: today_offered,
        usual,
        weeks: counts.len(),
        change,
    })
}

/// "12 % busier than a usual Tuesday by 11:00", to the whole percent.
fn sentence(change: f64, weekday: &str, at: &str) -> String {
    let percent = (change * 100.0).round() as i64;
    match percent {
        0 => format!("As busy as a usual {weekday} by {at}"),
        p if p > 0 => format!("{p} % busier than a usual {weekday} by {at}"),
        p => format!("{} % quieter than a usual {weekday} by {at}", -p),
    }
}

fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::count_of;
    use crate::outcome::{Outcome, Verdict};
    use jiff::civil::{date, time};
    use jiff::tz::TimeZone;

    fn settings(tz: &str, start: Time) -> EngineSettings {
        EngineSettings {
            day: DayRule::new(TimeZone::get(tz).unwrap(), start),
            ..EngineSettings::default()
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn verdict(outcome: Outcome, wait_secs: i64, reached_staff: bool) -> Verdict {
        Verdict {
            outcome,
            wait_ms: Some(wait_secs * 1000),
            reached_staff,
            queue: None,
            agent: None,
            caller: None,
            times: Default::default(),
        }
    }

    /// Answered calls that queued (offered), finished at these instants.
    fn answered_at(settings: &EngineSettings, at: &[&str]) -> Vec<Counted> {
        at.iter()
            .map(|t| count_of(settings, ts(t), verdict(Outcome::Answered, 10, true)))
            .collect()
    }

    fn summary(settings: &EngineSettings, day: Date, at: &[&str]) -> DaySummary {
        DaySummary::from_calls(day, answered_at(settings, at), settings)
    }

    #[test]
    fn a_day_has_the_boards_figures_and_its_offered_calls_by_minute() {
        let s = settings("Europe/London", Time::midnight());
        let day = date(2026, 11, 20);
        let calls = vec![
            count_of(
                &s,
                ts("2026-11-20T09:00:30Z"),
                verdict(Outcome::Answered, 10, true),
            ),
            count_of(
                &s,
                ts("2026-11-20T09:01:00Z"),
                verdict(Outcome::Answered, 30, true),
            ),
            count_of(
                &s,
                ts("2026-11-20T10:00:00Z"),
                verdict(Outcome::QueueAbandoned, 40, true),
            ),
            count_of(
                &s,
                ts("2026-11-20T10:30:00Z"),
                verdict(Outcome::IvrAbandoned, 0, false),
            ),
            count_of(
                &s,
                ts("2026-11-20T11:00:00Z"),
                verdict(Outcome::OutboundConnected, 0, false),
            ),
        ];
        let mut tally = Tally::default();
        for c in &calls {
            tally.apply(&c.contribution, 1, &s.definitions, &s.figures);
        }
        let summary = DaySummary::from_calls(day, calls, &s);
        assert_eq!(summary.calls, 5);
        assert_eq!(summary.figures[0], tally.figures(0, &s.definitions[0]));
        let reachable = &summary.figures[0];
        assert_eq!(reachable.offered, 3);
        assert_eq!(reachable.boxes["answered"], 2);
        assert_eq!(reachable.service_level, Some(1.0 / 3.0));
        assert_eq!(reachable.asa_secs, Some(20.0));
        assert_eq!(reachable.abandon_rate, Some(1.0 / 4.0));
        assert_eq!(summary.offered(), 3);
        // Minute 540 is 09:00 (GMT in November): the call at 09:00:30 is in it.
        assert_eq!(summary.offered_before(540), Some(0));
        assert_eq!(summary.offered_before(541), Some(1));
        assert_eq!(summary.offered_before(600), Some(2));
        assert_eq!(summary.offered_before(MINUTES_PER_DAY), Some(3));
        let from_tally = DaySummary::from_tally(day, &tally, &s);
        assert_eq!(from_tally.figures, summary.figures);
        assert_eq!(from_tally.offered_before(600), None, "no times in a tally");
    }

    #[test]
    fn minutes_count_from_the_start_of_day_in_wall_clock_time() {
        let s = settings("Europe/London", time(6, 0, 0, 0));
        let table = [
            ("2026-11-20T06:00:00Z", 0),
            ("2026-11-20T11:00:59Z", 300),
            ("2026-11-21T05:59:00Z", 1439),
            // BST: 06:30 local is 05:30Z.
            ("2026-07-01T05:30:00Z", 30),
        ];
        for (at, minute) in table {
            assert_eq!(minute_of_day(&s.day, ts(at)), minute, "{at}");
        }
    }

    #[test]
    fn the_days_compared_and_charted() {
        let today = date(2026, 11, 20);
        assert_eq!(
            compared_days(today),
            [
                date(2026, 11, 13),
                date(2026, 11, 6),
                date(2026, 10, 30),
                date(2026, 10, 23)
            ]
        );
        let week = series_days(today, 7);
        assert_eq!(week.len(), 7);
        assert_eq!(week[0], date(2026, 11, 13));
        assert_eq!(week[6], date(2026, 11, 19));
        assert_eq!(series_days(today, 28)[0], date(2026, 10, 23));
    }

    #[test]
    fn today_against_a_usual_weekday_says_busier_quieter_or_nothing() {
        let s = settings("UTC", Time::midnight());
        let now = ts("2026-11-20T11:00:00Z"); // a Friday
        let friday = |d: i8, at: &[&str]| summary(&s, date(2026, 11, d), at);
        let nov13 = friday(
            13,
            &[
                "2026-11-13T09:00:00Z",
                "2026-11-13T10:59:59Z",
                "2026-11-13T11:00:00Z",
            ],
        );
        let nov6 = friday(6, &["2026-11-06T08:00:00Z", "2026-11-06T12:00:00Z"]);
        let empty = DaySummary::empty(date(2026, 10, 30), &s);
        let thursday = summary(&s, date(2026, 11, 19), &["2026-11-19T09:00:00Z"]);
        // Usual Friday by 11:00: (2 + 1) / 2 = 1.5; the empty day is not held.
        let past = [&nov13, &nov6, &empty, &thursday];
        let table = [
            (3, Some("100 % busier than a usual Friday by 11:00")),
            (2, Some("33 % busier than a usual Friday by 11:00")),
            (1, Some("33 % quieter than a usual Friday by 11:00")),
            (0, Some("100 % quieter than a usual Friday by 11:00")),
        ];
        for (today, said) in table {
            let c = compare(&s.day, now, today, &past).unwrap();
            assert_eq!((c.weeks, c.usual, c.today), (2, 1.5, today));
            assert_eq!(c.sentence.as_deref(), said, "{today} calls");
            assert_eq!(c.weekday, "Friday");
            assert_eq!(c.at, "11:00");
        }
        let same = summary(&s, date(2026, 11, 13), &["2026-11-13T09:00:00Z"]);
        let c = compare(&s.day, now, 1, &[&same]).unwrap();
        assert_eq!(
            c.sentence.as_deref(),
            Some("As busy as a usual Friday by 11:00")
        );
        assert_eq!(compare(&s.day, now, 5, &[&thursday, &empty]), None);
        assert_eq!(compare(&s.day, now, 5, &[]), None);
        // Past Fridays with calls, but none offered by 11:00: no percentage.
        let late = summary(&s, date(2026, 11, 13), &["2026-11-13T15:00:00Z"]);
        let c = compare(&s.day, now, 5, &[&late]).unwrap();
        assert_eq!((c.usual, c.change, c.sentence), (0.0, None, None));
        // A tally alone holds no times: nothing to compare with.
        let tallied = DaySummary {
            offered_by_minute: Vec::new(),
            ..nov13.clone()
        };
        assert_eq!(compare(&s.day, now, 5, &[&tallied]), None);
    }

    /// London sprang forward on Sunday 2026-03-29: "by 11:00" means 11:00 on
    /// the clock on each Sunday, BST or GMT, not eleven hours after midnight.
    #[test]
    fn the_comparison_follows_the_wall_clock_across_dst() {
        let s = settings("Europe/London", Time::midnight());
        let now = ts("2026-04-05T10:00:00Z"); // 11:00 BST, a Sunday
        // 29 March: 10:30 BST (09:30Z) is before 11:00; 11:30 BST (10:30Z)
        // is not, though it is under eleven hours after midnight (00:00Z).
        let dst_day = summary(
            &s,
            date(2026, 3, 29),
            &["2026-03-29T09:30:00Z", "2026-03-29T10:30:00Z"],
        );
        // 22 March, GMT: 10:59 counts, 11:00 does not.
        let gmt_day = summary(
            &s,
            date(2026, 3, 22),
            &["2026-03-22T10:59:00Z", "2026-03-22T11:00:00Z"],
        );
        let c = compare(&s.day, now, 2, &[&dst_day, &gmt_day]).unwrap();
        assert_eq!((c.weeks, c.usual), (2, 1.0));
        assert_eq!(c.at, "11:00");
        assert_eq!(
            c.sentence.as_deref(),
            Some("100 % busier than a usual Sunday by 11:00")
        );

        // Autumn: 25 October 2026 repeats 01:00-02:00; both passes are before 02:00.
        let autumn = summary(
            &s,
            date(2026, 10, 25),
            &[
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-25T02:30:00Z",
            ],
        );
        assert_eq!(autumn.offered_before(120), Some(2));
        let now = ts("2026-11-01T02:00:00Z"); // 02:00 GMT, a Sunday
        let c = compare(&s.day, now, 2, &[&autumn]).unwrap();
        assert_eq!((c.usual, c.at.as_str()), (2.0, "02:00"));
    }

    #[test]
    fn the_document_lists_every_day_and_every_definition() {
        let s = settings("Europe/London", Time::midnight());
        let now = ts("2026-11-20T11:00:00Z");
        let days: Vec<DaySummary> = series_days(now.to_zoned(TimeZone::UTC).date(), 7)
            .into_iter()
            .map(|d| DaySummary::empty(d, &s))
            .collect();
        let today = summary(&s, date(2026, 11, 20), &["2026-11-20T09:00:00Z"]);
        let doc = document(&s, now, 7, &today, &days, &[]);
        assert_eq!(doc.days.len(), 7);
        assert_eq!(doc.days[0].weekday, "Friday");
        assert_eq!(doc.days[0].definitions.len(), s.definitions.len());
        assert_eq!(doc.today.as_ref().map(|t| t.calls), Some(1));
        assert_eq!(doc.comparison, None);
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["timezone"], "Europe/London");
        assert_eq!(json["days"][6]["day"], "2026-11-19");
        assert_eq!(json["today"]["definitions"]["reachable"]["offered"], 1);
        assert_eq!(json["comparison"], serde_json::Value::Null);
    }
}
