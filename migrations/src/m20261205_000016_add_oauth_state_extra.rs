//! Account options chosen when a connect flow begins.

use sea_orm_migration::prelude::*;

/// Adds `oauth_states.extra_ciphertext`: the credential extras the user chose when the
/// flow began (e.g. LinkedIn's `author`, the organization page to post as), sealed like
/// the verifier and added to the account's credentials when the flow completes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE oauth_states ADD COLUMN extra_ciphertext bytea")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE oauth_states DROP COLUMN extra_ciphertext")
            .await?;
        Ok(())
    }
}
