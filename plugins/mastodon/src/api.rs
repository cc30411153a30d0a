//! Mastodon's answers: the JSON shapes the plugin reads and how a failed answer maps to
//! what Herald should do.

use herald_plugin_sdk::http::Response;
use herald_plugin_sdk::{PublishError, Violation, time};
use serde::Deserialize;

/// `CredentialAccount` (the fields Herald keeps).
#[derive(Deserialize)]
pub struct CredentialAccount {
    pub id: String,
    pub acct: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `MediaAttachment` (the fields Herald reads).
#[derive(Deserialize)]
pub struct MediaAttachment {
    pub id: String,
    /// `null` while the instance is still processing the file.
    #[serde(default)]
    pub url: Option<String>,
}

/// `Status` (the fields Herald reads).
#[derive(Deserialize)]
pub struct Status {
    pub id: String,
    /// The status' HTML page; `null` for some statuses, then `uri` is the link.
    #[serde(default)]
    pub url: Option<String>,
    pub uri: String,
}

/// A `Status`' engagement counters (`GET /api/v1/statuses/:id`).
#[derive(Deserialize)]
pub struct StatusCounts {
    pub replies_count: i64,
    pub reblogs_count: i64,
    pub favourites_count: i64,
}

/// `Instance` (v2), reduced to the limits that decide whether a status is accepted.
#[derive(Deserialize)]
pub struct Instance {
    pub configuration: Configuration,
}

/// `Instance.configuration`.
#[derive(Deserialize)]
pub struct Configuration {
    pub statuses: StatusLimits,
}

/// `Instance.configuration.statuses`.
#[derive(Deserialize)]
pub struct StatusLimits {
    pub max_characters: u32,
    pub max_media_attachments: u32,
    pub characters_reserved_per_url: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// Keeps a 2xx answer; maps the others with the SDK's mapping, with Mastodon's own cases:
/// 422 → validation (with Mastodon's `error` text), a rate limit waits until
/// `X-RateLimit-Reset` (see [`rate_limit_wait`]).
pub fn check(response: Response) -> Result<Response, PublishError> {
    response.error_for_status_with(|failure| {
        let message = format!(
            "Mastodon answered HTTP {}: {}",
            failure.status(),
            error_text(failure.response())
        );
        if failure.status() == 422 {
            return PublishError::Validation(vec![Violation {
                field: "text".into(),
                code: "rejected_by_instance".into(),
                message,
            }]);
        }
        let wait = rate_limit_wait(failure.response(), time::now_unix_millis());
        failure
            .message(message)
            .retry_after(Some(wait))
            .into_error()
    })
}

/// Seconds until the rate limit resets: Mastodon's `X-RateLimit-Reset` is an ISO 8601
/// time (not the Unix seconds the SDK reads), counted on the instance's clock (its
/// `Date`, so skew between clocks does not matter) from `now_ms` (the host clock, Unix
/// milliseconds); else the SDK's reading of the other headers and its default.
pub fn rate_limit_wait(response: &Response, now_ms: i64) -> u32 {
    let reset = response
        .header("x-ratelimit-reset")
        .and_then(time::parse_rfc3339)
        .map(|reset| response.server_clock(now_ms).seconds_until(reset, now_ms));
    response.wait_seconds(reset, u64::try_from(now_ms / 1000).unwrap_or(0))
}

/// Mastodon's `{"error": "…"}` text, else the start of the body.
fn error_text(response: &Response) -> String {
    match serde_json::from_slice::<ErrorBody>(&response.body) {
        Ok(body) => body.error,
        Err(_) => response.text().chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::RateLimit;
    use herald_plugin_sdk::failure::DEFAULT_RETRY_SECONDS as DEFAULT_RATE_LIMIT_WAIT;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response::new(status, headers, body)
    }

    #[test]
    fn rate_limit_waits_until_the_reset_by_the_instance_clock() {
        let limited = answer(
            429,
            &[
                ("date", "Thu, 05 Dec 2019 11:34:47 GMT"),
                ("x-ratelimit-reset", "2019-12-05T11:34:50.250Z"),
            ],
            r#"{"error":"Too many requests"}"#,
        );
        assert_eq!(
            check(limited).err(),
            Some(PublishError::RateLimited(RateLimit {
                retry_after_seconds: 4,
                message: "Mastodon answered HTTP 429: Too many requests".into(),
            }))
        );
    }

    #[test]
    fn rate_limit_without_date_uses_the_host_clock_then_defaults() {
        let reset_only = answer(429, &[("x-ratelimit-reset", "1970-01-01T00:00:10Z")], "");
        assert_eq!(rate_limit_wait(&reset_only, 3_000), 7);
        let retry_after = answer(429, &[("retry-after", "9")], "");
        assert_eq!(rate_limit_wait(&retry_after, 0), 9);
        assert_eq!(
            rate_limit_wait(&answer(429, &[], ""), 0),
            DEFAULT_RATE_LIMIT_WAIT
        );
    }

    #[test]
    fn statuses_map_to_what_herald_does() {
        let invalid = check(answer(
            401,
            &[],
            r#"{"error":"The access token is invalid"}"#,
        ));
        assert_eq!(
            invalid.err(),
            Some(PublishError::AuthExpired(
                "Mastodon answered HTTP 401: The access token is invalid".into()
            ))
        );
        let rejected = check(answer(
            422,
            &[],
            r#"{"error":"Validation failed: Text character limit of 500 exceeded"}"#,
        ));
        assert!(
            matches!(&rejected, Err(PublishError::Validation(v)) if v[0].message.contains("character limit")),
            "{rejected:?}"
        );
        assert!(matches!(
            check(answer(503, &[], "<html>")),
            Err(PublishError::Retryable(_))
        ));
        assert!(matches!(
            check(answer(404, &[], "{}")),
            Err(PublishError::Permanent(_))
        ));
        assert!(check(answer(202, &[], "{}")).is_ok());
    }
}
