//! What a caller asks of a post (a new post, changes to one) and how a request becomes a
//! validated edit of the stored post, checked against the rules that need no lookups.

use super::PostService;
use crate::db::entities::{post, target};
use crate::domain::actor::{Actor, Role};
use crate::domain::post::{
    self as rules, ApprovalStatus, MAX_CAMPAIGN_CHARS, MAX_NOTES_CHARS, MediaItem,
};
use crate::domain::schedule;
use crate::domain::slots::PublishMode;
use crate::domain::target::{TargetSpec, normalize_targets};
use crate::error::AppError;

/// Fields of a new post.
#[derive(Debug, Clone, Default)]
pub struct NewPost {
    /// Text.
    pub content: String,
    /// Media URLs (shorthand for `media` without alt text; give one or the other).
    pub media_urls: Vec<String>,
    /// Media attachments.
    pub media: Vec<MediaItem>,
    /// Platform ids (shorthand for `targets` with default settings; give one or the other).
    pub platforms: Vec<String>,
    /// Targets with their account and options.
    pub targets: Vec<TargetSpec>,
    /// When to publish (see `domain::schedule::ScheduleRequest`); a draft when absent.
    pub scheduled_at: Option<String>,
    /// The author's IANA time zone.
    pub time_zone: Option<String>,
    /// Choice for a local time inside a DST overlap.
    pub ambiguous_time: Option<schedule::AmbiguousTime>,
    /// Campaign label.
    pub campaign: Option<String>,
    /// Internal notes.
    pub notes: Option<String>,
    /// Whether an approver must approve it.
    pub approval_required: bool,
    /// How it gets its time: `scheduled_at` (`Custom`), a queue slot, or now.
    pub mode: PublishMode,
}

/// Changes to a post; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct PostChanges {
    /// New text.
    pub content: Option<String>,
    /// New media URLs (or `media`, not both).
    pub media_urls: Option<Vec<String>>,
    /// New media attachments.
    pub media: Option<Vec<MediaItem>>,
    /// New platform ids (or `targets`, not both).
    pub platforms: Option<Vec<String>>,
    /// New targets.
    pub targets: Option<Vec<TargetSpec>>,
    /// New campaign label or none.
    pub campaign: Option<Option<String>>,
    /// New notes or none.
    pub notes: Option<Option<String>>,
    /// New approval requirement.
    pub approval_required: Option<bool>,
    /// Refuse the change unless the post is still at this version.
    pub expected_version: Option<i32>,
}

/// A post edit, worked out from the locked post and checked against the rules that need
/// no lookups.
pub(super) struct Edit {
    pub(super) content: String,
    pub(super) media: Vec<MediaItem>,
    pub(super) targets: Vec<TargetSpec>,
    pub(super) campaign: Option<String>,
    pub(super) notes: Option<String>,
    pub(super) approval_required: bool,
    pub(super) approval: ApprovalStatus,
    /// Whether content, media or targets change (which needs a new approval and, for a
    /// scheduled post, the plugins' checks).
    pub(super) substance_changed: bool,
}

impl PostService {
    /// The requested targets: `targets`, or `platforms` with default settings.
    pub(super) fn requested_targets(
        &self,
        platforms: Vec<String>,
        targets: Vec<TargetSpec>,
    ) -> Result<Vec<TargetSpec>, AppError> {
        match (platforms.is_empty(), targets.is_empty()) {
            (false, false) => Err(AppError::bad_input(
                "targets",
                "give `platforms` or `targets`, not both",
            )),
            (false, true) => normalize_targets(
                platforms.into_iter().map(TargetSpec::platform).collect(),
                &self.platforms,
                "platforms",
            ),
            (true, _) => normalize_targets(targets, &self.platforms, "targets"),
        }
    }

    /// What `changes` make of `current` (with its `targets`), checked against the rules
    /// that need no lookups.
    pub(super) fn edit(
        &self,
        actor: &Actor,
        current: &post::Model,
        targets: &[target::Model],
        changes: PostChanges,
    ) -> Result<Edit, AppError> {
        let content = changes.content.unwrap_or_else(|| current.content.clone());
        rules::validate_content(&content)?;
        let media = match (changes.media_urls, changes.media) {
            (None, None) => current.media(),
            (urls, media) => requested_media(urls.unwrap_or_default(), media.unwrap_or_default())?,
        };
        let current_targets: Vec<TargetSpec> = targets.iter().map(target::Model::spec).collect();
        let new_targets = match (changes.platforms, changes.targets) {
            (None, None) => current_targets.clone(),
            (Some(platforms), None) => {
                // A platform list keeps the settings of the targets it keeps.
                let mut specs = self.requested_targets(platforms, Vec::new())?;
                for spec in &mut specs {
                    if let Some(kept) = current_targets.iter().find(|t| t.platform == spec.platform)
                    {
                        *spec = kept.clone();
                    }
                }
                specs
            }
            (platforms, targets) => {
                self.requested_targets(platforms.unwrap_or_default(), targets.unwrap_or_default())?
            }
        };
        let campaign = changes.campaign.unwrap_or_else(|| current.campaign.clone());
        let notes = changes.notes.unwrap_or_else(|| current.notes.clone());
        rules::validate_label("campaign", campaign.as_deref(), MAX_CAMPAIGN_CHARS)?;
        rules::validate_label("notes", notes.as_deref(), MAX_NOTES_CHARS)?;

        let approval_required = changes
            .approval_required
            .unwrap_or(current.approval_required);
        if current.approval_required && !approval_required {
            // Lifting the requirement would let the post out without (or despite) an
            // approver's decision: only an approver may.
            actor.require(Role::Approver)?;
        }
        let substance_changed = content != current.content
            || media != current.media()
            || new_targets != current_targets;
        let approval = if !approval_required {
            ApprovalStatus::NotRequired
        } else if substance_changed || !current.approval_required {
            ApprovalStatus::Pending
        } else {
            current.approval_status
        };
        Ok(Edit {
            content,
            media,
            targets: new_targets,
            campaign,
            notes,
            approval_required,
            approval,
            substance_changed,
        })
    }
}

pub(super) fn urls_of(media: &[MediaItem]) -> Vec<String> {
    media.iter().map(|m| m.url.clone()).collect()
}

/// The requested media: `media`, or `media_urls` without details; validated.
pub(super) fn requested_media(
    urls: Vec<String>,
    media: Vec<MediaItem>,
) -> Result<Vec<MediaItem>, AppError> {
    match (urls.is_empty(), media.is_empty()) {
        (false, false) => Err(AppError::bad_input(
            "media",
            "give `media` or `mediaUrls`, not both",
        )),
        (false, true) => {
            let media: Vec<MediaItem> = urls.into_iter().map(MediaItem::url).collect();
            rules::validate_media(&media, "mediaUrls")?;
            Ok(media)
        }
        (true, _) => {
            rules::validate_media(&media, "media")?;
            Ok(media)
        }
    }
}
