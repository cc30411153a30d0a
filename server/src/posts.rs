//! Post operations: every read and write of posts and their targets, scoped to the
//! caller's tenant, in transactions, applying the rules of [`crate::domain`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend,
    DatabaseConnection, DatabaseTransaction, EntityTrait, IntoActiveModel, Order, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Select, Statement, TransactionTrait,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::connections::ConnectionService;
use crate::db::entities::{post, target};
use crate::db::{self, rows};
use crate::dispatch;
use crate::domain::actor::{Actor, Role};
use crate::domain::post::{
    self as rules, ApprovalStatus, MAX_CAMPAIGN_CHARS, MAX_NOTES_CHARS, MediaItem,
};
use crate::domain::schedule::{self, Schedule, ScheduleRequest};
use crate::domain::status::{PostStatus, TargetStatus};
use crate::domain::target::{TargetSpec, normalize_targets, platforms_of};
use crate::error::AppError;
use crate::events::{EventBus, PostEvent};
use crate::queue::JobQueue;
use herald_plugin_host::PluginHost;

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
    /// When to publish (see [`ScheduleRequest`]); a draft when absent.
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

/// Which posts to list.
#[derive(Debug, Clone, Default)]
pub struct PostFilter {
    /// Only posts in one of these statuses (all when empty).
    pub statuses: Vec<PostStatus>,
    /// Only posts with a target on this platform.
    pub platform: Option<String>,
    /// Only posts of this campaign.
    pub campaign: Option<String>,
    /// Only posts due at or after this instant.
    pub scheduled_from: Option<DateTime<Utc>>,
    /// Only posts due before this instant.
    pub scheduled_before: Option<DateTime<Utc>>,
    /// Archived posts instead of live ones.
    pub archived: bool,
}

/// The key a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Creation time.
    CreatedAt,
    /// Due time; unscheduled posts come last in both directions.
    ScheduledAt,
}

/// A position in a sorted list: the sort value and id of the last item seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    /// The sort key's value (`None` for an unscheduled post under `ScheduledAt`).
    pub value: Option<DateTime<Utc>>,
    /// The post id, breaking ties.
    pub id: Uuid,
}

/// How to sort and page a list.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Sort key.
    pub key: SortKey,
    /// Ascending when true.
    pub ascending: bool,
    /// Page size.
    pub first: u64,
    /// Start after this position.
    pub after: Option<Keyset>,
}

/// One page of posts.
#[derive(Debug, Clone)]
pub struct Page {
    /// The posts, in order.
    pub posts: Vec<post::Model>,
    /// Whether more posts follow.
    pub has_next_page: bool,
}

/// The sort value of `post` under `key`.
pub fn sort_value(post: &post::Model, key: SortKey) -> Option<DateTime<Utc>> {
    match key {
        SortKey::CreatedAt => Some(post.created_at),
        SortKey::ScheduledAt => post.scheduled_at,
    }
}

/// Reads and changes posts on behalf of an [`Actor`], keeping the publishing queue in step.
#[derive(Clone)]
pub struct PostService {
    db: DatabaseConnection,
    events: EventBus,
    queue: Arc<dyn JobQueue>,
    connections: ConnectionService,
    /// Loaded publisher plugins, which validate posts for their platforms.
    plugins: Option<PluginHost>,
    /// Platforms a post may target.
    platforms: Arc<[String]>,
    /// Platforms that publish as a connected account (those of loaded plugins).
    account_platforms: Arc<[String]>,
}

impl std::fmt::Debug for PostService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostService").finish_non_exhaustive()
    }
}

impl PostService {
    /// A service over `db` that announces changes on `events` and schedules on `queue`,
    /// accepting the built-in platforms.
    pub fn new(
        db: DatabaseConnection,
        events: EventBus,
        queue: Arc<dyn JobQueue>,
        connections: ConnectionService,
    ) -> Self {
        let platforms = rules::KNOWN_PLATFORMS
            .iter()
            .map(|p| p.to_string())
            .collect();
        Self {
            db,
            events,
            queue,
            connections,
            plugins: None,
            platforms,
            account_platforms: Arc::new([]),
        }
    }

    /// The same service also accepting the platforms of loaded plugins; scheduling a post
    /// on one of them needs a connected account and passing the plugin's validation.
    pub fn with_plugins(mut self, plugins: PluginHost) -> Self {
        let plugin_platforms: Vec<String> = plugins
            .platforms()
            .into_iter()
            .map(|info| info.platform)
            .collect();
        let mut all: Vec<String> = self.platforms.to_vec();
        for platform in &plugin_platforms {
            if !all.contains(platform) {
                all.push(platform.clone());
            }
        }
        all.sort();
        self.platforms = all.into();
        self.account_platforms = plugin_platforms.into();
        self.plugins = Some(plugins);
        self
    }

    /// The requested targets: `targets`, or `platforms` with default settings.
    fn requested_targets(
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

    /// Checks that every target can be published as an account of the caller's tenant:
    /// a named connection must be theirs, active and on the target's platform; otherwise
    /// a plugin platform needs a connected account. `BAD_USER_INPUT` names the platform.
    async fn require_accounts(
        &self,
        actor: &Actor,
        targets: &[TargetSpec],
    ) -> Result<(), AppError> {
        let named: Vec<(Uuid, &str, String)> = targets
            .iter()
            .enumerate()
            .filter_map(|(index, target)| {
                target.connection_id.map(|id| {
                    (
                        id,
                        target.platform.as_str(),
                        format!("targets[{index}].connectionId"),
                    )
                })
            })
            .collect();
        self.connections.require_usable(actor, &named).await?;
        let needed: Vec<String> = targets
            .iter()
            .filter(|t| t.connection_id.is_none() && self.account_platforms.contains(&t.platform))
            .map(|t| t.platform.clone())
            .collect();
        let missing = self.connections.missing(&actor.tenant_id, &needed).await?;
        match missing.first() {
            Some(platform) => Err(AppError::bad_input(
                "platforms",
                format!(
                    "no connected {platform} account: connect one with connectAccount before \
                     scheduling"
                ),
            )),
            None => Ok(()),
        }
    }

    /// Everything a post needs before it is scheduled: text or media and a target, an
    /// account for each target, and each platform plugin's validation (so content over a
    /// platform's limits is refused now, not when it is due).
    async fn require_schedulable(
        &self,
        actor: &Actor,
        content: &str,
        media: &[MediaItem],
        targets: &[TargetSpec],
    ) -> Result<(), AppError> {
        rules::require_publishable(content, media, &platforms_of(targets))?;
        self.require_accounts(actor, targets).await?;
        let Some(host) = &self.plugins else {
            return Ok(());
        };
        for target in targets {
            if host.platform(&target.platform).is_none() {
                continue;
            }
            let post = plugin_post(content, media, &target.options);
            let violations = host
                .validate(&target.platform, &post)
                .await
                .map_err(|error| {
                    tracing::warn!(platform = %target.platform, %error, "plugin validation failed");
                    AppError::bad_input(
                        "platforms",
                        format!(
                            "the {} plugin could not check the post: {error}",
                            target.platform
                        ),
                    )
                })?;
            if let Some(first) = violations.first() {
                let all: Vec<String> = violations
                    .iter()
                    .map(|v| format!("{} ({})", v.message, v.code))
                    .collect();
                let field = match first.field.as_str() {
                    "text" | "content" => "content".to_owned(),
                    other => other.to_owned(),
                };
                return Err(AppError::bad_input(
                    field,
                    format!("{}: {}", target.platform, all.join("; ")),
                ));
            }
        }
        Ok(())
    }

    /// Which of `post_ids` belong to the caller's tenant.
    pub async fn owned(&self, actor: &Actor, post_ids: &[Uuid]) -> Result<HashSet<Uuid>, AppError> {
        if post_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = post::Entity::find()
            .select_only()
            .column(post::Column::Id)
            .filter(post::Column::Id.is_in(post_ids.iter().copied()))
            .filter(post::Column::OwnerId.eq(&actor.tenant_id))
            .into_tuple::<Uuid>()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// The caller's post `id`, or `None` when it does not exist or is another tenant's.
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<Option<post::Model>, AppError> {
        Ok(post::Entity::find_by_id(id)
            .filter(post::Column::OwnerId.eq(&actor.tenant_id))
            .one(&self.db)
            .await?)
    }

    /// A page of the caller's posts.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: &PostFilter,
        page: PageRequest,
    ) -> Result<Page, AppError> {
        let query = page_query(&actor.tenant_id, filter, page);
        let statement = query.build(self.db.get_database_backend());
        let mut posts: Vec<post::Model> = rows::fetch_all(&self.db, statement).await?;
        let has_next_page = posts.len() as u64 > page.first;
        posts.truncate(page.first as usize);
        Ok(Page {
            posts,
            has_next_page,
        })
    }

    /// The targets of each of `post_ids`, in platform order (one query).
    pub async fn targets_of(
        &self,
        post_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<target::Model>>, AppError> {
        let statement = targets_statement(self.db.get_database_backend(), post_ids);
        let rows: Vec<target::Model> = rows::fetch_all(&self.db, statement).await?;
        let mut by_post: HashMap<Uuid, Vec<target::Model>> = HashMap::with_capacity(post_ids.len());
        for row in rows {
            by_post.entry(row.post_id).or_default().push(row);
        }
        Ok(by_post)
    }

    /// Creates a post: a draft without a time, scheduled with one.
    pub async fn create(&self, actor: &Actor, input: NewPost) -> Result<post::Model, AppError> {
        rules::validate_content(&input.content)?;
        let media = requested_media(input.media_urls, input.media)?;
        rules::validate_label("campaign", input.campaign.as_deref(), MAX_CAMPAIGN_CHARS)?;
        rules::validate_label("notes", input.notes.as_deref(), MAX_NOTES_CHARS)?;
        let targets = self.requested_targets(input.platforms, input.targets)?;
        let platforms = platforms_of(&targets);
        let now = Utc::now();
        let zone = match &input.time_zone {
            Some(name) => schedule::parse_zone(name, "timeZone")?,
            None => chrono_tz::Tz::UTC,
        };
        let schedule = match &input.scheduled_at {
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
            None => None,
        };
        let target_status = if schedule.is_some() {
            TargetStatus::Scheduled
        } else {
            TargetStatus::Draft
        };
        let statuses = vec![target_status; platforms.len()];
        let model = post::ActiveModel {
            id: Set(Uuid::now_v7()),
            content: Set(input.content),
            platforms: Set(serde_json::json!(platforms)),
            status: Set(PostStatus::derive(&statuses, schedule.is_some())
                .as_str()
                .to_owned()),
            scheduled_at: Set(schedule.map(|s| s.at)),
            local_scheduled_at: Set(schedule.map(|s| s.local)),
            posted_at: Set(None),
            timezone: Set(zone.name().to_owned()),
            media_urls: Set(serde_json::json!(urls_of(&media))),
            media: Set(serde_json::json!(media)),
            campaign: Set(input.campaign),
            notes: Set(input.notes),
            approval_required: Set(input.approval_required),
            approval_status: Set(ApprovalStatus::initial(input.approval_required)
                .as_str()
                .to_owned()),
            rejection_reason: Set(None),
            failure_reason: Set(None),
            owner_id: Set(actor.tenant_id.clone()),
            created_by: Set(actor.user_id.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            archived_at: Set(None),
            version: Set(1),
        };
        let txn = self.db.begin().await?;
        let created = model.insert(&txn).await?;
        insert_targets(&txn, created.id, &targets, target_status, 1, now).await?;
        let targets = targets_of_post(&txn, created.id).await?;
        txn.commit().await?;
        self.changed(&created, &targets).await;
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
        changes: PostChanges,
    ) -> Result<post::Model, AppError> {
        let mut checked = Checked::default();
        loop {
            let txn = self.db.begin().await?;
            let (current, targets) = lock_post(&txn, actor, id).await?;
            check_version(&current, changes.expected_version)?;
            refuse_if_locked(&targets, "edited")?;
            let edit = self.edit(&current, &targets, changes.clone())?;
            let needs_check = current.scheduled_at.is_some() && edit.substance_changed;
            if needs_check && !checked.covers(&current, &targets) {
                txn.rollback().await?;
                checked.count()?;
                self.require_schedulable(actor, &edit.content, &edit.media, &edit.targets)
                    .await?;
                checked.saw(&current, &targets);
                continue;
            }

            let now = Utc::now();
            sync_targets(&txn, &current, &targets, &edit.targets, now).await?;
            let mut model = current.clone().into_active_model();
            model.content = Set(edit.content);
            model.media_urls = Set(serde_json::json!(urls_of(&edit.media)));
            model.media = Set(serde_json::json!(edit.media));
            model.platforms = Set(serde_json::json!(platforms_of(&edit.targets)));
            model.campaign = Set(edit.campaign);
            model.notes = Set(edit.notes);
            model.approval_required = Set(edit.approval_required);
            model.approval_status = Set(edit.approval.as_str().to_owned());
            if edit.approval != ApprovalStatus::Rejected {
                model.rejection_reason = Set(None);
            }
            let (updated, targets) = save(&txn, &current, model, now).await?;
            txn.commit().await?;
            self.changed(&updated, &targets).await;
            return Ok(updated);
        }
    }

    /// What `changes` make of `current` (with its `targets`), checked against the rules
    /// that need no lookups.
    fn edit(
        &self,
        current: &post::Model,
        targets: &[target::Model],
        changes: PostChanges,
    ) -> Result<Edit, AppError> {
        let content = changes.content.unwrap_or_else(|| current.content.clone());
        rules::validate_content(&content)?;
        let media = match (changes.media_urls, changes.media) {
            (None, None) => media_of(current),
            (urls, media) => requested_media(urls.unwrap_or_default(), media.unwrap_or_default())?,
        };
        let current_targets: Vec<TargetSpec> = targets.iter().map(spec_of).collect();
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
        let substance_changed = content != current.content
            || media != media_of(current)
            || new_targets != current_targets;
        let approval = if !approval_required {
            ApprovalStatus::NotRequired
        } else if substance_changed || !current.approval_required {
            ApprovalStatus::Pending
        } else {
            approval_of(current)?
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

    /// Deletes a post that has not started publishing, with its targets.
    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<Uuid, AppError> {
        let txn = self.db.begin().await?;
        let (_, targets) = lock_post(&txn, actor, id).await?;
        refuse_if_locked(&targets, "deleted")?;
        post::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        let ids: Vec<Uuid> = targets.iter().map(|t| t.id).collect();
        dispatch::cancel_all(&self.queue, &ids).await;
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
            let (current, targets) = lock_post(&txn, actor, id).await?;
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
                let specs: Vec<TargetSpec> = targets.iter().map(spec_of).collect();
                self.require_schedulable(actor, &current.content, &media_of(&current), &specs)
                    .await?;
                checked.saw(&current, &targets);
                continue;
            }

            let now = Utc::now();
            set_target_status(&txn, &targets, TargetStatus::Scheduled, now).await?;
            let mut model = current.clone().into_active_model();
            model.scheduled_at = Set(Some(at));
            model.local_scheduled_at = Set(Some(local));
            model.timezone = Set(zone.name().to_owned());
            model.failure_reason = Set(None);
            let (updated, targets) = save(&txn, &current, model, now).await?;
            txn.commit().await?;
            self.changed(&updated, &targets).await;
            return Ok(updated);
        }
    }

    /// Takes a post off the schedule, back to draft.
    pub async fn unschedule(&self, actor: &Actor, id: Uuid) -> Result<post::Model, AppError> {
        let txn = self.db.begin().await?;
        let (current, targets) = lock_post(&txn, actor, id).await?;
        refuse_if_locked(&targets, "unscheduled")?;
        let now = Utc::now();
        set_target_status(&txn, &targets, TargetStatus::Draft, now).await?;
        let mut model = current.clone().into_active_model();
        model.scheduled_at = Set(None);
        model.local_scheduled_at = Set(None);
        let (updated, targets) = save(&txn, &current, model, now).await?;
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
        let (current, targets) = lock_post(&txn, actor, id).await?;
        if !current.approval_required {
            return Err(AppError::Conflict(
                "this post does not require approval".into(),
            ));
        }
        refuse_if_locked(&targets, "approved or rejected")?;
        let mut model = current.clone().into_active_model();
        model.approval_status = Set(decision.as_str().to_owned());
        model.rejection_reason = Set(reason);
        let (updated, targets) = save(&txn, &current, model, Utc::now()).await?;
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
        let settled = [
            PostStatus::Draft,
            PostStatus::Published,
            PostStatus::PartiallyPublished,
            PostStatus::Failed,
        ];
        let now = Utc::now();
        let result = post::Entity::update_many()
            .col_expr(post::Column::ArchivedAt, Expr::value(now))
            .col_expr(post::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                post::Column::Version,
                Expr::col(post::Column::Version).add(1),
            )
            .filter(post::Column::OwnerId.eq(&actor.tenant_id))
            .filter(post::Column::ArchivedAt.is_null())
            .filter(post::Column::CreatedAt.lt(older_than))
            .filter(post::Column::Status.is_in(settled.iter().map(|s| s.as_str())))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Tries the failed (or needs-review) targets of a post again, now.
    pub async fn retry(&self, actor: &Actor, id: Uuid) -> Result<post::Model, AppError> {
        let txn = self.db.begin().await?;
        let (current, targets) = lock_post(&txn, actor, id).await?;
        let retryable: Vec<&target::Model> = targets
            .iter()
            .filter(|t| {
                matches!(
                    TargetStatus::parse(&t.status),
                    Some(TargetStatus::Failed | TargetStatus::NeedsReview)
                )
            })
            .collect();
        if retryable.is_empty() || current.scheduled_at.is_none() {
            return Err(AppError::Conflict(
                "the post has no failed or needs-review target to retry".into(),
            ));
        }
        let now = Utc::now();
        target::Entity::update_many()
            .col_expr(
                target::Column::Status,
                Expr::value(TargetStatus::Retrying.as_str()),
            )
            .col_expr(target::Column::NextAttemptAt, Expr::value(now))
            .col_expr(target::Column::UpdatedAt, Expr::value(now))
            .filter(target::Column::Id.is_in(retryable.iter().map(|t| t.id)))
            .exec(&txn)
            .await?;
        let mut model = current.clone().into_active_model();
        model.failure_reason = Set(None);
        let (updated, targets) = save(&txn, &current, model, now).await?;
        txn.commit().await?;
        self.changed(&updated, &targets).await;
        Ok(updated)
    }

    /// Records that a failed or needs-review target is in fact on the platform at `url`.
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
            lock_post(&txn, actor, owned.post_id)
                .await
                .map_err(|e| match e {
                    AppError::NotFound(_) => AppError::NotFound("target"),
                    other => other,
                })?;
        let target = targets
            .iter()
            .find(|t| t.id == target_id)
            .ok_or(AppError::NotFound("target"))?;
        if !matches!(
            status_of(target)?,
            TargetStatus::Failed | TargetStatus::NeedsReview
        ) {
            return Err(AppError::Conflict(format!(
                "only a failed or needs-review target can be marked published; this one is {}",
                target.status
            )));
        }
        let now = Utc::now();
        let mut row = target.clone().into_active_model();
        row.status = Set(TargetStatus::Published.as_str().to_owned());
        row.platform_url = Set(Some(url.to_owned()));
        row.published_at = Set(Some(now));
        row.last_error = Set(None);
        row.updated_at = Set(now);
        row.update(&txn).await?;
        let mut model = current.clone().into_active_model();
        model.posted_at = Set(Some(current.posted_at.unwrap_or(now)));
        let (updated, targets) = save(&txn, &current, model, now).await?;
        txn.commit().await?;
        dispatch::cancel_all(&self.queue, &[target_id]).await;
        self.changed(&updated, &targets).await;
        Ok(updated)
    }

    /// After a commit: announce the change and bring the queue in step.
    async fn changed(&self, post: &post::Model, targets: &[target::Model]) {
        self.events.publish(PostEvent { post: post.clone() });
        dispatch::sync(&self.queue, post, targets).await;
    }
}

/// How many times `update` and `schedule` check a post that keeps changing while it is
/// checked before giving up with `CONFLICT`.
const CHECK_ATTEMPTS: usize = 3;

/// The plugin and account checks of a post, which `update` and `schedule` run with the
/// post's row released: the post as the last check saw it, and how many checks ran.
#[derive(Default)]
struct Checked {
    /// The version of the post the last check passed, and its targets' settings.
    seen: Option<(i32, Vec<TargetSpec>)>,
    checks: usize,
}

impl Checked {
    /// Whether the locked post (`current` with its `targets`) is still the one the last
    /// check passed. Edits bump the version; disconnecting a named account clears its
    /// targets' connection without one, so the targets' settings are compared too.
    /// (Status changes by workers are checked again under the lock; an account that goes
    /// away meanwhile is found by the worker when the post is due.)
    /// (`lock_post` loads targets in one order, so their settings compare as lists.)
    fn covers(&self, current: &post::Model, targets: &[target::Model]) -> bool {
        self.seen.as_ref().is_some_and(|(version, specs)| {
            *version == current.version
                && specs.len() == targets.len()
                && specs
                    .iter()
                    .zip(targets)
                    .all(|(seen, target)| *seen == spec_of(target))
        })
    }

    /// Counts one more check; `CONFLICT` once the post has changed under every check.
    fn count(&mut self) -> Result<(), AppError> {
        if self.checks == CHECK_ATTEMPTS {
            return Err(AppError::Conflict(
                "the post kept changing while it was checked; try again".into(),
            ));
        }
        self.checks += 1;
        Ok(())
    }

    /// Records the post a check has just passed.
    fn saw(&mut self, post: &post::Model, targets: &[target::Model]) {
        self.seen = Some((post.version, targets.iter().map(spec_of).collect()));
    }
}

/// A post edit, worked out from the locked post and checked against the rules that need
/// no lookups.
struct Edit {
    content: String,
    media: Vec<MediaItem>,
    targets: Vec<TargetSpec>,
    campaign: Option<String>,
    notes: Option<String>,
    approval_required: bool,
    approval: ApprovalStatus,
    /// Whether content, media or targets change (which needs a new approval and, for a
    /// scheduled post, the plugins' checks).
    substance_changed: bool,
}

/// Loads the caller's post `id` and its targets (in platform order), locking the post row
/// until the end of `txn`. Another tenant's post is `NOT_FOUND`.
async fn lock_post(
    txn: &DatabaseTransaction,
    actor: &Actor,
    id: Uuid,
) -> Result<(post::Model, Vec<target::Model>), AppError> {
    let post = post::Entity::find_by_id(id)
        .filter(post::Column::OwnerId.eq(&actor.tenant_id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(AppError::NotFound("post"))?;
    let targets = targets_of_post(txn, id).await?;
    Ok((post, targets))
}

fn check_version(post: &post::Model, expected: Option<i32>) -> Result<(), AppError> {
    match expected {
        Some(v) if v != post.version => Err(AppError::Conflict(format!(
            "the post changed since version {v}; it is now at version {}",
            post.version
        ))),
        _ => Ok(()),
    }
}

fn refuse_if_locked(targets: &[target::Model], action: &str) -> Result<(), AppError> {
    for t in targets {
        if status_of(t)?.is_locked() {
            return Err(AppError::Conflict(format!(
                "the post is publishing or published on {}, so it can no longer be {action}",
                t.platform
            )));
        }
    }
    Ok(())
}

fn status_of(target: &target::Model) -> Result<TargetStatus, AppError> {
    TargetStatus::parse(&target.status).ok_or_else(|| {
        AppError::Internal(
            format!("target {} has unknown status {}", target.id, target.status).into(),
        )
    })
}

fn approval_of(post: &post::Model) -> Result<ApprovalStatus, AppError> {
    ApprovalStatus::parse(&post.approval_status).ok_or_else(|| {
        AppError::Internal(
            format!(
                "post {} has unknown approval status {}",
                post.id, post.approval_status
            )
            .into(),
        )
    })
}

/// Reads a JSON array of strings as stored by this module; other values are skipped.
pub fn json_strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn keyset_condition(key: SortKey, ascending: bool, after: Keyset) -> Condition {
    let column = sort_column(key);
    let past = |c: post::Column, v: sea_orm::Value| if ascending { c.gt(v) } else { c.lt(v) };
    match after.value {
        Some(value) => {
            let mut cond = Condition::any().add(past(column, value.into())).add(
                Condition::all()
                    .add(column.eq(value))
                    .add(past(post::Column::Id, after.id.into())),
            );
            if key == SortKey::ScheduledAt {
                // Unscheduled posts sort last in both directions.
                cond = cond.add(column.is_null());
            }
            cond
        }
        None => Condition::all()
            .add(column.is_null())
            .add(past(post::Column::Id, after.id.into())),
    }
}

fn sort_column(key: SortKey) -> post::Column {
    match key {
        SortKey::CreatedAt => post::Column::CreatedAt,
        SortKey::ScheduledAt => post::Column::ScheduledAt,
    }
}

async fn insert_targets(
    txn: &DatabaseTransaction,
    post_id: Uuid,
    targets: &[TargetSpec],
    status: TargetStatus,
    version: i32,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if targets.is_empty() {
        return Ok(());
    }
    let rows = targets.iter().map(|spec| target::ActiveModel {
        id: Set(Uuid::now_v7()),
        post_id: Set(post_id),
        platform: Set(spec.platform.clone()),
        connection_id: Set(spec.connection_id),
        options: Set(serde_json::json!(spec.options)),
        status: Set(status.as_str().to_owned()),
        attempts: Set(0),
        platform_post_id: Set(None),
        platform_url: Set(None),
        last_error: Set(None),
        last_response_code: Set(None),
        published_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        queue_version: Set(version),
        attempt_id: Set(None),
        next_attempt_at: Set(None),
    });
    target::Entity::insert_many(rows).exec(txn).await?;
    Ok(())
}

/// Makes the post's targets match `wanted`: removes the dropped ones, updates the account
/// and options of the kept ones, adds new ones in the state the post is in (scheduled or
/// draft).
async fn sync_targets(
    txn: &DatabaseTransaction,
    post: &post::Model,
    targets: &[target::Model],
    wanted: &[TargetSpec],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let dropped: Vec<Uuid> = targets
        .iter()
        .filter(|t| !wanted.iter().any(|w| w.platform == t.platform))
        .map(|t| t.id)
        .collect();
    if !dropped.is_empty() {
        target::Entity::delete_many()
            .filter(target::Column::Id.is_in(dropped))
            .exec(txn)
            .await?;
    }
    for existing in targets {
        let Some(spec) = wanted.iter().find(|w| w.platform == existing.platform) else {
            continue;
        };
        if *spec != spec_of(existing) {
            target::Entity::update_many()
                .col_expr(
                    target::Column::ConnectionId,
                    Expr::value(spec.connection_id),
                )
                .col_expr(
                    target::Column::Options,
                    Expr::value(serde_json::json!(spec.options)),
                )
                .col_expr(target::Column::UpdatedAt, Expr::value(now))
                .filter(target::Column::Id.eq(existing.id))
                .exec(txn)
                .await?;
        }
    }
    let added: Vec<TargetSpec> = wanted
        .iter()
        .filter(|w| !targets.iter().any(|t| t.platform == w.platform))
        .cloned()
        .collect();
    let status = if post.scheduled_at.is_some() {
        TargetStatus::Scheduled
    } else {
        TargetStatus::Draft
    };
    insert_targets(txn, post.id, &added, status, post.version, now).await
}

/// A stored target's settings.
pub fn spec_of(target: &target::Model) -> TargetSpec {
    TargetSpec {
        platform: target.platform.clone(),
        connection_id: target.connection_id,
        options: options_of(&target.options),
    }
}

/// A stored options object as key/value pairs. Herald writes them as an object of
/// strings; anything else is logged and read as no options.
pub fn options_of(value: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::deserialize(value).unwrap_or_else(|error| {
        tracing::warn!(%error, "stored target options unreadable; publishing without them");
        Default::default()
    })
}

/// A post's media as stored; posts written before media details existed have only URLs.
pub fn media_of(post: &post::Model) -> Vec<MediaItem> {
    media_from_json(&post.media, &post.media_urls)
}

/// Media from the stored `media` column, falling back to the bare `media_urls`.
pub fn media_from_json(media: &serde_json::Value, urls: &serde_json::Value) -> Vec<MediaItem> {
    match Vec::<MediaItem>::deserialize(media) {
        Ok(items) if !items.is_empty() => items,
        Ok(_) => json_strings(urls).into_iter().map(MediaItem::url).collect(),
        Err(error) => {
            tracing::warn!(%error, "stored media details unreadable; using the URLs alone");
            json_strings(urls).into_iter().map(MediaItem::url).collect()
        }
    }
}

fn urls_of(media: &[MediaItem]) -> Vec<String> {
    media.iter().map(|m| m.url.clone()).collect()
}

/// The requested media: `media`, or `media_urls` without details; validated.
fn requested_media(urls: Vec<String>, media: Vec<MediaItem>) -> Result<Vec<MediaItem>, AppError> {
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

/// The post as a platform plugin sees it.
pub fn plugin_post(
    content: &str,
    media: &[MediaItem],
    options: &std::collections::BTreeMap<String, String>,
) -> herald_plugin_host::Post {
    herald_plugin_host::Post {
        text: content.to_owned(),
        media: media
            .iter()
            .map(|m| herald_plugin_host::Media {
                url: m.url.clone(),
                mime_type: m.mime_type.clone().unwrap_or_default(),
                alt: m.alt.clone(),
                size: None,
            })
            .collect(),
        options: options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

async fn set_target_status(
    txn: &DatabaseTransaction,
    targets: &[target::Model],
    status: TargetStatus,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if targets.is_empty() {
        return Ok(());
    }
    target::Entity::update_many()
        .col_expr(target::Column::Status, Expr::value(status.as_str()))
        .col_expr(target::Column::UpdatedAt, Expr::value(now))
        .filter(target::Column::Id.is_in(targets.iter().map(|t| t.id)))
        .exec(txn)
        .await?;
    Ok(())
}

/// Writes `model`, bumping the version, re-versioning the pending targets' queue jobs and
/// re-deriving the post status from the targets as they now are.
async fn save(
    txn: &DatabaseTransaction,
    current: &post::Model,
    mut model: post::ActiveModel,
    now: DateTime<Utc>,
) -> Result<(post::Model, Vec<target::Model>), AppError> {
    let version = current.version + 1;
    target::Entity::update_many()
        .col_expr(target::Column::QueueVersion, Expr::value(version))
        .filter(target::Column::PostId.eq(current.id))
        .filter(target::Column::Status.is_in([
            TargetStatus::Scheduled.as_str(),
            TargetStatus::Queued.as_str(),
            TargetStatus::Retrying.as_str(),
        ]))
        .exec(txn)
        .await?;
    let targets = targets_of_post(txn, current.id).await?;
    let statuses = targets
        .iter()
        .map(status_of)
        .collect::<Result<Vec<_>, _>>()?;
    let scheduled = match &model.scheduled_at {
        sea_orm::ActiveValue::Set(v) | sea_orm::ActiveValue::Unchanged(v) => v.is_some(),
        sea_orm::ActiveValue::NotSet => current.scheduled_at.is_some(),
    };
    model.status = Set(PostStatus::derive(&statuses, scheduled).as_str().to_owned());
    model.updated_at = Set(now);
    model.version = Set(version);
    Ok((model.update(txn).await?, targets))
}

/// The statement of [`PostService::list`]: one more post than the page holds (to tell
/// whether another page follows). Public so the benchmark runs the very same SQL.
pub fn page_query(tenant: &str, filter: &PostFilter, page: PageRequest) -> Select<post::Entity> {
    let mut query = post::Entity::find().filter(post::Column::OwnerId.eq(tenant));
    query = query.filter(if filter.archived {
        post::Column::ArchivedAt.is_not_null()
    } else {
        post::Column::ArchivedAt.is_null()
    });
    if !filter.statuses.is_empty() {
        query =
            query.filter(post::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
    }
    if let Some(platform) = &filter.platform {
        // EXISTS per candidate post uses the (post_id, platform) unique index.
        query = query.filter(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(target::Entity)
                .and_where(
                    Expr::col((target::Entity, target::Column::PostId))
                        .equals((post::Entity, post::Column::Id)),
                )
                .and_where(
                    Expr::col((target::Entity, target::Column::Platform))
                        .eq(platform.to_ascii_lowercase()),
                )
                .to_owned(),
        ));
    }
    if let Some(campaign) = &filter.campaign {
        query = query.filter(post::Column::Campaign.eq(campaign));
    }
    if let Some(from) = filter.scheduled_from {
        query = query.filter(post::Column::ScheduledAt.gte(from));
    }
    if let Some(before) = filter.scheduled_before {
        query = query.filter(post::Column::ScheduledAt.lt(before));
    }

    let order = if page.ascending {
        Order::Asc
    } else {
        Order::Desc
    };
    let column = sort_column(page.key);
    if let Some(after) = page.after {
        query = query.filter(keyset_condition(page.key, page.ascending, after));
    }
    if page.key == SortKey::ScheduledAt {
        query = query.order_by(Expr::col(column).is_null(), Order::Asc);
    }
    query
        .order_by(column, order.clone())
        .order_by(post::Column::Id, order)
        .limit(page.first + 1)
}

/// The statement of [`PostService::targets_of`]. On Postgres the ids go as one array
/// parameter, so every page size shares one statement text (built once) and prepared plan.
pub fn targets_statement(backend: DatabaseBackend, post_ids: &[Uuid]) -> Statement {
    const POST_ID: (target::Entity, target::Column) = (target::Entity, target::Column::PostId);
    static POSTGRES_SQL: LazyLock<String> = LazyLock::new(|| {
        let statement = targets_select(db::one_of(DatabaseBackend::Postgres, POST_ID, &[]))
            .build(DatabaseBackend::Postgres);
        // The ids must stay the statement's only parameter.
        debug_assert_eq!(statement.values.map(|values| values.0.len()), Some(1));
        statement.sql
    });
    if backend == DatabaseBackend::Postgres {
        Statement::from_sql_and_values(backend, POSTGRES_SQL.as_str(), [post_ids.to_vec().into()])
    } else {
        targets_select(db::one_of(backend, POST_ID, post_ids)).build(backend)
    }
}

/// Targets matching `of_posts`, in each post's platform order.
fn targets_select(of_posts: SimpleExpr) -> Select<target::Entity> {
    target::Entity::find()
        .filter(of_posts)
        .order_by_asc(target::Column::CreatedAt)
        .order_by_asc(target::Column::Platform)
}

async fn targets_of_post(
    txn: &DatabaseTransaction,
    post_id: Uuid,
) -> Result<Vec<target::Model>, AppError> {
    Ok(target::Entity::find()
        .filter(target::Column::PostId.eq(post_id))
        .order_by_asc(target::Column::CreatedAt)
        .order_by_asc(target::Column::Platform)
        .all(txn)
        .await?)
}
