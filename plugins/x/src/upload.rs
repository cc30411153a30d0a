//! The v2 chunked media upload: `POST /2/media/upload/initialize` (type, size, category)
//! → `POST /2/media/upload/{id}/append` (multipart `media` + `segment_index`, one per
//! [`SEGMENT_BYTES`]) → `POST /2/media/upload/{id}/finalize` → while the answer's
//! `processing_info.state` is `pending` or `in_progress`, `GET /2/media/upload?
//! command=STATUS&media_id=…` after `check_after_secs`. Alt text goes on with
//! `POST /2/media/metadata`.

use std::time::Duration;

use herald_plugin_sdk::http::{Multipart, Request, percent_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{PublishError, log, media};
use serde::Deserialize;
use serde_json::json;

use crate::api::{self, API, Data};

/// Bytes per appended segment (X accepts up to 1,000 segments of at most 5 MB).
pub const SEGMENT_BYTES: u32 = 1024 * 1024;
/// Longest wait X's `check_after_secs` is given between two status checks.
pub const MAX_CHECK_AFTER: Duration = Duration::from_secs(5);
/// Total wait for processing within one publish call, kept below the host's call
/// deadline (30 s); after it the publish is retried later.
pub const PROCESSING_BUDGET: Duration = Duration::from_secs(20);

/// `InitializeMediaUploadResponseData`.
#[derive(Deserialize)]
struct Session {
    id: String,
}

/// `FinalizeMediaUploadResponseData` / `GetMediaUploadStatusResponseData`.
#[derive(Deserialize)]
struct Uploaded {
    id: String,
    #[serde(default)]
    processing_info: Option<Processing>,
}

/// `processing_info`.
#[derive(Deserialize)]
struct Processing {
    state: String,
    #[serde(default)]
    check_after_secs: Option<u64>,
}

/// One media of the post to upload.
pub struct Item<'a> {
    /// Its index in the post.
    pub index: u32,
    /// Its MIME type.
    pub mime_type: &'a str,
    /// Its alt text, if any.
    pub alt: Option<&'a str>,
}

/// The `media_category` X files `mime_type` under for a post.
pub fn category(mime_type: &str) -> &'static str {
    match mime_type {
        "image/gif" => "tweet_gif",
        mime if mime.starts_with("video/") => "tweet_video",
        _ => "tweet_image",
    }
}

/// Uploads `item` and waits (boundedly) until X has processed it; returns its media id.
pub fn upload(item: &Item<'_>, token: &str, secrets: &Secrets) -> Result<String, PublishError> {
    let info = media::open(item.index)?;
    let initialized = api::call(
        Request::post(format!("{API}/2/media/upload/initialize")).json(&json!({
            "media_type": item.mime_type,
            "total_bytes": info.size,
            "media_category": category(item.mime_type),
        })),
        token,
        secrets,
    )?;
    let session = initialized.json::<Data<Session>>()?.data;
    let id = session.id;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PublishError::Permanent(format!(
            "X answered an upload id that is not one: {id:?}"
        )));
    }
    let mut offset = 0_u64;
    let mut segment = 0_u32;
    loop {
        let chunk = media::read(item.index, offset, SEGMENT_BYTES)?;
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        let form = Multipart::new(&format!("{id}-{segment}"))
            .text("segment_index", &segment.to_string())
            .file("media", "blob", "application/octet-stream", &chunk);
        api::call(
            Request::post(format!("{API}/2/media/upload/{id}/append")).multipart(form),
            token,
            secrets,
        )?;
        segment += 1;
    }
    let finalized = api::call(
        Request::post(format!("{API}/2/media/upload/{id}/finalize")),
        token,
        secrets,
    )?;
    let mut uploaded = finalized.json::<Data<Uploaded>>()?.data;
    let mut waited = Duration::ZERO;
    let mut checks = 0_u32;
    while let Some(processing) = uploaded.processing_info.take() {
        match processing.state.as_str() {
            "succeeded" => break,
            "failed" => {
                return Err(PublishError::Permanent(format!(
                    "X could not process media {} ({})",
                    item.index, item.mime_type
                )));
            }
            _ => {}
        }
        let wait = Duration::from_secs(processing.check_after_secs.unwrap_or(1).max(1))
            .min(MAX_CHECK_AFTER);
        if waited + wait > PROCESSING_BUDGET {
            return Err(PublishError::Retryable(format!(
                "X is still processing media {} after {} s",
                item.index,
                waited.as_secs()
            )));
        }
        std::thread::sleep(wait);
        waited += wait;
        checks += 1;
        let status = api::call(
            Request::get(format!(
                "{API}/2/media/upload?command=STATUS&media_id={}",
                percent_encode(&id)
            )),
            token,
            secrets,
        )?;
        uploaded = status.json::<Data<Uploaded>>()?.data;
    }
    log::debug(&format!(
        "media {} uploaded in {segment} segment(s), processed after {checks} check(s)",
        uploaded.id
    ));
    if let Some(alt) = item.alt.filter(|alt| !alt.trim().is_empty()) {
        api::call(
            Request::post(format!("{API}/2/media/metadata")).json(&json!({
                "id": uploaded.id,
                "metadata": { "alt_text": { "text": alt } },
            })),
            token,
            secrets,
        )?;
    }
    Ok(uploaded.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_are_filed_under_their_post_category() {
        assert_eq!(category("image/png"), "tweet_image");
        assert_eq!(category("image/gif"), "tweet_gif");
        assert_eq!(category("video/mp4"), "tweet_video");
    }
}
