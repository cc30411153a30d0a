//! The current post's media. The host fetches each media once (within its size and type
//! limits) and hands it to the plugin in chunks, or streams it directly into a request body
//! with [`Body::MediaRef`](crate::http::Body::MediaRef).

use crate::__bindings::herald::publisher::media as host;
use crate::PublishError;

pub use host::{MediaError, MediaInfo};

/// Largest chunk asked for at once.
pub const CHUNK_BYTES: u32 = 64 * 1024;

/// Fetches the media at `index` of the post being published and describes it.
pub fn open(index: u32) -> Result<MediaInfo, MediaError> {
    host::open(index)
}

/// Reads at most `max` bytes from `offset`; an empty chunk means the end.
pub fn read(index: u32, offset: u64, max: u32) -> Result<Vec<u8>, MediaError> {
    host::read(index, offset, max)
}

/// Reads the whole media at `index` (for platforms that need it in memory, e.g. to sign it).
pub fn read_all(index: u32) -> Result<Vec<u8>, MediaError> {
    let info = open(index)?;
    let mut bytes = Vec::with_capacity(usize::try_from(info.size).unwrap_or(0));
    loop {
        let chunk = read(index, bytes.len() as u64, CHUNK_BYTES)?;
        if chunk.is_empty() {
            return Ok(bytes);
        }
        bytes.extend_from_slice(&chunk);
    }
}

impl From<MediaError> for PublishError {
    fn from(error: MediaError) -> Self {
        match error {
            MediaError::NotFound => PublishError::Permanent("media not found".into()),
            MediaError::Denied(message) => PublishError::Permanent(message),
            MediaError::TooLarge(size) => {
                PublishError::Permanent(format!("media too large ({size} bytes)"))
            }
            MediaError::UnsupportedType(mime) => {
                PublishError::Permanent(format!("unsupported media type {mime}"))
            }
            MediaError::Transport(message) => {
                PublishError::Retryable(format!("fetching media: {message}"))
            }
        }
    }
}
