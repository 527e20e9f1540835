//! Why a configuration cannot be used, in one leaf module: the parts of the
//! configuration validated elsewhere (boards, security, sources) report
//! through it without importing the configuration back.

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value is out of range or names something unknown.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// The key, dotted.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A value of `key` is out of range or names something unknown.
pub(crate) fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}
