//! The SQL of `social_posts`: locking a post for a command, saving it (version, queue
//! versions and derived status together), archiving, and the page query with its keyset
//! condition. The query's parameters (filter, sort, position) are defined here too.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait,
    Order, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};
use uuid::Uuid;

use super::entities::{post, target};
use super::targets;
use crate::domain::actor::Actor;
use crate::domain::status::{PostStatus, TargetStatus};
use crate::error::AppError;

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

/// Loads the caller's post `id` and its targets (in platform order), locking the post row
/// until the end of `txn`. Another tenant's post is `NOT_FOUND`.
pub async fn lock(
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
    let targets = targets::of_post(txn, id).await?;
    Ok((post, targets))
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

/// Writes `model`, bumping the version, re-versioning the pending targets' queue jobs and
/// re-deriving the post status from the targets as they now are.
pub async fn save(
    txn: &DatabaseTransaction,
    current: &post::Model,
    mut model: post::ActiveModel,
    now: DateTime<Utc>,
) -> Result<(post::Model, Vec<target::Model>), AppError> {
    let version = current.version + 1;
    target::Entity::update_many()
        .col_expr(target::Column::QueueVersion, Expr::value(version))
        .filter(target::Column::PostId.eq(current.id))
        .filter(target::Column::Status.is_in(TargetStatus::PENDING))
        .exec(txn)
        .await?;
    let targets = targets::of_post(txn, current.id).await?;
    let statuses: Vec<TargetStatus> = targets.iter().map(|t| t.status).collect();
    let scheduled = match &model.scheduled_at {
        sea_orm::ActiveValue::Set(v) | sea_orm::ActiveValue::Unchanged(v) => v.is_some(),
        sea_orm::ActiveValue::NotSet => current.scheduled_at.is_some(),
    };
    model.status = Set(PostStatus::derive(&statuses, scheduled));
    model.updated_at = Set(now);
    model.version = Set(version);
    Ok((model.update(txn).await?, targets))
}

/// The statement of `PostService::list`: one more post than the page holds (to tell
/// whether another page follows). Public so the benchmark runs the very same SQL.
pub fn page_query(tenant: &str, filter: &PostFilter, page: PageRequest) -> Select<post::Entity> {
    let mut query = post::Entity::find().filter(post::Column::OwnerId.eq(tenant));
    query = query.filter(if filter.archived {
        post::Column::ArchivedAt.is_not_null()
    } else {
        post::Column::ArchivedAt.is_null()
    });
    if !filter.statuses.is_empty() {
        query = query.filter(post::Column::Status.is_in(filter.statuses.iter().copied()));
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

/// Archives the tenant's settled posts (drafts, published, partially published, failed)
/// created before `older_than`; returns how many were archived.
pub async fn archive_settled(
    db: &DatabaseConnection,
    tenant: &str,
    older_than: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, AppError> {
    let settled = [
        PostStatus::Draft,
        PostStatus::Published,
        PostStatus::PartiallyPublished,
        PostStatus::Failed,
    ];
    let result = post::Entity::update_many()
        .col_expr(post::Column::ArchivedAt, Expr::value(now))
        .col_expr(post::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            post::Column::Version,
            Expr::col(post::Column::Version).add(1),
        )
        .filter(post::Column::OwnerId.eq(tenant))
        .filter(post::Column::ArchivedAt.is_null())
        .filter(post::Column::CreatedAt.lt(older_than))
        .filter(post::Column::Status.is_in(settled))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Sends out again, due `now`, the tenant's targets on `platform` that wait for their
/// account (`waiting_for_account`) and that connection `connection_id` publishes: those
/// naming it and those naming none (they use the platform's default account). Each post is
/// locked and saved (new version, queue versions, derived status); returns them with
/// their targets, for the queue.
pub async fn resume_waiting(
    txn: &DatabaseTransaction,
    tenant_id: &str,
    platform: &str,
    connection_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(post::Model, Vec<target::Model>)>, AppError> {
    let waiting = target::Entity::find()
        .filter(target::Column::Platform.eq(platform))
        .filter(target::Column::Status.eq(TargetStatus::WaitingForAccount))
        .filter(
            Condition::any()
                .add(target::Column::ConnectionId.eq(connection_id))
                .add(target::Column::ConnectionId.is_null()),
        )
        .filter(
            target::Column::PostId.in_subquery(
                Query::select()
                    .column(post::Column::Id)
                    .from(post::Entity)
                    .and_where(post::Column::OwnerId.eq(tenant_id))
                    .to_owned(),
            ),
        )
        .order_by_asc(target::Column::PostId)
        .all(txn)
        .await?;
    let mut by_post: Vec<(Uuid, Vec<Uuid>)> = Vec::new();
    for t in waiting {
        match by_post.last_mut() {
            Some((post_id, ids)) if *post_id == t.post_id => ids.push(t.id),
            _ => by_post.push((t.post_id, vec![t.id])),
        }
    }
    let mut resumed = Vec::with_capacity(by_post.len());
    for (post_id, ids) in by_post {
        let Some(current) = post::Entity::find_by_id(post_id)
            .filter(post::Column::OwnerId.eq(tenant_id))
            .lock_exclusive()
            .one(txn)
            .await?
        else {
            continue;
        };
        targets::retry_now(txn, &ids, now).await?;
        let model = current.clone().into();
        resumed.push(save(txn, &current, model, now).await?);
    }
    Ok(resumed)
}
