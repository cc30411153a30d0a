//! Storage: connecting, applying migrations safely when several replicas start at once,
//! the sea-orm entities, and one module per table's SQL.
//!
//! - [`entities`]: the rows, with typed statuses ([`stored`]) and readers of their JSON
//!   columns ([`json`]);
//! - [`posts`], [`targets`]: the statements of post commands and pages;
//! - [`rows`]: pages decoded straight from Postgres rows (the hot read path);
//! - [`rules`]: the domain's publishing rules as SQL fragments, for hand-written SQL.
//!
//! An id list is always one array parameter: [`one_of`] in sea-query, `= ANY($n)` with
//! [`ids_value`] in hand-written SQL.

pub mod entities;
pub mod json;
pub mod posts;
pub mod rows;
pub mod rules;
pub mod stored;
pub mod targets;

use std::time::Duration;

use herald_migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, IntoColumnRef, PgFunc, SimpleExpr};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Statement, Value,
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
