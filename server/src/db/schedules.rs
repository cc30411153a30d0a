//! The SQL of posting schedules (`posting_schedules`) and of the posts queued in their
//! slots (`queued_posts`): reading and writing a connection's schedule, serialising the
//! changes of a connection's queue, and which posts take which times on a connection.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::entities::connection;
use super::ids_value;
use crate::domain::slots::{WeeklySlot, parse_time, weekday};
use crate::error::AppError;

/// A connection's stored posting schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchedule {
    /// The connection.
    pub connection_id: Uuid,
    /// IANA zone name.
    pub time_zone: String,
    /// Whether adding to its queue is refused.
    pub paused: bool,
    /// The weekly slots.
    pub slots: Vec<WeeklySlot>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A slot as stored in the `slots` JSON array.
#[derive(Serialize, Deserialize)]
struct SlotRow {
    day: String,
    time: String,
}

const DAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

fn to_json(slots: &[WeeklySlot]) -> serde_json::Value {
    let rows: Vec<SlotRow> = slots
        .iter()
        .map(|s| SlotRow {
            day: DAYS[s.day.num_days_from_monday() as usize % 7].to_owned(),
            time: s.time_text(),
        })
        .collect();
    serde_json::json!(rows)
}

fn from_json(value: serde_json::Value) -> Result<Vec<WeeklySlot>, AppError> {
    let rows: Vec<SlotRow> =
        serde_json::from_value(value).map_err(|e| AppError::Internal(Box::new(e)))?;
    rows.into_iter()
        .map(|row| {
            let day = DAYS
                .iter()
                .position(|d| *d == row.day)
                .ok_or_else(|| AppError::Internal(format!("stored day `{}`", row.day).into()))?;
            Ok(WeeklySlot {
                day: weekday(u32::try_from(day).unwrap_or(0)),
                time: parse_time(&row.time, "slots")?,
            })
        })
        .collect()
}

/// The schedule of `connection_id`, if one was set.
pub async fn get<C: ConnectionTrait>(
    db: &C,
    tenant_id: &str,
    connection_id: Uuid,
) -> Result<Option<StoredSchedule>, AppError> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT time_zone, paused, slots, updated_at FROM posting_schedules
              WHERE connection_id = $1 AND owner_id = $2",
            [connection_id.into(), tenant_id.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(StoredSchedule {
        connection_id,
        time_zone: row.try_get("", "time_zone")?,
        paused: row.try_get("", "paused")?,
        slots: from_json(row.try_get("", "slots")?)?,
        updated_at: row.try_get("", "updated_at")?,
    }))
}

/// Sets the schedule of `connection_id` (the tenant's).
pub async fn put<C: ConnectionTrait>(
    db: &C,
    tenant_id: &str,
    schedule: &StoredSchedule,
) -> Result<(), AppError> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO posting_schedules
           (connection_id, owner_id, time_zone, paused, slots, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (connection_id) DO UPDATE SET time_zone = EXCLUDED.time_zone,
           paused = EXCLUDED.paused, slots = EXCLUDED.slots, updated_at = EXCLUDED.updated_at",
        [
            schedule.connection_id.into(),
            tenant_id.into(),
            schedule.time_zone.clone().into(),
            schedule.paused.into(),
            to_json(&schedule.slots).into(),
            schedule.updated_at.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Serialises the changes of the queues of `connections` until the end of the
/// transaction (two posts added at once must not take the same slot). Locks are taken in
/// id order, so two transactions locking overlapping sets cannot deadlock.
pub async fn lock_queues<C: ConnectionTrait>(db: &C, connections: &[Uuid]) -> Result<(), AppError> {
    let mut ids = connections.to_vec();
    ids.sort();
    ids.dedup();
    for id in ids {
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended('posting-queue:' || $1::text, 0))",
            [id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The connection a target on `platform` publishes with: `chosen` when it names one (the
/// tenant's, on that platform), else the tenant's default account there, or its only
/// account there when none is the default.
pub async fn connection_of<C: ConnectionTrait>(
    db: &C,
    tenant_id: &str,
    platform: &str,
    chosen: Option<Uuid>,
) -> Result<Option<connection::Model>, AppError> {
    let mut query = connection::Entity::find()
        .filter(connection::Column::OwnerId.eq(tenant_id))
        .filter(connection::Column::Platform.eq(platform));
    if let Some(id) = chosen {
        query = query.filter(connection::Column::Id.eq(id));
    }
    let candidates = query
        .order_by_desc(connection::Column::IsDefault)
        .limit(2)
        .all(db)
        .await?;
    Ok(candidates
        .first()
        .filter(|first| chosen.is_some() || first.is_default || candidates.len() == 1)
        .cloned())
}

/// A post that takes a time on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupant {
    /// The post.
    pub post_id: Uuid,
    /// When it is due.
    pub at: DateTime<Utc>,
    /// Whether it took the time from the connection's slots (else a custom time).
    pub queued: bool,
}

/// The tenant's scheduled posts with a target publishing as `connection_id` (named, or
/// the platform's default account), due in `[from, to)`, by time.
pub async fn occupants<C: ConnectionTrait>(
    db: &C,
    tenant_id: &str,
    connection_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Occupant>, AppError> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT p.id, p.scheduled_at,
                    EXISTS (SELECT 1 FROM queued_posts q
                             WHERE q.post_id = p.id AND q.connection_id = c.id) AS queued
               FROM social_posts p
               JOIN social_connections c ON c.id = $2 AND c.owner_id = p.owner_id
              WHERE p.owner_id = $1 AND p.archived_at IS NULL
                AND p.scheduled_at >= $3 AND p.scheduled_at < $4
                AND EXISTS (
                  SELECT 1 FROM post_targets t
                   WHERE t.post_id = p.id AND t.platform = c.platform
                     AND (t.connection_id = c.id
                          OR (t.connection_id IS NULL
                              AND (c.is_default OR NOT EXISTS (
                                SELECT 1 FROM social_connections o
                                 WHERE o.owner_id = c.owner_id AND o.platform = c.platform
                                   AND o.id <> c.id)))))
              ORDER BY p.scheduled_at, p.id",
            [
                tenant_id.into(),
                connection_id.into(),
                from.into(),
                to.into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Occupant {
                post_id: row.try_get("", "id")?,
                at: row.try_get("", "scheduled_at")?,
                queued: row.try_get("", "queued")?,
            })
        })
        .collect()
}

/// Records that `post_id` took its time from the slots of `connections` (replacing what
/// was recorded).
pub async fn set_queued<C: ConnectionTrait>(
    db: &C,
    tenant_id: &str,
    post_id: Uuid,
    connections: &[Uuid],
) -> Result<(), AppError> {
    clear_queued(db, post_id).await?;
    let unique: HashSet<Uuid> = connections.iter().copied().collect();
    let ids: Vec<Uuid> = unique.into_iter().collect();
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO queued_posts (post_id, connection_id, owner_id)
         SELECT $1, c, $2 FROM unnest($3::uuid[]) AS c",
        [post_id.into(), tenant_id.into(), ids_value(&ids)],
    ))
    .await?;
    Ok(())
}

/// Takes `post_id` out of every queue (it got a custom time, or none).
pub async fn clear_queued<C: ConnectionTrait>(db: &C, post_id: Uuid) -> Result<(), AppError> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM queued_posts WHERE post_id = $1",
        [post_id.into()],
    ))
    .await?;
    Ok(())
}
