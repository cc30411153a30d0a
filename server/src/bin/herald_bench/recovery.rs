//! `herald-bench recovery`: how long crash recovery takes. A `herald worker` process
//! publishes a `webhook` post to a receiver here that accepts the call and never answers;
//! the worker is SIGKILLed, a second worker process starts (its reconciler idle, so only
//! the expired lease brings the job back), and the time from the kill until the target is
//! `published` is measured. Printed as one JSON line; the API test of the same crash
//! (tests/api/processes.rs) asserts only what happens, not how soon.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use herald_server::queue::JobQueue;
use herald_server::queue::redis::RedisQueue;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{BENCH_TENANT, epoch_ms, percentile, published, seed};

/// Token key of the worker processes (any 32 bytes, base64 of [`TOKEN_KEY_BYTES`]).
const TOKEN_KEY: &str = "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmU=";
/// The worker processes' token key.
const TOKEN_KEY_BYTES: &[u8; 32] = b"bench-bench-bench-bench-bench-be";

/// Makes `hook` the bench tenant's only webhook (sealed as the workers' key opens it).
async fn connect_webhook(db: &sea_orm::DatabaseConnection, hook: &str) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait;
    db.execute_unprepared("DELETE FROM social_connections WHERE platform = 'webhook'")
        .await?;
    let cipher = herald_server::secrets::TokenCipher::new("k1", TOKEN_KEY_BYTES);
    let connections = herald_server::connections::ConnectionService::new(db.clone(), cipher, None);
    let actor = herald_server::domain::actor::Actor {
        user_id: "bench".into(),
        tenant_id: BENCH_TENANT.into(),
        roles: vec![herald_server::domain::actor::Role::Admin],
        operator: false,
    };
    let credentials = herald_plugin_host::Credentials {
        access_token: "bench-webhook-signing-secret".into(),
        refresh_token: None,
        expires_at: None,
        extra: vec![("url".into(), hook.to_owned())],
    };
    connections
        .connect(&actor, "webhook", credentials)
        .await
        .map_err(|e| anyhow::anyhow!("connecting the bench webhook: {e}"))?;
    Ok(())
}

#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<AtomicUsize>,
    hung: Arc<Notify>,
}

/// The first call is accepted and never answered; the others succeed.
async fn receive(
    axum::extract::State(rx): axum::extract::State<Receiver>,
) -> axum::Json<serde_json::Value> {
    if rx.calls.fetch_add(1, Ordering::SeqCst) == 0 {
        rx.hung.notify_one();
        tokio::time::sleep(Duration::from_secs(3_600)).await;
    }
    axum::Json(json!({"id": "post-1", "url": "https://hooks.example/post-1"}))
}

fn worker(
    herald: &Path,
    url: &str,
    redis_url: &str,
    namespace: &str,
    lease_ms: u64,
    reconcile_ms: u64,
) -> anyhow::Result<Child> {
    Command::new(herald)
        .arg("worker")
        .env("DATABASE_URL", url)
        .env("REDIS_URL", redis_url)
        .env("HERALD_QUEUE_NAMESPACE", namespace)
        .env("HERALD_QUEUE_LEASE_MS", lease_ms.to_string())
        .env("HERALD_RECONCILE_INTERVAL_MS", reconcile_ms.to_string())
        .env("HERALD_WEBHOOK_IDEMPOTENT", "true")
        // The receiver listens on loopback, which the outbound policy refuses by default.
        .env("HERALD_OUTBOUND_ALLOW_CIDRS", "127.0.0.1/32")
        .env("HERALD_TOKEN_KEY", TOKEN_KEY)
        .env("HERALD_LOG", "error")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} worker", herald.display()))
}

/// One crash: the time from the SIGKILL until the target is published.
async fn crash(
    url: &str,
    redis_url: &str,
    herald: &Path,
    lease_ms: u64,
    already_published: i64,
) -> anyhow::Result<Duration> {
    let db = herald_server::db::connect(url, 2).await?;
    let namespace = format!("bench-{}", Uuid::new_v4().simple());
    let queue: Arc<dyn JobQueue> = Arc::new(RedisQueue::connect(redis_url, &namespace).await?);
    let rx = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/publish", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/publish", axum::routing::post(receive))
        .with_state(rx.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    connect_webhook(&db, &hook).await?;
    let mut first = worker(herald, url, redis_url, &namespace, lease_ms, 300)?;
    seed(
        &db,
        &queue,
        "webhook",
        1,
        epoch_ms(SystemTime::now()) + 300,
        0,
    )
    .await?;
    tokio::time::timeout(Duration::from_secs(30), rx.hung.notified())
        .await
        .context("the first worker never reached the receiver")?;
    first.start_kill()?;
    first.wait().await?;
    let killed = Instant::now();
    let _second = worker(herald, url, redis_url, &namespace, lease_ms, 3_600_000)?;
    let recovered = loop {
        if published(&db).await? > already_published {
            break killed.elapsed();
        }
        if killed.elapsed() > Duration::from_secs(120) {
            bail!("not recovered within 120 s of the SIGKILL");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    server.abort();
    db.close().await?;
    Ok(recovered)
}

/// Times `runs` crashes on the database at `url`.
pub async fn run(
    url: &str,
    redis_url: &str,
    herald: &Path,
    lease_ms: u64,
    runs: usize,
) -> anyhow::Result<serde_json::Value> {
    herald_server::db::migrate(url).await?;
    let mut times = Vec::with_capacity(runs);
    for published in 0..runs {
        let took = crash(url, redis_url, herald, lease_ms, published as i64).await?;
        times.push(took.as_millis() as i64);
    }
    times.sort_unstable();
    Ok(json!({
        "scenario": "recovery",
        "lease_ms": lease_ms,
        "runs": runs,
        "recovered_after_kill_ms": {
            "p50": percentile(&times, 0.5),
            "max": times.last().copied().unwrap_or(0),
        },
    }))
}
