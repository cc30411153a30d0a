//! Write operations on posts.

use async_graphql::{Context, ErrorExtensions, ID, Object};
use chrono::{DateTime, Utc};

use super::types::{AmbiguousTime, CreatePostInput, Post, PublishMode, UpdatePostInput};
use super::{actor, parse_id};
use crate::domain::schedule::ScheduleRequest;
use crate::domain::slots;
use crate::error::AppError;
use crate::posts::PostService;

/// Mutations on posts.
#[derive(Default)]
pub struct PostMutation;

#[Object]
impl PostMutation {
    /// Creates a post: a draft without `scheduledAt`, scheduled with it, or scheduled by
    /// `mode` (a slot of its accounts' posting schedules, or now).
    async fn create_post(
        &self,
        ctx: &Context<'_>,
        input: CreatePostInput,
    ) -> async_graphql::Result<Post> {
        let actor = actor(ctx)?;
        let post = ctx
            .data::<PostService>()?
            .create(actor, input.into_new_post()?)
            .await
            .map_err(|e| e.extend())?;
        Ok(Post::from(post))
    }

    /// Edits a post; CONFLICT once it is publishing or published, when `expectedVersion`
    /// is stale, or when the post keeps changing while the edit is checked. New content,
    /// media or targets of a scheduled post are checked by each platform's plugin.
    async fn update_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePostInput,
    ) -> async_graphql::Result<Post> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "id")?;
        let post = ctx
            .data::<PostService>()?
            .update(actor, id, input.into_changes()?)
            .await
            .map_err(|e| e.extend())?;
        Ok(Post::from(post))
    }

    /// Deletes an unpublished post and its targets; returns its id.
    async fn delete_post(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let actor = actor(ctx)?;
        let uuid = parse_id(&id, "id")?;
        ctx.data::<PostService>()?
            .delete(actor, uuid)
            .await
            .map_err(|e| e.extend())?;
        Ok(id)
    }

    /// Schedules (or reschedules) a post. With `mode` `CUSTOM` (the default),
    /// `scheduledAt` is required: RFC 3339 with offset, or a local date-time without offset
    /// read in `timeZone` (default: the post's zone). `ADD_TO_QUEUE` and `SHARE_NEXT` take
    /// a slot of the posting schedule of the targets' accounts (`SHARE_NEXT` moves the
    /// queued posts after it back one slot, announced on `postUpdated`; `shareNext` also
    /// answers which), `SHARE_NOW` schedules it now; those take no `scheduledAt`.
    /// Each platform's plugin checks the post first; CONFLICT when the post keeps changing
    /// meanwhile.
    #[allow(clippy::too_many_arguments)]
    async fn schedule_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        scheduled_at: Option<String>,
        time_zone: Option<String>,
        ambiguous_time: Option<AmbiguousTime>,
        expected_version: Option<i32>,
        mode: Option<PublishMode>,
    ) -> async_graphql::Result<Post> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "id")?;
        let mode: slots::PublishMode = mode.map(Into::into).unwrap_or_default();
        let service = ctx.data::<PostService>()?;
        let now = Utc::now().to_rfc3339();
        let scheduled_at = match (mode, scheduled_at) {
            (slots::PublishMode::Custom, Some(at)) => at,
            (slots::PublishMode::Custom, None) => {
                return Err(AppError::bad_input(
                    "scheduledAt",
                    "scheduledAt is required with mode CUSTOM",
                )
                .extend());
            }
            (_, Some(_)) => {
                return Err(AppError::bad_input(
                    "scheduledAt",
                    "give scheduledAt only with mode CUSTOM; the other modes choose the time",
                )
                .extend());
            }
            (slots::PublishMode::ShareNow, None) => now,
            (queued, None) => {
                let (post, _) = service
                    .schedule_in_queue(actor, id, queued, expected_version)
                    .await
                    .map_err(|e| e.extend())?;
                return Ok(Post::from(post));
            }
        };
        let request = ScheduleRequest {
            scheduled_at: &scheduled_at,
            time_zone: time_zone.as_deref(),
            ambiguous_time: ambiguous_time.map(Into::into),
        };
        let post = service
            .schedule(actor, id, request, expected_version)
            .await
            .map_err(|e| e.extend())?;
        Ok(Post::from(post))
    }

    /// Takes a post off the schedule, back to draft.
    async fn unschedule_post(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Post> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "id")?;
        let post = ctx
            .data::<PostService>()?
            .unschedule(actor, id)
            .await
            .map_err(|e| e.extend())?;
        Ok(Post::from(post))
    }

    /// Approves a post that requires approval (approver role).
    async fn approve_post(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Post> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "id")?;
        let post = ctx
            .data::<PostService>()?
            .approve(actor, id)
            .await
            .map_err(|e| e.extend())?;
        Ok(Post::from(post))
    }

    /// Rejects a post that requires approval, with a reason (approver role).
    async fn reject_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> async_graphql::Result<Post> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "id")?;
        let post = ctx
            .data::<PostService>()?
            .reject(actor, id, &reason)
            .await
            .map_err(|e| e.extend())?;
        Ok(Post::from(post))
    }

    /// Archives the caller's settled posts (draft, published, partially published,
    /// failed) created before `olderThan`; returns how many.
    async fn archive_posts(
        &self,
        ctx: &Context<'_>,
        older_than: DateTime<Utc>,
    ) -> async_graphql::Result<i32> {
        let actor = actor(ctx)?;
        let count = ctx
            .data::<PostService>()?
            .archive_older_than(actor, older_than)
            .await
            .map_err(|e| e.extend())?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}
