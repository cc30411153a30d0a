//! Herald publisher plugin for LinkedIn (the versioned REST Posts API). An account
//! connects with OAuth 2.0 (authorization code, see [`oauth`]) or a pasted member access
//! token; posts go out with `POST /rest/posts`, images by the Images API ([`images`]);
//! the member is named by `GET /v2/userinfo`. Every REST call carries `LinkedIn-Version`
//! (the account's `linkedin_version` extra, see [`api::version`]) and
//! `X-Restli-Protocol-Version: 2.0.0`.
//!
//! Author: the member (`urn:li:person:<sub>`), or an organization page the member
//! administers, named by the credential extra `author` (`urn:li:organization:<id>`).
//!
//! Commentary is sent in LinkedIn's little text format with its reserved characters
//! escaped ([`escape`]): unescaped, LinkedIn silently cuts the post.
//!
//! Exactly once: LinkedIn takes no idempotency key, but refuses the same content from the
//! same author again with 422 `DUPLICATE_POST`, naming the post it duplicates; that post
//! is the receipt. A retry after a lost answer therefore finds the earlier post instead
//! of creating a second one.
//!
//! Target options: none. Limits: 3,000 characters, up to 20 images (JPEG, PNG, GIF), alt
//! text up to 4,086 characters.

mod api;
mod escape;
mod images;
mod oauth;

use herald_plugin_sdk::http::Request;
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, MediaLimit, OauthClient, PluginInfo, Post,
    PublishError, PublishRequest, Publisher, Receipt, Violation, log, register_publisher,
    validate_limits,
};
use serde_json::{Value, json};

use crate::api::{API, Userinfo};
use crate::oauth::Grant;

/// Longest commentary, in characters.
pub const MAX_TEXT_LENGTH: u32 = 3_000;
/// Images per post (a multi-image post takes 2 to 20).
pub const MAX_MEDIA: u32 = 20;
/// Longest alt text, in characters.
pub const ALT_TEXT_LIMIT: usize = 4_086;
/// The credential extra naming the organization page to post as.
pub const AUTHOR_KEY: &str = "author";

/// Largest image Herald hands LinkedIn (LinkedIn states a pixel limit, 36,152,320, not a
/// byte limit).
const IMAGE_BYTES: u64 = 10 * 1024 * 1024;

/// The LinkedIn platform.
pub struct LinkedIn;

impl Publisher for LinkedIn {
    fn info() -> PluginInfo {
        let media = |mime: &str| MediaLimit {
            mime_type: mime.into(),
            max_bytes: IMAGE_BYTES,
        };
        PluginInfo {
            platform: "linkedin".into(),
            display_name: "LinkedIn".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: MAX_TEXT_LENGTH,
                counting: LengthCounting::Chars,
                max_media: MAX_MEDIA,
                media: vec![media("image/jpeg"), media("image/png"), media("image/gif")],
            },
            // Publishing the same post again is refused as a duplicate naming the earlier
            // post, which becomes the receipt (see the crate's documentation).
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
        let secrets = secrets(credentials);
        let version = api::version(credentials)?;
        let token = credentials.access_token.as_str();
        let author = author(credentials, &secrets)?;
        let post = &request.post;
        let upload = images::Upload {
            token,
            version,
            owner: &author,
            secrets: &secrets,
        };
        let mut media = Vec::with_capacity(post.media.len());
        for (index, item) in post.media.iter().enumerate() {
            let index = u32::try_from(index)
                .map_err(|_| PublishError::Permanent(format!("media index {index} too large")))?;
            let mut image = json!({ "id": images::upload(index, &upload)? });
            if let Some(alt) = item.alt.as_deref().filter(|alt| !alt.trim().is_empty()) {
                image["altText"] = json!(alt);
            }
            media.push(image);
        }
        let body = post_body(&author, &post.text, media);
        let response = api::rest(Request::post(format!("{API}/rest/posts")), token, version)
            .json(&body)
            .send()
            .map_err(|error| PublishError::from(error).scrubbed(&secrets))?;
        if let Some(existing) = api::duplicate_of(&response) {
            log::info(&format!(
                "LinkedIn refused a duplicate of {existing}: an earlier attempt published it"
            ));
            return Ok(receipt(existing));
        }
        let created = api::check(response, version).map_err(|error| error.scrubbed(&secrets))?;
        let urn = created
            .header("x-restli-id")
            .map(str::trim)
            .filter(|urn| urn.starts_with("urn:li:"))
            .ok_or_else(|| {
                PublishError::Permanent(
                    "LinkedIn created the post but did not name it (no x-restli-id header): \
                     check the account, then markPublished"
                        .into(),
                )
            })?
            .to_owned();
        log::info(&format!(
            "published {urn} as {author} with {} image(s)",
            post.media.len()
        ));
        Ok(receipt(urn))
    }

    /// Names the member (`GET /v2/userinfo`); the account is the author posts go out as:
    /// the member, or the organization page the `author` extra names.
    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let secrets = secrets(&credentials);
        let member = userinfo(&credentials, &secrets)?;
        let person = format!("urn:li:person:{}", member.sub);
        let name = member.name.filter(|name| !name.trim().is_empty());
        Ok(match organization(&credentials)? {
            Some(organization) => Account {
                display_name: Some(match &name {
                    Some(name) => format!("{organization} (posted by {name})"),
                    None => organization.clone(),
                }),
                id: organization,
                handle: person,
            },
            None => Account {
                id: person.clone(),
                handle: person,
                display_name: name,
            },
        })
    }

    fn oauth_authorize_url(
        client: OauthClient,
        state: String,
        _pkce_challenge: String,
    ) -> Result<String, PublishError> {
        if client.client_id.trim().is_empty() {
            return Err(PublishError::Permanent(
                "the LinkedIn app's client id is empty".into(),
            ));
        }
        Ok(oauth::authorize_url(&client, &state))
    }

    /// Exchanges the code (LinkedIn's standard apps use no PKCE: the verifier is not
    /// sent).
    fn oauth_exchange(
        client: OauthClient,
        code: String,
        _verifier: String,
    ) -> Result<Credentials, PublishError> {
        let secret = client
            .client_secret
            .as_deref()
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| {
                PublishError::Permanent(
                    "LinkedIn needs the app's client secret to exchange a code".into(),
                )
            })?;
        let secrets = Secrets::new([code.as_str(), secret]);
        let request = oauth::token_request(
            &client.client_id,
            secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
            ],
        );
        oauth::send(request, Grant::Code, None, &client.client_id, &secrets)
    }

    /// Exchanges the refresh token (partner apps only) for new credentials. Without one,
    /// the 60-day access token cannot be renewed: the answer asks to reconnect.
    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        let Some(refresh) = credentials.refresh_token.as_deref() else {
            return Err(PublishError::AuthExpired(
                "LinkedIn gives refresh tokens only to partner apps and this account has \
                 none: its access token lasts 60 days, then the account must be reconnected"
                    .into(),
            ));
        };
        let missing = |key: &str| {
            PublishError::Permanent(format!(
                "refreshing a LinkedIn token needs the `{key}` extra (the app's OAuth client)"
            ))
        };
        let client_id = credentials
            .extra_value(oauth::CLIENT_ID)
            .ok_or_else(|| missing(oauth::CLIENT_ID))?;
        let client_secret = credentials
            .extra_value(oauth::CLIENT_SECRET)
            .ok_or_else(|| missing(oauth::CLIENT_SECRET))?;
        let secrets = Secrets::new([credentials.access_token.as_str(), refresh, client_secret]);
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

register_publisher!(LinkedIn);

/// The account's tokens, to scrub from messages.
fn secrets(credentials: &Credentials) -> Secrets {
    Secrets::new(std::iter::once(&credentials.access_token).chain(&credentials.refresh_token))
}

fn receipt(urn: String) -> Receipt {
    Receipt {
        url: format!("https://www.linkedin.com/feed/update/{urn}"),
        platform_post_id: urn,
    }
}

/// `GET /v2/userinfo`: the member the token belongs to.
fn userinfo(credentials: &Credentials, secrets: &Secrets) -> Result<Userinfo, PublishError> {
    let version = api::version(credentials)?;
    api::send(
        Request::get(format!("{API}/v2/userinfo")).bearer(&credentials.access_token),
        version,
        secrets,
    )?
    .json::<Userinfo>()
}

/// The organization page the `author` extra names, if any; anything but an organization
/// URN there is a permanent error naming the extra.
fn organization(credentials: &Credentials) -> Result<Option<String>, PublishError> {
    let Some(author) = credentials.extra_value(AUTHOR_KEY) else {
        return Ok(None);
    };
    match author.strip_prefix("urn:li:organization:") {
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(author.to_owned()))
        }
        _ => Err(PublishError::Permanent(format!(
            "the account's `{AUTHOR_KEY}` credential extra is {author:?}; it must be an \
             organization URN, urn:li:organization:<id> (leave it out to post as the member)"
        ))),
    }
}

/// The URN posts go out as: the organization the `author` extra names, else the member
/// the token belongs to.
fn author(credentials: &Credentials, secrets: &Secrets) -> Result<String, PublishError> {
    match organization(credentials)? {
        Some(organization) => Ok(organization),
        None => Ok(format!(
            "urn:li:person:{}",
            userinfo(credentials, secrets)?.sub
        )),
    }
}

/// The `POST /rest/posts` body: a public main-feed post by `author` with `text` escaped
/// and `media` (`{id, altText?}` each) as single- or multi-image content.
fn post_body(author: &str, text: &str, mut media: Vec<Value>) -> Value {
    let mut body = json!({
        "author": author,
        "commentary": escape::commentary(text),
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": false,
    });
    match media.len() {
        0 => {}
        1 => body["content"] = json!({ "media": media.remove(0) }),
        _ => body["content"] = json!({ "multiImage": { "images": media } }),
    }
    body
}

/// Why `post` cannot be a LinkedIn post.
fn check_post(post: &Post) -> Vec<Violation> {
    let mut violations = Vec::new();
    if post.text.trim().is_empty() && post.media.is_empty() {
        violations.push(violation(
            "text",
            "empty",
            "a LinkedIn post needs text or images".into(),
        ));
    }
    violations.extend(validate_limits(&LinkedIn::info().limits, post));
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
    fn three_thousand_characters_fit() {
        assert_eq!(LinkedIn::validate(post(&"é".repeat(3_000))), vec![]);
        assert_eq!(
            codes(LinkedIn::validate(post(&"a".repeat(3_001)))),
            vec![("text".into(), "too_long".into())]
        );
        assert_eq!(
            codes(LinkedIn::validate(post("  "))),
            vec![("text".into(), "empty".into())]
        );
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
        let mut many = post("");
        many.media = vec![image("image/png"); 21];
        many.media[0].alt = Some("x".repeat(4_087));
        many.media[1].mime_type = "video/mp4".into();
        assert_eq!(
            codes(LinkedIn::validate(many)),
            vec![
                ("media".into(), "too_many_media".into()),
                ("media[1]".into(), "unsupported_media_type".into()),
                ("media[0]".into(), "alt_text_too_long".into()),
            ]
        );
    }

    #[test]
    fn the_body_is_a_public_feed_post_with_escaped_commentary() {
        let body = post_body("urn:li:person:abc", "Hi (all) #1", vec![]);
        assert_eq!(
            body,
            json!({
                "author": "urn:li:person:abc",
                "commentary": "Hi \\(all\\) \\#1",
                "visibility": "PUBLIC",
                "distribution": {
                    "feedDistribution": "MAIN_FEED",
                    "targetEntities": [],
                    "thirdPartyDistributionChannels": [],
                },
                "lifecycleState": "PUBLISHED",
                "isReshareDisabledByAuthor": false,
            })
        );
        let one = post_body(
            "urn:li:organization:5",
            "",
            vec![json!({"id": "urn:li:image:A", "altText": "a"})],
        );
        assert_eq!(
            one["content"],
            json!({"media": {"id": "urn:li:image:A", "altText": "a"}})
        );
        let two = post_body(
            "urn:li:organization:5",
            "",
            vec![
                json!({"id": "urn:li:image:A"}),
                json!({"id": "urn:li:image:B"}),
            ],
        );
        assert_eq!(
            two["content"],
            json!({"multiImage": {"images": [{"id": "urn:li:image:A"}, {"id": "urn:li:image:B"}]}})
        );
    }

    #[test]
    fn the_author_extra_must_be_an_organization() {
        let with = |author: &str| Credentials {
            access_token: "t".into(),
            refresh_token: None,
            expires_at: None,
            extra: vec![(AUTHOR_KEY.into(), author.into())],
        };
        assert_eq!(
            organization(&with("urn:li:organization:2414183")),
            Ok(Some("urn:li:organization:2414183".into()))
        );
        assert!(matches!(
            organization(&with("urn:li:person:abc")),
            Err(PublishError::Permanent(m)) if m.contains("`author`")
        ));
        assert_eq!(organization(&with(" ")), Ok(None));
    }

    #[test]
    fn without_a_refresh_token_the_answer_is_reconnect() {
        let refreshed = LinkedIn::refresh_token(Credentials {
            access_token: "t".into(),
            refresh_token: None,
            expires_at: Some(1),
            extra: vec![],
        });
        assert!(
            matches!(&refreshed, Err(PublishError::AuthExpired(m)) if m.contains("reconnected")),
            "{refreshed:?}"
        );
    }
}
