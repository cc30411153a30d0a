//! Posting schedules: weekly time slots per connected account, and the posts queued in them.

use sea_orm_migration::prelude::*;

use crate::m20261204_000012_enable_row_level_security::{OWNED_BY_TENANT, tenant_table_security};

/// Creates `posting_schedules` (one per connection: its time zone, whether its queue is
/// paused, and its weekly slots as a JSON array of `{"day": "MON", "time": "09:00"}`) and
/// `queued_posts` (which posts took their time from a connection's slots, so sharing next
/// and compacting move those and no post given a custom time). Both go with their
/// connection (and a queued post with its post). Row-level security holds the API to the
/// tenant's rows, like the other tenant tables; the workers cross tenants.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from(
            "CREATE TABLE posting_schedules (
               connection_id uuid PRIMARY KEY
                 REFERENCES social_connections (id) ON DELETE CASCADE,
               owner_id text NOT NULL,
               time_zone text NOT NULL,
               paused boolean NOT NULL DEFAULT false,
               slots jsonb NOT NULL DEFAULT '[]'::jsonb,
               created_at timestamptz NOT NULL,
               updated_at timestamptz NOT NULL
             );
             CREATE INDEX posting_schedules_owner ON posting_schedules (owner_id);
             CREATE TABLE queued_posts (
               post_id uuid NOT NULL REFERENCES social_posts (id) ON DELETE CASCADE,
               connection_id uuid NOT NULL
                 REFERENCES social_connections (id) ON DELETE CASCADE,
               owner_id text NOT NULL,
               PRIMARY KEY (post_id, connection_id)
             );
             CREATE INDEX queued_posts_connection ON queued_posts (connection_id);",
        );
        for table in ["posting_schedules", "queued_posts"] {
            sql.push_str(&tenant_table_security(table, OWNED_BY_TENANT));
        }
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE IF EXISTS queued_posts; DROP TABLE IF EXISTS posting_schedules",
            )
            .await?;
        Ok(())
    }
}
