//! `[[source]]` tables: the keys every source has (`kind`, `name`, `prefix`,
//! `agents`), validated once, and each kind's own settings.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Context;
use crate::config::error::{ConfigError, invalid};

/// Every kind of source, as written in `kind = "..."`.
const KINDS: &[&str] = &["demo", "queue-log", "ami", "esl", "connect", "taskrouter"];

/// Longest source name: it prefixes call and event ids, which events.md caps.
const MAX_NAME_BYTES: usize = 32;

/// A `[[source]]` table as written: the common keys; the rest is the kind's.
#[derive(Debug, Deserialize)]
pub struct RawSource {
    kind: Option<String>,
    name: Option<String>,
    prefix: Option<bool>,
    #[serde(default)]
    agents: BTreeMap<String, String>,
    #[serde(flatten)]
    settings: toml::Table,
}

/// How one source writes call ids, agent names and event ids.
#[derive(Debug, Clone, Default)]
pub struct Naming {
    /// The source's name.
    pub source: String,
    /// Whether call ids are written `NAME:CALLID` (two PBXs on one board).
    pub prefix: bool,
    /// Vendor agent identifiers → display names (`[source.agents]`).
    pub agents: BTreeMap<String, String>,
}

impl Naming {
    /// Naming for offline reading of a file: ids as the vendor wrote them.
    pub fn offline(source: &str) -> Naming {
        Naming {
            source: source.to_owned(),
            prefix: false,
            agents: BTreeMap::new(),
        }
    }

    /// The call id for the vendor's own call id.
    pub fn call(&self, vendor: &str) -> String {
        if self.prefix {
            format!("{}:{vendor}", self.source)
        } else {
            vendor.to_owned()
        }
    }

    /// The agent's display name: mapped by `[source.agents]`, else as given.
    pub fn agent(&self, vendor: &str) -> String {
        self.agents
            .get(vendor)
            .cloned()
            .unwrap_or_else(|| vendor.to_owned())
    }

    /// The deterministic id of the `n`th event made from `record`.
    pub fn event_id(&self, record: &[u8], n: usize) -> String {
        super::record_id(&self.source, record, n)
    }
}

/// One configured source.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Its unique name.
    pub name: String,
    /// How it writes ids and names.
    pub naming: Naming,
    /// Its kind and the kind's settings.
    pub settings: SourceSettings,
}

/// Each kind of source with its own settings.
#[derive(Debug, Clone)]
pub enum SourceSettings {
    /// The built-in simulated call centre (`--demo`).
    Demo,
    /// Asterisk `queue_log`, followed as it grows.
    QueueLog(super::queue_log::Settings),
    /// The Asterisk Manager Interface (`kind = "ami"`).
    Ami(super::ami::AmiSettings),
    /// FreeSWITCH mod_callcenter over the event socket.
    Esl(super::esl::EslSettings),
    /// Amazon Connect contact events posted to `/api/sources/connect`.
    Connect(super::hosted::connect::ConnectSettings),
    /// Twilio TaskRouter callbacks posted to `/api/sources/taskrouter`.
    TaskRouter(super::hosted::taskrouter::TaskRouterSettings),
}

impl SourceSettings {
    /// The kind's name, as written in `kind = "..."`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSettings::Demo => "demo",
            SourceSettings::QueueLog(_) => "queue-log",
            SourceSettings::Ami(_) => "ami",
            SourceSettings::Esl(_) => super::esl::KIND,
            SourceSettings::Connect(_) => "connect",
            SourceSettings::TaskRouter(_) => "taskrouter",
        }
    }

    /// Whether vendors post to it (an HTTP route on every node) rather than
    /// it reading something: in a cluster, only the others are leased.
    pub fn hosted(&self) -> bool {
        matches!(
            self,
            SourceSettings::Connect(_) | SourceSettings::TaskRouter(_)
        )
    }

    /// Validates the kind's own keys; `key` names the table in errors.
    fn parse(kind: &str, table: toml::Table, key: &str) -> Result<SourceSettings, ConfigError> {
        match kind {
            "demo" => {
                no_keys(&table, key)?;
                Ok(SourceSettings::Demo)
            }
            "queue-log" => Ok(SourceSettings::QueueLog(super::queue_log::Settings::parse(
                table, key,
            )?)),
            "ami" => super::ami::AmiSettings::parse(table, key).map(SourceSettings::Ami),
            "esl" => super::esl::EslSettings::parse(table, key).map(SourceSettings::Esl),
            "connect" => super::hosted::connect::ConnectSettings::parse(table, key)
                .map(SourceSettings::Connect),
            "taskrouter" => super::hosted::taskrouter::TaskRouterSettings::parse(table, key)
                .map(SourceSettings::TaskRouter),
            other => Err(invalid(
                &format!("{key}.kind"),
                format!(
                    "{other:?} is not a kind of source (known: {})",
                    KINDS.join(", ")
                ),
            )),
        }
    }

    /// Starts the source; it runs until the server stops.
    pub fn start(&self, context: Context) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            SourceSettings::Demo => Some(tokio::spawn(super::demo::run(context))),
            SourceSettings::QueueLog(settings) => Some(tokio::spawn(super::queue_log::run(
                context,
                settings.clone(),
            ))),
            SourceSettings::Ami(ami) => Some(tokio::spawn(super::ami::run(ami.clone(), context))),
            SourceSettings::Esl(esl) => {
                Some(tokio::spawn(super::esl::client::run(context, esl.clone())))
            }
            // Posted to, not run: ready while the server is.
            SourceSettings::Connect(_) | SourceSettings::TaskRouter(_) => {
                context
                    .status()
                    .set_state(super::SourceState::Connected, None, context.now());
                None
            }
        }
    }
}

/// Deserializes a kind's settings from the rest of its table, naming the key
/// of the first unknown or mistyped setting.
pub fn kind_settings<T: serde::de::DeserializeOwned>(
    table: toml::Table,
    key: &str,
) -> Result<T, ConfigError> {
    T::deserialize(toml::Value::Table(table)).map_err(|e| invalid(key, e.message().to_owned()))
}

/// Checks a secret given inline (`name`) or as a file (`name_file`): exactly
/// one of the two, so a stale file never silently wins over the setting.
pub(crate) fn one_secret(
    key: &str,
    name: &str,
    inline: bool,
    file: bool,
) -> Result<(), ConfigError> {
    match (inline, file) {
        (true, true) => Err(invalid(
            &format!("{key}.{name}_file"),
            format!("give `{name}` or `{name}_file`, not both"),
        )),
        (false, false) => Err(invalid(
            &format!("{key}.{name}"),
            format!("is required (or `{name}_file`)"),
        )),
        _ => Ok(()),
    }
}

/// A secret as written, or read from its file now (a final newline dropped,
/// so a file written by `echo` works); neither gives an empty secret.
pub(crate) fn read_secret(
    inline: Option<&str>,
    file: Option<&std::path::Path>,
) -> std::io::Result<String> {
    match (inline, file) {
        (Some(secret), _) => Ok(secret.to_owned()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            Ok(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, None) => Ok(String::new()),
    }
}

fn no_keys(table: &toml::Table, key: &str) -> Result<(), ConfigError> {
    match table.keys().next() {
        Some(extra) => Err(invalid(&format!("{key}.{extra}"), "unknown setting")),
        None => Ok(()),
    }
}

/// Validates every `[[source]]` table: known kinds, unique names.
pub fn sources(raw: Vec<RawSource>) -> Result<Vec<SourceConfig>, ConfigError> {
    let mut sources: Vec<SourceConfig> = Vec::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let key = format!("source[{i}]");
        let kind = raw
            .kind
            .ok_or_else(|| invalid(&format!("{key}.kind"), "is required"))?;
        let name = raw
            .name
            .ok_or_else(|| invalid(&format!("{key}.name"), "is required"))?;
        check_name(&name, &format!("{key}.name"))?;
        if sources.iter().any(|s| s.name == name) {
            return Err(invalid(
                &format!("{key}.name"),
                format!("{name:?} names two sources"),
            ));
        }
        let settings = SourceSettings::parse(&kind, raw.settings, &key)?;
        sources.push(SourceConfig {
            naming: Naming {
                source: name.clone(),
                prefix: raw.prefix.unwrap_or(true),
                agents: raw.agents,
            },
            name,
            settings,
        });
    }
    Ok(sources)
}

fn check_name(name: &str, key: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !name.chars().all(allowed) {
        return Err(invalid(
            key,
            format!("{name:?} must be 1 to {MAX_NAME_BYTES} of a-z, 0-9, - and _"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn sources_are_validated_and_errors_name_the_key() {
        let ok = Config::parse("[[source]]\nkind = \"demo\"\nname = \"sim\"\n", "t").unwrap();
        assert_eq!(ok.sources[0].name, "sim");
        assert!(
            ok.sources[0].naming.prefix,
            "call ids are prefixed by default"
        );
        let cases = [
            ("[[source]]\nname = \"a\"\n", "source[0].kind"),
            ("[[source]]\nkind = \"demo\"\n", "source[0].name"),
            (
                "[[source]]\nkind = \"nope\"\nname = \"a\"\n",
                "source[0].kind",
            ),
            (
                "[[source]]\nkind = \"demo\"\nname = \"A b\"\n",
                "source[0].name",
            ),
            (
                "[[source]]\nkind = \"demo\"\nname = \"a\"\nextra = 1\n",
                "source[0].extra",
            ),
            (
                "[[source]]\nkind = \"demo\"\nname = \"a\"\n[[source]]\nkind = \"demo\"\nname = \"a\"\n",
                "source[1].name",
            ),
        ];
        for (text, key) in cases {
            let e = Config::parse(text, "t").unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{text:?}: {e}");
        }
    }

    #[test]
    fn naming_prefixes_calls_and_maps_agents() {
        let mut n = super::Naming::offline("pbx");
        assert_eq!(n.call("123.4"), "123.4");
        n.prefix = true;
        n.agents.insert("Agent/1".into(), "Amy".into());
        assert_eq!(n.call("123.4"), "pbx:123.4");
        assert_eq!(n.agent("Agent/1"), "Amy");
        assert_eq!(n.agent("Agent/2"), "Agent/2");
    }
}
