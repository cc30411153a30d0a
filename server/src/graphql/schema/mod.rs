//! The schema: the root types, the resolvers (one module per concern) and the object,
//! input and enum types they return. Resolvers are thin: they translate GraphQL types and
//! call the services ([`crate::posts::PostService`] and its siblings). Nothing here knows
//! how a request arrives; that is [`super::serve`]'s.

pub mod columns;
mod connections;
pub(crate) mod cursor;
pub(crate) mod eager;
mod error;
mod loader;
mod media;
mod metrics;
mod mutation;
mod platforms;
pub(crate) mod query;
mod queue;
mod slots;
pub mod span;
mod subscription;
pub(crate) mod types;

use async_graphql::dataloader::DataLoader;
use async_graphql::{
    Context, ErrorExtensions, MergedObject, MergedSubscription, Schema, SchemaBuilder,
};

use crate::domain::actor::Actor;
use crate::error::AppError;
use crate::state::Services;
use herald_plugin_host::PluginHost;

/// Root query type.
#[derive(MergedObject, Default)]
pub struct Query(
    query::PostQuery,
    queue::QueueQuery,
    connections::ConnectionQuery,
    media::MediaQuery,
    slots::ScheduleQuery,
);

/// Root mutation type.
#[derive(MergedObject, Default)]
pub struct Mutation(
    mutation::PostMutation,
    queue::QueueMutation,
    connections::ConnectionMutation,
    metrics::MetricsMutation,
    media::MediaMutation,
    slots::ScheduleMutation,
);

/// Root subscription type.
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    subscription::PostSubscription,
    queue::QueueSubscription,
    connections::ConnectionSubscription,
);

/// Herald's executable schema.
pub type HeraldSchema = Schema<Query, Mutation, Subscription>;

/// The outcome of authenticating a request or WebSocket connection, attached to it as
/// request data; resolvers read it through [`actor`].
#[derive(Debug)]
pub struct Auth(pub Result<Actor, AppError>);

/// Deepest query accepted (GraphiQL's introspection query needs 15).
const MAX_DEPTH: usize = 16;
/// Largest query complexity accepted (introspection needs about 250).
pub(crate) const MAX_COMPLEXITY: usize = 2_000;

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
}

/// Builds the schema with the services its resolvers use, answering introspection when
/// `introspection`. Its one extension, [`span::OperationSpan`], hooks only `execute` (the
/// eager resolution of hot lists, `eager`, calls no per-field hooks; compiled reads,
/// `serve::compiled`, answer without the executor and open the same span themselves).
pub fn build_schema(services: &Services, introspection: bool) -> HeraldSchema {
    let mut builder = match &services.plugins {
        Some(plugins) => builder().data::<PluginHost>(plugins.clone()),
        None => builder(),
    };
    if !introspection {
        builder = builder.disable_introspection();
    }
    builder
        .extension(span::OperationSpan)
        .data(DataLoader::new(
            loader::TargetLoader::new(services.posts.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(
            loader::MetricsLoader::new(services.metrics.clone()),
            tokio::spawn,
        ))
        .data(services.posts.clone())
        .data(services.connections.clone())
        .data(services.connect_flows.clone())
        .data(services.metrics.clone())
        .data(services.events.clone())
        .data(services.connection_events.clone())
        .data(services.queue.clone())
        .data(services.tenant_queue.clone())
        .data(services.lateness.clone())
        .data(services.media.clone())
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql` (with `@specifiedBy`, which
/// introspection reports too).
pub fn sdl() -> String {
    builder()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
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
