//! Herald publisher plugin for X (API v2). An account connects with OAuth 2.0
//! (authorization code + PKCE S256, see [`oauth`]) or a pasted user access token; posts
//! go out with `POST /2/tweets`, images by the v2 chunked upload ([`upload`]), the account
//! is named by `GET /2/users/me`.
//!
//! Exactly once: X takes no idempotency key. When the answer to creating a post is lost
//! (no answer, or a timeout), the plugin looks for the post among the account's own
//! recent posts ([`recent`]) before anything else; when it is not there yet, the publish
//! is retried, and X refuses a second identical post with 403 "duplicate content", which
//! sends the plugin to look again rather than fail. A post without text cannot be
//! recognised that way, so a lost answer for one fails asking a person to check. The
//! `lookup` export keeps the SDK's default (`None`): it receives only the idempotency
//! key, which an X post does not carry.
//!
//! Metrics: the post's public metrics (`GET /2/tweets/{id}?tweet.fields=public_metrics`).
//!
//! Target options: none. Limits: 280 by X's weighted count (links 23, CJK and emoji 2),
//! up to 4 images (JPEG, PNG, WebP up to 5 MB; a GIF up to 15 MB, alone), alt text up to
//! 1,000 characters.

mod api;
mod oauth;
mod recent;
mod upload;

use herald_plugin_sdk::http::{HttpError, Request};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::text::{X_URL_LENGTH, x_weighted_length};
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, MediaLimit, Metric, OauthClient, PluginInfo,
    Post, PublishError, PublishRequest, Publisher, Receipt, Violation, log, register_publisher,
    validate_limits,
};

use crate::api::{API, Created, Data, Measured, User};
use crate::oauth::Grant;

/// X's limit for a standard account, by its weighted count.
pub const MAX_WEIGHTED_LENGTH: u32 = 280;
/// Images per post.
pub const MAX_MEDIA: u32 = 4;
/// Longest alt text, in characters.
pub const ALT_TEXT_LIMIT: usize = 1_000;

const IMAGE_BYTES: u64 = 5 * 1024 * 1024;
const GIF_BYTES: u64 = 15 * 1024 * 1024;

/// The X platform.
pub struct X;

impl Publisher for X {
    fn info() -> PluginInfo {
        let media = |mime: &str, max_bytes| MediaLimit {
            mime_type: mime.into(),
            max_bytes,
        };
        PluginInfo {
            platform: "x".into(),
            display_name: "X".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: MAX_WEIGHTED_LENGTH,
                counting: LengthCounting::WeightedX,
                max_media: MAX_MEDIA,
                media: vec![
                    media("image/jpeg", IMAGE_BYTES),
                    media("image/png", IMAGE_BYTES),
                    media("image/webp", IMAGE_BYTES),
                    media("image/gif", GIF_BYTES),
                ],
            },
            // Publishing again with the same key finds the earlier post (see the crate's
            // documentation) rather than creating a second one.
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
        let secrets = secrets(&request.credentials);
        let token = request.credentials.access_token.as_str();
        let post = &request.post;
        let mut media_ids = Vec::with_capacity(post.media.len());
        for (index, item) in post.media.iter().enumerate() {
            let index = u32::try_from(index)
                .map_err(|_| PublishError::Permanent(format!("media index {index} too large")))?;
            let item = upload::Item {
                index,
                mime_type: &item.mime_type,
                alt: item.alt.as_deref(),
            };
            media_ids.push(upload::upload(&item, token, &secrets)?);
        }
        let mut body = serde_json::json!({ "text": post.text });
        if !media_ids.is_empty() {
            body["media"] = serde_json::json!({ "media_ids": media_ids });
        }
        let sent = Request::post(format!("{API}/2/tweets"))
            .bearer(token)
            .json(&body)
            .send();
        let response = match sent {
            Ok(response) => response,
            Err(error @ (HttpError::Timeout | HttpError::Transport(_))) => {
                let lost = PublishError::from(error).scrubbed(&secrets);
                return after_lost_answer(post, token, &secrets, &lost);
            }
            Err(error) => return Err(PublishError::from(error).scrubbed(&secrets)),
        };
        if api::is_duplicate(&response) {
            return after_duplicate(post, token, &secrets);
        }
        let created = api::check(response)
            .map_err(|error| error.scrubbed(&secrets))?
            .json::<Data<Created>>()?
            .data;
        log::info(&format!(
            "published post {} with {} media",
            created.id,
            media_ids.len()
        ));
        Ok(receipt(created.id))
    }

    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let secrets = secrets(&credentials);
        let user = api::call(
            Request::get(format!("{API}/2/users/me")),
            &credentials.access_token,
            &secrets,
        )?
        .json::<Data<User>>()?
        .data;
        Ok(Account {
            id: user.id,
            handle: user.username,
            display_name: user.name.filter(|name| !name.is_empty()),
        })
    }

    /// The post's public metrics: likes, reposts, replies, quotes, bookmarks, impressions.
    fn fetch_metrics(
        platform_post_id: String,
        credentials: Credentials,
    ) -> Result<Vec<Metric>, PublishError> {
        if platform_post_id.is_empty() || !platform_post_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PublishError::Permanent(format!(
                "{platform_post_id:?} is not an X post id"
            )));
        }
        let secrets = secrets(&credentials);
        let measured = api::call(
            Request::get(format!(
                "{API}/2/tweets/{platform_post_id}?tweet.fields=public_metrics"
            )),
            &credentials.access_token,
            &secrets,
        )?
        .json::<Data<Measured>>()?
        .data
        .public_metrics;
        let metric = |name: &str, value| Metric {
            name: name.into(),
            value,
        };
        Ok(vec![
            metric("likes", measured.like_count),
            metric("reposts", measured.repost_count),
            metric("replies", measured.reply_count),
            metric("quotes", measured.quote_count),
            metric("bookmarks", measured.bookmark_count),
            metric("impressions", measured.impression_count),
        ])
    }

    fn oauth_authorize_url(
        client: OauthClient,
        state: String,
        pkce_challenge: String,
    ) -> Result<String, PublishError> {
        if client.client_id.trim().is_empty() {
            return Err(PublishError::Permanent(
                "the X app's OAuth 2.0 client id is empty".into(),
            ));
        }
        Ok(oauth::authorize_url(&client, &state, &pkce_challenge))
    }

    fn oauth_exchange(
        client: OauthClient,
        code: String,
        verifier: String,
    ) -> Result<Credentials, PublishError> {
        let secrets = Secrets::new(
            [&code, &verifier]
                .into_iter()
                .chain(client.client_secret.as_ref()),
        );
        oauth::send(
            oauth::exchange_request(&client, &code, &verifier),
            Grant::Code,
            None,
            &client.client_id,
            &secrets,
        )
    }

    /// Exchanges the (single-use) refresh token for new credentials, with the rotated
    /// refresh token. A pasted token without a refresh token is returned unchanged: it
    /// cannot be refreshed, and a 401 when publishing asks to reconnect.
    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        let Some(refresh) = credentials.refresh_token.as_deref() else {
            return Ok(credentials);
        };
        let client_id = credentials.extra_value(oauth::CLIENT_ID).ok_or_else(|| {
            PublishError::Permanent(format!(
                "the X connection has a refresh token but no `{}` extra; reconnect it \
                 through OAuth",
                oauth::CLIENT_ID
            ))
        })?;
        let client_secret = credentials.extra_value(oauth::CLIENT_SECRET);
        let secrets = Secrets::new(
            [credentials.access_token.as_str(), refresh]
                .into_iter()
                .chain(client_secret),
        );
        let request = oauth::token_request(
            client_id,
            client_secret,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        );
        oauth::send(
            request,
            Grant::Refresh,
            Some(&credentials),
            client_id,
            &secrets,
        )
    }
}

register_publisher!(X);

/// The account's tokens, to scrub from messages.
fn secrets(credentials: &Credentials) -> Secrets {
    Secrets::new(std::iter::once(&credentials.access_token).chain(&credentials.refresh_token))
}

fn receipt(id: String) -> Receipt {
    Receipt {
        url: format!("https://x.com/i/status/{id}"),
        platform_post_id: id,
    }
}

/// X never answered the creation (`lost`): the post may exist. Found among the account's
/// recent posts, it is the receipt; not (yet) there, the publish is retried.
fn after_lost_answer(
    post: &Post,
    token: &str,
    secrets: &Secrets,
    lost: &PublishError,
) -> Result<Receipt, PublishError> {
    let cause = message(lost);
    if post.text.trim().is_empty() {
        return Err(PublishError::Permanent(format!(
            "X did not answer whether it created the post ({cause}), and a post without \
             text cannot be recognised among the account's posts: check the account, then \
             retryPost or markPublished"
        )));
    }
    match recent::find(&post.text, post.media.len(), token, secrets)? {
        Some(id) => {
            log::info(&format!(
                "X's answer was lost ({cause}); post {id} among the account's recent posts \
                 is this one"
            ));
            Ok(receipt(id))
        }
        None => Err(PublishError::Retryable(format!(
            "X did not answer whether it created the post ({cause}) and it is not among the \
             account's {} latest posts; trying again (X refuses a duplicate, which is then \
             looked up again)",
            recent::RECENT_POSTS
        ))),
    }
}

/// X refused the post as a duplicate: an earlier attempt whose answer was lost went
/// through. Found, it is the receipt; not found, nothing is posted again.
fn after_duplicate(post: &Post, token: &str, secrets: &Secrets) -> Result<Receipt, PublishError> {
    match recent::find(&post.text, post.media.len(), token, secrets)? {
        Some(id) => {
            log::info(&format!(
                "X refused a duplicate: post {id} among the account's recent posts is this one"
            ));
            Ok(receipt(id))
        }
        None => Err(PublishError::Permanent(format!(
            "X refused the post as duplicate content (403) of an earlier post that is not \
             among the account's {} latest posts; it was not posted again",
            recent::RECENT_POSTS
        ))),
    }
}

fn message(error: &PublishError) -> String {
    match error {
        PublishError::Retryable(message)
        | PublishError::Permanent(message)
        | PublishError::AuthExpired(message) => message.clone(),
        PublishError::RateLimited(limit) => limit.message.clone(),
        PublishError::Validation(violations) => violations
            .iter()
            .map(|violation| violation.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Why `post` cannot be an X post.
fn check_post(post: &Post) -> Vec<Violation> {
    let mut violations = Vec::new();
    let length = x_weighted_length(&post.text);
    if length > u64::from(MAX_WEIGHTED_LENGTH) {
        violations.push(violation(
            "text",
            "too_long",
            format!(
                "X counts {length} (links as {X_URL_LENGTH}, CJK characters and emoji as 2), \
                 the limit is {MAX_WEIGHTED_LENGTH}"
            ),
        ));
    }
    if post.text.trim().is_empty() && post.media.is_empty() {
        violations.push(violation(
            "text",
            "empty",
            "an X post needs text or media".into(),
        ));
    }
    let mut limits = X::info().limits;
    limits.max_text_length = u32::MAX;
    violations.extend(validate_limits(&limits, post));
    if post.media.len() > 1
        && post
            .media
            .iter()
            .any(|item| item.mime_type.eq_ignore_ascii_case("image/gif"))
    {
        violations.push(violation(
            "media",
            "gif_not_alone",
            "a GIF must be the post's only media on X".into(),
        ));
    }
    for (index, item) in post.media.iter().enumerate() {
        if item
            .alt
            .as_ref()
            .is_some_and(|alt| alt.chars().count() > ALT_TEXT_LIMIT)
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

    fn post(text: &str) -> Post {
        Post {
            text: text.into(),
            media: vec![],
            options: vec![],
        }
    }

    fn codes(violations: Vec<Violation>) -> Vec<(String, String)> {
        violations.into_iter().map(|v| (v.field, v.code)).collect()
    }

    #[test]
    fn the_weighted_length_counts_links_as_23_and_cjk_as_2() {
        assert_eq!(X::validate(post(&"a".repeat(280))), vec![]);
        assert_eq!(
            codes(X::validate(post(&"a".repeat(281)))),
            vec![("text".into(), "too_long".into())]
        );
        // 140 CJK characters weigh 280; one more is over.
        assert_eq!(X::validate(post(&"語".repeat(140))), vec![]);
        let over = X::validate(post(&"語".repeat(141)));
        assert_eq!(over.len(), 1);
        assert!(
            over[0].message.contains("X counts 282"),
            "{}",
            over[0].message
        );
        // 256 + 1 + a long link counted 23 = 280.
        let linked = format!(
            "{} https://example.com/{}",
            "a".repeat(256),
            "p".repeat(200)
        );
        assert_eq!(X::validate(post(&linked)), vec![]);
    }

    #[test]
    fn media_are_checked() {
        let image = |mime: &str| Media {
            url: "https://media.test/a".into(),
            mime_type: mime.into(),
            alt: None,
            size: Some(10),
            width: None,
            height: None,
            duration_ms: None,
        };
        let mut gifs = post("gifs");
        gifs.media = vec![image("image/gif"), image("image/png")];
        assert_eq!(
            codes(X::validate(gifs)),
            vec![("media".into(), "gif_not_alone".into())]
        );
        let mut many = post("");
        many.media = vec![image("image/png"); 5];
        many.media[0].alt = Some("x".repeat(1_001));
        many.media[1].mime_type = "application/pdf".into();
        assert_eq!(
            codes(X::validate(many)),
            vec![
                ("media".into(), "too_many_media".into()),
                ("media[1]".into(), "unsupported_media_type".into()),
                ("media[0]".into(), "alt_text_too_long".into()),
            ]
        );
        assert_eq!(
            codes(X::validate(post(" "))),
            vec![("text".into(), "empty".into())]
        );
    }
}
