//! The media library (`HERALD_MEDIA_…`): where files are kept (a directory, or an
//! S3-compatible bucket), how large they may be, how media URLs are signed and for how
//! long they hold, and when unreferenced files are collected.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use clap::Args;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{ConfigError, TokenKeyArgs, positive, required_url};
use crate::media::MediaConfig;
use crate::media::store::{S3Storage, Storage};

const SIGNING_KEY: &str = "HERALD_MEDIA_SIGNING_KEY (--media-signing-key)";
const S3_SECRET: &str = "HERALD_MEDIA_S3_SECRET_ACCESS_KEY (--media-s3-secret-access-key)";
const S3_SECRET_FILE: &str =
    "HERALD_MEDIA_S3_SECRET_ACCESS_KEY_FILE (--media-s3-secret-access-key-file)";

/// Media library settings.
#[derive(Debug, Clone, Args)]
pub struct MediaArgs {
    /// Directory of uploaded media files (when no S3 bucket is configured).
    #[arg(long, env = "HERALD_MEDIA_DIR", default_value = "./data/media")]
    pub media_dir: PathBuf,
    /// Largest media file accepted, in bytes.
    #[arg(long, env = "HERALD_MEDIA_MAX_BYTES", default_value_t = 104_857_600)]
    pub media_max_bytes: u64,
    /// S3-compatible bucket for media files (instead of HERALD_MEDIA_DIR).
    #[arg(long, env = "HERALD_MEDIA_S3_BUCKET")]
    pub media_s3_bucket: Option<String>,
    /// Endpoint of a non-AWS S3-compatible service, e.g. `http://127.0.0.1:9000`.
    #[arg(long, env = "HERALD_MEDIA_S3_ENDPOINT")]
    pub media_s3_endpoint: Option<String>,
    /// Region of the bucket.
    #[arg(long, env = "HERALD_MEDIA_S3_REGION", default_value = "us-east-1")]
    pub media_s3_region: String,
    /// Access key id (default: the environment's AWS credentials).
    #[arg(long, env = "HERALD_MEDIA_S3_ACCESS_KEY_ID")]
    pub media_s3_access_key_id: Option<String>,
    /// Secret access key.
    #[arg(
        long,
        env = "HERALD_MEDIA_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub media_s3_secret_access_key: Option<String>,
    /// File holding the secret access key (e.g. a container secret).
    #[arg(long, env = "HERALD_MEDIA_S3_SECRET_ACCESS_KEY_FILE")]
    pub media_s3_secret_access_key_file: Option<PathBuf>,
    /// Path-style bucket URLs (`endpoint/bucket/key`), as most self-hosted services need.
    #[arg(long, env = "HERALD_MEDIA_S3_PATH_STYLE")]
    pub media_s3_path_style: bool,
    /// Key signing media URLs, base64 of 32 random bytes (default: derived from the
    /// current token key, so rotating that key also retires issued media URLs).
    #[arg(long, env = "HERALD_MEDIA_SIGNING_KEY", hide_env_values = true)]
    pub media_signing_key: Option<String>,
    /// How long a signed media URL stays valid, in seconds (long enough for a platform to
    /// fetch and process the file).
    #[arg(long, env = "HERALD_MEDIA_URL_TTL_SECS", default_value_t = 86_400)]
    pub media_url_ttl_secs: u64,
    /// How long a `createMediaUpload` URL accepts the file, in seconds.
    #[arg(long, env = "HERALD_MEDIA_UPLOAD_TTL_SECS", default_value_t = 3_600)]
    pub media_upload_ttl_secs: u64,
    /// Delete uploaded files no post uses once they are this many hours old (0: never).
    #[arg(long, env = "HERALD_MEDIA_GC_AFTER_HOURS", default_value_t = 168)]
    pub media_gc_after_hours: u64,
    /// Time between two media garbage collections, in seconds.
    #[arg(long, env = "HERALD_MEDIA_GC_INTERVAL_SECS", default_value_t = 3_600)]
    pub media_gc_interval_secs: u64,
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl MediaArgs {
    /// The validated settings; signed URLs start with `public_url` (`HERALD_PUBLIC_URL`).
    pub fn config(
        &self,
        public_url: Option<String>,
        token_key: &TokenKeyArgs,
    ) -> Result<MediaConfig, ConfigError> {
        let storage = match non_empty(self.media_s3_bucket.as_deref()) {
            Some(bucket) => Storage::S3(self.s3(bucket)?),
            None => Storage::Local(self.media_dir.clone()),
        };
        let signing_key = match non_empty(self.media_signing_key.as_deref()) {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| {
                    ConfigError::new(SIGNING_KEY, "must be base64 of exactly 32 bytes")
                })?,
            None => derive(&token_key.current_key()?),
        };
        Ok(MediaConfig {
            storage,
            max_bytes: positive(
                "HERALD_MEDIA_MAX_BYTES (--media-max-bytes)",
                self.media_max_bytes,
            )?,
            signing_key,
            url_ttl: Duration::from_secs(positive(
                "HERALD_MEDIA_URL_TTL_SECS (--media-url-ttl-secs)",
                self.media_url_ttl_secs,
            )?),
            upload_ttl: Duration::from_secs(positive(
                "HERALD_MEDIA_UPLOAD_TTL_SECS (--media-upload-ttl-secs)",
                self.media_upload_ttl_secs,
            )?),
            gc_after: (self.media_gc_after_hours > 0)
                .then(|| Duration::from_secs(self.media_gc_after_hours.saturating_mul(3_600))),
            gc_interval: Duration::from_secs(positive(
                "HERALD_MEDIA_GC_INTERVAL_SECS (--media-gc-interval-secs)",
                self.media_gc_interval_secs,
            )?),
            public_url,
        })
    }

    fn s3(&self, bucket: String) -> Result<S3Storage, ConfigError> {
        let endpoint = non_empty(self.media_s3_endpoint.as_deref())
            .map(|url| {
                required_url(
                    "HERALD_MEDIA_S3_ENDPOINT (--media-s3-endpoint)",
                    Some(&url),
                    &["http", "https"],
                )
            })
            .transpose()?;
        let secret = match (
            non_empty(self.media_s3_secret_access_key.as_deref()),
            &self.media_s3_secret_access_key_file,
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    S3_SECRET,
                    "set either it or HERALD_MEDIA_S3_SECRET_ACCESS_KEY_FILE, not both",
                ));
            }
            (Some(secret), None) => Some(secret),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        ConfigError::new(
                            S3_SECRET_FILE,
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let access_key_id = non_empty(self.media_s3_access_key_id.as_deref());
        if access_key_id.is_some() != secret.is_some() {
            return Err(ConfigError::new(
                "HERALD_MEDIA_S3_ACCESS_KEY_ID (--media-s3-access-key-id)",
                "set it together with HERALD_MEDIA_S3_SECRET_ACCESS_KEY (or its _FILE), or \
                 neither",
            ));
        }
        Ok(S3Storage {
            bucket,
            endpoint,
            region: self.media_s3_region.trim().to_owned(),
            access_key_id,
            secret_access_key: secret,
            path_style: self.media_s3_path_style,
        })
    }
}

/// The media URL key derived from the token key: HMAC-SHA256 under a fixed label, so it
/// reveals nothing of the token key and differs from every other use of it.
fn derive(token_key: &[u8; 32]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(token_key);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
    mac.update(b"herald media URL signing key v1");
    mac.finalize().into_bytes().into()
}
