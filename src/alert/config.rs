//! `[[alert]]` rules and `[[alert_target]]`s as written, and the validated
//! [`AlertConfig`] built from them against the boards (errors name the key,
//! e.g. `alert[1].tile`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::SignedDuration;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use tokio_rustls::rustls::ClientConfig;

use super::rule::Timing;
use crate::board::{
    Boards, DEFAULT_BOARD, RawThreshold, Threshold, TileSpec, board_now, every_tile, lookup,
    path_base, threshold, valid_name,
};
use crate::config::error::{ConfigError, invalid};
use crate::definition::Definition;
use crate::source::config::read_secret;

/// How long a level must hold before it is announced, unless `for_secs` says.
pub const DEFAULT_HOLD_SECS: f64 = 60.0;

/// One `[[alert]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    name: Option<String>,
    board: Option<String>,
    queue: Option<String>,
    tile: String,
    warn: Option<f64>,
    alert: Option<f64>,
    below: Option<bool>,
    for_secs: Option<f64>,
    renotify_secs: Option<f64>,
    #[serde(default)]
    targets: Vec<String>,
}

/// One `[[alert_target]]` as written; `Debug` shows neither its URL (Slack's
/// and Teams' carry their secret) nor its secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    name: String,
    kind: TargetKind,
    url: String,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    secret_header: Option<String>,
    ca_file: Option<PathBuf>,
}

impl fmt::Debug for RawTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RawTarget {{ name: {:?}, kind: {:?} }}",
            self.name, self.kind
        )
    }
}

/// What a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// Our own JSON object (documented in the README).
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams incoming webhook or Workflows webhook (Adaptive Card).
    Teams,
}

impl TargetKind {
    /// Its name in the config and in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Slack => "slack",
            TargetKind::Teams => "teams",
        }
    }
}

/// Where messages go.
#[derive(Clone)]
pub struct Target {
    /// Its name, as rules list it.
    pub name: String,
    /// What body it takes.
    pub kind: TargetKind,
    /// Where to post (http or https).
    pub url: Url,
    /// A header carrying the webhook's secret: (lower-case name, value).
    pub header: Option<(String, String)>,
    /// Whom it trusts over https: the web PKI roots, or its `ca_file`.
    pub tls: Arc<ClientConfig>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Target {{ name: {:?}, kind: {:?}, host: {:?} }}",
            self.name,
            self.kind,
            self.url.host_str()
        )
    }
}

/// Which figures a rule reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// A board's (a board with a queue filter reads its queue group).
    Board {
        /// Its name.
        name: String,
        /// Its heading.
        title: String,
    },
    /// One queue's, under `queues.NAME` of the board JSON.
    Queue(String),
}

/// A validated `[[alert]]`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name (given, or `board.tile` / `queue.NAME.tile`).
    pub name: String,
    /// Whose figures.
    pub scope: Scope,
    /// The tile whose figure is watched (its path relative to the scope).
    pub tile: TileSpec,
    /// When the figure is warn or alert.
    pub threshold: Threshold,
    /// Hold and renotify times.
    pub timing: Timing,
    /// Indexes into [`AlertConfig::targets`].
    pub targets: Vec<usize>,
}

impl Rule {
    /// The figure on `board` (the board JSON), in its units (a ratio for
    /// percentages, seconds for times); `None` when it has no value.
    pub fn reading(&self, board: &Value) -> Option<f64> {
        let base = match &self.scope {
            Scope::Board { .. } => board,
            Scope::Queue(queue) => board.get("queues")?.get(queue)?,
        };
        self.tile
            .format
            .number(lookup(base, &self.tile.path), board_now(board))
    }

    /// The path of the board a person opens for this rule.
    pub fn board_path(&self) -> String {
        match &self.scope {
            Scope::Board { name, .. } if name != DEFAULT_BOARD => format!("/board/{name}"),
            _ => "/".to_owned(),
        }
    }
}

/// The alerting part of the configuration.
#[derive(Debug, Clone, Default)]
pub struct AlertConfig {
    /// The rules, in the file's order.
    pub rules: Vec<Rule>,
    /// The targets, in the file's order.
    pub targets: Vec<Target>,
    /// The server's address as people reach it (`[site] public_url`), without
    /// a trailing slash; links to boards are relative without it.
    pub public_url: Option<String>,
}

impl AlertConfig {
    /// The address of `path` (starting with `/`) as people reach it.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.as_deref().unwrap_or(""))
    }
}

/// Validates the rules and targets against the boards and definitions.
pub fn validate(
    raw_rules: Vec<RawAlert>,
    raw_targets: Vec<RawTarget>,
    public_url: Option<String>,
    boards: &Boards,
    definitions: &[Definition],
    default_definition: &str,
) -> Result<AlertConfig, ConfigError> {
    let public_url = public_url.map(|url| checked_public_url(&url)).transpose()?;
    let mut targets: Vec<Target> = Vec::new();
    for (i, raw) in raw_targets.into_iter().enumerate() {
        let key = format!("alert_target[{i}]");
        let target = validate_target(&key, raw)?;
        if targets.iter().any(|t| t.name == target.name) {
            return Err(invalid(
                &format!("{key}.name"),
                format!("another target is already called {:?}", target.name),
            ));
        }
        targets.push(target);
    }
    let mut rules: Vec<Rule> = Vec::new();
    for (i, raw) in raw_rules.into_iter().enumerate() {
        let key = format!("alert[{i}]");
        let rule = validate_rule(&key, raw, &targets, boards, definitions, default_definition)?;
        if rules.iter().any(|r| r.name == rule.name) {
            return Err(invalid(
                &format!("{key}.name"),
                format!(
                    "another rule is already called {:?}; give each a `name`",
                    rule.name
                ),
            ));
        }
        rules.push(rule);
    }
    Ok(AlertConfig {
        rules,
        targets,
        public_url,
    })
}

fn checked_public_url(text: &str) -> Result<String, ConfigError> {
    let key = "site.public_url";
    let url = Url::parse(text).map_err(|e| invalid(key, format!("{text:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(key, "must be an http:// or https:// address"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(key, "must have no query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn validate_target(key: &str, raw: RawTarget) -> Result<Target, ConfigError> {
    if !valid_name(&raw.name) {
        return Err(invalid(
            &format!("{key}.name"),
            format!(
                "{:?} is not a target name (lower-case letters, digits, - and _)",
                raw.name
            ),
        ));
    }
    let url_key = format!("{key}.url");
    // The URL itself stays out of the message: Slack's and Teams' are secrets.
    let url = Url::parse(&raw.url).map_err(|e| invalid(&url_key, format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(&url_key, "must be an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            &url_key,
            "must carry no user or password: give the webhook a `secret`",
        ));
    }
    let has_secret = raw.secret.is_some() || raw.secret_file.is_some();
    if raw.kind != TargetKind::Webhook && (has_secret || raw.secret_header.is_some()) {
        return Err(invalid(
            &format!("{key}.secret"),
            "only a `webhook` target takes a secret (Slack's and Teams' URLs carry their own)",
        ));
    }
    if raw.secret.is_some() && raw.secret_file.is_some() {
        return Err(invalid(
            &format!("{key}.secret_file"),
            "give `secret` or `secret_file`, not both",
        ));
    }
    if raw.secret_header.is_some() && !has_secret {
        return Err(invalid(
            &format!("{key}.secret_header"),
            "names the header of a `secret`, and none is given",
        ));
    }
    let header = if has_secret {
        let secret = read_secret(raw.secret.as_deref(), raw.secret_file.as_deref())
            .map_err(|e| invalid(&format!("{key}.secret_file"), e.to_string()))?;
        Some(secret_header(key, raw.secret_header, secret)?)
    } else {
        None
    };
    if raw.ca_file.is_some() && url.scheme() != "https" {
        return Err(invalid(
            &format!("{key}.ca_file"),
            "goes with an https:// URL",
        ));
    }
    let tls = super::http::tls_config(raw.ca_file.as_deref()).map_err(|e| {
        let path = raw.ca_file.as_deref().unwrap_or(std::path::Path::new(""));
        invalid(
            &format!("{key}.ca_file"),
            format!("{}: {e}", path.display()),
        )
    })?;
    Ok(Target {
        name: raw.name,
        kind: raw.kind,
        url,
        header,
        tls,
    })
}

/// The header a secret travels in: `Authorization: Bearer SECRET` by
/// default, else the named header with the secret as its value.
fn secret_header(
    key: &str,
    name: Option<String>,
    secret: String,
) -> Result<(String, String), ConfigError> {
    let value = match &name {
        None => format!("Bearer {secret}"),
        Some(_) => secret,
    };
    let name = name.unwrap_or_else(|| "authorization".to_owned());
    if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(invalid(
            &format!("{key}.secret_header"),
            format!("{name:?} is not a header name"),
        ));
    }
    if value.trim().is_empty() || axum::http::HeaderValue::from_str(&value).is_err() {
        return Err(invalid(
            &format!("{key}.secret"),
            "must be non-empty visible ASCII (it is sent in a header)",
        ));
    }
    Ok((name.to_ascii_lowercase(), value))
}

fn validate_rule(
    key: &str,
    raw: RawAlert,
    targets: &[Target],
    boards: &Boards,
    definitions: &[Definition],
    default_definition: &str,
) -> Result<Rule, ConfigError> {
    let tile_key = format!("{key}.tile");
    let (scope, tile) = match (raw.board, raw.queue) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                &format!("{key}.queue"),
                "give `board` or `queue`, not both",
            ));
        }
        (None, None) => {
            return Err(invalid(
                &format!("{key}.board"),
                "give the `board` (or the `queue`) whose figure to watch",
            ));
        }
        (Some(name), None) => {
            let board = boards.get(&name).ok_or_else(|| {
                let known: Vec<&str> = std::iter::once(DEFAULT_BOARD)
                    .chain(boards.named.iter().map(|b| b.name.as_str()))
                    .collect();
                invalid(
                    &format!("{key}.board"),
                    format!("no board is called {name:?} (boards: {})", known.join(", ")),
                )
            })?;
            let definition = definition(definitions, &board.definition);
            // A tile the board shows keeps its thresholds; any other tile of
            // the board's definition may be watched with levels of its own.
            let tile = board
                .tiles
                .iter()
                .find(|t| t.name == raw.tile)
                .cloned()
                .or_else(|| {
                    let base = path_base(&board.name, &board.queues);
                    every_tile(definition, &base)
                        .into_iter()
                        .find(|t| t.name == raw.tile)
                })
                .ok_or_else(|| unknown_tile(&tile_key, &raw.tile, definition, false))?;
            let scope = Scope::Board {
                name: board.name.clone(),
                title: board.title.clone(),
            };
            (scope, tile)
        }
        (None, Some(queue)) => {
            if queue.is_empty() {
                return Err(invalid(&format!("{key}.queue"), "is empty"));
            }
            let definition = definition(definitions, default_definition);
            let tile = every_tile(definition, "")
                .into_iter()
                .filter(|t| !t.path.starts_with("agents."))
                .find(|t| t.name == raw.tile)
                .ok_or_else(|| unknown_tile(&tile_key, &raw.tile, definition, true))?;
            (Scope::Queue(queue), tile)
        }
    };
    let threshold = rule_threshold(key, &raw.warn, &raw.alert, raw.below, &tile)?;
    let timing = Timing {
        hold: secs(
            &format!("{key}.for_secs"),
            raw.for_secs.unwrap_or(DEFAULT_HOLD_SECS),
            0.0,
        )?,
        renotify: raw
            .renotify_secs
            .map(|s| secs(&format!("{key}.renotify_secs"), s, 1.0))
            .transpose()?,
    };
    if raw.targets.is_empty() {
        return Err(invalid(
            &format!("{key}.targets"),
            "name at least one [[alert_target]] to send to",
        ));
    }
    let mut indexes = Vec::with_capacity(raw.targets.len());
    for (t, name) in raw.targets.iter().enumerate() {
        let tkey = format!("{key}.targets[{t}]");
        let index = targets
            .iter()
            .position(|x| &x.name == name)
            .ok_or_else(|| invalid(&tkey, format!("no [[alert_target]] is called {name:?}")))?;
        if indexes.contains(&index) {
            return Err(invalid(&tkey, format!("{name:?} is listed twice")));
        }
        indexes.push(index);
    }
    let name = raw.name.unwrap_or_else(|| match &scope {
        Scope::Board { name, .. } => format!("{name}.{}", tile.name),
        Scope::Queue(queue) => format!("queue.{queue}.{}", tile.name),
    });
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(invalid(
            &format!("{key}.name"),
            "must be 1 to 128 printable characters",
        ));
    }
    Ok(Rule {
        name,
        scope,
        tile,
        threshold,
        timing,
        targets: indexes,
    })
}

fn definition<'d>(definitions: &'d [Definition], name: &str) -> &'d Definition {
    // Boards and the default definition were validated against these already.
    definitions
        .iter()
        .find(|d| d.name() == name)
        .unwrap_or(&definitions[0])
}

fn unknown_tile(key: &str, name: &str, definition: &Definition, queue: bool) -> ConfigError {
    let known: Vec<String> = every_tile(definition, "")
        .into_iter()
        .filter(|t| !(queue && t.path.starts_with("agents.")))
        .map(|t| t.name)
        .collect();
    let whose = if queue { "a queue" } else { "the board" };
    invalid(
        key,
        format!(
            "{whose} has no figure {name:?} (known: {})",
            known.join(", ")
        ),
    )
}

/// The rule's own levels (in the tile's units) if it gives any, else the
/// tile's thresholds on its board.
fn rule_threshold(
    key: &str,
    warn: &Option<f64>,
    alert: &Option<f64>,
    below: Option<bool>,
    tile: &TileSpec,
) -> Result<Threshold, ConfigError> {
    if warn.is_none() && alert.is_none() {
        if below.is_some() {
            return Err(invalid(
                &format!("{key}.below"),
                "goes with the rule's own `warn` or `alert`",
            ));
        }
        return tile.threshold.ok_or_else(|| {
            invalid(
                key,
                format!(
                    "tile {:?} has no thresholds here: give `warn`, `alert` or both",
                    tile.name
                ),
            )
        });
    }
    // Low values are bad for service level, as on the boards.
    let below = below
        .or(tile.threshold.map(|t| t.below))
        .unwrap_or(tile.name == "service_level");
    let raw = RawThreshold {
        warn: *warn,
        alert: *alert,
        below: Some(below),
    };
    threshold(key, &raw, tile.format)
}

fn secs(key: &str, value: f64, min: f64) -> Result<SignedDuration, ConfigError> {
    if value.is_finite() && (min..=7.0 * 86_400.0).contains(&value) {
        Ok(SignedDuration::from_millis((value * 1000.0).round() as i64))
    } else {
        Err(invalid(
            key,
            format!("must be between {min} and 604800 seconds, not {value}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, "t.toml").map_err(|e| e.to_string())
    }

    const TARGETS: &str = r#"
        [[alert_target]]
        name = "ops"
        kind = "slack"
        url = "https://hooks.slack.test/services/T/B/X"
        [[alert_target]]
        name = "hook"
        kind = "webhook"
        url = "http://127.0.0.1:9/hook"
        secret = "s3cret"
    "#;

    const BOARD: &str = r#"
        [[board]]
        name = "sales"
        queues = ["sales", "renewals"]
        tiles = ["queued", "service_level"]
        [board.thresholds]
        queued = { warn = 3, alert = 6 }
    "#;

    #[test]
    fn rules_on_boards_and_queues() {
        let c = parse(&format!(
            r#"
            [site]
            public_url = "https://wall.example.org/ops/"
            {TARGETS}
            {BOARD}
            [[alert]]
            board = "sales"
            tile = "queued"
            targets = ["ops", "hook"]
            [[alert]]
            name = "sl"
            board = "sales"
            tile = "service_level"
            warn = 80
            alert = 70
            for_secs = 1.5
            renotify_secs = 600
            targets = ["hook"]
            [[alert]]
            queue = "support"
            tile = "longest_waiting"
            alert = 120
            targets = ["ops"]
            "#
        ))
        .unwrap();
        let a = &c.alerts;
        assert_eq!(
            a.public_url.as_deref(),
            Some("https://wall.example.org/ops")
        );
        assert_eq!(
            a.targets[1].header,
            Some(("authorization".into(), "Bearer s3cret".into()))
        );
        let [queued, sl, support] = &a.rules[..] else {
            panic!("three rules")
        };
        assert_eq!(queued.name, "sales.queued");
        assert_eq!(queued.threshold.alert, Some(6.0));
        assert_eq!(queued.timing.hold, SignedDuration::from_secs(60));
        assert_eq!(queued.targets, vec![0, 1]);
        assert_eq!(
            a.link(&queued.board_path()),
            "https://wall.example.org/ops/board/sales"
        );
        assert_eq!(
            (sl.threshold.warn, sl.threshold.alert, sl.threshold.below),
            (Some(0.8), Some(0.7), true)
        );
        assert_eq!(sl.timing.hold, SignedDuration::from_millis(1500));
        assert_eq!(sl.timing.renotify, Some(SignedDuration::from_secs(600)));
        assert_eq!(support.name, "queue.support.longest_waiting");
        assert_eq!(support.board_path(), "/");
        let board = serde_json::json!({
            "now": "2026-11-20T09:05:00Z",
            "groups": {"sales": {"live": {"queued": 4}}},
            "queues": {"support": {"live": {"oldest_queued_since": "2026-11-20T09:03:00Z"}}}
        });
        assert_eq!(queued.reading(&board), Some(4.0));
        assert_eq!(support.reading(&board), Some(120.0));
        assert_eq!(sl.reading(&board), None);
    }

    #[test]
    fn errors_name_the_key() {
        let rule = |body: &str| format!("{TARGETS}{BOARD}[[alert]]\n{body}");
        let cases = [
            (rule("board = \"nope\"\ntile = \"queued\"\ntargets = [\"ops\"]"), "`alert[0].board`"),
            (rule("tile = \"queued\"\ntargets = [\"ops\"]"), "`alert[0].board`"),
            (rule("board = \"sales\"\nqueue = \"x\"\ntile = \"queued\"\ntargets = [\"ops\"]"), "`alert[0].queue`"),
            (rule("board = \"sales\"\ntile = \"bogus\"\ntargets = [\"ops\"]"), "`alert[0].tile`"),
            (rule("queue = \"q\"\ntile = \"agents_available\"\nwarn = 1\ntargets = [\"ops\"]"), "`alert[0].tile`"),
            (rule("board = \"sales\"\ntile = \"service_level\"\ntargets = [\"ops\"]"), "no thresholds"),
            (rule("board = \"sales\"\ntile = \"queued\"\ntargets = []"), "`alert[0].targets`"),
            (rule("board = \"sales\"\ntile = \"queued\"\ntargets = [\"ops\", \"pager\"]"), "`alert[0].targets[1]`"),
            (rule("board = \"sales\"\ntile = \"queued\"\ntargets = [\"ops\", \"ops\"]"), "`alert[0].targets[1]`"),
            (rule("board = \"sales\"\ntile = \"queued\"\nfor_secs = -1\ntargets = [\"ops\"]"), "`alert[0].for_secs`"),
            (rule("board = \"sales\"\ntile = \"queued\"\nrenotify_secs = 0\ntargets = [\"ops\"]"), "`alert[0].renotify_secs`"),
            (rule("board = \"sales\"\ntile = \"queued\"\nwarn = 9\nalert = 2\ntargets = [\"ops\"]"), "`alert[0].alert`"),
            (rule("board = \"sales\"\ntile = \"service_level\"\nwarn = 180\ntargets = [\"ops\"]"), "`alert[0].warn`"),
            (rule("board = \"sales\"\ntile = \"queued\"\nbelow = true\ntargets = [\"ops\"]"), "`alert[0].below`"),
            (rule("board = \"sales\"\ntile = \"queued\"\ncolour = 1\ntargets = [\"ops\"]"), "colour"),
            (
                format!("{TARGETS}{BOARD}[[alert]]\nboard = \"sales\"\ntile = \"queued\"\ntargets = [\"ops\"]\n[[alert]]\nboard = \"sales\"\ntile = \"queued\"\ntargets = [\"hook\"]"),
                "`alert[1].name`",
            ),
            ("[[alert_target]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"ftp://x/y\"".into(), "`alert_target[0].url`"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"not a url\"".into(), "`alert_target[0].url`"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://u:p@x/y\"".into(), "`alert_target[0].url`"),
            ("[[alert_target]]\nname = \"A b\"\nkind = \"webhook\"\nurl = \"https://x/y\"".into(), "`alert_target[0].name`"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"pager\"\nurl = \"https://x/y\"".into(), "kind"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"slack\"\nurl = \"https://x/y\"\nsecret = \"s\"".into(), "`alert_target[0].secret`"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://x/y\"\nsecret = \"s\"\nsecret_file = \"/f\"".into(), "`alert_target[0].secret_file`"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://x/y\"\nsecret_header = \"x-k\"".into(), "`alert_target[0].secret_header`"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://x/y\"\nsecret = \"a\\nb\"".into(), "`alert_target[0].secret`"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://x/y\"\n[[alert_target]]\nname = \"a\"\nkind = \"slack\"\nurl = \"https://x/z\"".into(), "`alert_target[1].name`"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x/y\"\nca_file = \"/ca.pem\"".into(), "`alert_target[0].ca_file`"),
            ("[[alert_target]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://x/y\"\nca_file = \"/nonexistent/ca.pem\"".into(), "`alert_target[0].ca_file`"),
            ("[site]\npublic_url = \"wall.example.org\"".into(), "`site.public_url`"),
            ("[site]\npublic_url = \"https://wall.example.org/?a=1\"".into(), "`site.public_url`"),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(expected), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let c = parse(TARGETS).unwrap();
        let shown = format!("{:?}", c.alerts);
        assert!(
            !shown.contains("s3cret") && !shown.contains("/services/"),
            "{shown}"
        );
        let err = parse("[[alert_target]]\nname = \"a\"\nkind = \"slack\"\nurl = \"https://hooks.slack.test/services/T/B/SECRET\"\nsecret = \"s\"").unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
    }
}
