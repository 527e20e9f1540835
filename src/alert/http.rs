//! One JSON POST to a target over HTTP/1.1, plain or TLS (rustls with the
//! ring provider and the web PKI roots, as the AMI source connects). Built
//! on hyper's client connection rather than reqwest: the project's reqwest
//! has no TLS, and its rustls feature either builds aws-lc (cmake, a C
//! toolchain) or makes every `Client::new()` in the program panic until a
//! process-wide crypto provider is installed.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use reqwest::Url;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// The start of a reply's body kept for the log (Slack explains a 400 there).
const REPLY_BYTES: usize = 512;

/// What the target answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, if it gave one.
    pub retry_after_secs: Option<u64>,
    /// The start of its body, lossily as text.
    pub body: String,
}

/// Why a POST got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// No TCP connection.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// The TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The connection broke or the answer was not HTTP.
    #[error("HTTP: {0}")]
    Http(String),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Posts `body` (JSON) to `url` with an extra `header`, giving up after `timeout`.
pub async fn post_json(
    url: &Url,
    header: Option<&(String, String)>,
    body: Bytes,
    timeout: Duration,
) -> Result<Reply, PostError> {
    tokio::time::timeout(timeout, post(url, header, body))
        .await
        .map_err(|_| PostError::Timeout(timeout))?
}

async fn post(
    url: &Url,
    header: Option<&(String, String)>,
    body: Bytes,
) -> Result<Reply, PostError> {
    // Validated at start: http or https with a host.
    let host = url.host_str().unwrap_or_default();
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let stream = TcpStream::connect((bare_host, port))
        .await
        .map_err(PostError::Connect)?;
    let _ = stream.set_nodelay(true);
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let mut request = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(
            header::USER_AGENT,
            concat!("wallboard/", env!("CARGO_PKG_VERSION")),
        );
    if let Some((name, value)) = header {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Body::from(body))
        .map_err(|e| PostError::Http(e.to_string()))?;
    if url.scheme() == "https" {
        let name = ServerName::try_from(bare_host.to_owned())
            .map_err(|e| PostError::Tls(e.to_string()))?;
        let stream = TlsConnector::from(tls_config())
            .connect(name, stream)
            .await
            .map_err(|e| PostError::Tls(e.to_string()))?;
        exchange(stream, request).await
    } else {
        exchange(stream, request).await
    }
}

/// Sends one request on a fresh connection and reads the answer.
async fn exchange<S>(stream: S, request: Request<Body>) -> Result<Reply, PostError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |e: hyper::Error| PostError::Http(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    // The connection is driven by its own task; it ends when the sender is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status().as_u16();
    let retry_after_secs = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let mut body = Body::new(response.into_body()).into_data_stream();
    let mut kept = Vec::new();
    // Only the start is kept; the rest is left unread (the connection closes).
    while kept.len() < REPLY_BYTES {
        match futures_util::StreamExt::next(&mut body).await {
            Some(Ok(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(REPLY_BYTES);
    Ok(Reply {
        status,
        retry_after_secs,
        body: String::from_utf8_lossy(&kept).into_owned(),
    })
}

/// The TLS client configuration, built once.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = ClientConfig::builder_with_provider(Arc::new(ring_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports TLS 1.2 and 1.3")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// rustls's ring provider (see the AMI client for why not aws-lc-rs).
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
