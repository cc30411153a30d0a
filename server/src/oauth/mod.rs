//! Connecting an account by OAuth 2.0 with PKCE: [`ConnectFlows::begin`] asks the
//! platform's plugin for the authorisation URL and remembers the flow (in Postgres, see
//! [`states`]); the platform sends the user back with a `code`, which
//! [`ConnectFlows::complete`] (GraphQL, the caller's bearer token) or
//! [`ConnectFlows::complete_browser`] (the callback route, the flow's cookie) exchanges
//! through the plugin, has the plugin name the account, and stores it sealed.
//!
//! A flow is single-use (consumed before the exchange), bound to the tenant and user that
//! began it, and expires after [`STATE_TTL`]; it may only send the user back to the
//! default callback or a redirect URI the operator listed.

pub mod browser;
pub mod pkce;
pub mod states;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_plugin_host::{OauthClient, PluginHost};
use sea_orm::DatabaseConnection;

use crate::connections::ConnectionService;
use crate::db::entities::connection;
use crate::domain::actor::Actor;
use crate::domain::oauth_apps::OauthConfig;
use crate::domain::post::is_web_url;
use crate::error::AppError;
use crate::secrets::TokenCipher;
use crate::token_refresh::{CLIENT_ID, CLIENT_SECRET};
use states::{Completer, Pending};

/// How long a begun flow may be completed.
pub const STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// The variable naming the public URL (the default callback's base).
const PUBLIC_URL_KEY: &str = "HERALD_PUBLIC_URL";

/// A begun connect flow: where to send the user.
#[derive(Debug, Clone)]
pub struct Begun {
    /// The platform's authorisation URL.
    pub authorize_url: String,
    /// The flow's `state` (the platform hands it back with the code).
    pub state: String,
    /// When the flow stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The redirect URI the platform will send the user to.
    pub redirect_uri: String,
}

/// Who begins a flow, which decides how its callback is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starter<'a> {
    /// A client of the API (`beginConnect`): it receives the code and completes with its
    /// bearer token (`completeConnect`); `redirect_uri` defaults to the server's callback.
    Api {
        /// The redirect URI the client asked for.
        redirect_uri: Option<&'a str>,
    },
    /// A browser sent to `/oauth/{platform}/start`: the server's callback completes it,
    /// only with the cookie set when it began.
    Browser,
}

/// Begins and completes connect flows. Cheap to clone.
#[derive(Clone)]
pub struct ConnectFlows {
    db: DatabaseConnection,
    worker_db: DatabaseConnection,
    cipher: TokenCipher,
    plugins: Option<PluginHost>,
    config: Arc<OauthConfig>,
    connections: ConnectionService,
}

impl std::fmt::Debug for ConnectFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectFlows").finish_non_exhaustive()
    }
}

impl ConnectFlows {
    /// Flows stored through the API's pool `db` (tenant-scoped) and, for the browser
    /// callback that has no bearer token, the workers' pool `worker_db`.
    pub fn new(
        db: DatabaseConnection,
        worker_db: DatabaseConnection,
        cipher: TokenCipher,
        plugins: Option<PluginHost>,
        config: Arc<OauthConfig>,
        connections: ConnectionService,
    ) -> Self {
        Self {
            db,
            worker_db,
            cipher,
            plugins,
            config,
            connections,
        }
    }

    /// The OAuth settings.
    pub fn config(&self) -> &OauthConfig {
        &self.config
    }

    fn host(&self, platform: &str) -> Result<&PluginHost, AppError> {
        self.plugins
            .as_ref()
            .filter(|host| host.platform(platform).is_some())
            .ok_or_else(|| {
                AppError::bad_input(
                    "platform",
                    format!("no plugin is installed for `{platform}`"),
                )
            })
    }

    fn client(&self, platform: &str, redirect_uri: String) -> Result<OauthClient, AppError> {
        let app = self
            .config
            .app(platform)
            .map_err(|key| AppError::NotConfigured {
                message: format!("{platform} has no OAuth app configured: set {key}"),
                key,
            })?;
        Ok(OauthClient {
            client_id: app.client_id.clone(),
            client_secret: app.client_secret.clone(),
            redirect_uri,
        })
    }

    fn default_callback(&self, platform: &str) -> Result<String, AppError> {
        self.config
            .callback(platform)
            .ok_or_else(|| AppError::NotConfigured {
                key: PUBLIC_URL_KEY.into(),
                message: format!(
                    "Herald's public URL is not configured (set {PUBLIC_URL_KEY}), so it has \
                     no OAuth callback; name a listed redirectUri instead"
                ),
            })
    }

    /// The redirect URI of a flow `starter` begins on `platform`: the server's callback,
    /// or one the operator listed.
    fn redirect_uri(&self, platform: &str, starter: Starter<'_>) -> Result<String, AppError> {
        match starter {
            Starter::Browser | Starter::Api { redirect_uri: None } => {
                self.default_callback(platform)
            }
            Starter::Api {
                redirect_uri: Some(uri),
            } => {
                let uri = uri.trim();
                let listed = self.config.redirect_uris.iter().any(|listed| listed == uri)
                    || self.config.callback(platform).as_deref() == Some(uri);
                if listed {
                    Ok(uri.to_owned())
                } else {
                    Err(AppError::bad_input(
                        "redirectUri",
                        "not a redirect URI this server allows (HERALD_OAUTH_REDIRECT_URIS)",
                    ))
                }
            }
        }
    }

    /// Begins a flow for the caller's tenant on `platform` (the caller must be allowed to
    /// connect accounts): asks the plugin for the authorisation URL with a fresh state and
    /// PKCE challenge, and remembers the flow for [`STATE_TTL`].
    ///
    /// `extra` are credential extras chosen now for the account (e.g. LinkedIn's `author`:
    /// the organization page to post as), added to what the platform grants when the flow
    /// completes. The operator's further scopes for the platform
    /// (`HERALD_OAUTH_<PLATFORM>_SCOPES`) are added to the URL's `scope`.
    pub async fn begin(
        &self,
        actor: &Actor,
        platform: &str,
        starter: Starter<'_>,
        extra: Vec<(String, String)>,
    ) -> Result<Begun, AppError> {
        self.connections.require_manager(actor)?;
        let extra = checked_extra(extra)?;
        let host = self.host(platform)?;
        let redirect_uri = self.redirect_uri(platform, starter)?;
        let client = self.client(platform, redirect_uri.clone())?;
        let scopes = self
            .config
            .app(platform)
            .map(|app| app.scopes.clone())
            .unwrap_or_default();
        let state = pkce::state();
        let verifier = pkce::verifier();
        let authorize_url = host
            .oauth_authorize_url(platform, client, &state, &pkce::challenge(&verifier))
            .await
            .map_err(|failure| {
                AppError::bad_input(
                    "platform",
                    format!("{platform} cannot connect accounts by OAuth: {failure}"),
                )
            })?;
        if !is_web_url(&authorize_url) {
            return Err(AppError::bad_input(
                "platform",
                format!("{platform}'s plugin gave no http(s) authorisation URL"),
            ));
        }
        let authorize_url = with_scopes(&authorize_url, &scopes);
        let expires_at = Utc::now() + STATE_TTL;
        let pending = Pending {
            owner_id: actor.tenant_id.clone(),
            user_id: actor.user_id.clone(),
            platform: platform.to_owned(),
            redirect_uri: redirect_uri.clone(),
            verifier,
            browser_bound: starter == Starter::Browser,
            expires_at,
            extra,
        };
        states::purge_expired(&self.db, &actor.tenant_id).await?;
        states::insert(&self.db, &self.cipher, &pkce::state_hash(&state), &pending).await?;
        Ok(Begun {
            authorize_url,
            state,
            expires_at,
            redirect_uri,
        })
    }

    /// Completes a flow the caller began (same tenant and user) with the platform's
    /// `code`.
    pub async fn complete(
        &self,
        actor: &Actor,
        state: &str,
        code: &str,
    ) -> Result<connection::Model, AppError> {
        self.connections.require_manager(actor)?;
        let pending = states::take(
            &self.db,
            &self.cipher,
            &pkce::state_hash(state),
            Completer::User {
                owner_id: &actor.tenant_id,
                user_id: &actor.user_id,
            },
        )
        .await?
        .ok_or_else(unknown_state)?;
        self.finish(actor, pending, code).await
    }

    /// Completes a browser flow on `platform` at the server's callback: `cookie` is the
    /// state the browser was given when it began (a code and state without it were not
    /// asked for by this browser). Runs in the flow's tenant.
    pub async fn complete_browser(
        &self,
        platform: &str,
        state: &str,
        code: &str,
        cookie: Option<&str>,
    ) -> Result<connection::Model, AppError> {
        if cookie != Some(state) {
            return Err(AppError::bad_input(
                "state",
                "this browser did not begin the connection (its cookie is missing)",
            ));
        }
        // No bearer token here: the flow names its tenant, so it is read across tenants.
        let pending = states::take(
            &self.worker_db,
            &self.cipher,
            &pkce::state_hash(state),
            Completer::Callback { platform },
        )
        .await?
        .ok_or_else(unknown_state)?;
        let actor = Actor {
            user_id: pending.user_id.clone(),
            tenant_id: pending.owner_id.clone(),
            roles: Vec::new(),
            operator: false,
        };
        let tenant = actor.tenant_id.clone();
        crate::db::tenant::scope(&tenant, self.finish(&actor, pending, code)).await
    }

    /// Exchanges the code, has the plugin name the account and stores it.
    async fn finish(
        &self,
        actor: &Actor,
        pending: Pending,
        code: &str,
    ) -> Result<connection::Model, AppError> {
        if pending.expires_at <= Utc::now() {
            return Err(AppError::bad_input(
                "state",
                "the connection request expired; begin again",
            ));
        }
        let platform = pending.platform.as_str();
        let host = self.host(platform)?;
        let client = self.client(platform, pending.redirect_uri.clone())?;
        let mut credentials = host
            .oauth_exchange(platform, client, code, &pending.verifier)
            .await
            .map_err(|failure| {
                tracing::info!(%platform, %failure, "OAuth code exchange refused");
                AppError::bad_input("code", format!("{platform} refused the code: {failure}"))
            })?;
        // What the user chose when beginning; the platform's own values win.
        for (key, value) in pending.extra {
            if !credentials.extra.iter().any(|(k, _)| *k == key) {
                credentials.extra.push((key, value));
            }
        }
        let account = host
            .verify_credentials(platform, credentials.clone())
            .await
            .map_err(|failure| {
                AppError::bad_input(
                    "code",
                    format!("{platform} refused the new credentials: {failure}"),
                )
            })?;
        let name = account
            .display_name
            .clone()
            .unwrap_or_else(|| account.handle.clone());
        self.connections
            .store(actor, platform, &account.id, &name, &credentials)
            .await
    }
}

fn unknown_state() -> AppError {
    AppError::bad_input(
        "state",
        "unknown or already used connection request; begin again",
    )
}

/// Most credential extras a flow may carry.
const MAX_EXTRA: usize = 16;
/// Longest extra name, in characters.
const MAX_EXTRA_KEY: usize = 64;
/// Longest extra value, in characters.
const MAX_EXTRA_VALUE: usize = 2_048;

/// `extra` if a flow may carry it: a few short, distinct, named values, none of the names
/// Herald itself puts in credentials (the lent OAuth app).
fn checked_extra(extra: Vec<(String, String)>) -> Result<Vec<(String, String)>, AppError> {
    let refuse = |message: String| Err(AppError::bad_input("extra", message));
    if extra.len() > MAX_EXTRA {
        return refuse(format!("at most {MAX_EXTRA} extra values"));
    }
    let mut checked: Vec<(String, String)> = Vec::with_capacity(extra.len());
    for (key, value) in extra {
        let key = key.trim().to_owned();
        let valid_key = !key.is_empty()
            && key.chars().count() <= MAX_EXTRA_KEY
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_key {
            return refuse(format!(
                "`{}` is not an extra name (letters, digits, `_`, `-`, `.`; at most \
                 {MAX_EXTRA_KEY})",
                key.chars().take(MAX_EXTRA_KEY).collect::<String>()
            ));
        }
        if key == CLIENT_ID || key == CLIENT_SECRET {
            return refuse(format!("`{key}` is set by Herald from its OAuth app"));
        }
        if value.chars().count() > MAX_EXTRA_VALUE {
            return refuse(format!(
                "the value of `{key}` is longer than {MAX_EXTRA_VALUE} characters"
            ));
        }
        if checked.iter().any(|(k, _)| *k == key) {
            return refuse(format!("`{key}` is given twice"));
        }
        checked.push((key, value.trim().to_owned()));
    }
    Ok(checked)
}

/// `url` with `scopes` added to its `scope` parameter (space-separated, or
/// comma-separated when the plugin's list is), each once; the rest of the URL as it was.
fn with_scopes(url: &str, scopes: &[String]) -> String {
    if scopes.is_empty() {
        return url.to_owned();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let (path, query) = base.split_once('?').unwrap_or((base, ""));
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect();
    let encode = |value: &str| {
        url::form_urlencoded::byte_serialize(value.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let at = parts.iter().position(|part| part.starts_with("scope="));
    let current: String = at
        .and_then(|i| url::form_urlencoded::parse(parts[i].as_bytes()).next())
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let separator = if current.contains(',') && !current.contains(' ') {
        ','
    } else {
        ' '
    };
    let mut all: Vec<&str> = current
        .split(separator)
        .filter(|scope| !scope.is_empty())
        .collect();
    for scope in scopes {
        if !all.contains(&scope.as_str()) {
            all.push(scope);
        }
    }
    let joined = all.join(&separator.to_string());
    let param = format!("scope={}", encode(&joined));
    match at {
        Some(i) => parts[i] = param,
        None => parts.push(param),
    }
    let mut rebuilt = format!("{path}?{}", parts.join("&"));
    if let Some(fragment) = fragment {
        rebuilt.push('#');
        rebuilt.push_str(fragment);
    }
    rebuilt
}

#[cfg(test)]
mod tests {
    use super::{checked_extra, with_scopes};

    #[test]
    fn further_scopes_join_the_plugins_own_once() {
        let scopes = ["w_organization_social".to_owned(), "profile".to_owned()];
        assert_eq!(
            with_scopes(
                "https://www.linkedin.com/oauth/v2/authorization?response_type=code&scope=openid%20profile&state=a%2Fb",
                &scopes
            ),
            "https://www.linkedin.com/oauth/v2/authorization?response_type=code\
             &scope=openid%20profile%20w_organization_social&state=a%2Fb"
        );
        assert_eq!(
            with_scopes("https://p.example/auth?scope=a,b", &scopes),
            "https://p.example/auth?scope=a%2Cb%2Cw_organization_social%2Cprofile"
        );
        assert_eq!(
            with_scopes("https://p.example/auth?x=1#f", &scopes),
            "https://p.example/auth?x=1&scope=w_organization_social%20profile#f"
        );
        assert_eq!(
            with_scopes("https://p.example/auth?scope=a", &[]),
            "https://p.example/auth?scope=a"
        );
    }

    #[test]
    fn extras_are_short_named_distinct_and_never_the_lent_app() {
        let one = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(
            checked_extra(one(" author ", " urn:li:organization:5 ")).expect("valid"),
            one("author", "urn:li:organization:5")
        );
        for bad in [
            one("", "x"),
            one("a b", "x"),
            one("client_secret", "x"),
            one("client_id", "x"),
            one("author", &"x".repeat(2_049)),
            [one("a", "1"), one("a", "2")].concat(),
            (0..17).map(|i| (format!("k{i}"), "v".to_owned())).collect(),
        ] {
            assert!(checked_extra(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
