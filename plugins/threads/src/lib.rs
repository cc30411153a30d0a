//! Herald publisher plugin for Threads (the Threads API on graph.threads.net). An account
//! connects with Threads Login ([`oauth`]) or a pasted long-lived token; its 60-day token
//! is renewed by the token lifecycle (`refresh-token`, `th_refresh_token`).
//!
//! Publishing ([`containers`]): the quota is read first (`threads_publishing_limit`: 250
//! posts per 24 hours; a full quota is a wait with the reason, not a failure); then a
//! container (`TEXT`, `IMAGE`, `VIDEO`, or a `CAROUSEL` of 2–20 image/video items, each a
//! container of its own), Threads downloading each media from Herald's signed URL; its
//! status read until `FINISHED` (a bounded number of reads, then retried later); then
//! `threads_publish`. "Not ready yet" (code 24, subcode 4279009) is tried again; an
//! unknown error (1, 2) reads the container: `PUBLISHED` proves the thread went out, and
//! it is found among the user's latest threads instead of being posted twice. The
//! container's id is saved as a checkpoint before it is published, so an attempt after a
//! crash resumes with it (publishing it, or finding the thread it became) instead of
//! making a second one.
//!
//! Limits: 500 characters; up to 20 media (JPEG, PNG up to 8 MB; MP4, QuickTime up to
//! 1 GB).

mod api;
mod containers;
mod oauth;

use herald_meta_graph::ContainerStatus;
use herald_plugin_sdk::checkpoint;
use herald_plugin_sdk::failure::MAX_RETRY_SECONDS;
use herald_plugin_sdk::http::{Request, percent_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{
    Account, AspectRange, Credentials, DurationRange, FrameRules, LengthCounting, Limits, Media,
    MediaLimit, OauthClient, PluginInfo, Post, PublishError, PublishRequest, Publisher, RateLimit,
    Receipt, Violation, log, register_publisher, validate_frames, validate_limits,
};
use serde::Deserialize;

use crate::api::{Api, PLATFORM};
use crate::containers::Published;

/// Longest text, in characters.
pub const MAX_TEXT_LENGTH: u32 = 500;
/// Most items in a carousel.
pub const MAX_MEDIA: u32 = 20;
/// Seconds a full publishing quota waits before Herald looks again (the quota is a
/// rolling 24 hours: a slot frees as the oldest post of the window ages out).
pub const QUOTA_WAIT_SECONDS: u32 = 3_600;

const IMAGE_BYTES: u64 = 8 * 1024 * 1024;
const VIDEO_BYTES: u64 = 1024 * 1024 * 1024;
/// Threads' frame rules: images up to 10:1 either way, videos up to 5 minutes.
const FRAMES: FrameRules = FrameRules {
    platform: PLATFORM,
    image_aspect: Some(AspectRange {
        narrowest: (1, 10),
        widest: (10, 1),
        says: "between 1:10 and 10:1",
    }),
    video_duration: Some(DurationRange {
        shortest_ms: 0,
        longest_ms: 5 * 60 * 1_000,
        says: "up to 5 minutes",
    }),
};

/// The Threads platform.
pub struct Threads;

impl Publisher for Threads {
    fn info() -> PluginInfo {
        let media = |mime: &str, max_bytes| MediaLimit {
            mime_type: mime.into(),
            max_bytes,
        };
        PluginInfo {
            platform: "threads".into(),
            display_name: "Threads".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: MAX_TEXT_LENGTH,
                counting: LengthCounting::Chars,
                max_media: MAX_MEDIA,
                media: vec![
                    media("image/jpeg", IMAGE_BYTES),
                    media("image/png", IMAGE_BYTES),
                    media("video/mp4", VIDEO_BYTES),
                    media("video/quicktime", VIDEO_BYTES),
                ],
            },
            // A failure after the container was published is recognised (see the crate's
            // documentation); a lost answer to `threads_publish` is not.
            idempotent_publish: false,
        }
    }

    fn validate(post: Post) -> Vec<Violation> {
        check_post(&post)
    }

    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        let violations = check_post(&request.post);
        if !violations.is_empty() {
            return Err(PublishError::Validation(violations));
        }
        let credentials = &request.credentials;
        let secrets = secrets(credentials);
        let api = Api {
            token: &credentials.access_token,
            secrets: &secrets,
        };
        let user = user_id(&api, credentials)?;
        let post = &request.post;
        let container = match resumable(&api, &user, post)? {
            Resume::Container(saved) => saved,
            Resume::Done(receipt) => return Ok(receipt),
            Resume::Afresh => {
                check_quota(&api, &user)?;
                let made = container(&api, &user, post)?;
                // Durable before anything can publish it: a later attempt resumes here.
                checkpoint::save(CONTAINER, &made)?;
                made
            }
        };
        containers::wait(&api, &container, "the post")?;
        let thread = match containers::publish(&api, &user, &container)? {
            Published::Thread(id) => id,
            Published::Unknown(error) => return found_or(&api, &user, &container, post, error),
        };
        let url = containers::permalink(&api, &thread)?;
        log::info(&format!(
            "published thread {thread} with {} media",
            post.media.len()
        ));
        Ok(Receipt {
            platform_post_id: thread,
            url,
        })
    }

    /// Names the user (`GET /me?fields=id,username,name`).
    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let secrets = secrets(&credentials);
        let api = Api {
            token: &credentials.access_token,
            secrets: &secrets,
        };
        let me = me(&api)?;
        Ok(Account {
            display_name: me
                .name
                .filter(|name| !name.trim().is_empty())
                .or_else(|| Some(format!("@{}", me.username))),
            handle: me.username,
            id: me.id,
        })
    }

    fn oauth_authorize_url(
        client: OauthClient,
        state: String,
        _pkce_challenge: String,
    ) -> Result<String, PublishError> {
        if client.client_id.trim().is_empty() {
            return Err(PublishError::Permanent(
                "the Threads app's id is empty".into(),
            ));
        }
        Ok(oauth::authorize_url(&client, &state))
    }

    /// Exchanges the code for a long-lived token (Threads Login takes no PKCE).
    fn oauth_exchange(
        client: OauthClient,
        code: String,
        _verifier: String,
    ) -> Result<Credentials, PublishError> {
        let secret = client
            .client_secret
            .clone()
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| {
                PublishError::Permanent(
                    "Threads needs the app's secret to exchange a code \
                     (HERALD_OAUTH_THREADS_CLIENT_SECRET)"
                        .into(),
                )
            })?;
        oauth::exchange(&client, &secret, &code)
    }

    /// Renews the long-lived token for another 60 days (`th_refresh_token`).
    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        oauth::refresh(&credentials)
    }
}

register_publisher!(Threads);

/// The account's tokens, to scrub from messages.
fn secrets(credentials: &Credentials) -> Secrets {
    Secrets::new(std::iter::once(&credentials.access_token).chain(&credentials.refresh_token))
}

/// `GET /me`'s answer.
#[derive(Deserialize)]
struct Me {
    id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: Option<String>,
}

fn me(api: &Api<'_>) -> Result<Me, PublishError> {
    api.call(Request::get(Api::url("/me?fields=id,username,name")))?
        .json::<Me>()
}

/// The Threads user id: the `user_id` extra the Login recorded, else `GET /me`.
fn user_id(api: &Api<'_>, credentials: &Credentials) -> Result<String, PublishError> {
    match credentials.extra_value(oauth::USER_ID) {
        Some(id) => Ok(id.to_owned()),
        None => Ok(me(api)?.id),
    }
}

#[derive(Deserialize)]
struct Limit {
    #[serde(default)]
    data: Vec<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    quota_usage: u32,
    #[serde(default)]
    config: Option<QuotaConfig>,
}

#[derive(Deserialize)]
struct QuotaConfig {
    #[serde(default)]
    quota_total: u32,
    #[serde(default)]
    quota_duration: u32,
}

/// Reads `threads_publishing_limit`: a full quota is a wait of [`QUOTA_WAIT_SECONDS`] with
/// the reason.
fn check_quota(api: &Api<'_>, user: &str) -> Result<(), PublishError> {
    let url = Api::url(&format!(
        "/{}/threads_publishing_limit?fields=quota_usage,config",
        percent_encode(user)
    ));
    let limit = api.call(Request::get(url))?.json::<Limit>()?;
    let Some(usage) = limit.data.into_iter().next() else {
        return Ok(());
    };
    let (total, hours) = usage.config.map_or((250, 24), |config| {
        (config.quota_total, config.quota_duration / 3_600)
    });
    if total > 0 && usage.quota_usage >= total {
        return Err(PublishError::RateLimited(RateLimit {
            retry_after_seconds: QUOTA_WAIT_SECONDS.min(MAX_RETRY_SECONDS),
            message: format!(
                "{PLATFORM}'s publishing quota is used up ({} of {total} posts in {hours} \
                 hours): waiting for posts to leave the window",
                usage.quota_usage
            ),
        }));
    }
    Ok(())
}

/// The container of the whole post (its carousel items created and processed first).
fn container(api: &Api<'_>, user: &str, post: &Post) -> Result<String, PublishError> {
    let text = post.text.as_str();
    match post.media.as_slice() {
        [] => containers::create(api, user, &[("media_type", "TEXT"), ("text", text)]),
        [single] => {
            let mut fields = media_fields(single);
            fields.push(("text", text));
            containers::create(api, user, &fields).map_err(|error| about_media(error, 0))
        }
        several => {
            let mut children = Vec::with_capacity(several.len());
            for (index, item) in several.iter().enumerate() {
                let mut fields = media_fields(item);
                fields.push(("is_carousel_item", "true"));
                let child = containers::create(api, user, &fields)
                    .map_err(|error| about_media(error, index))?;
                containers::wait(api, &child, &format!("media[{index}]"))?;
                children.push(child);
            }
            let children = children.join(",");
            containers::create(
                api,
                user,
                &[
                    ("media_type", "CAROUSEL"),
                    ("children", children.as_str()),
                    ("text", text),
                ],
            )
        }
    }
}

/// The container fields of one image or video.
fn media_fields(media: &Media) -> Vec<(&'static str, &str)> {
    let mut fields = if media.mime_type.starts_with("video/") {
        vec![("media_type", "VIDEO"), ("video_url", media.url.as_str())]
    } else {
        vec![("media_type", "IMAGE"), ("image_url", media.url.as_str())]
    };
    if let Some(alt) = media.alt.as_deref().filter(|alt| !alt.trim().is_empty()) {
        fields.push(("alt_text", alt));
    }
    fields
}

/// Names the media in a failure about it.
fn about_media(error: PublishError, index: usize) -> PublishError {
    let name = |message: String| format!("media[{index}]: {message}");
    match error {
        PublishError::Permanent(message) => PublishError::Permanent(name(message)),
        PublishError::Retryable(message) => PublishError::Retryable(name(message)),
        other => other,
    }
}

/// After an unknown error publishing `container`: when the container shows `PUBLISHED`,
/// the thread among the user's latest with the post's text; otherwise `error`.
fn found_or(
    api: &Api<'_>,
    user: &str,
    container: &str,
    post: &Post,
    error: PublishError,
) -> Result<Receipt, PublishError> {
    if containers::status(api, container)?.0 != ContainerStatus::Published {
        return Err(error);
    }
    match containers::find(api, user, &post.text)? {
        Some(thread) => {
            log::info(&format!(
                "{PLATFORM} answered an error but container {container} is published: \
                 thread {}",
                thread.id
            ));
            let url = match thread.permalink.filter(|link| !link.is_empty()) {
                Some(url) => url,
                None => containers::permalink(api, &thread.id)?,
            };
            Ok(Receipt {
                platform_post_id: thread.id,
                url,
            })
        }
        None => Err(PublishError::Permanent(format!(
            "{PLATFORM} published container {container} but none of the user's latest \
             threads has this text: check the account before publishing again"
        ))),
    }
}

/// The checkpoint naming the publish's container.
const CONTAINER: &str = "container";

/// Where an attempt starts.
enum Resume {
    /// An earlier attempt's container, still publishable.
    Container(String),
    /// An earlier attempt published the thread (its container is `PUBLISHED`).
    Done(Receipt),
    /// Nothing to resume (no container yet, or it expired or failed): start afresh.
    Afresh,
}

/// What an earlier attempt of this publish left (its container, saved as a checkpoint):
/// a crash between creating and publishing, or after publishing but before Herald
/// recorded it, never posts the thread twice.
fn resumable(api: &Api<'_>, user: &str, post: &Post) -> Result<Resume, PublishError> {
    let Some(saved) = checkpoint::load(CONTAINER)? else {
        return Ok(Resume::Afresh);
    };
    match containers::status(api, &saved)?.0 {
        ContainerStatus::Published => {
            let unknown = PublishError::Permanent(format!(
                "{PLATFORM} container {saved} of an earlier attempt is published"
            ));
            found_or(api, user, &saved, post, unknown).map(Resume::Done)
        }
        ContainerStatus::Finished | ContainerStatus::InProgress => {
            log::info(&format!(
                "resuming with container {saved} of an earlier attempt"
            ));
            Ok(Resume::Container(saved))
        }
        ContainerStatus::Expired | ContainerStatus::Error => Ok(Resume::Afresh),
    }
}

/// Why `post` cannot be a thread.
fn check_post(post: &Post) -> Vec<Violation> {
    let mut violations = Vec::new();
    if post.text.trim().is_empty() && post.media.is_empty() {
        violations.push(Violation {
            field: "text".into(),
            code: "empty".into(),
            message: "a thread needs text or media".into(),
        });
    }
    violations.extend(validate_limits(&Threads::info().limits, post));
    violations.extend(validate_frames(&FRAMES, post));
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(text: &str, media: usize) -> Post {
        Post {
            text: text.into(),
            media: vec![
                Media {
                    url: "https://media.test/a".into(),
                    mime_type: "image/png".into(),
                    alt: None,
                    size: Some(10),
                    width: None,
                    height: None,
                    duration_ms: None,
                };
                media
            ],
            options: vec![],
        }
    }

    fn codes(post: Post) -> Vec<(String, String)> {
        Threads::validate(post)
            .into_iter()
            .map(|v| (v.field, v.code))
            .collect()
    }

    #[test]
    fn five_hundred_characters_fit() {
        assert_eq!(codes(post(&"é".repeat(500), 0)), vec![]);
        assert_eq!(
            codes(post(&"a".repeat(501), 0)),
            vec![("text".into(), "too_long".into())]
        );
        assert_eq!(codes(post("", 0)), vec![("text".into(), "empty".into())]);
        assert_eq!(
            codes(post("a", 21)),
            vec![("media".into(), "too_many_media".into())]
        );
    }

    #[test]
    fn frames_and_durations_herald_knows_are_checked() {
        let sized = |mime: &str, width, height, duration_ms| {
            let mut post = post("framed", 1);
            post.media[0].mime_type = mime.into();
            post.media[0].width = width;
            post.media[0].height = height;
            post.media[0].duration_ms = duration_ms;
            codes(post)
        };
        let aspect = vec![("media[0]".to_owned(), "aspect_ratio".to_owned())];
        assert_eq!(sized("image/png", Some(1000), Some(100), None), vec![]);
        assert_eq!(sized("image/png", Some(100), Some(1000), None), vec![]);
        assert_eq!(sized("image/png", Some(1001), Some(100), None), aspect);
        assert_eq!(sized("image/png", Some(100), Some(1001), None), aspect);
        let duration = vec![("media[0]".to_owned(), "duration".to_owned())];
        assert_eq!(sized("video/mp4", None, None, Some(300_000)), vec![]);
        assert_eq!(sized("video/mp4", None, None, Some(300_001)), duration);
    }
}
