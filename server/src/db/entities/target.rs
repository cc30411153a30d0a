//! `post_targets`.

use std::collections::BTreeMap;

use sea_orm::entity::prelude::*;

use crate::db::json;
use crate::domain::status::TargetStatus;
use crate::domain::target::TargetSpec;

/// A row of `post_targets`: one post on one platform.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "post_targets")]
pub struct Model {
    /// Target id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The post.
    pub post_id: Uuid,
    /// Platform id.
    pub platform: String,
    /// The connected account to publish with (default: the owner's account on the
    /// platform).
    pub connection_id: Option<Uuid>,
    /// Where the target stands.
    pub status: TargetStatus,
    /// Publish attempts made so far.
    pub attempts: i32,
    /// The platform's id of the published post.
    pub platform_post_id: Option<String>,
    /// Public URL of the published post.
    pub platform_url: Option<String>,
    /// Last error, phrased for the user.
    pub last_error: Option<String>,
    /// Last HTTP status the platform answered.
    pub last_response_code: Option<i32>,
    /// When the platform accepted the post.
    pub published_at: Option<DateTimeUtc>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// The post version the queued job was made for; a job of another version is stale.
    pub queue_version: i32,
    /// The publish attempt that holds the target while `publishing`.
    pub attempt_id: Option<Uuid>,
    /// When the next retry is due, while `retrying`.
    pub next_attempt_at: Option<DateTimeUtc>,
    /// Platform options, a JSON object of strings passed to the platform's plugin.
    pub options: Json,
}

/// Relations of `post_targets`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The post this target belongs to.
    #[sea_orm(
        belongs_to = "super::post::Entity",
        from = "Column::PostId",
        to = "super::post::Column::Id",
        on_delete = "Cascade"
    )]
    Post,
}

impl Related<super::post::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Post.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The platform options.
    pub fn options(&self) -> BTreeMap<String, String> {
        json::options(&self.options)
    }

    /// The target's settings: platform, account and options.
    pub fn spec(&self) -> TargetSpec {
        TargetSpec {
            platform: self.platform.clone(),
            connection_id: self.connection_id,
            options: self.options(),
        }
    }
}
