//! The publishing worker: claims due jobs from the queue, wins each target in Postgres
//! (compare-and-set), publishes through the target platform's [`Publisher`], records the
//! outcome in batches and settles the jobs.
//!
//! There is no fixed-interval polling: a worker sleeps until the next due time reported by
//! the claim, and is woken early when an earlier job is enqueued (pub/sub or in-process),
//! with a safety cap of [`WorkerConfig::max_idle`].

pub mod lateness;
pub mod reconcile;
pub mod store;

mod recovery;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::status::TargetStatus;
use crate::events::{EventBus, PostEvent};
use crate::media::MediaUrls;
use crate::publish::{PublishFailure, PublishRequest, PublisherRegistry, Receipt};
use crate::queue::retry::RetryPolicy;
use crate::queue::{ClaimedJob, JobQueue, Settlement};
use lateness::LatenessRecorder;
use store::{AttemptResult, PublishStore, StartRequest, WonTarget};

/// Batches being started (Postgres compare-and-set) at once per worker.
const STARTS_IN_FLIGHT: usize = 2;

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Publishes in flight at once in this process.
    pub concurrency: usize,
    /// Publishes in flight at once per platform in this process.
    pub platform_concurrency: usize,
    /// Lease of a claimed job; a worker that dies loses its jobs after this long.
    pub lease: Duration,
    /// Most jobs taken per claim.
    pub claim_batch: usize,
    /// Longest sleep without a wakeup (safety cap).
    pub max_idle: Duration,
    /// Longest a single publish call may take.
    pub publish_timeout: Duration,
    /// Retry and dead-letter policy.
    pub retry: RetryPolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            platform_concurrency: 16,
            lease: Duration::from_secs(30),
            claim_batch: 256,
            max_idle: Duration::from_secs(2),
            publish_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

/// Everything a worker needs.
#[derive(Clone)]
pub struct WorkerDeps {
    /// The queue.
    pub queue: Arc<dyn JobQueue>,
    /// Postgres statements.
    pub store: PublishStore,
    /// Publishers by platform.
    pub publishers: Arc<PublisherRegistry>,
    /// Where post changes are announced.
    pub events: EventBus,
    /// Lateness samples of this process.
    pub lateness: Arc<LatenessRecorder>,
    /// Signs the URLs of the media library files posts name.
    pub media: MediaUrls,
}

/// A publish that finished (successfully or not), waiting to be recorded.
struct Outcome {
    job: ClaimedJob,
    target: WonTarget,
    started_at: chrono::DateTime<Utc>,
    result: Result<Receipt, PublishFailure>,
}

/// A running worker; dropping it does not stop it, [`WorkerHandle::shutdown`] does.
pub struct WorkerHandle {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Stops claiming, lets in-flight publishes finish and be recorded, then returns.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts a worker.
pub fn spawn(deps: WorkerDeps, config: WorkerConfig) -> WorkerHandle {
    let stop = CancellationToken::new();
    let (outcomes_tx, outcomes_rx) = mpsc::channel::<Outcome>(config.concurrency.max(1) * 4);
    let finisher = tokio::spawn(finisher(deps.clone(), config.clone(), outcomes_rx));
    let claimer = tokio::spawn(claim_loop(deps, config, outcomes_tx, stop.clone()));
    WorkerHandle {
        stop,
        tasks: vec![claimer, finisher],
    }
}

/// Idempotency key of a target at a version: the same for every attempt at that version.
pub fn idempotency_key(target_id: Uuid, version: i64) -> String {
    format!("herald-{}-v{version}", target_id.simple())
}

async fn claim_loop(
    deps: WorkerDeps,
    config: WorkerConfig,
    outcomes: mpsc::Sender<Outcome>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.concurrency));
    // Batches being started in Postgres at once: while they run, due jobs accumulate and
    // the next claim takes a bigger batch, so Postgres does fewer, larger statements.
    let starting = Arc::new(Semaphore::new(STARTS_IN_FLIGHT));
    let platforms: Arc<Mutex<HashMap<String, Arc<Semaphore>>>> = Arc::default();
    let wakeup = deps.queue.wakeup();
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        // Register for wakeups before claiming, so one sent during the claim is not lost.
        let notified = wakeup.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        let Ok(start_permit) = starting.clone().acquire_owned().await else {
            break;
        };
        let free = slots.available_permits().min(config.claim_batch);
        if free == 0 {
            tokio::select! {
                permit = slots.clone().acquire_owned() => drop(permit),
                () = stop.cancelled() => break,
            }
            continue;
        }
        let batch = match deps.queue.claim(free, config.lease).await {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                batch
            }
            Err(err) => {
                tracing::warn!(%err, "claim failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {},
                    () = stop.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if batch.jobs.is_empty() {
            let sleep = batch
                .next_due_ms
                .map(|due| Duration::from_millis(u64::try_from(due - batch.now_ms).unwrap_or(0)))
                .unwrap_or(config.max_idle)
                .min(config.max_idle);
            tokio::select! {
                () = tokio::time::sleep(sleep) => {},
                () = &mut notified => {},
                () = stop.cancelled() => break,
            }
            continue;
        }
        for job in &batch.jobs {
            if !job.recovered {
                deps.lateness.record(batch.now_ms - job.spec.due_ms);
            }
        }
        let permits = match slots
            .clone()
            .try_acquire_many_owned(batch.jobs.len() as u32)
        {
            Ok(p) => p,
            Err(_) => {
                // Cannot happen: only this loop takes slots, and it asked for at most `free`.
                tracing::error!("worker slots miscounted");
                continue;
            }
        };
        // Start this batch in the background and claim again at once: more may be due, and
        // the next claim reports the next due time. Slots bound what is in flight.
        let (deps, config, platforms, outcomes) = (
            deps.clone(),
            config.clone(),
            platforms.clone(),
            outcomes.clone(),
        );
        tokio::spawn(async move {
            start_batch(&deps, &config, batch.jobs, permits, &platforms, &outcomes).await;
            drop(start_permit);
        });
    }
}

/// Wins the batch's targets in Postgres and spawns a publish for each winner; jobs that
/// lost go to the recovery path.
async fn start_batch(
    deps: &WorkerDeps,
    config: &WorkerConfig,
    jobs: Vec<ClaimedJob>,
    mut permits: tokio::sync::OwnedSemaphorePermit,
    platforms: &Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    outcomes: &mpsc::Sender<Outcome>,
) {
    let requests: Vec<StartRequest> = jobs
        .iter()
        .map(|job| StartRequest {
            target_id: job.spec.target_id,
            post_id: job.spec.post_id,
            version: i32::try_from(job.spec.version).unwrap_or(i32::MAX),
            attempt_id: Uuid::now_v7(),
        })
        .collect();
    let (won, posts) = match deps.store.start(&requests, deps.events.is_observed()).await {
        Ok(result) => result,
        Err(err) => {
            // Leave the jobs leased: they are claimed again when the lease expires, and the
            // compare-and-set makes that safe.
            tracing::error!(error = %err, "cannot start publishes; jobs will be retried after their lease");
            return;
        }
    };
    announce(&deps.events, posts);
    let mut won_by_target: HashMap<Uuid, WonTarget> =
        won.into_iter().map(|w| (w.target_id, w)).collect();
    for job in jobs {
        let permit = permits.split(1);
        match won_by_target.remove(&job.spec.target_id) {
            Some(target) => {
                let platform_slots = {
                    let mut map = platforms.lock().unwrap_or_else(|e| e.into_inner());
                    map.entry(target.platform.clone())
                        .or_insert_with(|| Arc::new(Semaphore::new(config.platform_concurrency)))
                        .clone()
                };
                tokio::spawn(publish(
                    deps.clone(),
                    config.clone(),
                    job,
                    target,
                    platform_slots,
                    outcomes.clone(),
                    permit,
                ));
            }
            None => {
                let deps = deps.clone();
                let config = config.clone();
                let outcomes = outcomes.clone();
                tokio::spawn(async move {
                    recovery::handle_lost(&deps, &config, job, &outcomes).await;
                    drop(permit);
                });
            }
        }
    }
}

/// Publishes one won target, extending the lease while it runs, and hands the outcome to
/// the finisher.
async fn publish(
    deps: WorkerDeps,
    config: WorkerConfig,
    job: ClaimedJob,
    target: WonTarget,
    platform_slots: Arc<Semaphore>,
    outcomes: mpsc::Sender<Outcome>,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    // Library files go out as signed URLs, fresh for each attempt.
    let media = deps.media.resolve(&target.media);
    let request = PublishRequest {
        target_id: target.target_id,
        post_id: target.post_id,
        owner_id: target.owner_id.clone(),
        platform: target.platform.clone(),
        content: target.content.clone(),
        media: media.clone().unwrap_or_default(),
        connection_id: target.connection_id,
        options: target.options.clone(),
        idempotency_key: idempotency_key(target.target_id, job.spec.version),
    };
    let started_at = Utc::now();
    let work = async {
        let _platform_slot = platform_slots.acquire().await;
        if let Err(message) = media {
            return Err(PublishFailure::Permanent {
                message,
                response_code: None,
            });
        }
        match deps.publishers.get(&request.platform) {
            Some(publisher) => {
                // The publisher reads the tenant's account through the API's pool, in
                // the tenant's scope (row-level security).
                let call = crate::db::tenant::scope(
                    &request.owner_id,
                    tokio::time::timeout(config.publish_timeout, publisher.publish(&request)),
                );
                match call.await {
                    Ok(result) => result,
                    Err(_) if publisher.is_idempotent(&request.platform) => {
                        Err(PublishFailure::Retryable {
                            message: format!(
                                "the platform did not answer within {} s",
                                config.publish_timeout.as_secs()
                            ),
                            response_code: None,
                        })
                    }
                    Err(_) => Err(PublishFailure::Unconfirmed {
                        message: format!(
                            "the platform did not answer within {} s; check it, then \
                             retryPost or markPublished",
                            config.publish_timeout.as_secs()
                        ),
                    }),
                }
            }
            None => Err(PublishFailure::Permanent {
                message: format!(
                    "no publisher is installed for platform `{}`",
                    request.platform
                ),
                response_code: None,
            }),
        }
    };
    tokio::pin!(work);
    let mut beat = tokio::time::interval(config.lease / 3);
    beat.tick().await;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = beat.tick() => {
                match deps.queue.heartbeat(&job, config.lease).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(target = %target.target_id, "lease lost during publish; the outcome is still recorded if this attempt holds the target"),
                    Err(err) => tracing::warn!(%err, "heartbeat failed"),
                }
            }
        }
    };
    if outcomes
        .send(Outcome {
            job,
            target,
            started_at,
            result,
        })
        .await
        .is_err()
    {
        tracing::error!(
            "finisher stopped; an outcome was not recorded (the lease will expire and recovery decides)"
        );
    }
}

/// Records outcomes in batches: one Postgres transaction and one queue call per batch,
/// with a few batches in flight at once.
async fn finisher(deps: WorkerDeps, config: WorkerConfig, mut outcomes: mpsc::Receiver<Outcome>) {
    const MAX_BATCH: usize = 512;
    const IN_FLIGHT: usize = 3;
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while outcomes.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (deps, config) = (deps.clone(), config.clone());
        let batch = std::mem::take(&mut batch);
        tokio::spawn(async move {
            record(&deps, &config, batch).await;
            drop(permit);
        });
    }
    // Wait for the batches still being recorded.
    let _ = in_flight.acquire_many(IN_FLIGHT as u32).await;
}

async fn record(deps: &WorkerDeps, config: &WorkerConfig, batch: Vec<Outcome>) {
    let now = Utc::now();
    let mut results = Vec::with_capacity(batch.len());
    let mut settlements = Vec::with_capacity(batch.len());
    for outcome in &batch {
        let (result, settlement) = decide(config, outcome, now);
        results.push(result);
        settlements.push(settlement);
    }
    let mut attempt = 0;
    loop {
        match deps.store.finish(&results, deps.events.is_observed()).await {
            Ok(posts) => {
                announce(&deps.events, posts);
                break;
            }
            Err(err) if attempt < 5 => {
                attempt += 1;
                tracing::warn!(error = %err, attempt, "cannot record outcomes; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(err) => {
                // Leave the jobs leased: recovery decides when the leases expire.
                tracing::error!(error = %err, "cannot record outcomes; leaving them to recovery");
                return;
            }
        }
    }
    let pairs: Vec<_> = batch.iter().map(|o| &o.job).zip(settlements).collect();
    if let Err(err) = deps.queue.settle(&pairs).await {
        // Postgres has the outcome; a job left leased is claimed again later and dropped by
        // the compare-and-set.
        tracing::warn!(%err, "cannot settle jobs; they will be dropped after their lease");
    }
}

/// What an outcome means for the target and its job.
fn decide(
    config: &WorkerConfig,
    outcome: &Outcome,
    now: chrono::DateTime<Utc>,
) -> (AttemptResult, Settlement) {
    let base = AttemptResult {
        target_id: outcome.target.target_id,
        post_id: outcome.target.post_id,
        shared_post: outcome.target.shared_post,
        platform: outcome.target.platform.clone(),
        attempt_number: outcome.target.attempt_number,
        started_at: outcome.started_at,
        attempt_id: outcome.target.attempt_id,
        status: TargetStatus::Published,
        platform_post_id: None,
        url: None,
        error: None,
        response_code: None,
        next_attempt_at: None,
        outcome: "published",
    };
    match &outcome.result {
        Ok(receipt) => (
            AttemptResult {
                platform_post_id: Some(receipt.platform_post_id.clone()),
                url: web_url(&outcome.target.platform, receipt.url.as_deref()),
                response_code: receipt.response_code.map(i32::from),
                ..base
            },
            Settlement::Ack,
        ),
        Err(failure @ PublishFailure::Unconfirmed { .. }) => (
            AttemptResult {
                status: TargetStatus::NeedsReview,
                error: Some(failure.to_string()),
                outcome: failure.outcome(),
                ..base
            },
            Settlement::Ack,
        ),
        // Retrying cannot help until a person reconnects the account: the target waits
        // without a job (reconnecting sends it out again, see `ConnectionService::store`).
        Err(
            failure @ PublishFailure::AuthExpired {
                message,
                response_code,
            },
        ) => (
            AttemptResult {
                status: TargetStatus::WaitingForAccount,
                error: Some(format!(
                    "waiting for the {} account to be reconnected: {message}",
                    outcome.target.platform
                )),
                response_code: response_code.map(i32::from),
                outcome: failure.outcome(),
                ..base
            },
            Settlement::Ack,
        ),
        Err(failure) => {
            let code = failure.response_code().map(i32::from);
            let message = failure.to_string();
            match failure.retry_hint() {
                Some(retry_after) if config.retry.may_retry(outcome.job.attempts) => {
                    let delay = config.retry.delay(outcome.job.attempts, retry_after);
                    let next =
                        now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
                    (
                        AttemptResult {
                            status: TargetStatus::Retrying,
                            error: Some(message.clone()),
                            response_code: code,
                            next_attempt_at: Some(next),
                            outcome: failure.outcome(),
                            ..base
                        },
                        Settlement::Retry {
                            delay,
                            error: message,
                        },
                    )
                }
                _ => {
                    let message = if failure.retry_hint().is_some() {
                        format!(
                            "{message} (gave up after {} attempts)",
                            outcome.job.attempts
                        )
                    } else {
                        message
                    };
                    (
                        AttemptResult {
                            status: TargetStatus::Failed,
                            error: Some(message.clone()),
                            response_code: code,
                            outcome: failure.outcome(),
                            ..base
                        },
                        Settlement::DeadLetter { error: message },
                    )
                }
            }
        }
    }
}

/// The post URL a publisher reported, if it is a web link a frontend may show (a plugin or
/// a self-hosted instance could report `javascript:`); anything else is logged and
/// dropped, and the target is still published.
fn web_url(platform: &str, url: Option<&str>) -> Option<String> {
    let url = url?;
    if crate::domain::post::is_web_url(url) {
        Some(url.to_owned())
    } else {
        tracing::warn!(
            platform,
            "a publisher reported a post URL that is not http(s); not stored"
        );
        None
    }
}

fn announce(events: &EventBus, posts: Vec<crate::db::entities::post::Model>) {
    for post in posts {
        events.publish(PostEvent { post });
    }
}
