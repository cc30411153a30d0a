//! Herald publisher plugin for Mastodon. Every account lives on its own instance, named by
//! the credential extra `instance` (`https://host[:port]`), which the manifest declares in
//! `account_hosts` so calls made with those credentials may reach it.
//!
//! The API used (Mastodon 4.x): `GET /api/v1/accounts/verify_credentials`,
//! `GET /api/v2/instance` (character and attachment limits), `POST /api/v2/media`
//! (multipart `file` + `description`; 202 while processing), `GET /api/v1/media/:id`
//! (206 while processing, 200 when done) and `POST /api/v1/statuses` with an
//! `Idempotency-Key` header (the instance keeps the key for an hour and answers a repeated
//! request with the status it created the first time).
//!
//! Target options: `visibility` (`public`, `unlisted`, `private`, `direct`),
//! `spoiler_text` (content warning), `language` (ISO 639), `sensitive` (`true`/`false`),
//! and `max_characters`, the instance's limit when it is not the default 500 (`validate`
//! runs before scheduling without credentials, so it cannot ask the instance itself).

mod api;
mod length;

use std::time::Duration;

use herald_plugin_sdk::http::{Multipart, Request, Response};
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, MediaLimit, Metric, PluginInfo, Post,
    PublishError, PublishRequest, Publisher, Receipt, Violation, log, media, register_publisher,
    validate_limits,
};

use crate::api::{
    CredentialAccount, Instance, MediaAttachment, Status, StatusCounts, StatusLimits,
};

/// Mastodon's default `max_characters`.
pub const DEFAULT_MAX_CHARACTERS: u32 = 500;
/// Mastodon's default `max_media_attachments`.
pub const DEFAULT_MAX_MEDIA: u32 = 4;
/// Mastodon's default `media_attachments.description_limit` (alt text, characters).
pub const ALT_TEXT_LIMIT: usize = 1_500;
/// Polls of `GET /api/v1/media/:id` while an upload is processed, [`POLL_WAIT`] apart.
/// After the last one the publish is retryable (Herald retries later with backoff); the
/// total stays far below the host's per-call deadline (30 s).
pub const MEDIA_POLLS: u32 = 10;
/// Wait between media polls. The host links WASI clocks, so `std::thread::sleep` blocks
/// this call only (the host runs it asynchronously under its call deadline).
pub const POLL_WAIT: Duration = Duration::from_millis(500);
/// Accepted visibilities.
pub const VISIBILITIES: [&str; 4] = ["public", "unlisted", "private", "direct"];

const IMAGE_BYTES: u64 = 16 * 1024 * 1024;
/// Below Mastodon's own 99 MiB: an upload holds the file twice (as read and inside the
/// multipart body) and a plugin has 64 MiB of memory by default.
const VIDEO_BYTES: u64 = 24 * 1024 * 1024;

/// The Mastodon platform.
pub struct Mastodon;

impl Publisher for Mastodon {
    fn info() -> PluginInfo {
        let media = |mime: &str, max_bytes| MediaLimit {
            mime_type: mime.into(),
            max_bytes,
        };
        PluginInfo {
            platform: "mastodon".into(),
            display_name: "Mastodon".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: DEFAULT_MAX_CHARACTERS,
                counting: LengthCounting::Graphemes,
                max_media: DEFAULT_MAX_MEDIA,
                media: vec![
                    media("image/jpeg", IMAGE_BYTES),
                    media("image/png", IMAGE_BYTES),
                    media("image/gif", IMAGE_BYTES),
                    media("image/webp", IMAGE_BYTES),
                    media("video/mp4", VIDEO_BYTES),
                    media("video/webm", VIDEO_BYTES),
                    media("video/quicktime", VIDEO_BYTES),
                ],
            },
            idempotent_publish: true,
        }
    }

    fn validate(post: Post) -> Vec<Violation> {
        let mut violations = Vec::new();
        let max_characters = match post.option("max_characters") {
            None => DEFAULT_MAX_CHARACTERS,
            Some(value) => match value.parse::<u32>() {
                Ok(limit) if limit > 0 => limit,
                _ => {
                    violations.push(violation(
                        "options.max_characters",
                        "invalid_option",
                        format!("max_characters must be a positive number, not {value:?}"),
                    ));
                    DEFAULT_MAX_CHARACTERS
                }
            },
        };
        let limits = StatusLimits {
            max_characters,
            max_media_attachments: DEFAULT_MAX_MEDIA,
            characters_reserved_per_url: length::URL_LENGTH,
        };
        violations.extend(check_post(&post, &limits));
        violations
    }

    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        let instance = instance_url(&request.credentials)?;
        let token = request.credentials.access_token.as_str();
        let limits = instance_limits(&instance, token).unwrap_or_else(|| StatusLimits {
            max_characters: request
                .post
                .option("max_characters")
                .and_then(|value| value.parse().ok())
                .unwrap_or(DEFAULT_MAX_CHARACTERS),
            max_media_attachments: DEFAULT_MAX_MEDIA,
            characters_reserved_per_url: length::URL_LENGTH,
        });
        let violations = check_post(&request.post, &limits);
        if !violations.is_empty() {
            return Err(PublishError::Validation(violations));
        }
        let mut media_ids = Vec::with_capacity(request.post.media.len());
        for index in 0..request.post.media.len() {
            media_ids.push(upload(&instance, token, &request, index)?);
        }
        let post = &request.post;
        let mut body = serde_json::json!({ "status": post.text, "media_ids": media_ids });
        for key in ["visibility", "spoiler_text", "language"] {
            if let Some(value) = post.option(key) {
                body[key] = value.into();
            }
        }
        if let Some(sensitive) = post.option("sensitive") {
            body["sensitive"] = (sensitive == "true").into();
        }
        let response = Request::post(format!("{instance}/api/v1/statuses"))
            .bearer(token)
            .header("idempotency-key", request.idempotency_key.clone())
            .json(&body)
            .send()?;
        let status: Status = api::check(response)?.json()?;
        log::info(&format!(
            "published status {} with {} media",
            status.id,
            media_ids.len()
        ));
        Ok(Receipt {
            url: status.url.unwrap_or(status.uri),
            platform_post_id: status.id,
        })
    }

    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let instance = instance_url(&credentials)?;
        let response = Request::get(format!("{instance}/api/v1/accounts/verify_credentials"))
            .bearer(&credentials.access_token)
            .send()?;
        let account: CredentialAccount = api::check(response)?.json()?;
        if let Some(limits) = instance_limits(&instance, &credentials.access_token) {
            log::info(&format!(
                "{instance} allows {} characters and {} attachments per status",
                limits.max_characters, limits.max_media_attachments
            ));
        }
        Ok(Account {
            id: account.id,
            handle: account.acct,
            display_name: account.display_name.filter(|name| !name.is_empty()),
        })
    }

    /// The status' replies, boosts and favourites, as the instance counts them.
    fn fetch_metrics(
        platform_post_id: String,
        credentials: Credentials,
    ) -> Result<Vec<Metric>, PublishError> {
        let instance = instance_url(&credentials)?;
        if platform_post_id.is_empty()
            || !platform_post_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(PublishError::Permanent(format!(
                "{platform_post_id:?} is not a Mastodon status id"
            )));
        }
        let response = Request::get(format!("{instance}/api/v1/statuses/{platform_post_id}"))
            .bearer(&credentials.access_token)
            .send()?;
        let counts: StatusCounts = api::check(response)?.json()?;
        Ok(vec![
            Metric {
                name: "replies".into(),
                value: counts.replies_count,
            },
            Metric {
                name: "reblogs".into(),
                value: counts.reblogs_count,
            },
            Metric {
                name: "favourites".into(),
                value: counts.favourites_count,
            },
        ])
    }
}

register_publisher!(Mastodon);

/// Why `post` cannot be a status on an instance with `limits`.
fn check_post(post: &Post, limits: &StatusLimits) -> Vec<Violation> {
    let mut violations = Vec::new();
    if let Some(visibility) = post.option("visibility")
        && !VISIBILITIES.contains(&visibility)
    {
        violations.push(violation(
            "options.visibility",
            "invalid_option",
            format!(
                "visibility must be one of {}, not {visibility:?}",
                VISIBILITIES.join(", ")
            ),
        ));
    }
    if let Some(language) = post.option("language")
        && !(2..=3).contains(&language.len())
    {
        violations.push(violation(
            "options.language",
            "invalid_option",
            format!("language must be an ISO 639 code such as \"en\", not {language:?}"),
        ));
    }
    if let Some(sensitive) = post.option("sensitive")
        && sensitive != "true"
        && sensitive != "false"
    {
        violations.push(violation(
            "options.sensitive",
            "invalid_option",
            format!("sensitive must be true or false, not {sensitive:?}"),
        ));
    }
    let spoiler = post.option("spoiler_text").unwrap_or_default();
    let used = length::status_length(spoiler, &post.text, limits.characters_reserved_per_url);
    if used > u64::from(limits.max_characters) {
        violations.push(violation(
            "text",
            "too_long",
            format!(
                "Mastodon counts {used} characters (content warning included, links as {}), \
                 the limit is {}",
                limits.characters_reserved_per_url, limits.max_characters
            ),
        ));
    }
    if post.text.trim().is_empty() && post.media.is_empty() {
        violations.push(violation(
            "text",
            "empty",
            "a Mastodon status needs text or media".into(),
        ));
    }
    // Media count, types and sizes as the SDK checks them, with the instance's count.
    let mut media_limits = Mastodon::info().limits;
    media_limits.max_text_length = u32::MAX;
    media_limits.max_media = limits.max_media_attachments;
    violations.extend(validate_limits(&media_limits, post));
    for (index, item) in post.media.iter().enumerate() {
        if let Some(alt) = &item.alt
            && alt.chars().count() > ALT_TEXT_LIMIT
        {
            violations.push(violation(
                &format!("media[{index}]"),
                "alt_text_too_long",
                format!("alt text is longer than {ALT_TEXT_LIMIT} characters"),
            ));
        }
    }
    violations
}

/// Uploads the post's media at `index` and waits (boundedly) until the instance has
/// processed it; returns its attachment id.
fn upload(
    instance: &str,
    token: &str,
    request: &PublishRequest,
    index: usize,
) -> Result<String, PublishError> {
    let item = request
        .post
        .media
        .get(index)
        .ok_or_else(|| PublishError::Permanent(format!("no media at index {index}")))?;
    let host_index = u32::try_from(index)
        .map_err(|_| PublishError::Permanent(format!("media index {index} is too large")))?;
    let bytes = media::read_all(host_index)?;
    let mut form = Multipart::new(&format!("{}-{index}", request.idempotency_key)).file(
        "file",
        &file_name(index, &item.mime_type),
        &item.mime_type,
        &bytes,
    );
    if let Some(alt) = item.alt.as_deref().filter(|alt| !alt.is_empty()) {
        form = form.text("description", alt);
    }
    let response = Request::post(format!("{instance}/api/v2/media"))
        .bearer(token)
        .multipart(form)
        .send()?;
    let processing = response.status == 202;
    let attachment: MediaAttachment = api::check(response)?.json()?;
    if !processing && attachment.url.is_some() {
        return Ok(attachment.id);
    }
    for poll in 1..=MEDIA_POLLS {
        std::thread::sleep(POLL_WAIT);
        let response = Request::get(format!("{instance}/api/v1/media/{}", attachment.id))
            .bearer(token)
            .send()?;
        if response.status == 206 {
            continue;
        }
        let polled: MediaAttachment = api::check(response)?.json()?;
        if polled.url.is_some() {
            log::debug(&format!(
                "media {} processed after {poll} poll(s)",
                attachment.id
            ));
            return Ok(polled.id);
        }
    }
    Err(PublishError::Retryable(format!(
        "media {index} is still being processed by the instance after {MEDIA_POLLS} checks"
    )))
}

/// `limits` the instance publishes, or `None` (logged) when it does not answer with them.
fn instance_limits(instance: &str, token: &str) -> Option<StatusLimits> {
    let answer = Request::get(format!("{instance}/api/v2/instance"))
        .bearer(token)
        .send()
        .map_err(PublishError::from)
        .and_then(api::check)
        .and_then(|response: Response| response.json::<Instance>());
    match answer {
        Ok(instance) => Some(instance.configuration.statuses),
        Err(error) => {
            log::warn(&format!(
                "{instance} did not give its limits ({error:?}); using Mastodon's defaults"
            ));
            None
        }
    }
}

/// The account's instance, `https://host[:port]` without a trailing slash.
fn instance_url(credentials: &Credentials) -> Result<String, PublishError> {
    let value = credentials
        .extra_value("instance")
        .map(|value| value.trim_end_matches('/'))
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            PublishError::Permanent(
                "the Mastodon connection has no instance: connect it with the extra \
                 `instance` = https://your.instance"
                    .into(),
            )
        })?;
    let host = value.strip_prefix("https://").ok_or_else(|| {
        PublishError::Permanent(format!("the instance must be an https:// URL, not {value}"))
    })?;
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err(PublishError::Permanent(format!(
            "the instance must be https://host[:port], not {value}"
        )));
    }
    Ok(value.to_owned())
}

fn violation(field: &str, code: &str, message: String) -> Violation {
    Violation {
        field: field.into(),
        code: code.into(),
        message,
    }
}

fn file_name(index: usize, mime_type: &str) -> String {
    let extension = match mime_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        "video/quicktime" => "mov",
        _ => "bin",
    };
    format!("media-{index}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::Media;

    fn post(text: &str, options: &[(&str, &str)]) -> Post {
        Post {
            text: text.into(),
            media: vec![],
            options: options
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    fn fields(violations: Vec<Violation>) -> Vec<(String, String)> {
        violations.into_iter().map(|v| (v.field, v.code)).collect()
    }

    #[test]
    fn accepts_500_characters_and_refuses_501() {
        assert_eq!(Mastodon::validate(post(&"a".repeat(500), &[])), vec![]);
        assert_eq!(
            fields(Mastodon::validate(post(&"a".repeat(501), &[]))),
            vec![("text".into(), "too_long".into())]
        );
    }

    #[test]
    fn links_count_23_and_the_content_warning_counts_too() {
        let text = format!(
            "{} https://example.com/{}",
            "a".repeat(476),
            "x".repeat(100)
        );
        assert_eq!(Mastodon::validate(post(&text, &[])), vec![]);
        assert_eq!(
            fields(Mastodon::validate(post(&text, &[("spoiler_text", "cw")]))),
            vec![("text".into(), "too_long".into())]
        );
    }

    #[test]
    fn a_connection_provided_limit_replaces_the_default() {
        let long = "a".repeat(900);
        assert_eq!(
            Mastodon::validate(post(&long, &[("max_characters", "1000")])),
            vec![]
        );
        assert_eq!(
            fields(Mastodon::validate(post(
                &long,
                &[("max_characters", "lots")]
            ))),
            vec![
                ("options.max_characters".into(), "invalid_option".into()),
                ("text".into(), "too_long".into())
            ]
        );
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(
            Mastodon::validate(post(
                "hi",
                &[
                    ("visibility", "unlisted"),
                    ("language", "en"),
                    ("sensitive", "true")
                ]
            )),
            vec![]
        );
        assert_eq!(
            fields(Mastodon::validate(post(
                "hi",
                &[
                    ("visibility", "friends"),
                    ("language", "english"),
                    ("sensitive", "yes")
                ]
            ))),
            vec![
                ("options.visibility".into(), "invalid_option".into()),
                ("options.language".into(), "invalid_option".into()),
                ("options.sensitive".into(), "invalid_option".into()),
            ]
        );
    }

    #[test]
    fn media_count_types_and_alt_text_are_checked() {
        let image = |alt: &str| Media {
            url: "https://media.example/a.png".into(),
            mime_type: "image/png".into(),
            alt: Some(alt.into()),
            size: Some(10),
            width: None,
            height: None,
            duration_ms: None,
        };
        let mut with_media = post("", &[]);
        with_media.media = vec![image("a cat"); 5];
        with_media.media[1].alt = Some("x".repeat(1_501));
        with_media.media[2].mime_type = "application/pdf".into();
        assert_eq!(
            fields(Mastodon::validate(with_media)),
            vec![
                ("media".into(), "too_many_media".into()),
                ("media[2]".into(), "unsupported_media_type".into()),
                ("media[1]".into(), "alt_text_too_long".into()),
            ]
        );
        assert_eq!(
            fields(Mastodon::validate(post("  ", &[]))),
            vec![("text".into(), "empty".into())]
        );
    }

    #[test]
    fn the_instance_must_be_an_https_base_url() {
        let with = |value: &str| Credentials {
            access_token: "t".into(),
            refresh_token: None,
            expires_at: None,
            extra: vec![("instance".into(), value.into())],
        };
        assert_eq!(
            instance_url(&with("https://mastodon.test/")),
            Ok("https://mastodon.test".into())
        );
        assert_eq!(
            instance_url(&with("https://mastodon.test:8443")),
            Ok("https://mastodon.test:8443".into())
        );
        assert!(instance_url(&with("http://mastodon.test")).is_err());
        assert!(instance_url(&with("https://mastodon.test/api")).is_err());
        assert!(instance_url(&with("")).is_err());
    }
}
