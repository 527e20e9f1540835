//! Running more than one node: the `[cluster]` settings and the connection
//! to the NATS JetStream cluster that replaces the local journal as the log.
//! Without `[cluster]` the server is one node with its SQLite store, as before.

pub mod lease;
pub mod node;
pub mod placement;
pub mod stream;

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::error::invalid;

/// The stream name when `[cluster]` does not give one.
pub const DEFAULT_STREAM: &str = "wallboard";
/// Replicas when `[cluster]` does not say: a quorum of three servers.
pub const DEFAULT_REPLICAS: usize = 3;

/// `[cluster]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    nats_urls: Vec<String>,
    stream: Option<String>,
    replicas: Option<usize>,
    /// This node's name in leases and logs (default: the host name and port).
    node: Option<String>,
    /// A NATS `.creds` file (JWT and NKey seed).
    credentials_file: Option<PathBuf>,
    /// User and password, when the servers use them instead of credentials.
    user: Option<String>,
    password: Option<String>,
    /// A PEM file of the CA that signed the NATS servers' certificates; makes TLS required.
    ca_file: Option<PathBuf>,
}

/// How this node reaches the cluster, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The NATS servers to try, `nats://` or `tls://` URLs.
    pub nats_urls: Vec<String>,
    /// The JetStream stream the events go to.
    pub stream: String,
    /// How many servers store each message (1 for a single NATS server).
    pub replicas: usize,
    /// This node's name, if the config gives one.
    pub node: Option<String>,
    /// Credentials, if any.
    pub auth: ClusterAuth,
    /// The CA file for TLS, if any.
    pub ca_file: Option<PathBuf>,
}

/// How this node proves itself to the NATS servers.
#[derive(Clone, PartialEq, Eq)]
pub enum ClusterAuth {
    /// Nothing (a private network).
    None,
    /// A `.creds` file.
    CredentialsFile(PathBuf),
    /// User and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
}

/// Never the password: settings are logged and shown in errors.
impl std::fmt::Debug for ClusterAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterAuth::None => f.write_str("None"),
            ClusterAuth::CredentialsFile(file) => {
                f.debug_tuple("CredentialsFile").field(file).finish()
            }
            ClusterAuth::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"(hidden)")
                .finish(),
        }
    }
}

impl ClusterSettings {
    /// Validates `[cluster]`, naming the key that is wrong.
    pub fn from_raw(raw: RawCluster) -> Result<ClusterSettings, ConfigError> {
        if raw.nats_urls.is_empty() {
            return Err(invalid(
                "cluster.nats_urls",
                "give at least one NATS server URL",
            ));
        }
        for url in &raw.nats_urls {
            let scheme_ok = ["nats://", "tls://"].iter().any(|s| url.starts_with(s));
            if !scheme_ok || url.parse::<async_nats::ServerAddr>().is_err() {
                return Err(invalid(
                    "cluster.nats_urls",
                    format!("{url:?} is not a nats:// or tls:// URL"),
                ));
            }
        }
        let stream = raw.stream.unwrap_or_else(|| DEFAULT_STREAM.to_owned());
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !name_ok(&stream) {
            return Err(invalid(
                "cluster.stream",
                format!("{stream:?}: use 1 to 64 letters, digits, '-' or '_'"),
            ));
        }
        let replicas = raw.replicas.unwrap_or(DEFAULT_REPLICAS);
        if !(1..=5).contains(&replicas) {
            return Err(invalid(
                "cluster.replicas",
                format!("must be between 1 and 5 (JetStream's limit), not {replicas}"),
            ));
        }
        if let Some(node) = &raw.node
            && !name_ok(node)
        {
            return Err(invalid(
                "cluster.node",
                format!("{node:?}: use 1 to 64 letters, digits, '-' or '_'"),
            ));
        }
        let auth = match (raw.credentials_file, raw.user, raw.password) {
            (None, None, None) => ClusterAuth::None,
            (Some(file), None, None) => ClusterAuth::CredentialsFile(file),
            (None, Some(user), Some(password)) => ClusterAuth::UserPassword { user, password },
            (Some(_), _, _) => {
                return Err(invalid(
                    "cluster.credentials_file",
                    "give either credentials_file or user and password, not both",
                ));
            }
            _ => {
                return Err(invalid("cluster.user", "user and password go together"));
            }
        };
        Ok(ClusterSettings {
            nats_urls: raw.nats_urls,
            stream,
            replicas,
            node: raw.node,
            auth,
            ca_file: raw.ca_file,
        })
    }
}

/// Why the cluster cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Connecting to NATS failed.
    #[error("cannot connect to NATS at {urls}: {message}")]
    Connect {
        /// The URLs tried.
        urls: String,
        /// Why.
        message: String,
    },
    /// The stream cannot be opened.
    #[error(transparent)]
    Stream(stream::StreamError),
    /// This node's store cannot be opened.
    #[error(transparent)]
    Store(#[from] crate::journal::JournalError),
    /// A node keeps its cache of the stream in a store.
    #[error("[cluster] needs a store: give --data-dir")]
    NoStore,
    /// The store applied more of the stream than the stream holds: the
    /// stream was deleted and made again, and following it from here would
    /// silently skip its first messages.
    #[error(
        "this node's store has applied stream {stream} through seq {applied}, but the stream ends at {last}: \
         was the stream deleted and made again? Move the data directory away to start this node afresh"
    )]
    StoreAhead {
        /// The stream.
        stream: String,
        /// What the store applied through.
        applied: u64,
        /// The stream's last sequence.
        last: u64,
    },
}

/// A connection to the cluster: the client and its JetStream context.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// The NATS client (reconnects by itself to any server of the list).
    pub client: async_nats::Client,
    /// JetStream on that client.
    pub jetstream: async_nats::jetstream::Context,
    /// The validated settings.
    pub settings: ClusterSettings,
}

impl Cluster {
    /// Connects to the first reachable server of the list; the client keeps
    /// reconnecting to any of them afterwards.
    pub async fn connect(settings: &ClusterSettings) -> Result<Cluster, ClusterError> {
        let failed = |message: String| ClusterError::Connect {
            urls: settings.nats_urls.join(", "),
            message,
        };
        let mut options = async_nats::ConnectOptions::new().name("wallboard");
        options = match &settings.auth {
            ClusterAuth::None => options,
            ClusterAuth::CredentialsFile(file) => options
                .credentials_file(file)
                .await
                .map_err(|e| failed(format!("credentials file {}: {e}", file.display())))?,
            ClusterAuth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
        };
        if let Some(ca) = &settings.ca_file {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        let client = options
            .connect(settings.nats_urls.as_slice())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let jetstream = async_nats::jetstream::new(client.clone());
        Ok(Cluster {
            client,
            jetstream,
            settings: settings.clone(),
        })
    }
}

/// Why a key-value bucket cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("key-value bucket {bucket}: {message}")]
pub struct BucketError {
    /// The bucket.
    pub bucket: String,
    /// Why.
    pub message: String,
}

/// Opens the key-value bucket `name`, creating it with `replicas` when
/// missing. `async-nats`' own `create_key_value` first asks for the account's
/// limits in a shape servers before 2.10 do not send (Debian's package is
/// 2.9), so the bucket's stream is made here with the settings it would use.
/// `max_age` bounds how long a value lives (0: for ever).
pub async fn bucket(
    jetstream: &async_nats::jetstream::Context,
    name: &str,
    replicas: usize,
    max_age: std::time::Duration,
) -> Result<async_nats::jetstream::kv::Store, BucketError> {
    use async_nats::jetstream::stream::{Config, DiscardPolicy};
    let failed = |message: String| BucketError {
        bucket: name.to_owned(),
        message,
    };
    jetstream
        .get_or_create_stream(Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: replicas,
            discard: DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| failed(e.to_string()))?;
    jetstream
        .get_key_value(name)
        .await
        .map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClusterSettings, ConfigError> {
        let raw: RawCluster = toml::from_str(text).expect("toml");
        ClusterSettings::from_raw(raw)
    }

    #[test]
    fn defaults_and_errors_name_the_key() {
        let s = parse(r#"nats_urls = ["nats://127.0.0.1:4222"]"#).expect("valid");
        assert_eq!((s.stream.as_str(), s.replicas), ("wallboard", 3));
        assert_eq!(s.auth, ClusterAuth::None);
        let key = |text: &str| match parse(text) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        };
        assert_eq!(key("nats_urls = []"), "cluster.nats_urls");
        assert_eq!(key(r#"nats_urls = ["http://x"]"#), "cluster.nats_urls");
        assert_eq!(
            key(r#"nats_urls = ["nats://a:1"]
replicas = 0"#),
            "cluster.replicas"
        );
        assert_eq!(
            key(r#"nats_urls = ["nats://a:1"]
stream = "a.b""#),
            "cluster.stream"
        );
        assert_eq!(
            key(r#"nats_urls = ["nats://a:1"]
user = "u""#),
            "cluster.user"
        );
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let s = parse(
            r#"nats_urls = ["nats://a:1"]
user = "wallboard"
password = "s3cret-pa55""#,
        )
        .expect("valid");
        let shown = format!("{s:?}");
        assert!(
            shown.contains("wallboard") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
