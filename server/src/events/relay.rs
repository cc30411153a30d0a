//! Relays events (one channel per kind) between processes over Redis pub/sub. Every process publishes its
//! events (only while some other process listens, checked with `PUBSUB NUMSUB`); API
//! processes also listen and re-broadcast other processes' events to their subscribers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::Bus;
use crate::queue::QueueError;

/// How often a process checks whether another one listens.
const LISTENER_CHECK: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct Envelope<E> {
    origin: Uuid,
    event: E,
}

/// The relay's background tasks; dropping it stops them.
pub struct Relay {
    tasks: Vec<JoinHandle<()>>,
    subscriber: Option<SubscriberClient>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(subscriber) = self.subscriber.take() {
            tokio::spawn(async move {
                let _ = subscriber.quit().await;
            });
        }
    }
}

fn backend(err: fred::error::Error) -> QueueError {
    QueueError::Backend(err.to_string())
}

/// Attaches `bus` to the relay channel `topic` (e.g. `post-events`) of `namespace` on
/// `redis_url`; with `listen`, this process also receives the others' events.
pub async fn start<E>(
    redis_url: &str,
    namespace: &str,
    topic: &str,
    bus: &Bus<E>,
    listen: bool,
) -> Result<Relay, QueueError>
where
    E: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let channel = format!("{{{namespace}}}:{topic}");
    let origin = Uuid::new_v4();
    let config = Config::from_url(redis_url).map_err(backend)?;
    let mut builder = Builder::from_config(config);
    builder
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(5))
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
    let client = builder.build().map_err(backend)?;
    client.init().await.map_err(backend)?;

    let mut tasks = Vec::new();
    let mut subscriber = None;
    if listen {
        let sub = builder.build_subscriber_client().map_err(backend)?;
        sub.init().await.map_err(backend)?;
        let mut messages = sub.message_rx();
        tasks.push(sub.manage_subscriptions());
        sub.subscribe(channel.clone()).await.map_err(backend)?;
        let inbound = bus.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match messages.recv().await {
                    Ok(message) => {
                        let Some(text) = message.value.as_str() else {
                            continue;
                        };
                        match serde_json::from_str::<Envelope<E>>(&text) {
                            Ok(envelope) if envelope.origin != origin => {
                                inbound.publish_local(Arc::new(envelope.event));
                            }
                            Ok(_) => {}
                            Err(err) => tracing::warn!(%err, "unreadable relayed event"),
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "event relay lagged");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        }));
        subscriber = Some(sub);
    }

    // Publish this process's events while another process listens.
    let (outbound, mut events) = mpsc::unbounded_channel::<Arc<E>>();
    if bus.outbound.set(outbound).is_err() {
        tracing::warn!("a relay was already attached to this event bus");
    }
    let publisher = client.clone();
    let publish_channel = channel.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let envelope = Envelope {
                origin,
                event: (*event).clone(),
            };
            let Ok(text) = serde_json::to_string(&envelope) else {
                continue;
            };
            if let Err(err) = publisher.publish::<(), _, _>(&publish_channel, text).await {
                tracing::warn!(%err, "cannot relay an event");
            }
        }
    }));
    let remote = bus.remote_listeners.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let counts: Result<Vec<Value>, _> = client.pubsub_numsub(channel.clone()).await;
            let listeners = counts
                .ok()
                .and_then(|v| v.get(1).and_then(Value::as_i64))
                .unwrap_or(0);
            let others = listeners - i64::from(listen);
            remote.store(others > 0, Ordering::Relaxed);
            tokio::time::sleep(LISTENER_CHECK).await;
        }
    }));
    Ok(Relay { tasks, subscriber })
}
