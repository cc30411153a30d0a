//! Host-side types of the plugin interface, independent of any WIT version's bindings:
//! what the queue worker, the API and `herald plugin run` exchange with the host. They
//! (de)serialise as JSON with snake_case fields.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a platform counts the length of a post's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthCounting {
    /// Extended grapheme clusters.
    Graphemes,
    /// Unicode scalar values.
    Chars,
    /// X's weighted length (URLs count 23, wide characters 2).
    WeightedX,
}

/// A media type a platform accepts and its largest size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaLimit {
    /// MIME type.
    pub mime_type: String,
    /// Largest size in bytes.
    pub max_bytes: u64,
}

/// What one post may contain on a platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Longest text, counted as `counting` says.
    pub max_text_length: u32,
    /// How text length is counted.
    pub counting: LengthCounting,
    /// Most media in one post.
    pub max_media: u32,
    /// Accepted media types and sizes.
    pub media: Vec<MediaLimit>,
}

/// A loaded plugin and its platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Platform id (also the manifest's `id`).
    pub platform: String,
    /// Human-readable name.
    pub display_name: String,
    /// The plugin's version.
    pub version: String,
    /// The WIT version the plugin was built against, e.g. `0.1.0`.
    pub wit_version: String,
    /// What one post may contain.
    pub limits: Limits,
    /// Whether publishing twice with one idempotency key creates one post.
    pub idempotent_publish: bool,
}

/// One media attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// Where the host fetches it.
    pub url: String,
    /// Declared MIME type; the served one must match. Empty: whatever is served.
    #[serde(default)]
    pub mime_type: String,
    /// Alternative text.
    #[serde(default)]
    pub alt: Option<String>,
    /// Size in bytes, when known.
    #[serde(default)]
    pub size: Option<u64>,
    /// Width in pixels, when known (library images and videos).
    #[serde(default)]
    pub width: Option<u32>,
    /// Height in pixels, when known.
    #[serde(default)]
    pub height: Option<u32>,
    /// Duration in milliseconds, when known (library videos).
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// A post as published on one platform.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Post {
    /// The text.
    pub text: String,
    /// Attachments.
    #[serde(default)]
    pub media: Vec<Media>,
    /// Platform-specific options.
    #[serde(default)]
    pub options: Vec<(String, String)>,
}

/// Account credentials on a platform. `Debug` never prints the tokens.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// Access token.
    pub access_token: String,
    /// Refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Expiry of the access token (Unix seconds).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Platform-specific values.
    #[serde(default)]
    pub extra: Vec<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("extra", &format_args!("[{} redacted]", self.extra.len()))
            .finish()
    }
}

impl Credentials {
    /// The secret strings a log line must never contain.
    pub(crate) fn secrets(&self) -> Vec<String> {
        std::iter::once(self.access_token.clone())
            .chain(self.refresh_token.clone())
            .chain(self.extra.iter().map(|(_, value)| value.clone()))
            .filter(|secret| secret.len() >= 6)
            .collect()
    }
}

/// A request to publish one post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishRequest {
    /// What to publish.
    pub post: Post,
    /// As whom.
    pub credentials: Credentials,
    /// Stable across retries of one target.
    pub idempotency_key: String,
}

/// Proof of publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The platform's post id.
    pub platform_post_id: String,
    /// Public URL.
    pub url: String,
}

/// A reason a post cannot be published as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The field at fault.
    pub field: String,
    /// Machine-readable code.
    pub code: String,
    /// Explanation.
    pub message: String,
}

/// The account credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Platform account id.
    pub id: String,
    /// Handle.
    pub handle: String,
    /// Display name.
    pub display_name: Option<String>,
}

/// An OAuth client registered with a platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OauthClient {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Option<String>,
    /// Redirect URI.
    pub redirect_uri: String,
}

/// One engagement figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    /// Name, e.g. `likes`.
    pub name: String,
    /// Value.
    pub value: i64,
}

/// Why a plugin call did not succeed: the plugin's own error, or the host's verdict on
/// the plugin. This is what the queue worker acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PublishFailure {
    /// Transient: retry with backoff.
    #[error("retryable: {message}")]
    Retryable {
        /// What happened.
        message: String,
    },
    /// The platform asked to wait.
    #[error("rate limited for {retry_after:?}: {message}")]
    RateLimited {
        /// How long to wait (serialised as `retry_after_secs`).
        #[serde(rename = "retry_after_secs", serialize_with = "seconds")]
        retry_after: Duration,
        /// What the platform said.
        message: String,
    },
    /// The account must be refreshed or reconnected.
    #[error("credentials expired: {message}")]
    AuthExpired {
        /// What the platform said.
        message: String,
    },
    /// Retrying will not help.
    #[error("permanent failure: {message}")]
    Permanent {
        /// What happened.
        message: String,
    },
    /// A request that creates the post may have reached the platform but its answer was
    /// lost, on a platform without idempotency keys: publishing again could post twice, so
    /// a person must check (set by the host, not by plugins).
    #[error("the platform may have published it, but its answer was lost: {message}")]
    Unconfirmed {
        /// What the plugin reported.
        message: String,
    },
    /// The post breaks the platform's rules.
    #[error("invalid post: {}", violations.iter().map(|v| format!("{}: {}", v.field, v.message)).collect::<Vec<_>>().join("; "))]
    Validation {
        /// Each reason.
        violations: Vec<Violation>,
    },
    /// The plugin crashed (panic, memory limit, invalid operation): permanent.
    #[error("plugin trapped: {reason}")]
    Trap {
        /// What the sandbox reported.
        reason: String,
    },
    /// The plugin overran its deadline and was stopped: permanent.
    #[error("plugin exceeded its {limit:?} deadline")]
    Timeout {
        /// The deadline (serialised as `limit_secs`).
        #[serde(rename = "limit_secs", serialize_with = "seconds")]
        limit: Duration,
    },
    /// The plugin could not be called (unknown platform, quarantined, failed to start).
    #[error("plugin unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

impl PublishFailure {
    /// Whether the queue should try again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. } | Self::RateLimited { .. })
    }

    /// The delay the platform asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}
