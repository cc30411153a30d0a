//! What a valid post is: content, platforms, media, labels, and its approval state.

use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Platforms Herald accepts without a plugin loaded for them (their plugins are being
/// written; the `webhook` platform is built in). Loaded plugins add their own platforms.
pub const KNOWN_PLATFORMS: &[&str] = &[
    "bluesky",
    "discord",
    "facebook",
    "instagram",
    "linkedin",
    "mastodon",
    "matrix",
    "telegram",
    "threads",
    "webhook",
    "x",
];

/// Upper bound on a post's text, far above any platform's own limit; platform limits are
/// checked by each platform's validation.
pub const MAX_CONTENT_CHARS: usize = 100_000;
/// Most media attachments a post may carry.
pub const MAX_MEDIA: usize = 20;
/// Longest accepted media URL.
pub const MAX_URL_LEN: usize = 2_048;
/// Longest alt text of one attachment.
pub const MAX_ALT_CHARS: usize = 5_000;
/// Longest campaign name.
pub const MAX_CAMPAIGN_CHARS: usize = 200;
/// Longest internal note.
pub const MAX_NOTES_CHARS: usize = 10_000;

/// Where a post stands in the approval workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    /// The post does not need approval.
    NotRequired,
    /// Waiting for an approver; not published until approved.
    Pending,
    /// An approver accepted it.
    Approved,
    /// An approver refused it, with a reason.
    Rejected,
}

impl ApprovalStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [
        Self::NotRequired,
        Self::Pending,
        Self::Approved,
        Self::Rejected,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRequired => "not_required",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The approval states that let a post go out (see `status::is_publishable`).
    pub const PUBLISHABLE: [Self; 2] = [Self::NotRequired, Self::Approved];

    /// Whether this state lets the post go out.
    pub fn allows_publishing(self) -> bool {
        Self::PUBLISHABLE.contains(&self)
    }

    /// The state a post enters when it is created or its content changes.
    pub fn initial(approval_required: bool) -> Self {
        if approval_required {
            Self::Pending
        } else {
            Self::NotRequired
        }
    }
}

/// Validates content length (in characters). Empty content is allowed for drafts only:
/// see [`require_publishable`].
pub fn validate_content(content: &str) -> Result<(), AppError> {
    let chars = content.chars().count();
    if chars > MAX_CONTENT_CHARS {
        return Err(AppError::bad_input(
            "content",
            format!("content is {chars} characters; at most {MAX_CONTENT_CHARS} are accepted"),
        ));
    }
    Ok(())
}

/// One media attachment of a post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaItem {
    /// Where the file is served (absolute http(s) URL).
    pub url: String,
    /// Alternative text for readers who cannot see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
    /// MIME type, when the author declared it (otherwise the served type is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The media library file this attachment is (its `url` is then Herald's reference,
    /// resolved to a signed public URL when the post is published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<uuid::Uuid>,
    /// What the library knows of that file (set when it is attached, never by clients):
    /// platforms check their media rules (aspect ratio, duration) against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<MediaDetails>,
}

/// Size, frame and duration of a library file, as probed when it was uploaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaDetails {
    /// Size in bytes.
    pub size: u64,
    /// Width in pixels (images, videos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels (images, videos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Duration in milliseconds (videos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl MediaItem {
    /// An attachment at `url` without alt text or declared type.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

/// Validates media: absolute http(s) URLs of bounded length and count, bounded alt text,
/// `type/subtype` MIME types. `field` names the input in errors (`media` or `mediaUrls`).
pub fn validate_media(media: &[MediaItem], field: &str) -> Result<(), AppError> {
    if media.len() > MAX_MEDIA {
        return Err(AppError::bad_input(
            field,
            format!(
                "{} media given; at most {MAX_MEDIA} are accepted",
                media.len()
            ),
        ));
    }
    for (index, item) in media.iter().enumerate() {
        let field = format!("{field}[{index}]");
        // A library file's URL is Herald's own, set when the file is attached.
        if item.media_id.is_none() {
            validate_url(&field, &item.url)?;
        }
        if item
            .alt
            .as_deref()
            .is_some_and(|alt| alt.chars().count() > MAX_ALT_CHARS)
        {
            return Err(AppError::bad_input(
                field,
                format!("alt text is longer than {MAX_ALT_CHARS} characters"),
            ));
        }
        if let Some(mime) = &item.mime_type {
            let valid = mime.len() <= 127
                && mime.split_once('/').is_some_and(|(kind, sub)| {
                    !kind.is_empty()
                        && !sub.is_empty()
                        && (kind.chars().chain(sub.chars()))
                            .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
                });
            if !valid {
                return Err(AppError::bad_input(
                    field,
                    format!("`{mime}` is not a MIME type such as image/png"),
                ));
            }
        }
    }
    Ok(())
}

/// Validates one absolute http(s) URL of bounded length, naming `field` when it is not.
pub fn validate_url(field: &str, url: &str) -> Result<(), AppError> {
    if !is_web_url(url) {
        return Err(AppError::bad_input(
            field,
            format!("`{url}` is not an absolute http(s) URL"),
        ));
    }
    Ok(())
}

/// Whether `url` is an absolute http(s) URL with a host, no whitespace and at most
/// [`MAX_URL_LEN`] bytes: what Herald stores as a link a browser may follow (a platform's
/// post URL from a plugin or a self-hosted instance is held to it too, so `javascript:`
/// never reaches a frontend).
pub fn is_web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty()
    });
    host_ok && url.len() <= MAX_URL_LEN && !url.contains(char::is_whitespace)
}

/// Validates an optional free-text label against a length limit.
pub fn validate_label(field: &str, value: Option<&str>, max_chars: usize) -> Result<(), AppError> {
    match value {
        Some(v) if v.chars().count() > max_chars => Err(AppError::bad_input(
            field,
            format!("{field} is longer than {max_chars} characters"),
        )),
        _ => Ok(()),
    }
}

/// What a post needs before it can be scheduled: some text or media, and a platform.
pub fn require_publishable(
    content: &str,
    media: &[MediaItem],
    platforms: &[String],
) -> Result<(), AppError> {
    if content.trim().is_empty() && media.is_empty() {
        return Err(AppError::bad_input(
            "content",
            "a scheduled post needs text or media",
        ));
    }
    if platforms.is_empty() {
        return Err(AppError::bad_input(
            "platforms",
            "a scheduled post needs at least one platform",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_urls_must_be_absolute_http() {
        validate_media(&[MediaItem::url("https://cdn.example.com/a.png")], "media").expect("valid");
        for bad in [
            "ftp://x/a.png",
            "https://",
            "/relative.png",
            "https://a b/c",
        ] {
            assert!(
                validate_media(&[MediaItem::url(bad)], "media").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn alt_text_and_mime_types_are_checked() {
        let ok = MediaItem {
            url: "https://cdn.example.com/a.png".into(),
            alt: Some("A cat".into()),
            mime_type: Some("image/png".into()),
            media_id: None,
            details: None,
        };
        validate_media(std::slice::from_ref(&ok), "media").expect("valid");
        let long_alt = MediaItem {
            alt: Some("a".repeat(MAX_ALT_CHARS + 1)),
            ..ok.clone()
        };
        let bad_mime = MediaItem {
            mime_type: Some("png".into()),
            ..ok.clone()
        };
        for bad in [long_alt, bad_mime] {
            let err = validate_media(&[ok.clone(), bad], "media").expect_err("invalid");
            assert!(matches!(err, AppError::BadUserInput { field, .. } if field == "media[1]"));
        }
    }

    #[test]
    fn scheduling_needs_content_and_platform() {
        assert!(require_publishable("", &[], &["x".into()]).is_err());
        require_publishable(
            "",
            &[MediaItem::url("https://a.example/x.png")],
            &["x".into()],
        )
        .expect("media alone is publishable");
        assert!(require_publishable("hi", &[], &[]).is_err());
        require_publishable("hi", &[], &["x".into()]).expect("publishable");
    }
}
