//! `herald plugin check|run` and the plugin sandbox's settings.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use herald_plugin_host::address::AddressPolicy;

use super::{ConfigError, positive};

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
    /// Most publishing plugin calls at once (publish, token refresh, lookup).
    #[arg(long, env = "HERALD_PLUGIN_CONCURRENCY", default_value_t = 64)]
    pub plugin_concurrency: u32,
    /// Most plugin calls for API requests at once (validation, connecting accounts,
    /// metrics): a lane of their own, so they never take publishing's slots.
    #[arg(long, env = "HERALD_PLUGIN_API_CONCURRENCY", default_value_t = 16)]
    pub plugin_api_concurrency: u32,
    /// Private address ranges (CIDR, comma separated) outbound requests may reach besides
    /// public addresses, e.g. an instance on the LAN; none by default.
    #[arg(long, env = "HERALD_OUTBOUND_ALLOW_CIDRS", value_delimiter = ',')]
    pub outbound_allow_cidrs: Vec<String>,
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
        config.api_concurrency = u32::try_from(positive(
            "HERALD_PLUGIN_API_CONCURRENCY (--plugin-api-concurrency)",
            u64::from(self.plugin_api_concurrency),
        )?)
        .unwrap_or(u32::MAX);
        config.address_policy = self.address_policy()?;
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

    /// Where outbound requests may connect: public addresses and the listed ranges.
    pub fn address_policy(&self) -> Result<AddressPolicy, ConfigError> {
        AddressPolicy::parse(self.outbound_allow_cidrs.iter().map(String::as_str)).map_err(
            |reason| {
                ConfigError::new(
                    "HERALD_OUTBOUND_ALLOW_CIDRS (--outbound-allow-cidrs)",
                    reason,
                )
            },
        )
    }

    /// The host settings when a plugin directory is configured.
    pub fn config(&self) -> Result<Option<herald_plugin_host::HostConfig>, ConfigError> {
        self.plugin_dir
            .clone()
            .map(|dir| self.host_config(dir))
            .transpose()
    }
}
