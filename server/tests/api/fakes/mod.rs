//! Local fakes of platform APIs without a real server to test against, built from the
//! public specs in `../shared/platform-specs/`. Each is a small axum server that records
//! what it receives so tests can assert on it.

pub mod discord;
pub mod mastodon;
pub mod media;
pub mod multipart;
pub mod telegram;
