//! Serving the schema: GraphQL over HTTP ([`http`]) and WebSocket ([`ws`]), shared
//! subscription executions ([`fanout`]), the parsed-document cache ([`documents`]),
//! persisted queries ([`persisted`]), GraphiQL ([`graphiql`]), the introspection switch
//! ([`introspection`]), `posts` pages answered by one SQL statement ([`compiled`]), rate
//! limits per caller ([`limits`]).

pub mod compiled;
pub mod documents;
pub mod fanout;
#[cfg(test)]
mod fuzz;
pub mod graphiql;
pub mod http;
mod introspection;
pub mod limits;
mod multipart;
pub mod persisted;
pub mod ws;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};

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
