//! The Images API: `POST /rest/images?action=initializeUpload` with the post's author as
//! owner answers an `uploadUrl` and the image's URN; the bytes are PUT to that URL (with
//! the account's token, streamed by the host); `GET /rest/images/{urn}` is read until
//! LinkedIn has processed it (`AVAILABLE`); the URN then goes in the post's content.

use std::time::Duration;

use herald_plugin_sdk::http::{Body, Request};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{PublishError, log, media};
use serde_json::json;

use crate::api::{self, API, Initialized};

/// Status reads of an uploaded image before the publish is retried later.
const STATUS_READS: u32 = 10;
/// Time between two status reads.
const STATUS_WAIT: Duration = Duration::from_secs(1);

/// Hosts an upload URL may point at: the account's token goes with the bytes, so it is
/// only sent to LinkedIn.
pub const UPLOAD_HOSTS: [&str; 2] = ["www.linkedin.com", "api.linkedin.com"];

/// What an image upload needs.
pub struct Upload<'a> {
    /// The account's access token.
    pub token: &'a str,
    /// The API version in use.
    pub version: &'a str,
    /// The post's author (person or organization URN), the image's owner.
    pub owner: &'a str,
    /// Scrubbed from errors.
    pub secrets: &'a Secrets,
}

/// Uploads the post's media at `index`; returns its image URN.
pub fn upload(index: u32, to: &Upload<'_>) -> Result<String, PublishError> {
    let info = media::open(index)?;
    let initialized = api::send(
        api::rest(
            Request::post(format!("{API}/rest/images?action=initializeUpload")),
            to.token,
            to.version,
        )
        .json(&json!({ "initializeUploadRequest": { "owner": to.owner } })),
        to.version,
        to.secrets,
    )?
    .json::<Initialized>()?
    .value;
    if !initialized.image.starts_with("urn:li:image:") {
        return Err(PublishError::Permanent(format!(
            "LinkedIn answered an image URN that is not one: {:?}",
            initialized.image
        )));
    }
    if !is_linkedin_url(&initialized.upload_url) {
        return Err(PublishError::Permanent(format!(
            "LinkedIn answered an upload URL outside {}; not sending the image there",
            UPLOAD_HOSTS.join(" and ")
        )));
    }
    api::send(
        Request::put(initialized.upload_url)
            .bearer(to.token)
            .header("content-type", "application/octet-stream")
            .body(Body::MediaRef(index)),
        to.version,
        to.secrets,
    )?;
    log::debug(&format!(
        "image {} uploaded ({} bytes)",
        initialized.image, info.size
    ));
    wait_until_available(index, &initialized.image, to)?;
    Ok(initialized.image)
}

/// Reads the status of the uploaded image `urn` (the post's media at `index`) until
/// LinkedIn has processed it: `AVAILABLE` → done; `PROCESSING_FAILED` → permanent (the
/// file is not an image LinkedIn takes); still processing after [`STATUS_READS`] reads →
/// retryable (the whole publish is tried again later).
fn wait_until_available(index: u32, urn: &str, to: &Upload<'_>) -> Result<(), PublishError> {
    let url = format!("{API}/rest/images/{}", urn.replace(':', "%3A"));
    for read in 0..STATUS_READS {
        if read > 0 {
            std::thread::sleep(STATUS_WAIT);
        }
        let image = api::send(
            api::rest(Request::get(url.clone()), to.token, to.version),
            to.version,
            to.secrets,
        )?
        .json::<ImageStatus>()?;
        match image.status.as_str() {
            "AVAILABLE" => return Ok(()),
            "PROCESSING_FAILED" => {
                return Err(PublishError::Permanent(format!(
                    "LinkedIn could not process image {} (media[{index}]): PROCESSING_FAILED",
                    index + 1
                )));
            }
            _ => {}
        }
    }
    Err(PublishError::Retryable(format!(
        "LinkedIn was still processing image {} after {STATUS_READS} status reads",
        index + 1
    )))
}

/// `GET /rest/images/{urn}`: the part read.
#[derive(serde::Deserialize)]
struct ImageStatus {
    /// `WAITING_UPLOAD`, `PROCESSING`, `AVAILABLE` or `PROCESSING_FAILED`.
    status: String,
}

/// Whether `url` is an https URL on one of [`UPLOAD_HOSTS`] (port 443).
fn is_linkedin_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.strip_suffix(":443").unwrap_or(authority);
    UPLOAD_HOSTS
        .iter()
        .any(|allowed| host.eq_ignore_ascii_case(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_linkedin_upload_urls_get_the_token() {
        assert!(is_linkedin_url(
            "https://www.linkedin.com/dms-uploads/C4E10AQ/uploaded-image/0?ca=vector_ads&m=AQ"
        ));
        assert!(is_linkedin_url(
            "https://api.linkedin.com:443/mediaUpload/x"
        ));
        assert!(!is_linkedin_url("http://www.linkedin.com/dms-uploads/x"));
        assert!(!is_linkedin_url("https://www.linkedin.com.evil.test/x"));
        assert!(!is_linkedin_url("https://evil.test/www.linkedin.com"));
        assert!(!is_linkedin_url("https://user@evil.test/"));
    }
}
