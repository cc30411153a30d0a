//! A fake Threads API built from Meta's Threads docs, on the paths of `graph.threads.net`
//! and `threads.net` (route both here). API paths start with `/v1.0`; the token comes as
//! `Authorization: Bearer` or the `access_token` parameter.
//! - `GET /v1.0/me?fields=id,username,name`.
//! - `POST /v1.0/{user}/threads` (`media_type` TEXT, IMAGE, VIDEO or CAROUSEL, `text` up
//!   to 500 characters, `image_url`/`video_url`, `is_carousel_item`, `children`,
//!   `alt_text`): a container; its media downloaded at once from the URL (see
//!   [`super::meta_fetch`]: a failed download is 9004 / 2207052). A container answers
//!   `IN_PROGRESS` for as many status reads as the test sets, then `FINISHED`.
//! - `GET /v1.0/{id}?fields=status,error_message` (a container) or `?fields=permalink`
//!   (a thread).
//! - `POST /v1.0/{user}/threads_publish` (`creation_id`): a container not `FINISHED` is
//!   code 24 / subcode 4279009 (too early); publishing makes the thread and marks the
//!   container `PUBLISHED`; a published container cannot be published again.
//! - `GET /v1.0/{user}/threads_publishing_limit?fields=quota_usage,config`: posts in the
//!   last 24 hours of 250 (`quota_used` adds to it).
//! - `GET /v1.0/{user}/threads`: the latest threads (`id`, `text`, `timestamp`,
//!   `permalink`).
//! - Threads Login: `GET /oauth/authorize` (approves, redirects with `code`),
//!   `POST /oauth/access_token` (a code, single-use, bound to client and redirect URI →
//!   short-lived token and `user_id`), `GET /access_token?grant_type=th_exchange_token`
//!   (→ a 60-day token), `GET /refresh_access_token?grant_type=th_refresh_token` (→ a new
//!   60-day token).
//!
//! Errors are Meta's envelope; tests queue failures for the next publishing calls.
//! Every request is recorded; threads published are counted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::facebook::{Failure, graph_error};
use super::meta_fetch::{self, Fetched, Routes};

/// Seconds a long-lived token lives (60 days).
pub const LONG_LIVED_SECONDS: i64 = 5_184_000;
/// Posts per 24 hours.
pub const QUOTA_TOTAL: u32 = 250;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Bytes,
}

impl Recorded {
    /// A form or query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(&self.body)
            .chain(url::form_urlencoded::parse(self.query.as_bytes()))
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// A media container.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub user: String,
    pub media_type: String,
    pub text: String,
    pub carousel_item: bool,
    /// Ids of a carousel's items.
    pub children: Vec<String>,
    pub alt: Option<String>,
    /// The media downloaded for it.
    pub fetched: Option<Fetched>,
    /// Status reads still answering `IN_PROGRESS`.
    pub processing_reads: u32,
    pub published: bool,
}

impl Container {
    fn status(&self) -> &'static str {
        match (self.published, self.processing_reads) {
            (true, _) => "PUBLISHED",
            (false, 0) => "FINISHED",
            (false, _) => "IN_PROGRESS",
        }
    }
}

/// A published thread.
#[derive(Debug, Clone)]
pub struct Thread {
    pub id: String,
    pub user: String,
    /// The container it was published from.
    pub container: String,
    pub text: String,
    pub permalink: String,
}

/// What tests arrange and read.
#[derive(Default)]
pub struct Platform {
    /// Valid tokens and their user id.
    pub tokens: HashMap<String, String>,
    /// Usernames by user id.
    pub users: HashMap<String, String>,
    pub containers: Vec<Container>,
    pub threads: Vec<Thread>,
    /// Status reads each new container answers `IN_PROGRESS`.
    pub processing_reads: u32,
    /// The next this many `threads_publish` answer 24 / 4279009 (too early) even for a
    /// finished container.
    pub too_early: u32,
    /// Failures the next publishing calls (`threads`, `threads_publish`) answer.
    pub failures: VecDeque<Failure>,
    /// The next `threads_publish` publishes, then answers an unknown error (code 2).
    pub fail_after_publishing: bool,
    /// Posts counted in the quota window besides the threads published here.
    pub quota_used: u32,
    pub fetch_failures: Vec<String>,
    /// OAuth apps: id → (secret, redirect URIs).
    pub clients: HashMap<String, (String, Vec<String>)>,
    /// The user who approves on the authorize page.
    pub approving: Option<String>,
    pub requests: Vec<Recorded>,
    codes: HashMap<String, (String, String, String, bool)>,
    short_tokens: HashMap<String, String>,
    next: u64,
}

impl Platform {
    fn next(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

type Shared = Arc<Mutex<Platform>>;

#[derive(Clone)]
struct AppState {
    platform: Shared,
    routes: Routes,
}

/// A running fake Threads.
pub struct FakeThreads {
    /// `http://127.0.0.1:PORT`, for `graph.threads.net:443` and `threads.net:443`.
    pub base: String,
    state: Shared,
    routes: Routes,
}

impl FakeThreads {
    /// Starts the fake on a loopback port.
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Platform {
            next: 17_900_000_000_000_000,
            ..Platform::default()
        }));
        let routes: Routes = Arc::default();
        let router = Router::new()
            .route("/v1.0/me", get(me))
            .route("/v1.0/{id}", get(object))
            .route("/v1.0/{user}/threads", get(list_threads).post(create))
            .route("/v1.0/{user}/threads_publish", post(publish))
            .route("/v1.0/{user}/threads_publishing_limit", get(limit))
            .route("/oauth/authorize", get(authorize))
            .route("/oauth/access_token", post(exchange_code))
            .route("/access_token", get(exchange_long))
            .route("/refresh_access_token", get(refresh))
            .layer(middleware::from_fn_with_state(state.clone(), record))
            .with_state(AppState {
                platform: state.clone(),
                routes: routes.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        Self {
            base: format!("http://{addr}"),
            state,
            routes,
        }
    }

    /// The fake's state, to arrange or assert on.
    pub fn state(&self) -> MutexGuard<'_, Platform> {
        self.state.lock().expect("fake state")
    }

    /// Routes the fake's downloads of URLs starting with `prefix` to `base`.
    pub fn route_media(&self, prefix: &str, base: &str) {
        self.routes
            .lock()
            .expect("routes")
            .push((prefix.to_owned(), base.to_owned()));
    }

    /// Adds user `id` (`username`) with a valid `token`.
    pub fn add_user(&self, token: &str, id: &str, username: &str) {
        let mut state = self.state();
        state.tokens.insert(token.into(), id.into());
        state.users.insert(id.into(), username.into());
    }

    /// Requests received with `method` whose path ends with `suffix`.
    pub fn requests_to(&self, method: &str, suffix: &str) -> Vec<Recorded> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .cloned()
            .collect()
    }
}

async fn record(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    state.lock().expect("fake state").requests.push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        body: body.clone(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

fn expired() -> Response {
    graph_error(
        400,
        190,
        None,
        "Error validating access token: Session has expired.",
    )
}

fn params(query: &HashMap<String, String>, body: &Bytes) -> HashMap<String, String> {
    let mut all = query.clone();
    all.extend(url::form_urlencoded::parse(body).into_owned());
    all
}

/// The user the request's token belongs to.
fn caller(s: &Platform, headers: &HeaderMap, params: &HashMap<String, String>) -> Option<String> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| params.get("access_token").cloned())?;
    s.tokens.get(&token).cloned()
}

/// The refusal of a call whose token is not `user`'s.
fn not_user(
    s: &Platform,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    user: &str,
) -> Option<Response> {
    match caller(s, headers, params) {
        Some(found) if found == user => None,
        Some(_) => Some(graph_error(
            400,
            100,
            Some(33),
            "Object does not exist, cannot be loaded due to missing permissions",
        )),
        None => Some(expired()),
    }
}

fn queued_failure(s: &mut Platform) -> Option<Response> {
    let failure = s.failures.pop_front()?;
    Some(graph_error(
        failure.status,
        failure.code,
        failure.subcode,
        &failure.message,
    ))
}

async fn me(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = app.platform.lock().expect("fake state");
    let Some(user) = caller(&s, &headers, &query) else {
        return expired();
    };
    let username = s.users.get(&user).cloned().unwrap_or_default();
    axum::Json(json!({"id": user, "username": username, "name": format!("{username} on Threads")}))
        .into_response()
}

/// A container's status or a thread's permalink.
async fn object(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut s = app.platform.lock().expect("fake state");
    let Some(user) = caller(&s, &headers, &query) else {
        return expired();
    };
    if let Some(thread) = s.threads.iter().find(|t| t.id == id && t.user == user) {
        return axum::Json(json!({"id": thread.id, "permalink": thread.permalink})).into_response();
    }
    match s
        .containers
        .iter_mut()
        .find(|c| c.id == id && c.user == user)
    {
        Some(container) => {
            let status = container.status();
            if status == "IN_PROGRESS" {
                container.processing_reads -= 1;
            }
            axum::Json(json!({"id": container.id, "status": status})).into_response()
        }
        None => graph_error(400, 100, Some(33), "Object does not exist"),
    }
}

async fn create(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(&query, &body);
    let param = |key: &str| params.get(key).cloned().unwrap_or_default();
    let media_type = param("media_type");
    let carousel_item = param("is_carousel_item") == "true";
    let children: Vec<String> = param("children")
        .split(',')
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    {
        let mut s = app.platform.lock().expect("fake state");
        if let Some(refused) = not_user(&s, &headers, &params, &user) {
            return refused;
        }
        if let Some(failure) = queued_failure(&mut s) {
            return failure;
        }
        if param("text").chars().count() > 500 {
            return graph_error(
                400,
                100,
                None,
                "(#100) The text is longer than 500 characters",
            );
        }
        let valid = match media_type.as_str() {
            "TEXT" => !carousel_item,
            "IMAGE" => !param("image_url").is_empty(),
            "VIDEO" => !param("video_url").is_empty(),
            "CAROUSEL" => {
                (2..=20).contains(&children.len())
                    && children.iter().all(|id| {
                        s.containers.iter().any(|c| {
                            &c.id == id
                                && c.user == user
                                && c.carousel_item
                                && c.status() == "FINISHED"
                        })
                    })
            }
            _ => false,
        };
        if !valid {
            return graph_error(
                400,
                100,
                None,
                &format!("(#100) Invalid parameters for media_type {media_type:?}"),
            );
        }
    }
    let fetched = match media_type.as_str() {
        "IMAGE" => Some(meta_fetch::image(&app.routes, &param("image_url")).await),
        "VIDEO" => Some(meta_fetch::video(&app.routes, &param("video_url")).await),
        _ => None,
    };
    let fetched = match fetched {
        None => None,
        Some(Ok(fetched)) => Some(fetched),
        Some(Err(why)) => {
            app.platform
                .lock()
                .expect("fake state")
                .fetch_failures
                .push(why.clone());
            return graph_error(
                400,
                9004,
                Some(2_207_052),
                &format!("The media could not be fetched from this uri: {why}"),
            );
        }
    };
    let mut s = app.platform.lock().expect("fake state");
    let id = s.next().to_string();
    let processing_reads = s.processing_reads;
    s.containers.push(Container {
        id: id.clone(),
        user,
        media_type,
        text: param("text"),
        carousel_item,
        children,
        alt: params.get("alt_text").cloned(),
        fetched,
        processing_reads,
        published: false,
    });
    axum::Json(json!({ "id": id })).into_response()
}

async fn publish(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(&query, &body);
    let mut s = app.platform.lock().expect("fake state");
    if let Some(refused) = not_user(&s, &headers, &params, &user) {
        return refused;
    }
    if let Some(failure) = queued_failure(&mut s) {
        return failure;
    }
    let creation = params.get("creation_id").cloned().unwrap_or_default();
    let Some(index) = s
        .containers
        .iter()
        .position(|c| c.id == creation && c.user == user && !c.carousel_item)
    else {
        return graph_error(
            400,
            100,
            Some(33),
            "(#100) creation_id is not a container of this user",
        );
    };
    let status = s.containers[index].status();
    if status == "PUBLISHED" {
        return graph_error(
            400,
            10,
            None,
            "(#10) This container has already been published",
        );
    }
    if status != "FINISHED" || s.too_early > 0 {
        s.too_early = s.too_early.saturating_sub(1);
        return graph_error(
            400,
            24,
            Some(4_279_009),
            "The requested resource does not exist: the media is not ready to be published",
        );
    }
    s.containers[index].published = true;
    let id = s.next().to_string();
    let username = s.users.get(&user).cloned().unwrap_or_default();
    let text = s.containers[index].text.clone();
    s.threads.push(Thread {
        id: id.clone(),
        user,
        container: creation,
        text,
        permalink: format!("https://www.threads.net/@{username}/post/C{id}"),
    });
    if std::mem::take(&mut s.fail_after_publishing) {
        return graph_error(
            500,
            2,
            None,
            "An unexpected error has occurred. Please retry your request later.",
        );
    }
    axum::Json(json!({ "id": id })).into_response()
}

async fn limit(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = app.platform.lock().expect("fake state");
    if let Some(refused) = not_user(&s, &headers, &query, &user) {
        return refused;
    }
    let used = s.quota_used + s.threads.iter().filter(|t| t.user == user).count() as u32;
    axum::Json(json!({"data": [{
        "quota_usage": used,
        "config": {"quota_total": QUOTA_TOTAL, "quota_duration": 86_400},
    }]}))
    .into_response()
}

async fn list_threads(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = app.platform.lock().expect("fake state");
    if let Some(refused) = not_user(&s, &headers, &query, &user) {
        return refused;
    }
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25);
    let data: Vec<Value> = s
        .threads
        .iter()
        .rev()
        .filter(|t| t.user == user)
        .take(limit)
        .map(|t| json!({"id": t.id, "text": t.text, "permalink": t.permalink, "timestamp": "2026-12-05T10:00:00+0000"}))
        .collect();
    axum::Json(json!({ "data": data })).into_response()
}

async fn authorize(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = app.platform.lock().expect("fake state");
    let param = |key: &str| query.get(key).cloned().unwrap_or_default();
    let (client_id, redirect_uri) = (param("client_id"), param("redirect_uri"));
    let known = s
        .clients
        .get(&client_id)
        .is_some_and(|(_, uris)| uris.contains(&redirect_uri));
    if !known
        || param("response_type") != "code"
        || !param("scope").contains("threads_content_publish")
    {
        return (StatusCode::BAD_REQUEST, "Invalid request").into_response();
    }
    let Some(user) = s.approving.clone() else {
        return (StatusCode::FORBIDDEN, "The user cancelled").into_response();
    };
    let code = format!("THcode{}", s.next());
    s.codes
        .insert(code.clone(), (client_id, redirect_uri.clone(), user, false));
    let location = reqwest::Url::parse_with_params(
        &redirect_uri,
        &[("code", code), ("state", param("state"))],
    )
    .expect("redirect URI");
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

async fn exchange_code(State(app): State<AppState>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |key: &str| form.get(key).cloned().unwrap_or_default();
    let mut s = app.platform.lock().expect("fake state");
    if s.clients
        .get(&field("client_id"))
        .is_none_or(|(secret, _)| *secret != field("client_secret"))
    {
        return graph_error(
            400,
            101,
            None,
            "Error validating application. Invalid application ID.",
        );
    }
    let code = field("code");
    let valid = field("grant_type") == "authorization_code"
        && s.codes
            .get(&code)
            .is_some_and(|(client, redirect, _, used)| {
                !used && *client == field("client_id") && *redirect == field("redirect_uri")
            });
    if !valid {
        return graph_error(
            400,
            100,
            Some(36009),
            "This authorization code has been used.",
        );
    }
    let entry = s.codes.get_mut(&code).expect("code");
    entry.3 = true;
    let user = entry.2.clone();
    let short = format!("THshort{}", s.next());
    s.short_tokens.insert(short.clone(), user.clone());
    s.tokens.insert(short.clone(), user.clone());
    let user_id: u64 = user.parse().unwrap_or_default();
    axum::Json(json!({"access_token": short, "user_id": user_id})).into_response()
}

async fn exchange_long(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |key: &str| query.get(key).cloned().unwrap_or_default();
    let mut s = app.platform.lock().expect("fake state");
    if param("grant_type") != "th_exchange_token"
        || !s
            .clients
            .values()
            .any(|(secret, _)| *secret == param("client_secret"))
    {
        return graph_error(400, 101, None, "Error validating application.");
    }
    let Some(user) = s.short_tokens.remove(&param("access_token")) else {
        return expired();
    };
    let long = format!("THlong{}", s.next());
    s.tokens.insert(long.clone(), user);
    axum::Json(
        json!({"access_token": long, "token_type": "bearer", "expires_in": LONG_LIVED_SECONDS}),
    )
    .into_response()
}

async fn refresh(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |key: &str| query.get(key).cloned().unwrap_or_default();
    let mut s = app.platform.lock().expect("fake state");
    let token = param("access_token");
    if param("grant_type") != "th_refresh_token" || s.short_tokens.contains_key(&token) {
        return graph_error(
            400,
            100,
            None,
            "(#100) Only long-lived tokens can be refreshed",
        );
    }
    let Some(user) = s.tokens.get(&token).cloned() else {
        return expired();
    };
    let renewed = format!("THlong{}", s.next());
    s.tokens.insert(renewed.clone(), user);
    axum::Json(
        json!({"access_token": renewed, "token_type": "bearer", "expires_in": LONG_LIVED_SECONDS}),
    )
    .into_response()
}
