//! What a failed answer means for Herald: the one mapping of HTTP statuses and rate-limit
//! headers onto [`PublishError`]. A plugin keeps only its platform's own cases (an error
//! name in the body, a wait the body carries, its own wording) and hands the rest to
//! [`Failure::into_error`]:
//!
//! ```ignore
//! let response = request.send()?.error_for_status_with(|failure| {
//!     let body: ErrorBody = failure.json().unwrap_or_default();
//!     let failure = failure
//!         .message(format!("MyPlatform: {}", body.message))
//!         .retry_after(body.retry_after);   // a wait in the body beats the headers
//!     match body.code.as_str() {
//!         "token_expired" => failure.error(Kind::AuthExpired),
//!         _ => failure.into_error(),        // 401, 429, 408/425/5xx, other 4xx
//!     }
//! })?;
//! ```
//!
//! The generic mapping: 401 → auth expired; 429, a 403 with no requests remaining and a
//! 503 with `Retry-After` → rate limited; 408, 425 and 5xx → retryable; any other →
//! permanent. A rate limit waits what the platform said (the plugin's
//! [`retry_after`](Failure::retry_after), else the headers, see [`Response::retry_after`]),
//! else [`DEFAULT_RETRY_SECONDS`], bounded to 1 ..= [`MAX_RETRY_SECONDS`].

use serde::de::DeserializeOwned;

use crate::http::Response;
use crate::{PublishError, RateLimit, time};

/// Seconds to wait on a rate limit that says nothing usable about its end.
pub const DEFAULT_RETRY_SECONDS: u32 = 60;

/// The longest wait a rate limit is given (a day): a larger or garbled value is bounded.
pub const MAX_RETRY_SECONDS: u32 = 86_400;

/// How much of an unparsed body the default message quotes, in characters.
const QUOTED_BODY_CHARS: usize = 300;

/// What Herald does about a failure, before it is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Refresh the credentials or ask the user to reconnect.
    AuthExpired,
    /// Retry after the wait the platform asked for.
    RateLimited,
    /// Retry with backoff.
    Retryable,
    /// Give up.
    Permanent,
}

impl Kind {
    /// The generic kind of a failed `status` of `response`.
    pub fn of(status: u16, response: &Response) -> Self {
        match status {
            401 => Self::AuthExpired,
            429 => Self::RateLimited,
            403 if response.rate_limit_remaining() == Some(0) => Self::RateLimited,
            503 if response.header("retry-after").is_some() => Self::RateLimited,
            408 | 425 | 500..=599 => Self::Retryable,
            _ => Self::Permanent,
        }
    }
}

/// A failed answer on its way to a [`PublishError`]: a plugin words it, adds what its
/// platform says beyond the status and headers, and turns it into the error.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    response: &'a Response,
    status: u16,
    message: String,
    retry_after: Option<u32>,
    now_ms: i64,
}

impl<'a> Failure<'a> {
    /// The failure of `response`, with the message `HTTP <status>: <start of the body>`.
    pub fn new(response: &'a Response) -> Self {
        let text = response.text();
        let quoted = text
            .char_indices()
            .nth(QUOTED_BODY_CHARS)
            .map_or(text.as_str(), |(index, _)| &text[..index]);
        Self {
            response,
            status: response.status,
            message: format!("HTTP {}: {quoted}", response.status),
            retry_after: None,
            now_ms: time::now_unix_millis(),
        }
    }

    /// The status the mapping uses (the answer's, unless [`with_status`](Self::with_status)).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The failed answer.
    pub fn response(&self) -> &'a Response {
        self.response
    }

    /// The body parsed as `T` (the platform's error shape), `None` when it is not one.
    pub fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.response.body).ok()
    }

    /// Maps `status` instead of the answer's (for platforms that put the real status in
    /// the body, such as Telegram's `error_code`).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The message the error carries (say the platform's own words).
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The message the error will carry.
    pub fn text(&self) -> &str {
        &self.message
    }

    /// Seconds to wait, as the platform said beyond the generic headers (a body field, a
    /// header of its own); it takes precedence over the headers. `None` changes nothing.
    pub fn retry_after(mut self, seconds: Option<u32>) -> Self {
        if seconds.is_some() {
            self.retry_after = seconds;
        }
        self
    }

    /// Counts absolute reset times from host time `now_unix_ms` instead of the clock.
    pub fn at(mut self, now_unix_ms: i64) -> Self {
        self.now_ms = now_unix_ms;
        self
    }

    /// What the generic mapping does with this failure.
    pub fn kind(&self) -> Kind {
        Kind::of(self.status, self.response)
    }

    /// Seconds a rate limit waits: the plugin's [`retry_after`](Self::retry_after), else
    /// the headers', else [`DEFAULT_RETRY_SECONDS`]; bounded to 1 ..= [`MAX_RETRY_SECONDS`].
    pub fn wait_seconds(&self) -> u32 {
        let now_unix = u64::try_from(self.now_ms / 1000).unwrap_or(0);
        self.response
            .wait_seconds(self.retry_after, now_unix)
            .clamp(1, MAX_RETRY_SECONDS)
    }

    /// The error of the generic mapping ([`kind`](Self::kind)).
    pub fn into_error(self) -> PublishError {
        let kind = self.kind();
        self.error(kind)
    }

    /// The error of `kind`, whatever the status (a platform's own case, e.g. a rate-limit
    /// error code in the body of a 400).
    pub fn error(self, kind: Kind) -> PublishError {
        match kind {
            Kind::AuthExpired => PublishError::AuthExpired(self.message),
            Kind::RateLimited => PublishError::RateLimited(RateLimit {
                retry_after_seconds: self.wait_seconds(),
                message: self.message,
            }),
            Kind::Retryable => PublishError::Retryable(self.message),
            Kind::Permanent => PublishError::Permanent(self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2019-12-05T11:34:47Z, Unix milliseconds.
    const NOW_MS: i64 = 1_575_545_687_000;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response::new(status, headers, body)
    }

    /// The wait the generic mapping gives a 429 with `headers`, at [`NOW_MS`].
    fn wait(headers: &[(&str, &str)]) -> u32 {
        match Failure::new(&response(429, headers, ""))
            .at(NOW_MS)
            .into_error()
        {
            PublishError::RateLimited(limit) => limit.retry_after_seconds,
            other => panic!("not rate limited: {other:?}"),
        }
    }

    #[test]
    fn statuses_map_by_kind() {
        let kind =
            |status, headers: &[(&str, &str)]| Failure::new(&response(status, headers, "")).kind();
        assert_eq!(kind(401, &[]), Kind::AuthExpired);
        assert_eq!(kind(429, &[]), Kind::RateLimited);
        assert_eq!(kind(403, &[]), Kind::Permanent);
        assert_eq!(
            kind(403, &[("x-ratelimit-remaining", "0")]),
            Kind::RateLimited
        );
        assert_eq!(kind(503, &[("retry-after", "120")]), Kind::RateLimited);
        for status in [408, 425, 500, 502, 503, 504] {
            assert_eq!(kind(status, &[]), Kind::Retryable, "{status}");
        }
        for status in [400, 404, 409, 410, 413, 422] {
            assert_eq!(kind(status, &[]), Kind::Permanent, "{status}");
        }
    }

    #[test]
    fn rate_limits_wait_as_the_headers_say() {
        // Retry-After in seconds.
        assert_eq!(wait(&[("retry-after", "17")]), 17);
        // Retry-After as an HTTP date, counted from the answer's own Date.
        assert_eq!(
            wait(&[
                ("retry-after", "Sun, 29 Nov 2026 02:16:30 GMT"),
                ("date", "Sun, 29 Nov 2026 02:16:00 GMT"),
            ]),
            30
        );
        // Retry-After as an HTTP date without Date: the host clock.
        assert_eq!(
            wait(&[("retry-after", "Thu, 05 Dec 2019 11:36:07 GMT")]),
            80
        );
        // Epoch resets (X, GitHub), also with a fraction, and the IETF draft's delta.
        assert_eq!(wait(&[("x-rate-limit-reset", "1575545717")]), 30);
        assert_eq!(wait(&[("x-ratelimit-reset", "1575545717.2")]), 31);
        assert_eq!(wait(&[("ratelimit-reset", "45")]), 45);
        // An epoch reset counts from the server's clock when the answer has one.
        assert_eq!(
            wait(&[
                ("x-rate-limit-reset", "1575545717"),
                ("date", "Thu, 05 Dec 2019 11:34:57 GMT"),
            ]),
            20
        );
    }

    #[test]
    fn rate_limits_without_a_usable_wait_get_the_one_default() {
        assert_eq!(wait(&[]), DEFAULT_RETRY_SECONDS);
        for garbage in ["soon", "-5", "1.5e3", "", "NaN", "inf"] {
            assert_eq!(
                wait(&[("retry-after", garbage), ("x-ratelimit-reset", garbage)]),
                DEFAULT_RETRY_SECONDS,
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn waits_are_bounded() {
        assert_eq!(
            wait(&[("retry-after", "99999999999999999999999")]),
            MAX_RETRY_SECONDS
        );
        assert_eq!(wait(&[("retry-after", "4294967295")]), MAX_RETRY_SECONDS);
        assert_eq!(
            wait(&[("x-rate-limit-reset", "99999999999999")]),
            MAX_RETRY_SECONDS
        );
        // A reset already past, or a zero wait: retry after a second, not at once.
        assert_eq!(wait(&[("x-rate-limit-reset", "1000")]), 1);
        assert_eq!(wait(&[("retry-after", "0")]), 1);
        let huge = Failure::new(&response(429, &[], ""))
            .retry_after(Some(u32::MAX))
            .into_error();
        assert!(
            matches!(huge, PublishError::RateLimited(l) if l.retry_after_seconds == MAX_RETRY_SECONDS)
        );
    }

    #[test]
    fn the_platform_refines_what_the_status_says() {
        let answer = response(
            400,
            &[("retry-after", "9")],
            r#"{"code":"slow_down","wait":4}"#,
        );
        #[derive(serde::Deserialize)]
        struct Body {
            code: String,
            wait: u32,
        }
        let body: Body = Failure::new(&answer).json().expect("body");
        let failure = Failure::new(&answer)
            .message(format!("MyPlatform: {}", body.code))
            .retry_after(Some(body.wait))
            .retry_after(None);
        assert_eq!(failure.kind(), Kind::Permanent);
        assert_eq!(
            failure.error(Kind::RateLimited),
            PublishError::RateLimited(RateLimit {
                retry_after_seconds: 4,
                message: "MyPlatform: slow_down".into()
            })
        );
        let ok = response(200, &[], "{}");
        let moved = Failure::new(&ok).with_status(401);
        assert_eq!(moved.status(), 401);
        assert_eq!(
            moved.into_error(),
            PublishError::AuthExpired("HTTP 200: {}".into())
        );
        let long = "é".repeat(1000);
        match Failure::new(&response(500, &[], &long)).into_error() {
            PublishError::Retryable(message) => {
                assert_eq!(message.chars().count(), "HTTP 500: ".len() + 300)
            }
            other => panic!("{other:?}"),
        }
    }
}
