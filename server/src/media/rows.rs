//! The `media` table's SQL. API calls run in the tenant's scope (row-level security) and
//! name the owner as well; the public route and the collector cross tenants through the
//! worker's pool.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::store::Ingested;

/// One row of `media`.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct MediaRow {
    /// Id.
    pub id: Uuid,
    /// The owning tenant.
    pub owner_id: String,
    /// `pending` (a streamed upload not yet received) or `ready`.
    pub status: String,
    /// The file name the client gave.
    pub file_name: Option<String>,
    /// The size a streamed upload announced.
    pub declared_size: Option<i64>,
    /// The sniffed content type.
    pub content_type: Option<String>,
    /// Size in bytes.
    pub byte_size: Option<i64>,
    /// SHA-256 of the bytes.
    pub sha256: Option<Vec<u8>>,
    /// Image width.
    pub width: Option<i32>,
    /// Image height.
    pub height: Option<i32>,
    /// Video duration in milliseconds.
    pub duration_ms: Option<i64>,
    /// Video codec.
    pub video_codec: Option<String>,
    /// Alternative text.
    pub alt_text: Option<String>,
    /// Key of the file in the store.
    pub storage_key: String,
    /// When the upload began.
    pub created_at: DateTime<Utc>,
    /// Until when a pending upload is accepted.
    pub upload_expires_at: Option<DateTime<Utc>>,
}

/// The `media` columns, as [`MediaRow`] reads them.
const COLUMNS: &str = "id, owner_id, status, file_name, declared_size, content_type, byte_size, \
                       sha256, width, height, duration_ms, video_codec, alt_text, storage_key, \
                       created_at, upload_expires_at";

/// Post statuses in which a post may still be published (its media must stay).
const UNFINISHED: &str = "('draft', 'scheduled', 'queued', 'publishing', 'needs_review')";

fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// A new pending row.
pub struct NewPending<'a> {
    /// Id (also names the file in the store).
    pub id: Uuid,
    /// Owner.
    pub owner_id: &'a str,
    /// Client's file name.
    pub file_name: Option<&'a str>,
    /// Announced size.
    pub declared_size: Option<i64>,
    /// Alternative text.
    pub alt_text: Option<&'a str>,
    /// Key of the file.
    pub storage_key: &'a str,
    /// Until when the upload is accepted.
    pub expires_at: DateTime<Utc>,
}

/// Inserts a pending row.
pub async fn insert_pending<C: ConnectionTrait>(db: &C, row: NewPending<'_>) -> Result<(), DbErr> {
    db.execute(statement(
        "INSERT INTO media (id, owner_id, status, file_name, declared_size, alt_text,
                            storage_key, created_at, upload_expires_at)
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, now(), $7)",
        [
            row.id.into(),
            row.owner_id.to_owned().into(),
            row.file_name.map(str::to_owned).into(),
            row.declared_size.into(),
            row.alt_text.map(str::to_owned).into(),
            row.storage_key.to_owned().into(),
            row.expires_at.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The owner's row `id` in any status.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    id: Uuid,
) -> Result<Option<MediaRow>, DbErr> {
    MediaRow::find_by_statement(statement(
        &format!("SELECT {COLUMNS} FROM media WHERE owner_id = $1 AND id = $2"),
        [owner_id.to_owned().into(), id.into()],
    ))
    .one(db)
    .await
}

/// The ready row `id`, whoever owns it (the public route, which checked the signature).
pub async fn find_ready_any_owner<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<MediaRow>, DbErr> {
    MediaRow::find_by_statement(statement(
        &format!("SELECT {COLUMNS} FROM media WHERE id = $1 AND status = 'ready'"),
        [id.into()],
    ))
    .one(db)
    .await
}

/// The owner's ready row with these bytes.
pub async fn find_by_checksum<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    sha256: &[u8],
) -> Result<Option<MediaRow>, DbErr> {
    MediaRow::find_by_statement(statement(
        &format!(
            "SELECT {COLUMNS} FROM media WHERE owner_id = $1 AND sha256 = $2 AND status = 'ready'"
        ),
        [owner_id.to_owned().into(), sha256.to_vec().into()],
    ))
    .one(db)
    .await
}

/// Makes the pending row `id` ready with what the upload written at `storage_key` turned
/// out to be; `None` when it is no longer pending.
pub async fn complete<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    id: Uuid,
    storage_key: &str,
    ingested: &Ingested,
) -> Result<Option<MediaRow>, DbErr> {
    let (width, height) = match ingested.dimensions {
        Some((w, h)) => (i32::try_from(w).ok(), i32::try_from(h).ok()),
        None => (None, None),
    };
    MediaRow::find_by_statement(statement(
        &format!(
            "UPDATE media SET status = 'ready', content_type = $3, byte_size = $4, sha256 = $5,
                              width = $6, height = $7, storage_key = $8,
                              duration_ms = $9, video_codec = $10, upload_expires_at = NULL
             WHERE owner_id = $1 AND id = $2 AND status = 'pending'
             RETURNING {COLUMNS}"
        ),
        [
            owner_id.to_owned().into(),
            id.into(),
            ingested.content_type.to_owned().into(),
            i64::try_from(ingested.size).unwrap_or(i64::MAX).into(),
            ingested.sha256.to_vec().into(),
            width.into(),
            height.into(),
            storage_key.to_owned().into(),
            ingested
                .video
                .as_ref()
                .map(|v| i64::try_from(v.duration_ms).unwrap_or(i64::MAX))
                .into(),
            ingested.video.as_ref().and_then(|v| v.codec.clone()).into(),
        ],
    ))
    .one(db)
    .await
}

/// Deletes the owner's row `id` (any status); the deleted row.
pub async fn delete<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    id: Uuid,
) -> Result<Option<MediaRow>, DbErr> {
    MediaRow::find_by_statement(statement(
        &format!("DELETE FROM media WHERE owner_id = $1 AND id = $2 RETURNING {COLUMNS}"),
        [owner_id.to_owned().into(), id.into()],
    ))
    .one(db)
    .await
}

/// A page of the owner's ready rows, newest first, after `(created_at, id)`; one more
/// than `limit` tells that another page follows.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<MediaRow>, DbErr> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (sql, values): (String, Vec<Value>) = match after {
        Some((created_at, id)) => (
            format!(
                "SELECT {COLUMNS} FROM media WHERE owner_id = $1 AND status = 'ready'
                   AND (created_at, id) < ($2, $3)
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            ),
            vec![
                owner_id.to_owned().into(),
                created_at.into(),
                id.into(),
                limit.into(),
            ],
        ),
        None => (
            format!(
                "SELECT {COLUMNS} FROM media WHERE owner_id = $1 AND status = 'ready'
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            ),
            vec![owner_id.to_owned().into(), limit.into()],
        ),
    };
    MediaRow::find_by_statement(statement(&sql, values))
        .all(db)
        .await
}

/// The matching clause for the posts whose media names `$id` (text).
fn referencing(id_parameter: &str) -> String {
    format!(
        "p.media::jsonb @> jsonb_build_array(jsonb_build_object('media_id', {id_parameter}::text))"
    )
}

/// Whether a post of the owner that may still be published names `id` among its media.
pub async fn used_by_unfinished_post<C: ConnectionTrait>(
    db: &C,
    owner_id: &str,
    id: Uuid,
) -> Result<bool, DbErr> {
    let row = db
        .query_one(statement(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM social_posts p
                   WHERE p.owner_id = $1 AND p.archived_at IS NULL
                     AND p.status IN {UNFINISHED} AND {}) AS used",
                referencing("$2")
            ),
            [owner_id.to_owned().into(), id.to_string().into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get("", "used"),
        None => Ok(false),
    }
}

/// Deletes, across tenants, ready rows created before `ready_before` that no post names,
/// and pending rows whose upload window closed before `pending_before`; the deleted
/// rows (their files are the caller's to delete).
pub async fn collect<C: ConnectionTrait>(
    db: &C,
    ready_before: Option<DateTime<Utc>>,
    pending_before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<MediaRow>, DbErr> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    MediaRow::find_by_statement(statement(
        &format!(
            "DELETE FROM media WHERE id IN (
               SELECT m.id FROM media m
                WHERE (m.status = 'pending' AND m.upload_expires_at < $2)
                   OR ($1::timestamptz IS NOT NULL AND m.status = 'ready' AND m.created_at < $1
                       AND NOT EXISTS (SELECT 1 FROM social_posts p
                                        WHERE p.owner_id = m.owner_id AND {}))
                LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}",
            referencing("m.id")
        ),
        [ready_before.into(), pending_before.into(), limit.into()],
    ))
    .all(db)
    .await
}
