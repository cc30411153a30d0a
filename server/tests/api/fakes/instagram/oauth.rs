//! Instagram Login on the fake: the authorize page, the code exchange (a one-hour token),
//! the exchange for a 60-day token and its refresh.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::{EXPIRES_IN, Platform, SHORT_EXPIRES_IN, Shared, Token, bad_request, graph_error};

/// An Instagram app.
#[derive(Debug, Clone)]
pub struct Client {
    pub secret: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Code {
    client_id: String,
    redirect_uri: String,
    user: String,
    used: bool,
}

/// `GET /oauth/authorize`: checks the request and redirects back with a code.
pub(super) async fn authorize(
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
    let scopes: Vec<String> = param("scope").split(',').map(str::to_owned).collect();
    let scoped = [
        "instagram_business_basic",
        "instagram_business_content_publish",
    ]
    .iter()
    .all(|needed| scopes.iter().any(|s| s == needed));
    if !known || param("response_type") != "code" || param("state").is_empty() || !scoped {
        return (StatusCode::BAD_REQUEST, "Invalid request").into_response();
    }
    let Some(user) = s.approving.clone() else {
        return (StatusCode::FORBIDDEN, "The user did not authorise the app").into_response();
    };
    let code = format!("AQB{}", s.next());
    s.codes.insert(
        code.clone(),
        Code {
            client_id,
            redirect_uri: redirect_uri.clone(),
            user,
            used: false,
        },
    );
    // Instagram appends a `#_` fragment to the redirect.
    let location = reqwest::Url::parse_with_params(
        &redirect_uri,
        &[("code", code), ("state", param("state"))],
    )
    .expect("redirect URI");
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{location}#_"))],
    )
        .into_response()
}

fn oauth_refused(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error_type": "OAuthException", "code": 400, "error_message": message})),
    )
        .into_response()
}

/// `POST /oauth/access_token`: a code for a short-lived token.
pub(super) async fn code_exchange(State(state): State<Shared>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |key: &str| form.get(key).cloned().unwrap_or_default();
    let mut s = state.lock().expect("fake state");
    let client_id = field("client_id");
    if s.clients
        .get(&client_id)
        .is_none_or(|c| c.secret != field("client_secret"))
    {
        return oauth_refused("Invalid client_secret or client_id");
    }
    if field("grant_type") != "authorization_code" {
        return oauth_refused("Invalid grant_type");
    }
    let code = field("code");
    let Some(granted) = s
        .codes
        .get_mut(&code)
        .filter(|c| !c.used && c.client_id == client_id && c.redirect_uri == field("redirect_uri"))
    else {
        return oauth_refused("Invalid authorization code");
    };
    granted.used = true;
    let user = granted.user.clone();
    let token = format!("IGQshort{}", s.next());
    let now = Utc::now();
    s.tokens.insert(
        token.clone(),
        Token {
            user: user.clone(),
            long_lived: false,
            issued: now,
            expires: now + chrono::Duration::seconds(SHORT_EXPIRES_IN),
        },
    );
    axum::Json(json!({"data": [{
        "access_token": token,
        "user_id": user,
        "permissions": "instagram_business_basic,instagram_business_content_publish",
    }]}))
    .into_response()
}

/// `GET /access_token?grant_type=ig_exchange_token`: a short-lived token for a 60-day one.
pub(super) async fn exchange_token(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    let param = |key: &str| query.get(key).cloned().unwrap_or_default();
    if param("grant_type") != "ig_exchange_token" {
        return bad_request("Unsupported grant_type");
    }
    if !s
        .clients
        .values()
        .any(|c| c.secret == param("client_secret"))
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            101,
            None,
            "Error validating client secret.",
        );
    }
    let short = param("access_token");
    let user = match s.tokens.get(&short) {
        Some(t) if !t.long_lived && t.expires > Utc::now() => t.user.clone(),
        _ => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                190,
                None,
                "Invalid OAuth access token - Cannot parse access token",
            );
        }
    };
    long_lived(&mut s, user)
}

fn long_lived(s: &mut Platform, user: String) -> Response {
    let token = format!("IGAAlong{}", s.next());
    let now = Utc::now();
    s.tokens.insert(
        token.clone(),
        Token {
            user,
            long_lived: true,
            issued: now,
            expires: now + chrono::Duration::seconds(EXPIRES_IN),
        },
    );
    axum::Json(json!({"access_token": token, "token_type": "bearer", "expires_in": EXPIRES_IN}))
        .into_response()
}

/// `GET /refresh_access_token?grant_type=ig_refresh_token`: a long-lived token at least 24
/// hours old and unexpired for a new one.
pub(super) async fn refresh_token(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    if query.get("grant_type").map(String::as_str) != Some("ig_refresh_token") {
        return bad_request("Unsupported grant_type");
    }
    let token = query.get("access_token").cloned().unwrap_or_default();
    let now = Utc::now();
    let user = match s.tokens.get(&token) {
        Some(t)
            if t.long_lived && t.expires > now && now - t.issued >= chrono::Duration::hours(24) =>
        {
            t.user.clone()
        }
        Some(t) if t.long_lived && t.expires > now => {
            return bad_request("The access token is not yet 24 hours old and cannot be refreshed");
        }
        Some(t) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                190,
                Some(463),
                &format!(
                    "Error validating access token: Session has expired on {}.",
                    t.expires
                ),
            );
        }
        None => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                190,
                None,
                "Invalid OAuth access token - Cannot parse access token",
            );
        }
    };
    long_lived(&mut s, user)
}
