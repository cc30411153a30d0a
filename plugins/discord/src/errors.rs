//! Discord's answers mapped to what Herald should do. Error bodies are `{code, message}`
//! (plus `errors` for invalid form bodies); a 429 body is `{message, retry_after, global}`
//! with `retry_after` in float seconds.

use herald_plugin_sdk::http::Response;
use herald_plugin_sdk::{PublishError, RateLimit, Violation, time};
use serde::Deserialize;

/// Discord's "Unknown Webhook": the webhook was deleted, its URL is dead.
pub const UNKNOWN_WEBHOOK: i64 = 10015;
/// Discord's "Invalid Form Body": the message broke a rule (length, attachments…).
pub const INVALID_FORM_BODY: i64 = 50035;
/// Wait when Discord throttles without saying for how long.
const DEFAULT_RETRY_SECONDS: u32 = 60;

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    retry_after: Option<f64>,
    #[serde(default)]
    global: Option<bool>,
}

/// Keeps a 2xx response; maps any other to the error Herald acts on: 429 → rate limited
/// (body `retry_after` rounded up, else `Retry-After`, else `X-RateLimit-Reset-After`),
/// 401 or Unknown Webhook → auth expired (reconnect with a new webhook), 400 Invalid Form
/// Body → validation, 408/5xx → retryable, anything else → permanent.
pub fn check(response: Response) -> Result<Response, PublishError> {
    if response.is_success() {
        return Ok(response);
    }
    let body: ErrorBody = serde_json::from_slice(&response.body).unwrap_or_default();
    let said = match (&body.message, body.code) {
        (Some(message), Some(code)) => format!("{message} (code {code})"),
        (Some(message), None) => message.clone(),
        _ => format!("HTTP {}", response.status),
    };
    Err(match response.status {
        429 => PublishError::RateLimited(RateLimit {
            retry_after_seconds: retry_after(&response, &body),
            message: if body.global == Some(true) {
                format!("Discord global rate limit: {said}")
            } else {
                format!("Discord rate limit: {said}")
            },
        }),
        401 => PublishError::AuthExpired(format!(
            "Discord refused the webhook: {said}; reconnect with a new webhook URL"
        )),
        404 if body.code == Some(UNKNOWN_WEBHOOK) => PublishError::AuthExpired(format!(
            "the Discord webhook was deleted: {said}; reconnect with a new webhook URL"
        )),
        400 if body.code == Some(INVALID_FORM_BODY) => PublishError::Validation(vec![Violation {
            field: "post".into(),
            code: "discord_invalid_form_body".into(),
            message: format!("Discord refused the message: {said}"),
        }]),
        408 | 500..=599 => PublishError::Retryable(format!("Discord is unavailable: {said}")),
        status => PublishError::Permanent(format!(
            "Discord refused the request (HTTP {status}): {said}"
        )),
    })
}

fn retry_after(response: &Response, body: &ErrorBody) -> u32 {
    body.retry_after
        .or_else(|| response.retry_after(time::now_unix()).map(f64::from))
        .or_else(|| {
            response
                .header("x-ratelimit-reset-after")
                .and_then(|value| value.trim().parse::<f64>().ok())
        })
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map_or(DEFAULT_RETRY_SECONDS, |seconds| {
            // Round up: retrying early would only be throttled again.
            seconds.ceil().min(f64::from(u32::MAX)) as u32
        })
        .max(1)
}

/// `error` with every occurrence of `secret` replaced (the host quotes request URLs, and
/// the webhook token and bot token are part of them).
pub fn scrub(error: PublishError, secret: &str) -> PublishError {
    let clean = |text: String| {
        if secret.is_empty() {
            text
        } else {
            text.replace(secret, "[redacted]")
        }
    };
    match error {
        PublishError::Retryable(m) => PublishError::Retryable(clean(m)),
        PublishError::Permanent(m) => PublishError::Permanent(clean(m)),
        PublishError::AuthExpired(m) => PublishError::AuthExpired(clean(m)),
        PublishError::RateLimited(limit) => PublishError::RateLimited(RateLimit {
            retry_after_seconds: limit.retry_after_seconds,
            message: clean(limit.message),
        }),
        PublishError::Validation(found) => PublishError::Validation(
            found
                .into_iter()
                .map(|v| Violation {
                    message: clean(v.message),
                    ..v
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::http::HttpError;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn retry_seconds(result: Result<Response, PublishError>) -> u32 {
        match result {
            Err(PublishError::RateLimited(limit)) => limit.retry_after_seconds,
            other => panic!("not rate limited: {other:?}"),
        }
    }

    #[test]
    fn rate_limits_round_the_float_delay_up() {
        let body =
            r#"{"message": "You are being rate limited.", "retry_after": 1.234, "global": false}"#;
        assert_eq!(
            retry_seconds(check(response(429, &[("retry-after", "1")], body))),
            2
        );
        assert_eq!(
            retry_seconds(check(response(429, &[("retry-after", "3")], "{}"))),
            3
        );
        assert_eq!(
            retry_seconds(check(response(
                429,
                &[("x-ratelimit-reset-after", "0.2")],
                ""
            ))),
            1
        );
        assert_eq!(retry_seconds(check(response(429, &[], "oops"))), 60);
        let global = r#"{"message": "slow", "retry_after": 0.5, "global": true}"#;
        match check(response(429, &[], global)) {
            Err(PublishError::RateLimited(limit)) => {
                assert_eq!(limit.retry_after_seconds, 1);
                assert!(limit.message.contains("global"), "{}", limit.message);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_deleted_webhook_asks_to_reconnect() {
        let unknown = r#"{"message": "Unknown Webhook", "code": 10015}"#;
        assert!(matches!(
            check(response(404, &[], unknown)),
            Err(PublishError::AuthExpired(m)) if m.contains("reconnect") && m.contains("10015")
        ));
        assert!(matches!(
            check(response(
                401,
                &[],
                r#"{"message": "401: Unauthorized", "code": 0}"#
            )),
            Err(PublishError::AuthExpired(_))
        ));
        assert!(matches!(
            check(response(
                404,
                &[],
                r#"{"message": "Unknown Channel", "code": 10003}"#
            )),
            Err(PublishError::Permanent(_))
        ));
    }

    #[test]
    fn other_statuses_map_by_kind() {
        let invalid = r#"{"code": 50035, "message": "Invalid Form Body", "errors": {}}"#;
        assert!(matches!(
            check(response(400, &[], invalid)),
            Err(PublishError::Validation(v)) if v[0].message.contains("Invalid Form Body")
        ));
        assert!(matches!(
            check(response(400, &[], r#"{"code": 50006, "message": "Cannot send an empty message"}"#)),
            Err(PublishError::Permanent(m)) if m.contains("50006")
        ));
        assert!(matches!(
            check(response(502, &[], "<html>")),
            Err(PublishError::Retryable(_))
        ));
        assert!(check(response(200, &[], "{}")).is_ok());
    }

    #[test]
    fn secrets_are_scrubbed_from_messages() {
        let error = HttpError::Transport(
            "error sending request for url (https://discord.com/api/v10/webhooks/1/s3cr3t): client error (SendRequest)".into(),
        );
        match scrub(error.into(), "s3cr3t") {
            PublishError::Retryable(m) => {
                assert!(
                    !m.contains("s3cr3t") && m.contains("webhooks/1/[redacted]"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
