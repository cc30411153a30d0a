//! The only place that reads configuration: clap flags with environment fallbacks.
//! Every error names the setting at fault, as its environment variable and its flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::queue::retry::RetryPolicy;
use crate::worker::WorkerConfig;
use crate::worker::reconcile::ReconcileConfig;

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
    Serve(ServeArgs),
    /// Run publishing workers only (no API), e.g. as separate worker replicas.
    Worker(WorkerArgs),
    /// Apply pending migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the GraphQL schema (SDL) to standard output.
    PrintSchema,
    /// Mint an HS256 token with HERALD_JWT_SECRET (for development and scripts).
    Token(TokenArgs),
    /// Check or try out a publisher plugin without running Herald.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

/// Subcommands of `herald plugin`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load a plugin (`<file>.wasm` with `<file>.toml` beside it): check its exports, WIT
    /// version and manifest, and print what it declares.
    Check {
        /// The plugin's `.wasm` file.
        file: PathBuf,
        /// Sandbox settings.
        #[command(flatten)]
        sandbox: PluginArgs,
    },
    /// Validate and publish one post with a plugin, printing the outcome as JSON.
    Run {
        /// The plugin's `.wasm` file.
        file: PathBuf,
        /// JSON file with the post: {"text": "…", "media": [{"url", "mime_type", "alt"}]}.
        #[arg(long)]
        post: PathBuf,
        /// JSON file with credentials: {"access_token": "…", "refresh_token": …}.
        #[arg(long)]
        credentials: Option<PathBuf>,
        /// Idempotency key of the publication.
        #[arg(long, default_value = "herald-plugin-run")]
        idempotency_key: String,
        /// Sandbox settings.
        #[command(flatten)]
        sandbox: PluginArgs,
    },
}

/// Where plugins are and how they are confined.
#[derive(Debug, Clone, Args)]
pub struct PluginArgs {
    /// Directory of publisher plugins (`<name>.wasm` + `<name>.toml`); none loaded if unset.
    #[arg(long, env = "HERALD_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Cache of compiled plugins (default: `.cache` inside the plugin directory).
    #[arg(long, env = "HERALD_PLUGIN_CACHE_DIR")]
    pub plugin_cache_dir: Option<PathBuf>,
    /// Most plugin calls at once (sizes the instance pool).
    #[arg(long, env = "HERALD_PLUGIN_CONCURRENCY", default_value_t = 64)]
    pub plugin_concurrency: u32,
    /// Use the pooling instance allocator.
    #[arg(long, env = "HERALD_PLUGIN_POOLING", default_value_t = true, action = clap::ArgAction::Set)]
    pub plugin_pooling: bool,
    /// Memory cap of one plugin instance, in MiB.
    #[arg(long, env = "HERALD_PLUGIN_MEMORY_MB", default_value_t = 64)]
    pub plugin_memory_mb: u32,
    /// Deadline of one plugin call, in seconds.
    #[arg(long, env = "HERALD_PLUGIN_TIMEOUT_SECS", default_value_t = 30)]
    pub plugin_timeout_secs: u64,
    /// Deadline of one outbound HTTP request of a plugin, in seconds.
    #[arg(long, env = "HERALD_PLUGIN_HTTP_TIMEOUT_SECS", default_value_t = 20)]
    pub plugin_http_timeout_secs: u64,
    /// Largest HTTP response a plugin may receive, in MiB.
    #[arg(long, env = "HERALD_PLUGIN_MAX_RESPONSE_MB", default_value_t = 8)]
    pub plugin_max_response_mb: u64,
    /// Largest media file fetched for a plugin, in MiB.
    #[arg(long, env = "HERALD_PLUGIN_MAX_MEDIA_MB", default_value_t = 100)]
    pub plugin_max_media_mb: u64,
    /// Testing only: send a plugin's requests for HOST to BASE (`HOST=http://127.0.0.1:PORT`),
    /// comma separated.
    #[arg(long, env = "HERALD_PLUGIN_HOST_OVERRIDES", value_delimiter = ',')]
    pub plugin_host_overrides: Vec<String>,
}

impl PluginArgs {
    /// The host settings for `plugin_dir`, validated.
    pub fn host_config(
        &self,
        plugin_dir: PathBuf,
    ) -> Result<herald_plugin_host::HostConfig, ConfigError> {
        let mut config = herald_plugin_host::HostConfig::new(&plugin_dir);
        config.cache_dir = Some(
            self.plugin_cache_dir
                .clone()
                .unwrap_or_else(|| plugin_dir.join(".cache")),
        );
        config.concurrency = u32::try_from(positive(
            "HERALD_PLUGIN_CONCURRENCY (--plugin-concurrency)",
            u64::from(self.plugin_concurrency),
        )?)
        .unwrap_or(u32::MAX);
        config.pooling = self.plugin_pooling;
        config.memory_limit_bytes = usize::try_from(
            positive(
                "HERALD_PLUGIN_MEMORY_MB (--plugin-memory-mb)",
                u64::from(self.plugin_memory_mb),
            )? << 20,
        )
        .map_err(|_| {
            ConfigError::new("HERALD_PLUGIN_MEMORY_MB (--plugin-memory-mb)", "too large")
        })?;
        config.call_timeout = std::time::Duration::from_secs(positive(
            "HERALD_PLUGIN_TIMEOUT_SECS (--plugin-timeout-secs)",
            self.plugin_timeout_secs,
        )?);
        config.http_timeout = std::time::Duration::from_secs(positive(
            "HERALD_PLUGIN_HTTP_TIMEOUT_SECS (--plugin-http-timeout-secs)",
            self.plugin_http_timeout_secs,
        )?);
        config.max_response_bytes = positive(
            "HERALD_PLUGIN_MAX_RESPONSE_MB (--plugin-max-response-mb)",
            self.plugin_max_response_mb,
        )? << 20;
        config.max_media_bytes = positive(
            "HERALD_PLUGIN_MAX_MEDIA_MB (--plugin-max-media-mb)",
            self.plugin_max_media_mb,
        )? << 20;
        for entry in &self.plugin_host_overrides {
            const KEY: &str = "HERALD_PLUGIN_HOST_OVERRIDES (--plugin-host-overrides)";
            let (host, base) = entry
                .split_once('=')
                .ok_or_else(|| ConfigError::new(KEY, format!("`{entry}` is not HOST=BASE_URL")))?;
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(ConfigError::new(
                    KEY,
                    format!("`{base}` is not an http(s) base URL"),
                ));
            }
            config
                .host_overrides
                .insert(host.trim().to_owned(), base.trim().to_owned());
        }
        Ok(config)
    }

    /// The host settings when a plugin directory is configured.
    pub fn config(&self) -> Result<Option<herald_plugin_host::HostConfig>, ConfigError> {
        self.plugin_dir
            .clone()
            .map(|dir| self.host_config(dir))
            .transpose()
    }
}

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
}

/// The key that seals connected accounts' tokens at rest.
#[derive(Debug, Args)]
pub struct TokenKeyArgs {
    /// AES-256 key for account tokens, base64 of 32 random bytes
    /// (e.g. `head -c32 /dev/urandom | base64`).
    #[arg(long, env = "HERALD_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<String>,
    /// Id stored with every sealed token (change it when rotating the key).
    #[arg(long, env = "HERALD_TOKEN_KEY_ID", default_value = "k1")]
    pub token_key_id: String,
}

impl TokenKeyArgs {
    /// The validated cipher.
    pub fn cipher(&self) -> Result<crate::secrets::TokenCipher, ConfigError> {
        use base64::Engine;
        const KEY: &str = "HERALD_TOKEN_KEY (--token-key)";
        let encoded = self
            .token_key
            .as_deref()
            .ok_or_else(|| ConfigError::new(KEY, "not set"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| ConfigError::new(KEY, "not valid base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ConfigError::new(KEY, "must decode to exactly 32 bytes"))?;
        if self.token_key_id.is_empty() || self.token_key_id.len() > 64 {
            return Err(ConfigError::new(
                "HERALD_TOKEN_KEY_ID (--token-key-id)",
                "must be 1 to 64 characters",
            ));
        }
        Ok(crate::secrets::TokenCipher::new(
            self.token_key_id.clone(),
            &key,
        ))
    }
}

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
    /// Answer `posts` pages with one compiled SQL statement that writes their JSON.
    #[arg(long, env = "HERALD_GRAPHQL_COMPILED_READS", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphql_compiled_reads: bool,
}

impl GraphqlArgs {
    /// The validated GraphQL settings.
    pub fn config(&self) -> Result<crate::graphql::GraphqlConfig, ConfigError> {
        let max_body_kb = positive(
            "HERALD_GRAPHQL_MAX_BODY_KB (--graphql-max-body-kb)",
            self.graphql_max_body_kb as u64,
        )?;
        let secs = |key, value| positive(key, value).map(Duration::from_secs);
        Ok(crate::graphql::GraphqlConfig {
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
            compiled_reads: self.graphql_compiled_reads,
        })
    }
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
}

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
    /// Enables the `webhook` platform: each post is POSTed as JSON to this URL.
    #[arg(long, env = "HERALD_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Whether the webhook receiver honours `Idempotency-Key` (decides crash recovery).
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
    /// The webhook platform's URL and whether it is idempotent.
    pub webhook: Option<(String, bool)>,
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
            required_url(
                "HERALD_WEBHOOK_URL (--webhook-url)",
                self.webhook_url.as_deref(),
                &["http", "https"],
            )?;
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
            webhook: self
                .webhook_url
                .clone()
                .map(|url| (url, self.webhook_idempotent)),
        })
    }
}

/// How bearer tokens are verified.
#[derive(Debug, Args)]
pub struct JwtArgs {
    /// HS256 shared secret (at least 32 bytes).
    #[arg(long, env = "HERALD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// RS256 or EdDSA public key: PEM text, or a path to a PEM file.
    #[arg(long, env = "HERALD_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<String>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "HERALD_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "HERALD_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

/// Settings of `herald token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user (`sub` claim).
    #[arg(long)]
    pub sub: String,
    /// The tenant (`org` claim); the user itself when absent.
    #[arg(long)]
    pub org: Option<String>,
    /// Roles, comma separated (approver, admin).
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Lifetime in hours.
    #[arg(long, default_value_t = 24)]
    pub ttl_hours: i64,
    /// Token settings (only the secret, issuer and audience are used).
    #[command(flatten)]
    pub jwt: JwtArgs,
}

/// The key material tokens are verified with.
#[derive(Debug, Clone)]
pub enum JwtKey {
    /// HS256 shared secret.
    Secret(Vec<u8>),
    /// PEM-encoded RSA or Ed25519 public key.
    PublicKeyPem(String),
}

/// Validated token settings.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// Verification key.
    pub key: JwtKey,
    /// Required issuer.
    pub issuer: Option<String>,
    /// Required audience.
    pub audience: Option<String>,
}

/// Shortest HS256 secret accepted: a shorter one can be brute-forced.
pub const MIN_SECRET_BYTES: usize = 32;

impl JwtArgs {
    /// Validates the token settings: exactly one of secret and public key.
    pub fn config(&self) -> Result<JwtConfig, ConfigError> {
        const SECRET: &str = "HERALD_JWT_SECRET (--jwt-secret)";
        const PUBLIC: &str = "HERALD_JWT_PUBLIC_KEY (--jwt-public-key)";
        let key = match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    SECRET,
                    "set either HERALD_JWT_SECRET or HERALD_JWT_PUBLIC_KEY, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    SECRET,
                    "not set (or set HERALD_JWT_PUBLIC_KEY for RS256/EdDSA)",
                ));
            }
            (Some(secret), None) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(ConfigError::new(
                        SECRET,
                        format!("must be at least {MIN_SECRET_BYTES} bytes"),
                    ));
                }
                JwtKey::Secret(secret.as_bytes().to_vec())
            }
            (None, Some(value)) => {
                let pem = if value.trim_start().starts_with("-----BEGIN") {
                    value.clone()
                } else {
                    std::fs::read_to_string(PathBuf::from(value)).map_err(|e| {
                        ConfigError::new(PUBLIC, format!("cannot read PEM file `{value}`: {e}"))
                    })?
                };
                JwtKey::PublicKeyPem(pem)
            }
        };
        Ok(JwtConfig {
            key,
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
        })
    }
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
    /// Seals and opens account tokens.
    pub cipher: crate::secrets::TokenCipher,
}

impl WorkerArgs {
    /// Validates every setting of `herald worker`.
    pub fn config(&self) -> Result<WorkerProcessConfig, ConfigError> {
        let queue = self.queue.config()?;
        let plugins = self.plugins.config()?;
        check_plugin_deadline(&queue, plugins.as_ref())?;
        Ok(WorkerProcessConfig {
            database_url: self.database.url()?,
            db_max_connections: self.db_max_connections.max(1),
            queue,
            plugins,
            cipher: self.token_key.cipher()?,
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
    /// Seals and opens account tokens.
    pub cipher: crate::secrets::TokenCipher,
    /// GraphQL endpoint settings.
    pub graphql: crate::graphql::GraphqlConfig,
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
        Ok(ServeConfig {
            database_url: self.database.url()?,
            db_max_connections: self.db_max_connections,
            queue,
            workers: !self.no_worker,
            bind,
            jwt: self.jwt.config()?,
            migrate: !self.no_migrate,
            plugins,
            cipher: self.token_key.cipher()?,
            graphql: self.graphql.config()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings as clap would build them, without reading the environment.
    fn args(database_url: Option<&str>, secret: Option<&str>) -> ServeArgs {
        ServeArgs {
            database: DatabaseArgs {
                database_url: database_url.map(str::to_owned),
            },
            db_max_connections: 20,
            queue: QueueArgs {
                redis_url: Some("redis://127.0.0.1:6379".into()),
                queue_namespace: "herald".into(),
                queue_lease_ms: 30_000,
                queue_max_attempts: 3,
                queue_retry_base_ms: 5_000,
                queue_retry_cap_ms: 900_000,
                worker_concurrency: 64,
                worker_platform_concurrency: 16,
                publish_timeout_secs: 120,
                reconcile_interval_ms: 30_000,
                reconcile_horizon_secs: 3_600,
                webhook_url: None,
                webhook_idempotent: true,
            },
            no_worker: false,
            bind: "127.0.0.1:8080".into(),
            jwt: JwtArgs {
                jwt_secret: secret.map(str::to_owned),
                jwt_public_key: None,
                jwt_issuer: None,
                jwt_audience: None,
            },
            no_migrate: false,
            plugins: PluginArgs {
                plugin_dir: None,
                plugin_cache_dir: None,
                plugin_concurrency: 64,
                plugin_pooling: true,
                plugin_memory_mb: 64,
                plugin_timeout_secs: 30,
                plugin_http_timeout_secs: 20,
                plugin_max_response_mb: 8,
                plugin_max_media_mb: 100,
                plugin_host_overrides: Vec::new(),
            },
            token_key: TokenKeyArgs {
                token_key: Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()),
                token_key_id: "k1".into(),
            },
            graphql: GraphqlArgs {
                graphql_introspection: true,
                graphql_batching: false,
                graphql_max_body_kb: 1_024,
                graphql_timeout_secs: 30,
                ws_init_timeout_secs: 10,
                ws_ping_interval_secs: 15,
                ws_pong_timeout_secs: 10,
                graphql_apq_ttl_secs: 86_400,
                graphql_compiled_reads: true,
            },
        }
    }

    const DB: Option<&str> = Some("postgres://h@127.0.0.1/h");
    const SECRET: Option<&str> = Some("0123456789abcdef0123456789abcdef");

    #[test]
    fn errors_name_the_setting() {
        let mut cases: Vec<(ServeArgs, &str)> = vec![
            (args(None, SECRET), "DATABASE_URL"),
            (args(Some("mysql://x"), SECRET), "DATABASE_URL"),
            (args(DB, None), "HERALD_JWT_SECRET"),
            (args(DB, Some("short")), "HERALD_JWT_SECRET"),
        ];
        let mut both = args(DB, SECRET);
        both.jwt.jwt_public_key = Some("/nonexistent.pem".into());
        cases.push((both, "HERALD_JWT_SECRET"));
        let mut missing_pem = args(DB, None);
        missing_pem.jwt.jwt_public_key = Some("/nonexistent.pem".into());
        cases.push((missing_pem, "HERALD_JWT_PUBLIC_KEY"));
        let mut bind = args(DB, SECRET);
        bind.bind = "localhost".into();
        cases.push((bind, "HERALD_BIND"));
        let mut redis = args(DB, SECRET);
        redis.queue.redis_url = Some("http://x".into());
        cases.push((redis, "REDIS_URL"));
        let mut no_redis = args(DB, SECRET);
        no_redis.queue.redis_url = None;
        cases.push((no_redis, "REDIS_URL"));
        let mut namespace = args(DB, SECRET);
        namespace.queue.queue_namespace = "a{b}".into();
        cases.push((namespace, "HERALD_QUEUE_NAMESPACE"));
        let mut lease = args(DB, SECRET);
        lease.queue.queue_lease_ms = 0;
        cases.push((lease, "HERALD_QUEUE_LEASE_MS"));
        let mut no_key = args(DB, SECRET);
        no_key.token_key.token_key = None;
        cases.push((no_key, "HERALD_TOKEN_KEY"));
        let mut short_key = args(DB, SECRET);
        short_key.token_key.token_key = Some("c2hvcnQ=".into());
        cases.push((short_key, "HERALD_TOKEN_KEY"));
        let mut webhook = args(DB, SECRET);
        webhook.queue.webhook_url = Some("ftp://x".into());
        cases.push((webhook, "HERALD_WEBHOOK_URL"));
        let mut pool = args(DB, SECRET);
        pool.db_max_connections = 0;
        cases.push((pool, "HERALD_DB_MAX_CONNECTIONS"));
        let mut memory = args(DB, SECRET);
        memory.plugins.plugin_dir = Some("/plugins".into());
        memory.plugins.plugin_memory_mb = 0;
        cases.push((memory, "HERALD_PLUGIN_MEMORY_MB"));
        let mut overrides = args(DB, SECRET);
        overrides.plugins.plugin_dir = Some("/plugins".into());
        overrides.plugins.plugin_host_overrides = vec!["api.example.com".into()];
        cases.push((overrides, "HERALD_PLUGIN_HOST_OVERRIDES"));
        let mut timeout = args(DB, SECRET);
        timeout.graphql.graphql_timeout_secs = 0;
        cases.push((timeout, "HERALD_GRAPHQL_TIMEOUT_SECS"));
        let mut init = args(DB, SECRET);
        init.graphql.ws_init_timeout_secs = 0;
        cases.push((init, "HERALD_WS_INIT_TIMEOUT_SECS"));
        for (args, key) in cases {
            let err = args.config().expect_err("invalid");
            assert!(err.key.starts_with(key), "{args:?}: {err}");
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn plugin_settings_build_the_host_config() {
        let mut args = args(DB, SECRET);
        assert!(args.config().expect("valid").plugins.is_none());
        args.plugins.plugin_dir = Some("/srv/plugins".into());
        args.plugins.plugin_host_overrides = vec!["api.example.com=http://127.0.0.1:4000".into()];
        let plugins = args.config().expect("valid").plugins.expect("configured");
        assert_eq!(
            plugins.cache_dir,
            Some(PathBuf::from("/srv/plugins/.cache"))
        );
        assert_eq!(plugins.memory_limit_bytes, 64 << 20);
        assert_eq!(
            plugins
                .host_overrides
                .get("api.example.com")
                .map(String::as_str),
            Some("http://127.0.0.1:4000")
        );
        args.plugins.plugin_timeout_secs = args.queue.publish_timeout_secs;
        let err = args
            .config()
            .expect_err("plugin deadline past the publish timeout");
        assert!(err.key.starts_with("HERALD_PLUGIN_TIMEOUT_SECS"), "{err}");
    }

    #[test]
    fn valid_settings_and_flags_parse() {
        let mut valid = args(DB, SECRET);
        valid.no_migrate = true;
        let config = valid.config().expect("valid");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert!(!config.migrate);
        assert!(matches!(config.jwt.key, JwtKey::Secret(_)));
        let cli = Cli::try_parse_from(["herald", "serve", "--no-migrate", "--bind", "0.0.0.0:9"])
            .expect("parses");
        let Command::Serve(serve) = cli.command else {
            panic!("expected serve");
        };
        assert!(serve.no_migrate);
        assert_eq!(serve.bind, "0.0.0.0:9");
    }
}
