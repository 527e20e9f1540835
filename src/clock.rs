//! Where "now" comes from: the machine's clock (injectable, so tests cross
//! midnight without waiting) or the latest event time seen (replays), and
//! how the engine is moved to it.

use std::sync::Arc;

use jiff::Timestamp;

use crate::engine::{Engine, EngineSettings};

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Clock {
    /// The machine's clock.
    Wall,
    /// The latest event time seen (replays of recorded days).
    Feed,
}

/// The wall clock, injectable so tests can cross midnight without waiting.
pub type WallClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The machine's clock.
pub fn system_clock() -> WallClock {
    Arc::new(Timestamp::now)
}

/// A clock policy with its wall clock: what "now" is at start and on every tick.
#[derive(Clone)]
pub struct Timekeeper {
    /// Where "now" comes from.
    pub clock: Clock,
    /// The wall clock (the engine reads it only under [`Clock::Wall`]).
    pub wall: WallClock,
}

impl Timekeeper {
    /// The policy `clock` over `wall`.
    pub fn new(clock: Clock, wall: WallClock) -> Timekeeper {
        Timekeeper { clock, wall }
    }

    /// "Now" at start: the wall clock, or for a feed clock the latest time the store saw.
    pub fn start_time(&self, latest_stored: Option<Timestamp>) -> Timestamp {
        match self.clock {
            Clock::Wall => (self.wall)(),
            Clock::Feed => latest_stored.unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }

    /// Moves a wall-clock engine to the current time (a feed clock moves itself).
    pub fn tick(&self, engine: &mut Engine) {
        if self.clock == Clock::Wall {
            engine.advance((self.wall)());
        }
    }

    /// `settings` told which clock drives them.
    pub fn settings(&self, settings: EngineSettings) -> EngineSettings {
        EngineSettings {
            feed_clock: self.clock == Clock::Feed,
            ..settings
        }
    }
}
