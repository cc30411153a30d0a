//! Instagram Login (the Instagram API with Instagram Login, Business Login for Instagram):
//!
//! 1. the user authorises the app at [`AUTHORIZE_URL`] (scopes [`SCOPES`], the caller's
//!    `state`; Instagram Login has no PKCE, so the challenge is accepted and not sent);
//! 2. the code is exchanged at [`CODE_URL`] (form: client id and secret, `redirect_uri`,
//!    `code`) for a short-lived token (one hour) and the user's id;
//! 3. that token is exchanged at once for a long-lived one (60 days):
//!    `GET graph.instagram.com/access_token?grant_type=ig_exchange_token&client_secret=…`
//!    (these two token endpoints take the token in the query, as Instagram documents them;
//!    every other call sends it as a bearer header);
//! 4. `refresh-token` renews a long-lived token before it ends:
//!    `GET graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token` with the
//!    token itself (it must be at least 24 hours old and unexpired; Instagram has no refresh
//!    token). The credentials therefore carry the long-lived token as their refresh token
//!    as well, which tells Herald's token lifecycle that the account can be renewed; each
//!    refresh sets `expires_at` from Instagram's `expires_in`.
//!
//! The exchange records the app's client id (extra `client_id`) and the professional
//! account (extra `ig_user`, from `GET /me?fields=user_id`).

use herald_plugin_sdk::http::{Request, Response, percent_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{Credentials, OauthClient, PublishError, time};
use serde::Deserialize;

use crate::graph::{Graph, IG_USER_KEY, INSTAGRAM_GRAPH};

/// Where a user authorises the app.
pub const AUTHORIZE_URL: &str = "https://www.instagram.com/oauth/authorize";
/// Where a code becomes a short-lived token.
pub const CODE_URL: &str = "https://api.instagram.com/oauth/access_token";
/// What Herald asks for: the account's profile and publishing (comma-separated, as
/// Instagram writes them).
pub const SCOPES: &str = "instagram_business_basic,instagram_business_content_publish";
/// The credential extra holding the OAuth client id.
pub const CLIENT_ID: &str = "client_id";
/// The credential extra a caller lends the client secret in (never stored).
pub const CLIENT_SECRET: &str = "client_secret";

/// The URL to send the user to.
pub fn authorize_url(client: &OauthClient, state: &str) -> String {
    let params = [
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", SCOPES),
        ("state", state),
    ];
    let query = params
        .iter()
        .map(|(key, value)| format!("{key}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{AUTHORIZE_URL}?{query}")
}

/// The code exchange's answer (older apps get it bare, newer ones inside `data`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ShortLived {
    Listed { data: Vec<ShortToken> },
    Bare(ShortToken),
}

#[derive(Deserialize)]
struct ShortToken {
    access_token: String,
}

/// A long-lived token (`ig_exchange_token` and `ig_refresh_token` answers).
#[derive(Deserialize)]
struct LongLived {
    access_token: String,
    /// Seconds it lives (about 60 days).
    expires_in: i64,
}

/// The code endpoint's refusal: `{"error_type", "code", "error_message"}`.
#[derive(Deserialize, Default)]
struct CodeError {
    #[serde(default)]
    error_type: String,
    #[serde(default)]
    error_message: String,
}

/// Exchanges `code` for a long-lived token and names the professional account.
pub fn exchange(client: &OauthClient, code: &str) -> Result<Credentials, PublishError> {
    let secret = client
        .client_secret
        .as_deref()
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| {
            PublishError::Permanent(
                "Instagram needs the app's client secret to exchange a code".into(),
            )
        })?;
    let secrets = Secrets::new([code, secret]);
    let sent = Request::post(CODE_URL)
        .form(&[
            ("client_id", client.client_id.as_str()),
            ("client_secret", secret),
            ("grant_type", "authorization_code"),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code", code),
        ])
        .send()
        .map_err(|error| PublishError::from(error).scrubbed(&secrets))?;
    let short = match code_refused(sent)? {
        ShortLived::Listed { data } => data.into_iter().next().ok_or_else(|| {
            PublishError::Permanent("Instagram's code exchange granted no token".into())
        })?,
        ShortLived::Bare(token) => token,
    };
    let secrets = Secrets::new([code, secret, short.access_token.as_str()]);
    let issued = time::now_unix();
    let long = Request::get(token_url(
        "access_token",
        &[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", secret),
            ("access_token", &short.access_token),
        ],
    ))
    .send()
    .map_err(PublishError::from)
    .and_then(|response| granted(response, Grant::Code))
    .map_err(|error| error.scrubbed(&secrets))?;
    let mut credentials = credentials(long, issued, vec![]);
    credentials
        .extra
        .push((CLIENT_ID.to_owned(), client.client_id.clone()));
    let me = Graph::of(&credentials).me()?;
    credentials
        .extra
        .push((IG_USER_KEY.to_owned(), me.account_id()));
    Ok(credentials)
}

/// Renews the long-lived token of `previous` (extras kept, a lent secret dropped).
pub fn refresh(previous: &Credentials) -> Result<Credentials, PublishError> {
    let secrets =
        Secrets::new(std::iter::once(&previous.access_token).chain(&previous.refresh_token));
    let token = previous
        .refresh_token
        .as_deref()
        .unwrap_or(&previous.access_token);
    let issued = time::now_unix();
    let long = Request::get(token_url(
        "refresh_access_token",
        &[("grant_type", "ig_refresh_token"), ("access_token", token)],
    ))
    .send()
    .map_err(PublishError::from)
    .and_then(|response| granted(response, Grant::Refresh))
    .map_err(|error| error.scrubbed(&secrets))?;
    let extra = previous
        .extra
        .iter()
        .filter(|(key, _)| key != CLIENT_SECRET)
        .cloned()
        .collect();
    Ok(credentials(long, issued, extra))
}

/// An unversioned token endpoint on `graph.instagram.com` with `query`.
fn token_url(path: &str, query: &[(&str, &str)]) -> String {
    let query = query
        .iter()
        .map(|(key, value)| format!("{key}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{INSTAGRAM_GRAPH}/{path}?{query}")
}

fn credentials(long: LongLived, issued: u64, extra: Vec<(String, String)>) -> Credentials {
    let issued = i64::try_from(issued).unwrap_or(i64::MAX);
    Credentials {
        refresh_token: Some(long.access_token.clone()),
        access_token: long.access_token,
        expires_at: Some(issued.saturating_add(long.expires_in)),
        extra,
    }
}

/// What a token request is for: it decides what a refusal means.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Grant {
    /// Connecting: a refusal is the user's to retry.
    Code,
    /// Renewing: a refused token means reconnecting.
    Refresh,
}

/// The code endpoint's answer, or what its refusal means.
fn code_refused(response: Response) -> Result<ShortLived, PublishError> {
    if response.is_success() {
        return response.json::<ShortLived>();
    }
    if response.status >= 500 || response.status == 429 {
        return Err(herald_meta_graph::failure(&response, "Instagram"));
    }
    let said = serde_json::from_slice::<CodeError>(&response.body).unwrap_or_default();
    Err(PublishError::Permanent(format!(
        "Instagram refused the authorisation code (HTTP {}: {} {}): connect again; if it \
         keeps failing, check the app's client id, secret and redirect URI",
        response.status, said.error_type, said.error_message
    )))
}

/// A long-lived token from `response`, or what its refusal means: on a refresh, a token
/// Instagram no longer takes (code 190) asks to reconnect; on a connect, it is the
/// user's to try again; throttling and server errors are retried either way.
fn granted(response: Response, grant: Grant) -> Result<LongLived, PublishError> {
    if response.is_success() {
        return response.json::<LongLived>();
    }
    match (herald_meta_graph::failure(&response, "Instagram"), grant) {
        (PublishError::AuthExpired(message), Grant::Refresh) => Err(PublishError::AuthExpired(
            format!("{message}; Instagram no longer renews the token: reconnect the account"),
        )),
        (PublishError::AuthExpired(message), Grant::Code) => {
            Err(PublishError::Permanent(format!("{message}; connect again")))
        }
        (error, _) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_asks_for_the_business_scopes() {
        let client = OauthClient {
            client_id: "99".into(),
            client_secret: Some("s".into()),
            redirect_uri: "https://herald.example/oauth/instagram/callback".into(),
        };
        assert_eq!(
            authorize_url(&client, "st/ate"),
            "https://www.instagram.com/oauth/authorize?client_id=99\
             &redirect_uri=https%3A%2F%2Fherald.example%2Foauth%2Finstagram%2Fcallback\
             &response_type=code\
             &scope=instagram_business_basic%2Cinstagram_business_content_publish\
             &state=st%2Fate"
        );
    }

    #[test]
    fn a_long_lived_token_is_its_own_refresh_credential() {
        let granted = credentials(
            LongLived {
                access_token: "IGAA".into(),
                expires_in: 5_184_000,
            },
            1_000,
            vec![("ig_user".into(), "1784".into())],
        );
        assert_eq!(granted.expires_at, Some(5_185_000));
        assert_eq!(granted.refresh_token.as_deref(), Some("IGAA"));
        assert_eq!(granted.extra, vec![("ig_user".into(), "1784".into())]);
    }

    #[test]
    fn refusals_say_what_to_do() {
        let expired = Response::new(
            400,
            &[],
            r#"{"error":{"message":"Error validating access token","type":"OAuthException","code":190,"fbtrace_id":"A"}}"#,
        );
        assert!(matches!(
            granted(expired.clone(), Grant::Refresh),
            Err(PublishError::AuthExpired(m)) if m.contains("reconnect")
        ));
        assert!(matches!(
            granted(expired, Grant::Code),
            Err(PublishError::Permanent(m)) if m.contains("connect again")
        ));
        assert!(matches!(
            granted(Response::new(503, &[], "down"), Grant::Refresh),
            Err(PublishError::Retryable(_))
        ));
        let refused = Response::new(
            400,
            &[],
            r#"{"error_type":"OAuthException","code":400,"error_message":"Invalid authorization code"}"#,
        );
        assert!(matches!(
            code_refused(refused),
            Err(PublishError::Permanent(m)) if m.contains("Invalid authorization code")
        ));
    }
}
