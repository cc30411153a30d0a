//! The publishing queue: a delay queue of publish jobs, one per post target.
//!
//! [`JobQueue`] is the narrow contract the scheduler and workers use; [`redis::RedisQueue`]
//! implements it on a Redis sorted set (due time as score) with Lua scripts beside it in
//! `lua/`. An embedded implementation can follow behind the same trait; the conformance
//! tests in `server/tests/api/queue.rs` run against every implementation.

pub mod redis;
pub mod retry;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

/// A queue failure: the backend could not be reached or answered nonsense.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The backend failed (connection, timeout, script error).
    #[error("queue backend: {0}")]
    Backend(String),
    /// The backend answered with something the client cannot read.
    #[error("queue protocol: {0}")]
    Protocol(String),
}

/// A job to enqueue: publish one target when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// The target (also the job id: one job per target).
    pub target_id: Uuid,
    /// The target's post.
    pub post_id: Uuid,
    /// The target's platform (pause and concurrency limits apply per platform).
    pub platform: String,
    /// The post version the job was made for; an older version never replaces a newer one.
    pub version: i64,
    /// Due time, milliseconds since the Unix epoch.
    pub due_ms: i64,
    /// The tenant that owns the post: its pauses apply (empty for jobs enqueued before
    /// jobs carried it).
    pub tenant: String,
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The same or a newer version was already queued: nothing changed.
    Unchanged,
    /// A new job.
    Created,
    /// An older version was replaced.
    Updated,
}

/// A job a worker holds under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    /// The job as enqueued.
    pub spec: JobSpec,
    /// Fencing token: only its holder may settle or extend the job.
    pub token: String,
    /// Claims so far, this one included.
    pub attempts: u32,
    /// Whether the job was taken over from a worker whose lease expired.
    pub recovered: bool,
}

/// The result of one claim.
#[derive(Debug, Clone)]
pub struct ClaimBatch {
    /// The queue's clock at the claim, ms since the epoch.
    pub now_ms: i64,
    /// When the next job (or lease) falls due, on the queue's clock; `None` when the queue
    /// is empty or paused.
    pub next_due_ms: Option<i64>,
    /// The claimed jobs.
    pub jobs: Vec<ClaimedJob>,
}

/// How a worker finished with a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Done: remove the job.
    Ack,
    /// Try again after `delay`.
    Retry {
        /// How long to wait.
        delay: Duration,
        /// Why the attempt failed.
        error: String,
    },
    /// Give up: keep the job in the dead-letter set for inspection.
    DeadLetter {
        /// Why.
        error: String,
    },
}

/// Which set of jobs to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for their due time (including retries).
    Scheduled,
    /// Leased by a worker.
    Active,
    /// Parked because their platform is paused.
    Paused,
    /// Gave up after the last attempt.
    Dead,
}

/// A job as listed for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// The job.
    pub spec: JobSpec,
    /// Set it is in.
    pub state: JobState,
    /// Claims so far.
    pub attempts: u32,
    /// Finer state: scheduled, retrying, active, paused, dead.
    pub detail: String,
    /// Last error.
    pub error: Option<String>,
    /// The job's score in its set: due time, lease expiry, or time of death (ms).
    pub score_ms: i64,
}

/// Counts by state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// The queue's clock, ms since the epoch.
    pub now_ms: i64,
    /// Waiting jobs (including retries and due ones).
    pub scheduled: u64,
    /// Waiting jobs already due.
    pub due: u64,
    /// Leased jobs.
    pub active: u64,
    /// Leased jobs whose lease expired (their worker died; claimable again).
    pub expired_leases: u64,
    /// Jobs parked by a platform pause.
    pub paused: u64,
    /// Dead-lettered jobs.
    pub dead: u64,
    /// How late the oldest due job is, in ms.
    pub oldest_overdue_ms: Option<i64>,
    /// Whether the whole queue is paused.
    pub globally_paused: bool,
    /// Platforms paused for the whole instance.
    pub paused_platforms: Vec<String>,
    /// Pauses tenants set on their own publishing.
    pub tenant_pauses: Vec<TenantPause>,
}

/// A pause a tenant's admin set on the tenant's own publishing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TenantPause {
    /// The tenant.
    pub tenant: String,
    /// The paused platform; `None` when every platform is.
    pub platform: Option<String>,
}

/// Whose publishing a pause or resume acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseScope<'a> {
    /// The whole instance (instance operators).
    Instance,
    /// One tenant's jobs only (the tenant's admins).
    Tenant(&'a str),
}

/// Backend health.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueHealth {
    /// Round trip of a PING.
    pub ping: Duration,
    /// Problems an operator should fix (e.g. an eviction policy that can drop jobs).
    pub warnings: Vec<String>,
}

/// The publishing queue's contract.
#[async_trait::async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Enqueues jobs, or re-versions queued ones; replays and stale versions change nothing.
    async fn enqueue(&self, jobs: &[JobSpec]) -> Result<Vec<EnqueueOutcome>, QueueError>;
    /// Removes the jobs of these targets, whatever their state; returns how many existed.
    async fn cancel(&self, target_ids: &[Uuid]) -> Result<u64, QueueError>;
    /// Claims up to `max` due jobs (expired leases first), each leased for `lease`.
    async fn claim(&self, max: usize, lease: Duration) -> Result<ClaimBatch, QueueError>;
    /// Extends a lease; `false` when the token is no longer current.
    async fn heartbeat(&self, job: &ClaimedJob, lease: Duration) -> Result<bool, QueueError>;
    /// Settles leased jobs; one flag per job, `false` when its token was stale.
    async fn settle(&self, jobs: &[(&ClaimedJob, Settlement)]) -> Result<Vec<bool>, QueueError>;
    /// Pauses every platform, or one, for the instance or one tenant. Due jobs it holds
    /// are parked when claimed.
    async fn pause(&self, scope: PauseScope<'_>, platform: Option<&str>) -> Result<(), QueueError>;
    /// Lifts that pause, moves the parked jobs no other pause holds back, and wakes the
    /// workers.
    async fn resume(&self, scope: PauseScope<'_>, platform: Option<&str>)
    -> Result<(), QueueError>;
    /// Counts by state.
    async fn stats(&self) -> Result<QueueStats, QueueError>;
    /// Lists jobs of one state in score order.
    async fn jobs(
        &self,
        state: JobState,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<JobInfo>, QueueError>;
    /// The jobs of these targets that are in the set of `state`, in the order given.
    async fn jobs_by_id(&self, state: JobState, ids: &[Uuid]) -> Result<Vec<JobInfo>, QueueError>;
    /// The job of one target, if queued.
    async fn job(&self, target_id: Uuid) -> Result<Option<JobInfo>, QueueError>;
    /// Deletes every dead-lettered job; returns how many.
    async fn clear_dead(&self) -> Result<u64, QueueError>;
    /// Deletes the dead-lettered jobs among these targets' (others are kept); returns how
    /// many.
    async fn clear_dead_of(&self, target_ids: &[Uuid]) -> Result<u64, QueueError>;
    /// Backend round trip and configuration warnings.
    async fn health(&self) -> Result<QueueHealth, QueueError>;
    /// Notified whenever a job may have become due earlier than workers expected (an
    /// earlier enqueue, a retry, a resume), by this process or another.
    fn wakeup(&self) -> Arc<Notify>;
}
