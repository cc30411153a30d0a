//! Herald publisher plugin for Discord, through a channel webhook.
//!
//! The credential (`accessToken`) is the webhook URL,
//! `https://discord.com/api/webhooks/{id}/{token}`; it is a secret and is never logged.
//! Verifying it reads the webhook (`GET`, which names it and its channel). Publishing
//! executes it with `?wait=true` so Discord answers with the message: a JSON `{content}`
//! for text, or `multipart/form-data` with `payload_json` (content and `attachments` whose
//! `description` is the alt text) and one `files[n]` part per image.
//!
//! Limits: 2000 characters, 10 attachments, 10 MiB per file (the default upload cap of a
//! webhook in a server without boosts), PNG/JPEG/GIF/WebP. The images of one post are held
//! in the plugin's memory while the request is built, so the sandbox's memory cap (64 MB by
//! default) also bounds their total size.
//!
//! Executing a webhook is not idempotent (Discord has no idempotency key for it), so the
//! plugin reports `idempotent-publish: false`: Herald never retries a publish that may
//! have reached Discord blindly (an interrupted worker or a lost answer leaves the target
//! for review). Engagement: the message's reactions, read back through the webhook.

mod errors;
mod webhook;

use herald_plugin_sdk::http::{Multipart, Request};
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, MediaLimit, Metric, PluginInfo, Post,
    PublishError, PublishRequest, Publisher, Receipt, Violation, log, media, register_publisher,
    text,
};
use serde::{Deserialize, Serialize};

use crate::webhook::Webhook;

/// Longest message content, in characters.
pub const MAX_CONTENT: u32 = 2000;
/// Most attachments in one message.
pub const MAX_ATTACHMENTS: u32 = 10;
/// Largest file a webhook may upload by default (10 MiB).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Longest attachment description (alt text).
pub const MAX_DESCRIPTION: u64 = 1024;
/// Image types Discord displays inline.
const IMAGE_TYPES: [(&str, &str); 4] = [
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
];

/// The Discord webhook publisher.
pub struct Discord;

/// The webhook object (`GET /webhooks/{id}/{token}`).
#[derive(Deserialize)]
struct WebhookObject {
    id: String,
    #[serde(default)]
    name: Option<String>,
    channel_id: String,
    #[serde(default)]
    guild_id: Option<String>,
}

/// The message object `?wait=true` returns (the fields the receipt needs).
#[derive(Deserialize)]
struct Message {
    id: String,
    channel_id: String,
}

/// A message's reactions (`GET /webhooks/{id}/{token}/messages/{message_id}`).
#[derive(Deserialize)]
struct Reactions {
    #[serde(default)]
    reactions: Vec<Reaction>,
}

#[derive(Deserialize)]
struct Reaction {
    count: i64,
}

#[derive(Serialize)]
struct Payload<'a> {
    content: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment>,
}

#[derive(Serialize)]
struct Attachment {
    id: u32,
    filename: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

fn webhook(credentials: &Credentials) -> Result<Webhook, PublishError> {
    Webhook::parse(&credentials.access_token).map_err(|error| {
        PublishError::AuthExpired(format!("{error}; reconnect with the channel's webhook URL"))
    })
}

fn describe(hook: &Webhook) -> Result<WebhookObject, PublishError> {
    let response = Request::get(hook.endpoint())
        .send()
        .map_err(|error| errors::scrub(error.into(), hook.token()))?;
    errors::check(response)?.json()
}

fn extension(mime_type: &str) -> Option<&'static str> {
    IMAGE_TYPES
        .iter()
        .find(|(mime, _)| mime.eq_ignore_ascii_case(mime_type))
        .map(|(_, ext)| *ext)
}

/// Checks `post` against Discord's rules. Media whose type is not known yet (empty MIME
/// type) are checked when they are fetched.
fn violations(post: &Post) -> Vec<Violation> {
    let mut found = Vec::new();
    let length = text::text_length(&post.text, LengthCounting::Chars);
    if length > u64::from(MAX_CONTENT) {
        found.push(Violation {
            field: "text".into(),
            code: "too_long".into(),
            message: format!(
                "Discord messages hold {MAX_CONTENT} characters; this one has {length}"
            ),
        });
    }
    if post.text.trim().is_empty() && post.media.is_empty() {
        found.push(Violation {
            field: "text".into(),
            code: "empty".into(),
            message: "Discord cannot send an empty message".into(),
        });
    }
    if post.media.len() > MAX_ATTACHMENTS as usize {
        found.push(Violation {
            field: "media".into(),
            code: "too_many_media".into(),
            message: format!(
                "Discord messages hold {MAX_ATTACHMENTS} attachments; this one has {}",
                post.media.len()
            ),
        });
    }
    for (index, item) in post.media.iter().enumerate() {
        let field = format!("media[{index}]");
        if !item.mime_type.is_empty() && extension(&item.mime_type).is_none() {
            found.push(Violation {
                field: field.clone(),
                code: "unsupported_media_type".into(),
                message: format!("Discord does not show {} inline", item.mime_type),
            });
        }
        if let Some(size) = item.size.filter(|size| *size > MAX_FILE_BYTES) {
            found.push(Violation {
                field: field.clone(),
                code: "media_too_large".into(),
                message: format!("{size} bytes; a webhook uploads at most {MAX_FILE_BYTES}"),
            });
        }
        if let Some(alt) = &item.alt {
            let length = text::text_length(alt, LengthCounting::Chars);
            if length > MAX_DESCRIPTION {
                found.push(Violation {
                    field,
                    code: "alt_too_long".into(),
                    message: format!(
                        "Discord attachment descriptions hold {MAX_DESCRIPTION} characters; this one has {length}"
                    ),
                });
            }
        }
    }
    found
}

/// The multipart body: `payload_json` then `files[n]`, each file read from the host.
fn multipart(request: &PublishRequest) -> Result<Multipart, PublishError> {
    let mut attachments = Vec::with_capacity(request.post.media.len());
    let mut files = Vec::with_capacity(request.post.media.len());
    for (index, item) in request.post.media.iter().enumerate() {
        let id = u32::try_from(index)
            .map_err(|_| PublishError::Permanent("too many attachments".into()))?;
        let info = media::open(id)?;
        let Some(ext) = extension(&info.mime_type) else {
            return Err(PublishError::Validation(vec![Violation {
                field: format!("media[{index}]"),
                code: "unsupported_media_type".into(),
                message: format!("Discord does not show {} inline", info.mime_type),
            }]));
        };
        if info.size > MAX_FILE_BYTES {
            return Err(PublishError::Validation(vec![Violation {
                field: format!("media[{index}]"),
                code: "media_too_large".into(),
                message: format!(
                    "{} bytes; a webhook uploads at most {MAX_FILE_BYTES}",
                    info.size
                ),
            }]));
        }
        let filename = format!("image{index}.{ext}");
        attachments.push(Attachment {
            id,
            filename: filename.clone(),
            description: item.alt.clone().filter(|alt| !alt.trim().is_empty()),
        });
        files.push((id, filename, info.mime_type));
    }
    let payload = serde_json::to_string(&Payload {
        content: &request.post.text,
        attachments,
    })
    .map_err(|error| PublishError::Permanent(format!("cannot encode the message: {error}")))?;
    let mut form = Multipart::new(&request.idempotency_key).text("payload_json", &payload);
    for (id, filename, mime_type) in files {
        let bytes = media::read_all(id)?;
        form = form.file(&format!("files[{id}]"), &filename, &mime_type, &bytes);
    }
    Ok(form)
}

impl Publisher for Discord {
    fn info() -> PluginInfo {
        PluginInfo {
            platform: "discord".into(),
            display_name: "Discord".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: MAX_CONTENT,
                counting: LengthCounting::Chars,
                max_media: MAX_ATTACHMENTS,
                media: IMAGE_TYPES
                    .iter()
                    .map(|(mime, _)| MediaLimit {
                        mime_type: (*mime).into(),
                        max_bytes: MAX_FILE_BYTES,
                    })
                    .collect(),
            },
            idempotent_publish: false,
        }
    }

    fn validate(post: Post) -> Vec<Violation> {
        violations(&post)
    }

    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        let found = violations(&request.post);
        if !found.is_empty() {
            return Err(PublishError::Validation(found));
        }
        let hook = webhook(&request.credentials)?;
        // The message object has no guild id; the webhook has it (for the message link).
        let target = describe(&hook)?;
        let execute = Request::post(format!("{}?wait=true", hook.endpoint()));
        let execute = if request.post.media.is_empty() {
            execute.json(&Payload {
                content: &request.post.text,
                attachments: Vec::new(),
            })
        } else {
            execute.multipart(multipart(&request)?)
        };
        log::info(&format!(
            "executing Discord webhook {} with {} attachment(s)",
            hook.id,
            request.post.media.len()
        ));
        let response = execute
            .send()
            // Not idempotent: if this fails after Discord may have got it, the host reports
            // the publish as unconfirmed and the target waits for review, never retried.
            .map_err(|error| errors::scrub(error.into(), hook.token()))?;
        let message: Message = errors::check(response)?.json()?;
        Ok(Receipt {
            url: webhook::message_url(target.guild_id.as_deref(), &message.channel_id, &message.id),
            platform_post_id: message.id,
        })
    }

    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let hook = Webhook::parse(&credentials.access_token)
            .map_err(|error| PublishError::AuthExpired(error.to_string()))?;
        let object = describe(&hook)?;
        Ok(Account {
            handle: object
                .name
                .clone()
                .unwrap_or_else(|| format!("webhook {}", object.id)),
            display_name: Some(match object.name {
                Some(name) => format!("{name} (channel {})", object.channel_id),
                None => format!("channel {}", object.channel_id),
            }),
            id: object.id,
        })
    }

    fn fetch_metrics(
        platform_post_id: String,
        credentials: Credentials,
    ) -> Result<Vec<Metric>, PublishError> {
        Ok(vec![Metric {
            name: "reactions".into(),
            value: Self::reactions(&platform_post_id, &credentials)?,
        }])
    }
}

impl Discord {
    /// The message's reactions, summed over emoji (Discord's only engagement figure a
    /// webhook can read).
    fn reactions(platform_post_id: &str, credentials: &Credentials) -> Result<i64, PublishError> {
        let hook = webhook(credentials)?;
        if platform_post_id.is_empty() || !platform_post_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PublishError::Permanent(format!(
                "{platform_post_id:?} is not a Discord message id"
            )));
        }
        let response = Request::get(format!("{}/messages/{platform_post_id}", hook.endpoint()))
            .send()
            .map_err(|error| errors::scrub(error.into(), hook.token()))?;
        let message: Reactions = errors::check(response)?.json()?;
        Ok(message.reactions.iter().map(|r| r.count).sum())
    }
}

register_publisher!(Discord);

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::Media;

    fn post(text: &str, media: Vec<Media>) -> Post {
        Post {
            text: text.into(),
            media,
            options: vec![],
        }
    }

    fn image(mime: &str, alt: Option<String>, size: Option<u64>) -> Media {
        Media {
            url: "https://media.test/a".into(),
            mime_type: mime.into(),
            alt,
            size,
            width: None,
            height: None,
            duration_ms: None,
        }
    }

    fn codes(post: &Post) -> Vec<(String, String)> {
        violations(post)
            .into_iter()
            .map(|v| (v.field, v.code))
            .collect()
    }

    #[test]
    fn content_is_limited_to_2000_characters() {
        assert_eq!(codes(&post(&"é".repeat(2000), vec![])), vec![]);
        assert_eq!(
            codes(&post(&"é".repeat(2001), vec![])),
            vec![("text".into(), "too_long".into())]
        );
        assert_eq!(
            codes(&post(" ", vec![])),
            vec![("text".into(), "empty".into())]
        );
        assert_eq!(
            codes(&post("", vec![image("image/png", None, None)])),
            vec![]
        );
    }

    #[test]
    fn attachments_are_checked_for_count_type_size_and_alt_length() {
        let eleven = (0..11).map(|_| image("", None, None)).collect();
        assert_eq!(
            codes(&post("x", eleven)),
            vec![("media".into(), "too_many_media".into())]
        );
        let media = vec![
            image("video/mp4", None, None),
            image("image/png", None, Some(MAX_FILE_BYTES + 1)),
            image("image/jpeg", Some("a".repeat(1025)), Some(10)),
            image("", Some("a".repeat(1024)), None),
        ];
        assert_eq!(
            codes(&post("x", media)),
            vec![
                ("media[0]".into(), "unsupported_media_type".into()),
                ("media[1]".into(), "media_too_large".into()),
                ("media[2]".into(), "alt_too_long".into()),
            ]
        );
    }

    #[test]
    fn the_payload_carries_alt_text_as_attachment_descriptions() {
        let payload = Payload {
            content: "hi",
            attachments: vec![Attachment {
                id: 0,
                filename: "image0.png".into(),
                description: Some("a cat".into()),
            }],
        };
        assert_eq!(
            serde_json::to_value(&payload).expect("json"),
            serde_json::json!({"content": "hi", "attachments": [{"id": 0, "filename": "image0.png", "description": "a cat"}]})
        );
        let text_only = Payload {
            content: "hi",
            attachments: vec![],
        };
        assert_eq!(
            serde_json::to_value(&text_only).expect("json"),
            serde_json::json!({"content": "hi"})
        );
    }
}
