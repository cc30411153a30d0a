//! Media with alt text and MIME type on posts, and per-target platform options.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000001_create_social_posts::SocialPosts;
use crate::m20261128_000003_create_post_targets::PostTargets;

/// Adds `social_posts.media` (JSON array of `{url, alt, mime_type}`, filled from
/// `media_urls`) and `post_targets.options` (JSON object of platform options).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SocialPosts::Table)
                    .add_column(json(Added::Media).default(Expr::cust("'[]'")))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PostTargets::Table)
                    .add_column(json(Added::Options).default(Expr::cust("'{}'")))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "UPDATE social_posts SET media = (
                       SELECT coalesce(json_agg(json_build_object('url', u)), '[]'::json)
                         FROM json_array_elements_text(media_urls) AS u)
                     WHERE json_array_length(media_urls) > 0",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PostTargets::Table)
                    .drop_column(Added::Options)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SocialPosts::Table)
                    .drop_column(Added::Media)
                    .to_owned(),
            )
            .await
    }
}

/// The added columns.
#[derive(DeriveIden)]
enum Added {
    Media,
    Options,
}
