//! What a file is, read from its first bytes: its content type (never the client's word
//! for it) and, for an image, its dimensions.

/// Bytes of a file's head kept for sniffing and probing: enough for every signature
/// `infer` knows and for the headers `imagesize` reads.
pub const HEAD_BYTES: usize = 64 * 1024;

/// The content types the library accepts, as `infer` names them.
pub const ACCEPTED: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "video/mp4",
    "video/quicktime",
    "video/webm",
];

/// The accepted content type of a file starting with `head`, or `None` when its bytes
/// are not one of [`ACCEPTED`].
pub fn content_type(head: &[u8]) -> Option<&'static str> {
    let kind = infer::get(head)?;
    ACCEPTED.iter().copied().find(|t| *t == kind.mime_type())
}

/// Width and height of an image starting with `head`, when its header says so.
pub fn dimensions(content_type: &str, head: &[u8]) -> Option<(u32, u32)> {
    if !content_type.starts_with("image/") {
        return None;
    }
    let size = imagesize::blob_size(head).ok()?;
    Some((
        u32::try_from(size.width).ok()?,
        u32::try_from(size.height).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 PNG.
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x08, 0x06, 0x00, 0x00, 0x00, 0x9D,
        0x74, 0x66, 0x1A,
    ];

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(content_type(PNG), Some("image/png"));
        assert_eq!(dimensions("image/png", PNG), Some((3, 2)));
        assert_eq!(content_type(b"just some text"), None);
        assert_eq!(content_type(b"%PDF-1.7 not accepted"), None);
        assert_eq!(content_type(&[]), None);
        assert_eq!(dimensions("video/mp4", PNG), None);
    }
}
