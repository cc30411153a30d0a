//! The post commands: create, edit, schedule, approve, archive, retry, mark published,
//! delete. Each runs in one transaction on the locked post (`db::posts::lock`), applies the
//! rules of [`crate::domain`], and announces the change and syncs the queue after commit.
//! Edits and schedules of a post run the plugin checks with the row released (see
//! [`super::checks`]).

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set, TransactionTrait};
use uuid::Uuid;

use super::PostService;
use super::checks::Checked;
use super::input::{NewPost, PostChanges, requested_media, urls_of};
use crate::db::entities::{post, target};
use crate::db::{posts, schedules, targets};
use crate::domain::actor::{Actor, Role};
use crate::domain::post::{self as rules, ApprovalStatus, MAX_CAMPAIGN_CHARS, MAX_NOTES_CHARS};
use crate::domain::schedule::{self, Schedule, ScheduleRequest};
use crate::domain::slots::PublishMode;
use crate::domain::status::{PostStatus, TargetStatus};
use crate::domain::target::{TargetSpec, platforms_of};
use crate::error::AppError;

impl PostService {
    /// Creates a post: a draft without a time, scheduled with one, or placed by its
    /// mode (see [`PublishMode`]; `SHARE_NEXT` moves the queued posts after it, announced
    /// on `postUpdated`).
    pub async fn create(&self, actor: &Actor, input: NewPost) -> Result<post::Model, AppError> {
        rules::validate_content(&input.content)?;
        let mut media = requested_media(input.media_urls, input.media)?;
        self.attach_media(actor, &mut media).await?;
        rules::validate_label("campaign", input.campaign.as_deref(), MAX_CAMPAIGN_CHARS)?;
        rules::validate_label("notes", input.notes.as_deref(), MAX_NOTES_CHARS)?;
        let targets = self.requested_targets(input.platforms, input.targets)?;
        let platforms = platforms_of(&targets);
        let now = Utc::now();
        let zone = match &input.time_zone {
            Some(name) => schedule::parse_zone(name, "timeZone")?,
            None => chrono_tz::Tz::UTC,
        };
        if input.mode != PublishMode::Custom && input.scheduled_at.is_some() {
            return Err(AppError::bad_input(
                "scheduledAt",
                "give scheduledAt only with mode CUSTOM; the other modes choose the time",
            ));
        }
        let scheduled_at = match input.mode {
            PublishMode::ShareNow => Some(now.to_rfc3339()),
            _ => input.scheduled_at.clone(),
        };
        let queued = matches!(input.mode, PublishMode::AddToQueue | PublishMode::ShareNext);
        let schedule = match &scheduled_at {
            Some(at) => {
                self.require_schedulable(actor, &input.content, &media, &targets)
                    .await?;
                Some(schedule::resolve(
                    ScheduleRequest {
                        scheduled_at: at,
                        time_zone: input.time_zone.as_deref(),
                        ambiguous_time: input.ambiguous_time,
                    },
                    now,
                )?)
            }
            None if queued => {
                self.require_schedulable(actor, &input.content, &media, &targets)
                    .await?;
                None
            }
            None => {
                self.require_owned_accounts(actor, &targets).await?;
                None
            }
        };
        let txn = self.db.begin().await?;
        let placement = if queued {
            let queues = self.queues_of(&txn, actor, &targets).await?;
            let ids: Vec<Uuid> = queues.iter().map(|q| q.connection.id).collect();
            schedules::lock_queues(&txn, &ids).await?;
            Some(
                self.place(&txn, actor, &queues, input.mode, None, now)
                    .await?,
            )
        } else {
            None
        };
        let (at, local, zone) = match (&schedule, &placement) {
            (Some(s), _) => (Some(s.at), Some(s.local), s.zone),
            (None, Some(p)) => (Some(p.at), Some(p.local), p.zone),
            (None, None) => (None, None, zone),
        };
        let target_status = if at.is_some() {
            TargetStatus::Scheduled
        } else {
            TargetStatus::Draft
        };
        let statuses = vec![target_status; platforms.len()];
        let model = post::ActiveModel {
            id: Set(Uuid::now_v7()),
            content: Set(input.content),
            platforms: Set(serde_json::json!(platforms)),
            status: Set(PostStatus::derive(&statuses, at.is_some())),
            scheduled_at: Set(at),
            local_scheduled_at: Set(local),
            posted_at: Set(None),
            timezone: Set(zone.name().to_owned()),
            media_urls: Set(serde_json::json!(urls_of(&media))),
            media: Set(serde_json::json!(media)),
            campaign: Set(input.campaign),
            notes: Set(input.notes),
            approval_required: Set(input.approval_required),
            approval_status: Set(ApprovalStatus::initial(input.approval_required)),
            rejection_reason: Set(None),
            failure_reason: Set(None),
            owner_id: Set(actor.tenant_id.clone()),
            created_by: Set(actor.user_id.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            archived_at: Set(None),
            version: Set(1),
        };
        let created = model.insert(&txn).await?;
        targets::insert(&txn, created.id, &targets, target_status, 1, now).await?;
        let targets = targets::of_post(&txn, created.id).await?;
        let moved = match &placement {
            Some(placement) => {
                schedules::set_queued(&txn, &actor.tenant_id, created.id, &placement.connections)
                    .await?;
                self.apply_moves(&txn, actor, &placement.moves, placement.zone, now)
                    .await?
            }
            None => Vec::new(),
        };
        txn.commit().await?;
        self.changed(&created, &targets).await;
        for (post, targets) in &moved {
            self.changed(post, targets).await;
        }
        Ok(created)
    }

    /// Edits a post that has not started publishing.
    ///
    /// The edit is worked out with the post's row locked. When it needs the checks of a
    /// scheduled post's new content (account lookups, each platform plugin's `validate`,
    /// which may take up to a plugin call's deadline), the row is released while they run
    /// and locked again afterwards; the edit is written if the post is still as it was
    /// checked, else checked again on the new version (after three checks the edit fails
    /// with `CONFLICT`). Only edits of content, media or targets are
    /// checked; others (notes, campaign, approval) keep the checks the post passed when
    /// it was scheduled.
    pub async fn update(
        &self,
        actor: &Actor,
        id: Uuid,
        mut changes: PostChanges,
    ) -> Result<post::Model, AppError> {
        if let Some(media) = changes.media.as_mut() {
            self.attach_media(actor, media).await?;
        }
        let mut checked = Checked::default();
        loop {
            let txn = self.db.begin().await?;
            let (current, targets) = posts::lock(&txn, actor, id).await?;
            check_version(&current, changes.expected_version)?;
            refuse_if_locked(&targets, "edited")?;
            let edit = self.edit(actor, &current, &targets, changes.clone())?;
            let needs_check = current.scheduled_at.is_some() && edit.substance_changed;
            if !needs_check && edit.substance_changed {
                self.require_owned_accounts(actor, &edit.targets).await?;
            }
            if needs_check && !checked.covers(&current, &targets) {
                txn.rollback().await?;
                checked.count()?;
                self.require_schedulable(actor, &edit.content, &edit.media, &edit.targets)
                    .await?;
                checked.saw(&current, &targets);
                continue;
            }

            let now = Utc::now();
            targets::sync(&txn, &current, &targets, &edit.targets, now).await?;
            let mut model = current.clone().into_active_model();
            model.content = Set(edit.content);
            model.media_urls = Set(serde_json::json!(urls_of(&edit.media)));
            model.media = Set(serde_json::json!(edit.media));
            model.platforms = Set(serde_json::json!(platforms_of(&edit.targets)));
            model.campaign = Set(edit.campaign);
            model.notes = Set(edit.notes);
            model.approval_required = Set(edit.approval_required);
            model.approval_status = Set(edit.approval);
            if edit.approval != ApprovalStatus::Rejected {
                model.rejection_reason = Set(None);
            }
            let (updated, targets) = posts::save(&txn, &current, model, now).await?;
            txn.commit().await?;
            self.changed(&updated, &targets).await;
            return Ok(updated);
        }
    }

    /// Deletes a post that has not started publishing, with its targets.
    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<Uuid, AppError> {
        let txn = self.db.begin().await?;
        let (_, targets) = posts::lock(&txn, actor, id).await?;
        refuse_if_locked(&targets, "deleted")?;
        post::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        let ids: Vec<Uuid> = targets.iter().map(|t| t.id).collect();
        crate::dispatch::cancel_all(&self.queue, &ids).await;
        Ok(id)
    }

    /// Sets (or moves) a post's publication time, once the post passes its checks. As in
    /// [`PostService::update`], the row is released while the checks run and the post is
    /// scheduled only if it is still as it was checked.
    pub async fn schedule(
        &self,
        actor: &Actor,
        id: Uuid,
        request: ScheduleRequest<'_>,
        expected_version: Option<i32>,
    ) -> Result<post::Model, AppError> {
        let mut checked = Checked::default();
        loop {
            let txn = self.db.begin().await?;
            let (current, targets) = posts::lock(&txn, actor, id).await?;
            check_version(&current, expected_version)?;
            refuse_if_locked(&targets, "rescheduled")?;
            // A time that cannot be scheduled is refused before any plugin is asked.
            let request = ScheduleRequest {
                time_zone: request.time_zone.or(Some(current.timezone.as_str())),
                ..request
            };
            let Schedule { at, local, zone } = schedule::resolve(request, Utc::now())?;
            if !checked.covers(&current, &targets) {
                txn.rollback().await?;
                checked.count()?;
                let specs: Vec<TargetSpec> = targets.iter().map(target::Model::spec).collect();
                self.require_schedulable(actor, &current.content, &current.media(), &specs)
                    .await?;
                checked.saw(&current, &targets);
                continue;
            }

            let now = Utc::now();
            targets::set_status(&txn, &targets, TargetStatus::Scheduled, now).await?;
            let mut model = current.clone().into_active_model();
            model.scheduled_at = Set(Some(at));
            model.local_scheduled_at = Set(Some(local));
            model.timezone = Set(zone.name().to_owned());
            model.failure_reason = Set(None);
            let (updated, targets) = posts::save(&txn, &current, model, now).await?;
            schedules::clear_queued(&txn, id).await?;
            txn.commit().await?;
            self.changed(&updated, &targets).await;
            return Ok(updated);
        }
    }

    /// Takes a post off the schedule, back to draft.
    pub async fn unschedule(&self, actor: &Actor, id: Uuid) -> Result<post::Model, AppError> {
        let txn = self.db.begin().await?;
        let (current, targets) = posts::lock(&txn, actor, id).await?;
        refuse_if_locked(&targets, "unscheduled")?;
        let now = Utc::now();
        targets::set_status(&txn, &targets, TargetStatus::Draft, now).await?;
        let mut model = current.clone().into_active_model();
        model.scheduled_at = Set(None);
        model.local_scheduled_at = Set(None);
        let (updated, targets) = posts::save(&txn, &current, model, now).await?;
        schedules::clear_queued(&txn, id).await?;
        txn.commit().await?;
        self.changed(&updated, &targets).await;
        Ok(updated)
    }

    /// Approves a post awaiting approval (approver role).
    pub async fn approve(&self, actor: &Actor, id: Uuid) -> Result<post::Model, AppError> {
        self.decide(actor, id, ApprovalStatus::Approved, None).await
    }

    /// Rejects a post awaiting approval with a reason (approver role).
    pub async fn reject(
        &self,
        actor: &Actor,
        id: Uuid,
        reason: &str,
    ) -> Result<post::Model, AppError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AppError::bad_input("reason", "a rejection needs a reason"));
        }
        rules::validate_label("reason", Some(reason), MAX_NOTES_CHARS)?;
        self.decide(actor, id, ApprovalStatus::Rejected, Some(reason.to_owned()))
            .await
    }

    async fn decide(
        &self,
        actor: &Actor,
        id: Uuid,
        decision: ApprovalStatus,
        reason: Option<String>,
    ) -> Result<post::Model, AppError> {
        actor.require(Role::Approver)?;
        let txn = self.db.begin().await?;
        let (current, targets) = posts::lock(&txn, actor, id).await?;
        if !current.approval_required {
            return Err(AppError::Conflict(
                "this post does not require approval".into(),
            ));
        }
        refuse_if_locked(&targets, "approved or rejected")?;
        let mut model = current.clone().into_active_model();
        model.approval_status = Set(decision);
        model.rejection_reason = Set(reason);
        let (updated, targets) = posts::save(&txn, &current, model, Utc::now()).await?;
        txn.commit().await?;
        self.changed(&updated, &targets).await;
        Ok(updated)
    }

    /// Archives the caller's settled posts (drafts, published, partially published,
    /// failed) created before `older_than`; returns how many were archived.
    pub async fn archive_older_than(
        &self,
        actor: &Actor,
        older_than: DateTime<Utc>,
    ) -> Result<u64, AppError> {
        posts::archive_settled(&self.db, &actor.tenant_id, older_than, Utc::now()).await
    }

    /// Tries the failed (or needs-review, or waiting-for-account) targets of a post again,
    /// now.
    pub async fn retry(&self, actor: &Actor, id: Uuid) -> Result<post::Model, AppError> {
        let txn = self.db.begin().await?;
        let (current, targets) = posts::lock(&txn, actor, id).await?;
        let retryable: Vec<&target::Model> = targets
            .iter()
            .filter(|t| t.status.is_settled_unsuccessfully())
            .collect();
        if retryable.is_empty() || current.scheduled_at.is_none() {
            return Err(AppError::Conflict(
                "the post has no failed, needs-review or waiting-for-account target to retry"
                    .into(),
            ));
        }
        let now = Utc::now();
        let ids: Vec<Uuid> = retryable.iter().map(|t| t.id).collect();
        targets::retry_now(&txn, &ids, now).await?;
        let mut model = current.clone().into_active_model();
        model.failure_reason = Set(None);
        let (updated, targets) = posts::save(&txn, &current, model, now).await?;
        txn.commit().await?;
        self.changed(&updated, &targets).await;
        Ok(updated)
    }

    /// Records that a failed, needs-review or waiting-for-account target is in fact on the
    /// platform at `url`.
    pub async fn mark_published(
        &self,
        actor: &Actor,
        target_id: Uuid,
        url: &str,
    ) -> Result<post::Model, AppError> {
        rules::validate_url("url", url)?;
        let txn = self.db.begin().await?;
        let owned = target::Entity::find_by_id(target_id)
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("target"))?;
        let (current, targets) =
            posts::lock(&txn, actor, owned.post_id)
                .await
                .map_err(|e| match e {
                    AppError::NotFound(_) => AppError::NotFound("target"),
                    other => other,
                })?;
        let target = targets
            .iter()
            .find(|t| t.id == target_id)
            .ok_or(AppError::NotFound("target"))?;
        if !target.status.is_settled_unsuccessfully() {
            return Err(AppError::Conflict(format!(
                "only a failed, needs-review or waiting-for-account target can be marked published; \
                 this one is {}",
                target.status.as_str()
            )));
        }
        let now = Utc::now();
        targets::mark_published(&txn, target, url, now).await?;
        let mut model = current.clone().into_active_model();
        model.posted_at = Set(Some(current.posted_at.unwrap_or(now)));
        let (updated, targets) = posts::save(&txn, &current, model, now).await?;
        txn.commit().await?;
        crate::dispatch::cancel_all(&self.queue, &[target_id]).await;
        self.changed(&updated, &targets).await;
        Ok(updated)
    }
}

pub(super) fn check_version(post: &post::Model, expected: Option<i32>) -> Result<(), AppError> {
    match expected {
        Some(v) if v != post.version => Err(AppError::Conflict(format!(
            "the post changed since version {v}; it is now at version {}",
            post.version
        ))),
        _ => Ok(()),
    }
}

pub(super) fn refuse_if_locked(targets: &[target::Model], action: &str) -> Result<(), AppError> {
    for t in targets {
        if t.status.is_locked() {
            return Err(AppError::Conflict(format!(
                "the post is publishing or published on {}, so it can no longer be {action}",
                t.platform
            )));
        }
    }
    Ok(())
}
