//! `cargo bench --bench cluster`: clustered ingest over HTTP (events/s with 1
//! and 8 posters, each batch answered once JetStream stored it on a quorum of
//! three local NATS servers and the node applied it) next to the same node
//! without `[cluster]`, and the time a node that missed a 100,000-call day
//! takes to catch up from the stream. Needs `nats-server` on the PATH.

#[path = "../tests/natsd/mod.rs"]
mod natsd;
// The call generator and the median, shared with the other benches.
#[allow(dead_code)]
#[path = "store.rs"]
mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use wallboard::clock::Clock;
use wallboard::config::Config;
use wallboard::event::Event;
use wallboard::server::{self, ServeOptions, Server};

use store::{median, tagged_call_events};

const RUNS: usize = 3;
const EVENTS_PER_POST: usize = 50;
const POSTED_EVENTS: usize = 20_000;
const DAY_CALLS: u64 = 100_000;

/// `[cluster]` on `nats` with stream `stream`, or none.
fn config(nats: Option<(&natsd::NatsCluster, &str)>) -> Config {
    let text = nats.map_or(String::new(), |(nats, stream)| {
        format!("{}stream = {stream:?}\n", nats.config_block(3))
    });
    Config::parse(&text, "bench").unwrap()
}

/// A server on `dir`, answering on the returned base URL until the sender is dropped.
async fn start_server(dir: &Path, config: Config) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions {
        data_dir: Some(dir.to_owned()),
        ..ServeOptions::new(config)
    };
    tokio::spawn(server::run(listener, options, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (base, stop)
}

/// Events per second accepted by `posters` concurrent HTTP posters.
async fn ingest_rate(posters: usize, config: Config, tag: &str) -> f64 {
    let dir = natsd::tempdir::Dir::new(&format!("bench-{tag}"));
    let (base, stop) = start_server(dir.path(), config).await;
    // An hour ago: a call's events span minutes, none may be in the future.
    let start = Timestamp::now() - SignedDuration::from_hours(1);
    let calls = (POSTED_EVENTS / 7) as u64;
    let bodies: Vec<String> = (0..calls)
        .flat_map(|n| tagged_call_events(tag, n, start))
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
                    assert!(
                        r.status().is_success(),
                        "{}",
                        r.text().await.unwrap_or_default()
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = (bodies.len() * EVENTS_PER_POST) as f64 / began.elapsed().as_secs_f64();
    let _ = stop.send(());
    rate
}

/// Publishes a day of `DAY_CALLS` calls straight to the stream (as the
/// nodes that took it would have), then times a node with an empty store
/// from start until it has applied all of it.
async fn catch_up(nats: &natsd::NatsCluster) -> (f64, f64) {
    let stream = "catchup";
    let config = config(Some((nats, stream)));
    let settings = config.cluster.clone().unwrap();
    let cluster = wallboard::cluster::Cluster::connect(&settings)
        .await
        .unwrap();
    let (_, writer) = wallboard::cluster::stream::open(
        &cluster.client,
        stream,
        3,
        Duration::from_secs(90 * 86_400),
    )
    .await
    .unwrap();
    let day_start: Timestamp = "2026-11-20T06:00:00Z".parse().unwrap();
    let spacing_ms = 16 * 3600 * 1000 / DAY_CALLS as i64;
    let filling = Instant::now();
    let mut batch = Vec::new();
    for n in 0..DAY_CALLS {
        let start = day_start + SignedDuration::from_millis(spacing_ms * n as i64);
        batch.extend(tagged_call_events("day", n, start));
        if batch.len() >= 5_000 || n + 1 == DAY_CALLS {
            let received = batch.last().map_or(start, |e: &Event| e.at);
            writer.publish(&batch, received).await.unwrap();
            batch.clear();
        }
    }
    let filled = filling.elapsed().as_secs_f64();
    let dir = natsd::tempdir::Dir::new("bench-catchup");
    let began = Instant::now();
    let options = ServeOptions {
        data_dir: Some(dir.path().to_owned()),
        clock: Clock::Feed,
        ..ServeOptions::new(config)
    };
    let server = Server::open(options).await.unwrap();
    let hub = server.hub().clone();
    while !hub.pipeline().progress().unwrap().caught_up() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = began.elapsed().as_secs_f64();
    let calls = hub.with_engine(|e| e.day(e.today()).map_or(0, |s| s.all.calls()));
    assert_eq!(calls, DAY_CALLS as i64, "the whole day is applied");
    (filled, took)
}

fn main() {
    // `cargo test --all-targets` runs bench binaries too; measure only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/cluster.rs: run with `cargo bench --bench cluster`");
        return;
    }
    if !natsd::available() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let nats = natsd::NatsCluster::start(3).await;
        for posters in [1, 8] {
            let mut single = Vec::new();
            let mut clustered = Vec::new();
            for run in 0..RUNS {
                single.push(ingest_rate(posters, config(None), &format!("s{posters}-{run}")).await);
                let stream = format!("ingest{posters}x{run}");
                let config = config(Some((&nats, &stream)));
                clustered.push(ingest_rate(posters, config, &format!("c{posters}-{run}")).await);
            }
            let runs = |xs: &[f64]| xs.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ");
            println!(
                "{posters} poster(s), {EVENTS_PER_POST} events per POST: single node median {:.0} events/s ({}); \
                 clustered (3 NATS servers, R3) median {:.0} events/s ({})",
                median(single.clone()),
                runs(&single),
                median(clustered.clone()),
                runs(&clustered)
            );
        }
        let (filled, took) = catch_up(&nats).await;
        println!(
            "published a {DAY_CALLS}-call day ({} events) to the stream in {filled:.1} s; \
             a node with an empty store caught up with it in {took:.1} s",
            DAY_CALLS * 7
        );
    });
}
