//! Keeping tokens alive: a background job (in every process that runs workers) refreshes
//! each active connection's access token [`OauthConfig::refresh_ahead`] before it expires.
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

use std::time::Duration;

use chrono::Utc;
use herald_plugin_host::{PluginHost, PublishFailure};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::OauthConfig;
use crate::connections::{self, ConnectionService};
use crate::db::entities::token;
use crate::error::AppError;

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
}

/// Refreshes expiring tokens. Cheap to clone.
#[derive(Clone)]
pub struct Refresher {
    db: DatabaseConnection,
    connections: ConnectionService,
    plugins: PluginHost,
    ahead: Duration,
    interval: Duration,
}

impl Refresher {
    /// A refresher reading and writing through the workers' pool `db` (it crosses
    /// tenants), sealing through `connections`, calling `plugins`, timed by `config`.
    pub fn new(
        db: DatabaseConnection,
        connections: ConnectionService,
        plugins: PluginHost,
        config: &OauthConfig,
    ) -> Self {
        Self {
            db,
            connections,
            plugins,
            ahead: config.refresh_ahead,
            interval: config.refresh_interval,
        }
    }

    fn ahead_secs(&self) -> f64 {
        self.ahead.as_secs_f64()
    }

    /// Refreshes every connection due: active, with an expiry less than the configured
    /// lead away.
    pub async fn round(&self) -> Result<Vec<(Uuid, Outcome)>, AppError> {
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
        let mut outcomes = Vec::with_capacity(due.len());
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
        match self.plugins.refresh_token(&platform, credentials).await {
            Ok(fresh) => {
                let now = Utc::now();
                self.connections.seal_into(&txn, id, &fresh, now).await?;
                txn.execute(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE social_connections SET refreshed_at = $2, updated_at = $2
                      WHERE id = $1",
                    [id.into(), now.into()],
                ))
                .await?;
                txn.commit().await?;
                tracing::info!(connection = %id, %platform, "access token refreshed");
                Ok(Outcome::Refreshed)
            }
            Err(PublishFailure::AuthExpired { message }) => {
                let reason = format!("{platform} refused to refresh the token: {message}");
                let marked = connections::mark_reconnect_required(&txn, id, &reason).await?;
                txn.commit().await?;
                tracing::warn!(connection = %id, %platform, %reason, "account must be reconnected");
                self.connections.announce(marked);
                Ok(Outcome::ReconnectRequired(reason))
            }
            Err(other) => {
                txn.rollback().await?;
                tracing::warn!(connection = %id, %platform, failure = %other,
                    "token refresh failed; trying again next round");
                Ok(Outcome::Transient(other.to_string()))
            }
        }
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
                    () = tokio::time::sleep(self.interval) => {}
                }
            }
        })
    }
}
