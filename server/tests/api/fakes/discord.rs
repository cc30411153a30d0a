//! A fake of Discord's webhook API v10 (discord-openapi.json): `GET` and `POST
//! /api/v10/webhooks/{webhook_id}/{webhook_token}` (execute: JSON, or multipart with
//! `payload_json` + `files[n]`; `?wait=true` answers 200 with the message object, without
//! it 204), `GET …/messages/{message_id}` to read a message back. Errors are `{code,
//! message}` (Unknown Webhook 10015, Invalid Webhook Token 50027, Invalid Form Body 50035,
//! empty message 50006); a 429 is `{message, retry_after, global}` with `Retry-After`;
//! every answer carries `X-RateLimit-*` headers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::multipart;

/// A guild the fake's webhooks live in.
pub const GUILD_ID: &str = "1100000000000000001";
/// The channel the fake's webhooks post to.
pub const CHANNEL_ID: &str = "1200000000000000002";
/// Longest content Discord accepts.
const MAX_CONTENT: usize = 2000;

/// A file attached to a message.
#[derive(Debug, Clone)]
pub struct File {
    /// Attachment id.
    pub id: String,
    /// Its file name.
    pub filename: String,
    /// The alt text (`description`).
    pub description: Option<String>,
    /// The part's content type.
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A message created through a webhook.
#[derive(Debug, Clone)]
pub struct Message {
    /// Snowflake id.
    pub id: String,
    /// Webhook that created it.
    pub webhook_id: String,
    /// Its content.
    pub content: String,
    /// Its attachments, in order.
    pub attachments: Vec<File>,
    /// Reactions: emoji and count.
    pub reactions: Vec<(String, u32)>,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived.
    pub at: Instant,
    /// `GET` or `POST`.
    pub method: String,
    /// The webhook id in the path.
    pub webhook_id: String,
    /// The query string.
    pub query: HashMap<String, String>,
    /// The content type.
    pub content_type: Option<String>,
    /// Multipart parts (empty for JSON).
    pub parts: Vec<multipart::Part>,
    /// The raw body.
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    /// Live webhooks: id → (token, name).
    webhooks: HashMap<String, (String, String)>,
    messages: Vec<Message>,
    requests: Vec<Recorded>,
    next_id: u64,
    /// Answer the next executions with 429 and these `retry_after` seconds.
    throttle: Vec<f64>,
    /// Create the next message, then break the connection instead of answering.
    lose_next_answer: bool,
    /// Create the next message, then never answer (notifying `hung`).
    hang_next: bool,
}

/// The running fake.
#[derive(Clone)]
pub struct Discord {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    /// Notified when an execution is held by [`hang_next`](Self::hang_next).
    pub hung: Arc<Notify>,
}

impl Discord {
    /// Starts the fake on a loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let fake = Self {
            addr: listener.local_addr().expect("addr"),
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1_300_000_000_000_000_000,
                ..Inner::default()
            })),
            hung: Arc::new(Notify::new()),
        };
        let router = axum::Router::new()
            .route(
                "/api/v10/webhooks/{id}/{token}",
                get(describe).post(execute),
            )
            .route(
                "/api/v10/webhooks/{id}/{token}/messages/{message_id}",
                get(read_message),
            )
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        fake
    }

    /// The base URL for `HostConfig.host_overrides["discord.com:443"]`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a webhook; returns its URL as Discord shows it (the credential).
    pub fn create_webhook(&self, id: &str, token: &str, name: &str) -> String {
        self.inner
            .lock()
            .expect("lock")
            .webhooks
            .insert(id.into(), (token.into(), name.into()));
        format!("https://discord.com/api/webhooks/{id}/{token}")
    }

    /// Deletes a webhook (its URL answers Unknown Webhook from now on).
    pub fn delete_webhook(&self, id: &str) {
        self.inner.lock().expect("lock").webhooks.remove(id);
    }

    /// Throttles the next executions, one per entry, with these `retry_after` seconds.
    pub fn throttle(&self, retry_after: &[f64]) {
        self.inner.lock().expect("lock").throttle = retry_after.to_vec();
    }

    /// Creates the next message, then breaks the connection instead of answering.
    pub fn lose_next_answer(&self) {
        self.inner.lock().expect("lock").lose_next_answer = true;
    }

    /// Creates the next message, then never answers.
    pub fn hang_next(&self) {
        self.inner.lock().expect("lock").hang_next = true;
    }

    /// Adds `count` reactions with `emoji` to message `id`.
    pub fn react(&self, id: &str, emoji: &str, count: u32) {
        let mut inner = self.inner.lock().expect("lock");
        if let Some(message) = inner.messages.iter_mut().find(|m| m.id == id) {
            message.reactions.push((emoji.into(), count));
        }
    }

    /// Messages created so far.
    pub fn messages(&self) -> Vec<Message> {
        self.inner.lock().expect("lock").messages.clone()
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().expect("lock").requests.clone()
    }

    /// Executions (`POST`) received so far.
    pub fn executions(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    with_rate_headers(
        (
            status,
            axum::Json(json!({"code": code, "message": message})),
        )
            .into_response(),
    )
}

fn with_rate_headers(mut response: Response) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", "5".to_owned()),
        ("x-ratelimit-remaining", "4".to_owned()),
        ("x-ratelimit-reset", format!("{:.3}", now + 2.0)),
        ("x-ratelimit-reset-after", "2.000".to_owned()),
        ("x-ratelimit-bucket", "b0d7f00d".to_owned()),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_str(&value).expect("header"));
        }
    }
    response
}

/// Checks the webhook id and token: Unknown Webhook (404, 10015) for an unknown id,
/// Invalid Webhook Token (401, 50027) for a wrong token.
fn authorise(inner: &Inner, id: &str, token: &str) -> Result<String, Box<Response>> {
    match inner.webhooks.get(id) {
        None => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            10015,
            "Unknown Webhook",
        ))),
        Some((expected, _)) if expected != token => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            50027,
            "Invalid Webhook Token",
        ))),
        Some((_, name)) => Ok(name.clone()),
    }
}

fn record(
    inner: &mut Inner,
    method: &str,
    id: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Vec<multipart::Part> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parts = content_type
        .as_deref()
        .and_then(multipart::boundary)
        .and_then(|boundary| multipart::parse(body, &boundary).ok())
        .unwrap_or_default();
    inner.requests.push(Recorded {
        at: Instant::now(),
        method: method.into(),
        webhook_id: id.into(),
        query: query.clone(),
        content_type,
        parts: parts.clone(),
        body: body.to_vec(),
    });
    parts
}

async fn describe(
    State(fake): State<Discord>,
    Path((id, token)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut inner = fake.inner.lock().expect("lock");
    record(&mut inner, "GET", &id, &query, &headers, &[]);
    match authorise(&inner, &id, &token) {
        Err(response) => *response,
        // The webhook object as `GET /webhooks/{id}/{token}` returns it (no user, no token).
        Ok(name) => with_rate_headers(
            axum::Json(json!({
                "application_id": null, "avatar": null, "channel_id": CHANNEL_ID,
                "guild_id": GUILD_ID, "id": id, "name": name, "type": 1,
            }))
            .into_response(),
        ),
    }
}

fn message_json(message: &Message, name: &str) -> Value {
    json!({
        "type": 0, "id": message.id, "channel_id": CHANNEL_ID, "content": message.content,
        "author": {"id": message.webhook_id, "username": name, "avatar": null,
                   "discriminator": "0000", "public_flags": 0, "flags": 0, "bot": true,
                   "global_name": null},
        "attachments": message.attachments.iter().map(|file| json!({
            "id": file.id, "filename": file.filename, "size": file.data.len(),
            "url": format!("https://cdn.discordapp.com/attachments/{CHANNEL_ID}/{}/{}", file.id, file.filename),
            "proxy_url": format!("https://media.discordapp.net/attachments/{CHANNEL_ID}/{}/{}", file.id, file.filename),
            "content_type": file.content_type, "description": file.description,
        })).collect::<Vec<_>>(),
        "reactions": message.reactions.iter().map(|(emoji, count)| json!({
            "emoji": {"id": null, "name": emoji}, "count": count,
            "count_details": {"burst": 0, "normal": count}, "burst_colors": [],
            "me_burst": false, "me": false,
        })).collect::<Vec<_>>(),
        "embeds": [], "mentions": [], "mention_roles": [], "pinned": false,
        "mention_everyone": false, "tts": false, "timestamp": chrono::Utc::now().to_rfc3339(),
        "edited_timestamp": null, "flags": 0, "components": [], "webhook_id": message.webhook_id,
    })
}

/// Content and files of an execution, or the error Discord gives.
fn read_execution(
    headers: &HeaderMap,
    body: &[u8],
    parts: &[multipart::Part],
) -> Result<(String, Vec<Value>, Vec<multipart::Part>), Box<Response>> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let invalid = |what: &str| {
        let mut response = error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
        *response.body_mut() = Body::from(
            json!({"code": 50035, "message": "Invalid Form Body", "errors": {what: {"_errors": [{"code": "INVALID", "message": what}]}}})
                .to_string(),
        );
        response
    };
    let (payload, files): (Value, Vec<multipart::Part>) =
        if content_type.starts_with("application/json") {
            (
                serde_json::from_slice(body).map_err(|_| Box::new(invalid("body")))?,
                vec![],
            )
        } else if multipart::boundary(content_type).is_some() {
            if parts.is_empty() {
                return Err(Box::new(invalid("multipart")));
            }
            let payload = parts
                .iter()
                .find(|p| p.name == "payload_json")
                .map(|p| serde_json::from_slice(&p.data))
                .transpose()
                .map_err(|_| Box::new(invalid("payload_json")))?
                .unwrap_or_else(|| json!({}));
            let files = parts
                .iter()
                .filter(|p| p.name.starts_with("files[") && p.name.ends_with(']'))
                .cloned()
                .collect();
            (payload, files)
        } else {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                50109,
                "The request body contains invalid JSON.",
            )));
        };
    let content = payload["content"].as_str().unwrap_or_default().to_owned();
    if content.chars().count() > MAX_CONTENT {
        let mut response = error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
        *response.body_mut() = Body::from(json!({"code": 50035, "message": "Invalid Form Body", "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}}).to_string());
        return Err(Box::new(response));
    }
    if content.trim().is_empty() && files.is_empty() {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        )));
    }
    let attachments = payload["attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok((content, attachments, files))
}

async fn execute(
    State(fake): State<Discord>,
    Path((id, token)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, lose, hang) = {
        let mut inner = fake.inner.lock().expect("lock");
        let parts = record(&mut inner, "POST", &id, &query, &headers, &body);
        let name = match authorise(&inner, &id, &token) {
            Ok(name) => name,
            Err(response) => return *response,
        };
        if !inner.throttle.is_empty() {
            let retry_after = inner.throttle.remove(0);
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false})),
            )
                .into_response();
            let headers = response.headers_mut();
            headers.insert(
                "retry-after",
                HeaderValue::from_str(&(retry_after.ceil() as u64).to_string()).expect("h"),
            );
            headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
            headers.insert(
                "x-ratelimit-reset-after",
                HeaderValue::from_str(&format!("{retry_after:.3}")).expect("h"),
            );
            return with_rate_headers(response);
        }
        let (content, attachments, files) = match read_execution(&headers, &body, &parts) {
            Ok(read) => read,
            Err(response) => return *response,
        };
        let mut stored = Vec::new();
        for (index, file) in files.iter().enumerate() {
            // `attachments[].id` refers to `files[id]`.
            let declared = attachments.iter().find(|a| {
                a["id"].as_u64().map(|n| format!("files[{n}]")) == Some(file.name.clone())
                    || a["id"].as_str().map(|n| format!("files[{n}]")) == Some(file.name.clone())
            });
            inner.next_id += 1;
            stored.push(File {
                id: inner.next_id.to_string(),
                filename: declared
                    .and_then(|a| a["filename"].as_str())
                    .map(str::to_owned)
                    .or_else(|| file.filename.clone())
                    .unwrap_or_else(|| format!("file{index}")),
                description: declared
                    .and_then(|a| a["description"].as_str())
                    .map(str::to_owned),
                content_type: file.content_type.clone(),
                data: file.data.clone(),
            });
        }
        inner.next_id += 1;
        let message = Message {
            id: inner.next_id.to_string(),
            webhook_id: id.clone(),
            content,
            attachments: stored,
            reactions: Vec::new(),
        };
        let answer = message_json(&message, &name);
        inner.messages.push(message);
        let lose = std::mem::take(&mut inner.lose_next_answer);
        let hang = std::mem::take(&mut inner.hang_next);
        (answer, lose, hang)
    };
    if hang {
        fake.hung.notify_one();
        tokio::time::sleep(Duration::from_secs(3_600)).await;
    }
    if lose {
        return super::lost_answer();
    }
    if query.get("wait").map(String::as_str) == Some("true") {
        with_rate_headers(axum::Json(answer).into_response())
    } else {
        with_rate_headers(StatusCode::NO_CONTENT.into_response())
    }
}

async fn read_message(
    State(fake): State<Discord>,
    Path((id, token, message_id)): Path<(String, String, String)>,
) -> Response {
    let inner = fake.inner.lock().expect("lock");
    let name = match authorise(&inner, &id, &token) {
        Ok(name) => name,
        Err(response) => return *response,
    };
    match inner
        .messages
        .iter()
        .find(|m| m.id == message_id && m.webhook_id == id)
    {
        Some(message) => {
            with_rate_headers(axum::Json(message_json(message, &name)).into_response())
        }
        None => error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
    }
}
