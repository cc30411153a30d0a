//! Settings of the plugin host (the server fills them from its own configuration).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::address::AddressPolicy;

/// How the host loads and confines plugins.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Directory holding `<name>.wasm` + `<name>.toml` pairs.
    pub plugin_dir: PathBuf,
    /// Where compiled `.cwasm` files are kept; `None` compiles at every start.
    pub cache_dir: Option<PathBuf>,
    /// Most publishing-path plugin calls running at once (publish, token refresh, lookup).
    pub concurrency: u32,
    /// Most plugin calls made for API requests running at once (validation, connecting
    /// accounts, OAuth, metrics); a separate lane, so they never take publishing's slots.
    /// The pooling allocator is sized for both lanes.
    pub api_concurrency: u32,
    /// Use the pooling instance allocator (faster instantiation, reserved memory).
    pub pooling: bool,
    /// Largest linear memory of one plugin instance, in bytes.
    pub memory_limit_bytes: usize,
    /// Deadline of one call (CPU and waiting included).
    pub call_timeout: Duration,
    /// Deadline of one outbound HTTP request, redirects included.
    pub http_timeout: Duration,
    /// Largest outbound HTTP response body, in bytes.
    pub max_response_bytes: u64,
    /// Largest media file the host fetches for a plugin, in bytes.
    pub max_media_bytes: u64,
    /// Most redirects followed for one request.
    pub max_redirects: u32,
    /// Consecutive traps or timeouts after which a plugin is quarantined.
    pub quarantine_after: u32,
    /// Test-only routing: `host[:port]` → base URL (e.g. `http://127.0.0.1:4000`). Plugins
    /// keep their real `https://` URLs; requests to a listed host go to the base instead.
    pub host_overrides: HashMap<String, String>,
    /// Which addresses plugin requests and media fetches may reach (public unicast only,
    /// unless ranges are listed). Hosts in `host_overrides` are routed without it.
    pub address_policy: AddressPolicy,
}

impl HostConfig {
    /// Defaults for `plugin_dir`.
    pub fn new(plugin_dir: impl Into<PathBuf>) -> Self {
        Self {
            plugin_dir: plugin_dir.into(),
            cache_dir: None,
            concurrency: 64,
            api_concurrency: 16,
            pooling: true,
            memory_limit_bytes: 64 << 20,
            call_timeout: Duration::from_secs(30),
            http_timeout: Duration::from_secs(20),
            max_response_bytes: 8 << 20,
            max_media_bytes: 100 << 20,
            max_redirects: 5,
            quarantine_after: 3,
            host_overrides: HashMap::new(),
            address_policy: AddressPolicy::public_only(),
        }
    }
}
