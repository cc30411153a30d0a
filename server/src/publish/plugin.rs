//! Publishing through the wasm plugin host: one [`Publisher`] serving every loaded plugin's
//! platform as the post owner's connected account, refreshing expired credentials once
//! (under the connection's lock, shared with the background refresher), and mapping the
//! host's outcomes onto the queue's retry rules. A publish's checkpoints are kept in
//! Postgres ([`PublishCheckpoints`]), so a retry after a crash resumes where it stopped.

use std::sync::Arc;

use herald_plugin_host::{self as host, PluginHost};

use super::{PublishFailure, PublishRequest, Publisher, Receipt};
use crate::connections::ConnectionService;
use crate::db::checkpoints::PublishCheckpoints;
use crate::domain::oauth_apps::OauthConfig;
use crate::domain::post::MediaItem;
use crate::token_refresh::{Renewed, refresh_for_publish};

/// Publishes through the sandboxed plugin of the request's platform.
#[derive(Clone)]
pub struct PluginPublisher {
    host: PluginHost,
    connections: ConnectionService,
    apps: Arc<OauthConfig>,
}

impl PluginPublisher {
    /// A publisher over the loaded plugins, with the accounts in `connections`.
    pub fn new(host: PluginHost, connections: ConnectionService) -> Self {
        Self {
            host,
            connections,
            apps: Arc::new(OauthConfig::default()),
        }
    }

    /// Lends the platforms' OAuth apps in `apps` to the refreshes a publish needs.
    pub fn lending(mut self, apps: Arc<OauthConfig>) -> Self {
        self.apps = apps;
        self
    }
}

/// A connected account that could not be read: logged, and retried (the cause is ours).
pub(super) fn account_error(err: crate::error::AppError) -> PublishFailure {
    tracing::error!(error = %err, "cannot read connected account");
    PublishFailure::Retryable {
        message: "the connected account could not be read; retrying".into(),
        response_code: None,
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
        unconfirmed @ host::PublishFailure::Unconfirmed { .. } => {
            let message = unconfirmed.to_string();
            PublishFailure::Unconfirmed {
                message: if message.contains("markPublished") {
                    message
                } else {
                    format!("{message}; check the platform, then retryPost or markPublished")
                },
            }
        }
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
        let platform = request.platform.as_str();
        let Some((connection_id, credentials)) = self
            .connections
            .credentials(&request.owner_id, platform, request.connection_id)
            .await
            .map_err(account_error)?
        else {
            let message = self
                .connections
                .why_unusable(&request.owner_id, platform, request.connection_id)
                .await
                .map_err(account_error)?;
            return Err(PublishFailure::AuthExpired {
                message,
                response_code: None,
            });
        };
        // A token known to have expired is refreshed before it is used.
        let expired = credentials
            .expires_at
            .is_some_and(|at| at <= chrono::Utc::now().timestamp());
        let first = if expired {
            Err(host::PublishFailure::AuthExpired {
                message: "the access token expired".into(),
            })
        } else {
            self.call(request, credentials.clone()).await
        };
        match first {
            Err(host::PublishFailure::AuthExpired { message }) => {
                // Refresh once, under the connection's lock (another process may be
                // refreshing it: its new tokens are used then); publish again only with
                // credentials that changed.
                let refreshed = match refresh_for_publish(
                    &self.connections,
                    &self.host,
                    self.apps.app(platform).ok(),
                    connection_id,
                    platform,
                    &credentials,
                )
                .await
                .map_err(account_error)?
                {
                    Renewed::Fresh(fresh) => fresh,
                    Renewed::Refused(reason) => {
                        return Err(PublishFailure::AuthExpired {
                            message: format!("{message}; {reason}"),
                            response_code: None,
                        });
                    }
                    // Transient: the account stays connected, the publish is retried.
                    Renewed::Failed(failure) => {
                        return Err(PublishFailure::Retryable {
                            message: format!("{message}; refreshing the token failed: {failure}"),
                            response_code: None,
                        });
                    }
                };
                let retried = self.call(request, refreshed).await;
                if let Err(host::PublishFailure::AuthExpired { message }) = &retried {
                    self.connections
                        .require_reconnect(connection_id, message)
                        .await
                        .map_err(account_error)?;
                }
                retried.map(receipt).map_err(failure)
            }
            other => other.map(receipt).map_err(failure),
        }
    }

    fn is_idempotent(&self, platform: &str) -> bool {
        self.host.is_idempotent(platform)
    }
}

fn receipt(receipt: host::Receipt) -> Receipt {
    Receipt {
        platform_post_id: receipt.platform_post_id,
        url: Some(receipt.url),
        response_code: None,
    }
}

impl PluginPublisher {
    async fn call(
        &self,
        request: &PublishRequest,
        credentials: host::Credentials,
    ) -> Result<host::Receipt, host::PublishFailure> {
        let call = host::PublishRequest {
            post: plugin_post(&request.content, &request.media, &request.options),
            credentials,
            idempotency_key: request.idempotency_key.clone(),
        };
        let checkpoints = PublishCheckpoints::new(
            self.connections.db().clone(),
            &request.owner_id,
            request.target_id,
            &request.idempotency_key,
        );
        self.host
            .publish_resumable(&request.platform, call, Arc::new(checkpoints))
            .await
    }
}

/// The post as a platform plugin sees it.
pub fn plugin_post(
    content: &str,
    media: &[MediaItem],
    options: &std::collections::BTreeMap<String, String>,
) -> herald_plugin_host::Post {
    herald_plugin_host::Post {
        text: content.to_owned(),
        media: media
            .iter()
            .map(|m| {
                let details = m.details.unwrap_or_default();
                herald_plugin_host::Media {
                    url: m.url.clone(),
                    mime_type: m.mime_type.clone().unwrap_or_default(),
                    alt: m.alt.clone(),
                    size: m.details.map(|d| d.size),
                    width: details.width,
                    height: details.height,
                    duration_ms: details.duration_ms,
                }
            })
            .collect(),
        options: options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}
