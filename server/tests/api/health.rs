//! `/healthz` (Postgres and Redis answer) and `/readyz` (also: no migration pending, and
//! the loaded plugins), each 503 naming the failed check without its error.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::harness::{TestApp, plugin_host};
use crate::processes::PrivateRedis;

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let answer = reqwest::get(format!("{}{path}", app.http_url()))
        .await
        .expect(path);
    let status = answer.status();
    (status, answer.json().await.expect("JSON"))
}

#[tokio::test]
async fn ready_when_migrated_with_its_plugins_and_not_when_a_migration_is_pending() {
    let host = plugin_host(&[]).await;
    let app = TestApp::spawn_with_oauth(host, |_| Default::default()).await;
    let (status, live) = get(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(live, json!({"postgres": "ok", "redis": "ok"}));
    let (status, ready) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["migrations"], json!({"state": "current"}));
    let plugins = ready["plugins"].as_array().expect("plugins");
    assert!(plugins.contains(&json!("example")), "{ready}");

    // A build newer than the database: not ready (still alive), naming the migration.
    use herald_migrations::MigratorTrait;
    let newest = herald_migrations::Migrator::migrations()
        .last()
        .map(|m| m.name().to_owned())
        .expect("a migration");
    app.db
        .execute_unprepared(&format!(
            "DELETE FROM seaql_migrations WHERE version = '{newest}'"
        ))
        .await
        .expect("forget a migration");
    let (status, ready) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready["migrations"],
        json!({"state": "pending", "pending": [newest]})
    );
    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn neither_live_nor_ready_without_redis_and_both_again_once_it_is_back() {
    let mut redis = PrivateRedis::start().await;
    let app = TestApp::spawn_on_redis(&redis.url).await;
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);

    redis.stop().await;
    let (status, live) = get(&app, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(live, json!({"postgres": "ok", "redis": "unreachable"}));
    let (status, ready) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["redis"], "unreachable");
    assert_eq!(ready["postgres"], "ok");

    redis.resume().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while get(&app, "/healthz").await.0 != StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis not seen again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
}
