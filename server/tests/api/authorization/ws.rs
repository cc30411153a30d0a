//! The matrix over WebSocket: subscriptions over graphql-transport-ws (the retired
//! graphql-ws protocol is refused to everyone, tokens or not).

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::matrix::Matrix;
use super::table::{Case, Class, Missing, Victim};
use super::{Expect, assert_no_markers, expected, root_name};
use crate::harness::{Socket, TestApp, ws_send};

/// The WebSocket protocol Herald implements.
const TRANSPORT_WS: &str = "graphql-transport-ws";
/// The retired protocol (subscriptions-transport-ws), closed 4406 before any message.
const RETIRED_WS: &str = "graphql-ws";

/// A socket to `app` speaking `protocol`, before `connection_init`.
async fn open(app: &TestApp, protocol: &str) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", app.base)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().expect("header"));
    tokio_tungstenite::connect_async(request)
        .await
        .expect("connect")
        .0
}

/// The next message within `wait`, answering pings; `Err(code)` when the server closes.
async fn next_within(socket: &mut Socket, wait: Duration) -> Option<Result<Value, u16>> {
    loop {
        let frame = tokio::time::timeout(wait, socket.next()).await.ok()??;
        match frame.expect("frame") {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(&text).expect("json");
                if message["type"] == "ping" {
                    ws_send(socket, json!({"type": "pong"})).await;
                    continue;
                }
                return Some(Ok(message));
            }
            Message::Close(frame) => return Some(Err(frame.map_or(1005, |f| u16::from(f.code)))),
            _ => continue,
        }
    }
}

/// A socket initialised with `token` (acknowledged).
async fn connected(m: &Matrix, token: &str) -> Socket {
    m.calls.fetch_add(1, Ordering::Relaxed);
    let mut socket = open(&m.app, TRANSPORT_WS).await;
    ws_send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    let ack = next_within(&mut socket, Duration::from_secs(10)).await;
    assert!(
        matches!(&ack, Some(Ok(m)) if m["type"] == "connection_ack"),
        "{ack:?}"
    );
    socket
}

async fn subscribe(m: &Matrix, socket: &mut Socket, id: &str, case: &Case, variables: &Value) {
    m.calls.fetch_add(1, Ordering::Relaxed);
    ws_send(
        socket,
        json!({"id": id, "type": "subscribe",
               "payload": {"query": case.document, "variables": variables}}),
    )
    .await;
}

/// The first answer to a subscription: its `data`, or the code of its error.
async fn first_answer(socket: &mut Socket, context: &str) -> Result<Value, String> {
    let message = next_within(socket, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{context}: no answer within 10 s"))
        .unwrap_or_else(|code| panic!("{context}: closed {code}"));
    let errors = match message["type"].as_str() {
        Some("next") if message["payload"].get("errors").is_none() => {
            return Ok(message["payload"]["data"].clone());
        }
        Some("next") => {
            assert!(
                message["payload"]["data"].is_null(),
                "{context}: data with errors: {message}"
            );
            &message["payload"]["errors"]
        }
        Some("error") => &message["payload"],
        _ => panic!("{context}: unexpected {message}"),
    };
    Err(errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// One subscription case: every caller, then the rightful one.
pub(super) async fn run(m: &Matrix, case: &Case, victim: &Victim) {
    let variables = (case.variables)(victim);
    let before = m.victim_state().await;
    let markers = m.victim_markers().await;
    // Sockets kept open for the silent subscriptions: they must see nothing of the
    // victim's change made below.
    let mut silent = Vec::new();
    for caller in &m.callers {
        let Some(expect) = expected(case.class, caller) else {
            continue;
        };
        let context = format!(
            "{}.{} ({:?}) as {}",
            root_name(case.root),
            case.field,
            case.class,
            caller.name
        );
        let Some(token) = &caller.token else {
            assert_eq!(expect, Expect::Unauthenticated);
            // Without `connection_init`, a subscription closes the socket 4401; an init
            // without a token closes it 4403.
            let mut socket = open(&m.app, TRANSPORT_WS).await;
            subscribe(m, &mut socket, "anonymous", case, &variables).await;
            let closed = next_within(&mut socket, Duration::from_secs(10)).await;
            assert!(matches!(closed, Some(Err(4401))), "{context}: {closed:?}");
            let mut socket = open(&m.app, TRANSPORT_WS).await;
            m.calls.fetch_add(1, Ordering::Relaxed);
            ws_send(
                &mut socket,
                json!({"type": "connection_init", "payload": {}}),
            )
            .await;
            let closed = next_within(&mut socket, Duration::from_secs(10)).await;
            assert!(matches!(closed, Some(Err(4403))), "{context}: {closed:?}");
            // The retired protocol: closed 4406 whatever is sent.
            let mut socket = open(&m.app, RETIRED_WS).await;
            m.calls.fetch_add(1, Ordering::Relaxed);
            let closed = next_within(&mut socket, Duration::from_secs(10)).await;
            assert!(
                matches!(closed, Some(Err(4406))),
                "{context}, retired protocol: {closed:?}"
            );
            continue;
        };
        let mut socket = connected(m, token).await;
        subscribe(m, &mut socket, "case", case, &variables).await;
        match expect {
            Expect::Forbidden => {
                assert_eq!(
                    first_answer(&mut socket, &context).await,
                    Err("FORBIDDEN".to_owned()),
                    "{context}"
                );
            }
            Expect::OwnView => {
                let data = first_answer(&mut socket, &context)
                    .await
                    .unwrap_or_else(|code| panic!("{context}: {code}"));
                if let Some(foreign) = case.foreign {
                    assert_eq!(data, foreign(), "{context}: not its own view");
                }
                assert_no_markers(&data, &markers, &context);
            }
            Expect::Silent => {
                // Proves the subscription runs: the caller's own posts reach the socket
                // on a second subscription, started after this one.
                let own = json!({"query": "subscription { postUpdated { id } }"});
                ws_send(
                    &mut socket,
                    json!({"id": "own", "type": "subscribe", "payload": own}),
                )
                .await;
                loop {
                    m.gql(
                        Some(token),
                        "mutation { createPost(input: {content: \"probe\", platforms: [\"x\"]}) { id } }",
                        json!({}),
                    )
                    .await;
                    match next_within(&mut socket, Duration::from_millis(200)).await {
                        Some(Ok(message)) if message["id"] == "own" => break,
                        Some(other) => panic!("{context}: unexpected {other:?}"),
                        None => continue,
                    }
                }
                silent.push((context, socket));
            }
            other => panic!("{context}: {other:?} is not a subscription's answer"),
        }
    }

    // The rightful caller, then (for silent cases) a change of the victim's that must
    // reach it and nobody else.
    let context = format!(
        "{}.{} as its rightful caller",
        root_name(case.root),
        case.field
    );
    let mut socket = connected(m, &m.rightful(case.class)).await;
    subscribe(m, &mut socket, "case", case, &variables).await;
    if matches!(case.class, Class::TenantReadById(Missing::Silent)) {
        let mut received = None;
        for attempt in 0..50 {
            m.ok(
                &m.admin,
                "mutation($id: ID!, $n: String) { updatePost(id: $id, input: {notes: $n}) { id } }",
                json!({"id": victim.post, "n": format!("change {attempt}")}),
            )
            .await;
            if let Some(message) = next_within(&mut socket, Duration::from_millis(200)).await {
                received = Some(message.unwrap_or_else(|code| panic!("{context}: closed {code}")));
                break;
            }
        }
        let message = received.unwrap_or_else(|| panic!("{context}: no update delivered"));
        assert_eq!(
            message["payload"]["data"][case.field]["id"], victim.post,
            "{context}: {message}"
        );
        for (context, socket) in &mut silent {
            // Late events of the caller's own probes may still come; nothing else may.
            while let Some(message) = next_within(socket, Duration::from_millis(300)).await {
                assert!(
                    matches!(&message, Ok(m) if m["id"] == "own"),
                    "{context}: delivered {message:?}"
                );
            }
        }
    } else {
        let data = first_answer(&mut socket, &context)
            .await
            .unwrap_or_else(|code| panic!("{context}: {code}"));
        if let Some(foreign) = case.foreign {
            assert_ne!(
                data,
                foreign(),
                "{context}: the owner's answer is an empty tenant's"
            );
        }
        assert_eq!(
            m.victim_state().await,
            before,
            "the subscriptions changed the victim's state"
        );
    }
}
