//! The source runtime against a real server: every configured source reports
//! its state in `GET /api/sources` and `/metrics`.

mod common;

use std::time::Duration;

use common::{TestServer, within};
use serde_json::Value;
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
