//! Subscriptions over WebSocket with the `graphql-transport-ws` protocol (the graphql-ws
//! library's), implemented here because async-graphql's closes with the wrong codes and
//! never pings:
//!
//! - `connection_init` carries the token (`{"Authorization": "Bearer …"}` or
//!   `{"token": "…"}`); a refused token closes 4403, a second init 4429, no init within
//!   the timeout 4408;
//! - `subscribe` before the ack closes 4401, a subscription id already running 4409, a
//!   malformed message 4400; more than [`MAX_SUBSCRIPTIONS`] at once on one connection
//!   are answered with an `error` (`TOO_MANY_SUBSCRIPTIONS`); so is a `subscribe` over
//!   the tenant's rate limits (`RATE_LIMITED`, see [`super::limits`]);
//! - the connection is closed 4403 when the token it was opened with expires;
//! - a request that cannot run (parse, validation) is answered with an `error` message;
//! - the server sends `ping` every interval and closes a connection whose `pong` does not
//!   come back in time.
//!
//! The retired `graphql-ws` (subscriptions-transport-ws) protocol is refused (4406).
//!
//! One task serves a connection and all its subscriptions; their results come from
//! executions shared between subscribers (see [`super::fanout`]).

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::fanout::{self, Delivery, Membership, Start};
use super::http::{Endpoint, parameters, with_codes};
use super::introspection;
use super::limits::Caller;
use crate::domain::actor::Actor;
use crate::graphql::schema::Auth;

/// The sub-protocol this module speaks.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// The retired `graphql-ws` (subscriptions-transport-ws) protocol, which Herald refuses
/// (see [`refuse_retired_protocol`]).
pub const RETIRED_PROTOCOL: &str = "graphql-ws";

/// Longest close reason a close frame can carry.
const MAX_REASON_BYTES: usize = 123;

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {
        #[serde(default, rename = "payload")]
        _payload: Option<Value>,
    },
    Subscribe {
        id: String,
        payload: Value,
    },
    Complete {
        id: String,
    },
}

/// Results waiting for a connection beyond this are skipped for it (a slow reader).
const DELIVERY_BUFFER: usize = 32;

/// Most subscriptions one connection may run at once.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// Why the server closes a connection.
struct Close(u16, String);

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason: String = reason.into();
        if reason.len() > MAX_REASON_BYTES {
            let mut end = MAX_REASON_BYTES;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Self(code, reason)
    }
}

/// The bearer credential of a `connection_init` payload: `{"Authorization": "Bearer …"}`
/// (any case) or `{"token": "…"}`.
pub(crate) fn init_authorization(payload: &Value) -> Option<String> {
    let object = payload.as_object()?;
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
        .or_else(|| {
            object
                .get("token")
                .and_then(|v| v.as_str())
                .map(|t| format!("Bearer {t}"))
        })
}

/// One running subscription of a connection.
struct Active {
    id: Box<str>,
    /// The connection's number for it, which results come tagged with.
    number: u64,
    membership: Membership,
}

/// One connection's state.
struct Connection {
    endpoint: Endpoint,
    deliveries: mpsc::Sender<Delivery>,
    actor: Option<Actor>,
    /// When the connection's token stops being accepted, once initialised.
    expires: Option<Instant>,
    /// At most [`MAX_SUBSCRIPTIONS`]: a list is smaller and as fast as a map.
    subscriptions: Vec<Active>,
    numbers: u64,
}

/// Closes a connection that asked for [`RETIRED_PROTOCOL`] with 4406 (as the graphql-ws
/// library's servers do for a sub-protocol they do not speak) and a reason naming the
/// protocol to use.
pub async fn refuse_retired_protocol(mut socket: WebSocket) {
    let frame = CloseFrame {
        code: 4406,
        reason: "Subprotocol not acceptable: graphql-ws is retired, use graphql-transport-ws"
            .into(),
    };
    // The peer may already be gone; nothing more to do then.
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Serves one `graphql-transport-ws` connection until either side closes it.
pub async fn serve(socket: WebSocket, endpoint: Endpoint) {
    let (mut sink, mut stream) = socket.split();
    let (deliveries, mut results) = mpsc::channel::<Delivery>(DELIVERY_BUFFER);
    let config = endpoint.config.clone();
    let mut connection = Connection {
        endpoint,
        deliveries,
        actor: None,
        expires: None,
        subscriptions: Vec::new(),
        numbers: 0,
    };
    // Armed once the connection is initialised, at its token's expiry.
    let expiry = sleep_until(Instant::now() + config.ws_init_timeout);
    tokio::pin!(expiry);
    // One timer, re-armed rather than rebuilt on every message: the init deadline, then
    // the next ping, then (after a ping) the pong deadline.
    let mut next_ping = Instant::now() + config.ws_ping_interval;
    let mut waiting_for_pong = false;
    let timer = sleep_until(Instant::now() + config.ws_init_timeout);
    tokio::pin!(timer);
    let close = loop {
        tokio::select! {
            () = &mut expiry, if connection.expires.is_some() => {
                tracing::debug!("closing a WebSocket whose token expired");
                break Some(Close::new(4403, "Token expired"));
            }
            () = &mut timer => {
                if connection.actor.is_none() {
                    break Some(Close::new(4408, "Connection initialisation timeout"));
                }
                if waiting_for_pong {
                    tracing::debug!("closing a WebSocket that did not answer ping");
                    break Some(Close::new(1001, "Keep-alive timeout: no pong"));
                }
                if sink.send(text(&json!({"type": "ping"}))).await.is_err() {
                    break None;
                }
                waiting_for_pong = true;
                next_ping = Instant::now() + config.ws_ping_interval;
                timer.as_mut().reset(Instant::now() + config.ws_pong_timeout);
            }
            Some((number, event)) = results.recv() => {
                let Some(message) = connection.deliver(number, &event) else {
                    continue;
                };
                if sink.send(Message::Text(message.into())).await.is_err() {
                    break None;
                }
            }
            frame = stream.next() => {
                let message = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        break Some(Close::new(4400, "Binary messages are not supported"));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                };
                let message = match serde_json::from_str::<ClientMessage>(message.as_str()) {
                    Ok(message) => message,
                    Err(err) => break Some(Close::new(4400, format!("Invalid message received: {err}"))),
                };
                if waiting_for_pong && matches!(message, ClientMessage::Pong { .. }) {
                    waiting_for_pong = false;
                    timer.as_mut().reset(next_ping);
                }
                let authenticated = connection.actor.is_some();
                let handled = connection.handle(message);
                if !authenticated && connection.actor.is_some() {
                    timer.as_mut().reset(next_ping);
                    if let Some(at) = connection.expires {
                        expiry.as_mut().reset(at);
                    }
                }
                match handled {
                    Ok(Some(reply)) => {
                        if sink.send(text(&reply)).await.is_err() {
                            break None;
                        }
                    }
                    Ok(None) => {}
                    Err(close) => break Some(close),
                }
            }
        }
    };
    for active in connection.subscriptions.drain(..) {
        active.membership.leave(&connection.endpoint.subscriptions);
    }
    if let Some(Close(code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        // The peer may already be gone; nothing more to do then.
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    }
}

/// The instant of `unix_seconds` on the monotonic clock: now when it has passed, at most
/// a year ahead (so a far-off expiry cannot overflow the clock).
fn instant_at(unix_seconds: i64) -> Instant {
    const YEAR_MS: i64 = 366 * 86_400 * 1000;
    let now = chrono::Utc::now().timestamp_millis();
    let left = unix_seconds
        .saturating_mul(1000)
        .saturating_sub(now)
        .clamp(0, YEAR_MS);
    Instant::now() + std::time::Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

fn text(message: &Value) -> Message {
    Message::Text(message.to_string().into())
}

impl Connection {
    /// Acts on one client message: a reply to send, nothing, or a reason to close.
    fn handle(&mut self, message: ClientMessage) -> Result<Option<Value>, Close> {
        match message {
            ClientMessage::ConnectionInit { payload } => {
                // A failed initialisation closes the connection, so a second one here
                // follows a successful one.
                if self.actor.is_some() {
                    return Err(Close::new(4429, "Too many initialisation requests"));
                }
                let credential = payload.as_ref().and_then(init_authorization);
                match self
                    .endpoint
                    .verifier
                    .verify_header_until(credential.as_deref())
                {
                    Ok((actor, until)) => {
                        self.actor = Some(actor);
                        self.expires = Some(instant_at(until));
                        Ok(Some(json!({"type": "connection_ack"})))
                    }
                    Err(err) => {
                        tracing::debug!(%err, "WebSocket connection_init refused");
                        Err(Close::new(4403, "Forbidden"))
                    }
                }
            }
            ClientMessage::Ping { payload } => Ok(Some(match payload {
                Some(payload) => json!({"type": "pong", "payload": payload}),
                None => json!({"type": "pong"}),
            })),
            ClientMessage::Pong { .. } => Ok(None),
            ClientMessage::Subscribe { id, payload } => self.subscribe(id, payload),
            ClientMessage::Complete { id } => {
                if let Some(index) = self.subscriptions.iter().position(|a| *a.id == id) {
                    let active = self.subscriptions.swap_remove(index);
                    active.membership.leave(&self.endpoint.subscriptions);
                }
                Ok(None)
            }
        }
    }

    /// The message that delivers `event` to subscription `number`, if it still runs.
    fn deliver(&mut self, number: u64, event: &fanout::Event) -> Option<String> {
        let index = self.subscriptions.iter().position(|a| a.number == number)?;
        let message = event.message(&self.subscriptions[index].id);
        if event.is_final() {
            // The execution has already dropped its subscribers.
            self.subscriptions.swap_remove(index);
        }
        Some(message)
    }

    fn subscribe(&mut self, id: String, payload: Value) -> Result<Option<Value>, Close> {
        let Some(actor) = self.actor.clone() else {
            return Err(Close::new(4401, "Unauthorized"));
        };
        if self.subscriptions.iter().any(|a| *a.id == id) {
            return Err(Close::new(
                4409,
                format!("Subscriber for {id} already exists"),
            ));
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Ok(Some(error_message(
                &id,
                json!([{
                    "message": format!(
                        "at most {MAX_SUBSCRIPTIONS} subscriptions may run on one connection"
                    ),
                    "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"},
                }]),
            )));
        }
        let mut request = match parameters(payload) {
            Ok(request) => request,
            Err(message) => {
                return Ok(Some(error_message(
                    &id,
                    json!([{"message": message, "extensions": {"code": "BAD_REQUEST"}}]),
                )));
            }
        };
        let caller = Caller::tenant(&actor);
        let limits = &self.endpoint.limits;
        let operation_name = request.operation_name.clone();
        let limited = match limits.requests(&caller, 1) {
            Err(limited) => Some(limited),
            // A mutation runs here too: its expensive fields count as over HTTP.
            Ok(()) => match self.endpoint.documents.parse(&mut request) {
                Err(err) => {
                    let errors = json!(with_codes(vec![err], "GRAPHQL_PARSE_FAILED"));
                    return Ok(Some(error_message(&id, errors)));
                }
                Ok(document) => limits
                    .mutations(&caller, document, operation_name.as_deref())
                    .err(),
            },
        };
        if let Some(limited) = limited {
            return Ok(Some(error_message(&id, json!([limited.error()]))));
        }
        self.numbers += 1;
        let number = self.numbers;
        let key = fanout::Key::new(&actor, &request);
        let endpoint = &self.endpoint;
        let tenant = actor.tenant_id.clone();
        let joined = crate::db::tenant::sync_scope(&tenant, || {
            endpoint
                .subscriptions
                .subscribe(key, self.deliveries.clone(), number, || {
                    let operation_name = request.operation_name.clone();
                    let shareable = match endpoint.documents.parse(&mut request) {
                        Err(err) => {
                            return Err(json!(with_codes(vec![err], "GRAPHQL_PARSE_FAILED")));
                        }
                        Ok(document)
                            if !endpoint.config.introspection
                                && introspection::requested(document) =>
                        {
                            return Err(json!([introspection::refused()]));
                        }
                        Ok(document) => fanout::shareable(document, operation_name.as_deref()),
                    };
                    Ok(Start {
                        shareable,
                        responses: endpoint
                            .schema
                            .execute_stream(request.data(Auth(Ok(actor)))),
                    })
                })
        });
        match joined {
            Ok(membership) => {
                self.subscriptions.push(Active {
                    id: id.into(),
                    number,
                    membership,
                });
                Ok(None)
            }
            Err(errors) => Ok(Some(error_message(&id, errors))),
        }
    }
}

fn error_message(id: &str, errors: Value) -> Value {
    json!({"id": id, "type": "error", "payload": errors})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let Close(code, reason) = Close::new(4400, "é".repeat(200));
        assert_eq!(code, 4400);
        assert!(reason.len() <= MAX_REASON_BYTES);
    }

    #[test]
    fn the_token_comes_from_authorization_or_token() {
        assert_eq!(
            init_authorization(&json!({"authorization": "Bearer a"})).as_deref(),
            Some("Bearer a")
        );
        assert_eq!(
            init_authorization(&json!({"token": "b"})).as_deref(),
            Some("Bearer b")
        );
        assert_eq!(init_authorization(&json!([])), None);
    }
}
