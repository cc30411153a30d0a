//! X API v2's answers: the JSON shapes the plugin reads, and how a failed answer maps to
//! what Herald should do (the SDK's mapping plus X's own cases).

use herald_plugin_sdk::failure::Failure;
use herald_plugin_sdk::http::{Request, Response};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{PublishError, time};
use serde::Deserialize;

/// Where the API lives (the media upload and the token endpoint too).
pub const API: &str = "https://api.x.com";

/// `{"data": …}`, the envelope of every v2 answer.
#[derive(Deserialize)]
pub struct Data<T> {
    pub data: T,
}

/// `User` (`GET /2/users/me`), the fields Herald keeps.
#[derive(Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `CreatePostsResponseData` (`POST /2/tweets`).
#[derive(Deserialize)]
pub struct Created {
    pub id: String,
}

/// `Post` with `tweet.fields=public_metrics` (`GET /2/tweets/{id}`).
#[derive(Deserialize)]
pub struct Measured {
    pub public_metrics: PublicMetrics,
}

/// `PostPublicMetrics` (all required by the spec).
#[derive(Deserialize)]
pub struct PublicMetrics {
    pub like_count: i64,
    pub repost_count: i64,
    pub reply_count: i64,
    pub quote_count: i64,
    pub bookmark_count: i64,
    pub impression_count: i64,
}

/// `Post` as `GET /2/users/{id}/tweets` lists it with `tweet.fields=attachments`.
#[derive(Deserialize)]
pub struct Listed {
    pub id: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub attachments: Option<Attachments>,
}

/// `PostAttachments`.
#[derive(Deserialize, Default)]
pub struct Attachments {
    #[serde(default)]
    pub media_keys: Vec<String>,
}

/// `GetUsersPostsResponse`: `data` is absent when the account has no posts.
#[derive(Deserialize)]
pub struct Timeline {
    #[serde(default)]
    pub data: Vec<Listed>,
}

/// An error body: a `Problem` (`title`, `detail`, `type`) or the older
/// `{"errors": [{"message"}]}`; X sends either.
#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<ProblemItem>,
}

#[derive(Deserialize, Default)]
struct ProblemItem {
    #[serde(default)]
    message: String,
}

impl Problem {
    fn text(&self) -> Option<&str> {
        [self.detail.as_str(), self.title.as_str()]
            .into_iter()
            .chain(self.errors.iter().map(|item| item.message.as_str()))
            .find(|text| !text.trim().is_empty())
    }
}

/// Sends `request` with the account's token; a failure is mapped by [`check`] and
/// `secrets` are scrubbed from its message.
pub fn call(request: Request, token: &str, secrets: &Secrets) -> Result<Response, PublishError> {
    request
        .bearer(token)
        .send()
        .map_err(PublishError::from)
        .and_then(check)
        .map_err(|error| error.scrubbed(secrets))
}

/// Whether X refused a post as a duplicate of one the account already has (403 "You are
/// not allowed to create a Tweet with duplicate content."): after a lost answer it
/// usually means the earlier attempt went through.
pub fn is_duplicate(response: &Response) -> bool {
    response.status == 403
        && serde_json::from_slice::<Problem>(&response.body)
            .ok()
            .and_then(|problem| problem.text().map(str::to_ascii_lowercase))
            .is_some_and(|text| text.contains("duplicate content"))
}

/// Keeps a 2xx answer; maps the others with the SDK's mapping, worded with X's own
/// message, and X's cases: 402 (the developer account's pay-per-use credit is spent) is
/// permanent and says so; a post cap reached (`x-user-limit-24hour-remaining: 0`, or the
/// app's `x-app-limit-24hour-remaining: 0`) waits until that cap resets, not until the
/// 15-minute window's `x-rate-limit-reset`.
pub fn check(response: Response) -> Result<Response, PublishError> {
    response.error_for_status_with(|failure| {
        let problem = failure.json::<Problem>().unwrap_or_default();
        let said = problem
            .text()
            .map(str::to_owned)
            .unwrap_or_else(|| failure.response().text());
        if failure.status() == 402 {
            return PublishError::Permanent(format!(
                "X refused the request with 402 Payment Required: the X developer account \
                 has no API credit left (pay-per-use balance empty). Add credit in the X \
                 developer console, then retry the post. X said: {said}"
            ));
        }
        let message = format!("X answered HTTP {}: {said}", failure.status());
        let wait = daily_cap_wait(&failure);
        failure.message(message).retry_after(wait).into_error()
    })
}

/// Seconds until the 24-hour post cap that is exhausted resets, on X's clock.
fn daily_cap_wait(failure: &Failure<'_>) -> Option<u32> {
    let response = failure.response();
    let now = time::now_unix_millis();
    let clock = response.server_clock(now);
    ["x-user-limit-24hour", "x-app-limit-24hour"]
        .into_iter()
        .filter(|prefix| {
            response
                .header(&format!("{prefix}-remaining"))
                .is_some_and(|remaining| remaining.trim() == "0")
        })
        .filter_map(|prefix| response.header(&format!("{prefix}-reset")))
        .filter_map(|reset| reset.trim().parse::<i64>().ok())
        .map(|reset| clock.seconds_until(reset.saturating_mul(1000), now))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::RateLimit;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response::new(status, headers, body)
    }

    #[test]
    fn no_api_credit_is_permanent_and_names_the_cause() {
        let body = r#"{"title":"CreditsDepleted","detail":"Your enrolled account [1] does not have any credits to fulfill this request.","type":"https://api.twitter.com/2/problems/credits"}"#;
        match check(answer(402, &[], body)) {
            Err(PublishError::Permanent(message)) => {
                assert!(message.contains("402 Payment Required"), "{message}");
                assert!(message.contains("no API credit"), "{message}");
                assert!(message.contains("does not have any credits"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn statuses_map_as_the_sdk_says_worded_with_xs_message() {
        let problem =
            r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#;
        assert_eq!(
            check(answer(401, &[], problem)),
            Err(PublishError::AuthExpired(
                "X answered HTTP 401: Unauthorized".into()
            ))
        );
        assert!(matches!(
            check(answer(503, &[], "{}")),
            Err(PublishError::Retryable(_))
        ));
        let old = r#"{"errors":[{"message":"You are not permitted to perform this action."}]}"#;
        assert_eq!(
            check(answer(403, &[], old)),
            Err(PublishError::Permanent(
                "X answered HTTP 403: You are not permitted to perform this action.".into()
            ))
        );
    }

    #[test]
    fn rate_limits_wait_until_the_epoch_reset_on_xs_clock() {
        let date = "Sat, 05 Dec 2026 08:00:00 GMT";
        let at = 1_796_457_600; // the same instant, Unix seconds
        let reset = (at + 90).to_string();
        let limited = check(answer(
            429,
            &[
                ("date", date),
                ("x-rate-limit-remaining", "0"),
                ("x-rate-limit-reset", &reset),
            ],
            r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#,
        ));
        assert_eq!(
            limited,
            Err(PublishError::RateLimited(RateLimit {
                retry_after_seconds: 90,
                message: "X answered HTTP 429: Too Many Requests".into()
            }))
        );
        // The daily post cap: its own reset, not the 15-minute window's.
        let daily = (at + 7_200).to_string();
        let capped = check(answer(
            429,
            &[
                ("date", date),
                ("x-rate-limit-reset", &reset),
                ("x-user-limit-24hour-remaining", "0"),
                ("x-user-limit-24hour-reset", &daily),
            ],
            "{}",
        ));
        assert!(
            matches!(capped, Err(PublishError::RateLimited(ref l)) if l.retry_after_seconds == 7_200),
            "{capped:?}"
        );
    }

    #[test]
    fn duplicate_content_is_recognised() {
        let duplicate = r#"{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}"#;
        assert!(is_duplicate(&answer(403, &[], duplicate)));
        assert!(!is_duplicate(&answer(
            403,
            &[],
            r#"{"detail":"Forbidden"}"#
        )));
        assert!(!is_duplicate(&answer(400, &[], duplicate)));
    }
}
