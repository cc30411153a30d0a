//! `post_metrics`: engagement figures fetched from a platform for a published target.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000003_create_post_targets::PostTargets;

/// Creates `post_metrics`, cascading from its target.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PostMetrics::Table)
                    .col(uuid(PostMetrics::Id).primary_key())
                    .col(uuid(PostMetrics::TargetId))
                    .col(timestamp_with_time_zone(PostMetrics::FetchedAt))
                    .col(big_integer_null(PostMetrics::Likes))
                    .col(big_integer_null(PostMetrics::Shares))
                    .col(big_integer_null(PostMetrics::Comments))
                    .col(big_integer_null(PostMetrics::Impressions))
                    .col(json_null(PostMetrics::Raw))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_post_metrics_target")
                            .from(PostMetrics::Table, PostMetrics::TargetId)
                            .to(PostTargets::Table, PostTargets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_post_metrics_target_fetched_at")
                    .table(PostMetrics::Table)
                    .col(PostMetrics::TargetId)
                    .col(PostMetrics::FetchedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PostMetrics::Table).to_owned())
            .await
    }
}

/// Table and column names of `post_metrics`.
#[derive(DeriveIden)]
enum PostMetrics {
    Table,
    Id,
    TargetId,
    FetchedAt,
    Likes,
    Shares,
    Comments,
    Impressions,
    Raw,
}
