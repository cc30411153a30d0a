//! Herald publisher plugin for Facebook Pages (the Graph API). An account connects with
//! Facebook Login ([`oauth`]): the connection holds the long-lived user token and is one
//! Page, the one the credential extra `page` names (or the user's only Page, see
//! [`pages`]). The Graph version is the extra `graph_version` (default v25.0).
//!
//! Publishing:
//! - text (and the post option `link`): `POST /{page}/feed` with `message` (and `link`);
//! - photos: each `POST /{page}/photos` with `url` and `published=false` (Facebook
//!   downloads it from Herald's signed URL), then `POST /{page}/feed` with `message` and
//!   `attached_media`, so one post holds them all;
//! - a video: `POST /{page}/videos` on graph-video.facebook.com with `file_url` and
//!   `description` (Facebook downloads it, in ranges).
//!
//! **The Page token costs one call per publish**: every publish first reads the Page's
//! token with the user token (`GET /{page}?fields=access_token`, or `GET /me/accounts`
//! when no Page is named). It is not stored because the connection holds one credential,
//! the user token the Login flow returned (the Page is chosen after the exchange), and a
//! Page token is revoked whenever the user's password, role on the Page or permissions
//! change: read fresh, it is always the one Facebook currently honours, and an answer of
//! 190 then means the user token itself ended (reconnect).
//!
//! Failures ([`herald_meta_graph::failure`]): throttling (4, 17, 32, 613, 80001) waits as
//! `X-Business-Use-Case-Usage` says; 190 asks to reconnect; 368 (a temporary block) waits,
//! with Facebook's words; 506 (a duplicate of a recent post: an earlier attempt's post
//! whose answer was lost) and the unknown errors 1 and 2 look the post up among the Page's
//! latest ([`recent`]) before failing or retrying, so a post never goes out twice.
//!
//! Limits: 63,206 characters; up to 10 photos (JPEG, PNG, GIF, WebP) or one video (MP4,
//! QuickTime).

mod graph;
mod oauth;
mod pages;
mod recent;

use herald_meta_graph::{Meaning, graph_error};
use herald_plugin_sdk::http::{Request, Response, percent_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, MediaLimit, OauthClient, PluginInfo, Post,
    PublishError, PublishRequest, Publisher, Receipt, Violation, log, register_publisher,
    validate_limits,
};
use serde::Deserialize;
use serde_json::json;

use crate::graph::{Graph, PLATFORM};
use crate::pages::{PAGE_KEY, Page};
use crate::recent::Edge;

/// Longest post text, in characters.
pub const MAX_TEXT_LENGTH: u32 = 63_206;
/// Photos in one post.
pub const MAX_PHOTOS: u32 = 10;
/// The post option naming a link to share with the text.
pub const LINK_OPTION: &str = "link";

/// Largest photo Facebook takes by URL.
const PHOTO_BYTES: u64 = 10 * 1024 * 1024;
/// Largest video Facebook takes by URL (non-resumable `file_url` upload).
const VIDEO_BYTES: u64 = 1024 * 1024 * 1024;

/// The Facebook Pages platform.
pub struct Facebook;

impl Publisher for Facebook {
    fn info() -> PluginInfo {
        let media = |mime: &str, max_bytes| MediaLimit {
            mime_type: mime.into(),
            max_bytes,
        };
        PluginInfo {
            platform: "facebook".into(),
            display_name: "Facebook Pages".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: MAX_TEXT_LENGTH,
                counting: LengthCounting::Chars,
                max_media: MAX_PHOTOS,
                media: vec![
                    media("image/jpeg", PHOTO_BYTES),
                    media("image/png", PHOTO_BYTES),
                    media("image/gif", PHOTO_BYTES),
                    media("image/webp", PHOTO_BYTES),
                    media("video/mp4", VIDEO_BYTES),
                    media("video/quicktime", VIDEO_BYTES),
                ],
            },
            // A repeated post is refused as a duplicate (506) and found among the Page's
            // latest posts (see the crate's documentation).
            idempotent_publish: true,
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
        let user_secrets = secrets(credentials, None);
        let user_graph = Graph::new(credentials, &user_secrets);
        let page = page_of(&user_graph, credentials)?;
        let token = page.access_token.clone().ok_or_else(|| {
            PublishError::AuthExpired(format!(
                "Facebook gives no token for the Page {} ({}): the user may no longer \
                 create content on it; reconnect with a user who manages the Page",
                page.name, page.id
            ))
        })?;
        let secrets = secrets(credentials, Some(&token));
        let graph = Graph::new(credentials, &secrets);
        let post = &request.post;
        let receipt = if post.media.iter().any(is_video) {
            publish_video(&graph, &page.id, &token, post)?
        } else {
            let mut photos = Vec::with_capacity(post.media.len());
            for (index, item) in post.media.iter().enumerate() {
                photos.push(upload_photo(&graph, &page.id, &token, index, item)?);
            }
            publish_feed(&graph, &page.id, &token, post, &photos)?
        };
        log::info(&format!(
            "published {} to Page {} with {} media",
            receipt.platform_post_id,
            page.id,
            post.media.len()
        ));
        Ok(receipt)
    }

    /// Reads the user's Pages (`GET /me/accounts`): the account is the Page the `page`
    /// extra names, or the only one; with several and none named, a validation error lists
    /// them.
    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let secrets = secrets(&credentials, None);
        let graph = Graph::new(&credentials, &secrets);
        let page = pages::choose(
            &credentials,
            pages::list(&graph, &credentials.access_token)?,
        )?;
        Ok(Account {
            handle: page.id.clone(),
            display_name: Some(page.name).filter(|name| !name.trim().is_empty()),
            id: page.id,
        })
    }

    fn oauth_authorize_url(
        client: OauthClient,
        state: String,
        _pkce_challenge: String,
    ) -> Result<String, PublishError> {
        if client.client_id.trim().is_empty() {
            return Err(PublishError::Permanent(
                "the Facebook app's id is empty".into(),
            ));
        }
        Ok(oauth::authorize_url(&client, &state))
    }

    /// Exchanges the code for a long-lived user token (Facebook Login takes no PKCE).
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
                    "Facebook needs the app's secret to exchange a code \
                     (HERALD_OAUTH_FACEBOOK_CLIENT_SECRET)"
                        .into(),
                )
            })?;
        oauth::exchange(&client, &secret, &code)
    }

    /// A long-lived user token cannot be renewed without the user: the answer asks to
    /// reconnect (without calling Facebook).
    fn refresh_token(_credentials: Credentials) -> Result<Credentials, PublishError> {
        Err(PublishError::AuthExpired(
            "Facebook user tokens last about 60 days and cannot be renewed without the user: \
             reconnect the account"
                .into(),
        ))
    }
}

register_publisher!(Facebook);

/// The user token, and the Page token once known, to scrub from messages.
fn secrets(credentials: &Credentials, page_token: Option<&str>) -> Secrets {
    Secrets::new(std::iter::once(credentials.access_token.as_str()).chain(page_token))
}

/// The connection's Page with its token: `GET /{page}` when the `page` extra names it,
/// else the only Page of `GET /me/accounts`.
fn page_of(graph: &Graph<'_>, credentials: &Credentials) -> Result<Page, PublishError> {
    let user = credentials.access_token.as_str();
    match credentials.extra_value(PAGE_KEY) {
        Some(id) => pages::one(graph, user, id),
        None => {
            pages::choose(credentials, pages::list(graph, user)?).map_err(|error| match error {
                PublishError::Validation(found) => PublishError::Permanent(
                    found
                        .into_iter()
                        .map(|violation| violation.message)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                other => other,
            })
        }
    }
}

fn is_video(media: &herald_plugin_sdk::Media) -> bool {
    media.mime_type.starts_with("video/")
}

/// An id Facebook answers a creation with.
#[derive(Deserialize)]
struct Created {
    id: String,
}

/// `POST /{page}/photos` with `url` and `published=false`: the photo's id, to attach.
fn upload_photo(
    graph: &Graph<'_>,
    page: &str,
    token: &str,
    index: usize,
    media: &herald_plugin_sdk::Media,
) -> Result<String, PublishError> {
    let mut form = vec![("url", media.url.as_str()), ("published", "false")];
    if let Some(alt) = media.alt.as_deref().filter(|alt| !alt.trim().is_empty()) {
        form.push(("alt_text_custom", alt));
    }
    let url = graph.url(&format!("/{}/photos", percent_encode(page)));
    let created = graph
        .call(Request::post(url).form(&form), token)
        .map_err(|error| about_media(error, index))?;
    Ok(created.json::<Created>()?.id)
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

/// `POST /{page}/feed`: the text (with the `link` option) and the `photos` attached.
fn publish_feed(
    graph: &Graph<'_>,
    page: &str,
    token: &str,
    post: &Post,
    photos: &[String],
) -> Result<Receipt, PublishError> {
    let attached = json!(
        photos
            .iter()
            .map(|id| json!({ "media_fbid": id }))
            .collect::<Vec<_>>()
    )
    .to_string();
    let mut form = vec![("message", post.text.as_str())];
    if let Some(link) = post.option(LINK_OPTION) {
        form.push(("link", link));
    }
    if !photos.is_empty() {
        form.push(("attached_media", attached.as_str()));
    }
    let url = graph.url(&format!("/{}/feed", percent_encode(page)));
    let answer = graph.send(Request::post(url).form(&form), token)?;
    let id = created(graph, answer, page, token, Edge::Feed, &post.text)?;
    let post_part = id.split_once('_').map_or(id.as_str(), |(_, post)| post);
    Ok(Receipt {
        url: format!("https://www.facebook.com/{page}/posts/{post_part}"),
        platform_post_id: id,
    })
}

/// `POST /{page}/videos` on graph-video.facebook.com with `file_url` and `description`.
fn publish_video(
    graph: &Graph<'_>,
    page: &str,
    token: &str,
    post: &Post,
) -> Result<Receipt, PublishError> {
    let video = post
        .media
        .iter()
        .find(|media| is_video(media))
        .ok_or_else(|| PublishError::Permanent("no video to publish".into()))?;
    let form = [
        ("file_url", video.url.as_str()),
        ("description", post.text.as_str()),
    ];
    let url = graph.video_url(&format!("/{}/videos", percent_encode(page)));
    let answer = graph.send(Request::post(url).form(&form), token)?;
    let id = created(graph, answer, page, token, Edge::Videos, &post.text)?;
    Ok(Receipt {
        url: format!("https://www.facebook.com/{page}/videos/{id}"),
        platform_post_id: id,
    })
}

/// The id of the post `answer` created; for a duplicate (506) or an unknown error (1, 2),
/// the post with `text` among the Page's latest on `edge` if there is one (an earlier
/// attempt made it), else the failure.
fn created(
    graph: &Graph<'_>,
    answer: Response,
    page: &str,
    token: &str,
    edge: Edge,
    text: &str,
) -> Result<String, PublishError> {
    if answer.is_success() {
        return Ok(answer.json::<Created>()?.id);
    }
    let meaning = graph_error(&answer).map(|error| error.meaning());
    if matches!(meaning, Some(Meaning::Duplicate | Meaning::Transient)) {
        if let Some(id) = recent::find(graph, page, token, edge, text)? {
            log::info(&format!(
                "Facebook answered {meaning:?} and the Page already shows {id}: an earlier \
                 attempt published it"
            ));
            return Ok(id);
        }
        if meaning == Some(Meaning::Duplicate) {
            return Err(PublishError::Permanent(format!(
                "{}; none of the Page's latest posts has this text: change the text to post \
                 it again",
                describe(&answer)
            )));
        }
    }
    Err(graph.failure(&answer))
}

/// Facebook's words for a failed answer.
fn describe(answer: &Response) -> String {
    match graph_error(answer) {
        Some(error) => format!("{PLATFORM}: {}", error.describe()),
        None => format!("{PLATFORM}: HTTP {}", answer.status),
    }
}

/// Why `post` cannot be a Facebook Page post.
fn check_post(post: &Post) -> Vec<Violation> {
    let mut violations = Vec::new();
    if post.text.trim().is_empty() && post.media.is_empty() {
        violations.push(violation(
            "text",
            "empty",
            "a Facebook post needs text, photos or a video".into(),
        ));
    }
    violations.extend(validate_limits(&Facebook::info().limits, post));
    let videos = post.media.iter().filter(|media| is_video(media)).count();
    if videos > 0 && post.media.len() > 1 {
        violations.push(violation(
            "media",
            "video_alone",
            "a Facebook video post has one video and nothing else".into(),
        ));
    }
    if let Some(link) = post.option(LINK_OPTION)
        && !link.starts_with("https://")
        && !link.starts_with("http://")
    {
        violations.push(violation(
            "options.link",
            "invalid_link",
            format!("the link {link:?} is not an http(s) URL"),
        ));
    }
    violations
}

fn violation(field: &str, code: &str, message: String) -> Violation {
    Violation {
        field: field.into(),
        code: code.into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::Media;

    fn media(mime: &str) -> Media {
        Media {
            url: "https://media.test/a".into(),
            mime_type: mime.into(),
            alt: None,
            size: Some(10),
            width: None,
            height: None,
            duration_ms: None,
        }
    }

    fn codes(post: Post) -> Vec<(String, String)> {
        Facebook::validate(post)
            .into_iter()
            .map(|v| (v.field, v.code))
            .collect()
    }

    #[test]
    fn posts_are_checked() {
        let post = |text: &str, media: Vec<Media>| Post {
            text: text.into(),
            media,
            options: vec![],
        };
        assert_eq!(codes(post("hello", vec![])), vec![]);
        assert_eq!(
            codes(post(" ", vec![])),
            vec![("text".into(), "empty".into())]
        );
        assert_eq!(
            codes(post("a", vec![media("image/png"), media("image/jpeg")])),
            vec![]
        );
        assert_eq!(
            codes(post("a", vec![media("video/mp4"), media("image/png")])),
            vec![("media".into(), "video_alone".into())]
        );
        let mut linked = post("a", vec![]);
        linked.options = vec![("link".into(), "ftp://x".into())];
        assert_eq!(
            codes(linked),
            vec![("options.link".into(), "invalid_link".into())]
        );
    }
}
