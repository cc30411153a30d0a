//! Facebook Login for a server-side app: the Login dialog
//! (`https://www.facebook.com/<version>/dialog/oauth`), the code exchange for a
//! short-lived user token and, at once, its exchange (`grant_type=fb_exchange_token`) for
//! a long-lived one (about 60 days), both at `POST /oauth/access_token` on the Graph API
//! with the app's id and secret in the form (never in a URL). Facebook Login takes no
//! PKCE: the verifier is not sent. The authorize URL and the exchange use the default
//! Graph version (the account's `graph_version` extra is only known once connected).
//!
//! A long-lived user token cannot be refreshed without the user: when it ends the account
//! is reconnected. Page tokens read with it do not expire (see the crate's documentation).

use herald_meta_graph::DEFAULT_GRAPH_VERSION;
use herald_plugin_sdk::http::{Request, percent_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{Credentials, OauthClient, PublishError, time};
use serde::Deserialize;

use crate::graph::{GRAPH, PLATFORM};

/// The permissions Herald asks for: listing the user's Pages with their tokens, posting
/// as a Page, and reading a Page's posts (to find a post after a lost answer).
pub const SCOPES: &str = "pages_show_list,pages_manage_posts,pages_read_engagement";
/// The credential extra recording the app's client id.
pub const CLIENT_ID: &str = "client_id";

/// The Login dialog URL for `client` and `state`.
pub fn authorize_url(client: &OauthClient, state: &str) -> String {
    let params = [
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("state", state),
        ("response_type", "code"),
        ("scope", SCOPES),
    ];
    let query = params
        .iter()
        .map(|(key, value)| format!("{key}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    format!("https://www.facebook.com/{DEFAULT_GRAPH_VERSION}/dialog/oauth?{query}")
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Token {
    access_token: String,
    /// Seconds the token lives (a long-lived user token: about 5,184,000).
    #[serde(default)]
    expires_in: Option<i64>,
}

/// Exchanges `code` for a short-lived user token, then that for a long-lived one.
pub fn exchange(
    client: &OauthClient,
    secret: &str,
    code: &str,
) -> Result<Credentials, PublishError> {
    let mut secrets = Secrets::new([code, secret]);
    let short = token(
        &[
            ("client_id", &client.client_id),
            ("client_secret", secret),
            ("redirect_uri", &client.redirect_uri),
            ("code", code),
        ],
        &secrets,
    )?;
    secrets = Secrets::new([code, secret, short.access_token.as_str()]);
    let sent_at = time::now_unix();
    let long = token(
        &[
            ("grant_type", "fb_exchange_token"),
            ("client_id", &client.client_id),
            ("client_secret", secret),
            ("fb_exchange_token", &short.access_token),
        ],
        &secrets,
    )?;
    let issued = i64::try_from(sent_at).unwrap_or(i64::MAX);
    Ok(Credentials {
        access_token: long.access_token,
        refresh_token: None,
        expires_at: long
            .expires_in
            .map(|seconds| issued.saturating_add(seconds)),
        extra: vec![(CLIENT_ID.to_owned(), client.client_id.clone())],
    })
}

/// One `POST /oauth/access_token`; a refusal is permanent (connect again), saying what
/// Facebook said.
fn token(form: &[(&str, &str)], secrets: &Secrets) -> Result<Token, PublishError> {
    let url = format!("{GRAPH}/{DEFAULT_GRAPH_VERSION}/oauth/access_token");
    let response = Request::post(url)
        .form(form)
        .send()
        .map_err(|error| PublishError::from(error).scrubbed(secrets))?;
    if !response.is_success() {
        let error = match herald_meta_graph::failure(&response, PLATFORM) {
            PublishError::Retryable(message) => PublishError::Retryable(message),
            PublishError::RateLimited(limit) => PublishError::RateLimited(limit),
            PublishError::Permanent(message) | PublishError::AuthExpired(message) => {
                PublishError::Permanent(format!(
                    "{message}; the code was refused (used, expired, or another redirect URI) \
                 or the app's id or secret is wrong: connect again"
                ))
            }
            other => other,
        };
        return Err(error.scrubbed(secrets));
    }
    response.json::<Token>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialog_asks_for_the_page_permissions() {
        let client = OauthClient {
            client_id: "4242".into(),
            client_secret: Some("s".into()),
            redirect_uri: "https://herald.example/oauth/facebook/callback".into(),
        };
        assert_eq!(
            authorize_url(&client, "st/ate"),
            "https://www.facebook.com/v25.0/dialog/oauth?client_id=4242\
             &redirect_uri=https%3A%2F%2Fherald.example%2Foauth%2Ffacebook%2Fcallback\
             &state=st%2Fate&response_type=code\
             &scope=pages_show_list%2Cpages_manage_posts%2Cpages_read_engagement"
        );
    }
}
