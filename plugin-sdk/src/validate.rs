//! The checks every platform shares: text length, media count, media types and sizes
//! ([`validate_limits`]), and a platform's frame and duration rules for the media whose
//! frame or duration Herald knows ([`validate_frames`]).

use crate::text::text_length;
use crate::{Limits, Post, Violation};

/// Checks `post` against `limits`; the default [`Publisher::validate`](crate::Publisher::validate).
pub fn validate_limits(limits: &Limits, post: &Post) -> Vec<Violation> {
    let mut violations = Vec::new();
    let length = text_length(&post.text, limits.counting);
    if length > u64::from(limits.max_text_length) {
        violations.push(Violation {
            field: "text".into(),
            code: "too_long".into(),
            message: format!(
                "text is {length} long, the limit is {}",
                limits.max_text_length
            ),
        });
    }
    if post.media.len() > limits.max_media as usize {
        violations.push(Violation {
            field: "media".into(),
            code: "too_many_media".into(),
            message: format!(
                "{} media attached, the limit is {}",
                post.media.len(),
                limits.max_media
            ),
        });
    }
    for (index, media) in post.media.iter().enumerate() {
        let field = format!("media[{index}]");
        match limits
            .media
            .iter()
            .find(|limit| limit.mime_type.eq_ignore_ascii_case(&media.mime_type))
        {
            None => violations.push(Violation {
                field,
                code: "unsupported_media_type".into(),
                message: format!("{} is not accepted", media.mime_type),
            }),
            Some(limit) => {
                if let Some(size) = media.size.filter(|size| *size > limit.max_bytes) {
                    violations.push(Violation {
                        field,
                        code: "media_too_large".into(),
                        message: format!(
                            "{size} bytes, the limit for {} is {}",
                            limit.mime_type, limit.max_bytes
                        ),
                    });
                }
            }
        }
    }
    violations
}

/// A range of aspect ratios (width : height), both ends included.
#[derive(Debug, Clone, Copy)]
pub struct AspectRange {
    /// The narrowest, as `(width, height)`, e.g. `(4, 5)`.
    pub narrowest: (u64, u64),
    /// The widest, e.g. `(191, 100)` for 1.91:1.
    pub widest: (u64, u64),
    /// How messages say the range, e.g. `between 4:5 and 1.91:1`.
    pub says: &'static str,
}

/// A range of video durations in milliseconds, both ends included.
#[derive(Debug, Clone, Copy)]
pub struct DurationRange {
    /// Shortest.
    pub shortest_ms: u64,
    /// Longest.
    pub longest_ms: u64,
    /// How messages say the range, e.g. `3 seconds to 15 minutes`.
    pub says: &'static str,
}

/// A platform's frame and duration rules.
#[derive(Debug, Clone, Copy)]
pub struct FrameRules {
    /// The platform's name, for messages.
    pub platform: &'static str,
    /// The aspect ratios images may have.
    pub image_aspect: Option<AspectRange>,
    /// The durations videos may have.
    pub video_duration: Option<DurationRange>,
}

/// Checks the frame and duration of `post`'s media against `rules`, where Herald knows
/// them (files of its media library; unknown values are not judged): `aspect_ratio` and
/// `duration` violations naming `media[i]`.
pub fn validate_frames(rules: &FrameRules, post: &Post) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (index, media) in post.media.iter().enumerate() {
        if let (Some(aspect), Some(width), Some(height)) =
            (rules.image_aspect, media.width, media.height)
            && media.mime_type.starts_with("image/")
        {
            let (w, h) = (u64::from(width), u64::from(height));
            // width/height below the narrowest or above the widest, in integers.
            let (nw, nh) = aspect.narrowest;
            let (ww, wh) = aspect.widest;
            if w * nh < h * nw || w * wh > h * ww {
                violations.push(Violation {
                    field: format!("media[{index}]"),
                    code: "aspect_ratio".into(),
                    message: format!(
                        "{} needs an aspect ratio {}; this image is {width}×{height}",
                        rules.platform, aspect.says
                    ),
                });
            }
        }
        if let (Some(range), Some(ms)) = (rules.video_duration, media.duration_ms)
            && media.mime_type.starts_with("video/")
            && !(range.shortest_ms..=range.longest_ms).contains(&ms)
        {
            violations.push(Violation {
                field: format!("media[{index}]"),
                code: "duration".into(),
                message: format!(
                    "{} takes videos of {}; this video lasts {}.{} s",
                    rules.platform,
                    range.says,
                    ms / 1_000,
                    ms % 1_000 / 100
                ),
            });
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LengthCounting, Media, MediaLimit};

    fn limits() -> Limits {
        Limits {
            max_text_length: 5,
            counting: LengthCounting::Graphemes,
            max_media: 1,
            media: vec![MediaLimit {
                mime_type: "image/png".into(),
                max_bytes: 10,
            }],
        }
    }

    fn media(mime: &str, size: u64) -> Media {
        Media {
            url: "https://media.example/1".into(),
            mime_type: mime.into(),
            alt: None,
            size: Some(size),
            width: None,
            height: None,
            duration_ms: None,
        }
    }

    #[test]
    fn accepts_a_post_within_limits() {
        let post = Post {
            text: "héllo".into(),
            media: vec![media("image/png", 10)],
            options: vec![],
        };
        assert_eq!(validate_limits(&limits(), &post), vec![]);
    }

    #[test]
    fn reports_every_violation_with_its_field() {
        let post = Post {
            text: "too long".into(),
            media: vec![media("image/png", 11), media("video/mp4", 1)],
            options: vec![],
        };
        let codes: Vec<(String, String)> = validate_limits(&limits(), &post)
            .into_iter()
            .map(|v| (v.field, v.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("text".into(), "too_long".into()),
                ("media".into(), "too_many_media".into()),
                ("media[0]".into(), "media_too_large".into()),
                ("media[1]".into(), "unsupported_media_type".into()),
            ]
        );
    }
}
