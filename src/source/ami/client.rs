//! The live AMI client: connects, reads the banner, logs in, asks for
//! `QueueStatus` after every (re)connection to rebuild what it missed, pings,
//! and feeds event blocks through the [`Mapper`]. It reconnects through the
//! shared [`reconnect`] loop, which reports its state. With `tls` the TCP
//! stream is wrapped in rustls; everything past the handshake is generic over
//! the stream.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::AmiSettings;
use super::map::{Arrival, Mapper};
use super::wire::{Frame, Framer};
use crate::event::Event;
use crate::source::{Context, Link, Session, Stopped, reconnect};

/// How long connecting, the banner and the login may take.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The secret file could not be read.
    #[error("secret_file: {0}")]
    Secret(std::io::Error),
    /// The manager could not be reached.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    /// The certificates to trust could not be read.
    #[error("ca_file: {0}")]
    CaFile(String),
    /// The TLS handshake failed (an untrusted certificate, a wrong name...).
    #[error("TLS: {0}")]
    Tls(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Something took longer than it may.
    #[error("{0} within {1:?}")]
    Timeout(&'static str, Duration),
    /// The peer is no Asterisk manager.
    #[error("not an Asterisk manager: the banner was {0:?}")]
    Banner(String),
    /// Asterisk refused the login.
    #[error("login refused: {0}")]
    Login(String),
    /// Asterisk closed the connection.
    #[error("the connection was closed by Asterisk")]
    Closed,
    /// A ping went unanswered.
    #[error("no answer to Ping within {0:?}")]
    PingUnanswered(Duration),
    /// The server is stopping.
    #[error(transparent)]
    Stopping(#[from] Stopped),
}

/// Runs the source until the server stops.
pub async fn run(settings: AmiSettings, context: Context) {
    let mapper = Mapper::new(context.naming().clone());
    let mut ami = Ami {
        settings,
        context: context.clone(),
        mapper,
    };
    reconnect(&context, &mut ami).await;
}

/// The source between sessions: the mapping's state outlives a connection.
struct Ami {
    settings: AmiSettings,
    context: Context,
    mapper: Mapper,
}

impl Session for Ami {
    type Error = SessionError;

    fn run(&mut self, link: &mut Link) -> impl Future<Output = Result<(), SessionError>> + Send {
        session(&self.settings, &self.context, &mut self.mapper, link)
    }
}

/// One connection: handshake, resync, then events until it fails.
async fn session(
    settings: &AmiSettings,
    context: &Context,
    mapper: &mut Mapper,
    link: &mut Link,
) -> Result<(), SessionError> {
    let secret = settings.secret().map_err(SessionError::Secret)?;
    let address = (settings.host.as_str(), settings.port);
    let stream = within("could not connect", TcpStream::connect(address))
        .await?
        .map_err(|e| SessionError::Connect(format!("{}:{}", settings.host, settings.port), e))?;
    if settings.tls {
        let stream = within("no TLS handshake", tls(settings, stream)).await??;
        speak(settings, &secret, context, mapper, link, stream).await
    } else {
        speak(settings, &secret, context, mapper, link, stream).await
    }
}

/// Wraps `stream` in TLS, trusting `ca_file` or else the web PKI roots.
async fn tls(
    settings: &AmiSettings,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SessionError> {
    let mut roots = RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let failed = |e: &dyn std::fmt::Display| {
                SessionError::CaFile(format!("{}: {e}", path.display()))
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| failed(&e))? {
                roots
                    .add(cert.map_err(|e| failed(&e))?)
                    .map_err(|e| failed(&e))?;
            }
            if roots.is_empty() {
                return Err(failed(&"no PEM certificate in it"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| SessionError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Checked when the configuration was read.
    let name = settings
        .tls_name()
        .map_err(|e| SessionError::Tls(e.to_string()))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| SessionError::Tls(e.to_string()))
}

/// rustls's ring provider, named here so no process-wide default need be
/// installed. rustls 0.23.48 deprecates it for lacking post-quantum key
/// exchange, which only its aws-lc-rs provider has; that one needs cmake
/// and a C toolchain to build, and Asterisk's manager does not offer
/// post-quantum groups anyway.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The session over a connected stream: banner, login, resync, events.
async fn speak<S>(
    settings: &AmiSettings,
    secret: &str,
    context: &Context,
    mapper: &mut Mapper,
    link: &mut Link,
    stream: S,
) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut conn = Connection {
        read,
        framer: Framer::with_banner(),
        frames: std::collections::VecDeque::new(),
        chunk: vec![0; READ_CHUNK].into_boxed_slice(),
    };
    match within("no banner", conn.next()).await?? {
        Frame::Banner(line) if line.starts_with("Asterisk Call Manager/") => {}
        Frame::Banner(line) => return Err(SessionError::Banner(line)),
        _ => return Err(SessionError::Banner(String::new())),
    }
    let login = format!(
        "Action: Login\r\nActionID: wallboard-login\r\nUsername: {}\r\nSecret: {}\r\nEvents: on\r\n\r\n",
        one_line(&settings.username),
        one_line(secret)
    );
    write.write_all(login.as_bytes()).await?;
    within("no answer to Login", login_answer(&mut conn)).await??;
    link.up();
    write
        .write_all(b"Action: QueueStatus\r\nActionID: wallboard-resync\r\n\r\n")
        .await?;
    events(settings, context, mapper, &mut conn, &mut write, link).await
}

/// Waits for the answer to our login.
async fn login_answer<S: AsyncRead>(conn: &mut Connection<S>) -> Result<(), SessionError> {
    loop {
        let Frame::Block(block) = conn.next().await? else {
            continue;
        };
        match block.present("Response") {
            Some(r) if r.eq_ignore_ascii_case("Success") => return Ok(()),
            Some(_) => {
                let message = block.present("Message").unwrap_or("no reason given");
                return Err(SessionError::Login(message.to_owned()));
            }
            None => {}
        }
    }
}

/// Reads events, pings, and ingests until the connection fails.
async fn events<S: AsyncRead + AsyncWrite>(
    settings: &AmiSettings,
    context: &Context,
    mapper: &mut Mapper,
    conn: &mut Connection<S>,
    write: &mut WriteHalf<S>,
    link: &mut Link,
) -> Result<(), SessionError> {
    let mut ping = tokio::time::interval_at(
        Instant::now() + settings.ping_every(),
        settings.ping_every(),
    );
    let mut ping_sent: Option<Instant> = None;
    let mut pings = 0u64;
    let mut blocks = 0u64;
    let shutdown = context.shutdown();
    loop {
        let deadline = ping_sent.map(|at| at + settings.ping_timeout());
        tokio::select! {
            frames = conn.more() => {
                let mut batch = Vec::new();
                for frame in frames? {
                    blocks += 1;
                    if handle(frame, blocks, context, mapper, &mut batch) {
                        ping_sent = None;
                    }
                }
                if !batch.is_empty() {
                    link.mapped();
                    context.store(batch).await?;
                }
            }
            _ = ping.tick() => {
                if ping_sent.is_none() {
                    pings += 1;
                    let action = format!("Action: Ping\r\nActionID: wallboard-ping-{pings}\r\n\r\n");
                    write.write_all(action.as_bytes()).await?;
                    ping_sent = Some(Instant::now());
                }
            }
            () = sleep_until(deadline) => {
                return Err(SessionError::PingUnanswered(settings.ping_timeout()));
            }
            () = shutdown.clone().wait() => return Err(Stopped.into()),
        }
    }
}

/// Maps one frame into `batch`; `true` when it answers one of our pings.
fn handle(
    frame: Frame,
    n: u64,
    context: &Context,
    mapper: &mut Mapper,
    batch: &mut Vec<Event>,
) -> bool {
    let skip = |why: &str| {
        context
            .status()
            .skip(&format!("block {n} of this connection"), why)
    };
    let block = match frame {
        Frame::Block(block) => block,
        Frame::Oversized { .. } => {
            skip(&super::too_big());
            return false;
        }
        Frame::Banner(_) => return false,
    };
    if block.is_response() {
        return block
            .present("ActionID")
            .is_some_and(|id| id.starts_with("wallboard-ping-"));
    }
    if block.event().is_none() {
        skip("no Event header");
        return false;
    }
    // With a feed clock "now" is the feed's: the latest time the PBX gave.
    let received = match mapper.latest() {
        Some(latest) if context.feed_clock() => latest,
        _ => context.now(),
    };
    match mapper.map(&block, Arrival::Received(received)) {
        Ok(events) => batch.extend(events),
        Err(why) => skip(&why),
    }
    false
}

/// The reading side of a session, split into frames.
struct Connection<S> {
    read: ReadHalf<S>,
    framer: Framer,
    frames: std::collections::VecDeque<Frame>,
    chunk: Box<[u8]>,
}

impl<S: AsyncRead> Connection<S> {
    /// The next frame.
    async fn next(&mut self) -> Result<Frame, SessionError> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Ok(frame);
            }
            let more = self.more().await?;
            self.frames.extend(more);
        }
    }

    /// The frames the next read completes (cancel-safe: a read either
    /// happened whole or not at all).
    async fn more(&mut self) -> Result<Vec<Frame>, SessionError> {
        if !self.frames.is_empty() {
            return Ok(self.frames.drain(..).collect());
        }
        let n = self.read.read(&mut self.chunk).await?;
        if n == 0 {
            return Err(SessionError::Closed);
        }
        let mut out = Vec::new();
        self.framer.push(&self.chunk[..n], &mut out);
        Ok(out)
    }
}

async fn within<T>(
    what: &'static str,
    future: impl std::future::Future<Output = T>,
) -> Result<T, SessionError> {
    tokio::time::timeout(HANDSHAKE, future)
        .await
        .map_err(|_| SessionError::Timeout(what, HANDSHAKE))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A header value cannot hold a line break (it would end the header).
fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], "")
}
