//! GraphQL object, input and enum types. Enums mirror the domain enums (`remote`), objects
//! wrap storage rows and resolve related data through the batching loader.

use async_graphql::dataloader::DataLoader;
use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, MaybeUndefined, Object, SimpleObject,
};
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::columns::{JsonSql, enum_json, object_with_columns};
use super::eager::{Eager, EagerList};
use super::loader::TargetLoader;
use super::{cursor, parse_id};
use crate::db::entities::{post, target};
use crate::domain;
use crate::domain::post::MediaItem;
use crate::domain::target::TargetSpec;
use crate::error::AppError;
use crate::posts::{self, Keyset, SortKey};

/// A post's overall status, derived from its targets.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "PostStatus", remote = "domain::status::PostStatus")]
pub enum PostStatus {
    /// Not scheduled.
    Draft,
    /// Waiting for its due time.
    Scheduled,
    /// A target failed and waits to be retried (or for its account to be reconnected);
    /// none is published yet.
    Queued,
    /// Being published, or published on some platforms with others still pending.
    Publishing,
    /// Published on every platform.
    Published,
    /// Published on some platforms; the others failed for good.
    PartiallyPublished,
    /// Failed on every platform.
    Failed,
    /// A target needs a person to decide whether it was published.
    NeedsReview,
}

/// Where one post × platform target stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "TargetStatus", remote = "domain::status::TargetStatus")]
pub enum TargetStatus {
    /// Not scheduled.
    Draft,
    /// Waiting for its due time.
    Scheduled,
    /// A worker is calling the platform.
    Publishing,
    /// A previous attempt failed; another is planned.
    Retrying,
    /// The platform accepted it.
    Published,
    /// Gave up; see lastError.
    Failed,
    /// May or may not have reached the platform; a person must decide.
    NeedsReview,
    /// The platform refused the account's credentials: waits, without spending attempts,
    /// until the account is reconnected (`lastError` says why), then goes out.
    WaitingForAccount,
}

/// Where a post stands in the approval workflow.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ApprovalStatus", remote = "domain::post::ApprovalStatus")]
pub enum ApprovalStatus {
    /// No approval needed.
    NotRequired,
    /// Waiting for an approver.
    Pending,
    /// Approved.
    Approved,
    /// Rejected; see rejectionReason.
    Rejected,
}

/// Which instant to take for a local time that occurs twice (DST fall-back).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "AmbiguousTime", remote = "domain::schedule::AmbiguousTime")]
pub enum AmbiguousTime {
    /// The first occurrence (still daylight time).
    Earlier,
    /// The second occurrence (after the clocks went back).
    Later,
}

/// How a scheduled post gets its time.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "PublishMode", remote = "domain::slots::PublishMode")]
pub enum PublishMode {
    /// The time given in `scheduledAt` (the default).
    Custom,
    /// The next free slot of the posting schedule of each target's account (for targets on
    /// several accounts: the first instant that is a free slot in all their schedules).
    AddToQueue,
    /// The first slot of the account's posting schedule; the posts queued from it on move
    /// back one slot each (`shareNext` answers which).
    ShareNext,
    /// Now.
    ShareNow,
}

impl JsonSql for PostStatus {
    fn json_sql_or_null(column: &str, _: bool) -> String {
        enum_json::<Self>(column, |s| domain::status::PostStatus::from(s).as_str())
    }
}

impl JsonSql for TargetStatus {
    fn json_sql_or_null(column: &str, _: bool) -> String {
        enum_json::<Self>(column, |s| domain::status::TargetStatus::from(s).as_str())
    }
}

impl JsonSql for ApprovalStatus {
    fn json_sql_or_null(column: &str, _: bool) -> String {
        enum_json::<Self>(column, |s| domain::post::ApprovalStatus::from(s).as_str())
    }
}

/// A post: text and media to publish on one or more platforms.
pub struct Post {
    row: post::Model,
    /// Its targets when they were loaded with a page of posts (else `targets` loads them).
    targets: Option<EagerList<Target>>,
}

impl From<post::Model> for Post {
    fn from(row: post::Model) -> Self {
        Self { row, targets: None }
    }
}

impl Post {
    /// A post whose targets are already loaded.
    pub fn with_targets(row: post::Model, targets: Vec<target::Model>) -> Self {
        Self {
            row,
            targets: Some(targets.into_iter().map(Target).collect::<Vec<_>>().into()),
        }
    }
}

impl Post {
    /// The stored row.
    fn row(&self) -> &post::Model {
        &self.row
    }
}

object_with_columns! {
    impl Post, row: post::Model, columns: POST_COLUMNS {
        /// Post id.
        column "id" id: ID = "id", |row| ID(row.id.to_string());
        /// Text.
        column "content" content: &str = "content", |row| &row.content;
        /// Platform ids, in the order given.
        column "platforms" platforms: Vec<String> = "platforms", |row| row.platform_ids();
        /// Overall status, derived from the targets.
        column "status" status: PostStatus = "status", |row| row.status.into();
        /// When the post is due (UTC).
        column "scheduledAt" scheduled_at: Option<DateTime<Utc>> = "scheduled_at",
            |row| row.scheduled_at;
        /// The wall-clock time the author chose, in `timeZone`.
        column "localScheduledAt" local_scheduled_at: Option<NaiveDateTime> = "local_scheduled_at",
            |row| row.local_scheduled_at;
        /// The author's IANA time zone.
        column "timeZone" time_zone: &str = "timezone", |row| &row.timezone;
        /// When the first platform published it.
        column "postedAt" posted_at: Option<DateTime<Utc>> = "posted_at", |row| row.posted_at;
        /// Media URLs (the same as `media { url }`).
        column "mediaUrls" media_urls: Vec<String> = "media_urls",
            |row| row.media_urls();
        /// Media attachments with their alt text.
        async fn media(&self) -> Vec<Media> {
            self.row.media().into_iter().map(Media::from).collect()
        }
        /// Campaign label.
        column "campaign" campaign: Option<&str> = "campaign", |row| row.campaign.as_deref();
        /// Internal notes.
        column "notes" notes: Option<&str> = "notes", |row| row.notes.as_deref();
        /// Whether an approver must approve it before it is published.
        column "approvalRequired" approval_required: bool = "approval_required",
            |row| row.approval_required;
        /// Approval state.
        column "approvalStatus" approval_status: ApprovalStatus = "approval_status",
            |row| row.approval_status.into();
        /// Why an approver rejected it.
        column "rejectionReason" rejection_reason: Option<&str> = "rejection_reason",
            |row| row.rejection_reason.as_deref();
        /// Why publishing failed, in short.
        column "failureReason" failure_reason: Option<&str> = "failure_reason",
            |row| row.failure_reason.as_deref();
        /// The tenant that owns it.
        column "ownerId" owner_id: &str = "owner_id", |row| &row.owner_id;
        /// The user who created it.
        column "createdBy" created_by: &str = "created_by", |row| &row.created_by;
        /// Creation time.
        column "createdAt" created_at: DateTime<Utc> = "created_at", |row| row.created_at;
        /// Last change.
        column "updatedAt" updated_at: DateTime<Utc> = "updated_at", |row| row.updated_at;
        /// When it was archived.
        column "archivedAt" archived_at: Option<DateTime<Utc>> = "archived_at",
            |row| row.archived_at;
        /// Version for optimistic concurrency: pass it as `expectedVersion`.
        column "version" version: i32 = "version", |row| row.version;
        /// One target per platform, with its own status.
        async fn targets(&self, ctx: &Context<'_>) -> async_graphql::Result<EagerList<Target>> {
            if let Some(targets) = &self.targets {
                return Ok(targets.clone());
            }
            let targets = ctx
                .data::<DataLoader<TargetLoader>>()?
                .load_one((self.row.owner_id.as_str().into(), self.row.id))
                .await
                .map_err(|e| e.as_ref().extend())?
                .unwrap_or_default();
            Ok(targets.into_iter().map(Target).collect::<Vec<_>>().into())
        }
    }
}

/// A post on one platform.
pub struct Target(pub target::Model);

impl Target {
    /// The stored row.
    fn row(&self) -> &target::Model {
        &self.0
    }
}

object_with_columns! {
    impl Target, row: target::Model, columns: TARGET_COLUMNS {
        /// Target id.
        column "id" id: ID = "id", |row| ID(row.id.to_string());
        /// Platform id.
        column "platform" platform: &str = "platform", |row| &row.platform;
        /// The connected account chosen for this target (null: the owner's account on the
        /// platform at publishing time).
        column "connectionId" connection_id: Option<ID> = "connection_id",
            |row| row.connection_id.map(|id| ID(id.to_string()));
        /// Platform options passed to the platform's plugin, sorted by key.
        async fn options(&self) -> Vec<TargetOption> {
            self.0
                .options()
                .into_iter()
                .map(|(key, value)| TargetOption { key, value })
                .collect()
        }
        /// The latest engagement figures (see `refreshPostMetrics`), if any were fetched.
        async fn metrics(
            &self,
            ctx: &Context<'_>,
        ) -> async_graphql::Result<Option<super::metrics::TargetMetrics>> {
            super::metrics::latest_of(ctx, self.0.id).await
        }
        /// Status on this platform.
        column "status" status: TargetStatus = "status", |row| row.status.into();
        /// Publish attempts so far.
        column "attempts" attempts: i32 = "attempts", |row| row.attempts;
        /// The platform's id for the published post.
        column "platformPostId" platform_post_id: Option<&str> = "platform_post_id",
            |row| row.platform_post_id.as_deref();
        /// Public URL of the published post.
        column "platformUrl" platform_url: Option<&str> = "platform_url",
            |row| row.platform_url.as_deref();
        /// Last error.
        column "lastError" last_error: Option<&str> = "last_error", |row| row.last_error.as_deref();
        /// Last HTTP status from the platform.
        column "lastResponseCode" last_response_code: Option<i32> = "last_response_code",
            |row| row.last_response_code;
        /// When the platform accepted it.
        column "publishedAt" published_at: Option<DateTime<Utc>> = "published_at",
            |row| row.published_at;
        /// Last change.
        column "updatedAt" updated_at: DateTime<Utc> = "updated_at", |row| row.updated_at;
    }
}

/// One media attachment of a post.
#[derive(SimpleObject)]
pub struct Media {
    /// Where the file is served; for a media library file (`mediaId`), Herald's reference
    /// `herald-media:<id>`, given to platforms as a signed URL when the post is published
    /// (`mediaItem(id) { url }` gives one now).
    pub url: String,
    /// Alternative text.
    pub alt_text: Option<String>,
    /// MIME type, when declared (a library file's sniffed type).
    pub mime_type: Option<String>,
    /// The media library file, when the attachment is one.
    pub media_id: Option<ID>,
}

impl From<MediaItem> for Media {
    fn from(item: MediaItem) -> Self {
        Self {
            url: item.url,
            alt_text: item.alt,
            mime_type: item.mime_type,
            media_id: item.media_id.map(|id| ID(id.to_string())),
        }
    }
}

/// One platform option of a target.
#[derive(SimpleObject)]
pub struct TargetOption {
    /// Option name, e.g. `visibility`.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// A media attachment to publish: a file hosted elsewhere (`url`) or one of the media
/// library's (`mediaId`).
#[derive(InputObject)]
pub struct PostMediaInput {
    /// Absolute http(s) URL of the file; or `mediaId`.
    pub url: Option<String>,
    /// A media library file (from `uploadMedia` or `createMediaUpload`); or `url`.
    pub media_id: Option<ID>,
    /// Alternative text (published where the platform supports it; default for a library
    /// file: its own alt text).
    pub alt_text: Option<String>,
    /// MIME type, e.g. `image/png` (default: the type the file is served with; a library
    /// file's is the sniffed one, whatever is given here).
    pub mime_type: Option<String>,
}

/// The domain's form of `media` inputs: `BAD_USER_INPUT` (naming `media[i]`) unless each
/// gives exactly one of `url` and a well-formed `mediaId`.
pub(crate) fn media_items(inputs: Vec<PostMediaInput>) -> async_graphql::Result<Vec<MediaItem>> {
    inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| {
            let field = format!("media[{index}]");
            let refused = |message: &str| AppError::bad_input(&field, message).extend();
            match (input.url, input.media_id) {
                (Some(url), None) => Ok(MediaItem {
                    url,
                    alt: input.alt_text,
                    mime_type: input.mime_type,
                    media_id: None,
                    details: None,
                }),
                (None, Some(id)) => {
                    let id = uuid::Uuid::parse_str(id.as_str())
                        .map_err(|_| refused("`mediaId` is not a valid id"))?;
                    Ok(MediaItem {
                        url: String::new(),
                        alt: input.alt_text,
                        mime_type: None,
                        media_id: Some(id),
                        details: None,
                    })
                }
                _ => Err(refused("give either `url` or `mediaId`")),
            }
        })
        .collect()
}

/// One platform option of a target, e.g. `{key: "visibility", value: "unlisted"}`.
#[derive(InputObject)]
pub struct TargetOptionInput {
    /// Option name (lowercase letters, digits, `_`).
    pub key: String,
    /// Its value.
    pub value: String,
}

/// Where to publish a post: a platform, optionally the account and platform options.
#[derive(InputObject)]
pub struct TargetInput {
    /// Platform id, e.g. `mastodon`.
    pub platform: String,
    /// The connected account to publish as (default: your account on the platform).
    pub connection_id: Option<ID>,
    /// Platform options (see each platform's documentation), e.g. Mastodon `visibility`.
    #[graphql(default)]
    pub options: Vec<TargetOptionInput>,
}

fn target_specs(inputs: Vec<TargetInput>) -> async_graphql::Result<Vec<TargetSpec>> {
    inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| {
            let connection_id = input
                .connection_id
                .as_ref()
                .map(|id| parse_id(id, &format!("targets[{index}].connectionId")))
                .transpose()?;
            let mut options = BTreeMap::new();
            for option in input.options {
                if options.insert(option.key.clone(), option.value).is_some() {
                    return Err(AppError::bad_input(
                        format!("targets[{index}].options"),
                        format!("option `{}` is given twice", option.key),
                    )
                    .extend());
                }
            }
            Ok(TargetSpec {
                platform: input.platform,
                connection_id,
                options,
            })
        })
        .collect()
}

/// The authenticated caller.
#[derive(SimpleObject)]
pub struct Me {
    /// The user (`sub`).
    pub user_id: String,
    /// The tenant (`org`, or the user).
    pub tenant_id: String,
    /// Granted roles.
    pub roles: Vec<String>,
}

/// One post in a list, with its cursor.
pub struct PostEdge {
    /// The list's sort key.
    pub key: SortKey,
    /// The post's position under `key`, encoded as the cursor only when asked for.
    pub position: Keyset,
    /// The post.
    pub node: Eager<Post>,
}

/// One post in a list, with its cursor.
#[Object]
impl PostEdge {
    /// Opaque cursor: pass as `after` to continue after this post.
    async fn cursor(&self) -> String {
        cursor::encode(self.key, self.position)
    }

    /// The post.
    async fn node(&self) -> &Eager<Post> {
        &self.node
    }
}

/// Paging state of a connection.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether more items follow.
    pub has_next_page: bool,
    /// Whether items precede (true when `after` was given).
    pub has_previous_page: bool,
    /// Cursor of the first edge.
    pub start_cursor: Option<String>,
    /// Cursor of the last edge.
    pub end_cursor: Option<String>,
}

/// A page of posts (Relay connection).
#[derive(SimpleObject)]
pub struct PostConnection {
    /// The posts with their cursors.
    pub edges: EagerList<PostEdge>,
    /// Paging state.
    pub page_info: PageInfo,
}

/// Fields of a new post.
#[derive(InputObject)]
pub struct CreatePostInput {
    /// Text.
    pub content: String,
    /// Media URLs (absolute http/https); or `media`, which adds alt text.
    #[graphql(default)]
    pub media_urls: Vec<String>,
    /// Media attachments with alt text; or `mediaUrls`.
    pub media: Option<Vec<PostMediaInput>>,
    /// Platform ids, e.g. ["bluesky", "mastodon"]; or `targets`.
    #[graphql(default)]
    pub platforms: Vec<String>,
    /// Targets with an account and platform options; or `platforms`.
    pub targets: Option<Vec<TargetInput>>,
    /// When to publish: RFC 3339 with offset, or a local date-time without offset read in
    /// `timeZone`. A draft when absent.
    pub scheduled_at: Option<String>,
    /// IANA time zone of the author, e.g. "Europe/Paris" (default UTC).
    pub time_zone: Option<String>,
    /// For a local time inside a DST overlap: which occurrence.
    pub ambiguous_time: Option<AmbiguousTime>,
    /// Campaign label.
    pub campaign: Option<String>,
    /// Internal notes.
    pub notes: Option<String>,
    /// Whether an approver must approve it before publishing.
    #[graphql(default)]
    pub approval_required: bool,
    /// How it gets its time (default `CUSTOM`: `scheduledAt`, or a draft without it).
    /// The other modes take no `scheduledAt` and schedule the post.
    pub mode: Option<PublishMode>,
}

impl CreatePostInput {
    /// The service's form of the input (`BAD_USER_INPUT` for a malformed id or option).
    pub fn into_new_post(self) -> async_graphql::Result<posts::NewPost> {
        let input = self;
        Ok(posts::NewPost {
            content: input.content,
            media_urls: input.media_urls,
            media: media_items(input.media.unwrap_or_default())?,
            platforms: input.platforms,
            targets: target_specs(input.targets.unwrap_or_default())?,
            scheduled_at: input.scheduled_at,
            time_zone: input.time_zone,
            ambiguous_time: input.ambiguous_time.map(Into::into),
            campaign: input.campaign,
            notes: input.notes,
            approval_required: input.approval_required,
            mode: input.mode.map(Into::into).unwrap_or_default(),
        })
    }
}

/// Changes to a post; omitted fields stay as they are. Use `schedulePost` and
/// `unschedulePost` to change its time.
#[derive(InputObject)]
pub struct UpdatePostInput {
    /// New text.
    pub content: Option<String>,
    /// New media URLs (or `media`).
    pub media_urls: Option<Vec<String>>,
    /// New media attachments (or `mediaUrls`).
    pub media: Option<Vec<PostMediaInput>>,
    /// New platform ids (or `targets`); kept targets keep their account and options.
    pub platforms: Option<Vec<String>>,
    /// New targets (or `platforms`).
    pub targets: Option<Vec<TargetInput>>,
    /// New campaign label; null clears it.
    pub campaign: MaybeUndefined<String>,
    /// New notes; null clears them.
    pub notes: MaybeUndefined<String>,
    /// New approval requirement.
    pub approval_required: Option<bool>,
    /// Refuse the change (CONFLICT) unless the post is still at this version.
    pub expected_version: Option<i32>,
}

fn maybe(value: MaybeUndefined<String>) -> Option<Option<String>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

impl UpdatePostInput {
    /// The service's form of the input (`BAD_USER_INPUT` for a malformed id or option).
    pub fn into_changes(self) -> async_graphql::Result<posts::PostChanges> {
        let input = self;
        Ok(posts::PostChanges {
            content: input.content,
            media_urls: input.media_urls,
            media: input.media.map(media_items).transpose()?,
            platforms: input.platforms,
            targets: input.targets.map(target_specs).transpose()?,
            campaign: maybe(input.campaign),
            notes: maybe(input.notes),
            approval_required: input.approval_required,
            expected_version: input.expected_version,
        })
    }
}

/// Which posts to list. Archived posts are listed only with `archived: true`.
#[derive(InputObject, Default)]
pub struct PostFilter {
    /// Only these statuses.
    pub status: Option<Vec<PostStatus>>,
    /// Only posts with a target on this platform.
    pub platform: Option<String>,
    /// Only this campaign.
    pub campaign: Option<String>,
    /// Only posts due at or after this instant.
    pub scheduled_from: Option<DateTime<Utc>>,
    /// Only posts due before this instant.
    pub scheduled_before: Option<DateTime<Utc>>,
    /// Archived posts instead of live ones.
    #[graphql(default)]
    pub archived: bool,
}

impl From<PostFilter> for posts::PostFilter {
    fn from(filter: PostFilter) -> Self {
        Self {
            statuses: filter
                .status
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            platform: filter.platform,
            campaign: filter.campaign,
            scheduled_from: filter.scheduled_from,
            scheduled_before: filter.scheduled_before,
            archived: filter.archived,
        }
    }
}

/// The field posts are sorted by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PostOrderField {
    /// Creation time.
    CreatedAt,
    /// Due time; unscheduled posts last.
    ScheduledAt,
}

/// Sort direction.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum OrderDirection {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

/// How to sort posts (default: newest created first).
#[derive(InputObject)]
pub struct PostOrder {
    /// Sort field.
    pub field: PostOrderField,
    /// Direction.
    #[graphql(default_with = "OrderDirection::Desc")]
    pub direction: OrderDirection,
}
