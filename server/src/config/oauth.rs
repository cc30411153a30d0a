//! OAuth connect flows: each platform's app credentials (`HERALD_OAUTH_<PLATFORM>_…`), the
//! redirect URIs the operator allows, where the browser flow lands, and how far ahead of
//! expiry tokens are refreshed.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;

use super::{ConfigError, positive, required_url};
use crate::domain::oauth_apps::{CLIENT_ID, CLIENT_SECRET, OauthApp, OauthConfig, PREFIX, SCOPES};

/// OAuth settings common to every platform.
#[derive(Debug, Clone, Args)]
pub struct OauthArgs {
    /// Public base URL of this Herald (e.g. `https://herald.example.org`): the default OAuth
    /// callback is `<url>/oauth/<platform>/callback`.
    #[arg(long, env = "HERALD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Further redirect URIs a `beginConnect` may name (comma-separated, exact match), e.g.
    /// a single-page app's own callback.
    #[arg(long, env = "HERALD_OAUTH_REDIRECT_URIS", value_delimiter = ',')]
    pub oauth_redirect_uris: Vec<String>,
    /// Where the browser flow's callback sends the user once connected (with
    /// `?platform=…&connection=…`); without it, a small page says so.
    #[arg(long, env = "HERALD_OAUTH_SUCCESS_URL")]
    pub oauth_success_url: Option<String>,
    /// Refresh an access token this many seconds before it expires.
    #[arg(long, env = "HERALD_OAUTH_REFRESH_AHEAD_SECS", default_value_t = 600)]
    pub oauth_refresh_ahead_secs: u64,
    /// Time between two looks for expiring tokens, in seconds.
    #[arg(long, env = "HERALD_OAUTH_REFRESH_INTERVAL_SECS", default_value_t = 60)]
    pub oauth_refresh_interval_secs: u64,
    /// Announce an account whose token expires and cannot be refreshed (no refresh token)
    /// this many days ahead, on `Connection.reconnectBy` and `connectionUpdated`.
    #[arg(long, env = "HERALD_OAUTH_RECONNECT_WARNING_DAYS", default_value_t = 7)]
    pub oauth_reconnect_warning_days: u64,
}

impl OauthArgs {
    /// The validated settings, with the apps read from the process's environment.
    pub fn config(&self) -> Result<OauthConfig, ConfigError> {
        self.config_from(std::env::vars())
    }

    /// The validated settings, with the apps read from `vars`.
    pub fn config_from(
        &self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<OauthConfig, ConfigError> {
        const PUBLIC: &str = "HERALD_PUBLIC_URL (--public-url)";
        const URIS: &str = "HERALD_OAUTH_REDIRECT_URIS (--oauth-redirect-uris)";
        const SUCCESS: &str = "HERALD_OAUTH_SUCCESS_URL (--oauth-success-url)";
        let public_url = self
            .public_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
            .map(|url| required_url(PUBLIC, Some(url.trim()), &["http", "https"]))
            .transpose()?
            .map(|url| url.trim_end_matches('/').to_owned());
        let redirect_uris = self
            .oauth_redirect_uris
            .iter()
            .map(|uri| uri.trim())
            .filter(|uri| !uri.is_empty())
            .map(|uri| required_url(URIS, Some(uri), &["http", "https"]))
            .collect::<Result<Vec<_>, _>>()?;
        let success_url = self
            .oauth_success_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
            .map(|url| required_url(SUCCESS, Some(url.trim()), &["http", "https"]))
            .transpose()?;
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(key, _)| key.starts_with(PREFIX))
            .collect();
        let mut apps = BTreeMap::new();
        for (key, value) in &vars {
            let Some(platform) = key
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.strip_suffix(CLIENT_ID))
                .filter(|platform| !platform.is_empty())
            else {
                continue;
            };
            let client_id = value.trim();
            if client_id.is_empty() {
                continue;
            }
            let client_secret = vars
                .get(&format!("{PREFIX}{platform}{CLIENT_SECRET}"))
                .map(|secret| secret.trim().to_owned())
                .filter(|secret| !secret.is_empty());
            let scopes = vars
                .get(&format!("{PREFIX}{platform}{SCOPES}"))
                .map(|scopes| {
                    scopes
                        .split(|c: char| c.is_whitespace() || c == ',')
                        .filter(|scope| !scope.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            apps.insert(
                platform.to_owned(),
                OauthApp {
                    client_id: client_id.to_owned(),
                    client_secret,
                    scopes,
                },
            );
        }
        Ok(OauthConfig {
            public_url,
            redirect_uris,
            success_url,
            apps,
            refresh_ahead: Duration::from_secs(self.oauth_refresh_ahead_secs),
            refresh_interval: Duration::from_secs(positive(
                "HERALD_OAUTH_REFRESH_INTERVAL_SECS (--oauth-refresh-interval-secs)",
                self.oauth_refresh_interval_secs,
            )?),
            reconnect_warning: Duration::from_secs(
                self.oauth_reconnect_warning_days.saturating_mul(86_400),
            ),
        })
    }
}
