//! The media library's operations: `media` and `mediaItem`, `uploadMedia` (GraphQL
//! multipart), `createMediaUpload` (a streamed `PUT` for large files) and `deleteMedia`.
//! Every operation acts on the caller's tenant's library only.

use async_graphql::{Context, ErrorExtensions, ID, Object, SimpleObject, Upload};
use chrono::{DateTime, Utc};

use super::types::PageInfo;
use super::{actor, cursor, parse_id};
use crate::error::AppError;
use crate::media::{LibraryFile, MediaLibrary};
use crate::posts::{Keyset, SortKey};

/// Default page size of `media`.
const DEFAULT_PAGE_SIZE: i32 = 20;

/// A file of the media library.
pub struct MediaItem {
    file: LibraryFile,
}

/// A file of the media library.
#[Object]
impl MediaItem {
    /// Id (name it as `mediaId` in a post's media).
    async fn id(&self) -> ID {
        ID(self.file.id.to_string())
    }

    /// The content type, sniffed from the bytes.
    async fn content_type(&self) -> &str {
        &self.file.content_type
    }

    /// Size in bytes.
    async fn size(&self) -> i64 {
        self.file.size
    }

    /// Width in pixels (images; videos: the first video track's frame).
    async fn width(&self) -> Option<i32> {
        self.file.width
    }

    /// Height in pixels (images; videos: the first video track's frame).
    async fn height(&self) -> Option<i32> {
        self.file.height
    }

    /// Duration in milliseconds (MP4 and QuickTime videos).
    async fn duration_ms(&self) -> Option<i64> {
        self.file.duration_ms
    }

    /// Codec of the first video track (`h264`, `h265`, `vp9`), when Herald knows it.
    async fn video_codec(&self) -> Option<&str> {
        self.file.video_codec.as_deref()
    }

    /// Alternative text.
    async fn alt_text(&self) -> Option<&str> {
        self.file.alt_text.as_deref()
    }

    /// The file name it was uploaded with.
    async fn file_name(&self) -> Option<&str> {
        self.file.file_name.as_deref()
    }

    /// SHA-256 of the bytes (hex): the same file uploaded twice is stored once.
    async fn sha256(&self) -> &str {
        &self.file.sha256
    }

    /// When it was uploaded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.file.created_at
    }

    /// A signed URL anyone holding it may fetch the file from, until it expires
    /// (`HERALD_MEDIA_URL_TTL_SECS`); built on `HERALD_PUBLIC_URL` (a path alone without
    /// it).
    async fn url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(ctx
            .data::<MediaLibrary>()?
            .urls()
            .url(self.file.id, Utc::now()))
    }
}

/// One file in a page of the library, with its cursor.
#[derive(SimpleObject)]
pub struct MediaEdge {
    /// Opaque cursor: pass as `after` to continue after this file.
    pub cursor: String,
    /// The file.
    pub node: MediaItem,
}

/// A page of the media library, newest first (Relay connection).
#[derive(SimpleObject)]
pub struct MediaConnection {
    /// The files with their cursors.
    pub edges: Vec<MediaEdge>,
    /// Paging state.
    pub page_info: PageInfo,
}

/// Where to send a large file's bytes.
#[derive(SimpleObject)]
pub struct MediaUpload {
    /// The id the file will have.
    pub id: ID,
    /// `PUT` the bytes here with the same `Authorization` header (any `Content-Type`;
    /// the type is sniffed from the bytes).
    pub upload_url: String,
    /// When the upload stops being accepted.
    pub expires_at: DateTime<Utc>,
}

fn cursor_of(file: &LibraryFile) -> String {
    cursor::encode(
        SortKey::CreatedAt,
        Keyset {
            value: Some(file.created_at),
            id: file.id,
        },
    )
}

/// Reads of the media library.
#[derive(Default)]
pub struct MediaQuery;

#[Object]
impl MediaQuery {
    /// The tenant's media library, newest first.
    async fn media(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (1 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the edge to continue after.")] after: Option<String>,
    ) -> async_graphql::Result<MediaConnection> {
        let actor = actor(ctx)?;
        let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
        let max = i32::try_from(crate::media::MAX_PAGE).unwrap_or(i32::MAX);
        if !(1..=max).contains(&first) {
            return Err(
                AppError::bad_input("first", format!("first must be between 1 and {max}")).extend(),
            );
        }
        let position = after
            .as_deref()
            .map(|c| cursor::decode(SortKey::CreatedAt, c))
            .transpose()
            .map_err(|e| e.extend())?;
        let after_key = match position {
            Some(Keyset {
                value: Some(created_at),
                id,
            }) => Some((created_at, id)),
            Some(_) => return Err(AppError::bad_input("after", "invalid cursor").extend()),
            None => None,
        };
        let page = ctx
            .data::<MediaLibrary>()?
            .list(actor, first.unsigned_abs().into(), after_key)
            .await
            .map_err(|e| e.extend())?;
        let edges: Vec<MediaEdge> = page
            .files
            .into_iter()
            .map(|file| MediaEdge {
                cursor: cursor_of(&file),
                node: MediaItem { file },
            })
            .collect();
        Ok(MediaConnection {
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                has_previous_page: after_key.is_some(),
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
        })
    }

    /// One file of the tenant's library; null when it does not exist or is not the
    /// caller's tenant's.
    async fn media_item(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<MediaItem>> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "id")?;
        let file = ctx
            .data::<MediaLibrary>()?
            .get(actor, id)
            .await
            .map_err(|e| e.extend())?;
        Ok(file.map(|file| MediaItem { file }))
    }
}

/// Changes to the media library.
#[derive(Default)]
pub struct MediaMutation;

#[Object]
impl MediaMutation {
    /// Uploads a file (the GraphQL multipart request spec; for large files use
    /// `createMediaUpload`). Its type is sniffed from the bytes: `BAD_USER_INPUT` (field
    /// `file`) for a file larger than `HERALD_MEDIA_MAX_BYTES` or of a type not accepted.
    /// The same bytes uploaded again give the tenant's existing file.
    async fn upload_media(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        alt_text: Option<String>,
    ) -> async_graphql::Result<MediaItem> {
        let actor = actor(ctx)?;
        let value = file.value(ctx).map_err(|err| {
            tracing::warn!(%err, "cannot reopen a spooled upload");
            AppError::bad_input("file", "the uploaded file cannot be read").extend()
        })?;
        let name = value.filename.clone();
        let body = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(value.content));
        let stored = ctx
            .data::<MediaLibrary>()?
            .upload(
                actor,
                Some(name.as_str()).filter(|n| !n.is_empty()),
                alt_text.as_deref(),
                body,
            )
            .await
            .map_err(|e| e.extend())?;
        Ok(MediaItem { file: stored.file })
    }

    /// Begins the upload of a large file: `PUT` its `size` bytes to `uploadUrl` (streamed,
    /// with the same bearer token) before `expiresAt`.
    async fn create_media_upload(
        &self,
        ctx: &Context<'_>,
        file_name: String,
        #[graphql(
            name = "contentType",
            desc = "Ignored: the type is sniffed from the bytes."
        )]
        _content_type: Option<String>,
        size: i64,
        alt_text: Option<String>,
    ) -> async_graphql::Result<MediaUpload> {
        let actor = actor(ctx)?;
        let pending = ctx
            .data::<MediaLibrary>()?
            .begin_upload(
                actor,
                Some(file_name.as_str()).filter(|n| !n.is_empty()),
                size,
                alt_text.as_deref(),
            )
            .await
            .map_err(|e| e.extend())?;
        Ok(MediaUpload {
            id: ID(pending.id.to_string()),
            upload_url: pending.upload_url,
            expires_at: pending.expires_at,
        })
    }

    /// Deletes a file of the tenant's library and its bytes; returns its id. `CONFLICT`
    /// while a post that is not yet published uses it.
    async fn delete_media(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let actor = actor(ctx)?;
        let uuid = parse_id(&id, "id")?;
        ctx.data::<MediaLibrary>()?
            .delete(actor, uuid)
            .await
            .map_err(|e| e.extend())?;
        Ok(id)
    }
}
