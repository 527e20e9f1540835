//! One input event, as `spec/events.md` defines it, and its field-checked parser.

use jiff::Timestamp;
use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

/// Longest `id` or `call` accepted, in bytes (events.md).
pub const MAX_ID_BYTES: usize = 128;
/// Longest agent, queue or other free string accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Longest `agent_status.reason` accepted, in bytes (events.md).
pub const MAX_REASON_BYTES: usize = 128;
/// Most queues an `agent_status` may list.
pub const MAX_AGENT_QUEUES: usize = 256;

/// One event of the feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Unique event id; a repeated id is a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The interaction this event belongs to (`None` only for `agent_status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// When it happened, by the source's clock.
    pub at: Timestamp,
    /// The type and its own fields.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Direction of a call, from its `call_started`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A customer called in (the default).
    #[default]
    Inbound,
    /// The site called out.
    Outbound,
}

/// Who ended an interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The caller hung up (the default).
    #[default]
    Caller,
    /// The agent hung up.
    Agent,
    /// The system ended it.
    System,
}

/// An agent's state, from `agent_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Ready for calls.
    Available,
    /// On a call or otherwise occupied.
    Busy,
    /// Finishing the last call's paperwork.
    WrapUp,
    /// Logged in but away.
    Away,
    /// Logged out.
    Offline,
}

impl AgentStatus {
    /// Every status, in display order.
    pub const ALL: [AgentStatus; 5] = [
        AgentStatus::Available,
        AgentStatus::Busy,
        AgentStatus::WrapUp,
        AgentStatus::Away,
        AgentStatus::Offline,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Available => "available",
            AgentStatus::Busy => "busy",
            AgentStatus::WrapUp => "wrap_up",
            AgentStatus::Away => "away",
            AgentStatus::Offline => "offline",
        }
    }
}

/// The `type` of an event with the fields that belong to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A new interaction.
    CallStarted {
        /// Inbound or outbound.
        direction: Direction,
        /// Voice, chat... as the source names it.
        channel: String,
        /// The caller's number.
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The number dialled.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// The line (DDI) the call came in on.
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<String>,
        /// Placed by a dialer (outbound campaigns).
        dialer: bool,
    },
    /// Welcome audio or an IVR menu.
    IvrStarted {
        /// The menu played.
        #[serde(skip_serializing_if = "Option::is_none")]
        menu: Option<String>,
    },
    /// The caller chose something in the IVR.
    IvrInput {
        /// The digits pressed.
        #[serde(skip_serializing_if = "Option::is_none")]
        digits: Option<String>,
    },
    /// The site is closed; the caller hears the closed message.
    Closed,
    /// The caller was served by SMS or recorded information.
    SelfServed {
        /// How it was served (SMS, recorded information...).
        #[serde(skip_serializing_if = "Option::is_none")]
        how: Option<String>,
    },
    /// Routed to a destination the site ignores.
    DeadEnd,
    /// Joined a queue.
    Queued {
        /// The queue.
        queue: String,
    },
    /// An agent's phone rings.
    Offered {
        /// The agent.
        agent: String,
        /// The queue.
        #[serde(skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
    },
    /// The agent declined or did not answer in time.
    Declined {
        /// The agent.
        agent: String,
    },
    /// An agent accepted.
    Answered {
        /// The agent.
        agent: String,
    },
    /// The answering agent transferred the caller.
    Transferred {
        /// The queue transferred to.
        #[serde(skip_serializing_if = "Option::is_none")]
        to_queue: Option<String>,
        /// The agent transferred to.
        #[serde(skip_serializing_if = "Option::is_none")]
        to_agent: Option<String>,
    },
    /// The caller went to voicemail.
    Voicemail,
    /// The caller asked to be called back.
    CallbackRequested,
    /// The queue's maximum wait was reached.
    TimedOut {
        /// The queue.
        #[serde(skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
    },
    /// Outbound: the agent dropped a pre-recorded voicemail.
    VoicemailDropped,
    /// The interaction is over.
    Ended {
        /// Who ended it.
        by: EndedBy,
    },
    /// An agent's state changed (no `call`).
    AgentStatus {
        /// The agent.
        agent: String,
        /// Its new status.
        status: AgentStatus,
        /// The queues it serves, when the source says (else unchanged).
        #[serde(skip_serializing_if = "Option::is_none")]
        queues: Option<Vec<String>>,
        /// Why the agent is away (a pause reason), when the source says.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Every type name, in the same-instant sort rank of events.md
/// (`agent_status` has no call and so no rank among them; it sorts last).
pub const TYPE_NAMES: [&str; 17] = [
    "call_started",
    "closed",
    "ivr_started",
    "ivr_input",
    "self_served",
    "dead_end",
    "queued",
    "offered",
    "declined",
    "timed_out",
    "answered",
    "transferred",
    "voicemail",
    "callback_requested",
    "voicemail_dropped",
    "ended",
    "agent_status",
];

impl EventKind {
    /// Sort rank among events of one call at the same instant (events.md).
    pub fn rank(&self) -> u8 {
        match self {
            EventKind::CallStarted { .. } => 0,
            EventKind::Closed => 1,
            EventKind::IvrStarted { .. } => 2,
            EventKind::IvrInput { .. } => 3,
            EventKind::SelfServed { .. } => 4,
            EventKind::DeadEnd => 5,
            EventKind::Queued { .. } => 6,
            EventKind::Offered { .. } => 7,
            EventKind::Declined { .. } => 8,
            EventKind::TimedOut { .. } => 9,
            EventKind::Answered { .. } => 10,
            EventKind::Transferred { .. } => 11,
            EventKind::Voicemail => 12,
            EventKind::CallbackRequested => 13,
            EventKind::VoicemailDropped => 14,
            EventKind::Ended { .. } => 15,
            EventKind::AgentStatus { .. } => 16,
        }
    }

    /// The wire name of the type.
    pub fn type_name(&self) -> &'static str {
        TYPE_NAMES[usize::from(self.rank())]
    }
}

/// What is wrong with one event: the field (if one is to blame) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// The offending field, or `None` when the event as a whole is wrong.
    pub field: Option<String>,
    /// A sentence saying what is wrong.
    pub message: String,
}

impl EventError {
    fn field(field: &str, message: impl Into<String>) -> Self {
        EventError {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field `{field}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Event {
    /// Reads one event from a parsed JSON value, naming the field at fault.
    pub fn from_json(value: &Value) -> Result<Event, EventError> {
        let Value::Object(obj) = value else {
            return Err(EventError {
                field: None,
                message: format!("an event must be a JSON object, not {}", json_kind(value)),
            });
        };
        Fields(obj).event()
    }

    /// Reads a line this program stored ([`Event::to_json_line`]): the same
    /// rules as [`Event::from_json`], without building a JSON tree first.
    pub fn from_stored(line: &str) -> Result<Event, EventError> {
        let fields: Stored<'_> = serde_json::from_str(line).map_err(|e| EventError {
            field: None,
            message: format!("invalid stored event: {e}"),
        })?;
        fields.event()
    }

    /// The event as one line of canonical JSON (for journals and replays).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("an event always serializes")
    }
}

/// The JSON type of a value, in words for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where an event's fields come from: a parsed JSON object (input, checked
/// field by field) or a stored line (our own output, read straight into a
/// struct). The rules of which fields each type has are written once, below.
trait FieldSource {
    /// A string field; `None` when absent or null.
    fn raw_str(&self, name: &str) -> Result<Option<&str>, EventError>;
    /// A boolean field; `None` when absent or null.
    fn raw_bool(&self, name: &str) -> Result<Option<bool>, EventError>;
    /// A list of strings; `None` when absent or null.
    fn raw_list(&self, name: &str) -> Result<Option<Vec<&str>>, EventError>;

    fn optional_str(&self, name: &str, max: usize) -> Result<Option<&str>, EventError> {
        match self.raw_str(name)? {
            Some(s) if s.len() > max => Err(EventError::field(
                name,
                format!("is {} bytes long; at most {max} are allowed", s.len()),
            )),
            other => Ok(other),
        }
    }

    fn required_str(&self, name: &str, max: usize) -> Result<&str, EventError> {
        match self.optional_str(name, max)? {
            None => Err(EventError::field(name, "is required")),
            Some("") => Err(EventError::field(name, "must not be empty")),
            Some(s) => Ok(s),
        }
    }

    fn optional_text(&self, name: &str) -> Result<Option<String>, EventError> {
        Ok(self.optional_str(name, MAX_TEXT_BYTES)?.map(str::to_owned))
    }

    fn text(&self, name: &str) -> Result<String, EventError> {
        Ok(self.required_str(name, MAX_TEXT_BYTES)?.to_owned())
    }

    fn id(&self, name: &str) -> Result<String, EventError> {
        Ok(self.required_str(name, MAX_ID_BYTES)?.to_owned())
    }

    /// An optional short string (1..=[`MAX_REASON_BYTES`]), such as a pause reason.
    fn reason(&self, name: &str) -> Result<Option<String>, EventError> {
        match self.optional_str(name, MAX_REASON_BYTES)? {
            Some("") => Err(EventError::field(name, "must not be empty")),
            other => Ok(other.map(str::to_owned)),
        }
    }

    fn optional_id(&self, name: &str) -> Result<Option<String>, EventError> {
        match self.optional_str(name, MAX_ID_BYTES)? {
            Some("") => Err(EventError::field(name, "must not be empty")),
            other => Ok(other.map(str::to_owned)),
        }
    }

    fn timestamp(&self, name: &str) -> Result<Timestamp, EventError> {
        let text = self.required_str(name, 64)?;
        text.parse::<Timestamp>().map_err(|_| {
            // Well-formed but past what a timestamp holds (`9999-12-31T23:59:59Z`
            // is valid RFC 3339): say so, rather than blame the syntax.
            let well_formed = jiff::fmt::temporal::Pieces::parse(text)
                .is_ok_and(|p| p.offset().is_some() && p.time().is_some());
            let why = if well_formed {
                "is out of range"
            } else {
                "is not an RFC 3339 timestamp with an offset or Z"
            };
            EventError::field(name, format!("{text:?} {why}"))
        })
    }

    fn bool(&self, name: &str) -> Result<bool, EventError> {
        Ok(self.raw_bool(name)?.unwrap_or(false))
    }

    /// An optional string that must be one of `choices`.
    fn choice<T: Copy>(&self, name: &str, choices: &[(&str, T)]) -> Result<Option<T>, EventError> {
        let Some(text) = self.optional_str(name, MAX_TEXT_BYTES)? else {
            return Ok(None);
        };
        match choices.iter().find(|(word, _)| *word == text) {
            Some((_, value)) => Ok(Some(*value)),
            None => {
                let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
                Err(EventError::field(
                    name,
                    format!("{text:?} is not one of {}", words.join(", ")),
                ))
            }
        }
    }

    fn queues(&self, name: &str) -> Result<Option<Vec<String>>, EventError> {
        let Some(items) = self.raw_list(name)? else {
            return Ok(None);
        };
        if items.len() > MAX_AGENT_QUEUES {
            return Err(EventError::field(
                name,
                format!("lists {} queues; at most {MAX_AGENT_QUEUES}", items.len()),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                if !item.is_empty() && item.len() <= MAX_TEXT_BYTES {
                    Ok((*item).to_owned())
                } else {
                    Err(EventError::field(
                        &format!("{name}[{i}]"),
                        "must be a non-empty string",
                    ))
                }
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// The whole event.
    fn event(&self) -> Result<Event, EventError> {
        let type_name = self.required_str("type", MAX_TEXT_BYTES)?;
        let at = self.timestamp("at")?;
        let id = self.optional_id("id")?;
        let kind = self.kind(type_name)?;
        let call = match kind {
            EventKind::AgentStatus { .. } => self.optional_id("call")?,
            _ => Some(self.id("call")?),
        };
        Ok(Event { id, call, at, kind })
    }

    fn kind(&self, type_name: &str) -> Result<EventKind, EventError> {
        Ok(match type_name {
            "call_started" => EventKind::CallStarted {
                direction: self
                    .choice(
                        "direction",
                        &[
                            ("inbound", Direction::Inbound),
                            ("outbound", Direction::Outbound),
                        ],
                    )?
                    .unwrap_or_default(),
                channel: self
                    .optional_text("channel")?
                    .unwrap_or_else(|| "voice".to_owned()),
                from: self.optional_text("from")?,
                to: self.optional_text("to")?,
                line: self.optional_text("line")?,
                dialer: self.bool("dialer")?,
            },
            "ivr_started" => EventKind::IvrStarted {
                menu: self.optional_text("menu")?,
            },
            "ivr_input" => EventKind::IvrInput {
                digits: self.optional_text("digits")?,
            },
            "closed" => EventKind::Closed,
            "self_served" => EventKind::SelfServed {
                how: self.optional_text("how")?,
            },
            "dead_end" => EventKind::DeadEnd,
            "queued" => EventKind::Queued {
                queue: self.text("queue")?,
            },
            "offered" => EventKind::Offered {
                agent: self.text("agent")?,
                queue: self.optional_text("queue")?,
            },
            "declined" => EventKind::Declined {
                agent: self.text("agent")?,
            },
            "answered" => EventKind::Answered {
                agent: self.text("agent")?,
            },
            "transferred" => EventKind::Transferred {
                to_queue: self.optional_text("to_queue")?,
                to_agent: self.optional_text("to_agent")?,
            },
            "voicemail" => EventKind::Voicemail,
            "callback_requested" => EventKind::CallbackRequested,
            "timed_out" => EventKind::TimedOut {
                queue: self.optional_text("queue")?,
            },
            "voicemail_dropped" => EventKind::VoicemailDropped,
            "ended" => EventKind::Ended {
                by: self
                    .choice(
                        "by",
                        &[
                            ("caller", EndedBy::Caller),
                            ("agent", EndedBy::Agent),
                            ("system", EndedBy::System),
                        ],
                    )?
                    .unwrap_or_default(),
            },
            "agent_status" => EventKind::AgentStatus {
                agent: self.text("agent")?,
                status: self
                    .choice("status", &AgentStatus::ALL.map(|s| (s.as_str(), s)))?
                    .ok_or_else(|| EventError::field("status", "is required"))?,
                queues: self.queues("queues")?,
                reason: self.reason("reason")?,
            },
            other => {
                return Err(EventError::field(
                    "type",
                    format!("unknown event type {other:?}"),
                ));
            }
        })
    }
}

/// The fields of a parsed JSON object.
struct Fields<'a>(&'a Map<String, Value>);

impl FieldSource for Fields<'_> {
    fn raw_str(&self, name: &str) -> Result<Option<&str>, EventError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(EventError::field(
                name,
                format!("must be a string, not {}", json_kind(other)),
            )),
        }
    }

    fn raw_bool(&self, name: &str) -> Result<Option<bool>, EventError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(EventError::field(
                name,
                format!("must be true or false, not {}", json_kind(other)),
            )),
        }
    }

    fn raw_list(&self, name: &str) -> Result<Option<Vec<&str>>, EventError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_str().ok_or_else(|| {
                        EventError::field(&format!("{name}[{i}]"), "must be a non-empty string")
                    })
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(other) => Err(EventError::field(
                name,
                format!("must be a list of strings, not {}", json_kind(other)),
            )),
        }
    }
}

/// A stored line read straight into its fields (borrowed where unescaped).
#[derive(serde::Deserialize)]
struct Stored<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    call: Option<Cow<'a, str>>,
    #[serde(borrow)]
    at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(borrow)]
    line: Option<Cow<'a, str>>,
    dialer: Option<bool>,
    #[serde(borrow)]
    menu: Option<Cow<'a, str>>,
    #[serde(borrow)]
    digits: Option<Cow<'a, str>>,
    #[serde(borrow)]
    how: Option<Cow<'a, str>>,
    #[serde(borrow)]
    queue: Option<Cow<'a, str>>,
    #[serde(borrow)]
    agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to_queue: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    by: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    queues: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
}

impl FieldSource for Stored<'_> {
    fn raw_str(&self, name: &str) -> Result<Option<&str>, EventError> {
        let field = match name {
            "type" => &self.kind,
            "id" => &self.id,
            "call" => &self.call,
            "at" => &self.at,
            "direction" => &self.direction,
            "channel" => &self.channel,
            "from" => &self.from,
            "to" => &self.to,
            "line" => &self.line,
            "menu" => &self.menu,
            "digits" => &self.digits,
            "how" => &self.how,
            "queue" => &self.queue,
            "agent" => &self.agent,
            "to_queue" => &self.to_queue,
            "to_agent" => &self.to_agent,
            "by" => &self.by,
            "status" => &self.status,
            "reason" => &self.reason,
            _ => return Ok(None),
        };
        Ok(field.as_deref())
    }

    fn raw_bool(&self, name: &str) -> Result<Option<bool>, EventError> {
        Ok(if name == "dialer" { self.dialer } else { None })
    }

    fn raw_list(&self, name: &str) -> Result<Option<Vec<&str>>, EventError> {
        Ok(match name {
            "queues" => self
                .queues
                .as_ref()
                .map(|q| q.iter().map(|s| &**s).collect()),
            _ => None,
        })
    }
}

/// An event of a call's history (the call id is the history's key).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// When it happened.
    pub at: Timestamp,
    /// Arrival order, the last tie-breaker of the sort.
    pub arrival: u64,
    /// What happened.
    pub kind: EventKind,
}

impl HistoryEvent {
    /// Its place in a call's history: time, then the kind's rank, then arrival.
    pub fn sort_key(&self) -> (Timestamp, u8, u64) {
        (self.at, self.kind.rank(), self.arrival)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Event, EventError> {
        Event::from_json(&v)
    }

    #[test]
    fn reads_every_type_and_round_trips() {
        let lines = [
            json!({"type":"call_started","call":"c","at":"2026-11-20T09:00:00Z","direction":"outbound","dialer":true,"from":"+44"}),
            json!({"type":"ivr_started","call":"c","at":"2026-11-20T09:00:00.5+01:00","menu":"main"}),
            json!({"type":"ivr_input","call":"c","at":"2026-11-20T09:00:00Z","digits":"1"}),
            json!({"type":"closed","call":"c","at":"2026-11-20T09:00:00Z"}),
            json!({"type":"self_served","call":"c","at":"2026-11-20T09:00:00Z","how":"sms"}),
            json!({"type":"dead_end","call":"c","at":"2026-11-20T09:00:00Z"}),
            json!({"type":"queued","call":"c","at":"2026-11-20T09:00:00Z","queue":"q"}),
            json!({"type":"offered","call":"c","at":"2026-11-20T09:00:00Z","agent":"a","queue":"q"}),
            json!({"type":"declined","call":"c","at":"2026-11-20T09:00:00Z","agent":"a"}),
            json!({"type":"answered","call":"c","at":"2026-11-20T09:00:00Z","agent":"a"}),
            json!({"type":"transferred","call":"c","at":"2026-11-20T09:00:00Z","to_queue":"q2"}),
            json!({"type":"voicemail","call":"c","at":"2026-11-20T09:00:00Z"}),
            json!({"type":"callback_requested","call":"c","at":"2026-11-20T09:00:00Z"}),
            json!({"type":"timed_out","call":"c","at":"2026-11-20T09:00:00Z","queue":"q"}),
            json!({"type":"voicemail_dropped","call":"c","at":"2026-11-20T09:00:00Z"}),
            json!({"type":"ended","call":"c","at":"2026-11-20T09:00:00Z","by":"system"}),
            json!({"type":"agent_status","at":"2026-11-20T09:00:00Z","agent":"a","status":"wrap_up","queues":["q"]}),
        ];
        for line in lines {
            let event = parse(line.clone()).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(event.kind.type_name(), line["type"]);
            let line = event.to_json_line();
            let again: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(parse(again).unwrap(), event);
            assert_eq!(Event::from_stored(&line).unwrap(), event, "{line}");
        }
    }

    #[test]
    fn timestamps_out_of_range_and_leap_seconds() {
        let at = |text: &str| parse(json!({"type":"closed","call":"c","at":text}));
        let far = at("9999-12-31T23:59:59Z").unwrap_err();
        assert_eq!(far.field.as_deref(), Some("at"));
        assert!(far.message.ends_with("is out of range"), "{far}");
        let junk = at("2026-12-31 noon").unwrap_err();
        assert!(junk.message.contains("not an RFC 3339"), "{junk}");
        // A leap second stays in its day: it reads as the last second of it.
        let leap = at("2026-12-31T23:59:60Z").unwrap();
        assert_eq!(
            leap.at,
            "2026-12-31T23:59:59Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn agent_status_takes_a_short_reason() {
        let away = |reason: Value| {
            parse(
                json!({"type":"agent_status","at":"2026-11-20T09:00:00Z","agent":"a","status":"away","reason":reason}),
            )
        };
        let e = away(json!("Lunch")).unwrap();
        assert!(
            matches!(e.kind, EventKind::AgentStatus { reason: Some(ref r), .. } if r == "Lunch")
        );
        let stored = Event::from_stored(&e.to_json_line()).unwrap();
        assert_eq!(stored, e, "the reason survives the store");
        for bad in [json!(""), json!("x".repeat(129)), json!(7)] {
            assert_eq!(away(bad).unwrap_err().field.as_deref(), Some("reason"));
        }
    }

    #[test]
    fn stored_lines_follow_the_same_rules() {
        let escaped =
            r#"{"type":"queued","call":"c\"1","at":"2026-11-20T09:00:00Z","queue":"caf\u00e9"}"#;
        let e = Event::from_stored(escaped).unwrap();
        assert_eq!(e.call.as_deref(), Some("c\"1"));
        assert_eq!(
            e.kind,
            EventKind::Queued {
                queue: "café".into()
            }
        );
        let missing = r#"{"type":"queued","call":"c","at":"2026-11-20T09:00:00Z"}"#;
        assert_eq!(
            Event::from_stored(missing).unwrap_err().field.as_deref(),
            Some("queue")
        );
        assert!(Event::from_stored("{").is_err());
    }

    #[test]
    fn defaults_and_extra_fields() {
        let e = parse(
            json!({"type":"call_started","call":"c","at":"2026-11-20T09:00:00Z","extra":{"x":1}}),
        )
        .unwrap();
        assert_eq!(
            e.kind,
            EventKind::CallStarted {
                direction: Direction::Inbound,
                channel: "voice".into(),
                from: None,
                to: None,
                line: None,
                dialer: false
            }
        );
        let e = parse(json!({"type":"ended","call":"c","at":"2026-11-20T09:00:00Z"})).unwrap();
        assert_eq!(
            e.kind,
            EventKind::Ended {
                by: EndedBy::Caller
            }
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!([]), None),
            (
                json!({"call":"c","at":"2026-11-20T09:00:00Z"}),
                Some("type"),
            ),
            (
                json!({"type":"nope","call":"c","at":"2026-11-20T09:00:00Z"}),
                Some("type"),
            ),
            (
                json!({"type":7,"call":"c","at":"2026-11-20T09:00:00Z"}),
                Some("type"),
            ),
            (json!({"type":"closed","call":"c"}), Some("at")),
            (
                json!({"type":"closed","call":"c","at":"2026-11-20 09:00"}),
                Some("at"),
            ),
            (
                json!({"type":"closed","call":"c","at":"2026-11-20T09:00:00"}),
                Some("at"),
            ),
            (
                json!({"type":"closed","at":"2026-11-20T09:00:00Z"}),
                Some("call"),
            ),
            (
                json!({"type":"closed","call":"","at":"2026-11-20T09:00:00Z"}),
                Some("call"),
            ),
            (
                json!({"type":"closed","call":"x".repeat(129),"at":"2026-11-20T09:00:00Z"}),
                Some("call"),
            ),
            (
                json!({"type":"closed","call":"c","id":5,"at":"2026-11-20T09:00:00Z"}),
                Some("id"),
            ),
            (
                json!({"type":"queued","call":"c","at":"2026-11-20T09:00:00Z"}),
                Some("queue"),
            ),
            (
                json!({"type":"offered","call":"c","at":"2026-11-20T09:00:00Z"}),
                Some("agent"),
            ),
            (
                json!({"type":"call_started","call":"c","at":"2026-11-20T09:00:00Z","direction":"sideways"}),
                Some("direction"),
            ),
            (
                json!({"type":"call_started","call":"c","at":"2026-11-20T09:00:00Z","dialer":"yes"}),
                Some("dialer"),
            ),
            (
                json!({"type":"ended","call":"c","at":"2026-11-20T09:00:00Z","by":"dog"}),
                Some("by"),
            ),
            (
                json!({"type":"agent_status","at":"2026-11-20T09:00:00Z","agent":"a"}),
                Some("status"),
            ),
            (
                json!({"type":"agent_status","at":"2026-11-20T09:00:00Z","agent":"a","status":"available","queues":[1]}),
                Some("queues[0]"),
            ),
        ];
        for (value, field) in cases {
            let err = parse(value.clone()).expect_err(&value.to_string());
            assert_eq!(err.field.as_deref(), field, "{value}: {err}");
        }
    }
}
