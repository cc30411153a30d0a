//! The fake X's v2 chunked media upload: `POST /2/media/upload/initialize` (JSON
//! `InitializeMediaUploadRequest`), `POST /2/media/upload/{id}/append` (multipart with
//! `media` and `segment_index`), `POST /2/media/upload/{id}/finalize` (the segments must
//! add up to `total_bytes`; `processing_info` while processing),
//! `GET /2/media/upload?command=STATUS&media_id=…` and `POST /2/media/metadata` (alt
//! text, at most 1,000 characters).

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Shared, problem, unauthorized};
use crate::fakes::multipart;

/// Media types `InitializeMediaUploadRequest.media_type` accepts.
const MEDIA_TYPES: [&str; 15] = [
    "video/mp4",
    "video/webm",
    "video/mp2t",
    "video/quicktime",
    "text/srt",
    "text/vtt",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/png",
    "image/webp",
    "image/pjpeg",
    "image/tiff",
    "model/gltf-binary",
    "model/vnd.usdz+zip",
];

/// An upload session and, once finalized, the media.
#[derive(Debug, Clone)]
pub struct StoredMedia {
    pub id: String,
    pub owner: String,
    pub media_type: String,
    pub category: Option<String>,
    pub total_bytes: u64,
    /// Appended segments by index.
    pub segments: BTreeMap<u32, Vec<u8>>,
    pub finalized: bool,
    /// STATUS checks still answered `in_progress`.
    pub checks_left: u32,
    /// Processing has succeeded (and a STATUS check or FINALIZE said so).
    pub processed: bool,
    pub alt: Option<String>,
}

impl StoredMedia {
    /// The uploaded bytes, segments in order.
    pub fn bytes(&self) -> Vec<u8> {
        self.segments.values().flatten().copied().collect()
    }

    /// Whether `author` may attach it to a post as media `id`.
    pub fn ready_for(&self, id: &str, author: &str) -> bool {
        self.id == id && self.owner == author && self.finalized && self.processed
    }
}

/// The upload's routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/2/media/upload/initialize", post(initialize))
        .route("/2/media/upload/{id}/append", post(append))
        .route("/2/media/upload/{id}/finalize", post(finalize))
        .route("/2/media/upload", get(status))
        .route("/2/media/metadata", post(metadata))
}

fn invalid(detail: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, "Invalid Request", detail)
}

fn not_found(id: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Not Found Error",
        &format!("Could not find media with id: [{id}]."),
    )
}

async fn initialize(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().expect("fake state");
    let Some(owner) = s.caller(&headers) else {
        return unauthorized();
    };
    let Ok(Value::Object(params)) = serde_json::from_slice::<Value>(&body) else {
        return invalid("The request body is not valid JSON.");
    };
    const KNOWN: [&str; 5] = [
        "additional_owners",
        "media_category",
        "media_type",
        "shared",
        "total_bytes",
    ];
    if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return invalid(&format!("Unknown field [{unknown}]."));
    }
    let media_type = params
        .get("media_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !MEDIA_TYPES.contains(&media_type) {
        return invalid(&format!("Unsupported media_type [{media_type}]."));
    }
    let Some(total_bytes) = params.get("total_bytes").and_then(Value::as_u64) else {
        return invalid("total_bytes is required.");
    };
    let id = s.next_id();
    s.media.push(StoredMedia {
        id: id.clone(),
        owner,
        media_type: media_type.to_owned(),
        category: params
            .get("media_category")
            .and_then(Value::as_str)
            .map(str::to_owned),
        total_bytes,
        segments: BTreeMap::new(),
        finalized: false,
        checks_left: 0,
        processed: false,
        alt: None,
    });
    axum::Json(json!({
        "data": { "id": id, "media_key": format!("3_{id}"), "expires_after_secs": 86_400 }
    }))
    .into_response()
}

async fn append(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut s = state.lock().expect("fake state");
    let Some(owner) = s.caller(&headers) else {
        return unauthorized();
    };
    let Some(boundary) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart::boundary)
    else {
        return invalid("The request must be multipart/form-data or JSON.");
    };
    let parts = match multipart::parse(&body, &boundary) {
        Ok(parts) => parts,
        Err(reason) => return invalid(&format!("Malformed multipart body: {reason}")),
    };
    let segment = parts
        .iter()
        .find(|p| p.name == "segment_index")
        .and_then(|p| p.text().parse::<u32>().ok())
        .filter(|index| *index <= 999);
    let (Some(segment), Some(data)) = (segment, parts.iter().find(|p| p.name == "media")) else {
        return invalid("media and segment_index (0 to 999) are required.");
    };
    let Some(media) = s
        .media
        .iter_mut()
        .find(|m| m.id == id && m.owner == owner && !m.finalized)
    else {
        return not_found(&id);
    };
    media.segments.insert(segment, data.data.clone());
    let expires_at = chrono::Utc::now().timestamp() + 86_400;
    axum::Json(json!({ "data": { "expires_at": expires_at } })).into_response()
}

/// The `data` X answers for a finalized media.
fn described(media: &StoredMedia, state: Option<&str>) -> Value {
    let mut data = json!({
        "id": media.id,
        "media_key": format!("3_{}", media.id),
        "size": media.total_bytes,
        "expires_after_secs": 86_400,
        "image": { "image_type": media.media_type, "w": 1, "h": 1 },
    });
    if let Some(state) = state {
        data["processing_info"] = match state {
            "succeeded" => json!({ "state": state, "progress_percent": 100 }),
            _ => json!({ "state": state, "check_after_secs": 1, "progress_percent": 40 }),
        };
    }
    data
}

async fn finalize(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    let Some(owner) = s.caller(&headers) else {
        return unauthorized();
    };
    let checks = s.processing_checks;
    let Some(media) = s
        .media
        .iter_mut()
        .find(|m| m.id == id && m.owner == owner && !m.finalized)
    else {
        return not_found(&id);
    };
    let contiguous = media
        .segments
        .keys()
        .copied()
        .eq(0..media.segments.len() as u32);
    if !contiguous || media.bytes().len() as u64 != media.total_bytes {
        return invalid("Segments do not add up to provided total file size.");
    }
    media.finalized = true;
    media.checks_left = checks;
    media.processed = checks == 0;
    let state = (checks > 0).then_some("pending");
    axum::Json(json!({ "data": described(media, state) })).into_response()
}

async fn status(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("fake state");
    let Some(owner) = s.caller(&headers) else {
        return unauthorized();
    };
    if query.get("command").is_some_and(|c| c != "STATUS") {
        return invalid("command must be STATUS.");
    }
    let Some(id) = query.get("media_id") else {
        return invalid("media_id is required.");
    };
    let Some(media) = s
        .media
        .iter_mut()
        .find(|m| &m.id == id && m.owner == owner && m.finalized)
    else {
        return not_found(id);
    };
    let state = if media.checks_left > 0 {
        media.checks_left -= 1;
        "in_progress"
    } else {
        media.processed = true;
        "succeeded"
    };
    axum::Json(json!({ "data": described(media, Some(state)) })).into_response()
}

async fn metadata(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().expect("fake state");
    let Some(owner) = s.caller(&headers) else {
        return unauthorized();
    };
    let Ok(params) = serde_json::from_slice::<Value>(&body) else {
        return invalid("The request body is not valid JSON.");
    };
    let id = params["id"].as_str().unwrap_or_default().to_owned();
    let Some(alt) = params["metadata"]["alt_text"]["text"].as_str() else {
        return invalid("metadata.alt_text.text is required.");
    };
    if alt.chars().count() > 1_000 {
        return invalid("alt_text.text is longer than 1000 characters.");
    }
    let Some(media) = s.media.iter_mut().find(|m| m.id == id && m.owner == owner) else {
        return not_found(&id);
    };
    media.alt = Some(alt.to_owned());
    axum::Json(json!({ "data": { "id": id, "associated_metadata": true } })).into_response()
}
