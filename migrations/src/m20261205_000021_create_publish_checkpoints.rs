//! Publish checkpoints: what a plugin saved during a multi-step publish (a media container
//! created, not yet published), so a later attempt resumes instead of repeating a step.

use sea_orm_migration::prelude::*;

use crate::m20261204_000012_enable_row_level_security::{OWNED_BY_TENANT, tenant_table_security};

/// Creates `publish_checkpoints`: one row per target, idempotency key and name, going with
/// its target. Row-level security holds the API's role to the tenant's rows (the publisher
/// runs in the owner's scope); the workers cross tenants. `saved_at` lets the reconciler
/// drop old ones.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from(
            "CREATE TABLE publish_checkpoints (
               target_id uuid NOT NULL REFERENCES post_targets (id) ON DELETE CASCADE,
               idempotency_key text NOT NULL,
               name text NOT NULL,
               owner_id text NOT NULL,
               value text NOT NULL,
               saved_at timestamptz NOT NULL DEFAULT now(),
               PRIMARY KEY (target_id, idempotency_key, name)
             );
             CREATE INDEX publish_checkpoints_saved_at ON publish_checkpoints (saved_at);",
        );
        sql.push_str(&tenant_table_security(
            "publish_checkpoints",
            OWNED_BY_TENANT,
        ));
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS publish_checkpoints")
            .await?;
        Ok(())
    }
}
