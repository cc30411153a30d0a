//! A fake OAuth 2.0 authorisation server (RFC 6749 with PKCE, RFC 7636) for the example
//! plugin's platform: `GET /oauth/authorize` sends the browser back with a code, `POST
//! /v1/oauth/token` exchanges codes (single-use, PKCE S256 verified, redirect URI
//! checked) and refresh tokens (rotated; a replayed one revokes its whole chain, as RFC
//! 9700 §4.14.2 recommends), `GET /v1/me` names the account of an access token, and `POST
//! /v1/posts` publishes. It counts what it is asked.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The client id the fake's app is registered with.
pub const CLIENT_ID: &str = "herald-test-client";
/// The account every grant of the fake belongs to.
pub const ACCOUNT: &str = "acct-oauth";

/// A code handed out and not yet used.
struct Issued {
    challenge: String,
    redirect_uri: String,
}

/// The fake's state.
#[derive(Default)]
pub struct Server {
    codes: HashMap<String, Issued>,
    /// Valid access tokens.
    pub access: HashSet<String>,
    /// The refresh token currently valid (the chain's head).
    pub refresh_head: Option<String>,
    /// Refresh tokens already used (a replay revokes the chain).
    spent: HashSet<String>,
    /// Lifetime of the access tokens issued.
    pub expires_in: Option<u64>,
    /// Whether grants come with a refresh token.
    pub issue_refresh: bool,
    /// The status the next refreshes answer instead (e.g. 503), how many times.
    pub fail_refresh: Option<(u16, usize)>,
    /// Refresh requests served (whatever their outcome).
    pub refreshes: usize,
    /// Codes exchanged.
    pub exchanges: usize,
    /// Code exchanges whose verifier did not match the challenge.
    pub pkce_failures: usize,
    /// How long a refresh takes to answer.
    pub refresh_delay: Duration,
    /// Posts published: (access token, body).
    pub posts: Vec<(String, Value)>,
    counter: usize,
}

/// The shared handle tests read and steer.
pub type Shared = Arc<Mutex<Server>>;

impl Server {
    fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}", self.counter)
    }

    /// A new grant: access token, and refresh token when the fake issues them.
    fn grant(&mut self) -> Value {
        let access = self.next("at");
        self.access.insert(access.clone());
        let mut body = json!({"access_token": access, "token_type": "bearer"});
        if let Some(seconds) = self.expires_in {
            body["expires_in"] = json!(seconds);
        }
        if self.issue_refresh {
            let refresh = self.next("rt");
            self.refresh_head = Some(refresh.clone());
            body["refresh_token"] = json!(refresh);
        }
        body
    }
}

fn invalid_grant() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_grant"})),
    )
        .into_response()
}

async fn authorize(
    State(server): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    if param("client_id") != CLIENT_ID
        || param("response_type") != "code"
        || param("code_challenge_method") != "S256"
        || param("code_challenge").len() != 43
    {
        return (StatusCode::BAD_REQUEST, "bad authorisation request").into_response();
    }
    let mut server = server.lock().expect("lock");
    let code = server.next("code");
    server.codes.insert(
        code.clone(),
        Issued {
            challenge: param("code_challenge"),
            redirect_uri: param("redirect_uri"),
        },
    );
    let redirect = param("redirect_uri");
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let location = format!("{redirect}{separator}code={code}&state={}", param("state"));
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn token(State(server): State<Shared>, Json(body): Json<Value>) -> Response {
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    match field("grant_type").as_str() {
        "authorization_code" => {
            let mut server = server.lock().expect("lock");
            server.exchanges += 1;
            // Single-use: the code is gone whatever happens next.
            let Some(issued) = server.codes.remove(&field("code")) else {
                return invalid_grant();
            };
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(field("code_verifier").as_bytes()));
            if challenge != issued.challenge {
                server.pkce_failures += 1;
                return invalid_grant();
            }
            if field("redirect_uri") != issued.redirect_uri || field("client_id") != CLIENT_ID {
                return invalid_grant();
            }
            Json(server.grant()).into_response()
        }
        "refresh_token" => {
            let delay = {
                let mut server = server.lock().expect("lock");
                server.refreshes += 1;
                server.refresh_delay
            };
            tokio::time::sleep(delay).await;
            let mut server = server.lock().expect("lock");
            if let Some((status, times)) = server.fail_refresh {
                server.fail_refresh = (times > 1).then_some((status, times - 1));
                return (StatusCode::from_u16(status).expect("status"), "unavailable")
                    .into_response();
            }
            let presented = field("refresh_token");
            if server.spent.contains(&presented) {
                // Replay of a rotated token: revoke the chain and every access token.
                server.refresh_head = None;
                server.access.clear();
                return invalid_grant();
            }
            if server.refresh_head.as_deref() != Some(presented.as_str()) {
                return invalid_grant();
            }
            server.spent.insert(presented);
            Json(server.grant()).into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "invalid_token"})),
    )
        .into_response()
}

async fn me(State(server): State<Shared>, headers: HeaderMap) -> Response {
    if !server
        .lock()
        .expect("lock")
        .access
        .contains(&bearer(&headers))
    {
        return unauthorized();
    }
    Json(json!({"id": ACCOUNT, "handle": "olivia", "display_name": "Olivia OAuth"})).into_response()
}

async fn publish(
    State(server): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let token = bearer(&headers);
    let mut server = server.lock().expect("lock");
    if !server.access.contains(&token) {
        return unauthorized();
    }
    server.posts.push((token, body));
    let id = format!("p{}", server.posts.len());
    Json(json!({"id": id, "url": format!("https://example.com/posts/{id}")})).into_response()
}

/// Starts the fake on a loopback port; returns its base URL and state.
pub async fn start() -> (String, Shared) {
    let server: Shared = Arc::new(Mutex::new(Server {
        issue_refresh: true,
        expires_in: Some(3_600),
        ..Server::default()
    }));
    let router = axum::Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/v1/oauth/token", post(token))
        .route("/v1/me", get(me))
        .route("/v1/posts", post(publish))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (format!("http://{addr}"), server)
}
