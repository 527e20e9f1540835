//! Hosted contact centres that post their own events to us over HTTP
//! (spec/sources.md, "Hosted contact centres"): [`connect`] (Amazon Connect
//! contact events through an EventBridge API destination) and [`taskrouter`]
//! (Twilio TaskRouter event callbacks). Each maps one vendor record at a
//! time, with no state: every record carries all it needs, which is what
//! makes unordered, repeated delivery harmless (ids are deterministic).

pub mod connect;
pub mod taskrouter;

use std::collections::BTreeMap;

use crate::config::error::{ConfigError, invalid};
use crate::event::Event;

/// Why one vendor record could not be read: the field at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {why}")]
pub struct RecordError {
    /// The field, dotted as the vendor names it (`detail.contactId`).
    pub field: String,
    /// What is wrong with it.
    pub why: String,
}

impl RecordError {
    /// `field` is wrong for this reason.
    pub fn new(field: &str, why: impl Into<String>) -> RecordError {
        RecordError {
            field: field.to_owned(),
            why: why.into(),
        }
    }

    /// `field` is required and absent.
    pub fn missing(field: &str) -> RecordError {
        RecordError::new(field, "is missing")
    }
}

/// Why a request was refused whole: which record (0-based) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not what the vendor sends at all.
    #[error("{0}")]
    Body(String),
    /// One record of it is malformed; nothing of the request was applied.
    #[error("record {index}: {error}")]
    Record {
        /// Its position in the request.
        index: usize,
        /// What is wrong with it.
        error: RecordError,
    },
}

/// Checks each event a mapping built against events.md, so a vendor value
/// that breaks it (a contact id over 128 bytes) refuses the record that holds
/// it, naming the vendor field it came from.
pub(crate) fn valid(
    events: Vec<Event>,
    field_of: impl Fn(&str) -> &'static str,
) -> Result<Vec<Event>, RecordError> {
    events
        .into_iter()
        .map(|event| {
            super::checked(&event).map_err(|e| {
                let ours = e.field.as_deref().unwrap_or("");
                RecordError::new(field_of(ours), e.message)
            })
        })
        .collect()
}

/// A table of names (`[source.queues]`, `[source.activities]`), each key
/// non-empty and each value a non-empty string; errors name the entry.
pub(crate) fn string_map(
    value: toml::Value,
    key: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let toml::Value::Table(table) = value else {
        return Err(invalid(
            key,
            "must be a table of names, like [source.queues]",
        ));
    };
    table
        .into_iter()
        .map(|(name, value)| match value {
            toml::Value::String(s) if !s.is_empty() && !name.is_empty() => Ok((name, s)),
            _ => Err(invalid(
                &format!("{key}.{name}"),
                "must be a non-empty string",
            )),
        })
        .collect()
}

/// A setting that must be a string.
pub(crate) fn string(value: toml::Value, key: &str) -> Result<String, ConfigError> {
    match value {
        toml::Value::String(s) => Ok(s),
        _ => Err(invalid(key, "must be a string")),
    }
}

/// A string cut to at most `max` bytes on a character boundary.
pub(crate) fn truncated(text: &str, max: usize) -> String {
    crate::source::text::cut(text, max).to_owned()
}
