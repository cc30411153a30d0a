//! `publish_attempts`: every call to a platform for a target, with its outcome.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000003_create_post_targets::PostTargets;

/// Creates `publish_attempts`, cascading from its target.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PublishAttempts::Table)
                    .col(uuid(PublishAttempts::Id).primary_key())
                    .col(uuid(PublishAttempts::TargetId))
                    .col(integer(PublishAttempts::AttemptNumber))
                    .col(timestamp_with_time_zone(PublishAttempts::StartedAt))
                    .col(timestamp_with_time_zone_null(PublishAttempts::FinishedAt))
                    .col(string_len_null(PublishAttempts::Outcome, 32))
                    .col(integer_null(PublishAttempts::ResponseCode))
                    .col(text_null(PublishAttempts::Error))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_publish_attempts_target")
                            .from(PublishAttempts::Table, PublishAttempts::TargetId)
                            .to(PostTargets::Table, PostTargets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_publish_attempts_target_attempt")
                    .table(PublishAttempts::Table)
                    .col(PublishAttempts::TargetId)
                    .col(PublishAttempts::AttemptNumber)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PublishAttempts::Table).to_owned())
            .await
    }
}

/// Table and column names of `publish_attempts`.
#[derive(DeriveIden)]
enum PublishAttempts {
    Table,
    Id,
    TargetId,
    AttemptNumber,
    StartedAt,
    FinishedAt,
    Outcome,
    ResponseCode,
    Error,
}
