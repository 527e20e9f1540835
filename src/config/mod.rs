//! The site's configuration: the TOML file as the user wrote it (`RawConfig`),
//! then one validated [`Config`] built from it, with errors that name the key.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::SignedDuration;
use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::day::DayRule;
use crate::definition::{BUILT_IN, BuiltInSettings, Definition, NamedRule};
use crate::engine::EngineSettings;
use crate::stats::FigureSettings;

pub mod error;

pub use error::ConfigError;
use error::invalid;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    site: RawSite,
    #[serde(default)]
    figures: RawFigures,
    #[serde(default)]
    definitions: RawDefinitions,
    #[serde(default)]
    store: RawStore,
    /// `[[board]]` tables (see `board.rs`).
    #[serde(default)]
    board: Vec<crate::board::RawBoard>,
    // Security sections: validated in `crate::security`.
    #[serde(default)]
    auth: crate::security::RawAuth,
    #[serde(default)]
    limits: crate::security::RawLimits,
    #[serde(default)]
    web: crate::security::RawWeb,
    /// `[[source]]` tables (see `source/config.rs`).
    #[serde(default)]
    source: Vec<crate::source::config::RawSource>,
    /// `[cluster]`: run as one node of several (see `cluster/mod.rs`).
    cluster: Option<crate::cluster::RawCluster>,
    /// `[[alert]]` rules and `[[alert_target]]`s (see `alert/config.rs`).
    #[serde(default)]
    alert: Vec<crate::alert::config::RawAlert>,
    #[serde(default)]
    alert_target: Vec<crate::alert::config::RawTarget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    timezone: Option<String>,
    day_start: Option<String>,
    window_minutes: Option<i64>,
    late_window_minutes: Option<i64>,
    stale_after_minutes: Option<i64>,
    /// The server's address as people reach it, for links in alerts.
    public_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFigures {
    service_level_secs: Option<f64>,
    short_abandon_secs: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinitions {
    default: Option<String>,
    #[serde(default)]
    reachable: RawReachable,
    #[serde(default)]
    nhs: RawNhs,
    #[serde(default, rename = "ring-group")]
    ring_group: RawRingGroup,
    #[serde(default)]
    custom: BTreeMap<String, BTreeMap<String, RawRule>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReachable {
    separate_self_served: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNhs {
    abandon_after_secs: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRingGroup {
    fishing_mode: Option<bool>,
}

/// One outcome's rule in a site-defined definition.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum RawRule {
    To(String),
    ByReach {
        reached: String,
        unreached: String,
    },
    ByWait {
        at_least_secs: f64,
        #[serde(rename = "box")]
        at_least: String,
        #[serde(rename = "else")]
        below: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the engine runs with.
    pub engine: EngineSettings,
    /// The definition boards show unless told otherwise.
    pub default_definition: String,
    /// Days of events and finished calls the store keeps.
    pub retention_days: u32,
    /// The TV boards (`[[board]]`), validated against the definitions.
    pub boards: crate::board::Boards,
    /// Tokens, limits and browser policy.
    pub security: crate::security::Security,
    /// The telephony feeds (`[[source]]`).
    pub sources: Vec<crate::source::SourceConfig>,
    /// `[cluster]`, when this node is one of several sharing a NATS JetStream log.
    pub cluster: Option<crate::cluster::ClusterSettings>,
    /// Alert rules and targets (`[[alert]]`, `[[alert_target]]`).
    pub alerts: crate::alert::AlertConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_raw(RawConfig::default()).expect("defaults are valid")
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Config::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let tz_name = raw.site.timezone.as_deref().unwrap_or("UTC");
        let tz = TimeZone::get(tz_name).map_err(|_| {
            invalid(
                "site.timezone",
                format!("{tz_name:?} is not an IANA time zone"),
            )
        })?;
        let day_start = match raw.site.day_start.as_deref() {
            None => Time::midnight(),
            Some(text) => text.parse::<Time>().map_err(|_| {
                invalid(
                    "site.day_start",
                    format!("{text:?} is not a time of day like \"06:00\""),
                )
            })?,
        };
        let minutes = |key: &str, value: Option<i64>, default: i64, max: i64| {
            let m = value.unwrap_or(default);
            if (1..=max).contains(&m) {
                Ok(SignedDuration::from_mins(m))
            } else {
                Err(invalid(
                    key,
                    format!("must be between 1 and {max} minutes, not {m}"),
                ))
            }
        };
        // Defaults live once, in the settings' own `Default`s.
        let defaults = EngineSettings::default();
        let built_in_defaults = BuiltInSettings::default();
        let mins = |d: Option<SignedDuration>| d.unwrap_or_default().as_mins();
        let window = minutes(
            "site.window_minutes",
            raw.site.window_minutes,
            defaults.window.as_mins(),
            24 * 60,
        )?;
        let late_window = minutes(
            "site.late_window_minutes",
            raw.site.late_window_minutes,
            mins(defaults.late_window),
            7 * 24 * 60,
        )?;
        let stale_after = minutes(
            "site.stale_after_minutes",
            raw.site.stale_after_minutes,
            mins(defaults.stale_after),
            7 * 24 * 60,
        )?;
        let figures = FigureSettings {
            service_level_ms: secs_to_ms(
                "figures.service_level_secs",
                raw.figures.service_level_secs,
                defaults.figures.service_level_ms,
            )?,
            short_abandon_ms: secs_to_ms(
                "figures.short_abandon_secs",
                raw.figures.short_abandon_secs,
                defaults.figures.short_abandon_ms,
            )?,
        };
        let built_in = BuiltInSettings {
            nhs_abandon_after_ms: secs_to_ms(
                "definitions.nhs.abandon_after_secs",
                raw.definitions.nhs.abandon_after_secs,
                built_in_defaults.nhs_abandon_after_ms,
            )?,
            ring_group_fishing_mode: raw
                .definitions
                .ring_group
                .fishing_mode
                .unwrap_or(built_in_defaults.ring_group_fishing_mode),
            reachable_separate_self_served: raw
                .definitions
                .reachable
                .separate_self_served
                .unwrap_or(built_in_defaults.reachable_separate_self_served),
        };
        let mut definitions = Definition::built_ins(&built_in);
        for (name, map) in raw.definitions.custom {
            let key = format!("definitions.custom.{name}");
            if BUILT_IN.contains(&name.as_str()) || name.is_empty() {
                return Err(invalid(&key, "a site definition needs a name of its own"));
            }
            let rules = map
                .into_iter()
                .map(|(outcome, rule)| {
                    let rule = named_rule(&format!("{key}.{outcome}"), rule)?;
                    Ok((outcome, rule))
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            let definition =
                Definition::from_named(&name, rules).map_err(|e| invalid(&key, e.to_string()))?;
            definitions.push(definition);
        }
        let default_definition = raw
            .definitions
            .default
            .unwrap_or_else(|| BUILT_IN[0].to_owned());
        if !definitions.iter().any(|d| d.name() == default_definition) {
            return Err(invalid(
                "definitions.default",
                format!("no definition is called {default_definition:?}"),
            ));
        }
        let retention_days = raw.store.retention_days.unwrap_or(90);
        if !(1..=3660).contains(&retention_days) {
            return Err(invalid(
                "store.retention_days",
                format!("must be between 1 and 3660 days, not {retention_days}"),
            ));
        }
        let boards = crate::board::Boards::from_raw(raw.board, &definitions, &default_definition)?;
        let security = crate::security::Security::from_raw(raw.auth, raw.limits, raw.web)?;
        let sources = crate::source::config::sources(raw.source)?;
        let alerts = crate::alert::config::validate(
            raw.alert,
            raw.alert_target,
            raw.site.public_url,
            &boards,
            &definitions,
            &default_definition,
        )?;
        let cluster = raw
            .cluster
            .map(crate::cluster::ClusterSettings::from_raw)
            .transpose()?;
        Ok(Config {
            sources,
            cluster,
            alerts,
            boards,
            retention_days,
            engine: EngineSettings {
                definitions,
                figures,
                day: DayRule::new(tz, day_start),
                window,
                late_window: Some(late_window),
                stale_after: Some(stale_after),
                max_queues: security.limits.max_queues,
                max_open_calls: security.limits.max_open_calls,
                max_future: SignedDuration::try_from(security.limits.max_future)
                    .unwrap_or(SignedDuration::MAX),
                ..defaults
            },
            default_definition,
            security,
        })
    }
}

/// Seconds as written, in milliseconds; `default_ms` when not written.
fn secs_to_ms(key: &str, value: Option<f64>, default_ms: i64) -> Result<i64, ConfigError> {
    let Some(secs) = value else {
        return Ok(default_ms);
    };
    if secs.is_finite() && (0.0..=86_400.0).contains(&secs) {
        Ok((secs * 1000.0).round() as i64)
    } else {
        Err(invalid(
            key,
            format!("must be between 0 and 86400 seconds, not {secs}"),
        ))
    }
}

fn named_rule(key: &str, rule: RawRule) -> Result<NamedRule, ConfigError> {
    Ok(match rule {
        RawRule::To(b) => NamedRule::To(b),
        RawRule::ByReach { reached, unreached } => NamedRule::ByReach { reached, unreached },
        RawRule::ByWait {
            at_least_secs,
            at_least,
            below,
        } => NamedRule::ByWait {
            at_least_ms: secs_to_ms(&format!("{key}.at_least_secs"), Some(at_least_secs), 0)?,
            at_least,
            below,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn defaults_without_a_file() {
        let c = Config::default();
        assert_eq!(c.default_definition, "reachable");
        assert_eq!(c.engine.definitions.len(), 5);
        assert_eq!(c.engine.window, SignedDuration::from_mins(60));
        assert_eq!(c.engine.figures.service_level_ms, 20_000);
    }

    #[test]
    fn a_full_file() {
        let c = Config::parse(
            r#"
            [site]
            timezone = "Europe/London"
            day_start = "06:00"
            window_minutes = 30
            [figures]
            service_level_secs = 30
            short_abandon_secs = 5
            [definitions]
            default = "mine"
            nhs = { abandon_after_secs = 45 }
            ring-group = { fishing_mode = true }
            [definitions.custom.mine]
            answered = "answered"
            transfer_abandoned = "answered"
            queue_abandoned = { at_least_secs = 10, box = "abandoned", else = "short" }
            direct_missed = "missed"
            timed_out = "missed"
            voicemail = { reached = "missed", unreached = "other" }
            callback = "missed"
            self_served = "other"
            closed = "other"
            ivr_dropped = "other"
            ivr_abandoned = "other"
            dead_end = "ignored"
            "#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.default_definition, "mine");
        assert_eq!(c.engine.definitions.len(), 6);
        assert_eq!(c.engine.figures.short_abandon_ms, 5_000);
        let mine = &c.engine.definitions[5];
        assert!(mine.boxes().contains(&"short".to_owned()));
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("[site]\ntimezone = \"Mars/Base\"").contains("site.timezone"));
        assert!(err("[site]\nday_start = \"25:00\"").contains("site.day_start"));
        assert!(err("[site]\nwindow_minutes = 0").contains("site.window_minutes"));
        assert!(err("[site]\ncolour = \"red\"").contains("colour"));
        assert!(err("[figures]\nservice_level_secs = -1").contains("figures.service_level_secs"));
        assert!(err("[definitions]\ndefault = \"nope\"").contains("definitions.default"));
        assert!(err("[definitions.custom.x]\nanswered = \"a\"").contains("definitions.custom.x"));
        assert!(
            err("[definitions.custom.nhs]\nanswered = \"a\"").contains("definitions.custom.nhs")
        );
        assert!(err("site = 3").contains("t.toml"));
        assert!(err("[store]\nretention_days = 0").contains("store.retention_days"));
        assert!(err("[limits]\nmax_queues = 0").contains("limits.max_queues"));
        assert!(err("[limits]\nmax_open_calls = 0").contains("limits.max_open_calls"));
        assert!(err("[limits]\nmax_future_secs = 999999999").contains("limits.max_future_secs"));
    }

    /// Fractional seconds are accepted on purpose: waits are kept in
    /// milliseconds, so 20.5 s is an exact threshold, not a rounding.
    #[test]
    fn fractional_seconds_are_kept_to_the_millisecond() {
        let c = Config::parse("[figures]\nservice_level_secs = 20.5", "t.toml").unwrap();
        assert_eq!(c.engine.figures.service_level_ms, 20_500);
    }

    #[test]
    fn limits_reach_the_engine() {
        let c = Config::parse(
            "[limits]\nmax_queues = 7\nmax_open_calls = 9\nmax_future_secs = 0",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.engine.max_queues, 7);
        assert_eq!(c.engine.max_open_calls, 9);
        assert_eq!(c.engine.max_future, SignedDuration::ZERO);
        let d = Config::default();
        assert_eq!(d.engine.max_queues, 1_000);
        assert_eq!(d.engine.max_open_calls, 200_000);
        assert_eq!(d.engine.max_future, SignedDuration::from_mins(5));
    }
}
