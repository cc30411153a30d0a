//! The token lifecycle on each connection.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000002_create_social_connections::SocialConnections;

/// Adds `social_connections.expires_at` (when the access token expires, as the platform
/// said; the refresher's work list), `status_reason` (why the account must be
/// reconnected) and `refreshed_at` (the last refresh).
#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "social_connections_expiring";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SocialConnections::Table)
                    .add_column(timestamp_with_time_zone_null(Added::ExpiresAt))
                    .add_column(text_null(Added::StatusReason))
                    .add_column(timestamp_with_time_zone_null(Added::RefreshedAt))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE social_connections c SET expires_at = t.expires_at
               FROM social_account_tokens t WHERE t.connection_id = c.id",
        )
        .await?;
        db.execute_unprepared(&format!(
            "CREATE INDEX {INDEX} ON social_connections (expires_at)
              WHERE status = 'active' AND expires_at IS NOT NULL"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP INDEX IF EXISTS {INDEX}"))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SocialConnections::Table)
                    .drop_column(Added::ExpiresAt)
                    .drop_column(Added::StatusReason)
                    .drop_column(Added::RefreshedAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Added {
    ExpiresAt,
    StatusReason,
    RefreshedAt,
}
