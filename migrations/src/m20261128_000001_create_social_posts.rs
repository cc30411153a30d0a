//! `social_posts`: one row per post, with its schedule, approval state and tenancy.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `social_posts` and its scheduler and listing indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SocialPosts::Table)
                    .col(uuid(SocialPosts::Id).primary_key())
                    .col(text(SocialPosts::Content))
                    .col(json(SocialPosts::Platforms))
                    .col(string_len(SocialPosts::Status, 32))
                    .col(timestamp_with_time_zone_null(SocialPosts::ScheduledAt))
                    .col(timestamp_null(SocialPosts::LocalScheduledAt))
                    .col(timestamp_with_time_zone_null(SocialPosts::PostedAt))
                    .col(string_len(SocialPosts::Timezone, 64))
                    .col(json(SocialPosts::MediaUrls))
                    .col(text_null(SocialPosts::Campaign))
                    .col(text_null(SocialPosts::Notes))
                    .col(boolean(SocialPosts::ApprovalRequired).default(false))
                    .col(string_len(SocialPosts::ApprovalStatus, 32))
                    .col(text_null(SocialPosts::RejectionReason))
                    .col(text_null(SocialPosts::FailureReason))
                    .col(text(SocialPosts::OwnerId))
                    .col(text(SocialPosts::CreatedBy))
                    .col(timestamp_with_time_zone(SocialPosts::CreatedAt))
                    .col(timestamp_with_time_zone(SocialPosts::UpdatedAt))
                    .col(timestamp_with_time_zone_null(SocialPosts::ArchivedAt))
                    .col(integer(SocialPosts::Version).default(1))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_social_posts_status_scheduled_at",
                [SocialPosts::Status, SocialPosts::ScheduledAt],
            ),
            (
                "idx_social_posts_owner_created_at",
                [SocialPosts::OwnerId, SocialPosts::CreatedAt],
            ),
            (
                "idx_social_posts_owner_scheduled_at",
                [SocialPosts::OwnerId, SocialPosts::ScheduledAt],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(SocialPosts::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SocialPosts::Table).to_owned())
            .await
    }
}

/// Table and column names of `social_posts`.
#[derive(DeriveIden)]
pub(crate) enum SocialPosts {
    Table,
    Id,
    Content,
    Platforms,
    Status,
    ScheduledAt,
    LocalScheduledAt,
    PostedAt,
    Timezone,
    MediaUrls,
    Campaign,
    Notes,
    ApprovalRequired,
    ApprovalStatus,
    RejectionReason,
    FailureReason,
    OwnerId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    ArchivedAt,
    Version,
}
