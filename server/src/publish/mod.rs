//! How the worker hands a due target to a platform: the [`Publisher`] contract, the
//! registry that routes a platform id to its publisher, and the built-in publishers.
//!
//! The wasm plugin host implements [`Publisher`] for every loaded plugin; the webhook and
//! recording publishers serve simple integrations and tests.

pub mod plugin;
pub mod recording;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::domain::post::MediaItem;

/// What to publish for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The target being published.
    pub target_id: Uuid,
    /// Its post.
    pub post_id: Uuid,
    /// The tenant that owns the post (whose connected account publishes it).
    pub owner_id: String,
    /// The platform id.
    pub platform: String,
    /// The post's text.
    pub content: String,
    /// Media attachments.
    pub media: Vec<MediaItem>,
    /// The connected account the target names (default: the owner's on the platform).
    pub connection_id: Option<Uuid>,
    /// The target's platform options.
    pub options: BTreeMap<String, String>,
    /// The same for every attempt at the same version of the target, so a platform that
    /// honours idempotency keys never posts twice.
    pub idempotency_key: String,
}

/// What the platform answered on success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The platform's id for the post.
    pub platform_post_id: String,
    /// Public URL of the post.
    pub url: Option<String>,
    /// HTTP status of the final platform call.
    pub response_code: Option<u16>,
}

/// Why a publish failed, and so what happens next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishFailure {
    /// A transient failure: retry with backoff.
    #[error("{message}")]
    Retryable {
        /// What happened.
        message: String,
        /// HTTP status, if any.
        response_code: Option<u16>,
    },
    /// The platform throttled us: retry after its delay.
    #[error("rate limited: {message}")]
    RateLimited {
        /// The platform's Retry-After, if it gave one.
        retry_after: Option<Duration>,
        /// What happened.
        message: String,
        /// HTTP status, if any.
        response_code: Option<u16>,
    },
    /// The credentials were refused: the account must be reconnected.
    #[error("reconnect the account: {message}")]
    AuthExpired {
        /// What happened.
        message: String,
        /// HTTP status, if any.
        response_code: Option<u16>,
    },
    /// A failure that retrying cannot fix.
    #[error("{message}")]
    Permanent {
        /// What happened.
        message: String,
        /// HTTP status, if any.
        response_code: Option<u16>,
    },
    /// The platform may have published the post but its answer was lost, and it has no
    /// idempotency keys: publishing again could post twice, so the target needs review.
    #[error("{message}")]
    Unconfirmed {
        /// What happened.
        message: String,
    },
}

impl PublishFailure {
    /// The HTTP status the platform answered, if any.
    pub fn response_code(&self) -> Option<u16> {
        match self {
            Self::Retryable { response_code, .. }
            | Self::RateLimited { response_code, .. }
            | Self::AuthExpired { response_code, .. }
            | Self::Permanent { response_code, .. } => *response_code,
            Self::Unconfirmed { .. } => None,
        }
    }

    /// Whether another attempt may succeed, and after what platform-given delay.
    pub fn retry_hint(&self) -> Option<Option<Duration>> {
        match self {
            Self::Retryable { .. } => Some(None),
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::AuthExpired { .. } | Self::Permanent { .. } | Self::Unconfirmed { .. } => None,
        }
    }

    /// The outcome name recorded in `publish_attempts`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Retryable { .. } => "retryable",
            Self::RateLimited { .. } => "rate_limited",
            Self::AuthExpired { .. } => "auth_expired",
            Self::Permanent { .. } => "permanent",
            Self::Unconfirmed { .. } => "unconfirmed",
        }
    }
}

/// Publishes posts to one or more platforms.
#[async_trait::async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Publishes one target.
    async fn publish(&self, request: &PublishRequest) -> Result<Receipt, PublishFailure>;
    /// Whether the platform honours the idempotency key, so a publish interrupted by a crash
    /// may be retried without risking a second post.
    fn is_idempotent(&self, platform: &str) -> bool;
}

/// Routes each platform id to its publisher.
#[derive(Clone, Default)]
pub struct PublisherRegistry {
    by_platform: HashMap<String, Arc<dyn Publisher>>,
}

impl std::fmt::Debug for PublisherRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut platforms: Vec<_> = self.by_platform.keys().collect();
        platforms.sort();
        f.debug_struct("PublisherRegistry")
            .field("platforms", &platforms)
            .finish()
    }
}

impl PublisherRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `platform` to `publisher`, replacing any earlier route.
    pub fn register(&mut self, platform: impl Into<String>, publisher: Arc<dyn Publisher>) {
        self.by_platform.insert(platform.into(), publisher);
    }

    /// The publisher of `platform`.
    pub fn get(&self, platform: &str) -> Option<&Arc<dyn Publisher>> {
        self.by_platform.get(platform)
    }
}
