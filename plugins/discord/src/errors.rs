//! Discord's answers mapped to what Herald should do. Error bodies are `{code, message}`
//! (plus `errors` for invalid form bodies); a 429 body is `{message, retry_after, global}`
//! with `retry_after` in float seconds.

use herald_plugin_sdk::failure::Kind;
use herald_plugin_sdk::http::Response;
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{PublishError, Violation, time};
use serde::Deserialize;

/// Discord's "Unknown Webhook": the webhook was deleted, its URL is dead.
pub const UNKNOWN_WEBHOOK: i64 = 10015;
/// Discord's "Invalid Form Body": the message broke a rule (length, attachments…).
pub const INVALID_FORM_BODY: i64 = 50035;

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

/// Keeps a 2xx response; maps any other with the SDK's mapping, with Discord's own cases:
/// a rate limit waits the body's float `retry_after` rounded up (else
/// `X-RateLimit-Reset-After`, the float form of `Retry-After`, else the SDK's reading of
/// the headers); Unknown Webhook → auth expired
/// (reconnect with a new webhook); 400 Invalid Form Body → validation; messages in
/// Discord's words.
pub fn check(response: Response) -> Result<Response, PublishError> {
    response.error_for_status_with(|failure| {
        let body: ErrorBody = failure.json().unwrap_or_default();
        let said = match (&body.message, body.code) {
            (Some(message), Some(code)) => format!("{message} (code {code})"),
            (Some(message), None) => message.clone(),
            _ => format!("HTTP {}", failure.status()),
        };
        match (failure.status(), body.code) {
            (404, Some(UNKNOWN_WEBHOOK)) => {
                return PublishError::AuthExpired(format!(
                    "the Discord webhook was deleted: {said}; reconnect with a new webhook URL"
                ));
            }
            (400, Some(INVALID_FORM_BODY)) => {
                return PublishError::Validation(vec![Violation {
                    field: "post".into(),
                    code: "discord_invalid_form_body".into(),
                    message: format!("Discord refused the message: {said}"),
                }]);
            }
            _ => {}
        }
        let message = match failure.kind() {
            Kind::RateLimited if body.global == Some(true) => {
                format!("Discord global rate limit: {said}")
            }
            Kind::RateLimited => format!("Discord rate limit: {said}"),
            Kind::AuthExpired => {
                format!("Discord refused the webhook: {said}; reconnect with a new webhook URL")
            }
            Kind::Retryable => format!("Discord is unavailable: {said}"),
            Kind::Permanent => format!(
                "Discord refused the request (HTTP {}): {said}",
                failure.status()
            ),
        };
        let reset_after = failure
            .response()
            .header("x-ratelimit-reset-after")
            .and_then(|value| value.trim().parse::<f64>().ok());
        let wait = body
            .retry_after
            .or(reset_after)
            .and_then(time::ceil_seconds);
        failure.message(message).retry_after(wait).into_error()
    })
}

/// `error` with every occurrence of `secret` (raw or percent-encoded) replaced: the host
/// quotes request URLs, and the webhook token and bot token are part of them.
pub fn scrub(error: PublishError, secret: &str) -> PublishError {
    error.scrubbed(&Secrets::new([secret]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::http::HttpError;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response::new(status, headers, body)
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
