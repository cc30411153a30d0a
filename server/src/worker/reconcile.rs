//! Reconciliation: Postgres is the source of truth, Redis only schedules. On start and
//! then periodically, one process (the holder of a transaction-scoped advisory lock)
//! re-enqueues every publishable target due soon and every target stuck `publishing`;
//! enqueue is idempotent, so what Redis already has is unchanged and what it lost (a
//! FLUSHALL, a failover) comes back. The leader also deletes week-old publish checkpoints.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::rules;
use crate::domain::status::TargetStatus;
use crate::error::AppError;
use crate::queue::{EnqueueOutcome, JobQueue, JobSpec};

/// Advisory-lock key of the reconciler ("herald-r").
const LEADER_LOCK_KEY: i64 = 0x6865_7261_6c64_2d72;
/// Jobs enqueued per call.
const CHUNK: usize = 500;

/// Age after which the leader deletes a publish checkpoint (media containers, the longest
/// lived thing a checkpoint names, expire after a day; retries end long before a week).
const CHECKPOINT_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The targets a round restores: every pending target of a publishable, scheduled post
/// due within the horizon (`$1` ms), and every target stuck `publishing` longer than `$2`
/// ms.
static RESTORE_SQL: LazyLock<String> = LazyLock::new(|| {
    let due = rules::due_at("p", "t");
    format!(
        "SELECT t.id, t.post_id, t.platform, t.queue_version, t.status, p.owner_id, {due} AS due
           FROM post_targets t JOIN social_posts p ON p.id = t.post_id
          WHERE (t.status IN {pending}
                 AND {publishable}
                 AND p.scheduled_at IS NOT NULL
                 AND {due} <= now() + $1 * interval '1 millisecond')
             OR (t.status = 'publishing'
                 AND t.updated_at < now() - $2 * interval '1 millisecond')",
        pending = *rules::PENDING,
        publishable = rules::publishable("p"),
    )
});

/// Reconciler settings.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileConfig {
    /// Time between rounds.
    pub interval: Duration,
    /// How far ahead of now targets are enqueued.
    pub horizon: Duration,
    /// A target `publishing` for longer than this without a job is recovered.
    pub stuck_after: Duration,
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Whether this process led the round (another may hold the lock).
    pub led: bool,
    /// Targets examined.
    pub examined: usize,
    /// Jobs Redis lacked and got back.
    pub restored: usize,
}

/// Runs one round now.
pub async fn round(
    db: &DatabaseConnection,
    queue: &Arc<dyn JobQueue>,
    config: &ReconcileConfig,
) -> Result<RoundReport, AppError> {
    let txn = db.begin().await?;
    let led = txn
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS led",
            [LEADER_LOCK_KEY.into()],
        ))
        .await?
        .map(|row| row.try_get::<bool>("", "led"))
        .transpose()?
        .unwrap_or(false);
    if !led {
        txn.commit().await?;
        return Ok(RoundReport::default());
    }
    let horizon_ms = i64::try_from(config.horizon.as_millis()).unwrap_or(i64::MAX);
    let stuck_ms = i64::try_from(config.stuck_after.as_millis()).unwrap_or(i64::MAX);
    let rows = txn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            RESTORE_SQL.as_str(),
            [horizon_ms.into(), stuck_ms.into()],
        ))
        .await?;
    let now = Utc::now();
    let mut jobs = Vec::with_capacity(rows.len());
    for row in &rows {
        let status: TargetStatus = row.try_get("", "status")?;
        let due: Option<DateTime<Utc>> = row.try_get("", "due")?;
        let due = if status == TargetStatus::Publishing {
            now
        } else {
            due.unwrap_or(now)
        };
        jobs.push(JobSpec {
            target_id: row.try_get::<Uuid>("", "id")?,
            post_id: row.try_get::<Uuid>("", "post_id")?,
            platform: row.try_get("", "platform")?,
            version: i64::from(row.try_get::<i32>("", "queue_version")?),
            due_ms: due.timestamp_millis(),
            tenant: row.try_get("", "owner_id")?,
        });
    }
    let mut restored = 0;
    for chunk in jobs.chunks(CHUNK) {
        let outcomes = queue
            .enqueue(chunk)
            .await
            .map_err(|e| AppError::Internal(Box::new(e)))?;
        restored += outcomes
            .iter()
            .filter(|o| **o != EnqueueOutcome::Unchanged)
            .count();
    }
    // Holding the lock until every enqueue is done keeps rounds from overlapping.
    txn.commit().await?;
    let purged = crate::db::checkpoints::purge(db, CHECKPOINT_AGE).await?;
    if purged > 0 {
        tracing::debug!(purged, "old publish checkpoints deleted");
    }
    Ok(RoundReport {
        led: true,
        examined: jobs.len(),
        restored,
    })
}

/// Runs a round now and then every `config.interval` until `stop`.
pub fn spawn(
    db: DatabaseConnection,
    queue: Arc<dyn JobQueue>,
    config: ReconcileConfig,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match round(&db, &queue, &config).await {
                Ok(report) if report.restored > 0 => {
                    tracing::info!(
                        restored = report.restored,
                        examined = report.examined,
                        "reconciled jobs the queue was missing"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "reconciliation round failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(config.interval) => {},
                () = stop.cancelled() => break,
            }
        }
    })
}
