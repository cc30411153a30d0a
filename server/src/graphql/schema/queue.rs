//! The publishing queue in GraphQL: stats, jobs and per-post queue status; pause, resume,
//! retry, mark published, clear failed jobs; live stats. Each queue operation has a
//! scope: `TENANT` (the default; the tenant's `admin` role) acts on and shows the caller's
//! tenant's jobs only, `INSTANCE` acts on the whole instance and is for its operators
//! (`HERALD_OPERATORS`) alone.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{
    Context, Enum, ErrorExtensions, ID, Object, SimpleObject, Subscription as SubscriptionObject,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use futures_util::Stream;

use super::types::{PageInfo, Post, TargetStatus};
use super::{actor, parse_id};
use crate::domain::actor::Role;
use crate::error::AppError;
use crate::posts::PostService;
use crate::queue::{self, JobInfo, JobQueue, PauseScope};
use crate::tenant_queue::{TenantQueue, TenantQueueStats};
use crate::worker::lateness::LatenessRecorder;

/// How often `queueStatsUpdated` looks for changes.
const STATS_POLL: Duration = Duration::from_secs(1);
/// Largest page of `queueJobs`.
const MAX_JOBS_PAGE: i32 = 200;

fn queue_error(err: queue::QueueError) -> async_graphql::Error {
    AppError::Internal(Box::new(err)).extend()
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A set of jobs in the queue.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::queue::JobState")]
pub enum QueueJobState {
    /// Waiting for their due time (retries included).
    Scheduled,
    /// Being published (leased by a worker).
    Active,
    /// Parked because their platform is paused.
    Paused,
    /// Gave up after the last attempt.
    Dead,
}

/// Whose jobs a queue operation shows or acts on.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum QueueScope {
    /// The caller's tenant's jobs (the tenant's `admin` role).
    #[default]
    Tenant,
    /// Every tenant's jobs (instance operators only).
    Instance,
}

/// Lateness: in `INSTANCE` scope, of the claims (claim time minus due time) this server
/// observed since it started; in `TENANT` scope, of the tenant's posts published in the
/// last 24 hours (publish time minus scheduled time).
#[derive(SimpleObject, Clone, PartialEq)]
pub struct Lateness {
    /// Claims measured.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: i64,
    /// 90th percentile, ms.
    pub p90_ms: i64,
    /// 99th percentile, ms.
    pub p99_ms: i64,
    /// Worst, ms.
    pub max_ms: i64,
}

/// Counts by state and health of the publishing queue.
#[derive(SimpleObject, Clone, PartialEq)]
pub struct QueueStats {
    /// Waiting jobs (retries included).
    pub scheduled: u64,
    /// Waiting jobs already due.
    pub due: u64,
    /// Jobs being published.
    pub active: u64,
    /// Jobs whose worker stopped; they are claimed again.
    pub expired_leases: u64,
    /// Jobs parked by a platform pause.
    pub paused: u64,
    /// Dead-lettered jobs.
    pub dead: u64,
    /// How late the oldest due job is, ms.
    pub oldest_overdue_ms: Option<i64>,
    /// Whether the instance's operators paused the whole queue.
    pub globally_paused: bool,
    /// Platforms the instance's operators paused.
    pub paused_platforms: Vec<String>,
    /// Lateness percentiles (see `Lateness` for what each scope measures).
    pub lateness: Lateness,
    /// What the counts cover.
    pub scope: QueueScope,
    /// Whether the tenant paused all its publishing (`TENANT` scope; null otherwise).
    pub tenant_paused: Option<bool>,
    /// Platforms the tenant paused (`TENANT` scope; null otherwise).
    pub tenant_paused_platforms: Option<Vec<String>>,
}

impl QueueStats {
    fn of_tenant(s: TenantQueueStats) -> Self {
        let [count, p50_ms, p90_ms, p99_ms, max_ms] = s.lateness;
        Self {
            scheduled: s.scheduled,
            due: s.due,
            active: s.active,
            expired_leases: s.expired_leases,
            paused: s.paused,
            dead: s.dead,
            oldest_overdue_ms: s.oldest_overdue_ms,
            globally_paused: s.instance_paused,
            paused_platforms: s.instance_paused_platforms,
            lateness: Lateness {
                count: u64::try_from(count).unwrap_or(0),
                p50_ms,
                p90_ms,
                p99_ms,
                max_ms,
            },
            scope: QueueScope::Tenant,
            tenant_paused: Some(s.tenant_paused),
            tenant_paused_platforms: Some(s.tenant_paused_platforms),
        }
    }

    fn of_instance(s: queue::QueueStats, l: crate::worker::lateness::LatenessSummary) -> Self {
        Self {
            scheduled: s.scheduled,
            due: s.due,
            active: s.active,
            expired_leases: s.expired_leases,
            paused: s.paused,
            dead: s.dead,
            oldest_overdue_ms: s.oldest_overdue_ms,
            globally_paused: s.globally_paused,
            paused_platforms: s.paused_platforms,
            lateness: Lateness {
                count: l.count,
                p50_ms: l.p50,
                p90_ms: l.p90,
                p99_ms: l.p99,
                max_ms: l.max,
            },
            scope: QueueScope::Instance,
            tenant_paused: None,
            tenant_paused_platforms: None,
        }
    }
}

/// One job in the queue.
#[derive(SimpleObject)]
pub struct QueueJob {
    /// The target it publishes.
    pub target_id: ID,
    /// The target's post.
    pub post_id: ID,
    /// Platform.
    pub platform: String,
    /// Set it is in.
    pub state: QueueJobState,
    /// Finer state: scheduled, retrying, active, paused, dead.
    pub detail: String,
    /// Claims so far.
    pub attempts: u32,
    /// When it is (or was) due.
    pub due_at: DateTime<Utc>,
    /// Last error.
    pub error: Option<String>,
    /// Post version it was made for.
    pub version: i64,
}

impl From<JobInfo> for QueueJob {
    fn from(info: JobInfo) -> Self {
        Self {
            target_id: ID(info.spec.target_id.to_string()),
            post_id: ID(info.spec.post_id.to_string()),
            platform: info.spec.platform,
            state: info.state.into(),
            detail: info.detail,
            attempts: info.attempts,
            due_at: ms_to_time(info.spec.due_ms),
            error: info.error,
            version: info.spec.version,
        }
    }
}

/// A page of queue jobs.
#[derive(SimpleObject)]
pub struct QueueJobConnection {
    /// The jobs, in due order.
    pub nodes: Vec<QueueJob>,
    /// Paging state; `endCursor` continues after this page.
    pub page_info: PageInfo,
}

/// Where each target of a post stands in the queue.
#[derive(SimpleObject)]
pub struct TargetQueueStatus {
    /// The target.
    pub target_id: ID,
    /// Platform.
    pub platform: String,
    /// The target's status.
    pub status: TargetStatus,
    /// Its queue job, when one exists.
    pub job: Option<QueueJob>,
}

/// Where a scoped queue operation may act: the whole queue, or one tenant's part of it.
#[derive(Clone)]
enum Scoped {
    Instance(Arc<dyn JobQueue>, Arc<LatenessRecorder>),
    Tenant(TenantQueue, String),
}

impl Scoped {
    /// The caller's grant for `scope`: `INSTANCE` needs an operator, `TENANT` the tenant's
    /// `admin` role.
    fn of(ctx: &Context<'_>, scope: QueueScope) -> async_graphql::Result<Self> {
        let actor = actor(ctx)?;
        match scope {
            QueueScope::Instance => {
                actor.require_operator().map_err(|e| e.extend())?;
                Ok(Self::Instance(
                    ctx.data::<Arc<dyn JobQueue>>()?.clone(),
                    ctx.data::<Arc<LatenessRecorder>>()?.clone(),
                ))
            }
            QueueScope::Tenant => {
                actor.require(Role::Admin).map_err(|e| e.extend())?;
                Ok(Self::Tenant(
                    ctx.data::<TenantQueue>()?.clone(),
                    actor.tenant_id.clone(),
                ))
            }
        }
    }

    async fn stats(&self) -> async_graphql::Result<QueueStats> {
        match self {
            Self::Instance(queue, lateness) => {
                let s = queue.stats().await.map_err(queue_error)?;
                Ok(QueueStats::of_instance(s, lateness.summary()))
            }
            Self::Tenant(view, tenant) => Ok(QueueStats::of_tenant(
                view.stats(tenant).await.map_err(|e| e.extend())?,
            )),
        }
    }
}

fn decode_offset(after: Option<&str>) -> async_graphql::Result<u64> {
    let Some(cursor) = after else { return Ok(0) };
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("q:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| AppError::bad_input("after", "invalid cursor").extend())
}

fn encode_offset(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("q:{offset}"))
}

/// Queue queries.
#[derive(Default)]
pub struct QueueQuery;

#[Object]
impl QueueQuery {
    /// Counts by state, pause state and lateness: of the caller's tenant (admin role), or
    /// of the whole instance (`scope: INSTANCE`, operators).
    async fn queue_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] scope: QueueScope,
    ) -> async_graphql::Result<QueueStats> {
        Scoped::of(ctx, scope)?.stats().await
    }

    /// Jobs in one state: the caller's tenant's (admin role; candidates in due order, a page
    /// shows those whose job is in that state), or every tenant's (`scope: INSTANCE`,
    /// operators; in the state's order).
    async fn queue_jobs(
        &self,
        ctx: &Context<'_>,
        state: QueueJobState,
        #[graphql(desc = "Page size (1 to 200, default 50).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(default)] scope: QueueScope,
    ) -> async_graphql::Result<QueueJobConnection> {
        let scoped = Scoped::of(ctx, scope)?;
        let first = first.unwrap_or(50);
        if !(1..=MAX_JOBS_PAGE).contains(&first) {
            return Err(AppError::bad_input(
                "first",
                format!("first must be between 1 and {MAX_JOBS_PAGE}"),
            )
            .extend());
        }
        let offset = decode_offset(after.as_deref())?;
        let limit = u64::from(first.unsigned_abs());
        let (page, consumed, has_next_page) = match &scoped {
            Scoped::Instance(queue, _) => {
                let mut jobs = queue
                    .jobs(state.into(), offset, limit + 1)
                    .await
                    .map_err(queue_error)?;
                let more = jobs.len() as u64 > limit;
                jobs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                let consumed = jobs.len() as u64;
                (jobs, consumed, more)
            }
            Scoped::Tenant(view, tenant) => {
                let (jobs, more) = view
                    .jobs(tenant, state.into(), offset, limit)
                    .await
                    .map_err(|e| e.extend())?;
                // A tenant's page walks `limit` of its candidates, shown or not.
                let consumed = if more { limit } else { jobs.len() as u64 };
                (jobs, consumed, more)
            }
        };
        Ok(QueueJobConnection {
            nodes: page.into_iter().map(QueueJob::from).collect(),
            page_info: PageInfo {
                has_next_page,
                has_previous_page: offset > 0,
                start_cursor: Some(encode_offset(offset)),
                end_cursor: Some(encode_offset(offset + consumed)),
            },
        })
    }

    /// Where each target of one of the caller's posts stands in the queue.
    async fn post_queue_status(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
    ) -> async_graphql::Result<Vec<TargetQueueStatus>> {
        let actor = actor(ctx)?;
        let id = parse_id(&post_id, "postId")?;
        let posts = ctx.data::<PostService>()?;
        if posts
            .get(actor, id)
            .await
            .map_err(|e| e.extend())?
            .is_none()
        {
            return Err(AppError::NotFound("post").extend());
        }
        let targets = posts
            .targets_of(&[id])
            .await
            .map_err(|e| e.extend())?
            .remove(&id)
            .unwrap_or_default();
        let queue = ctx.data::<Arc<dyn JobQueue>>()?;
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            let job = queue.job(target.id).await.map_err(queue_error)?;
            out.push(TargetQueueStatus {
                target_id: ID(target.id.to_string()),
                platform: target.platform,
                status: target.status.into(),
                job: job.map(QueueJob::from),
            });
        }
        Ok(out)
    }
}

/// Pauses or resumes publishing in `scope` and returns the stats after the change.
async fn set_paused(
    ctx: &Context<'_>,
    scope: QueueScope,
    platform: Option<&str>,
    paused: bool,
) -> async_graphql::Result<QueueStats> {
    let scoped = Scoped::of(ctx, scope)?;
    match &scoped {
        Scoped::Instance(queue, _) => {
            let result = if paused {
                queue.pause(PauseScope::Instance, platform).await
            } else {
                queue.resume(PauseScope::Instance, platform).await
            };
            result.map_err(queue_error)?;
        }
        Scoped::Tenant(view, tenant) => {
            let result = if paused {
                view.pause(tenant, platform).await
            } else {
                view.resume(tenant, platform).await
            };
            result.map_err(|e| e.extend())?;
        }
    }
    scoped.stats().await
}

/// Queue mutations.
#[derive(Default)]
pub struct QueueMutation;

#[Object]
impl QueueMutation {
    /// Pauses publishing, for every platform or one: the caller's tenant's (admin role),
    /// or the whole instance's (`scope: INSTANCE`, operators). Due jobs wait; nothing is
    /// lost.
    async fn pause_queue(
        &self,
        ctx: &Context<'_>,
        platform: Option<String>,
        #[graphql(default)] scope: QueueScope,
    ) -> async_graphql::Result<QueueStats> {
        set_paused(ctx, scope, platform.as_deref(), true).await
    }

    /// Resumes what `pauseQueue` paused in the same scope; overdue jobs go out now unless
    /// another pause still holds them.
    async fn resume_queue(
        &self,
        ctx: &Context<'_>,
        platform: Option<String>,
        #[graphql(default)] scope: QueueScope,
    ) -> async_graphql::Result<QueueStats> {
        set_paused(ctx, scope, platform.as_deref(), false).await
    }

    /// Publishes the failed, needs-review or waiting-for-account targets of a post again,
    /// now.
    async fn retry_post(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Post> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "id")?;
        let post = ctx
            .data::<PostService>()?
            .retry(actor, id)
            .await
            .map_err(|e| e.extend())?;
        Ok(Post::from(post))
    }

    /// Records that a failed, needs-review or waiting-for-account target is on the platform
    /// at `url` (after a person checked, or posted it by hand), so it is never published
    /// again.
    async fn mark_published(
        &self,
        ctx: &Context<'_>,
        target_id: ID,
        url: String,
    ) -> async_graphql::Result<Post> {
        let actor = actor(ctx)?;
        let id = parse_id(&target_id, "targetId")?;
        let post = ctx
            .data::<PostService>()?
            .mark_published(actor, id, &url)
            .await
            .map_err(|e| e.extend())?;
        Ok(Post::from(post))
    }

    /// Deletes dead-lettered jobs: the caller's tenant's (admin role), or every one
    /// (`scope: INSTANCE`, operators). The targets stay failed. Returns how many.
    async fn clear_failed_jobs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] scope: QueueScope,
    ) -> async_graphql::Result<u64> {
        match Scoped::of(ctx, scope)? {
            Scoped::Instance(queue, _) => queue.clear_dead().await.map_err(queue_error),
            Scoped::Tenant(view, tenant) => view.clear_dead(&tenant).await.map_err(|e| e.extend()),
        }
    }
}

/// Live queue statistics.
#[derive(Default)]
pub struct QueueSubscription;

#[SubscriptionObject]
impl QueueSubscription {
    /// The stats of `queueStats` in the same scope, now and whenever they change
    /// (checked every second).
    async fn queue_stats_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] scope: QueueScope,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<QueueStats>>> {
        Ok(stats_stream(Scoped::of(ctx, scope)?))
    }
}

fn stats_stream(scoped: Scoped) -> impl Stream<Item = async_graphql::Result<QueueStats>> {
    futures_util::stream::unfold(
        (scoped, None::<QueueStats>, true),
        |(scoped, last, first)| async move {
            let mut first = first;
            loop {
                if !first {
                    tokio::time::sleep(STATS_POLL).await;
                }
                first = false;
                let current = match scoped.stats().await {
                    Ok(current) => current,
                    Err(err) => return Some((Err(err), (scoped, last, false))),
                };
                if last.as_ref() != Some(&current) {
                    return Some((Ok(current.clone()), (scoped, Some(current), false)));
                }
            }
        },
    )
}
