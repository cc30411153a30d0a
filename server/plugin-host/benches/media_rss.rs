//! Peak memory of sending one large media file (printed, not asserted): the example plugin
//! publishes a post whose media the host fetches from a local server and uploads as a
//! `media-ref` body to a local sink; neither server holds the file (it is generated and
//! discarded in chunks), so the growth of the process's peak RSS (`VmHWM`, reset before
//! the call) is the host's. Prints that growth divided by the file size.
//!
//! ```sh
//! ./scripts/build-plugins          # prints the plugin directory (target/plugins)
//! MEDIA_MB=64 cargo bench -p herald-plugin-host --bench media_rss --profile dev
//! ```
//! `HERALD_TEST_PLUGIN_DIR` overrides where the built plugins are. Linux only (`/proc`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use futures_util::StreamExt;
use herald_plugin_host::{Credentials, HostConfig, Media, PluginHost, Post, PublishRequest};

const CHUNK: usize = 64 << 10;

fn plugin_dir() -> PathBuf {
    std::env::var_os("HERALD_TEST_PLUGIN_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("plugins")))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"))
}

/// A directory with only the example plugin (it uploads media as `media-ref` bodies).
fn bench_dir() -> PathBuf {
    let source = plugin_dir();
    let dir = std::env::temp_dir().join(format!("herald-bench-{}-media", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(error) = std::fs::create_dir_all(&dir).and_then(|()| {
        for ext in ["wasm", "toml"] {
            std::fs::copy(
                source.join(format!("example.{ext}")),
                dir.join(format!("example.{ext}")),
            )?;
        }
        Ok(())
    }) {
        eprintln!(
            "cannot use the built plugins in {} ({error}): run ./scripts/build-plugins first",
            source.display()
        );
        std::process::exit(2);
    }
    dir
}

/// A `VmRSS`/`VmHWM`-style line of `/proc/self/status`, in bytes.
fn status_bytes(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resets `VmHWM` to the current RSS.
fn reset_peak() {
    if let Err(error) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset the peak RSS ({error}); figures include the start-up peak");
    }
}

/// Serves `/media.bin` (`size` bytes generated in chunks) and the example platform's
/// `/v1/media` (counts and discards the upload) and `/v1/posts`.
async fn servers(size: u64, received: Arc<AtomicU64>) -> String {
    let media = move || async move {
        let chunk = Bytes::from(vec![0x5a_u8; CHUNK]);
        let chunks = size.div_ceil(CHUNK as u64);
        let stream = futures_util::stream::iter((0..chunks).map(move |n| {
            let left = size - n * CHUNK as u64;
            Ok::<_, std::convert::Infallible>(chunk.slice(..(left.min(CHUNK as u64) as usize)))
        }));
        (
            [
                (header::CONTENT_TYPE, "image/png".to_owned()),
                (header::CONTENT_LENGTH, size.to_string()),
            ],
            Body::from_stream(stream),
        )
    };
    let upload = move |body: Body| {
        let received = Arc::clone(&received);
        async move {
            let mut stream = body.into_data_stream();
            while let Some(Ok(chunk)) = stream.next().await {
                received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            axum::Json(serde_json::json!({"id": "m1"})).into_response()
        }
    };
    let app = Router::new()
        .route("/media.bin", get(media))
        .route("/v1/media", post(upload))
        .route(
            "/v1/posts",
            post(|| async {
                axum::Json(serde_json::json!({"id": "p1", "url": "https://example.com/p1"}))
            }),
        );
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("bind: {error}");
            std::process::exit(2);
        }
    };
    let base = match listener.local_addr() {
        Ok(addr) => format!("http://{addr}"),
        Err(error) => {
            eprintln!("local address: {error}");
            std::process::exit(2);
        }
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn request(media: Vec<Media>) -> PublishRequest {
    PublishRequest {
        post: Post {
            text: "media benchmark".into(),
            media,
            ..Post::default()
        },
        credentials: Credentials {
            access_token: "bench-token".into(),
            ..Credentials::default()
        },
        idempotency_key: "bench".into(),
    }
}

#[tokio::main]
async fn main() {
    let mb: u64 = std::env::var("MEDIA_MB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(64);
    let size = mb << 20;
    let received = Arc::new(AtomicU64::new(0));
    let base = servers(size, Arc::clone(&received)).await;
    let mut config = HostConfig::new(bench_dir());
    config.max_media_bytes = size.max(1 << 20);
    for host in ["api.example.com", "media.bench"] {
        config.host_overrides.insert(host.into(), base.clone());
    }
    let host = match PluginHost::load(config).await {
        Ok(host) if host.platform("example").is_some() => host,
        Ok(_) | Err(_) => {
            eprintln!("the example plugin did not load: run ./scripts/build-plugins first");
            std::process::exit(2);
        }
    };
    // Warm up: the runtime, the client and an instance without media.
    if let Err(error) = host.publish("example", request(Vec::new())).await {
        eprintln!("warm-up publish failed: {error}");
        std::process::exit(1);
    }
    let before = status_bytes("VmRSS:");
    reset_peak();
    let media = Media {
        url: "https://media.bench/media.bin".into(),
        mime_type: "image/png".into(),
        alt: None,
        size: None,
        ..Media::default()
    };
    if let Err(error) = host.publish("example", request(vec![media])).await {
        eprintln!("publish with media failed: {error}");
        std::process::exit(1);
    }
    let peak = status_bytes("VmHWM:");
    let uploaded = received.load(Ordering::Relaxed);
    let growth = peak.saturating_sub(before);
    println!(
        "media {mb} MiB: uploaded {uploaded} bytes; RSS before {} MiB, peak {} MiB; peak growth {:.1} MiB = {:.2} × the file",
        before >> 20,
        peak >> 20,
        growth as f64 / f64::from(1 << 20),
        growth as f64 / size as f64
    );
}
