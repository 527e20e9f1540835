//! A source runs on one node of a cluster at a time: two real `wallboard
//! serve` processes share a NATS server and the same `queue_log` file; the
//! lease holder follows the file while the other stands by; the holder is
//! SIGKILLed and the other takes over within a few seconds, from the
//! checkpoint the holder left in the cluster: nothing counted twice or skipped.

mod common;
mod natsd;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::within;
use jiff::Timestamp;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use wallboard::source::Format;

/// 2026-11-26T08:00:00Z: every synthetic row falls on that one day.
const DAY_START: i64 = 1_795_680_000;
/// Longest wait for a takeover: the lease (6 s) plus a look (1 s), with room
/// for a slow machine.
const TAKEOVER_WITHIN: Duration = Duration::from_secs(15);
/// A holder cut off stops at most a renewal interval plus a bucket timeout
/// after its last renewal (2 s + 2 s): before the lease (6 s) lets anyone claim.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(6);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wallboard")
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open queue_log");
    file.write_all(text.as_bytes()).expect("append");
}

/// Rows for calls `calls` (the generator of tests/queue_log.rs): agents log
/// in, one journey of each kind in turn, a last row a minute after the last
/// call. Each chunk's calls end within it.
fn rows(calls: std::ops::Range<i64>) -> String {
    let mut out = String::new();
    let t0 = DAY_START + calls.start * 200;
    out += &format!("{t0}|NONE|q1|Agent/1|ADDMEMBER\n{t0}|NONE|q2|Agent/2|ADDMEMBER\n");
    for i in calls.clone() {
        let t = DAY_START + i * 200 + 1;
        let c = format!("{t}.{i}");
        let line = |dt: i64, queue: &str, agent: &str, rest: &str| {
            format!("{}|{c}|{queue}|{agent}|{rest}\n", t + dt)
        };
        out += &line(0, "q1", "NONE", &format!("ENTERQUEUE||555{i:04}|1"));
        out += &match i % 6 {
            0 => [
                line(15, "q1", "Agent/2", "RINGNOANSWER|15000"),
                line(22, "q1", "Agent/1", "CONNECT|22|x.1|5"),
                line(90, "q1", "Agent/1", "COMPLETECALLER|22|68|1"),
            ]
            .concat(),
            1 => line(40, "q1", "NONE", "ABANDON|1|1|40"),
            2 => [
                line(60, "q1", "NONE", "EXITWITHTIMEOUT|1|1|60"),
                line(61, "q2", "NONE", "ENTERQUEUE||555|1"),
                line(70, "q2", "Agent/2", "CONNECT|9|x.2|3"),
                line(95, "q2", "Agent/2", "COMPLETEAGENT|9|25|1"),
            ]
            .concat(),
            3 => line(30, "q1", "NONE", "EXITWITHKEY|5|1"),
            4 => [
                line(10, "q1", "Agent/1", "CONNECT|10|x.3|2"),
                line(50, "q1", "Agent/1", "BLINDTRANSFER|1142|ctx|10|40"),
            ]
            .concat(),
            _ => line(100, "q1", "NONE", "EXITWITHTIMEOUT|1|1|100"),
        };
    }
    let end = DAY_START + calls.end * 200 + 60;
    out += &format!("{end}|NONE|NONE|Agent/1|PAUSE|Lunch\n");
    out
}

/// The time of a chunk's last row, as the source reports it once stored.
fn last_time(chunk: &str) -> Timestamp {
    let epoch = chunk.lines().last().and_then(|l| l.split('|').next());
    Timestamp::from_second(epoch.expect("a row").parse().expect("epoch")).expect("time")
}

/// `wallboard classify --format queue-log FILE`: the totals.
fn classify(file: &Path) -> Value {
    let output = std::process::Command::new(bin())
        .args(["classify", "--format", "queue-log"])
        .arg(file)
        .output()
        .expect("run classify");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("JSON totals")
}

/// The board's outcomes and boxes equal `classify`'s totals of `file`.
fn assert_board_is_classify(board: &Value, file: &Path, what: &str) {
    let totals = classify(file);
    assert_eq!(board["outcomes"], totals["outcomes"], "{what}: outcomes");
    for (name, figures) in totals["definitions"].as_object().expect("definitions") {
        assert_eq!(
            board["definitions"][name]["boxes"], figures["boxes"],
            "{what}: boxes of {name}"
        );
    }
}

/// A `wallboard serve` process, killed when dropped.
struct Node {
    name: &'static str,
    child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Node {
    /// Starts node `name` with its own data directory and `config`.
    async fn start(name: &'static str, dir: &Path, config: &str) -> Node {
        let config_file = dir.join(format!("{name}.toml"));
        std::fs::write(&config_file, config).expect("config");
        let mut child = tokio::process::Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--clock", "feed"])
            .arg("--data-dir")
            .arg(dir.join(format!("{name}-data")))
            .arg("--config")
            .arg(&config_file)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let base = within(async {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(line) = lines.next_line().await.expect("stdout line") {
                if let Some(url) = line.strip_prefix("wallboard: the board is at ") {
                    let url = url.split_whitespace().next().unwrap_or(url);
                    return url.trim_end_matches('/').to_owned();
                }
            }
            panic!("node {name} stopped before listening");
        })
        .await;
        Node {
            name,
            child,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let text = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body");
        serde_json::from_str(&text).expect("JSON")
    }

    /// Its `GET /api/sources` entry of the only source.
    async fn source(&self) -> Value {
        self.get("/api/sources").await["sources"][0].clone()
    }

    /// Polls its source until `done` holds; fails after `wait`.
    async fn source_when(&self, wait: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + wait;
        loop {
            let source = self.source().await;
            if done(&source) {
                return source;
            }
            assert!(
                Instant::now() < deadline,
                "node {}: source still {source}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its board once it counts `calls` calls (the cluster's log may still
    /// be bringing the other node's events in).
    async fn board_with(&self, calls: i64) -> Value {
        within(async {
            loop {
                let board = self.get("/api/snapshot").await;
                if common::sum(&board["outcomes"]) >= calls {
                    return board;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }

    /// SIGKILL: no clean stop, no lease released, no last checkpoint.
    async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// SIGTERM, as a service manager stops it: a clean stop.
    async fn terminate(mut self) {
        let pid = self.child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let stopped = tokio::time::timeout(common::WAIT, self.child.wait()).await;
        assert!(
            stopped.expect("stopped in time").expect("exit").success(),
            "node {} stops cleanly",
            self.name
        );
    }
}

/// Whether a source entry has stored the row at `until`.
fn stored_until(source: &Value, until: Timestamp) -> bool {
    let at = source["last_event_at"]
        .as_str()
        .and_then(|t| t.parse().ok());
    at >= Some(until)
}

/// The checkpoint the holder saved in the cluster: the file offset it reached.
async fn checkpoint_offset(nats_url: &str) -> Option<u64> {
    let client = async_nats::connect(nats_url).await.ok()?;
    let js = async_nats::jetstream::new(client);
    let kv = js.get_key_value("wallboard_checkpoints").await.ok()?;
    let bytes = kv.get("pbx").await.ok()??;
    let checkpoint: Value = serde_json::from_slice(&bytes).ok()?;
    checkpoint["file"]["offset"].as_u64()
}

// Two nodes, one `queue_log` source: one runs it, the other stands by; the
// runner is killed halfway through the day and the other takes over from
// the checkpoint in the cluster. Every row's events are stored once (by the
// first node up to its checkpoint, by the second after it), and both nodes'
// boards, applying the cluster's log, equal `classify` of the whole file.
// The killed node then comes back and takes over when the other stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_log_source_moves_to_the_other_node_when_its_leader_dies() {
    if !natsd::available() {
        return;
    }
    let nats = natsd::NatsCluster::start(1).await;
    let dir = natsd::tempdir::Dir::new("failover");
    let log = dir.path().join("queue_log");
    let (first, second, third) = (rows(0..30), rows(30..60), rows(60..70));
    append(&log, &first);
    let config = |node: &str| {
        format!(
            "{}node = {node:?}\n\n[[source]]\nkind = \"queue-log\"\nname = \"pbx\"\npath = {:?}\nfrom = \"start\"\ncontinue_secs = 2\n",
            nats.config_block(1),
            log.display().to_string(),
        )
    };
    let (config_a, config_b) = (config("a"), config("b"));
    let (a, b) = tokio::join!(
        Node::start("a", dir.path(), &config_a),
        Node::start("b", dir.path(), &config_b),
    );

    // Exactly one runs it; the other says who does.
    let leader_of = |s: &Value| s["node"].as_str().map(str::to_owned);
    let running = |s: &Value, me: &str| s["state"] == "connected" && s["node"] == me;
    let standing_by = |s: &Value, leader: &str| s["state"] == "standby" && s["node"] == leader;
    let leader = a
        .source_when(TAKEOVER_WITHIN, |s| {
            s["state"] == "standby" || running(s, "a")
        })
        .await;
    let (leader, survivor) = match leader_of(&leader).as_deref() {
        Some("a") => (a, b),
        _ => (b, a),
    };
    let held = leader
        .source_when(common::WAIT, |s| {
            running(s, leader.name) && stored_until(s, last_time(&first))
        })
        .await;
    let waiting = survivor
        .source_when(common::WAIT, |s| standing_by(s, leader.name))
        .await;
    assert_eq!(
        waiting["events"], 0,
        "the standby node read nothing: {waiting}"
    );

    // The holder checkpoints in the cluster what its store took: the whole
    // first half. Its board is that half.
    let half = std::fs::metadata(&log).expect("log").len();
    within(async {
        while checkpoint_offset(&nats.url(0)).await != Some(half) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let first_file = dir.path().join("first");
    std::fs::write(&first_file, &first).expect("first half");
    let board = leader.get("/api/snapshot").await;
    assert_board_is_classify(&board, &first_file, "the leader's board");
    let leader_events = leader.source().await["events"].as_i64().expect("events");
    assert_eq!(leader_events, held["events"].as_i64().expect("events"));

    // SIGKILL: the lease is neither renewed nor released.
    let killed = Instant::now();
    let leader_name = leader.name;
    leader.kill().await;
    append(&log, &second);
    let took_over = survivor
        .source_when(TAKEOVER_WITHIN, |s| running(s, survivor.name))
        .await;
    let after = killed.elapsed();
    eprintln!(
        "node {} took over {after:?} after {leader_name} was killed",
        survivor.name
    );
    assert!(
        after >= Duration::from_secs(4),
        "not before the lease could expire: {after:?} {took_over}"
    );
    let done = survivor
        .source_when(common::WAIT, |s| stored_until(s, last_time(&second)))
        .await;
    assert_eq!(done["skipped"], 0, "{done}");

    // Nothing twice, nothing skipped: the events the two nodes' sources
    // stored are the whole file's, and the survivor's board (which applied
    // the leader's events from the cluster's log too) is `classify` of it.
    let whole = dir.path().join("whole");
    std::fs::write(&whole, format!("{first}{second}")).expect("whole");
    let all = wallboard::source::offline::read_file(Format::QueueLog, &whole).expect("read");
    let survivor_events = done["events"].as_i64().expect("events");
    assert_eq!(
        leader_events + survivor_events,
        all.len() as i64,
        "events stored by {leader_name} and by {}",
        survivor.name
    );
    let board = survivor.board_with(60).await;
    assert_board_is_classify(&board, &whole, "the survivor's board");

    // The killed node comes back under the same name: the lease is the
    // survivor's, so it stands by. The survivor is then stopped cleanly: it
    // releases the lease and the other takes over at once, from where the
    // survivor's checkpoint left the file.
    let back = Node::start(leader_name, dir.path(), &config(leader_name)).await;
    back.source_when(TAKEOVER_WITHIN, |s| standing_by(s, survivor.name))
        .await;
    let stopped = Instant::now();
    survivor.terminate().await;
    append(&log, &third);
    back.source_when(common::WAIT, |s| running(s, back.name))
        .await;
    let after = stopped.elapsed();
    assert!(
        after < Duration::from_secs(4),
        "a released lease is taken at once, not after it expires: {after:?}"
    );
    let resumed = back
        .source_when(common::WAIT, |s| stored_until(s, last_time(&third)))
        .await;
    let third_events = wallboard::source::offline::read_file(Format::QueueLog, &{
        let file = dir.path().join("third");
        std::fs::write(&file, &third).expect("third part");
        file
    })
    .expect("read")
    .len();
    assert_eq!(
        resumed["events"].as_i64(),
        Some(third_events as i64),
        "only the rows after the survivor's checkpoint: {resumed}"
    );
    let everything = dir.path().join("everything");
    std::fs::write(&everything, format!("{first}{second}{third}")).expect("file");
    let board = back.board_with(70).await;
    assert_board_is_classify(&board, &everything, "the restarted node's board");
}

// A holder cut off from the cluster stops its source at once (it can no
// longer renew, so another node may soon claim), and runs it again, from its
// checkpoint, once the cluster answers and the lease is still its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_cut_off_from_the_cluster_stops_its_source() {
    if !natsd::available() {
        return;
    }
    let mut nats = natsd::NatsCluster::start(1).await;
    let dir = natsd::tempdir::Dir::new("cut-off");
    let log = dir.path().join("queue_log");
    let (before, after) = (rows(0..6), rows(6..12));
    append(&log, &before);
    let config = format!(
        "{}node = \"a\"\n\n[[source]]\nkind = \"queue-log\"\nname = \"pbx\"\npath = {:?}\nfrom = \"start\"\n",
        nats.config_block(1),
        log.display().to_string(),
    );
    let a = Node::start("a", dir.path(), &config).await;
    a.source_when(TAKEOVER_WITHIN, |s| {
        s["state"] == "connected" && stored_until(s, last_time(&before))
    })
    .await;

    let cut = Instant::now();
    nats.kill(0);
    let stopped = a
        .source_when(TAKEOVER_WITHIN, |s| s["state"] == "connecting")
        .await;
    let error = stopped["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("lease: "), "{stopped}");
    assert!(
        cut.elapsed() < CUT_OFF_WITHIN,
        "stopped before another node could claim: {:?}",
        cut.elapsed()
    );

    nats.restart(0).await;
    append(&log, &after);
    let back = a
        .source_when(Duration::from_secs(30), |s| {
            s["state"] == "connected" && stored_until(s, last_time(&after))
        })
        .await;
    assert_eq!(back["node"], "a");
    assert_eq!(back["skipped"], 0, "{back}");
}
