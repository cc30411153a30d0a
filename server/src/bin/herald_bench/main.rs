//! `herald-bench`: measures Herald's hot paths on real services and prints one JSON line per
//! scenario. `herald-bench queue` drives the full publishing path (Redis claim, Postgres
//! compare-and-set, publish through a no-op recording publisher, batched Postgres finish)
//! with `DATABASE_URL` and `REDIS_URL` pointing at real servers. It works in a fresh
//! database and queue namespace of its own and removes them afterwards. `herald-bench
//! recovery` times crash recovery: a `herald worker` process SIGKILLed mid-publish, and how
//! long after it the job, its lease expired, is published by another worker process.
//! `herald-bench keys` times `herald keys rotate` (re-sealing account tokens with a new
//! key).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use herald_server::app;
use herald_server::publish::PublisherRegistry;
use herald_server::publish::recording::RecordingPublisher;
use herald_server::queue::redis::RedisQueue;
use herald_server::queue::{JobQueue, JobSpec};
use herald_server::state::Services;
use herald_server::worker::WorkerConfig;
use herald_server::worker::reconcile::ReconcileConfig;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::json;
use uuid::Uuid;

/// The tenant the queue benchmark's posts belong to.
const BENCH_TENANT: &str = "org:bench";

mod graphql;
mod keys;
mod procs;
mod recovery;
mod subscribers;

/// The services a benchmark that runs `herald` processes needs.
#[derive(clap::Args)]
struct Servers {
    /// Postgres server URL (a fresh database is created on it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Redis URL.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: String,
    /// The `herald` binary to run (default: beside this one).
    #[arg(long)]
    herald: Option<std::path::PathBuf>,
}

/// Benchmarks of Herald's hot paths.
#[derive(Parser)]
#[command(name = "herald-bench")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// The publishing queue end to end: steady, burst and instant scenarios.
    Queue {
        /// Postgres server URL (a fresh database is created on it).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Redis URL.
        #[arg(long, env = "REDIS_URL", hide_env_values = true)]
        redis_url: String,
        /// Only these scenarios (steady, burst, instant).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// The GraphQL API against a `herald serve` process: posts(first: 50) at 50
    /// connections vs pgbench, and 10,000 subscribers' fan-out and memory.
    Graphql {
        #[command(flatten)]
        servers: Servers,
    },
    /// Crash recovery: a `herald worker` SIGKILLed mid-publish; time until another worker
    /// process has published the job (its lease expired).
    Recovery {
        #[command(flatten)]
        servers: Servers,
        /// Lease of the worker processes, in ms.
        #[arg(long, default_value_t = 1_000)]
        lease_ms: u64,
        /// Crashes to time.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Token-key rotation: rows re-sealed per second by `herald keys rotate`.
    Keys {
        /// Postgres server URL (a fresh database is created on it).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Token rows to seed under the old key.
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        /// Rows re-sealed per transaction (`herald keys rotate --batch-size`).
        #[arg(long, default_value_t = 500)]
        batch_size: u32,
    },
}

/// The `herald` binary: `given`, else the one beside this binary.
fn herald_binary(given: Option<std::path::PathBuf>) -> anyhow::Result<std::path::PathBuf> {
    match given {
        Some(path) => Ok(path),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("bench binary has no directory")?
            .join("herald")),
    }
}

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

struct Scenario {
    name: &'static str,
    n: usize,
    /// Due time of post i, in ms after the start instant.
    spread_ms: i64,
}

async fn create_database(admin_url: &str) -> anyhow::Result<(String, String)> {
    let name = format!("herald_bench_{}", Uuid::new_v4().simple());
    let admin = Database::connect(admin_url)
        .await
        .context("connecting to DATABASE_URL")?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .context("creating the bench database")?;
    admin.close().await?;
    let (server, _) = admin_url
        .rsplit_once('/')
        .context("DATABASE_URL has no database path")?;
    Ok((format!("{server}/{name}"), name))
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin.close().await?;
    Ok(())
}

/// Inserts `n` scheduled posts (one `platform` target each) due at `due_ms(i)` and
/// enqueues them.
async fn seed(
    db: &DatabaseConnection,
    queue: &Arc<dyn JobQueue>,
    platform: &str,
    n: usize,
    start_ms: i64,
    spread_ms: i64,
) -> anyhow::Result<Vec<i64>> {
    let step = if n > 1 {
        spread_ms as f64 / (n - 1) as f64
    } else {
        0.0
    };
    let dues: Vec<i64> = (0..n)
        .map(|i| start_ms + (i as f64 * step) as i64)
        .collect();
    let mut jobs = Vec::with_capacity(n);
    for chunk in dues.chunks(1_000) {
        let mut post_values = Vec::new();
        let mut target_values = Vec::new();
        let mut params: Vec<sea_orm::Value> = Vec::new();
        let mut target_params: Vec<sea_orm::Value> = Vec::new();
        for due in chunk {
            let post_id = Uuid::now_v7();
            let target_id = Uuid::now_v7();
            let at = chrono::DateTime::from_timestamp_millis(*due).context("due time")?;
            let p = params.len();
            post_values.push(format!("(${}::uuid, ${}::timestamptz)", p + 1, p + 2));
            params.extend([post_id.into(), at.into()]);
            let t = target_params.len();
            target_values.push(format!("(${}::uuid, ${}::uuid)", t + 1, t + 2));
            target_params.extend([target_id.into(), post_id.into()]);
            jobs.push(JobSpec {
                target_id,
                post_id,
                platform: platform.into(),
                version: 1,
                due_ms: *due,
                tenant: BENCH_TENANT.into(),
            });
        }
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO social_posts (id, content, platforms, status, scheduled_at,
                   local_scheduled_at, timezone, media_urls, approval_required, approval_status,
                   owner_id, created_by, created_at, updated_at, version)
                 SELECT v.id, 'benchmark post', json_build_array(${}::text), 'scheduled', v.at,
                        v.at, 'UTC', '[]', false, 'not_required', '{BENCH_TENANT}', 'bench', now(), now(), 1
                   FROM (VALUES {}) AS v(id, at)",
                params.len() + 1,
                post_values.join(", ")
            ),
            params
                .into_iter()
                .chain([platform.into()])
                .collect::<Vec<_>>(),
        ))
        .await?;
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO post_targets (id, post_id, platform, status, attempts, created_at,
                   updated_at, queue_version)
                 SELECT v.id, v.post_id, ${}::text, 'scheduled', 0, now(), now(), 1
                   FROM (VALUES {}) AS v(id, post_id)",
                target_params.len() + 1,
                target_values.join(", ")
            ),
            target_params
                .into_iter()
                .chain([platform.into()])
                .collect::<Vec<_>>(),
        ))
        .await?;
    }
    for chunk in jobs.chunks(1_000) {
        queue.enqueue(chunk).await?;
    }
    Ok(dues)
}

/// How many targets are published.
async fn published(db: &DatabaseConnection) -> anyhow::Result<i64> {
    let row = db
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM post_targets WHERE status = 'published'",
        ))
        .await?
        .context("count row")?;
    Ok(row.try_get::<i64>("", "n")?)
}

async fn run(
    scenario: &Scenario,
    admin_url: &str,
    redis_url: &str,
) -> anyhow::Result<serde_json::Value> {
    let (url, name) = create_database(admin_url).await?;
    let result = async {
        herald_server::db::migrate(&url).await?;
        let db = herald_server::db::connect(&url, 20).await?;
        let namespace = format!("bench-{}", Uuid::new_v4().simple());
        let queue: Arc<dyn JobQueue> = Arc::new(RedisQueue::connect(redis_url, &namespace).await?);
        let cipher = herald_server::secrets::TokenCipher::new("bench", &rand::random::<[u8; 32]>());
        let services = Services::builder(db.clone(), queue.clone(), cipher).build();
        let publisher = Arc::new(RecordingPublisher::new(true));
        let mut registry = PublisherRegistry::new();
        registry.register("x", publisher.clone());

        // Start after seeding: due times begin two seconds after the seed finishes.
        let seed_started = Instant::now();
        let start_ms = epoch_ms(SystemTime::now()) + 2_000 + (scenario.n as i64 / 10);
        let dues = seed(&db, &queue, "x", scenario.n, start_ms, scenario.spread_ms).await?;
        let seed_time = seed_started.elapsed();
        if epoch_ms(SystemTime::now()) >= start_ms {
            bail!("seeding took {seed_time:?}, past the start instant");
        }
        let background = app::start_background(
            &services,
            registry,
            WorkerConfig {
                concurrency: 1_024,
                platform_concurrency: 1_024,
                claim_batch: 512,
                ..WorkerConfig::default()
            },
            ReconcileConfig {
                interval: Duration::from_secs(3_600),
                horizon: Duration::from_secs(3_600),
                stuck_after: Duration::from_secs(3_600),
            },
        );
        // A job leaves the queue only after its outcome is committed in Postgres, so an empty
        // queue means every publish has finished. (Polling Redis keeps the measurement off
        // the database it measures.)
        let deadline = Instant::now() + Duration::from_secs(120);
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(start_ms - epoch_ms(SystemTime::now())).unwrap_or(0),
        ))
        .await;
        let finished_ms = loop {
            let stats = queue.stats().await?;
            if stats.scheduled + stats.active + stats.paused == 0 {
                break epoch_ms(SystemTime::now());
            }
            if Instant::now() > deadline {
                bail!("{}: not all published within 120 s", scenario.name);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        background.shutdown().await;
        let done = published(&db).await?;
        if done != scenario.n as i64 {
            bail!("{}: {done} of {} targets published", scenario.name, scenario.n);
        }
        let calls = publisher.calls();
        if calls.len() != scenario.n {
            bail!("{}: {} publishes for {} posts", scenario.name, calls.len(), scenario.n);
        }
        let due_of: std::collections::HashMap<Uuid, i64> = {
            let rows = db
                .query_all(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT t.id, p.scheduled_at FROM post_targets t JOIN social_posts p ON p.id = t.post_id",
                ))
                .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<Uuid>("", "id")?,
                        r.try_get::<chrono::DateTime<chrono::Utc>>("", "scheduled_at")?
                            .timestamp_millis(),
                    ))
                })
                .collect::<Result<_, sea_orm::DbErr>>()?
        };
        let mut lateness: Vec<i64> = calls
            .iter()
            .map(|c| epoch_ms(c.started_at) - due_of.get(&c.request.target_id).copied().unwrap_or(0))
            .collect();
        lateness.sort_unstable();
        let last_start = calls.iter().map(|c| epoch_ms(c.started_at)).max().unwrap_or(0);
        let first_due = dues.first().copied().unwrap_or(start_ms);
        let span_ms = (finished_ms - first_due).max(1);
        let mut line = json!({
            "scenario": scenario.name,
            "n": scenario.n,
            "throughput_per_s": ((scenario.n as f64) * 1000.0 / span_ms as f64).round(),
            "lateness_ms": {
                "p50": percentile(&lateness, 0.50),
                "p99": percentile(&lateness, 0.99),
                "max": lateness.last().copied().unwrap_or(0),
            },
            "seed_ms": seed_time.as_millis(),
        });
        if scenario.name == "instant" {
            line["last_start_ms"] = json!(last_start - first_due);
        }
        let left = queue.stats().await?;
        line["queue_left"] = json!(left.scheduled + left.active + left.dead);
        db.close().await?;
        anyhow::Ok(line)
    }
    .await;
    drop_database(admin_url, &name).await?;
    result
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { command } = Cli::parse();
    match command {
        Bench::Graphql {
            servers:
                Servers {
                    database_url,
                    redis_url,
                    herald,
                },
        } => {
            let herald = herald_binary(herald)?;
            let (url, name) = create_database(&database_url).await?;
            let result = graphql::run(&url, &redis_url, &herald).await;
            drop_database(&database_url, &name).await?;
            result?;
        }
        Bench::Keys {
            database_url,
            rows,
            batch_size,
        } => {
            let (url, name) = create_database(&database_url).await?;
            let result = keys::run(&url, rows, batch_size).await;
            drop_database(&database_url, &name).await?;
            println!("{}", result?);
        }
        Bench::Recovery {
            servers:
                Servers {
                    database_url,
                    redis_url,
                    herald,
                },
            lease_ms,
            runs,
        } => {
            let herald = herald_binary(herald)?;
            let (url, name) = create_database(&database_url).await?;
            let result = recovery::run(&url, &redis_url, &herald, lease_ms, runs).await;
            drop_database(&database_url, &name).await?;
            println!("{}", result?);
        }
        Bench::Queue {
            database_url,
            redis_url,
            only,
        } => {
            let scenarios = [
                Scenario {
                    name: "steady",
                    n: 2_000,
                    spread_ms: 10_000,
                },
                Scenario {
                    name: "burst",
                    n: 20_000,
                    spread_ms: 0,
                },
                Scenario {
                    name: "instant",
                    n: 1_000,
                    spread_ms: 0,
                },
            ];
            for scenario in scenarios
                .iter()
                .filter(|s| only.is_empty() || only.iter().any(|o| o == s.name))
            {
                let line = run(scenario, &database_url, &redis_url).await?;
                println!("{line}");
            }
        }
    }
    Ok(())
}
