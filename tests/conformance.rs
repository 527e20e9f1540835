//! Conformance: `classify --calls` on the recorded journeys gives the expected
//! outcome, wait and boxes for every call, through the library and the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use wallboard::classify::{self, ClassifyOptions};
use wallboard::config::Config;

const JOURNEYS: &str = "tests/data/journeys.ndjson";
const EXPECTED: &str = "tests/data/expected.ndjson";

/// A path under the crate root, whatever directory the test runs in.
fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// NDJSON output as call → line, failing on anything not a JSON line.
fn by_call(ndjson: &str) -> BTreeMap<String, Value> {
    ndjson
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            let call = value["call"]
                .as_str()
                .expect("line names its call")
                .to_owned();
            (call, value)
        })
        .collect()
}

/// Compares call by call, so a failure names the call that differs.
fn assert_matches_expected(actual: &str) {
    let expected = by_call(&std::fs::read_to_string(data(EXPECTED)).expect("expected file"));
    let actual_lines = actual.lines().filter(|l| !l.trim().is_empty()).count();
    let actual = by_call(actual);
    assert_eq!(actual_lines, actual.len(), "one line per call");
    for (call, want) in &expected {
        let got = actual
            .get(call)
            .unwrap_or_else(|| panic!("no line for {call}"));
        assert_eq!(got, want, "call {call}");
    }
    let extra: Vec<&String> = actual
        .keys()
        .filter(|c| !expected.contains_key(*c))
        .collect();
    assert!(extra.is_empty(), "unexpected calls {extra:?}");
}

// The library, as `wallboard classify --calls` runs it.

#[test]
fn library_classify_calls_matches_expected() {
    let options = ClassifyOptions {
        calls: true,
        files: vec![data(JOURNEYS)],
        ..Default::default()
    };
    let mut out = Vec::new();
    classify::run(&options, &Config::default(), &mut out).expect("classify");
    assert_matches_expected(&String::from_utf8(out).expect("UTF-8 output"));
}

#[test]
fn library_classify_is_independent_of_file_order() {
    // Every event reversed: the per-call results must not change.
    let text = std::fs::read_to_string(data(JOURNEYS)).unwrap();
    let reversed: Vec<&str> = text.lines().rev().collect();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("journeys-reversed.ndjson");
    std::fs::write(&path, reversed.join("\n")).unwrap();
    let options = ClassifyOptions {
        calls: true,
        files: vec![path],
        ..Default::default()
    };
    let mut out = Vec::new();
    classify::run(&options, &Config::default(), &mut out).expect("classify");
    assert_matches_expected(&String::from_utf8(out).unwrap());
}

// The built binary, as a user runs it.

fn wallboard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wallboard"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

#[test]
fn binary_classify_calls_matches_expected() {
    let output = wallboard()
        .args(["classify", "--calls", JOURNEYS])
        .output()
        .expect("run wallboard");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert_matches_expected(&String::from_utf8(output.stdout).expect("UTF-8 output"));
}

#[test]
fn binary_classify_reads_standard_input() {
    use std::io::Write;
    let mut child = wallboard()
        .args(["classify", "--calls", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run wallboard");
    let input = std::fs::read(data(JOURNEYS)).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_matches_expected(&String::from_utf8(output.stdout).unwrap());
}

#[test]
fn binary_classify_names_file_line_and_field_of_a_bad_event() {
    let good = std::fs::read_to_string(data(JOURNEYS)).unwrap();
    let mut lines: Vec<&str> = good.lines().take(6).collect();
    lines.insert(
        4,
        r#"{"id":"bad","call":"j01","at":"2026-11-20T09:00:30Z","type":"offered"}"#,
    );
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad-offer.ndjson");
    std::fs::write(&path, lines.join("\n")).unwrap();

    let output = wallboard()
        .args(["classify", "--calls"])
        .arg(&path)
        .output()
        .expect("run wallboard");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a bad file fails: {stderr}");
    assert!(
        stderr.contains("bad-offer.ndjson"),
        "names the file: {stderr}"
    );
    assert!(stderr.contains("line 5"), "names the line: {stderr}");
    assert!(stderr.contains("`agent`"), "names the field: {stderr}");
    assert!(output.stdout.is_empty(), "prints no partial result");
}

#[test]
fn binary_classify_fails_on_a_missing_file() {
    let output = wallboard()
        .args(["classify", "--calls", "tests/data/no-such-file.ndjson"])
        .output()
        .expect("run wallboard");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no-such-file.ndjson"), "{stderr}");
}
