//! `GET /api/trends` against a real server with a store and the feed clock:
//! five weeks of generated calls posted, then the figures of every day and
//! today's comparison checked against what was posted; the cached summaries
//! follow a late event and a backfilled call on a past day.

mod common;

use std::time::Duration;

use common::{TestServer, within};
use jiff::civil::{Date, Weekday, date};
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::Value;
use wallboard::clock::Clock;
use wallboard::config::Config;
use wallboard::server::ServeOptions;

/// Today, a Friday; "now" is 11:00 on it.
const TODAY: Date = date(2026, 11, 20);
/// The first day posted: five weeks back.
const FIRST: Date = date(2026, 10, 16);

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Queued, answered after this many seconds.
    Answered(i64),
    /// Queued, hung up after this many seconds.
    Abandoned(i64),
    /// Hung up in the IVR (never reached staff).
    Ivr,
}

/// A call: when it starts (UTC, which is the site's zone) and how it goes.
#[derive(Clone, Copy, Debug)]
struct Call {
    start: Timestamp,
    kind: Kind,
}

fn at(day: Date, hour: i8, minute: i8) -> Timestamp {
    day.at(hour, minute, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
}

/// The calls of `day`: Sundays closed; past Fridays four offered calls before
/// 11:00 and three after; other days a varying mix.
fn calls_of(day: Date) -> Vec<Call> {
    let i = (day - FIRST).get_days() as i64;
    let call = |h, m, kind| Call {
        start: at(day, h, m),
        kind,
    };
    match day.weekday() {
        Weekday::Sunday => Vec::new(),
        Weekday::Friday if day == TODAY => [(8, 30), (9, 0), (9, 30), (10, 0), (10, 30)]
            .iter()
            .map(|&(h, m)| call(h, m, Kind::Answered(10)))
            .collect(),
        Weekday::Friday => vec![
            call(9, 0, Kind::Answered(10)),
            call(9, 30, Kind::Answered(30)),
            call(10, 0, Kind::Answered(10)),
            call(10, 30, Kind::Abandoned(50)),
            call(11, 30, Kind::Abandoned(40)),
            call(12, 0, Kind::Ivr),
            call(14, 0, Kind::Answered(15)),
            call(15, 0, Kind::Answered(25)),
        ],
        _ => {
            let mut calls: Vec<Call> = (0..2 + i % 5)
                .map(|k| {
                    let wait = (i * 7 + k * 11) % 45;
                    let minutes = 8 * 60 + 45 * k;
                    call(
                        (minutes / 60) as i8,
                        (minutes % 60) as i8,
                        Kind::Answered(wait),
                    )
                })
                .collect();
            if i % 2 == 0 {
                calls.push(call(16, 0, Kind::Abandoned(25 + i)));
            }
            if i % 3 == 0 {
                calls.push(call(17, 0, Kind::Ivr));
            }
            calls
        }
    }
}

fn id(day: Date, n: usize) -> String {
    format!("c-{day}-{n}")
}

/// A call's events as NDJSON lines.
fn events_of(call_id: &str, call: &Call) -> Vec<String> {
    let line = |secs: i64, rest: &str| {
        let t = call.start + SignedDuration::from_secs(secs);
        format!(r#"{{"call":"{call_id}","at":"{t}",{rest}}}"#)
    };
    let mut lines = vec![line(
        0,
        r#""type":"call_started","direction":"inbound","channel":"voice""#,
    )];
    match call.kind {
        Kind::Answered(wait) => {
            lines.push(line(5, r#""type":"queued","queue":"sales""#));
            lines.push(line(5 + wait, r#""type":"answered","agent":"amy""#));
            lines.push(line(5 + wait + 120, r#""type":"ended""#));
        }
        Kind::Abandoned(wait) => {
            lines.push(line(5, r#""type":"queued","queue":"sales""#));
            lines.push(line(5 + wait, r#""type":"ended""#));
        }
        Kind::Ivr => {
            lines.push(line(2, r#""type":"ivr_started""#));
            lines.push(line(20, r#""type":"ended""#));
        }
    }
    lines
}

/// Posts every day from [`FIRST`] through today, in order, then moves the
/// feed clock to 11:00 today with an agent's status.
async fn post_weeks(server: &TestServer) {
    let mut day = FIRST;
    while day <= TODAY {
        let mut lines: Vec<(Timestamp, String)> = Vec::new();
        for (n, call) in calls_of(day).iter().enumerate() {
            for line in events_of(&id(day, n), call) {
                let t: Value = serde_json::from_str(&line).unwrap();
                lines.push((t["at"].as_str().unwrap().parse().unwrap(), line));
            }
        }
        lines.sort_by_key(|(t, _)| *t);
        if !lines.is_empty() {
            let body: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
            server.post_ok(&body.join("\n")).await;
        }
        day = day.tomorrow().unwrap();
    }
    let now = at(TODAY, 11, 0);
    server
        .post_ok(&format!(
            r#"{{"type":"agent_status","at":"{now}","agent":"amy","status":"available"}}"#
        ))
        .await;
}

/// The figures a day's calls must show, per definition.
struct Expected {
    calls: i64,
    offered: i64,
    answered: i64,
    service_level: Option<f64>,
    asa_secs: Option<f64>,
    /// Under `reachable` (a queue abandon is missed, an IVR hang-up abandoned).
    abandon_rate_reachable: Option<f64>,
    /// Under `acd` (a queue abandon is abandoned, an IVR hang-up missed).
    abandon_rate_acd: Option<f64>,
}

fn expected(calls: &[Call]) -> Expected {
    let waits: Vec<i64> = calls
        .iter()
        .filter_map(|c| match c.kind {
            Kind::Answered(w) => Some(w),
            _ => None,
        })
        .collect();
    let abandoned = calls
        .iter()
        .filter(|c| matches!(c.kind, Kind::Abandoned(_)))
        .count() as i64;
    let ivr = calls.iter().filter(|c| matches!(c.kind, Kind::Ivr)).count() as i64;
    let answered = waits.len() as i64;
    let offered = answered + abandoned;
    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
    Expected {
        calls: calls.len() as i64,
        offered,
        answered,
        service_level: ratio(waits.iter().filter(|&&w| w <= 20).count() as i64, offered),
        asa_secs: ratio(waits.iter().sum(), answered),
        abandon_rate_reachable: ratio(ivr, answered + abandoned + ivr),
        abandon_rate_acd: ratio(abandoned, answered + abandoned + ivr),
    }
}

fn close(got: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: {got} where none was expected"),
        Some(want) => {
            let got = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
            assert!((got - want).abs() < 1e-9, "{what}: {got} ≠ {want}");
        }
    }
}

fn check_day(shown: &Value, day: Date, want: &Expected) {
    let what = |name: &str| format!("{day} {name}");
    assert_eq!(shown["day"], day.to_string());
    assert_eq!(shown["calls"], want.calls, "{}", what("calls"));
    let reachable = &shown["definitions"]["reachable"];
    let acd = &shown["definitions"]["acd"];
    assert_eq!(reachable["offered"], want.offered, "{}", what("offered"));
    assert_eq!(acd["offered"], want.offered, "{}", what("offered (acd)"));
    assert_eq!(
        reachable["boxes"]["answered"],
        want.answered,
        "{}",
        what("answered")
    );
    close(
        &reachable["service_level"],
        want.service_level,
        &what("service level"),
    );
    close(&reachable["asa_secs"], want.asa_secs, &what("ASA"));
    close(
        &reachable["abandon_rate"],
        want.abandon_rate_reachable,
        &what("abandon rate (reachable)"),
    );
    close(
        &acd["abandon_rate"],
        want.abandon_rate_acd,
        &what("abandon rate (acd)"),
    );
}

async fn trends(server: &TestServer, days: u32) -> Value {
    let (status, text) = server.get(&format!("/api/trends?days={days}")).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("trends are JSON")
}

/// Polls the trends until `done` holds; the store records a change within
/// moments of applying it, and the cached day follows once it has.
async fn trends_when(server: &TestServer, done: impl Fn(&Value) -> bool) -> Value {
    within(async {
        loop {
            let t = trends(server, 28).await;
            if done(&t) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

fn day_in(trends: &Value, day: Date) -> &Value {
    trends["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["day"] == day.to_string())
        .unwrap_or_else(|| panic!("{day} is not in the trends"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wallboard-trends-{name}-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn server_with_store(name: &str, config: &str) -> (TestServer, std::path::PathBuf) {
    let dir = temp_dir(name);
    let server = TestServer::start_with(ServeOptions {
        clock: Clock::Feed,
        data_dir: Some(dir.clone()),
        ..ServeOptions::new(Config::parse(config, "test.toml").unwrap())
    })
    .await;
    (server, dir)
}

#[tokio::test]
async fn every_past_day_shows_the_figures_of_the_calls_posted() {
    let (server, dir) = server_with_store("figures", "").await;
    post_weeks(&server).await;

    let week = trends(&server, 7).await;
    assert_eq!(week["day"], "2026-11-20");
    assert_eq!(week["span_days"], 7);
    let days = week["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[0]["day"], "2026-11-13");
    assert_eq!(days[6]["day"], "2026-11-19");

    let month = trends(&server, 28).await;
    let days = month["days"].as_array().unwrap();
    assert_eq!(days.len(), 28);
    // Read twice: the second from the cache, the same.
    assert_eq!(trends(&server, 28).await, month);
    let mut day = TODAY.checked_sub(28.days()).unwrap();
    for shown in days {
        check_day(shown, day, &expected(&calls_of(day)));
        day = day.tomorrow().unwrap();
    }
    assert_eq!(day_in(&month, date(2026, 11, 15))["calls"], 0, "a Sunday");
    check_day(&month["today"], TODAY, &expected(&calls_of(TODAY)));

    // Four past Fridays, each 4 offered calls before 11:00; today 5.
    let c = &month["comparison"];
    assert_eq!(c["weekday"], "Friday");
    assert_eq!(c["at"], "11:00");
    assert_eq!(
        (c["today"].as_i64(), c["usual"].as_f64()),
        (Some(5), Some(4.0))
    );
    assert_eq!(c["weeks"], 4);
    assert_eq!(c["sentence"], "25 % busier than a usual Friday by 11:00");

    for bad in ["5", "abc", "-7", "7.0"] {
        let (status, text) = server.get(&format!("/api/trends?days={bad}")).await;
        assert_eq!(status, 400, "days={bad}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert!(error["error"].as_str().unwrap().contains("days"), "{error}");
    }
    let (status, text) = server.get("/api/trends").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["span_days"],
        7
    );
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_cached_past_day_follows_a_late_event_and_a_backfilled_call() {
    // A week's late window: a call of last Friday still takes events.
    let (server, dir) = server_with_store("late", "[site]\nlate_window_minutes = 10080\n").await;
    post_weeks(&server).await;
    let friday = date(2026, 11, 13);
    let tuesday = date(2026, 11, 10);
    let before = trends(&server, 28).await;
    check_day(
        day_in(&before, friday),
        friday,
        &expected(&calls_of(friday)),
    );
    assert_eq!(trends(&server, 28).await, before, "cached, unchanged");

    // Friday's 11:30 queue abandon (call 4) was answered after all, at 20 s.
    let mut calls = calls_of(friday);
    let abandoned = calls[4];
    calls[4] = Call {
        kind: Kind::Answered(20),
        ..abandoned
    };
    let answered_at = abandoned.start + SignedDuration::from_secs(25);
    let late = format!(
        r#"{{"call":"{}","at":"{answered_at}","type":"answered","agent":"bob"}}"#,
        id(friday, 4)
    );
    server.post_ok(&late).await;
    let want = expected(&calls);
    let after = trends_when(&server, |t| {
        day_in(t, friday)["definitions"]["reachable"]["boxes"]["answered"] == want.answered
    })
    .await;
    check_day(day_in(&after, friday), friday, &want);

    // A call of last Tuesday posted only now (a backfill) joins its day.
    let tuesday_calls = calls_of(tuesday).len();
    let backfill = Call {
        start: at(tuesday, 13, 0),
        kind: Kind::Abandoned(12),
    };
    server
        .post_ok(&events_of(&id(tuesday, tuesday_calls), &backfill).join("\n"))
        .await;
    let mut calls = calls_of(tuesday);
    calls.push(backfill);
    let want = expected(&calls);
    let after = trends_when(&server, |t| day_in(t, tuesday)["calls"] == want.calls).await;
    check_day(day_in(&after, tuesday), tuesday, &want);
    // Today's comparison did not move: neither call was before 11:00 on a Friday.
    assert_eq!(after["comparison"], before["comparison"]);
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_a_store_the_days_the_engine_holds_are_shown() {
    let server = TestServer::start().await;
    let empty = trends(&server, 7).await;
    assert!(empty["day"].is_null(), "no event yet: no today: {empty}");
    post_weeks(&server).await;
    let week = trends(&server, 7).await;
    assert_eq!(week["days"].as_array().unwrap().len(), 7);
    let yesterday = date(2026, 11, 19);
    check_day(
        day_in(&week, yesterday),
        yesterday,
        &expected(&calls_of(yesterday)),
    );
    // Older days are gone with the engine's memory, and so is the comparison.
    assert_eq!(day_in(&week, date(2026, 11, 13))["calls"], 0);
    assert!(week["comparison"].is_null());
}

#[tokio::test]
async fn trends_are_for_supervisors_only() {
    let config = "[auth]\ningest_tokens = [\"ingest-1\"]\nviewer_tokens = [\"viewer-1\"]\nsupervisor_tokens = [\"super-1\"]\n";
    let (server, dir) = server_with_store("auth", config).await;
    let http = reqwest::Client::new();
    for (token, status) in [
        (None, 401),
        (Some("viewer-1"), 401),
        (Some("ingest-1"), 401),
        (Some("super-1"), 200),
    ] {
        let mut request = http.get(server.url("/api/trends?days=28"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{token:?}");
    }
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_past_day_is_served_from_its_summary_until_the_store_records_a_change_to_it() {
    let (server, dir) = server_with_store("cache", "").await;
    post_weeks(&server).await;
    let tuesday = date(2026, 11, 10);
    let calls = calls_of(tuesday);
    assert!(matches!(calls[0].kind, Kind::Answered(_)));
    let before = trends(&server, 28).await;
    check_day(day_in(&before, tuesday), tuesday, &expected(&calls));

    // Edit the store behind the server's back: the cached summary stands.
    let db = rusqlite::Connection::open(dir.join(wallboard::journal::DB_FILE)).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let edited = db
        .execute(
            "UPDATE finished_calls SET outcome = 'queue_abandoned' WHERE call = ?1",
            [id(tuesday, 0)],
        )
        .unwrap();
    assert_eq!(edited, 1);
    // A week's request between keeps the month's days cached too.
    trends(&server, 7).await;
    assert_eq!(trends(&server, 28).await, before, "served from the cache");

    // A call recorded for that day sums it up again, the edit with it.
    let backfill = Call {
        start: at(tuesday, 13, 0),
        kind: Kind::Answered(5),
    };
    server
        .post_ok(&events_of(&id(tuesday, calls.len()), &backfill).join("\n"))
        .await;
    let after = trends_when(&server, |t| day_in(t, tuesday)["calls"] == calls.len() + 1).await;
    let reachable = &day_in(&after, tuesday)["definitions"]["reachable"];
    assert_eq!(
        reachable["boxes"]["answered"],
        calls.len(),
        "one answered less, one more"
    );
    assert_eq!(reachable["boxes"]["missed"], 1, "the edited call");
    drop(db);
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
