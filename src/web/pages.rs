//! The server-rendered pages: a board (`GET /`, `GET /board/{name}`) with its
//! tiles' current figures and states, which `static/board.js` then keeps live
//! from `/ws` through each tile's JSON path; and the supervisor page's frame,
//! which `static/supervisor.js` fills from `/ws` and `/ws/supervisor`.
//!
//! What the board's script needs is sent as data: each tile's path, format and
//! levels, the words of each state, the tiles' aspect. The rules that must run
//! in the browser too (formats, thresholds, grid, clock) are held to one table
//! of cases with `static/tiles.js`: `tests/data/tile-cases.json`.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

use super::{AppState, WebError};
pub use crate::board::Format;
use crate::board::{Board, TileState, board_now, lookup};
use crate::protocol::FeedDown;

/// One stat tile as rendered.
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
    /// `ok`, `warn` or `alert`.
    pub state: &'static str,
    /// The state in words (empty when ok).
    pub cue: &'static str,
    /// Warn level (JSON units), empty for none.
    pub warn: String,
    /// Alert level (JSON units), empty for none.
    pub alert: String,
    /// Whether low values are bad.
    pub below: bool,
}

/// The tiles of `board` with the figures of `json`.
pub fn tiles(board: &Board, json: &Value) -> Vec<Tile> {
    let now = board_now(json);
    let level = |l: Option<f64>| l.map(|v| v.to_string()).unwrap_or_default();
    board
        .tiles
        .iter()
        .map(|spec| {
            let state = spec.state(json);
            let threshold = spec.threshold;
            Tile {
                name: spec.name.clone(),
                label: spec.label.clone(),
                path: spec.path.clone(),
                format: spec.format,
                shown: spec.format.show(lookup(json, &spec.path), now),
                state: state.as_str(),
                cue: state.cue(),
                warn: level(threshold.and_then(|t| t.warn)),
                alert: level(threshold.and_then(|t| t.alert)),
                below: threshold.is_some_and(|t| t.below),
            }
        })
        .collect()
}

/// The shape (width ÷ height) the grid gives each tile as far as it can;
/// sent to the page, which lays the grid out again for the real screen.
pub const TILE_ASPECT: f64 = 1.6;

/// The grid's (width, height) on a 16:9 screen below the header bar: the
/// first render's guess before the script measures the real one.
const FIRST_RENDER_GRID: (f64, f64) = (16.0, 8.0);

/// Columns of the tile grid for `n` tiles in a `width` × `height` grid: the
/// layout whose tiles hold the largest [`TILE_ASPECT`] rectangle (`tiles.js`
/// has the same rule; `tests/data/tile-cases.json` keeps the two in step).
pub fn grid_columns(n: usize, width: f64, height: f64) -> usize {
    (1..=n.max(1))
        .map(|cols| {
            let rows = n.div_ceil(cols).max(1);
            let side = f64::min(width / cols as f64 / TILE_ASPECT, height / rows as f64);
            (cols, side)
        })
        .fold((1, 0.0), |best, c| if c.1 > best.1 { c } else { best })
        .0
}

/// The time of day at `now` in `tz`, as the page's clock shows it (HH:MM:SS).
pub fn time_of_day(now: Timestamp, tz: &TimeZone) -> String {
    now.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string()
}

/// The "feed down since 10:42 · pbx" line of a board over `queues` (empty:
/// every queue), from the board document's `feeds_down`; `None` when every
/// feed it cares about is up. The earliest outage gives the time (site time,
/// HH:MM); `static/board.js` keeps the same line live.
pub fn feed_down_line(json: &Value, queues: &[String], tz: &TimeZone) -> Option<String> {
    let down: std::collections::BTreeMap<String, FeedDown> =
        serde_json::from_value(json.get("feeds_down")?.clone()).ok()?;
    let down: Vec<(&String, &FeedDown)> = down.iter().filter(|(_, f)| f.concerns(queues)).collect();
    let since = down.iter().map(|(_, f)| f.since).min()?;
    let names: Vec<&str> = down.iter().map(|(name, _)| name.as_str()).collect();
    let at = since.to_zoned(tz.clone()).strftime("%H:%M");
    Some(format!("Feed down since {at} · {}", names.join(", ")))
}

/// A board page.
#[derive(Template, WebTemplate)]
#[template(path = "board.html")]
pub struct BoardPage {
    /// Page title.
    pub title: String,
    /// The board's name.
    pub name: String,
    /// The definition shown.
    pub definition: String,
    /// What the figures cover, in words.
    pub scope: String,
    /// Its tiles.
    pub tiles: Vec<Tile>,
    /// Grid columns for a 16:9 screen.
    pub columns: usize,
    /// [`TILE_ASPECT`], for the script's layout of the real screen.
    pub aspect: f64,
    /// (state, its words) of every tile state, for the script.
    pub cues: Vec<(&'static str, &'static str)>,
    /// The board's seq when rendered.
    pub seq: u64,
    /// The board's `now` when rendered.
    pub now: String,
    /// The site's time zone (the clock shows site time).
    pub timezone: String,
    /// The clock as rendered (site time).
    pub clock: String,
    /// The board's queues (empty: every queue), for the script's "feed down" line.
    pub queues: String,
    /// The "feed down since 10:42" line as rendered, empty when no feed is down.
    pub feed_down: String,
}

fn render(app: &AppState, board: &Board) -> BoardPage {
    let latest = app.hub.latest();
    let json = &latest.document;
    let tiles = tiles(board, json);
    let tz = app.config.engine.day.time_zone();
    let now = board_now(json);
    let queues = if board.queues.is_empty() {
        "all queues".to_owned()
    } else {
        board.queues.join(", ")
    };
    BoardPage {
        title: board.title.clone(),
        name: board.name.clone(),
        definition: board.definition.clone(),
        scope: format!("Today · {queues} · {} counting", board.definition),
        columns: grid_columns(tiles.len(), FIRST_RENDER_GRID.0, FIRST_RENDER_GRID.1),
        aspect: TILE_ASPECT,
        cues: TileState::ALL.map(|s| (s.as_str(), s.cue())).to_vec(),
        tiles,
        seq: latest.seq,
        now: now.map(|n| n.to_string()).unwrap_or_default(),
        timezone: app.config.engine.day.time_zone_name(),
        clock: now.map(|n| time_of_day(n, tz)).unwrap_or_default(),
        queues: serde_json::to_string(&board.queues).unwrap_or_default(),
        feed_down: feed_down_line(json, &board.queues, tz).unwrap_or_default(),
    }
}

/// `GET /`: the default board.
pub async fn board(State(app): State<Arc<AppState>>) -> BoardPage {
    render(&app, &app.config.boards.default)
}

/// `GET /board/{name}`: a configured board.
pub async fn named_board(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<BoardPage, WebError> {
    let board = app
        .config
        .boards
        .get(&name)
        .ok_or_else(|| WebError::NotFound(format!("no board is called {name:?}")))?;
    Ok(render(&app, board))
}

/// The supervisor page's frame; its script fills it.
#[derive(Template, WebTemplate)]
#[template(path = "supervisor.html")]
pub struct SupervisorPage {
    /// The definitions, the default first.
    pub definitions: Vec<String>,
    /// The site's time zone.
    pub timezone: String,
    /// Live calls listed at most.
    pub max_live_calls: usize,
    /// Callers listed at most.
    pub max_callbacks: usize,
}

/// `GET /supervisor`.
pub async fn supervisor(State(app): State<Arc<AppState>>) -> SupervisorPage {
    let default = &app.config.default_definition;
    let mut definitions: Vec<String> = vec![default.clone()];
    definitions.extend(
        app.config
            .engine
            .definitions
            .iter()
            .map(|d| d.name().to_owned())
            .filter(|n| n != default),
    );
    SupervisorPage {
        definitions,
        timezone: app.config.engine.day.time_zone_name(),
        max_live_calls: crate::supervisor::MAX_LIVE_CALLS,
        max_callbacks: crate::supervisor::MAX_CALLBACKS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Threshold;
    use crate::definition::{BuiltInSettings, Definition};
    use serde_json::json;

    #[test]
    fn tiles_read_their_paths_and_states() {
        let board = json!({"now": "2026-11-20T09:05:00Z", "live": {"queued": 12},
            "definitions": {"nhs": {"boxes": {"answered": 7, "other": 1}, "service_level": 0.5}}});
        let defs = Definition::built_ins(&BuiltInSettings::default());
        let tiles = tiles(&Board::builtin(&defs[1]), &board);
        let shown: Vec<(&str, &str, &str)> = tiles
            .iter()
            .map(|t| (t.name.as_str(), t.shown.as_str(), t.state))
            .collect();
        assert!(shown.contains(&("queued", "12", "alert")));
        assert!(shown.contains(&("answered", "7", "ok")));
        assert!(shown.contains(&("other", "1", "ok")));
        assert!(shown.contains(&("service_level", "50%", "alert")));
        assert!(!shown.iter().any(|(n, ..)| *n == "expired"));
        let sl = tiles.iter().find(|t| t.name == "service_level").unwrap();
        assert_eq!(
            (sl.warn.as_str(), sl.alert.as_str(), sl.below),
            ("0.8", "0.6", true)
        );
        assert_eq!(sl.cue, "■ Alert");
    }

    /// The cases `static/tiles.js` is held to as well (tests/browser/tiles.test.mjs).
    const TILE_CASES: &str = include_str!("../../tests/data/tile-cases.json");

    fn cases(section: &str) -> Vec<Value> {
        let all: Value = serde_json::from_str(TILE_CASES).expect("tile-cases.json is JSON");
        let cases = all.pointer(section).and_then(Value::as_array);
        cases.expect("a list of cases").clone()
    }

    #[test]
    fn formats_match_the_shared_cases() {
        for case in cases("/formats") {
            let format = Format::ALL
                .into_iter()
                .find(|f| case["format"] == f.as_str());
            let now = case["now"].as_str().map(|n| n.parse().unwrap());
            let shown = format.unwrap().show(case.get("value"), now);
            assert_eq!(shown, case["shown"], "{case}");
        }
    }

    #[test]
    fn thresholds_match_the_shared_cases() {
        for case in cases("/thresholds") {
            let threshold = Threshold {
                warn: case["warn"].as_f64(),
                alert: case["alert"].as_f64(),
                below: case["below"] == true,
            };
            let state = threshold.state(case["value"].as_f64());
            assert_eq!(state.as_str(), case["state"], "{case}");
        }
    }

    #[test]
    fn the_grid_matches_the_shared_cases() {
        let all: Value = serde_json::from_str(TILE_CASES).unwrap();
        assert_eq!(all["grid"]["aspect"], TILE_ASPECT);
        for case in cases("/grid/cases") {
            let n = case["tiles"].as_u64().unwrap() as usize;
            let (width, height) = (case["width"].as_f64(), case["height"].as_f64());
            let columns = grid_columns(n, width.unwrap(), height.unwrap());
            assert_eq!(columns, case["columns"], "{case}");
        }
    }

    #[test]
    fn the_feed_down_line_names_the_feeds_of_the_boards_queues() {
        let board = json!({"feeds_down": {
            "east": {"since": "2026-11-20T10:42:30Z", "queues": ["sales"]},
            "west": {"since": "2026-11-20T11:05:00Z", "queues": ["support"]},
            "new": {"since": "2026-11-20T11:30:00Z", "queues": []}}});
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let line = |queues: &[&str]| {
            let queues: Vec<String> = queues.iter().map(|q| q.to_string()).collect();
            feed_down_line(&board, &queues, &tz)
        };
        let every = Some("Feed down since 11:42 · east, new, west".to_owned());
        assert_eq!(line(&[]), every);
        let sales = Some("Feed down since 11:42 · east, new".to_owned());
        assert_eq!(line(&["sales", "billing"]), sales);
        let support = Some("Feed down since 12:05 · new, west".to_owned());
        assert_eq!(line(&["support"]), support);
        assert_eq!(feed_down_line(&json!({}), &[], &tz), None);
    }

    #[test]
    fn the_clock_matches_the_shared_cases() {
        for case in cases("/time_of_day") {
            let at: Timestamp = case["at"].as_str().unwrap().parse().unwrap();
            let tz = TimeZone::get(case["timezone"].as_str().unwrap()).unwrap();
            assert_eq!(time_of_day(at, &tz), case["shown"], "{case}");
        }
    }
}
