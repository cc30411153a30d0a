//! Storage: connecting, applying migrations safely when several replicas start at once,
//! the sea-orm entities, and one module per table's SQL.
//!
//! - [`entities`]: the rows, with typed statuses ([`stored`]) and readers of their JSON
//!   columns ([`json`]);
//! - [`posts`], [`targets`]: the statements of post commands and pages;
//! - [`rows`]: pages decoded straight from Postgres rows (the hot read path);
//! - [`rules`]: the domain's publishing rules as SQL fragments, for hand-written SQL;
//! - [`tokens`]: the sealed token rows as key rotation reads and rewrites them;
//! - [`schedules`]: posting schedules and the posts queued in their slots;
//! - [`checkpoints`]: the plugins' publish checkpoints (the host's store for them).
//!
//! The API's pool acts as a role that row-level security holds to one tenant ([`tenant`]);
//! the workers' pool as one that crosses tenants; migrations and operator commands use
//! the configured user itself.
//!
//! An id list is always one array parameter: [`one_of`] in sea-query, `= ANY($n)` with
//! [`ids_value`] in hand-written SQL.

pub mod checkpoints;
pub mod entities;
pub mod json;
pub mod posts;
pub mod rows;
pub mod rules;
pub mod schedules;
pub mod stored;
pub mod targets;
pub mod tenant;
pub mod tokens;

use std::time::Duration;

use herald_migrations::{API_ROLE, WORKER_ROLE};
use herald_migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, IntoColumnRef, PgFunc, SimpleExpr};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::{ConnectOptions as _, Executor as _};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, RuntimeErr,
    SqlxPostgresConnector, Statement, Value,
};
use uuid::Uuid;

/// Advisory-lock key that serialises migrations across replicas ("herald-m" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6865_7261_6c64_2d6d;

/// Opens a connection pool to `url`.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out (a round trip per query); a dead
        // connection fails its query instead, and the pool replaces it.
        .test_before_acquire(false)
        .sqlx_logging(false);
    Database::connect(options).await
}

/// A pool for the API: its connections act as the `herald_api` role, which sees the rows
/// of the tenant of [`tenant::scope`] only (none outside a scope).
pub async fn connect_api(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let pool = pool_options(max_connections)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(format!("SET ROLE {API_ROLE}").as_str())
                    .await?;
                sea_orm::sqlx::query(tenant::SET_TENANT)
                    .bind(tenant::setting())
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .before_acquire(|conn, _| {
            Box::pin(async move {
                sea_orm::sqlx::query(tenant::SET_TENANT)
                    .bind(tenant::setting())
                    .execute(&mut *conn)
                    .await?;
                Ok(true)
            })
        })
        .connect_with(pg_options(url)?)
        .await
        .map_err(pool_error)?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

/// A pool for the publishing workers and the reconciler: its connections act as the
/// `herald_worker` role, which crosses tenants on the tables publishing needs.
pub async fn connect_worker(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let pool = pool_options(max_connections)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(format!("SET ROLE {WORKER_ROLE}").as_str())
                    .await?;
                Ok(())
            })
        })
        .connect_with(pg_options(url)?)
        .await
        .map_err(pool_error)?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // As in `connect`: no ping before each query.
        .test_before_acquire(false)
}

fn pg_options(url: &str) -> Result<PgConnectOptions, DbErr> {
    url.parse::<PgConnectOptions>()
        .map(|options| options.disable_statement_logging())
        .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(e)))
}

fn pool_error(err: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(err))
}

/// `column = ANY($n)`: `column` is one of `ids`, given as one array parameter, so any
/// number of ids shares one statement text (and prepared plan).
pub fn one_of(column: impl IntoColumnRef, ids: &[Uuid]) -> SimpleExpr {
    Expr::col(column).eq(PgFunc::any(Expr::val(ids.to_vec())))
}

/// The parameter of `= ANY($n)` in hand-written SQL: `ids` as one array.
pub fn ids_value(ids: &[Uuid]) -> Value {
    ids.to_vec().into()
}

/// Applies pending migrations under a Postgres advisory lock, so replicas starting
/// together do not race; the others wait and then find nothing to do.
pub async fn migrate(url: &str) -> Result<(), DbErr> {
    // One connection: the advisory lock belongs to the session that takes it.
    let db = connect(url, 1).await?;
    let backend = sea_orm::DatabaseBackend::Postgres;
    db.execute(Statement::from_sql_and_values(
        backend,
        "SELECT pg_advisory_lock($1)",
        [MIGRATION_LOCK_KEY.into()],
    ))
    .await?;
    let result = Migrator::up(&db, None).await;
    let unlock = db
        .execute(Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_unlock($1)",
            [MIGRATION_LOCK_KEY.into()],
        ))
        .await;
    db.close().await?;
    result?;
    unlock.map(|_| ())
}
