//! The GraphQL API: schema construction, request authentication data and the resolvers,
//! one module per concern. Resolvers are thin: they translate GraphQL types and call
//! [`crate::posts::PostService`].

pub mod compiled;
mod connections;
mod cursor;
pub mod documents;
mod eager;
mod error;
pub mod fanout;
pub mod graphiql;
pub mod http;
mod introspection;
mod loader;
mod metrics;
mod mutation;
pub mod persisted;
mod platforms;
mod query;
mod queue;
mod subscription;
mod types;
pub mod ws;

use async_graphql::dataloader::DataLoader;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::{
    Context, ErrorExtensions, MergedObject, MergedSubscription, Schema, SchemaBuilder,
};

use crate::config::GraphqlConfig;
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
);

/// Root mutation type.
#[derive(MergedObject, Default)]
pub struct Mutation(
    mutation::PostMutation,
    queue::QueueMutation,
    connections::ConnectionMutation,
    metrics::MetricsMutation,
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

/// Builds the schema with the services its resolvers use. It installs no extensions:
/// the eager resolution of hot lists (`eager`) does not call their per-field hooks, and
/// compiled reads (`compiled`) answer without the executor at all.
pub fn build_schema(services: &Services, config: &GraphqlConfig) -> HeraldSchema {
    let mut builder = match &services.plugins {
        Some(plugins) => builder().data::<PluginHost>(plugins.clone()),
        None => builder(),
    };
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    builder
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
        .data(services.metrics.clone())
        .data(services.events.clone())
        .data(services.queue.clone())
        .data(services.lateness.clone())
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql` (with `@specifiedBy`, which
/// introspection reports too).
pub fn sdl() -> String {
    builder()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}

/// The operation that runs, as async-graphql picks it: the one named (an anonymous
/// operation has no name to pick it by), or without a name the document's only one.
pub(crate) fn operation<'d>(
    document: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), None) => Some(&operation.node),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .iter()
            .find(|(key, _)| key.as_str() == name)
            .map(|(_, operation)| &operation.node),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
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

/// Documents the unit tests share.
#[cfg(test)]
pub(crate) mod test_documents {
    use async_graphql::parser::types::ExecutableDocument;

    /// `query`, parsed; it must be valid.
    pub(crate) fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("valid document")
    }

    /// `root` (which spreads `F{levels}`) and fragments on `on`: `F0` selects `field`,
    /// and each other spreads the one before four times, so that spread at every use
    /// `F{levels}` holds 4^levels fields.
    pub(crate) fn fragments_four_times_over(
        root: &str,
        on: &str,
        field: &str,
        levels: usize,
    ) -> String {
        let mut query = format!("{root}\nfragment F0 on {on} {{ {field} }}\n");
        for level in 1..=levels {
            let previous = format!("...F{} ", level - 1);
            query.push_str(&format!(
                "fragment F{level} on {on} {{ {} }}\n",
                previous.repeat(4)
            ));
        }
        query
    }
}
