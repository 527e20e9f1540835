//! The outcome of a finished call and its wait, by the rules of `spec/outcomes.md` step 1.

use jiff::Timestamp;

use crate::event::{Direction, EventKind, HistoryEvent};

/// What happened to a finished call (not how a vendor names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Routed to a destination the site ignores.
    DeadEnd,
    /// Answered, then transferred, and never answered again.
    TransferAbandoned,
    /// An agent answered.
    Answered,
    /// The caller asked to be called back.
    Callback,
    /// The caller went to voicemail.
    Voicemail,
    /// The queue's maximum wait took the caller out.
    TimedOut,
    /// The caller hung up while queued.
    QueueAbandoned,
    /// Rang a user directly, who did not answer.
    DirectMissed,
    /// Served by SMS or recorded information.
    SelfServed,
    /// Called while the site was closed.
    Closed,
    /// Hung up in the IVR after choosing something.
    IvrDropped,
    /// Hung up in the welcome audio or IVR (or there was no IVR).
    IvrAbandoned,
    /// Outbound: a pre-recorded voicemail was dropped.
    OutboundVoicemailDropped,
    /// Outbound: the callee answered.
    OutboundConnected,
    /// Outbound: a dialer call nobody answered.
    OutboundNoAnswer,
    /// Outbound: the agent gave up.
    OutboundCanceled,
    /// No event for `stale_after` while unfinished (server only).
    Expired,
}

impl Outcome {
    /// Every outcome, in a fixed order (used as an array index).
    pub const ALL: [Outcome; 17] = [
        Outcome::DeadEnd,
        Outcome::TransferAbandoned,
        Outcome::Answered,
        Outcome::Callback,
        Outcome::Voicemail,
        Outcome::TimedOut,
        Outcome::QueueAbandoned,
        Outcome::DirectMissed,
        Outcome::SelfServed,
        Outcome::Closed,
        Outcome::IvrDropped,
        Outcome::IvrAbandoned,
        Outcome::OutboundVoicemailDropped,
        Outcome::OutboundConnected,
        Outcome::OutboundNoAnswer,
        Outcome::OutboundCanceled,
        Outcome::Expired,
    ];

    /// How many outcomes there are.
    pub const COUNT: usize = Outcome::ALL.len();

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::DeadEnd => "dead_end",
            Outcome::TransferAbandoned => "transfer_abandoned",
            Outcome::Answered => "answered",
            Outcome::Callback => "callback",
            Outcome::Voicemail => "voicemail",
            Outcome::TimedOut => "timed_out",
            Outcome::QueueAbandoned => "queue_abandoned",
            Outcome::DirectMissed => "direct_missed",
            Outcome::SelfServed => "self_served",
            Outcome::Closed => "closed",
            Outcome::IvrDropped => "ivr_dropped",
            Outcome::IvrAbandoned => "ivr_abandoned",
            Outcome::OutboundVoicemailDropped => "outbound_voicemail_dropped",
            Outcome::OutboundConnected => "outbound_connected",
            Outcome::OutboundNoAnswer => "outbound_no_answer",
            Outcome::OutboundCanceled => "outbound_canceled",
            Outcome::Expired => "expired",
        }
    }

    /// Reads a wire name.
    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// Position in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this is one of the four outbound outcomes.
    pub fn is_outbound(self) -> bool {
        matches!(
            self,
            Outcome::OutboundVoicemailDropped
                | Outcome::OutboundConnected
                | Outcome::OutboundNoAnswer
                | Outcome::OutboundCanceled
        )
    }
}

/// The result of classifying a finished call.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Its outcome.
    pub outcome: Outcome,
    /// Its wait in milliseconds, where the outcome has one.
    pub wait_ms: Option<i64>,
    /// Whether a `queued` or an `offered` is known.
    pub reached_staff: bool,
    /// The queue of its last `queued` (or `transferred` `to_queue`).
    pub queue: Option<String>,
    /// The agent of its last `answered`, else of its last `offered`.
    pub agent: Option<String>,
    /// The caller's number (`from` of its `call_started`).
    pub caller: Option<String>,
    /// When it started, queued and was answered (for exports).
    pub times: CallTimes,
}

/// The moments of a call that exports show beside its finishing time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallTimes {
    /// Its first `call_started`, else its earliest event.
    pub started_at: Option<Timestamp>,
    /// Its first `queued`.
    pub queued_at: Option<Timestamp>,
    /// Its first `answered`.
    pub answered_at: Option<Timestamp>,
}

/// Facts gathered in one pass over a sorted history.
#[derive(Default)]
struct Facts {
    outbound: bool,
    dialer: bool,
    seen_call_started: bool,
    started_at: Option<Timestamp>,
    dead_end: bool,
    voicemail_dropped: bool,
    self_served: bool,
    closed: bool,
    ivr_input: bool,
    first_answered: Option<usize>,
    last_answered: Option<usize>,
    last_transferred: Option<usize>,
    first_queued: Option<Timestamp>,
    first_offered: Option<Timestamp>,
    /// First `queued` or `offered` (either), by position.
    first_reach: Option<(usize, Timestamp)>,
    first_timed_out: Option<Timestamp>,
    first_voicemail: Option<Timestamp>,
    first_callback: Option<Timestamp>,
    last_queue: Option<usize>,
    last_agent: Option<usize>,
    last_answered_agent: Option<usize>,
    caller: Option<usize>,
}

impl Facts {
    fn gather(history: &[HistoryEvent]) -> Facts {
        let mut f = Facts::default();
        for (i, event) in history.iter().enumerate() {
            let at = event.at;
            match &event.kind {
                EventKind::CallStarted {
                    direction,
                    dialer,
                    from,
                    ..
                } if !f.seen_call_started => {
                    f.seen_call_started = true;
                    f.started_at = Some(at);
                    f.outbound = *direction == Direction::Outbound;
                    f.dialer = *dialer;
                    f.caller = from.as_ref().map(|_| i);
                }
                EventKind::DeadEnd => f.dead_end = true,
                EventKind::VoicemailDropped => f.voicemail_dropped = true,
                EventKind::SelfServed { .. } => f.self_served = true,
                EventKind::Closed => f.closed = true,
                EventKind::IvrInput { .. } => f.ivr_input = true,
                EventKind::Answered { .. } => {
                    f.first_answered.get_or_insert(i);
                    f.last_answered = Some(i);
                    f.last_answered_agent = Some(i);
                }
                EventKind::Transferred { to_queue, .. } => {
                    f.last_transferred = Some(i);
                    if to_queue.is_some() {
                        f.last_queue = Some(i);
                    }
                }
                EventKind::Queued { .. } => {
                    f.first_queued.get_or_insert(at);
                    f.first_reach.get_or_insert((i, at));
                    f.last_queue = Some(i);
                }
                EventKind::Offered { .. } => {
                    f.first_offered.get_or_insert(at);
                    f.first_reach.get_or_insert((i, at));
                    f.last_agent = Some(i);
                }
                EventKind::TimedOut { .. } => {
                    f.first_timed_out.get_or_insert(at);
                }
                EventKind::Voicemail => {
                    f.first_voicemail.get_or_insert(at);
                }
                EventKind::CallbackRequested => {
                    f.first_callback.get_or_insert(at);
                }
                _ => {}
            }
        }
        f
    }

    fn reached_staff(&self) -> bool {
        self.first_reach.is_some()
    }

    fn outcome(&self) -> Outcome {
        if self.outbound {
            return if self.voicemail_dropped {
                Outcome::OutboundVoicemailDropped
            } else if self.first_answered.is_some() {
                Outcome::OutboundConnected
            } else if self.dialer {
                Outcome::OutboundNoAnswer
            } else {
                Outcome::OutboundCanceled
            };
        }
        if self.dead_end {
            Outcome::DeadEnd
        } else if let Some(last_answered) = self.last_answered {
            if self.last_transferred.is_some_and(|t| t > last_answered) {
                Outcome::TransferAbandoned
            } else {
                Outcome::Answered
            }
        } else if self.first_callback.is_some() {
            Outcome::Callback
        } else if self.first_voicemail.is_some() {
            Outcome::Voicemail
        } else if self.first_timed_out.is_some() {
            Outcome::TimedOut
        } else if self.first_queued.is_some() {
            Outcome::QueueAbandoned
        } else if self.first_offered.is_some() {
            Outcome::DirectMissed
        } else if self.self_served {
            Outcome::SelfServed
        } else if self.closed {
            Outcome::Closed
        } else if self.ivr_input {
            Outcome::IvrDropped
        } else {
            Outcome::IvrAbandoned
        }
    }

    /// The wait table of outcomes.md; `None` where the outcome has no wait
    /// or the starting event is missing.
    fn wait_ms(
        &self,
        outcome: Outcome,
        history: &[HistoryEvent],
        finished_at: Timestamp,
    ) -> Option<i64> {
        let span =
            |from: Option<Timestamp>, to: Option<Timestamp>| Some(millis_between(from?, to?));
        let reach = self.first_reach.map(|(_, at)| at);
        match outcome {
            Outcome::Answered | Outcome::TransferAbandoned => {
                let answered = self.first_answered?;
                match self.first_reach {
                    Some((i, from)) if i < answered => span(Some(from), Some(history[answered].at)),
                    _ => Some(0),
                }
            }
            Outcome::QueueAbandoned => span(self.first_queued, Some(finished_at)),
            Outcome::TimedOut => span(self.first_queued, self.first_timed_out),
            Outcome::Voicemail => span(reach, self.first_voicemail),
            Outcome::Callback => span(reach, self.first_callback),
            Outcome::DirectMissed => span(self.first_offered, Some(finished_at)),
            _ => None,
        }
    }
}

/// Whole milliseconds from `from` to `to` (rounded), never negative.
pub fn millis_between(from: Timestamp, to: Timestamp) -> i64 {
    let nanos = to.as_nanosecond() - from.as_nanosecond();
    let millis = (nanos + 500_000).div_euclid(1_000_000);
    i64::try_from(millis.max(0)).unwrap_or(i64::MAX)
}

/// Decides how a finished call ended (its verdict) from its history, sorted as events.md says.
pub fn decide(history: &[HistoryEvent], finished_at: Timestamp) -> Verdict {
    let facts = Facts::gather(history);
    let outcome = facts.outcome();
    Verdict {
        outcome,
        wait_ms: facts.wait_ms(outcome, history, finished_at),
        reached_staff: facts.reached_staff(),
        queue: facts
            .last_queue
            .and_then(|i| queue_named_by(&history[i].kind)),
        agent: facts
            .last_answered_agent
            .or(facts.last_agent)
            .and_then(|i| agent_named_by(&history[i].kind)),
        caller: facts.caller.and_then(|i| match &history[i].kind {
            EventKind::CallStarted { from, .. } => from.clone(),
            _ => None,
        }),
        times: CallTimes {
            started_at: facts.started_at.or(history.first().map(|e| e.at)),
            queued_at: facts.first_queued,
            answered_at: facts.first_answered.map(|i| history[i].at),
        },
    }
}

fn agent_named_by(kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::Answered { agent } | EventKind::Offered { agent, .. } => Some(agent.clone()),
        _ => None,
    }
}

fn queue_named_by(kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::Queued { queue } => Some(queue.clone()),
        EventKind::Transferred { to_queue, .. } => to_queue.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::HistoryEvent;
    use crate::event::{EndedBy, EventKind as K};

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn started(direction: Direction, dialer: bool) -> K {
        K::CallStarted {
            direction,
            channel: "voice".into(),
            from: None,
            to: None,
            line: None,
            dialer,
        }
    }

    fn queued(q: &str) -> K {
        K::Queued { queue: q.into() }
    }
    fn offered() -> K {
        K::Offered {
            agent: "a".into(),
            queue: None,
        }
    }
    fn answered() -> K {
        K::Answered { agent: "a".into() }
    }
    fn transferred(to_queue: Option<&str>) -> K {
        K::Transferred {
            to_queue: to_queue.map(Into::into),
            to_agent: None,
        }
    }
    fn ended() -> K {
        K::Ended {
            by: EndedBy::Caller,
        }
    }

    /// Runs a journey given as (second, kind) in order; the call ends at its last `ended`.
    fn run(journey: Vec<(i64, K)>) -> Verdict {
        let history: Vec<HistoryEvent> = journey
            .into_iter()
            .enumerate()
            .map(|(i, (s, kind))| HistoryEvent {
                at: at(s),
                arrival: i as u64,
                kind,
            })
            .collect();
        let finished = history
            .iter()
            .filter(|e| matches!(e.kind, K::Ended { .. }))
            .map(|e| e.at)
            .min()
            .expect("journey ends");
        decide(&history, finished)
    }

    #[test]
    fn each_rule_in_order() {
        use Direction::{Inbound, Outbound};
        type Journey = Vec<(i64, K)>;
        let cases: Vec<(&str, Journey, Outcome, Option<i64>)> = vec![
            (
                "O1 dropped beats answered",
                vec![
                    (0, started(Outbound, false)),
                    (1, answered()),
                    (2, K::VoicemailDropped),
                    (3, ended()),
                ],
                Outcome::OutboundVoicemailDropped,
                None,
            ),
            (
                "O2 connected",
                vec![(0, started(Outbound, true)), (1, answered()), (3, ended())],
                Outcome::OutboundConnected,
                None,
            ),
            (
                "O3 dialer no answer",
                vec![(0, started(Outbound, true)), (3, ended())],
                Outcome::OutboundNoAnswer,
                None,
            ),
            (
                "O4 canceled",
                vec![(0, started(Outbound, false)), (3, ended())],
                Outcome::OutboundCanceled,
                None,
            ),
            (
                "1 dead end beats answered",
                vec![
                    (0, started(Inbound, false)),
                    (1, answered()),
                    (2, K::DeadEnd),
                    (3, ended()),
                ],
                Outcome::DeadEnd,
                None,
            ),
            (
                "2 transfer abandoned",
                vec![
                    (0, queued("q")),
                    (10, answered()),
                    (20, transferred(Some("r"))),
                    (30, ended()),
                ],
                Outcome::TransferAbandoned,
                Some(10_000),
            ),
            (
                "3 answered after transfer",
                vec![
                    (0, queued("q")),
                    (10, answered()),
                    (20, transferred(None)),
                    (25, answered()),
                    (30, ended()),
                ],
                Outcome::Answered,
                Some(10_000),
            ),
            (
                "3 answered without reach waits 0",
                vec![(0, started(Inbound, false)), (4, answered()), (30, ended())],
                Outcome::Answered,
                Some(0),
            ),
            (
                "4 callback beats voicemail",
                vec![
                    (0, queued("q")),
                    (5, K::Voicemail),
                    (7, K::CallbackRequested),
                    (30, ended()),
                ],
                Outcome::Callback,
                Some(7_000),
            ),
            (
                "5 voicemail unreached has no wait",
                vec![
                    (0, K::IvrInput { digits: None }),
                    (5, K::Voicemail),
                    (30, ended()),
                ],
                Outcome::Voicemail,
                None,
            ),
            (
                "6 timed out",
                vec![
                    (0, queued("q")),
                    (300, K::TimedOut { queue: None }),
                    (301, ended()),
                ],
                Outcome::TimedOut,
                Some(300_000),
            ),
            (
                "6 timed out without queued",
                vec![
                    (0, offered()),
                    (300, K::TimedOut { queue: None }),
                    (301, ended()),
                ],
                Outcome::TimedOut,
                None,
            ),
            (
                "7 queue abandoned",
                vec![(0, queued("q")), (5, offered()), (12, ended())],
                Outcome::QueueAbandoned,
                Some(12_000),
            ),
            (
                "8 direct missed",
                vec![(2, offered()), (12, ended())],
                Outcome::DirectMissed,
                Some(10_000),
            ),
            (
                "9 self served beats closed",
                vec![
                    (0, K::Closed),
                    (2, K::SelfServed { how: None }),
                    (12, ended()),
                ],
                Outcome::SelfServed,
                None,
            ),
            (
                "10 closed",
                vec![
                    (0, K::Closed),
                    (2, K::IvrInput { digits: None }),
                    (12, ended()),
                ],
                Outcome::Closed,
                None,
            ),
            (
                "11 ivr dropped",
                vec![
                    (0, K::IvrStarted { menu: None }),
                    (2, K::IvrInput { digits: None }),
                    (12, ended()),
                ],
                Outcome::IvrDropped,
                None,
            ),
            (
                "12 ivr abandoned",
                vec![(0, started(Inbound, false)), (12, ended())],
                Outcome::IvrAbandoned,
                None,
            ),
            (
                "negative wait is 0",
                vec![(10, queued("q")), (10, ended()), (5, ended())],
                Outcome::QueueAbandoned,
                Some(0),
            ),
        ];
        for (name, journey, outcome, wait) in cases {
            let verdict = run(journey);
            assert_eq!(
                (verdict.outcome, verdict.wait_ms),
                (outcome, wait),
                "{name}"
            );
        }
    }

    #[test]
    fn queue_attribution_is_the_last_queue_entry() {
        let v = run(vec![
            (0, queued("a")),
            (5, queued("b")),
            (6, answered()),
            (9, transferred(Some("c"))),
            (12, ended()),
        ]);
        assert_eq!(v.queue.as_deref(), Some("c"));
        assert!(v.reached_staff);
        let v = run(vec![(0, offered()), (12, ended())]);
        assert_eq!(v.queue, None);
    }

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_name(o.as_str()), Some(o));
            assert_eq!(Outcome::ALL[o.index()], o);
        }
    }

    #[test]
    fn millis_round_and_clamp() {
        let t = at(0);
        let later = Timestamp::from_nanosecond(t.as_nanosecond() + 29_999_400_000).unwrap();
        assert_eq!(millis_between(t, later), 29_999);
        assert_eq!(millis_between(later, t), 0);
    }

    #[test]
    fn times_are_the_first_start_queue_and_answer() {
        use Direction::Inbound;
        let full = run(vec![
            (0, started(Inbound, false)),
            (5, queued("q")),
            (8, offered()),
            (10, answered()),
            (20, transferred(Some("r"))),
            (25, queued("r")),
            (30, answered()),
            (40, ended()),
        ]);
        assert_eq!(
            full.times,
            CallTimes {
                started_at: Some(at(0)),
                queued_at: Some(at(5)),
                answered_at: Some(at(10)),
            }
        );
        // No `call_started`: the call started with its earliest event.
        let bare = run(vec![(3, queued("q")), (9, ended())]);
        assert_eq!(
            bare.times,
            CallTimes {
                started_at: Some(at(3)),
                queued_at: Some(at(3)),
                answered_at: None,
            }
        );
    }
}
