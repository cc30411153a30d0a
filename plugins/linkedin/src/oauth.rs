//! OAuth 2.0 authorization code ("3-legged") against LinkedIn: the authorize URL
//! (`https://www.linkedin.com/oauth/v2/authorization`), the code exchange and, for the
//! partner apps LinkedIn gives refresh tokens to, the refresh (`POST
//! https://www.linkedin.com/oauth/v2/accessToken`, form-encoded, the client id and secret
//! in the form). LinkedIn offers PKCE only to approved native apps: a standard web app
//! ignores a challenge, so the plugin accepts the caller's challenge and verifier and
//! sends neither. Access tokens live 60 days; without a refresh token the account must
//! then be reconnected.
//!
//! `refresh-token` gets only the account's credentials, so the exchange records the
//! client id in the extra `client_id`; the secret is not stored with the account: the
//! caller lends it as the extra `client_secret` when it refreshes.

use herald_plugin_sdk::http::{Request, Response, percent_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{Credentials, OauthClient, PublishError, time};
use serde::Deserialize;

/// Where a user authorises the app.
pub const AUTHORIZE_URL: &str = "https://www.linkedin.com/oauth/v2/authorization";
/// The token endpoint.
pub const TOKEN_URL: &str = "https://www.linkedin.com/oauth/v2/accessToken";
/// The scopes Herald asks for: the member's id and name (`openid profile`, for
/// `/v2/userinfo`) and posting as the member (`w_member_social`).
pub const SCOPES: &str = "openid profile w_member_social";
/// The credential extra holding the OAuth client id (needed to refresh).
pub const CLIENT_ID: &str = "client_id";
/// The credential extra a caller sets to the client secret when refreshing.
pub const CLIENT_SECRET: &str = "client_secret";

/// The URL to send the user to (no PKCE: see the module's documentation).
pub fn authorize_url(client: &OauthClient, state: &str) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("state", state),
        ("scope", SCOPES),
    ];
    let query = params
        .iter()
        .map(|(key, value)| format!("{key}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{AUTHORIZE_URL}?{query}")
}

/// A token request: `grant` plus the client's id and secret, in the form.
pub fn token_request(client_id: &str, client_secret: &str, grant: &[(&str, &str)]) -> Request {
    let mut fields = grant.to_vec();
    fields.push(("client_id", client_id));
    fields.push(("client_secret", client_secret));
    Request::post(TOKEN_URL).form(&fields)
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    /// Seconds the access token lives (LinkedIn: 5,184,000, 60 days).
    #[serde(default)]
    expires_in: Option<i64>,
    /// Only for partner apps with programmatic refresh.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The token endpoint's error (RFC 6749 §5.2).
#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// What a token request is for: it decides what a refusal means.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Exchanging a code: a refusal is the user's to retry (connect again).
    Code,
    /// Refreshing: a refused refresh token means the account must be reconnected.
    Refresh,
}

/// Sends a token request and reads the credentials it grants; `previous` are the
/// credentials refreshed (their refresh token is kept if LinkedIn sends none, their
/// extras are kept). `secrets` are scrubbed from errors.
pub fn send(
    request: Request,
    grant: Grant,
    previous: Option<&Credentials>,
    client_id: &str,
    secrets: &Secrets,
) -> Result<Credentials, PublishError> {
    let sent_at = time::now_unix();
    request
        .send()
        .map_err(PublishError::from)
        .and_then(|response| check(response, grant))
        .and_then(|response| response.json::<Tokens>())
        .map(|tokens| credentials(tokens, previous, client_id, sent_at))
        .map_err(|error| error.scrubbed(secrets))
}

fn credentials(
    tokens: Tokens,
    previous: Option<&Credentials>,
    client_id: &str,
    sent_at: u64,
) -> Credentials {
    let mut extra: Vec<(String, String)> = previous
        .map(|credentials| {
            credentials
                .extra
                .iter()
                .filter(|(key, _)| key != CLIENT_ID && key != CLIENT_SECRET)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    extra.push((CLIENT_ID.to_owned(), client_id.to_owned()));
    let issued = i64::try_from(sent_at).unwrap_or(i64::MAX);
    Credentials {
        access_token: tokens.access_token,
        refresh_token: tokens
            .refresh_token
            .filter(|token| !token.is_empty())
            .or_else(|| previous.and_then(|credentials| credentials.refresh_token.clone())),
        expires_at: tokens
            .expires_in
            .map(|seconds| issued.saturating_add(seconds)),
        extra,
    }
}

/// Maps a token endpoint's refusal: a refresh token LinkedIn no longer accepts
/// (`invalid_grant`, `invalid_request`) means reconnecting; the app's own credentials
/// refused (`invalid_client`, `unauthorized_client`) is the operator's to fix and says
/// so; the rest as the SDK maps statuses (5xx and 429 are retried, so a transient failure
/// never disconnects).
fn check(response: Response, grant: Grant) -> Result<Response, PublishError> {
    response.error_for_status_with(|failure| {
        let body = failure.json::<TokenError>().unwrap_or_default();
        let said = if body.error_description.is_empty() {
            body.error.clone()
        } else {
            format!("{} ({})", body.error_description, body.error)
        };
        let message = format!(
            "LinkedIn's token endpoint answered HTTP {}: {said}",
            failure.status()
        );
        match (body.error.as_str(), grant) {
            ("invalid_client" | "unauthorized_client", _) => PublishError::Permanent(format!(
                "{message}; the LinkedIn app's client id or secret is wrong"
            )),
            ("invalid_grant" | "invalid_request", Grant::Refresh) => {
                PublishError::AuthExpired(format!(
                    "{message}; LinkedIn no longer accepts the refresh token: reconnect the \
                     account"
                ))
            }
            ("invalid_grant" | "invalid_request", Grant::Code) => PublishError::Permanent(format!(
                "{message}; the authorisation code was refused (used, expired, or another \
                 redirect URI): connect again"
            )),
            _ => failure.message(message).into_error(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_asks_for_the_member_scopes_without_pkce() {
        let client = OauthClient {
            client_id: "cl1ent".into(),
            client_secret: Some("s".into()),
            redirect_uri: "https://herald.example/oauth/linkedin/callback".into(),
        };
        assert_eq!(
            authorize_url(&client, "st/ate"),
            "https://www.linkedin.com/oauth/v2/authorization?response_type=code\
             &client_id=cl1ent\
             &redirect_uri=https%3A%2F%2Fherald.example%2Foauth%2Flinkedin%2Fcallback\
             &state=st%2Fate&scope=openid%20profile%20w_member_social"
        );
    }

    #[test]
    fn granted_credentials_expire_and_keep_what_linkedin_did_not_resend() {
        let granted = credentials(
            Tokens {
                access_token: "a1".into(),
                expires_in: Some(5_184_000),
                refresh_token: None,
            },
            None,
            "cl1ent",
            1_000,
        );
        assert_eq!(granted.expires_at, Some(5_185_000));
        assert_eq!(granted.refresh_token, None);
        assert_eq!(
            granted.extra,
            vec![("client_id".to_owned(), "cl1ent".to_owned())]
        );
        let previous = Credentials {
            refresh_token: Some("r1".into()),
            extra: vec![
                ("client_secret".into(), "lent".into()),
                ("author".into(), "urn:li:organization:5".into()),
            ],
            ..granted
        };
        let refreshed = credentials(
            Tokens {
                access_token: "a2".into(),
                expires_in: Some(60),
                refresh_token: None,
            },
            Some(&previous),
            "cl1ent",
            2_000,
        );
        assert_eq!(refreshed.refresh_token.as_deref(), Some("r1"));
        assert_eq!(
            refreshed.extra,
            vec![
                ("author".to_owned(), "urn:li:organization:5".to_owned()),
                ("client_id".to_owned(), "cl1ent".to_owned())
            ],
            "the lent secret is not stored back"
        );
    }

    #[test]
    fn refusals_say_what_to_do() {
        let refused = |status, body: &str, grant| check(Response::new(status, &[], body), grant);
        let invalid = r#"{"error":"invalid_request","error_description":"The provided authorization grant or refresh token is invalid, expired or revoked."}"#;
        assert!(matches!(
            refused(400, invalid, Grant::Refresh),
            Err(PublishError::AuthExpired(m)) if m.contains("reconnect")
        ));
        assert!(matches!(
            refused(400, invalid, Grant::Code),
            Err(PublishError::Permanent(m)) if m.contains("connect again")
        ));
        assert!(matches!(
            refused(401, r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#, Grant::Code),
            Err(PublishError::Permanent(m)) if m.contains("client id or secret")
        ));
        assert!(matches!(
            refused(503, "", Grant::Refresh),
            Err(PublishError::Retryable(_))
        ));
    }
}
