//! GraphQL endpoint settings: introspection, batching, body size, deadlines, WebSocket
//! keep-alive, persisted queries, compiled reads, rate limits (`limits`).

use std::time::Duration;

use clap::Args;

use super::limits::{RateLimitArgs, RateLimitConfig};
use super::{ConfigError, positive};

/// How the GraphQL endpoints behave.
#[derive(Debug, Args)]
pub struct GraphqlArgs {
    /// Answer introspection (`__schema`, `__type`); GraphiQL and codegen need it.
    #[arg(long, env = "HERALD_GRAPHQL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphql_introspection: bool,
    /// Accept a JSON array of requests in one POST.
    #[arg(long, env = "HERALD_GRAPHQL_BATCHING", default_value_t = false, action = clap::ArgAction::Set)]
    pub graphql_batching: bool,
    /// Largest request body, in KiB.
    #[arg(long, env = "HERALD_GRAPHQL_MAX_BODY_KB", default_value_t = 1_024)]
    pub graphql_max_body_kb: usize,
    /// Longest a query or mutation may run, in seconds.
    #[arg(long, env = "HERALD_GRAPHQL_TIMEOUT_SECS", default_value_t = 30)]
    pub graphql_timeout_secs: u64,
    /// How long a WebSocket may stay open without `connection_init`, in seconds.
    #[arg(long, env = "HERALD_WS_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_init_timeout_secs: u64,
    /// Time between keep-alive `ping` messages on WebSockets, in seconds.
    #[arg(long, env = "HERALD_WS_PING_INTERVAL_SECS", default_value_t = 15)]
    pub ws_ping_interval_secs: u64,
    /// How long a WebSocket client may take to answer a `ping`, in seconds.
    #[arg(long, env = "HERALD_WS_PONG_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_pong_timeout_secs: u64,
    /// How long a persisted query (APQ) stays registered, in seconds.
    #[arg(long, env = "HERALD_GRAPHQL_APQ_TTL_SECS", default_value_t = 86_400)]
    pub graphql_apq_ttl_secs: u64,
    /// Largest query registered as a persisted query, in KiB (larger ones still run).
    #[arg(long, env = "HERALD_GRAPHQL_APQ_MAX_QUERY_KB", default_value_t = 32)]
    pub graphql_apq_max_query_kb: u64,
    /// Persisted queries one tenant may register per TTL window.
    #[arg(long, env = "HERALD_GRAPHQL_APQ_TENANT_QUOTA", default_value_t = 500)]
    pub graphql_apq_tenant_quota: u64,
    /// Answer `posts` pages with one compiled SQL statement that writes their JSON.
    #[arg(long, env = "HERALD_GRAPHQL_COMPILED_READS", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphql_compiled_reads: bool,
    /// Rate limits per caller.
    #[command(flatten)]
    pub rate_limits: RateLimitArgs,
}

impl GraphqlArgs {
    /// The validated GraphQL settings.
    pub fn config(&self) -> Result<GraphqlConfig, ConfigError> {
        let max_body_kb = positive(
            "HERALD_GRAPHQL_MAX_BODY_KB (--graphql-max-body-kb)",
            self.graphql_max_body_kb as u64,
        )?;
        let secs = |key, value| positive(key, value).map(Duration::from_secs);
        Ok(GraphqlConfig {
            introspection: self.graphql_introspection,
            batching: self.graphql_batching,
            max_body_bytes: usize::try_from(max_body_kb.saturating_mul(1_024))
                .unwrap_or(usize::MAX),
            request_timeout: secs(
                "HERALD_GRAPHQL_TIMEOUT_SECS (--graphql-timeout-secs)",
                self.graphql_timeout_secs,
            )?,
            ws_init_timeout: secs(
                "HERALD_WS_INIT_TIMEOUT_SECS (--ws-init-timeout-secs)",
                self.ws_init_timeout_secs,
            )?,
            ws_ping_interval: secs(
                "HERALD_WS_PING_INTERVAL_SECS (--ws-ping-interval-secs)",
                self.ws_ping_interval_secs,
            )?,
            ws_pong_timeout: secs(
                "HERALD_WS_PONG_TIMEOUT_SECS (--ws-pong-timeout-secs)",
                self.ws_pong_timeout_secs,
            )?,
            apq_ttl: secs(
                "HERALD_GRAPHQL_APQ_TTL_SECS (--graphql-apq-ttl-secs)",
                self.graphql_apq_ttl_secs,
            )?,
            apq_max_query_bytes: usize::try_from(
                positive(
                    "HERALD_GRAPHQL_APQ_MAX_QUERY_KB (--graphql-apq-max-query-kb)",
                    self.graphql_apq_max_query_kb,
                )?
                .saturating_mul(1_024),
            )
            .unwrap_or(usize::MAX),
            apq_tenant_quota: positive(
                "HERALD_GRAPHQL_APQ_TENANT_QUOTA (--graphql-apq-tenant-quota)",
                self.graphql_apq_tenant_quota,
            )?,
            compiled_reads: self.graphql_compiled_reads,
            rate_limits: self.rate_limits.config()?,
        })
    }
}

/// How the GraphQL endpoints behave (HTTP and WebSocket).
#[derive(Debug, Clone)]
pub struct GraphqlConfig {
    /// Whether `__schema`/`__type` introspection is answered.
    pub introspection: bool,
    /// Whether a POST body may be an array of requests.
    pub batching: bool,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a query or mutation may run.
    pub request_timeout: Duration,
    /// How long a WebSocket may stay open without a `connection_init`.
    pub ws_init_timeout: Duration,
    /// Time between the server's keep-alive `ping` messages.
    pub ws_ping_interval: Duration,
    /// How long the server waits for a `pong` before closing the connection.
    pub ws_pong_timeout: Duration,
    /// How long a persisted query stays registered after its last registration.
    pub apq_ttl: Duration,
    /// Largest query registered as a persisted query (larger ones run unregistered).
    pub apq_max_query_bytes: usize,
    /// Persisted queries one tenant may register per `apq_ttl` window.
    pub apq_tenant_quota: u64,
    /// Whether `posts` pages are answered by one compiled SQL statement (`compiled`).
    pub compiled_reads: bool,
    /// Requests and expensive mutations per caller.
    pub rate_limits: RateLimitConfig,
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        Self {
            introspection: true,
            batching: false,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            ws_init_timeout: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(15),
            ws_pong_timeout: Duration::from_secs(10),
            apq_ttl: Duration::from_secs(86_400),
            apq_max_query_bytes: 32 * 1_024,
            apq_tenant_quota: 500,
            compiled_reads: true,
            rate_limits: RateLimitConfig::default(),
        }
    }
}
