//! The loaded publisher plugins: their limits, and validation of a draft against them.

use async_graphql::{Context, Enum, ErrorExtensions, InputObject, SimpleObject};
use herald_plugin_host::{LengthCounting, PluginHost, PluginInfo};

use super::actor;
use crate::error::AppError;
use crate::media::MediaLibrary;

/// A platform Herald can publish to (a loaded plugin).
#[derive(SimpleObject)]
pub struct Platform {
    /// Platform id, as used in a post's `platforms`.
    pub id: String,
    /// Human-readable name.
    pub display_name: String,
    /// The plugin's version.
    pub version: String,
    /// The plugin interface (WIT) version the plugin was built against.
    pub wit_version: String,
    /// Whether publishing twice with one idempotency key creates one post.
    pub idempotent_publish: bool,
    /// Whether the plugin was quarantined after trapping repeatedly: its posts fail with
    /// that reason until Herald restarts with a fixed plugin.
    pub quarantined: bool,
    /// What one post may contain.
    pub limits: PlatformLimits,
}

/// What one post may contain on a platform.
#[derive(SimpleObject)]
pub struct PlatformLimits {
    /// Longest text, counted as `textCounting` says.
    pub max_text_length: i64,
    /// How text length is counted.
    pub text_counting: TextCounting,
    /// Most media in one post.
    pub max_media: i64,
    /// Accepted media types and their largest sizes.
    pub media: Vec<MediaLimit>,
}

/// How a platform counts text length.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TextCounting {
    /// Extended grapheme clusters (what a reader sees as one character).
    Graphemes,
    /// Unicode scalar values.
    Chars,
    /// X's weighted length: URLs count 23, CJK and emoji 2.
    WeightedX,
}

/// An accepted media type.
#[derive(SimpleObject)]
pub struct MediaLimit {
    /// MIME type.
    pub mime_type: String,
    /// Largest size in bytes.
    pub max_bytes: i64,
}

/// A draft to check against platforms' rules.
#[derive(InputObject)]
pub struct ValidatePostInput {
    /// The text.
    pub content: String,
    /// Platform ids to check.
    pub platforms: Vec<String>,
    /// Attachments.
    #[graphql(default)]
    pub media: Vec<MediaInput>,
}

/// One attachment of a draft.
#[derive(InputObject)]
pub struct MediaInput {
    /// Where it is stored.
    pub url: String,
    /// MIME type.
    pub mime_type: String,
    /// Alternative text.
    pub alt: Option<String>,
    /// Size in bytes, when known.
    pub size: Option<i64>,
}

/// The verdict of one platform on a draft.
#[derive(SimpleObject)]
pub struct PlatformValidation {
    /// Platform id.
    pub platform: String,
    /// Whether the draft can be published there as it is.
    pub valid: bool,
    /// Each reason it cannot.
    pub violations: Vec<Violation>,
}

/// One reason a draft cannot be published on a platform.
#[derive(SimpleObject)]
pub struct Violation {
    /// The field at fault, e.g. `text` or `media[1]`.
    pub field: String,
    /// Machine-readable code, e.g. `too_long`.
    pub code: String,
    /// Explanation.
    pub message: String,
}

fn platform(info: PluginInfo, quarantined: bool) -> Platform {
    Platform {
        quarantined,
        id: info.platform,
        display_name: info.display_name,
        version: info.version,
        wit_version: info.wit_version,
        idempotent_publish: info.idempotent_publish,
        limits: PlatformLimits {
            max_text_length: i64::from(info.limits.max_text_length),
            text_counting: match info.limits.counting {
                LengthCounting::Graphemes => TextCounting::Graphemes,
                LengthCounting::Chars => TextCounting::Chars,
                LengthCounting::WeightedX => TextCounting::WeightedX,
            },
            max_media: i64::from(info.limits.max_media),
            media: info
                .limits
                .media
                .into_iter()
                .map(|m| MediaLimit {
                    mime_type: m.mime_type,
                    max_bytes: i64::try_from(m.max_bytes).unwrap_or(i64::MAX),
                })
                .collect(),
        },
    }
}

/// `platforms`: every loaded plugin (none when no plugin directory is configured).
pub(crate) fn platforms(ctx: &Context<'_>) -> async_graphql::Result<Vec<Platform>> {
    actor(ctx)?;
    Ok(ctx
        .data_opt::<PluginHost>()
        .map(|host| {
            let quarantined = host.quarantined();
            host.platforms()
                .into_iter()
                .map(|info| {
                    let q = quarantined.contains(&info.platform);
                    platform(info, q)
                })
                .collect()
        })
        .unwrap_or_default())
}

/// `validatePost`: each requested platform's verdict on the draft. A platform that
/// downloads media itself (Instagram, Threads, Facebook) also gets a `media_unreachable`
/// violation when Herald's public URL cannot be reached from the internet.
pub(crate) async fn validate_post(
    ctx: &Context<'_>,
    input: ValidatePostInput,
) -> async_graphql::Result<Vec<PlatformValidation>> {
    actor(ctx)?;
    let host = ctx.data_opt::<PluginHost>();
    let post = herald_plugin_host::Post {
        text: input.content,
        media: input
            .media
            .into_iter()
            .map(|m| herald_plugin_host::Media {
                url: m.url,
                mime_type: m.mime_type,
                alt: m.alt,
                size: m.size.and_then(|size| u64::try_from(size).ok()),
                ..Default::default()
            })
            .collect(),
        options: Vec::new(),
    };
    let mut verdicts = Vec::with_capacity(input.platforms.len());
    for id in input.platforms {
        let Some(host) = host.filter(|host| host.platform(&id).is_some()) else {
            return Err(
                AppError::bad_input("platforms", format!("unknown platform `{id}`")).extend(),
            );
        };
        let mut violations = host
            .validate(&id, &post)
            .await
            .map_err(|error| AppError::Internal(Box::new(error)).extend())?;
        if !post.media.is_empty()
            && host.downloads_media(&id)
            && let Some(problem) = ctx.data::<MediaLibrary>()?.public_url_problem().await
        {
            violations.push(herald_plugin_host::Violation {
                field: "media".into(),
                code: "media_unreachable".into(),
                message: format!(
                    "{} downloads media from Herald: {problem}",
                    host.platform(&id)
                        .map_or(id.clone(), |info| info.display_name)
                ),
            });
        }
        verdicts.push(PlatformValidation {
            platform: id,
            valid: violations.is_empty(),
            violations: violations
                .into_iter()
                .map(|v| Violation {
                    field: v.field,
                    code: v.code,
                    message: v.message,
                })
                .collect(),
        });
    }
    Ok(verdicts)
}
