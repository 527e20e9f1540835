//! Amazon Connect contact events (kind `connect`): the EventBridge event
//! (`"detail-type": "Amazon Connect Contact Event"`) mapped to our events,
//! one record at a time. Delivery is best-effort and unordered, so a record
//! gives every event it can vouch for (a `DISCONNECTED` also gives the
//! `queued` and `answered` its `queueInfo` and `agentInfo` hold) under ids
//! made from the event's own content: the same fact from two records, or
//! the same record twice, is one event.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::{RecordError, RequestError, string_map, valid};
use crate::config::error::{ConfigError, invalid};
use crate::event::{Direction, EndedBy, Event, EventKind};
use crate::source::config::Naming;
use crate::source::{Mapped, Skipped};

/// The `detail-type` of the events this source takes.
pub const DETAIL_TYPE: &str = "Amazon Connect Contact Event";

/// The settings of a `connect` source.
#[derive(Debug, Clone, Default)]
pub struct ConnectSettings {
    /// Queue ARN → display name (`[source.queues]`); else the ARN's last segment.
    pub queues: BTreeMap<String, String>,
}

impl ConnectSettings {
    /// Validates a `[[source]]` table of kind `connect`; `key` names it in errors.
    pub fn parse(table: toml::Table, key: &str) -> Result<ConnectSettings, ConfigError> {
        let mut settings = ConnectSettings::default();
        for (name, value) in table {
            match name.as_str() {
                "queues" => settings.queues = string_map(value, &format!("{key}.queues"))?,
                _ => {
                    return Err(invalid(
                        &format!("{key}.{name}"),
                        "unknown setting (known: queues)",
                    ));
                }
            }
        }
        Ok(settings)
    }
}

/// How one source names calls, agents and queues.
#[derive(Debug, Clone, Copy)]
pub struct Mapper<'a> {
    naming: &'a Naming,
    settings: &'a ConnectSettings,
}

impl<'a> Mapper<'a> {
    /// A mapper for the source `naming` and `settings` describe.
    pub fn new(naming: &'a Naming, settings: &'a ConnectSettings) -> Mapper<'a> {
        Mapper { naming, settings }
    }

    /// Maps a request body as an API destination posts it: one event or an
    /// array of them, all readable or refused whole (at most `max_records`).
    pub fn map_request(&self, body: &[u8], max_records: usize) -> Result<Vec<Event>, RequestError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| RequestError::Body(format!("the body is not JSON: {e}")))?;
        let records = match value {
            Value::Array(records) => records,
            record => vec![record],
        };
        if records.len() > max_records {
            return Err(RequestError::Body(format!(
                "{} events in one request; at most {max_records} (limits.max_events_per_batch)",
                records.len()
            )));
        }
        let mut events = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let mapped = self
                .map_record(record)
                .map_err(|error| RequestError::Record { index, error })?;
            events.extend(mapped);
        }
        Ok(events)
    }

    /// Maps a file read offline: NDJSON of EventBridge events, or a JSON
    /// array of them. Records that cannot be read are skipped and counted.
    pub fn map_file(&self, bytes: &[u8]) -> Mapped {
        let mut mapped = Mapped::default();
        let text = String::from_utf8_lossy(bytes);
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        let records: Vec<(String, Result<Value, String>)> = if trimmed.starts_with('[') {
            match serde_json::from_str::<Vec<Value>>(trimmed) {
                Ok(records) => records
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| (format!("element {i}"), Ok(r)))
                    .collect(),
                Err(e) => vec![("the array".to_owned(), Err(format!("not JSON: {e}")))],
            }
        } else {
            text.lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .map(|(i, line)| {
                    let parsed = serde_json::from_str(line.trim_start_matches('\u{feff}'))
                        .map_err(|e| format!("not JSON: {e}"));
                    (format!("line {}", i + 1), parsed)
                })
                .collect()
        };
        for (position, record) in records {
            match record.and_then(|r| self.map_record(&r).map_err(|e| e.to_string())) {
                Ok(events) => mapped.events.extend(events),
                Err(why) => mapped.skipped.push(Skipped { position, why }),
            }
        }
        mapped
    }

    /// Maps one EventBridge event; see the table in spec/sources.md.
    pub fn map_record(&self, record: &Value) -> Result<Vec<Event>, RecordError> {
        let Value::Object(record) = record else {
            return Err(RecordError::new("(record)", "is not a JSON object"));
        };
        match record.get("detail-type") {
            None => return Err(RecordError::missing("detail-type")),
            Some(Value::String(kind)) if kind == DETAIL_TYPE => {}
            // Another event of a broad EventBridge rule: not ours, not broken.
            Some(Value::String(_)) => return Ok(Vec::new()),
            Some(_) => return Err(RecordError::new("detail-type", "is not a string")),
        }
        let detail = match record.get("detail") {
            Some(Value::Object(detail)) => detail,
            Some(_) => return Err(RecordError::new("detail", "is not an object")),
            None => return Err(RecordError::missing("detail")),
        };
        let contact = required_str(detail, "contactId")?;
        let kind = required_str(detail, "eventType")?;
        let events = match kind {
            "INITIATED" => self.initiated(detail, contact, true)?,
            "QUEUED" => {
                let mut events = self.initiated(detail, contact, false)?;
                events.extend(self.queued(detail, contact, true)?);
                events
            }
            "CONNECTED_TO_AGENT" => {
                let mut events = self.initiated(detail, contact, false)?;
                events.extend(self.answered(detail, contact, true)?);
                events
            }
            "DISCONNECTED" => self.disconnected(detail, contact)?,
            _ => Vec::new(),
        };
        valid(events, |ours| match ours {
            "call" => "detail.contactId",
            "queue" => "detail.queueInfo.queueArn",
            "agent" => "detail.agentInfo.agentArn",
            "channel" => "detail.channel",
            _ => "detail",
        })
    }

    /// The contact's `call_started` (required from `INITIATED`; from the
    /// other records when they carry `initiationTimestamp`, so a lost
    /// `INITIATED` changes nothing), and the `callback_requested` a callback
    /// gives the contact it calls back.
    fn initiated(
        &self,
        detail: &Map<String, Value>,
        contact: &str,
        required: bool,
    ) -> Result<Vec<Event>, RecordError> {
        let Some(at) = timestamp(detail, "initiationTimestamp", "detail.initiationTimestamp")?
        else {
            return if required {
                Err(RecordError::missing("detail.initiationTimestamp"))
            } else {
                Ok(Vec::new())
            };
        };
        let method =
            optional_str(detail, "initiationMethod", "detail.initiationMethod")?.unwrap_or("");
        let callback = method.eq_ignore_ascii_case("CALLBACK");
        let direction = if method.eq_ignore_ascii_case("OUTBOUND") || callback {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let channel = optional_str(detail, "channel", "detail.channel")?
            .map_or_else(|| "voice".to_owned(), channel);
        let mut events = vec![self.event(
            contact,
            at,
            &["call_started"],
            EventKind::CallStarted {
                direction,
                channel,
                from: None,
                to: None,
                line: None,
                dialer: false,
            },
        )];
        let previous = optional_str(detail, "previousContactId", "detail.previousContactId")?;
        if let (true, Some(previous)) = (callback, previous.filter(|p| !p.is_empty())) {
            events.push(self.event(
                previous,
                at,
                &["callback_requested", contact],
                EventKind::CallbackRequested,
            ));
        }
        Ok(events)
    }

    /// `queued` from `queueInfo`, when it has both the queue and the time.
    fn queued(
        &self,
        detail: &Map<String, Value>,
        contact: &str,
        required: bool,
    ) -> Result<Option<Event>, RecordError> {
        let Some(info) = object(detail, "queueInfo", "detail.queueInfo")? else {
            return match required {
                true => Err(RecordError::missing("detail.queueInfo")),
                false => Ok(None),
            };
        };
        let arn =
            optional_str(info, "queueArn", "detail.queueInfo.queueArn")?.filter(|a| !a.is_empty());
        let at = timestamp(
            info,
            "enqueueTimestamp",
            "detail.queueInfo.enqueueTimestamp",
        )?;
        match (arn, at) {
            (Some(arn), Some(at)) => {
                let queue = self
                    .settings
                    .queues
                    .get(arn)
                    .cloned()
                    .unwrap_or_else(|| last_segment(arn).to_owned());
                let id_parts = ["queued", &at.to_string(), arn];
                Ok(Some(self.event(
                    contact,
                    at,
                    &id_parts,
                    EventKind::Queued { queue },
                )))
            }
            _ if !required => Ok(None),
            (None, _) => Err(RecordError::missing("detail.queueInfo.queueArn")),
            (_, None) => Err(RecordError::missing("detail.queueInfo.enqueueTimestamp")),
        }
    }

    /// `answered` from `agentInfo`, when it has both the agent and the time.
    fn answered(
        &self,
        detail: &Map<String, Value>,
        contact: &str,
        required: bool,
    ) -> Result<Option<Event>, RecordError> {
        let Some(info) = object(detail, "agentInfo", "detail.agentInfo")? else {
            return match required {
                true => Err(RecordError::missing("detail.agentInfo")),
                false => Ok(None),
            };
        };
        let arn =
            optional_str(info, "agentArn", "detail.agentInfo.agentArn")?.filter(|a| !a.is_empty());
        let at = timestamp(
            info,
            "connectedToAgentTimestamp",
            "detail.agentInfo.connectedToAgentTimestamp",
        )?;
        match (arn, at) {
            (Some(arn), Some(at)) => {
                let agent = self.agent(arn);
                let id_parts = ["answered", &at.to_string(), arn];
                Ok(Some(self.event(
                    contact,
                    at,
                    &id_parts,
                    EventKind::Answered { agent },
                )))
            }
            _ if !required => Ok(None),
            (None, _) => Err(RecordError::missing("detail.agentInfo.agentArn")),
            (_, None) => Err(RecordError::missing(
                "detail.agentInfo.connectedToAgentTimestamp",
            )),
        }
    }

    /// `ended`, with whatever the record still says of the queue and agent.
    fn disconnected(
        &self,
        detail: &Map<String, Value>,
        contact: &str,
    ) -> Result<Vec<Event>, RecordError> {
        let at = timestamp(detail, "disconnectTimestamp", "detail.disconnectTimestamp")?
            .ok_or_else(|| RecordError::missing("detail.disconnectTimestamp"))?;
        let by = match optional_str(detail, "disconnectReason", "detail.disconnectReason")? {
            Some(r) if r.eq_ignore_ascii_case("CUSTOMER_DISCONNECT") => EndedBy::Caller,
            Some(r) if r.eq_ignore_ascii_case("AGENT_DISCONNECT") => EndedBy::Agent,
            _ => EndedBy::System,
        };
        let mut events = self.initiated(detail, contact, false)?;
        events.extend(self.queued(detail, contact, false)?);
        events.extend(self.answered(detail, contact, false)?);
        events.push(self.event(
            contact,
            at,
            &["ended", &at.to_string()],
            EventKind::Ended { by },
        ));
        Ok(events)
    }

    /// The agent's display name: `[source.agents]` by ARN, else the ARN's last segment.
    fn agent(&self, arn: &str) -> String {
        match self.naming.agents.get(arn) {
            Some(name) => name.clone(),
            None => self.naming.agent(last_segment(arn)),
        }
    }

    /// An event of `contact` whose id is made from the contact and `parts`
    /// (what makes the fact unique), never from the record it came in.
    fn event(&self, contact: &str, at: Timestamp, parts: &[&str], kind: EventKind) -> Event {
        let mut key = contact.to_owned();
        for part in parts {
            key.push('\u{1f}');
            key.push_str(part);
        }
        Event {
            id: Some(self.naming.event_id(key.as_bytes(), 0)),
            call: Some(self.naming.call(contact)),
            at,
            kind,
        }
    }
}

/// Our channel for Connect's: `VOICE`, `CHAT`, `TASK` (any case) as the
/// lower-case names events.md uses; any other as given, in lower case.
fn channel(vendor: &str) -> String {
    vendor.to_ascii_lowercase()
}

/// What follows the last `/` of an ARN (`.../agent/UUID` → `UUID`).
fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A key of `object`, also as AWS's examples sometimes spell it (`AgentInfo`).
fn get<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn required_str<'v>(detail: &'v Map<String, Value>, key: &str) -> Result<&'v str, RecordError> {
    let field = format!("detail.{key}");
    match optional_str(detail, key, &field)? {
        Some("") => Err(RecordError::new(&field, "is empty")),
        Some(s) => Ok(s),
        None => Err(RecordError::missing(&field)),
    }
}

fn optional_str<'v>(
    object: &'v Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'v str>, RecordError> {
    match get(object, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RecordError::new(field, "is not a string")),
    }
}

fn object<'v>(
    object: &'v Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'v Map<String, Value>>, RecordError> {
    match get(object, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(RecordError::new(field, "is not an object")),
    }
}

/// An ISO 8601 timestamp (`2026-12-07T09:00:00.000Z`), when present.
fn timestamp(
    object: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<Timestamp>, RecordError> {
    match optional_str(object, key, field)? {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            RecordError::new(
                field,
                format!("{text:?} is not a timestamp like 2026-12-07T09:00:00.000Z"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineSettings};
    use proptest::prelude::*;
    use serde_json::json;
    use std::sync::Arc;

    const QUEUE_ARN: &str = "arn:aws:connect:eu-west-2:111122223333:instance/inst-1/queue/q-sales";
    const AGENT_ARN: &str = "arn:aws:connect:eu-west-2:111122223333:instance/inst-1/agent/ag-7";

    /// An EventBridge envelope around `detail`, as an API destination posts it.
    fn record(detail: Value) -> Value {
        json!({
            "version": "0",
            "id": "5f0c9a3e-0000-4000-8000-000000000001",
            "detail-type": DETAIL_TYPE,
            "source": "aws.connect",
            "account": "111122223333",
            "time": "2026-12-07T09:10:00Z",
            "region": "eu-west-2",
            "resources": [],
            "detail": detail,
        })
    }

    fn detail(contact: &str, kind: &str, method: &str) -> Value {
        json!({
            "eventType": kind,
            "contactId": contact,
            "initialContactId": contact,
            "channel": "VOICE",
            "instanceArn": "arn:aws:connect:eu-west-2:111122223333:instance/inst-1",
            "initiationMethod": method,
            "initiationTimestamp": "2026-12-07T09:00:00.000Z",
        })
    }

    fn with(mut detail: Value, extra: Value) -> Value {
        for (k, v) in extra.as_object().unwrap() {
            detail[k] = v.clone();
        }
        detail
    }

    fn queue_info(at: &str) -> Value {
        json!({"queueInfo": {"queueArn": QUEUE_ARN, "queueType": "STANDARD", "enqueueTimestamp": at}})
    }

    fn agent_info(at: &str) -> Value {
        json!({"agentInfo": {"agentArn": AGENT_ARN, "connectedToAgentTimestamp": at}})
    }

    fn disconnected(contact: &str, method: &str, reason: &str, extra: Value) -> Value {
        let d = with(detail(contact, "DISCONNECTED", method), extra);
        with(
            d,
            json!({"disconnectTimestamp": "2026-12-07T09:05:00.000Z", "disconnectReason": reason}),
        )
    }

    fn map(record: &Value) -> Result<Vec<Event>, RecordError> {
        Mapper::new(&Naming::offline("connect"), &ConnectSettings::default()).map_record(record)
    }

    /// The events as `type@time key=value` lines, ids aside.
    fn shown(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap();
                let map = v.as_object_mut().unwrap();
                map.remove("id");
                let (t, at, call) = (map.remove("type"), map.remove("at"), map.remove("call"));
                let rest: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "{}@{} {} {}",
                    t.unwrap().as_str().unwrap(),
                    at.unwrap().as_str().unwrap(),
                    call.and_then(|c| c.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    rest.join(" ")
                )
                .trim_end()
                .to_owned()
            })
            .collect()
    }

    #[test]
    fn every_row_of_the_table() {
        let started = "call_started@2026-12-07T09:00:00Z c1 channel=\"voice\" dialer=false direction=\"inbound\"";
        let queued = "queued@2026-12-07T09:00:10Z c1 queue=\"q-sales\"";
        let answered = "answered@2026-12-07T09:00:40Z c1 agent=\"ag-7\"";
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (record(detail("c1", "INITIATED", "INBOUND")), vec![started]),
            (
                record(with(
                    detail("c1", "QUEUED", "INBOUND"),
                    queue_info("2026-12-07T09:00:10.000Z"),
                )),
                vec![started, queued],
            ),
            (
                record(with(
                    with(
                        detail("c1", "CONNECTED_TO_AGENT", "INBOUND"),
                        queue_info("2026-12-07T09:00:10Z"),
                    ),
                    agent_info("2026-12-07T09:00:40.000Z"),
                )),
                vec![started, answered],
            ),
            (
                record(disconnected(
                    "c1",
                    "INBOUND",
                    "CUSTOMER_DISCONNECT",
                    json!({}),
                )),
                vec![started, "ended@2026-12-07T09:05:00Z c1 by=\"caller\""],
            ),
            (
                record(disconnected(
                    "c1",
                    "INBOUND",
                    "AGENT_DISCONNECT",
                    queue_info("2026-12-07T09:00:10Z"),
                )),
                vec![
                    started,
                    queued,
                    "ended@2026-12-07T09:05:00Z c1 by=\"agent\"",
                ],
            ),
            (
                record(disconnected(
                    "c1",
                    "INBOUND",
                    "TELECOM_PROBLEM",
                    with(
                        queue_info("2026-12-07T09:00:10Z"),
                        agent_info("2026-12-07T09:00:40Z"),
                    ),
                )),
                vec![
                    started,
                    queued,
                    answered,
                    "ended@2026-12-07T09:05:00Z c1 by=\"system\"",
                ],
            ),
            (
                record(detail("c1", "CONNECTED_TO_SYSTEM", "INBOUND")),
                vec![],
            ),
            (
                record(detail("c1", "CONTACT_DATA_UPDATED", "INBOUND")),
                vec![],
            ),
            (
                record(with(
                    detail("c2", "INITIATED", "OUTBOUND"),
                    json!({"channel": "Chat"}),
                )),
                vec![
                    "call_started@2026-12-07T09:00:00Z c2 channel=\"chat\" dialer=false direction=\"outbound\"",
                ],
            ),
            (
                record(with(
                    detail("c3", "INITIATED", "API"),
                    json!({"channel": "task"}),
                )),
                vec![
                    "call_started@2026-12-07T09:00:00Z c3 channel=\"task\" dialer=false direction=\"inbound\"",
                ],
            ),
            (
                record(with(
                    detail("cb", "INITIATED", "CALLBACK"),
                    json!({"previousContactId": "c1"}),
                )),
                vec![
                    "call_started@2026-12-07T09:00:00Z cb channel=\"voice\" dialer=false direction=\"outbound\"",
                    "callback_requested@2026-12-07T09:00:00Z c1",
                ],
            ),
            (
                record(with(
                    detail("t1", "INITIATED", "TRANSFER"),
                    json!({"previousContactId": "c1"}),
                )),
                vec![
                    "call_started@2026-12-07T09:00:00Z t1 channel=\"voice\" dialer=false direction=\"inbound\"",
                ],
            ),
            (
                json!({"detail-type": "Contact Lens Analysis State Change", "detail": {}}),
                vec![],
            ),
        ];
        for (record, want) in cases {
            let got = map(&record).unwrap_or_else(|e| panic!("{record}: {e}"));
            assert_eq!(shown(&got), want, "{record}");
        }
    }

    #[test]
    fn names_come_from_the_tables_by_arn() {
        let mut naming = Naming::offline("connect");
        naming.agents.insert(AGENT_ARN.into(), "Amy".into());
        let settings = ConnectSettings {
            queues: [(QUEUE_ARN.to_owned(), "Sales".to_owned())].into(),
        };
        let r = record(with(
            with(
                detail("c1", "CONNECTED_TO_AGENT", "INBOUND"),
                queue_info("2026-12-07T09:00:10Z"),
            ),
            agent_info("2026-12-07T09:00:40Z"),
        ));
        let events = Mapper::new(&naming, &settings).map_record(&r).unwrap();
        assert!(
            shown(&events).contains(&"answered@2026-12-07T09:00:40Z c1 agent=\"Amy\"".to_owned())
        );
        let r = record(disconnected(
            "c1",
            "INBOUND",
            "X",
            queue_info("2026-12-07T09:00:10Z"),
        ));
        let events = Mapper::new(&naming, &settings).map_record(&r).unwrap();
        assert!(
            shown(&events).contains(&"queued@2026-12-07T09:00:10Z c1 queue=\"Sales\"".to_owned())
        );
    }

    #[test]
    fn the_same_fact_from_two_records_has_one_id() {
        let queued = map(&record(with(
            detail("c1", "QUEUED", "INBOUND"),
            queue_info("2026-12-07T09:00:10.000Z"),
        )))
        .unwrap();
        let ended = map(&record(disconnected(
            "c1",
            "INBOUND",
            "CUSTOMER_DISCONNECT",
            queue_info("2026-12-07T09:00:10Z"),
        )))
        .unwrap();
        assert_eq!(
            queued[1], ended[1],
            "QUEUED's queued and DISCONNECTED's are one event"
        );
        assert_eq!(queued[0].id, ended[0].id, "one call_started per contact");
        assert_ne!(ended[2].id, ended[1].id);
    }

    #[test]
    fn malformed_records_name_the_field() {
        let cases = [
            (json!([]), "(record)"),
            (json!({"detail": {}}), "detail-type"),
            (json!({"detail-type": DETAIL_TYPE}), "detail"),
            (record(json!({"eventType": "QUEUED"})), "detail.contactId"),
            (record(json!({"contactId": "c1"})), "detail.eventType"),
            (
                record(json!({"contactId": 5, "eventType": "QUEUED"})),
                "detail.contactId",
            ),
            (
                record(json!({"contactId": "c1", "eventType": "INITIATED"})),
                "detail.initiationTimestamp",
            ),
            (
                record(detail("c1", "QUEUED", "INBOUND")),
                "detail.queueInfo",
            ),
            (
                record(with(
                    detail("c1", "QUEUED", "INBOUND"),
                    json!({"queueInfo": {"queueArn": QUEUE_ARN}}),
                )),
                "detail.queueInfo.enqueueTimestamp",
            ),
            (
                record(with(
                    detail("c1", "QUEUED", "INBOUND"),
                    queue_info("yesterday"),
                )),
                "detail.queueInfo.enqueueTimestamp",
            ),
            (
                record(with(
                    detail("c1", "CONNECTED_TO_AGENT", "INBOUND"),
                    json!({"agentInfo": {"connectedToAgentTimestamp": "2026-12-07T09:00:40Z"}}),
                )),
                "detail.agentInfo.agentArn",
            ),
            (
                record(detail("c1", "DISCONNECTED", "INBOUND")),
                "detail.disconnectTimestamp",
            ),
            (
                record(detail(&"x".repeat(200), "INITIATED", "INBOUND")),
                "detail.contactId",
            ),
        ];
        for (record, field) in cases {
            let e = map(&record).expect_err(&record.to_string());
            assert_eq!(e.field, field, "{record}: {e}");
        }
        let body = format!(
            "[{}, {}]",
            record(detail("c1", "INITIATED", "INBOUND")),
            record(detail("c2", "QUEUED", "INBOUND"))
        );
        let (naming, settings) = (Naming::offline("connect"), ConnectSettings::default());
        let mapper = Mapper::new(&naming, &settings);
        match mapper.map_request(body.as_bytes(), 10) {
            Err(RequestError::Record { index: 1, error }) => {
                assert_eq!(error.field, "detail.queueInfo")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            mapper.map_request(b"{", 10),
            Err(RequestError::Body(_))
        ));
        let file = format!(
            "{}\nnot json\n\n{}\n",
            record(detail("c1", "INITIATED", "INBOUND")),
            record(json!({}))
        );
        let mapped = mapper.map_file(file.as_bytes());
        assert_eq!(mapped.events.len(), 1);
        let positions: Vec<&str> = mapped.skipped.iter().map(|s| s.position.as_str()).collect();
        assert_eq!(positions, ["line 2", "line 4"]);
    }

    /// A day of contacts, one record per list entry: answered, abandoned in
    /// the queue, called back, transferred, outbound.
    fn contacts() -> Vec<Value> {
        vec![
            record(detail("a", "INITIATED", "INBOUND")),
            record(with(
                detail("a", "QUEUED", "INBOUND"),
                queue_info("2026-12-07T09:00:05Z"),
            )),
            record(with(
                with(
                    detail("a", "CONNECTED_TO_AGENT", "INBOUND"),
                    queue_info("2026-12-07T09:00:05Z"),
                ),
                agent_info("2026-12-07T09:00:30Z"),
            )),
            record(disconnected(
                "a",
                "INBOUND",
                "AGENT_DISCONNECT",
                with(
                    queue_info("2026-12-07T09:00:05Z"),
                    agent_info("2026-12-07T09:00:30Z"),
                ),
            )),
            record(detail("b", "INITIATED", "INBOUND")),
            record(with(
                detail("b", "QUEUED", "INBOUND"),
                queue_info("2026-12-07T09:00:02Z"),
            )),
            record(disconnected(
                "b",
                "INBOUND",
                "CUSTOMER_DISCONNECT",
                queue_info("2026-12-07T09:00:02Z"),
            )),
            record(with(
                detail("c", "QUEUED", "INBOUND"),
                queue_info("2026-12-07T09:00:03Z"),
            )),
            record(disconnected(
                "c",
                "INBOUND",
                "CONTACT_FLOW_DISCONNECT",
                queue_info("2026-12-07T09:00:03Z"),
            )),
            record(with(
                detail("cb", "INITIATED", "CALLBACK"),
                json!({"previousContactId": "c"}),
            )),
            record(with(
                disconnected(
                    "cb",
                    "CALLBACK",
                    "AGENT_DISCONNECT",
                    agent_info("2026-12-07T09:02:00Z"),
                ),
                json!({"previousContactId": "c"}),
            )),
            record(with(
                detail("t", "INITIATED", "TRANSFER"),
                json!({"previousContactId": "a"}),
            )),
            record(with(
                disconnected(
                    "t",
                    "TRANSFER",
                    "CUSTOMER_DISCONNECT",
                    queue_info("2026-12-07T09:00:40Z"),
                ),
                json!({"previousContactId": "a"}),
            )),
            record(detail("o", "INITIATED", "OUTBOUND")),
            record(disconnected(
                "o",
                "OUTBOUND",
                "CUSTOMER_DISCONNECT",
                json!({}),
            )),
        ]
    }

    /// Each finished call's outcome and wait, as classify would print them,
    /// and how many events the engine took (a repeat must be a duplicate).
    fn outcomes(records: &[&Value]) -> (Vec<(String, String, Option<i64>)>, u64) {
        let settings = EngineSettings {
            late_window: None,
            stale_after: None,
            keep_days: None,
            feed_clock: true,
            ..EngineSettings::default()
        };
        let mut engine = Engine::new(Arc::new(settings), Timestamp::UNIX_EPOCH);
        let mut accepted = 0;
        for record in records {
            accepted += engine.ingest(map(record).unwrap()).accepted;
        }
        let mut out: Vec<_> = engine
            .finished_calls()
            .into_iter()
            .map(|(call, c)| {
                (
                    call.to_owned(),
                    c.verdict.outcome.as_str().to_owned(),
                    c.verdict.wait_ms,
                )
            })
            .collect();
        out.sort();
        (out, accepted)
    }

    #[test]
    fn the_day_reads_as_amazon_connect_counts_it() {
        let all = contacts();
        let (got, accepted) = outcomes(&all.iter().collect::<Vec<_>>());
        assert_eq!(accepted, 19, "the facts of the day, each once");
        let want = [
            ("a", "answered", Some(25_000)),
            ("b", "queue_abandoned", Some(298_000)),
            ("c", "callback", Some(0)),
            ("cb", "outbound_connected", None),
            ("o", "outbound_canceled", None),
            ("t", "queue_abandoned", Some(260_000)),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(c, o, w)| (c.to_string(), o.to_string(), *w))
            .collect();
        assert_eq!(got, want);
    }

    proptest! {
        /// Delivery is unordered and at-least-once: any order, any repeats,
        /// the same calls with the same outcomes.
        #[test]
        fn any_order_and_any_repeats_give_the_same_boxes(
            order in Just((0..15).collect::<Vec<usize>>()).prop_shuffle(),
            repeats in proptest::collection::vec(0..15usize, 0..10),
        ) {
            let all = contacts();
            let want = outcomes(&all.iter().collect::<Vec<_>>());
            let mut shuffled: Vec<&Value> = order.iter().map(|&i| &all[i]).collect();
            for (n, i) in repeats.into_iter().enumerate() {
                shuffled.insert(n * 7 % (shuffled.len() + 1), &all[i]);
            }
            prop_assert_eq!(outcomes(&shuffled), want);
        }
    }
}

#[cfg(test)]
mod settings_tests {
    use crate::config::Config;

    #[test]
    fn settings_errors_name_the_key() {
        let base = "[[source]]\nkind = \"connect\"\nname = \"aws\"\n";
        let ok = Config::parse(
            &format!("{base}[source.queues]\n\"arn:q/1\" = \"Sales\"\n"),
            "t",
        )
        .unwrap();
        assert_eq!(ok.sources[0].settings.kind(), "connect");
        for (extra, key) in [
            ("queue = 1\n", "source[0].queue"),
            ("queues = 1\n", "source[0].queues"),
            (
                "[source.queues]\n\"arn:q/1\" = 5\n",
                "source[0].queues.arn:q/1",
            ),
            (
                "[source.queues]\n\"arn:q/1\" = \"\"\n",
                "source[0].queues.arn:q/1",
            ),
        ] {
            let e = Config::parse(&format!("{base}{extra}"), "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{key}`")), "{extra:?}: {e}");
        }
    }
}
