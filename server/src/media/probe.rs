//! What a video is (duration, frame size, codec), read from its MP4/QuickTime `moov` box
//! while the upload streams through: the top-level boxes are followed as bytes pass, the
//! `ftyp` and `moov` boxes are kept (the `moov` up to [`MAX_MOOV_BYTES`], wherever it is:
//! at the start of a "fast start" file or after the media data), and the `mp4` crate reads
//! them once the upload ends. Nothing is read back from storage, and nothing runs outside
//! the process: `ffprobe` is not on a plain server and would parse untrusted uploads with
//! a large C codebase; the `mp4` crate is pure Rust and only sees the two boxes.
//! WebM is not probed (its files carry no `moov`): its duration stays unknown.

use std::io::Cursor;

/// Largest `moov` box kept for probing (a two-hour video's index is a few MiB).
pub const MAX_MOOV_BYTES: u64 = 32 * 1024 * 1024;

/// Largest `ftyp` box kept.
const MAX_FTYP_BYTES: u64 = 4 * 1024;

/// What a video's `moov` box says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInfo {
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Frame width and height of the first video track, when it has one.
    pub dimensions: Option<(u32, u32)>,
    /// Codec of the first video track as the file names it (`h264`, `h265`, `vp9`), when
    /// the reader knows it.
    pub codec: Option<String>,
}

/// Follows the top-level boxes of a file fed to it in order, keeping `ftyp` and `moov`.
#[derive(Debug, Default)]
pub struct VideoProbe {
    /// Bytes seen so far.
    position: u64,
    /// Where the next top-level box starts.
    next_box: u64,
    /// The header of the box starting at `next_box`, as far as it has arrived.
    header: Vec<u8>,
    /// The box being kept: its type, its bytes so far and how many are still to come.
    keeping: Option<([u8; 4], Vec<u8>, u64)>,
    ftyp: Option<Vec<u8>>,
    moov: Option<Vec<u8>>,
    /// The layout was not understood (or a box was too large): stop looking.
    lost: bool,
}

impl VideoProbe {
    /// Takes the next bytes of the file.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.lost && self.moov.is_none() {
            if let Some((kind, bytes, remaining)) = &mut self.keeping {
                let take = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                bytes.extend_from_slice(&data[..take]);
                *remaining -= take as u64;
                self.position += take as u64;
                data = &data[take..];
                if *remaining == 0 {
                    let kept = std::mem::take(bytes);
                    if kind == b"moov" {
                        self.moov = Some(kept);
                    } else {
                        self.ftyp = Some(kept);
                    }
                    self.keeping = None;
                }
                continue;
            }
            if self.position < self.next_box {
                let skip = usize::try_from(self.next_box - self.position)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.position += skip as u64;
                data = &data[skip..];
                continue;
            }
            let wanted = if self.header.len() >= 4 && self.header[..4] == [0, 0, 0, 1] {
                16
            } else {
                8
            };
            let take = (wanted - self.header.len().min(wanted)).min(data.len());
            self.header.extend_from_slice(&data[..take]);
            self.position += take as u64;
            data = &data[take..];
            if self.header.len() == 8 && self.header[..4] == [0, 0, 0, 1] {
                continue; // a 64-bit size follows
            }
            if self.header.len() == wanted {
                self.begin_box();
            }
        }
    }

    /// Reads the complete header in `self.header`: keeps the box or skips it.
    fn begin_box(&mut self) {
        let header = std::mem::take(&mut self.header);
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        let size = match size32 {
            1 => u64::from_be_bytes([
                header[8], header[9], header[10], header[11], header[12], header[13], header[14],
                header[15],
            ]),
            // "To the end of the file": only the last box may say so, and it is not kept.
            0 => {
                self.lost = true;
                return;
            }
            size => u64::from(size),
        };
        let header_len = header.len() as u64;
        if size < header_len {
            self.lost = true;
            return;
        }
        let cap = match &kind {
            b"moov" => Some(MAX_MOOV_BYTES),
            b"ftyp" => Some(MAX_FTYP_BYTES),
            _ => None,
        };
        match cap {
            Some(cap) if size > cap => self.lost = true,
            Some(_) => self.keeping = Some((kind, header, size - header_len)),
            None => self.next_box = self.position - header_len + size,
        }
    }

    /// What the kept boxes say, when the file had a readable `moov`.
    pub fn finish(self) -> Option<VideoInfo> {
        let moov = self.moov?;
        // The reader wants an `ftyp` first; a QuickTime file may have none.
        let ftyp = self.ftyp.unwrap_or_else(|| {
            let mut minimal = vec![0, 0, 0, 16];
            minimal.extend_from_slice(b"ftypqt  \0\0\0\0");
            minimal
        });
        let mut file = ftyp;
        file.extend_from_slice(&moov);
        let size = file.len() as u64;
        let reader = mp4::Mp4Reader::read_header(Cursor::new(file), size).ok()?;
        let duration_ms = u64::try_from(reader.duration().as_millis()).unwrap_or(u64::MAX);
        let mut tracks: Vec<&mp4::Mp4Track> = reader.tracks().values().collect();
        tracks.sort_by_key(|track| track.track_id());
        let video = tracks
            .into_iter()
            .find(|track| matches!(track.track_type(), Ok(mp4::TrackType::Video)));
        Some(VideoInfo {
            duration_ms,
            dimensions: video
                .map(|track| (u32::from(track.width()), u32::from(track.height())))
                .filter(|(width, height)| *width > 0 && *height > 0),
            codec: video
                .and_then(|track| track.media_type().ok())
                .map(|media| media.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box of `kind` holding `body`.
    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(body.len() + 8)
            .expect("small")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    /// A `moov` with an `mvhd` of `duration` units at `timescale` per second.
    fn moov(timescale: u32, duration: u32) -> Vec<u8> {
        let mut mvhd = vec![0u8; 4]; // version 0, flags
        mvhd.extend_from_slice(&[0; 8]); // creation, modification
        mvhd.extend_from_slice(&timescale.to_be_bytes());
        mvhd.extend_from_slice(&duration.to_be_bytes());
        mvhd.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // rate
        mvhd.extend_from_slice(&0x0100u16.to_be_bytes()); // volume
        mvhd.extend_from_slice(&[0; 10]); // reserved
        for value in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            mvhd.extend_from_slice(&value.to_be_bytes()); // matrix
        }
        mvhd.extend_from_slice(&[0; 24]); // pre-defined
        mvhd.extend_from_slice(&2u32.to_be_bytes()); // next track id
        boxed(b"moov", &boxed(b"mvhd", &mvhd))
    }

    fn probe(file: &[u8], chunk: usize) -> Option<VideoInfo> {
        let mut probe = VideoProbe::default();
        for part in file.chunks(chunk) {
            probe.feed(part);
        }
        probe.finish()
    }

    #[test]
    fn the_moov_is_found_before_or_after_the_media_data_in_any_chunking() {
        let ftyp = boxed(b"ftyp", b"isom\0\0\x02\0isomiso2");
        let mdat = boxed(b"mdat", &vec![7u8; 5_000]);
        let moov = moov(1_000, 12_345);
        let fast_start = [ftyp.clone(), moov.clone(), mdat.clone()].concat();
        let moov_last = [ftyp, mdat, moov].concat();
        for file in [&fast_start, &moov_last] {
            for chunk in [1, 3, 7, 64, 4_096, 100_000] {
                let info = probe(file, chunk).expect("probed");
                assert_eq!(info.duration_ms, 12_345, "chunk {chunk}");
                assert_eq!(info.dimensions, None);
            }
        }
    }

    #[test]
    fn garbage_and_oversized_boxes_are_not_probed() {
        assert_eq!(probe(b"not a video at all, just text", 5), None);
        let mut huge = (u32::MAX).to_be_bytes().to_vec();
        huge.extend_from_slice(b"moov");
        huge.extend_from_slice(&[0; 64]);
        assert_eq!(probe(&huge, 16), None);
        let broken = [boxed(b"ftyp", b"isom"), boxed(b"moov", b"\0\0\0\x09junk!")].concat();
        assert_eq!(probe(&broken, 8), None);
    }
}
