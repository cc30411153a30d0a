//! An explicit default account per tenant and platform.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000002_create_social_connections::SocialConnections;

/// Adds `social_connections.is_default`: the account a target without a chosen account
/// publishes with; at most one per tenant and platform (a partial unique index). Until
/// now the most recently updated active account was used, so that one becomes the
/// default.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The partial unique index.
const INDEX: &str = "social_connections_one_default";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SocialConnections::Table)
                    .add_column(boolean(Added::IsDefault).default(false))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE social_connections SET is_default = true
              WHERE id IN (SELECT DISTINCT ON (owner_id, platform) id
                             FROM social_connections
                            ORDER BY owner_id, platform, (status = 'active') DESC,
                                     updated_at DESC, id)",
        )
        .await?;
        db.execute_unprepared(&format!(
            "CREATE UNIQUE INDEX {INDEX} ON social_connections (owner_id, platform)
              WHERE is_default"
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
                    .drop_column(Added::IsDefault)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Added {
    IsDefault,
}
