//! The reconnect loop every connected source (AMI, ESL) runs: one session
//! after another with capped backoff, the same states for all (`connecting`
//! while trying again after a session that was up, `failed` with the reason
//! after a try that never got in, `connected` once logged in), each change
//! logged once. The backoff starts over only after a session that did work,
//! so a PBX that takes the login and drops the line is not hammered.

use std::fmt::Display;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use super::{Backoff, Context, SourceState};

/// How long a session must stay up (without mapping any event) before the
/// next drop is retried at the shortest wait again.
pub const STEADY: Duration = Duration::from_secs(30);

/// A connected source: what one connection does, from connecting until it
/// ends. Its state (the mapping) lives in the implementor, across sessions.
pub trait Session {
    /// Why a connection ended.
    type Error: Display;

    /// Connects and follows until the connection ends (with why). Calls
    /// [`Link::up`] once logged in and [`Link::mapped`] when it mapped events.
    fn run(&mut self, link: &mut Link) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// One try of a session, as the session reports its progress.
pub struct Link {
    context: Context,
    up_since: Option<Instant>,
    mapped: bool,
}

impl Link {
    fn new(context: &Context) -> Link {
        Link {
            context: context.clone(),
            up_since: None,
            mapped: false,
        }
    }

    /// Logged in: the source is `connected`.
    pub fn up(&mut self) {
        self.up_since = Some(Instant::now());
        let context = &self.context;
        context
            .status()
            .set_state(SourceState::Connected, None, context.now());
    }

    /// The session mapped events: it works, whatever ends it later.
    pub fn mapped(&mut self) {
        self.mapped = true;
    }

    /// Whether this try did work: it mapped an event or stayed up [`STEADY`].
    fn worked(&self) -> bool {
        self.mapped || self.up_since.is_some_and(|at| at.elapsed() >= STEADY)
    }
}

/// Runs `session` again and again until the server stops.
pub async fn reconnect(context: &Context, session: &mut impl Session) {
    let mut backoff = Backoff::default();
    loop {
        let mut link = Link::new(context);
        let ended = tokio::select! {
            ended = session.run(&mut link) => ended,
            () = context.shutdown().wait() => return,
        };
        // A session may end because the server stops (its store gave up):
        // that is no failure to report.
        if context.shutdown().wait().now_or_never().is_some() {
            return;
        }
        let why = match ended {
            Ok(()) => "the session ended".to_owned(),
            Err(e) => e.to_string(),
        };
        if link.worked() {
            backoff.reset();
        }
        let state = match link.up_since {
            Some(_) => SourceState::Connecting,
            None => SourceState::Failed,
        };
        context.status().set_state(state, Some(why), context.now());
        if !backoff.wait(context.shutdown()).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::Clock;
    use crate::hub::Hub;
    use crate::source::{Checkpoints, Naming, Status};

    /// The rule that restarts the backoff; the loop itself is tested end to
    /// end in tests/ami.rs and tests/esl.rs (a PBX that drops every session).
    #[tokio::test]
    async fn a_try_worked_when_it_mapped_or_stayed_up_long_enough() {
        let wall: crate::clock::WallClock = Arc::new(jiff::Timestamp::now);
        let hub = Hub::in_memory(Default::default(), Clock::Wall, wall.clone());
        let status = Status::new("pbx", "ami", jiff::Timestamp::now());
        let (_trigger, signal) = crate::shutdown::channel();
        let context = Context::new(
            Arc::new(hub),
            Arc::new(status),
            Naming::offline("pbx"),
            Checkpoints::new(None),
            (Clock::Wall, wall),
            signal,
        );
        let mut link = Link::new(&context);
        assert!(!link.worked(), "never up");
        link.up();
        assert_eq!(context.status().view().state, SourceState::Connected);
        assert!(!link.worked(), "up a moment");
        link.up_since = Instant::now().checked_sub(STEADY);
        assert!(link.worked(), "up for STEADY");
        link.up_since = Some(Instant::now());
        link.mapped();
        assert!(link.worked(), "mapped an event");
    }
}
