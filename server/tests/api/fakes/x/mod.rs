//! A fake X API v2 built from X's OpenAPI description (`x-openapi.json`) and the traps in
//! `platform-specs/README.md`: `GET /2/users/me`, `POST /2/tweets` (`CreatePostsRequest`,
//! 201 `CreatePostsResponse`; 403 "duplicate content" for the same text again, 402 when
//! the developer account has no credit, 400 over 280 weighted), `GET /2/users/{id}/tweets`
//! (text as X gives it back: `&<>` escaped, links as `t.co` links, a media link
//! appended), `GET /2/tweets/{id}` (with `public_metrics`), the v2 chunked media upload ([`media`]) and OAuth 2.0 with PKCE
//! ([`oauth`]). Answers carry `x-rate-limit-limit/-remaining/-reset` (epoch seconds);
//! errors are `Problem`s. Every request is recorded and counted.
//!
//! It also serves the post's media under `/herald-media/` (not recorded): `<name>.png` a
//! 1×1 PNG, `big-<name>.png` the same padded to [`BIG_IMAGE_BYTES`].

pub mod media;
pub mod oauth;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::media::PNG;

/// `x-rate-limit-limit` of every endpoint (X: per 15-minute window).
pub const RATE_LIMIT: u32 = 100;
/// Size of the `big-*.png` images: three 1 MiB segments.
pub const BIG_IMAGE_BYTES: usize = 2 * 1024 * 1024 + 512 * 1024;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived.
    pub at: Instant,
    /// When it arrived, on the wall clock (X's resets are epoch seconds).
    pub wall: DateTime<Utc>,
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
}

/// An account on the fake.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub name: String,
}

/// A post the fake holds.
#[derive(Debug, Clone)]
pub struct StoredPost {
    pub id: String,
    pub author: String,
    /// The text it was created with.
    pub text: String,
    pub media_ids: Vec<String>,
    /// Its `public_metrics`.
    pub public_metrics: Value,
}

/// What tests arrange and read.
#[derive(Default)]
pub struct Platform {
    /// Accounts by id.
    pub accounts: HashMap<String, Account>,
    /// Valid access tokens and the account id each belongs to.
    pub tokens: HashMap<String, String>,
    pub posts: Vec<StoredPost>,
    pub media: Vec<media::StoredMedia>,
    /// STATUS checks answered `in_progress` after FINALIZE before an upload is processed;
    /// 0 → FINALIZE answers without `processing_info` (as for most images).
    pub processing_checks: u32,
    /// The developer account's pay-per-use balance is empty: `POST /2/tweets` answers 402.
    pub no_credit: bool,
    /// The next this many `POST /2/tweets` answer 429, the window resetting this long
    /// after the request (rounded up to X's whole epoch seconds).
    pub throttle_posts: u32,
    pub throttle_reset_in: Duration,
    /// The reset (epoch seconds) of the last 429 answered.
    pub last_reset: Option<i64>,
    /// The next `POST /2/tweets` that creates a post loses its answer.
    pub lose_next_post_answer: bool,
    /// The next `POST /2/tweets` that creates a post never answers, notifying `hung`.
    pub hang_next_post: bool,
    /// Notified when a creation is held by `hang_next_post`.
    pub hung: Arc<Notify>,
    /// The next this many timeline reads leave the newest post out (X's timelines are
    /// eventually consistent).
    pub timeline_lag: u32,
    pub requests: Vec<Recorded>,
    pub oauth: oauth::OauthState,
    used: HashMap<String, u32>,
    next_id: u64,
}

impl Platform {
    fn next_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    /// The account a request's bearer token belongs to.
    fn caller(&self, headers: &HeaderMap) -> Option<String> {
        bearer(headers).and_then(|token| self.tokens.get(&token).cloned())
    }
}

pub(super) type Shared = Arc<Mutex<Platform>>;

/// A running fake X.
pub struct FakeX {
    /// `http://127.0.0.1:PORT`, for `HostConfig.host_overrides` (`api.x.com:443` and
    /// `x.com:443`, the authorize page).
    pub base: String,
    state: Shared,
}

impl FakeX {
    /// Starts the fake on a loopback port: no accounts, images processed at once, credit
    /// available, no throttling.
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Platform {
            next_id: 1_866_000_000_000_000_000,
            ..Platform::default()
        }));
        let api = Router::new()
            .route("/2/users/me", get(me))
            .route("/2/users/{id}/tweets", get(timeline))
            .route("/2/tweets", post(create_post))
            .route("/2/tweets/{id}", get(show_post))
            .merge(media::routes())
            .route("/2/oauth2/token", post(oauth::token))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                record_and_limit,
            ));
        let router = api
            .route("/i/oauth2/authorize", get(oauth::authorize))
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

    /// Adds account `id` (`@username`) with a valid access `token`.
    pub fn add_account(&self, token: &str, id: &str, username: &str, name: &str) {
        let mut state = self.state();
        state.accounts.insert(
            id.to_owned(),
            Account {
                id: id.to_owned(),
                username: username.to_owned(),
                name: name.to_owned(),
            },
        );
        state.tokens.insert(token.to_owned(), id.to_owned());
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

pub(super) fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

/// A `Problem` answer, as X sends errors.
pub(super) fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let kind = match status {
        StatusCode::BAD_REQUEST => "https://api.x.com/2/problems/invalid-request",
        StatusCode::NOT_FOUND => "https://api.x.com/2/problems/resource-not-found",
        _ => "about:blank",
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        axum::Json(json!({
            "title": title, "detail": detail, "type": kind, "status": status.as_u16()
        })),
    )
        .into_response()
}

pub(super) fn unauthorized() -> Response {
    problem(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
}

/// Records every API request; answers 429 when throttled; adds X's rate-limit headers
/// (per token, a 15-minute window, reset in epoch seconds) to every answer.
async fn record_and_limit(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let now = Utc::now();
    let token = bearer(&parts.headers).unwrap_or_default();
    let throttled = {
        let mut s = state.lock().expect("fake state");
        s.requests.push(Recorded {
            at: Instant::now(),
            wall: now,
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
        *s.used.entry(token.clone()).or_default() += 1;
        let throttle =
            parts.method == "POST" && parts.uri.path() == "/2/tweets" && s.throttle_posts > 0;
        if throttle {
            s.throttle_posts -= 1;
            let reset_at = now + chrono::Duration::from_std(s.throttle_reset_in).expect("delay");
            // Epoch seconds, rounded up: X never resets before the time it states.
            let reset = reset_at.timestamp() + i64::from(reset_at.timestamp_subsec_nanos() > 0);
            s.last_reset = Some(reset);
            Some(reset)
        } else {
            None
        }
    };
    let (mut response, remaining, reset) = match throttled {
        Some(reset) => (
            problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "Too Many Requests",
            ),
            0,
            reset,
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
                (now + chrono::Duration::minutes(15)).timestamp(),
            )
        }
    };
    let headers = response.headers_mut();
    headers.insert("x-rate-limit-limit", HeaderValue::from(RATE_LIMIT));
    headers.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    headers.insert("x-rate-limit-reset", HeaderValue::from(reset));
    response
}

async fn me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let s = state.lock().expect("fake state");
    let Some(account) = s
        .caller(&headers)
        .and_then(|id| s.accounts.get(&id).cloned())
    else {
        return unauthorized();
    };
    axum::Json(json!({
        "data": { "id": account.id, "name": account.name, "username": account.username }
    }))
    .into_response()
}

/// X's weighted length for the tests' texts: every `http(s)://` word 23, characters up to
/// U+10FF 1, others 2.
fn weighted_length(text: &str) -> usize {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            let bare = word.trim_end();
            let weight = |s: &str| -> usize {
                s.chars()
                    .map(|c| if u32::from(c) <= 0x10FF { 1 } else { 2 })
                    .sum()
            };
            if bare.starts_with("https://") || bare.starts_with("http://") {
                23 + weight(&word[bare.len()..])
            } else {
                weight(word)
            }
        })
        .sum()
}

async fn create_post(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = create(&state, &headers, &body);
    let hung = {
        let mut s = state.lock().expect("fake state");
        let created = answer.status() == StatusCode::CREATED;
        (created && std::mem::take(&mut s.hang_next_post)).then(|| s.hung.clone())
    };
    match hung {
        Some(hung) => {
            // The post exists; the caller waits for an answer that never comes.
            hung.notify_one();
            std::future::pending::<Response>().await
        }
        _ => answer,
    }
}

fn create(state: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    let mut s = state.lock().expect("fake state");
    let Some(author) = s.caller(headers) else {
        return unauthorized();
    };
    if s.no_credit {
        return (
            StatusCode::PAYMENT_REQUIRED,
            axum::Json(json!({
                "title": "CreditsDepleted",
                "detail": "Your enrolled account [4242] does not have any credits to fulfill this request.",
                "type": "https://api.twitter.com/2/problems/credits"
            })),
        )
            .into_response();
    }
    let invalid = |detail: &str| problem(StatusCode::BAD_REQUEST, "Invalid Request", detail);
    let Ok(Value::Object(params)) = serde_json::from_slice::<Value>(body) else {
        return invalid("The request body is not valid JSON.");
    };
    const KNOWN: [&str; 16] = [
        "card_uri",
        "community_id",
        "direct_message_deep_link",
        "edit_options",
        "for_super_followers_only",
        "geo",
        "made_with_ai",
        "media",
        "nullcast",
        "paid_partnership",
        "poll",
        "quote_tweet_id",
        "reply",
        "reply_settings",
        "share_with_followers",
        "text",
    ];
    if let Some(unknown) = params.keys().find(|key| !KNOWN.contains(&key.as_str())) {
        return invalid(&format!(
            "The query parameter [{unknown}] is not one of [{}]",
            KNOWN.join(",")
        ));
    }
    let text = params
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let media_ids: Vec<String> = params
        .get("media")
        .and_then(|m| m["media_ids"].as_array())
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if text.trim().is_empty() && media_ids.is_empty() {
        return invalid("Post text or media is required.");
    }
    if weighted_length(&text) > 280 {
        return invalid("Your Post text is too long.");
    }
    if media_ids.len() > 4
        || !media_ids
            .iter()
            .all(|id| s.media.iter().any(|m| m.ready_for(id, &author)))
    {
        return invalid("Your media IDs are invalid.");
    }
    if !text.is_empty() && s.posts.iter().any(|p| p.author == author && p.text == text) {
        return problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "You are not allowed to create a Tweet with duplicate content.",
        );
    }
    let id = s.next_id();
    s.posts.push(StoredPost {
        id: id.clone(),
        author,
        text: text.clone(),
        media_ids,
        public_metrics: json!({
            "retweet_count": 0, "repost_count": 0, "reply_count": 0, "like_count": 0,
            "quote_count": 0, "bookmark_count": 0, "impression_count": 0
        }),
    });
    if std::mem::take(&mut s.lose_next_post_answer) {
        // The post exists; its answer never arrives.
        return super::lost_answer();
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({ "data": { "id": id, "text": text, "edit_history_post_ids": [id] } })),
    )
        .into_response()
}

/// `GET /2/tweets/{id}`: the post, with `public_metrics` when `tweet.fields` asks.
async fn show_post(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let s = state.lock().expect("fake state");
    if s.caller(&headers).is_none() {
        return unauthorized();
    }
    let Some(post) = s.posts.iter().find(|p| p.id == id) else {
        return problem(
            StatusCode::NOT_FOUND,
            "Not Found Error",
            &format!("Could not find tweet with id: [{id}]."),
        );
    };
    let mut data =
        json!({ "id": post.id, "text": rendered(post), "edit_history_post_ids": [post.id] });
    if query
        .get("tweet.fields")
        .is_some_and(|fields| fields.split(',').any(|f| f == "public_metrics"))
    {
        data["public_metrics"] = post.public_metrics.clone();
    }
    axum::Json(json!({ "data": data })).into_response()
}

/// A post's text as X gives it back: `&<>` escaped, links shortened to `t.co`, a link to
/// the media appended.
fn rendered(post: &StoredPost) -> String {
    let escaped = post
        .text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let mut words: Vec<String> = escaped
        .split(' ')
        .enumerate()
        .map(|(n, word)| {
            if word.starts_with("https://") || word.starts_with("http://") {
                format!("https://t.co/L{n}{}", &post.id[post.id.len() - 4..])
            } else {
                word.to_owned()
            }
        })
        .collect();
    if !post.media_ids.is_empty() {
        words.push(format!("https://t.co/M{}", &post.id[post.id.len() - 4..]));
    }
    words.join(" ")
}

async fn timeline(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    if s.caller(&headers).is_none() {
        return unauthorized();
    }
    let max: usize = query
        .get("max_results")
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    if !(5..=100).contains(&max) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Invalid Request",
            "The `max_results` query parameter value is not between 5 and 100",
        );
    }
    let with_attachments = query
        .get("tweet.fields")
        .is_some_and(|fields| fields.split(',').any(|f| f == "attachments"));
    let lagging = s.timeline_lag > 0;
    s.timeline_lag = s.timeline_lag.saturating_sub(1);
    let mut own: Vec<&StoredPost> = s.posts.iter().filter(|p| p.author == id).collect();
    if lagging {
        own.pop();
    }
    let data: Vec<Value> = own
        .iter()
        .rev()
        .take(max)
        .map(|post| {
            let mut json = json!({
                "id": post.id, "text": rendered(post), "edit_history_post_ids": [post.id]
            });
            if with_attachments && !post.media_ids.is_empty() {
                let keys: Vec<String> = post.media_ids.iter().map(|id| format!("3_{id}")).collect();
                json["attachments"] = json!({ "media_keys": keys });
            }
            json
        })
        .collect();
    if data.is_empty() {
        return axum::Json(json!({ "meta": { "result_count": 0 } })).into_response();
    }
    axum::Json(json!({
        "data": data,
        "meta": {
            "result_count": data.len(),
            "newest_id": data.first().map(|p| p["id"].clone()),
            "oldest_id": data.last().map(|p| p["id"].clone()),
        }
    }))
    .into_response()
}

/// The image bytes served as `name`.
pub fn image(name: &str) -> Vec<u8> {
    let mut bytes = PNG.to_vec();
    if name.starts_with("big-") {
        bytes.resize(BIG_IMAGE_BYTES, 0x42);
    }
    bytes
}

async fn media_file(Path(name): Path<String>) -> Response {
    if name.ends_with(".png") {
        ([(header::CONTENT_TYPE, "image/png")], image(&name)).into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "Not Found Error", "no such file")
    }
}
