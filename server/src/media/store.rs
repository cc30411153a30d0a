//! Where the files are kept (`object_store`: a local directory, an S3-compatible bucket,
//! or memory), and how an upload is written there: streamed in parts, its size capped,
//! its SHA-256 computed and its type sniffed on the way, never held whole in memory.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use super::{probe, sniff};

/// Parts uploaded at once while a file streams in (each part is at most 5 MiB, so an
/// upload holds at most this many parts in memory).
const PARTS_IN_FLIGHT: usize = 2;

/// Where media files are stored.
#[derive(Clone)]
pub enum Storage {
    /// Files under a directory of this machine.
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Storage),
    /// Process memory (tests and tools; lost at exit).
    Memory,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(dir) => f.debug_tuple("Local").field(dir).finish(),
            Self::S3(s3) => f
                .debug_struct("S3")
                .field("bucket", &s3.bucket)
                .field("endpoint", &s3.endpoint)
                .field("region", &s3.region)
                .field("path_style", &s3.path_style)
                .finish_non_exhaustive(),
            Self::Memory => f.write_str("Memory"),
        }
    }
}

/// An S3-compatible bucket and how to reach it.
#[derive(Clone)]
pub struct S3Storage {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint URL for a non-AWS service (MinIO, Garage, moto…); AWS when absent.
    pub endpoint: Option<String>,
    /// Region.
    pub region: String,
    /// Access key id (else the environment's AWS credentials).
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) rather than virtual-hosted ones.
    pub path_style: bool,
}

/// Why the store could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("media storage: {0}")]
pub struct StorageError(#[from] object_store::Error);

/// Opens `storage`.
pub fn open(storage: &Storage) -> Result<Arc<dyn ObjectStore>, StorageError> {
    Ok(match storage {
        Storage::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(source),
            })?;
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?)
        }
        Storage::S3(s3) => {
            // object_store's HTTP client takes rustls' process-wide provider: ring, unless
            // one is installed already (then that one serves).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut builder = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region)
                .with_virtual_hosted_style_request(!s3.path_style);
            if let Some(endpoint) = &s3.endpoint {
                builder = builder
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_endpoint(endpoint);
            }
            if let Some(key) = &s3.access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = &s3.secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
            Arc::new(builder.build()?)
        }
        Storage::Memory => Arc::new(object_store::memory::InMemory::new()),
    })
}

/// What an upload turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The sniffed content type.
    pub content_type: &'static str,
    /// Bytes written.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// Width and height of an image (its header) or a video (its first video track).
    pub dimensions: Option<(u32, u32)>,
    /// Duration and codec of an MP4/QuickTime video, when its `moov` box was readable.
    pub video: Option<probe::VideoInfo>,
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file is larger than the cap.
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// The bytes are not an accepted media type.
    #[error("the file is not an accepted media type ({})", sniff::ACCEPTED.join(", "))]
    Unsupported,
    /// Reading the upload failed (the client went away, the body was malformed).
    #[error("reading the upload failed: {0}")]
    Body(String),
    /// The store failed.
    #[error("media storage: {0}")]
    Store(#[from] object_store::Error),
}

/// Streams `body` to `key` in `store`: at most `max_bytes`, of an accepted type (sniffed
/// from the first bytes, before more than [`sniff::HEAD_BYTES`] are written), with its
/// SHA-256. On any error nothing is left at `key`.
pub async fn ingest<S, E>(
    store: &dyn ObjectStore,
    key: &Path,
    body: S,
    max_bytes: u64,
) -> Result<Ingested, IngestError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let upload = store.put_multipart(key).await?;
    let mut writer = WriteMultipart::new(upload);
    match write(&mut writer, body, max_bytes).await {
        Ok(mut ingested) => {
            writer.finish().await?;
            ingested.dimensions = ingested.dimensions.filter(|(w, h)| *w > 0 && *h > 0);
            Ok(ingested)
        }
        Err(err) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(%abort, key = %key, "cannot abort a refused upload");
            }
            Err(err)
        }
    }
}

async fn write<S, E>(
    writer: &mut WriteMultipart,
    body: S,
    max_bytes: u64,
) -> Result<Ingested, IngestError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut hasher = Sha256::new();
    let mut head: Vec<u8> = Vec::with_capacity(sniff::HEAD_BYTES);
    let mut sniffed: Option<&'static str> = None;
    let mut size: u64 = 0;
    let mut video = probe::VideoProbe::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| IngestError::Body(e.to_string()))?;
        size += chunk.len() as u64;
        if size > max_bytes {
            return Err(IngestError::TooLarge(max_bytes));
        }
        hasher.update(&chunk);
        video.feed(&chunk);
        if head.len() < sniff::HEAD_BYTES {
            let take = chunk.len().min(sniff::HEAD_BYTES - head.len());
            head.extend_from_slice(&chunk[..take]);
            if head.len() == sniff::HEAD_BYTES {
                sniffed = Some(sniff::content_type(&head).ok_or(IngestError::Unsupported)?);
            }
        }
        writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        writer.put(chunk);
    }
    if size == 0 {
        return Err(IngestError::Empty);
    }
    let content_type = match sniffed {
        Some(content_type) => content_type,
        None => sniff::content_type(&head).ok_or(IngestError::Unsupported)?,
    };
    let video = match content_type {
        "video/mp4" | "video/quicktime" => video.finish(),
        _ => None,
    };
    Ok(Ingested {
        content_type,
        size,
        sha256: hasher.finalize().into(),
        dimensions: sniff::dimensions(content_type, &head)
            .or_else(|| video.as_ref().and_then(|v| v.dimensions)),
        video,
    })
}

/// Deletes `key`, logging (not failing) when the store cannot.
pub async fn remove(store: &dyn ObjectStore, key: &str) {
    match store.delete(&Path::from(key)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(err) => tracing::warn!(%err, key, "cannot delete a media file"),
    }
}
