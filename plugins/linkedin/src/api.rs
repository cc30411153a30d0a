//! LinkedIn's versioned REST API (`/rest/…`): the headers every call carries, the JSON
//! shapes the plugin reads, and how a failed answer maps to what Herald should do (the
//! SDK's mapping plus LinkedIn's own cases).

use herald_plugin_sdk::http::{Request, Response};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{Credentials, PublishError, time};
use serde::Deserialize;

/// Where the REST and userinfo APIs live.
pub const API: &str = "https://api.linkedin.com";
/// The credential extra that chooses the API version (`YYYYMM`, or `YYYYMM.RR`).
pub const VERSION_KEY: &str = "linkedin_version";
/// The version used when the account sets none. LinkedIn serves each monthly version for
/// at least a year, then answers 426 `NONEXISTENT_VERSION`.
pub const DEFAULT_VERSION: &str = "202611";
/// The Rest.li protocol the REST API expects.
pub const PROTOCOL_VERSION: &str = "2.0.0";

/// The API version the account asks for (its `linkedin_version` extra, else
/// [`DEFAULT_VERSION`]); a malformed one is a permanent error naming the setting.
pub fn version(credentials: &Credentials) -> Result<&str, PublishError> {
    let Some(version) = credentials.extra_value(VERSION_KEY) else {
        return Ok(DEFAULT_VERSION);
    };
    let (month, revision) = version.split_once('.').unwrap_or((version, "00"));
    let digits = |part: &str, len| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
    if digits(month, 6) && digits(revision, 2) {
        Ok(version)
    } else {
        Err(PublishError::Permanent(format!(
            "the account's `{VERSION_KEY}` credential extra is {version:?}; LinkedIn \
             versions are YYYYMM (e.g. {DEFAULT_VERSION})"
        )))
    }
}

/// A call to the versioned REST API: the account's token, `LinkedIn-Version` and the
/// Rest.li protocol header.
pub fn rest(request: Request, token: &str, version: &str) -> Request {
    request
        .bearer(token)
        .header("LinkedIn-Version", version)
        .header("X-Restli-Protocol-Version", PROTOCOL_VERSION)
}

/// Sends `request` (already authorised); a failure is mapped by [`check`] for `version`
/// and `secrets` are scrubbed from its message.
pub fn send(request: Request, version: &str, secrets: &Secrets) -> Result<Response, PublishError> {
    request
        .send()
        .map_err(PublishError::from)
        .and_then(|response| check(response, version))
        .map_err(|error| error.scrubbed(secrets))
}

/// `GET /v2/userinfo` (OpenID Connect, scopes `openid profile`).
#[derive(Deserialize)]
pub struct Userinfo {
    /// The member's id: their person URN is `urn:li:person:<sub>`.
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /rest/images?action=initializeUpload`'s answer.
#[derive(Deserialize)]
pub struct Initialized {
    pub value: Upload,
}

/// Where to PUT the image, and its URN.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    pub upload_url: String,
    pub image: String,
}

/// LinkedIn's error body (`{"status", "code", "message"}`; older APIs say
/// `serviceErrorCode`).
#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The existing post a 422 `DUPLICATE_POST` points at ("Content is a duplicate of
/// urn:li:share:…"): LinkedIn refused the same content again, so an earlier attempt went
/// through.
pub fn duplicate_of(response: &Response) -> Option<String> {
    if response.status != 422 {
        return None;
    }
    let problem = serde_json::from_slice::<Problem>(&response.body).ok()?;
    if problem.code != "DUPLICATE_POST" && !problem.message.contains("duplicate") {
        return None;
    }
    post_urn(&problem.message)
}

/// The first post URN (`urn:li:share:…`, `urn:li:ugcPost:…`) in `text`.
fn post_urn(text: &str) -> Option<String> {
    ["urn:li:share:", "urn:li:ugcPost:"]
        .into_iter()
        .filter_map(|prefix| text.find(prefix).map(|at| (at, prefix)))
        .min()
        .and_then(|(at, prefix)| {
            let id: String = text[at + prefix.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (!id.is_empty()).then(|| format!("{prefix}{id}"))
        })
}

/// Keeps a 2xx answer; maps the others with the SDK's mapping (401 → reconnect, 429 →
/// rate limited, 5xx → retried, other 4xx → permanent), worded with LinkedIn's message,
/// and LinkedIn's own case: 426 `NONEXISTENT_VERSION` (the `version` sent is retired) is
/// permanent and names the setting to change.
pub fn check(response: Response, version: &str) -> Result<Response, PublishError> {
    response.error_for_status_with(|failure| {
        let problem = failure.json::<Problem>().unwrap_or_default();
        let said = if problem.message.trim().is_empty() {
            failure.response().text()
        } else {
            problem.message.clone()
        };
        if failure.status() == 426 || problem.code == "NONEXISTENT_VERSION" {
            return PublishError::Permanent(format!(
                "LinkedIn does not serve API version {version} any more (HTTP {} {}): set \
                 the account's `{VERSION_KEY}` credential extra to a current version \
                 (YYYYMM, see https://learn.microsoft.com/linkedin/marketing/versioning), \
                 then retry the post. LinkedIn said: {said}",
                failure.status(),
                problem.code
            ));
        }
        let code = if problem.code.is_empty() {
            String::new()
        } else {
            format!(" {}", problem.code)
        };
        let message = format!("LinkedIn answered HTTP {}{code}: {said}", failure.status());
        let wait =
            (failure.status() == 429 && failure.response().retry_after(0).is_none()).then(|| {
                let now = time::now_unix_millis();
                until_midnight_utc(failure.response().server_clock(now).at(now))
            });
        failure.message(message).retry_after(wait).into_error()
    })
}

/// Seconds from `server_ms` (Unix milliseconds on LinkedIn's clock) to the next midnight
/// UTC, when LinkedIn's daily rate limits reset: a 429 without `Retry-After` waits that
/// long (retrying sooner would only spend attempts on the same exhausted quota).
fn until_midnight_utc(server_ms: i64) -> u32 {
    const DAY_MS: i64 = 86_400_000;
    let next = (server_ms.div_euclid(DAY_MS) + 1) * DAY_MS;
    time::seconds_until(next, server_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(extra: &[(&str, &str)]) -> Credentials {
        Credentials {
            access_token: "t".into(),
            refresh_token: None,
            expires_at: None,
            extra: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_version_is_the_accounts_setting_or_the_default() {
        assert_eq!(version(&credentials(&[])), Ok(DEFAULT_VERSION));
        assert_eq!(
            version(&credentials(&[(VERSION_KEY, " 202601 ")])),
            Ok("202601")
        );
        assert_eq!(
            version(&credentials(&[(VERSION_KEY, "202601.01")])),
            Ok("202601.01")
        );
        assert!(matches!(
            version(&credentials(&[(VERSION_KEY, "2026-01")])),
            Err(PublishError::Permanent(m)) if m.contains(VERSION_KEY)
        ));
    }

    #[test]
    fn a_retired_version_is_permanent_and_names_the_setting() {
        let body = r#"{"status":426,"code":"NONEXISTENT_VERSION","message":"Requested version 20240101 is not active"}"#;
        match check(Response::new(426, &[], body), "202401") {
            Err(PublishError::Permanent(message)) => {
                assert!(message.contains("API version 202401"), "{message}");
                assert!(message.contains("`linkedin_version`"), "{message}");
                assert!(message.contains("is not active"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn statuses_map_as_the_sdk_says_worded_with_linkedins_message() {
        let expired = r#"{"status":401,"serviceErrorCode":65601,"code":"REVOKED_ACCESS_TOKEN","message":"The token used in the request has been revoked by the user"}"#;
        assert_eq!(
            check(Response::new(401, &[], expired), "202611"),
            Err(PublishError::AuthExpired(
                "LinkedIn answered HTTP 401 REVOKED_ACCESS_TOKEN: The token used in the request has been revoked by the user".into()
            ))
        );
        assert!(matches!(
            check(Response::new(429, &[("retry-after", "7")], "{}"), "202611"),
            Err(PublishError::RateLimited(l)) if l.retry_after_seconds == 7
        ));
        // Without Retry-After, until LinkedIn's daily limits reset (midnight UTC).
        assert!(matches!(
            check(Response::new(429, &[], "{}"), "202611"),
            Err(PublishError::RateLimited(l)) if (1..=86_400).contains(&l.retry_after_seconds)
        ));
        assert!(matches!(
            check(Response::new(504, &[], "gateway"), "202611"),
            Err(PublishError::Retryable(m)) if m.contains("gateway")
        ));
        assert!(matches!(
            check(Response::new(403, &[], r#"{"status":403,"code":"ACCESS_DENIED","message":"Not enough permissions"}"#), "202611"),
            Err(PublishError::Permanent(m)) if m.contains("ACCESS_DENIED")
        ));
    }

    #[test]
    fn a_duplicate_names_the_existing_post() {
        let body = r#"{"errorDetailType":"com.linkedin.common.error.BadRequest","code":"DUPLICATE_POST","message":"Content is a duplicate of urn:li:share:7154032271318302720","status":422}"#;
        assert_eq!(
            duplicate_of(&Response::new(422, &[], body)).as_deref(),
            Some("urn:li:share:7154032271318302720")
        );
        let ugc = r#"{"code":"DUPLICATE_POST","message":"Content is a duplicate of urn:li:ugcPost:42.","status":422}"#;
        assert_eq!(
            duplicate_of(&Response::new(422, &[], ugc)).as_deref(),
            Some("urn:li:ugcPost:42")
        );
        let other = r#"{"code":"UNPROCESSABLE_ENTITY","message":"Invalid author","status":422}"#;
        assert_eq!(duplicate_of(&Response::new(422, &[], other)), None);
        assert_eq!(duplicate_of(&Response::new(400, &[], body)), None);
    }

    #[test]
    fn daily_limits_reset_at_midnight_utc() {
        // 2026-12-05T08:00:00Z: 16 hours to go.
        assert_eq!(until_midnight_utc(1_796_457_600_000), 57_600);
        assert_eq!(until_midnight_utc(1_796_457_600_000 + 57_599_500), 1);
        // At midnight exactly, the next one.
        assert_eq!(until_midnight_utc(1_796_515_200_000), 86_400);
    }
}
