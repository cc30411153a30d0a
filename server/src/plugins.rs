//! Publisher plugins in the server: `herald plugin check|run`, and the loaded
//! [`PluginHost`] the API and the queue worker call. The sandbox itself is the
//! `herald-plugin-host` crate.

use std::path::{Path, PathBuf};

pub use herald_plugin_host::{
    HostConfig, PluginError, PluginHost, PluginInfo, Post, PublishFailure, PublishRequest,
};
use serde_json::{Value, json};

use crate::config::{ConfigError, PluginArgs};

/// Why `herald plugin check|run` failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginCliError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// An input file could not be read or parsed.
    #[error("{path}: {reason}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Loads the plugin at `file` alone, with the sandbox settings of `args`.
async fn load(file: &Path, args: &PluginArgs) -> Result<PluginHost, PluginCliError> {
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut config = args.host_config(args.plugin_dir.clone().unwrap_or(dir))?;
    if args.plugin_cache_dir.is_none() {
        // A one-off check should not leave a cache next to someone's plugin.
        config.cache_dir = None;
    }
    Ok(PluginHost::load_file(config, file).await?)
}

/// `herald plugin check`: loads the plugin and describes it.
pub async fn check(file: &Path, args: &PluginArgs) -> Result<Value, PluginCliError> {
    let host = load(file, args).await?;
    let manifest = herald_plugin_host::Manifest::for_plugin(file)?;
    let info = host.platforms().into_iter().next();
    Ok(json!({
        "ok": true,
        "plugin": info,
        "allowed_hosts": manifest.allowed_hosts,
        "supported_wit_versions": herald_plugin_host::SUPPORTED_WIT_VERSIONS,
    }))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, PluginCliError> {
    let input = |reason: String| PluginCliError::Input {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| input(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| input(e.to_string()))
}

/// `herald plugin run`: validates, then publishes the post; the JSON says what happened
/// and `ok` whether it was published.
pub async fn run(
    file: &Path,
    post: &Path,
    credentials: Option<&Path>,
    idempotency_key: &str,
    args: &PluginArgs,
) -> Result<Value, PluginCliError> {
    let post: Post = read_json(post)?;
    let credentials = credentials.map(read_json).transpose()?.unwrap_or_default();
    let host = load(file, args).await?;
    let Some(platform) = host
        .platforms()
        .into_iter()
        .next()
        .map(|info| info.platform)
    else {
        return Err(PluginError::UnknownPlatform(file.display().to_string()).into());
    };
    let violations = host.validate(&platform, &post).await?;
    if !violations.is_empty() {
        return Ok(json!({ "ok": false, "platform": platform, "violations": violations }));
    }
    let request = PublishRequest {
        post,
        credentials,
        idempotency_key: idempotency_key.to_owned(),
    };
    Ok(match host.publish(&platform, request).await {
        Ok(receipt) => json!({ "ok": true, "platform": platform, "receipt": receipt }),
        Err(failure) => json!({
            "ok": false,
            "platform": platform,
            "retryable": failure.is_retryable(),
            "failure": failure,
        }),
    })
}
