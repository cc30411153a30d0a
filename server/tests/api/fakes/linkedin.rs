//! A fake LinkedIn built from LinkedIn's published docs (Posts API, Images API, Sign In
//! with LinkedIn using OpenID Connect, the 3-legged OAuth flow), on the paths of its two
//! hosts (`api.linkedin.com`, `www.linkedin.com`; route both here):
//! - `GET /v2/userinfo`: `{sub, name, given_name, family_name}` of the token's member.
//! - `POST /rest/posts`: every `/rest/` call must carry `LinkedIn-Version` (an active
//!   `YYYYMM`, else 426 `NONEXISTENT_VERSION`; none, 400 `VERSION_MISSING`) and
//!   `X-Restli-Protocol-Version: 2.0.0` (else 400). The body must be a post by the member
//!   or by an organization they administer; `commentary` is read in the "little text
//!   format": a backslash escapes the next character, and an unescaped reserved character
//!   silently cuts the commentary there (as LinkedIn does). 201 with the post's URN in
//!   `x-restli-id`; the same content from the same author again → 422 `DUPLICATE_POST`
//!   "Content is a duplicate of urn:li:share:…".
//! - `POST /rest/images?action=initializeUpload` → `{value: {uploadUrl, image}}`, the
//!   upload URL on `https://www.linkedin.com/dms-uploads/…`; `PUT` there with the token
//!   stores the bytes; `GET /rest/images/{urn}` answers its `status` (`WAITING_UPLOAD`,
//!   `PROCESSING` for as many reads as the test sets, `AVAILABLE` or
//!   `PROCESSING_FAILED`); a post may use only available images its author owns.
//! - OAuth: `GET /oauth/v2/authorization` (approves at once, redirects with `code` and
//!   `state`) and `POST /oauth/v2/accessToken` (form with `client_id`/`client_secret`;
//!   codes single-use and bound to client and redirect URI; 60-day access tokens; refresh
//!   tokens only for clients marked partner).
//! - `/herald-media/<name>.png`: the post's media (not recorded).
//!
//! Errors are `{status, code, message}`. Every request is recorded and counted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The oldest API version the fake serves (older ones are retired: 426).
pub const OLDEST_VERSION: &str = "202512";
/// Seconds an access token lives (60 days).
pub const EXPIRES_IN: i64 = 5_184_000;
/// The little text format's reserved characters.
pub const RESERVED: &str = r"|{}@[]()<>#\*_~";

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

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A post the fake holds.
#[derive(Debug, Clone)]
pub struct StoredPost {
    /// `urn:li:share:<n>`.
    pub urn: String,
    pub author: String,
    /// The commentary as sent.
    pub commentary: String,
    /// The text LinkedIn shows: unescaped, cut at the first unescaped reserved character.
    pub shown: String,
    /// The `content` as sent.
    pub content: Option<Value>,
}

/// An image created by `initializeUpload`.
#[derive(Debug, Clone)]
pub struct StoredImage {
    pub urn: String,
    pub owner: String,
    /// The bytes PUT to its upload URL, once uploaded.
    pub bytes: Option<Vec<u8>>,
    /// Status reads still answering `PROCESSING` once uploaded (then `AVAILABLE`).
    pub processing_reads: u32,
    /// Processing fails (`PROCESSING_FAILED`) instead.
    pub processing_fails: bool,
}

impl StoredImage {
    /// The status `GET /rest/images/{urn}` answers now.
    fn status(&self) -> &'static str {
        match (&self.bytes, self.processing_fails, self.processing_reads) {
            (None, _, _) => "WAITING_UPLOAD",
            (Some(_), true, _) => "PROCESSING_FAILED",
            (Some(_), false, 0) => "AVAILABLE",
            (Some(_), false, _) => "PROCESSING",
        }
    }
}

/// An OAuth client (a LinkedIn app).
#[derive(Debug, Clone)]
pub struct Client {
    pub secret: String,
    pub redirect_uris: Vec<String>,
    /// Partner apps get refresh tokens.
    pub partner: bool,
}

#[derive(Debug, Clone)]
struct Code {
    client_id: String,
    redirect_uri: String,
    member: String,
    /// The scopes the member approved (the authorize request's `scope`).
    scopes: String,
    used: bool,
}

/// What tests arrange and read.
#[derive(Default)]
pub struct Platform {
    /// Member names by `sub`.
    pub members: HashMap<String, String>,
    /// Valid access tokens and the member `sub` each belongs to.
    pub tokens: HashMap<String, String>,
    /// Organization URNs and the members (`sub`) who administer each.
    pub organizations: HashMap<String, HashSet<String>>,
    pub posts: Vec<StoredPost>,
    pub images: Vec<StoredImage>,
    /// Status reads each new image answers `PROCESSING` before `AVAILABLE`.
    pub image_processing_reads: u32,
    /// New images fail processing.
    pub image_processing_fails: bool,
    /// The next this many `POST /rest/posts` answer 429 (with `Retry-After` when set).
    pub throttle_posts: u32,
    pub throttle_retry_after: Option<u32>,
    /// The next `POST /rest/posts` that creates a post loses its answer.
    pub lose_next_post_answer: bool,
    /// The next `POST /rest/posts` that creates a post never answers, notifying `hung`.
    pub hang_next_post: bool,
    /// Notified when a creation is held by `hang_next_post`.
    pub hung: Arc<Notify>,
    /// Registered OAuth clients by id.
    pub clients: HashMap<String, Client>,
    /// The member who approves on the authorize page (none: the page refuses).
    pub approving: Option<String>,
    pub requests: Vec<Recorded>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, (String, String)>,
    /// The scopes granted to tokens issued by the OAuth endpoints, by access or refresh
    /// token (tokens added by tests directly have every scope).
    granted: HashMap<String, String>,
    next: u64,
}

impl Platform {
    fn next(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The member a request's bearer token belongs to.
    fn caller(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| self.tokens.get(token).cloned())
    }

    /// Whether the token of `headers` was granted `scope` (tokens added directly were
    /// granted every scope).
    fn has_scope(&self, headers: &HeaderMap, scope: &str) -> bool {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        self.granted
            .get(token)
            .is_none_or(|granted| granted.split([' ', ',']).any(|s| s == scope))
    }

    /// Whether `member` may post (and own images) as `author`.
    fn may_act_as(&self, member: &str, author: &str) -> bool {
        author == format!("urn:li:person:{member}")
            || self
                .organizations
                .get(author)
                .is_some_and(|admins| admins.contains(member))
    }
}

type Shared = Arc<Mutex<Platform>>;

/// A running fake LinkedIn.
pub struct FakeLinkedIn {
    /// `http://127.0.0.1:PORT`, for `HostConfig.host_overrides` (`api.linkedin.com:443`
    /// and `www.linkedin.com:443`).
    pub base: String,
    state: Shared,
}

impl FakeLinkedIn {
    /// Starts the fake on a loopback port: no members, nothing throttled.
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Platform {
            next: 7_400_000_000_000_000_000,
            ..Platform::default()
        }));
        let recorded = Router::new()
            .route("/v2/userinfo", get(userinfo))
            .route("/rest/posts", post(create_post))
            .route("/rest/images", post(initialize_upload))
            .route("/rest/images/{urn}", get(image_status))
            .route("/dms-uploads/{id}/uploaded-image/0", put(upload))
            .route("/oauth/v2/authorization", get(authorize))
            .route("/oauth/v2/accessToken", post(token))
            .layer(middleware::from_fn_with_state(state.clone(), record));
        let router = recorded
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

    /// Adds member `sub` named `name` with a valid access `token`.
    pub fn add_member(&self, token: &str, sub: &str, name: &str) {
        let mut state = self.state();
        state.members.insert(sub.to_owned(), name.to_owned());
        state.tokens.insert(token.to_owned(), sub.to_owned());
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

/// The text LinkedIn shows for `commentary`: escapes removed, cut at the first unescaped
/// reserved character.
pub fn shown(commentary: &str) -> String {
    let mut text = String::new();
    let mut chars = commentary.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => text.push(next),
                None => break,
            }
        } else if RESERVED.contains(c) {
            break;
        } else {
            text.push(c);
        }
    }
    text
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "status": status.as_u16(), "code": code, "message": message })),
    )
        .into_response()
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "EXPIRED_ACCESS_TOKEN",
        "The token used in the request has expired",
    )
}

/// Records every request.
async fn record(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
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

/// The versioned REST API's header checks: the refusal when one fails.
fn rest_headers(headers: &HeaderMap) -> Option<Response> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(version) = header("linkedin-version") else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "VERSION_MISSING",
            "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
        ));
    };
    let month = version.split('.').next().unwrap_or_default();
    if month.len() != 6 || !month.bytes().all(|b| b.is_ascii_digit()) || month < OLDEST_VERSION {
        return Some(error(
            StatusCode::UPGRADE_REQUIRED,
            "NONEXISTENT_VERSION",
            &format!("Requested version {version} is not active"),
        ));
    }
    if header("x-restli-protocol-version") != Some("2.0.0") {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "ILLEGAL_ARGUMENT",
            "Rest.li protocol version 2.0.0 is required (X-Restli-Protocol-Version)",
        ));
    }
    None
}

async fn userinfo(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let s = state.lock().expect("fake state");
    let Some(sub) = s.caller(&headers) else {
        return unauthorized();
    };
    let name = s.members.get(&sub).cloned().unwrap_or_default();
    let (given, family) = name.split_once(' ').unwrap_or((&name, ""));
    axum::Json(json!({
        "sub": sub, "name": name, "given_name": given, "family_name": family,
        "locale": {"country": "US", "language": "en"}
    }))
    .into_response()
}

async fn initialize_upload(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(refused) = rest_headers(&headers) {
        return refused;
    }
    let mut s = state.lock().expect("fake state");
    let Some(member) = s.caller(&headers) else {
        return unauthorized();
    };
    if query.get("action").map(String::as_str) != Some("initializeUpload") {
        return error(
            StatusCode::BAD_REQUEST,
            "ILLEGAL_ARGUMENT",
            "unknown action",
        );
    }
    let owner = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| {
            b["initializeUploadRequest"]["owner"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    if !s.may_act_as(&member, &owner) {
        return error(
            StatusCode::FORBIDDEN,
            "ACCESS_DENIED",
            &format!("Not enough permissions to upload as {owner}"),
        );
    }
    let id = format!("D4E10AQ{}", s.next());
    let urn = format!("urn:li:image:{id}");
    let (processing_reads, processing_fails) = (s.image_processing_reads, s.image_processing_fails);
    s.images.push(StoredImage {
        urn: urn.clone(),
        owner,
        bytes: None,
        processing_reads,
        processing_fails,
    });
    axum::Json(json!({ "value": {
        "uploadUrlExpiresAt": chrono::Utc::now().timestamp_millis() + 86_400_000,
        "uploadUrl": format!("https://www.linkedin.com/dms-uploads/{id}/uploaded-image/0?ca=vector_feedshare&cn=uploads&m=AQ&app=1&sync=0&v=beta"),
        "image": urn,
    }}))
    .into_response()
}

/// `GET /rest/images/{image URN}`: the image's status (`WAITING_UPLOAD`, `PROCESSING`,
/// `AVAILABLE`, `PROCESSING_FAILED`); only `AVAILABLE` images go in posts.
async fn image_status(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Response {
    if let Some(refused) = rest_headers(&headers) {
        return refused;
    }
    let mut s = state.lock().expect("fake state");
    if s.caller(&headers).is_none() {
        return unauthorized();
    }
    match s.images.iter_mut().find(|image| image.urn == urn) {
        Some(image) => {
            let status = image.status();
            if status == "PROCESSING" {
                image.processing_reads -= 1;
            }
            axum::Json(json!({ "id": image.urn, "owner": image.owner, "status": status }))
                .into_response()
        }
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such image"),
    }
}

async fn upload(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut s = state.lock().expect("fake state");
    if s.caller(&headers).is_none() {
        return unauthorized();
    }
    let urn = format!("urn:li:image:{id}");
    match s.images.iter_mut().find(|image| image.urn == urn) {
        Some(image) => {
            image.bytes = Some(body.to_vec());
            StatusCode::CREATED.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such upload"),
    }
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
        None => answer,
    }
}

fn create(state: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    if let Some(refused) = rest_headers(headers) {
        return refused;
    }
    let mut s = state.lock().expect("fake state");
    let Some(member) = s.caller(headers) else {
        return unauthorized();
    };
    if s.throttle_posts > 0 {
        s.throttle_posts -= 1;
        let mut refused = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        );
        if let Some(seconds) = s.throttle_retry_after {
            refused
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        return refused;
    }
    let invalid = |message: &str| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            message,
        )
    };
    let Ok(post) = serde_json::from_slice::<Value>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ILLEGAL_ARGUMENT",
            "body is not JSON",
        );
    };
    let author = post["author"].as_str().unwrap_or_default().to_owned();
    let needed = if author.starts_with("urn:li:organization:") {
        "w_organization_social"
    } else {
        "w_member_social"
    };
    if !s.has_scope(headers, needed) {
        return error(
            StatusCode::FORBIDDEN,
            "ACCESS_DENIED",
            "Not enough permissions to access: partnerApiPostsExternal.CREATE.20261101",
        );
    }
    if !s.may_act_as(&member, &author) {
        return error(
            StatusCode::FORBIDDEN,
            "ACCESS_DENIED",
            &format!("Not enough permissions to post as {author}"),
        );
    }
    let distribution = json!({
        "feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []
    });
    if post["visibility"] != "PUBLIC"
        || post["distribution"] != distribution
        || post["lifecycleState"] != "PUBLISHED"
        || post["isReshareDisabledByAuthor"] != false
    {
        return invalid(
            "visibility, distribution, lifecycleState or isReshareDisabledByAuthor missing or invalid",
        );
    }
    let commentary = post["commentary"].as_str().unwrap_or_default().to_owned();
    let content = post.get("content").cloned();
    let ids: Vec<&str> = match &content {
        None => vec![],
        Some(content) => match (
            &content["media"]["id"],
            content["multiImage"]["images"].as_array(),
        ) {
            (Value::String(id), None) => vec![id.as_str()],
            (Value::Null, Some(images)) if images.len() >= 2 => {
                images.iter().filter_map(|i| i["id"].as_str()).collect()
            }
            _ => return invalid("content must be media or multiImage with 2 or more images"),
        },
    };
    let owned = |id: &str| {
        s.images
            .iter()
            .any(|image| image.urn == id && image.owner == author && image.status() == "AVAILABLE")
    };
    if !ids.iter().all(|id| owned(id)) {
        return invalid(
            "an image is not available (uploaded and processed) or not owned by the author",
        );
    }
    if commentary.chars().count() > 3_000 {
        return invalid("commentary is longer than 3000 characters");
    }
    if let Some(existing) = s
        .posts
        .iter()
        .find(|p| p.author == author && p.commentary == commentary && p.content == content)
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "DUPLICATE_POST",
            &format!("Content is a duplicate of {}", existing.urn),
        );
    }
    let urn = format!("urn:li:share:{}", s.next());
    s.posts.push(StoredPost {
        urn: urn.clone(),
        author,
        shown: shown(&commentary),
        commentary,
        content,
    });
    if std::mem::take(&mut s.lose_next_post_answer) {
        return super::lost_answer();
    }
    (StatusCode::CREATED, [("x-restli-id", urn)]).into_response()
}

/// `GET /oauth/v2/authorization`: checks the request and redirects back with a code.
async fn authorize(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    let param = |key: &str| query.get(key).cloned().unwrap_or_default();
    let client_id = param("client_id");
    let redirect_uri = param("redirect_uri");
    let known = s
        .clients
        .get(&client_id)
        .is_some_and(|c| c.redirect_uris.contains(&redirect_uri));
    if !known || param("response_type") != "code" || param("state").is_empty() {
        return (StatusCode::BAD_REQUEST, "Bummer, something went wrong.").into_response();
    }
    let Some(member) = s.approving.clone() else {
        return (
            StatusCode::FORBIDDEN,
            "The member did not authorise the app",
        )
            .into_response();
    };
    let code = format!("AQcode{}", s.next());
    s.codes.insert(
        code.clone(),
        Code {
            client_id,
            redirect_uri: redirect_uri.clone(),
            member,
            scopes: param("scope"),
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

fn refused(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// `POST /oauth/v2/accessToken`.
async fn token(
    State(state): State<Shared>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    let field = |key: &str| form.get(key).cloned().unwrap_or_default();
    let client_id = field("client_id");
    let Some(client) = s
        .clients
        .get(&client_id)
        .filter(|c| c.secret == field("client_secret"))
        .cloned()
    else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    };
    let (member, scopes) = match field("grant_type").as_str() {
        "authorization_code" => {
            let code = field("code");
            let valid = s.codes.get(&code).is_some_and(|c| {
                !c.used && c.client_id == client_id && c.redirect_uri == field("redirect_uri")
            });
            if !valid {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Unable to retrieve access token: appid/redirect uri/code verifier does not match authorization code. Or authorization code expired.",
                );
            }
            let code = s.codes.get_mut(&code).expect("code");
            code.used = true;
            (code.member.clone(), code.scopes.clone())
        }
        "refresh_token" => match s.refresh.get(&field("refresh_token")) {
            Some((owner, member)) if *owner == client_id => (
                member.clone(),
                s.granted
                    .get(&field("refresh_token"))
                    .cloned()
                    .unwrap_or_default(),
            ),
            _ => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The provided authorization grant or refresh token is invalid, expired or revoked.",
                );
            }
        },
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type",
            );
        }
    };
    let access = format!("AQV{}", s.next());
    s.tokens.insert(access.clone(), member.clone());
    // LinkedIn answers the granted scopes comma-separated.
    let scopes = scopes.split(' ').collect::<Vec<_>>().join(",");
    s.granted.insert(access.clone(), scopes.clone());
    let mut answer = json!({
        "access_token": access,
        "expires_in": EXPIRES_IN,
        "scope": scopes,
    });
    if client.partner {
        // LinkedIn's refresh tokens do not rotate: the same one comes back until it ends.
        let refresh = match field("grant_type").as_str() {
            "refresh_token" => field("refresh_token"),
            _ => format!("AQX{}", s.next()),
        };
        s.refresh.insert(refresh.clone(), (client_id, member));
        s.granted.insert(refresh.clone(), scopes);
        answer["refresh_token"] = json!(refresh);
        answer["refresh_token_expires_in"] = json!(31_536_000);
    }
    axum::Json(answer).into_response()
}

async fn media_file(Path(name): Path<String>) -> Response {
    if name.ends_with(".png") {
        (
            [(header::CONTENT_TYPE, "image/png")],
            super::media::image(&name),
        )
            .into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such file").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescaped_reserved_characters_cut_the_text() {
        assert_eq!(shown(r"a \(b\) c"), "a (b) c");
        assert_eq!(shown("a (b) c"), "a ");
        assert_eq!(shown(r"x\\y #z"), r"x\y ");
    }
}
