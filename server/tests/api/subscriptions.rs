//! `postUpdated` over graphql-transport-ws: authenticated in `connection_init`, delivers the
//! caller's post changes in order, never another tenant's.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{TestApp, days_from_now};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, token: &str) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", app.base)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["type"], "connection_ack");
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("json"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

#[tokio::test]
async fn post_updates_arrive_in_order_and_only_for_the_tenant() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &[]);
    let mut socket = connect(&app, &alice).await;
    send(&mut socket, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { postUpdated { content status version } }"}})).await;
    // Give the server a moment to register the subscription before changes happen.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

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

#[tokio::test]
async fn connection_without_valid_token_is_refused() {
    let app = TestApp::spawn().await;
    let mut request = format!("ws://{}/graphql/ws", app.base)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer forged"}}),
    )
    .await;
    let refused = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Close(_)) | Err(_) => return true,
                Ok(Message::Text(text)) if text.contains("connection_ack") => return false,
                _ => continue,
            }
        }
        true
    })
    .await
    .expect("an answer within 10 s");
    assert!(refused, "a forged token must not get connection_ack");
}
