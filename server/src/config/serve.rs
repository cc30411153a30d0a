//! The settings of the long-running processes, `herald serve` and `herald worker`: the
//! database, the token-sealing keys, and what each process is assembled from.

use std::net::SocketAddr;

use clap::Args;

use crate::connections::AccountPolicy;
use crate::domain::oauth_apps::OauthConfig;

use super::{
    ConfigError, GraphqlArgs, GraphqlConfig, JwtArgs, JwtConfig, MediaArgs, OauthArgs, PluginArgs,
    QueueArgs, QueueConfig, TokenKeyArgs, required_url,
};
use crate::media::MediaConfig;

/// Where the database is.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Postgres URL, e.g. postgres://herald@127.0.0.1:5432/herald.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// The validated database URL.
    pub fn url(&self) -> Result<String, ConfigError> {
        required_url(
            "DATABASE_URL (--database-url)",
            self.database_url.as_deref(),
            &["postgres", "postgresql"],
        )
    }
}

/// Settings of `herald serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Database settings.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Largest number of pooled database connections.
    #[arg(long, env = "HERALD_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
    /// Queue and worker settings.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Serve the API only; run no publishing workers in this process.
    #[arg(long)]
    pub no_worker: bool,
    /// Address the HTTP server listens on.
    #[arg(long, env = "HERALD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Token settings.
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Do not apply pending migrations at start.
    #[arg(long)]
    pub no_migrate: bool,
    /// Publisher plugins.
    #[command(flatten)]
    pub plugins: PluginArgs,
    /// Token encryption.
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
    /// GraphQL endpoint settings.
    #[command(flatten)]
    pub graphql: GraphqlArgs,
    /// Let every member of a tenant connect and disconnect its accounts and choose its
    /// default ones (by default only its admins may).
    #[arg(long, env = "HERALD_MEMBERS_MANAGE_ACCOUNTS")]
    pub members_manage_accounts: bool,
    /// OAuth connect flows and token refresh.
    #[command(flatten)]
    pub oauth: OauthArgs,
    /// The media library.
    #[command(flatten)]
    pub media: MediaArgs,
}

/// Settings of `herald worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Database settings.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Largest number of pooled database connections.
    #[arg(long, env = "HERALD_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
    /// Queue and worker settings.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Publisher plugins.
    #[command(flatten)]
    pub plugins: PluginArgs,
    /// Token encryption.
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
    /// OAuth apps (refreshing tokens) and refresh timing.
    #[command(flatten)]
    pub oauth: OauthArgs,
    /// The media library (signing publish-time URLs, garbage collection).
    #[command(flatten)]
    pub media: MediaArgs,
}

/// Validated settings of `herald worker`.
#[derive(Debug, Clone)]
pub struct WorkerProcessConfig {
    /// Postgres URL.
    pub database_url: String,
    /// Pool size.
    pub db_max_connections: u32,
    /// Queue settings.
    pub queue: QueueConfig,
    /// Plugin host settings, when a plugin directory is configured.
    pub plugins: Option<herald_plugin_host::HostConfig>,
    /// Where Herald's own outbound requests (webhooks) may connect.
    pub outbound: herald_plugin_host::address::AddressPolicy,
    /// Seals and opens account tokens.
    pub cipher: crate::secrets::TokenCipher,
    /// OAuth apps and token refresh.
    pub oauth: OauthConfig,
    /// The media library.
    pub media: MediaConfig,
}

impl WorkerArgs {
    /// Validates every setting of `herald worker`.
    pub fn config(&self) -> Result<WorkerProcessConfig, ConfigError> {
        let queue = self.queue.config()?;
        let plugins = self.plugins.config()?;
        check_plugin_deadline(&queue, plugins.as_ref())?;
        let oauth = self.oauth.config()?;
        let media = self
            .media
            .config(oauth.public_url.clone(), &self.token_key)?;
        Ok(WorkerProcessConfig {
            database_url: self.database.url()?,
            db_max_connections: self.db_max_connections.max(1),
            queue,
            plugins,
            outbound: self.plugins.address_policy()?,
            cipher: self.token_key.cipher()?,
            oauth,
            media,
        })
    }
}

/// A plugin call must be able to end by its own deadline before the worker's publish
/// timeout cuts it off: a call cut off from outside is not counted as the plugin's
/// failure (so it never leads to quarantine).
fn check_plugin_deadline(
    queue: &QueueConfig,
    plugins: Option<&herald_plugin_host::HostConfig>,
) -> Result<(), ConfigError> {
    match plugins {
        Some(plugins) if plugins.call_timeout >= queue.worker.publish_timeout => {
            Err(ConfigError::new(
                "HERALD_PLUGIN_TIMEOUT_SECS (--plugin-timeout-secs)",
                format!(
                    "must be less than HERALD_PUBLISH_TIMEOUT_SECS ({} s)",
                    queue.worker.publish_timeout.as_secs()
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Validated settings of `herald serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Postgres URL.
    pub database_url: String,
    /// Pool size.
    pub db_max_connections: u32,
    /// Queue settings.
    pub queue: QueueConfig,
    /// Whether this process runs publishing workers.
    pub workers: bool,
    /// Listen address.
    pub bind: SocketAddr,
    /// Token verification.
    pub jwt: JwtConfig,
    /// Whether to apply migrations at start.
    pub migrate: bool,
    /// Plugin host settings, when a plugin directory is configured.
    pub plugins: Option<herald_plugin_host::HostConfig>,
    /// Where Herald's own outbound requests (webhooks) may connect.
    pub outbound: herald_plugin_host::address::AddressPolicy,
    /// Seals and opens account tokens.
    pub cipher: crate::secrets::TokenCipher,
    /// GraphQL endpoint settings.
    pub graphql: GraphqlConfig,
    /// Who manages the tenants' accounts.
    pub account_policy: AccountPolicy,
    /// OAuth connect flows and token refresh.
    pub oauth: OauthConfig,
    /// The media library.
    pub media: MediaConfig,
}

impl ServeArgs {
    /// Validates every setting of `herald serve`.
    pub fn config(&self) -> Result<ServeConfig, ConfigError> {
        let bind = self.bind.parse().map_err(|e| {
            ConfigError::new(
                "HERALD_BIND (--bind)",
                format!(
                    "`{}` is not an address such as 127.0.0.1:8080: {e}",
                    self.bind
                ),
            )
        })?;
        if self.db_max_connections == 0 {
            return Err(ConfigError::new(
                "HERALD_DB_MAX_CONNECTIONS (--db-max-connections)",
                "must be at least 1",
            ));
        }
        let queue = self.queue.config()?;
        let plugins = self.plugins.config()?;
        check_plugin_deadline(&queue, plugins.as_ref())?;
        let oauth = self.oauth.config()?;
        let media = self
            .media
            .config(oauth.public_url.clone(), &self.token_key)?;
        Ok(ServeConfig {
            database_url: self.database.url()?,
            db_max_connections: self.db_max_connections,
            queue,
            workers: !self.no_worker,
            bind,
            jwt: self.jwt.config()?,
            migrate: !self.no_migrate,
            plugins,
            outbound: self.plugins.address_policy()?,
            cipher: self.token_key.cipher()?,
            graphql: self.graphql.config()?,
            account_policy: if self.members_manage_accounts {
                AccountPolicy::Members
            } else {
                AccountPolicy::AdminsOnly
            },
            oauth,
            media,
        })
    }
}
