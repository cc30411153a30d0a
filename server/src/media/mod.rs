//! The media library: files a tenant uploads to Herald (GraphQL multipart or a streamed
//! `PUT`), kept in an object store, listed and deleted per tenant, and served to platforms
//! at signed, expiring URLs (`http`). Posts name library files by id; the worker turns
//! those into signed URLs when it publishes ([`MediaUrls::resolve`]). Unreferenced files
//! are collected after a configured age (`gc`).

pub mod gc;
pub mod http;
pub mod probe;
pub mod reach;
pub mod rows;
pub mod signing;
pub mod sniff;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use object_store::ObjectStore;
use object_store::path::Path;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::actor::Actor;
use crate::domain::post::{MediaDetails, MediaItem};
use crate::error::AppError;
use rows::{MediaRow, NewPending};
use signing::UrlSigner;
use store::{IngestError, Storage};

/// Longest file name kept.
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Largest page of `media`.
pub const MAX_PAGE: u64 = 100;
/// The scheme of the `url` stored for a post's library media (`herald-media:<id>`): not
/// fetchable; the worker resolves it to a signed URL when it publishes.
pub const MEDIA_URL_SCHEME: &str = "herald-media:";

/// Media library settings.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Where files are kept.
    pub storage: Storage,
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Key of the media URLs' signatures.
    pub signing_key: [u8; 32],
    /// How long a signed media URL stays valid.
    pub url_ttl: Duration,
    /// How long a streamed upload's URL (`createMediaUpload`) stays valid.
    pub upload_ttl: Duration,
    /// Age after which an unreferenced file is deleted (`None`: kept).
    pub gc_after: Option<Duration>,
    /// Time between two garbage collections.
    pub gc_interval: Duration,
    /// Herald's public base URL (`HERALD_PUBLIC_URL`), which signed URLs start with.
    pub public_url: Option<String>,
}

impl Default for MediaConfig {
    /// In memory, 100 MiB files, a random key: for tests and tools.
    fn default() -> Self {
        Self {
            storage: Storage::Memory,
            max_bytes: 100 * 1024 * 1024,
            signing_key: rand::random(),
            url_ttl: Duration::from_secs(24 * 3600),
            upload_ttl: Duration::from_secs(3600),
            gc_after: Some(Duration::from_secs(7 * 24 * 3600)),
            gc_interval: Duration::from_secs(3600),
            public_url: None,
        }
    }
}

/// Makes the signed public URLs of library files.
#[derive(Debug, Clone)]
pub struct MediaUrls {
    signer: UrlSigner,
    public_url: Option<String>,
    ttl: Duration,
}

impl MediaUrls {
    /// The signed URL of `id`, valid for the configured time from `now` (the path alone
    /// when no public URL is configured).
    pub fn url(&self, id: Uuid, now: DateTime<Utc>) -> String {
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let path = self.signer.path(id, now.timestamp().saturating_add(ttl));
        match &self.public_url {
            Some(base) => format!("{base}{path}"),
            None => path,
        }
    }

    /// The signer.
    pub fn signer(&self) -> &UrlSigner {
        &self.signer
    }

    /// `media` with each library file's `url` replaced by its signed public URL, for a
    /// platform to fetch; an error (for the target's last error) when there is no public
    /// URL to give.
    pub fn resolve(&self, media: &[MediaItem]) -> Result<Vec<MediaItem>, String> {
        let now = Utc::now();
        media
            .iter()
            .map(|item| match item.media_id {
                None => Ok(item.clone()),
                Some(_) if self.public_url.is_none() => Err(
                    "HERALD_PUBLIC_URL is not set: platforms cannot fetch the post's library \
                     media"
                        .to_owned(),
                ),
                Some(id) => Ok(MediaItem {
                    url: self.url(id, now),
                    ..item.clone()
                }),
            })
            .collect()
    }
}

/// A library file as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryFile {
    /// Id.
    pub id: Uuid,
    /// Sniffed content type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Image width.
    pub width: Option<i32>,
    /// Image height.
    pub height: Option<i32>,
    /// Video duration in milliseconds.
    pub duration_ms: Option<i64>,
    /// Video codec (`h264`, `h265`, `vp9`).
    pub video_codec: Option<String>,
    /// Alternative text.
    pub alt_text: Option<String>,
    /// The client's file name.
    pub file_name: Option<String>,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

impl LibraryFile {
    fn from_row(row: MediaRow) -> Option<Self> {
        Some(Self {
            id: row.id,
            content_type: row.content_type?,
            size: row.byte_size?,
            width: row.width,
            height: row.height,
            duration_ms: row.duration_ms,
            video_codec: row.video_codec,
            alt_text: row.alt_text,
            file_name: row.file_name,
            sha256: hex(&row.sha256?),
            created_at: row.created_at,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A streamed upload begun by `createMediaUpload`.
#[derive(Debug, Clone)]
pub struct PendingUpload {
    /// The id the file will have.
    pub id: Uuid,
    /// Where to `PUT` the bytes (with the same bearer token).
    pub upload_url: String,
    /// When the upload stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// One page of the library.
#[derive(Debug, Clone)]
pub struct MediaPage {
    /// The files, newest first.
    pub files: Vec<LibraryFile>,
    /// Whether more follow.
    pub has_next_page: bool,
}

/// What a finished upload gave.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The file (an earlier one with the same bytes when `deduplicated`).
    pub file: LibraryFile,
    /// Whether the tenant already had these bytes.
    pub deduplicated: bool,
}

/// The media library's operations.
#[derive(Clone)]
pub struct MediaLibrary {
    db: DatabaseConnection,
    worker_db: DatabaseConnection,
    store: Arc<dyn ObjectStore>,
    urls: MediaUrls,
    config: Arc<MediaConfig>,
    /// What keeps platforms from fetching at the public URL, found out once.
    reach: Arc<tokio::sync::OnceCell<Option<String>>>,
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::Internal(Box::new(err))
}

impl MediaLibrary {
    /// The library over the API's pool `db` (tenant-scoped), the workers' `worker_db`,
    /// and `store` (opened from `config.storage` by [`store::open`]).
    pub fn new(
        db: DatabaseConnection,
        worker_db: DatabaseConnection,
        config: MediaConfig,
        store: Arc<dyn ObjectStore>,
    ) -> Self {
        Self {
            db,
            worker_db,
            store,
            urls: MediaUrls {
                signer: UrlSigner::new(config.signing_key),
                public_url: config.public_url.clone(),
                ttl: config.url_ttl,
            },
            config: Arc::new(config),
            reach: Arc::default(),
        }
    }

    /// What keeps platforms from fetching media at `HERALD_PUBLIC_URL`
    /// ([`reach::public_url_problem`]), looked up once per process: at start, where it is
    /// logged, and then for `validatePost`.
    pub async fn public_url_problem(&self) -> Option<String> {
        self.reach
            .get_or_init(|| reach::public_url_problem(self.config.public_url.as_deref()))
            .await
            .clone()
    }

    /// The settings.
    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    /// The signed URLs.
    pub fn urls(&self) -> &MediaUrls {
        &self.urls
    }

    pub(crate) fn worker_db(&self) -> &DatabaseConnection {
        &self.worker_db
    }

    fn upload_deadline(&self) -> DateTime<Utc> {
        Utc::now()
            + chrono::Duration::from_std(self.config.upload_ttl)
                .unwrap_or(chrono::Duration::hours(1))
    }

    fn check_file_name(file_name: Option<&str>) -> Result<(), AppError> {
        match file_name {
            Some(name) if name.chars().count() > MAX_FILE_NAME_CHARS => Err(AppError::bad_input(
                "fileName",
                format!("the file name is longer than {MAX_FILE_NAME_CHARS} characters"),
            )),
            _ => Ok(()),
        }
    }

    fn check_alt(alt: Option<&str>) -> Result<(), AppError> {
        crate::domain::post::validate_label("altText", alt, crate::domain::post::MAX_ALT_CHARS)
    }

    /// Begins a streamed upload of `size` bytes: a pending file whose bytes are sent with
    /// `PUT /media/uploads/{id}` before `expiresAt`.
    pub async fn begin_upload(
        &self,
        actor: &Actor,
        file_name: Option<&str>,
        size: i64,
        alt_text: Option<&str>,
    ) -> Result<PendingUpload, AppError> {
        Self::check_file_name(file_name)?;
        Self::check_alt(alt_text)?;
        if size < 1 || u64::try_from(size).is_ok_and(|s| s > self.config.max_bytes) {
            return Err(AppError::bad_input(
                "size",
                format!(
                    "a file must be 1 to {} bytes (HERALD_MEDIA_MAX_BYTES)",
                    self.config.max_bytes
                ),
            ));
        }
        let id = Uuid::now_v7();
        let expires_at = self.upload_deadline();
        rows::insert_pending(
            &self.db,
            NewPending {
                id,
                owner_id: &actor.tenant_id,
                file_name,
                declared_size: Some(size),
                alt_text,
                storage_key: &storage_key(id),
                expires_at,
            },
        )
        .await?;
        let path = format!("/media/uploads/{id}");
        Ok(PendingUpload {
            id,
            upload_url: match &self.config.public_url {
                Some(base) => format!("{base}{path}"),
                None => path,
            },
            expires_at,
        })
    }

    /// Stores an upload whose bytes come with the request (GraphQL multipart).
    pub async fn upload<S, E>(
        &self,
        actor: &Actor,
        file_name: Option<&str>,
        alt_text: Option<&str>,
        body: S,
    ) -> Result<Stored, AppError>
    where
        S: Stream<Item = Result<axum::body::Bytes, E>>,
        E: std::fmt::Display,
    {
        Self::check_file_name(file_name)?;
        Self::check_alt(alt_text)?;
        let id = Uuid::now_v7();
        rows::insert_pending(
            &self.db,
            NewPending {
                id,
                owner_id: &actor.tenant_id,
                file_name,
                declared_size: None,
                alt_text,
                storage_key: &storage_key(id),
                // Collected as abandoned only if this request dies before it finishes.
                expires_at: self.upload_deadline(),
            },
        )
        .await?;
        let stored = self.receive_into(actor, id, None, body, "file").await;
        if stored.is_err() {
            rows::delete(&self.db, &actor.tenant_id, id).await?;
        }
        stored
    }

    /// Receives the bytes of the streamed upload `id` (`PUT /media/uploads/{id}`):
    /// `NOT_FOUND` unless it is the tenant's, still pending and not expired.
    pub async fn receive<S, E>(&self, actor: &Actor, id: Uuid, body: S) -> Result<Stored, AppError>
    where
        S: Stream<Item = Result<axum::body::Bytes, E>>,
        E: std::fmt::Display,
    {
        let row = rows::find(&self.db, &actor.tenant_id, id)
            .await?
            .filter(|row| row.status == "pending")
            .filter(|row| row.upload_expires_at.is_some_and(|at| at > Utc::now()))
            .ok_or(AppError::NotFound("upload"))?;
        self.receive_into(actor, id, row.declared_size, body, "body")
            .await
    }

    async fn receive_into<S, E>(
        &self,
        actor: &Actor,
        id: Uuid,
        declared_size: Option<i64>,
        body: S,
        field: &str,
    ) -> Result<Stored, AppError>
    where
        S: Stream<Item = Result<axum::body::Bytes, E>>,
        E: std::fmt::Display,
    {
        // Each attempt writes a key of its own: two `PUT`s of one upload never write the
        // same object, and the one that completes the row first keeps its file.
        let key = Path::from(format!("{}.{}", storage_key(id), Uuid::new_v4().simple()));
        let cap = match declared_size.and_then(|s| u64::try_from(s).ok()) {
            Some(declared) => declared.min(self.config.max_bytes),
            None => self.config.max_bytes,
        };
        let ingested = store::ingest(self.store.as_ref(), &key, body, cap)
            .await
            .map_err(|err| match err {
                IngestError::TooLarge(_) if declared_size.is_some() => AppError::bad_input(
                    field,
                    format!("the body is larger than the {cap} bytes the upload announced"),
                ),
                IngestError::Store(err) => internal(err),
                other => AppError::bad_input(field, other),
            })?;
        if let Some(declared) = declared_size
            && u64::try_from(declared).ok() != Some(ingested.size)
        {
            store::remove(self.store.as_ref(), key.as_ref()).await;
            return Err(AppError::bad_input(
                field,
                format!(
                    "the body is {} bytes; the upload announced {declared}",
                    ingested.size
                ),
            ));
        }
        let owner = &actor.tenant_id;
        if let Some(existing) = rows::find_by_checksum(&self.db, owner, &ingested.sha256).await? {
            return self.deduplicated(owner, id, key.as_ref(), existing).await;
        }
        match rows::complete(&self.db, owner, id, key.as_ref(), &ingested).await {
            Ok(Some(row)) => Ok(Stored {
                file: LibraryFile::from_row(row).ok_or_else(|| incomplete(id))?,
                deduplicated: false,
            }),
            Ok(None) => {
                // Another request finished this upload first.
                store::remove(self.store.as_ref(), key.as_ref()).await;
                Err(AppError::NotFound("upload"))
            }
            Err(err)
                if matches!(
                    err.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                // The same bytes finished uploading meanwhile.
                let existing = rows::find_by_checksum(&self.db, owner, &ingested.sha256)
                    .await?
                    .ok_or_else(|| internal(err))?;
                self.deduplicated(owner, id, key.as_ref(), existing).await
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Drops the upload `id` (written at `key`) in favour of the tenant's `existing` file
    /// with the same bytes.
    async fn deduplicated(
        &self,
        owner: &str,
        id: Uuid,
        key: &str,
        existing: MediaRow,
    ) -> Result<Stored, AppError> {
        if existing.id != id {
            rows::delete(&self.db, owner, id).await?;
        }
        if existing.storage_key != key {
            store::remove(self.store.as_ref(), key).await;
        }
        Ok(Stored {
            file: LibraryFile::from_row(existing).ok_or_else(|| incomplete(id))?,
            deduplicated: true,
        })
    }

    /// The tenant's file `id`, if it exists and is uploaded.
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<Option<LibraryFile>, AppError> {
        Ok(rows::find(&self.db, &actor.tenant_id, id)
            .await?
            .and_then(LibraryFile::from_row))
    }

    /// A page of the tenant's files, newest first, after `(created_at, id)`.
    pub async fn list(
        &self,
        actor: &Actor,
        first: u64,
        after: Option<(DateTime<Utc>, Uuid)>,
    ) -> Result<MediaPage, AppError> {
        let first = first.clamp(1, MAX_PAGE);
        let mut rows = rows::page(&self.db, &actor.tenant_id, after, first + 1).await?;
        let has_next_page = rows.len() as u64 > first;
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        Ok(MediaPage {
            files: rows.into_iter().filter_map(LibraryFile::from_row).collect(),
            has_next_page,
        })
    }

    /// Deletes the tenant's file `id` and its bytes: `NOT_FOUND` when there is none,
    /// `CONFLICT` while a post that may still be published names it.
    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<(), AppError> {
        let owner = &actor.tenant_id;
        if rows::find(&self.db, owner, id).await?.is_none() {
            return Err(AppError::NotFound("media"));
        }
        if rows::used_by_unfinished_post(&self.db, owner, id).await? {
            return Err(AppError::Conflict(
                "a post that is not yet published uses this media; remove it from the post \
                 (or delete the post) first"
                    .into(),
            ));
        }
        let row = rows::delete(&self.db, owner, id)
            .await?
            .ok_or(AppError::NotFound("media"))?;
        store::remove(self.store.as_ref(), &row.storage_key).await;
        Ok(())
    }

    /// Checks a post's `media` against the tenant's library: each item naming a library
    /// file (`media_id`) gets its stored reference as `url`, its content type, its probed
    /// details (size, frame, duration), and the file's alt text unless the post gives one. `BAD_USER_INPUT` (naming `field[i]`) for
    /// a file the tenant does not have.
    pub async fn attach(
        &self,
        actor: &Actor,
        media: &mut [MediaItem],
        field: &str,
    ) -> Result<(), AppError> {
        for (index, item) in media.iter_mut().enumerate() {
            let Some(id) = item.media_id else {
                continue;
            };
            let file = self.get(actor, id).await?.ok_or_else(|| {
                AppError::bad_input(
                    format!("{field}[{index}]"),
                    format!("no media `{id}` in the library"),
                )
            })?;
            item.url = format!("{MEDIA_URL_SCHEME}{id}");
            let dimension = |value: Option<i32>| value.and_then(|v| u32::try_from(v).ok());
            item.details = Some(MediaDetails {
                size: u64::try_from(file.size).unwrap_or_default(),
                width: dimension(file.width),
                height: dimension(file.height),
                duration_ms: file.duration_ms.and_then(|ms| u64::try_from(ms).ok()),
            });
            item.mime_type = Some(file.content_type);
            if item.alt.is_none() {
                item.alt = file.alt_text;
            }
        }
        Ok(())
    }
}

fn incomplete(id: Uuid) -> AppError {
    AppError::Internal(format!("media {id} is ready without its details").into())
}

/// The key of file `id` in the store, before an upload names its own (`<key>.<attempt>`).
pub fn storage_key(id: Uuid) -> String {
    format!("media/{id}")
}
