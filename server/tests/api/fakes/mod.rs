//! Local fakes of platform APIs without a real server to test against, built from the
//! public specs in `../shared/platform-specs/`. Each is a small axum server that records
//! what it receives so tests can assert on it.

pub mod discord;
pub mod facebook;
pub mod instagram;
pub mod linkedin;
pub mod mastodon;
pub mod media;
pub mod meta_fetch;
pub mod multipart;
pub mod oauth;
pub mod telegram;
pub mod threads;
pub mod x;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;

/// An answer whose headers go out and whose body breaks off: the platform did the work,
/// the client never learns it (a lost answer).
pub fn lost_answer() -> Response {
    let broken = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection lost",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(broken))
        .expect("response")
}
