//! The SQL of `post_targets`: a post's targets in their one order, inserting, syncing and
//! re-stating them for a post command, retrying and marking one published.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QueryTrait, Select, Set, Statement,
};
use uuid::Uuid;

use super::entities::{post, target};
use crate::domain::status::TargetStatus;
use crate::domain::target::TargetSpec;
use crate::error::AppError;

/// Inserts `targets` of the post `post_id` in `status`, their jobs at `version`.
pub async fn insert(
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
        status: Set(status),
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
pub async fn sync(
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
            .filter(super::one_of(target::Column::Id, &dropped))
            .exec(txn)
            .await?;
    }
    for existing in targets {
        let Some(spec) = wanted.iter().find(|w| w.platform == existing.platform) else {
            continue;
        };
        if *spec != existing.spec() {
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
    insert(txn, post.id, &added, status, post.version, now).await
}

/// Moves `targets` to `status`.
pub async fn set_status(
    txn: &DatabaseTransaction,
    targets: &[target::Model],
    status: TargetStatus,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if targets.is_empty() {
        return Ok(());
    }
    target::Entity::update_many()
        .col_expr(target::Column::Status, Expr::value(status))
        .col_expr(target::Column::UpdatedAt, Expr::value(now))
        .filter(super::one_of(
            target::Column::Id,
            &targets.iter().map(|t| t.id).collect::<Vec<_>>(),
        ))
        .exec(txn)
        .await?;
    Ok(())
}

/// The targets of `post_ids`, in each post's platform order (for `PostService::targets_of`).
/// The ids go as one array parameter, so every page size shares one statement text (built
/// once) and prepared plan.
pub fn of_posts_statement(post_ids: &[Uuid]) -> Statement {
    const POST_ID: (target::Entity, target::Column) = (target::Entity, target::Column::PostId);
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let statement = select(super::one_of(POST_ID, &[])).build(DatabaseBackend::Postgres);
        // The ids must stay the statement's only parameter.
        debug_assert_eq!(statement.values.map(|values| values.0.len()), Some(1));
        statement.sql
    });
    Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        SQL.as_str(),
        [super::ids_value(post_ids)],
    )
}

/// Targets matching `of_posts`, in each post's platform order: the one ordering of a
/// post's targets, which `PostService` compares target lists by.
fn select(of_posts: SimpleExpr) -> Select<target::Entity> {
    target::Entity::find()
        .filter(of_posts)
        .order_by_asc(target::Column::CreatedAt)
        .order_by_asc(target::Column::Platform)
}

/// The targets of the post `post_id`, in platform order.
pub async fn of_post<C: ConnectionTrait>(
    db: &C,
    post_id: Uuid,
) -> Result<Vec<target::Model>, AppError> {
    Ok(select(target::Column::PostId.eq(post_id)).all(db).await?)
}

/// Sends the `failed`, `needs_review` or `waiting_for_account` targets `ids` out again:
/// `retrying`, due `now`.
pub async fn retry_now(
    txn: &DatabaseTransaction,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    target::Entity::update_many()
        .col_expr(target::Column::Status, Expr::value(TargetStatus::Retrying))
        .col_expr(target::Column::NextAttemptAt, Expr::value(now))
        .col_expr(target::Column::UpdatedAt, Expr::value(now))
        .filter(super::one_of(target::Column::Id, ids))
        .exec(txn)
        .await?;
    Ok(())
}

/// Records `target` as published by hand at `url`.
pub async fn mark_published(
    txn: &DatabaseTransaction,
    target: &target::Model,
    url: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let mut row = target.clone().into_active_model();
    row.status = Set(TargetStatus::Published);
    row.platform_url = Set(Some(url.to_owned()));
    row.published_at = Set(Some(now));
    row.last_error = Set(None);
    row.updated_at = Set(now);
    row.update(txn).await?;
    Ok(())
}
