//! `POST /graphql` as the GraphQL multipart request spec has it (file uploads): the
//! `operations` part (one request, capped like a JSON body), the `map` part, then the
//! files, each spooled to an unnamed temporary file (never held in memory) and capped at
//! the media library's size. The request then runs like any other.
//!
//! A browser form may send `multipart/form-data` across sites without a preflight, so a
//! multipart request must carry a bearer token (which a form cannot set) before any of
//! its body is read: without an `Authorization` header it is refused as unsupported (415,
//! as before uploads existed), with a bad token as unauthenticated (401).

use std::collections::HashMap;

use async_graphql::UploadValue;
use axum::body::Body;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::http::{
    Endpoint, MediaType, QueriesOnly, authenticate, execute, parameters, peer, refuse,
};

/// Largest `map` part.
const MAX_MAP_BYTES: u64 = 64 * 1024;
/// Most files in one request.
const MAX_FILES: usize = 4;

/// Whether `Content-Type` is `multipart/form-data`.
pub(super) fn is_multipart(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Why a multipart body was refused.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "BAD_REQUEST",
            message: message.into(),
        }
    }
}

/// Reads the multipart request and runs it.
pub(super) async fn post(
    endpoint: &Endpoint,
    media: MediaType,
    parts: Parts,
    body: Body,
    content_type: &str,
) -> Response {
    if !parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json; multipart/form-data (file uploads) needs \
             a bearer token",
        );
    }
    let auth = authenticate(&endpoint.verifier, &parts.headers);
    if let Err(err) = &auth.0 {
        return refuse(
            StatusCode::UNAUTHORIZED,
            media,
            err.code(),
            &format!("a multipart request needs a valid bearer token: {err}"),
        );
    }
    let request = match read(endpoint, content_type, body).await {
        Ok(request) => request,
        Err(refusal) => return refuse(refusal.status, media, refusal.code, &refusal.message),
    };
    let caller = endpoint.limits.caller(
        auth.0.as_ref().ok(),
        &parts.headers,
        peer(&parts.extensions),
    );
    execute(endpoint, media, request, auth, caller, QueriesOnly(false)).await
}

fn multipart_error(err: multer::Error, endpoint: &Endpoint) -> Refusal {
    match err {
        multer::Error::FieldSizeExceeded { field_name, .. } => Refusal {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "PAYLOAD_TOO_LARGE",
            message: match field_name.as_deref() {
                Some("operations") => format!(
                    "the `operations` part exceeds {} bytes",
                    endpoint.config.max_body_bytes
                ),
                Some("map") => format!("the `map` part exceeds {MAX_MAP_BYTES} bytes"),
                _ => format!(
                    "a file exceeds {} bytes (HERALD_MEDIA_MAX_BYTES)",
                    endpoint.max_upload_bytes
                ),
            },
        },
        multer::Error::StreamSizeExceeded { .. } => Refusal {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "PAYLOAD_TOO_LARGE",
            message: "the request body is too large".into(),
        },
        other => Refusal::bad(format!("malformed multipart body: {other}")),
    }
}

async fn read(
    endpoint: &Endpoint,
    content_type: &str,
    body: Body,
) -> Result<async_graphql::Request, Refusal> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| Refusal::bad("multipart/form-data needs a boundary"))?;
    let max_operations = endpoint.config.max_body_bytes as u64;
    let max_file = endpoint.max_upload_bytes;
    let limits = multer::SizeLimit::new()
        .whole_stream(
            max_operations
                .saturating_add(MAX_MAP_BYTES)
                .saturating_add(max_file.saturating_mul(MAX_FILES as u64))
                .saturating_add(64 * 1024),
        )
        .per_field(max_file)
        .for_field("operations", max_operations)
        .for_field("map", MAX_MAP_BYTES);
    let mut multipart = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let fail = |err| multipart_error(err, endpoint);
    let mut request: Option<async_graphql::Request> = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut files = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(fail)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "operations" => {
                let bytes = field.bytes().await.map_err(fail)?;
                let value: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| Refusal::bad(format!("`operations` is not JSON: {e}")))?;
                if value.is_array() {
                    return Err(Refusal::bad(
                        "batched requests are not accepted as multipart; send one operation",
                    ));
                }
                request = Some(parameters(value).map_err(Refusal::bad)?);
            }
            "map" => {
                let bytes = field.bytes().await.map_err(fail)?;
                map = Some(serde_json::from_slice(&bytes).map_err(|e| {
                    Refusal::bad(format!(
                        "`map` must be a JSON object of file names to variable paths: {e}"
                    ))
                })?);
            }
            _ => {
                let (Some(request), Some(map)) = (request.as_mut(), map.as_mut()) else {
                    return Err(Refusal::bad(
                        "`operations` and `map` must come before the files",
                    ));
                };
                let Some(paths) = map.remove(&name) else {
                    return Err(Refusal::bad(format!(
                        "`map` does not name the file `{name}`"
                    )));
                };
                files += 1;
                if files > MAX_FILES {
                    return Err(Refusal::bad(format!(
                        "at most {MAX_FILES} files per request"
                    )));
                }
                let filename = field.file_name().unwrap_or_default().to_owned();
                let content_type = field.content_type().map(ToString::to_string);
                let spooled = spool(&mut field, endpoint).await?;
                for path in paths {
                    let copy = spooled.try_clone().map_err(|err| internal(&err))?;
                    request.set_upload(
                        &path,
                        UploadValue {
                            filename: filename.clone(),
                            content_type: content_type.clone(),
                            content: copy,
                        },
                    );
                }
            }
        }
    }
    let request = request.ok_or_else(|| Refusal::bad("the `operations` part is missing"))?;
    match map {
        None => Err(Refusal::bad("the `map` part is missing")),
        Some(map) if !map.is_empty() => {
            Err(Refusal::bad("`map` names files the request does not hold"))
        }
        Some(_) => Ok(request),
    }
}

fn internal(err: &std::io::Error) -> Refusal {
    tracing::error!(%err, "cannot spool an upload");
    Refusal {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "INTERNAL",
        message: "internal error".into(),
    }
}

/// Writes a file part to an unnamed temporary file (gone when the last handle closes);
/// the file, rewound.
async fn spool(
    field: &mut multer::Field<'_>,
    endpoint: &Endpoint,
) -> Result<std::fs::File, Refusal> {
    let file = tempfile::tempfile().map_err(|err| internal(&err))?;
    let mut file = tokio::fs::File::from_std(file);
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|err| multipart_error(err, endpoint))?;
        file.write_all(&chunk).await.map_err(|err| internal(&err))?;
    }
    file.flush().await.map_err(|err| internal(&err))?;
    let mut file = file.into_std().await;
    std::io::Seek::rewind(&mut file).map_err(|err| internal(&err))?;
    Ok(file)
}
