//! The source runtime against a real server: every configured source reports
//! its state in `GET /api/sources` and `/metrics`, and a source that is down
//! shows on the boards of its queues ("feed down since") and the supervisor's detail.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestServer, within};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use wallboard::config::Config;
use wallboard::server::ServeOptions;

/// The demo is a source like any other: connected, feeding, counted.
#[tokio::test]
async fn the_demo_source_reports_its_state() {
    let server = TestServer::start_with(ServeOptions {
        demo: true,
        ..ServeOptions::new(Config::default())
    })
    .await;
    let demo = within(async {
        loop {
            let (status, text) = server.get("/api/sources").await;
            assert_eq!(status, 200, "{text}");
            let sources: Value = serde_json::from_str(&text).expect("JSON");
            let demo = sources["sources"][0].clone();
            if demo["events"].as_u64() > Some(0) {
                return demo;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(demo["name"], "demo");
    assert_eq!(demo["kind"], "demo");
    assert_eq!(demo["state"], "connected");
    assert_eq!(demo["skipped"], 0);
    assert!(demo["last_event_at"].is_string(), "{demo}");
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("wallboard_source_up{source=\"demo\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("wallboard_source_events_total{source=\"demo\"}"));
}

/// A configuration with no source lists none.
#[tokio::test]
async fn no_sources_configured_lists_none() {
    let server = TestServer::start().await;
    let (status, text) = server.get("/api/sources").await;
    assert_eq!((status, text.as_str()), (200, r#"{"sources":[]}"#));
}

/// An `ami` source `pbx` on `port`, a board over queue `sales` and one over `support`.
fn ami_config(port: u16) -> Config {
    let text = format!(
        r#"
[[source]]
kind = "ami"
name = "pbx"
host = "127.0.0.1"
port = {port}
username = "wallboard"
secret = "s3cret"

[[board]]
name = "sales"
title = "Sales"
queues = ["sales"]

[[board]]
name = "support"
title = "Support"
queues = ["support"]
"#
    );
    Config::parse(&text, "test").expect("config")
}

/// The "feed down" line as a board page renders it: `None` when hidden.
async fn feed_down_line(server: &TestServer, path: &str) -> Option<String> {
    let (status, html) = server.get(path).await;
    assert_eq!(status, 200, "{html}");
    let start = html
        .find(r#"<p class="feed-down""#)
        .expect("the line's element");
    let element = &html[start..];
    let element = &element[..element.find("</p>").expect("closed")];
    let (tag, text) = element.split_once('>').expect("a tag");
    (!tag.contains(" hidden")).then(|| text.to_owned())
}

/// The source `pbx` as `GET /api/sources` lists it, once `done` holds.
async fn pbx_when(server: &TestServer, done: impl Fn(&Value) -> bool) -> Value {
    within(async {
        loop {
            let (_, text) = server.get("/api/sources").await;
            let sources: Value = serde_json::from_str(&text).expect("JSON");
            let pbx = sources["sources"][0].clone();
            if done(&pbx) {
                return pbx;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// A PBX that is not there: the source fails at once, and, having named no
/// queue yet, shows on every board, down since it failed.
#[tokio::test]
async fn a_source_at_a_closed_port_is_down_on_every_board() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let server = TestServer::start_with(ServeOptions::new(ami_config(port))).await;

    let pbx = pbx_when(&server, |s| s["state"] == "failed").await;
    let board = server
        .snapshot_when(|b| b["feeds_down"]["pbx"].is_object())
        .await;
    let down = &board["feeds_down"]["pbx"];
    assert_eq!(down["since"], pbx["since"], "down since it failed: {board}");
    assert_eq!(down["queues"], serde_json::json!([]), "{board}");
    for path in ["/", "/board/sales", "/board/support"] {
        let line = feed_down_line(&server, path).await;
        let line = line.unwrap_or_else(|| panic!("no feed-down line on {path}"));
        assert!(
            line.starts_with("Feed down since ") && line.ends_with(" · pbx"),
            "{line}"
        );
    }
    let (_, detail) = server.get("/api/supervisor").await;
    let detail: Value = serde_json::from_str(&detail).expect("JSON");
    let listed = &detail["sources"][0];
    assert_eq!(
        (&listed["name"], &listed["state"]),
        (&"pbx".into(), &"failed".into())
    );
    assert_eq!(listed["down_since"], pbx["since"], "{detail}");
    assert!(listed["last_error"].is_string(), "{detail}");
}

/// A test manager speaking just enough AMI: banner, `Login`, `QueueStatus`
/// (with one caller joining `sales` the first time), then it holds the line
/// until told to hang up. While `up` is false it closes every connection at once.
struct Manager {
    port: u16,
    up: Arc<AtomicBool>,
    hang_up: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Manager {
    async fn start() -> Manager {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let hang_up = Arc::new(Notify::new());
        let (up2, hang_up2) = (up.clone(), hang_up.clone());
        let task = tokio::spawn(async move {
            let mut sessions = 0;
            while let Ok((socket, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue;
                }
                sessions += 1;
                tokio::spawn(manage(socket, sessions == 1, hang_up2.clone()));
            }
        });
        Manager {
            port,
            up,
            hang_up,
            task,
        }
    }
}

/// One connection: the handshake, then the line held until `hang_up`.
async fn manage(socket: TcpStream, first: bool, hang_up: Arc<Notify>) {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    let _ = write.write_all(b"Asterisk Call Manager/5.0.0\r\n").await;
    for answer in [
        "Response: Success\r\nMessage: Authentication accepted\r\n\r\n".to_owned(),
        queue_status(first),
    ] {
        // Each action ends with a blank line.
        loop {
            let mut line = String::new();
            match read.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) if line.trim().is_empty() => break,
                Ok(_) => {}
            }
        }
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
    // Pings and the like go unanswered: the test's sources do not ping.
    let mut sink = Vec::new();
    tokio::select! {
        () = hang_up.notified() => {}
        _ = tokio::io::AsyncReadExt::read_to_end(&mut read, &mut sink) => {}
    }
}

fn queue_status(first: bool) -> String {
    let join = "Event: QueueCallerJoin\r\nChannel: PJSIP/trunk-1\r\nCallerIDNum: 01632960123\r\n\
                Uniqueid: 1765000000.1\r\nLinkedid: 1765000000.1\r\nQueue: sales\r\n\
                Position: 1\r\nCount: 1\r\n\r\n";
    format!(
        "Response: Success\r\nMessage: Queue status will follow\r\n\r\n{}\
         Event: QueueStatusComplete\r\n\r\n",
        if first { join } else { "" }
    )
}

/// A source that fed queue `sales` and then dropped: the `sales` board and
/// the board of every queue show it, the `support` board does not; the
/// line clears live (a delta on `/ws`) when the source is back.
#[tokio::test]
async fn a_dropped_feed_shows_on_its_queues_boards_until_it_is_back() {
    let manager = Manager::start().await;
    let server = TestServer::start_with(ServeOptions::new(ami_config(manager.port))).await;
    pbx_when(&server, |s| {
        s["state"] == "connected" && s["events"].as_u64() > Some(0)
    })
    .await;
    let pbx = pbx_when(&server, |s| s["queues"] == serde_json::json!(["sales"])).await;
    assert!(server.snapshot().await.get("feeds_down").is_none());
    assert_eq!(feed_down_line(&server, "/board/sales").await, None);

    let mut ws = server.ws().await;
    manager.up.store(false, Ordering::SeqCst);
    manager.hang_up.notify_one();
    ws.wait_until(|b| b["feeds_down"]["pbx"].is_object()).await;
    let down = ws.board["feeds_down"]["pbx"].clone();
    assert_eq!(down["queues"], serde_json::json!(["sales"]), "{down}");
    let dropped = pbx_when(&server, |s| s["state"] != "connected").await;
    assert!(
        down["since"].as_str() >= pbx["since"].as_str()
            && down["since"].as_str() <= dropped["since"].as_str(),
        "down since the drop: {down} {dropped}"
    );
    for path in ["/", "/board/sales"] {
        let line = feed_down_line(&server, path).await;
        assert!(
            line.is_some_and(|l| l.ends_with(" · pbx")),
            "no line on {path}"
        );
    }
    assert_eq!(feed_down_line(&server, "/board/support").await, None);

    manager.up.store(true, Ordering::SeqCst);
    ws.wait_until(|b| b.get("feeds_down").is_none()).await;
    assert_eq!(feed_down_line(&server, "/board/sales").await, None);
    let pbx = pbx_when(&server, |s| s["state"] == "connected").await;
    assert!(
        pbx.get("last_error").is_some(),
        "the drop is remembered: {pbx}"
    );
}
