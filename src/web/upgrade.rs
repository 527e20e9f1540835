//! The WebSocket handshake (RFC 6455, HTTP/1.1), in place of axum's
//! `WebSocketUpgrade`: it hands over tungstenite's own stream, which can send
//! a large message as fragments, so no connection keeps a write buffer the
//! size of the snapshot for its whole life (see `ws.rs`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// A WebSocket over an upgraded HTTP connection.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A request that is a valid WebSocket handshake.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request to a WebSocket route is not a WebSocket handshake.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Handshakes are GET requests.
    #[error("a WebSocket handshake is a GET request")]
    NotGet,
    /// A required header is missing or wrong.
    #[error("not a WebSocket handshake: {0}")]
    BadHeader(&'static str),
    /// A version of the protocol this server does not speak (RFC 6455
    /// §4.2.2: answered 426 with the version it does speak).
    #[error("Sec-WebSocket-Version is not 13")]
    Version,
    /// The connection cannot be taken over (not HTTP/1.1).
    #[error("this connection cannot be upgraded to a WebSocket")]
    NotUpgradable,
}

impl IntoResponse for UpgradeError {
    fn into_response(self) -> Response {
        let status = match self {
            UpgradeError::NotGet => StatusCode::METHOD_NOT_ALLOWED,
            UpgradeError::BadHeader(_) => StatusCode::BAD_REQUEST,
            UpgradeError::Version | UpgradeError::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
        };
        let mut response = (status, axum::Json(json!({"error": self.to_string()}))).into_response();
        if matches!(self, UpgradeError::Version) {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = UpgradeError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET {
            return Err(UpgradeError::NotGet);
        }
        let headers = &parts.headers;
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(UpgradeError::BadHeader(
                "Connection does not include upgrade",
            ));
        }
        if !has_token(headers, header::UPGRADE, "websocket") {
            return Err(UpgradeError::BadHeader("Upgrade is not websocket"));
        }
        if !has_token(headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(UpgradeError::Version);
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(UpgradeError::BadHeader("Sec-WebSocket-Key is missing"))?;
        // RFC 6455 §4.2.1: the key is 16 random bytes in base64.
        let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
        if decoded.map_or(true, |bytes| bytes.len() != 16) {
            return Err(UpgradeError::BadHeader(
                "Sec-WebSocket-Key is not 16 bytes in base64",
            ));
        }
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(UpgradeError::NotUpgradable)?;
        Ok(Upgrade { key, on_upgrade })
    }
}

impl Upgrade {
    /// Answers 101 and, once the connection is switched, runs `serve` on the
    /// socket (in a task of its own) with `config`.
    pub fn on_upgrade<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            // The client went away before the switch: nothing to serve.
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let io = TokioIo::new(upgraded);
            serve(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await).await;
        });
        let accept = derive_accept_key(self.key.as_bytes());
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, "upgrade".to_owned()),
                (header::UPGRADE, "websocket".to_owned()),
                (header::SEC_WEBSOCKET_ACCEPT, accept),
            ],
        )
            .into_response()
    }
}

/// Whether the comma-separated header `name` holds `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    async fn handshake(version: &str, key: &str) -> Result<Upgrade, UpgradeError> {
        let (mut parts, ()) = Request::builder()
            .method(Method::GET)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, version)
            .header(header::SEC_WEBSOCKET_KEY, key)
            .body(())
            .expect("request")
            .into_parts();
        Upgrade::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn another_version_is_told_which_one_we_speak() {
        let refused = handshake("8", "dGhlIHNhbXBsZSBub25jZQ==").await.err();
        let response = refused.expect("refused").into_response();
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_VERSION], "13");
    }

    #[tokio::test]
    async fn a_key_must_be_sixteen_bytes_in_base64() {
        for key in ["not base64!", "c2hvcnQ=", ""] {
            let refused = handshake("13", key).await.err();
            assert!(
                matches!(refused, Some(UpgradeError::BadHeader(_))),
                "{key:?}: {refused:?}"
            );
        }
        // A good key passes the checks; this bare request cannot be
        // switched, which is the next thing looked at.
        let sample = handshake("13", "dGhlIHNhbXBsZSBub25jZQ==").await.err();
        assert!(
            matches!(sample, Some(UpgradeError::NotUpgradable)),
            "{sample:?}"
        );
    }
}
