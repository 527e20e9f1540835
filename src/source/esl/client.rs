//! The live `esl` source: an inbound event-socket client that logs in,
//! subscribes to `CUSTOM callcenter::info CHANNEL_HANGUP_COMPLETE`, maps
//! each `text/event-plain` frame and reconnects through the shared
//! [`reconnect`] loop. The mapping's state (held exits, agents' status)
//! lives across reconnects.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::EslSettings;
use super::frame::{Headers, MAX_BODY_BYTES, MAX_HEADER_BYTES};
use super::map::{Lookahead, Mapper, Record};
use crate::event::Event;
use crate::source::{Context, Link, Session, Stopped, reconnect};

/// What we subscribe to: mod_callcenter's events and the callers' hang-ups.
pub const SUBSCRIPTION: &str = "event plain CUSTOM callcenter::info CHANNEL_HANGUP_COMPLETE";
/// Connecting and each step of the login may take this long.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often held exits are checked against the clock.
const DUE_EVERY: Duration = Duration::from_secs(1);
/// Frames read ahead of the mapping (the reader stops when it is full).
const FRAMES_AHEAD: usize = 64;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum EslError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// FreeSWITCH closed the connection.
    #[error("the event socket closed")]
    Closed,
    /// FreeSWITCH refused the password or the subscription.
    #[error("{0}")]
    Refused(String),
    /// The stream is no longer made of frames.
    #[error("framing lost: {0}")]
    Framing(String),
    /// A step of the login took too long.
    #[error("no answer within {LOGIN_TIMEOUT:?}")]
    Timeout,
    /// The password could not be read.
    #[error("{0}")]
    Password(String),
    /// The server stops.
    #[error(transparent)]
    Shutdown(#[from] Stopped),
}

/// One frame of the socket.
#[derive(Debug)]
pub enum Frame {
    /// Headers and body.
    Full {
        /// The frame's own headers (`Content-Type`, `Content-Length`...).
        headers: Headers,
        /// The body (`Content-Length` bytes), empty when there is none.
        body: Vec<u8>,
    },
    /// A body over [`MAX_BODY_BYTES`], read past and dropped.
    Oversized {
        /// Its `Content-Length`.
        length: usize,
    },
}

/// Runs the source until the server stops.
pub async fn run(context: Context, settings: EslSettings) {
    let mut mapper = Mapper::new(context.naming().clone(), settings.continue_secs);
    // Held exits and calls under way come back from before a restart.
    let saved = context.checkpoint();
    if let Some(state) = saved.as_ref().and_then(|s| s.get("mapping")) {
        mapper.restore(state);
    }
    let mut esl = Esl {
        context: context.clone(),
        settings,
        mapping: Mapping { mapper, saved },
    };
    reconnect(&context, &mut esl).await;
}

/// The source between connections: the mapping's state outlives each.
struct Esl {
    context: Context,
    settings: EslSettings,
    mapping: Mapping,
}

/// The mapping and the checkpoint saved of it last.
struct Mapping {
    mapper: Mapper,
    saved: Option<Value>,
}

impl Mapping {
    /// Hands events to the store (retrying while it refuses), then saves the
    /// mapping's state if it changed, so a restart keeps held exits; `Err`
    /// only when the server stops meanwhile.
    async fn store(
        &mut self,
        context: &Context,
        link: &mut Link,
        events: Vec<Event>,
    ) -> Result<(), EslError> {
        if events.is_empty() {
            return Ok(());
        }
        link.mapped();
        context.store(events).await?;
        let checkpoint = json!({ "mapping": self.mapper.save() });
        if self.saved.as_ref() != Some(&checkpoint) {
            context.store_checkpoint(&checkpoint).await?;
            self.saved = Some(checkpoint);
        }
        Ok(())
    }
}

impl Session for Esl {
    type Error = EslError;

    fn run(&mut self, link: &mut Link) -> impl Future<Output = Result<(), EslError>> + Send {
        connection(&self.context, &self.settings, &mut self.mapping, link)
    }
}

/// One connection: login, subscription, then frames until it ends.
async fn connection(
    context: &Context,
    settings: &EslSettings,
    mapping: &mut Mapping,
    link: &mut Link,
) -> Result<(), EslError> {
    // While we were away held exits may have come due (machine clock).
    if !context.feed_clock() {
        let due = mapping.mapper.due(context.now());
        mapping.store(context, link, due).await?;
    }
    let password = settings.password().map_err(EslError::Password)?;
    let (mut read, write) = login(settings, &password).await?;
    link.up();

    // A task of its own reads frames, so the clock's ticks never cut one.
    let (frames, mut received) = mpsc::channel(FRAMES_AHEAD);
    let reader = tokio::spawn(async move {
        loop {
            let frame = read_frame(&mut read).await;
            let end = !matches!(frame, Ok(Some(_)));
            if frames.send(frame).await.is_err() || end {
                return;
            }
        }
    });
    let result = follow(context, mapping, &mut received, link).await;
    reader.abort();
    // Kept until here: dropping the write half would half-close the socket.
    drop(write);
    result
}

async fn follow(
    context: &Context,
    mapping: &mut Mapping,
    received: &mut mpsc::Receiver<Result<Option<Frame>, EslError>>,
    link: &mut Link,
) -> Result<(), EslError> {
    let mut tick = tokio::time::interval(DUE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut frame_no: u64 = 0;
    loop {
        let frame = tokio::select! {
            _ = tick.tick(), if !context.feed_clock() => {
                let due = mapping.mapper.due(context.now());
                mapping.store(context, link, due).await?;
                continue;
            }
            frame = received.recv() => frame,
        };
        frame_no += 1;
        let events = match frame {
            None | Some(Ok(None)) => return Err(EslError::Closed),
            Some(Err(e)) => return Err(e),
            Some(Ok(Some(frame))) => on_frame(context, &mut mapping.mapper, frame, frame_no)?,
        };
        mapping.store(context, link, events).await?;
    }
}

/// The events of one frame; skipped frames are counted.
fn on_frame(
    context: &Context,
    mapper: &mut Mapper,
    frame: Frame,
    frame_no: u64,
) -> Result<Vec<Event>, EslError> {
    let position = format!("frame {frame_no}");
    let (headers, body) = match frame {
        Frame::Oversized { length } => {
            context
                .status()
                .skip(&position, &format!("a body of {length} bytes is too large"));
            return Ok(Vec::new());
        }
        Frame::Full { headers, body } => (headers, body),
    };
    match headers.get("Content-Type").map(str::trim) {
        Some("text/event-plain") => {}
        Some("text/disconnect-notice") => {
            return Err(EslError::Refused(
                "FreeSWITCH closed the event socket".into(),
            ));
        }
        // Replies and anything new: no event in them.
        _ => return Ok(Vec::new()),
    }
    let record = match Record::read(&body, || context.now()) {
        Ok(record) => record,
        Err(why) => {
            context.status().skip(&position, &why);
            return Ok(Vec::new());
        }
    };
    // Under the feed clock, time moves with the events themselves.
    let mut events = if context.feed_clock() {
        mapper.due(record.at())
    } else {
        Vec::new()
    };
    match mapper.apply(&record, Lookahead::Unknown) {
        Ok(more) => events.extend(more),
        Err(why) => context.status().skip(&position, &why),
    }
    Ok(events)
}

/// Connects, logs in and subscribes; the socket's halves, ready for events.
async fn login(
    settings: &EslSettings,
    password: &str,
) -> Result<(BufReader<OwnedReadHalf>, OwnedWriteHalf), EslError> {
    let stream = login_step(TcpStream::connect((settings.host.as_str(), settings.port))).await?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, "auth/request", None).await?;
    send(&mut write, &format!("auth {password}")).await?;
    expect(&mut read, "command/reply", Some("auth")).await?;
    send(&mut write, SUBSCRIPTION).await?;
    expect(&mut read, "command/reply", Some("event")).await?;
    Ok((read, write))
}

async fn login_step<T>(step: impl Future<Output = std::io::Result<T>>) -> Result<T, EslError> {
    match tokio::time::timeout(LOGIN_TIMEOUT, step).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(EslError::Timeout),
    }
}

/// Sends a command (ended by the blank line the socket expects).
async fn send(write: &mut OwnedWriteHalf, command: &str) -> Result<(), EslError> {
    login_step(write.write_all(format!("{command}\n\n").as_bytes())).await
}

/// Reads the next frame, which must be of `content_type` and, for a reply
/// to `command`, say `+OK`.
async fn expect<R: AsyncBufRead + Unpin>(
    read: &mut R,
    content_type: &str,
    command: Option<&str>,
) -> Result<(), EslError> {
    let frame = login_step(async { Ok(read_frame(read).await) }).await??;
    let headers = match frame {
        Some(Frame::Full { headers, .. }) => headers,
        Some(Frame::Oversized { .. }) => return Err(EslError::Framing("oversized reply".into())),
        None => return Err(EslError::Closed),
    };
    let got = headers.get("Content-Type").unwrap_or("").trim();
    if got == "text/rude-rejection" {
        return Err(EslError::Refused(
            "FreeSWITCH refused this address (its apply-inbound-acl)".into(),
        ));
    }
    if got != content_type {
        return Err(EslError::Refused(format!(
            "expected {content_type}, got {got:?}"
        )));
    }
    if let Some(command) = command {
        let reply = headers.get("Reply-Text").unwrap_or("").trim();
        if !reply.starts_with("+OK") {
            return Err(EslError::Refused(format!("{command} refused: {reply:?}")));
        }
    }
    Ok(())
}

/// Reads one frame: a header section, then `Content-Length` bytes of body.
/// `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncBufRead + Unpin>(read: &mut R) -> Result<Option<Frame>, EslError> {
    let mut section = Vec::new();
    loop {
        let room = (MAX_HEADER_BYTES + 1).saturating_sub(section.len()) as u64;
        let before = section.len();
        let n = (&mut *read)
            .take(room)
            .read_until(b'\n', &mut section)
            .await?;
        if n == 0 {
            if section.iter().all(|b| b.is_ascii_whitespace()) {
                return Ok(None);
            }
            return Err(EslError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if section.len() > MAX_HEADER_BYTES {
            return Err(EslError::Framing(format!(
                "a header section over {MAX_HEADER_BYTES} bytes"
            )));
        }
        let line = &section[before..];
        if line == b"\n" || line == b"\r\n" {
            if before == 0 {
                // A stray blank line between frames.
                section.clear();
                continue;
            }
            break;
        }
    }
    let headers = Headers::parse(&section);
    let length = headers
        .content_length()
        .map_err(EslError::Framing)?
        .unwrap_or(0);
    if length > MAX_BODY_BYTES {
        let skipped = tokio::io::copy(
            &mut (&mut *read).take(length as u64),
            &mut tokio::io::sink(),
        )
        .await?;
        if skipped < length as u64 {
            return Err(EslError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        return Ok(Some(Frame::Oversized { length }));
    }
    let mut body = vec![0; length];
    read.read_exact(&mut body).await?;
    Ok(Some(Frame::Full { headers, body }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(bytes: &[u8]) -> Vec<Result<Option<Frame>, EslError>> {
        let mut read = BufReader::new(bytes);
        let mut out = Vec::new();
        loop {
            let frame = read_frame(&mut read).await;
            let end = !matches!(frame, Ok(Some(_)));
            out.push(frame);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn frames_are_read_with_their_bodies() {
        let body = "Event-Name: CUSTOM\nCC-Action: agent-offering\n\n";
        let wire = format!(
            "Content-Type: auth/request\n\n\nContent-Length: {}\nContent-Type: text/event-plain\n\n{body}",
            body.len()
        );
        let got = frames(wire.as_bytes()).await;
        assert_eq!(got.len(), 3);
        let Ok(Some(Frame::Full { headers, body: b })) = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(headers.get("Content-Type"), Some("text/event-plain"));
        assert_eq!(b, body.as_bytes());
        assert!(matches!(got[2], Ok(None)));
    }

    #[tokio::test]
    async fn the_login_reads_replies_and_rejections() {
        let ok = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n";
        assert!(
            expect(&mut &ok[..], "command/reply", Some("auth"))
                .await
                .is_ok()
        );
        let refused = b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n";
        let e = expect(&mut &refused[..], "command/reply", Some("auth")).await;
        assert!(
            matches!(&e, Err(EslError::Refused(m)) if m.contains("auth refused")),
            "{e:?}"
        );
        let acl =
            b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n";
        let e = expect(&mut &acl[..], "auth/request", None).await;
        assert!(
            matches!(&e, Err(EslError::Refused(m)) if m.contains("apply-inbound-acl")),
            "{e:?}"
        );
        let e = expect(&mut &b""[..], "auth/request", None).await;
        assert!(matches!(e, Err(EslError::Closed)), "{e:?}");
    }

    #[tokio::test]
    async fn oversized_bodies_are_skipped_and_broken_framing_is_an_error() {
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        let wire = format!(
            "Content-Length: {}\nContent-Type: text/event-plain\n\n{big}Content-Type: command/reply\n\n",
            big.len()
        );
        let got = frames(wire.as_bytes()).await;
        assert!(
            matches!(got[0], Ok(Some(Frame::Oversized { .. }))),
            "{got:?}"
        );
        assert!(matches!(got[1], Ok(Some(Frame::Full { .. }))), "{got:?}");

        let got = frames(b"Content-Length: ten\n\n").await;
        assert!(matches!(got[0], Err(EslError::Framing(_))), "{got:?}");
        let endless = "X".repeat(MAX_HEADER_BYTES + 10);
        let got = frames(endless.as_bytes()).await;
        assert!(matches!(got[0], Err(EslError::Framing(_))), "{got:?}");
        let got = frames(b"Content-Length: 10\n\nshort").await;
        assert!(matches!(got[0], Err(EslError::Io(_))), "{got:?}");
    }
}
