//! `post_targets`: one row per post × platform (× connection), the unit that is published.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000001_create_social_posts::SocialPosts;
use crate::m20261128_000002_create_social_connections::SocialConnections;

/// Creates `post_targets`, cascading from its post.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PostTargets::Table)
                    .col(uuid(PostTargets::Id).primary_key())
                    .col(uuid(PostTargets::PostId))
                    .col(string_len(PostTargets::Platform, 32))
                    .col(uuid_null(PostTargets::ConnectionId))
                    .col(string_len(PostTargets::Status, 32))
                    .col(integer(PostTargets::Attempts).default(0))
                    .col(text_null(PostTargets::PlatformPostId))
                    .col(text_null(PostTargets::PlatformUrl))
                    .col(text_null(PostTargets::LastError))
                    .col(integer_null(PostTargets::LastResponseCode))
                    .col(timestamp_with_time_zone_null(PostTargets::PublishedAt))
                    .col(timestamp_with_time_zone(PostTargets::CreatedAt))
                    .col(timestamp_with_time_zone(PostTargets::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_post_targets_post")
                            .from(PostTargets::Table, PostTargets::PostId)
                            .to(SocialPosts::Table, SocialPosts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_post_targets_connection")
                            .from(PostTargets::Table, PostTargets::ConnectionId)
                            .to(SocialConnections::Table, SocialConnections::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_post_targets_post_platform")
                    .table(PostTargets::Table)
                    .col(PostTargets::PostId)
                    .col(PostTargets::Platform)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_post_targets_platform_status")
                    .table(PostTargets::Table)
                    .col(PostTargets::Platform)
                    .col(PostTargets::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PostTargets::Table).to_owned())
            .await
    }
}

/// Table and column names of `post_targets`.
#[derive(DeriveIden)]
pub(crate) enum PostTargets {
    Table,
    Id,
    PostId,
    Platform,
    ConnectionId,
    Status,
    Attempts,
    PlatformPostId,
    PlatformUrl,
    LastError,
    LastResponseCode,
    PublishedAt,
    CreatedAt,
    UpdatedAt,
}
