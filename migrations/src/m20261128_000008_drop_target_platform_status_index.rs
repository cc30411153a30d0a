//! Drops `idx_post_targets_platform_status`: every target status change paid for it, and
//! the platform filter is served by `uq_post_targets_post_platform` instead.

use sea_orm_migration::prelude::*;

use crate::m20261128_000003_create_post_targets::PostTargets;

/// Drops the index; `down` recreates it.
#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_post_targets_platform_status";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NAME)
                    .table(PostTargets::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(PostTargets::Table)
                    .col(PostTargets::Platform)
                    .col(PostTargets::Status)
                    .to_owned(),
            )
            .await
    }
}
