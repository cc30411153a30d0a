//! In-process fan-out of post changes, the source of GraphQL subscriptions.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::db::entities::post;

/// A post changed; `post` is its state after the change.
#[derive(Debug, Clone)]
pub struct PostEvent {
    /// The post after the change (its `owner_id` is the tenant allowed to see it).
    pub post: post::Model,
}

/// A broadcast channel of [`PostEvent`]s. Slow subscribers skip events rather than
/// holding back publishers.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<PostEvent>>,
}

impl EventBus {
    /// A bus that buffers up to `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self { sender }
    }

    /// Sends `event` to current subscribers; having none is not an error.
    pub fn publish(&self, event: PostEvent) {
        // `send` fails only when nobody listens, which is normal.
        let _ = self.sender.send(Arc::new(event));
    }

    /// Whether anyone listens: publishers may skip building events nobody receives.
    pub fn is_observed(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// A receiver of events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<PostEvent>> {
        self.sender.subscribe()
    }
}
