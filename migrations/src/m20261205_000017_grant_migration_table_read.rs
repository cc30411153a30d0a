//! Lets the server's roles see which migrations are applied (for `/readyz`).

use sea_orm_migration::prelude::*;

use crate::m20261204_000012_enable_row_level_security::{API_ROLE, WORKER_ROLE};

/// Grants `SELECT` on `seaql_migrations` to the API and worker roles: readiness compares
/// the applied migrations with those the running build knows.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "GRANT SELECT ON seaql_migrations TO {API_ROLE}, {WORKER_ROLE}"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "REVOKE SELECT ON seaql_migrations FROM {API_ROLE}, {WORKER_ROLE}"
            ))
            .await?;
        Ok(())
    }
}
