//! Publishing through the wasm plugin host: one [`Publisher`] serving every loaded plugin's
//! platform, mapping the host's outcomes onto the queue's retry rules.

use herald_plugin_host::{self as host, PluginHost};

use super::{PublishFailure, PublishRequest, Publisher, Receipt};

/// Publishes through the sandboxed plugin of the request's platform.
#[derive(Clone)]
pub struct PluginPublisher {
    host: PluginHost,
}

impl PluginPublisher {
    /// A publisher over the loaded plugins.
    pub fn new(host: PluginHost) -> Self {
        Self { host }
    }
}

/// How a plugin outcome is handled by the queue: transient errors and rate limits are
/// retried, auth errors ask to reconnect, anything else (including a trap, a timeout or a
/// quarantined plugin) fails the target with the sandbox's reason.
fn failure(err: host::PublishFailure) -> PublishFailure {
    match err {
        host::PublishFailure::Retryable { message } => PublishFailure::Retryable {
            message,
            response_code: None,
        },
        host::PublishFailure::RateLimited {
            retry_after,
            message,
        } => PublishFailure::RateLimited {
            retry_after: Some(retry_after),
            message,
            response_code: Some(429),
        },
        host::PublishFailure::AuthExpired { message } => PublishFailure::AuthExpired {
            message,
            response_code: None,
        },
        other @ (host::PublishFailure::Permanent { .. }
        | host::PublishFailure::Validation { .. }
        | host::PublishFailure::Trap { .. }
        | host::PublishFailure::Timeout { .. }
        | host::PublishFailure::Unavailable { .. }) => PublishFailure::Permanent {
            message: other.to_string(),
            response_code: None,
        },
    }
}

#[async_trait::async_trait]
impl Publisher for PluginPublisher {
    async fn publish(&self, request: &PublishRequest) -> Result<Receipt, PublishFailure> {
        let call = host::PublishRequest {
            post: host::Post {
                text: request.content.clone(),
                media: request
                    .media_urls
                    .iter()
                    .map(|url| host::Media {
                        url: url.clone(),
                        mime_type: String::new(),
                        alt: None,
                        size: None,
                    })
                    .collect(),
                options: Vec::new(),
            },
            // Connected accounts (and their encrypted tokens) arrive with the platform
            // plugins; until then plugins publish without credentials.
            credentials: host::Credentials::default(),
            idempotency_key: request.idempotency_key.clone(),
        };
        self.host
            .publish(&request.platform, call)
            .await
            .map(|receipt| Receipt {
                platform_post_id: receipt.platform_post_id,
                url: Some(receipt.url),
                response_code: None,
            })
            .map_err(failure)
    }

    fn is_idempotent(&self, platform: &str) -> bool {
        self.host.is_idempotent(platform)
    }
}
