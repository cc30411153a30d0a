//! Template publisher plugin for a fictional platform whose API lives at
//! `https://api.example.com`. Copy this crate to start a new plugin.
//!
//! The API: `POST /v1/media` (raw bytes, returns `{"id"}`), `POST /v1/posts` (JSON with
//! `text`, `media_ids`, `idempotency_key`; returns `{"id", "url"}`), `GET /v1/posts?
//! idempotency_key=…` (returns a list), `GET /v1/me`, `GET /v1/posts/{id}/metrics`, and
//! OAuth 2.0 with PKCE: users authorise at `https://api.example.com/oauth/authorize`, and
//! `POST /v1/oauth/token` (JSON) exchanges a code (`grant_type=authorization_code`, `code`,
//! `code_verifier`, `client_id`, `redirect_uri`) or a refresh token
//! (`grant_type=refresh_token`) for `{"access_token", "refresh_token", "expires_in"}`;
//! refresh tokens may rotate. Token errors are RFC 6749's `{"error": "invalid_grant"}`.
//!
//! Like Mastodon or Matrix, the platform can also be self-hosted: an account whose
//! credentials carry `server = "https://…"` is served by that server instead (the
//! manifest's `account_hosts = ["server"]` lets the host allow it for that account only).
//!
//! Failed answers go through [`call`]: the SDK maps statuses and rate-limit headers, the
//! plugin adds only what its platform says beyond them (its error body), and the
//! account's secrets are scrubbed from every message.

use herald_plugin_sdk::failure::Kind;
use herald_plugin_sdk::http::{Body, Request, Response, form_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, MediaLimit, Metric, OauthClient, PluginInfo,
    PublishError, PublishRequest, Publisher, Receipt, log, register_publisher, time,
};
use serde::Deserialize;

const API: &str = "https://api.example.com";

/// The API base URL for an account: its own server, or the public one.
fn api(credentials: &Credentials) -> String {
    credentials.extra_value("server").map_or_else(
        || API.to_owned(),
        |url| url.trim_end_matches('/').to_owned(),
    )
}

/// The example platform.
pub struct Example;

/// The platform's error body: `{"error": {"code", "message", "retry_at"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Deserialize)]
struct ApiError {
    code: String,
    message: String,
    /// When a throttled client may come back (RFC 3339, on the platform's clock).
    #[serde(default)]
    retry_at: Option<String>,
}

/// Sends `request` with `credentials`' secrets scrubbed from any failure (a transport
/// error quotes the URL, a platform may echo a token), a non-2xx answer mapped by
/// [`check`].
fn call(request: Request, credentials: &Credentials) -> Result<Response, PublishError> {
    let secrets =
        Secrets::new(std::iter::once(&credentials.access_token).chain(&credentials.refresh_token));
    request
        .send()
        .map_err(PublishError::from)
        .and_then(check)
        .map_err(|error| error.scrubbed(&secrets))
}

/// Keeps a 2xx answer; maps the others with the SDK's mapping, plus the platform's own
/// cases: its error body's message, `token_expired` (sent with a 400) → auth expired, and
/// `retry_at` (a time on the platform's clock) as a rate limit's wait.
fn check(response: Response) -> Result<Response, PublishError> {
    response.error_for_status_with(|failure| {
        let Some(ErrorBody { error }) = failure.json::<ErrorBody>() else {
            // Not the platform's error shape (a proxy's page…): the generic mapping.
            return failure.into_error();
        };
        let now = time::now_unix_millis();
        let clock = failure.response().server_clock(now);
        let wait = error
            .retry_at
            .as_deref()
            .and_then(time::parse_rfc3339)
            .map(|at| clock.seconds_until(at, now));
        let message = format!(
            "HTTP {}: {} ({})",
            failure.status(),
            error.message,
            error.code
        );
        let failure = failure.message(message).retry_after(wait);
        match error.code.as_str() {
            "token_expired" => failure.error(Kind::AuthExpired),
            _ => failure.into_error(),
        }
    })
}

#[derive(Deserialize)]
struct Created {
    id: String,
    url: String,
}

#[derive(Deserialize)]
struct Uploaded {
    id: String,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Lifetime of the access token, in seconds.
    #[serde(default)]
    expires_in: Option<i64>,
}

/// RFC 6749 §5.2's error body of the token endpoint.
#[derive(Deserialize)]
struct TokenError {
    error: String,
}

/// The credential key keeping the client id, which a refresh names again.
const CLIENT_ID: &str = "client_id";

/// Calls the token endpoint: a refused grant (`invalid_grant`: a used, expired or revoked
/// code or refresh token, or a verifier that does not match) means the account must be
/// connected again; anything else goes through [`call`]'s mapping (a 503 is retried).
fn token(request: Request, secrets: &Credentials) -> Result<Credentials, PublishError> {
    let secrets_list =
        Secrets::new(std::iter::once(&secrets.access_token).chain(&secrets.refresh_token));
    let response = request
        .send()
        .map_err(PublishError::from)
        .map_err(|error| error.scrubbed(&secrets_list))?;
    if matches!(response.status, 400 | 401)
        && let Ok(refused) = serde_json::from_slice::<TokenError>(&response.body)
    {
        return Err(PublishError::AuthExpired(format!(
            "HTTP {}: the platform refused the grant ({})",
            response.status, refused.error
        )));
    }
    let token: Token = check(response)
        .map_err(|error| error.scrubbed(&secrets_list))?
        .json()?;
    let now = i64::try_from(time::now_unix()).unwrap_or(i64::MAX);
    Ok(Credentials {
        access_token: token.access_token,
        refresh_token: token.refresh_token,
        expires_at: token.expires_in.map(|seconds| now.saturating_add(seconds)),
        extra: Vec::new(),
    })
}

#[derive(Deserialize)]
struct Me {
    id: String,
    handle: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct Metrics {
    likes: i64,
    reposts: i64,
}

impl Publisher for Example {
    fn info() -> PluginInfo {
        PluginInfo {
            platform: "example".into(),
            display_name: "Example".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: 500,
                counting: LengthCounting::Graphemes,
                max_media: 4,
                media: vec![
                    MediaLimit {
                        mime_type: "image/png".into(),
                        max_bytes: 5_000_000,
                    },
                    MediaLimit {
                        mime_type: "image/jpeg".into(),
                        max_bytes: 5_000_000,
                    },
                ],
            },
            idempotent_publish: true,
        }
    }

    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        let violations = Self::validate(request.post.clone());
        if !violations.is_empty() {
            return Err(PublishError::Validation(violations));
        }
        let token = &request.credentials.access_token;
        let base = api(&request.credentials);
        let mut media_ids = Vec::new();
        for (index, media) in request.post.media.iter().enumerate() {
            let index = u32::try_from(index)
                .map_err(|_| PublishError::Permanent("too many media".into()))?;
            let mut upload = Request::post(format!("{base}/v1/media"))
                .bearer(token)
                .header("content-type", media.mime_type.clone())
                .body(Body::MediaRef(index));
            if let Some(alt) = &media.alt {
                upload = upload.header("x-alt-text", alt.clone());
            }
            let uploaded: Uploaded = call(upload, &request.credentials)?.json()?;
            media_ids.push(uploaded.id);
        }
        log::info(&format!("publishing with {} media", media_ids.len()));
        let create = Request::post(format!("{base}/v1/posts"))
            .bearer(token)
            .header("idempotency-key", request.idempotency_key.clone())
            .json(&serde_json::json!({
                "text": request.post.text,
                "media_ids": media_ids,
                "idempotency_key": request.idempotency_key,
            }));
        let created: Created = call(create, &request.credentials)?.json()?;
        Ok(Receipt {
            platform_post_id: created.id,
            url: created.url,
        })
    }

    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let me =
            Request::get(format!("{}/v1/me", api(&credentials))).bearer(&credentials.access_token);
        let me: Me = call(me, &credentials)?.json()?;
        Ok(Account {
            id: me.id,
            handle: me.handle,
            display_name: me.display_name,
        })
    }

    fn oauth_authorize_url(
        client: OauthClient,
        state: String,
        pkce_challenge: String,
    ) -> Result<String, PublishError> {
        Ok(format!(
            "{API}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=posts&state={}&code_challenge={}&code_challenge_method=S256",
            form_encode(&client.client_id),
            form_encode(&client.redirect_uri),
            form_encode(&state),
            form_encode(&pkce_challenge),
        ))
    }

    fn oauth_exchange(
        client: OauthClient,
        code: String,
        verifier: String,
    ) -> Result<Credentials, PublishError> {
        let mut body = serde_json::json!({
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
        });
        if let Some(secret) = &client.client_secret {
            body["client_secret"] = serde_json::Value::String(secret.clone());
        }
        let secrets = Credentials {
            access_token: code,
            refresh_token: client.client_secret.clone(),
            expires_at: None,
            extra: Vec::new(),
        };
        let mut credentials = token(
            Request::post(format!("{API}/v1/oauth/token")).json(&body),
            &secrets,
        )?;
        credentials.extra = vec![(CLIENT_ID.into(), client.client_id)];
        Ok(credentials)
    }

    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        let Some(refresh) = credentials.refresh_token.clone() else {
            return Err(PublishError::AuthExpired(
                "no refresh token: reconnect the account".into(),
            ));
        };
        let mut body = serde_json::json!({
            "grant_type": "refresh_token",
            "refresh_token": refresh,
        });
        if let Some(client_id) = credentials.extra_value(CLIENT_ID) {
            body[CLIENT_ID] = serde_json::Value::String(client_id.to_owned());
        }
        let request = Request::post(format!("{}/v1/oauth/token", api(&credentials))).json(&body);
        let fresh = token(request, &credentials)?;
        Ok(Credentials {
            access_token: fresh.access_token,
            // A platform that does not rotate refresh tokens keeps the one it issued.
            refresh_token: fresh.refresh_token.or(credentials.refresh_token),
            expires_at: fresh.expires_at,
            extra: credentials.extra,
        })
    }

    fn fetch_metrics(
        platform_post_id: String,
        credentials: Credentials,
    ) -> Result<Vec<Metric>, PublishError> {
        let metrics = Request::get(format!(
            "{}/v1/posts/{}/metrics",
            api(&credentials),
            form_encode(&platform_post_id)
        ))
        .bearer(&credentials.access_token);
        let metrics: Metrics = call(metrics, &credentials)?.json()?;
        Ok(vec![
            Metric {
                name: "likes".into(),
                value: metrics.likes,
            },
            Metric {
                name: "reposts".into(),
                value: metrics.reposts,
            },
        ])
    }

    fn lookup(
        idempotency_key: String,
        credentials: Credentials,
    ) -> Result<Option<Receipt>, PublishError> {
        let found = Request::get(format!(
            "{}/v1/posts?idempotency_key={}",
            api(&credentials),
            form_encode(&idempotency_key)
        ))
        .bearer(&credentials.access_token);
        let found: Vec<Created> = call(found, &credentials)?.json()?;
        Ok(found.into_iter().next().map(|created| Receipt {
            platform_post_id: created.id,
            url: created.url,
        }))
    }
}

register_publisher!(Example);

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::RateLimit;
    use herald_plugin_sdk::failure::DEFAULT_RETRY_SECONDS;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response::new(status, headers, body)
    }

    #[test]
    fn the_platforms_own_cases_refine_the_sdk_mapping() {
        let expired = r#"{"error":{"code":"token_expired","message":"expired"}}"#;
        assert_eq!(
            check(answer(400, &[], expired)).err(),
            Some(PublishError::AuthExpired(
                "HTTP 400: expired (token_expired)".into()
            ))
        );
        // `retry_at` counts on the platform's clock (its `Date`), not the host's.
        let throttled = answer(
            429,
            &[
                ("date", "Thu, 05 Dec 2019 11:34:47 GMT"),
                ("retry-after", "999"),
            ],
            r#"{"error":{"code":"slow_down","message":"slow","retry_at":"2019-12-05T11:35:02Z"}}"#,
        );
        assert_eq!(
            check(throttled).err(),
            Some(PublishError::RateLimited(RateLimit {
                retry_after_seconds: 15,
                message: "HTTP 429: slow (slow_down)".into(),
            }))
        );
        // Anything else is the SDK's: a plain-text 429 waits the one default.
        assert_eq!(
            check(answer(429, &[], "slow down")).err(),
            Some(PublishError::RateLimited(RateLimit {
                retry_after_seconds: DEFAULT_RETRY_SECONDS,
                message: "HTTP 429: slow down".into(),
            }))
        );
        let gone = r#"{"error":{"code":"not_found","message":"no such post"}}"#;
        assert!(matches!(
            check(answer(404, &[], gone)),
            Err(PublishError::Permanent(m)) if m == "HTTP 404: no such post (not_found)"
        ));
        assert!(check(answer(201, &[], "{}")).is_ok());
    }
}
