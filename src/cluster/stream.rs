//! The cluster's log: one JetStream stream of events, one message per event.
//! A node publishes a batch and waits for every acknowledgement (stored on a
//! quorum); every node follows the stream in order with one ordered consumer
//! and hands what it reads to its pipeline's applier.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use jiff::Timestamp;
use sha1::{Digest, Sha1};
use tokio::sync::mpsc;

use crate::event::Event;
use crate::pipeline::Delivered;

/// The header holding, in milliseconds, the engine time the accepting node
/// applied the batch at: every node applies the event at that time.
pub const RECEIVED_HEADER: &str = "Wallboard-Received";
/// How long JetStream drops a repeated message id; beyond it the journal's
/// unique ids still drop repeated events that carry one.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(300);
/// How long a publish waits for its acknowledgement before the batch is refused.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a JetStream API request (stream info, consumer creation) may
/// take: short, so a follower retries soon while a new meta leader is
/// elected after a NATS server died (about five seconds).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Acknowledgements a node may await at once, over all its batches.
const MAX_ACKS_PENDING: usize = 1 << 22;
/// Most messages handed to the applier in one chunk (one commit).
const CHUNK_MESSAGES: usize = 4096;
/// How long the consumer may stay quiet before the stream is asked whether
/// it moved on without it.
const STALL_CHECK: Duration = Duration::from_secs(2);
/// Pause before following again after the consumer failed.
const REFOLLOW_PAUSE: Duration = Duration::from_millis(500);

/// Why the stream could not take a batch or be opened.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The stream could not be created or opened.
    #[error("stream {stream}: {message}")]
    Open {
        /// The stream.
        stream: String,
        /// Why.
        message: String,
    },
    /// Not every message of a batch was acknowledged (no quorum, no server,
    /// or no answer in time).
    #[error("{acked} of {total} events acknowledged by the cluster: {message}")]
    NotAcknowledged {
        /// Messages acknowledged before the failure.
        acked: usize,
        /// Messages in the batch.
        total: usize,
        /// The first failure.
        message: String,
    },
}

/// One event's acknowledgement: its stream sequence, and whether JetStream
/// had it already (a repeated message id within the duplicate window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The stream sequence (of the first copy, for a duplicate).
    pub seq: u64,
    /// JetStream dropped it as a repeat.
    pub duplicate: bool,
}

/// Publishes batches to the stream.
#[derive(Clone, Debug)]
pub struct StreamWriter {
    jetstream: jetstream::Context,
    subject: String,
}

/// The stream's subject for events.
pub fn subject(stream: &str) -> String {
    format!("{stream}.events")
}

/// Creates the stream if missing (file storage, `replicas` copies, events
/// kept `max_age`), else opens it as it is; returns it with a publisher on a
/// context whose acknowledgements time out after [`ACK_TIMEOUT`].
pub async fn open(
    client: &async_nats::Client,
    name: &str,
    replicas: usize,
    max_age: Duration,
) -> Result<(stream::Stream, StreamWriter), StreamError> {
    let failed = |message: String| StreamError::Open {
        stream: name.to_owned(),
        message,
    };
    // A publish's acknowledgement times out after the context's request
    // timeout, so publishing and following get a context each. The client's
    // bound on acknowledgements pending (5,000 by default) would block a
    // large batch, which awaits its acknowledgements only once all is sent:
    // the batch size limit bounds them instead.
    let publishing = jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .ack_timeout(ACK_TIMEOUT)
        .max_ack_inflight(MAX_ACKS_PENDING)
        .build(client.clone());
    let following = jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .build(client.clone());
    let stream = following
        .get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![subject(name)],
            num_replicas: replicas,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            max_age,
            ..Default::default()
        })
        .await
        .map_err(|e| failed(e.to_string()))?;
    let writer = StreamWriter {
        jetstream: publishing,
        subject: subject(name),
    };
    Ok((stream, writer))
}

/// The message id of an event: its own id when it has one, else a hash of
/// its bytes, so a retried event without an id is still a repeat to
/// JetStream. Prefixed so the two kinds never collide, and hashed when the
/// id holds characters a header value cannot carry.
pub fn message_id(event: &Event, line: &str) -> String {
    let hex = |bytes: &[u8]| -> String {
        Sha1::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    match &event.id {
        Some(id) if id.bytes().all(|b| b.is_ascii_graphic()) => format!("i:{id}"),
        Some(id) => format!("j:{}", hex(id.as_bytes())),
        None => format!("h:{}", hex(line.as_bytes())),
    }
}

impl StreamWriter {
    /// Publishes every event of a batch (pipelined) and waits for every
    /// acknowledgement. An error means some may have been stored: those will
    /// be applied on every node, and a retry with the same ids is harmless.
    pub async fn publish(
        &self,
        events: &[Event],
        received: Timestamp,
    ) -> Result<Vec<Ack>, StreamError> {
        let total = events.len();
        let failed = |acked: usize, message: String| StreamError::NotAcknowledged {
            acked,
            total,
            message,
        };
        let received = received.as_millisecond().to_string();
        let mut pending = Vec::with_capacity(total);
        let mut first_error = None;
        for event in events {
            let line = event.to_json_line();
            let id = message_id(event, &line);
            let message = jetstream::message::PublishMessage::build()
                .payload(line.into())
                .message_id(id)
                .header(RECEIVED_HEADER, received.as_str());
            match self
                .jetstream
                .send_publish(self.subject.clone(), message)
                .await
            {
                Ok(sent) => pending.push(sent),
                Err(e) => {
                    first_error = Some(e.to_string());
                    break;
                }
            }
        }
        let mut acks = Vec::with_capacity(total);
        // Every future is awaited, so the count of acknowledged ones is true;
        // all at once, since each one's timeout starts when it is first
        // polled: one by one, a cluster without quorum would hold the batch
        // for a timeout per event.
        let answers = futures_util::future::join_all(
            pending
                .into_iter()
                .map(std::future::IntoFuture::into_future),
        )
        .await;
        for answer in answers {
            match answer {
                Ok(ack) => acks.push(Ack {
                    seq: ack.sequence,
                    duplicate: ack.duplicate,
                }),
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        match first_error {
            None => Ok(acks),
            Some(message) => Err(failed(acks.len(), message)),
        }
    }
}

/// The stream's last sequence now (0 when empty).
pub async fn last_sequence(stream: &mut stream::Stream) -> Result<u64, StreamError> {
    stream
        .info()
        .await
        .map(|info| info.state.last_sequence)
        .map_err(|e| StreamError::Open {
            stream: stream.cached_info().config.name.clone(),
            message: e.to_string(),
        })
}

/// Follows the stream from the message after `applied` for ever, handing
/// every message, in stream order, to `applier`; returns when the applier
/// is gone. A consumer that fails (a server died, the connection dropped)
/// is made again from the first sequence not yet handed over, so nothing is
/// skipped, and anything at or before it is never handed over twice.
pub async fn follow(stream: stream::Stream, applied: u64, applier: mpsc::Sender<Vec<Delivered>>) {
    let mut through = applied;
    loop {
        match follow_once(&stream, &mut through, &applier).await {
            Ok(()) => return,
            Err(why) => {
                if applier.is_closed() {
                    return;
                }
                tracing::warn!(
                    "following stream {}: {why}; following again after seq {through}",
                    stream.cached_info().config.name
                );
                tokio::time::sleep(REFOLLOW_PAUSE).await;
            }
        }
    }
}

/// One ordered consumer from `through + 1`: `Ok` once the applier is gone,
/// `Err` when the consumer must be made again.
async fn follow_once(
    stream: &stream::Stream,
    through: &mut u64,
    applier: &mpsc::Sender<Vec<Delivered>>,
) -> Result<(), String> {
    let config = consumer::pull::OrderedConfig {
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: *through + 1,
        },
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| format!("creating its consumer: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("reading its consumer: {e}"))?;
    let mut watched = stream.clone();
    loop {
        let first = match tokio::time::timeout(STALL_CHECK, messages.next()).await {
            Ok(Some(first)) => first,
            Ok(None) => return Err("the consumer ended".into()),
            Err(_) => {
                // Quiet: fine if the stream is too. A consumer whose server
                // died goes quiet while the stream moves on, and the client
                // notices only after missed heartbeats (tens of seconds).
                match last_sequence(&mut watched).await {
                    Ok(last) if last > *through => {
                        return Err(format!(
                            "the consumer stalled at seq {through} while the stream is at {last}"
                        ));
                    }
                    _ => continue,
                }
            }
        };
        let mut chunk = Vec::new();
        let mut next = Some(first);
        let mut failed = None;
        // Takes what is already there without waiting, so a catch-up
        // commits thousands of events at once and a quiet stream one.
        while let Some(message) = next {
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            };
            if let Some(delivered) = decode(&message)
                && delivered.seq > *through
            {
                *through = delivered.seq;
                chunk.push(delivered);
            }
            if chunk.len() >= CHUNK_MESSAGES {
                break;
            }
            next = futures_util::FutureExt::now_or_never(messages.next()).flatten();
        }
        // `through` counts what is in the chunk: it goes to the applier
        // before any failure is reported, or the next consumer would skip it.
        if !chunk.is_empty() && applier.send(chunk).await.is_err() {
            return Ok(());
        }
        if let Some(why) = failed {
            return Err(why);
        }
    }
}

/// A message as the applier takes it; `None` for one without JetStream
/// metadata (not from a consumer). An unreadable event or received time is
/// logged and kept as a gap-free `event: None`, so the sequence still moves.
fn decode(message: &jetstream::Message) -> Option<Delivered> {
    let seq = message.info().ok()?.stream_sequence;
    let received = message
        .headers
        .as_ref()
        .and_then(|h: &HeaderMap| h.get(RECEIVED_HEADER))
        .and_then(|v| v.as_str().parse::<i64>().ok())
        .and_then(|ms| Timestamp::from_millisecond(ms).ok());
    let event = std::str::from_utf8(&message.payload)
        .map_err(|e| e.to_string())
        .and_then(|line| Event::from_stored(line).map_err(|e| e.to_string()));
    match (received, event) {
        (Some(received), Ok(event)) => Some(Delivered {
            seq,
            received,
            event: Some(event),
        }),
        (received, event) => {
            tracing::warn!(
                "stream message {seq} skipped: {}",
                event.err().unwrap_or_else(|| "no received time".into())
            );
            Some(Delivered {
                seq,
                received: received.unwrap_or(Timestamp::UNIX_EPOCH),
                event: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> Event {
        Event::from_stored(line).expect("event")
    }

    /// Ids survive as they are; events without one get the same id for the
    /// same bytes and another for other bytes; ids a header cannot hold are hashed.
    #[test]
    fn message_ids_are_deterministic_and_header_safe() {
        let with = event(r#"{"id":"e1","call":"c1","at":"2026-11-20T09:00:00Z","type":"ended"}"#);
        assert_eq!(message_id(&with, &with.to_json_line()), "i:e1");
        let without = event(r#"{"call":"c1","at":"2026-11-20T09:00:00Z","type":"ended"}"#);
        let other = event(r#"{"call":"c2","at":"2026-11-20T09:00:00Z","type":"ended"}"#);
        let id = message_id(&without, &without.to_json_line());
        assert!(id.starts_with("h:") && id.len() == 42, "{id}");
        assert_eq!(id, message_id(&without, &without.to_json_line()));
        assert_ne!(id, message_id(&other, &other.to_json_line()));
        let odd =
            event(r#"{"id":"a b\r\n","call":"c1","at":"2026-11-20T09:00:00Z","type":"ended"}"#);
        let id = message_id(&odd, &odd.to_json_line());
        assert!(id.starts_with("j:") && id.is_ascii(), "{id}");
    }
}
