//! [`JobQueue`] on Redis: sorted sets scored by due time (or lease expiry), one hash per
//! job, every state change in one Lua script. All keys share one `{hash tag}` so the
//! scripts also run on Redis Cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::scripts::Script;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{
    ClaimBatch, ClaimedJob, EnqueueOutcome, JobInfo, JobQueue, JobSpec, JobState, PauseScope,
    QueueError, QueueHealth, QueueStats, Settlement, TenantPause,
};

/// How a tenant's pause is named in the paused set (`tenant<TAB>id<TAB>platform`, the
/// platform empty for all of them), beside the platforms the instance paused.
const TENANT_PAUSE_PREFIX: &str = "tenant\t";

/// Timeout applied to every command, scripts included (fred ignores per-command timeouts
/// on EVALSHA, so it is set as the client default).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The Lua scripts, loaded once and called by hash.
struct Scripts {
    enqueue: Script,
    claim: Script,
    settle: Script,
    heartbeat: Script,
    cancel: Script,
    pause: Script,
    stats: Script,
    jobs: Script,
    clear_dead: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            enqueue: Script::from_lua(include_str!("lua/enqueue.lua")),
            claim: Script::from_lua(include_str!("lua/claim.lua")),
            settle: Script::from_lua(include_str!("lua/settle.lua")),
            heartbeat: Script::from_lua(include_str!("lua/heartbeat.lua")),
            cancel: Script::from_lua(include_str!("lua/cancel.lua")),
            pause: Script::from_lua(include_str!("lua/pause.lua")),
            stats: Script::from_lua(include_str!("lua/stats.lua")),
            jobs: Script::from_lua(include_str!("lua/jobs.lua")),
            clear_dead: Script::from_lua(include_str!("lua/clear_dead.lua")),
        }
    }
}

/// Key names, all under one hash tag.
struct Keys {
    scheduled: String,
    active: String,
    paused_platforms: String,
    paused_jobs: String,
    dead: String,
    paused: String,
    tokens: String,
    job_prefix: String,
    wake_channel: String,
}

impl Keys {
    fn new(namespace: &str) -> Self {
        let tag = format!("{{{namespace}}}");
        Self {
            scheduled: format!("{tag}:scheduled"),
            active: format!("{tag}:active"),
            paused_platforms: format!("{tag}:paused-platforms"),
            paused_jobs: format!("{tag}:paused-jobs"),
            dead: format!("{tag}:dead"),
            paused: format!("{tag}:paused"),
            tokens: format!("{tag}:tokens"),
            job_prefix: format!("{tag}:job:"),
            wake_channel: format!("{tag}:wake"),
        }
    }

    fn of_state(&self, state: JobState) -> &str {
        match state {
            JobState::Scheduled => &self.scheduled,
            JobState::Active => &self.active,
            JobState::Paused => &self.paused_jobs,
            JobState::Dead => &self.dead,
        }
    }
}

/// The Redis-backed publishing queue.
pub struct RedisQueue {
    client: Client,
    subscriber: SubscriberClient,
    scripts: Scripts,
    keys: Keys,
    wakeup: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RedisQueue {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn backend(err: Error) -> QueueError {
    QueueError::Backend(err.to_string())
}

fn protocol(what: &str) -> QueueError {
    QueueError::Protocol(format!("unexpected reply: {what}"))
}

fn builder(url: &str) -> Result<Builder, QueueError> {
    let config = Config::from_url(url).map_err(backend)?;
    let mut builder = Builder::from_config(config);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
            c.internal_command_timeout = Duration::from_secs(5);
            c.max_command_attempts = 3;
        })
        .with_performance_config(|p| {
            p.default_command_timeout = COMMAND_TIMEOUT;
            p.broadcast_channel_capacity = 256;
        })
        // fred's default is to never reconnect: retry forever, 100 ms doubling to 5 s.
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
    Ok(builder)
}

impl RedisQueue {
    /// Connects to `url`, keeping every key under the hash tag `{namespace}`.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, QueueError> {
        let client = builder(url)?.build().map_err(backend)?;
        client.init().await.map_err(backend)?;
        // Pub/sub gets its own connection: a subscribed connection cannot run commands.
        let subscriber = builder(url)?.build_subscriber_client().map_err(backend)?;
        subscriber.init().await.map_err(backend)?;
        let keys = Keys::new(namespace);
        let wakeup = Arc::new(Notify::new());
        let mut messages = subscriber.message_rx();
        let resubscribe = subscriber.manage_subscriptions();
        subscriber
            .subscribe(keys.wake_channel.clone())
            .await
            .map_err(backend)?;
        let notify = wakeup.clone();
        let listener = tokio::spawn(async move {
            loop {
                match messages.recv().await {
                    Ok(_) => notify.notify_waiters(),
                    // Lagging only means wakeups were merged; waking once is enough.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        notify.notify_waiters()
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let queue = Self {
            client,
            subscriber,
            scripts: Scripts::new(),
            keys,
            wakeup,
            tasks: vec![listener, resubscribe],
        };
        queue.load_scripts().await?;
        Ok(queue)
    }

    async fn load_scripts(&self) -> Result<(), QueueError> {
        let s = &self.scripts;
        for script in [
            &s.enqueue,
            &s.claim,
            &s.settle,
            &s.heartbeat,
            &s.cancel,
            &s.pause,
            &s.stats,
            &s.jobs,
            &s.clear_dead,
        ] {
            script.load(&self.client).await.map_err(backend)?;
        }
        Ok(())
    }

    /// Runs a script by hash, reloading it if the server lost it (restart, SCRIPT FLUSH).
    async fn run(
        &self,
        script: &Script,
        keys: Vec<&str>,
        args: Vec<String>,
    ) -> Result<Value, QueueError> {
        let keys: Vec<String> = keys.into_iter().map(str::to_owned).collect();
        script
            .evalsha_with_reload(&self.client, keys, args)
            .await
            .map_err(backend)
    }

    /// Closes both connections.
    pub async fn close(&self) {
        let _ = self.subscriber.quit().await;
        let _ = self.client.quit().await;
    }
}

fn int(value: &Value) -> Result<i64, QueueError> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| protocol("integer"))
}

fn text(value: &Value) -> Result<String, QueueError> {
    value.as_string().ok_or_else(|| protocol("string"))
}

fn uuid(value: &Value) -> Result<Uuid, QueueError> {
    Uuid::parse_str(&text(value)?).map_err(|_| protocol("uuid"))
}

fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Null => Vec::new(),
        other => other.into_array(),
    }
}

fn parse_claimed(value: Value) -> Result<ClaimedJob, QueueError> {
    let f = array(value);
    if f.len() != 9 {
        return Err(protocol("claimed job"));
    }
    Ok(ClaimedJob {
        spec: JobSpec {
            target_id: uuid(&f[0])?,
            post_id: uuid(&f[3])?,
            platform: text(&f[4])?,
            version: int(&f[5])?,
            due_ms: int(&f[6])?,
            tenant: text(&f[8])?,
        },
        token: text(&f[1])?,
        attempts: u32::try_from(int(&f[2])?).map_err(|_| protocol("attempts"))?,
        recovered: int(&f[7])? == 1,
    })
}

fn parse_info(state: JobState, value: Value) -> Result<JobInfo, QueueError> {
    let f = array(value);
    if f.len() != 10 {
        return Err(protocol("job info"));
    }
    let error = text(&f[7])?;
    Ok(JobInfo {
        spec: JobSpec {
            target_id: uuid(&f[0])?,
            post_id: uuid(&f[2])?,
            platform: text(&f[3])?,
            version: int(&f[4])?,
            due_ms: int(&f[8])?,
            tenant: text(&f[9])?,
        },
        state,
        attempts: u32::try_from(int(&f[5])?).map_err(|_| protocol("attempts"))?,
        detail: text(&f[6])?,
        error: (!error.is_empty()).then_some(error),
        score_ms: int(&f[1])?,
    })
}

#[async_trait::async_trait]
impl JobQueue for RedisQueue {
    async fn enqueue(&self, jobs: &[JobSpec]) -> Result<Vec<EnqueueOutcome>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.keys;
        let mut args = vec![k.job_prefix.clone(), k.wake_channel.clone()];
        for job in jobs {
            args.extend([
                job.target_id.to_string(),
                job.post_id.to_string(),
                job.platform.clone(),
                job.version.to_string(),
                job.due_ms.to_string(),
                job.tenant.clone(),
            ]);
        }
        let reply = self
            .run(
                &self.scripts.enqueue,
                vec![
                    &k.scheduled,
                    &k.active,
                    &k.paused_platforms,
                    &k.paused_jobs,
                    &k.dead,
                ],
                args,
            )
            .await?;
        let outcomes = array(reply)
            .iter()
            .map(|code| match int(code)? {
                0 => Ok(EnqueueOutcome::Unchanged),
                1 => Ok(EnqueueOutcome::Created),
                2 => Ok(EnqueueOutcome::Updated),
                _ => Err(protocol("enqueue code")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Workers of this process learn about an earlier job without the pub/sub hop.
        if outcomes.iter().any(|o| *o != EnqueueOutcome::Unchanged) {
            self.wakeup.notify_waiters();
        }
        Ok(outcomes)
    }

    async fn cancel(&self, target_ids: &[Uuid]) -> Result<u64, QueueError> {
        if target_ids.is_empty() {
            return Ok(0);
        }
        let k = &self.keys;
        let mut args = vec![k.job_prefix.clone()];
        args.extend(target_ids.iter().map(Uuid::to_string));
        let reply = self
            .run(
                &self.scripts.cancel,
                vec![&k.scheduled, &k.active, &k.paused_jobs, &k.dead],
                args,
            )
            .await?;
        u64::try_from(int(&reply)?).map_err(|_| protocol("count"))
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<ClaimBatch, QueueError> {
        let k = &self.keys;
        let reply = self
            .run(
                &self.scripts.claim,
                vec![
                    &k.scheduled,
                    &k.active,
                    &k.paused_platforms,
                    &k.paused_jobs,
                    &k.paused,
                    &k.tokens,
                ],
                vec![
                    k.job_prefix.clone(),
                    max.to_string(),
                    lease.as_millis().to_string(),
                ],
            )
            .await?;
        let mut parts = array(reply).into_iter();
        let (Some(now), Some(next), Some(jobs)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(protocol("claim"));
        };
        let next = int(&next)?;
        Ok(ClaimBatch {
            now_ms: int(&now)?,
            next_due_ms: (next >= 0).then_some(next),
            jobs: array(jobs)
                .into_iter()
                .map(parse_claimed)
                .collect::<Result<_, _>>()?,
        })
    }

    async fn heartbeat(&self, job: &ClaimedJob, lease: Duration) -> Result<bool, QueueError> {
        let k = &self.keys;
        let reply = self
            .run(
                &self.scripts.heartbeat,
                vec![&k.active],
                vec![
                    k.job_prefix.clone(),
                    job.spec.target_id.to_string(),
                    job.token.clone(),
                    lease.as_millis().to_string(),
                ],
            )
            .await?;
        Ok(int(&reply)? == 1)
    }

    async fn settle(&self, jobs: &[(&ClaimedJob, Settlement)]) -> Result<Vec<bool>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.keys;
        let mut args = vec![k.job_prefix.clone(), k.wake_channel.clone()];
        for (job, settlement) in jobs {
            let (action, delay, error) = match settlement {
                Settlement::Ack => ("ack", 0, String::new()),
                Settlement::Retry { delay, error } => ("retry", delay.as_millis(), error.clone()),
                Settlement::DeadLetter { error } => ("dead", 0, error.clone()),
            };
            args.extend([
                job.spec.target_id.to_string(),
                job.token.clone(),
                action.to_owned(),
                delay.to_string(),
                error,
            ]);
        }
        let reply = self
            .run(
                &self.scripts.settle,
                vec![&k.scheduled, &k.active, &k.dead],
                args,
            )
            .await?;
        array(reply).iter().map(|v| Ok(int(v)? == 1)).collect()
    }

    async fn pause(&self, scope: PauseScope<'_>, platform: Option<&str>) -> Result<(), QueueError> {
        self.pause_or_resume("pause", scope, platform).await
    }

    async fn resume(
        &self,
        scope: PauseScope<'_>,
        platform: Option<&str>,
    ) -> Result<(), QueueError> {
        self.pause_or_resume("resume", scope, platform).await?;
        self.wakeup.notify_waiters();
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let k = &self.keys;
        let reply = self
            .run(
                &self.scripts.stats,
                vec![
                    &k.scheduled,
                    &k.active,
                    &k.paused_jobs,
                    &k.dead,
                    &k.paused_platforms,
                    &k.paused,
                ],
                vec![],
            )
            .await?;
        let f = array(reply);
        if f.len() != 10 {
            return Err(protocol("stats"));
        }
        let count = |v: &Value| -> Result<u64, QueueError> {
            u64::try_from(int(v)?).map_err(|_| protocol("count"))
        };
        let now = int(&f[0])?;
        let oldest = int(&f[7])?;
        let mut paused_platforms = Vec::new();
        let mut tenant_pauses = Vec::new();
        for member in array(f[9].clone()) {
            let member = text(&member)?;
            match member.strip_prefix(TENANT_PAUSE_PREFIX) {
                Some(rest) => {
                    let (tenant, platform) = rest
                        .rsplit_once('\t')
                        .ok_or_else(|| protocol("tenant pause"))?;
                    tenant_pauses.push(TenantPause {
                        tenant: tenant.to_owned(),
                        platform: (!platform.is_empty()).then(|| platform.to_owned()),
                    });
                }
                None => paused_platforms.push(member),
            }
        }
        paused_platforms.sort();
        tenant_pauses.sort();
        Ok(QueueStats {
            now_ms: now,
            scheduled: count(&f[1])?,
            due: count(&f[2])?,
            active: count(&f[3])?,
            expired_leases: count(&f[4])?,
            paused: count(&f[5])?,
            dead: count(&f[6])?,
            oldest_overdue_ms: (oldest >= 0).then_some(now - oldest),
            globally_paused: int(&f[8])? == 1,
            paused_platforms,
            tenant_pauses,
        })
    }

    async fn jobs(
        &self,
        state: JobState,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<JobInfo>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let reply = self
            .run(
                &self.scripts.jobs,
                vec![self.keys.of_state(state)],
                vec![
                    self.keys.job_prefix.clone(),
                    offset.to_string(),
                    limit.to_string(),
                ],
            )
            .await?;
        array(reply)
            .into_iter()
            .map(|v| parse_info(state, v))
            .collect()
    }

    async fn jobs_by_id(&self, state: JobState, ids: &[Uuid]) -> Result<Vec<JobInfo>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![self.keys.job_prefix.clone(), "0".into(), "0".into()];
        args.extend(ids.iter().map(Uuid::to_string));
        let reply = self
            .run(&self.scripts.jobs, vec![self.keys.of_state(state)], args)
            .await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for value in array(reply) {
            let info = parse_info(state, value)?;
            if info.score_ms >= 0 {
                jobs.push(info);
            }
        }
        Ok(jobs)
    }

    async fn job(&self, target_id: Uuid) -> Result<Option<JobInfo>, QueueError> {
        for state in [
            JobState::Active,
            JobState::Scheduled,
            JobState::Paused,
            JobState::Dead,
        ] {
            if let Some(info) = self.jobs_by_id(state, &[target_id]).await?.pop() {
                return Ok(Some(info));
            }
        }
        Ok(None)
    }

    async fn clear_dead(&self) -> Result<u64, QueueError> {
        let reply = self
            .run(
                &self.scripts.clear_dead,
                vec![&self.keys.dead],
                vec![self.keys.job_prefix.clone()],
            )
            .await?;
        u64::try_from(int(&reply)?).map_err(|_| protocol("count"))
    }

    async fn clear_dead_of(&self, target_ids: &[Uuid]) -> Result<u64, QueueError> {
        if target_ids.is_empty() {
            return Ok(0);
        }
        let mut args = vec![self.keys.job_prefix.clone()];
        args.extend(target_ids.iter().map(Uuid::to_string));
        let reply = self
            .run(&self.scripts.clear_dead, vec![&self.keys.dead], args)
            .await?;
        u64::try_from(int(&reply)?).map_err(|_| protocol("count"))
    }

    async fn health(&self) -> Result<QueueHealth, QueueError> {
        let started = Instant::now();
        let _: String = self.client.ping(None).await.map_err(backend)?;
        let ping = started.elapsed();
        let mut warnings = Vec::new();
        // Managed Redis services may forbid CONFIG; that is not a health failure.
        match self
            .client
            .config_get::<Vec<String>, _>("maxmemory-policy")
            .await
        {
            Ok(pair) => {
                if let Some(policy) = pair.get(1)
                    && policy != "noeviction"
                {
                    warnings.push(format!(
                        "maxmemory-policy is `{policy}`: Redis may evict queued jobs; set it \
                         to `noeviction`"
                    ));
                }
            }
            Err(err) => warnings.push(format!("cannot read maxmemory-policy: {err}")),
        }
        Ok(QueueHealth { ping, warnings })
    }

    fn wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }
}

impl RedisQueue {
    async fn pause_or_resume(
        &self,
        action: &str,
        scope: PauseScope<'_>,
        platform: Option<&str>,
    ) -> Result<(), QueueError> {
        let tenant = match scope {
            PauseScope::Instance => "",
            PauseScope::Tenant(tenant) => tenant,
        };
        let k = &self.keys;
        self.run(
            &self.scripts.pause,
            vec![&k.scheduled, &k.paused_platforms, &k.paused_jobs, &k.paused],
            vec![
                k.job_prefix.clone(),
                k.wake_channel.clone(),
                action.to_owned(),
                platform.unwrap_or_default().to_owned(),
                tenant.to_owned(),
            ],
        )
        .await
        .map(|_| ())
    }
}
