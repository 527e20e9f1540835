//! Who may connect and how much they may send: the `[auth]`, `[limits]` and
//! `[web]` sections of the configuration, validated, and the rule that a
//! server without tokens listens on loopback only.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::config::error::{ConfigError, invalid};

/// Longest token accepted in the configuration.
pub const MAX_TOKEN_BYTES: usize = 512;

/// `[auth]` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(default)]
    ingest_tokens: Vec<String>,
    #[serde(default)]
    viewer_tokens: Vec<String>,
    #[serde(default)]
    supervisor_tokens: Vec<String>,
}

impl fmt::Debug for RawAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawAuth { .. }")
    }
}

/// `[limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    body_bytes: Option<u64>,
    max_events_per_batch: Option<u64>,
    max_json_depth: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    ws_max_message_bytes: Option<u64>,
    ws_ping_timeout_secs: Option<u64>,
    max_connections_per_ip: Option<u64>,
    max_connections: Option<u64>,
    ingest_rate_per_sec: Option<f64>,
    max_future_secs: Option<u64>,
    max_queues: Option<u64>,
    max_open_calls: Option<u64>,
}

/// `[web]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    frame_ancestors: Vec<String>,
    trust_proxy: Option<bool>,
}

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Machines posting events, nothing else.
    Ingest,
    /// Boards, the snapshot and `/ws`: figures without caller data.
    Viewer,
    /// Everything a viewer sees, plus the supervisor views.
    Supervisor,
}

/// The configured tokens; `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Auth {
    /// Every token with its role.
    pub tokens: Vec<(String, Role)>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Auth {{ {} tokens }}", self.tokens.len())
    }
}

impl Auth {
    /// Whether any token is configured (otherwise everything is open, on loopback only).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }
}

/// The limits on what clients send and hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request body (then 413).
    pub body_bytes: usize,
    /// Most events in one batch (then 413).
    pub max_events_per_batch: usize,
    /// Deepest nesting of `[`/`{` within one event (then 400).
    pub max_json_depth: usize,
    /// Time a client has to send a request's headers (then the connection closes).
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body (then 408).
    pub body_read_timeout: Duration,
    /// Largest WebSocket message a client may send (more closes the socket).
    pub ws_max_message_bytes: usize,
    /// A WebSocket peer silent this long is dropped.
    pub ws_ping_timeout: Duration,
    /// Open connections from one address (more are refused with 503).
    pub max_connections_per_ip: usize,
    /// Open connections in total (more are refused with 503).
    pub max_connections: usize,
    /// Ingest requests per second per token (`None`: unlimited), then 429.
    pub ingest_rate_per_sec: Option<f64>,
    /// An event dated further ahead of the machine's clock is refused (400).
    pub max_future: Duration,
    /// Distinct queue names tallied; further ones count under `(other)`.
    pub max_queues: usize,
    /// Calls open at once; a batch that would open more is refused (429).
    pub max_open_calls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 16 * 1024 * 1024,
            max_events_per_batch: 100_000,
            max_json_depth: 32,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            ws_max_message_bytes: 4 * 1024,
            ws_ping_timeout: Duration::from_secs(45),
            max_connections_per_ip: 200,
            max_connections: 20_000,
            ingest_rate_per_sec: None,
            max_future: Duration::from_secs(300),
            max_queues: 1_000,
            max_open_calls: 200_000,
        }
    }
}

/// Browser policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebPolicy {
    /// Origins (`https://host[:port]`) allowed to open WebSockets besides the server's own.
    pub allowed_origins: Vec<String>,
    /// Sources allowed to frame the pages (CSP `frame-ancestors`); empty: none.
    pub frame_ancestors: Vec<String>,
    /// Believe `X-Forwarded-Proto` from a TLS-terminating proxy (marks cookies `Secure`).
    pub trust_proxy: bool,
}

/// The validated `[auth]`, `[limits]` and `[web]` sections.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Tokens and roles.
    pub auth: Auth,
    /// Limits.
    pub limits: Limits,
    /// Browser policy.
    pub web: WebPolicy,
}

impl Security {
    /// Validates the three raw sections.
    pub fn from_raw(
        auth: RawAuth,
        limits: RawLimits,
        web: RawWeb,
    ) -> Result<Security, ConfigError> {
        Ok(Security {
            auth: auth_from_raw(auth)?,
            limits: limits_from_raw(limits)?,
            web: web_from_raw(web)?,
        })
    }
}

/// A token travels in headers, cookies and query strings: visible ASCII without separators.
fn token_is_safe(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b";,\"\\&#%+=?".contains(&b))
}

fn auth_from_raw(raw: RawAuth) -> Result<Auth, ConfigError> {
    let mut tokens: Vec<(String, Role)> = Vec::new();
    let lists = [
        ("auth.ingest_tokens", raw.ingest_tokens, Role::Ingest),
        ("auth.viewer_tokens", raw.viewer_tokens, Role::Viewer),
        (
            "auth.supervisor_tokens",
            raw.supervisor_tokens,
            Role::Supervisor,
        ),
    ];
    for (key, list, role) in lists {
        for (i, token) in list.into_iter().enumerate() {
            let key = format!("{key}[{i}]");
            if !token_is_safe(&token) {
                return Err(invalid(
                    &key,
                    "a token must be 1 to 512 visible ASCII characters without ; , \" \\ & # % + = ?",
                ));
            }
            if tokens.iter().any(|(t, _)| *t == token) {
                return Err(invalid(&key, "this token is configured twice"));
            }
            tokens.push((token, role));
        }
    }
    Ok(Auth { tokens })
}

fn limits_from_raw(raw: RawLimits) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let ranged = |key: &str, value: Option<u64>, default: usize, min: u64, max: u64| {
        let v = value.unwrap_or(default as u64);
        if (min..=max).contains(&v) {
            Ok(v as usize)
        } else {
            Err(invalid(
                &format!("limits.{key}"),
                format!("must be between {min} and {max}, not {v}"),
            ))
        }
    };
    let secs = |key: &str, value: Option<u64>, default: Duration| {
        ranged(key, value, default.as_secs() as usize, 1, 3600)
            .map(|s| Duration::from_secs(s as u64))
    };
    let rate = match raw.ingest_rate_per_sec {
        None => None,
        Some(r) if r.is_finite() && r > 0.0 && r <= 1e6 => Some(r),
        Some(r) => {
            return Err(invalid(
                "limits.ingest_rate_per_sec",
                format!("must be above 0 and at most 1000000, not {r} (leave it out for no limit)"),
            ));
        }
    };
    Ok(Limits {
        body_bytes: ranged("body_bytes", raw.body_bytes, d.body_bytes, 1024, 1 << 30)?,
        max_events_per_batch: ranged(
            "max_events_per_batch",
            raw.max_events_per_batch,
            d.max_events_per_batch,
            1,
            10_000_000,
        )?,
        max_json_depth: ranged(
            "max_json_depth",
            raw.max_json_depth,
            d.max_json_depth,
            2,
            100,
        )?,
        header_read_timeout: secs(
            "header_read_timeout_secs",
            raw.header_read_timeout_secs,
            d.header_read_timeout,
        )?,
        body_read_timeout: secs(
            "body_read_timeout_secs",
            raw.body_read_timeout_secs,
            d.body_read_timeout,
        )?,
        ws_max_message_bytes: ranged(
            "ws_max_message_bytes",
            raw.ws_max_message_bytes,
            d.ws_max_message_bytes,
            128,
            16 << 20,
        )?,
        ws_ping_timeout: secs(
            "ws_ping_timeout_secs",
            raw.ws_ping_timeout_secs,
            d.ws_ping_timeout,
        )?,
        max_connections_per_ip: ranged(
            "max_connections_per_ip",
            raw.max_connections_per_ip,
            d.max_connections_per_ip,
            1,
            1_000_000,
        )?,
        max_connections: ranged(
            "max_connections",
            raw.max_connections,
            d.max_connections,
            1,
            1_000_000,
        )?,
        ingest_rate_per_sec: rate,
        max_future: Duration::from_secs(ranged(
            "max_future_secs",
            raw.max_future_secs,
            d.max_future.as_secs() as usize,
            0,
            10 * 366 * 86_400,
        )? as u64),
        max_queues: ranged("max_queues", raw.max_queues, d.max_queues, 1, 1_000_000)?,
        max_open_calls: ranged(
            "max_open_calls",
            raw.max_open_calls,
            d.max_open_calls,
            1,
            100_000_000,
        )?,
    })
}

/// CSP source expressions and origins go into headers: no separators, no whitespace.
fn source_is_safe(source: &str) -> bool {
    !source.is_empty()
        && source
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

fn web_from_raw(raw: RawWeb) -> Result<WebPolicy, ConfigError> {
    for (i, origin) in raw.allowed_origins.iter().enumerate() {
        if !source_is_safe(origin) || !origin.contains("://") {
            return Err(invalid(
                &format!("web.allowed_origins[{i}]"),
                format!("{origin:?} is not an origin like \"https://dash.example.com\""),
            ));
        }
    }
    for (i, source) in raw.frame_ancestors.iter().enumerate() {
        if !source_is_safe(source) {
            return Err(invalid(
                &format!("web.frame_ancestors[{i}]"),
                format!(
                    "{source:?} is not a CSP source like \"https://dash.example.com\" or \"'self'\""
                ),
            ));
        }
    }
    Ok(WebPolicy {
        allowed_origins: raw
            .allowed_origins
            .into_iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect(),
        frame_ancestors: raw.frame_ancestors,
        trust_proxy: raw.trust_proxy.unwrap_or(false),
    })
}

/// Descriptors kept beyond client connections: the store, logs, the listener,
/// and some 503 refusals being answered.
pub const FD_RESERVE: u64 = 64;

/// What the process's descriptor limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorPlan {
    /// The soft `RLIMIT_NOFILE` to ask for.
    pub soft: u64,
    /// Open connections the server may hold (`limits.max_connections` or fewer).
    pub max_connections: usize,
}

/// Plans the descriptor limit from `limits.max_connections` and the current
/// (`soft`, `hard`) limits: the soft limit goes up to the hard one (or, when
/// the hard one is unlimited, to what the connections need), and if that is
/// still too few, fewer connections are allowed, so a connection past the
/// limit is refused with a 503 instead of hanging unanswered.
pub fn plan_descriptors(max_connections: usize, soft: u64, hard: u64) -> DescriptorPlan {
    let needed = (max_connections as u64).saturating_add(FD_RESERVE);
    let soft = if hard == u64::MAX {
        soft.max(needed)
    } else {
        soft.max(hard)
    };
    let max_connections = if needed <= soft {
        max_connections
    } else {
        soft.saturating_sub(FD_RESERVE).max(1) as usize
    };
    DescriptorPlan {
        soft,
        max_connections,
    }
}

/// Why the server will not listen where it was asked to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to listen on {0}: no tokens are configured, so anyone who can reach that address \
     could read the board and post events. Configure tokens in [auth] \
     (see the SECURITY section of the README), listen on a loopback address such as \
     127.0.0.1, or pass --insecure-open to serve it open anyway"
)]
pub struct ExposureError(pub SocketAddr);

/// Whether a server may listen on `addr`: without tokens only on loopback,
/// unless `insecure_open`. `Ok(true)` means open to the network without tokens (warn).
pub fn check_exposure(
    addr: SocketAddr,
    auth: &Auth,
    insecure_open: bool,
) -> Result<bool, ExposureError> {
    let loopback = addr.ip().to_canonical().is_loopback();
    match (auth.enabled(), loopback, insecure_open) {
        (true, _, _) | (false, true, _) => Ok(false),
        (false, false, true) => Ok(true),
        (false, false, false) => Err(ExposureError(addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn err(text: &str) -> String {
        Config::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_a_full_file() {
        assert_eq!(Config::default().security.limits, Limits::default());
        let c = Config::parse(
            r#"
            [auth]
            ingest_tokens = ["pbx-1"]
            viewer_tokens = ["tv-lobby", "tv-floor"]
            supervisor_tokens = ["sup-anna"]
            [limits]
            body_bytes = 1048576
            ingest_rate_per_sec = 5.5
            max_connections_per_ip = 10
            [web]
            allowed_origins = ["https://Dash.example.com/"]
            frame_ancestors = ["'self'", "https://dash.example.com"]
            trust_proxy = true
            "#,
            "t.toml",
        )
        .unwrap();
        let s = &c.security;
        assert_eq!(s.auth.tokens.len(), 4);
        assert_eq!(s.auth.tokens[3], ("sup-anna".to_owned(), Role::Supervisor));
        assert_eq!(s.limits.body_bytes, 1 << 20);
        assert_eq!(s.limits.ingest_rate_per_sec, Some(5.5));
        assert_eq!(s.web.allowed_origins, ["https://dash.example.com"]);
        assert!(s.web.trust_proxy);
        assert!(
            !format!("{c:?}").contains("tv-lobby"),
            "Debug shows no token"
        );
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("[auth]\nviewer_tokens = [\"\"]").contains("auth.viewer_tokens[0]"));
        assert!(err("[auth]\nviewer_tokens = [\"a b\"]").contains("auth.viewer_tokens[0]"));
        assert!(
            err("[auth]\nviewer_tokens = [\"x\"]\nsupervisor_tokens = [\"x\"]")
                .contains("auth.supervisor_tokens[0]")
        );
        assert!(err("[auth]\nadmin_tokens = [\"x\"]").contains("admin_tokens"));
        assert!(err("[limits]\nbody_bytes = 1").contains("limits.body_bytes"));
        assert!(err("[limits]\ningest_rate_per_sec = 0").contains("limits.ingest_rate_per_sec"));
        assert!(err("[web]\nallowed_origins = [\"evil\"]").contains("web.allowed_origins[0]"));
        assert!(
            err("[web]\nframe_ancestors = [\"a; script-src *\"]")
                .contains("web.frame_ancestors[0]")
        );
    }

    #[test]
    fn descriptors() {
        let plan = |max, soft, hard| {
            let p = plan_descriptors(max, soft, hard);
            (p.soft, p.max_connections)
        };
        let table = [
            // (max_connections, soft, hard) -> (soft asked, connections)
            ((20_000, 1024, 1_048_576), (1_048_576, 20_000)),
            ((20_000, 1024, 4096), (4096, 4032)),
            ((20_000, 1024, 1024), (1024, 960)),
            ((20_000, 256, 20_000), (20_000, 19_936)),
            ((100, 1024, 1024), (1024, 100)),
            ((960, 1024, 1024), (1024, 960)),
            ((961, 1024, 1024), (1024, 960)),
            ((20_000, 1024, u64::MAX), (20_064, 20_000)),
            ((100, 50_000, u64::MAX), (50_000, 100)),
            ((20_000, 10, 10), (10, 1)),
        ];
        for ((max, soft, hard), expected) in table {
            assert_eq!(plan(max, soft, hard), expected, "{max} {soft} {hard}");
        }
    }

    #[test]
    fn loopback_only_without_tokens() {
        let open = Auth::default();
        let with_tokens = Auth {
            tokens: vec![("t".into(), Role::Viewer)],
        };
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let table = [
            ("127.0.0.1:8080", &open, false, Ok(false)),
            ("[::1]:8080", &open, false, Ok(false)),
            ("[::ffff:127.0.0.1]:8080", &open, false, Ok(false)),
            (
                "0.0.0.0:8080",
                &open,
                false,
                Err(ExposureError(addr("0.0.0.0:8080"))),
            ),
            (
                "192.168.1.5:80",
                &open,
                false,
                Err(ExposureError(addr("192.168.1.5:80"))),
            ),
            ("0.0.0.0:8080", &open, true, Ok(true)),
            ("0.0.0.0:8080", &with_tokens, false, Ok(false)),
        ];
        for (a, auth, insecure, expected) in table {
            assert_eq!(check_exposure(addr(a), auth, insecure), expected, "{a}");
        }
        assert!(
            ExposureError(addr("0.0.0.0:1"))
                .to_string()
                .contains("--insecure-open")
        );
    }
}
