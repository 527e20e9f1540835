//! One call's history, kept sorted as events.md orders it, and what it is now:
//! live (with a state) or finished (with a verdict).

use jiff::Timestamp;

use crate::event::{EventKind, HistoryEvent};
use crate::outcome::{self, Outcome, Verdict};

/// The live state of an unfinished call (outcomes.md "Live boxes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LiveState {
    /// Nothing beyond the IVR events yet.
    InIvr,
    /// Waiting in a queue.
    Queued,
    /// Ringing an agent directly.
    Ringing,
    /// Talking to an agent.
    Talking,
    /// Anything else.
    Other,
}

impl LiveState {
    /// Every state, in display order.
    pub const ALL: [LiveState; 5] = [
        LiveState::Queued,
        LiveState::Ringing,
        LiveState::Talking,
        LiveState::InIvr,
        LiveState::Other,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LiveState::InIvr => "in_ivr",
            LiveState::Queued => "queued",
            LiveState::Ringing => "ringing",
            LiveState::Talking => "talking",
            LiveState::Other => "other",
        }
    }

    /// Position in [`LiveState::ALL`].
    pub fn index(self) -> usize {
        match self {
            LiveState::Queued => 0,
            LiveState::Ringing => 1,
            LiveState::Talking => 2,
            LiveState::InIvr => 3,
            LiveState::Other => 4,
        }
    }
}

/// Where an unfinished call is, after its last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// Its state.
    pub state: LiveState,
    /// The queue it is in or was last queued to.
    pub queue: Option<String>,
    /// When it entered its current state.
    pub since: Timestamp,
    /// The agent it rings or talks to.
    pub agent: Option<String>,
}

/// What a call is now.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Still going.
    Live(Live),
    /// Finished, at a time, with a verdict.
    Finished {
        /// The earliest `ended` (or the expiry instant).
        at: Timestamp,
        /// Outcome, wait, queue.
        verdict: Verdict,
    },
}

/// One call: its sorted history and whether the server expired it.
#[derive(Debug, Clone, Default)]
pub struct Call {
    history: Vec<HistoryEvent>,
    expired_at: Option<Timestamp>,
}

impl Call {
    /// Adds an event in its sorted place.
    pub fn insert(&mut self, event: HistoryEvent) {
        let key = event.sort_key();
        let pos = self.history.partition_point(|e| e.sort_key() <= key);
        self.history.insert(pos, event);
    }

    /// The events so far, sorted.
    pub fn history(&self) -> &[HistoryEvent] {
        &self.history
    }

    /// The latest `at` of its events.
    pub fn last_at(&self) -> Option<Timestamp> {
        self.history.last().map(|e| e.at)
    }

    /// The earliest `at` of its `ended` events.
    pub fn ended_at(&self) -> Option<Timestamp> {
        self.history
            .iter()
            .find(|e| matches!(e.kind, EventKind::Ended { .. }))
            .map(|e| e.at)
    }

    /// Marks an unfinished call as expired (stale) at `at`.
    pub fn expire(&mut self, at: Timestamp) {
        self.expired_at = Some(at);
    }

    /// What the call is now: finished with a verdict, or live with a state.
    pub fn status(&self) -> Status {
        if let Some(at) = self.ended_at() {
            return Status::Finished {
                at,
                verdict: outcome::decide(&self.history, at),
            };
        }
        if let Some(at) = self.expired_at {
            let verdict = Verdict {
                outcome: Outcome::Expired,
                wait_ms: None,
                ..outcome::decide(&self.history, at)
            };
            return Status::Finished { at, verdict };
        }
        Status::Live(live_state(&self.history))
    }
}

/// Runs the live-state machine over a sorted, unfinished history.
fn live_state(history: &[HistoryEvent]) -> Live {
    // Fold with borrowed names; own them once at the end (this runs on every event).
    let mut state = LiveState::InIvr;
    let mut since = history.first().map_or(Timestamp::UNIX_EPOCH, |e| e.at);
    let mut queue: Option<&str> = None;
    let mut agent: Option<&str> = None;
    for event in history {
        // Talking is "answered, with no transferred after that answer": only
        // a transfer, another answer or a new queue entry moves it.
        let moves_talking = matches!(
            event.kind,
            EventKind::Answered { .. } | EventKind::Transferred { .. } | EventKind::Queued { .. }
        );
        if state == LiveState::Talking && !moves_talking {
            continue;
        }
        let (next, next_agent) = match &event.kind {
            EventKind::CallStarted { .. }
            | EventKind::IvrStarted { .. }
            | EventKind::IvrInput { .. }
            | EventKind::Closed
            | EventKind::SelfServed { .. } => continue,
            EventKind::Queued { queue: q } => {
                queue = Some(q);
                (LiveState::Queued, None)
            }
            EventKind::Offered { agent: a, .. } => match state {
                LiveState::Queued => (LiveState::Queued, Some(a.as_str())),
                _ => (LiveState::Ringing, Some(a.as_str())),
            },
            // Routing goes on: still queued or ringing, but not at that agent.
            EventKind::Declined { .. } => match state {
                LiveState::Queued | LiveState::Ringing => (state, None),
                _ => (LiveState::Other, None),
            },
            EventKind::Answered { agent: a } => (LiveState::Talking, Some(a.as_str())),
            EventKind::Transferred { to_queue, to_agent } => match (to_queue, to_agent) {
                (Some(q), _) => {
                    queue = Some(q);
                    (LiveState::Queued, None)
                }
                (None, Some(a)) => (LiveState::Ringing, Some(a.as_str())),
                (None, None) => (LiveState::Other, None),
            },
            EventKind::TimedOut { .. }
            | EventKind::Voicemail
            | EventKind::CallbackRequested
            | EventKind::VoicemailDropped
            | EventKind::DeadEnd
            | EventKind::Ended { .. }
            | EventKind::AgentStatus { .. } => (LiveState::Other, None),
        };
        // `since` is the entry into the state; for a queue that is the latest
        // queue entry, which ringing agents within the queue do not move.
        let entered_queue = matches!(
            event.kind,
            EventKind::Queued { .. }
                | EventKind::Transferred {
                    to_queue: Some(_),
                    ..
                }
        );
        if next != state || entered_queue {
            since = event.at;
        }
        state = next;
        agent = next_agent;
    }
    Live {
        state,
        queue: queue.map(str::to_owned),
        since,
        agent: agent.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EndedBy;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn call(events: Vec<(i64, EventKind)>) -> Call {
        let mut call = Call::default();
        for (i, (s, kind)) in events.into_iter().enumerate() {
            call.insert(HistoryEvent {
                at: at(s),
                arrival: i as u64,
                kind,
            });
        }
        call
    }

    #[test]
    fn a_decline_leaves_the_agent_but_not_the_queue() {
        let c = call(vec![
            (0, EventKind::Queued { queue: "q".into() }),
            (
                3,
                EventKind::Offered {
                    agent: "a".into(),
                    queue: None,
                },
            ),
            (5, EventKind::Declined { agent: "a".into() }),
        ]);
        let Status::Live(live) = c.status() else {
            panic!()
        };
        assert_eq!(
            (live.state, live.agent, live.since),
            (LiveState::Queued, None, at(0))
        );
    }

    fn state_of(events: Vec<(i64, EventKind)>) -> (LiveState, Option<String>, Timestamp) {
        match call(events).status() {
            Status::Live(live) => (live.state, live.queue, live.since),
            other => panic!("not live: {other:?}"),
        }
    }

    #[test]
    fn sorts_by_time_then_rank_then_arrival() {
        let c = call(vec![
            (
                5,
                EventKind::Ended {
                    by: EndedBy::Caller,
                },
            ),
            (5, EventKind::Answered { agent: "a".into() }),
            (1, EventKind::Queued { queue: "q".into() }),
            (1, EventKind::Queued { queue: "r".into() }),
        ]);
        let names: Vec<_> = c.history().iter().map(|e| e.kind.type_name()).collect();
        assert_eq!(names, ["queued", "queued", "answered", "ended"]);
        assert_eq!(c.history()[0].kind, EventKind::Queued { queue: "q".into() });
    }

    #[test]
    fn live_states() {
        use EventKind as K;
        let q = |n: &str| K::Queued { queue: n.into() };
        let offered = || K::Offered {
            agent: "a".into(),
            queue: None,
        };
        type Journey = Vec<(i64, K)>;
        let cases: Vec<(Journey, LiveState, Option<&str>, i64)> = vec![
            (
                vec![(0, K::IvrStarted { menu: None }), (3, K::Closed)],
                LiveState::InIvr,
                None,
                0,
            ),
            (
                vec![
                    (0, q("x")),
                    (4, offered()),
                    (6, K::Declined { agent: "a".into() }),
                ],
                LiveState::Queued,
                Some("x"),
                0,
            ),
            (vec![(0, offered())], LiveState::Ringing, None, 0),
            (
                vec![(0, q("x")), (4, K::Answered { agent: "a".into() })],
                LiveState::Talking,
                Some("x"),
                4,
            ),
            (
                vec![
                    (0, q("x")),
                    (4, K::Answered { agent: "a".into() }),
                    (
                        9,
                        K::Transferred {
                            to_queue: Some("y".into()),
                            to_agent: None,
                        },
                    ),
                ],
                LiveState::Queued,
                Some("y"),
                9,
            ),
            (
                vec![
                    (0, K::Answered { agent: "a".into() }),
                    (
                        9,
                        K::Transferred {
                            to_queue: None,
                            to_agent: Some("b".into()),
                        },
                    ),
                ],
                LiveState::Ringing,
                None,
                9,
            ),
            (
                vec![
                    (0, K::Answered { agent: "a".into() }),
                    (
                        9,
                        K::Transferred {
                            to_queue: None,
                            to_agent: None,
                        },
                    ),
                ],
                LiveState::Other,
                None,
                9,
            ),
            (
                vec![(0, q("x")), (9, K::TimedOut { queue: None })],
                LiveState::Other,
                Some("x"),
                9,
            ),
            (
                vec![(0, q("x")), (9, K::TimedOut { queue: None }), (10, q("y"))],
                LiveState::Queued,
                Some("y"),
                10,
            ),
            (
                vec![(0, q("x")), (9, K::Voicemail)],
                LiveState::Other,
                Some("x"),
                9,
            ),
            (vec![(0, K::DeadEnd)], LiveState::Other, None, 0),
            (
                vec![
                    (0, q("x")),
                    (4, K::Answered { agent: "a".into() }),
                    (6, offered()),
                    (7, K::Declined { agent: "a".into() }),
                ],
                LiveState::Talking,
                Some("x"),
                4,
            ),
            (
                vec![(0, K::Answered { agent: "a".into() }), (6, K::Voicemail)],
                LiveState::Talking,
                None,
                0,
            ),
        ];
        for (events, state, queue, since) in cases {
            let desc = format!("{events:?}");
            assert_eq!(
                state_of(events),
                (state, queue.map(Into::into), at(since)),
                "{desc}"
            );
        }
    }

    #[test]
    fn finishing_time_is_the_earliest_ended() {
        let c = call(vec![
            (0, EventKind::Queued { queue: "q".into() }),
            (
                50,
                EventKind::Ended {
                    by: EndedBy::Caller,
                },
            ),
            (
                40,
                EventKind::Ended {
                    by: EndedBy::System,
                },
            ),
        ]);
        let Status::Finished {
            at: finished,
            verdict,
        } = c.status()
        else {
            panic!()
        };
        assert_eq!(finished, at(40));
        assert_eq!(verdict.wait_ms, Some(40_000));
    }

    #[test]
    fn expiry_finishes_until_a_real_end_arrives() {
        let mut c = call(vec![(0, EventKind::Queued { queue: "q".into() })]);
        c.expire(at(100));
        let Status::Finished { verdict, .. } = c.status() else {
            panic!()
        };
        assert_eq!(verdict.outcome, Outcome::Expired);
        c.insert(HistoryEvent {
            at: at(120),
            arrival: 9,
            kind: EventKind::Ended {
                by: EndedBy::Caller,
            },
        });
        let Status::Finished { verdict, .. } = c.status() else {
            panic!()
        };
        assert_eq!(verdict.outcome, Outcome::QueueAbandoned);
    }
}
