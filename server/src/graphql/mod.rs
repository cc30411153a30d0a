//! The GraphQL API: schema construction, request authentication data and the resolvers,
//! one module per concern. Resolvers are thin: they translate GraphQL types and call
//! [`crate::posts::PostService`].

mod cursor;
mod error;
mod loader;
mod mutation;
mod platforms;
mod query;
mod subscription;
mod types;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ErrorExtensions, Schema, SchemaBuilder};

use crate::domain::actor::Actor;
use crate::error::AppError;
use crate::events::EventBus;
use crate::posts::PostService;
use herald_plugin_host::PluginHost;

pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

/// Herald's executable schema.
pub type HeraldSchema = Schema<Query, Mutation, Subscription>;

/// The outcome of authenticating a request or WebSocket connection, attached to it as
/// request data; resolvers read it through [`actor`].
#[derive(Debug)]
pub struct Auth(pub Result<Actor, AppError>);

/// Deepest query accepted (GraphiQL's introspection query needs 15).
const MAX_DEPTH: usize = 16;
/// Largest query complexity accepted (introspection needs about 250).
const MAX_COMPLEXITY: usize = 2_000;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// Builds the schema with the services its resolvers use.
pub fn build_schema(posts: PostService, events: EventBus) -> HeraldSchema {
    build_schema_with_plugins(posts, events, None)
}

/// [`build_schema`], with the loaded publisher plugins when there are any.
pub fn build_schema_with_plugins(
    posts: PostService,
    events: EventBus,
    plugins: Option<PluginHost>,
) -> HeraldSchema {
    let builder = match plugins {
        Some(plugins) => builder().data(plugins),
        None => builder(),
    };
    builder
        .data(DataLoader::new(
            loader::TargetLoader::new(posts.clone()),
            tokio::spawn,
        ))
        .data(posts)
        .data(events)
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// The authenticated caller, or `UNAUTHENTICATED`.
pub(crate) fn actor<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Actor> {
    match ctx.data_opt::<Auth>() {
        Some(Auth(Ok(actor))) => Ok(actor),
        Some(Auth(Err(err))) => Err(err.extend()),
        None => Err(AppError::Unauthenticated("missing bearer token".into()).extend()),
    }
}

/// Parses a GraphQL `ID` as a UUID, naming `field` when it is malformed.
pub(crate) fn parse_id(id: &async_graphql::ID, field: &str) -> async_graphql::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(id.as_str()).map_err(|_| {
        AppError::bad_input(field, format!("`{}` is not a valid id", id.as_str())).extend()
    })
}
