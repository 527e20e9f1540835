//! `cargo bench --bench store`: durable ingest over HTTP (events/s with 1 and
//! 8 concurrent posters, every batch committed before its 200) and the time
//! to restart on a store holding a 100,000-call day. Medians of several runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use wallboard::clock::{Clock, WallClock};
use wallboard::config::Config;
use wallboard::event::{Direction, EndedBy, Event, EventKind};
use wallboard::hub::{Hub, StoreSettings};
use wallboard::server::{self, ServeOptions};

const RUNS: usize = 3;
const EVENTS_PER_POST: usize = 50;
const POSTED_EVENTS: usize = 40_000;
const DAY_CALLS: u64 = 100_000;
const QUEUES: [&str; 4] = ["appointments", "results", "prescriptions", "reception"];

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wallboard-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One inbound call's seven events: IVR, queue, ring, answer, end.
pub fn call_events(n: u64, start: Timestamp) -> Vec<Event> {
    tagged_call_events("bench", n, start)
}

/// The same, its call named `TAG-N` (runs that share one log need their own calls).
pub fn tagged_call_events(tag: &str, n: u64, start: Timestamp) -> Vec<Event> {
    let call = format!("{tag}-{n}");
    let at = |secs: i64| start + SignedDuration::from_secs(secs);
    let agent = format!("agent-{}", n % 40);
    let kinds = [
        (
            0,
            EventKind::CallStarted {
                direction: Direction::Inbound,
                channel: "voice".into(),
                from: Some(format!("+44 7700 9{:05}", n % 100_000)),
                to: None,
                line: Some("main".into()),
                dialer: false,
            },
        ),
        (1, EventKind::IvrStarted { menu: None }),
        (
            6,
            EventKind::IvrInput {
                digits: Some("1".into()),
            },
        ),
        (
            7,
            EventKind::Queued {
                queue: QUEUES[(n % 4) as usize].into(),
            },
        ),
        (
            7 + (n % 90) as i64,
            EventKind::Offered {
                agent: agent.clone(),
                queue: None,
            },
        ),
        (10 + (n % 90) as i64, EventKind::Answered { agent }),
        (
            130 + (n % 300) as i64,
            EventKind::Ended {
                by: EndedBy::Caller,
            },
        ),
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, (secs, kind))| Event {
            id: Some(format!("{call}#{i}")),
            call: Some(call.clone()),
            at: at(secs),
            kind,
        })
        .collect()
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

async fn start_server(dir: &Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions {
        data_dir: Some(dir.to_owned()),
        ..ServeOptions::new(Config::default())
    };
    tokio::spawn(server::run(listener, options, async move {
        let _ = stopped.await;
    }));
    // Wait until it answers.
    let client = reqwest::Client::new();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (base, stop)
}

/// Events per second accepted by `posters` concurrent HTTP posters.
async fn ingest_rate(posters: usize, run: usize) -> f64 {
    let dir = temp_dir(&format!("ingest-{posters}-{run}"));
    let (base, stop) = start_server(&dir).await;
    let start = Timestamp::now();
    let calls = (POSTED_EVENTS / 7) as u64;
    let bodies: Vec<String> = (0..calls)
        .flat_map(|n| call_events(n, start))
        .collect::<Vec<_>>()
        .chunks(EVENTS_PER_POST)
        .map(|chunk| chunk.iter().map(|e| e.to_json_line() + "\n").collect())
        .collect();
    let bodies = Arc::new(bodies);
    let client = reqwest::Client::new();
    let began = Instant::now();
    let tasks: Vec<_> = (0..posters)
        .map(|p| {
            let (client, bodies, url) =
                (client.clone(), bodies.clone(), format!("{base}/api/events"));
            tokio::spawn(async move {
                for body in bodies.iter().skip(p).step_by(posters) {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = (bodies.len() * EVENTS_PER_POST) as f64 / began.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn fixed_clock(at: Timestamp) -> WallClock {
    Arc::new(move || at)
}

fn store(dir: &Path) -> StoreSettings {
    StoreSettings {
        dir: dir.to_owned(),
        retention_days: 90,
    }
}

/// Fills a store with a day of `DAY_CALLS` calls; returns the day's last instant.
async fn fill_day(dir: &Path) -> Timestamp {
    let day_start: Timestamp = "2026-11-20T06:00:00Z".parse().unwrap();
    let end = day_start + SignedDuration::from_hours(17);
    let hub = Hub::open(
        Config::default().engine,
        Clock::Wall,
        fixed_clock(end),
        store(dir),
    )
    .unwrap();
    let spacing_ms = 16 * 3600 * 1000 / DAY_CALLS as i64;
    let mut batch = Vec::new();
    for n in 0..DAY_CALLS {
        batch.extend(call_events(
            n,
            day_start + SignedDuration::from_millis(spacing_ms * n as i64),
        ));
        if batch.len() >= 20_000 {
            hub.ingest(std::mem::take(&mut batch)).await.unwrap();
        }
    }
    hub.ingest(batch).await.unwrap();
    end
}

fn main() {
    // `cargo test --all-targets` runs bench binaries too; measure only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/store.rs: run with `cargo bench --bench store`");
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // WALLBOARD_BENCH=restart skips the ingest runs.
    let only_restart = std::env::var("WALLBOARD_BENCH").is_ok_and(|v| v == "restart");
    runtime.block_on(async {
        for posters in [1, 8].into_iter().filter(|_| !only_restart) {
            let mut rates = Vec::new();
            for run in 0..RUNS {
                rates.push(ingest_rate(posters, run).await);
            }
            println!(
                "durable ingest, {posters} poster(s), {EVENTS_PER_POST} events per POST: median {:.0} events/s (runs: {})",
                median(rates.clone()),
                rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
            );
        }

        restart().await;
    });
}

/// Restart figures: the median time to reopen a store holding a
/// `DAY_CALLS`-call day, and its minimal counterpart, parsing every stored
/// line plus the engine taking every event (seconds).
pub struct Restart {
    /// Median time to a rebuilt board, store checked.
    pub restart_secs: f64,
    /// Parsing all the day's stored lines, then the engine ingesting them all.
    pub parse_and_engine_secs: f64,
}

/// Times a restart on a `DAY_CALLS`-call day (and where its time could go),
/// printing as it goes.
pub async fn restart() -> Restart {
    // Where restart time goes: parsing stored lines, and the engine itself.
    let start: Timestamp = "2026-11-20T06:00:00Z".parse().unwrap();
    let day: Vec<Event> = (0..DAY_CALLS)
        .flat_map(|n| call_events(n, start + SignedDuration::from_millis(576 * n as i64)))
        .collect();
    let lines: Vec<String> = day.iter().map(Event::to_json_line).collect();
    let began = Instant::now();
    for line in &lines {
        std::hint::black_box(Event::from_stored(line).unwrap());
    }
    let parse_secs = began.elapsed().as_secs_f64();
    println!("parse {} stored events: {parse_secs:.2} s", lines.len());
    let settings = Arc::new(wallboard::engine::EngineSettings {
        feed_clock: true,
        ..Config::default().engine
    });
    let mut engine = wallboard::engine::Engine::new(settings, Timestamp::UNIX_EPOCH);
    let began = Instant::now();
    for chunk in day.chunks(1000) {
        engine.ingest(chunk.to_vec());
    }
    let engine_secs = began.elapsed().as_secs_f64();
    println!("engine ingest of {} events: {engine_secs:.2} s", day.len());

    let dir = temp_dir("restart");
    let filling = Instant::now();
    let now = fill_day(&dir).await;
    if std::env::var("WALLBOARD_BENCH_KEEP").is_ok() {
        println!("filled store kept at {}", dir.display());
        std::process::exit(0);
    }
    println!(
        "filled a store with {DAY_CALLS} calls ({} events) in {:.1?}",
        DAY_CALLS * 7,
        filling.elapsed()
    );
    let mut secs = Vec::new();
    for _ in 0..RUNS {
        let began = Instant::now();
        let hub = Hub::open(
            Config::default().engine,
            Clock::Wall,
            fixed_clock(now),
            store(&dir),
        )
        .unwrap();
        secs.push(began.elapsed().as_secs_f64());
        let calls = hub.with_engine(|e| e.day(e.today()).map_or(0, |s| s.all.calls()));
        assert_eq!(calls, DAY_CALLS as i64, "the whole day is rebuilt");
    }
    println!(
        "restart with a {DAY_CALLS}-call day: median {:.2} s (runs: {})",
        median(secs.clone()),
        secs.iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let restart_secs = median(secs);
    // One publish of that day's board (nothing changed since the last):
    // with nobody watching the supervisor's detail, then with one watching.
    let hub = Hub::open(
        Config::default().engine,
        Clock::Wall,
        fixed_clock(now),
        store(&dir),
    )
    .unwrap();
    let publish_ms = |hub: &Hub| {
        let runs: Vec<f64> = (0..20)
            .map(|_| {
                let began = Instant::now();
                hub.publish();
                began.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        median(runs)
    };
    let unwatched = publish_ms(&hub);
    let _supervisor = hub.detail_feed().subscribe();
    let watched = publish_ms(&hub);
    println!(
        "publish on that day: median {unwatched:.2} ms with no supervisor, {watched:.2} ms with one"
    );
    drop(hub);
    // Every start runs quick_check (included above); on its own:
    let checks: Vec<f64> = (0..RUNS)
        .map(|_| {
            let report = wallboard::maintenance::check(&dir).unwrap();
            assert!(report.problem.is_none(), "{report:?}");
            report.took.as_secs_f64()
        })
        .collect();
    println!("quick_check of that store: median {:.2} s", median(checks));
    let _ = std::fs::remove_dir_all(&dir);
    Restart {
        restart_secs,
        parse_and_engine_secs: parse_secs + engine_secs,
    }
}
