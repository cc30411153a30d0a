//! Keeping tokens alive: a background job (in every process that runs workers) refreshes
//! each active connection's access token a configured lead before it expires
//! (`HERALD_OAUTH_REFRESH_AHEAD_SECS`), and publishes refresh a token they found expired
//! ([`refresh_for_publish`]) under the same lock.
//!
//! - **Single flight across replicas**: a refresh holds the connection's row lock
//!   (`FOR UPDATE SKIP LOCKED`) from the moment it decides to refresh until the new tokens
//!   are committed; another replica skips the row, and one that comes after the commit
//!   sees the new expiry and has nothing to do. A platform that rotates refresh tokens (and
//!   revokes the chain when an old one is replayed) never sees one used twice.
//! - **The rotated token first**: the new tokens are written in the same transaction
//!   that holds the lock, before anyone can read the row again.
//! - **Transient failures** (the platform unreachable, a 503, a plugin fault) leave the
//!   connection as it is; the next round tries again.
//! - **A refused grant** (`auth-expired`: `invalid_grant`, a revoked or replayed refresh
//!   token) marks the connection `reconnect_required` with the platform's reason and
//!   announces it on `connectionUpdated`.
//! - **Tokens that cannot be refreshed** (no refresh token, e.g. LinkedIn's 60-day tokens
//!   outside its partner programme) are announced `HERALD_OAUTH_RECONNECT_WARNING_DAYS`
//!   ahead: the connection gets `reconnect_by` and a reason, on `connectionUpdated`;
//!   at expiry the account becomes `reconnect_required` like any refused grant.
//! - **The app's credentials are lent, never stored**: the plugin's `refresh-token` gets
//!   the account's credentials only, so the platform's configured OAuth app is added to
//!   their extras for the call ([`CLIENT_ID`], and [`CLIENT_SECRET`] for a confidential
//!   client) and the secret is dropped from what the plugin returns before it is sealed.

use std::sync::Arc;

use chrono::Utc;
use herald_plugin_host::{Credentials, PluginHost, PublishFailure};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, Statement, TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::connections::{self, ConnectionService};
use crate::db::entities::{connection, token};
use crate::domain::oauth_apps::{OauthApp, OauthConfig};
use crate::error::AppError;

/// The credential extra carrying the OAuth app's client id to a refresh (plugins also
/// record it there when they exchange a code).
pub const CLIENT_ID: &str = "client_id";
/// The credential extra lending a confidential OAuth app's secret to a refresh; never
/// stored.
pub const CLIENT_SECRET: &str = "client_secret";

/// `credentials` with `app` lent for a refresh: its client id when the account does not
/// name one, and its secret, if any.
fn lend(credentials: &Credentials, app: Option<&OauthApp>) -> Credentials {
    let mut lent = credentials.clone();
    lent.extra.retain(|(key, _)| key != CLIENT_SECRET);
    if let Some(app) = app {
        if !lent.extra.iter().any(|(key, _)| key == CLIENT_ID) {
            lent.extra.push((CLIENT_ID.into(), app.client_id.clone()));
        }
        if let Some(secret) = &app.client_secret {
            lent.extra.push((CLIENT_SECRET.into(), secret.clone()));
        }
    }
    lent
}

/// `credentials` without a lent secret, as they are sealed.
fn without_secret(mut credentials: Credentials) -> Credentials {
    credentials.extra.retain(|(key, _)| key != CLIENT_SECRET);
    credentials
}

/// Connections looked at in one round, soonest expiry first.
const ROUND_SIZE: u64 = 50;

/// What became of one connection in a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// New tokens are stored.
    Refreshed,
    /// Not due (any more), or another replica is refreshing it.
    Skipped,
    /// The platform or the plugin failed in a way that may pass: still connected.
    Transient(String),
    /// The platform refused the grant: the account must be reconnected.
    ReconnectRequired(String),
    /// The token expires within the warning lead and cannot be refreshed: announced.
    ReconnectSoon,
}

/// Refreshes expiring tokens. Cheap to clone.
#[derive(Clone)]
pub struct Refresher {
    db: DatabaseConnection,
    connections: ConnectionService,
    plugins: PluginHost,
    settings: Arc<OauthConfig>,
}

impl Refresher {
    /// A refresher reading and writing through the workers' pool `db` (it crosses
    /// tenants), sealing through `connections`, calling `plugins`, as `settings` say: it
    /// refreshes tokens `refresh_ahead` of their expiry, looking every `refresh_interval`,
    /// lends the platforms' apps to the refreshes (see the module's docs), and announces
    /// tokens that cannot be refreshed `reconnect_warning` ahead.
    pub fn new(
        db: DatabaseConnection,
        connections: ConnectionService,
        plugins: PluginHost,
        settings: Arc<OauthConfig>,
    ) -> Self {
        Self {
            db,
            connections,
            plugins,
            settings,
        }
    }

    fn ahead_secs(&self) -> f64 {
        self.settings.refresh_ahead.as_secs_f64()
    }

    /// Announces the accounts whose token expires within the warning lead and cannot be
    /// refreshed (no refresh token is stored): each gets `reconnect_by` (the expiry) and a
    /// reason, once (a replica that comes second updates nothing), on `connectionUpdated`.
    /// When the token expires, the refresh finds nothing to refresh with and the account
    /// becomes `reconnect_required`.
    pub async fn announce_expiring(&self) -> Result<Vec<Uuid>, AppError> {
        let candidates = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT c.id FROM social_connections c
                   JOIN social_account_tokens t ON t.connection_id = c.id
                  WHERE c.status = $1 AND c.reconnect_by IS NULL
                    AND t.refresh_ciphertext IS NULL AND c.expires_at IS NOT NULL
                    AND c.expires_at <= now() + make_interval(secs => $2)
                  ORDER BY c.expires_at LIMIT $3",
                [
                    connections::ACTIVE.into(),
                    self.settings.reconnect_warning.as_secs_f64().into(),
                    ROUND_SIZE.into(),
                ],
            ))
            .await?;
        let mut announced = Vec::with_capacity(candidates.len());
        for row in candidates {
            let id: Uuid = row.try_get("", "id")?;
            let Some(marked) = connection::Entity::find_by_id(id)
                .filter(connection::Column::ReconnectBy.is_null())
                .filter(connection::Column::Status.eq(connections::ACTIVE))
                .one(&self.db)
                .await?
            else {
                continue;
            };
            let Some(expires_at) = marked.expires_at else {
                continue;
            };
            let reason = format!(
                "the {} access token expires at {} and cannot be refreshed: reconnect the \
                 account before then",
                marked.platform,
                expires_at.format("%Y-%m-%d %H:%M UTC")
            );
            // Only the replica whose update finds the row unannounced announces it.
            let updated = self
                .db
                .execute(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE social_connections
                        SET reconnect_by = expires_at, status_reason = $2, updated_at = now()
                      WHERE id = $1 AND reconnect_by IS NULL AND status = $3
                        AND expires_at = $4",
                    [
                        id.into(),
                        reason.clone().into(),
                        connections::ACTIVE.into(),
                        expires_at.into(),
                    ],
                ))
                .await?;
            if updated.rows_affected() == 0 {
                continue;
            }
            tracing::info!(connection = %id, platform = %marked.platform, %expires_at,
                "the account must be reconnected before its token expires");
            let now = Utc::now();
            self.connections.announce(connection::Model {
                reconnect_by: Some(expires_at),
                status_reason: Some(reason),
                updated_at: now,
                ..marked
            });
            announced.push(id);
        }
        Ok(announced)
    }

    /// Announces the accounts to reconnect soon ([`Self::announce_expiring`]), then
    /// refreshes every connection due: active, with an expiry less than the configured
    /// lead away.
    pub async fn round(&self) -> Result<Vec<(Uuid, Outcome)>, AppError> {
        let mut outcomes: Vec<(Uuid, Outcome)> = self
            .announce_expiring()
            .await?
            .into_iter()
            .map(|id| (id, Outcome::ReconnectSoon))
            .collect();
        let due = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id FROM social_connections
                  WHERE status = $1 AND expires_at IS NOT NULL
                    AND expires_at <= now() + make_interval(secs => $2)
                  ORDER BY expires_at LIMIT $3",
                [
                    connections::ACTIVE.into(),
                    self.ahead_secs().into(),
                    ROUND_SIZE.into(),
                ],
            ))
            .await?;
        for row in due {
            let id: Uuid = row.try_get("", "id")?;
            outcomes.push((id, self.refresh(id).await?));
        }
        Ok(outcomes)
    }

    /// Refreshes connection `id` if it is still due and no one else is refreshing it.
    pub async fn refresh(&self, id: Uuid) -> Result<Outcome, AppError> {
        let txn = self.db.begin().await?;
        // The due check again, under the lock: a replica that refreshed it just before
        // has moved its expiry.
        let Some(row) = txn
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT platform FROM social_connections
                  WHERE id = $1 AND status = $2 AND expires_at IS NOT NULL
                    AND expires_at <= now() + make_interval(secs => $3)
                  FOR UPDATE SKIP LOCKED",
                [
                    id.into(),
                    connections::ACTIVE.into(),
                    self.ahead_secs().into(),
                ],
            ))
            .await?
        else {
            return Ok(Outcome::Skipped);
        };
        let platform: String = row.try_get("", "platform")?;
        let Some(sealed) = token::Entity::find()
            .filter(token::Column::ConnectionId.eq(id))
            .one(&txn)
            .await?
        else {
            return Ok(Outcome::Skipped);
        };
        let credentials = self.connections.open(&sealed)?;
        Ok(
            match renew(
                txn,
                &self.connections,
                &self.plugins,
                self.settings.app(&platform).ok(),
                id,
                &platform,
                credentials,
            )
            .await?
            {
                Renewed::Fresh(_) => Outcome::Refreshed,
                Renewed::Refused(reason) => Outcome::ReconnectRequired(reason),
                Renewed::Failed(failure) => Outcome::Transient(failure.to_string()),
            },
        )
    }

    /// Runs [`Self::round`] every configured interval until `stop`.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(err) = self.round().await {
                    tracing::error!(error = %err, "token refresh round failed");
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(self.settings.refresh_interval) => {}
                }
            }
        })
    }
}

/// What a refresh under the connection's lock came to.
#[derive(Debug)]
pub enum Renewed {
    /// The credentials to use now (stored).
    Fresh(Credentials),
    /// The platform refused the grant: the connection is now `reconnect_required`.
    Refused(String),
    /// A failure that may pass: nothing changed.
    Failed(PublishFailure),
}

/// Refreshes `credentials` of connection `id` on `platform` inside `txn`, which holds the
/// connection's row lock, and ends the transaction: new tokens are stored before the
/// commit; a refused grant marks the connection and announces it; any other failure
/// rolls back.
async fn renew(
    txn: DatabaseTransaction,
    connections: &ConnectionService,
    plugins: &PluginHost,
    app: Option<&OauthApp>,
    id: Uuid,
    platform: &str,
    credentials: Credentials,
) -> Result<Renewed, AppError> {
    let lent = lend(&credentials, app);
    match plugins.refresh_token(platform, lent.clone()).await {
        Ok(fresh) if fresh == lent => {
            // The plugin cannot refresh (its default returns them unchanged).
            let reason = format!("{platform} credentials expired and cannot be refreshed");
            let marked = connections::mark_reconnect_required(&txn, id, &reason).await?;
            txn.commit().await?;
            connections.announce(marked);
            Ok(Renewed::Refused(reason))
        }
        Ok(fresh) => {
            let fresh = without_secret(fresh);
            let now = Utc::now();
            connections.seal_into(&txn, id, &fresh, now).await?;
            txn.execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE social_connections SET refreshed_at = $2, updated_at = $2 WHERE id = $1",
                [id.into(), now.into()],
            ))
            .await?;
            txn.commit().await?;
            tracing::info!(connection = %id, %platform, "access token refreshed");
            // A platform that does not resend the refresh token keeps the stored one.
            Ok(Renewed::Fresh(Credentials {
                refresh_token: fresh.refresh_token.or(credentials.refresh_token),
                ..fresh
            }))
        }
        Err(PublishFailure::AuthExpired { message }) => {
            let reason = format!("{platform} refused to refresh the token: {message}");
            let marked = connections::mark_reconnect_required(&txn, id, &reason).await?;
            txn.commit().await?;
            tracing::warn!(connection = %id, %platform, %reason, "account must be reconnected");
            connections.announce(marked);
            Ok(Renewed::Refused(reason))
        }
        Err(other) => {
            txn.rollback().await?;
            tracing::warn!(connection = %id, %platform, failure = %other,
                "token refresh failed; nothing changed");
            Ok(Renewed::Failed(other))
        }
    }
}

/// Refreshes the credentials a publish found expired (`presented`), waiting for the
/// connection's lock: when another process refreshed them meanwhile, their new ones are
/// used as they are, so a rotating refresh token is never presented twice.
pub async fn refresh_for_publish(
    connections: &ConnectionService,
    plugins: &PluginHost,
    app: Option<&OauthApp>,
    id: Uuid,
    platform: &str,
    presented: &Credentials,
) -> Result<Renewed, AppError> {
    let txn = connections.db().begin().await?;
    let Some(row) = txn
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT status, status_reason FROM social_connections WHERE id = $1 FOR UPDATE",
            [id.into()],
        ))
        .await?
    else {
        return Ok(Renewed::Refused(format!(
            "the {platform} account was disconnected"
        )));
    };
    let status: String = row.try_get("", "status")?;
    if status != connections::ACTIVE {
        let reason: Option<String> = row.try_get("", "status_reason")?;
        return Ok(Renewed::Refused(reason.unwrap_or_else(|| {
            format!("the {platform} account must be reconnected")
        })));
    }
    let Some(sealed) = token::Entity::find()
        .filter(token::Column::ConnectionId.eq(id))
        .one(&txn)
        .await?
    else {
        return Ok(Renewed::Refused(format!(
            "the {platform} account has no tokens"
        )));
    };
    let stored = connections.open(&sealed)?;
    if stored.access_token != presented.access_token {
        return Ok(Renewed::Fresh(stored));
    }
    renew(txn, connections, plugins, app, id, platform, stored).await
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Extra {
        fn extra_value(&self, key: &str) -> Option<&str>;
    }

    impl Extra for Credentials {
        fn extra_value(&self, key: &str) -> Option<&str> {
            self.extra
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    fn account(extra: &[(&str, &str)]) -> Credentials {
        Credentials {
            access_token: "at".into(),
            refresh_token: Some("rt".into()),
            expires_at: Some(1),
            extra: extra
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn the_app_is_lent_to_a_refresh_and_its_secret_never_kept() {
        let confidential = OauthApp {
            client_id: "app-id".into(),
            client_secret: Some("app-secret".into()),
            scopes: Vec::new(),
        };
        let lent = lend(&account(&[("instance", "x.example")]), Some(&confidential));
        assert_eq!(lent.extra_value(CLIENT_ID), Some("app-id"));
        assert_eq!(lent.extra_value(CLIENT_SECRET), Some("app-secret"));
        assert_eq!(lent.extra_value("instance"), Some("x.example"));
        // A client id the exchange recorded wins; a stale secret is never passed on.
        let recorded = account(&[(CLIENT_ID, "recorded"), (CLIENT_SECRET, "stale")]);
        let lent = lend(&recorded, Some(&confidential));
        assert_eq!(lent.extra_value(CLIENT_ID), Some("recorded"));
        let secrets: Vec<_> = lent
            .extra
            .iter()
            .filter(|(k, _)| k == CLIENT_SECRET)
            .collect();
        assert_eq!(secrets.len(), 1);
        assert_eq!(lent.extra_value(CLIENT_SECRET), Some("app-secret"));
        // A public client lends its id only; no app lends nothing.
        let public = OauthApp {
            client_id: "app-id".into(),
            client_secret: None,
            scopes: Vec::new(),
        };
        assert_eq!(
            lend(&account(&[]), Some(&public)).extra_value(CLIENT_SECRET),
            None
        );
        assert_eq!(lend(&account(&[]), None), account(&[]));
        // What the plugin returns is sealed without the secret.
        let returned = without_secret(lend(&account(&[]), Some(&confidential)));
        assert_eq!(returned.extra_value(CLIENT_SECRET), None);
        assert_eq!(returned.extra_value(CLIENT_ID), Some("app-id"));
    }
}
