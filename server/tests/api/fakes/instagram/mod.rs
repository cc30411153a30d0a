//! A fake Instagram built from Meta's API specs (`IGUser.json`, `meta-IGUserForIGOnlyAPI.json`,
//! `meta-IGMedia.json`, `meta-ContentPublishingLimitResponse.json`,
//! `ShadowIGMediaBuilder.json`) and the content publishing docs, on the paths of every host
//! the plugin calls (`graph.instagram.com`, `graph.facebook.com`, `api.instagram.com`, and
//! `www.instagram.com` for the authorize page; route them all here):
//! - `POST /{version}/{ig-user}/media`: a container from `image_url` (with `alt_text`), or
//!   `video_url` with `media_type=REELS` (or `VIDEO` as a carousel item), or
//!   `is_carousel_item=true`, or `media_type=CAROUSEL` with 2–10 `children`; caption ≤ 2,200
//!   characters and 30 hashtags. The fake **downloads every media from its URL** as Meta
//!   does: an image with one GET (200, `Content-Type: image/jpeg`, a `Content-Length` equal
//!   to the body), failing the creation with 9004 / 2207052 otherwise; a video in `Range`
//!   requests (206, `Content-Range`, a video type, each part's `Content-Length`), in the
//!   background, the container turning ERROR (2207052) when a part is wrong. URLs must be
//!   `https://`; `media_hosts` says where the fake really fetches them.
//! - `GET /{version}/{container}?fields=status_code,status`: IN_PROGRESS while downloading
//!   and for `processing_polls` more reads, then FINISHED; ERROR; EXPIRED; PUBLISHED.
//! - `POST /{version}/{ig-user}/media_publish` (`creation_id`) → `{id}` of the new media;
//!   not FINISHED → 9007 / 2207027; quota used up → 9 / 2207042. Publishes are counted.
//! - `GET /{version}/{media}?fields=permalink`, `GET /{version}/{ig-user}/media` (`since`),
//!   `GET /{version}/{ig-user}/content_publishing_limit` (`quota_usage` and `config` over
//!   the last 24 hours of media), `GET /{version}/me`, `GET /{version}/{page}
//!   ?fields=instagram_business_account`.
//! - Instagram Login: `GET /oauth/authorize` (approves at once), `POST /oauth/access_token`
//!   (one-hour token), `GET /access_token?grant_type=ig_exchange_token` (60 days),
//!   `GET /refresh_access_token?grant_type=ig_refresh_token` (a long-lived token at least
//!   24 hours old and unexpired).
//!
//! - `/herald-media/<name>.jpg`: a JPEG for posts that name media by URL.
//!
//! Tokens come as a bearer header or an `access_token` parameter. Errors are Meta's
//! envelope `{"error": {message, type, code, error_subcode, fbtrace_id}}`: 190 (463
//! expired) for tokens, 4 (with `X-App-Usage`) when throttled, 100 for bad requests. Every
//! request is recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::Notify;

mod download;
mod oauth;

pub use download::Fetch;
pub use oauth::Client;

use download::{download_image, download_video};
use oauth::Code;

/// Seconds a long-lived token lives (60 days).
pub const EXPIRES_IN: i64 = 5_184_000;
/// Seconds a short-lived token lives.
pub const SHORT_EXPIRES_IN: i64 = 3_600;
/// Posts an account may publish through the API in 24 hours.
pub const QUOTA_TOTAL: usize = 100;
/// The oldest Graph API major version the fake serves.
pub const OLDEST_VERSION: u32 = 22;
/// Bytes the fake asks for in one range request when it downloads a video.
pub const RANGE_BYTES: usize = 64 * 1024;

/// A 1×1 baseline JPEG.
pub const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x01, 0x00, 0x48,
    0x00, 0x48, 0x00, 0x00, 0xFF, 0xDB, 0x00, 0x43, 0x00, 0x03, 0x02, 0x02, 0x02, 0x02, 0x02, 0x03,
    0x02, 0x02, 0x02, 0x03, 0x03, 0x03, 0x03, 0x04, 0x06, 0x04, 0x04, 0x04, 0x04, 0x04, 0x08, 0x06,
    0x06, 0x05, 0x06, 0x09, 0x08, 0x0A, 0x0A, 0x09, 0x08, 0x09, 0x09, 0x0A, 0x0C, 0x0F, 0x0C, 0x0A,
    0x0B, 0x0E, 0x0B, 0x09, 0x09, 0x0D, 0x11, 0x0D, 0x0E, 0x0F, 0x10, 0x10, 0x11, 0x10, 0x0A, 0x0C,
    0x12, 0x13, 0x12, 0x10, 0x13, 0x0F, 0x10, 0x10, 0x10, 0xFF, 0xC9, 0x00, 0x0B, 0x08, 0x00, 0x01,
    0x00, 0x01, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xCC, 0x00, 0x06, 0x00, 0x10, 0x10, 0x05, 0xFF, 0xDA,
    0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0xD2, 0xCF, 0x20, 0xFF, 0xD9,
];

/// A distinct JPEG: [`JPEG`] with `tag` after its end.
pub fn jpeg(tag: &str) -> Vec<u8> {
    let mut bytes = JPEG.to_vec();
    bytes.extend_from_slice(tag.as_bytes());
    bytes
}

/// An MP4 (an `ftyp` box, then an `mdat` of `size` filler bytes) that sniffs as
/// `video/mp4`.
pub fn mp4(size: usize) -> Vec<u8> {
    let mut bytes = vec![0x00, 0x00, 0x00, 0x18];
    bytes.extend_from_slice(b"ftypisom\x00\x00\x02\x00isommp41");
    let mdat = u32::try_from(size + 8).expect("size");
    bytes.extend_from_slice(&mdat.to_be_bytes());
    bytes.extend_from_slice(b"mdat");
    bytes.extend((0..size).map(|i| (i.wrapping_mul(31) % 251) as u8));
    bytes
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived.
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A parameter from the query or the form body.
    pub fn param(&self, key: &str) -> Option<String> {
        params(&self.query, &self.body).remove(key)
    }
}

/// The query and form parameters of a request.
fn params(query: &str, body: &[u8]) -> HashMap<String, String> {
    let mut all: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    all.extend(url::form_urlencoded::parse(body).into_owned());
    all
}

/// What a container is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    /// A video carousel item.
    Video,
    Reels,
    Carousel,
}

/// A container's processing state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Finished,
    /// Failed, with Instagram's words.
    Error(String),
    Expired,
    Published,
}

impl Status {
    fn code(&self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Finished => "FINISHED",
            Self::Error(_) => "ERROR",
            Self::Expired => "EXPIRED",
            Self::Published => "PUBLISHED",
        }
    }
}

/// A media container.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub owner: String,
    pub kind: Kind,
    pub is_carousel_item: bool,
    pub caption: Option<String>,
    pub alt_text: Option<String>,
    /// The `image_url` / `video_url` as sent.
    pub url: Option<String>,
    pub children: Vec<String>,
    /// The bytes downloaded from `url`, once downloaded.
    pub bytes: Option<Vec<u8>>,
    pub status: Status,
    /// Status reads still answering IN_PROGRESS once downloaded.
    pub processing_polls: u32,
    pub created: Instant,
}

/// A published media.
#[derive(Debug, Clone)]
pub struct Media {
    pub id: String,
    pub owner: String,
    pub caption: String,
    /// `IMAGE`, `VIDEO` (reels) or `CAROUSEL_ALBUM`.
    pub media_type: String,
    /// The container it was published from (none for media seeded by tests).
    pub container: Option<String>,
    pub permalink: String,
    pub timestamp: DateTime<Utc>,
}

/// A token the fake issued (or a test added).
#[derive(Debug, Clone)]
pub struct Token {
    /// The Instagram user it belongs to.
    pub user: String,
    pub long_lived: bool,
    pub issued: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// What tests arrange and read.
#[derive(Default)]
pub struct Platform {
    /// Instagram users by professional account id: (username, name).
    pub users: HashMap<String, (String, String)>,
    pub tokens: HashMap<String, Token>,
    /// Facebook Pages and the Instagram account linked to each.
    pub pages: HashMap<String, String>,
    pub containers: Vec<Container>,
    pub media: Vec<Media>,
    /// Successful `media_publish` calls.
    pub publishes: usize,
    /// Status reads each new container answers IN_PROGRESS once downloaded.
    pub processing_polls: u32,
    /// How long an unpublished container lives (24 hours), then reads EXPIRED.
    pub container_ttl: std::time::Duration,
    /// The next this many `media_publish` calls answer 9007 / 2207027 (not ready) whatever
    /// the container's status.
    pub not_ready_publishes: u32,
    /// The next `media_publish` that publishes never answers, notifying `hung`.
    pub hang_next_publish: bool,
    /// The next status read of a post's container never answers, notifying `hung`.
    pub hang_next_status: bool,
    pub hung: Arc<Notify>,
    /// Where the fake really downloads media URLs: (prefix, replacement).
    pub media_hosts: Vec<(String, String)>,
    pub fetches: Vec<Fetch>,
    pub clients: HashMap<String, Client>,
    /// The user who approves on the authorize page (none: the page refuses).
    pub approving: Option<String>,
    pub requests: Vec<Recorded>,
    codes: HashMap<String, Code>,
    next: u64,
}

impl Platform {
    fn next(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Media of `user` published within the last 24 hours.
    pub fn quota_usage(&self, user: &str) -> usize {
        let since = Utc::now() - chrono::Duration::hours(24);
        self.media
            .iter()
            .filter(|m| m.owner == user && m.timestamp > since)
            .count()
    }

    /// The media published from containers (not seeded).
    pub fn published(&self) -> Vec<Media> {
        self.media
            .iter()
            .filter(|m| m.container.is_some())
            .cloned()
            .collect()
    }

    /// The container `id`.
    pub fn container(&self, id: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.id == id)
    }

    /// The user a request's token belongs to, or the refusal.
    fn caller(
        &self,
        headers: &HeaderMap,
        params: &HashMap<String, String>,
    ) -> Result<String, Box<Response>> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .or_else(|| params.get("access_token").cloned());
        let Some(token) = token else {
            return Err(Box::new(graph_error(
                StatusCode::BAD_REQUEST,
                2500,
                None,
                "An active access token must be used to query information about the current user.",
            )));
        };
        match self.tokens.get(&token) {
            Some(found) if found.expires > Utc::now() => Ok(found.user.clone()),
            Some(found) => Err(Box::new(graph_error(
                StatusCode::BAD_REQUEST,
                190,
                Some(463),
                &format!(
                    "Error validating access token: Session has expired on {}.",
                    found.expires.format("%A, %d-%b-%y %H:%M:%S UTC")
                ),
            ))),
            None => Err(Box::new(graph_error(
                StatusCode::BAD_REQUEST,
                190,
                None,
                "Invalid OAuth access token - Cannot parse access token",
            ))),
        }
    }
}

type Shared = Arc<Mutex<Platform>>;

/// A running fake Instagram.
pub struct FakeInstagram {
    /// `http://127.0.0.1:PORT`, for the plugin host's overrides.
    pub base: String,
    state: Shared,
}

/// Meta's error envelope.
pub fn graph_error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut error = json!({
        "message": message,
        "type": if code == 190 { "OAuthException" } else { "IGApiException" },
        "code": code,
        "fbtrace_id": "AbCdEfGhIjK",
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

fn bad_request(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, 100, None, message)
}

impl FakeInstagram {
    /// Starts the fake on a loopback port: no users, nothing throttled.
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Platform {
            next: 17_900_000_000_000_000,
            container_ttl: std::time::Duration::from_secs(86_400),
            ..Platform::default()
        }));
        let router = Router::new()
            .route("/oauth/authorize", get(oauth::authorize))
            .route(
                "/oauth/access_token",
                axum::routing::post(oauth::code_exchange),
            )
            .route("/access_token", get(oauth::exchange_token))
            .route("/refresh_access_token", get(oauth::refresh_token))
            .route("/{version}/{id}", get(read_node))
            .route(
                "/{version}/{id}/media",
                get(list_media).post(create_container),
            )
            .route(
                "/{version}/{id}/media_publish",
                axum::routing::post(media_publish),
            )
            .route(
                "/{version}/{id}/content_publishing_limit",
                get(publishing_limit),
            )
            .layer(middleware::from_fn_with_state(state.clone(), record))
            .route("/herald-media/{name}", get(media_file))
            .with_state(state.clone());
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

    /// The fake's state, to arrange or assert on.
    pub fn state(&self) -> MutexGuard<'_, Platform> {
        self.state.lock().expect("fake state")
    }

    /// Adds professional account `id` (`@username`, `name`) with a valid long-lived
    /// `token`.
    pub fn add_user(&self, token: &str, id: &str, username: &str, name: &str) {
        let mut state = self.state();
        state
            .users
            .insert(id.to_owned(), (username.to_owned(), name.to_owned()));
        let now = Utc::now();
        state.tokens.insert(
            token.to_owned(),
            Token {
                user: id.to_owned(),
                long_lived: true,
                issued: now,
                expires: now + chrono::Duration::seconds(EXPIRES_IN),
            },
        );
    }

    /// Media URLs starting with `prefix` are downloaded from `replacement` instead.
    pub fn fetch_from(&self, prefix: &str, replacement: &str) {
        self.state()
            .media_hosts
            .push((prefix.to_owned(), replacement.to_owned()));
    }

    /// Records `count` media of `user` published at `at` (filling the quota).
    pub fn seed_media(&self, user: &str, count: usize, at: DateTime<Utc>) {
        let mut state = self.state();
        for _ in 0..count {
            let id = state.next().to_string();
            state.media.push(Media {
                permalink: format!("https://www.instagram.com/p/seed{id}/"),
                id,
                owner: user.to_owned(),
                caption: "seeded".into(),
                media_type: "IMAGE".into(),
                container: None,
                timestamp: at,
            });
        }
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

/// `/herald-media/<name>.jpg`: media a test posts by URL, as [`jpeg`] (not recorded).
async fn media_file(Path(name): Path<String>) -> Response {
    if name.ends_with(".jpg") {
        ([(header::CONTENT_TYPE, "image/jpeg")], jpeg(&name)).into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such file").into_response()
    }
}

/// Records every request.
async fn record(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    state.lock().expect("fake state").requests.push(Recorded {
        at: Instant::now(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The refusal of an unserved Graph version (`v22.0` and later are served).
fn version_refused(version: &str) -> Option<Response> {
    let major = version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .and_then(|(major, _)| major.parse::<u32>().ok());
    match major {
        Some(major) if major >= OLDEST_VERSION => None,
        _ => Some(graph_error(
            StatusCode::BAD_REQUEST,
            2635,
            None,
            &format!("You are calling a deprecated version of the Graph API ({version})."),
        )),
    }
}

/// Checks the version and the token: the caller's user, or the refusal.
fn authorised(
    state: &Platform,
    version: &str,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<String, Box<Response>> {
    if let Some(refused) = version_refused(version) {
        return Err(Box::new(refused));
    }
    state.caller(headers, params)
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

/// `GET /{version}/{id}`: the token's user (`me`), an Instagram user, a Page, a container
/// or a media.
async fn read_node(
    State(state): State<Shared>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let hung = {
        let mut s = state.lock().expect("fake state");
        let container = s
            .containers
            .iter()
            .any(|c| c.id == id && !c.is_carousel_item);
        (container && std::mem::take(&mut s.hang_next_status)).then(|| s.hung.clone())
    };
    if let Some(hung) = hung {
        // The caller waits for a status that never comes.
        hung.notify_one();
        return std::future::pending::<Response>().await;
    }
    read(&state, &version, &id, &headers, &query)
}

fn read(
    state: &Shared,
    version: &str,
    id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Response {
    let id = id.to_owned();
    let mut s = state.lock().expect("fake state");
    let caller = match authorised(&s, version, headers, query) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if id == "me" {
        // Instagram Login's `me`: an app-scoped id, and the professional account's id.
        let (username, name) = s.users.get(&caller).cloned().unwrap_or_default();
        return axum::Json(json!({
            "id": format!("app-scoped-{caller}"),
            "user_id": caller.parse::<u64>().unwrap_or_default(),
            "username": username, "name": name,
        }))
        .into_response();
    }
    if let Some((username, name)) = s.users.get(&id) {
        return axum::Json(json!({"id": id, "username": username, "name": name})).into_response();
    }
    if let Some(linked) = s.pages.get(&id) {
        return axum::Json(json!({"id": id, "instagram_business_account": {"id": linked}}))
            .into_response();
    }
    let ttl = s.container_ttl;
    if let Some(container) = s.containers.iter_mut().find(|c| c.id == id) {
        if container.owner != caller {
            return not_found(&id);
        }
        if container.status != Status::Published && container.created.elapsed() > ttl {
            container.status = Status::Expired;
        }
        if container.status == Status::InProgress && container.bytes.is_some() {
            if container.processing_polls == 0 {
                container.status = Status::Finished;
            } else {
                container.processing_polls -= 1;
            }
        }
        let status = match &container.status {
            Status::Error(said) => said.clone(),
            other => other.code().to_owned(),
        };
        return axum::Json(json!({
            "id": container.id, "status_code": container.status.code(), "status": status,
        }))
        .into_response();
    }
    if let Some(media) = s.media.iter().find(|m| m.id == id) {
        if media.owner != caller {
            return not_found(&id);
        }
        return axum::Json(json!({
            "id": media.id, "permalink": media.permalink, "caption": media.caption,
            "media_type": media.media_type, "timestamp": timestamp(media.timestamp),
        }))
        .into_response();
    }
    not_found(&id)
}

fn not_found(id: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        100,
        Some(33),
        &format!(
            "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded \
             due to missing permissions, or does not support this operation"
        ),
    )
}

/// `GET /{version}/{ig-user}/media`: the user's media, newest first, `since` (Unix s).
async fn list_media(
    State(state): State<Shared>,
    Path((version, user)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let s = state.lock().expect("fake state");
    let caller = match authorised(&s, &version, &headers, &query) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    let user = if user == "me" { caller.clone() } else { user };
    if user != caller {
        return not_found(&user);
    }
    let since = query
        .get("since")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    let mut listed: Vec<&Media> = s
        .media
        .iter()
        .filter(|m| m.owner == user && m.timestamp.timestamp() >= since)
        .collect();
    listed.sort_by_key(|m| std::cmp::Reverse(m.timestamp));
    let data: Vec<Value> = listed
        .iter()
        .map(|m| {
            json!({"id": m.id, "caption": m.caption, "timestamp": timestamp(m.timestamp),
                   "permalink": m.permalink, "media_type": m.media_type})
        })
        .collect();
    axum::Json(json!({ "data": data })).into_response()
}

/// `GET /{version}/{ig-user}/content_publishing_limit`.
async fn publishing_limit(
    State(state): State<Shared>,
    Path((version, user)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let s = state.lock().expect("fake state");
    let caller = match authorised(&s, &version, &headers, &query) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if user != caller {
        return not_found(&user);
    }
    axum::Json(json!({"data": [{
        "quota_usage": s.quota_usage(&user),
        "config": {"quota_total": QUOTA_TOTAL, "quota_duration": 86_400},
    }]}))
    .into_response()
}

/// The hashtags in `text`, as Instagram counts them.
fn hashtags(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len())
        .filter(|&i| {
            chars[i] == '#'
                && (i == 0
                    || !(chars[i - 1].is_alphanumeric() || matches!(chars[i - 1], '_' | '#')))
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_alphanumeric() || *n == '_')
        })
        .count()
}

/// `POST /{version}/{ig-user}/media`: makes a container, downloading its media.
async fn create_container(
    State(state): State<Shared>,
    Path((version, user)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = params(query.as_deref().unwrap_or_default(), &body);
    let param = |key: &str| params.get(key).cloned().filter(|v| !v.is_empty());
    let (owner, media_hosts) = {
        let s = state.lock().expect("fake state");
        match authorised(&s, &version, &headers, &params) {
            Ok(caller) if caller == user => (caller, s.media_hosts.clone()),
            Ok(_) => return not_found(&user),
            Err(refused) => return *refused,
        }
    };
    let caption = param("caption");
    if let Some(caption) = &caption {
        if caption.chars().count() > 2_200 {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                Some(2_207_010),
                "The caption is longer than 2200 characters",
            );
        }
        if hashtags(caption) > 30 {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                Some(2_207_009),
                "The caption has more than 30 hashtags",
            );
        }
    }
    let carousel_item = param("is_carousel_item").as_deref() == Some("true");
    let media_type = param("media_type");
    let (kind, url) = match (
        media_type.as_deref(),
        param("image_url"),
        param("video_url"),
    ) {
        (None | Some("IMAGE"), Some(url), None) => (Kind::Image, Some(url)),
        (Some("REELS"), None, Some(url)) if !carousel_item => (Kind::Reels, Some(url)),
        (Some("VIDEO"), None, Some(url)) if carousel_item => (Kind::Video, Some(url)),
        (Some("CAROUSEL"), None, None) if !carousel_item => (Kind::Carousel, None),
        _ => {
            return bad_request(
                "Invalid parameter: media_type with image_url, video_url or children",
            );
        }
    };
    if carousel_item && caption.is_some() {
        return bad_request("A carousel item takes no caption");
    }
    let mut children = Vec::new();
    if kind == Kind::Carousel {
        children = param("children")
            .unwrap_or_default()
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        let s = state.lock().expect("fake state");
        let valid = (2..=10).contains(&children.len())
            && children.iter().all(|id| {
                s.container(id).is_some_and(|c| {
                    c.owner == owner && c.is_carousel_item && c.status == Status::Finished
                })
            });
        if !valid {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                Some(2_207_004),
                "children must be 2 to 10 finished carousel item containers of this user",
            );
        }
    }
    let alt_text = param("alt_text");
    // An image is downloaded before the container exists: a failure fails the creation.
    let mut bytes = None;
    if let (Kind::Image, Some(url)) = (kind, &url) {
        match download_image(&state, url, &media_hosts).await {
            Ok(downloaded) => bytes = Some(downloaded),
            Err(problem) => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    9004,
                    Some(2_207_052),
                    &format!("The media could not be fetched from this uri: {url} ({problem})"),
                );
            }
        }
    }
    if kind == Kind::Carousel {
        bytes = Some(Vec::new());
    }
    let id = {
        let mut s = state.lock().expect("fake state");
        let id = s.next().to_string();
        let processing_polls = s.processing_polls;
        s.containers.push(Container {
            id: id.clone(),
            owner,
            kind,
            is_carousel_item: carousel_item,
            caption,
            alt_text,
            url: url.clone(),
            children,
            bytes,
            status: Status::InProgress,
            processing_polls,
            created: Instant::now(),
        });
        id
    };
    if matches!(kind, Kind::Reels | Kind::Video) {
        let url = url.unwrap_or_default();
        let state = state.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let downloaded = download_video(&state, &url, &media_hosts).await;
            let mut s = state.lock().expect("fake state");
            if let Some(container) = s.containers.iter_mut().find(|c| c.id == id) {
                match downloaded {
                    Ok(bytes) => container.bytes = Some(bytes),
                    Err(problem) => {
                        container.status = Status::Error(format!(
                            "Error: Media download has failed. The media URI doesn't meet our \
                             requirements ({problem}). (2207052)"
                        ))
                    }
                }
            }
        });
    }
    axum::Json(json!({ "id": id })).into_response()
}

/// `POST /{version}/{ig-user}/media_publish`.
async fn media_publish(
    State(state): State<Shared>,
    Path((version, user)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (answer, hung) = {
        let mut s = state.lock().expect("fake state");
        let all = params(query.as_deref().unwrap_or_default(), &body);
        let answer = publish(&mut s, &version, &user, &headers, &all);
        let published = answer.status() == StatusCode::OK;
        let hung = (published && std::mem::take(&mut s.hang_next_publish)).then(|| s.hung.clone());
        (answer, hung)
    };
    match hung {
        Some(hung) => {
            // The media exists; the caller waits for an answer that never comes.
            hung.notify_one();
            std::future::pending::<Response>().await
        }
        None => answer,
    }
}

fn publish(
    s: &mut Platform,
    version: &str,
    user: &str,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Response {
    let caller = match authorised(s, version, headers, params) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if caller != user {
        return not_found(user);
    }
    let creation = params.get("creation_id").cloned().unwrap_or_default();
    let Some(status) = s
        .container(&creation)
        .filter(|c| c.owner == caller && !c.is_carousel_item)
        .map(|c| c.status.clone())
    else {
        return not_found(&creation);
    };
    if s.not_ready_publishes > 0 || status == Status::InProgress {
        s.not_ready_publishes = s.not_ready_publishes.saturating_sub(1);
        return graph_error(
            StatusCode::BAD_REQUEST,
            9007,
            Some(2_207_027),
            "The media is not ready for publishing, please wait for a moment",
        );
    }
    match status {
        Status::Finished => {}
        Status::Published => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                Some(2_207_006),
                "The media has already been published",
            );
        }
        Status::Expired => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                Some(2_207_008),
                "The media container has expired",
            );
        }
        Status::Error(_) | Status::InProgress => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                Some(2_207_001),
                "The media failed processing and cannot be published",
            );
        }
    }
    if s.quota_usage(&caller) >= QUOTA_TOTAL {
        return graph_error(
            StatusCode::BAD_REQUEST,
            9,
            Some(2_207_042),
            "You reached maximum number of posts that is allowed to be published by Content Publishing API.",
        );
    }
    let id = s.next().to_string();
    let container = s
        .containers
        .iter_mut()
        .find(|c| c.id == creation)
        .expect("container");
    container.status = Status::Published;
    let media_type = match container.kind {
        Kind::Carousel => "CAROUSEL_ALBUM",
        Kind::Reels | Kind::Video => "VIDEO",
        Kind::Image => "IMAGE",
    };
    let media = Media {
        permalink: format!("https://www.instagram.com/p/C{id}/"),
        id: id.clone(),
        owner: caller,
        caption: container.caption.clone().unwrap_or_default(),
        media_type: media_type.into(),
        container: Some(creation),
        timestamp: Utc::now(),
    };
    s.media.push(media);
    s.publishes += 1;
    axum::Json(json!({ "id": id })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_count_like_the_plugin() {
        assert_eq!(hashtags("#a #b_c x#d ## # #é #1"), 4);
    }

    #[test]
    fn the_test_media_sniff_as_what_they_claim() {
        assert!(jpeg("x").starts_with(&[0xFF, 0xD8, 0xFF]));
        assert_eq!(&mp4(10)[4..8], b"ftyp");
    }
}
