//! Instagram's content publishing: a post is a media *container* made from public media
//! URLs (`POST /{ig-user}/media`: `image_url`, or `video_url` with `media_type=REELS`, or
//! `media_type=CAROUSEL` with `children` made with `is_carousel_item=true`), processed by
//! Instagram (`status_code` IN_PROGRESS → FINISHED, or ERROR, or EXPIRED after 24 hours),
//! then published (`POST /{ig-user}/media_publish` with `creation_id`), after which it reads
//! PUBLISHED. Instagram downloads the media itself, from Herald's signed URLs.

use std::time::Duration;

use herald_meta_graph::{ContainerStatus, Meaning, graph_error};
use herald_plugin_sdk::http::Request;
use herald_plugin_sdk::{Media, PublishError, log, time};
use serde::Deserialize;

use crate::graph::Graph;

/// The first wait between two status reads; each later wait doubles, up to
/// [`MAX_POLL_WAIT`].
const FIRST_POLL_WAIT: Duration = Duration::from_millis(500);
/// The longest wait between two status reads.
const MAX_POLL_WAIT: Duration = Duration::from_secs(4);
/// How long one publish call waits for processing (below the host's call deadline); a
/// container still IN_PROGRESS then is waited for by a retry, which resumes it.
pub const PROCESSING_BUDGET: Duration = Duration::from_secs(20);

/// `{"id": …}`, the answer to a creation or a publish.
#[derive(Deserialize)]
struct Created {
    id: String,
}

/// A container's state (`GET /{container}?fields=status_code,status`).
#[derive(Debug, Deserialize)]
struct State {
    #[serde(default)]
    status_code: Option<String>,
    /// Instagram's words, e.g. `Error: Media download has failed. (2207052)`.
    #[serde(default)]
    status: Option<String>,
}

/// Whether `media` is a video.
pub fn is_video(media: &Media) -> bool {
    media.mime_type.to_ascii_lowercase().starts_with("video/")
}

/// Creates the container of one media: alone (a feed image, or a reel for a video, with
/// the caption) or as a carousel item (no caption).
pub fn create_item(
    graph: &Graph,
    ig_user: &str,
    media: &Media,
    caption: Option<&str>,
) -> Result<String, PublishError> {
    let mut form: Vec<(&str, &str)> = Vec::new();
    if is_video(media) {
        form.push((
            "media_type",
            if caption.is_some() { "REELS" } else { "VIDEO" },
        ));
        form.push(("video_url", &media.url));
    } else {
        form.push(("image_url", &media.url));
        if let Some(alt) = media.alt.as_deref().filter(|alt| !alt.trim().is_empty()) {
            form.push(("alt_text", alt));
        }
    }
    match caption {
        Some(caption) => form.push(("caption", caption)),
        None => form.push(("is_carousel_item", "true")),
    }
    create(graph, ig_user, &form)
}

/// Creates a carousel container of `children` with `caption`.
pub fn create_carousel(
    graph: &Graph,
    ig_user: &str,
    children: &[String],
    caption: &str,
) -> Result<String, PublishError> {
    let children = children.join(",");
    create(
        graph,
        ig_user,
        &[
            ("media_type", "CAROUSEL"),
            ("children", &children),
            ("caption", caption),
        ],
    )
}

fn create(graph: &Graph, ig_user: &str, form: &[(&str, &str)]) -> Result<String, PublishError> {
    let created = graph
        .post(&format!("{ig_user}/media"), form)?
        .json::<Created>()?;
    Ok(created.id)
}

/// A container's status and Instagram's words about it.
pub fn status(graph: &Graph, id: &str) -> Result<(ContainerStatus, String), PublishError> {
    let state = graph
        .get(id, &[("fields", "status_code,status")])?
        .json::<State>()?;
    let code = state.status_code.unwrap_or_default();
    let status = ContainerStatus::parse(&code).ok_or_else(|| {
        PublishError::Retryable(format!(
            "Instagram answered an unknown container status {code:?}"
        ))
    })?;
    Ok((status, state.status.unwrap_or(code)))
}

/// Reads the status of container `id` until it is no longer IN_PROGRESS, waiting longer
/// each time, at most [`PROCESSING_BUDGET`]; still IN_PROGRESS then → retryable (a retry
/// resumes the same container). Returns the status it settled on.
pub fn wait_processed(graph: &Graph, id: &str) -> Result<ContainerStatus, PublishError> {
    let mut waited = Duration::ZERO;
    let mut wait = FIRST_POLL_WAIT;
    loop {
        let (status, said) = status(graph, id)?;
        match status {
            ContainerStatus::InProgress => {}
            ContainerStatus::Error => return Err(processing_failed(&said)),
            settled => return Ok(settled),
        }
        if waited + wait > PROCESSING_BUDGET {
            return Err(PublishError::Retryable(format!(
                "Instagram is still processing the media after {} s; trying again later",
                waited.as_secs()
            )));
        }
        std::thread::sleep(wait);
        waited += wait;
        wait = (wait * 2).min(MAX_POLL_WAIT);
    }
}

/// The error of a container that failed processing, with Instagram's words; a media
/// Instagram could not download (2207052 and kin) says where to look.
fn processing_failed(said: &str) -> PublishError {
    let fetch = ["2207052", "2207003", "2207020", "9004"]
        .iter()
        .any(|code| said.contains(code));
    if fetch {
        PublishError::Permanent(format!(
            "Instagram could not process the media: {said}; Instagram downloads media from \
             Herald's signed URLs, which must be reachable from the internet (check \
             HERALD_PUBLIC_URL)"
        ))
    } else {
        PublishError::Permanent(format!("Instagram could not process the media: {said}"))
    }
}

/// Publishes container `id`; returns the new media's id. A container Instagram says is
/// not ready yet (9007 / 2207027) is retryable: a retry resumes it.
pub fn publish(graph: &Graph, ig_user: &str, id: &str) -> Result<String, PublishError> {
    let response = graph.send(
        Request::post(graph.url(&format!("{ig_user}/media_publish"), &[]))
            .form(&[("creation_id", id)]),
    )?;
    if response.is_success() {
        return Ok(response.json::<Created>()?.id);
    }
    match graph_error(&response).map(|error| (error.meaning(), error)) {
        Some((Meaning::NotReady, error)) => Err(PublishError::Retryable(format!(
            "Instagram: the media is not ready to publish yet: {}; trying again later",
            error.describe()
        ))),
        _ => Err(graph.failure(&response)),
    }
}

/// A published media's public URL.
pub fn permalink(graph: &Graph, media_id: &str) -> Result<String, PublishError> {
    #[derive(Deserialize)]
    struct Linked {
        permalink: String,
    }
    Ok(graph
        .get(media_id, &[("fields", "permalink")])?
        .json::<Linked>()?
        .permalink)
}

/// One of the account's media as `GET /{ig-user}/media` lists it.
#[derive(Debug, Deserialize)]
pub struct Listed {
    /// Its id.
    pub id: String,
    /// Its caption, as sent.
    #[serde(default)]
    pub caption: Option<String>,
    /// When it was published (`2026-12-05T17:00:00+0000`).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Its public URL.
    #[serde(default)]
    pub permalink: Option<String>,
}

impl Listed {
    /// When it was published, in Unix seconds.
    pub fn published_at(&self) -> Option<i64> {
        self.timestamp.as_deref().and_then(parse_timestamp)
    }
}

/// The account's media published since `since` (Unix seconds), newest first (one page).
pub fn published_since(
    graph: &Graph,
    ig_user: &str,
    since: i64,
) -> Result<Vec<Listed>, PublishError> {
    #[derive(Deserialize)]
    struct Page {
        data: Vec<Listed>,
    }
    let since = since.to_string();
    Ok(graph
        .get(
            &format!("{ig_user}/media"),
            &[
                ("fields", "id,caption,timestamp,permalink"),
                ("since", &since),
                ("limit", "50"),
            ],
        )?
        .json::<Page>()?
        .data)
}

/// The media a container created at `created` (Unix seconds) with `caption` became: the
/// earliest listed since then with that caption. A container that reads PUBLISHED proves
/// the post went out; this finds which post it is.
pub fn find_published(
    graph: &Graph,
    ig_user: &str,
    created: i64,
    caption: &str,
) -> Result<Option<Listed>, PublishError> {
    let mut found: Vec<Listed> = published_since(graph, ig_user, created.saturating_sub(60))?
        .into_iter()
        .filter(|media| media.caption.as_deref().unwrap_or_default() == caption)
        .collect();
    found.sort_by_key(|media| media.published_at().unwrap_or(i64::MAX));
    if found.len() > 1 {
        log::warn(&format!(
            "{} media with the same caption since the container was made; taking the earliest",
            found.len()
        ));
    }
    Ok(found.into_iter().next())
}

/// Unix seconds of Meta's timestamps (`2026-12-05T17:00:00+0000`, or RFC 3339).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let normalised = match text.len().checked_sub(5).and_then(|at| text.get(at..)) {
        Some(offset)
            if (offset.starts_with('+') || offset.starts_with('-'))
                && offset[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            let at = text.len() - 5;
            format!("{}{}:{}", &text[..at], &offset[..3], &offset[3..])
        }
        _ => text.to_owned(),
    };
    time::parse_rfc3339(&normalised).map(|millis| millis.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_timestamps_parse() {
        assert_eq!(
            parse_timestamp("2026-12-05T17:00:00+0000"),
            Some(1_796_490_000)
        );
        assert_eq!(
            parse_timestamp("2026-12-05T18:00:00+0100"),
            Some(1_796_490_000)
        );
        assert_eq!(parse_timestamp("2026-12-05T17:00:00Z"), Some(1_796_490_000));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn a_media_that_could_not_be_fetched_names_the_public_url() {
        let failed = processing_failed("ERROR: Media download has failed. (2207052)");
        assert!(matches!(&failed, PublishError::Permanent(m) if m.contains("HERALD_PUBLIC_URL")));
        let other = processing_failed("ERROR: unsupported codec");
        assert!(matches!(&other, PublishError::Permanent(m) if !m.contains("HERALD_PUBLIC_URL")));
    }
}
