//! Errors of loading plugins and of calling them.

use std::path::PathBuf;
use std::time::Duration;

use crate::PublishFailure;

/// Why a plugin could not be loaded or called.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A directory or file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The manifest is missing or invalid.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The component is not a valid Herald plugin.
    #[error("plugin {path}: {reason}")]
    Invalid {
        /// The `.wasm` path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two plugins declare the same platform.
    #[error("platform {platform} is provided by both {first} and {second}")]
    Duplicate {
        /// The platform id.
        platform: String,
        /// One plugin.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// No plugin provides the platform.
    #[error("no plugin for platform {0}")]
    UnknownPlatform(String),
    /// The plugin trapped too often and is no longer called.
    #[error("plugin {0} is quarantined after repeated traps")]
    Quarantined(String),
    /// The plugin crashed during the call.
    #[error("plugin {platform} trapped: {reason}")]
    Trap {
        /// The platform.
        platform: String,
        /// What the sandbox reported.
        reason: String,
    },
    /// The plugin overran its deadline.
    #[error("plugin {platform} exceeded its {limit:?} deadline")]
    Timeout {
        /// The platform.
        platform: String,
        /// The deadline.
        limit: Duration,
    },
    /// The credentials name an account server the host will not call.
    #[error("{platform}: credential `{key}` must be the account server's https:// URL: {reason}")]
    AccountHost {
        /// The platform.
        platform: String,
        /// The credential key (manifest `account_hosts`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The wasm engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
}

impl From<PluginError> for PublishFailure {
    fn from(error: PluginError) -> Self {
        match error {
            PluginError::Trap { reason, .. } => PublishFailure::Trap { reason },
            PluginError::Timeout { limit, .. } => PublishFailure::Timeout { limit },
            error @ PluginError::AccountHost { .. } => PublishFailure::Permanent {
                message: error.to_string(),
            },
            other => PublishFailure::Unavailable {
                reason: other.to_string(),
            },
        }
    }
}
