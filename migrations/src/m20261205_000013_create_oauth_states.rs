//! Pending OAuth connect flows, shared by every API replica.

use sea_orm_migration::prelude::*;

use crate::m20261204_000012_enable_row_level_security::{OWNED_BY_TENANT, tenant_table_security};

/// Creates `oauth_states`: one row per connect flow begun and not yet completed. The
/// `state` is stored only as its SHA-256 (a leaked table does not let anyone complete a
/// flow) and the PKCE verifier only sealed; a flow is completed once, by deleting its row.
/// Row-level security holds the API to the tenant's rows, like the other tenant tables;
/// the browser callback (no bearer token) consumes its row through the worker role, which
/// crosses tenants.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE oauth_states (
                   state_hash bytea PRIMARY KEY,
                   owner_id text NOT NULL,
                   user_id text NOT NULL,
                   platform text NOT NULL,
                   redirect_uri text NOT NULL,
                   key_id text NOT NULL,
                   verifier_ciphertext bytea NOT NULL,
                   browser_bound boolean NOT NULL DEFAULT false,
                   created_at timestamptz NOT NULL,
                   expires_at timestamptz NOT NULL
                 );
                 CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);
                 {}",
                tenant_table_security("oauth_states", OWNED_BY_TENANT)
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS oauth_states")
            .await?;
        Ok(())
    }
}
