//! The writer thread: appends every waiting batch to the log in one group,
//! then applies them in that order; when idle, records derived rows that
//! changed without events and lets the log tidy up.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Append, Log, Shared, SubmitError};
use crate::engine::IngestReport;
use crate::event::Event;
use crate::journal::JournalError;

/// Most events committed in one group.
const GROUP_EVENTS: usize = 100_000;
/// How often the writer, when idle, records derived rows and prunes.
const WRITER_IDLE: Duration = Duration::from_millis(500);

/// A batch waiting for the writer, and where its answer goes.
pub(super) struct Request {
    pub events: Vec<Event>,
    pub reply: oneshot::Sender<Result<IngestReport, SubmitError>>,
}

/// The writer thread and the way to it; dropping it stops the thread once it
/// has recorded what changed since its last flush.
pub(super) struct Writer {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn spawn(shared: Arc<Shared>, mut log: impl Log) -> Writer {
        let (requests, received) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || write_loop(&shared, &mut log, &received))
            .expect("spawning the journal writer");
        Writer {
            requests: Some(requests),
            thread: Some(thread),
        }
    }

    pub fn send(&self, request: Request) -> Result<(), JournalError> {
        self.requests
            .as_ref()
            .and_then(|r| r.send(request).ok())
            .ok_or(JournalError::Stopped)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel stops the writer once it has recorded what
        // changed since its last flush; wait for that, so a clean stop leaves
        // nothing for the next start to heal.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(shared: &Shared, log: &mut impl Log, requests: &mpsc::Receiver<Request>) {
    loop {
        let first = match requests.recv_timeout(WRITER_IDLE) {
            Ok(request) => request,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                idle(shared, log);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Shutting down: record what changed since the last flush.
                idle(shared, log);
                return;
            }
        };
        let mut group = vec![first];
        let mut size = group[0].events.len();
        while size < GROUP_EVENTS {
            match requests.try_recv() {
                Ok(request) => {
                    size += request.events.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        commit_group(shared, log, group);
    }
}

/// Appends a group, then applies it. The state stays locked from choosing
/// the batches' time to applying them, so a replay at that recorded time
/// decides exactly as live did.
fn commit_group(shared: &Shared, log: &mut impl Log, group: Vec<Request>) {
    let mut state = shared.state();
    state.tick(&shared.time);
    // Checked against the engine before this group: batches in one group
    // opening calls together may pass the limit by one group's worth.
    let group: Vec<Request> = group
        .into_iter()
        .filter_map(|request| match state.admit(&request.events) {
            Ok(()) => Some(request),
            Err(refused) => {
                let _ = request.reply.send(Err(refused));
                None
            }
        })
        .collect();
    if group.is_empty() {
        return;
    }
    let received = state.engine.now();
    let derived = state.take_unrecorded();
    let appends: Vec<Append<'_>> = group
        .iter()
        .map(|r| Append {
            events: &r.events,
            received,
        })
        .collect();
    let fresh = match log.append(&appends, &derived) {
        Ok(fresh) => fresh,
        Err(e) => {
            // Kept for the next write: the watermark did not move past them.
            state.put_back(derived);
            drop(state);
            let events: usize = group.iter().map(|r| r.events.len()).sum();
            tracing::error!(
                "journal commit failed: {e}; nothing of its {} batches ({events} events) was applied, the writer carries on",
                group.len()
            );
            let e = Arc::new(e);
            for request in group {
                let _ = request
                    .reply
                    .send(Err(JournalError::Commit(e.clone()).into()));
            }
            return;
        }
    };
    shared.commits.fetch_add(1, Ordering::Relaxed);
    state.note_recorded(&derived);
    let mut replies = Vec::with_capacity(group.len());
    for (request, fresh) in group.into_iter().zip(fresh) {
        let repeated = fresh.iter().filter(|new| !**new).count() as u64;
        let events: Vec<Event> = request
            .events
            .into_iter()
            .zip(fresh)
            .filter_map(|(event, new)| new.then_some(event))
            .collect();
        let mut report = state.engine.ingest(events);
        report.duplicates += repeated;
        replies.push((request.reply, report));
    }
    state.settle();
    drop(state);
    shared.applied.notify_one();
    for (reply, report) in replies {
        let _ = reply.send(Ok(report));
    }
}

/// Records derived rows that changed without new events (expiry, late
/// corrections already committed) and lets the log tidy up.
pub(super) fn idle(shared: &Shared, log: &mut impl Log) {
    let (derived, now, today) = {
        let mut state = shared.state();
        let derived = state.take_unrecorded();
        // Retention is measured from the machine's clock too: an event dated
        // ahead must never make the pruning forget days still kept.
        let now = state.engine.now().min((shared.time.wall)());
        (derived, now, state.engine.settings().day.day_of(now))
    };
    if !derived.is_empty() {
        match log.record(&derived) {
            Ok(()) => shared.state().note_recorded(&derived),
            Err(e) => {
                tracing::error!("recording finished calls and agents: {e}");
                shared.state().put_back(derived);
            }
        }
    }
    log.maintain(now, today);
}
