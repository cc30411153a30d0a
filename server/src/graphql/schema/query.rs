//! Read operations.

use std::collections::HashMap;

use async_graphql::{Context, ErrorExtensions, ID, Object};

use super::eager::Eager;
use super::platforms::{self, Platform, PlatformValidation, ValidatePostInput};
use super::types::{
    Me, OrderDirection, PageInfo, Post, PostConnection, PostEdge, PostFilter, PostOrder,
    PostOrderField,
};
use super::{actor, cursor, parse_id};
use crate::error::AppError;
use crate::posts::{Keyset, PageRequest, PostService, SortKey, sort_value};

/// Default page size of `posts`.
const DEFAULT_PAGE_SIZE: i32 = 20;
/// Largest page size of `posts`.
const MAX_PAGE_SIZE: i32 = 100;

/// Queries on posts.
#[derive(Default)]
pub struct PostQuery;

#[Object]
impl PostQuery {
    /// The authenticated caller.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let actor = actor(ctx)?;
        Ok(Me {
            user_id: actor.user_id.clone(),
            tenant_id: actor.tenant_id.clone(),
            roles: actor.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        })
    }

    /// One of the caller's posts; null when it does not exist or is not the caller's.
    async fn post(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Post>> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "id")?;
        let post = ctx
            .data::<PostService>()?
            .get(actor, id)
            .await
            .map_err(|e| e.extend())?;
        Ok(post.map(Post::from))
    }

    /// The caller's posts, filtered, sorted and paged with cursors.
    async fn posts(
        &self,
        ctx: &Context<'_>,
        filter: Option<PostFilter>,
        order_by: Option<PostOrder>,
        #[graphql(desc = "Page size (1 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the edge to continue after.")] after: Option<String>,
    ) -> async_graphql::Result<PostConnection> {
        let actor = actor(ctx)?;
        let page = page_request(first, order_by, after.as_deref())?;
        let key = page.key;
        let after = page.after;
        let service = ctx.data::<PostService>()?;
        let page = service
            .list(actor, &filter.unwrap_or_default().into(), page)
            .await
            .map_err(|e| e.extend())?;
        // The page's targets in one query with the page, when they are asked for.
        let wants_targets = ctx
            .look_ahead()
            .field("edges")
            .field("node")
            .field("targets")
            .exists();
        let mut targets = if wants_targets {
            let ids: Vec<_> = page.posts.iter().map(|post| post.id).collect();
            service.targets_of(&ids).await.map_err(|e| e.extend())?
        } else {
            HashMap::new()
        };
        let edges: Vec<PostEdge> = page
            .posts
            .into_iter()
            .map(|post| {
                let position = Keyset {
                    value: sort_value(&post, key),
                    id: post.id,
                };
                let node = if wants_targets {
                    let loaded = targets.remove(&post.id).unwrap_or_default();
                    Post::with_targets(post, loaded)
                } else {
                    Post::from(post)
                };
                PostEdge {
                    key,
                    position,
                    node: Eager(node),
                }
            })
            .collect();
        Ok(PostConnection {
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                has_previous_page: after.is_some(),
                start_cursor: edges.first().map(|e| cursor::encode(key, e.position)),
                end_cursor: edges.last().map(|e| cursor::encode(key, e.position)),
            },
            edges: edges.into(),
        })
    }

    /// The platforms Herald can publish to (loaded plugins) and their limits.
    async fn platforms(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Platform>> {
        platforms::platforms(ctx)
    }

    /// Checks a draft against each listed platform's rules, without saving anything.
    async fn validate_post(
        &self,
        ctx: &Context<'_>,
        input: ValidatePostInput,
    ) -> async_graphql::Result<Vec<PlatformValidation>> {
        platforms::validate_post(ctx, input).await
    }
}

/// The page `posts` asks for (size, order, start), checked: `BAD_USER_INPUT` for a size
/// out of range or a cursor made under another order.
pub(crate) fn page_request(
    first: Option<i32>,
    order_by: Option<PostOrder>,
    after: Option<&str>,
) -> async_graphql::Result<PageRequest> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&first) {
        return Err(AppError::bad_input(
            "first",
            format!("first must be between 1 and {MAX_PAGE_SIZE}"),
        )
        .extend());
    }
    let (key, ascending) = match order_by {
        Some(order) => (
            match order.field {
                PostOrderField::CreatedAt => SortKey::CreatedAt,
                PostOrderField::ScheduledAt => SortKey::ScheduledAt,
            },
            order.direction == OrderDirection::Asc,
        ),
        None => (SortKey::CreatedAt, false),
    };
    let after = after
        .map(|c| cursor::decode(key, c))
        .transpose()
        .map_err(|e| e.extend())?;
    Ok(PageRequest {
        key,
        ascending,
        first: first.unsigned_abs().into(),
        after,
    })
}
