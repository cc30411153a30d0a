//! The `webhook` platform: POSTs each post as JSON, with the tenant's id, to the URL the
//! post owner's tenant connected (`connectAccount(platform: "webhook", …)`), with an
//! `Idempotency-Key` header and a `Herald-Signature` header signed with the tenant's
//! secret. Useful for custom integrations (chat bots, CMSs, automation tools) and as a
//! platform that tests can run in a separate process.
//!
//! The receiver answers 2xx with `{"id": "...", "url": "..."}`. 429 (with `Retry-After`
//! seconds) and 5xx are retried, 401/403 mark the connection `reconnect_required`, any
//! other 4xx is permanent. Receivers are reached under the outbound address policy
//! (public addresses unless `HERALD_OUTBOUND_ALLOW_CIDRS` lists others, the same as the
//! plugins'): a receiver elsewhere fails the target with `destination not allowed`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herald_plugin_host::address::{self, AddressPolicy};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use uuid::Uuid;

use super::plugin::account_error;
use super::{PublishFailure, PublishRequest, Publisher, Receipt};
use crate::connections::ConnectionService;
use crate::domain::webhook::WebhookAccount;

/// Largest response body read from the receiver.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The header that carries the request's signature.
pub const SIGNATURE_HEADER: &str = "Herald-Signature";

/// Publishes to each tenant's own HTTP endpoint.
pub struct WebhookPublisher {
    client: reqwest::Client,
    policy: AddressPolicy,
    connections: ConnectionService,
    idempotent: bool,
}

#[derive(Deserialize)]
struct Answer {
    id: String,
    #[serde(default)]
    url: Option<String>,
}

/// The HTTP client of every webhook call: no redirects, each call cut off after
/// `timeout`, names resolved only to addresses `policy` permits (literal addresses are
/// checked before each call, see [`WebhookPublisher::publish`]). The one place where
/// outbound policy for webhooks is set.
pub fn client(
    timeout: Duration,
    policy: &AddressPolicy,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(policy.resolver())
        .no_proxy()
        .build()
}

/// The failure of a call to a receiver the address policy refuses.
fn denied() -> PublishFailure {
    PublishFailure::Permanent {
        message: format!(
            "webhook {}: connect a receiver at a public address",
            address::DENIED
        ),
        response_code: None,
    }
}

/// The `Herald-Signature` value of `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with secret>`.
/// (HMAC takes a key of any length; the error cannot happen.)
pub fn signature(
    secret: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<String, hmac::digest::InvalidLength> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("t={timestamp},v1={hex}"))
}

impl WebhookPublisher {
    /// Publishes with the tenants' webhook accounts in `connections`; `idempotent` says
    /// whether the receivers honour the `Idempotency-Key` header; receivers are reached
    /// only where `policy` permits.
    pub fn new(
        connections: ConnectionService,
        idempotent: bool,
        timeout: Duration,
        policy: &AddressPolicy,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: client(timeout, policy)?,
            policy: policy.clone(),
            connections,
            idempotent,
        })
    }

    /// The post owner's webhook connection and account, or why there is none to publish
    /// with.
    async fn account(
        &self,
        request: &PublishRequest,
    ) -> Result<(Uuid, WebhookAccount), PublishFailure> {
        let credentials = self
            .connections
            .credentials(&request.owner_id, &request.platform, request.connection_id)
            .await
            .map_err(account_error)?;
        let Some((connection_id, credentials)) = credentials else {
            return Err(PublishFailure::AuthExpired {
                message: "no connected webhook account".into(),
                response_code: None,
            });
        };
        let account =
            WebhookAccount::from_credentials(&credentials.access_token, &credentials.extra)
                .map_err(|_| PublishFailure::AuthExpired {
                    message: "the webhook account is incomplete: connect it again".into(),
                    response_code: None,
                })?;
        Ok((connection_id, account))
    }
}

/// Longest wait a receiver's `Retry-After` may ask for; larger values are cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// The receiver's `Retry-After` in seconds, at most [`MAX_RETRY_AFTER`] (any finite
/// number, however large, is accepted and bounded; negative or malformed values are
/// ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)?;
    Some(Duration::try_from_secs_f64(seconds).map_or(MAX_RETRY_AFTER, |d| d.min(MAX_RETRY_AFTER)))
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the body; the rest is never buffered.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_RESPONSE_BYTES {
            break;
        }
    }
    Ok(body)
}

#[async_trait::async_trait]
impl Publisher for WebhookPublisher {
    async fn publish(&self, request: &PublishRequest) -> Result<Receipt, PublishFailure> {
        let (connection_id, account) = self.account(request).await?;
        let body = serde_json::json!({
            "tenant_id": request.owner_id,
            "target_id": request.target_id,
            "post_id": request.post_id,
            "platform": request.platform,
            "content": request.content,
            "media_urls": request.media.iter().map(|m| m.url.as_str()).collect::<Vec<_>>(),
            "media": request.media,
            "options": request.options,
        });
        let body = serde_json::to_vec(&body).map_err(|_| PublishFailure::Permanent {
            message: "the post could not be encoded".into(),
            response_code: None,
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let signed =
            signature(&account.secret, now, &body).map_err(|_| PublishFailure::Permanent {
                message: "the webhook's secret cannot sign".into(),
                response_code: None,
            })?;
        let url = reqwest::Url::parse(&account.url).map_err(|_| PublishFailure::Permanent {
            message: "the webhook's URL is not valid: connect it again".into(),
            response_code: None,
        })?;
        self.policy.check_url(&url).map_err(|_| denied())?;
        let response = self
            .client
            .post(url)
            .header("Idempotency-Key", &request.idempotency_key)
            .header(SIGNATURE_HEADER, signed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if address::is_denied(&e) {
                    denied()
                } else {
                    PublishFailure::Retryable {
                        message: format!("webhook unreachable: {}", e.without_url()),
                        response_code: None,
                    }
                }
            })?;
        let status = response.status();
        let code = Some(status.as_u16());
        let after = retry_after(response.headers());
        let bytes = read_capped(response)
            .await
            .map_err(|e| PublishFailure::Retryable {
                message: format!("webhook answer cut short: {}", e.without_url()),
                response_code: code,
            })?;
        let text = String::from_utf8_lossy(&bytes);
        if status.is_success() {
            let answer: Answer =
                serde_json::from_slice(&bytes).map_err(|_| PublishFailure::Permanent {
                    message: "webhook answered 2xx without {\"id\": …}".into(),
                    response_code: code,
                })?;
            return Ok(Receipt {
                platform_post_id: answer.id,
                url: answer.url,
                response_code: code,
            });
        }
        let message = format!("webhook answered {status}: {}", text.trim());
        Err(match status.as_u16() {
            429 => PublishFailure::RateLimited {
                retry_after: after,
                message,
                response_code: code,
            },
            401 | 403 => {
                // The receiver refuses the secret: ask the tenant to connect it again.
                self.connections
                    .require_reconnect(
                        connection_id,
                        &format!("the webhook receiver answered {status}: check its secret"),
                    )
                    .await
                    .map_err(account_error)?;
                PublishFailure::AuthExpired {
                    message,
                    response_code: code,
                }
            }
            500..=599 => PublishFailure::Retryable {
                message,
                response_code: code,
            },
            _ => PublishFailure::Permanent {
                message,
                response_code: code,
            },
        })
    }

    fn is_idempotent(&self, _platform: &str) -> bool {
        self.idempotent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn after(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(value).expect("header value"),
        );
        retry_after(&headers)
    }

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // RFC 4231-style check against an independently computed value:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec-0123456789abcdef'
        assert_eq!(
            signature("whsec-0123456789abcdef", 1_700_000_000, br#"{"a":1}"#),
            Ok(
                "t=1700000000,v1=d77c78ac4da074c56908b55eac30358b2a7bfc573be4c76819af5102e8dcf939"
                    .to_owned()
            )
        );
    }

    #[test]
    fn retry_after_is_bounded_and_never_panics() {
        assert_eq!(after("2"), Some(Duration::from_secs(2)));
        assert_eq!(after("1.5"), Some(Duration::from_millis(1_500)));
        assert_eq!(after("1e300"), Some(MAX_RETRY_AFTER));
        assert_eq!(after("86401"), Some(MAX_RETRY_AFTER));
        assert_eq!(after("-1"), None);
        assert_eq!(after("NaN"), None);
        assert_eq!(after("inf"), None);
        assert_eq!(after("soon"), None);
    }
}
