//! The statements of key rotation on `social_account_tokens`: rows per key id, a batch of
//! rows to re-seal locked without waiting for rows others hold, and the batch written
//! back. They run on a pool that crosses tenants (the workers' or the owner's).

use sea_orm::sqlx::{self, Row as _};
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

/// How many token rows are sealed with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRows {
    /// The key id.
    pub key_id: String,
    /// Rows sealed with it.
    pub rows: u64,
}

/// A token row as sealed: what re-sealing it needs.
#[derive(Debug, Clone)]
pub struct SealedRow {
    /// Row id.
    pub id: Uuid,
    /// Its connection (the associated data of both ciphertexts).
    pub connection_id: Uuid,
    /// The key it is sealed with.
    pub key_id: String,
    /// Sealed access token and values.
    pub token: Vec<u8>,
    /// Sealed refresh token.
    pub refresh: Option<Vec<u8>>,
}

/// A row sealed again with another key.
#[derive(Debug, Clone)]
pub struct Resealed {
    /// Row id.
    pub id: Uuid,
    /// The new ciphertext of the access token and values.
    pub token: Vec<u8>,
    /// The new ciphertext of the refresh token.
    pub refresh: Option<Vec<u8>>,
}

fn db_err(err: sqlx::Error) -> DbErr {
    DbErr::Custom(err.to_string())
}

/// Rows per key id, sorted by id.
pub async fn rows_per_key(db: &DatabaseConnection) -> Result<Vec<KeyRows>, DbErr> {
    let rows = sqlx::query(
        "SELECT key_id, count(*) AS n FROM social_account_tokens GROUP BY key_id ORDER BY key_id",
    )
    .fetch_all(db.get_postgres_connection_pool())
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(KeyRows {
                key_id: row.try_get("key_id").map_err(db_err)?,
                rows: u64::try_from(row.try_get::<i64, _>("n").map_err(db_err)?).unwrap_or(0),
            })
        })
        .collect()
}

/// A transaction holding up to `limit` rows sealed with one of `from` (never `current`),
/// other than `skip`, with ids after `after` (in id order, so a long rotation does not
/// scan the rows it already re-sealed again), locked; rows another transaction holds are
/// passed over, not waited for (a server refreshing a token, or another rotation).
pub async fn lock_batch(
    db: &DatabaseConnection,
    current: &str,
    from: &[String],
    skip: &[Uuid],
    after: Option<Uuid>,
    limit: u32,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Vec<SealedRow>), DbErr> {
    let mut txn = db
        .get_postgres_connection_pool()
        .begin()
        .await
        .map_err(db_err)?;
    let rows = sqlx::query(
        "SELECT id, connection_id, key_id, token_ciphertext, refresh_ciphertext
           FROM social_account_tokens
          WHERE key_id <> $1 AND key_id = ANY($2) AND id <> ALL($3)
            AND ($5::uuid IS NULL OR id > $5)
          ORDER BY id
          LIMIT $4
            FOR UPDATE SKIP LOCKED",
    )
    .bind(current)
    .bind(from)
    .bind(skip)
    .bind(i64::from(limit))
    .bind(after)
    .fetch_all(&mut *txn)
    .await
    .map_err(db_err)?;
    let rows = rows
        .iter()
        .map(|row| {
            Ok(SealedRow {
                id: row.try_get("id")?,
                connection_id: row.try_get("connection_id")?,
                key_id: row.try_get("key_id")?,
                token: row.try_get("token_ciphertext")?,
                refresh: row.try_get("refresh_ciphertext")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(db_err)?;
    Ok((txn, rows))
}

/// Writes `rows`, sealed with `key_id`, in the transaction that locked them, and commits.
pub async fn write_batch(
    mut txn: sqlx::Transaction<'static, sqlx::Postgres>,
    key_id: &str,
    rows: &[Resealed],
) -> Result<(), DbErr> {
    if !rows.is_empty() {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let tokens: Vec<Vec<u8>> = rows.iter().map(|r| r.token.clone()).collect();
        let refreshes: Vec<Option<Vec<u8>>> = rows.iter().map(|r| r.refresh.clone()).collect();
        sqlx::query(
            "UPDATE social_account_tokens t
                SET key_id = $1, token_ciphertext = v.token, refresh_ciphertext = v.refresh
               FROM unnest($2::uuid[], $3::bytea[], $4::bytea[]) AS v(id, token, refresh)
              WHERE t.id = v.id",
        )
        .bind(key_id)
        .bind(&ids)
        .bind(&tokens)
        .bind(&refreshes)
        .execute(&mut *txn)
        .await
        .map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)
}

/// How many rows are sealed with one of `from` (never `current`), other than `skip`.
pub async fn left_to_reseal(
    db: &DatabaseConnection,
    current: &str,
    from: &[String],
    skip: &[Uuid],
) -> Result<u64, DbErr> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM social_account_tokens
          WHERE key_id <> $1 AND key_id = ANY($2) AND id <> ALL($3)",
    )
    .bind(current)
    .bind(from)
    .bind(skip)
    .fetch_one(db.get_postgres_connection_pool())
    .await
    .map_err(db_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
