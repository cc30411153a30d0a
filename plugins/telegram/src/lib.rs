//! Herald publisher plugin for Telegram, through the Bot API.
//!
//! Credentials: `accessToken` is the bot token from @BotFather; `extra.chat_id` is the chat
//! to post to (a numeric id such as `-1001234567890`, or `@channelusername`). A target's
//! option `chat_id` overrides it. Verifying the credentials calls `getMe` (and `getChat`
//! when a chat id is set, so a bot that cannot see its chat is refused at connection).
//!
//! Publishing: text alone → `sendMessage` (plain text, no `parse_mode`, so nothing needs
//! escaping; target option `disable_link_preview=true` turns the link preview off); one
//! image → `sendPhoto` with the text as caption; 2–10 images → `sendMediaGroup` of
//! `InputMediaPhoto` items uploaded as `attach://file<n>`, the caption on the first. The
//! receipt is the (first) message's id and its link (see [`api::message_link`]).
//!
//! Limits: 4096 characters of text, 1024 of caption when there are images, 10 images of
//! at most 10 MB (JPEG, PNG, WebP). Telegram photos have no alt text: it is not sent.
//!
//! Sending a message is not idempotent (the Bot API has no idempotency key), so the plugin
//! reports `idempotent-publish: false` and never lets a publish that may have reached
//! Telegram be retried blindly.

mod api;

use herald_plugin_sdk::http::{Multipart, Request};
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, MediaLimit, PluginInfo, Post, PublishError,
    PublishRequest, Publisher, Receipt, Violation, log, media, register_publisher, text,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::BotToken;

/// Longest message text, in characters.
pub const MAX_TEXT: u32 = 4096;
/// Longest caption of a photo or media group, in characters.
pub const MAX_CAPTION: u64 = 1024;
/// Most photos in one media group.
pub const MAX_PHOTOS: u32 = 10;
/// Largest photo uploaded with multipart/form-data.
pub const MAX_PHOTO_BYTES: u64 = 10_000_000;
const PHOTO_TYPES: [(&str, &str); 3] = [
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
];

/// The Telegram Bot API publisher.
pub struct Telegram;

/// `User` (from `getMe`).
#[derive(Deserialize)]
struct User {
    id: i64,
    first_name: String,
    #[serde(default)]
    username: Option<String>,
}

/// `Chat` / `ChatFullInfo` (the fields used here).
#[derive(Deserialize)]
struct Chat {
    id: i64,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

/// `Message` (the fields used here).
#[derive(Deserialize)]
struct Message {
    message_id: i64,
    chat: Chat,
}

/// A chat id as the Bot API takes it: an integer, or `@username` as a string (`chat_id`
/// comes trimmed, from the SDK's settings readers).
fn chat_id_value(chat_id: &str) -> Option<Value> {
    if let Ok(id) = chat_id.parse::<i64>() {
        return Some(json!(id));
    }
    let name = chat_id.strip_prefix('@')?;
    let valid = (4..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then(|| json!(chat_id))
}

fn photo_extension(mime_type: &str) -> Option<&'static str> {
    PHOTO_TYPES
        .iter()
        .find(|(mime, _)| mime.eq_ignore_ascii_case(mime_type))
        .map(|(_, ext)| *ext)
}

/// Checks `post` against the Bot API's limits. Media whose type is not known yet (empty
/// MIME type) are checked when they are fetched.
fn violations(post: &Post) -> Vec<Violation> {
    let mut found = Vec::new();
    let length = text::text_length(&post.text, LengthCounting::Chars);
    if post.media.is_empty() {
        if post.text.trim().is_empty() {
            found.push(Violation {
                field: "text".into(),
                code: "empty".into(),
                message: "Telegram cannot send an empty message".into(),
            });
        } else if length > u64::from(MAX_TEXT) {
            found.push(Violation {
                field: "text".into(),
                code: "too_long".into(),
                message: format!(
                    "Telegram messages hold {MAX_TEXT} characters; this one has {length}"
                ),
            });
        }
    } else if length > MAX_CAPTION {
        found.push(Violation {
            field: "text".into(),
            code: "caption_too_long".into(),
            message: format!(
                "with images the text is Telegram's caption, which holds {MAX_CAPTION} characters; this one has {length}"
            ),
        });
    }
    if post.media.len() > MAX_PHOTOS as usize {
        found.push(Violation {
            field: "media".into(),
            code: "too_many_media".into(),
            message: format!(
                "a Telegram media group holds {MAX_PHOTOS} photos; this post has {}",
                post.media.len()
            ),
        });
    }
    for (index, item) in post.media.iter().enumerate() {
        if !item.mime_type.is_empty() && photo_extension(&item.mime_type).is_none() {
            found.push(Violation {
                field: format!("media[{index}]"),
                code: "unsupported_media_type".into(),
                message: format!(
                    "Telegram photos are JPEG, PNG or WebP, not {}",
                    item.mime_type
                ),
            });
        }
        if let Some(size) = item.size.filter(|size| *size > MAX_PHOTO_BYTES) {
            found.push(Violation {
                field: format!("media[{index}]"),
                code: "media_too_large".into(),
                message: format!("{size} bytes; Telegram photos are at most {MAX_PHOTO_BYTES}"),
            });
        }
    }
    if let Some(chat_id) = post.option("chat_id")
        && chat_id_value(chat_id).is_none()
    {
        found.push(Violation {
            field: "options.chat_id".into(),
            code: "invalid_chat_id".into(),
            message: "chat_id must be a numeric chat id or @channelusername".into(),
        });
    }
    found
}

/// A photo read from the host, ready to upload.
struct Photo {
    name: String,
    mime_type: String,
    bytes: Vec<u8>,
}

/// Fetches photo `index` and checks what the host actually served.
fn photo(index: u32) -> Result<Photo, PublishError> {
    let info = media::open(index)?;
    let field = format!("media[{index}]");
    let Some(ext) = photo_extension(&info.mime_type) else {
        return Err(PublishError::Validation(vec![Violation {
            field,
            code: "unsupported_media_type".into(),
            message: format!(
                "Telegram photos are JPEG, PNG or WebP, not {}",
                info.mime_type
            ),
        }]));
    };
    if info.size > MAX_PHOTO_BYTES {
        return Err(PublishError::Validation(vec![Violation {
            field,
            code: "media_too_large".into(),
            message: format!(
                "{} bytes; Telegram photos are at most {MAX_PHOTO_BYTES}",
                info.size
            ),
        }]));
    }
    Ok(Photo {
        name: format!("photo{index}.{ext}"),
        bytes: media::read_all(index)?,
        mime_type: info.mime_type,
    })
}

/// Sends a (non-idempotent) Bot API call and reads its `result`.
fn send<T: serde::de::DeserializeOwned>(
    token: &BotToken,
    request: Request,
) -> Result<T, PublishError> {
    // Not idempotent: if this fails after Telegram may have got it, the host reports the
    // publish as unconfirmed and the target waits for review, never retried.
    let response = request.send().map_err(|error| token.http_error(error))?;
    token.result(&response)
}

impl Publisher for Telegram {
    fn info() -> PluginInfo {
        PluginInfo {
            platform: "telegram".into(),
            display_name: "Telegram".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: MAX_TEXT,
                counting: LengthCounting::Chars,
                max_media: MAX_PHOTOS,
                media: PHOTO_TYPES
                    .iter()
                    .map(|(mime, _)| MediaLimit {
                        mime_type: (*mime).into(),
                        max_bytes: MAX_PHOTO_BYTES,
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
        let token = BotToken::parse(&request.credentials.access_token)?;
        let post = &request.post;
        let chat = post
            .option("chat_id")
            .or_else(|| request.credentials.extra_value("chat_id"))
            .ok_or_else(|| {
                PublishError::Permanent(
                    "no Telegram chat to post to: set chat_id on the connection or the target"
                        .into(),
                )
            })?;
        let chat_id = chat_id_value(chat).ok_or_else(|| {
            PublishError::Permanent("the connection's chat_id is not a chat id or @username".into())
        })?;
        if post.media.iter().any(|item| item.alt.is_some()) {
            log::debug("Telegram photos have no alt text; it is not sent");
        }
        let chat_text = match &chat_id {
            Value::String(name) => name.clone(),
            other => other.to_string(),
        };
        let messages = match post.media.len() {
            0 => {
                let mut body = json!({"chat_id": chat_id, "text": post.text});
                if post.option("disable_link_preview") == Some("true") {
                    body["link_preview_options"] = json!({"is_disabled": true});
                }
                let message: Message = send(
                    &token,
                    Request::post(token.method_url("sendMessage")).json(&body),
                )?;
                vec![message]
            }
            1 => {
                let photo = photo(0)?;
                let mut form = Multipart::new(&request.idempotency_key).text("chat_id", &chat_text);
                if !post.text.is_empty() {
                    form = form.text("caption", &post.text);
                }
                let form = form.file("photo", &photo.name, &photo.mime_type, &photo.bytes);
                drop(photo);
                let message: Message = send(
                    &token,
                    Request::post(token.method_url("sendPhoto")).multipart(form),
                )?;
                vec![message]
            }
            count => {
                let mut form = Multipart::new(&request.idempotency_key).text("chat_id", &chat_text);
                let mut items = Vec::with_capacity(count);
                let mut files = Vec::with_capacity(count);
                for index in 0..count {
                    let index = u32::try_from(index)
                        .map_err(|_| PublishError::Permanent("too many photos".into()))?;
                    let mut item =
                        json!({"type": "photo", "media": format!("attach://file{index}")});
                    if index == 0 && !post.text.is_empty() {
                        item["caption"] = json!(post.text);
                    }
                    items.push(item);
                    files.push(index);
                }
                form = form.text("media", &Value::Array(items).to_string());
                for index in files {
                    let photo = photo(index)?;
                    form = form.file(
                        &format!("file{index}"),
                        &photo.name,
                        &photo.mime_type,
                        &photo.bytes,
                    );
                }
                send(
                    &token,
                    Request::post(token.method_url("sendMediaGroup")).multipart(form),
                )?
            }
        };
        let first = messages
            .first()
            .ok_or_else(|| PublishError::Permanent("Telegram sent no message".into()))?;
        Ok(Receipt {
            platform_post_id: first.message_id.to_string(),
            url: api::message_link(
                first.chat.id,
                first.chat.username.as_deref(),
                first.message_id,
            ),
        })
    }

    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let token = BotToken::parse(&credentials.access_token)?;
        let response = Request::get(token.method_url("getMe"))
            .send()
            .map_err(|error| token.http_error(error))?;
        let bot: User = token.result(&response)?;
        let handle = bot.username.clone().unwrap_or_else(|| bot.id.to_string());
        let display_name = match credentials.extra_value("chat_id") {
            Some(chat) => {
                let chat_id = chat_id_value(chat).ok_or_else(|| {
                    PublishError::Permanent(
                        "chat_id must be a numeric chat id or @channelusername".into(),
                    )
                })?;
                let response = Request::post(token.method_url("getChat"))
                    .json(&json!({"chat_id": chat_id}))
                    .send()
                    .map_err(|error| token.http_error(error))?;
                let chat: Chat = token.result(&response)?;
                let place = chat
                    .title
                    .or(chat.username.map(|name| format!("@{name}")))
                    .unwrap_or_else(|| chat.id.to_string());
                format!("{} in {place}", bot.first_name)
            }
            None => bot.first_name,
        };
        Ok(Account {
            id: bot.id.to_string(),
            handle,
            display_name: Some(display_name),
        })
    }
}

register_publisher!(Telegram);

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::Media;

    fn post(text: &str, photos: usize) -> Post {
        Post {
            text: text.into(),
            media: (0..photos)
                .map(|_| Media {
                    url: "https://media.test/a.png".into(),
                    mime_type: "image/png".into(),
                    alt: Some("a cat".into()),
                    size: Some(100),
                    width: None,
                    height: None,
                    duration_ms: None,
                })
                .collect(),
            options: vec![],
        }
    }

    fn codes(post: &Post) -> Vec<(String, String)> {
        violations(post)
            .into_iter()
            .map(|v| (v.field, v.code))
            .collect()
    }

    #[test]
    fn text_holds_4096_and_a_caption_1024() {
        assert_eq!(codes(&post(&"я".repeat(4096), 0)), vec![]);
        assert_eq!(
            codes(&post(&"я".repeat(4097), 0)),
            vec![("text".into(), "too_long".into())]
        );
        assert_eq!(codes(&post(&"я".repeat(1024), 1)), vec![]);
        assert_eq!(
            codes(&post(&"я".repeat(1025), 3)),
            vec![("text".into(), "caption_too_long".into())]
        );
        assert_eq!(codes(&post("", 0)), vec![("text".into(), "empty".into())]);
        assert_eq!(codes(&post("", 2)), vec![]);
    }

    #[test]
    fn media_groups_hold_ten_photos_of_known_types() {
        assert_eq!(
            codes(&post("x", 11)),
            vec![("media".into(), "too_many_media".into())]
        );
        let mut gif = post("x", 1);
        gif.media[0].mime_type = "image/gif".into();
        gif.media[0].size = Some(MAX_PHOTO_BYTES + 1);
        assert_eq!(
            codes(&gif),
            vec![
                ("media[0]".into(), "unsupported_media_type".into()),
                ("media[0]".into(), "media_too_large".into())
            ]
        );
    }

    #[test]
    fn chat_ids_are_numbers_or_usernames() {
        assert_eq!(chat_id_value("-1001234"), Some(json!(-1001234)));
        assert_eq!(chat_id_value("@herald_news"), Some(json!("@herald_news")));
        assert_eq!(chat_id_value("herald"), None);
        assert_eq!(chat_id_value("@a b"), None);
        let mut bad = post("x", 0);
        bad.options.push(("chat_id".into(), "nope".into()));
        assert_eq!(
            codes(&bad),
            vec![("options.chat_id".into(), "invalid_chat_id".into())]
        );
    }
}
