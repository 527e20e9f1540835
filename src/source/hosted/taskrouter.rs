//! Twilio TaskRouter event callbacks (kind `taskrouter`): the form fields of
//! one callback mapped to our events, and the `X-Twilio-Signature` check that
//! stands in for an ingest token on this route.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde_json::Value;
use sha1::Sha1;

use super::{RecordError, RequestError, string, string_map, truncated, valid};
use crate::config::error::{ConfigError, invalid};
use crate::event::{AgentStatus, Direction, EndedBy, Event, EventKind, MAX_REASON_BYTES};
use crate::source::config::Naming;
use crate::source::{Mapped, Skipped};

/// The form fields of one callback, in the order posted.
pub type Form = Vec<(String, String)>;

/// The account's auth token, kept out of `Debug` output and logs.
#[derive(Clone)]
pub struct AuthToken(String);

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthToken(..)")
    }
}

/// The settings of a `taskrouter` source.
#[derive(Debug, Clone)]
pub struct TaskRouterSettings {
    /// The auth token read from `auth_token_file`, the key of the signature.
    pub auth_token: AuthToken,
    /// The callback URL as Twilio calls it, when a proxy makes it differ
    /// from what the request says (`public_url`).
    pub public_url: Option<String>,
    /// Activity name → status (`[source.activities]`), before the defaults.
    pub activities: BTreeMap<String, AgentStatus>,
}

/// The keys of a `taskrouter` table as written.
#[derive(Default)]
struct RawSettings {
    auth_token_file: Option<PathBuf>,
    public_url: Option<String>,
    activities: BTreeMap<String, String>,
}

impl RawSettings {
    fn parse(table: toml::Table, key: &str) -> Result<RawSettings, ConfigError> {
        let mut raw = RawSettings::default();
        for (name, value) in table {
            let here = format!("{key}.{name}");
            match name.as_str() {
                "auth_token_file" => raw.auth_token_file = Some(string(value, &here)?.into()),
                "public_url" => raw.public_url = Some(string(value, &here)?),
                "activities" => raw.activities = string_map(value, &here)?,
                _ => {
                    return Err(invalid(
                        &here,
                        "unknown setting (known: auth_token_file, public_url, activities)",
                    ));
                }
            }
        }
        Ok(raw)
    }
}

impl TaskRouterSettings {
    /// Validates a `[[source]]` table of kind `taskrouter` and reads its
    /// token file; `key` names the table in errors.
    pub fn parse(table: toml::Table, key: &str) -> Result<TaskRouterSettings, ConfigError> {
        let raw = RawSettings::parse(table, key)?;
        let file_key = format!("{key}.auth_token_file");
        let file = raw.auth_token_file.ok_or_else(|| {
            invalid(&file_key, "is required: the file holding the Twilio account's auth token, which signs every callback")
        })?;
        let token = std::fs::read_to_string(&file)
            .map_err(|e| invalid(&file_key, format!("cannot read {}: {e}", file.display())))?
            .trim()
            .to_owned();
        if token.is_empty() {
            return Err(invalid(&file_key, format!("{} is empty", file.display())));
        }
        if let Some(url) = &raw.public_url {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && !url.contains(char::is_whitespace);
            if !ok {
                return Err(invalid(
                    &format!("{key}.public_url"),
                    format!(
                        "{url:?} is not an http(s) URL like https://board.example.com/api/sources/taskrouter"
                    ),
                ));
            }
        }
        let mut activities = BTreeMap::new();
        for (name, status) in raw.activities {
            let status = AgentStatus::ALL
                .into_iter()
                .find(|s| s.as_str() == status)
                .ok_or_else(|| {
                    invalid(
                        &format!("{key}.activities.{name}"),
                        format!(
                            "{status:?} is not a status (available, busy, wrap_up, away, offline)"
                        ),
                    )
                })?;
            activities.insert(name, status);
        }
        Ok(TaskRouterSettings {
            auth_token: AuthToken(token),
            public_url: raw.public_url,
            activities,
        })
    }

    /// Whether `signature` (the `X-Twilio-Signature` header) signs `form` as
    /// posted to `url`: base64 of HMAC-SHA1, keyed with the auth token, over
    /// the URL and then each parameter's name and value, sorted by name.
    /// The MAC comparison takes the same time wherever the bytes differ.
    pub fn signature_valid(&self, url: &str, form: &[(String, String)], signature: &str) -> bool {
        signature_valid(self.auth_token.0.as_bytes(), url, form, signature)
    }
}

/// See [`TaskRouterSettings::signature_valid`].
pub fn signature_valid(key: &[u8], url: &str, form: &[(String, String)], signature: &str) -> bool {
    let Ok(presented) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return false;
    };
    // As Twilio's own validators: names sorted, a repeated name's values sorted too.
    let mut sorted: Vec<&(String, String)> = form.iter().collect();
    sorted.sort();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.verify_slice(&presented).is_ok()
}

/// Reads a form body (`application/x-www-form-urlencoded`).
pub fn parse_form(body: &[u8]) -> Form {
    form_urlencoded::parse(body).into_owned().collect()
}

/// How one source names calls and agents and reads activities.
#[derive(Debug, Clone, Copy)]
pub struct Mapper<'a> {
    naming: &'a Naming,
    activities: &'a BTreeMap<String, AgentStatus>,
}

impl<'a> Mapper<'a> {
    /// A mapper for the source `naming` and `activities` describe.
    pub fn new(naming: &'a Naming, activities: &'a BTreeMap<String, AgentStatus>) -> Mapper<'a> {
        Mapper { naming, activities }
    }

    /// Maps one callback as posted: readable, or refused whole.
    pub fn map_request(&self, form: &[(String, String)]) -> Result<Vec<Event>, RequestError> {
        self.map_form(form)
            .map_err(|error| RequestError::Record { index: 0, error })
    }

    /// Maps a file read offline: one callback a line, either a JSON object of
    /// its form fields or the form body as posted. Records that cannot be
    /// read are skipped and counted.
    pub fn map_file(&self, bytes: &[u8]) -> Mapped {
        let mut mapped = Mapped::default();
        let text = String::from_utf8_lossy(bytes);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim().trim_start_matches('\u{feff}');
            if line.is_empty() {
                continue;
            }
            let form = if line.starts_with('{') {
                form_of_json(line)
            } else {
                Ok(parse_form(line.as_bytes()))
            };
            match form.and_then(|f| self.map_form(&f).map_err(|e| e.to_string())) {
                Ok(events) => mapped.events.extend(events),
                Err(why) => mapped.skipped.push(Skipped {
                    position: format!("line {}", i + 1),
                    why,
                }),
            }
        }
        mapped
    }

    /// Maps one callback's fields; see the table in spec/sources.md.
    pub fn map_form(&self, form: &[(String, String)]) -> Result<Vec<Event>, RecordError> {
        let field = |name: &str| {
            form.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let required = |name: &str| match field(name) {
            Some("") => Err(RecordError::new(name, "is empty")),
            Some(v) => Ok(v),
            None => Err(RecordError::missing(name)),
        };
        let kind = required("EventType")?;
        let at = epoch(required("Timestamp")?)?;
        let task = || required("TaskSid");
        let worker = || required("WorkerName").map(|w| self.naming.agent(w));
        let queue = || {
            field("TaskQueueName")
                .filter(|q| !q.is_empty())
                .map(str::to_owned)
        };
        let mut kinds = Vec::new();
        let call = match kind {
            "task.created" => {
                let attributes = attributes(field("TaskAttributes"));
                let text = |key: &str| {
                    attributes
                        .get(key)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                };
                let outbound =
                    text("direction").is_some_and(|d| d.eq_ignore_ascii_case("outbound"));
                kinds.push(EventKind::CallStarted {
                    direction: if outbound {
                        Direction::Outbound
                    } else {
                        Direction::Inbound
                    },
                    channel: field("TaskChannelUniqueName")
                        .filter(|c| !c.is_empty())
                        .unwrap_or("voice")
                        .to_owned(),
                    from: text("from").or_else(|| text("caller")).map(str::to_owned),
                    to: None,
                    line: None,
                    dialer: false,
                });
                Some(task()?)
            }
            "task-queue.entered" => {
                let queue = required("TaskQueueName")?.to_owned();
                kinds.push(EventKind::Queued { queue });
                Some(task()?)
            }
            "reservation.created" => {
                kinds.push(EventKind::Offered {
                    agent: worker()?,
                    queue: queue(),
                });
                Some(task()?)
            }
            "reservation.rejected"
            | "reservation.timeout"
            | "reservation.canceled"
            | "reservation.rescinded" => {
                kinds.push(EventKind::Declined { agent: worker()? });
                Some(task()?)
            }
            "reservation.accepted" => {
                kinds.push(EventKind::Answered { agent: worker()? });
                Some(task()?)
            }
            "task.canceled" => {
                let reason = field("TaskCanceledReason")
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if reason.contains("ttl") || reason.contains("timeout") {
                    kinds.push(EventKind::TimedOut { queue: queue() });
                    kinds.push(EventKind::Ended {
                        by: EndedBy::System,
                    });
                } else {
                    kinds.push(EventKind::Ended {
                        by: EndedBy::Caller,
                    });
                }
                Some(task()?)
            }
            "task.wrapup" | "task.completed" => {
                kinds.push(EventKind::Ended { by: EndedBy::Agent });
                Some(task()?)
            }
            "task.deleted" => {
                kinds.push(EventKind::Ended {
                    by: EndedBy::System,
                });
                Some(task()?)
            }
            "worker.activity.update" => {
                let agent = worker()?;
                let activity = required("WorkerActivityName")?;
                let status = self.status(activity);
                let reason =
                    (status == AgentStatus::Away).then(|| truncated(activity, MAX_REASON_BYTES));
                kinds.push(EventKind::AgentStatus {
                    agent,
                    status,
                    queues: None,
                    reason,
                });
                None
            }
            _ => return Ok(Vec::new()),
        };
        // Callbacks carry no event id of their own: the id is made from every
        // field, sorted (the order posted may vary), so a redelivered callback
        // is a duplicate and two changes within one second are not.
        let mut sorted: Vec<&(String, String)> = form.iter().collect();
        sorted.sort();
        let key = sorted
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("\u{1f}");
        let events = kinds
            .into_iter()
            .enumerate()
            .map(|(n, kind)| Event {
                id: Some(self.naming.event_id(key.as_bytes(), n)),
                call: call.map(|c| self.naming.call(c)),
                at,
                kind,
            })
            .collect();
        valid(events, |ours| match ours {
            "call" => "TaskSid",
            "queue" => "TaskQueueName",
            "agent" => "WorkerName",
            "channel" => "TaskChannelUniqueName",
            "from" => "TaskAttributes",
            _ => "EventType",
        })
    }

    /// An activity's status: `[source.activities]`, else the defaults.
    fn status(&self, activity: &str) -> AgentStatus {
        if let Some(status) = self.activities.get(activity) {
            return *status;
        }
        match activity {
            "Available" => AgentStatus::Available,
            "Offline" => AgentStatus::Offline,
            "Busy" => AgentStatus::Busy,
            "Wrap Up" | "WrapUp" => AgentStatus::WrapUp,
            _ => AgentStatus::Away,
        }
    }
}

/// `Timestamp`: epoch seconds, as TaskRouter sends it (a fraction is kept).
fn epoch(text: &str) -> Result<Timestamp, RecordError> {
    let bad = || RecordError::new("Timestamp", format!("{text:?} is not epoch seconds"));
    crate::source::text::parse_epoch(text.trim()).ok_or_else(bad)
}

/// `TaskAttributes`, a JSON object the site defines; anything else reads as
/// none (it is the site's data, and a task without attributes is still a task).
fn attributes(text: Option<&str>) -> serde_json::Map<String, Value> {
    match text.map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(map))) => map,
        _ => serde_json::Map::new(),
    }
}

/// A callback's fields from a JSON object (offline): strings as they are,
/// other values as their JSON text (as a form would carry them).
fn form_of_json(line: &str) -> Result<Form, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => Ok(map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect()),
        Ok(_) => Err("is not a JSON object".to_owned()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn map_with(
        activities: &BTreeMap<String, AgentStatus>,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<Event>, RecordError> {
        let mut fields = form(&[("ResourceType", "Task"), ("Timestamp", "1796634000")]);
        fields.extend(form(pairs));
        Mapper::new(&Naming::offline("taskrouter"), activities).map_form(&fields)
    }

    fn map(pairs: &[(&str, &str)]) -> Vec<String> {
        let events = map_with(&BTreeMap::new(), pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
        events
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap();
                let m = v.as_object_mut().unwrap();
                assert_eq!(m.remove("at").unwrap(), "2026-12-07T09:00:00Z");
                assert!(m.remove("id").is_some());
                serde_json::to_string(m).unwrap()
            })
            .collect()
    }

    #[test]
    fn every_row_of_the_table() {
        let task = [
            ("TaskSid", "WT1"),
            ("TaskQueueName", "Support"),
            ("WorkerName", "amy"),
        ];
        let with = |event: &str, more: &[(&'static str, &'static str)]| {
            let mut pairs = vec![("EventType", event)];
            pairs.extend(task.iter().copied());
            pairs.extend(more.iter().copied());
            map(&pairs)
        };
        let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
            (
                with(
                    "task.created",
                    &[
                        ("TaskChannelUniqueName", "chat"),
                        ("TaskAttributes", r#"{"from":"+441632960001"}"#),
                    ],
                ),
                vec![
                    r#"{"call":"WT1","channel":"chat","dialer":false,"direction":"inbound","from":"+441632960001","type":"call_started"}"#,
                ],
            ),
            (
                with(
                    "task.created",
                    &[
                        ("TaskChannelUniqueName", "voice"),
                        (
                            "TaskAttributes",
                            r#"{"caller":"client:bob","direction":"outbound"}"#,
                        ),
                    ],
                ),
                vec![
                    r#"{"call":"WT1","channel":"voice","dialer":false,"direction":"outbound","from":"client:bob","type":"call_started"}"#,
                ],
            ),
            (
                with("task.created", &[("TaskAttributes", "not json")]),
                vec![
                    r#"{"call":"WT1","channel":"voice","dialer":false,"direction":"inbound","type":"call_started"}"#,
                ],
            ),
            (
                with("task-queue.entered", &[]),
                vec![r#"{"call":"WT1","queue":"Support","type":"queued"}"#],
            ),
            (
                with("reservation.created", &[]),
                vec![r#"{"agent":"amy","call":"WT1","queue":"Support","type":"offered"}"#],
            ),
            (
                with("reservation.rejected", &[]),
                vec![r#"{"agent":"amy","call":"WT1","type":"declined"}"#],
            ),
            (
                with("reservation.timeout", &[]),
                vec![r#"{"agent":"amy","call":"WT1","type":"declined"}"#],
            ),
            (
                with("reservation.canceled", &[]),
                vec![r#"{"agent":"amy","call":"WT1","type":"declined"}"#],
            ),
            (
                with("reservation.rescinded", &[]),
                vec![r#"{"agent":"amy","call":"WT1","type":"declined"}"#],
            ),
            (
                with("reservation.accepted", &[]),
                vec![r#"{"agent":"amy","call":"WT1","type":"answered"}"#],
            ),
            (
                with(
                    "task.canceled",
                    &[("TaskCanceledReason", "Task TTL Exceeded")],
                ),
                vec![
                    r#"{"call":"WT1","queue":"Support","type":"timed_out"}"#,
                    r#"{"by":"system","call":"WT1","type":"ended"}"#,
                ],
            ),
            (
                with("task.canceled", &[("TaskCanceledReason", "Queue TIMEOUT")]),
                vec![
                    r#"{"call":"WT1","queue":"Support","type":"timed_out"}"#,
                    r#"{"by":"system","call":"WT1","type":"ended"}"#,
                ],
            ),
            (
                with("task.canceled", &[("TaskCanceledReason", "hangup")]),
                vec![r#"{"by":"caller","call":"WT1","type":"ended"}"#],
            ),
            (
                with("task.wrapup", &[]),
                vec![r#"{"by":"agent","call":"WT1","type":"ended"}"#],
            ),
            (
                with("task.completed", &[]),
                vec![r#"{"by":"agent","call":"WT1","type":"ended"}"#],
            ),
            (
                with("task.deleted", &[]),
                vec![r#"{"by":"system","call":"WT1","type":"ended"}"#],
            ),
            (with("workspace.updated", &[]), vec![]),
            (with("task.updated", &[]), vec![]),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn activities_map_to_statuses() {
        let status = |activities: &BTreeMap<String, AgentStatus>, name: &str| {
            let events = map_with(
                activities,
                &[
                    ("EventType", "worker.activity.update"),
                    ("WorkerName", "amy"),
                    ("WorkerActivityName", name),
                ],
            )
            .unwrap();
            let v = serde_json::to_value(&events[0]).unwrap();
            assert_eq!(
                (v["type"].as_str(), v["agent"].as_str()),
                (Some("agent_status"), Some("amy"))
            );
            (
                v["status"].as_str().unwrap().to_owned(),
                v["reason"].as_str().map(str::to_owned),
            )
        };
        let none = BTreeMap::new();
        let s = |x: &str| x.to_owned();
        assert_eq!(status(&none, "Available"), (s("available"), None));
        assert_eq!(status(&none, "Offline"), (s("offline"), None));
        assert_eq!(status(&none, "Busy"), (s("busy"), None));
        assert_eq!(status(&none, "Wrap Up"), (s("wrap_up"), None));
        assert_eq!(status(&none, "WrapUp"), (s("wrap_up"), None));
        assert_eq!(status(&none, "Lunch"), (s("away"), Some(s("Lunch"))));
        let mine: BTreeMap<String, AgentStatus> = [
            ("Lunch".to_owned(), AgentStatus::Offline),
            ("Available".to_owned(), AgentStatus::Busy),
        ]
        .into();
        assert_eq!(status(&mine, "Lunch"), (s("offline"), None));
        assert_eq!(status(&mine, "Available"), (s("busy"), None));
    }

    #[test]
    fn malformed_callbacks_name_the_field() {
        let none = BTreeMap::new();
        let naming = Naming::offline("t");
        let mapper = Mapper::new(&naming, &none);
        let cases: [(&[(&str, &str)], &str); 7] = [
            (&[("Timestamp", "1796634000")], "EventType"),
            (
                &[("EventType", "task.created"), ("TaskSid", "WT1")],
                "Timestamp",
            ),
            (
                &[
                    ("EventType", "task.created"),
                    ("TaskSid", "WT1"),
                    ("Timestamp", "9am"),
                ],
                "Timestamp",
            ),
            (
                &[("EventType", "task.created"), ("Timestamp", "1796634000")],
                "TaskSid",
            ),
            (
                &[
                    ("EventType", "reservation.accepted"),
                    ("TaskSid", "WT1"),
                    ("Timestamp", "1796634000"),
                ],
                "WorkerName",
            ),
            (
                &[
                    ("EventType", "task-queue.entered"),
                    ("TaskSid", "WT1"),
                    ("Timestamp", "1796634000"),
                ],
                "TaskQueueName",
            ),
            (
                &[
                    ("EventType", "worker.activity.update"),
                    ("WorkerName", "amy"),
                    ("Timestamp", "1796634000"),
                ],
                "WorkerActivityName",
            ),
        ];
        for (pairs, field) in cases {
            let e = mapper
                .map_form(&form(pairs))
                .expect_err(&format!("{pairs:?}"));
            assert_eq!(e.field, field, "{pairs:?}: {e}");
        }
        let long = "x".repeat(200);
        let e = mapper
            .map_form(&form(&[
                ("EventType", "task.deleted"),
                ("TaskSid", &long),
                ("Timestamp", "1796634000"),
            ]))
            .unwrap_err();
        assert_eq!(e.field, "TaskSid");
        let file = "{\"EventType\":\"task.deleted\",\"TaskSid\":\"WT1\",\"Timestamp\":1796634000}\n\
                    EventType=task.deleted&TaskSid=WT2&Timestamp=1796634000\n\
                    EventType=task.deleted&Timestamp=1796634000\n[1]\n";
        let mapped = mapper.map_file(file.as_bytes());
        assert_eq!(mapped.events.len(), 2);
        let positions: Vec<&str> = mapped.skipped.iter().map(|s| s.position.as_str()).collect();
        assert_eq!(positions, ["line 3", "line 4"]);
    }

    #[test]
    fn two_changes_in_one_second_are_two_events() {
        let status = |name: &str| {
            map_with(
                &BTreeMap::new(),
                &[
                    ("EventType", "worker.activity.update"),
                    ("WorkerSid", "WK1"),
                    ("WorkerName", "amy"),
                    ("WorkerActivityName", name),
                ],
            )
            .unwrap()
        };
        assert_ne!(status("Available")[0].id, status("Lunch")[0].id);
    }

    #[test]
    fn a_redelivered_callback_has_the_same_ids() {
        let pairs = [
            ("EventType", "task.canceled"),
            ("TaskSid", "WT1"),
            ("TaskCanceledReason", "Task TTL Exceeded"),
        ];
        let a = map_with(&BTreeMap::new(), &pairs).unwrap();
        let mut reordered = pairs;
        reordered.reverse();
        let b = map_with(&BTreeMap::new(), &reordered).unwrap();
        assert_eq!(a, b);
        assert_ne!(a[0].id, a[1].id);
    }

    /// The vector was computed once, independently, with Python's `hmac`:
    /// `base64(hmac.new(b"test-auth-token", (url + "".join(k + v for k, v in
    /// sorted(params.items()))).encode(), hashlib.sha1).digest())`.
    #[test]
    fn signatures_as_twilio_computes_them() {
        let url = "https://board.example.com/api/sources/taskrouter?source=twilio";
        let fields = form(&[
            ("TaskSid", "WT0001"),
            ("EventType", "task.created"),
            ("Timestamp", "1796634000"),
            ("TaskAttributes", r#"{"from":"+441632960001"}"#),
        ]);
        let good = "AKxgbgwAOSML3A1wFl0aCv70Gik=";
        let key = b"test-auth-token";
        assert!(signature_valid(key, url, &fields, good));
        let mut reordered = fields.clone();
        reordered.reverse();
        assert!(
            signature_valid(key, url, &reordered, good),
            "the order posted does not matter"
        );
        assert!(!signature_valid(b"another-token", url, &fields, good));
        assert!(!signature_valid(
            key,
            "http://10.0.0.5:8080/api/sources/taskrouter?source=twilio",
            &fields,
            good
        ));
        let mut changed = fields.clone();
        changed[0].1 = "WT0002".into();
        assert!(!signature_valid(key, url, &changed, good));
        assert!(!signature_valid(key, url, &fields, ""));
        assert!(!signature_valid(key, url, &fields, "not base64!"));
        assert!(!signature_valid(
            key,
            url,
            &fields,
            "AKxgbgwAOSML3A1wFl0aCv70Gi=="
        ));
    }

    #[test]
    fn settings_are_checked_and_name_the_key() {
        let dir = std::env::temp_dir().join(format!("wallboard-taskrouter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "secret\n").unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let table = |extra: &str| -> toml::Table { toml::from_str(extra).unwrap() };
        let ok = TaskRouterSettings::parse(
            table(&format!("auth_token_file = {:?}\npublic_url = \"https://b.example.com/x\"\n[activities]\nLunch = \"away\"\n", token)),
            "source[0]",
        )
        .unwrap();
        assert_eq!(ok.auth_token.0, "secret");
        assert!(
            !format!("{ok:?}").contains("secret"),
            "the token stays out of Debug"
        );
        let cases = [
            (String::new(), "source[0].auth_token_file"),
            (
                "auth_token_file = \"/nonexistent/token\"".to_owned(),
                "source[0].auth_token_file",
            ),
            (
                format!("auth_token_file = {empty:?}"),
                "source[0].auth_token_file",
            ),
            (
                format!("auth_token_file = {token:?}\npublic_url = \"board.example.com\""),
                "source[0].public_url",
            ),
            (
                format!("auth_token_file = {token:?}\n[activities]\nLunch = \"lunch\""),
                "source[0].activities.Lunch",
            ),
            (
                format!("auth_token_file = {token:?}\nsecret = 1"),
                "source[0].secret",
            ),
            (
                "auth_token_file = 5".to_owned(),
                "source[0].auth_token_file",
            ),
            (
                format!("auth_token_file = {token:?}\n[activities]\nLunch = 5"),
                "source[0].activities.Lunch",
            ),
        ];
        for (text, key) in cases {
            match TaskRouterSettings::parse(table(&text), "source[0]") {
                Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod order_tests {
    use std::sync::Arc;

    use jiff::Timestamp;
    use proptest::prelude::*;

    use super::Mapper;
    use crate::engine::{Engine, EngineSettings};
    use crate::source::Naming;

    /// A day of signed-off callbacks (tests/data), one form a line.
    const DAY: &str = include_str!("../../../tests/data/taskrouter.form");

    fn lines() -> Vec<&'static str> {
        DAY.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    /// Each finished call's outcome and wait, and the events the engine took.
    fn outcomes(lines: &[&str]) -> (Vec<(String, String, Option<i64>)>, u64) {
        let settings = EngineSettings {
            late_window: None,
            stale_after: None,
            keep_days: None,
            feed_clock: true,
            ..EngineSettings::default()
        };
        let mut engine = Engine::new(Arc::new(settings), Timestamp::UNIX_EPOCH);
        let (naming, activities) = (Naming::offline("taskrouter"), Default::default());
        let mapper = Mapper::new(&naming, &activities);
        let mut accepted = 0;
        for line in lines {
            let mapped = mapper.map_file(line.as_bytes());
            assert!(mapped.skipped.is_empty(), "{line}: {:?}", mapped.skipped);
            accepted += engine.ingest(mapped.events).accepted;
        }
        let mut out: Vec<_> = engine
            .finished_calls()
            .into_iter()
            .map(|(call, c)| {
                let outcome = c.verdict.outcome.as_str().to_owned();
                (call.to_owned(), outcome, c.verdict.wait_ms)
            })
            .collect();
        out.sort();
        (out, accepted)
    }

    proptest! {
        /// TaskRouter retries callbacks and does not promise their order:
        /// any order and any repeats give the same calls, outcomes and waits,
        /// and a repeat is always a duplicate.
        #[test]
        fn any_order_and_any_repeats_give_the_same_boxes(
            mut shuffled in Just(lines()).prop_shuffle(),
            repeats in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let day = lines();
            let want = outcomes(&day);
            prop_assert!(!want.0.is_empty());
            for (n, index) in repeats.iter().enumerate() {
                let line = *index.get(&day);
                shuffled.insert(n * 7 % (shuffled.len() + 1), line);
            }
            prop_assert_eq!(outcomes(&shuffled), want);
        }
    }
}
