//! Jobs whose compare-and-set lost: usually stale (unscheduled, re-versioned, already
//! done), sometimes a target left `publishing` by a worker that died mid-call. Such a
//! target is never blindly republished: an idempotent platform gets the same idempotency
//! key again; any other becomes `needs_review` for a person to decide.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

use super::{Outcome, WorkerConfig, WorkerDeps, announce, publish};
use crate::domain::status::TargetStatus;
use crate::queue::{ClaimedJob, Settlement};

/// Shown on a target whose publish may or may not have reached the platform.
pub const NEEDS_REVIEW_REASON: &str = "the worker publishing this stopped before it could \
     record the result, and this platform cannot deduplicate a retry: check the platform, \
     then choose retryPost or markPublished";

pub(super) async fn handle_lost(
    deps: &WorkerDeps,
    config: &WorkerConfig,
    job: ClaimedJob,
    outcomes: &mpsc::Sender<Outcome>,
) {
    let target_id = job.spec.target_id;
    let snapshot = match deps.store.snapshot(target_id).await {
        Ok(snapshot) => snapshot,
        Err(err) => {
            tracing::error!(target = %target_id, error = %err, "cannot inspect target; leaving the job to its lease");
            return;
        }
    };
    let settlement = match snapshot {
        Some(s) if s.status == TargetStatus::Publishing => {
            let Some(previous) = s.attempt_id else {
                settle(deps, &job, Settlement::Ack).await;
                return;
            };
            let idempotent = deps
                .publishers
                .get(&job.spec.platform)
                .is_some_and(|p| p.is_idempotent(&job.spec.platform));
            if idempotent {
                match deps
                    .store
                    .take_over(s.post_id, target_id, previous, Uuid::now_v7())
                    .await
                {
                    Ok(Some(target)) => {
                        tracing::info!(target = %target_id, "resuming an interrupted publish with the same idempotency key");
                        publish(
                            deps.clone(),
                            config.clone(),
                            job,
                            target,
                            Arc::new(Semaphore::new(1)),
                            outcomes.clone(),
                            None,
                        )
                        .await;
                        return;
                    }
                    Ok(None) => Settlement::Ack,
                    Err(err) => {
                        tracing::error!(target = %target_id, error = %err, "cannot take over target");
                        return;
                    }
                }
            } else {
                match deps
                    .store
                    .mark_needs_review(s.post_id, target_id, previous, NEEDS_REVIEW_REASON)
                    .await
                {
                    Ok(posts) => {
                        tracing::warn!(target = %target_id, "interrupted publish on a non-idempotent platform: needs review");
                        announce(&deps.events, posts);
                        Settlement::Ack
                    }
                    Err(err) => {
                        tracing::error!(target = %target_id, error = %err, "cannot mark target for review");
                        return;
                    }
                }
            }
        }
        Some(s)
            if s.status.is_pending()
                && i64::from(s.queue_version) == job.spec.version
                && s.publishable =>
        {
            // Publishable at this version, yet not won: a race with a concurrent change.
            // Look again shortly rather than drop the job.
            Settlement::Retry {
                delay: Duration::from_secs(1),
                error: "target changed while starting; retrying".into(),
            }
        }
        // Deleted, unscheduled, re-versioned, not approved, or already settled: the job is
        // stale (a re-versioned job comes back by itself at its new due time).
        _ => Settlement::Ack,
    };
    settle(deps, &job, settlement).await;
}

async fn settle(deps: &WorkerDeps, job: &ClaimedJob, settlement: Settlement) {
    if let Err(err) = deps.queue.settle(&[(job, settlement)]).await {
        tracing::warn!(%err, "cannot settle a stale job; it returns after its lease");
    }
}
