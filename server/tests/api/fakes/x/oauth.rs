//! The fake X's OAuth 2.0 (authorization code with PKCE): the authorize page
//! (`GET /i/oauth2/authorize` on x.com, approved at once by the account tests name, then
//! redirected to the client's registered `redirect_uri` with `code` and `state`) and
//! `POST /2/oauth2/token` (form-encoded; a public client names itself with `client_id`,
//! a confidential one authenticates with HTTP Basic). Codes are single-use and bound to
//! client, redirect URI and S256 challenge; access tokens live 7,200 s; refresh tokens
//! (with `offline.access`) are single-use and rotate, and replaying a used one revokes
//! its whole chain (every token issued from the same authorisation), as RFC 9700 advises.
//! Errors are RFC 6749 `{"error", "error_description"}`.

use std::collections::{HashMap, HashSet};

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Shared;

/// Seconds an access token lives.
pub const EXPIRES_IN: i64 = 7_200;

/// An OAuth client (an X app).
#[derive(Debug, Clone)]
pub struct Client {
    /// `None` for a public client.
    pub secret: Option<String>,
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone)]
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    account: String,
    scope: String,
    used: bool,
}

#[derive(Debug, Clone)]
struct Refresh {
    client_id: String,
    account: String,
    scope: String,
    chain: u64,
    used: bool,
}

/// OAuth state: what tests arrange, and the grants issued.
#[derive(Default)]
pub struct OauthState {
    /// Registered clients by id.
    pub clients: HashMap<String, Client>,
    /// The account that approves on the authorize page (none: the page refuses).
    pub approving: Option<String>,
    /// The next this many token requests answer 503 (a transient failure).
    pub unavailable: u32,
    /// Refresh tokens issued, in order.
    pub refresh_tokens: Vec<String>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, Refresh>,
    access_chains: HashMap<String, u64>,
    revoked: HashSet<u64>,
    next: u64,
}

/// `GET /i/oauth2/authorize`: checks the request and redirects back with a code.
pub async fn authorize(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    let param = |key: &str| query.get(key).cloned().unwrap_or_default();
    let client_id = param("client_id");
    let redirect_uri = param("redirect_uri");
    let known = s
        .oauth
        .clients
        .get(&client_id)
        .is_some_and(|c| c.redirect_uris.contains(&redirect_uri));
    if !known
        || param("response_type") != "code"
        || param("code_challenge_method") != "S256"
        || param("code_challenge").is_empty()
        || param("state").is_empty()
    {
        return (StatusCode::BAD_REQUEST, "Something went wrong").into_response();
    }
    let Some(account) = s.oauth.approving.clone() else {
        return (StatusCode::FORBIDDEN, "The user did not authorise the app").into_response();
    };
    s.oauth.next += 1;
    let code = format!("xcode{}", s.oauth.next);
    s.oauth.codes.insert(
        code.clone(),
        Code {
            client_id,
            redirect_uri: redirect_uri.clone(),
            challenge: param("code_challenge"),
            account,
            scope: param("scope"),
            used: false,
        },
    );
    let location = reqwest::Url::parse_with_params(
        &redirect_uri,
        &[("state", param("state")), ("code", code)],
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

/// The client a token request authenticates as: HTTP Basic for a confidential client,
/// `client_id` in the form for a public one.
fn client(
    oauth: &OauthState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<String> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    match basic {
        Some(encoded) => {
            let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
            let (id, secret) = decoded.split_once(':')?;
            let client = oauth.clients.get(id)?;
            (client.secret.as_deref() == Some(secret)).then(|| id.to_owned())
        }
        None => {
            let id = form.get("client_id")?;
            oauth
                .clients
                .get(id)
                .filter(|client| client.secret.is_none())
                .map(|_| id.clone())
        }
    }
}

/// `POST /2/oauth2/token`.
pub async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    if s.oauth.unavailable > 0 {
        s.oauth.unavailable -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
    }
    let Some(client_id) = client(&s.oauth, &headers, &form) else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Missing valid authorization header",
        );
    };
    let field = |key: &str| form.get(key).cloned().unwrap_or_default();
    let (account, scope, chain) = match field("grant_type").as_str() {
        "authorization_code" => {
            let verifier = field("code_verifier");
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let code = s.oauth.codes.get_mut(&field("code")).filter(|code| {
                !code.used
                    && code.client_id == client_id
                    && code.redirect_uri == field("redirect_uri")
                    && code.challenge == challenge
            });
            let Some(code) = code else {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Value passed for the authorization code was invalid.",
                );
            };
            code.used = true;
            let (account, scope) = (code.account.clone(), code.scope.clone());
            s.oauth.next += 1;
            (account, scope, s.oauth.next)
        }
        "refresh_token" => {
            let presented = field("refresh_token");
            let Some(grant) = s
                .oauth
                .refresh
                .get(&presented)
                .filter(|grant| grant.client_id == client_id)
                .cloned()
            else {
                return invalid_token();
            };
            if grant.used || s.oauth.revoked.contains(&grant.chain) {
                // A replayed refresh token: someone else may hold the chain, end it.
                s.oauth.revoked.insert(grant.chain);
                let revoked: Vec<String> = s
                    .oauth
                    .access_chains
                    .iter()
                    .filter(|(_, chain)| **chain == grant.chain)
                    .map(|(token, _)| token.clone())
                    .collect();
                for token in revoked {
                    s.tokens.remove(&token);
                }
                return invalid_token();
            }
            if let Some(grant) = s.oauth.refresh.get_mut(&presented) {
                grant.used = true;
            }
            (grant.account, grant.scope, grant.chain)
        }
        other => {
            return refused(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("{other} is not supported"),
            );
        }
    };
    s.oauth.next += 1;
    let n = s.oauth.next;
    let access = format!("xat-{n}");
    s.tokens.insert(access.clone(), account.clone());
    s.oauth.access_chains.insert(access.clone(), chain);
    let mut answer = json!({
        "token_type": "bearer",
        "expires_in": EXPIRES_IN,
        "access_token": access,
        "scope": scope,
    });
    if scope.split(' ').any(|s| s == "offline.access") {
        let refresh = format!("xrt-{n}");
        s.oauth.refresh.insert(
            refresh.clone(),
            Refresh {
                client_id,
                account,
                scope,
                chain,
                used: false,
            },
        );
        s.oauth.refresh_tokens.push(refresh.clone());
        answer["refresh_token"] = refresh.into();
    }
    axum::Json(answer).into_response()
}

fn invalid_token() -> Response {
    refused(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Value passed for the token was invalid.",
    )
}
