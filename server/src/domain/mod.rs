//! Herald's rules, free of HTTP, GraphQL and SQL: who the caller is, how a requested time
//! becomes an instant, what a post's status is, what a valid post looks like, what a
//! tenant's webhook account is, which OAuth apps the operator registered, and which
//! instants a weekly posting schedule gives.

pub mod actor;
pub mod oauth_apps;
pub mod post;
pub mod schedule;
pub mod slots;
pub mod status;
pub mod target;
pub mod webhook;
