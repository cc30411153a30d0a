//! `social_account_tokens`: encrypted credentials of a connection (see `crate::secrets`).

use sea_orm::entity::prelude::*;

/// A row of `social_account_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_account_tokens")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The connection (one token row each).
    #[sea_orm(unique)]
    pub connection_id: Uuid,
    /// Id of the key the values were sealed with.
    pub key_id: String,
    /// Sealed access token and platform-specific values (JSON).
    pub token_ciphertext: Vec<u8>,
    /// Sealed refresh token.
    pub refresh_ciphertext: Option<Vec<u8>>,
    /// Expiry of the access token.
    pub expires_at: Option<DateTimeUtc>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// Relations of `social_account_tokens` (none navigated).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
