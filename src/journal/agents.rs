//! Reads back what the agents' day folds (see [`crate::agents_day`]): at a
//! restart, today's offers, declines, answers, transfers and ends, and the
//! agents' status changes since the lookback before the day's start. A call's
//! id and time are columns; of the stored line only the type and the agent
//! are read, which keeps this pass over the day's events short.

use std::borrow::Cow;

use jiff::Timestamp;
use serde::Deserialize;

use super::{Journal, JournalError, from_ms, ms};
use crate::agents_day::{CallMark, Input};
use crate::event::AgentStatus;

/// The fields of a stored line the agents' day needs.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
}

/// The `type` of a stored line: canonical JSON, where `"type":"` can only be
/// the key (a quote inside a string value is escaped).
fn type_of(line: &str) -> Option<&str> {
    const KEY: &str = "\"type\":\"";
    let rest = &line[line.find(KEY)? + KEY.len()..];
    rest.get(..rest.find('"')?)
}

impl Journal {
    /// The seq of the last event appended (0 if none).
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Calls `each`, in arrival order, with what every event up to seq
    /// `through` dated `from` or later tells the agents' day (a call's events
    /// only if dated `calls_from` or later); returns how many it read.
    pub fn agents_day_since(
        &self,
        from: Timestamp,
        calls_from: Timestamp,
        through: i64,
        mut each: impl FnMut(Input<'_>),
    ) -> Result<u64, JournalError> {
        let e = self.sqlite();
        // Every event dated `from` or later has a seq at or after this one.
        let first: Option<i64> = self
            .conn
            .query_row(
                "SELECT min(seq) FROM events INDEXED BY events_at WHERE at_ms >= ?1",
                [ms(from)],
                |r| r.get(0),
            )
            .map_err(&e)?;
        let Some(first) = first else { return Ok(0) };
        let mut scan = self
            .conn
            .prepare(
                "SELECT seq, at_ms, call, body FROM events
                 WHERE seq >= ?1 AND seq <= ?3 AND at_ms >= ?2 ORDER BY seq",
            )
            .map_err(&e)?;
        let mut rows = scan.query([first, ms(from), through]).map_err(&e)?;
        let mut read = 0u64;
        while let Some(row) = rows.next().map_err(&e)? {
            let seq: i64 = row.get(0).map_err(&e)?;
            let at_ms: i64 = row.get(1).map_err(&e)?;
            let call = row.get_ref(2).map_err(&e)?.as_str_or_null().ok().flatten();
            if call.is_some() && at_ms < ms(calls_from) {
                continue;
            }
            let bad = |message: String| JournalError::BadRow {
                path: self.path.clone(),
                seq,
                message,
            };
            let body = row
                .get_ref(3)
                .map_err(&e)?
                .as_str()
                .map_err(|err| bad(err.to_string()))?;
            let Some(kind) = type_of(body) else {
                return Err(bad("no type".into()));
            };
            if !matches!(
                kind,
                "offered" | "declined" | "answered" | "transferred" | "ended" | "agent_status"
            ) {
                continue;
            }
            let fields: Fields<'_> = match kind {
                "ended" => Fields {
                    agent: None,
                    to_agent: None,
                    status: None,
                },
                _ => serde_json::from_str(body).map_err(|err| bad(err.to_string()))?,
            };
            let at = from_ms(at_ms);
            let agent = fields.agent.as_deref();
            let need = |what: &str| bad(format!("{kind} without {what}"));
            let input = match (call, kind) {
                (None, _) => {
                    let status = fields.status.as_deref().unwrap_or_default();
                    Input::Status {
                        agent: agent.ok_or_else(|| need("agent"))?,
                        at,
                        status: AgentStatus::ALL
                            .into_iter()
                            .find(|s| s.as_str() == status)
                            .ok_or_else(|| need("a known status"))?,
                    }
                }
                (Some(call), _) => {
                    let agent = || agent.ok_or_else(|| need("agent"));
                    let mark = match kind {
                        "offered" => CallMark::Offered(agent()?),
                        "declined" => CallMark::Declined(agent()?),
                        "answered" => CallMark::Answered(agent()?),
                        "transferred" => CallMark::Transferred(fields.to_agent.as_deref()),
                        _ => CallMark::Ended,
                    };
                    Input::Call { call, at, mark }
                }
            };
            read += 1;
            each(input);
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::type_of;
    use crate::event::Event;

    #[test]
    fn the_type_of_a_stored_line() {
        let event = Event::from_json(&serde_json::json!({
            "type": "answered", "call": "c\"type\":\"ended\"", "at": "2026-11-20T09:00:00Z",
            "agent": "\"type\":\"x\"",
        }))
        .unwrap();
        assert_eq!(type_of(&event.to_json_line()), Some("answered"));
        assert_eq!(type_of("{}"), None);
    }
}
