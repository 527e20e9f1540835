//! The server-rendered board (`GET /`): tiles with their current figures, which
//! `static/board.js` then keeps live from `/ws` through each tile's JSON path.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use jiff::Timestamp;
use serde_json::Value;

use super::AppState;

/// How a tile shows its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A whole number.
    Count,
    /// A ratio shown as a percentage.
    Percent,
    /// Seconds shown as m:ss.
    Secs,
    /// A timestamp shown as time elapsed since it, ticking.
    Since,
}

impl Format {
    /// The name the script knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Count => "count",
            Format::Percent => "percent",
            Format::Secs => "secs",
            Format::Since => "since",
        }
    }

    /// The value as shown, given the board's `now`; "–" when there is none.
    pub fn show(self, value: Option<&Value>, now: Option<Timestamp>) -> String {
        let dash = "–".to_owned();
        match (self, value) {
            (_, None | Some(Value::Null)) => dash,
            (Format::Count, Some(v)) => v.as_i64().map_or(dash, |n| n.to_string()),
            (Format::Percent, Some(v)) => v.as_f64().map_or(dash, |r| format!("{:.0}%", r * 100.0)),
            (Format::Secs, Some(v)) => v.as_f64().map_or(dash, clock),
            (Format::Since, Some(v)) => {
                let since = v.as_str().and_then(|s| s.parse::<Timestamp>().ok());
                match (since, now) {
                    (Some(since), Some(now)) => {
                        clock(now.duration_since(since).as_secs_f64().max(0.0))
                    }
                    _ => dash,
                }
            }
        }
    }
}

/// Seconds as m:ss (or h:mm:ss).
fn clock(secs: f64) -> String {
    let total = secs.round() as i64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// One stat tile.
#[derive(Debug, Clone)]
pub struct Tile {
    /// `data-box` name.
    pub name: String,
    /// Label in words.
    pub label: String,
    /// Dotted path of its value in the board JSON.
    pub path: String,
    /// How it is shown.
    pub format: Format,
    /// The value as shown now.
    pub shown: String,
}

fn lookup<'a>(board: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(board, |v, key| v.get(key))
}

/// The default tiles for a definition: live, its inbound boxes, its figures, agents.
pub fn default_tiles(board: &Value, definition: &str, boxes: &[String]) -> Vec<Tile> {
    let def = |field: &str| format!("definitions.{definition}.{field}");
    let mut specs: Vec<(String, String, String, Format)> = vec![
        (
            "queued".into(),
            "Calls waiting".into(),
            "live.queued".into(),
            Format::Count,
        ),
        (
            "longest_waiting".into(),
            "Longest waiting".into(),
            "live.oldest_queued_since".into(),
            Format::Since,
        ),
    ];
    let hidden = |b: &str| b.starts_with("outbound_") || b == "expired" || b == "ignored";
    for name in boxes.iter().filter(|b| !hidden(b)) {
        specs.push((
            name.clone(),
            label_of(name),
            def(&format!("boxes.{name}")),
            Format::Count,
        ));
    }
    specs.extend([
        (
            "service_level".into(),
            "Service level".into(),
            def("service_level"),
            Format::Percent,
        ),
        (
            "abandon_rate".into(),
            "Abandon rate".into(),
            def("abandon_rate"),
            Format::Percent,
        ),
        (
            "asa".into(),
            "Average answer".into(),
            def("asa_secs"),
            Format::Secs,
        ),
        (
            "talking".into(),
            "Talking now".into(),
            "live.talking".into(),
            Format::Count,
        ),
        (
            "available".into(),
            "Agents available".into(),
            "agents.available".into(),
            Format::Count,
        ),
    ]);
    let now = board
        .get("now")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    specs
        .into_iter()
        .map(|(name, label, path, format)| Tile {
            shown: format.show(lookup(board, &path), now),
            name,
            label,
            path,
            format,
        })
        .collect()
}

/// A box name in words: `timed_out` → "Timed out".
fn label_of(name: &str) -> String {
    let words = name.replace(['_', '-'], " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The board page.
#[derive(Template, WebTemplate)]
#[template(path = "board.html")]
pub struct BoardPage {
    /// Page title.
    pub title: String,
    /// The definition shown.
    pub definition: String,
    /// Its tiles.
    pub tiles: Vec<Tile>,
    /// The board's seq when rendered.
    pub seq: u64,
    /// The board's `now` when rendered.
    pub now: String,
}

/// `GET /`: the default board.
pub async fn board(State(app): State<Arc<AppState>>) -> BoardPage {
    let latest = app.hub.latest();
    let definition = app.config.default_definition.clone();
    let boxes = app
        .config
        .engine
        .definitions
        .iter()
        .find(|d| d.name() == definition)
        .map(|d| d.boxes().to_vec())
        .unwrap_or_default();
    BoardPage {
        title: "Wallboard".into(),
        tiles: default_tiles(&latest.board, &definition, &boxes),
        definition,
        seq: latest.seq,
        now: latest
            .board
            .get("now")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats() {
        let now = Some("2026-11-20T09:05:00Z".parse().unwrap());
        assert_eq!(Format::Count.show(Some(&json!(12)), now), "12");
        assert_eq!(Format::Percent.show(Some(&json!(0.834)), now), "83%");
        assert_eq!(Format::Secs.show(Some(&json!(65.4)), now), "1:05");
        assert_eq!(
            Format::Since.show(Some(&json!("2026-11-20T09:03:10Z")), now),
            "1:50"
        );
        assert_eq!(Format::Since.show(None, now), "–");
        assert_eq!(Format::Secs.show(Some(&json!(3725)), now), "1:02:05");
    }

    #[test]
    fn tiles_read_their_paths() {
        let board = json!({"now": "2026-11-20T09:05:00Z", "live": {"queued": 3},
            "definitions": {"nhs": {"boxes": {"answered": 7, "other": 1}, "service_level": 0.5}}});
        let boxes = [
            "answered".to_owned(),
            "other".to_owned(),
            "expired".to_owned(),
        ];
        let tiles = default_tiles(&board, "nhs", &boxes);
        let shown: Vec<(&str, &str)> = tiles
            .iter()
            .map(|t| (t.name.as_str(), t.shown.as_str()))
            .collect();
        assert!(shown.contains(&("queued", "3")));
        assert!(shown.contains(&("answered", "7")));
        assert!(shown.contains(&("other", "1")));
        assert!(shown.contains(&("service_level", "50%")));
        assert!(!shown.iter().any(|(n, _)| *n == "expired"));
    }
}
