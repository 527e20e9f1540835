//! The server-rendered pages: a board (`GET /`, `GET /board/{name}`) with its
//! tiles' current figures and states, which `static/board.js` then keeps live
//! from `/ws` through each tile's JSON path; and the supervisor page's frame,
//! which `static/supervisor.js` fills from `/ws` and `/ws/supervisor`.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use serde_json::Value;

use super::{AppState, WebError};
pub use crate::board::Format;
use crate::board::{Board, board_now, lookup};

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

/// Columns of the tile grid for `n` tiles on a 16:9 screen: the layout whose
/// tiles hold the largest 1.6:1 rectangle (the script redoes it for the real screen).
pub fn grid_columns(n: usize) -> usize {
    let (width, height, aspect) = (16.0, 8.0, 1.6);
    (1..=n.max(1))
        .map(|cols| {
            let rows = n.div_ceil(cols).max(1);
            let side = f64::min(width / cols as f64 / aspect, height / rows as f64);
            (cols, side)
        })
        .fold((1, 0.0), |best, c| if c.1 > best.1 { c } else { best })
        .0
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
    /// Grid columns.
    pub columns: usize,
    /// The board's seq when rendered.
    pub seq: u64,
    /// The board's `now` when rendered.
    pub now: String,
    /// The site's time zone (the clock shows site time).
    pub timezone: String,
    /// The clock as rendered (site time).
    pub clock: String,
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
        columns: grid_columns(tiles.len()),
        tiles,
        seq: latest.seq,
        now: now.map(|n| n.to_string()).unwrap_or_default(),
        timezone: app.config.engine.day.time_zone_name(),
        clock: now
            .map(|n| n.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string())
            .unwrap_or_default(),
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

    #[test]
    fn grid_fits_a_wide_screen() {
        let cols: Vec<usize> = [1, 2, 4, 6, 9, 10, 12].map(grid_columns).to_vec();
        assert_eq!(cols, [1, 2, 2, 3, 3, 4, 4]);
    }
}
