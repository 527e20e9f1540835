//! The built-in simulated call centre behind `wallboard serve --demo`: agents,
//! queues, an IVR and callers with patience, fed through `Hub::ingest` like
//! any real source. [`Simulator`] knows no clock (time comes in as a value);
//! [`run`] drives it from the wall clock.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tokio::time::MissedTickBehavior;

use crate::event::{AgentStatus, Direction, EndedBy, Event, EventKind};
use crate::source::{Context, SourceState};

/// How often the demo hands the events that fell due to the hub.
pub const STEP_EVERY: Duration = Duration::from_millis(250);

/// The scripted opening (every outcome once) runs this long before random traffic starts.
const OPENING_SECS: f64 = 120.0;
/// No breaks before this, so the opening meets the staffing its script expects.
const FIRST_BREAK_SECS: f64 = 300.0;
/// Mean time between an agent's breaks.
const BREAK_GAP_MEAN_SECS: f64 = 1500.0;
/// At most this many agents on a break (away or logged off) at once.
const MAX_ON_BREAK: usize = 2;
/// New inbound calls per minute by the site's local hour: busiest mid-morning
/// and mid-afternoon, never quiet, so the board stays lively round the clock.
const CALLS_PER_MIN_BY_HOUR: [f64; 24] = [
    4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.5, 5.5, 6.5, 7.0, 6.5, // 00-11
    5.5, 5.5, 6.5, 6.0, 5.5, 5.0, 4.5, 4.0, 4.0, 4.0, 4.0, 4.0, // 12-23
];
/// Talk time is lognormal: the bank data's shape (median 110 s, mean 184 s,
/// so sigma ≈ 1) scaled by about 0.7 so the board moves.
const TALK_MEDIAN_SECS: f64 = 75.0;
const TALK_SIGMA: f64 = 1.0;
/// Mean patience of a queued caller before hanging up.
const PATIENCE_MEAN_SECS: f64 = 180.0;
/// Mean patience of a caller after a transfer (they already waited once).
const TRANSFERRED_PATIENCE_MEAN_SECS: f64 = 90.0;
/// Mean gaps between outbound calls placed by agents, and by the dialer.
const OUTBOUND_GAP_MEAN_SECS: f64 = 150.0;
const DIALER_GAP_MEAN_SECS: f64 = 200.0;
/// An unanswered offer rings this long before routing moves on.
const NO_ANSWER_RING_SECS: f64 = 15.0;
/// A direct line rings this long before its voicemail takes the call.
const DIRECT_RING_SECS: f64 = 20.0;
/// Share of unanswered offers after which the agent is set away (not at the desk).
const AWAY_AFTER_NO_ANSWER: f64 = 0.5;
/// The site's own number, for outbound calls (Ofcom drama range).
const SITE_NUMBER: &str = "+44 1632 960000";

/// A queue, the IVR digit that reaches it, its maximum wait and its share of callers.
struct QueueSpec {
    name: &'static str,
    digits: &'static str,
    max_wait_secs: f64,
    weight: f64,
}

const APPOINTMENTS: usize = 0;
const RESULTS: usize = 1;
const PRESCRIPTIONS: usize = 2;
const RECEPTION: usize = 3;

const QUEUES: [QueueSpec; 4] = [
    QueueSpec {
        name: "appointments",
        digits: "1",
        max_wait_secs: 270.0,
        weight: 0.42,
    },
    QueueSpec {
        name: "results",
        digits: "2",
        max_wait_secs: 270.0,
        weight: 0.20,
    },
    QueueSpec {
        name: "prescriptions",
        digits: "3",
        max_wait_secs: 240.0,
        weight: 0.23,
    },
    QueueSpec {
        name: "reception",
        digits: "0",
        max_wait_secs: 120.0,
        weight: 0.15,
    },
];

/// Agents and the queues they serve. Reception is served by the first three
/// only: the opening keeps them busy, which makes its queue outcomes certain.
const AGENTS: [(&str, &[usize]); 14] = [
    ("amy", &[RECEPTION, APPOINTMENTS]),
    ("bob", &[RECEPTION, APPOINTMENTS]),
    ("cat", &[RECEPTION, APPOINTMENTS]),
    ("dan", &[APPOINTMENTS, PRESCRIPTIONS]),
    ("eve", &[APPOINTMENTS, PRESCRIPTIONS]),
    ("fay", &[APPOINTMENTS, PRESCRIPTIONS]),
    ("gus", &[APPOINTMENTS, PRESCRIPTIONS]),
    ("hal", &[RESULTS, APPOINTMENTS]),
    ("ivy", &[RESULTS, APPOINTMENTS]),
    ("jon", &[RESULTS, APPOINTMENTS]),
    ("kay", &[RESULTS, APPOINTMENTS]),
    ("lee", &[PRESCRIPTIONS, RESULTS, APPOINTMENTS]),
    ("max", &[PRESCRIPTIONS, RESULTS, APPOINTMENTS]),
    ("ned", &[PRESCRIPTIONS, RESULTS, APPOINTMENTS]),
];

/// The `[[source]]` that `--demo` adds: call ids as the simulator writes them.
pub fn source_config() -> crate::source::SourceConfig {
    crate::source::SourceConfig {
        name: "demo".to_owned(),
        naming: crate::source::Naming::offline("demo"),
        settings: crate::source::SourceSettings::Demo,
    }
}

/// Feeds simulated events into the hub until shutdown, on the clock its context gives.
pub async fn run(source: Context) {
    let tz = source.time_zone();
    let start = source.now();
    let seed = start.as_nanosecond() as u64 ^ u64::from(std::process::id());
    let mut sim = Simulator::new(seed, start).with_time_zone(tz);
    let mut tick = tokio::time::interval(STEP_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stop = source.shutdown().wait();
    tokio::pin!(stop);
    source
        .status()
        .set_state(SourceState::Connected, None, start);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {
                let events = sim.step(source.now());
                if !events.is_empty()
                    && let Err(e) = source.ingest(events).await
                {
                    tracing::error!("demo events were not taken: {e}");
                }
            }
        }
    }
}

/// SplitMix64: tiny, seedable and plenty for a simulation.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// Lognormal by Box–Muller; `1 - unit` keeps the logarithm finite.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (1.0 - self.unit(), self.unit());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * normal).exp()
    }

    fn queue(&mut self) -> usize {
        let mut left = self.unit() * QUEUES.iter().map(|q| q.weight).sum::<f64>();
        for (i, q) in QUEUES.iter().enumerate() {
            left -= q.weight;
            if left < 0.0 {
                return i;
            }
        }
        APPOINTMENTS
    }

    fn talk_secs(&mut self) -> f64 {
        self.lognormal(TALK_MEDIAN_SECS, TALK_SIGMA)
            .clamp(10.0, 1800.0)
    }
}

/// Where an interaction goes, decided when it starts.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// Rings the line that is closed now.
    Closed,
    /// Hangs up in the welcome audio.
    IvrHangUp,
    /// Chooses a queue, then hangs up before joining it.
    IvrDrop(usize),
    /// Gets what they need from recorded information or an SMS.
    SelfServe {
        digits: &'static str,
        how: &'static str,
    },
    /// Chooses the fax option the site ignores.
    DeadEnd,
    /// Joins a queue.
    Queue(usize),
    /// Dials an agent's direct line (`None`: whoever is idle longest).
    Direct(Option<usize>),
    /// Placed by an agent, or by the dialer.
    Outbound { dialer: bool, reply: Reply },
}

/// How the far end of an outbound call responds.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Connected,
    VoicemailDropped,
    NoAnswer,
}

/// A queued caller's way out other than waiting.
#[derive(Debug, Clone, Copy)]
enum QueueExit {
    Callback,
    Voicemail,
}

/// What the answering agent does when the talk is over.
#[derive(Debug, Clone, Copy)]
enum AfterTalk {
    End(EndedBy),
    ToQueue(usize),
    ToAgent,
}

/// Everything the caller side of one interaction will do, drawn when it starts
/// (or scripted for the opening); agents and queues decide the rest.
#[derive(Debug, Clone)]
struct Plan {
    route: Route,
    ivr_secs: f64,
    /// How long they wait in a queue or for a direct line before hanging up.
    patience_secs: Option<f64>,
    exit: Option<(QueueExit, f64)>,
    voicemail_after_timeout: bool,
    /// How many offers go unanswered before one is taken.
    declines: u8,
    direct_answered: bool,
    ring_secs: f64,
    talk_secs: f64,
    after_talk: AfterTalk,
    transferred_patience_secs: f64,
}

impl Plan {
    /// A plan with no surprises, for the scripted opening to adjust.
    fn scripted(route: Route) -> Plan {
        Plan {
            route,
            ivr_secs: 6.0,
            patience_secs: None,
            exit: None,
            voicemail_after_timeout: false,
            declines: 0,
            direct_answered: true,
            ring_secs: 12.0,
            talk_secs: 60.0,
            after_talk: AfterTalk::End(EndedBy::Agent),
            transferred_patience_secs: 60.0,
        }
    }

    fn random_inbound(rng: &mut Rng) -> Plan {
        let route = random_route(rng);
        let direct = matches!(route, Route::Direct(_));
        Plan {
            route,
            ivr_secs: 4.0 + rng.exponential(6.0),
            patience_secs: Some(if direct {
                5.0 + rng.exponential(30.0)
            } else {
                rng.exponential(PATIENCE_MEAN_SECS)
            }),
            exit: match rng.unit() {
                r if r < 0.08 => Some((QueueExit::Callback, rng.uniform(45.0, 120.0))),
                r if r < 0.12 => Some((QueueExit::Voicemail, rng.uniform(60.0, 150.0))),
                _ => None,
            },
            voicemail_after_timeout: rng.chance(0.6),
            declines: match rng.unit() {
                r if r < 0.02 => 2,
                r if r < 0.10 => 1,
                _ => 0,
            },
            direct_answered: rng.chance(0.65),
            ring_secs: 0.0,
            talk_secs: rng.talk_secs(),
            after_talk: random_after_talk(rng),
            transferred_patience_secs: rng.exponential(TRANSFERRED_PATIENCE_MEAN_SECS),
        }
    }

    fn random_outbound(rng: &mut Rng, dialer: bool) -> Plan {
        let reply = match rng.unit() {
            r if r < 0.5 => Reply::Connected,
            r if r < 0.65 && !dialer => Reply::VoicemailDropped,
            _ => Reply::NoAnswer,
        };
        Plan {
            ring_secs: rng.uniform(8.0, 30.0),
            talk_secs: rng.talk_secs(),
            ..Plan::scripted(Route::Outbound { dialer, reply })
        }
    }
}

fn random_route(rng: &mut Rng) -> Route {
    match rng.unit() {
        r if r < 0.02 => Route::Closed,
        r if r < 0.05 => Route::IvrHangUp,
        r if r < 0.065 => Route::DeadEnd,
        r if r < 0.095 => Route::IvrDrop(rng.queue()),
        r if r < 0.125 => Route::SelfServe {
            digits: "4",
            how: "audio",
        },
        r if r < 0.145 => Route::SelfServe {
            digits: "5",
            how: "sms",
        },
        r if r < 0.195 => Route::Direct(Some(rng.below(AGENTS.len()))),
        _ => Route::Queue(rng.queue()),
    }
}

fn random_after_talk(rng: &mut Rng) -> AfterTalk {
    match rng.unit() {
        r if r < 0.04 => AfterTalk::ToQueue(rng.queue()),
        r if r < 0.07 => AfterTalk::ToAgent,
        r if r < 0.535 => AfterTalk::End(EndedBy::Agent),
        _ => AfterTalk::End(EndedBy::Caller),
    }
}

/// The first two minutes, one interaction per outcome (seconds after start).
/// Reception's three agents take the first three calls and talk past the
/// third minute, so reception's queue is sure to time out, be abandoned, and
/// lose a transferred caller.
fn opening() -> Vec<(f64, Plan)> {
    let queue = |q, talk_secs| Plan {
        talk_secs,
        ..Plan::scripted(Route::Queue(q))
    };
    let outbound = |dialer, reply| Plan::scripted(Route::Outbound { dialer, reply });
    vec![
        (1.0, queue(RECEPTION, 200.0)),
        (2.0, queue(RECEPTION, 215.0)),
        (3.0, queue(RECEPTION, 230.0)),
        (4.0, queue(APPOINTMENTS, 70.0)),
        (6.0, queue(RECEPTION, 60.0)),
        (
            10.0,
            Plan {
                patience_secs: Some(35.0),
                ..queue(RECEPTION, 60.0)
            },
        ),
        (
            14.0,
            Plan {
                exit: Some((QueueExit::Voicemail, 30.0)),
                ..queue(RECEPTION, 60.0)
            },
        ),
        (
            20.0,
            Plan {
                exit: Some((QueueExit::Callback, 40.0)),
                ..queue(RECEPTION, 60.0)
            },
        ),
        (25.0, Plan::scripted(Route::Closed)),
        (
            30.0,
            Plan {
                ivr_secs: 8.0,
                ..Plan::scripted(Route::IvrHangUp)
            },
        ),
        (32.0, outbound(false, Reply::Connected)),
        (35.0, Plan::scripted(Route::IvrDrop(RESULTS))),
        (
            40.0,
            Plan::scripted(Route::SelfServe {
                digits: "5",
                how: "sms",
            }),
        ),
        (45.0, Plan::scripted(Route::DeadEnd)),
        (
            50.0,
            Plan {
                patience_secs: Some(6.0),
                direct_answered: false,
                ..Plan::scripted(Route::Direct(None))
            },
        ),
        (
            55.0,
            Plan {
                after_talk: AfterTalk::ToQueue(RECEPTION),
                transferred_patience_secs: 30.0,
                ..queue(APPOINTMENTS, 25.0)
            },
        ),
        (
            60.0,
            Plan {
                declines: 1,
                ..queue(PRESCRIPTIONS, 60.0)
            },
        ),
        (
            65.0,
            Plan {
                after_talk: AfterTalk::ToAgent,
                transferred_patience_secs: 120.0,
                ..queue(RESULTS, 30.0)
            },
        ),
        (70.0, outbound(false, Reply::VoicemailDropped)),
        (
            80.0,
            Plan {
                ring_secs: 25.0,
                ..outbound(false, Reply::NoAnswer)
            },
        ),
        (90.0, outbound(true, Reply::NoAnswer)),
        (100.0, outbound(true, Reply::Connected)),
    ]
}

/// Something due at an instant; ties keep the order they were scheduled in.
struct Scheduled {
    at: Timestamp,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

enum Action {
    LogIn(usize),
    Begin(Box<Plan>),
    Arrival,
    Outbound {
        dialer: bool,
    },
    /// A step of a call, dropped unless the call is still in the same `turn`.
    Call {
        call: u64,
        turn: u32,
        step: CallStep,
    },
    /// A step of an agent, dropped unless the agent's `epoch` is unchanged.
    Agent {
        agent: usize,
        epoch: u32,
        step: AgentStep,
    },
    BreakDue(usize),
}

enum CallStep {
    IvrStart,
    IvrChoice,
    Enqueue(usize),
    Abandon,
    LeaveQueue(QueueExit),
    MaxWait,
    RingEnd {
        agent: usize,
        ring: u64,
        answer: bool,
    },
    TalkEnd,
    Reply,
    Hangup(EndedBy),
}

enum AgentStep {
    WrapDone,
    Return { from_break: bool },
}

/// What an agent is doing; ringing shows as available on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Offline,
    Available,
    Ringing,
    Busy,
    WrapUp,
    Away,
}

impl Activity {
    fn status(self) -> AgentStatus {
        match self {
            Activity::Offline => AgentStatus::Offline,
            Activity::Available | Activity::Ringing => AgentStatus::Available,
            Activity::Busy => AgentStatus::Busy,
            Activity::WrapUp => AgentStatus::WrapUp,
            Activity::Away => AgentStatus::Away,
        }
    }
}

struct Agent {
    activity: Activity,
    idle_since: Timestamp,
    /// Bumped on every change, so timers set for an earlier activity lapse.
    epoch: u32,
    break_pending: bool,
}

struct Call {
    name: String,
    plan: Plan,
    /// Bumped whenever the call moves on, so its earlier timers lapse.
    turn: u32,
    /// The queue it waits in, and since when.
    queue: Option<(usize, Timestamp)>,
    /// The agent whose phone rings for it, and which ring that is.
    ring: Option<(usize, u64)>,
    /// The agent it is engaged with (talking, or dialling out).
    agent: Option<usize>,
    declined_by: Vec<usize>,
}

/// A simulated call centre: give it the time, it tells what happened until then.
pub struct Simulator {
    rng: Rng,
    tz: TimeZone,
    tag: String,
    agenda: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    next_event: u64,
    next_call: u64,
    next_ring: u64,
    /// Calls still going; a finished call is dropped at once.
    calls: BTreeMap<u64, Call>,
    agents: Vec<Agent>,
    out: Vec<Event>,
}

fn after(at: Timestamp, secs: f64) -> Timestamp {
    at + SignedDuration::from_millis((secs * 1000.0).round() as i64)
}

impl Simulator {
    /// A call centre opening at `start` (UTC hours until [`Simulator::with_time_zone`]).
    pub fn new(seed: u64, start: Timestamp) -> Simulator {
        let mut rng = Rng(seed);
        // Ids carry a per-run tag, so a restarted demo's events are never
        // taken for duplicates of an earlier run's.
        let tag = format!("{:04x}", rng.next_u64() & 0xffff);
        let idle = Agent {
            activity: Activity::Offline,
            idle_since: start,
            epoch: 0,
            break_pending: false,
        };
        let mut sim = Simulator {
            rng,
            tz: TimeZone::UTC,
            tag,
            agenda: BinaryHeap::new(),
            next_seq: 0,
            next_event: 0,
            next_call: 0,
            next_ring: 0,
            calls: BTreeMap::new(),
            agents: AGENTS.iter().map(|_| Agent { ..idle }).collect(),
            out: Vec::new(),
        };
        for agent in 0..AGENTS.len() {
            sim.schedule(start, Action::LogIn(agent));
        }
        for (secs, plan) in opening() {
            sim.later(start, secs, Action::Begin(Box::new(plan)));
        }
        sim.later(start, OPENING_SECS, Action::Arrival);
        sim.later(
            start,
            OPENING_SECS + 20.0,
            Action::Outbound { dialer: false },
        );
        sim.later(
            start,
            OPENING_SECS + 40.0,
            Action::Outbound { dialer: true },
        );
        sim
    }

    /// Takes the daily profile's hours in the site's time zone.
    pub fn with_time_zone(self, tz: TimeZone) -> Simulator {
        Simulator { tz, ..self }
    }

    /// Every event due up to `now`, in time order.
    pub fn step(&mut self, now: Timestamp) -> Vec<Event> {
        while self.agenda.peek().is_some_and(|next| next.0.at <= now) {
            let Some(Reverse(next)) = self.agenda.pop() else {
                break;
            };
            self.act(next.at, next.action);
        }
        std::mem::take(&mut self.out)
    }

    fn schedule(&mut self, at: Timestamp, action: Action) {
        self.next_seq += 1;
        let seq = self.next_seq;
        self.agenda.push(Reverse(Scheduled { at, seq, action }));
    }

    fn later(&mut self, at: Timestamp, secs: f64, action: Action) {
        self.schedule(after(at, secs), action);
    }

    /// Schedules a step for the call's current turn.
    fn call_later(&mut self, at: Timestamp, secs: f64, call: u64, step: CallStep) {
        let turn = self.calls[&call].turn;
        self.later(at, secs, Action::Call { call, turn, step });
    }

    /// Schedules a step for the agent's current activity.
    fn agent_later(&mut self, at: Timestamp, secs: f64, agent: usize, step: AgentStep) {
        let epoch = self.agents[agent].epoch;
        self.later(at, secs, Action::Agent { agent, epoch, step });
    }

    fn act(&mut self, at: Timestamp, action: Action) {
        match action {
            Action::LogIn(agent) => self.log_in(at, agent),
            Action::Begin(plan) => self.begin(at, *plan),
            Action::Arrival => self.arrival(at),
            Action::Outbound { dialer } => self.outbound_tick(at, dialer),
            Action::Call { call, turn, step } => {
                if self.calls.get(&call).is_some_and(|c| c.turn == turn) {
                    self.call_step(at, call, step);
                }
            }
            Action::Agent { agent, epoch, step } => {
                if self.agents[agent].epoch == epoch {
                    self.agent_step(at, agent, step);
                }
            }
            Action::BreakDue(agent) => self.break_due(at, agent),
        }
        // Whatever changed may have freed an agent or queued a caller.
        self.dispatch(at);
    }

    fn call_step(&mut self, at: Timestamp, call: u64, step: CallStep) {
        match step {
            CallStep::IvrStart => self.ivr_start(at, call),
            CallStep::IvrChoice => self.ivr_choice(at, call),
            CallStep::Enqueue(queue) => {
                let name = QUEUES[queue].name.to_owned();
                self.emit_call(at, call, EventKind::Queued { queue: name });
                let patience = self.calls[&call].plan.patience_secs;
                self.join_queue(at, call, queue, patience, true);
            }
            CallStep::Abandon => self.end(at, call, EndedBy::Caller),
            CallStep::LeaveQueue(exit) => self.leave_queue(at, call, exit),
            CallStep::MaxWait => self.max_wait(at, call),
            CallStep::RingEnd {
                agent,
                ring,
                answer,
            } => self.ring_end(at, call, (agent, ring), answer),
            CallStep::TalkEnd => self.talk_end(at, call),
            CallStep::Reply => self.outbound_reply(at, call),
            CallStep::Hangup(by) => self.end(at, call, by),
        }
    }

    // ----- events -----

    fn emit(&mut self, at: Timestamp, call: Option<String>, kind: EventKind) {
        self.next_event += 1;
        let id = format!("demo-{}-{}", self.tag, self.next_event);
        self.out.push(Event {
            id: Some(id),
            call,
            at,
            kind,
        });
    }

    fn emit_call(&mut self, at: Timestamp, call: u64, kind: EventKind) {
        let name = self.calls[&call].name.clone();
        self.emit(at, Some(name), kind);
    }

    /// Sets an agent's activity and tells the board when its status changes.
    fn set_activity(&mut self, at: Timestamp, agent: usize, activity: Activity) {
        let entry = &mut self.agents[agent];
        let before = entry.activity;
        entry.activity = activity;
        entry.epoch += 1;
        if activity == Activity::Available && before != Activity::Ringing {
            entry.idle_since = at;
        }
        if before.status() != activity.status() {
            // Coming back from offline is a new login, which names the queues.
            let queues = (before == Activity::Offline)
                .then(|| AGENTS[agent].1.iter().map(|&q| QUEUES[q].name.to_owned()));
            let kind = EventKind::AgentStatus {
                agent: AGENTS[agent].0.to_owned(),
                status: activity.status(),
                queues: queues.map(Iterator::collect),
                reason: (activity == Activity::Away).then(|| "Break".to_owned()),
            };
            self.emit(at, None, kind);
        }
    }

    fn caller_number(&mut self) -> String {
        format!("+44 7700 900{:03}", self.rng.below(1000))
    }

    fn agent_name(agent: usize) -> String {
        AGENTS[agent].0.to_owned()
    }

    // ----- arrivals -----

    fn arrival(&mut self, at: Timestamp) {
        let plan = Plan::random_inbound(&mut self.rng);
        self.begin(at, plan);
        let hour = at.to_zoned(self.tz.clone()).hour();
        let per_min = CALLS_PER_MIN_BY_HOUR[usize::try_from(hour).unwrap_or(0) % 24];
        let gap = self.rng.exponential(60.0 / per_min);
        self.later(at, gap, Action::Arrival);
    }

    fn outbound_tick(&mut self, at: Timestamp, dialer: bool) {
        let plan = Plan::random_outbound(&mut self.rng, dialer);
        self.begin(at, plan);
        let mean = if dialer {
            DIALER_GAP_MEAN_SECS
        } else {
            OUTBOUND_GAP_MEAN_SECS
        };
        let gap = self.rng.exponential(mean);
        self.later(at, gap, Action::Outbound { dialer });
    }

    fn new_call(&mut self, plan: Plan) -> u64 {
        self.next_call += 1;
        let id = self.next_call;
        let call = Call {
            name: format!("demo-call-{}-{id}", self.tag),
            plan,
            turn: 0,
            queue: None,
            ring: None,
            agent: None,
            declined_by: Vec::new(),
        };
        self.calls.insert(id, call);
        id
    }

    fn begin(&mut self, at: Timestamp, plan: Plan) {
        match plan.route {
            Route::Outbound { dialer, .. } => self.begin_outbound(at, plan, dialer),
            _ => self.begin_inbound(at, plan),
        }
    }

    fn begin_inbound(&mut self, at: Timestamp, plan: Plan) {
        let route = plan.route;
        let line = match route {
            Route::Closed => "pharmacy",
            Route::Direct(_) => "direct",
            _ => "main",
        };
        let call = self.new_call(plan);
        let from = self.caller_number();
        let started = EventKind::CallStarted {
            direction: Direction::Inbound,
            channel: "voice".into(),
            from: Some(from),
            to: None,
            line: Some(line.into()),
            dialer: false,
        };
        self.emit_call(at, call, started);
        match route {
            Route::Closed => {
                self.emit_call(at, call, EventKind::Closed);
                let message_secs = self.rng.uniform(8.0, 25.0);
                self.call_later(at, message_secs, call, CallStep::Hangup(EndedBy::Caller));
            }
            Route::Direct(agent) => self.ring_direct(at, call, agent),
            _ => self.call_later(at, 1.0, call, CallStep::IvrStart),
        }
    }

    fn begin_outbound(&mut self, at: Timestamp, plan: Plan, dialer: bool) {
        // An agent dials only when idle; the dialer needs nobody until answered.
        let agent = if dialer {
            None
        } else {
            match self.idle_agent(|_| true) {
                Some(agent) => Some(agent),
                None => return,
            }
        };
        let ring_secs = plan.ring_secs;
        let call = self.new_call(plan);
        let started = EventKind::CallStarted {
            direction: Direction::Outbound,
            channel: "voice".into(),
            from: Some(SITE_NUMBER.into()),
            to: Some(self.caller_number()),
            line: Some("outbound".into()),
            dialer,
        };
        self.emit_call(at, call, started);
        if let Some(agent) = agent {
            self.calls.get_mut(&call).expect("just made").agent = Some(agent);
            self.set_activity(at, agent, Activity::Busy);
        }
        self.call_later(at, ring_secs, call, CallStep::Reply);
    }

    // ----- the IVR -----

    fn ivr_start(&mut self, at: Timestamp, call: u64) {
        let menu = Some("main".to_owned());
        self.emit_call(at, call, EventKind::IvrStarted { menu });
        let plan = &self.calls[&call].plan;
        let (secs, step) = match plan.route {
            Route::IvrHangUp => (plan.ivr_secs, CallStep::Hangup(EndedBy::Caller)),
            _ => (plan.ivr_secs, CallStep::IvrChoice),
        };
        self.call_later(at, secs, call, step);
    }

    fn ivr_choice(&mut self, at: Timestamp, call: u64) {
        let route = self.calls[&call].plan.route;
        let digits = match route {
            Route::IvrDrop(q) | Route::Queue(q) => QUEUES[q].digits,
            Route::SelfServe { digits, .. } => digits,
            _ => "9",
        };
        let digits = Some(digits.to_owned());
        self.emit_call(at, call, EventKind::IvrInput { digits });
        match route {
            Route::Queue(q) => self.call_later(at, 1.0, call, CallStep::Enqueue(q)),
            Route::SelfServe { how, .. } => {
                let how = Some(how.to_owned());
                self.emit_call(at, call, EventKind::SelfServed { how });
                let listen_secs = self.rng.uniform(15.0, 60.0);
                self.call_later(at, listen_secs, call, CallStep::Hangup(EndedBy::Caller));
            }
            Route::DeadEnd => {
                self.emit_call(at, call, EventKind::DeadEnd);
                self.call_later(at, 2.0, call, CallStep::Hangup(EndedBy::System));
            }
            _ => {
                let secs = self.rng.uniform(1.0, 5.0);
                self.call_later(at, secs, call, CallStep::Hangup(EndedBy::Caller));
            }
        }
    }

    // ----- queues -----

    fn join_queue(
        &mut self,
        at: Timestamp,
        call: u64,
        queue: usize,
        patience_secs: Option<f64>,
        with_exit: bool,
    ) {
        let max_wait = QUEUES[queue].max_wait_secs;
        let entry = self.calls.get_mut(&call).expect("a live call");
        entry.queue = Some((queue, at));
        entry.turn += 1;
        entry.declined_by.clear();
        let exit = entry.plan.exit.filter(|_| with_exit);
        if let Some(secs) = patience_secs.filter(|&s| s < max_wait) {
            self.call_later(at, secs, call, CallStep::Abandon);
        }
        if let Some((exit, secs)) = exit.filter(|&(_, s)| s < max_wait) {
            self.call_later(at, secs, call, CallStep::LeaveQueue(exit));
        }
        self.call_later(at, max_wait, call, CallStep::MaxWait);
    }

    /// Takes the call out of its queue (and off a ringing phone); its queue timers lapse.
    fn take_out_of_queue(&mut self, at: Timestamp, call: u64) -> Option<usize> {
        self.release_ring(at, call);
        let entry = self.calls.get_mut(&call).expect("a live call");
        entry.turn += 1;
        entry.queue.take().map(|(q, _)| q)
    }

    fn leave_queue(&mut self, at: Timestamp, call: u64, exit: QueueExit) {
        self.take_out_of_queue(at, call);
        let (kind, secs) = match exit {
            QueueExit::Callback => (EventKind::CallbackRequested, self.rng.uniform(4.0, 10.0)),
            QueueExit::Voicemail => (EventKind::Voicemail, self.rng.uniform(15.0, 45.0)),
        };
        self.emit_call(at, call, kind);
        self.call_later(at, secs, call, CallStep::Hangup(EndedBy::Caller));
    }

    fn max_wait(&mut self, at: Timestamp, call: u64) {
        let queue = self
            .take_out_of_queue(at, call)
            .map(|q| QUEUES[q].name.to_owned());
        self.emit_call(at, call, EventKind::TimedOut { queue });
        if self.calls[&call].plan.voicemail_after_timeout {
            self.emit_call(at, call, EventKind::Voicemail);
            let secs = self.rng.uniform(15.0, 45.0);
            self.call_later(at, secs, call, CallStep::Hangup(EndedBy::Caller));
        } else {
            // "All our staff are busy, please call again later", then the line drops.
            self.call_later(at, 2.0, call, CallStep::Hangup(EndedBy::System));
        }
    }

    /// Offers waiting callers, oldest first, to idle agents, longest idle first.
    fn dispatch(&mut self, at: Timestamp) {
        while let Some((call, agent)) = self.next_offer() {
            let entry = self.calls.get_mut(&call).expect("a waiting call");
            let queue = entry.queue.map(|(q, _)| q);
            let answer = entry.plan.declines == 0;
            entry.plan.declines = entry.plan.declines.saturating_sub(1);
            let ring_secs = if answer {
                self.rng.uniform(2.0, 8.0)
            } else {
                NO_ANSWER_RING_SECS
            };
            self.offer(at, call, agent, queue, answer, ring_secs);
        }
    }

    fn next_offer(&self) -> Option<(u64, usize)> {
        let mut waiting: Vec<(Timestamp, u64, usize)> = self
            .calls
            .iter()
            .filter(|(_, c)| c.ring.is_none())
            .filter_map(|(&id, c)| c.queue.map(|(q, since)| (since, id, q)))
            .collect();
        waiting.sort_unstable();
        waiting.into_iter().find_map(|(_, call, queue)| {
            let declined = &self.calls[&call].declined_by;
            self.idle_agent(|a| AGENTS[a].1.contains(&queue) && !declined.contains(&a))
                .map(|agent| (call, agent))
        })
    }

    /// The available agent idle longest among those `eligible`.
    fn idle_agent(&self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        self.agents
            .iter()
            .enumerate()
            .filter(|&(i, a)| a.activity == Activity::Available && eligible(i))
            .min_by_key(|&(i, a)| (a.idle_since, i))
            .map(|(i, _)| i)
    }

    // ----- ringing and talking -----

    fn ring_direct(&mut self, at: Timestamp, call: u64, agent: Option<usize>) {
        let target = agent.or_else(|| self.idle_agent(|_| true));
        let plan = &self.calls[&call].plan;
        let (answer, patience) = (plan.direct_answered, plan.patience_secs);
        match target.filter(|&a| self.agents[a].activity == Activity::Available) {
            Some(agent) => {
                let ring_secs = if answer {
                    self.rng.uniform(3.0, 12.0)
                } else {
                    DIRECT_RING_SECS
                };
                self.offer(at, call, agent, None, answer, ring_secs);
                if let Some(secs) = patience {
                    self.call_later(at, secs, call, CallStep::Abandon);
                }
            }
            // Busy, away or logged off: straight to the line's voicemail.
            None => self.send_to_voicemail(at, call),
        }
    }

    fn send_to_voicemail(&mut self, at: Timestamp, call: u64) {
        self.calls.get_mut(&call).expect("a live call").turn += 1;
        self.emit_call(at, call, EventKind::Voicemail);
        let secs = self.rng.uniform(15.0, 40.0);
        self.call_later(at, secs, call, CallStep::Hangup(EndedBy::Caller));
    }

    fn offer(
        &mut self,
        at: Timestamp,
        call: u64,
        agent: usize,
        queue: Option<usize>,
        answer: bool,
        ring_secs: f64,
    ) {
        self.ring(at, call, agent, answer, ring_secs);
        let kind = EventKind::Offered {
            agent: Self::agent_name(agent),
            queue: queue.map(|q| QUEUES[q].name.to_owned()),
        };
        self.emit_call(at, call, kind);
    }

    /// Reserves the agent's phone for the call and schedules how the ringing ends.
    fn ring(&mut self, at: Timestamp, call: u64, agent: usize, answer: bool, ring_secs: f64) {
        self.next_ring += 1;
        let ring = self.next_ring;
        self.calls.get_mut(&call).expect("a live call").ring = Some((agent, ring));
        self.set_activity(at, agent, Activity::Ringing);
        let step = CallStep::RingEnd {
            agent,
            ring,
            answer,
        };
        self.call_later(at, ring_secs, call, step);
    }

    fn release_ring(&mut self, at: Timestamp, call: u64) {
        let ringing = self.calls.get_mut(&call).and_then(|c| c.ring.take());
        if let Some((agent, _)) = ringing {
            self.set_activity(at, agent, Activity::Available);
        }
    }

    fn ring_end(&mut self, at: Timestamp, call: u64, ring: (usize, u64), answer: bool) {
        if self.calls[&call].ring != Some(ring) {
            return;
        }
        if answer {
            self.connect(at, call, ring.0);
        } else {
            self.no_answer(at, call, ring.0);
        }
    }

    fn connect(&mut self, at: Timestamp, call: u64, agent: usize) {
        let entry = self.calls.get_mut(&call).expect("a live call");
        entry.ring = None;
        entry.queue = None;
        entry.turn += 1;
        entry.agent = Some(agent);
        let talk_secs = entry.plan.talk_secs;
        let name = Self::agent_name(agent);
        self.emit_call(at, call, EventKind::Answered { agent: name });
        self.set_activity(at, agent, Activity::Busy);
        self.call_later(at, talk_secs, call, CallStep::TalkEnd);
    }

    fn no_answer(&mut self, at: Timestamp, call: u64, agent: usize) {
        self.calls.get_mut(&call).expect("a live call").ring = None;
        let name = Self::agent_name(agent);
        self.emit_call(at, call, EventKind::Declined { agent: name });
        if self.rng.chance(AWAY_AFTER_NO_ANSWER) {
            self.set_activity(at, agent, Activity::Away);
            let secs = self.rng.uniform(30.0, 90.0);
            self.agent_later(at, secs, agent, AgentStep::Return { from_break: false });
        } else {
            self.set_activity(at, agent, Activity::Available);
        }
        let entry = self.calls.get_mut(&call).expect("a live call");
        if entry.queue.is_some() {
            entry.declined_by.push(agent);
        } else {
            self.send_to_voicemail(at, call);
        }
    }

    fn talk_end(&mut self, at: Timestamp, call: u64) {
        let next_talk_secs = self.rng.talk_secs();
        let entry = self.calls.get_mut(&call).expect("a live call");
        let after_talk =
            std::mem::replace(&mut entry.plan.after_talk, AfterTalk::End(EndedBy::Agent));
        entry.plan.talk_secs = next_talk_secs;
        match after_talk {
            AfterTalk::End(by) => self.end(at, call, by),
            AfterTalk::ToQueue(queue) => self.transfer_to_queue(at, call, queue),
            AfterTalk::ToAgent => match self.idle_agent(|_| true) {
                Some(target) => self.transfer_to_agent(at, call, target),
                None => self.transfer_to_queue(at, call, APPOINTMENTS),
            },
        }
    }

    fn transfer_to_queue(&mut self, at: Timestamp, call: u64, queue: usize) {
        let kind = EventKind::Transferred {
            to_queue: Some(QUEUES[queue].name.to_owned()),
            to_agent: None,
        };
        self.emit_call(at, call, kind);
        self.hand_off(at, call);
        let patience = self.calls[&call].plan.transferred_patience_secs;
        self.join_queue(at, call, queue, Some(patience), false);
    }

    fn transfer_to_agent(&mut self, at: Timestamp, call: u64, target: usize) {
        let kind = EventKind::Transferred {
            to_queue: None,
            to_agent: Some(Self::agent_name(target)),
        };
        self.emit_call(at, call, kind);
        self.hand_off(at, call);
        let entry = self.calls.get_mut(&call).expect("a live call");
        entry.turn += 1;
        let patience = entry.plan.transferred_patience_secs;
        let ring_secs = self.rng.uniform(3.0, 10.0);
        self.ring(at, call, target, true, ring_secs);
        self.call_later(at, patience, call, CallStep::Abandon);
    }

    fn outbound_reply(&mut self, at: Timestamp, call: u64) {
        let entry = &self.calls[&call];
        let (agent, reply) = match entry.plan.route {
            Route::Outbound { reply, .. } => (entry.agent, reply),
            _ => return,
        };
        match reply {
            Reply::Connected => match agent.or_else(|| self.idle_agent(|_| true)) {
                Some(agent) => self.connect(at, call, agent),
                // The dialer reached someone but no agent is free: it hangs up.
                None => self.end(at, call, EndedBy::System),
            },
            Reply::VoicemailDropped => {
                self.emit_call(at, call, EventKind::VoicemailDropped);
                let secs = self.rng.uniform(15.0, 30.0);
                self.call_later(at, secs, call, CallStep::Hangup(EndedBy::Agent));
            }
            Reply::NoAnswer if agent.is_some() => self.end(at, call, EndedBy::Agent),
            Reply::NoAnswer => self.end(at, call, EndedBy::System),
        }
    }

    /// The engaged agent lets go of the call and goes to wrap-up.
    fn hand_off(&mut self, at: Timestamp, call: u64) {
        let agent = self.calls.get_mut(&call).and_then(|c| c.agent.take());
        if let Some(agent) = agent {
            self.set_activity(at, agent, Activity::WrapUp);
            let secs = (8.0 + self.rng.exponential(12.0)).min(60.0);
            self.agent_later(at, secs, agent, AgentStep::WrapDone);
        }
    }

    fn end(&mut self, at: Timestamp, call: u64, by: EndedBy) {
        self.emit_call(at, call, EventKind::Ended { by });
        self.release_ring(at, call);
        self.hand_off(at, call);
        self.calls.remove(&call);
    }

    // ----- agents -----

    fn log_in(&mut self, at: Timestamp, agent: usize) {
        self.set_activity(at, agent, Activity::Available);
        let secs = FIRST_BREAK_SECS + self.rng.exponential(BREAK_GAP_MEAN_SECS);
        self.later(at, secs, Action::BreakDue(agent));
    }

    fn agent_step(&mut self, at: Timestamp, agent: usize, step: AgentStep) {
        match step {
            AgentStep::WrapDone => {
                let pending = std::mem::take(&mut self.agents[agent].break_pending);
                if !(pending && self.take_break(at, agent)) {
                    self.set_activity(at, agent, Activity::Available);
                }
            }
            AgentStep::Return { from_break } => {
                self.set_activity(at, agent, Activity::Available);
                if from_break {
                    let secs = self.rng.exponential(BREAK_GAP_MEAN_SECS);
                    self.later(at, 60.0 + secs, Action::BreakDue(agent));
                }
            }
        }
    }

    fn break_due(&mut self, at: Timestamp, agent: usize) {
        match self.agents[agent].activity {
            Activity::Available => {
                self.take_break(at, agent);
            }
            Activity::Ringing | Activity::Busy | Activity::WrapUp => {
                self.agents[agent].break_pending = true;
            }
            Activity::Away | Activity::Offline => self.later(at, 300.0, Action::BreakDue(agent)),
        }
    }

    /// Sends an agent on a break (away, or now and then logged off) unless too
    /// many are on one already, in which case the break is put off.
    fn take_break(&mut self, at: Timestamp, agent: usize) -> bool {
        let on_break = self
            .agents
            .iter()
            .filter(|a| matches!(a.activity, Activity::Away | Activity::Offline))
            .count();
        if on_break >= MAX_ON_BREAK {
            self.later(at, 120.0, Action::BreakDue(agent));
            return false;
        }
        let (activity, secs) = if self.rng.chance(0.15) {
            (Activity::Offline, self.rng.uniform(300.0, 900.0))
        } else {
            (Activity::Away, self.rng.uniform(120.0, 480.0))
        };
        self.set_activity(at, agent, activity);
        self.agent_later(at, secs, agent, AgentStep::Return { from_break: true });
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use std::sync::Arc;

    use super::*;
    use crate::call::LiveState;
    use crate::engine::{Engine, EngineSettings};
    use crate::hub::Hub;
    use crate::outcome::Outcome;

    fn start() -> Timestamp {
        "2026-11-20T09:00:00Z".parse().unwrap()
    }

    fn engine() -> Engine {
        let settings = EngineSettings {
            feed_clock: true,
            late_window: None,
            stale_after: None,
            keep_days: None,
            ..Default::default()
        };
        Engine::new(Arc::new(settings), start())
    }

    /// Steps the simulator once a second for `secs`, handing each batch to `f`.
    fn drive(seed: u64, secs: i64, mut f: impl FnMut(&[Event])) -> Simulator {
        let mut sim = Simulator::new(seed, start());
        for s in 0..=secs {
            let now = start() + SignedDuration::from_secs(s);
            let events = sim.step(now);
            assert!(
                events.iter().all(|e| e.at <= now),
                "an event from the future"
            );
            f(&events);
        }
        sim
    }

    #[test]
    fn every_outcome_occurs_within_three_minutes() {
        for seed in [1, 2, 42, 0xdead_beef] {
            let mut engine = engine();
            drive(seed, 180, |events| {
                engine.ingest(events.to_vec());
            });
            let seen: HashSet<Outcome> = engine
                .finished_calls()
                .iter()
                .map(|(_, c)| c.verdict.outcome)
                .collect();
            for outcome in Outcome::ALL {
                if outcome != Outcome::Expired {
                    assert!(seen.contains(&outcome), "seed {seed}: no {outcome:?}");
                }
            }
        }
    }

    #[test]
    fn events_round_trip_in_order_with_unique_ids() {
        let mut ids = HashSet::new();
        let mut last = start();
        drive(7, 3600, |events| {
            for e in events {
                let back = Event::from_json(&serde_json::from_str(&e.to_json_line()).unwrap());
                assert_eq!(back.as_ref(), Ok(e));
                assert!(ids.insert(e.id.clone().unwrap()), "repeated id {:?}", e.id);
                assert!(e.at >= last, "out of order: {e:?}");
                last = e.at;
            }
        });
        assert!(ids.len() > 1000);
    }

    #[test]
    fn same_seed_same_day() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        drive(9, 600, |events| a.extend_from_slice(events));
        drive(9, 600, |events| b.extend_from_slice(events));
        assert_eq!(a, b);
    }

    /// Agents' statuses as the events tell them, checked against the calls.
    #[derive(Default)]
    struct Staff {
        status: HashMap<String, AgentStatus>,
        on_call: HashMap<String, String>,
    }

    impl Staff {
        fn fold(&mut self, e: &Event) {
            let call = e.call.clone().unwrap_or_default();
            if let EventKind::Transferred { .. } | EventKind::Ended { .. } = &e.kind {
                self.on_call.retain(|_, c| *c != call);
            }
            match &e.kind {
                EventKind::Offered { agent, .. }
                | EventKind::Transferred {
                    to_agent: Some(agent),
                    ..
                } => {
                    assert_eq!(self.status[agent], AgentStatus::Available, "{e:?}");
                    assert!(!self.on_call.contains_key(agent), "{e:?}");
                }
                EventKind::Answered { agent } => {
                    let status = self.status[agent];
                    assert!(
                        matches!(status, AgentStatus::Available | AgentStatus::Busy),
                        "{e:?} while {status:?}"
                    );
                    let previous = self.on_call.insert(agent.clone(), call);
                    assert!(previous.is_none(), "{agent} on two calls: {e:?}");
                }
                EventKind::AgentStatus { agent, status, .. } => {
                    if self.on_call.contains_key(agent) {
                        assert_eq!(*status, AgentStatus::Busy, "{e:?} while on a call");
                    }
                    self.status.insert(agent.clone(), *status);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn two_hours_look_like_a_call_centre() {
        let mut engine = engine();
        let mut staff = Staff::default();
        let mut most_queued = 0;
        let sim = drive(3, 2 * 3600, |events| {
            events.iter().for_each(|e| staff.fold(e));
            engine.ingest(events.to_vec());
            most_queued = most_queued.max(engine.live().states[LiveState::Queued.index()]);
        });
        let inbound: Vec<Outcome> = engine
            .finished_calls()
            .iter()
            .map(|(_, c)| c.verdict.outcome)
            .filter(|o| !o.is_outbound())
            .collect();
        let answered = inbound.iter().filter(|&&o| o == Outcome::Answered).count();
        let share = answered as f64 / inbound.len() as f64;
        assert!((0.5..=0.95).contains(&share), "answered {share:.2}");
        assert!(inbound.len() > 400, "{} inbound calls", inbound.len());
        assert!(most_queued >= 2, "at most {most_queued} queued");
        assert!(sim.calls.len() < 100, "{} calls in memory", sim.calls.len());
        assert!(
            sim.agenda.len() < 500,
            "{} actions pending",
            sim.agenda.len()
        );
    }

    #[tokio::test]
    async fn run_feeds_the_hub_until_shutdown() {
        let hub = Arc::new(Hub::in_memory(
            EngineSettings::default(),
            crate::clock::Clock::Wall,
            crate::clock::system_clock(),
        ));
        let (trigger, signal) = crate::shutdown::channel();
        let status = Arc::new(crate::source::Status::new("demo", "demo", start()));
        let context = Context::new(
            hub.clone(),
            status,
            crate::source::Naming::offline("demo"),
            crate::source::Checkpoints::new(None),
            (crate::clock::Clock::Wall, crate::clock::system_clock()),
            signal,
        );
        let task = tokio::spawn(run(context));
        let logged_in = async {
            // The first tick is immediate and logs every agent in.
            while hub.with_engine(|e| e.agents().len()) < AGENTS.len() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), logged_in)
            .await
            .expect("agents logged in");
        trigger.trip();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("run returns on shutdown")
            .unwrap();
    }
}
