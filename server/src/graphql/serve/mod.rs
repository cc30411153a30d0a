//! Serving the schema: GraphQL over HTTP ([`http`]) and WebSocket ([`ws`]), shared
//! subscription executions ([`fanout`]), the parsed-document cache ([`documents`]),
//! persisted queries ([`persisted`]), GraphiQL ([`graphiql`]), the introspection switch
//! ([`introspection`]), `posts` pages answered by one SQL statement ([`compiled`]).

pub mod compiled;
pub mod documents;
pub mod fanout;
pub mod graphiql;
pub mod http;
mod introspection;
pub mod persisted;
pub mod ws;

use std::time::Duration;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};

/// How the GraphQL endpoints behave (HTTP and WebSocket).
#[derive(Debug, Clone)]
pub struct GraphqlConfig {
    /// Whether `__schema`/`__type` introspection is answered.
    pub introspection: bool,
    /// Whether a POST body may be an array of requests.
    pub batching: bool,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a query or mutation may run.
    pub request_timeout: Duration,
    /// How long a WebSocket may stay open without a `connection_init`.
    pub ws_init_timeout: Duration,
    /// Time between the server's keep-alive `ping` messages.
    pub ws_ping_interval: Duration,
    /// How long the server waits for a `pong` before closing the connection.
    pub ws_pong_timeout: Duration,
    /// How long a persisted query stays registered after its last registration.
    pub apq_ttl: Duration,
    /// Whether `posts` pages are answered by one compiled SQL statement ([`compiled`]).
    pub compiled_reads: bool,
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        Self {
            introspection: true,
            batching: false,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            ws_init_timeout: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(15),
            ws_pong_timeout: Duration::from_secs(10),
            apq_ttl: Duration::from_secs(86_400),
            compiled_reads: true,
        }
    }
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
