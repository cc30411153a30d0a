//! Where a post's media live in tests: `https://media.test/<name>` routed here, serving
//! small but real images.

use std::net::SocketAddr;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// A 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The bytes served for `name`: the PNG with the name appended after its end, so each
/// image is distinct and still a valid PNG.
pub fn image(name: &str) -> Vec<u8> {
    let mut bytes = PNG.to_vec();
    bytes.extend_from_slice(name.as_bytes());
    bytes
}

/// The media host (`media.test`).
pub struct MediaHost {
    /// Where it listens.
    pub addr: SocketAddr,
}

async fn serve(Path(name): Path<String>) -> Response {
    if name.ends_with(".png") {
        ([(header::CONTENT_TYPE, "image/png")], image(&name)).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

impl MediaHost {
    /// Starts it on a loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = axum::Router::new().route("/{name}", get(serve));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        Self { addr }
    }

    /// The base URL for `HostConfig.host_overrides["media.test:443"]`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The public URL of image `name` (e.g. `cat.png`).
    pub fn url(name: &str) -> String {
        format!("https://media.test/{name}")
    }
}
