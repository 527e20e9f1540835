//! The Asterisk Manager Interface source (`kind = "ami"`): [`wire`] splits
//! the protocol into blocks, [`map`] turns event blocks into events, and
//! [`client`] logs in, resyncs with `QueueStatus`, pings and reconnects.
//! Offline, [`map_file`] reads a capture through the same mapping.

pub mod client;
pub mod map;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use client::run;
pub use map::{Arrival, Mapper};

use super::config::{kind_settings, one_secret, read_secret};
use super::{Mapped, Naming, Skipped};
use crate::config::error::{ConfigError, invalid};
use wire::Frame;

/// How often we ping, and how long a ping may go unanswered.
const PING_SECS: f64 = 20.0;
const PING_TIMEOUT_SECS: f64 = 10.0;

/// A `[[source]]` of kind `ami`, as validated.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmiSettings {
    /// The Asterisk host.
    pub host: String,
    /// Its manager port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The `manager.conf` user.
    pub username: String,
    /// Its secret, written in the configuration...
    #[serde(default)]
    secret: Option<String>,
    /// ...or read from this file (trailing newline dropped) at each login.
    #[serde(default)]
    secret_file: Option<PathBuf>,
    /// Speak TLS to the manager (Asterisk's `tlsenable = yes`).
    #[serde(default)]
    pub tls: bool,
    /// With `tls`, the PEM certificates to trust instead of the web PKI
    /// roots (PBXs mostly have self-signed certificates).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// With `tls`, the name the certificate must carry (default: `host`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Seconds between our pings (hidden: tests shorten it).
    #[serde(default = "default_ping")]
    ping_secs: f64,
    /// Seconds a ping may go unanswered before we reconnect (hidden).
    #[serde(default = "default_ping_timeout")]
    ping_timeout_secs: f64,
}

// By hand, so that the secret never reaches a log.
impl std::fmt::Debug for AmiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmiSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("secret_file", &self.secret_file)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn default_port() -> u16 {
    5038
}

fn default_ping() -> f64 {
    PING_SECS
}

fn default_ping_timeout() -> f64 {
    PING_TIMEOUT_SECS
}

impl AmiSettings {
    /// Validates the kind's keys of the table `key`.
    pub fn parse(table: toml::Table, key: &str) -> Result<AmiSettings, ConfigError> {
        let settings: AmiSettings = kind_settings(table, key)?;
        one_secret(
            key,
            "secret",
            settings.secret.is_some(),
            settings.secret_file.is_some(),
        )?;
        if !settings.tls {
            for (name, given) in [
                ("ca_file", settings.ca_file.is_some()),
                ("server_name", settings.server_name.is_some()),
            ] {
                if given {
                    return Err(invalid(&format!("{key}.{name}"), "needs `tls = true`"));
                }
            }
        } else if settings.tls_name().is_err() {
            let name = if settings.server_name.is_some() {
                "server_name"
            } else {
                "host"
            };
            return Err(invalid(
                &format!("{key}.{name}"),
                "is not a DNS name or IP address a certificate can carry",
            ));
        }
        for (name, secs) in [
            ("ping_secs", settings.ping_secs),
            ("ping_timeout_secs", settings.ping_timeout_secs),
        ] {
            if !(0.01..=3600.0).contains(&secs) {
                return Err(invalid(
                    &format!("{key}.{name}"),
                    "must be between 0.01 and 3600",
                ));
            }
        }
        Ok(settings)
    }

    /// The secret: as written, or read from `secret_file` now.
    pub fn secret(&self) -> std::io::Result<String> {
        read_secret(self.secret.as_deref(), self.secret_file.as_deref())
    }

    /// The name the manager's certificate must carry.
    pub fn tls_name(
        &self,
    ) -> Result<tokio_rustls::rustls::pki_types::ServerName<'static>, impl std::error::Error> {
        let name = self.server_name.as_deref().unwrap_or(&self.host);
        tokio_rustls::rustls::pki_types::ServerName::try_from(name.to_owned())
    }

    /// Time between pings.
    pub fn ping_every(&self) -> Duration {
        Duration::from_secs_f64(self.ping_secs)
    }

    /// How long a ping may go unanswered.
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.ping_timeout_secs)
    }
}

/// Maps a whole capture (`Key: Value` blocks; other lines and blocks
/// without `Event` ignored, so console captures work).
pub fn map_file(bytes: &[u8], naming: &Naming) -> Mapped {
    let mut mapper = Mapper::new(naming.clone());
    let mut mapped = Mapped::default();
    for frame in wire::frames(bytes) {
        match frame {
            Frame::Block(block) => {
                // Blocks without `Event` in a capture are answers to
                // actions or console output (`Info:`...): not events.
                if block.event().is_none() {
                    continue;
                }
                match mapper.map(&block, Arrival::Offline) {
                    Ok(events) => mapped.events.extend(events),
                    Err(why) => mapped.skipped.push(Skipped {
                        position: format!("line {}", block.line),
                        why,
                    }),
                }
            }
            Frame::Oversized { line } => mapped.skipped.push(Skipped {
                position: format!("line {line}"),
                why: too_big(),
            }),
            Frame::Banner(_) => {}
        }
    }
    mapped
}

/// Why an oversized block was dropped.
fn too_big() -> String {
    format!(
        "block over {} KiB or line over {} KiB",
        wire::MAX_BLOCK_BYTES / 1024,
        wire::MAX_LINE_BYTES / 1024
    )
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn settings_take_defaults_and_errors_name_the_key() {
        let ok = Config::parse(
            "[[source]]\nkind = \"ami\"\nname = \"pbx\"\nhost = \"10.0.0.5\"\nusername = \"wallboard\"\nsecret = \"s3cret\"\n",
            "t",
        )
        .unwrap();
        let crate::source::SourceSettings::Ami(ami) = &ok.sources[0].settings else {
            panic!("not ami")
        };
        assert_eq!((ami.host.as_str(), ami.port), ("10.0.0.5", 5038));
        assert_eq!(ami.secret().unwrap(), "s3cret");
        assert_eq!(ami.ping_every().as_secs(), 20);
        assert_eq!(ami.ping_timeout().as_secs(), 10);
        assert!(!ami.tls);
        assert!(
            !format!("{ami:?}").contains("s3cret"),
            "the secret is never printed"
        );
        let base = "[[source]]\nkind = \"ami\"\nname = \"pbx\"\nhost = \"h\"\nusername = \"u\"\n";
        let cases = [
            ("", "source[0].secret"),
            (
                "secret = \"a\"\nsecret_file = \"/x\"\n",
                "source[0].secret_file",
            ),
            (
                "secret = \"a\"\nca_file = \"/ca.pem\"\n",
                "source[0].ca_file",
            ),
            (
                "secret = \"a\"\nserver_name = \"pbx\"\n",
                "source[0].server_name",
            ),
            (
                "secret = \"a\"\ntls = true\nserver_name = \"a b\"\n",
                "source[0].server_name",
            ),
            ("secret = \"a\"\ntls = \"yes\"\n", "source[0]"),
            ("secret = \"a\"\nport = \"x\"\n", "source[0]"),
            ("secret = \"a\"\nbogus = 1\n", "source[0]"),
            ("secret = \"a\"\nping_secs = 0\n", "source[0].ping_secs"),
        ];
        for (extra, key) in cases {
            let e = Config::parse(&format!("{base}{extra}"), "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{key}")), "{extra:?}: {e}");
        }
        let tls = Config::parse(
            &format!("{base}secret = \"a\"\nport = 5039\ntls = true\nca_file = \"/ca.pem\"\n"),
            "t",
        )
        .unwrap();
        let crate::source::SourceSettings::Ami(ami) = &tls.sources[0].settings else {
            panic!("not ami")
        };
        assert!(ami.tls);
        assert_eq!(ami.tls_name().unwrap().to_str(), "h", "defaults to host");
    }
}
