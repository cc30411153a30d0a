//! What a library video is: its duration and codec (its frame size goes in `width` and
//! `height`, like an image's).

use sea_orm_migration::prelude::*;

/// Adds `duration_ms` and `video_codec` to `media` (null for images and unprobed files).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE media ADD COLUMN duration_ms bigint, ADD COLUMN video_codec text",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE media DROP COLUMN duration_ms, DROP COLUMN video_codec",
            )
            .await?;
        Ok(())
    }
}
