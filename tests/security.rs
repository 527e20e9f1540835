//! Security and hostile input against a real server on an ephemeral port:
//! roles and where tokens come from, the loopback-only default, every limit's
//! status, the `Origin` check, the browser headers, caller data kept off
//! public views, and a barrage of hostile input that changes nothing.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
mod common;

use common::TestServer as Server;
use wallboard::config::Config;
use wallboard::server::{self, ServeError, ServeOptions};

const TOKENS: &str = r#"
[auth]
ingest_tokens = ["ingest-1"]
viewer_tokens = ["viewer-1"]
supervisor_tokens = ["super-1"]
"#;

/// A server with this configuration on 127.0.0.1:0 (the shared harness); stops when dropped.
async fn start(toml: &str) -> Server {
    let config = Config::parse(toml, "test.toml").expect("test config is valid");
    Server::start_with(ServeOptions::new(config)).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// An RFC 3339 time `secs` before now.
/// An instant `secs` before now, on today's board. The server runs on the
/// wall clock in UTC, so just after midnight the test's journeys (five
/// minutes long) would start yesterday and count on no board: there the
/// offsets shrink, in order, to fit since midnight.
fn ago(secs: i64) -> String {
    const LONGEST: f64 = 310.0;
    let now = jiff::Timestamp::now();
    let since_midnight = now.as_second().rem_euclid(86_400) as f64;
    let scale = ((since_midnight - 2.0) / LONGEST).clamp(0.0, 1.0);
    let back = jiff::SignedDuration::from_secs_f64(secs as f64 * scale);
    (now - back).to_string()
}

const CALLER: &str = "+441632960001";

/// A finished call from a known caller, and one still queued.
fn journey(call: &str) -> String {
    [
        json!({"id": format!("{call}-1"), "call": call, "at": ago(300), "type": "call_started", "from": CALLER}),
        json!({"id": format!("{call}-2"), "call": call, "at": ago(290), "type": "queued", "queue": "sales"}),
        json!({"id": format!("{call}-3"), "call": call, "at": ago(280), "type": "answered", "agent": "amy"}),
        json!({"id": format!("{call}-4"), "call": call, "at": ago(200), "type": "ended"}),
        json!({"id": format!("{call}-q"), "call": format!("{call}-q"), "at": ago(100), "type": "queued", "queue": "sales", "from": CALLER}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n")
}

async fn post(
    server: &Server,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = client()
        .post(server.url("/api/events"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn get(server: &Server, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client().get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The board without what changes by itself.
async fn board(server: &Server, token: Option<&str>) -> Value {
    let mut board: Value = get(server, "/api/snapshot", token)
        .await
        .json()
        .await
        .unwrap();
    let object = board.as_object_mut().unwrap();
    object.remove("now");
    object.remove("seq");
    board
}

async fn ws_connect(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    tungstenite::Error,
> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

fn handshake_status(result: Result<impl Sized, tungstenite::Error>) -> u16 {
    match result {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected WebSocket error: {e}"),
    }
}

// --- 1. Tokens and roles ---

#[tokio::test]
async fn each_role_reaches_only_its_routes() {
    let server = start(TOKENS).await;
    let event = journey("r1");
    // (method, path, expected status for: no token, ingest, viewer, supervisor); 0 = "not 401".
    let table: [(&str, &str, [u16; 4]); 9] = [
        ("POST", "/api/events", [401, 200, 401, 401]),
        ("GET", "/", [401, 401, 200, 200]),
        ("GET", "/api/snapshot", [401, 401, 200, 200]),
        ("GET", "/metrics", [401, 401, 401, 200]),
        ("GET", "/supervisor", [401, 401, 401, 0]),
        ("GET", "/api/supervisor", [401, 401, 401, 0]),
        ("GET", "/board/not-public", [401, 401, 401, 0]),
        ("GET", "/healthz", [200, 200, 200, 200]),
        ("GET", "/static/board.js", [200, 200, 200, 200]),
    ];
    let tokens = [None, Some("ingest-1"), Some("viewer-1"), Some("super-1")];
    for (method, path, expected) in table {
        for (token, want) in tokens.iter().zip(expected) {
            let response = if method == "POST" {
                post(&server, *token, event.clone()).await
            } else {
                get(&server, path, *token).await
            };
            let status = response.status().as_u16();
            match want {
                0 => assert_ne!(status, 401, "{method} {path} with {token:?}"),
                _ => assert_eq!(status, want, "{method} {path} with {token:?}"),
            }
        }
    }
    // WebSocket: viewers and supervisors, not ingest.
    for (token, want) in [
        (None, 401),
        (Some("ingest-1"), 401),
        (Some("viewer-1"), 101),
        (Some("super-1"), 101),
    ] {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let status = handshake_status(ws_connect(&server.ws_url("/ws"), &headers).await);
        assert_eq!(status, want, "/ws with {token:?}");
    }
    let status = handshake_status(
        ws_connect(
            &server.ws_url("/ws/supervisor"),
            &[("authorization", "Bearer viewer-1")],
        )
        .await,
    );
    assert_eq!(status, 401, "viewers do not get the supervisor socket");
}

#[tokio::test]
async fn wrong_tokens_get_json_or_a_page() {
    let server = start(TOKENS).await;
    let response = get(&server, "/api/snapshot", Some("guess")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");

    let response = post(&server, None, journey("x")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("ingest token"),
        "{body}"
    );

    let response = get(&server, "/", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text().await.unwrap().contains("token is needed"));
}

#[tokio::test]
async fn a_token_by_header_query_or_cookie() {
    let server = start(TOKENS).await;
    // The query sets the cookie and redirects to the URL without the token.
    let response = get(&server, "/?definition=nhs&token=viewer-1", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/?definition=nhs");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in [
        "wallboard_token=viewer-1",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http without trust_proxy");
    let response = get(&server, "/?token=nope", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = get(&server, "/?token=ingest-1", None).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "ingest tokens see no pages"
    );

    // The cookie works for pages, the API and the WebSocket.
    for path in ["/", "/api/snapshot"] {
        let response = client()
            .get(server.url(path))
            .header("cookie", "theme=dark; wallboard_token=viewer-1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path} by cookie");
    }
    assert_eq!(
        get(&server, "/", Some("viewer-1")).await.status(),
        StatusCode::OK
    );
    for (url, headers) in [
        (server.ws_url("/ws?token=viewer-1"), vec![]),
        (
            server.ws_url("/ws"),
            vec![("cookie", "wallboard_token=viewer-1")],
        ),
        (
            server.ws_url("/ws"),
            vec![("authorization", "Bearer viewer-1")],
        ),
    ] {
        let mut ws = ws_connect(&url, &headers).await.expect("connects");
        let first = ws.next().await.unwrap().unwrap();
        assert!(first.to_text().unwrap().contains("\"snapshot\""), "{url}");
    }
    // Behind a TLS proxy that says so, the cookie is Secure.
    let server = start(&format!("{TOKENS}\n[web]\ntrust_proxy = true\n")).await;
    let response = client()
        .get(server.url("/?token=viewer-1"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
}

// --- 2. Safe defaults ---

#[tokio::test]
async fn without_tokens_only_loopback() {
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let result = server::run(listener, ServeOptions::new(Config::default()), async {}).await;
    let Err(ServeError::Exposed(e)) = result else {
        panic!("an open server beyond loopback must be refused");
    };
    assert!(e.to_string().contains("--insecure-open"));

    // Explicitly open: serves (and warns).
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let options = ServeOptions {
        insecure_open: true,
        ..ServeOptions::new(Config::default())
    };
    let serving = tokio::spawn(server::run(listener, options, async {
        let _ = stopped.await;
    }));
    let health = client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();

    // Open on loopback: everything works without a token.
    let server = start("").await;
    assert_eq!(
        post(&server, None, journey("o")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&server, "/metrics", None).await.status(),
        StatusCode::OK
    );
}

#[test]
fn the_binary_refuses_an_open_board_beyond_loopback() {
    let dir = std::env::temp_dir().join(format!("wallboard-sec-{}", std::process::id()));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wallboard"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure-open"), "{stderr}");
    assert!(!dir.exists(), "refused before opening the store");
}

// --- 3. Limits ---

#[tokio::test]
async fn limits_return_their_status() {
    let server = start(
        "[limits]\nbody_bytes = 65536\nmax_events_per_batch = 3\nmax_json_depth = 4\n\
         body_read_timeout_secs = 1\nheader_read_timeout_secs = 1\ningest_rate_per_sec = 1000\n",
    )
    .await;
    let response = post(&server, None, vec![b' '; 100_000]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("limits.body_bytes"),
        "{body}"
    );

    let four = journey("l").lines().take(4).collect::<Vec<_>>().join("\n");
    let response = post(&server, None, four).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["index"], 3, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("limits.max_events_per_batch")
    );

    let deep = json!({"call": "d", "at": ago(1), "type": "closed", "x": [[[[1]]]]}).to_string();
    let response = post(
        &server,
        None,
        format!("{}\n{deep}", journey("d").lines().next().unwrap()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["index"].clone(), body["line"].clone()),
        (json!(1), json!(2)),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("limits.max_json_depth")
    );

    // A body that stops arriving: 408.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST /api/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"ty")
        .await
        .unwrap();
    let answer = read_all(&mut slow, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("limits.body_read_timeout_secs"), "{answer}");

    // Headers that stop arriving: the connection is closed.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let answer = read_all(&mut slow, Duration::from_secs(5)).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed after the header timeout"
    );
    assert_eq!(
        get(&server, "/healthz", None).await.status(),
        StatusCode::OK
    );
}

/// Reads until the peer closes or `limit` passes.
async fn read_all(stream: &mut TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_ingest_rate_is_limited_per_token() {
    let server = start(
        "[auth]\ningest_tokens = [\"ingest-1\", \"ingest-2\"]\n[limits]\ningest_rate_per_sec = 1\n",
    )
    .await;
    assert_eq!(
        post(&server, Some("ingest-1"), journey("a")).await.status(),
        StatusCode::OK
    );
    let response = post(&server, Some("ingest-1"), journey("b")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("limits.ingest_rate_per_sec")
    );
    assert_eq!(
        post(&server, Some("ingest-2"), journey("c")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn connections_are_limited_per_address_and_in_total() {
    for limit in ["max_connections_per_ip = 5", "max_connections = 5"] {
        let server = start(&format!("[limits]\n{limit}\n")).await;
        let mut held = Vec::new();
        for _ in 0..5 {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            // A request proves the connection was admitted (not refused).
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 12];
            stream.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"HTTP/1.1 200", "{limit}");
            held.push(stream);
        }
        let mut extra = TcpStream::connect(server.addr).await.unwrap();
        let _ = extra
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await;
        let answer = read_all(&mut extra, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{limit}: {answer}");
        drop(held);
        wait_healthy(&server).await;
    }
}

/// Polls `/healthz` until the server answers (connections freed), at most 5 s.
async fn wait_healthy(server: &Server) {
    for _ in 0..50 {
        if let Ok(r) = client().get(server.url("/healthz")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not recover");
}

#[tokio::test]
async fn websocket_limits_close_the_connection() {
    let server = start("[limits]\nws_max_message_bytes = 256\nws_ping_timeout_secs = 1\n").await;
    let mut ws = ws_connect(&server.ws_url("/ws"), &[]).await.unwrap();
    ws.next().await.unwrap().unwrap();
    ws.send(Message::text("x".repeat(1000))).await.unwrap();
    assert!(closes(&mut ws).await, "a large message closes the socket");

    // A peer that never answers pings is dropped.
    let mut ws = ws_connect(&server.ws_url("/ws"), &[]).await.unwrap();
    ws.next().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(closes(&mut ws).await, "a silent peer is dropped");
}

/// Whether the socket ends (close, error or end) within 5 s.
async fn closes<S>(ws: &mut S) -> bool
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let ended = async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), ended)
        .await
        .is_ok()
}

// --- 4. Browser hardening ---

#[tokio::test]
async fn foreign_origins_cannot_open_the_websocket() {
    let server = start("[web]\nallowed_origins = [\"https://dash.example.com\"]\n").await;
    let own = format!("http://{}", server.addr);
    let table = [
        (Some("http://evil.example"), 403),
        (Some("null"), 403),
        (Some(own.as_str()), 101),
        (Some("https://dash.example.com"), 101),
        (None, 101),
    ];
    for (origin, want) in table {
        let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("origin", *o)).collect();
        let status = handshake_status(ws_connect(&server.ws_url("/ws"), &headers).await);
        assert_eq!(status, want, "{origin:?}");
    }
}

#[tokio::test]
async fn pages_carry_a_strict_policy() {
    let server = start("").await;
    for path in ["/", "/api/snapshot", "/static/board.js"] {
        let response = get(&server, path, None).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'self';",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
    let html = get(&server, "/", None).await.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    let server = start("[web]\nframe_ancestors = [\"https://dash.example.com\"]\n").await;
    let response = get(&server, "/", None).await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-ancestors https://dash.example.com;"),
        "{csp}"
    );
}

// --- 5. Caller data ---

#[tokio::test]
async fn caller_numbers_stay_off_public_views() {
    let server = start(TOKENS).await;
    let mut ws = ws_connect(&server.ws_url("/ws?token=viewer-1"), &[])
        .await
        .unwrap();
    let response = post(&server, Some("ingest-1"), journey("p")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let digits = CALLER.trim_start_matches('+');
    let mut seen = String::new();
    let collect = async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                seen.push_str(&text);
                if seen.contains("\"talking\"") && seen.contains("\"queued\":1") {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), collect).await;
    assert!(
        seen.contains("\"queued\":1"),
        "the board saw the call: {seen}"
    );
    assert!(
        !seen.contains(digits),
        "WebSocket bytes carry no caller number"
    );
    for path in ["/", "/api/snapshot"] {
        let text = get(&server, path, Some("viewer-1"))
            .await
            .text()
            .await
            .unwrap();
        assert!(!text.contains(digits), "{path} carries no caller number");
    }
}

// --- 6. Hostile input ---

/// (name, body, expected `index`, expected `field`).
type Hostile = (&'static str, Vec<u8>, Option<u64>, Option<&'static str>);

/// The board once the accepted journey is published (one answered, one queued).
async fn published(server: &Server) -> Value {
    for _ in 0..100 {
        let board = board(server, None).await;
        if board["outcomes"]["answered"] == 1 && board["live"]["queued"] == 1 {
            return board;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the accepted events were never published");
}

#[tokio::test]
async fn hostile_input_changes_nothing() {
    let server = start("[limits]\nbody_bytes = 1048576\nmax_connections_per_ip = 50\n").await;
    assert_eq!(
        post(&server, None, journey("h")).await.status(),
        StatusCode::OK
    );
    let before = published(&server).await;

    let valid =
        json!({"id": "new-1", "call": "new", "at": ago(10), "type": "queued", "queue": "sales"})
            .to_string();
    let long_id = "i".repeat(10_000);
    // (name, body, expected index, expected field); the valid event first proves nothing of a bad batch applies.
    let hostile: Vec<Hostile> = vec![
        (
            "truncated JSON",
            format!("{valid}\n{{\"type\":\"que").into_bytes(),
            Some(1),
            None,
        ),
        (
            "invalid UTF-8",
            [
                valid.as_bytes(),
                b"\n{\"type\":\"closed\",\"call\":\"\xff\xfe\"}",
            ]
            .concat(),
            Some(1),
            None,
        ),
        (
            "deep nesting",
            format!("{valid}\n{}", "[".repeat(100_000)).into_bytes(),
            Some(1),
            None,
        ),
        (
            "deep array",
            format!("[{valid},{}]", "{\"a\":".repeat(5000)).into_bytes(),
            Some(1),
            None,
        ),
        (
            "wrong type of at",
            format!(
                "[{valid},{}]",
                json!({"call": "x", "at": 5, "type": "closed"})
            )
            .into_bytes(),
            Some(1),
            Some("at"),
        ),
        (
            "wrong type of call",
            format!(
                "[{valid},{}]",
                json!({"call": ["x"], "at": ago(1), "type": "closed"})
            )
            .into_bytes(),
            Some(1),
            Some("call"),
        ),
        (
            "unknown type",
            format!(
                "[{valid},{}]",
                json!({"call": "x", "at": ago(1), "type": "exploded"})
            )
            .into_bytes(),
            Some(1),
            Some("type"),
        ),
        (
            "huge id",
            format!(
                "[{valid},{}]",
                json!({"id": long_id, "call": "x", "at": ago(1), "type": "closed"})
            )
            .into_bytes(),
            Some(1),
            Some("id"),
        ),
        (
            "not an object",
            format!("[{valid}, 42]").into_bytes(),
            Some(1),
            None,
        ),
        ("null bytes", b"\0\0\0\0".to_vec(), Some(0), None),
    ];
    for (name, body, index, field) in hostile {
        let response = post(&server, None, body).await;
        assert!(
            response.status().is_client_error(),
            "{name}: {}",
            response.status()
        );
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(body["error"].is_string(), "{name}: {body}");
        if let Some(index) = index {
            assert_eq!(body["index"], index, "{name}: {body}");
        }
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{name}: {body}");
        }
    }
    let huge = post(&server, None, vec![b'['; 2 * 1024 * 1024]).await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A WebSocket flood: one client sends a great deal; another is unharmed.
    let mut flooder = ws_connect(&server.ws_url("/ws"), &[]).await.unwrap();
    let mut bystander = ws_connect(&server.ws_url("/ws"), &[]).await.unwrap();
    bystander.next().await.unwrap().unwrap();
    for i in 0..2000 {
        if flooder
            .send(Message::text(format!("flood {i}")))
            .await
            .is_err()
        {
            break;
        }
    }
    // A connection storm: far more connections than one address may hold.
    let mut storm = Vec::new();
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(server.addr).await {
            storm.push(stream);
        }
    }
    let refused = {
        let mut extra = TcpStream::connect(server.addr).await.unwrap();
        read_all(&mut extra, Duration::from_secs(5)).await
    };
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    drop(storm);
    drop(flooder);
    wait_healthy(&server).await;

    let health: Value = get(&server, "/healthz", None).await.json().await.unwrap();
    assert_eq!(health["ok"], true);
    assert_eq!(
        board(&server, None).await,
        before,
        "the board holds exactly what was accepted"
    );
    // The bystander still gets frames (snapshot or delta) and its socket is open.
    assert_eq!(post(&server, None, valid).await.status(), StatusCode::OK);
    let next = tokio::time::timeout(Duration::from_secs(5), bystander.next()).await;
    assert!(matches!(next, Ok(Some(Ok(_)))), "{next:?}");
}
