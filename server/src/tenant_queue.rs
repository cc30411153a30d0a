//! One tenant's view of the shared publishing queue, and the controls its admins have
//! over their own jobs only: counts, job listings, pause and resume, dead-letter
//! clearing. The queue's sets hold every tenant's jobs, so each answer starts from the
//! tenant's targets in Postgres and reads only those jobs from the queue: nothing counts,
//! lists or clears another tenant's jobs.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::db::rules;
use crate::error::AppError;
use crate::queue::{JobInfo, JobQueue, JobState, PauseScope, QueueError, QueueStats};

/// Ids read from the queue per call.
const CHUNK: usize = 1_000;

/// A tenant's publishing as the queue holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantQueueStats {
    /// The tenant's waiting jobs (retries included), parked ones excepted.
    pub scheduled: u64,
    /// Those already due.
    pub due: u64,
    /// Its targets being published.
    pub active: u64,
    /// Those whose worker stopped (their lease expired); they are claimed again.
    pub expired_leases: u64,
    /// Due jobs held by a pause (the tenant's own or the instance's).
    pub paused: u64,
    /// Its dead-lettered jobs.
    pub dead: u64,
    /// How late its oldest due job is, ms.
    pub oldest_overdue_ms: Option<i64>,
    /// Whether the instance's operators paused all publishing.
    pub instance_paused: bool,
    /// Platforms the instance's operators paused.
    pub instance_paused_platforms: Vec<String>,
    /// Whether the tenant paused all its publishing.
    pub tenant_paused: bool,
    /// Platforms the tenant paused.
    pub tenant_paused_platforms: Vec<String>,
    /// Lateness (publish time minus scheduled time) of its posts published in the last
    /// 24 hours, ms: count, p50, p90, p99, max.
    pub lateness: [i64; 5],
}

/// The tenant's part of the publishing queue.
#[derive(Clone)]
pub struct TenantQueue {
    db: DatabaseConnection,
    queue: Arc<dyn JobQueue>,
}

impl std::fmt::Debug for TenantQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantQueue").finish_non_exhaustive()
    }
}

fn queue_error(err: QueueError) -> AppError {
    AppError::Internal(Box::new(err))
}

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// What pauses hold one tenant's jobs, as SQL parameters: all platforms, or these.
struct Held {
    all: bool,
    platforms: Vec<String>,
}

impl Held {
    fn of(stats: &QueueStats, tenant: &str) -> Self {
        let mut platforms = stats.paused_platforms.clone();
        let mut all = stats.globally_paused;
        for pause in stats.tenant_pauses.iter().filter(|p| p.tenant == tenant) {
            match &pause.platform {
                Some(platform) => platforms.push(platform.clone()),
                None => all = true,
            }
        }
        Self { all, platforms }
    }

    /// `(due <= now() AND ($n OR platform = ANY($n+1)))`: a due job a pause parks.
    fn parked_sql(first_param: usize) -> String {
        format!(
            "(due <= now() AND (${first_param} OR platform = ANY(${})))",
            first_param + 1
        )
    }
}

/// The tenant's pending and publishing targets with their due times, as `targets`.
fn tenant_targets_sql() -> String {
    format!(
        "WITH targets AS (
           SELECT t.id, t.status, t.platform, t.updated_at, {due} AS due
             FROM post_targets t JOIN social_posts p ON p.id = t.post_id
            WHERE p.owner_id = $1
              AND (t.status = 'publishing'
                   OR (t.status IN {pending} AND {publishable} AND p.scheduled_at IS NOT NULL)))",
        due = rules::due_at("p", "t"),
        pending = *rules::PENDING,
        publishable = rules::publishable("p"),
    )
}

impl TenantQueue {
    /// The view over `db` and `queue`.
    pub fn new(db: DatabaseConnection, queue: Arc<dyn JobQueue>) -> Self {
        Self { db, queue }
    }

    /// The tenant's counts, pauses and lateness.
    pub async fn stats(&self, tenant: &str) -> Result<TenantQueueStats, AppError> {
        let queue_stats = self.queue.stats().await.map_err(queue_error)?;
        let held = Held::of(&queue_stats, tenant);
        let parked = Held::parked_sql(2);
        let sql = format!(
            "{targets}
             SELECT count(*) FILTER (WHERE status <> 'publishing' AND NOT {parked}) AS scheduled,
                    count(*) FILTER (WHERE status <> 'publishing' AND due <= now()
                                       AND NOT {parked}) AS due,
                    count(*) FILTER (WHERE status = 'publishing') AS active,
                    count(*) FILTER (WHERE status <> 'publishing' AND {parked}) AS paused,
                    (EXTRACT(EPOCH FROM now() - min(due) FILTER (
                        WHERE status <> 'publishing' AND due <= now() AND NOT {parked}
                    )) * 1000)::bigint AS oldest_ms
               FROM targets",
            targets = tenant_targets_sql(),
        );
        let row = self
            .db
            .query_one(stmt(
                &sql,
                vec![
                    tenant.into(),
                    held.all.into(),
                    held.platforms.clone().into(),
                ],
            ))
            .await?
            .ok_or_else(|| AppError::Internal("tenant queue counts: no row".into()))?;
        let count = |name: &str| -> Result<u64, AppError> {
            let n: i64 = row.try_get("", name)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };

        let publishing = self.target_ids(tenant, "t.status = 'publishing'").await?;
        let mut expired_leases = 0;
        for chunk in publishing.chunks(CHUNK) {
            let active = self
                .queue
                .jobs_by_id(JobState::Active, chunk)
                .await
                .map_err(queue_error)?;
            expired_leases += active
                .iter()
                .filter(|job| job.score_ms <= queue_stats.now_ms)
                .count() as u64;
        }
        let dead = self.dead_jobs(tenant).await?.len() as u64;

        let mut tenant_paused_platforms: Vec<String> = queue_stats
            .tenant_pauses
            .iter()
            .filter(|p| p.tenant == tenant)
            .filter_map(|p| p.platform.clone())
            .collect();
        tenant_paused_platforms.sort();
        Ok(TenantQueueStats {
            scheduled: count("scheduled")?,
            due: count("due")?,
            active: count("active")?,
            expired_leases,
            paused: count("paused")?,
            dead,
            oldest_overdue_ms: row.try_get("", "oldest_ms")?,
            instance_paused: queue_stats.globally_paused,
            instance_paused_platforms: queue_stats.paused_platforms.clone(),
            tenant_paused: queue_stats
                .tenant_pauses
                .iter()
                .any(|p| p.tenant == tenant && p.platform.is_none()),
            tenant_paused_platforms,
            lateness: self.lateness(tenant).await?,
        })
    }

    /// Count, p50, p90, p99 and max of the lateness of the tenant's last day of publishes.
    async fn lateness(&self, tenant: &str) -> Result<[i64; 5], AppError> {
        let sql = "WITH l AS (
                     SELECT GREATEST(0, EXTRACT(EPOCH FROM t.published_at - p.scheduled_at)
                                        * 1000) AS ms
                       FROM post_targets t JOIN social_posts p ON p.id = t.post_id
                      WHERE p.owner_id = $1 AND t.published_at > now() - interval '1 day'
                        AND p.scheduled_at IS NOT NULL)
                   SELECT count(*) AS n,
                          COALESCE(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), 0)::bigint AS p50,
                          COALESCE(percentile_disc(0.9) WITHIN GROUP (ORDER BY ms), 0)::bigint AS p90,
                          COALESCE(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms), 0)::bigint AS p99,
                          COALESCE(max(ms), 0)::bigint AS max
                     FROM l";
        let row = self
            .db
            .query_one(stmt(sql, vec![tenant.into()]))
            .await?
            .ok_or_else(|| AppError::Internal("tenant lateness: no row".into()))?;
        Ok([
            row.try_get("", "n")?,
            row.try_get("", "p50")?,
            row.try_get("", "p90")?,
            row.try_get("", "p99")?,
            row.try_get("", "max")?,
        ])
    }

    /// Ids of the tenant's targets matching `condition` (on `t`), newest change first.
    async fn target_ids(&self, tenant: &str, condition: &str) -> Result<Vec<Uuid>, AppError> {
        let sql = format!(
            "SELECT t.id FROM post_targets t JOIN social_posts p ON p.id = t.post_id
              WHERE p.owner_id = $1 AND {condition}
              ORDER BY t.updated_at DESC, t.id"
        );
        let rows = self.db.query_all(stmt(&sql, vec![tenant.into()])).await?;
        rows.iter()
            .map(|row| row.try_get::<Uuid>("", "id").map_err(AppError::from))
            .collect()
    }

    /// The tenant's dead-lettered jobs: those of its failed targets still in the
    /// dead-letter set, most recently failed first.
    async fn dead_jobs(&self, tenant: &str) -> Result<Vec<JobInfo>, AppError> {
        let failed = self
            .target_ids(tenant, "t.status IN ('failed', 'needs_review')")
            .await?;
        let mut dead = Vec::new();
        for chunk in failed.chunks(CHUNK) {
            dead.extend(
                self.queue
                    .jobs_by_id(JobState::Dead, chunk)
                    .await
                    .map_err(queue_error)?,
            );
        }
        Ok(dead)
    }

    /// A page of the tenant's jobs in `state`: `limit` of its candidate targets from
    /// `offset` (in due order; by last change for active and dead jobs), each shown when
    /// its job is in that state. Returns the jobs and whether more candidates follow.
    pub async fn jobs(
        &self,
        tenant: &str,
        state: JobState,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<JobInfo>, bool), AppError> {
        let queue_stats = self.queue.stats().await.map_err(queue_error)?;
        let held = Held::of(&queue_stats, tenant);
        let parked = Held::parked_sql(2);
        let (condition, order) = match state {
            JobState::Scheduled => (
                format!("status <> 'publishing' AND NOT {parked}"),
                "due, id",
            ),
            JobState::Paused => (format!("status <> 'publishing' AND {parked}"), "due, id"),
            JobState::Active => ("status = 'publishing'".to_owned(), "updated_at, id"),
            JobState::Dead => {
                let dead = self.dead_jobs(tenant).await?;
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(usize::try_from(limit).unwrap_or(usize::MAX));
                let more = dead.len() > end;
                let page = dead
                    .into_iter()
                    .skip(start)
                    .take(end.saturating_sub(start))
                    .collect();
                return Ok((page, more));
            }
        };
        let sql = format!(
            "{targets}
             SELECT id FROM targets WHERE {condition} ORDER BY {order} OFFSET $4 LIMIT $5",
            targets = tenant_targets_sql(),
        );
        let rows = self
            .db
            .query_all(stmt(
                &sql,
                vec![
                    tenant.into(),
                    held.all.into(),
                    held.platforms.into(),
                    i64::try_from(offset).unwrap_or(i64::MAX).into(),
                    i64::try_from(limit.saturating_add(1))
                        .unwrap_or(i64::MAX)
                        .into(),
                ],
            ))
            .await?;
        let mut ids = rows
            .iter()
            .map(|row| row.try_get::<Uuid>("", "id"))
            .collect::<Result<Vec<_>, _>>()?;
        let more = ids.len() as u64 > limit;
        ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let jobs = self
            .queue
            .jobs_by_id(state, &ids)
            .await
            .map_err(queue_error)?;
        Ok((jobs, more))
    }

    /// Pauses the tenant's publishing, on every platform or one.
    pub async fn pause(&self, tenant: &str, platform: Option<&str>) -> Result<(), AppError> {
        self.queue
            .pause(PauseScope::Tenant(tenant), platform)
            .await
            .map_err(queue_error)
    }

    /// Lifts that pause; the tenant's parked jobs go out now if nothing else holds them.
    pub async fn resume(&self, tenant: &str, platform: Option<&str>) -> Result<(), AppError> {
        self.queue
            .resume(PauseScope::Tenant(tenant), platform)
            .await
            .map_err(queue_error)
    }

    /// Deletes the tenant's dead-lettered jobs (its targets stay failed); returns how many.
    pub async fn clear_dead(&self, tenant: &str) -> Result<u64, AppError> {
        let ids: Vec<Uuid> = self
            .dead_jobs(tenant)
            .await?
            .iter()
            .map(|job| job.spec.target_id)
            .collect();
        let mut cleared = 0;
        for chunk in ids.chunks(CHUNK) {
            cleared += self.queue.clear_dead_of(chunk).await.map_err(queue_error)?;
        }
        Ok(cleared)
    }
}
