//! A tenant's `webhook` account: the URL its posts are POSTed to and the secret that signs
//! each request, as `connectAccount(platform: "webhook", …)` gives them (the secret as the
//! access token, the URL as the `url` value). Both are stored sealed; what is stored in
//! the clear (the account id and name) reveals neither the URL's path nor the secret.

use sha2::{Digest, Sha256};

use super::post::is_web_url;
use crate::error::AppError;

/// The built-in platform's id.
pub const PLATFORM: &str = "webhook";
/// The credential value that carries the receiver's URL.
pub const URL_KEY: &str = "url";
/// Shortest signing secret accepted.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest signing secret accepted.
pub const MAX_SECRET_LEN: usize = 256;

/// Where a tenant's posts go and what signs them.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookAccount {
    /// The receiver (http or https).
    pub url: String,
    /// The HMAC-SHA256 key of the `Herald-Signature` header.
    pub secret: String,
}

impl std::fmt::Debug for WebhookAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAccount").finish_non_exhaustive()
    }
}

impl WebhookAccount {
    /// The account from its credentials: `secret` (the access token) and the `url` value
    /// among `extra`. `BAD_USER_INPUT` names the credential at fault.
    pub fn from_credentials(secret: &str, extra: &[(String, String)]) -> Result<Self, AppError> {
        let url = extra
            .iter()
            .find(|(key, _)| key == URL_KEY)
            .map(|(_, value)| value.trim())
            .ok_or_else(|| {
                AppError::bad_input(
                    "credentials.extra",
                    "a webhook needs the receiver's address as the `url` value",
                )
            })?;
        if !is_web_url(url) || reqwest::Url::parse(url).is_err() {
            return Err(AppError::bad_input(
                "credentials.extra",
                "the webhook `url` must be an http:// or https:// address",
            ));
        }
        let length = secret.chars().count();
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&length) {
            return Err(AppError::bad_input(
                "credentials.accessToken",
                format!(
                    "the webhook's signing secret (accessToken) must be {MIN_SECRET_LEN} to \
                     {MAX_SECRET_LEN} characters"
                ),
            ));
        }
        Ok(Self {
            url: url.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// A stable id for the receiver (a digest of its URL: connecting the same URL again
    /// replaces its secret, and the URL is not stored in the clear).
    pub fn account_id(&self) -> String {
        let digest = Sha256::digest(self.url.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The account's name: the receiver's host (its path may be a credential).
    pub fn display_name(&self) -> String {
        let host = reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        format!("webhook to {host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(value: &str) -> Vec<(String, String)> {
        vec![(URL_KEY.to_owned(), value.to_owned())]
    }

    fn field(result: Result<WebhookAccount, AppError>) -> String {
        match result {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_web_url_and_a_long_enough_secret() {
        let account = WebhookAccount::from_credentials(
            "0123456789abcdef",
            &url("https://hooks.example/herald/s3cr3t-path"),
        )
        .expect("valid");
        assert_eq!(account.display_name(), "webhook to hooks.example");
        assert_eq!(account.account_id().len(), 16);
        assert!(!account.account_id().contains("s3cr3t"));
        assert!(!format!("{account:?}").contains("s3cr3t"));
    }

    #[test]
    fn refuses_other_urls_and_short_secrets() {
        let secret = "0123456789abcdef";
        for bad in [
            "ftp://x.example/",
            "javascript:alert(1)",
            "https://",
            "not a url",
        ] {
            assert_eq!(
                field(WebhookAccount::from_credentials(secret, &url(bad))),
                "credentials.extra",
                "{bad}"
            );
        }
        assert_eq!(
            field(WebhookAccount::from_credentials(secret, &[])),
            "credentials.extra"
        );
        assert_eq!(
            field(WebhookAccount::from_credentials(
                "short",
                &url("https://hooks.example/")
            )),
            "credentials.accessToken"
        );
    }
}
