//! Template publisher plugin for a fictional platform whose API lives at
//! `https://api.example.com`. Copy this crate to start a new plugin.
//!
//! The API: `POST /v1/media` (raw bytes, returns `{"id"}`), `POST /v1/posts` (JSON with
//! `text`, `media_ids`, `idempotency_key`; returns `{"id", "url"}`), `GET /v1/posts?
//! idempotency_key=…` (returns a list), `GET /v1/me`, `GET /v1/posts/{id}/metrics` and
//! `POST /v1/oauth/token` (refresh: `{"refresh_token"}` → `{"access_token", "refresh_token"}`).
//!
//! Like Mastodon or Matrix, the platform can also be self-hosted: an account whose
//! credentials carry `server = "https://…"` is served by that server instead (the
//! manifest's `account_hosts = ["server"]` lets the host allow it for that account only).

use herald_plugin_sdk::http::{Body, Request, form_encode};
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, MediaLimit, Metric, PluginInfo, PublishError,
    PublishRequest, Publisher, Receipt, log, register_publisher,
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
            let uploaded: Uploaded = upload.send()?.error_for_status()?.json()?;
            media_ids.push(uploaded.id);
        }
        log::info(&format!("publishing with {} media", media_ids.len()));
        let created: Created = Request::post(format!("{base}/v1/posts"))
            .bearer(token)
            .header("idempotency-key", request.idempotency_key.clone())
            .json(&serde_json::json!({
                "text": request.post.text,
                "media_ids": media_ids,
                "idempotency_key": request.idempotency_key,
            }))
            .send()?
            .error_for_status()?
            .json()?;
        Ok(Receipt {
            platform_post_id: created.id,
            url: created.url,
        })
    }

    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let me: Me = Request::get(format!("{}/v1/me", api(&credentials)))
            .bearer(&credentials.access_token)
            .send()?
            .error_for_status()?
            .json()?;
        Ok(Account {
            id: me.id,
            handle: me.handle,
            display_name: me.display_name,
        })
    }

    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        let Some(refresh) = credentials.refresh_token.clone() else {
            return Err(PublishError::AuthExpired(
                "no refresh token: reconnect the account".into(),
            ));
        };
        let token: Token = Request::post(format!("{}/v1/oauth/token", api(&credentials)))
            .json(&serde_json::json!({
                "grant_type": "refresh_token",
                "refresh_token": refresh,
            }))
            .send()?
            .error_for_status()?
            .json()?;
        Ok(Credentials {
            access_token: token.access_token,
            refresh_token: token.refresh_token.or(credentials.refresh_token),
            expires_at: None,
            extra: credentials.extra,
        })
    }

    fn fetch_metrics(
        platform_post_id: String,
        credentials: Credentials,
    ) -> Result<Vec<Metric>, PublishError> {
        let metrics: Metrics = Request::get(format!(
            "{}/v1/posts/{}/metrics",
            api(&credentials),
            form_encode(&platform_post_id)
        ))
        .bearer(&credentials.access_token)
        .send()?
        .error_for_status()?
        .json()?;
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
        let found: Vec<Created> = Request::get(format!(
            "{}/v1/posts?idempotency_key={}",
            api(&credentials),
            form_encode(&idempotency_key)
        ))
        .bearer(&credentials.access_token)
        .send()?
        .error_for_status()?
        .json()?;
        Ok(found.into_iter().next().map(|created| Receipt {
            platform_post_id: created.id,
            url: created.url,
        }))
    }
}

register_publisher!(Example);
