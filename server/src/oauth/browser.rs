//! The connect flow for plain browsers: `GET /oauth/{platform}/start` (bearer token; its
//! query parameters are the account's credential extras, e.g. `?author=urn:li:organization:5`)
//! redirects to the platform with a cookie naming the flow, and `GET
//! /oauth/{platform}/callback` completes it when the platform sends the browser back,
//! then redirects to the configured success URL or shows a short page.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{ConnectFlows, Starter};
use crate::auth::JwtVerifier;
use crate::error::AppError;

/// The cookie naming the flow a browser began.
const COOKIE: &str = "herald_oauth_state";

#[derive(Clone)]
struct Browser {
    flows: ConnectFlows,
    verifier: Arc<JwtVerifier>,
}

/// The two routes, over `flows`, authenticating `start` with `verifier`.
pub fn router(flows: ConnectFlows, verifier: Arc<JwtVerifier>) -> Router {
    Router::new()
        .route("/oauth/{platform}/start", get(start))
        .route("/oauth/{platform}/callback", get(callback))
        .with_state(Browser { flows, verifier })
}

/// An error as a short page; internal causes go to the log only.
fn refused(err: &AppError) -> Response {
    let status = match err {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound(_) | AppError::BadUserInput { .. } | AppError::Conflict(_) => {
            StatusCode::BAD_REQUEST
        }
        AppError::NotConfigured { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(cause) => {
            tracing::error!(error = %cause, "internal error in the OAuth browser flow");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, page("Not connected", &err.to_string())).into_response()
}

fn page(title: &str, text: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{title}</title><h1>{title}</h1><p>{}</p>",
        escape(text)
    ))
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

async fn start(
    State(browser): State<Browser>,
    Path(platform): Path<String>,
    Query(extra): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let actor = match browser.verifier.verify_header(authorization) {
        Ok(actor) => actor,
        Err(err) => return refused(&err),
    };
    let begun = crate::db::tenant::scope(
        &actor.tenant_id,
        browser
            .flows
            .begin(&actor, &platform, Starter::Browser, extra),
    )
    .await;
    let begun = match begun {
        Ok(begun) => begun,
        Err(err) => return refused(&err),
    };
    let secure = if begun.redirect_uri.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={}; Path=/oauth/{platform}/callback; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        begun.state,
        super::STATE_TTL.num_seconds()
    );
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, begun.authorize_url),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// What the platform sends back (RFC 6749 §4.1.2 and §4.1.2.1).
#[derive(Deserialize)]
struct Callback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

async fn callback(
    State(browser): State<Browser>,
    Path(platform): Path<String>,
    Query(query): Query<Callback>,
    headers: HeaderMap,
) -> Response {
    if let Some(error) = query.error {
        return refused(&AppError::bad_input(
            "code",
            format!("the platform did not authorise the connection: {error}"),
        ));
    }
    let (Some(state), Some(code)) = (query.state, query.code) else {
        return refused(&AppError::bad_input("code", "state and code are required"));
    };
    let cookie = cookie(&headers);
    let connected = browser
        .flows
        .complete_browser(&platform, &state, &code, cookie.as_deref())
        .await;
    let connection = match connected {
        Ok(connection) => connection,
        Err(err) => return refused(&err),
    };
    let clear = format!("{COOKIE}=; Path=/oauth/{platform}/callback; Max-Age=0; HttpOnly");
    match &browser.flows.config().success_url {
        Some(url) => {
            let separator = if url.contains('?') { '&' } else { '?' };
            let location = format!(
                "{url}{separator}platform={}&connection={}",
                query_value(&connection.platform),
                connection.id
            );
            (
                StatusCode::FOUND,
                [(header::LOCATION, location), (header::SET_COOKIE, clear)],
            )
                .into_response()
        }
        None => (
            [(header::SET_COOKIE, clear)],
            page(
                "Connected",
                &format!(
                    "Your {} account {} is connected to Herald. You can close this page.",
                    connection.platform, connection.display_name
                ),
            ),
        )
            .into_response(),
    }
}

/// `value` percent-encoded for a query string.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}
