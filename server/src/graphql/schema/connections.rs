//! Connected accounts in GraphQL: connect (credentials checked by the platform's plugin and
//! stored encrypted, or by OAuth: `beginConnect` then `completeConnect`), list, disconnect.
//! Tokens are write-only: no query returns them.

use async_graphql::{
    Context, ErrorExtensions, ID, InputObject, Object, SimpleObject, Subscription,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use super::{actor, parse_id};
use crate::connections::ConnectionService;
use crate::db::entities::connection;
use crate::events::ConnectionBus;
use crate::oauth::{ConnectFlows, Starter};

/// An account on a platform that the tenant's posts are published as.
#[derive(SimpleObject)]
pub struct Connection {
    /// Connection id.
    pub id: ID,
    /// Platform id.
    pub platform: String,
    /// The account's id on the platform.
    pub external_account_id: String,
    /// The account's name on the platform.
    pub display_name: String,
    /// `active`, or `reconnect_required` after the platform refused its credentials (or
    /// to refresh them): its posts wait until it is connected again.
    pub status: String,
    /// When it was connected.
    pub created_at: DateTime<Utc>,
    /// Last change (reconnect, token refresh).
    pub updated_at: DateTime<Utc>,
    /// Whether targets without a chosen account publish with this one (one per platform;
    /// see `setDefaultConnection`).
    pub is_default: bool,
    /// When the access token expires, as the platform said (Herald refreshes it ahead).
    pub expires_at: Option<DateTime<Utc>>,
    /// Why the account must be reconnected: now (`status` is `reconnect_required`), or
    /// by `reconnectBy`.
    pub status_reason: Option<String>,
    /// When the account must be reconnected by: its access token expires then and the
    /// platform gave no way to refresh it (e.g. LinkedIn outside its partner programme).
    /// Set `HERALD_OAUTH_RECONNECT_WARNING_DAYS` ahead of the expiry and announced on
    /// `connectionUpdated`; the account becomes `reconnect_required` when the token expires.
    pub reconnect_by: Option<DateTime<Utc>>,
}

/// A begun OAuth connection: send the user to `authorizeUrl`.
#[derive(SimpleObject)]
pub struct ConnectStart {
    /// The platform's authorisation page.
    pub authorize_url: String,
    /// The request's `state`: the platform returns it with the code, for
    /// `completeConnect`.
    pub state: String,
    /// When the request stops being accepted (10 minutes).
    pub expires_at: DateTime<Utc>,
}

impl From<connection::Model> for Connection {
    fn from(c: connection::Model) -> Self {
        Self {
            id: ID(c.id.to_string()),
            platform: c.platform,
            external_account_id: c.external_account_id,
            display_name: c.display_name,
            status: c.status,
            created_at: c.created_at,
            updated_at: c.updated_at,
            is_default: c.is_default,
            expires_at: c.expires_at,
            status_reason: c.status_reason,
            reconnect_by: c.reconnect_by,
        }
    }
}

/// A platform-specific credential value.
#[derive(InputObject)]
pub struct CredentialValueInput {
    /// Name, e.g. `handle` or `instance`.
    pub key: String,
    /// Value.
    pub value: String,
}

/// Credentials of an account, as the platform's plugin expects them.
#[derive(InputObject)]
pub struct CredentialsInput {
    /// Access token (or app password).
    pub access_token: String,
    /// Refresh token, for platforms that issue one.
    pub refresh_token: Option<String>,
    /// When the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Platform-specific values.
    #[graphql(default)]
    pub extra: Vec<CredentialValueInput>,
}

/// Queries on connected accounts.
#[derive(Default)]
pub struct ConnectionQuery;

#[Object]
impl ConnectionQuery {
    /// The caller's tenant's connected accounts.
    async fn connections(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Connection>> {
        let actor = actor(ctx)?;
        let list = ctx
            .data::<ConnectionService>()?
            .list(actor)
            .await
            .map_err(|e| e.extend())?;
        Ok(list.into_iter().map(Connection::from).collect())
    }
}

/// Mutations on connected accounts.
#[derive(Default)]
pub struct ConnectionMutation;

#[Object]
impl ConnectionMutation {
    /// Connects an account (admin role, unless the operator lets members manage accounts):
    /// the platform's plugin checks the credentials and names the account; the tokens are
    /// stored encrypted. Connecting the same account again replaces its tokens. The
    /// tenant's first account on a platform becomes its default there. The built-in
    /// `webhook` platform takes the signing secret as `accessToken` (16 to 256 characters)
    /// and the receiver's http(s) address as the `url` value of `extra`; both are stored
    /// encrypted.
    async fn connect_account(
        &self,
        ctx: &Context<'_>,
        platform: String,
        credentials: CredentialsInput,
    ) -> async_graphql::Result<Connection> {
        let actor = actor(ctx)?;
        let credentials = herald_plugin_host::Credentials {
            access_token: credentials.access_token,
            refresh_token: credentials.refresh_token,
            expires_at: credentials.expires_at.map(|at| at.timestamp()),
            extra: credentials
                .extra
                .into_iter()
                .map(|kv| (kv.key, kv.value))
                .collect(),
        };
        let connection = ctx
            .data::<ConnectionService>()?
            .connect(actor, platform.trim(), credentials)
            .await
            .map_err(|e| e.extend())?;
        Ok(connection.into())
    }

    /// Begins connecting an account by OAuth 2.0 with PKCE (admin role, unless the
    /// operator lets members manage accounts): send the user to `authorizeUrl`; the
    /// platform returns them to `redirectUri` (default: this server's
    /// `/oauth/{platform}/callback`; otherwise one the operator listed) with a `code` and
    /// the `state`, for `completeConnect`. `OAUTH_NOT_CONFIGURED` names the setting a
    /// platform still needs. `extra` are platform-specific values kept with the account
    /// once connected, as `connectAccount`'s (e.g. LinkedIn's `author`:
    /// `urn:li:organization:<id>` to post as that page).
    async fn begin_connect(
        &self,
        ctx: &Context<'_>,
        platform: String,
        redirect_uri: Option<String>,
        #[graphql(default)] extra: Vec<CredentialValueInput>,
    ) -> async_graphql::Result<ConnectStart> {
        let actor = actor(ctx)?;
        let begun = ctx
            .data::<ConnectFlows>()?
            .begin(
                actor,
                platform.trim(),
                Starter::Api {
                    redirect_uri: redirect_uri.as_deref(),
                },
                extra.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            )
            .await
            .map_err(|e| e.extend())?;
        Ok(ConnectStart {
            authorize_url: begun.authorize_url,
            state: begun.state,
            expires_at: begun.expires_at,
        })
    }

    /// Completes a connection the caller began with `beginConnect`, with the `code` the
    /// platform returned: the account is named by the platform and stored like
    /// `connectAccount`'s (reconnecting keeps a refresh token the platform did not
    /// resend). Each `state` completes once, for its tenant and user, within 10 minutes.
    async fn complete_connect(
        &self,
        ctx: &Context<'_>,
        state: String,
        code: String,
    ) -> async_graphql::Result<Connection> {
        let actor = actor(ctx)?;
        let connection = ctx
            .data::<ConnectFlows>()?
            .complete(actor, state.trim(), code.trim())
            .await
            .map_err(|e| e.extend())?;
        Ok(connection.into())
    }

    /// Makes one of the tenant's accounts its default on that platform (admin role, unless
    /// the operator lets members manage accounts).
    async fn set_default_connection(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Connection> {
        let actor = actor(ctx)?;
        let uuid = parse_id(&id, "id")?;
        let connection = ctx
            .data::<ConnectionService>()?
            .set_default(actor, uuid)
            .await
            .map_err(|e| e.extend())?;
        Ok(connection.into())
    }

    /// Disconnects one of the tenant's accounts and deletes its tokens (admin role, unless
    /// the operator lets members manage accounts); returns its id.
    async fn disconnect_account(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let actor = actor(ctx)?;
        let uuid = parse_id(&id, "id")?;
        ctx.data::<ConnectionService>()?
            .disconnect(actor, uuid)
            .await
            .map_err(|e| e.extend())?;
        Ok(id)
    }
}

/// Live changes of connected accounts.
#[derive(Default)]
pub struct ConnectionSubscription;

#[Subscription]
impl ConnectionSubscription {
    /// Every change of state of one of the tenant's connected accounts (`id`), or of any of
    /// them when `id` is omitted: e.g. one the platform refused to refresh becomes
    /// `reconnect_required`, with the reason.
    async fn connection_updated(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = Connection>> {
        let tenant = actor(ctx)?.tenant_id.clone();
        let id = id.map(|id| parse_id(&id, "id")).transpose()?;
        let events = ctx.data::<ConnectionBus>()?.subscribe();
        Ok(BroadcastStream::new(events).filter_map(move |event| {
            let matched = match event {
                Ok(event)
                    if event.connection.owner_id == tenant
                        && id.is_none_or(|id| id == event.connection.id) =>
                {
                    Some(Connection::from(event.connection.clone()))
                }
                // A lagging subscriber skips what it missed.
                _ => None,
            };
            async move { matched }
        }))
    }
}
