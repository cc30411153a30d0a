//! The media library: files a tenant uploaded to Herald, which platforms fetch from
//! Herald's signed URLs.

use sea_orm_migration::prelude::*;

use crate::m20261204_000012_enable_row_level_security::{OWNED_BY_TENANT, tenant_table_security};

/// Creates `media`: one row per uploaded file (or per streamed upload begun and not yet
/// finished, `status = 'pending'`). The SHA-256 of the bytes is unique per tenant, so the
/// same file uploaded twice is stored once. Row-level security holds the API to the
/// tenant's rows like the other tenant tables; the public media route (no bearer token)
/// and the garbage collector read through the worker role, which crosses tenants.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE media (
                   id uuid PRIMARY KEY,
                   owner_id text NOT NULL,
                   status text NOT NULL CHECK (status IN ('pending', 'ready')),
                   file_name text,
                   declared_size bigint,
                   content_type text,
                   byte_size bigint,
                   sha256 bytea,
                   width integer,
                   height integer,
                   alt_text text,
                   storage_key text NOT NULL,
                   created_at timestamptz NOT NULL,
                   upload_expires_at timestamptz,
                   CONSTRAINT media_ready_is_complete CHECK (status = 'pending' OR
                     (content_type IS NOT NULL AND byte_size IS NOT NULL AND sha256 IS NOT NULL))
                 );
                 CREATE UNIQUE INDEX media_owner_sha256 ON media (owner_id, sha256);
                 CREATE INDEX media_owner_created ON media (owner_id, created_at DESC, id DESC);
                 CREATE INDEX media_created ON media (created_at);
                 {}",
                tenant_table_security("media", OWNED_BY_TENANT)
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS media")
            .await?;
        Ok(())
    }
}
