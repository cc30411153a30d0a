//! When an account whose token cannot be refreshed must be reconnected.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000002_create_social_connections::SocialConnections;

/// Adds `social_connections.reconnect_by`: set (to the token's expiry) once the refresher
/// has announced that an account whose token cannot be refreshed (no refresh token, e.g.
/// LinkedIn's 60-day tokens outside its partner programme) must be reconnected before
/// then; cleared when new tokens are stored.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SocialConnections::Table)
                    .add_column(timestamp_with_time_zone_null(Added::ReconnectBy))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SocialConnections::Table)
                    .drop_column(Added::ReconnectBy)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Added {
    ReconnectBy,
}
