//! Columns the publishing worker needs on `post_targets`: the version a queued job was made
//! for, the attempt currently holding the target, and when the next retry is due.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000003_create_post_targets::PostTargets;

/// Adds `queue_version`, `attempt_id` and `next_attempt_at` to `post_targets`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PostTargets::Table)
                    .add_column(integer(QueueColumns::QueueVersion).default(0))
                    .add_column(uuid_null(QueueColumns::AttemptId))
                    .add_column(timestamp_with_time_zone_null(QueueColumns::NextAttemptAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_post_targets_status_next_attempt_at")
                    .table(PostTargets::Table)
                    .col(PostTargets::Status)
                    .col(QueueColumns::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_post_targets_status_next_attempt_at")
                    .table(PostTargets::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PostTargets::Table)
                    .drop_column(QueueColumns::QueueVersion)
                    .drop_column(QueueColumns::AttemptId)
                    .drop_column(QueueColumns::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }
}

/// The added columns.
#[derive(DeriveIden)]
enum QueueColumns {
    QueueVersion,
    AttemptId,
    NextAttemptAt,
}
