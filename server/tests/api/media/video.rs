//! A library video is probed as it streams in: duration, frame size and codec come from its
//! `moov` box (written after the media data, as cameras and most encoders do), read by
//! `media/probe.rs` without reading the file back.

use axum::http::StatusCode;
use mp4::{AvcConfig, FourCC, MediaConfig, Mp4Config, Mp4Sample, Mp4Writer, TrackConfig};
use serde_json::json;

use super::multipart;
use crate::harness::TestApp;

/// An H.264 MP4 of `frames` frames of 100 ms at `width`×`height`, its `moov` at the end.
pub fn mp4(width: u16, height: u16, frames: u32) -> Vec<u8> {
    let config = Mp4Config {
        major_brand: "isom".parse::<FourCC>().expect("brand"),
        minor_version: 512,
        compatible_brands: vec![
            "isom".parse().expect("brand"),
            "avc1".parse().expect("brand"),
        ],
        timescale: 1_000,
    };
    let mut writer =
        Mp4Writer::write_start(std::io::Cursor::new(Vec::new()), &config).expect("start");
    writer
        .add_track(&TrackConfig {
            track_type: mp4::TrackType::Video,
            timescale: 1_000,
            language: "und".into(),
            media_conf: MediaConfig::AvcConfig(AvcConfig {
                width,
                height,
                seq_param_set: vec![0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50],
                pic_param_set: vec![0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0],
            }),
        })
        .expect("track");
    for frame in 0..frames {
        writer
            .write_sample(
                1,
                &Mp4Sample {
                    start_time: u64::from(frame) * 100,
                    duration: 100,
                    rendering_offset: 0,
                    is_sync: frame == 0,
                    bytes: axum::body::Bytes::from(vec![frame as u8; 300]),
                },
            )
            .expect("sample");
    }
    writer.write_end().expect("end");
    writer.into_writer().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_video_has_its_duration_frame_size_and_codec() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let video = mp4(640, 360, 30);
    let (status, body) = multipart(&app, Some(&token), &video, "clip.mp4", "video/mp4", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"]["uploadMedia"]["id"].clone();
    let item = app
        .ok(
            &token,
            "query($id: ID!) { mediaItem(id: $id) { contentType width height durationMs videoCodec } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        item["mediaItem"],
        json!({
            "contentType": "video/mp4", "width": 640, "height": 360,
            "durationMs": 3000, "videoCodec": "h264"
        })
    );
}
