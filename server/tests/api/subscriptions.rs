//! `postUpdated` over graphql-transport-ws: authenticated in `connection_init`, delivers the
//! caller's post changes in order, never another tenant's; every close code of the
//! protocol, keep-alive pings, and the refusal of the retired `graphql-ws` protocol.

use std::time::Duration;

use herald_server::config::GraphqlConfig;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{TestApp, days_from_now};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket speaking `protocol`, before `connection_init`.
async fn open(app: &TestApp, protocol: &str) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", app.base)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().expect("header"));
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        protocol,
        "negotiated sub-protocol"
    );
    socket
}

/// Waits for the server to close the socket; returns the close code and reason.
async fn closed(socket: &mut Socket) -> (u16, String) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = socket.next().await {
            match frame.expect("frame") {
                Message::Close(Some(frame)) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Message::Close(None) => return (u16::from(CloseCode::Status), String::new()),
                Message::Text(text) if text.contains("\"ping\"") => continue,
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
        panic!("the stream ended without a close frame");
    })
    .await
    .expect("closed within 10 s")
}

fn init(token: &str) -> Value {
    json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
}

async fn connect(app: &TestApp, token: &str) -> Socket {
    let mut socket = open(app, "graphql-transport-ws").await;
    send(&mut socket, init(token)).await;
    assert_eq!(next_json(&mut socket).await["type"], "connection_ack");
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

/// The next message, skipping events about [`until_subscribed`]'s probe posts.
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = next_within(socket, Duration::from_secs(10))
            .await
            .expect("a message within 10 s");
        if !is_probe(&message) {
            return message;
        }
    }
}

/// The next message within `wait`, if one comes.
async fn next_within(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(wait, socket.next())
            .await
            .ok()?
            .expect("stream open")
            .expect("frame");
        match message {
            Message::Text(text) => return Some(serde_json::from_str(&text).expect("json")),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Content of the posts [`until_subscribed`] creates.
const PROBE: &str = "probe";

fn is_probe(message: &Value) -> bool {
    message["payload"]["data"]["postUpdated"]["content"] == PROBE
}

/// Waits until the subscriptions `ids` of each socket of `subscribers` receive the events
/// of `token`'s tenant, by creating probe posts until each has seen one:
/// graphql-transport-ws does not acknowledge a subscription.
async fn until_subscribed(app: &TestApp, token: &str, subscribers: &mut [(&mut Socket, &[&str])]) {
    let mut waiting: Vec<Vec<&str>> = subscribers.iter().map(|(_, ids)| ids.to_vec()).collect();
    for _ in 0..50 {
        app.create_post(token, json!({"content": PROBE, "platforms": ["x"]}))
            .await;
        for ((socket, _), waiting) in subscribers.iter_mut().zip(waiting.iter_mut()) {
            while !waiting.is_empty()
                && let Some(message) = next_within(socket, Duration::from_millis(100)).await
            {
                if message["type"] == "ping" {
                    send(socket, json!({"type": "pong"})).await;
                    continue;
                }
                assert!(is_probe(&message), "only probes yet: {message}");
                waiting.retain(|id| message["id"] != *id);
            }
        }
        if waiting.iter().all(Vec::is_empty) {
            return;
        }
    }
    panic!("subscriptions not running after 50 probes");
}

#[tokio::test]
async fn post_updates_arrive_in_order_and_only_for_the_tenant() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &[]);
    let mut socket = connect(&app, &alice).await;
    send(&mut socket, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { postUpdated { content status version } }"}})).await;
    until_subscribed(&app, &alice, &mut [(&mut socket, &["1"])]).await;

    app.create_post(&bob, json!({"content": "bob's", "platforms": ["x"]}))
        .await;
    let post = app
        .create_post(&alice, json!({"content": "alice's", "platforms": ["x"]}))
        .await;
    let id = post["id"].as_str().expect("id");
    app.ok(
        &alice,
        "mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id } }",
        json!({"id": id, "at": days_from_now(1)}),
    )
    .await;
    app.ok(
        &alice,
        "mutation($id: ID!) { unschedulePost(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;

    let mut seen = Vec::new();
    for _ in 0..3 {
        let message = next_json(&mut socket).await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], "1");
        seen.push(message["payload"]["data"]["postUpdated"].clone());
    }
    assert_eq!(
        seen,
        vec![
            json!({"content": "alice's", "status": "DRAFT", "version": 1}),
            json!({"content": "alice's", "status": "SCHEDULED", "version": 2}),
            json!({"content": "alice's", "status": "DRAFT", "version": 3}),
        ]
    );
}

/// Subscribers with the same document share one execution: each still gets every event
/// of its own tenant, in order, and one leaving does not stop the others.
#[tokio::test]
async fn shared_executions_deliver_each_tenant_its_own_posts() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &[]);
    let subscribe = |id: &str| {
        json!({"id": id, "type": "subscribe", "payload": {
            "query": "subscription { postUpdated { content version } }"}})
    };
    let mut first = connect(&app, &alice).await;
    let mut second = connect(&app, &alice).await;
    let mut leaving = connect(&app, &alice).await;
    let mut other_tenant = connect(&app, &bob).await;
    send(&mut first, subscribe("a")).await;
    // Two subscriptions of one connection to the same execution.
    send(&mut first, subscribe("b")).await;
    send(&mut second, subscribe("a")).await;
    send(&mut leaving, subscribe("a")).await;
    send(&mut other_tenant, subscribe("a")).await;
    send(&mut leaving, json!({"id": "a", "type": "complete"})).await;
    // A connection's messages are handled in order: the pong means `complete` was.
    send(&mut leaving, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut leaving).await, json!({"type": "pong"}));
    until_subscribed(
        &app,
        &alice,
        &mut [(&mut first, &["a", "b"]), (&mut second, &["a"])],
    )
    .await;
    until_subscribed(&app, &bob, &mut [(&mut other_tenant, &["a"])]).await;

    let post = app
        .create_post(&alice, json!({"content": "alice's", "platforms": ["x"]}))
        .await;
    app.create_post(&bob, json!({"content": "bob's", "platforms": ["x"]}))
        .await;
    app.ok(
        &alice,
        "mutation($id: ID!) { updatePost(id: $id, input: {notes: \"n\"}) { id } }",
        json!({"id": post["id"]}),
    )
    .await;

    let alices = [
        json!({"content": "alice's", "version": 1}),
        json!({"content": "alice's", "version": 2}),
    ];
    let mut received = Vec::new();
    for _ in 0..4 {
        let message = next_json(&mut first).await;
        assert_eq!(message["type"], "next", "{message}");
        received.push((
            message["id"].clone(),
            message["payload"]["data"]["postUpdated"].clone(),
        ));
    }
    for id in ["a", "b"] {
        let mine: Vec<_> = received
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, post)| post.clone())
            .collect();
        assert_eq!(mine, alices, "subscription {id}");
    }
    for expected in &alices {
        let message = next_json(&mut second).await;
        assert_eq!(message["payload"]["data"]["postUpdated"], *expected);
    }
    let message = next_json(&mut other_tenant).await;
    assert_eq!(
        message["payload"]["data"]["postUpdated"],
        json!({"content": "bob's", "version": 1})
    );
    send(&mut leaving, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut leaving).await, json!({"type": "pong"}));
    send(&mut other_tenant, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut other_tenant).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn connection_without_valid_token_is_refused_with_4403() {
    let app = TestApp::spawn().await;
    let mut socket = open(&app, "graphql-transport-ws").await;
    send(&mut socket, init("forged")).await;
    assert_eq!(closed(&mut socket).await, (4403, "Forbidden".into()));
}

const SUBSCRIBE: &str = "subscription { postUpdated { id } }";

#[tokio::test]
async fn protocol_violations_close_with_the_spec_codes() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);

    let mut socket = open(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    )
    .await;
    assert_eq!(closed(&mut socket).await, (4401, "Unauthorized".into()));

    let mut socket = connect(&app, &token).await;
    send(&mut socket, init(&token)).await;
    assert_eq!(closed(&mut socket).await.0, 4429);

    let mut socket = connect(&app, &token).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    )
    .await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    )
    .await;
    assert_eq!(
        closed(&mut socket).await,
        (4409, "Subscriber for 1 already exists".into())
    );

    for invalid in [
        Message::Text("not json".into()),
        Message::Text(json!({"type": "next", "id": "1"}).to_string().into()),
        Message::Text(
            json!({"type": "subscribe", "payload": {}})
                .to_string()
                .into(),
        ),
        Message::Binary(vec![1, 2, 3].into()),
    ] {
        let mut socket = connect(&app, &token).await;
        socket.send(invalid.clone()).await.expect("send");
        let (code, reason) = closed(&mut socket).await;
        assert_eq!(code, 4400, "{invalid:?}: {reason}");
        assert!(reason.len() <= 123);
    }
}

#[tokio::test]
async fn init_timeout_closes_4408_and_dead_clients_are_reaped() {
    let app = TestApp::spawn_with_graphql(GraphqlConfig {
        ws_init_timeout: Duration::from_millis(300),
        ws_ping_interval: Duration::from_millis(200),
        ws_pong_timeout: Duration::from_millis(300),
        ..GraphqlConfig::default()
    })
    .await;
    let mut socket = open(&app, "graphql-transport-ws").await;
    assert_eq!(
        closed(&mut socket).await,
        (4408, "Connection initialisation timeout".into())
    );

    // A client that answers pings stays connected.
    let token = app.token("alice", None, &[]);
    let mut socket = connect(&app, &token).await;
    for _ in 0..3 {
        assert_eq!(next_json(&mut socket).await, json!({"type": "ping"}));
        send(&mut socket, json!({"type": "pong"})).await;
    }
    // The client pings too and gets pong.
    send(&mut socket, json!({"type": "ping", "payload": {"n": 1}})).await;
    loop {
        let message = next_json(&mut socket).await;
        if message["type"] == "pong" {
            assert_eq!(message["payload"], json!({"n": 1}));
            break;
        }
        send(&mut socket, json!({"type": "pong"})).await;
    }
    // One that does not is closed.
    let (code, _) = closed(&mut socket).await;
    assert_eq!(code, 1001);
}

#[tokio::test]
async fn request_errors_are_error_messages_and_subscriptions_complete() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let mut socket = connect(&app, &token).await;
    send(&mut socket, json!({"id": "v", "type": "subscribe", "payload": {"query": "subscription { noSuchField }"}})).await;
    let message = next_json(&mut socket).await;
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["id"], "v");
    assert_eq!(
        message["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );

    send(
        &mut socket,
        json!({"id": "p", "type": "subscribe", "payload": {"query": "subscription {"}}),
    )
    .await;
    let message = next_json(&mut socket).await;
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(
        message["payload"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );

    // A query over the socket: one `next`, then `complete`; its id may be reused after.
    for _ in 0..2 {
        send(
            &mut socket,
            json!({"id": "q", "type": "subscribe", "payload": {"query": "{ me { userId } }"}}),
        )
        .await;
        let message = next_json(&mut socket).await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["payload"]["data"]["me"]["userId"], "alice");
        assert_eq!(
            next_json(&mut socket).await,
            json!({"id": "q", "type": "complete"})
        );
    }
    // The client may complete a running subscription and reuse its id.
    send(
        &mut socket,
        json!({"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    )
    .await;
    send(&mut socket, json!({"id": "s", "type": "complete"})).await;
    send(
        &mut socket,
        json!({"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    )
    .await;
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut socket).await, json!({"type": "pong"}));
}

/// The retired `graphql-ws` protocol was served by async-graphql without the document
/// guard, deadlines, caps and token expiry above; it is refused with a reason instead.
#[tokio::test]
async fn the_retired_graphql_ws_protocol_is_refused_with_4406() {
    let app = TestApp::spawn().await;
    let mut socket = open(&app, "graphql-ws").await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4406);
    assert!(reason.contains("use graphql-transport-ws"), "{reason}");
}

/// A token whose accepted life (its `exp` plus the server's 30 s clock leeway) ends
/// `seconds` from now.
fn token_ending_in(app: &TestApp, user: &str, seconds: i64) -> String {
    let herald_server::config::JwtKey::Secret(secret) = &app.jwt.key else {
        panic!("the test server verifies HS256 tokens");
    };
    let claims = herald_server::auth::Claims {
        sub: user.into(),
        org: None,
        roles: Vec::new(),
        exp: chrono::Utc::now().timestamp() - 30 + seconds,
        nbf: None,
        iat: None,
        iss: None,
        aud: None,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("token")
}

#[tokio::test]
async fn a_connection_is_closed_when_its_token_expires() {
    let app = TestApp::spawn().await;
    let token = token_ending_in(&app, "alice", 2);
    let mut socket = connect(&app, &token).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    )
    .await;
    // Until then the connection works.
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut socket).await, json!({"type": "pong"}));
    assert_eq!(closed(&mut socket).await, (4403, "Token expired".into()));

    // A token that lives on keeps its connection past that point.
    let lasting = app.token("alice", None, &[]);
    let mut socket = connect(&app, &lasting).await;
    assert!(
        next_within(&mut socket, Duration::from_secs(3))
            .await
            .is_none(),
        "a valid token's connection stays open and quiet"
    );
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut socket).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn one_connection_runs_a_bounded_number_of_subscriptions() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let mut socket = connect(&app, &token).await;
    let cap = herald_server::graphql::serve::ws::MAX_SUBSCRIPTIONS;
    for id in 0..cap {
        send(
            &mut socket,
            json!({"id": id.to_string(), "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
        )
        .await;
    }
    send(
        &mut socket,
        json!({"id": "one-too-many", "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    )
    .await;
    let refused = next_json(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "one-too-many");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    // Completing one makes room for another.
    send(&mut socket, json!({"id": "0", "type": "complete"})).await;
    send(
        &mut socket,
        json!({"id": "room", "type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    )
    .await;
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut socket).await, json!({"type": "pong"}));
}
