//! Alerts end to end: a real server with `[[alert]]` rules posts to a real
//! HTTP server in this test that records every request it receives.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{TestServer, WAIT, within};
use jiff::Timestamp;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use wallboard::clock::Clock;
use wallboard::config::Config;
use wallboard::server::ServeOptions;

/// One request the recorder received.
#[derive(Debug, Clone)]
struct Received {
    /// The `Authorization` header, if any.
    authorization: Option<String>,
    /// The body as JSON.
    body: Value,
}

/// What the recorder was told to answer and what it received, per path.
#[derive(Default)]
struct Recorder {
    received: Mutex<BTreeMap<String, Vec<Received>>>,
    /// Path → (status, delay) of its first answers; after them, 200 at once.
    script: Mutex<BTreeMap<String, Vec<(u16, Duration)>>>,
    arrived: Notify,
}

impl Recorder {
    fn of(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `path` has received `n` requests; returns them.
    async fn wait_for(&self, path: &str, n: usize) -> Vec<Received> {
        within(async {
            loop {
                let arrived = self.arrived.notified();
                let got = self.of(path);
                if got.len() >= n {
                    return got;
                }
                arrived.await;
            }
        })
        .await
    }
}

async fn record(
    State(recorder): State<Arc<Recorder>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let received = Received {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_str(&body).unwrap_or(Value::String(body)),
    };
    recorder
        .received
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .push(received);
    recorder.arrived.notify_waiters();
    let planned = {
        let mut script = recorder.script.lock().unwrap();
        let answers = script.entry(path).or_default();
        (!answers.is_empty()).then(|| answers.remove(0))
    };
    let (status, delay) = planned.unwrap_or((200, Duration::ZERO));
    tokio::time::sleep(delay).await;
    StatusCode::from_u16(status).unwrap()
}

/// A recording server on port 0: its base URL and what it holds.
async fn recorder() -> (String, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let app = Router::new()
        .route("/{path}", post(record))
        .with_state(recorder.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, recorder)
}

/// A self-signed certificate for `localhost`: the server's TLS configuration
/// and the certificate as PEM.
fn localhost_certificate() -> (Arc<tokio_rustls::rustls::ServerConfig>, String) {
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let key = PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    // The provider the server's client uses (rustls deprecates ring for
    // lacking post-quantum groups).
    #[allow(deprecated)]
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server config");
    (Arc::new(config), cert.pem())
}

/// Serves TLS on a port of its own in front of the plain server at `base`:
/// the port.
async fn tls_front(config: Arc<tokio_rustls::rustls::ServerConfig>, base: &str) -> u16 {
    let behind = base.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, behind) = (acceptor.clone(), behind.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends here.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(behind.as_str()).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// A wall-clock server with `config`.
async fn server(config: &str) -> TestServer {
    let config = Config::parse(config, "alerts.toml").expect("valid config");
    TestServer::start_with(ServeOptions {
        clock: Clock::Wall,
        ..ServeOptions::new(config)
    })
    .await
}

/// NDJSON: `calls` inbound calls queued in `queue` now.
fn queued(queue: &str, calls: &[&str]) -> String {
    let at = Timestamp::now();
    calls
        .iter()
        .map(|call| {
            format!(
                "{{\"id\":\"{call}#0\",\"call\":\"{call}\",\"at\":\"{at}\",\"type\":\"call_started\",\"direction\":\"inbound\",\"channel\":\"voice\"}}\n\
                 {{\"id\":\"{call}#1\",\"call\":\"{call}\",\"at\":\"{at}\",\"type\":\"queued\",\"queue\":\"{queue}\"}}\n"
            )
        })
        .collect()
}

/// NDJSON: the callers of `calls` hang up now.
fn ended(calls: &[&str]) -> String {
    let at = Timestamp::now();
    calls
        .iter()
        .map(|call| {
            format!(
                "{{\"id\":\"{call}#9\",\"call\":\"{call}\",\"at\":\"{at}\",\"type\":\"ended\"}}\n"
            )
        })
        .collect()
}

#[tokio::test]
async fn a_queue_over_its_threshold_alerts_once_then_clears() {
    let (base, recorder) = recorder().await;
    // The flaky target stalls, then fails, twice before it takes anything.
    recorder.script.lock().unwrap().insert(
        "flaky".into(),
        vec![
            (500, Duration::from_millis(1500)),
            (500, Duration::from_millis(1500)),
        ],
    );
    let server = server(&format!(
        r#"
        [site]
        public_url = "https://wall.example.org/"
        [[board]]
        name = "sales"
        title = "Sales line"
        queues = ["sales"]
        tiles = ["queued"]
        thresholds = {{ queued = {{ warn = 2, alert = 3 }} }}
        [[alert_target]]
        name = "hook"
        kind = "webhook"
        url = "{base}/hook"
        secret = "s3cret"
        [[alert_target]]
        name = "slack"
        kind = "slack"
        url = "{base}/slack"
        [[alert_target]]
        name = "teams"
        kind = "teams"
        url = "{base}/teams"
        [[alert_target]]
        name = "flaky"
        kind = "webhook"
        url = "{base}/flaky"
        [[alert]]
        board = "sales"
        tile = "queued"
        for_secs = 1
        targets = ["hook", "slack", "teams", "flaky"]
        "#
    ))
    .await;
    let calls = ["c1", "c2", "c3"];
    let posted = Instant::now();
    server.post_ok(&queued("sales", &calls)).await;

    let hook = recorder.wait_for("hook", 1).await;
    assert!(
        posted.elapsed() >= Duration::from_secs(1),
        "sent before the figure held for for_secs"
    );
    let entered = &hook[0].body;
    assert_eq!(entered["state"], "entered", "{entered}");
    assert_eq!(entered["level"], "alert");
    assert_eq!(entered["previous"], "ok");
    assert_eq!(entered["rule"], "sales.queued");
    assert_eq!(entered["board"], "sales");
    assert_eq!(entered["title"], "Sales line");
    assert_eq!(entered["tile"], "queued");
    assert_eq!(entered["figure"], "Calls waiting");
    assert_eq!(entered["value"], 3.0);
    assert_eq!(entered["threshold"], 3.0);
    assert_eq!(entered["url"], "https://wall.example.org/board/sales");
    assert!(entered["at"].as_str().unwrap().parse::<Timestamp>().is_ok());
    assert_eq!(hook[0].authorization.as_deref(), Some("Bearer s3cret"));

    // The flaky target is stalling and failing now; ingest is not held up by it.
    for i in 0..5 {
        let started = Instant::now();
        server.post_ok(&queued("other", &[&format!("o{i}")])).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "POST /api/events took {took:?} while a target failed"
        );
    }
    assert!(
        recorder.of("flaky").len() < 3,
        "the posts ran while the target was still failing"
    );
    let flaky = recorder.wait_for("flaky", 3).await;
    assert!(
        flaky.iter().all(|r| r.body == *entered),
        "the same message, retried"
    );

    // Held: no second message while the figure stays over.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(recorder.of("hook").len(), 1, "sent once on entering");

    server.post_ok(&ended(&calls)).await;
    let hook = recorder.wait_for("hook", 2).await;
    let cleared = &hook[1].body;
    assert_eq!(cleared["state"], "cleared", "{cleared}");
    assert_eq!(cleared["level"], "ok");
    assert_eq!(cleared["previous"], "alert");
    assert_eq!(cleared["value"], 0.0);
    assert_eq!(cleared["threshold"], 3.0);

    let slack = recorder.wait_for("slack", 2).await;
    for (message, word) in slack.iter().zip(["ALERT", "Cleared"]) {
        let text = message.body["text"].as_str().expect("Slack needs text");
        assert!(text.contains(word) && text.contains("Sales line"), "{text}");
        let section = &message.body["blocks"][0];
        assert_eq!(section["type"], "section");
        assert_eq!(section["text"]["type"], "mrkdwn");
        let shown = section["text"]["text"].as_str().unwrap();
        assert!(
            shown.contains("<https://wall.example.org/board/sales|"),
            "{shown}"
        );
    }
    let teams = recorder.wait_for("teams", 2).await;
    for message in &teams {
        let body = &message.body;
        assert_eq!(body["type"], "message");
        let attachment = &body["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert!(card["version"].as_str().is_some());
        assert_eq!(card["body"][0]["type"], "TextBlock");
        assert!(
            card["body"][1]["facts"]
                .as_array()
                .is_some_and(|f| f.len() >= 3)
        );
        assert_eq!(
            card["actions"][0]["url"],
            "https://wall.example.org/board/sales"
        );
    }
    recorder.wait_for("flaky", 4).await;

    // Nothing more: one message on entering, one on clearing, per target.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (path, n) in [("hook", 2), ("slack", 2), ("teams", 2), ("flaky", 4)] {
        assert_eq!(recorder.of(path).len(), n, "{path}");
    }
    let (_, metrics) = server.get("/metrics").await;
    for line in [
        "wallboard_alerts_sent_total{target=\"flaky\"} 2",
        "wallboard_alerts_failed_total{target=\"flaky\"} 0",
        "wallboard_alerts_dropped_total{target=\"hook\"} 0",
        "wallboard_alerts_sent_total{target=\"teams\"} 2",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_blip_shorter_than_for_secs_sends_nothing() {
    let (base, recorder) = recorder().await;
    let server = server(&format!(
        r#"
        [[alert_target]]
        name = "hook"
        kind = "webhook"
        url = "{base}/hook"
        [[alert]]
        queue = "support"
        tile = "queued"
        alert = 2
        for_secs = 2
        targets = ["hook"]
        "#
    ))
    .await;
    server.post_ok(&queued("support", &["b1", "b2"])).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.post_ok(&ended(&["b1", "b2"])).await;
    // Past the hold of the blip, and past it again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(recorder.of("hook").is_empty(), "{:?}", recorder.of("hook"));

    // Held this time: the queue rule fires, linking to the site's board.
    server.post_ok(&queued("support", &["b3", "b4"])).await;
    let hook = recorder.wait_for("hook", 1).await;
    assert_eq!(hook[0].body["queue"], "support");
    assert_eq!(hook[0].body["title"], "Queue support");
    assert_eq!(hook[0].body["url"], "/");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_test_route_tries_every_target_for_a_supervisor() {
    let (base, recorder) = recorder().await;
    recorder
        .script
        .lock()
        .unwrap()
        .insert("gone".into(), vec![(404, Duration::ZERO)]);
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (tls, pem) = localhost_certificate();
    let tls_port = tls_front(tls, &base).await;
    let dir = std::env::temp_dir().join(format!("wb-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, pem).unwrap();
    let server = server(&format!(
        r#"
        [auth]
        supervisor_tokens = ["supervisor-token"]
        viewer_tokens = ["viewer-token"]
        [[alert_target]]
        name = "slack"
        kind = "slack"
        url = "{base}/slack"
        [[alert_target]]
        name = "gone"
        kind = "teams"
        url = "{base}/gone"
        [[alert_target]]
        name = "down"
        kind = "webhook"
        url = "http://127.0.0.1:{closed_port}/hook"
        [[alert_target]]
        name = "private-ca"
        kind = "webhook"
        url = "https://localhost:{tls_port}/tls"
        ca_file = {ca_file:?}
        [[alert_target]]
        name = "untrusted"
        kind = "webhook"
        url = "https://localhost:{tls_port}/untrusted"
        "#
    ))
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let http = reqwest::Client::new();
    let test = |token: Option<&str>| {
        let mut request = http.post(server.url("/api/alerts/test"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(test(None).await.unwrap().status(), 401);
    assert_eq!(test(Some("viewer-token")).await.unwrap().status(), 401);
    assert!(recorder.of("slack").is_empty(), "refused before sending");

    let started = Instant::now();
    let response = test(Some("supervisor-token")).await.unwrap();
    assert_eq!(response.status(), 502, "one target failed");
    let answer: Value = response.json().await.unwrap();
    let results = answer["targets"].as_array().unwrap();
    let by_name = |name: &str| {
        results
            .iter()
            .find(|r| r["target"] == name)
            .unwrap_or_else(|| panic!("no {name} in {answer}"))
    };
    assert_eq!(by_name("slack")["ok"], true);
    assert_eq!(by_name("slack")["status"], 200);
    assert_eq!(by_name("gone")["ok"], false);
    assert_eq!(by_name("gone")["status"], 404);
    assert_eq!(by_name("down")["ok"], false);
    assert_eq!(by_name("down")["status"], Value::Null);
    assert!(
        by_name("down")["error"]
            .as_str()
            .unwrap()
            .contains("connect"),
        "{answer}"
    );
    assert_eq!(by_name("private-ca")["ok"], true, "{answer}");
    assert_eq!(recorder.of("tls")[0].body["state"], "test");
    assert_eq!(by_name("untrusted")["ok"], false);
    let error = by_name("untrusted")["error"].as_str().unwrap();
    assert!(
        error.starts_with("TLS: ") && error.contains("UnknownIssuer"),
        "{error}"
    );
    assert!(recorder.of("untrusted").is_empty());
    assert!(started.elapsed() < WAIT, "tried once, not retried");
    let slack = recorder.of("slack");
    assert_eq!(slack.len(), 1);
    assert_eq!(
        slack[0].body["text"]
            .as_str()
            .map(|t| t.starts_with("Test message")),
        Some(true)
    );
    assert_eq!(recorder.of("gone")[0].body["type"], "message");
    server.stop().await.unwrap();
}
