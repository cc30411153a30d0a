//! Fan-out of changes, the source of GraphQL subscriptions: a broadcast channel in each
//! process per kind of event (posts, connections), relayed between processes through
//! Redis (see [`relay`]) so an API replica's subscribers see what a separate worker
//! process did.

pub mod relay;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{broadcast, mpsc};

use crate::db::entities::{connection, post};

/// A post changed; `post` is its state after the change.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PostEvent {
    /// The post after the change (its `owner_id` is the tenant allowed to see it).
    pub post: post::Model,
}

/// A connected account changed (e.g. it must be reconnected); `connection` is its state
/// after the change.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConnectionEvent {
    /// The connection after the change (its `owner_id` is the tenant allowed to see it).
    pub connection: connection::Model,
}

/// Post changes.
pub type EventBus = Bus<PostEvent>;
/// Connected-account changes.
pub type ConnectionBus = Bus<ConnectionEvent>;

/// A broadcast channel of events. Slow subscribers skip events rather than holding back
/// publishers.
#[derive(Debug)]
pub struct Bus<E> {
    sender: broadcast::Sender<Arc<E>>,
    /// Where events go to reach other processes, once a relay is attached.
    outbound: Arc<OnceLock<mpsc::UnboundedSender<Arc<E>>>>,
    /// Whether another process listens to the relay.
    remote_listeners: Arc<AtomicBool>,
}

impl<E> Clone for Bus<E> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            outbound: self.outbound.clone(),
            remote_listeners: self.remote_listeners.clone(),
        }
    }
}

impl<E> Bus<E> {
    /// A bus that buffers up to `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            outbound: Arc::default(),
            remote_listeners: Arc::default(),
        }
    }

    /// Sends `event` to this process's subscribers and, when another process listens, to
    /// the relay; having no subscriber is not an error.
    pub fn publish(&self, event: E) {
        let event = Arc::new(event);
        if self.remote_listeners.load(Ordering::Relaxed)
            && let Some(outbound) = self.outbound.get()
        {
            let _ = outbound.send(event.clone());
        }
        self.publish_local(event);
    }

    /// Sends an event to this process's subscribers only (events from the relay).
    fn publish_local(&self, event: Arc<E>) {
        // `send` fails only when nobody listens, which is normal.
        let _ = self.sender.send(event);
    }

    /// Whether anyone listens, here or in another process: publishers may skip building
    /// events nobody receives.
    pub fn is_observed(&self) -> bool {
        self.sender.receiver_count() > 0 || self.remote_listeners.load(Ordering::Relaxed)
    }

    /// A receiver of events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<E>> {
        self.sender.subscribe()
    }
}
