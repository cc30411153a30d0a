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
    pub async fn begin(
        &self,
        actor: &Actor,
        platform: &str,
        starter: Starter<'_>,
    ) -> Result<Begun, AppError> {
        self.connections.require_manager(actor)?;
        let host = self.host(platform)?;
        let redirect_uri = self.redirect_uri(platform, starter)?;
        let client = self.client(platform, redirect_uri.clone())?;
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
        let expires_at = Utc::now() + STATE_TTL;
        let pending = Pending {
            owner_id: actor.tenant_id.clone(),
            user_id: actor.user_id.clone(),
            platform: platform.to_owned(),
            redirect_uri: redirect_uri.clone(),
            verifier,
            browser_bound: starter == Starter::Browser,
            expires_at,
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
        let credentials = host
            .oauth_exchange(platform, client, code, &pending.verifier)
            .await
            .map_err(|failure| {
                tracing::info!(%platform, %failure, "OAuth code exchange refused");
                AppError::bad_input("code", format!("{platform} refused the code: {failure}"))
            })?;
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
