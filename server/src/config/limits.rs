//! Rate-limit settings of the GraphQL endpoints: requests per caller (a tenant, or an
//! anonymous client's address) and, stricter, expensive mutations per caller.

use std::num::NonZeroU32;

use axum::http::HeaderName;
use clap::Args;

use super::ConfigError;

/// Rate limits per caller (each `0` turns its limit off).
#[derive(Debug, Args)]
pub struct RateLimitArgs {
    /// GraphQL requests (HTTP requests, WebSocket `subscribe` messages) one tenant or
    /// anonymous client may send per minute; 0 turns the limit off.
    #[arg(long, env = "HERALD_RATE_LIMIT_PER_MINUTE", default_value_t = 6_000)]
    pub rate_limit_per_minute: u32,
    /// Requests a caller may send at once above its per-minute pace.
    #[arg(long, env = "HERALD_RATE_LIMIT_BURST", default_value_t = 1_000)]
    pub rate_limit_burst: u32,
    /// Expensive mutations (plugin calls, many writes) one tenant or client may run per
    /// minute; 0 turns the limit off.
    #[arg(
        long,
        env = "HERALD_MUTATION_RATE_LIMIT_PER_MINUTE",
        default_value_t = 600
    )]
    pub mutation_rate_limit_per_minute: u32,
    /// Expensive mutations a caller may run at once above its per-minute pace.
    #[arg(long, env = "HERALD_MUTATION_RATE_LIMIT_BURST", default_value_t = 300)]
    pub mutation_rate_limit_burst: u32,
    /// Header naming an anonymous client's address, set by a trusted reverse proxy (e.g.
    /// `X-Forwarded-For`; its right-most address counts); unset: the peer's address.
    #[arg(long, env = "HERALD_RATE_LIMIT_CLIENT_IP_HEADER")]
    pub rate_limit_client_ip_header: Option<String>,
}

/// One limit: a steady pace and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Cells replenished per minute.
    pub per_minute: NonZeroU32,
    /// Cells a caller may spend at once.
    pub burst: NonZeroU32,
}

/// Rate limits per caller, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// GraphQL requests per caller (`None`: unlimited).
    pub requests: Option<Rate>,
    /// Expensive mutations per caller (`None`: unlimited).
    pub mutations: Option<Rate>,
    /// The header a trusted proxy names anonymous clients' addresses in.
    pub client_ip_header: Option<HeaderName>,
}

impl Default for RateLimitConfig {
    /// The flags' defaults.
    fn default() -> Self {
        let rate = |per_minute, burst| {
            Some(Rate {
                per_minute: NonZeroU32::new(per_minute)?,
                burst: NonZeroU32::new(burst)?,
            })
        };
        Self {
            requests: rate(6_000, 1_000),
            mutations: rate(600, 300),
            client_ip_header: None,
        }
    }
}

impl RateLimitConfig {
    /// No limits at all.
    pub fn off() -> Self {
        Self {
            requests: None,
            mutations: None,
            client_ip_header: None,
        }
    }
}

/// A limit from its flags: off when `per_minute` is 0, else `burst` must be at least 1.
fn rate(burst_key: &'static str, per_minute: u32, burst: u32) -> Result<Option<Rate>, ConfigError> {
    let Some(per_minute) = NonZeroU32::new(per_minute) else {
        return Ok(None);
    };
    let burst = NonZeroU32::new(burst)
        .ok_or_else(|| ConfigError::new(burst_key, "must be at least 1 while its limit is on"))?;
    Ok(Some(Rate { per_minute, burst }))
}

impl RateLimitArgs {
    /// The validated rate limits.
    pub fn config(&self) -> Result<RateLimitConfig, ConfigError> {
        let client_ip_header = match self.rate_limit_client_ip_header.as_deref() {
            None | Some("") => None,
            Some(name) => Some(HeaderName::try_from(name.trim()).map_err(|_| {
                ConfigError::new(
                    "HERALD_RATE_LIMIT_CLIENT_IP_HEADER (--rate-limit-client-ip-header)",
                    format!("{name:?} is not a header name"),
                )
            })?),
        };
        Ok(RateLimitConfig {
            requests: rate(
                "HERALD_RATE_LIMIT_BURST (--rate-limit-burst)",
                self.rate_limit_per_minute,
                self.rate_limit_burst,
            )?,
            mutations: rate(
                "HERALD_MUTATION_RATE_LIMIT_BURST (--mutation-rate-limit-burst)",
                self.mutation_rate_limit_per_minute,
                self.mutation_rate_limit_burst,
            )?,
            client_ip_header,
        })
    }
}
