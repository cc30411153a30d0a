//! The media library's HTTP routes:
//!
//! - `PUT /media/uploads/{id}`: the bytes of an upload begun by `createMediaUpload`,
//!   streamed to the store (never held whole), with the same bearer token. `201` with the
//!   file, or `200` with the tenant's earlier file holding the same bytes; errors as
//!   GraphQL errors (`{"errors": [{message, extensions: {code, field}}]}`).
//! - `GET /media/{id}/{signature}?expires=…`: a file for whoever holds its signed URL
//!   (platforms fetch without credentials), with `Content-Type`, `Content-Length` and
//!   single byte ranges (`206`, `416`). A bad signature is `403`, an expired one `410`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::Utc;
use object_store::{GetOptions, GetRange, ObjectStore};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::signing::SignatureError;
use super::{LibraryFile, MediaLibrary, rows};
use crate::domain::actor::Actor;
use crate::error::AppError;

/// Turns a request's `Authorization` header into its caller (the API's token check).
pub type Authenticate = Arc<dyn Fn(Option<&str>) -> Result<Actor, AppError> + Send + Sync>;

#[derive(Clone)]
struct MediaState {
    library: MediaLibrary,
    authenticate: Authenticate,
}

/// The media routes over `library`, authenticating uploads with `authenticate`.
pub fn router(library: MediaLibrary, authenticate: Authenticate) -> Router {
    Router::new()
        .route("/media/uploads/{id}", put(upload))
        .route("/media/{id}/{signature}", get(download))
        .with_state(MediaState {
            library,
            authenticate,
        })
}

/// An error as the GraphQL endpoint words it, with its HTTP status.
fn refused(err: &AppError) -> Response {
    let status = match err {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::BadUserInput { .. } => StatusCode::BAD_REQUEST,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::NotConfigured { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(cause) => {
            tracing::error!(error = %cause, "internal error receiving an upload");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut extensions = json!({"code": err.code()});
    if let AppError::BadUserInput { field, .. } = err {
        extensions["field"] = json!(field);
    }
    (
        status,
        axum::Json(json!({"errors": [{"message": err.to_string(), "extensions": extensions}]})),
    )
        .into_response()
}

/// The file as JSON, with the names GraphQL gives its fields.
fn file_json(file: &LibraryFile) -> serde_json::Value {
    json!({
        "id": file.id,
        "contentType": file.content_type,
        "size": file.size,
        "width": file.width,
        "height": file.height,
        "durationMs": file.duration_ms,
        "videoCodec": file.video_codec,
        "altText": file.alt_text,
        "fileName": file.file_name,
        "sha256": file.sha256,
        "createdAt": file.created_at,
    })
}

async fn upload(
    State(state): State<MediaState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let actor = match (state.authenticate)(authorization) {
        Ok(actor) => actor,
        Err(err) => return refused(&err),
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return refused(&AppError::NotFound("upload"));
    };
    if content_length(&parts.headers).is_some_and(|length| length > state.library.config.max_bytes)
    {
        return refused(&AppError::bad_input(
            "body",
            format!(
                "the file is larger than {} bytes (HERALD_MEDIA_MAX_BYTES)",
                state.library.config.max_bytes
            ),
        ));
    }
    let tenant = actor.tenant_id.clone();
    let work = state.library.receive(&actor, id, body.into_data_stream());
    match crate::db::tenant::scope(&tenant, work).await {
        Ok(stored) => {
            let status = if stored.deduplicated {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (status, axum::Json(file_json(&stored.file))).into_response()
        }
        Err(err) => refused(&err),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The query of a signed URL.
#[derive(Deserialize)]
struct Signed {
    expires: i64,
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

async fn download(
    State(state): State<MediaState>,
    Path((id, signature)): Path<(String, String)>,
    query: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let (Ok(id), Ok(Query(signed))) = (Uuid::parse_str(&id), query) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    match state
        .library
        .urls
        .signer()
        .verify(id, &signature, signed.expires, Utc::now())
    {
        Ok(()) => {}
        Err(SignatureError::Invalid) => return plain(StatusCode::FORBIDDEN, "invalid signature"),
        Err(SignatureError::Expired) => return plain(StatusCode::GONE, "the link has expired"),
    }
    let row = match rows::find_ready_any_owner(state.library.worker_db(), id).await {
        Ok(Some(row)) => row,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "not found"),
        Err(err) => {
            tracing::error!(%err, "media lookup failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let (Some(content_type), Some(size)) = (
        row.content_type.as_deref(),
        row.byte_size.and_then(|s| u64::try_from(s).ok()),
    ) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Ranged::Full, |value| parse_range(value, size));
    let (status, start, end) = match range {
        Ranged::Full => (StatusCode::OK, 0, size),
        Ranged::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        Ranged::Unsatisfiable => {
            let mut response = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let options = GetOptions {
        range: (status == StatusCode::PARTIAL_CONTENT).then_some(GetRange::Bounded(start..end)),
        ..GetOptions::default()
    };
    let key = object_store::path::Path::from(row.storage_key.as_str());
    let result = match state.library.store.get_opts(&key, options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => {
            tracing::warn!(%id, "a media row's file is missing from the store");
            return plain(StatusCode::NOT_FOUND, "not found");
        }
        Err(err) => {
            tracing::error!(%err, %id, "media file unreadable");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let mut response = Response::new(Body::from_stream(result.into_stream()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, content_type.to_owned());
    set(header::CONTENT_LENGTH, (end - start).to_string());
    set(header::ACCEPT_RANGES, "bytes".to_owned());
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned());
    set(header::CACHE_CONTROL, "private, max-age=3600".to_owned());
    if let Some(sha256) = &row.sha256 {
        set(header::ETAG, format!("\"{}\"", super::hex(sha256)));
    }
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", end - 1),
        );
    }
    response
}

/// What a `Range` header asks of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// The whole file (no range, or one Herald may ignore: malformed, several ranges,
    /// another unit).
    Full,
    /// Bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A range that starts past the end of the file: `416`.
    Unsatisfiable,
}

/// Reads one `bytes=` range of a file of `size` bytes (RFC 9110, 14.1.2).
pub fn parse_range(value: &str, size: u64) -> Ranged {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ranged::Full;
    };
    if spec.contains(',') {
        return Ranged::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.is_empty(), number(first), number(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Partial {
                    start: size - suffix.min(size),
                    end: size - 1,
                }
            }
        }
        (false, Some(start), None) if last.is_empty() => {
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Partial {
                    start,
                    end: size - 1,
                }
            }
        }
        (false, Some(start), Some(end)) if start <= end => {
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Partial {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        _ => Ranged::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let partial = |start, end| Ranged::Partial { start, end };
        assert_eq!(parse_range("bytes=0-99", 1000), partial(0, 99));
        assert_eq!(parse_range("bytes=900-", 1000), partial(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), partial(900, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), partial(0, 999));
        assert_eq!(parse_range("bytes=990-5000", 1000), partial(990, 999));
        assert_eq!(parse_range("bytes=1000-", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse_range("bytes=1000-1001", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Ranged::Unsatisfiable);
        for ignored in [
            "bytes=5-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=-",
        ] {
            assert_eq!(parse_range(ignored, 1000), Ranged::Full, "{ignored}");
        }
    }
}
