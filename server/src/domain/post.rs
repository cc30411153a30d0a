//! What a valid post is: content, platforms, media, labels, and its approval state.

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

/// Normalises platform ids (trimmed, lower case, de-duplicated, order kept) and refuses
/// any not in `known`.
pub fn normalize_platforms(
    platforms: &[String],
    known: &[String],
) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = Vec::with_capacity(platforms.len());
    for raw in platforms {
        let id = raw.trim().to_ascii_lowercase();
        if !known.contains(&id) {
            return Err(AppError::bad_input(
                "platforms",
                format!(
                    "unknown platform `{raw}`; known platforms: {}",
                    known.join(", ")
                ),
            ));
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Validates media URLs: absolute http(s), bounded length and count.
pub fn validate_media_urls(urls: &[String]) -> Result<(), AppError> {
    if urls.len() > MAX_MEDIA {
        return Err(AppError::bad_input(
            "mediaUrls",
            format!(
                "{} media given; at most {MAX_MEDIA} are accepted",
                urls.len()
            ),
        ));
    }
    urls.iter()
        .try_for_each(|url| validate_url("mediaUrls", url))
}

/// Validates one absolute http(s) URL of bounded length, naming `field` when it is not.
pub fn validate_url(field: &str, url: &str) -> Result<(), AppError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty()
    });
    if !host_ok || url.len() > MAX_URL_LEN || url.contains(char::is_whitespace) {
        return Err(AppError::bad_input(
            field,
            format!("`{url}` is not an absolute http(s) URL"),
        ));
    }
    Ok(())
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
    media: &[String],
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
    fn platforms_are_normalised_and_checked() {
        let known: Vec<String> = KNOWN_PLATFORMS.iter().map(|p| p.to_string()).collect();
        let got = normalize_platforms(&[" X ".into(), "bluesky".into(), "x".into()], &known)
            .expect("known platforms");
        assert_eq!(got, vec!["x", "bluesky"]);
        assert!(normalize_platforms(&["myspace".into()], &known).is_err());
    }

    #[test]
    fn media_urls_must_be_absolute_http() {
        validate_media_urls(&["https://cdn.example.com/a.png".into()]).expect("valid");
        for bad in [
            "ftp://x/a.png",
            "https://",
            "/relative.png",
            "https://a b/c",
        ] {
            assert!(validate_media_urls(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn scheduling_needs_content_and_platform() {
        assert!(require_publishable("", &[], &["x".into()]).is_err());
        assert!(require_publishable("hi", &[], &[]).is_err());
        require_publishable("hi", &[], &["x".into()]).expect("publishable");
    }
}
