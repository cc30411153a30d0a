//! The GraphQL API, in two halves: [`schema`] (the types and resolvers: what the API
//! answers) and [`serve`] (how requests arrive and answers leave: HTTP, WebSocket,
//! subscription fan-out, parsed documents, persisted queries, GraphiQL and compiled reads).
//! `serve` uses `schema`, never the reverse. Neither reads the process configuration:
//! the endpoint settings ([`crate::config::GraphqlConfig`], owned by `config`) are passed in, and
//! the schema takes only the services and whether introspection is answered.

pub mod schema;
pub mod serve;

pub use schema::{Auth, HeraldSchema, build_schema, sdl};
