//! `post_metrics`: engagement snapshots of published targets.

use sea_orm::entity::prelude::*;

/// A row of `post_metrics`: the figures one platform reported for one target at one time.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "post_metrics")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The published target.
    pub target_id: Uuid,
    /// When the platform was asked.
    pub fetched_at: DateTimeUtc,
    /// Likes (favourites).
    pub likes: Option<i64>,
    /// Shares (reposts, boosts).
    pub shares: Option<i64>,
    /// Comments (replies).
    pub comments: Option<i64>,
    /// Impressions (views).
    pub impressions: Option<i64>,
    /// Every figure the plugin reported, by its own name.
    pub raw: Option<Json>,
}

/// Relations of `post_metrics` (none navigated).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
