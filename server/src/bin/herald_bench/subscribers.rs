//! The subscription half of `herald-bench graphql`: 10,000 authenticated
//! graphql-transport-ws subscribers to one post, the time from a change to each receiving
//! it, and the server's memory per subscriber.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::graphql::{percentile, round};
use crate::procs::rss_bytes;

/// Subscribers opened.
const SUBSCRIBERS: usize = 10_000;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscriber(port: u16, token: &str, post: Uuid) -> anyhow::Result<Socket> {
    let mut request = format!("ws://127.0.0.1:{port}/graphql/ws").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let send = |v: Value| Message::Text(v.to_string().into());
    socket
        .send(send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})))
        .await?;
    loop {
        match socket.next().await.context("closed before ack")?? {
            Message::Text(t) if t.contains("connection_ack") => break,
            Message::Text(t) if t.contains("\"ping\"") => {
                socket.send(send(json!({"type": "pong"}))).await?;
            }
            Message::Close(frame) => bail!("closed: {frame:?}"),
            _ => {}
        }
    }
    socket
        .send(send(json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($id: ID) { postUpdated(id: $id) { id version } }",
            "variables": {"id": post.to_string()}}})))
        .await?;
    Ok(socket)
}

/// Reads a subscriber's socket: answers keep-alive pings, and returns the time from the
/// change (`start`) to its `next` message, with the socket still open (subscribers that
/// hang up as soon as they are served would add their closing to the fan-out's work).
async fn listen(
    mut socket: Socket,
    start: Arc<std::sync::OnceLock<Instant>>,
) -> anyhow::Result<(f64, Socket)> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(300), socket.next())
            .await
            .context("no event within 300 s")?
            .context("closed")??;
        match frame {
            Message::Text(t) if t.contains("\"next\"") => {
                let at = start.get().map(|s| s.elapsed()).unwrap_or_default();
                return Ok((at.as_secs_f64() * 1000.0, socket));
            }
            Message::Text(t) if t.contains("\"ping\"") => {
                socket
                    .send(Message::Text(json!({"type": "pong"}).to_string().into()))
                    .await?;
            }
            Message::Close(frame) => bail!("server closed the subscription: {frame:?}"),
            _ => {}
        }
    }
}

/// 10,000 subscribers of one post; one change; fan-out latency and memory.
pub(crate) async fn fan_out(port: u16, pid: u32, token: &str, post: Uuid) -> anyhow::Result<Value> {
    let before = rss_bytes(pid)?;
    let start = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = Vec::with_capacity(SUBSCRIBERS);
    for chunk in 0..SUBSCRIBERS.div_ceil(250) {
        let batch = (0..250.min(SUBSCRIBERS - chunk * 250))
            .map(|_| subscriber(port, token, post))
            .collect::<Vec<_>>();
        for socket in futures_util::future::join_all(batch).await {
            let socket = socket.with_context(|| format!("subscriber {}", tasks.len()))?;
            tasks.push(tokio::spawn(listen(socket, start.clone())));
        }
    }
    // Let the server register every subscription.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_bytes(pid)?;
    let client = reqwest::Client::new();
    let _ = start.set(Instant::now());
    let answer: Value = client
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(
            json!({"query": "mutation($id: ID!) { updatePost(id: $id, input: {notes: \"fan-out\"}) { version } }",
                   "variables": {"id": post.to_string()}})
            .to_string(),
        )
        .send()
        .await?
        .json()
        .await?;
    if answer["data"]["updatePost"]["version"].is_null() {
        bail!("update failed: {answer}");
    }
    let mut received = Vec::with_capacity(tasks.len());
    let mut sockets = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (at, socket) = task.await??;
        received.push(at);
        sockets.push(socket);
    }
    for mut socket in sockets {
        let _ = socket.close(None).await;
    }
    received.sort_by(f64::total_cmp);
    Ok(json!({
        "scenario": "subscriptions",
        "subscribers": SUBSCRIBERS,
        "fanout_ms": {
            "p50": round(percentile(&received, 0.5)),
            "p99": round(percentile(&received, 0.99)),
            "max": round(received.last().copied().unwrap_or_default()),
        },
        "server_rss_before_mb": before / (1 << 20),
        "server_rss_after_mb": after / (1 << 20),
        "memory_per_subscriber_bytes": (after.saturating_sub(before)) / SUBSCRIBERS as u64,
    }))
}
