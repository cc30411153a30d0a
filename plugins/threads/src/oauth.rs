//! Threads Login (a Threads app has its own id and secret, apart from the Meta app's
//! Facebook Login): the authorize page (`https://threads.net/oauth/authorize`), the code
//! exchange (`POST https://graph.threads.net/oauth/access_token`, form-encoded) for a
//! short-lived token and the Threads user id, and at once its exchange for a long-lived
//! token (`GET /access_token?grant_type=th_exchange_token`), which lives 60 days.
//!
//! Threads gives no refresh token: a long-lived token is renewed with itself
//! (`GET /refresh_access_token?grant_type=th_refresh_token`) while it is valid and at
//! least a day old, for another 60 days. The credentials therefore record the token as
//! their refresh token too, so Herald knows the account can be renewed and does it before
//! the expiry (`expires_at`) instead of asking the user to reconnect. Threads Login takes
//! no PKCE: the verifier is not sent.
//!
//! The long-lived exchange and the refresh are `GET`s with the token (and, for the
//! exchange, the app secret) in the query, as Threads defines them; every message is
//! scrubbed of them.

use herald_plugin_sdk::http::{Request, Response, percent_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{Credentials, OauthClient, PublishError, time};
use serde::Deserialize;

use crate::api::{HOST, PLATFORM};

/// Where a user authorises the app.
pub const AUTHORIZE_URL: &str = "https://threads.net/oauth/authorize";
/// The permissions Herald asks for: the profile (id, username) and publishing.
pub const SCOPES: &str = "threads_basic,threads_content_publish";
/// The credential extra recording the Threads user id.
pub const USER_ID: &str = "user_id";
/// The credential extra recording the app's client id.
pub const CLIENT_ID: &str = "client_id";

/// The authorize URL for `client` and `state`.
pub fn authorize_url(client: &OauthClient, state: &str) -> String {
    let params = [
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", SCOPES),
        ("response_type", "code"),
        ("state", state),
    ];
    let query = params
        .iter()
        .map(|(key, value)| format!("{key}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{AUTHORIZE_URL}?{query}")
}

/// The code exchange's answer.
#[derive(Deserialize)]
struct ShortLived {
    access_token: String,
    /// The Threads user id (a number in JSON).
    #[serde(default)]
    user_id: Option<serde_json::Value>,
}

/// A long-lived token.
#[derive(Deserialize)]
struct LongLived {
    access_token: String,
    /// Seconds it lives (about 5,184,000).
    #[serde(default)]
    expires_in: Option<i64>,
}

/// What a token request is for: it decides what a refusal means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// Connecting: a refusal is the user's to retry (connect again).
    Connect,
    /// Renewing: a refused token means reconnecting.
    Refresh,
}

/// Exchanges `code` for a long-lived token.
pub fn exchange(
    client: &OauthClient,
    secret: &str,
    code: &str,
) -> Result<Credentials, PublishError> {
    let secrets = Secrets::new([code, secret]);
    let short = send(
        Request::post(format!("{HOST}/oauth/access_token")).form(&[
            ("client_id", client.client_id.as_str()),
            ("client_secret", secret),
            ("grant_type", "authorization_code"),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code", code),
        ]),
        Grant::Connect,
        &secrets,
    )?
    .json::<ShortLived>()?;
    let secrets = Secrets::new([code, secret, short.access_token.as_str()]);
    let sent_at = time::now_unix();
    let long = send(
        Request::get(format!(
            "{HOST}/access_token?grant_type=th_exchange_token&client_secret={}&access_token={}",
            percent_encode(secret),
            percent_encode(&short.access_token)
        )),
        Grant::Connect,
        &secrets,
    )?
    .json::<LongLived>()?;
    let mut extra = vec![(CLIENT_ID.to_owned(), client.client_id.clone())];
    if let Some(user) = short.user_id.as_ref().and_then(id_text) {
        extra.push((USER_ID.to_owned(), user));
    }
    Ok(credentials(long, sent_at, extra))
}

/// Renews the long-lived token of `previous` for another 60 days.
pub fn refresh(previous: &Credentials) -> Result<Credentials, PublishError> {
    let token = previous.access_token.as_str();
    let secrets = Secrets::new(std::iter::once(token).chain(previous.refresh_token.as_deref()));
    let sent_at = time::now_unix();
    let long = send(
        Request::get(format!(
            "{HOST}/refresh_access_token?grant_type=th_refresh_token&access_token={}",
            percent_encode(token)
        )),
        Grant::Refresh,
        &secrets,
    )?
    .json::<LongLived>()?;
    let extra = previous
        .extra
        .iter()
        .filter(|(key, _)| key != "client_secret")
        .cloned()
        .collect();
    Ok(credentials(long, sent_at, extra))
}

/// Credentials of a long-lived token issued at `sent_at` (the token is its own refresh
/// token, see the module's documentation).
fn credentials(long: LongLived, sent_at: u64, extra: Vec<(String, String)>) -> Credentials {
    let issued = i64::try_from(sent_at).unwrap_or(i64::MAX);
    Credentials {
        refresh_token: Some(long.access_token.clone()),
        access_token: long.access_token,
        expires_at: long
            .expires_in
            .map(|seconds| issued.saturating_add(seconds)),
        extra,
    }
}

/// A user id as text (Threads sends a number or a string).
fn id_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Sends a token request; a refusal is permanent when connecting (connect again) and a
/// reconnect when renewing; throttling and transient failures keep their meaning.
fn send(request: Request, grant: Grant, secrets: &Secrets) -> Result<Response, PublishError> {
    let response = request
        .send()
        .map_err(|error| PublishError::from(error).scrubbed(secrets))?;
    if response.is_success() {
        return Ok(response);
    }
    let error = match (herald_meta_graph::failure(&response, PLATFORM), grant) {
        (error @ (PublishError::Retryable(_) | PublishError::RateLimited(_)), _) => error,
        (PublishError::Permanent(message) | PublishError::AuthExpired(message), Grant::Connect) => {
            PublishError::Permanent(format!(
                "{message}; the code was refused (used, expired, or another redirect URI) or \
                 the Threads app's id or secret is wrong: connect again"
            ))
        }
        (PublishError::Permanent(message) | PublishError::AuthExpired(message), Grant::Refresh) => {
            PublishError::AuthExpired(format!(
                "{message}; Threads no longer renews this token: reconnect the account"
            ))
        }
        (other, _) => other,
    };
    Err(error.scrubbed(secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_asks_to_publish() {
        let client = OauthClient {
            client_id: "990".into(),
            client_secret: Some("s".into()),
            redirect_uri: "https://herald.example/oauth/threads/callback".into(),
        };
        assert_eq!(
            authorize_url(&client, "st/ate"),
            "https://threads.net/oauth/authorize?client_id=990\
             &redirect_uri=https%3A%2F%2Fherald.example%2Foauth%2Fthreads%2Fcallback\
             &scope=threads_basic%2Cthreads_content_publish&response_type=code&state=st%2Fate"
        );
    }

    #[test]
    fn a_long_lived_token_is_its_own_refresh_token() {
        let granted = credentials(
            LongLived {
                access_token: "THQ".into(),
                expires_in: Some(5_184_000),
            },
            1_000,
            vec![],
        );
        assert_eq!(granted.expires_at, Some(5_185_000));
        assert_eq!(granted.refresh_token.as_deref(), Some("THQ"));
    }
}
