//! Local fakes of platform APIs, built from the specs in `../shared/platform-specs/`. Each
//! is a small axum server that records what it receives so tests can assert on it.

pub mod discord;
pub mod media;
pub mod multipart;
pub mod telegram;
