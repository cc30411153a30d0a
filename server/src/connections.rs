//! Connected accounts: verifying credentials through the platform's plugin, storing them
//! sealed (see [`crate::secrets`]), and handing them to publishes — refreshed when the
//! platform says they expired.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_plugin_host::{Credentials, PluginHost};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db;
use crate::db::entities::{connection, token};
use crate::domain::actor::{Actor, Role};
use crate::domain::webhook::{self, WebhookAccount};
use crate::error::AppError;
use crate::events::{ConnectionBus, ConnectionEvent, EventBus, PostEvent};
use crate::queue::JobQueue;
use crate::secrets::TokenCipher;

/// Status of a usable connection.
pub const ACTIVE: &str = "active";
/// Status of a connection whose credentials the platform refused.
pub const RECONNECT_REQUIRED: &str = "reconnect_required";

/// The sealed part of the access credentials.
#[derive(Serialize, Deserialize)]
struct Sealed {
    access_token: String,
    extra: Vec<(String, String)>,
}

/// Who may connect and disconnect the tenant's accounts and choose its default ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountPolicy {
    /// The tenant's admins only (the default): a member cannot redirect the team's posts
    /// to an account of their own.
    #[default]
    AdminsOnly,
    /// Every member of the tenant (`HERALD_MEMBERS_MANAGE_ACCOUNTS=true`).
    Members,
}

/// Stores and reads connected accounts.
#[derive(Clone)]
pub struct ConnectionService {
    db: DatabaseConnection,
    cipher: TokenCipher,
    plugins: Option<PluginHost>,
    policy: AccountPolicy,
    events: Option<ConnectionBus>,
    resumption: Option<Resumption>,
}

/// Where targets that waited for a reconnected account go: their jobs to the queue, their
/// posts' changes to `postUpdated`.
#[derive(Clone)]
struct Resumption {
    queue: Arc<dyn JobQueue>,
    posts: EventBus,
}

impl std::fmt::Debug for ConnectionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionService").finish_non_exhaustive()
    }
}

/// Serialises changes of the default account of one tenant and platform until the end of
/// the transaction (two first connections at once must not both become the default).
async fn lock_defaults<C: ConnectionTrait>(
    db: &C,
    tenant_id: &str,
    platform: &str,
) -> Result<(), AppError> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || E'\\n' || $2, 0))",
        [tenant_id.into(), platform.into()],
    ))
    .await?;
    Ok(())
}

/// When `credentials`' access token expires.
fn expiry(credentials: &Credentials) -> Option<DateTime<Utc>> {
    credentials
        .expires_at
        .and_then(|at| DateTime::from_timestamp(at, 0))
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::Internal(Box::new(err))
}

impl ConnectionService {
    /// A service over `db` sealing with `cipher`, verifying through `plugins`.
    pub fn new(db: DatabaseConnection, cipher: TokenCipher, plugins: Option<PluginHost>) -> Self {
        Self {
            db,
            cipher,
            plugins,
            policy: AccountPolicy::default(),
            events: None,
            resumption: None,
        }
    }

    /// The service enqueueing (on `queue`) the targets that waited for an account when it
    /// is reconnected, and announcing their posts on `posts`. Without it the targets are
    /// still moved back to the schedule, and the reconciler enqueues them.
    pub fn with_resumption(mut self, queue: Arc<dyn JobQueue>, posts: EventBus) -> Self {
        self.resumption = Some(Resumption { queue, posts });
        self
    }

    /// The pool the service reads and writes through.
    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The service announcing connections that must be reconnected on `events`.
    pub fn with_events(mut self, events: ConnectionBus) -> Self {
        self.events = Some(events);
        self
    }

    /// Announces `connection`'s new state to `connectionUpdated` subscribers.
    pub(crate) fn announce(&self, connection: connection::Model) {
        if let Some(events) = &self.events {
            events.publish(ConnectionEvent { connection });
        }
    }

    /// The service with `policy` deciding who manages accounts.
    pub fn with_policy(mut self, policy: AccountPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// `FORBIDDEN` unless the caller may manage the tenant's accounts.
    pub fn require_manager(&self, actor: &Actor) -> Result<(), AppError> {
        match self.policy {
            AccountPolicy::AdminsOnly => actor.require(Role::Admin),
            AccountPolicy::Members => Ok(()),
        }
    }

    /// Verifies `credentials` with the platform's plugin (for the built-in `webhook`, checks
    /// its URL and signing secret) and stores the account for the caller's tenant
    /// (reconnecting refreshes an existing connection's tokens).
    pub async fn connect(
        &self,
        actor: &Actor,
        platform: &str,
        credentials: Credentials,
    ) -> Result<connection::Model, AppError> {
        self.require_manager(actor)?;
        if platform == webhook::PLATFORM {
            // Built in: nothing to ask a plugin; the receiver is called when a post is due.
            let account =
                WebhookAccount::from_credentials(&credentials.access_token, &credentials.extra)?;
            let credentials = Credentials {
                access_token: account.secret.clone(),
                refresh_token: None,
                expires_at: None,
                extra: vec![(webhook::URL_KEY.to_owned(), account.url.clone())],
            };
            return self
                .store(
                    actor,
                    platform,
                    &account.account_id(),
                    &account.display_name(),
                    &credentials,
                )
                .await;
        }
        let host = self
            .plugins
            .as_ref()
            .filter(|host| host.platform(platform).is_some())
            .ok_or_else(|| {
                AppError::bad_input(
                    "platform",
                    format!("no plugin is installed for `{platform}`"),
                )
            })?;
        let account = host
            .verify_credentials(platform, credentials.clone())
            .await
            .map_err(|failure| {
                AppError::bad_input(
                    "credentials",
                    format!("{platform} refused the credentials: {failure}"),
                )
            })?;
        let name = account
            .display_name
            .clone()
            .unwrap_or_else(|| account.handle.clone());
        self.store(actor, platform, &account.id, &name, &credentials)
            .await
    }

    /// Stores an already verified account and its credentials. The tenant's first account
    /// on a platform (or the first since its default was disconnected) becomes its default.
    /// Reconnecting an account makes it active again, keeps its refresh token when
    /// `credentials` bring none (platforms resend one only sometimes), and sends out the
    /// targets that waited for it (`waiting_for_account`), due now.
    pub async fn store(
        &self,
        actor: &Actor,
        platform: &str,
        external_account_id: &str,
        display_name: &str,
        credentials: &Credentials,
    ) -> Result<connection::Model, AppError> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        connection::Entity::insert(connection::ActiveModel {
            id: Set(Uuid::now_v7()),
            owner_id: Set(actor.tenant_id.clone()),
            platform: Set(platform.to_owned()),
            external_account_id: Set(external_account_id.to_owned()),
            display_name: Set(display_name.to_owned()),
            status: Set(ACTIVE.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            is_default: Set(false),
            expires_at: Set(expiry(credentials)),
            status_reason: Set(None),
            refreshed_at: Set(None),
            reconnect_by: Set(None),
        })
        .on_conflict(
            OnConflict::columns([
                connection::Column::OwnerId,
                connection::Column::Platform,
                connection::Column::ExternalAccountId,
            ])
            .update_columns([
                connection::Column::DisplayName,
                connection::Column::Status,
                connection::Column::StatusReason,
                connection::Column::ExpiresAt,
                connection::Column::ReconnectBy,
                connection::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        lock_defaults(&txn, &actor.tenant_id, platform).await?;
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE social_connections c SET is_default = true
              WHERE owner_id = $1 AND platform = $2 AND external_account_id = $3
                AND NOT EXISTS (SELECT 1 FROM social_connections d
                                 WHERE d.owner_id = c.owner_id AND d.platform = c.platform
                                   AND d.is_default)",
            [
                actor.tenant_id.clone().into(),
                platform.into(),
                external_account_id.into(),
            ],
        ))
        .await?;
        let stored = connection::Entity::find()
            .filter(connection::Column::OwnerId.eq(&actor.tenant_id))
            .filter(connection::Column::Platform.eq(platform))
            .filter(connection::Column::ExternalAccountId.eq(external_account_id))
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        self.seal_into(&txn, stored.id, credentials, now).await?;
        let resumed =
            db::posts::resume_waiting(&txn, &actor.tenant_id, platform, stored.id, now).await?;
        txn.commit().await?;
        if !resumed.is_empty() {
            tracing::info!(connection = %stored.id, %platform, posts = resumed.len(),
                "account reconnected; the targets that waited for it are due now");
        }
        if let Some(resumption) = &self.resumption {
            for (post, targets) in resumed {
                resumption.posts.publish(PostEvent { post: post.clone() });
                crate::dispatch::sync(&resumption.queue, &post, &targets).await;
            }
        }
        Ok(stored)
    }

    /// Seals `credentials` as `connection_id`'s (through `db`, e.g. a transaction),
    /// keeping the stored refresh token when they bring none.
    pub(crate) async fn seal_into<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        connection_id: Uuid,
        credentials: &Credentials,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let context = connection_id.as_bytes();
        let access = serde_json::to_vec(&Sealed {
            access_token: credentials.access_token.clone(),
            extra: credentials.extra.clone(),
        })
        .map_err(internal)?;
        let row = token::ActiveModel {
            id: Set(Uuid::now_v7()),
            connection_id: Set(connection_id),
            key_id: Set(self.cipher.key_id().to_owned()),
            token_ciphertext: Set(self.cipher.seal(&access, context)),
            refresh_ciphertext: Set(credentials
                .refresh_token
                .as_ref()
                .map(|r| self.cipher.seal(r.as_bytes(), context))),
            expires_at: Set(expiry(credentials)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        // Without a new refresh token the stored one stays.
        let mut updated = vec![
            token::Column::KeyId,
            token::Column::TokenCiphertext,
            token::Column::ExpiresAt,
            token::Column::UpdatedAt,
        ];
        if credentials.refresh_token.is_some() {
            updated.push(token::Column::RefreshCiphertext);
        }
        token::Entity::insert(row)
            .on_conflict(
                OnConflict::column(token::Column::ConnectionId)
                    .update_columns(updated)
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE social_connections SET expires_at = $2, reconnect_by = NULL WHERE id = $1",
            [connection_id.into(), expiry(credentials).into()],
        ))
        .await?;
        Ok(())
    }

    /// The caller's tenant's connections, newest first.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<connection::Model>, AppError> {
        Ok(connection::Entity::find()
            .filter(connection::Column::OwnerId.eq(&actor.tenant_id))
            .order_by_desc(connection::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// Makes one of the caller's connections the tenant's default on its platform.
    pub async fn set_default(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<connection::Model, AppError> {
        self.require_manager(actor)?;
        let txn = self.db.begin().await?;
        let chosen = connection::Entity::find_by_id(id)
            .filter(connection::Column::OwnerId.eq(&actor.tenant_id))
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        lock_defaults(&txn, &actor.tenant_id, &chosen.platform).await?;
        // Two statements: the one-default index is checked row by row, so flipping both
        // rows in one statement fails whenever it meets the new default first.
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE social_connections SET is_default = false
              WHERE owner_id = $1 AND platform = $2 AND is_default AND id <> $3",
            [
                actor.tenant_id.clone().into(),
                chosen.platform.clone().into(),
                id.into(),
            ],
        ))
        .await?;
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE social_connections SET is_default = true WHERE id = $1 AND NOT is_default",
            [id.into()],
        ))
        .await?;
        let chosen = connection::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("connection"))?;
        txn.commit().await?;
        Ok(chosen)
    }

    /// Removes one of the caller's connections and its tokens.
    pub async fn disconnect(&self, actor: &Actor, id: Uuid) -> Result<Uuid, AppError> {
        self.require_manager(actor)?;
        let deleted = connection::Entity::delete_many()
            .filter(connection::Column::Id.eq(id))
            .filter(connection::Column::OwnerId.eq(&actor.tenant_id))
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(AppError::NotFound("connection"));
        }
        Ok(id)
    }

    /// Checks that each named connection (`id`, the target's platform, and the input
    /// field naming it) is the caller's tenant's, active, and on that platform, in one
    /// query. The first that is not gives `BAD_USER_INPUT` about its field; another
    /// tenant's connection reads as unknown.
    pub async fn require_usable(
        &self,
        actor: &Actor,
        named: &[(Uuid, &str, String)],
    ) -> Result<(), AppError> {
        self.check_named(actor, named, true).await
    }

    /// Like [`Self::require_usable`] but an account that must be reconnected passes: what
    /// a draft may name (it is checked again when the post is scheduled).
    pub async fn require_owned(
        &self,
        actor: &Actor,
        named: &[(Uuid, &str, String)],
    ) -> Result<(), AppError> {
        self.check_named(actor, named, false).await
    }

    async fn check_named(
        &self,
        actor: &Actor,
        named: &[(Uuid, &str, String)],
        active: bool,
    ) -> Result<(), AppError> {
        if named.is_empty() {
            return Ok(());
        }
        let found: HashMap<Uuid, connection::Model> = connection::Entity::find()
            .filter(connection::Column::OwnerId.eq(&actor.tenant_id))
            .filter(db::one_of(
                connection::Column::Id,
                &named.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
            ))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|conn| (conn.id, conn))
            .collect();
        for (id, platform, field) in named {
            match found.get(id) {
                None => {
                    return Err(AppError::bad_input(
                        field,
                        format!("no connected account {id}"),
                    ));
                }
                Some(conn) if conn.platform != *platform => {
                    return Err(AppError::bad_input(
                        field,
                        format!(
                            "connected account {id} is on {}, not {platform}",
                            conn.platform
                        ),
                    ));
                }
                Some(conn) if active && conn.status != ACTIVE => {
                    return Err(AppError::bad_input(
                        field,
                        format!(
                            "the {platform} account {} must be reconnected before scheduling",
                            conn.display_name
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Which of `platforms` the tenant has no active connection for.
    pub async fn missing(
        &self,
        tenant_id: &str,
        platforms: &[String],
    ) -> Result<Vec<String>, AppError> {
        if platforms.is_empty() {
            return Ok(Vec::new());
        }
        let connected: Vec<String> = connection::Entity::find()
            .filter(connection::Column::OwnerId.eq(tenant_id))
            .filter(connection::Column::Platform.is_in(platforms.iter().cloned()))
            .filter(connection::Column::Status.eq(ACTIVE))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| c.platform)
            .collect();
        Ok(platforms
            .iter()
            .filter(|p| !connected.contains(p))
            .cloned()
            .collect())
    }

    /// The credentials to publish with on `platform` for the tenant: those of connection
    /// `chosen` when the target names one (it must be the tenant's, active and on that
    /// platform), else of the tenant's default account there — or its only account there
    /// when none is the default. `None` when there is no such active account.
    pub async fn credentials(
        &self,
        tenant_id: &str,
        platform: &str,
        chosen: Option<Uuid>,
    ) -> Result<Option<(Uuid, Credentials)>, AppError> {
        let mut query = connection::Entity::find()
            .filter(connection::Column::OwnerId.eq(tenant_id))
            .filter(connection::Column::Platform.eq(platform))
            .filter(connection::Column::Status.eq(ACTIVE));
        if let Some(id) = chosen {
            query = query.filter(connection::Column::Id.eq(id));
        }
        // The default first; without one, a second candidate means there is no choice.
        let candidates = query
            .order_by_desc(connection::Column::IsDefault)
            .limit(2)
            .all(&self.db)
            .await?;
        let Some(conn) = candidates
            .first()
            .filter(|first| first.is_default || candidates.len() == 1)
            .cloned()
        else {
            return Ok(None);
        };
        let Some(row) = token::Entity::find()
            .filter(token::Column::ConnectionId.eq(conn.id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((conn.id, self.open(&row)?)))
    }

    /// Why [`Self::credentials`] found no account to publish with on `platform`: the
    /// reason recorded on an account that must be reconnected (the chosen one, else any of
    /// the tenant's there), or that none is connected.
    pub async fn why_unusable(
        &self,
        tenant_id: &str,
        platform: &str,
        chosen: Option<Uuid>,
    ) -> Result<String, AppError> {
        let mut query = connection::Entity::find()
            .filter(connection::Column::OwnerId.eq(tenant_id))
            .filter(connection::Column::Platform.eq(platform))
            .filter(connection::Column::Status.eq(RECONNECT_REQUIRED));
        if let Some(id) = chosen {
            query = query.filter(connection::Column::Id.eq(id));
        }
        let refused = query
            .order_by_desc(connection::Column::IsDefault)
            .one(&self.db)
            .await?;
        Ok(match refused {
            Some(conn) => conn.status_reason.unwrap_or_else(|| {
                format!(
                    "the {platform} account {} must be reconnected",
                    conn.display_name
                )
            }),
            None => format!("no {platform} account is connected"),
        })
    }

    /// The credentials sealed in `row`.
    pub(crate) fn open(&self, row: &token::Model) -> Result<Credentials, AppError> {
        let context = row.connection_id.as_bytes();
        let access = self
            .cipher
            .open(&row.key_id, &row.token_ciphertext, context)
            .map_err(internal)?;
        let sealed: Sealed = serde_json::from_slice(&access).map_err(internal)?;
        let refresh_token = row
            .refresh_ciphertext
            .as_deref()
            .map(|r| self.cipher.open(&row.key_id, r, context))
            .transpose()
            .map_err(internal)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        Ok(Credentials {
            access_token: sealed.access_token,
            refresh_token,
            expires_at: row.expires_at.map(|at| at.timestamp()),
            extra: sealed.extra,
        })
    }

    /// Replaces a connection's credentials after a refresh.
    pub async fn refreshed(
        &self,
        connection_id: Uuid,
        credentials: &Credentials,
    ) -> Result<(), AppError> {
        self.seal_into(&self.db, connection_id, credentials, Utc::now())
            .await
    }

    /// Marks a connection whose credentials were refused (`reason`), so the user is asked
    /// to reconnect and no further publish tries it, and announces it.
    pub async fn require_reconnect(
        &self,
        connection_id: Uuid,
        reason: &str,
    ) -> Result<(), AppError> {
        let marked = mark_reconnect_required(&self.db, connection_id, reason).await?;
        self.announce(marked);
        Ok(())
    }
}

/// Sets `connection_id`'s status to [`RECONNECT_REQUIRED`] with `reason` (through `db`,
/// e.g. a transaction); returns the connection as changed.
pub(crate) async fn mark_reconnect_required<C: ConnectionTrait>(
    db: &C,
    connection_id: Uuid,
    reason: &str,
) -> Result<connection::Model, AppError> {
    let mut row: connection::ActiveModel = connection::Entity::find_by_id(connection_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("connection"))?
        .into();
    row.status = Set(RECONNECT_REQUIRED.to_owned());
    row.status_reason = Set(Some(reason.to_owned()));
    row.updated_at = Set(Utc::now());
    Ok(row.update(db).await?)
}
