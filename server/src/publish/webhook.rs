//! The `webhook` platform: POSTs each post as JSON to a configured URL, with an
//! `Idempotency-Key` header. Useful for custom integrations (chat bots, CMSs, automation
//! tools) and as a platform that tests can run in a separate process.
//!
//! The receiver answers 2xx with `{"id": "...", "url": "..."}`. 429 (with `Retry-After`
//! seconds) and 5xx are retried, 401/403 mean the credentials must be renewed, any other
//! 4xx is permanent.

use std::time::Duration;

use serde::Deserialize;

use super::{PublishFailure, PublishRequest, Publisher, Receipt};

/// Largest response body read from the receiver.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Publishes to an HTTP endpoint.
pub struct WebhookPublisher {
    client: reqwest::Client,
    url: String,
    idempotent: bool,
}

#[derive(Deserialize)]
struct Answer {
    id: String,
    #[serde(default)]
    url: Option<String>,
}

impl WebhookPublisher {
    /// Publishes to `url`; `idempotent` says whether the receiver honours the
    /// `Idempotency-Key` header.
    pub fn new(url: String, idempotent: bool, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url,
            idempotent,
        })
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
        let body = serde_json::json!({
            "target_id": request.target_id,
            "post_id": request.post_id,
            "platform": request.platform,
            "content": request.content,
            "media_urls": request.media.iter().map(|m| m.url.as_str()).collect::<Vec<_>>(),
            "media": request.media,
            "options": request.options,
        });
        let response = self
            .client
            .post(&self.url)
            .header("Idempotency-Key", &request.idempotency_key)
            .json(&body)
            .send()
            .await
            .map_err(|e| PublishFailure::Retryable {
                message: format!("webhook unreachable: {}", e.without_url()),
                response_code: None,
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
            401 | 403 => PublishFailure::AuthExpired {
                message,
                response_code: code,
            },
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
