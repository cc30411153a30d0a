//! A fake Facebook Graph API for Pages, built from `Page.json`, `meta-User.json` and
//! `meta-PagePost.json` (`../shared/platform-specs/`) and Meta's docs, on the paths of
//! `graph.facebook.com`, `graph-video.facebook.com` and `www.facebook.com` (route all
//! three here). Every Graph path starts with a version (`/v25.0/…`; an unknown one is
//! refused). The token comes as `Authorization: Bearer` or the `access_token` parameter.
//! - `GET /me/accounts`: the user token's Pages (`{data: [{id, name, access_token}]}`);
//!   `GET /{page}?fields=…`: one Page with its token, for a user who manages it.
//! - `POST /{page}/photos` (`url`, `published`, `alt_text_custom`): downloads `url` (see
//!   [`super::meta_fetch`]); unpublished photos wait to be attached.
//! - `POST /{page}/feed` (`message`, `link`, `attached_media` as a JSON list of
//!   `{media_fbid}`): a Page token of that Page only; the same message and attachments on
//!   the same Page again → 506 "Duplicate status message"; `GET /{page}/feed`: the latest
//!   posts (`id`, `message`, `created_time`).
//! - `POST /{page}/videos` (`file_url`, `description`): downloads the video in ranges;
//!   `GET /{page}/videos`: the latest videos.
//! - Facebook Login: `GET /{v}/dialog/oauth` approves at once and redirects with `code`;
//!   `POST /{v}/oauth/access_token` exchanges a code (single-use, bound to client and
//!   redirect URI) for a short-lived token and `grant_type=fb_exchange_token` that for a
//!   long-lived one (60 days).
//!
//! Errors are Meta's envelope `{"error": {message, type, code, error_subcode,
//! fbtrace_id}}`; tests queue failures for the next publishing calls (throttling with
//! `X-Business-Use-Case-Usage`, 368, 1/2, …) and can lose an answer, or answer an
//! unknown error, after the post was made. Every request is recorded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::meta_fetch::{self, Fetched, Routes};

/// Seconds a long-lived user token lives (60 days).
pub const LONG_LIVED_SECONDS: i64 = 5_184_000;
/// The oldest Graph version the fake serves.
pub const OLDEST_MAJOR: u32 = 23;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    /// A form or query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        let form = String::from_utf8_lossy(&self.body);
        url::form_urlencoded::parse(form.as_bytes())
            .chain(url::form_urlencoded::parse(self.query.as_bytes()))
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// A Page.
#[derive(Debug, Clone)]
pub struct FakePage {
    pub id: String,
    pub name: String,
    /// Its Page access token.
    pub token: String,
}

/// A photo posted to `/{page}/photos`.
#[derive(Debug, Clone)]
pub struct Photo {
    pub id: String,
    pub page: String,
    pub published: bool,
    pub alt: Option<String>,
    pub fetched: Fetched,
}

/// A post on a Page's feed (or a video).
#[derive(Debug, Clone)]
pub struct StoredPost {
    /// `<page>_<post>` (a feed post) or the video id.
    pub id: String,
    pub page: String,
    pub message: String,
    pub link: Option<String>,
    /// Ids of the photos attached.
    pub photos: Vec<String>,
    /// The video, for a video post.
    pub video: Option<Fetched>,
}

/// A failure the next publishing call answers.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    /// `X-Business-Use-Case-Usage`'s `estimated_time_to_regain_access`, in minutes.
    pub regain_minutes: Option<u32>,
}

impl Failure {
    /// A Meta error with `code` and `message`, HTTP 400.
    pub fn new(code: i64, message: &str) -> Self {
        Self {
            status: 400,
            code,
            subcode: None,
            message: message.into(),
            regain_minutes: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Code {
    client_id: String,
    redirect_uri: String,
    user: String,
    used: bool,
}

/// What tests arrange and read.
#[derive(Default)]
pub struct Platform {
    /// User tokens and the user each belongs to.
    pub user_tokens: HashMap<String, String>,
    /// The Pages each user manages.
    pub pages: HashMap<String, Vec<FakePage>>,
    pub photos: Vec<Photo>,
    pub posts: Vec<StoredPost>,
    /// Failures the next publishing calls (`POST` to feed, photos, videos) answer.
    pub failures: VecDeque<Failure>,
    /// The next post created loses its answer.
    pub lose_next_answer: bool,
    /// The next feed post created is answered with an unknown error (code 2) instead.
    pub error_after_posting: bool,
    /// Media downloads that failed, with why.
    pub fetch_failures: Vec<String>,
    /// OAuth apps: id → (secret, redirect URIs).
    pub clients: HashMap<String, (String, Vec<String>)>,
    /// The user who approves on the Login dialog.
    pub approving: Option<String>,
    pub requests: Vec<Recorded>,
    codes: HashMap<String, Code>,
    /// Short-lived tokens (exchangeable for long-lived ones) and their user.
    short_tokens: HashMap<String, String>,
    next: u64,
}

impl Platform {
    fn next(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The Page a Page token belongs to.
    fn page_of_token(&self, token: &str) -> Option<FakePage> {
        self.pages
            .values()
            .flatten()
            .find(|page| page.token == token)
            .cloned()
    }
}

type Shared = Arc<Mutex<Platform>>;

#[derive(Clone)]
struct AppState {
    platform: Shared,
    routes: Routes,
}

/// A running fake Facebook.
pub struct FakeFacebook {
    /// `http://127.0.0.1:PORT`, for `graph.facebook.com:443`, `graph-video.facebook.com:443`
    /// and `www.facebook.com:443`.
    pub base: String,
    state: Shared,
    routes: Routes,
}

impl FakeFacebook {
    /// Starts the fake on a loopback port.
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Platform {
            next: 100_000_000_000,
            ..Platform::default()
        }));
        let routes: Routes = Arc::default();
        let app_state = AppState {
            platform: state.clone(),
            routes: routes.clone(),
        };
        let router = Router::new()
            .route("/{version}/me/accounts", get(accounts))
            .route("/{version}/dialog/oauth", get(dialog))
            .route("/{version}/oauth/access_token", axum::routing::post(token))
            .route("/{version}/{page}", get(page))
            .route("/{version}/{page}/feed", get(list_feed).post(create_feed))
            .route(
                "/{version}/{page}/photos",
                axum::routing::post(create_photo),
            )
            .route(
                "/{version}/{page}/videos",
                get(list_videos).post(create_video),
            )
            .layer(middleware::from_fn_with_state(state.clone(), record))
            .with_state(app_state);
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

    /// Adds `user` with user `token`, managing `pages` (id, name); each Page's token is
    /// `page-token-<id>`.
    pub fn add_user(&self, token: &str, user: &str, pages: &[(&str, &str)]) {
        let mut state = self.state();
        state.user_tokens.insert(token.into(), user.into());
        let pages = pages
            .iter()
            .map(|(id, name)| FakePage {
                id: (*id).into(),
                name: (*name).into(),
                token: format!("page-token-{id}"),
            })
            .collect();
        state.pages.insert(user.into(), pages);
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

/// Meta's error envelope.
pub fn graph_error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut error = json!({
        "message": message, "type": "OAuthException", "code": code,
        "fbtrace_id": "AbCdEfGhIjK",
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    (
        StatusCode::from_u16(status).expect("status"),
        axum::Json(json!({ "error": error })),
    )
        .into_response()
}

fn expired() -> Response {
    graph_error(
        400,
        190,
        Some(463),
        "Error validating access token: Session has expired.",
    )
}

/// Records every request.
async fn record(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    state.lock().expect("fake state").requests.push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The refusal of an unknown or retired version.
fn bad_version(version: &str) -> Option<Response> {
    let major = version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .and_then(|(major, _)| major.parse::<u32>().ok());
    match major {
        Some(major) if major >= OLDEST_MAJOR => None,
        _ => Some(graph_error(
            400,
            2635,
            None,
            &format!(
                "(#2635) The Graph API version {version} does not exist or is no longer available."
            ),
        )),
    }
}

/// The request's parameters: query and form.
fn params(query: &HashMap<String, String>, body: &Bytes) -> HashMap<String, String> {
    let mut all = query.clone();
    all.extend(url::form_urlencoded::parse(body).into_owned());
    all
}

/// The request's token: Bearer header or `access_token` parameter.
fn token_of(headers: &HeaderMap, params: &HashMap<String, String>) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| params.get("access_token").cloned())
        .unwrap_or_default()
}

async fn accounts(
    State(app): State<AppState>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = bad_version(&version) {
        return refused;
    }
    let s = app.platform.lock().expect("fake state");
    let token = token_of(&headers, &query);
    let Some(user) = s.user_tokens.get(&token) else {
        return expired();
    };
    let data: Vec<Value> = s
        .pages
        .get(user)
        .into_iter()
        .flatten()
        .map(|page| json!({"id": page.id, "name": page.name, "access_token": page.token, "category": "Bakery", "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MODERATE", "MANAGE"]}))
        .collect();
    axum::Json(
        json!({ "data": data, "paging": {"cursors": {"before": "QVFIUk", "after": "QVFIUl"}} }),
    )
    .into_response()
}

async fn page(
    State(app): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = bad_version(&version) {
        return refused;
    }
    let s = app.platform.lock().expect("fake state");
    let token = token_of(&headers, &query);
    let Some(user) = s.user_tokens.get(&token) else {
        return expired();
    };
    match s.pages.get(user).into_iter().flatten().find(|p| p.id == id) {
        Some(page) => {
            axum::Json(json!({"id": page.id, "name": page.name, "access_token": page.token}))
                .into_response()
        }
        None => graph_error(
            400,
            100,
            Some(33),
            &format!(
                "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
        ),
    }
}

/// The refusal of a publishing call not made with that very Page's token.
fn not_publisher(
    s: &Platform,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    page: &str,
) -> Option<Response> {
    let token = token_of(headers, params);
    if s.user_tokens.contains_key(&token) {
        return Some(graph_error(
            403,
            200,
            None,
            "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an admin with sufficient administrative permission",
        ));
    }
    match s.page_of_token(&token) {
        Some(found) if found.id == page => None,
        Some(_) => Some(graph_error(
            403,
            200,
            None,
            "(#200) The page token does not belong to this Page",
        )),
        None => Some(expired()),
    }
}

/// The queued failure for the next publishing call, as an answer.
fn queued_failure(s: &mut Platform, page: &str) -> Option<Response> {
    let failure = s.failures.pop_front()?;
    let mut answer = graph_error(
        failure.status,
        failure.code,
        failure.subcode,
        &failure.message,
    );
    if let Some(minutes) = failure.regain_minutes {
        let usage = json!({ page: [{
            "type": "pages", "call_count": 100, "total_cputime": 30, "total_time": 40,
            "estimated_time_to_regain_access": minutes,
        }]});
        answer.headers_mut().insert(
            "x-business-use-case-usage",
            usage.to_string().parse().expect("header"),
        );
    }
    Some(answer)
}

async fn create_photo(
    State(app): State<AppState>,
    Path((version, page)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = bad_version(&version) {
        return refused;
    }
    let params = params(&query, &body);
    {
        let mut s = app.platform.lock().expect("fake state");
        if let Some(refused) = not_publisher(&s, &headers, &params, &page) {
            return refused;
        }
        if let Some(failure) = queued_failure(&mut s, &page) {
            return failure;
        }
    }
    let url = params.get("url").cloned().unwrap_or_default();
    let fetched = match meta_fetch::image(&app.routes, &url).await {
        Ok(fetched) => fetched,
        Err(why) => return not_fetched(&app.platform, why),
    };
    let mut s = app.platform.lock().expect("fake state");
    let id = s.next().to_string();
    let published = params.get("published").map(String::as_str) != Some("false");
    s.photos.push(Photo {
        id: id.clone(),
        page: page.clone(),
        published,
        alt: params.get("alt_text_custom").cloned(),
        fetched,
    });
    if published {
        let post = format!("{page}_{}", s.next());
        s.posts.push(StoredPost {
            id: post.clone(),
            page,
            message: params.get("message").cloned().unwrap_or_default(),
            link: None,
            photos: vec![id.clone()],
            video: None,
        });
        return axum::Json(json!({"id": id, "post_id": post})).into_response();
    }
    axum::Json(json!({ "id": id })).into_response()
}

/// Meta's answer when it could not download a media URL.
fn not_fetched(state: &Shared, why: String) -> Response {
    state
        .lock()
        .expect("fake state")
        .fetch_failures
        .push(why.clone());
    graph_error(
        400,
        9004,
        Some(2_207_052),
        &format!("The media could not be fetched from this uri: {why}"),
    )
}

async fn create_feed(
    State(app): State<AppState>,
    Path((version, page)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = bad_version(&version) {
        return refused;
    }
    let params = params(&query, &body);
    let mut s = app.platform.lock().expect("fake state");
    if let Some(refused) = not_publisher(&s, &headers, &params, &page) {
        return refused;
    }
    if let Some(failure) = queued_failure(&mut s, &page) {
        return failure;
    }
    let message = params.get("message").cloned().unwrap_or_default();
    let link = params.get("link").cloned();
    let photos: Vec<String> = match params.get("attached_media") {
        None => vec![],
        Some(text) => match serde_json::from_str::<Vec<Value>>(text) {
            Ok(list) => list
                .iter()
                .map(|item| item["media_fbid"].as_str().unwrap_or_default().to_owned())
                .collect(),
            Err(_) => {
                return graph_error(
                    400,
                    100,
                    None,
                    "(#100) param attached_media must be an array",
                );
            }
        },
    };
    let attachable = |id: &String| {
        s.photos
            .iter()
            .any(|photo| &photo.id == id && photo.page == page && !photo.published)
    };
    if !photos.iter().all(attachable) {
        return graph_error(
            400,
            100,
            None,
            "(#100) attached_media must be unpublished photos of this Page",
        );
    }
    if message.is_empty() && photos.is_empty() && link.is_none() {
        return graph_error(400, 100, None, "(#100) Missing message or attachment");
    }
    if s.posts
        .iter()
        .any(|p| p.page == page && p.message == message && p.photos.len() == photos.len())
    {
        return graph_error(400, 506, None, "Duplicate status message");
    }
    let id = format!("{page}_{}", s.next());
    for photo in s.photos.iter_mut().filter(|p| photos.contains(&p.id)) {
        photo.published = true;
    }
    s.posts.push(StoredPost {
        id: id.clone(),
        page,
        message,
        link,
        photos,
        video: None,
    });
    if std::mem::take(&mut s.lose_next_answer) {
        return super::lost_answer();
    }
    if std::mem::take(&mut s.error_after_posting) {
        return graph_error(
            500,
            2,
            None,
            "An unexpected error has occurred. Please retry your request later.",
        );
    }
    axum::Json(json!({ "id": id })).into_response()
}

async fn create_video(
    State(app): State<AppState>,
    Path((version, page)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = bad_version(&version) {
        return refused;
    }
    let params = params(&query, &body);
    {
        let mut s = app.platform.lock().expect("fake state");
        if let Some(refused) = not_publisher(&s, &headers, &params, &page) {
            return refused;
        }
        if let Some(failure) = queued_failure(&mut s, &page) {
            return failure;
        }
    }
    let url = params.get("file_url").cloned().unwrap_or_default();
    let fetched = match meta_fetch::video(&app.routes, &url).await {
        Ok(fetched) => fetched,
        Err(why) => return not_fetched(&app.platform, why),
    };
    let mut s = app.platform.lock().expect("fake state");
    let id = s.next().to_string();
    s.posts.push(StoredPost {
        id: id.clone(),
        page,
        message: params.get("description").cloned().unwrap_or_default(),
        link: None,
        photos: vec![],
        video: Some(fetched),
    });
    if std::mem::take(&mut s.lose_next_answer) {
        return super::lost_answer();
    }
    axum::Json(json!({ "id": id })).into_response()
}

/// The Page's latest items, newest first: feed posts or videos.
fn latest(
    app: &AppState,
    version: &str,
    page: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    videos: bool,
) -> Response {
    if let Some(refused) = bad_version(version) {
        return refused;
    }
    let s = app.platform.lock().expect("fake state");
    let token = token_of(headers, query);
    if s.page_of_token(&token).is_none_or(|p| p.id != page) {
        return expired();
    }
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25);
    let data: Vec<Value> = s
        .posts
        .iter()
        .rev()
        .filter(|p| p.page == page && p.video.is_some() == videos)
        .take(limit)
        .map(|p| {
            if videos {
                json!({"id": p.id, "description": p.message, "created_time": "2026-12-05T10:00:00+0000"})
            } else {
                json!({"id": p.id, "message": p.message, "created_time": "2026-12-05T10:00:00+0000"})
            }
        })
        .collect();
    axum::Json(json!({ "data": data })).into_response()
}

async fn list_feed(
    State(app): State<AppState>,
    Path((version, page)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    latest(&app, &version, &page, &query, &headers, false)
}

async fn list_videos(
    State(app): State<AppState>,
    Path((version, page)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    latest(&app, &version, &page, &query, &headers, true)
}

/// The Login dialog: checks the request and redirects back with a code.
async fn dialog(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = app.platform.lock().expect("fake state");
    let param = |key: &str| query.get(key).cloned().unwrap_or_default();
    let client_id = param("client_id");
    let redirect_uri = param("redirect_uri");
    let known = s
        .clients
        .get(&client_id)
        .is_some_and(|(_, uris)| uris.contains(&redirect_uri));
    if !known || param("response_type") != "code" || param("state").is_empty() {
        return (StatusCode::BAD_REQUEST, "URL Blocked").into_response();
    }
    let Some(user) = s.approving.clone() else {
        return (StatusCode::FORBIDDEN, "The user cancelled").into_response();
    };
    let code = format!("AQcode{}", s.next());
    s.codes.insert(
        code.clone(),
        Code {
            client_id,
            redirect_uri: redirect_uri.clone(),
            user,
            used: false,
        },
    );
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

/// `POST /oauth/access_token`: a code, or `fb_exchange_token`.
async fn token(
    State(app): State<AppState>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(refused) = bad_version(&version) {
        return refused;
    }
    let params = params(&query, &body);
    let field = |key: &str| params.get(key).cloned().unwrap_or_default();
    let mut s = app.platform.lock().expect("fake state");
    let client_id = field("client_id");
    if s.clients
        .get(&client_id)
        .is_none_or(|(secret, _)| *secret != field("client_secret"))
    {
        return graph_error(400, 1, None, "Error validating client secret.");
    }
    if field("grant_type") == "fb_exchange_token" {
        let Some(user) = s.short_tokens.remove(&field("fb_exchange_token")) else {
            return expired();
        };
        let long = format!("EAAlong{}", s.next());
        s.user_tokens.insert(long.clone(), user);
        return axum::Json(
            json!({"access_token": long, "token_type": "bearer", "expires_in": LONG_LIVED_SECONDS}),
        )
        .into_response();
    }
    let code = field("code");
    let valid = s.codes.get(&code).is_some_and(|c| {
        !c.used && c.client_id == client_id && c.redirect_uri == field("redirect_uri")
    });
    if !valid {
        return graph_error(
            400,
            100,
            Some(36009),
            "This authorization code has been used.",
        );
    }
    let code = s.codes.get_mut(&code).expect("code");
    code.used = true;
    let user = code.user.clone();
    let short = format!("EAAshort{}", s.next());
    s.short_tokens.insert(short.clone(), user.clone());
    // A short-lived token is a user token too (for about two hours).
    s.user_tokens.insert(short.clone(), user);
    axum::Json(json!({"access_token": short, "token_type": "bearer", "expires_in": 7_200}))
        .into_response()
}
