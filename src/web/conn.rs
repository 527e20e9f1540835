//! Accepting connections: counts them per client address and in total
//! (refusing the excess with a 503), gives each a deadline for its request
//! headers, hands the app each client's address (`ConnectInfo`), and drains
//! them on shutdown. A WebSocket keeps its connection's count until it closes.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use dashmap::DashMap;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use crate::security::Limits;

/// Open connections, in total and per client address.
#[derive(Default)]
pub struct Connections {
    total: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
}

/// One counted connection; dropping it frees its place.
pub struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// A place for a connection from `ip`, or `None` when a limit is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, per_ip: usize, total: usize) -> Option<Slot> {
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < total).then_some(n + 1)
            })
            .ok()?;
        let mut count = self.per_ip.entry(ip).or_insert(0);
        if *count >= per_ip {
            drop(count);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        *count += 1;
        Some(Slot {
            connections: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let per_ip = &self.connections.per_ip;
        if let dashmap::Entry::Occupied(mut count) = per_ip.entry(self.ip) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
        self.connections.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP stream that holds its [`Slot`] for as long as it lives (through an upgrade too).
struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Refusals answered at once at most; past that a connection over the limit
/// is closed without an answer, so a flood cannot hold sockets and tasks.
const MAX_REFUSALS_IN_FLIGHT: usize = 1024;

const REFUSAL_BODY: &str =
    r#"{"error":"too many connections (limits.max_connections_per_ip or limits.max_connections)"}"#;

/// Answers a connection over a limit with a 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    let answer = async {
        let refusal = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             connection: close\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{REFUSAL_BODY}",
            REFUSAL_BODY.len()
        );
        stream.write_all(refusal.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent so closing does not reset the connection under our answer.
        let mut sink = [0u8; 4096];
        let mut read = 0;
        while read < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
}

/// How long a stopping server waits for open requests and sockets to finish.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let connections = Arc::new(Connections::default());
    let refusing = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (closing, closing_signal) = watch::channel(false);
    let (open_tx, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(stop);
    loop {
        let (stream, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Some(slot) = connections.admit(
            address.ip(),
            limits.max_connections_per_ip,
            limits.max_connections,
        ) else {
            tracing::debug!("refused a connection over the limit");
            use std::sync::atomic::Ordering::Relaxed;
            if refusing.fetch_add(1, Relaxed) < MAX_REFUSALS_IN_FLIGHT {
                let refusing = refusing.clone();
                tokio::spawn(async move {
                    refuse(stream).await;
                    refusing.fetch_sub(1, Relaxed);
                });
            } else {
                refusing.fetch_sub(1, Relaxed);
                drop(stream);
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Counted {
            stream,
            _slot: slot,
        });
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(address));
                request
            },
        ));
        let header_read_timeout = limits.header_read_timeout;
        let mut closing_signal = closing_signal.clone();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let connection = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(connection);
            let closing = closing_signal.wait_for(|closing| *closing);
            tokio::pin!(closing);
            let mut draining = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!("connection from a client ended: {e}");
                        }
                        break;
                    }
                    _ = &mut closing, if !draining => {
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    drop(open_tx);
    // In-flight requests finish and WebSockets close (1001); a client that
    // holds on past the drain time is cut off.
    if tokio::time::timeout(DRAIN, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!("stopping with connections still open after {DRAIN:?}");
    }
    Ok(())
}

/// Out of file descriptors and the like: wait a little rather than spin.
async fn accept_error(e: io::Error) {
    let per_connection = matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    );
    if !per_connection {
        tracing::error!("accepting a connection: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_in_total() {
        let connections = Arc::new(Connections::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = connections.admit(a, 2, 3).unwrap();
        let _second = connections.admit(a, 2, 3).unwrap();
        assert!(connections.admit(a, 2, 3).is_none(), "per address");
        let _third = connections.admit(b, 2, 3).unwrap();
        assert!(connections.admit(b, 2, 3).is_none(), "in total");
        assert_eq!(connections.open(), 3);
        drop(first);
        assert!(connections.admit(a, 2, 3).is_some());
        assert_eq!(connections.per_ip.len(), 2);
    }
}
