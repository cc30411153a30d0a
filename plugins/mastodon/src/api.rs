//! Mastodon's answers: the JSON shapes the plugin reads and how a failed answer maps to
//! what Herald should do.

use herald_plugin_sdk::http::Response;
use herald_plugin_sdk::{PublishError, RateLimit, Violation, time};
use serde::Deserialize;

/// Wait when a 429 says nothing usable about its reset (Mastodon's windows are 5 minutes).
pub const DEFAULT_RATE_LIMIT_WAIT: u32 = 300;

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

/// Keeps a 2xx answer; maps the others: 401 → auth expired, 422 → validation (with
/// Mastodon's `error` text), 429 → rate limited until `X-RateLimit-Reset`, 408/5xx →
/// retryable, anything else → permanent.
pub fn check(response: Response) -> Result<Response, PublishError> {
    if response.is_success() {
        return Ok(response);
    }
    let status = response.status;
    let message = format!("Mastodon answered HTTP {status}: {}", error_text(&response));
    Err(match status {
        401 => PublishError::AuthExpired(message),
        422 => PublishError::Validation(vec![Violation {
            field: "text".into(),
            code: "rejected_by_instance".into(),
            message,
        }]),
        429 => PublishError::RateLimited(RateLimit {
            retry_after_seconds: rate_limit_wait(&response, time::now_unix_millis()),
            message,
        }),
        408 | 500..=599 => PublishError::Retryable(message),
        _ => PublishError::Permanent(message),
    })
}

/// Seconds until the rate limit resets: `X-RateLimit-Reset` (ISO 8601) relative to the
/// answer's `Date` (the instance's own clock, so skew between clocks does not matter), else
/// to `now_ms` (the host clock, Unix milliseconds); then the SDK's
/// [`Response::retry_after`] (`Retry-After` in seconds or as an HTTP date); else
/// [`DEFAULT_RATE_LIMIT_WAIT`].
pub fn rate_limit_wait(response: &Response, now_ms: i64) -> u32 {
    let reset = response
        .header("x-ratelimit-reset")
        .and_then(time::parse_rfc3339);
    let now = response
        .header("date")
        .and_then(time::parse_http_date)
        .unwrap_or(now_ms);
    if let Some(reset) = reset {
        return time::seconds_until(reset, now);
    }
    response
        .retry_after(u64::try_from(now / 1000).unwrap_or(0))
        .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
        .max(1)
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

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
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
