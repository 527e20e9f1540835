//! What an alert says, and the body each kind of target takes: our own JSON
//! object for a generic webhook, Slack's `{"text", "blocks"}`, and a Teams
//! message carrying an Adaptive Card. Pure: no I/O.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::config::TargetKind;
use crate::board::{Format, Threshold, TileState};

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The figure has held at a (new) level.
    Entered,
    /// The figure is back within bounds.
    Cleared,
    /// The level still stands.
    Renotify,
    /// `POST /api/alerts/test`: nothing happened, the target is being tried.
    Test,
}

impl State {
    /// Its name in the webhook body.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Entered => "entered",
            State::Cleared => "cleared",
            State::Renotify => "renotify",
            State::Test => "test",
        }
    }
}

/// One figure as a message shows it: in the tile's units (a count,
/// seconds, or a percentage such as 83), and as the board shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// The number in the tile's units.
    pub number: f64,
    /// As the board shows it ("83%", "2:05", "12").
    pub text: String,
}

impl Shown {
    /// `value` in the board JSON's units (a ratio for percentages).
    pub fn of(format: Format, value: f64) -> Shown {
        let number = match format {
            // Rounded to a millionth: 0.7 * 100 is 70.00000000000001.
            Format::Percent => (value * 100.0 * 1e6).round() / 1e6,
            _ => value,
        };
        // A `since` figure is already seconds here, shown like one.
        let shown_as = if format == Format::Since {
            Format::Secs
        } else {
            format
        };
        Shown {
            number,
            text: shown_as.show(Some(&Value::from(value)), None),
        }
    }
}

/// One message, whatever the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Why it is sent.
    pub state: State,
    /// The rule's name (`test` for a test).
    pub rule: String,
    /// The board it concerns (for a queue rule, the default board).
    pub board: String,
    /// What the board is called, or `Queue NAME` for a queue rule.
    pub title: String,
    /// The queue of a queue rule.
    pub queue: Option<String>,
    /// The tile's name.
    pub tile: Option<String>,
    /// The tile's label ("Calls waiting").
    pub figure: Option<String>,
    /// The figure now; `None` when it has no value.
    pub value: Option<Shown>,
    /// The level now.
    pub level: TileState,
    /// The level announced before.
    pub previous: TileState,
    /// The level crossed: of `level`, or for a clearing of `previous`.
    pub threshold: Option<Shown>,
    /// Whether low values are bad (the figure is past a level when below it).
    pub below: bool,
    /// The server's time of the change (feed time under `--clock feed`).
    pub at: Timestamp,
    /// The board's address (relative without `public_url`).
    pub url: String,
}

/// The level a notice names: the threshold of `level` (warn or alert).
pub fn level_of(threshold: &Threshold, level: TileState) -> Option<f64> {
    match level {
        TileState::Ok => None,
        TileState::Warn => threshold.warn,
        TileState::Alert => threshold.alert,
    }
}

fn level_word(level: TileState) -> &'static str {
    match level {
        TileState::Ok => "ok",
        TileState::Warn => "warning",
        TileState::Alert => "alert",
    }
}

impl Notice {
    /// The body `kind` takes (UTF-8 JSON).
    pub fn body(&self, kind: TargetKind) -> Value {
        match kind {
            TargetKind::Webhook => self.webhook(),
            TargetKind::Slack => self.slack(),
            TargetKind::Teams => self.teams(),
        }
    }

    /// The generic webhook's object (documented in the README).
    pub fn webhook(&self) -> Value {
        let number = |s: &Option<Shown>| s.as_ref().map(|s| whole_or_not(s.number));
        let text = |s: &Option<Shown>| s.as_ref().map(|s| s.text.clone());
        json!({
            "state": self.state.as_str(),
            "rule": self.rule,
            "board": self.board,
            "title": self.title,
            "queue": self.queue,
            "tile": self.tile,
            "figure": self.figure,
            "value": number(&self.value),
            "value_text": text(&self.value),
            "level": self.level.as_str(),
            "previous": self.previous.as_str(),
            "threshold": number(&self.threshold),
            "threshold_text": text(&self.threshold),
            "below": self.below,
            "at": self.at.to_string(),
            "url": self.url,
            "text": self.headline(),
        })
    }

    /// One line a person reads: what happened, where, the figure and the level.
    pub fn headline(&self) -> String {
        let figure = self.figure.as_deref().unwrap_or("figure");
        let value = self.value.as_ref().map_or("no value", |v| v.text.as_str());
        let crossed = |level: TileState| match &self.threshold {
            Some(t) => {
                let side = if self.below { "below" } else { "at" };
                format!(" ({} {side} {})", level_word(level), t.text)
            }
            None => String::new(),
        };
        match self.state {
            State::Entered if self.level == TileState::Alert => format!(
                "ALERT: {}: {figure} is {value}{}",
                self.title,
                crossed(self.level)
            ),
            State::Entered if self.previous == TileState::Alert => format!(
                "Eased to warning: {}: {figure} is {value}{}",
                self.title,
                crossed(self.level)
            ),
            State::Entered => format!(
                "Warning: {}: {figure} is {value}{}",
                self.title,
                crossed(self.level)
            ),
            State::Renotify => format!(
                "Still {}: {}: {figure} is {value}{}",
                level_word(self.level),
                self.title,
                crossed(self.level)
            ),
            State::Cleared => format!(
                "Cleared: {}: {figure} is back to {value}{}",
                self.title,
                crossed(self.previous)
            ),
            State::Test => format!(
                "Test message from the wallboard ({}): alerts reach this channel.",
                self.title
            ),
        }
    }

    /// An absolute link, if the board's address is one (`public_url` set).
    fn absolute_url(&self) -> Option<&str> {
        let url = self.url.as_str();
        (url.starts_with("https://") || url.starts_with("http://")).then_some(url)
    }

    /// Slack's incoming-webhook body: `text` (the notification) and a
    /// section block in mrkdwn with a link to the board.
    pub fn slack(&self) -> Value {
        let headline = slack_escape(&self.headline());
        let link = match self.absolute_url() {
            Some(url) => format!("<{}|Open the board>", slack_escape(url)),
            None => format!("Board: {}", slack_escape(&self.url)),
        };
        let icon = match (self.state, self.level) {
            (State::Test, _) => ":information_source:",
            (State::Cleared, _) => ":white_check_mark:",
            (_, TileState::Alert) => ":rotating_light:",
            _ => ":warning:",
        };
        json!({
            "text": headline,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} *{headline}*\n{link}")}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{} · rule {}", self.at, slack_escape(&self.rule))}]}
            ]
        })
    }

    /// A Teams message with one Adaptive Card (what Teams' incoming webhooks
    /// and Workflows' "when a Teams webhook request is received" take).
    pub fn teams(&self) -> Value {
        let colour = match (self.state, self.level) {
            (State::Test, _) => "Accent",
            (State::Cleared, _) => "Good",
            (_, TileState::Alert) => "Attention",
            _ => "Warning",
        };
        let mut facts = vec![json!({"title": "Board", "value": self.title})];
        if let (Some(figure), Some(value)) = (&self.figure, &self.value) {
            facts.push(json!({"title": figure, "value": value.text}));
        }
        if let Some(threshold) = &self.threshold {
            let level = if self.state == State::Cleared {
                self.previous
            } else {
                self.level
            };
            let side = if self.below { "below" } else { "at" };
            facts.push(json!({"title": "Threshold", "value": format!("{} {side} {}", level_word(level), threshold.text)}));
        }
        facts.push(json!({"title": "At", "value": self.at.to_string()}));
        let mut card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": self.headline(), "weight": "Bolder", "size": "Medium", "color": colour, "wrap": true},
                {"type": "FactSet", "facts": facts}
            ]
        });
        if let Some(url) = self.absolute_url() {
            card["actions"] =
                json!([{"type": "Action.OpenUrl", "title": "Open the board", "url": url}]);
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card
            }]
        })
    }
}

/// A whole number as an integer (a count reads `3`, not `3.0`), else as it is.
fn whole_or_not(n: f64) -> Value {
    // Below 2^53 every integer is exact in an f64.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

/// Slack's three control characters in text, escaped as Slack asks.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(state: State, level: TileState, previous: TileState) -> Notice {
        Notice {
            state,
            rule: "sales.queued".into(),
            board: "sales".into(),
            title: "Sales <line> & co".into(),
            queue: None,
            tile: Some("queued".into()),
            figure: Some("Calls waiting".into()),
            value: Some(Shown::of(Format::Count, 12.0)),
            level,
            previous,
            threshold: Some(Shown::of(Format::Count, 10.0)),
            below: false,
            at: "2026-11-20T09:05:00Z".parse().unwrap(),
            url: "https://wall.example.org/board/sales".into(),
        }
    }

    #[test]
    fn figures_in_the_tiles_units_and_as_shown() {
        assert_eq!(
            Shown::of(Format::Percent, 0.7),
            Shown {
                number: 70.0,
                text: "70%".into()
            }
        );
        assert_eq!(Shown::of(Format::Since, 125.0).text, "2:05");
        assert_eq!(Shown::of(Format::Secs, 12.4).text, "0:12");
        assert_eq!(Shown::of(Format::Count, 3.0).text, "3");
    }

    #[test]
    fn headlines_say_what_happened() {
        use TileState::*;
        let cases = [
            (
                State::Entered,
                Alert,
                Ok,
                "ALERT: Sales <line> & co: Calls waiting is 12 (alert at 10)",
            ),
            (
                State::Entered,
                Warn,
                Ok,
                "Warning: Sales <line> & co: Calls waiting is 12 (warning at 10)",
            ),
            (
                State::Entered,
                Warn,
                Alert,
                "Eased to warning: Sales <line> & co: Calls waiting is 12 (warning at 10)",
            ),
            (
                State::Renotify,
                Alert,
                Alert,
                "Still alert: Sales <line> & co: Calls waiting is 12 (alert at 10)",
            ),
            (
                State::Cleared,
                Ok,
                Alert,
                "Cleared: Sales <line> & co: Calls waiting is back to 12 (alert at 10)",
            ),
        ];
        for (state, level, previous, expected) in cases {
            assert_eq!(notice(state, level, previous).headline(), expected);
        }
    }

    #[test]
    fn the_webhook_object() {
        let body = notice(State::Entered, TileState::Alert, TileState::Ok).webhook();
        assert_eq!(body["state"], "entered");
        assert_eq!(body["level"], "alert");
        assert_eq!(body["previous"], "ok");
        assert_eq!(body["value"].to_string(), "12", "a count is a whole number");
        assert_eq!(body["threshold_text"], "10");
        assert_eq!(body["at"], "2026-11-20T09:05:00Z");
        assert_eq!(body["queue"], Value::Null);
        assert_eq!(body["url"], "https://wall.example.org/board/sales");
    }

    #[test]
    fn slack_escapes_and_links() {
        let body = notice(State::Entered, TileState::Alert, TileState::Ok).slack();
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("Sales &lt;line&gt; &amp; co"), "{text}");
        let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(section.contains("<https://wall.example.org/board/sales|Open the board>"));
    }

    #[test]
    fn teams_carries_an_adaptive_card() {
        let mut relative = notice(State::Cleared, TileState::Ok, TileState::Alert);
        relative.url = "/board/sales".into();
        for (n, link) in [
            (
                notice(State::Entered, TileState::Alert, TileState::Ok),
                true,
            ),
            (relative, false),
        ] {
            let body = n.teams();
            assert_eq!(body["type"], "message");
            let attachment = &body["attachments"][0];
            assert_eq!(
                attachment["contentType"],
                "application/vnd.microsoft.card.adaptive"
            );
            let card = &attachment["content"];
            assert_eq!(card["type"], "AdaptiveCard");
            assert_eq!(card["body"][0]["text"], n.headline());
            assert_eq!(card.get("actions").is_some(), link);
        }
    }
}
