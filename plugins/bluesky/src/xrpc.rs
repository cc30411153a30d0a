//! XRPC calls to the account's PDS and the mapping of its errors onto what Herald does.

use herald_plugin_sdk::failure::{Failure, Kind};
use herald_plugin_sdk::http::{Body, Request, Response, percent_encode};
use herald_plugin_sdk::{PublishError, time};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A PDS, by its base URL (`https://bsky.social`).
pub struct Pds<'a> {
    /// Base URL without a trailing slash.
    pub service: &'a str,
}

/// The body of an XRPC error answer.
#[derive(Deserialize, Default)]
struct XrpcError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

/// A session: what createSession and refreshSession answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Short-lived token for calls.
    pub access_jwt: String,
    /// Long-lived token for refreshSession.
    pub refresh_jwt: String,
    /// The account's DID.
    pub did: String,
    /// The account's handle.
    pub handle: String,
}

impl Pds<'_> {
    fn url(&self, method: &str) -> String {
        format!("{}/xrpc/{method}", self.service)
    }

    /// A query (GET) with URL-encoded parameters; `token` authenticates it when given.
    pub fn query(
        &self,
        method: &str,
        params: &[(&str, &str)],
        token: Option<&str>,
    ) -> Result<Response, PublishError> {
        let query = params
            .iter()
            .map(|(key, value)| format!("{key}={}", percent_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = Request::get(format!("{}?{query}", self.url(method)));
        if let Some(token) = token {
            request = request.bearer(token);
        }
        Ok(request.send()?)
    }

    /// A procedure (POST) with a JSON body.
    pub fn procedure(
        &self,
        method: &str,
        body: &serde_json::Value,
        token: Option<&str>,
    ) -> Result<Response, PublishError> {
        send(Request::post(self.url(method)).json(body), token)
    }

    /// A procedure (POST) without input, such as `refreshSession`: no body at all, as
    /// the PDS refuses a body where its lexicon expects none.
    pub fn procedure_without_input(
        &self,
        method: &str,
        token: Option<&str>,
    ) -> Result<Response, PublishError> {
        send(Request::post(self.url(method)), token)
    }

    /// A procedure (POST) whose body is the current post's media at `index`.
    pub fn upload(
        &self,
        method: &str,
        index: u32,
        mime_type: &str,
        token: &str,
    ) -> Result<Response, PublishError> {
        Ok(Request::post(self.url(method))
            .bearer(token)
            .header("content-type", mime_type)
            .body(Body::MediaRef(index))
            .send()?)
    }
}

/// The XRPC error name of a failed answer (`RecordNotFound`, `ExpiredToken`…), if any.
pub fn error_name(response: &Response) -> String {
    serde_json::from_slice::<XrpcError>(&response.body)
        .map(|error| error.error)
        .unwrap_or_default()
}

/// Parses a 2xx answer as `T`, or maps the failure with [`error`].
pub fn parse<T: DeserializeOwned>(response: Response) -> Result<T, PublishError> {
    if response.is_success() {
        response.json()
    } else {
        Err(error(&response))
    }
}

/// What Herald should do about a failed XRPC answer: the SDK's mapping, with the PDS's
/// own cases: 400 `ExpiredToken`/`InvalidToken` → refresh or reconnect, a rate limit
/// waits until `ratelimit-reset` (see [`retry_after`]), messages name the XRPC error.
pub fn error(response: &Response) -> PublishError {
    let body: XrpcError = serde_json::from_slice(&response.body).unwrap_or_default();
    let name = if body.error.is_empty() {
        format!("HTTP {}", response.status)
    } else {
        body.error.clone()
    };
    let message = if body.message.is_empty() {
        name.clone()
    } else {
        format!("{name}: {}", body.message)
    };
    let failure = Failure::new(response)
        .message(message)
        .retry_after(Some(retry_after(response, time::now_unix())));
    match (response.status, body.error.as_str()) {
        (400, "ExpiredToken" | "InvalidToken") => failure.error(Kind::AuthExpired),
        _ => failure.into_error(),
    }
}

/// Seconds until `ratelimit-reset`, which a PDS sends as Unix seconds (not the delta
/// seconds of the IETF draft the SDK reads), else the SDK's reading of the other headers
/// and its default.
fn retry_after(response: &Response, now_unix: u64) -> u32 {
    let reset = response
        .header("ratelimit-reset")
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(|reset| u32::try_from(reset.saturating_sub(now_unix)).unwrap_or(u32::MAX));
    response.wait_seconds(reset, now_unix)
}

/// Sends `request`, with `token` as its bearer when given.
fn send(mut request: Request, token: Option<&str>) -> Result<Response, PublishError> {
    if let Some(token) = token {
        request = request.bearer(token);
    }
    Ok(request.send()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::failure::DEFAULT_RETRY_SECONDS;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response::new(status, headers, body)
    }

    #[test]
    fn xrpc_errors_map_to_what_herald_does() {
        let expired = answer(
            400,
            &[],
            r#"{"error":"ExpiredToken","message":"Token has expired"}"#,
        );
        assert_eq!(
            error(&expired),
            PublishError::AuthExpired("ExpiredToken: Token has expired".into())
        );
        let invalid = answer(400, &[], r#"{"error":"InvalidToken","message":"bad"}"#);
        assert!(matches!(error(&invalid), PublishError::AuthExpired(_)));
        let unauthorized = answer(401, &[], r#"{"error":"AuthenticationRequired"}"#);
        assert!(matches!(error(&unauthorized), PublishError::AuthExpired(_)));
        let bad = answer(
            400,
            &[],
            r#"{"error":"InvalidRequest","message":"Invalid record"}"#,
        );
        assert_eq!(
            error(&bad),
            PublishError::Permanent("InvalidRequest: Invalid record".into())
        );
        let down = answer(502, &[], "<html>bad gateway</html>");
        assert_eq!(error(&down), PublishError::Retryable("HTTP 502".into()));
        let limited = answer(
            429,
            &[("ratelimit-reset", &(time::now_unix() + 30).to_string())],
            r#"{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}"#,
        );
        match error(&limited) {
            PublishError::RateLimited(limit) => {
                assert!(
                    (29..=30).contains(&limit.retry_after_seconds),
                    "{}",
                    limit.retry_after_seconds
                );
                assert_eq!(limit.message, "RateLimitExceeded: Rate Limit Exceeded");
            }
            other => panic!("not rate limited: {other:?}"),
        }
    }

    #[test]
    fn rate_limit_delay_comes_from_the_reset_time() {
        assert_eq!(
            retry_after(&answer(429, &[("ratelimit-reset", "1060")], ""), 1000),
            60
        );
        assert_eq!(
            retry_after(&answer(429, &[("ratelimit-reset", "900")], ""), 1000),
            0
        );
        assert_eq!(
            retry_after(&answer(429, &[("retry-after", "7")], ""), 1000),
            7
        );
        assert_eq!(
            retry_after(&answer(429, &[], ""), 1000),
            DEFAULT_RETRY_SECONDS
        );
    }
}
