//! Hosted contact centres against a real server: Amazon Connect contact
//! events posted as an EventBridge API destination posts them, and Twilio
//! TaskRouter callbacks signed as Twilio signs them. The boards they build
//! must equal what `classify --format` makes of the same payloads.

mod common;

use std::path::PathBuf;

use base64::Engine as _;
use common::TestServer;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use wallboard::config::Config;
use wallboard::hub::Clock;
use wallboard::server::ServeOptions;

/// A day of Amazon Connect contact events, one EventBridge event a line.
const CONNECT: &str = include_str!("data/connect.ndjson");
/// A day of TaskRouter callbacks, one form body a line.
const TASKROUTER: &str = include_str!("data/taskrouter.form");
/// The account's auth token in these tests.
const AUTH_TOKEN: &str = "twilio-test-auth-token";
const PROXIED_URL: &str = "https://board.example.com/hooks/taskrouter";

/// A server with tokens, a store, a Connect source and two TaskRouter
/// sources (one behind a proxy); and the directory holding its files.
async fn start() -> (TestServer, PathBuf) {
    start_with_sources(&format!(
        r#"
[[source]]
kind = "connect"
name = "aws"
[source.queues]
"arn:aws:connect:eu-west-2:111122223333:instance/9d1c2b3a-0000-4000-8000-00000000aa01/queue/q-sales" = "Sales"
[source.agents]
"arn:aws:connect:eu-west-2:111122223333:instance/9d1c2b3a-0000-4000-8000-00000000aa01/agent/ag-amy" = "Amy"

[[source]]
kind = "taskrouter"
name = "twilio"
auth_token_file = "{{TOKEN}}"
[source.activities]
Lunch = "away"
Busy = "busy"

[[source]]
kind = "taskrouter"
name = "proxied"
auth_token_file = "{{TOKEN}}"
public_url = "{PROXIED_URL}"
"#
    ))
    .await
}

async fn start_with_sources(sources: &str) -> (TestServer, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "wallboard-hosted-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(dir.join("store")).unwrap();
    let token = dir.join("auth_token");
    std::fs::write(&token, format!("{AUTH_TOKEN}\n")).unwrap();
    let toml = format!(
        "[auth]\ningest_tokens = [\"ingest-1\"]\nviewer_tokens = [\"viewer-1\"]\nsupervisor_tokens = [\"super-1\"]\n{}",
        sources.replace("{TOKEN}", &token.display().to_string())
    );
    let config = Config::parse(&toml, "test.toml").expect("test config is valid");
    let server = TestServer::start_with(ServeOptions {
        config,
        clock: Clock::Feed,
        data_dir: Some(dir.join("store")),
        ..ServeOptions::new(Config::default())
    })
    .await;
    (server, dir)
}

/// How a request presents the ingest token.
#[derive(Clone, Copy)]
enum Token<'a> {
    None,
    Bearer(&'a str),
    Header(&'a str),
}

/// `POST /api/sources/connect`: (status, JSON reply).
async fn post_connect(server: &TestServer, body: &str, token: Token<'_>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(server.url("/api/sources/connect"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    request = match token {
        Token::None => request,
        Token::Bearer(t) => request.bearer_auth(t),
        Token::Header(t) => request.header("X-Wallboard-Token", t),
    };
    reply(request).await
}

/// `POST /api/sources/taskrouter{query}` with `form`, signed by `signature`.
async fn post_taskrouter(
    server: &TestServer,
    query: &str,
    form: &str,
    signature: Option<&str>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(server.url(&format!("/api/sources/taskrouter{query}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some(signature) = signature {
        request = request.header("X-Twilio-Signature", signature);
    }
    reply(request).await
}

async fn reply(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text:?}: {e}"));
    (status, json)
}

/// Twilio's recipe, written here apart from the server's: HMAC-SHA1 keyed
/// with the auth token over the URL, then each name and value sorted by name.
fn sign(key: &str, url: &str, form: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes())
        .into_owned()
        .collect();
    pairs.sort();
    let mut text = url.to_owned();
    for (name, value) in pairs {
        text.push_str(&name);
        text.push_str(&value);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL the server sees for `/api/sources/taskrouter{query}`.
fn local_url(server: &TestServer, query: &str) -> String {
    server.url(&format!("/api/sources/taskrouter{query}"))
}

/// `GET path` with a token: (status, JSON).
async fn get(server: &TestServer, path: &str, token: &str) -> Value {
    let (status, json) = reply(
        reqwest::Client::new()
            .get(server.url(path))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, 200, "{path}: {json}");
    json
}

/// The board's figures of the day, as `classify` prints them.
async fn figures(server: &TestServer) -> Value {
    let board = get(server, "/api/snapshot", "viewer-1").await;
    json!({"outcomes": board["outcomes"], "definitions": board["definitions"]})
}

/// Polls the board until it holds `calls` finished calls.
async fn figures_when(server: &TestServer, calls: i64) -> Value {
    common::within(async {
        loop {
            let figures = figures(server).await;
            if common::sum(&figures["outcomes"]) == calls {
                return figures;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
}

/// What `wallboard classify --format FORMAT` makes of `payloads`.
fn classify(format: &str, payloads: &str, dir: &std::path::Path) -> Value {
    let file = dir.join(format!("payloads.{format}"));
    std::fs::write(&file, payloads).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wallboard"))
        .args(["classify", "--format", format])
        .arg(&file)
        .output()
        .expect("run classify");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).expect("classify prints JSON");
    json!({"outcomes": summary["outcomes"], "definitions": summary["definitions"]})
}

/// A source's line in `GET /api/sources`.
async fn source_status(server: &TestServer, name: &str) -> Value {
    let sources = get(server, "/api/sources", "super-1").await;
    sources["sources"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no source {name}: {sources}"))
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Every Connect record, one request each, in order: every row of the table.
#[tokio::test]
async fn connect_events_one_per_request_build_the_board() {
    let (server, dir) = start().await;
    for line in lines(CONNECT) {
        let (status, reply) = post_connect(&server, line, Token::Bearer("ingest-1")).await;
        assert_eq!(status, 200, "{line}: {reply}");
    }
    let board = figures_when(&server, 7).await;
    let outcomes = &board["outcomes"];
    assert_eq!(
        *outcomes,
        json!({"answered": 1, "queue_abandoned": 2, "callback": 1, "outbound_connected": 2, "ivr_abandoned": 1}),
        "answered, abandoned (twice: a transfer is its own call), called back, outbound, a chat that ended in the flow"
    );
    assert_eq!(board, classify("connect", CONNECT, &dir));
    let snapshot = get(&server, "/api/snapshot", "viewer-1").await;
    assert!(
        snapshot["queues"]["Sales"].is_object(),
        "[source.queues] names the queue: {}",
        snapshot["queues"]
    );
    assert!(
        snapshot["queues"]["q-support"].is_object(),
        "else the ARN's last segment"
    );
    let aws = source_status(&server, "aws").await;
    assert_eq!(
        (aws["kind"].as_str(), aws["state"].as_str()),
        (Some("connect"), Some("connected"))
    );
    assert_eq!(
        (aws["events"].as_u64(), aws["skipped"].as_u64()),
        (Some(22), Some(0)),
        "{aws}"
    );
}

/// Unordered, repeated delivery in arrays: the same board, repeats are duplicates.
#[tokio::test]
async fn connect_events_out_of_order_and_repeated_change_nothing() {
    let (server, dir) = start().await;
    let mut records: Vec<&str> = lines(CONNECT);
    records.reverse();
    let (first, second) = records.split_at(records.len() / 2);
    for chunk in [first, second] {
        let (status, reply) = post_connect(
            &server,
            &format!("[{}]", chunk.join(",")),
            Token::Header("ingest-1"),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
    }
    let board = figures_when(&server, 7).await;
    // Everything again, shuffled another way, with a repeat inside one request.
    let mut again: Vec<&str> = lines(CONNECT);
    again.rotate_left(5);
    again.push(again[0]);
    let (status, reply) = post_connect(
        &server,
        &format!("[{}]", again.join(",")),
        Token::Bearer("ingest-1"),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["accepted"], 0, "every fact was known: {reply}");
    assert_eq!(figures(&server).await, board);
    assert_eq!(board, classify("connect", CONNECT, &dir));
}

/// A request holding one malformed record is refused whole, naming it.
#[tokio::test]
async fn a_malformed_connect_record_refuses_the_request() {
    let (server, _dir) = start().await;
    let good = lines(CONNECT);
    let broken = good[1].replace(
        "\"enqueueTimestamp\":\"2026-12-07T09:00:05.000Z\"",
        "\"enqueueTimestamp\":\"soon\"",
    );
    let body = format!("[{},{},{}]", good[0], broken, good[2]);
    let (status, reply) = post_connect(&server, &body, Token::Bearer("ingest-1")).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        (reply["index"].as_u64(), reply["field"].as_str()),
        (Some(1), Some("detail.queueInfo.enqueueTimestamp")),
        "{reply}"
    );
    assert!(
        reply["error"].as_str().unwrap().contains("record 1"),
        "{reply}"
    );
    for (body, field) in [
        (
            r#"{"detail-type":"Amazon Connect Contact Event","detail":{"eventType":"INITIATED"}}"#,
            "detail.contactId",
        ),
        (r#"[{"detail":{}}]"#, "detail-type"),
    ] {
        let (status, reply) = post_connect(&server, body, Token::Bearer("ingest-1")).await;
        assert_eq!(
            (status, reply["field"].as_str()),
            (400, Some(field)),
            "{reply}"
        );
    }
    let (status, reply) = post_connect(&server, "{not json", Token::Bearer("ingest-1")).await;
    assert_eq!(status, 400, "{reply}");
    let aws = source_status(&server, "aws").await;
    assert_eq!(
        (aws["events"].as_u64(), aws["skipped"].as_u64()),
        (Some(0), Some(4)),
        "nothing applied: {aws}"
    );
    // The good records were not applied: sent alone, they are all new.
    let (status, reply) = post_connect(
        &server,
        &format!("[{},{}]", good[0], good[2]),
        Token::Bearer("ingest-1"),
    )
    .await;
    assert_eq!(
        (
            status,
            reply["accepted"].as_u64(),
            reply["duplicates"].as_u64()
        ),
        (200, Some(2), Some(1)),
        "{reply}"
    );
}

/// The ingest token, in `Authorization: Bearer` or `X-Wallboard-Token`.
#[tokio::test]
async fn connect_needs_an_ingest_token_in_either_header() {
    let (server, _dir) = start().await;
    let record = lines(CONNECT)[0];
    let status = |t: Token<'static>| {
        let server = &server;
        async move { post_connect(server, record, t).await.0 }
    };
    assert_eq!(status(Token::None).await, 401);
    assert_eq!(status(Token::Bearer("viewer-1")).await, 401);
    assert_eq!(status(Token::Header("wrong")).await, 401);
    assert_eq!(status(Token::Bearer("ingest-1")).await, 200);
    assert_eq!(status(Token::Header("ingest-1")).await, 200);
}

/// Every TaskRouter callback, signed, one request each: every row of the table.
#[tokio::test]
async fn taskrouter_callbacks_build_the_board() {
    let (server, dir) = start().await;
    let url = local_url(&server, "?source=twilio");
    for form in lines(TASKROUTER) {
        let signature = sign(AUTH_TOKEN, &url, form);
        let (status, reply) =
            post_taskrouter(&server, "?source=twilio", form, Some(&signature)).await;
        assert_eq!(status, 200, "{form}: {reply}");
    }
    let board = figures_when(&server, 4).await;
    assert_eq!(
        board["outcomes"],
        json!({"answered": 1, "timed_out": 1, "queue_abandoned": 1, "outbound_canceled": 1})
    );
    assert_eq!(board, classify("taskrouter", TASKROUTER, &dir));
    // The board may have been published before the last callbacks: wait for them.
    let agents = common::within(async {
        loop {
            let detail = get(&server, "/api/supervisor", "super-1").await;
            if detail["agents"].as_array().is_some_and(|a| a.len() == 5) {
                return detail["agents"].to_string();
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    for (agent, status) in [
        ("amy", "available"),
        ("bob", "away"),
        ("carol", "wrap_up"),
        ("dan", "offline"),
        ("eve", "busy"),
    ] {
        assert!(
            agents.contains(agent) && agents.contains(status),
            "{agent} {status}: {agents}"
        );
    }
    assert!(
        agents.contains("Lunch"),
        "the activity is the reason: {agents}"
    );
    // 27 callbacks give events, the TTL cancel two of them.
    let twilio = source_status(&server, "twilio").await;
    assert_eq!(
        (twilio["state"].as_str(), twilio["events"].as_u64()),
        (Some("connected"), Some(28)),
        "{twilio}"
    );
    // Redelivered: duplicates.
    let form = lines(TASKROUTER)[0];
    let (_, reply) = post_taskrouter(
        &server,
        "?source=twilio",
        form,
        Some(&sign(AUTH_TOKEN, &url, form)),
    )
    .await;
    assert_eq!(
        (reply["accepted"].as_u64(), reply["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
}

/// The signature stands in for a token: good, reordered, wrong, missing, behind a proxy.
#[tokio::test]
async fn taskrouter_signatures_are_checked() {
    let (server, _dir) = start().await;
    let form = lines(TASKROUTER)[0];
    let query = "?source=twilio";
    let url = local_url(&server, query);
    let (status, reply) = post_taskrouter(&server, query, form, None).await;
    assert_eq!(status, 403, "missing: {reply}");
    let wrong_key = sign("another-token", &url, form);
    assert_eq!(
        post_taskrouter(&server, query, form, Some(&wrong_key))
            .await
            .0,
        403
    );
    let other_url = sign(AUTH_TOKEN, &local_url(&server, "?source=proxied"), form);
    assert_eq!(
        post_taskrouter(&server, query, form, Some(&other_url))
            .await
            .0,
        403
    );
    let tampered = form.replace("WT1", "WT9");
    assert_eq!(
        post_taskrouter(
            &server,
            query,
            &tampered,
            Some(&sign(AUTH_TOKEN, &url, form))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        source_status(&server, "twilio").await["events"],
        0,
        "nothing applied"
    );
    // The same fields posted in another order carry the same signature.
    let mut reordered: Vec<&str> = form.split('&').collect();
    reordered.reverse();
    let reordered = reordered.join("&");
    let (status, reply) = post_taskrouter(
        &server,
        query,
        &reordered,
        Some(&sign(AUTH_TOKEN, &url, form)),
    )
    .await;
    assert_eq!(
        (status, reply["accepted"].as_u64()),
        (200, Some(1)),
        "{reply}"
    );
    // Behind a proxy, Twilio signs the public URL, not the one we see.
    let public = sign(AUTH_TOKEN, PROXIED_URL, form);
    let local = sign(AUTH_TOKEN, &local_url(&server, "?source=proxied"), form);
    assert_eq!(
        post_taskrouter(&server, "?source=proxied", form, Some(&local))
            .await
            .0,
        403
    );
    let (status, reply) = post_taskrouter(&server, "?source=proxied", form, Some(&public)).await;
    assert_eq!(status, 200, "{reply}");
    // Signed but unreadable: a 400 that names the field, nothing applied.
    let bad = "EventType=task.created&TaskSid=WT7&Timestamp=teatime";
    let (status, reply) =
        post_taskrouter(&server, query, bad, Some(&sign(AUTH_TOKEN, &url, bad))).await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("Timestamp")),
        "{reply}"
    );
    assert_eq!(source_status(&server, "twilio").await["skipped"], 1);
    // The signature is the only credential: an ingest token alone is not enough.
    let (status, _) = self::reply(
        reqwest::Client::new()
            .post(server.url("/api/sources/taskrouter?source=twilio"))
            .bearer_auth("ingest-1")
            .body(form.to_owned()),
    )
    .await;
    assert_eq!(status, 403);
}

/// Which source a request is for: by kind, by `?source=`, or a clear 404/400.
#[tokio::test]
async fn routes_find_their_source_by_kind() {
    let (server, _dir) = start().await;
    let form = lines(TASKROUTER)[0];
    let (status, reply) = post_taskrouter(&server, "", form, Some("x")).await;
    assert_eq!(
        status, 400,
        "two taskrouter sources and no ?source=: {reply}"
    );
    assert!(
        reply["error"].as_str().unwrap().contains("twilio, proxied"),
        "{reply}"
    );
    let (status, reply) = post_taskrouter(&server, "?source=aws", form, Some("x")).await;
    assert_eq!(status, 404, "aws is not a taskrouter source: {reply}");
    drop(server);

    let (server, _dir) = start_with_sources("").await;
    let (status, reply) = post_connect(&server, lines(CONNECT)[0], Token::Bearer("ingest-1")).await;
    assert_eq!(status, 404, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("kind = \"connect\""),
        "{reply}"
    );
    let (status, _) = post_taskrouter(&server, "", form, Some("x")).await;
    assert_eq!(status, 404);
}

/// A hosted route is held to `max_open_calls` like `POST /api/events`: 429
/// with `Retry-After` (the vendor retries), not 503 as if the store failed.
#[tokio::test]
async fn connect_beyond_the_open_calls_cap_is_told_to_retry() {
    let (server, _dir) = start_with_sources(
        "[limits]\nmax_open_calls = 1\n[[source]]\nkind = \"connect\"\nname = \"aws\"\n",
    )
    .await;
    let mut refused = None;
    // Each call's first record only: the second opens a second call.
    let starts = lines(CONNECT)
        .into_iter()
        .filter(|line| line.contains(r#""eventType":"INITIATED""#));
    for line in starts {
        let response = reqwest::Client::new()
            .post(server.url("/api/sources/connect"))
            .header("content-type", "application/json")
            .bearer_auth("ingest-1")
            .body(line.to_owned())
            .send()
            .await
            .expect("request");
        match response.status().as_u16() {
            200 => {}
            status => {
                let retry = response.headers().get("retry-after").cloned();
                refused = Some((status, retry, response.text().await.unwrap_or_default()));
                break;
            }
        }
    }
    let (status, retry, body) = refused.expect("a second open call is refused");
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some(), "Retry-After is set");
    assert!(body.contains("max_open_calls"), "{body}");
}
