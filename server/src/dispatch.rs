//! Keeping the queue in step with Postgres: which jobs a post needs, and syncing them after
//! every change. Postgres is the source of truth; a failed sync is repaired by the
//! reconciler, so it is logged, never returned to the user.

use std::sync::Arc;

use uuid::Uuid;

use crate::db::entities::{post, target};
use crate::domain::status;
use crate::queue::{JobQueue, JobSpec};

/// The jobs `post` needs (one per pending target) and the targets whose jobs must go.
pub fn jobs_for(post: &post::Model, targets: &[target::Model]) -> (Vec<JobSpec>, Vec<Uuid>) {
    let publishable = post.is_publishable();
    let mut jobs = Vec::new();
    let mut cancel = Vec::new();
    for t in targets {
        match post.scheduled_at {
            Some(at) if publishable && t.status.is_pending() => {
                let due = status::due_at(at, t.next_attempt_at);
                jobs.push(JobSpec {
                    target_id: t.id,
                    post_id: post.id,
                    platform: t.platform.clone(),
                    version: i64::from(t.queue_version),
                    due_ms: due.timestamp_millis(),
                    tenant: post.owner_id.clone(),
                });
            }
            _ if t.status.is_locked() => {
                // Publishing or done: the job belongs to the worker now.
            }
            _ => cancel.push(t.id),
        }
    }
    (jobs, cancel)
}

/// Enqueues and cancels what `post` needs now. Failures are logged: the reconciler
/// re-enqueues from Postgres.
pub async fn sync(queue: &Arc<dyn JobQueue>, post: &post::Model, targets: &[target::Model]) {
    let (jobs, cancel) = jobs_for(post, targets);
    if let Err(err) = queue.enqueue(&jobs).await {
        tracing::warn!(post = %post.id, %err, "enqueue failed; the reconciler will retry");
    }
    if let Err(err) = queue.cancel(&cancel).await {
        tracing::warn!(post = %post.id, %err, "cancel failed; stale jobs are dropped by the worker");
    }
}

/// Removes every job of `targets` (post deleted).
pub async fn cancel_all(queue: &Arc<dyn JobQueue>, targets: &[Uuid]) {
    if let Err(err) = queue.cancel(targets).await {
        tracing::warn!(%err, "cancel failed; stale jobs are dropped by the worker");
    }
}
