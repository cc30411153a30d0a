//! Subscription executions shared between subscribers. Ten thousand clients watching the
//! same post with the same document should not cost ten thousand executions: a
//! `postUpdated` subscription runs once per distinct (caller, document, operation,
//! variables), and each result is serialised once and handed to every subscriber of that
//! execution. A subscriber costs an entry in its execution's list and one in its
//! connection's; the connection's single task writes the messages.
//!
//! The caller is part of the key because resolvers scope what they return to it (a tenant
//! only sees its own posts). Subscriptions that yield something on their own when they
//! start (`queueStatsUpdated` sends the current figures first) are never shared, so each
//! subscriber still gets its first value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use async_graphql::parser::types::{ExecutableDocument, Selection};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::http::{is_request_error, with_codes};
use crate::domain::actor::Actor;

/// Root subscription fields whose executions may be shared: they only yield on events.
const SHAREABLE_FIELDS: &[&str] = &["postUpdated"];

/// What an execution sends to its subscribers, serialised once for all of them.
#[derive(Debug)]
pub(crate) enum Event {
    /// A result: the JSON of the GraphQL response.
    Next(String),
    /// The request could not run: the JSON array of its errors. Nothing follows.
    Error(String),
    /// The execution ended. Nothing follows.
    Complete,
}

impl Event {
    /// The `graphql-transport-ws` message for subscription `id`.
    pub(crate) fn message(&self, id: &str) -> String {
        let id = serde_json::Value::from(id);
        match self {
            Self::Next(payload) => format!(r#"{{"id":{id},"type":"next","payload":{payload}}}"#),
            Self::Error(errors) => format!(r#"{{"id":{id},"type":"error","payload":{errors}}}"#),
            Self::Complete => format!(r#"{{"id":{id},"type":"complete"}}"#),
        }
    }

    /// Whether this is the subscription's last message.
    pub(crate) fn is_final(&self) -> bool {
        !matches!(self, Self::Next(_))
    }
}

/// A delivery to a connection: the connection's number for the subscription, and the event.
pub(crate) type Delivery = (u64, Arc<Event>);

/// What makes two subscriptions the same execution.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    actor: Actor,
    query: String,
    operation_name: Option<String>,
    variables: String,
}

impl Key {
    /// The key of `request` run by `actor`.
    pub(crate) fn new(actor: &Actor, request: &async_graphql::Request) -> Self {
        Self {
            actor: actor.clone(),
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            // Variables are a map: serialising them cannot fail.
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
        }
    }
}

/// One subscriber of an execution: where its connection reads, and its number there.
struct Subscriber {
    connection: mpsc::Sender<Delivery>,
    subscription: u64,
}

#[derive(Default)]
struct Subscribers {
    next_token: u64,
    by_token: HashMap<u64, Subscriber>,
    /// Set once the execution ended or lost its last subscriber: nobody may join then.
    closed: bool,
}

/// One running execution and its subscribers.
pub(crate) struct Execution {
    /// Its key in the registry, when it is shared.
    key: Option<Arc<Key>>,
    subscribers: Mutex<Subscribers>,
    task: Mutex<Option<AbortHandle>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state stays consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Execution {
    /// Adds a subscriber unless the execution has closed; returns its token.
    fn join(&self, subscriber: Subscriber) -> Option<u64> {
        let mut subscribers = lock(&self.subscribers);
        if subscribers.closed {
            return None;
        }
        subscribers.next_token += 1;
        let token = subscribers.next_token;
        subscribers.by_token.insert(token, subscriber);
        Some(token)
    }

    /// Sends `event` to every subscriber.
    fn broadcast(&self, event: Event) {
        let subscribers = lock(&self.subscribers);
        send_all(subscribers.by_token.values(), &Arc::new(event));
    }

    /// Closes the execution to newcomers and sends the last `event` to its subscribers.
    fn finish(&self, registry: &Registry, event: Event) {
        let mut subscribers = lock(&self.subscribers);
        subscribers.closed = true;
        let last = std::mem::take(&mut subscribers.by_token);
        drop(subscribers);
        send_all(last.values(), &Arc::new(event));
        registry.forget(self);
    }
}

/// Hands `event` to each subscriber's connection. A connection that cannot keep up skips
/// a result (the next `postUpdated` event carries the post's full state), but gets a
/// final event once it has room.
fn send_all<'a>(subscribers: impl Iterator<Item = &'a Subscriber>, event: &Arc<Event>) {
    for subscriber in subscribers {
        let delivery = (subscriber.subscription, event.clone());
        if let Err(mpsc::error::TrySendError::Full(delivery)) =
            subscriber.connection.try_send(delivery)
        {
            if event.is_final() {
                let connection = subscriber.connection.clone();
                tokio::spawn(async move { connection.send(delivery).await });
            } else {
                tracing::debug!("a slow WebSocket subscriber skipped an event");
            }
        }
    }
}

/// A subscriber's hold on an execution; dropping it does not leave: call [`Self::leave`].
pub(crate) struct Membership {
    execution: Arc<Execution>,
    token: u64,
}

impl Membership {
    /// Stops receiving events; the last subscriber to leave stops the execution.
    pub(crate) fn leave(self, registry: &Registry) {
        let mut subscribers = lock(&self.execution.subscribers);
        subscribers.by_token.remove(&self.token);
        if !subscribers.by_token.is_empty() || subscribers.closed {
            return;
        }
        subscribers.closed = true;
        drop(subscribers);
        registry.forget(&self.execution);
        if let Some(task) = lock(&self.execution.task).take() {
            task.abort();
        }
    }
}

/// The running shareable executions of one server, by key.
#[derive(Clone, Default)]
pub struct Registry {
    executions: Arc<Mutex<HashMap<Arc<Key>, Weak<Execution>>>>,
}

/// A new execution: whether others may join it, and its response stream.
pub(crate) struct Start {
    /// Whether it may be shared (see [`shareable`]).
    pub shareable: bool,
    /// The response stream of the request.
    pub responses: BoxStream<'static, async_graphql::Response>,
}

impl Registry {
    /// Subscribes a connection's subscription number `subscription` to the execution of
    /// `key`: a running shareable one, or one that `start` begins (its `Err` is handed
    /// back). `start` runs without the registry locked, so a long document to parse does
    /// not hold up other subscribers.
    pub(crate) fn subscribe<E>(
        &self,
        key: Key,
        connection: mpsc::Sender<Delivery>,
        subscription: u64,
        start: impl FnOnce() -> Result<Start, E>,
    ) -> Result<Membership, E> {
        let subscriber = || Subscriber {
            connection: connection.clone(),
            subscription,
        };
        if let Some(joined) = self.join_running(&key, subscriber()) {
            return Ok(joined);
        }
        let Start {
            shareable,
            responses,
        } = start()?;
        let execution = Arc::new(Execution {
            key: shareable.then(|| Arc::new(key)),
            subscribers: Mutex::default(),
            task: Mutex::default(),
        });
        // Nobody else knows it yet: it is open.
        let token = execution.join(subscriber()).unwrap_or_default();
        if let Some(key) = &execution.key {
            let mut executions = lock(&self.executions);
            // Someone may have started the same execution meanwhile: join theirs.
            if let Some(running) = executions.get(key).and_then(Weak::upgrade)
                && let Some(token) = running.join(subscriber())
            {
                return Ok(Membership {
                    execution: running,
                    token,
                });
            }
            executions.insert(key.clone(), Arc::downgrade(&execution));
        }
        // The execution reads the database for its tenant (see `db::tenant`).
        let task =
            crate::db::tenant::spawn_in_scope(run(self.clone(), execution.clone(), responses));
        *lock(&execution.task) = Some(task.abort_handle());
        Ok(Membership { execution, token })
    }

    /// Joins the running shareable execution of `key`, if there is an open one.
    fn join_running(&self, key: &Key, subscriber: Subscriber) -> Option<Membership> {
        let execution = lock(&self.executions).get(key).and_then(Weak::upgrade)?;
        let token = execution.join(subscriber)?;
        Some(Membership { execution, token })
    }

    /// Removes `execution` from the running ones, if it is still the one under its key.
    fn forget(&self, execution: &Execution) {
        let Some(key) = &execution.key else {
            return;
        };
        let mut executions = lock(&self.executions);
        if executions
            .get(key)
            .is_some_and(|running| std::ptr::eq(running.as_ptr(), execution))
        {
            executions.remove(key);
        }
    }
}

/// The errors sent when an execution's task ends without finishing it (it panicked).
const INTERNAL_ERRORS: &str = r#"[{"message":"internal error","extensions":{"code":"INTERNAL"}}]"#;

/// Finishes an execution whose task ends without doing so (it panicked): its subscribers
/// get an `INTERNAL` error rather than waiting forever, and newcomers start a new one. An
/// execution that finished, or lost its last subscriber, is left as it is.
struct FinishOnDrop {
    registry: Registry,
    execution: Arc<Execution>,
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if !lock(&self.execution.subscribers).closed {
            self.execution
                .finish(&self.registry, Event::Error(INTERNAL_ERRORS.to_owned()));
        }
    }
}

/// Runs one execution: each response serialised once and sent to every subscriber.
async fn run(
    registry: Registry,
    execution: Arc<Execution>,
    mut responses: BoxStream<'static, async_graphql::Response>,
) {
    let _unfinished = FinishOnDrop {
        registry: registry.clone(),
        execution: execution.clone(),
    };
    let mut first = true;
    while let Some(response) = responses.next().await {
        if first && is_request_error(&response) {
            let errors = with_codes(response.errors, "GRAPHQL_VALIDATION_FAILED");
            let errors = serde_json::to_string(&errors).unwrap_or_else(|err| {
                tracing::error!(%err, "cannot serialise subscription errors");
                "[]".into()
            });
            execution.finish(&registry, Event::Error(errors));
            return;
        }
        first = false;
        match serde_json::to_string(&response) {
            Ok(payload) => execution.broadcast(Event::Next(payload)),
            Err(err) => tracing::error!(%err, "cannot serialise a subscription result"),
        }
    }
    execution.finish(&registry, Event::Complete);
}

/// Whether the operation that runs selects only shareable root fields.
pub(crate) fn shareable(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let Some(operation) = super::operation(document, operation_name) else {
        return false;
    };
    let items = &operation.selection_set.node.items;
    !items.is_empty()
        && items.iter().all(|item| match &item.node {
            Selection::Field(field) => SHAREABLE_FIELDS.contains(&field.node.name.node.as_str()),
            Selection::FragmentSpread(_) | Selection::InlineFragment(_) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::serve::test_documents::parse;

    #[test]
    fn only_post_updated_executions_are_shared() {
        assert!(shareable(
            &parse("subscription($id: ID) { postUpdated(id: $id) { id } }"),
            None
        ));
        assert!(!shareable(
            &parse("subscription { queueStatsUpdated { ready } }"),
            None
        ));
        assert!(!shareable(
            &parse("subscription { postUpdated { id } queueStatsUpdated { ready } }"),
            None
        ));
        let two = parse("subscription A { postUpdated { id } } subscription B { x }");
        assert!(shareable(&two, Some("A")));
        assert!(!shareable(&two, Some("B")));
        assert!(!shareable(&two, None));
    }

    #[tokio::test]
    async fn one_key_runs_one_execution_until_its_last_subscriber_leaves() {
        let registry = Registry::default();
        let actor = |tenant: &str| Actor {
            user_id: "u".into(),
            tenant_id: tenant.into(),
            roles: Vec::new(),
            operator: false,
        };
        let request = async_graphql::Request::new("subscription { postUpdated { id } }");
        let (results, responses) = mpsc::unbounded_channel::<async_graphql::Response>();
        let start = move || {
            Ok::<_, &str>(Start {
                shareable: true,
                responses: tokio_stream::wrappers::UnboundedReceiverStream::new(responses).boxed(),
            })
        };
        let (to_a, mut a) = mpsc::channel(8);
        let (to_b, mut b) = mpsc::channel(8);
        let first = registry
            .subscribe(Key::new(&actor("t"), &request), to_a, 1, start)
            .expect("started");
        let second = registry
            .subscribe(Key::new(&actor("t"), &request), to_b, 7, || {
                Err("a second execution")
            })
            .expect("joined");
        // Another tenant never shares it.
        let (to_c, _c) = mpsc::channel(8);
        assert_eq!(
            registry
                .subscribe(Key::new(&actor("other"), &request), to_c, 1, || {
                    Err("a second execution")
                })
                .err(),
            Some("a second execution")
        );

        results
            .send(async_graphql::Response::new(async_graphql::Value::Null))
            .expect("running");
        for (receiver, number) in [(&mut a, 1), (&mut b, 7)] {
            let (got, event) = receiver.recv().await.expect("delivered");
            assert_eq!(got, number);
            assert_eq!(
                event.message("x"),
                r#"{"id":"x","type":"next","payload":{"data":null}}"#
            );
        }
        first.leave(&registry);
        assert_eq!(lock(&registry.executions).len(), 1);
        second.leave(&registry);
        assert!(lock(&registry.executions).is_empty());
    }

    #[tokio::test]
    async fn a_panicked_execution_ends_with_an_error_and_is_not_joined() {
        let registry = Registry::default();
        let actor = Actor {
            user_id: "u".into(),
            tenant_id: "t".into(),
            roles: Vec::new(),
            operator: false,
        };
        let request = async_graphql::Request::new("subscription { postUpdated { id } }");
        let panicking = || {
            Ok::<_, &str>(Start {
                shareable: true,
                responses: futures_util::stream::poll_fn(
                    |_| -> std::task::Poll<Option<async_graphql::Response>> {
                        panic!("a resolver bug")
                    },
                )
                .boxed(),
            })
        };
        let (to_a, mut a) = mpsc::channel(8);
        let _first = registry
            .subscribe(Key::new(&actor, &request), to_a, 3, panicking)
            .expect("started");
        let (number, event) = tokio::time::timeout(std::time::Duration::from_secs(5), a.recv())
            .await
            .expect("told, not left waiting")
            .expect("told");
        assert_eq!(number, 3);
        assert_eq!(
            event.message("s"),
            format!(r#"{{"id":"s","type":"error","payload":{INTERNAL_ERRORS}}}"#)
        );
        assert!(lock(&registry.executions).is_empty());
        // A newcomer starts its own execution.
        let (to_b, _b) = mpsc::channel(8);
        assert_eq!(
            registry
                .subscribe(Key::new(&actor, &request), to_b, 1, || Err(
                    "a new execution"
                ))
                .err(),
            Some("a new execution")
        );
    }

    #[test]
    fn messages_carry_the_escaped_id() {
        assert_eq!(
            Event::Next(r#"{"data":null}"#.into()).message("a\"b"),
            r#"{"id":"a\"b","type":"next","payload":{"data":null}}"#
        );
        assert_eq!(
            Event::Complete.message("1"),
            r#"{"id":"1","type":"complete"}"#
        );
    }
}
