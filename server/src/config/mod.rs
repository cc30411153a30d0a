//! The only place that reads configuration: clap flags with environment fallbacks, one
//! module per part of Herald (database and processes, queue and workers, GraphQL and its
//! rate limits, JWT, plugins). Every error names the setting at fault, as its environment variable and its
//! flag. Other modules receive the validated settings (`*Config`), never the flags.

mod graphql;
mod jwt;
mod keys;
mod limits;
mod media;
mod oauth;
mod plugins;
mod queue;
mod serve;
#[cfg(test)]
mod tests;

use clap::{Parser, Subcommand, ValueEnum};

pub use graphql::{GraphqlArgs, GraphqlConfig};
pub use jwt::{JwtArgs, JwtConfig, JwtKey, MIN_SECRET_BYTES, TokenArgs};
pub use keys::{KeysArgs, KeysCommand, RotateArgs, TokenKeyArgs};
pub use limits::{Rate, RateLimitArgs, RateLimitConfig};
pub use media::MediaArgs;
pub use oauth::OauthArgs;
pub use plugins::{PluginArgs, PluginCommand};
pub use queue::{QueueArgs, QueueConfig};
pub use serve::{DatabaseArgs, ServeArgs, ServeConfig, WorkerArgs, WorkerProcessConfig};

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    /// The environment variable and flag, e.g. `DATABASE_URL (--database-url)`.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// `value` when it is at least 1, else an error naming `key`.
fn positive(key: &'static str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        Err(ConfigError::new(key, "must be at least 1"))
    } else {
        Ok(value)
    }
}

/// `value` when it is set and starts with one of `schemes` (`scheme://`), else an error
/// naming `key`.
fn required_url(
    key: &'static str,
    value: Option<&str>,
    schemes: &[&str],
) -> Result<String, ConfigError> {
    let url = value.ok_or_else(|| ConfigError::new(key, "not set"))?;
    if schemes.iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| rest.starts_with("://"))
    }) {
        Ok(url.to_owned())
    } else {
        let list: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        Err(ConfigError::new(
            key,
            format!("must be a {} URL", list.join(" or ")),
        ))
    }
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

/// Herald: self-hosted social-media publishing engine.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log output format.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands of `herald`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the GraphQL API and run publishing workers.
    Serve(Box<ServeArgs>),
    /// Run publishing workers only (no API), e.g. as separate worker replicas.
    Worker(Box<WorkerArgs>),
    /// Apply pending migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the GraphQL schema (SDL) to standard output.
    PrintSchema,
    /// Mint an HS256 token with HERALD_JWT_SECRET (for development and scripts).
    Token(TokenArgs),
    /// Check or try out a publisher plugin without running Herald.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Inspect the keys that seal connected accounts' tokens, and rotate them.
    #[command(subcommand)]
    Keys(KeysCommand),
}
