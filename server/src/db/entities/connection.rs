//! `social_connections`.

use sea_orm::entity::prelude::*;

/// A row of `social_connections`: a tenant's account on one platform.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "social_connections")]
pub struct Model {
    /// Connection id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant.
    pub owner_id: String,
    /// Platform id.
    pub platform: String,
    /// The account's id on the platform.
    pub external_account_id: String,
    /// The account's name as the platform shows it.
    pub display_name: String,
    /// `active`, or `reconnect_required` once its credentials were refused.
    pub status: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// Whether targets without a chosen account publish with this one (at most one per
    /// tenant and platform).
    pub is_default: bool,
    /// When the access token expires, as the platform said (`None`: it did not say).
    pub expires_at: Option<DateTimeUtc>,
    /// Why the account must be reconnected: now (`reconnect_required`), or by
    /// `reconnect_by`.
    pub status_reason: Option<String>,
    /// When its tokens were last refreshed.
    pub refreshed_at: Option<DateTimeUtc>,
    /// When the account must be reconnected by: its token expires then and cannot be
    /// refreshed (set once that was announced; cleared by new tokens).
    pub reconnect_by: Option<DateTimeUtc>,
}

/// Relations of `social_connections` (none navigated).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
