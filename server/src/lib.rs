//! Herald's server: the GraphQL API over Postgres, and (as they land) the publishing
//! queue, its workers and the plugin host.
//!
//! The binary in `main.rs` only parses the command line; everything it runs lives here so
//! integration tests can build the same application without a process.

pub mod app;
pub mod auth;
pub mod config;
pub mod connections;
pub mod db;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod health;
pub mod keys;
pub mod media;
pub mod metrics;
pub mod oauth;
pub mod plugins;
pub mod posts;
pub mod publish;
pub mod queue;
pub mod secrets;
pub mod state;
pub mod tenant_queue;
pub mod token_refresh;
pub mod worker;
