//! Boards: which tiles a TV board shows, for which definition and queues, and
//! when a tile turns `warn` or `alert`. Built from the `[[board]]` tables of
//! the config (errors name the key, e.g. `board[2].tiles[3]`); knows no web.
//!
//! A tile reads one value of the board JSON ([`crate::protocol`]) through a
//! dotted path; a test checks every tile's path against a real snapshot. A board
//! with a queue filter reads the figures the snapshot pre-computes for it
//! under `groups.NAME` (its queues summed on the server, so ratios stay
//! exact); a board without one reads the site's figures at the top level.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::config::error::{ConfigError, invalid};
use crate::definition::Definition;

/// The name of the board `GET /` shows; a `[[board]]` of that name replaces the built-in one.
pub const DEFAULT_BOARD: &str = "default";

/// Tiles with a fixed meaning: (name, label, path relative to the board's
/// base, where `{d}` is the board's definition, format).
const FIXED_TILES: &[(&str, &str, &str, Format)] = &[
    ("queued", "Calls waiting", "live.queued", Format::Count),
    (
        "longest_waiting",
        "Longest waiting",
        "live.oldest_queued_since",
        Format::Since,
    ),
    ("ringing", "Ringing", "live.ringing", Format::Count),
    ("talking", "Talking now", "live.talking", Format::Count),
    ("in_ivr", "In the menu", "live.in_ivr", Format::Count),
    (
        "offered",
        "Offered",
        "definitions.{d}.offered",
        Format::Count,
    ),
    (
        "service_level",
        "Service level",
        "definitions.{d}.service_level",
        Format::Percent,
    ),
    (
        "abandon_rate",
        "Abandon rate",
        "definitions.{d}.abandon_rate",
        Format::Percent,
    ),
    (
        "asa",
        "Average answer",
        "definitions.{d}.asa_secs",
        Format::Secs,
    ),
    (
        "longest_wait",
        "Longest wait today",
        "definitions.{d}.longest_wait_secs",
        Format::Secs,
    ),
    (
        "agents_available",
        "Agents available",
        "agents.available",
        Format::Count,
    ),
    ("agents_busy", "Agents busy", "agents.busy", Format::Count),
    (
        "agents_wrap_up",
        "Agents in wrap-up",
        "agents.wrap_up",
        Format::Count,
    ),
    ("agents_away", "Agents away", "agents.away", Format::Count),
    (
        "agents_offline",
        "Agents offline",
        "agents.offline",
        Format::Count,
    ),
];

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
    /// Every format.
    pub const ALL: [Format; 4] = [Format::Count, Format::Percent, Format::Secs, Format::Since];

    /// The name the script knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Count => "count",
            Format::Percent => "percent",
            Format::Secs => "secs",
            Format::Since => "since",
        }
    }

    /// The value as a number thresholds compare (a ratio, seconds, a count),
    /// given the board's `now`.
    pub fn number(self, value: Option<&Value>, now: Option<Timestamp>) -> Option<f64> {
        let value = value?;
        match self {
            Format::Since => {
                let since = value.as_str()?.parse::<Timestamp>().ok()?;
                Some(now?.duration_since(since).as_secs_f64().max(0.0))
            }
            _ => value.as_f64(),
        }
    }

    /// The value as shown, given the board's `now`; "–" when there is none.
    pub fn show(self, value: Option<&Value>, now: Option<Timestamp>) -> String {
        let Some(n) = self.number(value, now) else {
            return "–".to_owned();
        };
        match self {
            Format::Count => format!("{}", n.round() as i64),
            // Half away from zero, as the live script's Math.round does for ratios.
            Format::Percent => format!("{}%", (n * 100.0).round()),
            Format::Secs | Format::Since => clock(n),
        }
    }
}

/// Seconds as m:ss (or h:mm:ss); a negative time shows as 0:00.
pub fn clock(secs: f64) -> String {
    let total = secs.round().max(0.0) as i64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A tile's state against its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileState {
    /// Within bounds, or no threshold, or no value.
    Ok,
    /// Past the warn level.
    Warn,
    /// Past the alert level.
    Alert,
}

impl TileState {
    /// Every state, for the page that shows their words.
    pub const ALL: [TileState; 3] = [TileState::Ok, TileState::Warn, TileState::Alert];

    /// `data-state` value.
    pub fn as_str(self) -> &'static str {
        match self {
            TileState::Ok => "ok",
            TileState::Warn => "warn",
            TileState::Alert => "alert",
        }
    }

    /// The words shown with the colour, so the state never rests on colour alone.
    pub fn cue(self) -> &'static str {
        match self {
            TileState::Ok => "",
            TileState::Warn => "▲ Warning",
            TileState::Alert => "■ Alert",
        }
    }
}

/// Warn and alert levels of a tile, in the JSON's units (a ratio for
/// percentages, seconds for times). Without `below` a value at or above a
/// level reaches it; with `below`, a value under it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// The warn level.
    pub warn: Option<f64>,
    /// The alert level.
    pub alert: Option<f64>,
    /// Low values are bad (service level).
    pub below: bool,
}

impl Threshold {
    /// The state of `value` (the browser applies the same rule in `tiles.js`).
    pub fn state(&self, value: Option<f64>) -> TileState {
        let Some(v) = value else {
            return TileState::Ok;
        };
        let reached =
            |level: Option<f64>| level.is_some_and(|l| if self.below { v < l } else { v >= l });
        if reached(self.alert) {
            TileState::Alert
        } else if reached(self.warn) {
            TileState::Warn
        } else {
            TileState::Ok
        }
    }
}

/// One tile of a board.
#[derive(Debug, Clone, PartialEq)]
pub struct TileSpec {
    /// The name it was configured by (`data-box`).
    pub name: String,
    /// Label in words.
    pub label: String,
    /// Dotted path of its value in the board JSON.
    pub path: String,
    /// How it is shown.
    pub format: Format,
    /// When it turns warn or alert.
    pub threshold: Option<Threshold>,
}

impl TileSpec {
    /// The tile's state on `board`.
    pub fn state(&self, board: &Value) -> TileState {
        let Some(threshold) = &self.threshold else {
            return TileState::Ok;
        };
        threshold.state(
            self.format
                .number(lookup(board, &self.path), board_now(board)),
        )
    }
}

/// The value at a dotted path.
pub fn lookup<'a>(board: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(board, |v, key| v.get(key))
}

/// The board's `now`.
pub fn board_now(board: &Value) -> Option<Timestamp> {
    board.get("now")?.as_str()?.parse().ok()
}

/// A validated board.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    /// Its name, the last part of `/board/{name}`.
    pub name: String,
    /// The heading shown.
    pub title: String,
    /// The definition its boxes and figures come from.
    pub definition: String,
    /// Its queues; empty means the whole site.
    pub queues: Vec<String>,
    /// Its tiles, in order.
    pub tiles: Vec<TileSpec>,
    /// Shown without a supervisor token (the future auth layer's rule).
    pub public: bool,
}

impl Board {
    /// The built-in board of `GET /`: today's figures of `definition`, with
    /// thresholds a typical site starts from.
    pub fn builtin(definition: &Definition) -> Board {
        let names = default_tile_names(definition);
        let tiles = names
            .iter()
            .map(|n| tile_spec(n, definition, "").expect("default tiles are known"))
            .map(|mut tile| {
                tile.threshold = match tile.name.as_str() {
                    "queued" => Some(above(5.0, 10.0)),
                    "longest_waiting" => Some(above(60.0, 120.0)),
                    "service_level" => Some(Threshold {
                        warn: Some(0.8),
                        alert: Some(0.6),
                        below: true,
                    }),
                    _ => None,
                };
                tile
            })
            .collect();
        Board {
            name: DEFAULT_BOARD.to_owned(),
            title: "Wallboard".to_owned(),
            definition: definition.name().to_owned(),
            queues: Vec::new(),
            tiles,
            public: true,
        }
    }
}

/// The prefix of a board's paths in the board JSON: a board with a queue
/// filter reads its own summed group.
pub fn path_base(name: &str, queues: &[String]) -> String {
    if queues.is_empty() {
        String::new()
    } else {
        format!("groups.{name}.")
    }
}

fn above(warn: f64, alert: f64) -> Threshold {
    Threshold {
        warn: Some(warn),
        alert: Some(alert),
        below: false,
    }
}

/// Live figures, the definition's inbound boxes, its figures, talking, agents available.
fn default_tile_names(definition: &Definition) -> Vec<String> {
    let hidden = |b: &str| b.starts_with("outbound_") || b == "expired" || b == "ignored";
    let mut names: Vec<String> = vec!["queued".into(), "longest_waiting".into()];
    names.extend(definition.boxes().iter().filter(|b| !hidden(b)).cloned());
    names.extend(
        [
            "service_level",
            "abandon_rate",
            "asa",
            "talking",
            "agents_available",
        ]
        .map(String::from),
    );
    names
}

/// Every tile a board of `definition` can show (the fixed tiles, then its
/// boxes), reading under `base` (see [`path_base`]).
pub fn every_tile(definition: &Definition, base: &str) -> Vec<TileSpec> {
    FIXED_TILES
        .iter()
        .map(|(name, ..)| *name)
        .chain(definition.boxes().iter().map(String::as_str))
        .filter_map(|name| tile_spec(name, definition, base))
        .collect()
}

/// A tile by name (a fixed tile, else a box of `definition`), reading under `base`.
fn tile_spec(name: &str, definition: &Definition, base: &str) -> Option<TileSpec> {
    let (label, path, format) = match FIXED_TILES.iter().find(|(n, ..)| *n == name) {
        Some((_, label, path, format)) => (
            (*label).to_owned(),
            path.replace("{d}", definition.name()),
            *format,
        ),
        None => {
            definition.box_index(name)?;
            (
                label_of(name),
                format!("definitions.{}.boxes.{name}", definition.name()),
                Format::Count,
            )
        }
    };
    Some(TileSpec {
        name: name.to_owned(),
        label,
        path: format!("{base}{path}"),
        format,
        threshold: None,
    })
}

/// A box name in words: `timed_out` → "Timed out".
pub fn label_of(name: &str) -> String {
    let words = name.replace(['_', '-'], " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// One `[[board]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoard {
    name: String,
    title: Option<String>,
    definition: Option<String>,
    queues: Option<Vec<String>>,
    tiles: Option<Vec<String>>,
    #[serde(default)]
    thresholds: BTreeMap<String, RawThreshold>,
    public: Option<bool>,
}

/// One tile's thresholds as written: levels in the tile's own units
/// (a count, seconds, or a percentage such as 80).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThreshold {
    pub(crate) warn: Option<f64>,
    pub(crate) alert: Option<f64>,
    pub(crate) below: Option<bool>,
}

/// The boards of the site.
#[derive(Debug, Clone, PartialEq)]
pub struct Boards {
    /// The board of `GET /`.
    pub default: Board,
    /// The configured boards, in the file's order (the default included if configured).
    pub named: Vec<Board>,
}

impl Boards {
    /// Validates the `[[board]]` tables against the site's definitions.
    pub fn from_raw(
        raw: Vec<RawBoard>,
        definitions: &[Definition],
        default_definition: &str,
    ) -> Result<Boards, ConfigError> {
        let fallback = definitions
            .iter()
            .find(|d| d.name() == default_definition)
            .unwrap_or(&definitions[0]);
        let mut named: Vec<Board> = Vec::new();
        for (i, raw) in raw.into_iter().enumerate() {
            let board = validate(&format!("board[{i}]"), raw, definitions, fallback)?;
            if named.iter().any(|b| b.name == board.name) {
                return Err(invalid(
                    &format!("board[{i}].name"),
                    format!("another board is already called {:?}", board.name),
                ));
            }
            named.push(board);
        }
        let default = named
            .iter()
            .find(|b| b.name == DEFAULT_BOARD)
            .cloned()
            .unwrap_or_else(|| Board::builtin(fallback));
        Ok(Boards { default, named })
    }

    /// A board by name (`default` is always there).
    pub fn get(&self, name: &str) -> Option<&Board> {
        if name == DEFAULT_BOARD {
            return Some(&self.default);
        }
        self.named.iter().find(|b| b.name == name)
    }

    /// (board name, queues) of every board with a queue filter: the groups
    /// the snapshot pre-computes.
    pub fn queue_groups(&self) -> Vec<(String, Vec<String>)> {
        // The built-in default board has no filter; a configured one is in `named`.
        self.named
            .iter()
            .filter(|b| !b.queues.is_empty())
            .map(|b| (b.name.clone(), b.queues.clone()))
            .collect()
    }
}

/// Names safe in a URL, a dotted path, a metric label and a log line: the
/// rule for boards and for alert targets and rules.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn validate(
    key: &str,
    raw: RawBoard,
    definitions: &[Definition],
    fallback: &Definition,
) -> Result<Board, ConfigError> {
    if !valid_name(&raw.name) {
        return Err(invalid(
            &format!("{key}.name"),
            format!(
                "{:?} is not a board name (lower-case letters, digits, - and _)",
                raw.name
            ),
        ));
    }
    let definition = match &raw.definition {
        None => fallback,
        Some(name) => definitions
            .iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                invalid(
                    &format!("{key}.definition"),
                    format!("no definition is called {name:?}"),
                )
            })?,
    };
    let queues = raw.queues.unwrap_or_default();
    for (q, queue) in queues.iter().enumerate() {
        if queue.is_empty() || queues[..q].contains(queue) {
            return Err(invalid(
                &format!("{key}.queues[{q}]"),
                format!("{queue:?} is empty or listed twice"),
            ));
        }
    }
    let base = path_base(&raw.name, &queues);
    let names = raw.tiles.unwrap_or_else(|| default_tile_names(definition));
    if names.is_empty() {
        return Err(invalid(&format!("{key}.tiles"), "a board needs a tile"));
    }
    let mut tiles = Vec::with_capacity(names.len());
    for (t, name) in names.iter().enumerate() {
        let tile = tile_spec(name, definition, &base).ok_or_else(|| {
            invalid(
                &format!("{key}.tiles[{t}]"),
                format!(
                    "unknown tile {name:?} (known: {}, or a box of definition {:?}: {})",
                    FIXED_TILES
                        .iter()
                        .map(|(n, ..)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                    definition.name(),
                    definition.boxes().join(", ")
                ),
            )
        })?;
        if tiles.iter().any(|x: &TileSpec| x.name == tile.name) {
            return Err(invalid(
                &format!("{key}.tiles[{t}]"),
                format!("tile {name:?} is listed twice"),
            ));
        }
        tiles.push(tile);
    }
    for (name, raw) in raw.thresholds {
        let tkey = format!("{key}.thresholds.{name}");
        let tile = tiles
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| invalid(&tkey, format!("the board has no tile {name:?}")))?;
        tile.threshold = Some(threshold(&tkey, &raw, tile.format)?);
    }
    Ok(Board {
        title: raw.title.unwrap_or_else(|| label_of(&raw.name)),
        name: raw.name,
        definition: definition.name().to_owned(),
        queues,
        tiles,
        public: raw.public.unwrap_or(true),
    })
}

/// Levels in the tile's units → the JSON's units; service level and other
/// percentages default to `below` only for service level.
pub(crate) fn threshold(
    key: &str,
    raw: &RawThreshold,
    format: Format,
) -> Result<Threshold, ConfigError> {
    if raw.warn.is_none() && raw.alert.is_none() {
        return Err(invalid(key, "give `warn`, `alert` or both"));
    }
    // Divide rather than multiply by 0.01: 70 * 0.01 is 0.7000000000000001,
    // which would make "warn at 70 %" miss a service level of exactly 70 %.
    let divisor = if format == Format::Percent {
        100.0
    } else {
        1.0
    };
    // A percentage past 100 is never reached (or always), so it is a typo.
    let max = if format == Format::Percent {
        100.0
    } else {
        f64::INFINITY
    };
    let level = |field: &str, v: Option<f64>| match v {
        Some(v) if !v.is_finite() || v < 0.0 => Err(invalid(
            &format!("{key}.{field}"),
            format!("must be a number of at least 0, not {v}"),
        )),
        Some(v) if v > max => Err(invalid(
            &format!("{key}.{field}"),
            format!("is a percentage: between 0 and 100, not {v}"),
        )),
        v => Ok(v.map(|v| v / divisor)),
    };
    let below = raw.below.unwrap_or_else(|| key.ends_with(".service_level"));
    let t = Threshold {
        warn: level("warn", raw.warn)?,
        alert: level("alert", raw.alert)?,
        below,
    };
    if let (Some(w), Some(a)) = (t.warn, t.alert) {
        let ordered = if below { a <= w } else { w <= a };
        if !ordered {
            let order = if below { "at or below" } else { "at or above" };
            return Err(invalid(
                &format!("{key}.alert"),
                format!("the alert level must be {order} the warn level"),
            ));
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::BuiltInSettings;
    use serde_json::json;

    fn boards(toml_text: &str) -> Result<Boards, String> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            board: Vec<RawBoard>,
        }
        let file: File = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        let defs = Definition::built_ins(&BuiltInSettings::default());
        Boards::from_raw(file.board, &defs, "reachable").map_err(|e| e.to_string())
    }

    #[test]
    fn a_configured_board() {
        let b = boards(
            r#"
            [[board]]
            name = "appointments"
            title = "Appointments line"
            definition = "nhs"
            queues = ["appointments", "repeat"]
            tiles = ["queued", "longest_waiting", "answered", "other", "service_level", "agents_available"]
            public = false
            [board.thresholds]
            queued = { warn = 5, alert = 10 }
            longest_waiting = { warn = 120 }
            service_level = { warn = 80, alert = 60 }
            "#,
        )
        .unwrap();
        let board = b.get("appointments").unwrap();
        assert_eq!(board.title, "Appointments line");
        assert!(!board.public);
        assert_eq!(board.tiles.len(), 6);
        assert_eq!(board.tiles[0].path, "groups.appointments.live.queued");
        assert_eq!(
            board.tiles[3].path,
            "groups.appointments.definitions.nhs.boxes.other"
        );
        let sl = board.tiles[4].threshold.unwrap();
        assert_eq!((sl.warn, sl.alert, sl.below), (Some(0.8), Some(0.6), true));
        assert_eq!(board.tiles[1].threshold.unwrap().alert, None);
        assert_eq!(
            b.queue_groups(),
            vec![(
                "appointments".to_owned(),
                vec!["appointments".to_owned(), "repeat".to_owned()]
            )]
        );
        assert_eq!(b.default.name, "default");
        assert_eq!(b.default.tiles[0].path, "live.queued");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[[board]]\nname = \"Bad Name\"", "board[0].name"),
            (
                "[[board]]\nname = \"a\"\n[[board]]\nname = \"b\"\ndefinition = \"nope\"",
                "board[1].definition",
            ),
            (
                "[[board]]\nname = \"a\"\ntiles = [\"queued\", \"answered\", \"missed\", \"foo\"]",
                "`board[0].tiles[3]`: unknown tile \"foo\"",
            ),
            (
                "[[board]]\nname = \"a\"\ntiles = [\"queued\", \"queued\"]",
                "board[0].tiles[1]",
            ),
            (
                "[[board]]\nname = \"a\"\ntiles = [\"queued\"]\nthresholds = { asa = { warn = 1 } }",
                "board[0].thresholds.asa",
            ),
            (
                "[[board]]\nname = \"a\"\nthresholds = { queued = { warn = 10, alert = 5 } }",
                "board[0].thresholds.queued.alert",
            ),
            (
                "[[board]]\nname = \"a\"\nthresholds = { queued = {} }",
                "board[0].thresholds.queued",
            ),
            (
                "[[board]]\nname = \"a\"\nthresholds = { queued = { warn = -1 } }",
                "board[0].thresholds.queued.warn",
            ),
            // A percentage is 0 to 100.
            (
                "[[board]]\nname = \"a\"\nthresholds = { service_level = { warn = 180 } }",
                "board[0].thresholds.service_level.warn",
            ),
            (
                "[[board]]\nname = \"a\"\ntiles = [\"abandon_rate\"]\nthresholds = { abandon_rate = { warn = 5, alert = 100.5 } }",
                "board[0].thresholds.abandon_rate.alert",
            ),
            (
                "[[board]]\nname = \"a\"\n[[board]]\nname = \"a\"",
                "board[1].name",
            ),
            ("[[board]]\nname = \"a\"\ntiles = []", "board[0].tiles"),
            (
                "[[board]]\nname = \"a\"\nqueues = [\"\"]",
                "board[0].queues[0]",
            ),
            // A box of another definition is not a tile of this one.
            (
                "[[board]]\nname = \"a\"\ntiles = [\"timed_out\"]",
                "board[0].tiles[0]",
            ),
        ];
        for (text, expected) in cases {
            let err = boards(text).unwrap_err();
            assert!(err.contains(expected), "{text:?} gave {err:?}");
        }
        assert!(boards("[[board]]\nname = \"a\"\ncolour = 1").is_err());
    }

    #[test]
    fn percentage_levels_match_the_percentage_shown() {
        // 35 and 70 are among the levels that multiplying by 0.01 got wrong.
        for (key, level, value, state) in [
            (
                "board[0].thresholds.abandon_rate",
                35.0,
                0.35,
                TileState::Warn,
            ),
            (
                "board[0].thresholds.service_level",
                70.0,
                0.70,
                TileState::Ok,
            ),
            (
                "board[0].thresholds.service_level",
                70.0,
                0.69,
                TileState::Warn,
            ),
        ] {
            let raw = RawThreshold {
                warn: Some(level),
                ..Default::default()
            };
            let t = threshold(key, &raw, Format::Percent).unwrap();
            assert_eq!(t.state(Some(value)), state, "{key} {level} at {value}");
        }
    }

    #[test]
    fn tile_state_reads_the_board() {
        let defs = Definition::built_ins(&BuiltInSettings::default());
        let board = Board::builtin(&defs[0]);
        let json = json!({"now": "2026-11-20T09:05:00Z",
            "live": {"queued": 7, "oldest_queued_since": "2026-11-20T09:02:00Z"},
            "definitions": {"reachable": {"service_level": 0.9}}});
        let state = |name: &str| {
            board
                .tiles
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .state(&json)
        };
        assert_eq!(state("queued"), TileState::Warn);
        assert_eq!(state("longest_waiting"), TileState::Alert);
        assert_eq!(state("service_level"), TileState::Ok);
        assert_eq!(state("answered"), TileState::Ok);
    }
}
