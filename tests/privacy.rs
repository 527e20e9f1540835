//! Public boards never carry caller numbers or agent names, checked on the
//! bytes a client receives (HTML and WebSocket); the supervisor routes do.

use std::time::Duration;

mod common;

use common::TestServer;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use wallboard::config::Config;
use wallboard::server::ServeOptions;

const CALLER: &str = "+44 7700 900123";
const AGENT: &str = "Priya Raman";
const CONFIG: &str = r#"
[[board]]
name = "sales"
title = "Sales"
queues = ["sales"]
tiles = ["queued", "longest_waiting", "answered", "agents_available", "talking"]
"#;

/// Starts a server on port 0 (the shared harness); returns its base URL and
/// the server, which stops when dropped.
async fn start() -> (String, TestServer) {
    let config = Config::parse(CONFIG, "test.toml").unwrap();
    let server = TestServer::start_with(ServeOptions::new(config)).await;
    (server.base.clone(), server)
}

async fn post(base: &str, events: &str) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/events"))
        .header("content-type", "application/x-ndjson")
        .body(events.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// Every text frame received on `path` within `for_how_long`, joined.
async fn frames(base: &str, path: &str, for_how_long: Duration) -> String {
    let url = format!("{}{path}", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut all = String::new();
    let _ = tokio::time::timeout(for_how_long, async {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                all.push_str(&text);
            }
        }
    })
    .await;
    all
}

async fn get(base: &str, path: &str) -> String {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn public_boards_carry_no_caller_numbers_or_agent_names() {
    let (base, _stop) = start().await;
    let now = jiff::Timestamp::now();
    let at = |secs: i64| (now - jiff::SignedDuration::from_secs(secs)).to_string();
    // Subscribe before the events so the deltas that carry them are seen too.
    let board_stream = tokio::spawn({
        let base = base.clone();
        async move { frames(&base, "/ws", Duration::from_millis(1500)).await }
    });
    let detail_stream = tokio::spawn({
        let base = base.clone();
        async move { frames(&base, "/ws/supervisor", Duration::from_millis(1500)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    post(
        &base,
        &[
            format!(r#"{{"type":"agent_status","at":"{}","agent":"{AGENT}","status":"available","queues":["sales"]}}"#, at(120)),
            format!(r#"{{"type":"call_started","call":"c1","at":"{}","direction":"inbound","channel":"voice","from":"{CALLER}"}}"#, at(100)),
            format!(r#"{{"type":"queued","call":"c1","at":"{}","queue":"sales"}}"#, at(95)),
            format!(r#"{{"type":"answered","call":"c1","at":"{}","agent":"{AGENT}"}}"#, at(90)),
            format!(r#"{{"type":"call_started","call":"c2","at":"{}","direction":"inbound","channel":"voice","from":"{CALLER}"}}"#, at(80)),
            format!(r#"{{"type":"queued","call":"c2","at":"{}","queue":"sales"}}"#, at(79)),
            format!(r#"{{"type":"ended","call":"c2","at":"{}"}}"#, at(10)),
        ]
        .join("\n"),
    )
    .await;
    let board_bytes = board_stream.await.unwrap();
    let detail_bytes = detail_stream.await.unwrap();
    let pages = [
        get(&base, "/").await,
        get(&base, "/board/sales").await,
        get(&base, "/api/snapshot").await,
        board_bytes.clone(),
    ];
    for page in &pages {
        assert!(!page.contains(CALLER), "a caller number leaked");
        assert!(!page.contains("7700 9"), "part of a caller number leaked");
        assert!(!page.contains(AGENT), "an agent name leaked");
    }
    assert!(
        board_bytes.contains(r#""talking":1"#),
        "the board stream saw the call"
    );
    let sales = get(&base, "/board/sales").await;
    assert!(sales.contains(r#"data-path="groups.sales.live.talking""#));

    // The supervisor routes do carry them.
    let api = get(&base, "/api/supervisor").await;
    assert!(api.contains(CALLER) && api.contains(AGENT), "{api}");
    assert!(detail_bytes.contains(CALLER) && detail_bytes.contains(AGENT));
    assert!(get(&base, "/supervisor").await.contains("Live calls"));
}

#[tokio::test]
async fn unknown_board_is_not_found() {
    let (base, _stop) = start().await;
    let response = reqwest::get(format!("{base}/board/nope")).await.unwrap();
    assert_eq!(response.status(), 404);
}
