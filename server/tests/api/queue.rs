//! Conformance tests of the [`JobQueue`] contract. Each case is a function over
//! `Arc<dyn JobQueue>`; every implementation gets one `#[tokio::test]` per case (Redis
//! today; the embedded queue will add its own line to `conformance!`).

use std::sync::Arc;
use std::time::Duration;

use herald_server::queue::redis::RedisQueue;
use herald_server::queue::{
    EnqueueOutcome, JobQueue, JobSpec, JobState, PauseScope, Settlement, TenantPause,
};
use uuid::Uuid;

const LEASE: Duration = Duration::from_millis(400);

async fn redis_queue() -> Arc<dyn JobQueue> {
    let url = std::env::var("REDIS_URL").expect("REDIS_URL: run the tests with scripts/test");
    let namespace = format!("conformance-{}", Uuid::new_v4().simple());
    Arc::new(
        RedisQueue::connect(&url, &namespace)
            .await
            .expect("connect"),
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn job(platform: &str, due_ms: i64) -> JobSpec {
    tenant_job("org:t", platform, due_ms)
}

fn tenant_job(tenant: &str, platform: &str, due_ms: i64) -> JobSpec {
    JobSpec {
        target_id: Uuid::now_v7(),
        post_id: Uuid::now_v7(),
        platform: platform.into(),
        version: 1,
        due_ms,
        tenant: tenant.into(),
    }
}

async fn claim_all(queue: &Arc<dyn JobQueue>) -> Vec<herald_server::queue::ClaimedJob> {
    queue.claim(100, LEASE).await.expect("claim").jobs
}

async fn claims_in_due_order(queue: Arc<dyn JobQueue>) {
    let now = now_ms();
    let late = job("x", now - 100);
    let early = job("x", now - 300);
    let middle = job("bluesky", now - 200);
    let future = job("x", now + 60_000);
    queue
        .enqueue(&[late.clone(), early.clone(), middle.clone(), future.clone()])
        .await
        .expect("enqueue");
    let batch = queue.claim(100, LEASE).await.expect("claim");
    let ids: Vec<Uuid> = batch.jobs.iter().map(|j| j.spec.target_id).collect();
    assert_eq!(ids, [early.target_id, middle.target_id, late.target_id]);
    assert!(batch.jobs.iter().all(|j| j.attempts == 1 && !j.recovered));
    assert_eq!(batch.jobs[0].spec, early, "the job comes back as enqueued");
    // The next due time is the earlier of the future job and the leases just given.
    let next = batch.next_due_ms.expect("next due");
    assert!(next <= batch.now_ms + LEASE.as_millis() as i64, "{next}");
}

async fn nothing_runs_early(queue: Arc<dyn JobQueue>) {
    let due = now_ms() + 500;
    let spec = job("x", due);
    queue
        .enqueue(std::slice::from_ref(&spec))
        .await
        .expect("enqueue");
    let batch = queue.claim(10, LEASE).await.expect("claim");
    assert!(batch.jobs.is_empty(), "not due yet");
    assert_eq!(batch.next_due_ms, Some(due), "reports when to wake");
    let wait = u64::try_from(due - batch.now_ms).expect("future");
    tokio::time::sleep(Duration::from_millis(wait + 5)).await;
    let batch = queue.claim(10, LEASE).await.expect("claim");
    assert_eq!(batch.jobs.len(), 1);
    assert!(
        batch.now_ms >= due,
        "claimed at {} before due {due}",
        batch.now_ms
    );
}

async fn enqueue_is_idempotent_and_versioned(queue: Arc<dyn JobQueue>) {
    let mut spec = job("x", now_ms() + 60_000);
    assert_eq!(
        queue.enqueue(&[spec.clone()]).await.expect("enqueue"),
        [EnqueueOutcome::Created]
    );
    assert_eq!(
        queue.enqueue(&[spec.clone()]).await.expect("replay"),
        [EnqueueOutcome::Unchanged]
    );
    // Reschedule: a newer version moves the job.
    let v1 = spec.clone();
    spec.version = 2;
    spec.due_ms = now_ms() - 10;
    assert_eq!(
        queue.enqueue(&[spec.clone()]).await.expect("v2"),
        [EnqueueOutcome::Updated]
    );
    // A stale (older) version changes nothing.
    assert_eq!(
        queue.enqueue(&[v1]).await.expect("stale"),
        [EnqueueOutcome::Unchanged]
    );
    let claimed = claim_all(&queue).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].spec.version, 2);
    assert_eq!(claimed[0].spec.due_ms, spec.due_ms);
}

async fn cancel_removes_jobs(queue: Arc<dyn JobQueue>) {
    let a = job("x", now_ms() - 10);
    let b = job("x", now_ms() - 10);
    queue
        .enqueue(&[a.clone(), b.clone()])
        .await
        .expect("enqueue");
    assert_eq!(
        queue
            .cancel(&[a.target_id, Uuid::now_v7()])
            .await
            .expect("cancel"),
        1
    );
    let claimed = claim_all(&queue).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].spec.target_id, b.target_id);
    // Cancelling a leased job fences out its holder.
    assert_eq!(queue.cancel(&[b.target_id]).await.expect("cancel"), 1);
    let settled = queue
        .settle(&[(&claimed[0], Settlement::Ack)])
        .await
        .expect("settle");
    assert_eq!(settled, [false]);
    let stats = queue.stats().await.expect("stats");
    assert_eq!((stats.scheduled, stats.active, stats.dead), (0, 0, 0));
}

async fn retry_waits_then_counts_attempts(queue: Arc<dyn JobQueue>) {
    let spec = job("x", now_ms() - 10);
    queue
        .enqueue(std::slice::from_ref(&spec))
        .await
        .expect("enqueue");
    let first = claim_all(&queue).await.remove(0);
    let retry = Settlement::Retry {
        delay: Duration::from_millis(300),
        error: "503 from platform".into(),
    };
    assert_eq!(
        queue.settle(&[(&first, retry)]).await.expect("retry"),
        [true]
    );
    let info = queue
        .job(spec.target_id)
        .await
        .expect("job")
        .expect("exists");
    assert_eq!(info.detail, "retrying");
    assert_eq!(info.error.as_deref(), Some("503 from platform"));
    assert!(claim_all(&queue).await.is_empty(), "backoff not over");
    tokio::time::sleep(Duration::from_millis(320)).await;
    let second = claim_all(&queue).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
}

async fn dead_letters_stay_inspectable(queue: Arc<dyn JobQueue>) {
    let spec = job("x", now_ms() - 10);
    queue
        .enqueue(std::slice::from_ref(&spec))
        .await
        .expect("enqueue");
    let claimed = claim_all(&queue).await.remove(0);
    let dead = Settlement::DeadLetter {
        error: "gave up after 3 attempts".into(),
    };
    assert_eq!(
        queue.settle(&[(&claimed, dead)]).await.expect("dead"),
        [true]
    );
    let listed = queue.jobs(JobState::Dead, 0, 10).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].spec.target_id, spec.target_id);
    assert_eq!(listed[0].error.as_deref(), Some("gave up after 3 attempts"));
    assert_eq!(queue.stats().await.expect("stats").dead, 1);
    assert!(
        claim_all(&queue).await.is_empty(),
        "dead jobs are not claimed"
    );
    // A newer version (a retry from the user) revives it.
    let mut again = spec.clone();
    again.version = 2;
    assert_eq!(
        queue.enqueue(&[again]).await.expect("revive"),
        [EnqueueOutcome::Updated]
    );
    assert_eq!(queue.stats().await.expect("stats").dead, 0);
    assert_eq!(claim_all(&queue).await.len(), 1);
    // clear_dead deletes what is dead.
    let other = job("x", now_ms() - 10);
    queue.enqueue(&[other]).await.expect("enqueue");
    let claimed = claim_all(&queue).await.remove(0);
    queue
        .settle(&[(&claimed, Settlement::DeadLetter { error: "no".into() })])
        .await
        .expect("dead");
    // clear_dead_of deletes only dead jobs among the ids it is given.
    let kept = job("x", now_ms() - 10);
    queue
        .enqueue(std::slice::from_ref(&kept))
        .await
        .expect("enqueue");
    let claimed_kept = claim_all(&queue).await.remove(0);
    queue
        .settle(&[(&claimed_kept, Settlement::DeadLetter { error: "no".into() })])
        .await
        .expect("dead");
    let live = job("x", now_ms() + 60_000);
    queue
        .enqueue(std::slice::from_ref(&live))
        .await
        .expect("enqueue");
    assert_eq!(
        queue
            .clear_dead_of(&[claimed.spec.target_id, live.target_id])
            .await
            .expect("clear some"),
        1,
        "the dead job among the ids; the scheduled one is not dead"
    );
    assert!(queue.job(live.target_id).await.expect("job").is_some());
    assert_eq!(queue.clear_dead().await.expect("clear"), 1, "the one kept");
    queue.cancel(&[live.target_id]).await.expect("cancel");
    assert!(
        queue
            .jobs(JobState::Dead, 0, 10)
            .await
            .expect("list")
            .is_empty()
    );
}

async fn pause_and_resume(queue: Arc<dyn JobQueue>) {
    let x = job("x", now_ms() - 10);
    let bsky = job("bluesky", now_ms() - 10);
    queue
        .enqueue(&[x.clone(), bsky.clone()])
        .await
        .expect("enqueue");

    queue
        .pause(PauseScope::Instance, None)
        .await
        .expect("pause all");
    let batch = queue.claim(10, LEASE).await.expect("claim");
    assert!(
        batch.jobs.is_empty() && batch.next_due_ms.is_none(),
        "paused queue claims nothing"
    );
    assert!(queue.stats().await.expect("stats").globally_paused);
    queue
        .resume(PauseScope::Instance, None)
        .await
        .expect("resume all");

    queue
        .pause(PauseScope::Instance, Some("x"))
        .await
        .expect("pause x");
    let claimed = claim_all(&queue).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].spec.platform, "bluesky");
    let stats = queue.stats().await.expect("stats");
    assert_eq!(stats.paused, 1);
    assert_eq!(stats.paused_platforms, ["x"]);
    // Enqueued while its platform is paused: parked too.
    let x2 = job("x", now_ms() - 10);
    queue.enqueue(&[x2]).await.expect("enqueue");
    assert!(claim_all(&queue).await.is_empty());
    assert_eq!(queue.stats().await.expect("stats").paused, 2);

    queue
        .resume(PauseScope::Instance, Some("x"))
        .await
        .expect("resume x");
    let claimed = claim_all(&queue).await;
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|j| j.spec.platform == "x"));
}

async fn a_tenant_pause_parks_only_that_tenants_jobs(queue: Arc<dyn JobQueue>) {
    let now = now_ms();
    let a_x = tenant_job("org:a", "x", now - 10);
    let a_y = tenant_job("org:a", "y", now - 10);
    let b_x = tenant_job("org:b", "x", now - 10);
    queue
        .enqueue(&[a_x.clone(), a_y.clone(), b_x.clone()])
        .await
        .expect("enqueue");

    // Tenant a pauses its platform x: a's y and b's x still go out.
    queue
        .pause(PauseScope::Tenant("org:a"), Some("x"))
        .await
        .expect("pause a/x");
    let mut claimed: Vec<Uuid> = claim_all(&queue)
        .await
        .iter()
        .map(|j| j.spec.target_id)
        .collect();
    claimed.sort();
    let mut expected = vec![a_y.target_id, b_x.target_id];
    expected.sort();
    assert_eq!(claimed, expected);
    let stats = queue.stats().await.expect("stats");
    assert_eq!(stats.paused, 1);
    assert!(stats.paused_platforms.is_empty(), "no instance pause");
    assert_eq!(
        stats.tenant_pauses,
        [TenantPause {
            tenant: "org:a".into(),
            platform: Some("x".into())
        }]
    );
    let parked = queue
        .jobs_by_id(JobState::Paused, &[a_x.target_id, b_x.target_id])
        .await
        .expect("jobs by id");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].spec.tenant, "org:a");

    // A tenant-wide pause holds every platform of a; b's new job is not held.
    queue
        .pause(PauseScope::Tenant("org:a"), None)
        .await
        .expect("pause a");
    let a_z = tenant_job("org:a", "z", now - 10);
    let b_z = tenant_job("org:b", "z", now - 10);
    queue
        .enqueue(&[a_z.clone(), b_z.clone()])
        .await
        .expect("enqueue");
    let claimed = claim_all(&queue).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].spec.target_id, b_z.target_id);

    // Lifting the platform pause alone frees nothing: the tenant-wide one still holds.
    queue
        .resume(PauseScope::Tenant("org:a"), Some("x"))
        .await
        .expect("resume a/x");
    assert!(claim_all(&queue).await.is_empty());
    queue
        .resume(PauseScope::Tenant("org:a"), None)
        .await
        .expect("resume a");
    let mut claimed: Vec<Uuid> = claim_all(&queue)
        .await
        .iter()
        .map(|j| j.spec.target_id)
        .collect();
    claimed.sort();
    let mut expected = vec![a_x.target_id, a_z.target_id];
    expected.sort();
    assert_eq!(claimed, expected);
    assert!(queue.stats().await.expect("stats").tenant_pauses.is_empty());
}

async fn fencing_rejects_a_stale_worker(queue: Arc<dyn JobQueue>) {
    let spec = job("x", now_ms() - 10);
    queue
        .enqueue(std::slice::from_ref(&spec))
        .await
        .expect("enqueue");
    let stale = queue
        .claim(1, Duration::from_millis(150))
        .await
        .expect("claim")
        .jobs
        .remove(0);
    assert!(
        queue
            .heartbeat(&stale, Duration::from_millis(150))
            .await
            .expect("beat")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The lease expired: the job is claimable again, with a new token.
    let fresh = claim_all(&queue).await.remove(0);
    assert!(fresh.recovered, "taken over from an expired lease");
    assert_eq!(fresh.attempts, 2);
    assert_ne!(fresh.token, stale.token);
    assert!(!queue.heartbeat(&stale, LEASE).await.expect("beat"));
    for settlement in [
        Settlement::Ack,
        Settlement::Retry {
            delay: Duration::ZERO,
            error: "x".into(),
        },
        Settlement::DeadLetter { error: "x".into() },
    ] {
        assert_eq!(
            queue.settle(&[(&stale, settlement)]).await.expect("settle"),
            [false]
        );
    }
    assert_eq!(
        queue
            .settle(&[(&fresh, Settlement::Ack)])
            .await
            .expect("ack"),
        [true]
    );
    assert!(queue.job(spec.target_id).await.expect("job").is_none());
}

async fn reversion_while_leased_requeues_after_settle(queue: Arc<dyn JobQueue>) {
    let mut spec = job("x", now_ms() - 10);
    queue
        .enqueue(std::slice::from_ref(&spec))
        .await
        .expect("enqueue");
    let held = claim_all(&queue).await.remove(0);
    spec.version = 2;
    spec.due_ms = now_ms() - 5;
    assert_eq!(
        queue.enqueue(&[spec.clone()]).await.expect("v2"),
        [EnqueueOutcome::Updated]
    );
    assert!(claim_all(&queue).await.is_empty(), "still leased");
    assert_eq!(
        queue
            .settle(&[(&held, Settlement::Ack)])
            .await
            .expect("ack"),
        [true]
    );
    let again = claim_all(&queue).await;
    assert_eq!(again.len(), 1, "the newer version comes back");
    assert_eq!(again[0].spec.version, 2);
    assert_eq!(again[0].attempts, 1);
}

async fn wakeup_on_earlier_job(queue: Arc<dyn JobQueue>) {
    let wakeup = queue.wakeup();
    let notified = wakeup.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    queue
        .enqueue(&[job("x", now_ms() + 60_000)])
        .await
        .expect("enqueue");
    tokio::time::timeout(Duration::from_secs(2), notified)
        .await
        .expect("woken by an enqueue");
}

async fn health_reports_ping(queue: Arc<dyn JobQueue>) {
    let health = queue.health().await.expect("health");
    assert!(health.ping > Duration::ZERO);
}

macro_rules! conformance {
    ($make:ident: $($case:ident),* $(,)?) => {
        mod redis_conformance {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::$make().await).await;
                }
            )*
        }
    };
}

conformance!(redis_queue:
    claims_in_due_order,
    nothing_runs_early,
    enqueue_is_idempotent_and_versioned,
    cancel_removes_jobs,
    retry_waits_then_counts_attempts,
    dead_letters_stay_inspectable,
    pause_and_resume,
    a_tenant_pause_parks_only_that_tenants_jobs,
    fencing_rejects_a_stale_worker,
    reversion_while_leased_requeues_after_settle,
    wakeup_on_earlier_job,
    health_reports_ping,
);

/// The health check warns when Redis may evict queue keys.
#[tokio::test]
async fn health_warns_about_eviction() {
    let url = std::env::var("REDIS_URL").expect("REDIS_URL");
    // A private Redis would be cleaner; the setting is restored at once and only this
    // test reads it.
    let admin = crate::harness::redis_client(&url).await;
    let set = |policy: &'static str| {
        let admin = admin.clone();
        async move {
            let _: () =
                fred::prelude::ConfigInterface::config_set(&admin, "maxmemory-policy", policy)
                    .await
                    .expect("config set");
        }
    };
    let queue = redis_queue().await;
    set("allkeys-lru").await;
    let evicting = queue.health().await.expect("health");
    set("noeviction").await;
    let safe = queue.health().await.expect("health");
    assert!(
        evicting.warnings.iter().any(|w| w.contains("allkeys-lru")),
        "{:?}",
        evicting.warnings
    );
    assert!(
        safe.warnings
            .iter()
            .all(|w| !w.contains("maxmemory-policy is")),
        "{:?}",
        safe.warnings
    );
}
