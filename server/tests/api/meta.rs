//! Issue 16's bar, in one run: a post with two library images and one with a library
//! video, each scheduled for Instagram, Threads and a Facebook Page at once, go out exactly
//! once on each platform's fake; every fake downloads the media from Herald's signed URLs
//! itself (the video in ranges), through the real wasm plugins and the real worker.

use std::sync::Arc;
use std::time::Duration;

use herald_server::publish::PublisherRegistry;
use herald_server::publish::plugin::PluginPublisher;
use serde_json::{Value, json};

use crate::fakes::facebook::FakeFacebook;
use crate::fakes::instagram::{FakeInstagram, jpeg, mp4};
use crate::fakes::threads::FakeThreads;
use crate::harness::{MEDIA_HOST, TestApp, fast_worker, in_ms, plugin_host};

const PLATFORMS: [&str; 3] = ["instagram", "threads", "facebook"];
const CONNECT: &str = "mutation($p: String!, $c: CredentialsInput!) { connectAccount(platform: $p, credentials: $c) { externalAccountId } }";

/// Uploads `bytes` to the tenant's library; the file's id.
async fn upload(app: &TestApp, token: &str, bytes: &[u8], name: &str) -> Value {
    let (status, body) = crate::media::multipart(
        app,
        Some(token),
        bytes,
        name,
        "application/octet-stream",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["uploadMedia"]["id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_and_a_video_go_out_once_on_instagram_threads_and_a_facebook_page() {
    let instagram = FakeInstagram::start().await;
    instagram.add_user("IGAA-alice", "17841400000000001", "alice.pics", "Alice");
    let threads = FakeThreads::start().await;
    threads.add_user("THlong-alice", "27841400000000001", "alice.bakes");
    let facebook = FakeFacebook::start().await;
    facebook.add_user(
        "EAAuser-alice",
        "10158000000000001",
        &[("2001", "Alice's Bakery")],
    );
    let host = plugin_host(&[
        ("graph.instagram.com:443", instagram.base.clone()),
        ("api.instagram.com:443", instagram.base.clone()),
        ("graph.threads.net:443", threads.base.clone()),
        ("graph.facebook.com:443", facebook.base.clone()),
        ("graph-video.facebook.com:443", facebook.base.clone()),
    ])
    .await;
    let app = TestApp::spawn_with_worker_and_plugins(
        PublisherRegistry::new(),
        fast_worker(),
        host.clone(),
    )
    .await;
    let mut publishers = PublisherRegistry::new();
    let publisher = Arc::new(PluginPublisher::new(host, app.connections.clone()));
    for platform in PLATFORMS {
        publishers.register(platform, publisher.clone());
    }
    let app = app.with_worker(publishers).await;
    instagram.fetch_from(MEDIA_HOST, &app.http_url());
    threads.route_media(MEDIA_HOST, &app.http_url());
    facebook.route_media(MEDIA_HOST, &app.http_url());

    let token = app.token("alice", None, &["admin"]);
    for (platform, credentials) in [
        ("instagram", json!({"accessToken": "IGAA-alice"})),
        ("threads", json!({"accessToken": "THlong-alice"})),
        (
            "facebook",
            json!({"accessToken": "EAAuser-alice", "extra": [{"key": "page", "value": "2001"}]}),
        ),
    ] {
        app.ok(&token, CONNECT, json!({"p": platform, "c": credentials}))
            .await;
    }
    let first = upload(&app, &token, &jpeg("first"), "first.jpg").await;
    let second = upload(&app, &token, &jpeg("second"), "second.jpg").await;
    let clip_bytes = mp4(300_000);
    let video = upload(&app, &token, &clip_bytes, "clip.mp4").await;
    let targets: Vec<Value> = PLATFORMS
        .iter()
        .map(|platform| json!({"platform": platform}))
        .collect();
    let photos = app
        .create_post(
            &token,
            json!({"content": "Two loaves", "targets": targets, "scheduledAt": in_ms(300),
                   "media": [{"mediaId": first}, {"mediaId": second}]}),
        )
        .await;
    let clip = app
        .create_post(
            &token,
            json!({"content": "Kneading", "targets": targets, "scheduledAt": in_ms(300),
                   "media": [{"mediaId": video}]}),
        )
        .await;
    for post in [&photos, &clip] {
        let done = app
            .wait_for_post(
                &token,
                post["id"].as_str().expect("id"),
                Duration::from_secs(60),
                |p| p["status"] == "PUBLISHED" || p["status"] == "FAILED",
            )
            .await;
        assert_eq!(done["status"], "PUBLISHED", "{done}");
        for target in done["targets"].as_array().expect("targets") {
            assert_eq!(target["attempts"], 1, "{target}");
            assert!(target["platformUrl"].as_str().is_some(), "{target}");
        }
    }

    let mut kinds: Vec<String> = instagram
        .state()
        .published()
        .into_iter()
        .map(|media| media.media_type)
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["CAROUSEL_ALBUM", "VIDEO"],
        "one carousel and one reel"
    );

    let state = threads.state();
    let texts: Vec<&str> = state.threads.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts.contains(&"Two loaves") && texts.contains(&"Kneading"),
        "{texts:?}"
    );
    let fetched = state
        .containers
        .iter()
        .filter(|c| c.fetched.is_some())
        .count();
    assert_eq!(
        fetched, 3,
        "two images and the video, each downloaded by Threads"
    );
    drop(state);

    let state = facebook.state();
    assert_eq!(state.posts.len(), 2, "one photo post and one video post");
    let photo_post = state
        .posts
        .iter()
        .find(|post| post.message == "Two loaves")
        .expect("the photo post");
    assert_eq!(photo_post.photos.len(), 2);
    let video_post = state
        .posts
        .iter()
        .find(|post| post.message == "Kneading")
        .expect("the video post");
    assert_eq!(
        video_post.video.as_ref().map(|v| v.bytes.as_slice()),
        Some(clip_bytes.as_slice()),
        "the whole video, fetched from Herald"
    );
}

/// [`jpeg`] with the frame `width`×`height` in its start-of-frame header.
fn jpeg_of(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg(&format!("{width}x{height}"));
    let sof = bytes
        .windows(2)
        .position(|pair| pair == [0xFF, 0xC9])
        .expect("a start-of-frame marker");
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

/// Per-platform media rules at schedule time, from what the library probed: an image wider
/// than 1.91:1 and a one-second video are refused for Instagram with field-level errors
/// naming the item; a 4:5 image is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instagram_refuses_library_media_outside_its_frame_and_duration_rules() {
    let instagram = FakeInstagram::start().await;
    instagram.add_user("IGAA-alice", "17841400000000001", "alice.pics", "Alice");
    let host = plugin_host(&[
        ("graph.instagram.com:443", instagram.base.clone()),
        ("api.instagram.com:443", instagram.base.clone()),
    ])
    .await;
    let app = crate::harness::app_publishing("instagram", host).await;
    let token = app.token("alice", None, &["admin"]);
    app.ok(
        &token,
        CONNECT,
        json!({"p": "instagram", "c": {"accessToken": "IGAA-alice"}}),
    )
    .await;
    let wide = upload(&app, &token, &jpeg_of(3000, 1000), "wide.jpg").await;
    let portrait = upload(&app, &token, &jpeg_of(1080, 1350), "portrait.jpg").await;
    let short = upload(
        &app,
        &token,
        &crate::media::video::mp4(720, 1280, 10),
        "short.mp4",
    )
    .await;
    let schedule = |media: Value| {
        json!({"i": {"content": "framed", "targets": [{"platform": "instagram"}],
                     "scheduledAt": crate::harness::days_from_now(1), "media": media}})
    };
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";

    let body = app
        .gql(
            Some(&token),
            create,
            schedule(json!([{"mediaId": portrait}, {"mediaId": wide}])),
        )
        .await;
    crate::harness::assert_error(&body, "BAD_USER_INPUT", Some("media[1]"));
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("between 4:5 and 1.91:1") && message.contains("3000×1000"),
        "{message}"
    );

    let body = app
        .gql(Some(&token), create, schedule(json!([{"mediaId": short}])))
        .await;
    crate::harness::assert_error(&body, "BAD_USER_INPUT", Some("media[0]"));
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("lasts 1.0 s"), "{message}");

    let accepted = app
        .gql(
            Some(&token),
            create,
            schedule(json!([{"mediaId": portrait}])),
        )
        .await;
    assert!(accepted.get("errors").is_none(), "{accepted}");
}
