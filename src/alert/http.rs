//! One JSON POST to a target over HTTP/1.1, plain or TLS (rustls with the
//! ring provider, trusting the web PKI roots or a `ca_file`, as the AMI
//! source connects). Built
//! on hyper's client connection rather than reqwest: the project's reqwest
//! has no TLS, and its rustls feature either builds aws-lc (cmake, a C
//! toolchain) or makes every `Client::new()` in the program panic until a
//! process-wide crypto provider is installed.

use std::path::Path;
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
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
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

/// Where and how to post.
pub struct Endpoint<'a> {
    /// The URL (http or https, with a host).
    pub url: &'a Url,
    /// An extra header (the webhook's secret).
    pub header: Option<&'a (String, String)>,
    /// Whom to trust over https.
    pub tls: &'a Arc<ClientConfig>,
}

/// Posts `body` (JSON) to `to`, giving up after `timeout`.
pub async fn post_json(
    to: &Endpoint<'_>,
    body: Bytes,
    timeout: Duration,
) -> Result<Reply, PostError> {
    tokio::time::timeout(timeout, post(to, body))
        .await
        .map_err(|_| PostError::Timeout(timeout))?
}

async fn post(to: &Endpoint<'_>, body: Bytes) -> Result<Reply, PostError> {
    let url = to.url;
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
    if let Some((name, value)) = to.header {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Body::from(body))
        .map_err(|e| PostError::Http(e.to_string()))?;
    if url.scheme() == "https" {
        let name = ServerName::try_from(bare_host.to_owned())
            .map_err(|e| PostError::Tls(e.to_string()))?;
        let stream = TlsConnector::from(to.tls.clone())
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
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(http)?;
        Ok(read_reply(response).await)
    };
    tokio::pin!(exchange);
    // The connection is driven here, not in a task of its own, so a target
    // that never answers holds no socket once the try times out.
    tokio::select! {
        reply = &mut exchange => reply,
        // Closed first: what was received is still read, then the exchange ends.
        _ = connection => exchange.await,
    }
}

/// The status, `Retry-After` and the start of the body.
async fn read_reply(response: axum::http::Response<hyper::body::Incoming>) -> Reply {
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
    Reply {
        status,
        retry_after_secs,
        body: String::from_utf8_lossy(&kept).into_owned(),
    }
}

/// The TLS client configuration: trusting the web PKI roots (built once,
/// shared), or only the PEM certificates in `ca_file`.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    static WEB_PKI: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let Some(path) = ca_file else {
        let config = WEB_PKI.get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            client_config(roots)
        });
        return Ok(config.clone());
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| e.to_string())?;
    for cert in certs {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    if roots.is_empty() {
        return Err("no PEM certificate in it".to_owned());
    }
    Ok(client_config(roots))
}

fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(Arc::new(ring_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// rustls's ring provider (see the AMI client for why not aws-lc-rs).
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
