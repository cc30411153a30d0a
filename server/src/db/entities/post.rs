//! `social_posts`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::json;
use crate::domain::post::{ApprovalStatus, MediaItem};
use crate::domain::status::PostStatus;

/// A row of `social_posts` (serialisable: post events cross processes as JSON).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "social_posts")]
pub struct Model {
    /// Post id (UUID v7, time ordered).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Text of the post.
    pub content: String,
    /// Platform ids, a JSON array of strings.
    pub platforms: Json,
    /// Status derived from the targets' (see `domain::status::PostStatus::derive`).
    pub status: PostStatus,
    /// When the post is due, UTC.
    pub scheduled_at: Option<DateTimeUtc>,
    /// The wall-clock time the author chose, in `timezone`.
    pub local_scheduled_at: Option<DateTime>,
    /// When the first target was published.
    pub posted_at: Option<DateTimeUtc>,
    /// The author's IANA time zone.
    pub timezone: String,
    /// Media URLs, a JSON array of strings.
    pub media_urls: Json,
    /// Campaign label.
    pub campaign: Option<String>,
    /// Internal notes.
    pub notes: Option<String>,
    /// Whether an approver must approve before publishing.
    pub approval_required: bool,
    /// Approval state.
    pub approval_status: ApprovalStatus,
    /// Why an approver rejected the post.
    pub rejection_reason: Option<String>,
    /// Summary of why publishing failed.
    pub failure_reason: Option<String>,
    /// Owning tenant.
    pub owner_id: String,
    /// Creating user.
    pub created_by: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// When the post was archived.
    pub archived_at: Option<DateTimeUtc>,
    /// Optimistic-concurrency version, incremented on every change.
    pub version: i32,
    /// Media with details, a JSON array of `domain::post::MediaItem` (`media_urls` holds
    /// the same URLs).
    pub media: Json,
}

/// Relations of `social_posts`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// A post has one target per platform.
    #[sea_orm(has_many = "super::target::Entity")]
    Targets,
}

impl Related<super::target::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Targets.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The platform ids.
    pub fn platform_ids(&self) -> Vec<String> {
        json::strings(&self.platforms)
    }

    /// The media URLs.
    pub fn media_urls(&self) -> Vec<String> {
        json::strings(&self.media_urls)
    }

    /// The media with their details.
    pub fn media(&self) -> Vec<MediaItem> {
        json::media(&self.media, &self.media_urls)
    }

    /// Whether the post's targets may be published (`domain::status::is_publishable`).
    pub fn is_publishable(&self) -> bool {
        crate::domain::status::is_publishable(self.approval_status, self.archived_at.is_some())
    }
}
