//! How Meta's fakes (Facebook Pages, Threads) fetch a post's media: as Meta does, by
//! downloading the public URL Herald gives them. Images come in one `GET` (200, an
//! `image/*` type, a `Content-Length` equal to the bytes); videos in `Range` requests of
//! [`RANGE_BYTES`] (each 206 with a `Content-Range` that says which bytes of how many, a
//! `video/*` type, a `Content-Length` equal to the part). Anything else is a fetch
//! failure (Meta's 9004 / 2207052 "media could not be fetched"), so a wrong signature, an
//! expired URL, a wrong content type or broken ranges fail the test.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

/// Bytes asked for in one range request.
pub const RANGE_BYTES: usize = 64 * 1024;

/// A media file a fake fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL as the post gave it.
    pub url: String,
    /// The `Content-Type` served.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Requests it took (1 for an image, one per range for a video).
    pub requests: usize,
}

/// Where the fake reaches public hosts: `(prefix, base)` pairs, e.g.
/// `("https://media.herald.test", "http://127.0.0.1:PORT")` once the app runs.
pub type Routes = Arc<Mutex<Vec<(String, String)>>>;

/// `url` rewritten by the first route whose prefix it starts with.
fn routed(routes: &Routes, url: &str) -> String {
    let routes = routes.lock().expect("routes");
    routes
        .iter()
        .find(|(prefix, _)| url.starts_with(prefix.as_str()))
        .map(|(prefix, base)| url.replacen(prefix.as_str(), base, 1))
        .unwrap_or_else(|| url.to_owned())
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Downloads the image at `url` in one `GET`.
pub async fn image(routes: &Routes, url: &str) -> Result<Fetched, String> {
    let response = reqwest::Client::new()
        .get(routed(routes, url))
        .send()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let content_type = header(&response, "content-type").unwrap_or_default();
    if !content_type.starts_with("image/") {
        return Err(format!(
            "{url}: content type {content_type:?} is not an image"
        ));
    }
    let length = header(&response, "content-length");
    let bytes = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
    if length != Some(bytes.len().to_string()) {
        return Err(format!(
            "{url}: Content-Length {length:?} but {} bytes",
            bytes.len()
        ));
    }
    Ok(Fetched {
        url: url.to_owned(),
        content_type,
        bytes,
        requests: 1,
    })
}

/// Downloads the video at `url` in `Range` requests of [`RANGE_BYTES`].
pub async fn video(routes: &Routes, url: &str) -> Result<Fetched, String> {
    let client = reqwest::Client::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut total: Option<usize> = None;
    let mut content_type = String::new();
    let mut requests = 0;
    while total.is_none_or(|total| bytes.len() < total) {
        let start = bytes.len();
        let end = start + RANGE_BYTES - 1;
        requests += 1;
        let response = client
            .get(routed(routes, url))
            .header("range", format!("bytes={start}-{end}"))
            .send()
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        if response.status() != StatusCode::PARTIAL_CONTENT {
            return Err(format!(
                "{url}: range {start}-{end} answered HTTP {}",
                response.status()
            ));
        }
        content_type = header(&response, "content-type").unwrap_or_default();
        if !content_type.starts_with("video/") {
            return Err(format!(
                "{url}: content type {content_type:?} is not a video"
            ));
        }
        let range = header(&response, "content-range").unwrap_or_default();
        let (span, size) = range
            .strip_prefix("bytes ")
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(|| format!("{url}: Content-Range {range:?}"))?;
        let size: usize = size
            .parse()
            .ok()
            .filter(|size| *size > 0)
            .ok_or_else(|| format!("{url}: Content-Range {range:?}"))?;
        let expected_end = end.min(size - 1);
        if span != format!("{start}-{expected_end}") || total.is_some_and(|t| t != size) {
            return Err(format!(
                "{url}: asked for {start}-{end}, Content-Range says {range:?}"
            ));
        }
        total = Some(size);
        let length = header(&response, "content-length");
        let part = response.bytes().await.map_err(|e| e.to_string())?;
        if length != Some(part.len().to_string()) || part.len() != expected_end - start + 1 {
            return Err(format!(
                "{url}: range {span} came with Content-Length {length:?} and {} bytes",
                part.len()
            ));
        }
        bytes.extend_from_slice(&part);
    }
    Ok(Fetched {
        url: url.to_owned(),
        content_type,
        bytes,
        requests,
    })
}
