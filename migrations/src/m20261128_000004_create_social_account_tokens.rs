//! `social_account_tokens`: encrypted OAuth tokens of a connection (encryption comes with
//! the security work; the columns hold ciphertext only).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261128_000002_create_social_connections::SocialConnections;

/// Creates `social_account_tokens`, cascading from its connection.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SocialAccountTokens::Table)
                    .col(uuid(SocialAccountTokens::Id).primary_key())
                    .col(uuid_uniq(SocialAccountTokens::ConnectionId))
                    .col(string_len(SocialAccountTokens::KeyId, 64))
                    .col(blob(SocialAccountTokens::TokenCiphertext))
                    .col(blob_null(SocialAccountTokens::RefreshCiphertext))
                    .col(timestamp_with_time_zone_null(
                        SocialAccountTokens::ExpiresAt,
                    ))
                    .col(timestamp_with_time_zone(SocialAccountTokens::CreatedAt))
                    .col(timestamp_with_time_zone(SocialAccountTokens::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_social_account_tokens_connection")
                            .from(
                                SocialAccountTokens::Table,
                                SocialAccountTokens::ConnectionId,
                            )
                            .to(SocialConnections::Table, SocialConnections::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SocialAccountTokens::Table).to_owned())
            .await
    }
}

/// Table and column names of `social_account_tokens`.
#[derive(DeriveIden)]
enum SocialAccountTokens {
    Table,
    Id,
    ConnectionId,
    KeyId,
    TokenCiphertext,
    RefreshCiphertext,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}
