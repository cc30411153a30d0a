//! Storage: the sea-orm entities, connecting, and applying migrations safely when several
//! replicas start at once.

pub mod entities;
pub mod rows;

use std::time::Duration;

use herald_migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, IntoColumnRef, PgFunc, SimpleExpr};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    Statement,
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

/// `column` is one of `ids`: on Postgres `= ANY($n)` with the ids as one array parameter,
/// so any number of ids shares one statement text (and prepared plan); elsewhere `IN`.
pub fn one_of(backend: DatabaseBackend, column: impl IntoColumnRef, ids: &[Uuid]) -> SimpleExpr {
    if backend == DatabaseBackend::Postgres {
        Expr::col(column).eq(PgFunc::any(Expr::val(ids.to_vec())))
    } else {
        Expr::col(column).is_in(ids.iter().copied())
    }
}

/// Applies pending migrations under a Postgres advisory lock, so replicas starting
/// together do not race; the others wait and then find nothing to do.
pub async fn migrate(url: &str) -> Result<(), DbErr> {
    // One connection: the advisory lock belongs to the session that takes it.
    let db = connect(url, 1).await?;
    let backend = db.get_database_backend();
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
