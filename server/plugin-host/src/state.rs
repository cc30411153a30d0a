//! What one plugin call's `Store` holds: an empty WASI context, the memory cap, and the
//! capabilities the host grants (HTTP to declared hosts, the current post's media, logs,
//! a publish's checkpoints).

use std::sync::Arc;

use bytes::Bytes;
use herald_secrets::Secrets;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::checkpoint::Checkpoints;
use crate::net::{self, FetchError, MediaFetchError, Net};
use crate::types::Media;

/// Per-call state of a plugin instance.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryCap,
    pub(crate) plugin: Arc<str>,
    allowed_hosts: Arc<[String]>,
    net: Arc<Net>,
    media: Vec<MediaSlot>,
    secrets: Secrets,
    /// Whether a request that changes something failed after it may have been delivered.
    pub(crate) maybe_delivered: bool,
    /// The publish's checkpoints (none outside a publish).
    pub(crate) checkpoints: Checkpoints,
}

struct MediaSlot {
    media: Media,
    /// The outcome of fetching it, once fetched.
    fetched: Option<Result<Fetched, MediaFetchError>>,
}

/// A fetched media file and its served MIME type. The buffer is shared (never copied) with
/// request bodies that send it.
type Fetched = (Bytes, String);

/// Why the current post's media cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MediaError {
    NotFound,
    Fetch(MediaFetchError),
}

impl HostState {
    pub(crate) fn new(
        plugin: Arc<str>,
        allowed_hosts: Arc<[String]>,
        net: Arc<Net>,
        memory_limit: usize,
    ) -> Self {
        Self {
            // No preopened directories, environment, arguments, stdio or network.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryCap::new(memory_limit),
            plugin,
            allowed_hosts,
            net,
            media: Vec::new(),
            secrets: Secrets::default(),
            maybe_delivered: false,
            checkpoints: Checkpoints::None,
        }
    }

    /// Grants the call access to a post's media.
    pub(crate) fn with_media(mut self, media: &[Media]) -> Self {
        self.media = media
            .iter()
            .map(|media| MediaSlot {
                media: media.clone(),
                fetched: None,
            })
            .collect();
        self
    }

    /// Grants the call these checkpoints.
    pub(crate) fn with_checkpoints(mut self, checkpoints: Checkpoints) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Secrets to scrub from the plugin's logs and error messages.
    pub(crate) fn with_secrets(mut self, secrets: Vec<String>) -> Self {
        self.secrets = Secrets::new(secrets);
        self
    }

    /// `text` with every known secret replaced, raw or percent-encoded (the SDK's
    /// scrubber: one definition for plugins and host).
    pub(crate) fn redact(&self, text: &str) -> String {
        self.secrets.scrub(text)
    }

    pub(crate) async fn fetch(
        &mut self,
        request: net::Request,
    ) -> Result<net::Response, FetchError> {
        let changes_something = !matches!(request.method, net::Method::Get | net::Method::Head);
        let before = self.maybe_delivered;
        // Set while the request is out: a call cut off by its deadline mid-request may
        // have changed something.
        self.maybe_delivered |= changes_something;
        let result = self
            .net
            .fetch(&self.plugin, &self.allowed_hosts, request)
            .await;
        if !matches!(result, Err(FetchError::Transport(_) | FetchError::Timeout)) {
            // Answered, or never sent: this request leaves no doubt.
            self.maybe_delivered = before;
        }
        result
    }

    /// The bytes of media `index`, fetched on first use.
    pub(crate) async fn media(&mut self, index: u32) -> Result<Bytes, MediaError> {
        let net = Arc::clone(&self.net);
        let slot = self
            .media
            .get_mut(index as usize)
            .ok_or(MediaError::NotFound)?;
        if slot.fetched.is_none() {
            let fetched = net
                .fetch_media(&slot.media.url, &slot.media.mime_type)
                .await;
            slot.fetched = Some(fetched);
        }
        match &slot.fetched {
            Some(Ok((bytes, _))) => Ok(bytes.clone()),
            Some(Err(error)) => Err(MediaError::Fetch(error.clone())),
            None => Err(MediaError::NotFound),
        }
    }

    /// The MIME type of media `index`: the declared one, or the served one when none was
    /// declared.
    pub(crate) fn media_type(&self, index: u32) -> Option<String> {
        let slot = self.media.get(index as usize)?;
        match &slot.fetched {
            Some(Ok((_, served))) => Some(served.clone()),
            _ => Some(slot.media.mime_type.clone()),
        }
    }

    pub(crate) fn log(&self, level: tracing::Level, message: &str) {
        let message = self.redact(message);
        let plugin = &*self.plugin;
        match level {
            tracing::Level::ERROR => tracing::error!(plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(plugin, "{message}"),
            tracing::Level::TRACE => tracing::trace!(plugin, "{message}"),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and traps (rather than failing `memory.grow`) when a plugin
/// reaches the cap, so the call fails at once with a clear reason.
pub(crate) struct MemoryCap {
    max_bytes: usize,
    pub(crate) exceeded: bool,
}

impl MemoryCap {
    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            exceeded: false,
        }
    }
}

/// Most table elements an instance may have.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded",
                self.max_bytes
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
