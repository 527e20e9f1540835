//! The browser tests (`tests/browser/*.test.mjs`): real headless Chromium,
//! driven by playwright-core under node, against this build's binary. On a
//! machine without Chromium or the npm packages they are skipped with a note,
//! unless `WALLBOARD_REQUIRE_BROWSER=1` (as in CI) makes that a failure.

use std::path::Path;
use std::process::Command;

fn missing() -> Option<&'static str> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is not installed (apt-get install chromium)");
    }
    if !Path::new("tests/browser/node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed (cd tests/browser && npm ci)");
    }
    None
}

#[test]
fn pages_in_headless_chromium() {
    if let Some(why) = missing() {
        let required = std::env::var("WALLBOARD_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(!required, "browser tests required but {why}");
        eprintln!("browser tests skipped: {why}");
        return;
    }
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/browser/"])
        .env("WALLBOARD_BIN", env!("CARGO_BIN_EXE_wallboard"))
        .output()
        .expect("node runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser tests failed:\n{report}");
    eprintln!("{report}");
}
