//! Herald publisher plugin for Matrix, through the client-server API v3 of the account's
//! homeserver.
//!
//! Credentials: `access_token` (a user's access token), `extra` `homeserver`
//! (`https://host[:port]`, default `https://matrix.org`) and `room_id` (`!id:server`, the
//! room posts go to; a target's `room_id` option overrides it).
//!
//! Publishing sends the text as one `m.room.message` event (`m.text`; with an
//! `org.matrix.custom.html` `formatted_body` when the text has links or Markdown-style
//! formatting), then uploads each image (`POST /_matrix/media/v3/upload` → `mxc://`) and
//! sends it as its own `m.image` event whose `body` is the alt text. Every event is a
//! `PUT …/send/m.room.message/{txnId}` whose transaction id derives from the idempotency
//! key, so a retry after a lost answer returns the event sent the first time instead of
//! sending another (the homeserver remembers transaction ids per access token).

mod html;
mod image;

use herald_plugin_sdk::failure::Kind;
use herald_plugin_sdk::http::{Body, Request, Response, percent_encode};
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, MediaLimit, PluginInfo, Post, PublishError,
    PublishRequest, Publisher, Receipt, Violation, media, register_publisher, validate_limits,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The homeserver of accounts whose credentials name none.
const DEFAULT_HOMESERVER: &str = "https://matrix.org";

/// Largest JSON-encoded event content: a homeserver refuses events (content, signatures,
/// hashes, references…) over 65,536 bytes, and the envelope around the content takes up
/// to a few KB.
pub const MAX_CONTENT_BYTES: usize = 65_536 - 4_096;

/// Largest image: Synapse's default `max_upload_size` (50M).
pub const MAX_IMAGE_BYTES: u64 = 50 * 1024 * 1024;

/// Most images in one post (each is its own event).
pub const MAX_IMAGES: u32 = 10;

/// The image types posted as `m.image`.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Bytes read from an image to find its dimensions.
const HEADER_BYTES: u32 = 64 * 1024;

/// The Matrix platform.
pub struct Matrix;

#[derive(Deserialize)]
struct WhoAmI {
    user_id: String,
}

#[derive(Deserialize)]
struct JoinedRooms {
    joined_rooms: Vec<String>,
}

#[derive(Deserialize)]
struct DisplayName {
    #[serde(default)]
    displayname: Option<String>,
}

#[derive(Deserialize)]
struct Sent {
    event_id: String,
}

#[derive(Deserialize)]
struct Uploaded {
    content_uri: String,
}

#[derive(Deserialize)]
struct Refreshed {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// A Matrix error body (`{"errcode", "error", "retry_after_ms"}`).
#[derive(Deserialize, Default)]
struct MatrixError {
    #[serde(default)]
    errcode: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

impl Publisher for Matrix {
    fn info() -> PluginInfo {
        let image = |mime: &str| MediaLimit {
            mime_type: mime.into(),
            max_bytes: MAX_IMAGE_BYTES,
        };
        PluginInfo {
            platform: "matrix".into(),
            display_name: "Matrix".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                // The real limit is in bytes (see `validate`); no text has more characters
                // than its UTF-8 has bytes.
                max_text_length: MAX_CONTENT_BYTES as u32,
                counting: LengthCounting::Chars,
                max_media: MAX_IMAGES,
                media: IMAGE_TYPES.into_iter().map(image).collect(),
            },
            idempotent_publish: true,
        }
    }

    fn validate(post: Post) -> Vec<Violation> {
        let mut violations = validate_limits(&Self::info().limits, &post);
        // Media without a declared type (posts' plain `mediaUrls`) is checked once fetched.
        violations.retain(|violation| {
            violation.code != "unsupported_media_type"
                || !post.media.iter().enumerate().any(|(index, media)| {
                    media.mime_type.is_empty() && violation.field == format!("media[{index}]")
                })
        });
        let text_refused = violations.iter().any(|v| v.field == "text");
        if !text_refused {
            let bytes = text_content(&post.text).to_string().len();
            if bytes > MAX_CONTENT_BYTES {
                violations.push(Violation {
                    field: "text".into(),
                    code: "too_long".into(),
                    message: format!(
                        "text is {bytes} bytes as a Matrix event (with its HTML), the limit is {MAX_CONTENT_BYTES}"
                    ),
                });
            }
        }
        if post.text.trim().is_empty() && post.media.is_empty() {
            violations.push(Violation {
                field: "text".into(),
                code: "empty".into(),
                message: "a Matrix message needs text or an image".into(),
            });
        }
        if let Some(room) = post.option("room_id")
            && !is_room_id(room)
        {
            violations.push(Violation {
                field: "options.room_id".into(),
                code: "invalid".into(),
                message: format!("{room:?} is not a room id (!opaque:server)"),
            });
        }
        violations
    }

    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        let violations = Self::validate(request.post.clone());
        if !violations.is_empty() {
            return Err(PublishError::Validation(violations));
        }
        let homeserver = homeserver(&request.credentials)?;
        let room = room_id(&request.post, &request.credentials)?;
        let token = request.credentials.access_token.as_str();
        let send = |txn_id: &str, content: &Value| -> Result<String, PublishError> {
            let url = format!(
                "{homeserver}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
                percent_encode(&room),
                percent_encode(txn_id)
            );
            let response = Request::put(url).bearer(token).json(content).send()?;
            let sent: Sent = check(response, true)?.json()?;
            Ok(sent.event_id)
        };

        let mut first_event = None;
        if !request.post.text.trim().is_empty() {
            let event = send(
                &txn_id(&request.idempotency_key, None),
                &text_content(&request.post.text),
            )?;
            first_event = Some(event);
        }
        for (index, attachment) in request.post.media.iter().enumerate() {
            let index = u32::try_from(index)
                .map_err(|_| PublishError::Permanent("too many images".into()))?;
            let opened = media::open(index)?;
            if !is_accepted_image(&opened.mime_type) {
                return Err(PublishError::Validation(vec![Violation {
                    field: format!("media[{index}]"),
                    code: "unsupported_media_type".into(),
                    message: format!("{} is not accepted", opened.mime_type),
                }]));
            }
            let header = media::read(index, 0, HEADER_BYTES)?;
            let file_name = file_name(&attachment.url, &opened.mime_type, index);
            let upload = format!(
                "{homeserver}/_matrix/media/v3/upload?filename={}",
                percent_encode(&file_name)
            );
            let response = Request::post(upload)
                .bearer(token)
                .header("content-type", opened.mime_type.clone())
                .body(Body::MediaRef(index))
                .send()?;
            let uploaded: Uploaded = check(response, false)?.json()?;
            if !uploaded.content_uri.starts_with("mxc://") {
                return Err(PublishError::Permanent(format!(
                    "the homeserver answered the upload with {:?}, not an mxc:// URI",
                    uploaded.content_uri
                )));
            }
            let mut info = json!({"mimetype": opened.mime_type, "size": opened.size});
            if let Some((width, height)) = image::dimensions(&header) {
                info["w"] = json!(width);
                info["h"] = json!(height);
            }
            let body = attachment
                .alt
                .as_deref()
                .map(str::trim)
                .filter(|alt| !alt.is_empty())
                .unwrap_or(&file_name);
            let content = json!({
                "msgtype": "m.image",
                "body": body,
                "url": uploaded.content_uri,
                "info": info,
            });
            let event = send(&txn_id(&request.idempotency_key, Some(index)), &content)?;
            first_event.get_or_insert(event);
        }
        let event = first_event
            .ok_or_else(|| PublishError::Permanent("nothing to send: no text, no image".into()))?;
        Ok(Receipt {
            url: format!(
                "https://matrix.to/#/{}/{}",
                percent_encode(&room),
                percent_encode(&event)
            ),
            platform_post_id: event,
        })
    }

    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let homeserver = homeserver(&credentials)?;
        let token = credentials.access_token.as_str();
        let response = Request::get(format!("{homeserver}/_matrix/client/v3/account/whoami"))
            .bearer(token)
            .send()?;
        let whoami: WhoAmI = check(response, false)?.json()?;
        if let Some(room) = credentials.extra_value("room_id") {
            if !is_room_id(room) {
                return Err(PublishError::Permanent(format!(
                    "room_id {room:?} is not a room id (!opaque:server)"
                )));
            }
            let response = Request::get(format!("{homeserver}/_matrix/client/v3/joined_rooms"))
                .bearer(token)
                .send()?;
            let joined: JoinedRooms = check(response, false)?.json()?;
            if !joined.joined_rooms.iter().any(|joined| joined == room) {
                return Err(PublishError::Permanent(format!(
                    "{} has not joined room {room}: join it first",
                    whoami.user_id
                )));
            }
        }
        let response = Request::get(format!(
            "{homeserver}/_matrix/client/v3/profile/{}/displayname",
            percent_encode(&whoami.user_id)
        ))
        .bearer(token)
        .send()?;
        let display_name = if response.status == 404 {
            None
        } else {
            check(response, false)?.json::<DisplayName>()?.displayname
        };
        Ok(Account {
            id: whoami.user_id.clone(),
            handle: whoami.user_id,
            display_name,
        })
    }

    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        let Some(refresh) = credentials.refresh_token.clone() else {
            return Err(PublishError::AuthExpired(
                "the homeserver refused the access token and there is no refresh token: reconnect the account".into(),
            ));
        };
        let homeserver = homeserver(&credentials)?;
        let response = Request::post(format!("{homeserver}/_matrix/client/v3/refresh"))
            .json(&json!({ "refresh_token": refresh }))
            .send()?;
        let refreshed: Refreshed = check(response, false)?.json()?;
        Ok(Credentials {
            access_token: refreshed.access_token,
            refresh_token: refreshed.refresh_token.or(credentials.refresh_token),
            // The homeserver states a lifetime, not a time; Herald refreshes when the
            // token is refused.
            expires_at: None,
            extra: credentials.extra,
        })
    }
}

register_publisher!(Matrix);

/// The `m.text` content of `text`, with HTML when it has links or formatting.
fn text_content(text: &str) -> Value {
    match html::to_html(text) {
        Some(formatted) => json!({
            "msgtype": "m.text",
            "body": text,
            "format": "org.matrix.custom.html",
            "formatted_body": formatted,
        }),
        None => json!({ "msgtype": "m.text", "body": text }),
    }
}

/// The transaction id of the text (`None`) or of image `index`: the same for every retry
/// of one target.
fn txn_id(idempotency_key: &str, index: Option<u32>) -> String {
    match index {
        None => format!("{idempotency_key}.text"),
        Some(index) => format!("{idempotency_key}.image{index}"),
    }
}

/// The account's homeserver base URL, without a trailing slash.
fn homeserver(credentials: &Credentials) -> Result<String, PublishError> {
    let base = credentials
        .extra_value("homeserver")
        .unwrap_or(DEFAULT_HOMESERVER);
    let base = base.trim_end_matches('/');
    let host = base.strip_prefix("https://").ok_or_else(|| {
        PublishError::Permanent(format!("homeserver {base:?} is not an https:// URL"))
    })?;
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err(PublishError::Permanent(format!(
            "homeserver {base:?} is not https://host[:port]"
        )));
    }
    Ok(base.to_owned())
}

/// The room to post in: the target's `room_id` option, else the account's.
fn room_id(post: &Post, credentials: &Credentials) -> Result<String, PublishError> {
    let room = post.option("room_id")
        .or_else(|| credentials.extra_value("room_id"))
        .ok_or_else(|| {
            PublishError::Permanent(
                "no room to post in: set room_id in the account's credentials or the target's options".into(),
            )
        })?;
    if !is_room_id(room) {
        return Err(PublishError::Permanent(format!(
            "{room:?} is not a room id (!opaque:server)"
        )));
    }
    Ok(room.to_owned())
}

fn is_accepted_image(mime_type: &str) -> bool {
    IMAGE_TYPES
        .iter()
        .any(|accepted| accepted.eq_ignore_ascii_case(mime_type))
}

fn is_room_id(room: &str) -> bool {
    room.starts_with('!') && room.len() > 1 && !room.contains(char::is_whitespace)
}

/// A file name for media `index`: the last segment of its URL, else `image-N.<ext>`.
fn file_name(url: &str, mime_type: &str, index: u32) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    if !last.is_empty() && last.contains('.') && !path.ends_with("//") {
        return last.to_owned();
    }
    let extension = match mime_type {
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => "png",
    };
    format!("image-{index}.{extension}")
}

/// Keeps a 2xx response; maps a Matrix error with the SDK's mapping, with Matrix's own
/// cases: `M_LIMIT_EXCEEDED` (any status) → rate limited for the body's `retry_after_ms`
/// rounded up, `M_UNKNOWN_TOKEN`/`M_MISSING_TOKEN` → auth expired. `posting`: the request
/// sent an event to the room, so a 403 means the account may not post there.
fn check(response: Response, posting: bool) -> Result<Response, PublishError> {
    response.error_for_status_with(|failure| {
        let error: MatrixError = failure.json().unwrap_or_default();
        let status = failure.status();
        // Without an errcode, the SDK's message (`HTTP <status>: <start of the body>`).
        let failure = match (&error.errcode, &error.error) {
            (Some(code), Some(text)) => failure.message(format!("HTTP {status} {code}: {text}")),
            (Some(code), None) => failure.message(format!("HTTP {status} {code}")),
            _ => failure,
        };
        let failure = failure.retry_after(
            error
                .retry_after_ms
                .map(|ms| u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)),
        );
        match error.errcode.as_deref().unwrap_or_default() {
            "M_LIMIT_EXCEEDED" => failure.error(Kind::RateLimited),
            "M_UNKNOWN_TOKEN" | "M_MISSING_TOKEN" => failure.error(Kind::AuthExpired),
            _ if posting && status == 403 => {
                let message = format!(
                    "the account may not post in its room (not joined, or not allowed to): {}",
                    failure.text()
                );
                failure.message(message).error(Kind::Permanent)
            }
            _ => failure.into_error(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_sdk::Media;
    use herald_plugin_sdk::failure::DEFAULT_RETRY_SECONDS;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response::new(status, headers, body)
    }

    fn post(text: &str) -> Post {
        Post {
            text: text.into(),
            media: vec![],
            options: vec![],
        }
    }

    #[test]
    fn rate_limits_round_retry_after_ms_up_to_seconds() {
        let limited = |r| match check(r, false) {
            Err(PublishError::RateLimited(limit)) => limit.retry_after_seconds,
            other => panic!("{other:?}"),
        };
        let body =
            r#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":4001}"#;
        assert_eq!(limited(response(429, &[("retry-after", "9")], body)), 5);
        let body = r#"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":20}"#;
        assert_eq!(limited(response(429, &[], body)), 1);
        assert_eq!(limited(response(429, &[("retry-after", "7")], "{}")), 7);
        assert_eq!(limited(response(429, &[], "busy")), DEFAULT_RETRY_SECONDS);
    }

    #[test]
    fn matrix_errors_map_to_what_herald_does() {
        let token = r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed.","soft_logout":false}"#;
        assert!(matches!(
            check(response(401, &[], token), false),
            Err(PublishError::AuthExpired(_))
        ));
        let forbidden = r#"{"errcode":"M_FORBIDDEN","error":"User @a:x not in room !r:x"}"#;
        match check(response(403, &[], forbidden), true) {
            Err(PublishError::Permanent(message)) => {
                assert!(
                    message.contains("may not post") && message.contains("M_FORBIDDEN"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check(response(502, &[], "bad gateway"), false),
            Err(PublishError::Retryable(_))
        ));
        assert!(matches!(
            check(response(413, &[], r#"{"errcode":"M_TOO_LARGE"}"#), false),
            Err(PublishError::Permanent(_))
        ));
        assert!(check(response(200, &[], "{}"), false).is_ok());
    }

    #[test]
    fn validation_counts_the_event_content_in_bytes() {
        assert_eq!(Matrix::validate(post("hello")), vec![]);
        // 30,000 two-byte characters: 60,000 bytes of text, under the character limit.
        let near = "é".repeat(MAX_CONTENT_BYTES / 2 - 100);
        assert_eq!(Matrix::validate(post(&near)), vec![]);
        let over = "é".repeat(MAX_CONTENT_BYTES / 2 + 10);
        let violations = Matrix::validate(post(&over));
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].field, "text");
        assert_eq!(violations[0].code, "too_long");
        // Formatting makes the HTML copy count too.
        let links = "https://herald.test/x ".repeat(MAX_CONTENT_BYTES / 30);
        assert_eq!(Matrix::validate(post(&links)).len(), 1);
    }

    #[test]
    fn validation_refuses_empty_posts_bad_rooms_and_other_media() {
        assert_eq!(Matrix::validate(post("  "))[0].code, "empty");
        let mut with_room = post("hi");
        with_room.options = vec![("room_id".into(), "#alias:x".into())];
        assert_eq!(Matrix::validate(with_room)[0].field, "options.room_id");
        let mut video = post("hi");
        video.media = vec![Media {
            url: "https://m.test/v.mp4".into(),
            mime_type: "video/mp4".into(),
            alt: None,
            size: Some(10),
            width: None,
            height: None,
            duration_ms: None,
        }];
        assert_eq!(Matrix::validate(video.clone())[0].field, "media[0]");
        video.media[0].mime_type = String::new();
        assert_eq!(Matrix::validate(video), vec![], "checked once fetched");
    }

    #[test]
    fn content_ids_and_names() {
        assert_eq!(
            text_content("plain"),
            json!({"msgtype": "m.text", "body": "plain"})
        );
        assert_eq!(
            text_content("see https://a.test")["formatted_body"],
            "see <a href=\"https://a.test\">https://a.test</a>"
        );
        assert_eq!(txn_id("herald-1", None), "herald-1.text");
        assert_eq!(txn_id("herald-1", Some(2)), "herald-1.image2");
        assert_eq!(
            file_name("https://cdn.test/a/cat.png?x=1", "image/png", 0),
            "cat.png"
        );
        assert_eq!(
            file_name("https://cdn.test/media/42", "image/jpeg", 3),
            "image-3.jpg"
        );
    }

    #[test]
    fn homeserver_and_room_come_from_credentials_and_options() {
        let credentials = |extra: &[(&str, &str)]| Credentials {
            access_token: "t".into(),
            refresh_token: None,
            expires_at: None,
            extra: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        assert_eq!(
            homeserver(&credentials(&[])).ok().as_deref(),
            Some(DEFAULT_HOMESERVER)
        );
        assert_eq!(
            homeserver(&credentials(&[("homeserver", "https://matrix.test:8448/")]))
                .ok()
                .as_deref(),
            Some("https://matrix.test:8448")
        );
        assert!(homeserver(&credentials(&[("homeserver", "http://matrix.test")])).is_err());
        assert!(homeserver(&credentials(&[("homeserver", "https://m.test/path")])).is_err());

        let account = credentials(&[("room_id", "!acct:x")]);
        assert_eq!(
            room_id(&post("hi"), &account).ok().as_deref(),
            Some("!acct:x")
        );
        let mut targeted = post("hi");
        targeted.options = vec![("room_id".into(), "!other:x".into())];
        assert_eq!(
            room_id(&targeted, &account).ok().as_deref(),
            Some("!other:x")
        );
        assert!(room_id(&post("hi"), &credentials(&[])).is_err());
    }
}
