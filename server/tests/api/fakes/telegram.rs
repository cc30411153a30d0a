//! A fake of the Telegram Bot API (tg-api.json): `/bot<token>/<method>` for `getMe`,
//! `getChat`, `sendMessage`, `sendPhoto` and `sendMediaGroup`, with parameters in the query
//! string, a JSON or a multipart body (the encodings Herald uses; the real API also takes
//! URL-encoded forms) (files as `InputFile` parts, `attach://<name>` in
//! a media group). Every answer is `{ok: true, result}` or `{ok: false, error_code,
//! description[, parameters]}`; a 429 carries `parameters.retry_after`. Limits as the Bot
//! API enforces them: text 1–4096 characters, caption ≤ 1024, media groups of 2–10.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::multipart;

/// A chat the bot can post to.
#[derive(Debug, Clone)]
pub struct Chat {
    /// Chat id (channels and supergroups: -100…).
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    pub kind: String,
    /// Title, for groups and channels.
    pub title: Option<String>,
    /// Public username, if any.
    pub username: Option<String>,
}

/// A photo the bot sent.
#[derive(Debug, Clone)]
pub struct Photo {
    /// The uploaded file's name.
    pub filename: Option<String>,
    /// The part's content type.
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A message the bot sent.
#[derive(Debug, Clone)]
pub struct Message {
    /// Message id (per chat).
    pub message_id: i64,
    /// Chat id.
    pub chat_id: i64,
    /// `text` of a text message.
    pub text: Option<String>,
    /// `caption` of a photo.
    pub caption: Option<String>,
    /// The photo, if any.
    pub photo: Option<Photo>,
    /// Set on the messages of one media group.
    pub media_group_id: Option<String>,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived.
    pub at: Instant,
    /// The Bot API method.
    pub method: String,
    /// Its non-file parameters.
    pub params: HashMap<String, String>,
    /// Its multipart parts (empty for other encodings).
    pub parts: Vec<multipart::Part>,
}

#[derive(Default)]
struct Inner {
    /// Valid tokens → bot (id, username, first name).
    bots: HashMap<String, (i64, String, String)>,
    chats: Vec<Chat>,
    messages: Vec<Message>,
    requests: Vec<Recorded>,
    next_message_id: i64,
    next_group: u64,
    /// Answer the next send calls with 429 and these `retry_after` seconds.
    throttle: Vec<u32>,
    /// Send the next message, then break the connection instead of answering.
    lose_next_answer: bool,
    /// Send the next message, then never answer (notifying `hung`).
    hang_next: bool,
}

/// The running fake.
#[derive(Clone)]
pub struct Telegram {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    /// Notified when a call is held by [`hang_next`](Self::hang_next).
    pub hung: Arc<Notify>,
}

/// A Bot API error: `error_code`, `description`, `parameters`.
type Failure = (u16, String, Option<Value>);
type Answer = Result<Value, Failure>;

fn bad(description: &str) -> Failure {
    (400, format!("Bad Request: {description}"), None)
}

impl Telegram {
    /// Starts the fake on a loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let fake = Self {
            addr: listener.local_addr().expect("addr"),
            inner: Arc::new(Mutex::new(Inner {
                next_message_id: 100,
                ..Inner::default()
            })),
            hung: Arc::new(Notify::new()),
        };
        let router = axum::Router::new()
            .route("/{bot}/{method}", any(call))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        fake
    }

    /// The base URL for `HostConfig.host_overrides["api.telegram.org:443"]`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Registers a bot; returns its token.
    pub fn create_bot(&self, id: i64, username: &str, first_name: &str) -> String {
        let token = format!("{id}:AAF{}", "x".repeat(32));
        self.inner
            .lock()
            .expect("lock")
            .bots
            .insert(token.clone(), (id, username.into(), first_name.into()));
        token
    }

    /// Revokes a bot token (@BotFather /revoke).
    pub fn revoke(&self, token: &str) {
        self.inner.lock().expect("lock").bots.remove(token);
    }

    /// Adds a chat the bots can post to.
    pub fn add_chat(&self, id: i64, kind: &str, title: Option<&str>, username: Option<&str>) {
        self.inner.lock().expect("lock").chats.push(Chat {
            id,
            kind: kind.into(),
            title: title.map(str::to_owned),
            username: username.map(str::to_owned),
        });
    }

    /// Throttles the next send calls, one per entry, with these `retry_after` seconds.
    pub fn throttle(&self, retry_after: &[u32]) {
        self.inner.lock().expect("lock").throttle = retry_after.to_vec();
    }

    /// Sends the next message, then breaks the connection instead of answering.
    pub fn lose_next_answer(&self) {
        self.inner.lock().expect("lock").lose_next_answer = true;
    }

    /// Sends the next message, then never answers.
    pub fn hang_next(&self) {
        self.inner.lock().expect("lock").hang_next = true;
    }

    /// Messages sent so far.
    pub fn messages(&self) -> Vec<Message> {
        self.inner.lock().expect("lock").messages.clone()
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().expect("lock").requests.clone()
    }

    /// Requests for `method` received so far.
    pub fn calls(&self, method: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method)
            .collect()
    }
}

fn chat_json(chat: &Chat) -> Value {
    let mut value = json!({"id": chat.id, "type": chat.kind});
    if let Some(title) = &chat.title {
        value["title"] = json!(title);
    }
    if let Some(username) = &chat.username {
        value["username"] = json!(username);
    }
    value
}

fn message_json(inner: &Inner, message: &Message, bot: &(i64, String, String)) -> Value {
    let chat = inner
        .chats
        .iter()
        .find(|c| c.id == message.chat_id)
        .map(chat_json)
        .unwrap_or_else(|| json!({"id": message.chat_id, "type": "private"}));
    let mut value = json!({
        "message_id": message.message_id,
        "date": chrono::Utc::now().timestamp(),
        "chat": chat,
        "from": {"id": bot.0, "is_bot": true, "first_name": bot.2, "username": bot.1},
    });
    if let Some(text) = &message.text {
        value["text"] = json!(text);
    }
    if let Some(caption) = &message.caption {
        value["caption"] = json!(caption);
    }
    if let Some(photo) = &message.photo {
        value["photo"] = json!([{
            "file_id": format!("AgACAgQAAx0{}", message.message_id),
            "file_unique_id": format!("AQAD{}", message.message_id),
            "width": 1, "height": 1, "file_size": photo.data.len(),
        }]);
    }
    if let Some(group) = &message.media_group_id {
        value["media_group_id"] = json!(group);
    }
    value
}

fn find_chat<'a>(inner: &'a Inner, chat_id: Option<&String>) -> Result<&'a Chat, Failure> {
    let chat_id = chat_id.ok_or_else(|| bad("chat_id is empty"))?;
    inner
        .chats
        .iter()
        .find(|chat| {
            chat.id.to_string() == *chat_id
                || chat
                    .username
                    .as_ref()
                    .is_some_and(|name| format!("@{name}") == *chat_id)
        })
        .ok_or_else(|| bad("chat not found"))
}

fn photo_from(
    value: Option<&String>,
    parts: &[multipart::Part],
    field: &str,
) -> Result<Photo, Failure> {
    let part = match value.and_then(|v| v.strip_prefix("attach://")) {
        Some(name) => parts
            .iter()
            .find(|p| p.name == name && p.filename.is_some()),
        None => parts
            .iter()
            .find(|p| p.name == field && p.filename.is_some()),
    };
    let part = part.ok_or_else(|| bad("there is no photo in the request"))?;
    if part.data.is_empty() {
        return Err(bad("file must be non-empty"));
    }
    Ok(Photo {
        filename: part.filename.clone(),
        content_type: part.content_type.clone(),
        data: part.data.clone(),
    })
}

fn caption(params: &HashMap<String, String>) -> Result<Option<String>, Failure> {
    match params.get("caption") {
        Some(caption) if caption.chars().count() > 1024 => Err(bad("message caption is too long")),
        other => Ok(other.cloned().filter(|c| !c.is_empty())),
    }
}

/// Runs `method` and returns its result or its error.
fn run(
    inner: &mut Inner,
    bot: &(i64, String, String),
    method: &str,
    params: &HashMap<String, String>,
    parts: &[multipart::Part],
) -> Answer {
    match method {
        "getMe" => Ok(json!({
            "id": bot.0, "is_bot": true, "first_name": bot.2, "username": bot.1,
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false,
        })),
        "getChat" => {
            let chat = find_chat(inner, params.get("chat_id"))?;
            let mut value = chat_json(chat);
            value["accent_color_id"] = json!(0);
            value["max_reaction_count"] = json!(11);
            Ok(value)
        }
        "sendMessage" | "sendPhoto" | "sendMediaGroup" => {
            let chat_id = find_chat(inner, params.get("chat_id"))?.id;
            if !inner.throttle.is_empty() {
                let retry_after = inner.throttle.remove(0);
                return Err((
                    429,
                    format!("Too Many Requests: retry after {retry_after}"),
                    Some(json!({"retry_after": retry_after})),
                ));
            }
            let mut sent = Vec::new();
            match method {
                "sendMessage" => {
                    let text = params.get("text").cloned().unwrap_or_default();
                    if text.trim().is_empty() {
                        return Err(bad("message text is empty"));
                    }
                    if text.chars().count() > 4096 {
                        return Err(bad("message is too long"));
                    }
                    sent.push((Some(text), None, None));
                }
                "sendPhoto" => {
                    let photo = photo_from(params.get("photo"), parts, "photo")?;
                    sent.push((None, caption(params)?, Some(photo)));
                }
                _ => {
                    let media: Vec<Value> = params
                        .get("media")
                        .and_then(|m| serde_json::from_str(m).ok())
                        .ok_or_else(|| bad("can't parse media JSON object"))?;
                    if !(2..=10).contains(&media.len()) {
                        return Err(bad("wrong number of messages in the media group"));
                    }
                    for item in &media {
                        if item["type"] != "photo" {
                            return Err(bad("unsupported media type in the media group"));
                        }
                        let item_params: HashMap<String, String> = item
                            .as_object()
                            .into_iter()
                            .flatten()
                            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                            .collect();
                        let photo = photo_from(item_params.get("media"), parts, "")?;
                        sent.push((None, caption(&item_params)?, Some(photo)));
                    }
                }
            }
            let group = (sent.len() > 1).then(|| {
                inner.next_group += 1;
                format!("1376{:012}", inner.next_group)
            });
            let mut results = Vec::new();
            for (text, caption, photo) in sent {
                inner.next_message_id += 1;
                let message = Message {
                    message_id: inner.next_message_id,
                    chat_id,
                    text,
                    caption,
                    photo,
                    media_group_id: group.clone(),
                };
                results.push(message_json(inner, &message, bot));
                inner.messages.push(message);
            }
            if method == "sendMediaGroup" {
                Ok(Value::Array(results))
            } else {
                Ok(results.pop().unwrap_or(Value::Null))
            }
        }
        _ => Err((404, "Not Found".into(), None)),
    }
}

fn params_of(
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(HashMap<String, String>, Vec<multipart::Part>), Failure> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut params = query;
    let mut parts = Vec::new();
    if content_type.starts_with("application/json") {
        let object: serde_json::Map<String, Value> =
            serde_json::from_slice(body).map_err(|_| bad("can't parse JSON object"))?;
        for (key, value) in object {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            params.insert(key, text);
        }
    } else if let Some(boundary) = multipart::boundary(content_type) {
        parts = multipart::parse(body, &boundary).map_err(|e| bad(&e))?;
        for part in parts.iter().filter(|p| p.filename.is_none()) {
            params.insert(part.name.clone(), part.text());
        }
    }
    Ok((params, parts))
}

fn envelope(answer: Answer) -> Response {
    match answer {
        Ok(result) => axum::Json(json!({"ok": true, "result": result})).into_response(),
        Err((code, description, parameters)) => {
            let mut body = json!({"ok": false, "error_code": code, "description": description});
            if let Some(parameters) = parameters {
                body["parameters"] = parameters;
            }
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                axum::Json(body),
            )
                .into_response()
        }
    }
}

async fn call(
    State(fake): State<Telegram>,
    Path((bot, method)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = bot.strip_prefix("bot") else {
        return envelope(Err((404, "Not Found".into(), None)));
    };
    let (answer, lose, hang) = {
        let mut inner = fake.inner.lock().expect("lock");
        let (params, parts) = match params_of(query, &headers, &body) {
            Ok(read) => read,
            Err(error) => return envelope(Err(error)),
        };
        inner.requests.push(Recorded {
            at: Instant::now(),
            method: method.clone(),
            params: params.clone(),
            parts: parts.clone(),
        });
        let Some(bot) = inner.bots.get(token).cloned() else {
            return envelope(Err((401, "Unauthorized".into(), None)));
        };
        let before = inner.messages.len();
        let answer = run(&mut inner, &bot, &method, &params, &parts);
        let sent = inner.messages.len() > before;
        let lose = sent && std::mem::take(&mut inner.lose_next_answer);
        let hang = sent && std::mem::take(&mut inner.hang_next);
        (answer, lose, hang)
    };
    if hang {
        fake.hung.notify_one();
        tokio::time::sleep(Duration::from_secs(3_600)).await;
    }
    if lose {
        return super::lost_answer();
    }
    envelope(answer)
}
