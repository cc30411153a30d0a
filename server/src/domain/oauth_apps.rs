//! The OAuth apps the operator registered with each platform and the settings of the connect
//! flows, as validated from the configuration: who Herald is to a platform, where its
//! callbacks are, and how far ahead of expiry tokens are refreshed.

use std::collections::BTreeMap;
use std::time::Duration;

/// Prefix of the per-platform app credentials.
pub const PREFIX: &str = "HERALD_OAUTH_";
/// Suffix of a platform's client id variable.
pub const CLIENT_ID: &str = "_CLIENT_ID";
/// Suffix of a platform's client secret variable.
pub const CLIENT_SECRET: &str = "_CLIENT_SECRET";
/// Suffix of a platform's further scopes variable.
pub const SCOPES: &str = "_SCOPES";

/// A platform's app as registered with it. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OauthApp {
    /// Client id.
    pub client_id: String,
    /// Client secret (confidential clients).
    pub client_secret: Option<String>,
    /// Scopes asked for besides the plugin's own, e.g. LinkedIn's `w_organization_social`
    /// for an app approved to post as organization pages.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OauthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthApp")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Validated OAuth settings.
#[derive(Debug, Clone, Default)]
pub struct OauthConfig {
    /// Public base URL, without a trailing slash.
    pub public_url: Option<String>,
    /// Redirect URIs allowed besides the default callback.
    pub redirect_uris: Vec<String>,
    /// Where a completed browser flow goes.
    pub success_url: Option<String>,
    /// Apps by platform id (lowercase, as the variable names them).
    pub apps: BTreeMap<String, OauthApp>,
    /// How long before expiry a token is refreshed.
    pub refresh_ahead: Duration,
    /// Time between two looks for expiring tokens.
    pub refresh_interval: Duration,
    /// How long before a token that cannot be refreshed expires the account is announced
    /// as to be reconnected.
    pub reconnect_warning: Duration,
}

impl OauthConfig {
    /// The variable holding `platform`'s client id, e.g. `HERALD_OAUTH_X_CLIENT_ID`.
    pub fn client_id_key(platform: &str) -> String {
        format!("{PREFIX}{}{CLIENT_ID}", env_segment(platform))
    }

    /// `platform`'s app, or the name of the variable that would configure it.
    pub fn app(&self, platform: &str) -> Result<&OauthApp, String> {
        self.apps
            .get(&env_segment(platform))
            .ok_or_else(|| Self::client_id_key(platform))
    }

    /// The default callback of `platform` (`None` without a public URL).
    pub fn callback(&self, platform: &str) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|base| format!("{base}/oauth/{platform}/callback"))
    }
}

/// A platform id as it appears in a variable name: upper case, `_` for anything else than
/// a letter or digit.
fn env_segment(platform: &str) -> String {
    platform
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}
