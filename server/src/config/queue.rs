//! The publishing queue's settings: Redis, leases, retries, worker concurrency, the
//! reconciler and the built-in webhook platform's receivers.

use std::time::Duration;

use clap::Args;

use super::{ConfigError, positive, required_url};
use crate::queue::retry::RetryPolicy;
use crate::worker::WorkerConfig;
use crate::worker::reconcile::ReconcileConfig;

/// The publishing queue, its workers and the built-in publishers.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Redis URL of the publishing queue, e.g. redis://127.0.0.1:6379.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Hash tag that prefixes every queue key (several Heralds can share one Redis).
    #[arg(long, env = "HERALD_QUEUE_NAMESPACE", default_value = "herald")]
    pub queue_namespace: String,
    /// Lease of a claimed job in ms: a crashed worker's job is recovered after this long.
    #[arg(long, env = "HERALD_QUEUE_LEASE_MS", default_value_t = 30_000)]
    pub queue_lease_ms: u64,
    /// Attempts before a failing publish is dead-lettered.
    #[arg(long, env = "HERALD_QUEUE_MAX_ATTEMPTS", default_value_t = 3)]
    pub queue_max_attempts: u32,
    /// Backoff of the first retry in ms (doubles per attempt, full jitter).
    #[arg(long, env = "HERALD_QUEUE_RETRY_BASE_MS", default_value_t = 5_000)]
    pub queue_retry_base_ms: u64,
    /// Longest backoff in ms.
    #[arg(long, env = "HERALD_QUEUE_RETRY_CAP_MS", default_value_t = 900_000)]
    pub queue_retry_cap_ms: u64,
    /// Publishes in flight per process.
    #[arg(long, env = "HERALD_WORKER_CONCURRENCY", default_value_t = 64)]
    pub worker_concurrency: usize,
    /// Publishes in flight per platform per process.
    #[arg(long, env = "HERALD_WORKER_PLATFORM_CONCURRENCY", default_value_t = 16)]
    pub worker_platform_concurrency: usize,
    /// Longest a publish call may take, in seconds.
    #[arg(long, env = "HERALD_PUBLISH_TIMEOUT_SECS", default_value_t = 120)]
    pub publish_timeout_secs: u64,
    /// Time between reconciliation rounds (Postgres → queue), in ms.
    #[arg(long, env = "HERALD_RECONCILE_INTERVAL_MS", default_value_t = 30_000)]
    pub reconcile_interval_ms: u64,
    /// How far ahead reconciliation enqueues due targets, in seconds.
    #[arg(long, env = "HERALD_RECONCILE_HORIZON_SECS", default_value_t = 3_600)]
    pub reconcile_horizon_secs: u64,
    /// Removed: webhooks are per tenant (`connectAccount(platform: "webhook", …)`). Read
    /// only so that a process still given it refuses to start and says what to do.
    #[arg(long, env = "HERALD_WEBHOOK_URL", hide = true, hide_env_values = true)]
    pub webhook_url: Option<String>,
    /// Whether the tenants' webhook receivers honour `Idempotency-Key` (decides crash
    /// recovery).
    #[arg(long, env = "HERALD_WEBHOOK_IDEMPOTENT", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook_idempotent: bool,
}

/// Validated queue settings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Redis URL.
    pub redis_url: String,
    /// Key hash tag.
    pub namespace: String,
    /// Worker settings.
    pub worker: WorkerConfig,
    /// Reconciler settings.
    pub reconcile: ReconcileConfig,
    /// Whether the webhook receivers honour `Idempotency-Key`.
    pub webhook_idempotent: bool,
}

impl QueueArgs {
    /// Validates the queue settings.
    pub fn config(&self) -> Result<QueueConfig, ConfigError> {
        let redis_url = required_url(
            "REDIS_URL (--redis-url)",
            self.redis_url.as_deref(),
            &["redis", "rediss"],
        )?;
        if self.queue_namespace.is_empty()
            || self
                .queue_namespace
                .contains(|c: char| c == '{' || c == '}' || c.is_whitespace())
        {
            return Err(ConfigError::new(
                "HERALD_QUEUE_NAMESPACE (--queue-namespace)",
                "must be non-empty, without braces or spaces",
            ));
        }
        let lease = positive(
            "HERALD_QUEUE_LEASE_MS (--queue-lease-ms)",
            self.queue_lease_ms,
        )?;
        positive(
            "HERALD_QUEUE_MAX_ATTEMPTS (--queue-max-attempts)",
            u64::from(self.queue_max_attempts),
        )?;
        positive(
            "HERALD_WORKER_CONCURRENCY (--worker-concurrency)",
            self.worker_concurrency as u64,
        )?;
        positive(
            "HERALD_WORKER_PLATFORM_CONCURRENCY (--worker-platform-concurrency)",
            self.worker_platform_concurrency as u64,
        )?;
        let interval = positive(
            "HERALD_RECONCILE_INTERVAL_MS (--reconcile-interval-ms)",
            self.reconcile_interval_ms,
        )?;
        if self.webhook_url.is_some() {
            return Err(ConfigError::new(
                "HERALD_WEBHOOK_URL (--webhook-url)",
                "was removed: webhooks are per tenant now. Unset it, and have each tenant's \
                 admin connect its receiver with connectAccount(platform: \"webhook\", \
                 credentials: {accessToken: <signing secret>, extra: [{key: \"url\", value: \
                 <URL>}]}) (see README, Webhooks)",
            ));
        }
        let lease = Duration::from_millis(lease);
        Ok(QueueConfig {
            redis_url,
            namespace: self.queue_namespace.clone(),
            worker: WorkerConfig {
                concurrency: self.worker_concurrency,
                platform_concurrency: self.worker_platform_concurrency,
                lease,
                publish_timeout: Duration::from_secs(self.publish_timeout_secs.max(1)),
                retry: RetryPolicy {
                    max_attempts: self.queue_max_attempts,
                    base: Duration::from_millis(self.queue_retry_base_ms),
                    cap: Duration::from_millis(
                        self.queue_retry_cap_ms.max(self.queue_retry_base_ms),
                    ),
                },
                ..WorkerConfig::default()
            },
            reconcile: ReconcileConfig {
                interval: Duration::from_millis(interval),
                horizon: Duration::from_secs(self.reconcile_horizon_secs),
                stuck_after: lease * 2,
            },
            webhook_idempotent: self.webhook_idempotent,
        })
    }
}
