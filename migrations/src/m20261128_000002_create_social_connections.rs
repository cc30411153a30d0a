//! `social_connections`: a tenant's connected account on one platform.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `social_connections`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SocialConnections::Table)
                    .col(uuid(SocialConnections::Id).primary_key())
                    .col(text(SocialConnections::OwnerId))
                    .col(string_len(SocialConnections::Platform, 32))
                    .col(text(SocialConnections::ExternalAccountId))
                    .col(text(SocialConnections::DisplayName))
                    .col(string_len(SocialConnections::Status, 32))
                    .col(timestamp_with_time_zone(SocialConnections::CreatedAt))
                    .col(timestamp_with_time_zone(SocialConnections::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_social_connections_owner_platform_account")
                    .table(SocialConnections::Table)
                    .col(SocialConnections::OwnerId)
                    .col(SocialConnections::Platform)
                    .col(SocialConnections::ExternalAccountId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SocialConnections::Table).to_owned())
            .await
    }
}

/// Table and column names of `social_connections`.
#[derive(DeriveIden)]
pub(crate) enum SocialConnections {
    Table,
    Id,
    OwnerId,
    Platform,
    ExternalAccountId,
    DisplayName,
    Status,
    CreatedAt,
    UpdatedAt,
}
