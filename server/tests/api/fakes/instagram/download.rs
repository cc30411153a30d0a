//! How the fake downloads media as Meta does: from the public `https://` URL the plugin
//! gave (rewritten to where the test serves it), checking status, type and length, and
//! video in `Range` requests.

use super::{RANGE_BYTES, Shared};

/// One download the fake made.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The URL as the plugin sent it.
    pub url: String,
    /// The `Range` asked for.
    pub range: Option<String>,
    pub status: u16,
    pub content_type: Option<String>,
    pub content_length: Option<String>,
    pub content_range: Option<String>,
}

/// Where the fake really fetches `url`: `https://` only, rewritten by `media_hosts`.
fn fetch_url(url: &str, media_hosts: &[(String, String)]) -> Result<String, String> {
    if !url.starts_with("https://") {
        return Err("media URLs must be public https:// URLs".into());
    }
    Ok(media_hosts
        .iter()
        .find(|(prefix, _)| url.starts_with(prefix.as_str()))
        .map_or_else(
            || url.to_owned(),
            |(prefix, to)| url.replacen(prefix.as_str(), to, 1),
        ))
}

fn header_text(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Downloads an image as Meta does: one GET, 200, a JPEG, a correct `Content-Length`.
pub(super) async fn download_image(
    state: &Shared,
    url: &str,
    media_hosts: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let target = fetch_url(url, media_hosts)?;
    let response = reqwest::get(&target)
        .await
        .map_err(|error| format!("GET failed: {error}"))?;
    let status = response.status().as_u16();
    let content_type = header_text(response.headers(), "content-type");
    let content_length = header_text(response.headers(), "content-length");
    state.lock().expect("fake state").fetches.push(Fetch {
        url: url.to_owned(),
        range: None,
        status,
        content_type: content_type.clone(),
        content_length: content_length.clone(),
        content_range: None,
    });
    let body = response
        .bytes()
        .await
        .map_err(|error| format!("body: {error}"))?;
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    if content_type.as_deref() != Some("image/jpeg") {
        return Err(format!("Content-Type {content_type:?}, not image/jpeg"));
    }
    if content_length.as_deref() != Some(body.len().to_string().as_str()) {
        return Err(format!(
            "Content-Length {content_length:?} for {} bytes",
            body.len()
        ));
    }
    Ok(body.to_vec())
}

/// Downloads a video as Meta does: `Range` requests of [`RANGE_BYTES`], each a 206 with a
/// video type, a `Content-Range` naming the part and the total, and the part's length.
pub(super) async fn download_video(
    state: &Shared,
    url: &str,
    media_hosts: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let target = fetch_url(url, media_hosts)?;
    let client = reqwest::Client::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut total: Option<usize> = None;
    while total.is_none_or(|total| bytes.len() < total) {
        let range = format!("bytes={}-{}", bytes.len(), bytes.len() + RANGE_BYTES - 1);
        let response = client
            .get(&target)
            .header("range", &range)
            .send()
            .await
            .map_err(|error| format!("GET failed: {error}"))?;
        let status = response.status().as_u16();
        let content_type = header_text(response.headers(), "content-type");
        let content_length = header_text(response.headers(), "content-length");
        let content_range = header_text(response.headers(), "content-range");
        state.lock().expect("fake state").fetches.push(Fetch {
            url: url.to_owned(),
            range: Some(range.clone()),
            status,
            content_type: content_type.clone(),
            content_length: content_length.clone(),
            content_range: content_range.clone(),
        });
        let part = response
            .bytes()
            .await
            .map_err(|error| format!("body: {error}"))?;
        if status != 206 {
            return Err(format!("HTTP {status} to {range}"));
        }
        if !matches!(
            content_type.as_deref(),
            Some("video/mp4" | "video/quicktime")
        ) {
            return Err(format!("Content-Type {content_type:?}, not a video"));
        }
        if content_length.as_deref() != Some(part.len().to_string().as_str()) {
            return Err(format!(
                "Content-Length {content_length:?} for a {}-byte part",
                part.len()
            ));
        }
        let expected_start = format!("bytes {}-{}/", bytes.len(), bytes.len() + part.len() - 1);
        let Some(size) = content_range
            .as_deref()
            .and_then(|r| r.strip_prefix(&expected_start))
            .and_then(|size| size.parse::<usize>().ok())
        else {
            return Err(format!("Content-Range {content_range:?} for {range}"));
        };
        if part.is_empty() || total.is_some_and(|total| total != size) {
            return Err(format!("inconsistent parts at {range}"));
        }
        total = Some(size);
        bytes.extend_from_slice(&part);
    }
    Ok(bytes)
}
