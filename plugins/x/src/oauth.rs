//! OAuth 2.0 authorization code with PKCE (S256) against X: the authorize URL, the code
//! exchange and the refresh (`POST /2/oauth2/token`). X's refresh tokens are single-use and
//! rotate: every refresh answers a new one, which the caller must store before anything
//! else uses the account.
//!
//! A public client (no secret) names itself with `client_id` in the form; a confidential
//! client authenticates with HTTP Basic (`client_id:client_secret`). `refresh-token` gets
//! only the account's credentials, so the exchange records the client id in the extra
//! `client_id`; a confidential client's secret is not stored with the account: the caller
//! adds it as the extra `client_secret` when it refreshes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_plugin_sdk::http::{Request, Response, percent_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{Credentials, OauthClient, PublishError, time};
use serde::Deserialize;

use crate::api::API;

/// Where a user authorises the app.
pub const AUTHORIZE_URL: &str = "https://x.com/i/oauth2/authorize";
/// The scopes Herald asks for: post and read posts (`tweet.*`, `users.read` for the
/// account's name and its own posts), upload media, and a refresh token
/// (`offline.access`).
pub const SCOPES: &str = "tweet.read tweet.write users.read media.write offline.access";
/// The credential extra holding the OAuth client id (needed to refresh).
pub const CLIENT_ID: &str = "client_id";
/// The credential extra a caller sets to a confidential client's secret when refreshing.
pub const CLIENT_SECRET: &str = "client_secret";

/// The URL to send the user to.
pub fn authorize_url(client: &OauthClient, state: &str, challenge: &str) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", SCOPES),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let query = params
        .iter()
        .map(|(key, value)| format!("{key}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{AUTHORIZE_URL}?{query}")
}

/// The token request for `grant` (form fields), authenticated as `client_id` with
/// `client_secret` when it is a confidential client.
pub fn token_request(
    client_id: &str,
    client_secret: Option<&str>,
    grant: &[(&str, &str)],
) -> Request {
    let (authorization, fields) = token_form(client_id, client_secret, grant);
    let request = Request::post(format!("{API}/2/oauth2/token"));
    match authorization {
        Some(value) => request.header("authorization", value),
        None => request,
    }
    .form(&fields)
}

/// The `Authorization` header (confidential clients) and the form fields of a token
/// request.
fn token_form<'a>(
    client_id: &'a str,
    client_secret: Option<&str>,
    grant: &[(&'a str, &'a str)],
) -> (Option<String>, Vec<(&'a str, &'a str)>) {
    let mut fields = grant.to_vec();
    match client_secret {
        Some(secret) => (
            Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{client_id}:{secret}").as_bytes())
            )),
            fields,
        ),
        None => {
            fields.push(("client_id", client_id));
            (None, fields)
        }
    }
}

/// The exchange of an authorisation `code` (with its PKCE `verifier`).
pub fn exchange_request(client: &OauthClient, code: &str, verifier: &str) -> Request {
    token_request(
        &client.client_id,
        client.client_secret.as_deref().filter(|s| !s.is_empty()),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Seconds the access token lives (X: 7200).
    #[serde(default)]
    expires_in: Option<i64>,
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
/// credentials refreshed (their refresh token is kept if X sends none, their extras are
/// kept). `secrets` are scrubbed from errors.
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

/// Maps a token endpoint's refusal: a refresh token X no longer accepts
/// (`invalid_grant`, or `invalid_request` "Value passed for the token was invalid") means
/// reconnecting; the app's own credentials refused (`invalid_client`,
/// `unauthorized_client`) is the operator's to fix and says so; the rest as the SDK maps
/// statuses (5xx and 429 are retried, so a transient failure never disconnects).
fn check(response: Response, grant: Grant) -> Result<Response, PublishError> {
    response.error_for_status_with(|failure| {
        let body = failure.json::<TokenError>().unwrap_or_default();
        let said = if body.error_description.is_empty() {
            body.error.clone()
        } else {
            format!("{} ({})", body.error_description, body.error)
        };
        let message = format!(
            "X's token endpoint answered HTTP {}: {said}",
            failure.status()
        );
        match (body.error.as_str(), grant) {
            ("invalid_client" | "unauthorized_client", _) => PublishError::Permanent(format!(
                "{message}; the X app's client id or secret is wrong"
            )),
            ("invalid_grant" | "invalid_request", Grant::Refresh) => PublishError::AuthExpired(
                format!("{message}; X no longer accepts the refresh token: reconnect the account"),
            ),
            ("invalid_grant" | "invalid_request", Grant::Code) => PublishError::Permanent(format!(
                "{message}; the authorisation code or its PKCE verifier was refused: connect again"
            )),
            _ => failure.message(message).into_error(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secret: Option<&str>) -> OauthClient {
        OauthClient {
            client_id: "cl1ent".into(),
            client_secret: secret.map(str::to_owned),
            redirect_uri: "https://herald.example/oauth/x/callback".into(),
        }
    }

    #[test]
    fn the_authorize_url_asks_for_the_scopes_with_an_s256_challenge() {
        let url = authorize_url(&client(None), "st/ate", "ch4llenge");
        assert_eq!(
            url,
            "https://x.com/i/oauth2/authorize?response_type=code&client_id=cl1ent\
             &redirect_uri=https%3A%2F%2Fherald.example%2Foauth%2Fx%2Fcallback\
             &scope=tweet.read%20tweet.write%20users.read%20media.write%20offline.access\
             &state=st%2Fate&code_challenge=ch4llenge&code_challenge_method=S256"
        );
    }

    #[test]
    fn a_public_client_names_itself_a_confidential_one_uses_basic() {
        let grant = [("grant_type", "refresh_token"), ("refresh_token", "r1")];
        let (authorization, fields) = token_form("cl1ent", None, &grant);
        assert_eq!(authorization, None);
        assert_eq!(
            fields,
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "r1"),
                ("client_id", "cl1ent")
            ]
        );
        let (authorization, fields) = token_form("cl1ent", Some("s3cret"), &grant);
        // base64("cl1ent:s3cret")
        assert_eq!(authorization.as_deref(), Some("Basic Y2wxZW50OnMzY3JldA=="));
        assert_eq!(fields, grant.to_vec());
    }

    #[test]
    fn refreshed_credentials_rotate_and_keep_what_x_did_not_resend() {
        let previous = Credentials {
            access_token: "old".into(),
            refresh_token: Some("r1".into()),
            expires_at: Some(1),
            extra: vec![
                ("client_id".into(), "cl1ent".into()),
                ("client_secret".into(), "s3cret".into()),
                ("note".into(), "kept".into()),
            ],
        };
        let rotated = credentials(
            Tokens {
                access_token: "a2".into(),
                refresh_token: Some("r2".into()),
                expires_in: Some(7200),
            },
            Some(&previous),
            "cl1ent",
            1_000,
        );
        assert_eq!(rotated.access_token, "a2");
        assert_eq!(rotated.refresh_token.as_deref(), Some("r2"));
        assert_eq!(rotated.expires_at, Some(8_200));
        assert_eq!(
            rotated.extra,
            vec![
                ("note".to_owned(), "kept".to_owned()),
                ("client_id".to_owned(), "cl1ent".to_owned())
            ],
            "the secret the caller lent is not stored back"
        );
        let unsent = credentials(
            Tokens {
                access_token: "a3".into(),
                refresh_token: None,
                expires_in: None,
            },
            Some(&previous),
            "cl1ent",
            1_000,
        );
        assert_eq!(unsent.refresh_token.as_deref(), Some("r1"));
        assert_eq!(unsent.expires_at, None);
    }

    #[test]
    fn refusals_say_what_to_do() {
        let refused = |status, body: &str, grant| check(Response::new(status, &[], body), grant);
        let invalid = r#"{"error":"invalid_request","error_description":"Value passed for the token was invalid."}"#;
        assert!(matches!(
            refused(400, invalid, Grant::Refresh),
            Err(PublishError::AuthExpired(m)) if m.contains("reconnect")
        ));
        assert!(matches!(
            refused(400, invalid, Grant::Code),
            Err(PublishError::Permanent(m)) if m.contains("connect again")
        ));
        assert!(matches!(
            refused(401, r#"{"error":"unauthorized_client","error_description":"Missing valid authorization header"}"#, Grant::Refresh),
            Err(PublishError::Permanent(m)) if m.contains("client id or secret")
        ));
        assert!(matches!(
            refused(503, "", Grant::Refresh),
            Err(PublishError::Retryable(_))
        ));
    }
}
