//! FreeSWITCH `mod_callcenter` over the event socket (kind `esl`): its
//! settings, the offline reader (`--format esl`) and the live client. The
//! mapping itself is in [`map`], the wire format in [`frame`].

pub mod client;
pub mod frame;
pub mod map;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::error::{ConfigError, invalid};
use crate::event::Event;
use crate::feed::FileError;
use crate::source::config::{kind_settings, one_secret, read_secret};
use crate::source::{Naming, offline};

/// The kind's name in `kind = "..."`.
pub const KIND: &str = "esl";

/// The `[[source]]` keys of kind `esl`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EslSettings {
    /// FreeSWITCH's host.
    #[serde(default)]
    pub host: String,
    /// The event socket's port (`listen-port` of `event_socket.conf.xml`).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The event socket's password.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (read at each connection).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// How long after a queue's exit another queue may take the call on.
    #[serde(default = "default_continue_secs")]
    pub continue_secs: u64,
}

fn default_port() -> u16 {
    8021
}

fn default_continue_secs() -> u64 {
    10
}

// By hand: the password stays out of logs and error messages.
impl fmt::Debug for EslSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EslSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("password_file", &self.password_file)
            .field("continue_secs", &self.continue_secs)
            .finish()
    }
}

impl EslSettings {
    /// Validates a `[[source]]` table of kind `esl`; `key` names it in errors.
    pub fn parse(table: toml::Table, key: &str) -> Result<EslSettings, ConfigError> {
        let settings: EslSettings = kind_settings(table, key)?;
        if settings.host.trim().is_empty() {
            return Err(invalid(&format!("{key}.host"), "is required"));
        }
        one_secret(
            key,
            "password",
            settings.password.is_some(),
            settings.password_file.is_some(),
        )?;
        Ok(settings)
    }

    /// The password, from the setting or its file (a final newline dropped).
    pub fn password(&self) -> Result<String, String> {
        read_secret(self.password.as_deref(), self.password_file.as_deref())
            .map_err(|e| format!("password_file {e}"))
    }
}

/// Reads a file of `event plain` blocks (or a capture of the socket) as
/// events, through the live mapping with `continue_secs` at its default.
pub fn read_file(path: &Path) -> Result<Vec<Event>, FileError> {
    offline::read_vendor(path, |bytes| {
        map::map_file(bytes, &Naming::offline(KIND), default_continue_secs())
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::source::SourceSettings;

    #[test]
    fn settings_have_defaults_and_errors_name_the_key() {
        let ok = Config::parse(
            "[[source]]\nkind = \"esl\"\nname = \"fs\"\nhost = \"10.0.0.5\"\npassword = \"ClueCon\"\n",
            "t",
        )
        .unwrap();
        let SourceSettings::Esl(esl) = &ok.sources[0].settings else {
            panic!("{:?}", ok.sources[0].settings)
        };
        assert_eq!((esl.port, esl.continue_secs), (8021, 10));
        assert_eq!(esl.password().unwrap(), "ClueCon");
        assert!(
            !format!("{esl:?}").contains("ClueCon"),
            "no password in logs"
        );

        let cases = [
            ("password = \"x\"\n", "source[0].host"),
            ("host = \"h\"\n", "source[0].password"),
            (
                "host = \"h\"\npassword = \"x\"\npassword_file = \"/p\"\n",
                "source[0].password_file",
            ),
            (
                "host = \"h\"\npassword = \"x\"\nport = \"x\"\n",
                "source[0]",
            ),
            (
                "host = \"h\"\npassword = \"x\"\nsecret = \"x\"\n",
                "source[0]",
            ),
        ];
        for (keys, key) in cases {
            let text = format!("[[source]]\nkind = \"esl\"\nname = \"fs\"\n{keys}");
            let e = Config::parse(&text, "t").unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}")), "{keys:?}: {e}");
        }
    }

    #[test]
    fn the_password_file_is_read_without_its_newline() {
        let dir = std::env::temp_dir().join(format!("wallboard-esl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let text = format!(
            "[[source]]\nkind = \"esl\"\nname = \"fs\"\nhost = \"h\"\npassword_file = {:?}\n",
            file.display().to_string()
        );
        let config = Config::parse(&text, "t").unwrap();
        let SourceSettings::Esl(esl) = &config.sources[0].settings else {
            panic!()
        };
        assert_eq!(esl.password().unwrap(), "s3cret");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
