//! Local fakes of platforms without a real server to test against, built from the public
//! API specs in the shared platform-specs folder.

pub mod mastodon;
