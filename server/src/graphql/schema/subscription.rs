//! Live updates over WebSocket.

use async_graphql::{Context, ID, Subscription as SubscriptionObject};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use super::types::Post;
use super::{actor, parse_id};
use crate::events::EventBus;

/// Live post updates.
#[derive(Default)]
pub struct PostSubscription;

#[SubscriptionObject]
impl PostSubscription {
    /// Every change to one of the caller's posts (`id`), or to any of them when `id` is
    /// omitted. Only the caller's tenant's posts are ever delivered.
    async fn post_updated(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = Post>> {
        let tenant = actor(ctx)?.tenant_id.clone();
        let id = id.map(|id| parse_id(&id, "id")).transpose()?;
        let events = ctx.data::<EventBus>()?.subscribe();
        Ok(BroadcastStream::new(events).filter_map(move |event| {
            let matched = match event {
                Ok(event)
                    if event.post.owner_id == tenant && id.is_none_or(|id| id == event.post.id) =>
                {
                    Some(Post::from(event.post.clone()))
                }
                // A lagging subscriber skips what it missed; the next event carries the
                // post's full current state.
                _ => None,
            };
            async move { matched }
        }))
    }
}
