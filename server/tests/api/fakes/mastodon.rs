//! A fake Mastodon instance (4.x) built from the Mastodon OpenAPI schema
//! (`mastodon-schema.json`): `GET /api/v1/accounts/verify_credentials`,
//! `GET /api/v2/instance`, `POST /api/v2/media` (multipart `file` + `description`;
//! 202 while processing), `GET /api/v1/media/:id` (206 while processing, then 200) and
//! `POST /api/v1/statuses` (JSON, `Idempotency-Key` honoured per account like Mastodon's
//! one-hour Redis key). Answers use the schema's `Status`, `MediaAttachment`,
//! `CredentialAccount`, `Instance` and `Error` (`{"error": "…"}`) shapes, carry
//! `X-RateLimit-Limit/Remaining/Reset` (ISO 8601) on every answer, and 429 when a test
//! asks for it. Every request is recorded (time, method, path, headers, body).
//!
//! It also serves the post's media files under `/herald-media/` (not recorded), standing in
//! for the server Herald stores media on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The instance's domain in URLs it hands out.
pub const DOMAIN: &str = "mastodon.test";
/// `X-RateLimit-Limit` (Mastodon: 300 requests per 5 minutes per account).
pub const RATE_LIMIT: u32 = 300;
/// A 1×1 PNG served as the post's media.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived.
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A status the fake holds, with what it was created from.
#[derive(Debug, Clone)]
pub struct StoredStatus {
    /// The `Status` JSON the API answers.
    pub json: Value,
    /// The plain text it was created with.
    pub text: String,
    /// The access token that created it.
    pub token: String,
    /// The `Idempotency-Key` it was created with.
    pub idempotency_key: Option<String>,
}

/// An uploaded attachment: its `MediaAttachment` JSON (with `url` once processed), the
/// polls left before it is processed and the bytes received.
#[derive(Debug, Clone)]
pub struct StoredMedia {
    pub json: Value,
    pub polls_left: u32,
    pub file: Bytes,
    pub file_type: String,
    token: String,
    attached: bool,
}

/// What tests arrange and read.
#[derive(Default)]
pub struct Instance {
    /// Valid access tokens and the account id each belongs to.
    pub tokens: HashMap<String, String>,
    /// `configuration.statuses.max_characters`.
    pub max_characters: u32,
    /// Polls of `GET /api/v1/media/:id` answered 206 before an upload is processed; 0 →
    /// `POST /api/v2/media` answers 200 with the URL at once.
    pub processing_polls: u32,
    /// The next this many `POST /api/v1/statuses` answer 429, with the reset this far
    /// after the request.
    pub throttle_statuses: u32,
    pub throttle_reset_in: Duration,
    /// The next `POST /api/v1/statuses` that creates a status loses its answer: the
    /// connection breaks before the body arrives.
    pub lose_next_status_answer: bool,
    /// `verify_credentials` with one of these tokens answers only after the delay.
    pub slow_verify: HashMap<String, Duration>,
    pub statuses: Vec<StoredStatus>,
    pub media: Vec<StoredMedia>,
    pub requests: Vec<Recorded>,
    idempotency: HashMap<(String, String), usize>,
    used: HashMap<String, u32>,
    next_id: u64,
}

type Shared = Arc<Mutex<Instance>>;

/// A running fake instance.
pub struct FakeMastodon {
    /// `http://127.0.0.1:PORT`, for `HostConfig.host_overrides`.
    pub base: String,
    state: Shared,
}

impl FakeMastodon {
    /// Starts the fake on a loopback port with Mastodon's defaults (500 characters,
    /// synchronous image processing, no throttling).
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Instance {
            max_characters: 500,
            next_id: 113_000_000_000_000_000,
            ..Instance::default()
        }));
        let api = Router::new()
            .route(
                "/api/v1/accounts/verify_credentials",
                get(verify_credentials),
            )
            .route("/api/v2/instance", get(instance))
            .route("/api/v2/media", post(upload))
            .route("/api/v1/media/{id}", get(media))
            .route("/api/v1/statuses", post(create_status))
            .route("/api/v1/statuses/{id}", get(show_status))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                record_and_limit,
            ))
            .with_state(state.clone());
        let router = api.route("/herald-media/{name}", get(media_file));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        Self {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// The instance's state, to arrange or assert on.
    pub fn state(&self) -> MutexGuard<'_, Instance> {
        self.state.lock().expect("fake state")
    }

    /// Makes `token` valid for account `account_id`.
    pub fn add_token(&self, token: &str, account_id: &str) {
        self.state()
            .tokens
            .insert(token.to_owned(), account_id.to_owned());
    }

    /// Requests received for `path`, oldest first.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .cloned()
            .collect()
    }
}

fn next_id(state: &mut Instance) -> String {
    state.next_id += 1;
    state.next_id.to_string()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn invalid_token() -> Response {
    error(StatusCode::UNAUTHORIZED, "The access token is invalid")
}

/// Records every API request, answers 429 when throttled, and adds Mastodon's rate-limit
/// headers to every answer (per token, a 5-minute window).
async fn record_and_limit(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let now = Utc::now();
    let window_end = now + chrono::Duration::minutes(5);
    let token = bearer(&parts.headers).unwrap_or_default();
    let throttled = {
        let mut s = state.lock().expect("fake state");
        s.requests.push(Recorded {
            at: Instant::now(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
        *s.used.entry(token.clone()).or_default() += 1;
        let throttle = parts.method == "POST"
            && parts.uri.path() == "/api/v1/statuses"
            && s.throttle_statuses > 0;
        if throttle {
            s.throttle_statuses -= 1;
            Some(s.throttle_reset_in)
        } else {
            None
        }
    };
    let (mut response, remaining, reset) = match throttled {
        Some(reset_in) => (
            error(StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            0,
            now + chrono::Duration::from_std(reset_in).expect("duration"),
        ),
        None => {
            let used = state
                .lock()
                .expect("fake state")
                .used
                .get(&token)
                .copied()
                .unwrap_or(0);
            let request = Request::from_parts(parts, Body::from(body));
            (
                next.run(request).await,
                RATE_LIMIT.saturating_sub(used),
                window_end,
            )
        }
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(RATE_LIMIT));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert(
        "x-ratelimit-reset",
        HeaderValue::from_str(&iso(reset)).expect("header"),
    );
    response
}

fn account_json(id: &str) -> Value {
    json!({
        "id": id,
        "username": "alice",
        "acct": "alice",
        "display_name": "Alice on Mastodon",
        "locked": false,
        "bot": false,
        "group": false,
        "discoverable": true,
        "indexable": true,
        "created_at": "2024-01-01T00:00:00.000Z",
        "note": "<p>Testing Herald</p>",
        "url": format!("https://{DOMAIN}/@alice"),
        "uri": format!("https://{DOMAIN}/users/alice"),
        "avatar": format!("https://{DOMAIN}/avatars/original/missing.png"),
        "avatar_static": format!("https://{DOMAIN}/avatars/original/missing.png"),
        "header": format!("https://{DOMAIN}/headers/original/missing.png"),
        "header_static": format!("https://{DOMAIN}/headers/original/missing.png"),
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": 0,
        "last_status_at": null,
        "emojis": [],
        "fields": [],
    })
}

async fn verify_credentials(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let delay = bearer(&headers).and_then(|token| {
        let s = state.lock().expect("fake state");
        s.slow_verify.get(&token).copied()
    });
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let s = state.lock().expect("fake state");
    let Some(account_id) = bearer(&headers).and_then(|t| s.tokens.get(&t).cloned()) else {
        return invalid_token();
    };
    let mut account = account_json(&account_id);
    account["source"] = json!({
        "privacy": "public", "sensitive": false, "language": "en", "note": "Testing Herald",
        "fields": [], "follow_requests_count": 0
    });
    account["role"] = json!({
        "id": "-99", "name": "", "color": "", "permissions": "0", "highlighted": false
    });
    account["statuses_count"] = json!(s.statuses.len());
    axum::Json(account).into_response()
}

async fn instance(State(state): State<Shared>) -> Response {
    let max_characters = state.lock().expect("fake state").max_characters;
    axum::Json(json!({
        "domain": DOMAIN,
        "title": "Mastodon (test)",
        "version": "4.3.0",
        "source_url": "https://github.com/mastodon/mastodon",
        "description": "A fake instance for Herald's tests",
        "usage": { "users": { "active_month": 1 } },
        "thumbnail": { "url": format!("https://{DOMAIN}/packs/media/images/preview.png") },
        "icon": [],
        "languages": ["en"],
        "configuration": {
            "urls": { "streaming": format!("wss://{DOMAIN}"), "status": null },
            "vapid": { "public_key": "" },
            "accounts": { "max_featured_tags": 10, "max_pinned_statuses": 5 },
            "statuses": {
                "max_characters": max_characters,
                "max_media_attachments": 4,
                "characters_reserved_per_url": 23
            },
            "media_attachments": {
                "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4"],
                "description_limit": 1500,
                "image_size_limit": 16_777_216,
                "image_matrix_limit": 33_177_600,
                "video_size_limit": 103_809_024,
                "video_frame_rate_limit": 120,
                "video_matrix_limit": 8_294_400
            },
            "polls": {
                "max_options": 4, "max_characters_per_option": 50,
                "min_expiration": 300, "max_expiration": 2_629_746
            },
            "translation": { "enabled": false }
        },
        "registrations": { "enabled": false, "approval_required": false, "message": null },
        "api_versions": { "mastodon": 2 },
        "contact": { "email": format!("admin@{DOMAIN}") },
        "rules": []
    }))
    .into_response()
}

/// One part of a `multipart/form-data` body: its field name, content type and bytes.
struct Part {
    name: String,
    content_type: Option<String>,
    data: Bytes,
}

fn multipart_parts(headers: &HeaderMap, body: &Bytes) -> Option<Vec<Part>> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = content_type
        .strip_prefix("multipart/form-data")?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = body.as_ref();
    let mut parts = Vec::new();
    let mut positions = Vec::new();
    let mut from = 0;
    while let Some(found) = find(&text[from..], delimiter.as_bytes()) {
        positions.push(from + found);
        from += found + delimiter.len();
    }
    for pair in positions.windows(2) {
        let chunk = &text[pair[0] + delimiter.len()..pair[1]];
        let chunk = chunk.strip_prefix(b"\r\n")?;
        let head_end = find(chunk, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&chunk[..head_end]).ok()?;
        let data = chunk[head_end + 4..].strip_suffix(b"\r\n")?;
        let mut name = None;
        let mut part_type = None;
        for line in head.split("\r\n") {
            let (key, value) = line.split_once(':')?;
            if key.eq_ignore_ascii_case("content-disposition") {
                name = value
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("name="))
                    .map(|n| n.trim_matches('"').to_owned());
            } else if key.eq_ignore_ascii_case("content-type") {
                part_type = Some(value.trim().to_owned());
            }
        }
        parts.push(Part {
            name: name?,
            content_type: part_type,
            data: Bytes::copy_from_slice(data),
        });
    }
    Some(parts)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn upload(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().expect("fake state");
    let Some(token) = bearer(&headers).filter(|t| s.tokens.contains_key(t)) else {
        return invalid_token();
    };
    let Some(parts) = multipart_parts(&headers, &body) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed: File can't be blank",
        );
    };
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed: File can't be blank",
        );
    };
    let file_type = file.content_type.clone().unwrap_or_default();
    let kind = match file_type.split('/').next() {
        Some("image") if file_type == "image/gif" => "gifv",
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Validation failed: File content type is invalid ({file_type})"),
            );
        }
    };
    let description = parts
        .iter()
        .find(|p| p.name == "description")
        .map(|p| String::from_utf8_lossy(&p.data).into_owned());
    let id = next_id(&mut s);
    let processing = s.processing_polls > 0;
    let files = format!("https://{DOMAIN}/system/media_attachments/files/{id}");
    let json = json!({
        "id": id,
        "type": kind,
        "url": if processing { Value::Null } else { json!(format!("{files}/original/image.png")) },
        "preview_url": format!("{files}/small/image.png"),
        "remote_url": null,
        "preview_remote_url": null,
        "text_url": null,
        "meta": {
            "original": { "width": 1, "height": 1, "size": "1x1", "aspect": 1.0 },
            "small": { "width": 1, "height": 1, "size": "1x1", "aspect": 1.0 }
        },
        "description": description,
        "blurhash": "UFBWY:8_0Jxv4mx]t8t64.%M-:IUWGWAt6M}"
    });
    let polls_left = s.processing_polls;
    s.media.push(StoredMedia {
        json: json.clone(),
        polls_left,
        file: file.data.clone(),
        file_type,
        token,
        attached: false,
    });
    let status = if processing {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (status, axum::Json(json)).into_response()
}

async fn media(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    let Some(token) = bearer(&headers).filter(|t| s.tokens.contains_key(t)) else {
        return invalid_token();
    };
    let Some(media) = s
        .media
        .iter_mut()
        .find(|m| m.json["id"] == id.as_str() && m.token == token)
    else {
        return error(StatusCode::NOT_FOUND, "Record not found");
    };
    if media.polls_left > 0 {
        media.polls_left -= 1;
        return (StatusCode::PARTIAL_CONTENT, axum::Json(media.json.clone())).into_response();
    }
    media.json["url"] = json!(format!(
        "https://{DOMAIN}/system/media_attachments/files/{id}/original/image.png"
    ));
    axum::Json(media.json.clone()).into_response()
}

/// Length as Mastodon counts it for the ASCII texts of the tests: characters, with every
/// `http(s)://` word counting 23.
fn status_length(spoiler: &str, text: &str) -> usize {
    let words: usize = text
        .split_inclusive(char::is_whitespace)
        .map(|word| {
            let bare = word.trim_end();
            if bare.starts_with("https://") || bare.starts_with("http://") {
                23 + (word.chars().count() - bare.chars().count())
            } else {
                word.chars().count()
            }
        })
        .sum();
    spoiler.chars().count() + words
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `GET /api/v1/statuses/:id`: the status, 404 `Record not found` when unknown.
async fn show_status(
    State(state): State<Shared>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let s = state.lock().expect("fake state");
    if !bearer(&headers).is_some_and(|t| s.tokens.contains_key(&t)) {
        return invalid_token();
    }
    match s
        .statuses
        .iter()
        .find(|status| status.json["id"] == id.as_str())
    {
        Some(status) => axum::Json(status.json.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "Record not found"),
    }
}

async fn create_status(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().expect("fake state");
    let Some(token) = bearer(&headers).filter(|t| s.tokens.contains_key(t)) else {
        return invalid_token();
    };
    let account_id = s.tokens.get(&token).cloned().unwrap_or_default();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(index) = key
        .as_ref()
        .and_then(|k| s.idempotency.get(&(account_id.clone(), k.clone())))
    {
        return axum::Json(s.statuses[*index].json.clone()).into_response();
    }
    let Ok(params) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed: invalid JSON",
        );
    };
    let text = params["status"].as_str().unwrap_or_default().to_owned();
    let spoiler = params["spoiler_text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let media_ids: Vec<String> = params["media_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let visibility = params["visibility"].as_str().unwrap_or("public").to_owned();
    if !["public", "unlisted", "private", "direct"].contains(&visibility.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed: Visibility is not included in the list",
        );
    }
    if text.trim().is_empty() && media_ids.is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed: Text can't be blank",
        );
    }
    if status_length(&spoiler, &text) > s.max_characters as usize {
        let message = format!(
            "Validation failed: Text character limit of {} exceeded",
            s.max_characters
        );
        return error(StatusCode::UNPROCESSABLE_ENTITY, &message);
    }
    if media_ids.len() > 4 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation failed: Media attachments too many (the limit is 4)",
        );
    }
    let mut attachments = Vec::new();
    for id in &media_ids {
        let Some(media) = s
            .media
            .iter()
            .find(|m| m.json["id"] == id.as_str() && m.token == token && !m.attached)
        else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Validation failed: media not found",
            );
        };
        if media.polls_left > 0 || media.json["url"].is_null() {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Cannot attach files that have not finished processing. Try again in a moment!",
            );
        }
        attachments.push(media.json.clone());
    }
    for media in s.media.iter_mut() {
        if media_ids.iter().any(|id| media.json["id"] == id.as_str()) {
            media.attached = true;
        }
    }
    let id = next_id(&mut s);
    let content = format!("<p>{}</p>", html_escape(&text).replace('\n', "<br />"));
    let json = json!({
        "id": id,
        "created_at": iso(Utc::now()),
        "in_reply_to_id": null,
        "in_reply_to_account_id": null,
        "sensitive": params["sensitive"].as_bool().unwrap_or(false) || !spoiler.is_empty(),
        "spoiler_text": spoiler,
        "visibility": visibility,
        "language": params["language"].as_str().unwrap_or("en"),
        "uri": format!("https://{DOMAIN}/users/alice/statuses/{id}"),
        "url": format!("https://{DOMAIN}/@alice/{id}"),
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "edited_at": null,
        "favourited": false,
        "reblogged": false,
        "muted": false,
        "bookmarked": false,
        "pinned": false,
        "content": content,
        "filtered": [],
        "reblog": null,
        "application": { "name": "Herald", "website": null },
        "account": account_json(&account_id),
        "media_attachments": attachments,
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": null,
        "poll": null
    });
    s.statuses.push(StoredStatus {
        json: json.clone(),
        text,
        token,
        idempotency_key: key.clone(),
    });
    let index = s.statuses.len() - 1;
    if let Some(key) = key {
        s.idempotency.insert((account_id, key), index);
    }
    if std::mem::take(&mut s.lose_next_status_answer) {
        // The status exists; its answer never arrives.
        return super::lost_answer();
    }
    axum::Json(json).into_response()
}

async fn media_file(Path(name): Path<String>) -> Response {
    if name.ends_with(".png") {
        ([(header::CONTENT_TYPE, "image/png")], PNG).into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such file")
    }
}
