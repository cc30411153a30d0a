//! Liveness and readiness for load balancers and orchestrators: `/healthz` answers whether
//! this process can reach Postgres and Redis; `/readyz` also checks that the schema is
//! fully migrated and says which plugins are loaded. Both answer 503 when a check fails,
//! naming the check but never the underlying error (it is logged).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_migrations::{Migrator, MigratorTrait};
use herald_plugin_host::PluginHost;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

use crate::queue::JobQueue;

/// What the checks reach.
#[derive(Clone)]
pub struct Health {
    db: DatabaseConnection,
    worker_db: DatabaseConnection,
    queue: Arc<dyn JobQueue>,
    plugins: Option<PluginHost>,
}

impl Health {
    /// Checks over the API's pool `db`, the workers' pool `worker_db` (it reads the
    /// migration table), the `queue`'s Redis and the loaded `plugins`.
    pub fn new(
        db: DatabaseConnection,
        worker_db: DatabaseConnection,
        queue: Arc<dyn JobQueue>,
        plugins: Option<PluginHost>,
    ) -> Self {
        Self {
            db,
            worker_db,
            queue,
            plugins,
        }
    }

    /// The routes `/healthz` and `/readyz`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(self)
    }

    async fn postgres(&self) -> bool {
        match self.db.ping().await {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(%err, "health check: database unreachable");
                false
            }
        }
    }

    async fn redis(&self) -> bool {
        match self.queue.health().await {
            Ok(_) => true,
            Err(err) => {
                tracing::error!(%err, "health check: Redis unreachable");
                false
            }
        }
    }

    /// The migrations this build knows that the database has not applied (`None` when
    /// the database cannot say).
    async fn pending_migrations(&self) -> Option<Vec<String>> {
        let applied = self
            .worker_db
            .query_all(Statement::from_string(
                DbBackend::Postgres,
                "SELECT version FROM seaql_migrations",
            ))
            .await;
        let applied: Vec<String> = match applied {
            Ok(rows) => rows
                .iter()
                .filter_map(|row| row.try_get::<String>("", "version").ok())
                .collect(),
            Err(err) => {
                tracing::error!(%err, "readiness check: cannot read the applied migrations");
                return None;
            }
        };
        Some(
            Migrator::migrations()
                .iter()
                .map(|migration| migration.name().to_owned())
                .filter(|name| !applied.contains(name))
                .collect(),
        )
    }
}

fn answer(ok: bool, body: serde_json::Value) -> Response {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

fn state(ok: bool) -> &'static str {
    if ok { "ok" } else { "unreachable" }
}

/// Liveness: Postgres and Redis answer.
async fn healthz(State(health): State<Health>) -> Response {
    let (postgres, redis) = tokio::join!(health.postgres(), health.redis());
    answer(
        postgres && redis,
        json!({ "postgres": state(postgres), "redis": state(redis) }),
    )
}

/// Readiness: liveness, no migration pending, and the loaded plugins.
async fn readyz(State(health): State<Health>) -> Response {
    let (postgres, redis, pending) = tokio::join!(
        health.postgres(),
        health.redis(),
        health.pending_migrations()
    );
    let migrated = pending.as_ref().is_some_and(Vec::is_empty);
    let plugins: Vec<String> = health
        .plugins
        .as_ref()
        .map(|host| host.platforms().into_iter().map(|p| p.platform).collect())
        .unwrap_or_default();
    answer(
        postgres && redis && migrated,
        json!({
            "postgres": state(postgres),
            "redis": state(redis),
            "migrations": match &pending {
                Some(pending) if pending.is_empty() => json!({ "state": "current" }),
                Some(pending) => json!({ "state": "pending", "pending": pending }),
                None => json!({ "state": "unknown" }),
            },
            "plugins": plugins,
        }),
    )
}
