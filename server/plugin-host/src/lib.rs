//! Herald's plugin host: loads publisher plugins (WebAssembly components built with
//! `herald-plugin-sdk`) and calls them in a sandbox.
//!
//! - **Loading**: every `<name>.wasm` in the plugin directory with its `<name>.toml`
//!   manifest ([`Manifest`]). A component is compiled once (a `.cwasm` cache keyed by the
//!   wasm's hash and the engine's compatibility hash), linked once (one `InstancePre` per
//!   plugin) and routed to the binding of the WIT version it exports.
//! - **Calls**: a fresh `Store` per call, on a pooling allocator sized to the configured
//!   concurrency; a call busy computing yields its runtime thread on every epoch tick
//!   and a `tokio` timeout bounds its time, a memory cap traps on growth, and the WASI
//!   context is empty (no files, environment, sockets).
//! - **Capabilities**: `http.fetch` to the hosts the manifest declares (https, redirects
//!   re-checked, time and size capped), the current post's media (streamed in under a
//!   cap), logging, and (WIT 0.2.0) a publish's [`checkpoint`]s; every connection is held
//!   to the [`address`] policy.
//! - **Failures**: a plugin's errors and the host's verdicts (trap, timeout) map to
//!   [`PublishFailure`]; a plugin that traps [`HostConfig::quarantine_after`] times in a row
//!   is quarantined.

pub mod address;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod manifest;
pub mod scrub;
pub mod types;

mod bindings;
mod engine;
mod loading;
mod net;
mod plugin;
mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use wasmtime::{Engine, Store};

pub use checkpoint::{CheckpointError, CheckpointStore};
pub use config::HostConfig;
pub use error::PluginError;
pub use manifest::Manifest;
pub use types::{
    Account, Credentials, LengthCounting, Limits, Media, MediaLimit, Metric, OauthClient,
    PluginInfo, Post, PublishFailure, PublishRequest, Receipt, Violation,
};

use bindings::{Call, Outcome, v0_1_0, v0_2_0};
use checkpoint::Checkpoints;
use net::Net;
use plugin::{Plugin, Pre};
use state::HostState;

/// WIT versions this host loads, oldest first.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &[v0_1_0::VERSION, v0_2_0::VERSION];

/// The loaded plugins and the sandbox they run in. Cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: HostConfig,
    net: Arc<Net>,
    plugins: BTreeMap<String, Plugin>,
    rejected: Vec<(PathBuf, String)>,
    /// Slots of the publishing path (publish, token refresh, lookup).
    worker_slots: tokio::sync::Semaphore,
    /// Slots of calls made on behalf of API requests (validation, connecting accounts,
    /// OAuth, metrics), so that slow ones never take the workers' slots.
    api_slots: tokio::sync::Semaphore,
    _ticker: engine::EpochTicker,
}

/// Which slots a call waits for: the publishing path and API requests each have their own,
/// so a burst of slow API-side calls cannot starve publishing (nor the reverse).
#[derive(Debug, Clone, Copy)]
enum Lane {
    /// Publishing: `publish`, `refresh_token`, `lookup` ([`HostConfig::concurrency`]).
    Worker,
    /// On behalf of an API request: `validate`, `verify_credentials`, OAuth and metrics
    /// ([`HostConfig::api_concurrency`]).
    Api,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("plugins", &self.inner.plugins.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Loads every plugin in `config.plugin_dir`. A plugin that fails to load is logged
    /// and listed by [`rejected`](Self::rejected); the others are served.
    pub async fn load(config: HostConfig) -> Result<Self, PluginError> {
        let dir = &config.plugin_dir;
        let entries = std::fs::read_dir(dir).map_err(|source| PluginError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect();
        paths.sort();
        Self::build(config, &paths, false).await
    }

    /// Loads the single plugin at `wasm` (with its manifest beside it); any problem is an
    /// error. Used by `herald plugin check|run`.
    pub async fn load_file(config: HostConfig, wasm: &Path) -> Result<Self, PluginError> {
        Self::build(config, &[wasm.to_owned()], true).await
    }

    async fn build(
        config: HostConfig,
        paths: &[PathBuf],
        strict: bool,
    ) -> Result<Self, PluginError> {
        let engine = engine::engine(&config)?;
        let net = Net::new(
            config.http_timeout,
            config.max_response_bytes,
            config.max_media_bytes,
            config.max_redirects,
            &config.host_overrides,
            config.address_policy.clone(),
        )
        .map_err(PluginError::Engine)?;
        let linkers = loading::linkers(&engine)?;
        let mut inner = Inner {
            _ticker: engine::EpochTicker::start(&engine)?,
            worker_slots: tokio::sync::Semaphore::new(config.concurrency.max(1) as usize),
            api_slots: tokio::sync::Semaphore::new(config.api_concurrency.max(1) as usize),
            engine,
            config,
            net: Arc::new(net),
            plugins: BTreeMap::new(),
            rejected: Vec::new(),
        };
        for path in paths {
            let loaded = match inner.load_plugin(&linkers, path).await {
                Ok(plugin) => match inner.plugins.get(&plugin.info.platform) {
                    Some(first) => Err(PluginError::Duplicate {
                        platform: plugin.info.platform.clone(),
                        first: first.path.clone(),
                        second: path.clone(),
                    }),
                    None => Ok(plugin),
                },
                Err(error) => Err(error),
            };
            match loaded {
                Ok(plugin) => {
                    tracing::info!(
                        platform = %plugin.info.platform,
                        version = %plugin.info.version,
                        wit = %plugin.info.wit_version,
                        "plugin loaded"
                    );
                    inner.plugins.insert(plugin.info.platform.clone(), plugin);
                }
                Err(error) if strict => return Err(error),
                Err(error) => {
                    tracing::error!(%error, "plugin not loaded");
                    inner.rejected.push((path.clone(), error.to_string()));
                }
            }
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The loaded plugins, by platform id.
    pub fn platforms(&self) -> Vec<PluginInfo> {
        self.inner
            .plugins
            .values()
            .map(|p| p.info.clone())
            .collect()
    }

    /// The plugin for `platform`, if loaded.
    pub fn platform(&self, platform: &str) -> Option<PluginInfo> {
        self.inner.plugins.get(platform).map(|p| p.info.clone())
    }

    /// Plugin files that were not loaded, with the reason.
    pub fn rejected(&self) -> &[(PathBuf, String)] {
        &self.inner.rejected
    }

    /// Platforms whose plugin is quarantined after repeated traps.
    pub fn quarantined(&self) -> Vec<String> {
        self.inner
            .plugins
            .iter()
            .filter(|(_, plugin)| plugin.quarantined.load(Ordering::Relaxed))
            .map(|(platform, _)| platform.clone())
            .collect()
    }

    /// Whether publishing twice with one idempotency key creates one post on `platform`
    /// (false for an unknown platform).
    pub fn is_idempotent(&self, platform: &str) -> bool {
        self.inner
            .plugins
            .get(platform)
            .is_some_and(|p| p.info.idempotent_publish)
    }

    /// Whether `platform` downloads media itself from Herald's URLs (its manifest's
    /// `media_by_url`).
    pub fn downloads_media(&self, platform: &str) -> bool {
        self.inner
            .plugins
            .get(platform)
            .is_some_and(|p| p.media_by_url)
    }

    /// Why `post` cannot be published on `platform` (empty when it can). API lane.
    pub async fn validate(
        &self,
        platform: &str,
        post: &Post,
    ) -> Result<Vec<Violation>, PluginError> {
        match self
            .inner
            .run(
                Lane::Api,
                platform,
                Call::Validate(post.clone()),
                &[],
                Vec::new(),
                Checkpoints::None,
            )
            .await?
        {
            Outcome::Validate(violations) => Ok(violations),
            other => Err(mismatch(platform, &other)),
        }
    }

    /// Publishes on `platform`. Publishing lane. The plugin's checkpoints last for this
    /// call only (see [`publish_resumable`](Self::publish_resumable)).
    pub async fn publish(
        &self,
        platform: &str,
        request: PublishRequest,
    ) -> Result<Receipt, PublishFailure> {
        self.publish_with(platform, request, Checkpoints::CallOnly(Default::default()))
            .await
    }

    /// Publishes on `platform`, keeping the plugin's checkpoints in `store` (one store per
    /// target and idempotency key): a later attempt of the same publish reads what this
    /// one saved. Publishing lane.
    pub async fn publish_resumable(
        &self,
        platform: &str,
        request: PublishRequest,
        store: Arc<dyn CheckpointStore>,
    ) -> Result<Receipt, PublishFailure> {
        self.publish_with(platform, request, Checkpoints::Store(store))
            .await
    }

    async fn publish_with(
        &self,
        platform: &str,
        request: PublishRequest,
        checkpoints: Checkpoints,
    ) -> Result<Receipt, PublishFailure> {
        let media = request.post.media.clone();
        let secrets = request.credentials.secrets();
        match self
            .inner
            .run(
                Lane::Worker,
                platform,
                Call::Publish(request),
                &media,
                secrets,
                checkpoints,
            )
            .await?
        {
            Outcome::Publish(result) => result,
            other => Err(mismatch(platform, &other).into()),
        }
    }

    /// Checks credentials on `platform`. API lane.
    pub async fn verify_credentials(
        &self,
        platform: &str,
        credentials: Credentials,
    ) -> Result<Account, PublishFailure> {
        let secrets = credentials.secrets();
        match self
            .inner
            .run(
                Lane::Api,
                platform,
                Call::VerifyCredentials(credentials),
                &[],
                secrets,
                Checkpoints::None,
            )
            .await?
        {
            Outcome::VerifyCredentials(result) => result,
            other => Err(mismatch(platform, &other).into()),
        }
    }

    /// Refreshes credentials on `platform`. Publishing lane (the publisher refreshes).
    pub async fn refresh_token(
        &self,
        platform: &str,
        credentials: Credentials,
    ) -> Result<Credentials, PublishFailure> {
        let secrets = credentials.secrets();
        match self
            .inner
            .run(
                Lane::Worker,
                platform,
                Call::RefreshToken(credentials),
                &[],
                secrets,
                Checkpoints::None,
            )
            .await?
        {
            Outcome::RefreshToken(result) => result,
            other => Err(mismatch(platform, &other).into()),
        }
    }

    /// Finds a post published earlier with `idempotency_key` (crash recovery). Publishing
    /// lane.
    pub async fn lookup(
        &self,
        platform: &str,
        idempotency_key: &str,
        credentials: Credentials,
    ) -> Result<Option<Receipt>, PublishFailure> {
        let secrets = credentials.secrets();
        let call = Call::Lookup {
            idempotency_key: idempotency_key.to_owned(),
            credentials,
        };
        match self
            .inner
            .run(
                Lane::Worker,
                platform,
                call,
                &[],
                secrets,
                Checkpoints::None,
            )
            .await?
        {
            Outcome::Lookup(result) => result,
            other => Err(mismatch(platform, &other).into()),
        }
    }

    /// Engagement figures of a published post. API lane.
    pub async fn fetch_metrics(
        &self,
        platform: &str,
        platform_post_id: &str,
        credentials: Credentials,
    ) -> Result<Vec<Metric>, PublishFailure> {
        let secrets = credentials.secrets();
        let call = Call::FetchMetrics {
            platform_post_id: platform_post_id.to_owned(),
            credentials,
        };
        match self
            .inner
            .run(Lane::Api, platform, call, &[], secrets, Checkpoints::None)
            .await?
        {
            Outcome::FetchMetrics(result) => result,
            other => Err(mismatch(platform, &other).into()),
        }
    }

    /// The OAuth authorisation URL for `client` (PKCE S256 `pkce_challenge`). API lane.
    pub async fn oauth_authorize_url(
        &self,
        platform: &str,
        client: OauthClient,
        state: &str,
        pkce_challenge: &str,
    ) -> Result<String, PublishFailure> {
        let secrets = client.client_secret.iter().cloned().collect();
        let call = Call::OauthAuthorizeUrl {
            client,
            state: state.to_owned(),
            pkce_challenge: pkce_challenge.to_owned(),
        };
        match self
            .inner
            .run(Lane::Api, platform, call, &[], secrets, Checkpoints::None)
            .await?
        {
            Outcome::OauthAuthorizeUrl(result) => result,
            other => Err(mismatch(platform, &other).into()),
        }
    }

    /// Exchanges an OAuth authorisation code for credentials. API lane.
    pub async fn oauth_exchange(
        &self,
        platform: &str,
        client: OauthClient,
        code: &str,
        verifier: &str,
    ) -> Result<Credentials, PublishFailure> {
        let secrets = client
            .client_secret
            .iter()
            .cloned()
            .chain([code.to_owned(), verifier.to_owned()])
            .collect();
        let call = Call::OauthExchange {
            client,
            code: code.to_owned(),
            verifier: verifier.to_owned(),
        };
        match self
            .inner
            .run(Lane::Api, platform, call, &[], secrets, Checkpoints::None)
            .await?
        {
            Outcome::OauthExchange(result) => result,
            other => Err(mismatch(platform, &other).into()),
        }
    }
}

fn mismatch(platform: &str, outcome: &Outcome) -> PluginError {
    PluginError::Trap {
        platform: platform.to_owned(),
        reason: format!("host binding returned an unexpected outcome {outcome:?}"),
    }
}

impl Inner {
    async fn run(
        &self,
        lane: Lane,
        platform: &str,
        call: Call,
        media: &[Media],
        secrets: Vec<String>,
        checkpoints: Checkpoints,
    ) -> Result<Outcome, PluginError> {
        let plugin = self
            .plugins
            .get(platform)
            .ok_or_else(|| PluginError::UnknownPlatform(platform.to_owned()))?;
        if plugin.quarantined.load(Ordering::Relaxed) {
            return Err(PluginError::Quarantined(platform.to_owned()));
        }
        let allowed = plugin.hosts_for(call.credentials())?;
        let (outcome, state) = self
            .call(lane, plugin, call, allowed, |state| {
                state
                    .with_media(media)
                    .with_secrets(secrets)
                    .with_checkpoints(checkpoints)
            })
            .await?;
        let outcome = match outcome {
            // A lost answer on a platform without idempotency keys: neither retrying nor
            // failing is safe, a person must check.
            Outcome::Publish(Err(
                PublishFailure::Retryable { message } | PublishFailure::Permanent { message },
            )) if state.maybe_delivered && !plugin.info.idempotent_publish => {
                Outcome::Publish(Err(PublishFailure::Unconfirmed { message }))
            }
            other => other,
        };
        Ok(outcome.redacted(&state))
    }

    /// Runs one call in a fresh store, given what `grant` adds to the sandbox (media,
    /// secrets to scrub, checkpoints), and keeps the plugin's trap count.
    async fn call(
        &self,
        lane: Lane,
        plugin: &Plugin,
        call: Call,
        allowed_hosts: Arc<[String]>,
        grant: impl FnOnce(HostState) -> HostState,
    ) -> Result<(Outcome, HostState), PluginError> {
        let slots = match lane {
            Lane::Worker => &self.worker_slots,
            Lane::Api => &self.api_slots,
        };
        let _permit = slots
            .acquire()
            .await
            .map_err(|_| PluginError::Engine("plugin host is shutting down".into()))?;
        let limit = self.config.call_timeout;
        let unsafe_to_repeat = matches!(call, Call::Publish(_)) && !plugin.info.idempotent_publish;
        let state = grant(HostState::new(
            Arc::clone(&plugin.id),
            allowed_hosts,
            Arc::clone(&self.net),
            self.config.memory_limit_bytes,
        ));
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // A plugin busy computing yields its runtime thread on every epoch tick, so it
        // never holds up other requests; the `timeout` below ends the call at `limit`.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let run = async {
            match &plugin.pre {
                Pre::V0_1(pre) => v0_1_0::call(pre, &mut store, call).await,
                Pre::V0_2(pre) => v0_2_0::call(pre, &mut store, call).await,
            }
        };
        let verdict = match tokio::time::timeout(limit, run).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(error)) => {
                let reason = if store.data().limiter.exceeded {
                    format!(
                        "memory limit of {} bytes exceeded",
                        self.config.memory_limit_bytes
                    )
                } else {
                    trap_reason(&error)
                };
                Err(PluginError::Trap {
                    platform: plugin.id.to_string(),
                    reason,
                })
            }
            Err(_) => Err(PluginError::Timeout {
                platform: plugin.id.to_string(),
                limit,
            }),
        };
        match verdict {
            Ok(outcome) => {
                plugin.consecutive_traps.store(0, Ordering::Relaxed);
                Ok((outcome, store.into_data()))
            }
            Err(error) => {
                let traps = plugin.consecutive_traps.fetch_add(1, Ordering::Relaxed) + 1;
                let cut_off_mid_change = matches!(error, PluginError::Timeout { .. })
                    && unsafe_to_repeat
                    && store.data().maybe_delivered;
                tracing::warn!(plugin = %plugin.id, %error, traps, "plugin call failed in the sandbox");
                if traps >= self.config.quarantine_after
                    && !plugin.quarantined.swap(true, Ordering::Relaxed)
                {
                    tracing::error!(
                        plugin = %plugin.id,
                        path = %plugin.path.display(),
                        traps,
                        "plugin quarantined: it trapped or timed out {traps} times in a row; restart Herald after fixing it"
                    );
                }
                if cut_off_mid_change {
                    // Stopped while a request that changes something was out: neither
                    // retrying nor failing is safe, a person must check.
                    let message = error.to_string();
                    return Ok((
                        Outcome::Publish(Err(PublishFailure::Unconfirmed { message })),
                        store.into_data(),
                    ));
                }
                Err(error)
            }
        }
    }
}

/// The trap's own message and its context, without the wasm backtrace.
fn trap_reason(error: &wasmtime::Error) -> String {
    let mut reason = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.to_string(),
    };
    if reason.contains("unreachable") {
        reason.push_str(" (the plugin panicked or aborted)");
    }
    reason
}

impl Outcome {
    /// Scrubs the call's secrets from messages that will be stored and logged.
    fn redacted(self, state: &HostState) -> Self {
        let scrub = |failure: PublishFailure| match failure {
            PublishFailure::Retryable { message } => PublishFailure::Retryable {
                message: state.redact(&message),
            },
            PublishFailure::Permanent { message } => PublishFailure::Permanent {
                message: state.redact(&message),
            },
            PublishFailure::Unconfirmed { message } => PublishFailure::Unconfirmed {
                message: state.redact(&message),
            },
            PublishFailure::AuthExpired { message } => PublishFailure::AuthExpired {
                message: state.redact(&message),
            },
            PublishFailure::RateLimited {
                retry_after,
                message,
            } => PublishFailure::RateLimited {
                retry_after,
                message: state.redact(&message),
            },
            other => other,
        };
        match self {
            Outcome::Publish(result) => Outcome::Publish(result.map_err(scrub)),
            Outcome::VerifyCredentials(result) => Outcome::VerifyCredentials(result.map_err(scrub)),
            Outcome::RefreshToken(result) => Outcome::RefreshToken(result.map_err(scrub)),
            Outcome::Lookup(result) => Outcome::Lookup(result.map_err(scrub)),
            Outcome::FetchMetrics(result) => Outcome::FetchMetrics(result.map_err(scrub)),
            Outcome::OauthAuthorizeUrl(result) => Outcome::OauthAuthorizeUrl(result.map_err(scrub)),
            Outcome::OauthExchange(result) => Outcome::OauthExchange(result.map_err(scrub)),
            other => other,
        }
    }
}
