//! The GraphQL API, in two halves: [`schema`] (the types and resolvers: what the API
//! answers) and [`serve`] (how requests arrive and answers leave: HTTP, WebSocket,
//! subscription fan-out, parsed documents, persisted queries, GraphiQL and compiled reads).
//! `serve` uses `schema`, never the reverse; neither reads the process configuration:
//! their settings ([`GraphqlConfig`]) are passed in.

pub mod schema;
pub mod serve;

pub use crate::config::GraphqlConfig;
pub use schema::{Auth, HeraldSchema, build_schema, sdl};
