//! What Herald's Meta plugins share: Facebook Pages, Instagram and Threads speak the same
//! Graph API dialect. This crate holds it once:
//!
//! - [`graph_version`]: the Graph API version is a setting (Meta retires versions about two
//!   years after release), read from the account's credential extra `graph_version`;
//! - [`GraphError`] / [`graph_error`]: Meta's error envelope
//!   `{"error":{"message","type","code","error_subcode","fbtrace_id"}}` and what its codes
//!   mean ([`Meaning`]);
//! - [`usage_wait_seconds`]: how long a throttled app waits, from the usage headers (Meta
//!   sends no `Retry-After`);
//! - [`failure`]: the default mapping of a failed answer onto Herald's [`PublishError`];
//! - [`ContainerStatus`]: the processing states of Instagram and Threads media containers.

use herald_plugin_sdk::failure::{Failure, Kind};
use herald_plugin_sdk::http::Response;
use herald_plugin_sdk::{Credentials, PublishError, RateLimit, settings};
use serde::Deserialize;

/// The Graph API version used when the account names none.
pub const DEFAULT_GRAPH_VERSION: &str = "v25.0";

/// Seconds a throttled call waits when the usage headers say nothing usable.
pub const DEFAULT_THROTTLE_SECONDS: u32 = 300;

/// Seconds a temporary block (code 368) waits before Herald tries again.
pub const BLOCK_SECONDS: u32 = 3_600;

/// The Graph API version for `credentials`: the extra `graph_version` when it is one
/// (`v` + major + `.` + minor, e.g. `v26.0`), else [`DEFAULT_GRAPH_VERSION`].
pub fn graph_version(credentials: &Credentials) -> String {
    settings::value(&credentials.extra, "graph_version")
        .map(str::trim)
        .filter(|version| is_version(version))
        .unwrap_or(DEFAULT_GRAPH_VERSION)
        .to_owned()
}

/// Whether `text` reads like a Graph API version (`v25.0`).
pub fn is_version(text: &str) -> bool {
    let Some(number) = text.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = number.split_once('.') else {
        return false;
    };
    let digits = |part: &str| {
        !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit())
    };
    digits(major) && digits(minor)
}

/// Meta's error envelope: `{"error": {...}}`.
#[derive(Debug, Deserialize)]
struct Envelope {
    error: GraphError,
}

/// One Graph API error, as Meta words it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GraphError {
    /// Meta's message.
    #[serde(default)]
    pub message: String,
    /// Meta's error type, e.g. `OAuthException`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The error code, e.g. 190.
    #[serde(default)]
    pub code: i64,
    /// The subcode, e.g. 2207027.
    #[serde(default, rename = "error_subcode")]
    pub subcode: Option<i64>,
    /// Meta's trace id (quote it to Meta's support).
    #[serde(default)]
    pub fbtrace_id: Option<String>,
    /// The message Meta meant for the user, when it has one.
    #[serde(default, rename = "error_user_msg")]
    pub user_message: Option<String>,
    /// Whether Meta says the error is transient.
    #[serde(default)]
    pub is_transient: Option<bool>,
}

/// What a Graph API error means for publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The app, user or page is throttled (4, 17, 32, 613, 80001–80014): wait.
    Throttled,
    /// The token is expired or revoked (190, 102, 463, 467): refresh or reconnect.
    Reconnect,
    /// The account is blocked for a while for policy reasons (368).
    TemporarilyBlocked,
    /// The same content was just posted (506): look the post up rather than post again.
    Duplicate,
    /// An unknown or transient server error (1, 2, or `is_transient`): the request may
    /// have gone through; look up before retrying.
    Transient,
    /// A media container is not ready yet (9007 / 2207027, Threads' 24 / 4279009): retry.
    NotReady,
    /// Meta could not download the media from its URL (9004, 2207052, 2207003, 2207020).
    MediaNotFetched,
    /// The request is invalid (100 and the rest of the 1xx): retrying will not help.
    Invalid,
    /// Anything else.
    Other,
}

impl GraphError {
    /// What this error means for publishing.
    pub fn meaning(&self) -> Meaning {
        const FETCH_SUBCODES: [i64; 3] = [2_207_052, 2_207_003, 2_207_020];
        let subcode = self.subcode.unwrap_or_default();
        match self.code {
            _ if FETCH_SUBCODES.contains(&subcode) => Meaning::MediaNotFetched,
            _ if subcode == 2_207_027 || subcode == 4_279_009 => Meaning::NotReady,
            4 | 17 | 32 | 613 | 80_001..=80_014 => Meaning::Throttled,
            190 | 102 | 463 | 467 => Meaning::Reconnect,
            368 => Meaning::TemporarilyBlocked,
            506 => Meaning::Duplicate,
            9007 => Meaning::NotReady,
            9004 => Meaning::MediaNotFetched,
            1 | 2 => Meaning::Transient,
            _ if self.is_transient == Some(true) => Meaning::Transient,
            100..=199 => Meaning::Invalid,
            _ => Meaning::Other,
        }
    }

    /// Meta's words for the error, with its codes: `message (code 190, subcode 463)`.
    pub fn describe(&self) -> String {
        let text = self
            .user_message
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .unwrap_or(&self.message);
        match self.subcode {
            Some(subcode) => format!("{text} (code {}, subcode {subcode})", self.code),
            None => format!("{text} (code {})", self.code),
        }
    }
}

/// The Graph API error in `response`'s body, `None` when the body is not the envelope.
pub fn graph_error(response: &Response) -> Option<GraphError> {
    serde_json::from_slice::<Envelope>(&response.body)
        .ok()
        .map(|envelope| envelope.error)
}

/// Seconds until a throttled app, page or user regains access, from the usage headers
/// Meta sends with a throttling error: `X-Business-Use-Case-Usage` (per business object,
/// `estimated_time_to_regain_access` in minutes), `X-App-Usage` and `X-Ad-Account-Usage`.
/// The longest wait any of them names; `None` when none names one.
pub fn usage_wait_seconds(response: &Response) -> Option<u32> {
    let mut minutes: Vec<u64> = Vec::new();
    if let Some(text) = response.header("x-business-use-case-usage")
        && let Ok(usage) =
            serde_json::from_str::<std::collections::HashMap<String, Vec<serde_json::Value>>>(text)
    {
        minutes.extend(usage.values().flatten().filter_map(regain_minutes));
    }
    for name in ["x-app-usage", "x-ad-account-usage"] {
        if let Some(text) = response.header(name)
            && let Ok(usage) = serde_json::from_str::<serde_json::Value>(text)
        {
            minutes.extend(regain_minutes(&usage));
        }
    }
    let longest = minutes.into_iter().max()?;
    Some(u32::try_from(longest.saturating_mul(60)).unwrap_or(u32::MAX))
}

/// `estimated_time_to_regain_access` (minutes) of one usage entry, when it is positive.
fn regain_minutes(entry: &serde_json::Value) -> Option<u64> {
    entry
        .get("estimated_time_to_regain_access")?
        .as_u64()
        .filter(|minutes| *minutes > 0)
}

/// The default mapping of a failed Graph API answer onto [`PublishError`], the message
/// naming `platform` and Meta's words and codes:
/// throttled → rate limited for the usage headers' wait (else
/// [`DEFAULT_THROTTLE_SECONDS`]); reconnect → auth expired; temporarily blocked → rate
/// limited for [`BLOCK_SECONDS`]; not ready and transient → retryable; media not fetched
/// → permanent, saying that Meta downloads media from Herald's public URL; duplicate,
/// invalid and other → the generic mapping of the HTTP status (see
/// [`herald_plugin_sdk::failure`]). Plugins handle duplicates and transient errors that
/// may have gone through (look the post up) before calling this.
pub fn failure(response: &Response, platform: &str) -> PublishError {
    let Some(error) = graph_error(response) else {
        return Failure::new(response)
            .message(format!(
                "{platform}: HTTP {}: {}",
                response.status,
                quoted(response)
            ))
            .into_error();
    };
    let message = format!("{platform}: {}", error.describe());
    let rate_limited = |seconds: u32| {
        PublishError::RateLimited(RateLimit {
            retry_after_seconds: seconds.clamp(1, herald_plugin_sdk::failure::MAX_RETRY_SECONDS),
            message: message.clone(),
        })
    };
    match error.meaning() {
        Meaning::Throttled => {
            rate_limited(usage_wait_seconds(response).unwrap_or(DEFAULT_THROTTLE_SECONDS))
        }
        Meaning::TemporarilyBlocked => rate_limited(BLOCK_SECONDS),
        Meaning::Reconnect => PublishError::AuthExpired(message),
        Meaning::NotReady | Meaning::Transient => PublishError::Retryable(message),
        Meaning::MediaNotFetched => PublishError::Permanent(format!(
            "{message}: Meta could not download the media from its URL; Herald's media URLs \
             must be reachable from the internet (check HERALD_PUBLIC_URL)"
        )),
        Meaning::Invalid => Failure::new(response)
            .message(message)
            .error(Kind::Permanent),
        Meaning::Duplicate | Meaning::Other => Failure::new(response).message(message).into_error(),
    }
}

/// The start of `response`'s body, for messages.
fn quoted(response: &Response) -> String {
    response.text().chars().take(300).collect()
}

/// The processing state of an Instagram or Threads media container (`status_code` on
/// Instagram, `status` on Threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerStatus {
    /// Still processing: poll again.
    InProgress,
    /// Ready to publish.
    Finished,
    /// Already published (proof that the post went out).
    Published,
    /// Processing failed.
    Error,
    /// Not published within 24 hours: a new container is needed.
    Expired,
}

impl ContainerStatus {
    /// The status Meta names `text`, `None` for an unknown one.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "IN_PROGRESS" => Some(Self::InProgress),
            "FINISHED" => Some(Self::Finished),
            "PUBLISHED" => Some(Self::Published),
            "ERROR" => Some(Self::Error),
            "EXPIRED" => Some(Self::Expired),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_body(code: i64, subcode: Option<i64>) -> String {
        let subcode = subcode.map_or(String::new(), |s| format!(r#","error_subcode":{s}"#));
        format!(
            r#"{{"error":{{"message":"Meta says no","type":"OAuthException","code":{code}{subcode},"fbtrace_id":"AbC"}}}}"#
        )
    }

    fn answer(status: u16, headers: &[(&str, &str)], code: i64, subcode: Option<i64>) -> Response {
        Response::new(status, headers, &error_body(code, subcode))
    }

    #[test]
    fn codes_have_their_meaning() {
        let meaning = |code, subcode| {
            graph_error(&answer(400, &[], code, subcode))
                .expect("envelope")
                .meaning()
        };
        for code in [4, 17, 32, 613, 80_001] {
            assert_eq!(meaning(code, None), Meaning::Throttled, "{code}");
        }
        assert_eq!(meaning(190, Some(463)), Meaning::Reconnect);
        assert_eq!(meaning(368, None), Meaning::TemporarilyBlocked);
        assert_eq!(meaning(506, None), Meaning::Duplicate);
        assert_eq!(meaning(2, None), Meaning::Transient);
        assert_eq!(meaning(9007, Some(2_207_027)), Meaning::NotReady);
        assert_eq!(meaning(24, Some(4_279_009)), Meaning::NotReady);
        assert_eq!(meaning(9004, Some(2_207_052)), Meaning::MediaNotFetched);
        assert_eq!(meaning(100, Some(33)), Meaning::Invalid);
        assert_eq!(meaning(999, None), Meaning::Other);
    }

    #[test]
    fn throttling_waits_what_the_usage_headers_say() {
        let usage = r#"{"1234":[{"type":"pages","call_count":100,"total_cputime":10,"total_time":10,"estimated_time_to_regain_access":7}]}"#;
        let response = answer(400, &[("X-Business-Use-Case-Usage", usage)], 80_001, None);
        assert_eq!(usage_wait_seconds(&response), Some(420));
        match failure(&response, "Facebook") {
            PublishError::RateLimited(limit) => {
                assert_eq!(limit.retry_after_seconds, 420);
                assert!(
                    limit.message.contains("Meta says no (code 80001)"),
                    "{}",
                    limit.message
                );
            }
            other => panic!("{other:?}"),
        }
        let app = answer(
            403,
            &[(
                "x-app-usage",
                r#"{"call_count":100,"estimated_time_to_regain_access":2}"#,
            )],
            4,
            None,
        );
        assert_eq!(usage_wait_seconds(&app), Some(120));
        let silent = answer(400, &[], 17, None);
        assert!(matches!(
            failure(&silent, "Instagram"),
            PublishError::RateLimited(RateLimit {
                retry_after_seconds: DEFAULT_THROTTLE_SECONDS,
                ..
            })
        ));
    }

    #[test]
    fn failures_map_to_what_herald_does() {
        assert!(matches!(
            failure(&answer(401, &[], 190, Some(463)), "X"),
            PublishError::AuthExpired(_)
        ));
        assert!(matches!(
            failure(&answer(400, &[], 368, None), "X"),
            PublishError::RateLimited(RateLimit {
                retry_after_seconds: BLOCK_SECONDS,
                ..
            })
        ));
        assert!(matches!(
            failure(&answer(400, &[], 9007, Some(2_207_027)), "X"),
            PublishError::Retryable(_)
        ));
        assert!(matches!(
            failure(&answer(500, &[], 2, None), "X"),
            PublishError::Retryable(_)
        ));
        match failure(&answer(400, &[], 9004, Some(2_207_052)), "Instagram") {
            PublishError::Permanent(message) => {
                assert!(message.contains("HERALD_PUBLIC_URL"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            failure(&answer(400, &[], 100, None), "X"),
            PublishError::Permanent(_)
        ));
        assert!(matches!(
            failure(&Response::new(503, &[], "<html>down</html>"), "X"),
            PublishError::Retryable(_)
        ));
    }

    #[test]
    fn the_version_is_a_setting_checked_for_shape() {
        let with = |value: &str| Credentials {
            access_token: "t".into(),
            refresh_token: None,
            expires_at: None,
            extra: vec![("graph_version".into(), value.into())],
        };
        assert_eq!(graph_version(&with("v26.0")), "v26.0");
        assert_eq!(graph_version(&with("26")), DEFAULT_GRAPH_VERSION);
        assert_eq!(graph_version(&with("v26.0/../me")), DEFAULT_GRAPH_VERSION);
    }

    #[test]
    fn container_statuses_parse() {
        assert_eq!(
            ContainerStatus::parse("FINISHED"),
            Some(ContainerStatus::Finished)
        );
        assert_eq!(
            ContainerStatus::parse("PUBLISHED"),
            Some(ContainerStatus::Published)
        );
        assert_eq!(ContainerStatus::parse("nope"), None);
    }
}
