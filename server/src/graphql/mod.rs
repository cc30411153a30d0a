//! The GraphQL API: schema construction, request authentication data and the resolvers,
//! one module per concern. Resolvers are thin: they translate GraphQL types and call
//! [`crate::posts::PostService`].

mod connections;
mod cursor;
mod error;
mod loader;
mod mutation;
mod platforms;
mod query;
mod queue;
mod subscription;
mod types;

use async_graphql::dataloader::DataLoader;
use async_graphql::{
    Context, ErrorExtensions, MergedObject, MergedSubscription, Schema, SchemaBuilder,
};

use crate::app::Services;
use crate::domain::actor::Actor;
use crate::error::AppError;
use herald_plugin_host::PluginHost;

/// Root query type.
#[derive(MergedObject, Default)]
pub struct Query(
    query::PostQuery,
    queue::QueueQuery,
    connections::ConnectionQuery,
);

/// Root mutation type.
#[derive(MergedObject, Default)]
pub struct Mutation(
    mutation::PostMutation,
    queue::QueueMutation,
    connections::ConnectionMutation,
);

/// Root subscription type.
#[derive(MergedSubscription, Default)]
pub struct Subscription(subscription::PostSubscription, queue::QueueSubscription);

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
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
}

/// Builds the schema with the services its resolvers use.
pub fn build_schema(services: &Services) -> HeraldSchema {
    let builder = match &services.plugins {
        Some(plugins) => builder().data::<PluginHost>(plugins.clone()),
        None => builder(),
    };
    builder
        .data(DataLoader::new(
            loader::TargetLoader::new(services.posts.clone()),
            tokio::spawn,
        ))
        .data(services.posts.clone())
        .data(services.connections.clone())
        .data(services.events.clone())
        .data(services.queue.clone())
        .data(services.lateness.clone())
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
