//! What an Instagram post must be, checked when it is scheduled (field-level violations)
//! and again before publishing: media required (one image, one video as a reel, or a
//! carousel of 2–10), JPEG images, MP4/MOV videos, a caption of at most 2,200 characters
//! with at most 30 hashtags; and, when Herald knows a file's frame and duration (files of
//! its media library), images between 4:5 and 1.91:1 and reels of 3 seconds to 15 minutes.

use herald_plugin_sdk::{
    AspectRange, DurationRange, FrameRules, LengthCounting, Limits, MediaLimit, Post, Violation,
    validate_frames, validate_limits,
};

/// Longest caption, in characters.
pub const MAX_CAPTION: u32 = 2_200;
/// Most hashtags in a caption.
pub const MAX_HASHTAGS: usize = 30;
/// Most items in a carousel.
pub const MAX_MEDIA: u32 = 10;
/// Largest image Instagram takes (8 MiB).
const IMAGE_BYTES: u64 = 8 * 1024 * 1024;
/// Largest reel Instagram takes (300 MB).
const VIDEO_BYTES: u64 = 300 * 1024 * 1024;

/// Instagram's frame rules: images 4:5 to 1.91:1, reels 3 seconds to 15 minutes.
const FRAMES: FrameRules = FrameRules {
    platform: "Instagram",
    image_aspect: Some(AspectRange {
        narrowest: (4, 5),
        widest: (191, 100),
        says: "between 4:5 and 1.91:1",
    }),
    video_duration: Some(DurationRange {
        shortest_ms: 3_000,
        longest_ms: 15 * 60 * 1_000,
        says: "3 seconds to 15 minutes",
    }),
};

/// What one Instagram post may contain.
pub fn limits() -> Limits {
    let media = |mime: &str, max_bytes| MediaLimit {
        mime_type: mime.into(),
        max_bytes,
    };
    Limits {
        max_text_length: MAX_CAPTION,
        counting: LengthCounting::Chars,
        max_media: MAX_MEDIA,
        media: vec![
            // The content publishing API takes JPEG only (no PNG, no extended JPEG).
            media("image/jpeg", IMAGE_BYTES),
            media("video/mp4", VIDEO_BYTES),
            media("video/quicktime", VIDEO_BYTES),
        ],
    }
}

/// Why `post` cannot be an Instagram post.
pub fn check(post: &Post) -> Vec<Violation> {
    let mut violations = Vec::new();
    if post.media.is_empty() {
        violations.push(violation(
            "media",
            "media_required",
            "an Instagram post needs an image or a video (a carousel takes 2 to 10)".into(),
        ));
    }
    violations.extend(validate_limits(&limits(), post));
    violations.extend(validate_frames(&FRAMES, post));
    let hashtags = hashtag_count(&post.text);
    if hashtags > MAX_HASHTAGS {
        violations.push(violation(
            "text",
            "too_many_hashtags",
            format!("the caption has {hashtags} hashtags; Instagram allows {MAX_HASHTAGS}"),
        ));
    }
    violations
}

/// The hashtags in `text`: `#` followed by a letter, digit or `_`, not inside a word.
pub fn hashtag_count(text: &str) -> usize {
    let mut count = 0;
    let mut previous: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let starts_word = previous.is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '#'));
        if c == '#'
            && starts_word
            && chars
                .peek()
                .is_some_and(|next| next.is_alphanumeric() || *next == '_')
        {
            count += 1;
        }
        previous = Some(c);
    }
    count
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

    fn post(text: &str, media: &[&str]) -> Post {
        Post {
            text: text.into(),
            media: media
                .iter()
                .map(|mime| Media {
                    url: "https://media.test/a".into(),
                    mime_type: (*mime).into(),
                    alt: None,
                    size: Some(10),
                    width: None,
                    height: None,
                    duration_ms: None,
                })
                .collect(),
            options: vec![],
        }
    }

    fn codes(post: &Post) -> Vec<(String, String)> {
        check(post).into_iter().map(|v| (v.field, v.code)).collect()
    }

    #[test]
    fn hashtags_are_counted_as_instagram_does() {
        assert_eq!(hashtag_count("#a #b_c x#d ## # #é #1"), 4);
        assert_eq!(hashtag_count("no tags, C# and issue#4"), 0);
    }

    #[test]
    fn caption_hashtags_and_media_are_checked() {
        assert_eq!(codes(&post(&"é".repeat(2_200), &["image/jpeg"])), vec![]);
        assert_eq!(
            codes(&post(&"a".repeat(2_201), &["image/jpeg"])),
            vec![("text".into(), "too_long".into())]
        );
        let tags: Vec<String> = (0..31).map(|i| format!("#t{i}")).collect();
        assert_eq!(
            codes(&post(&tags.join(" "), &["video/mp4"])),
            vec![("text".into(), "too_many_hashtags".into())]
        );
        assert_eq!(codes(&post(&tags[..30].join(" "), &["video/mp4"])), vec![]);
        assert_eq!(
            codes(&post("text only", &[])),
            vec![("media".into(), "media_required".into())]
        );
        assert_eq!(
            codes(&post("png", &["image/png"])),
            vec![("media[0]".into(), "unsupported_media_type".into())]
        );
        assert_eq!(
            codes(&post("eleven", &["image/jpeg"; 11])),
            vec![("media".into(), "too_many_media".into())]
        );
    }

    #[test]
    fn frames_and_durations_herald_knows_are_checked() {
        let sized = |mime: &str, width, height, duration_ms| {
            let mut post = post("framed", &[mime]);
            post.media[0].width = width;
            post.media[0].height = height;
            post.media[0].duration_ms = duration_ms;
            codes(&post)
        };
        let aspect = vec![("media[0]".to_owned(), "aspect_ratio".to_owned())];
        assert_eq!(sized("image/jpeg", Some(1080), Some(1350), None), vec![]); // 4:5
        assert_eq!(sized("image/jpeg", Some(1910), Some(1000), None), vec![]); // 1.91:1
        assert_eq!(sized("image/jpeg", Some(1079), Some(1350), None), aspect);
        assert_eq!(sized("image/jpeg", Some(1911), Some(1000), None), aspect);
        assert_eq!(
            sized("image/jpeg", None, None, None),
            vec![],
            "unknown: not judged"
        );
        let duration = vec![("media[0]".to_owned(), "duration".to_owned())];
        assert_eq!(sized("video/mp4", None, None, Some(3_000)), vec![]);
        assert_eq!(sized("video/mp4", None, None, Some(900_000)), vec![]);
        assert_eq!(sized("video/mp4", None, None, Some(2_999)), duration);
        assert_eq!(sized("video/mp4", None, None, Some(900_001)), duration);
    }
}
