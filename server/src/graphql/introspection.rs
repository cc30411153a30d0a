//! Refusing introspection when it is disabled: async-graphql's own switch answers
//! `__schema: null`, which tools read as an empty schema; Herald answers a validation
//! error naming the reason instead.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, ServerError};

/// Whether any operation of `document` selects `__schema` or `__type` at its root (the
/// only place they exist), through fragments included.
pub(crate) fn requested(document: &ExecutableDocument) -> bool {
    document
        .operations
        .iter()
        .any(|(_, operation)| selects(document, &operation.node.selection_set.node, 0))
}

/// Fragments nest at most this deep before we stop looking (validation rejects cycles).
const MAX_FRAGMENT_DEPTH: usize = 32;

fn selects(document: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    if depth > MAX_FRAGMENT_DEPTH {
        return false;
    }
    set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => matches!(field.node.name.node.as_str(), "__schema" | "__type"),
        Selection::InlineFragment(fragment) => {
            selects(document, &fragment.node.selection_set.node, depth + 1)
        }
        Selection::FragmentSpread(spread) => document
            .fragments
            .get(&spread.node.fragment_name.node)
            .is_some_and(|fragment| {
                selects(document, &fragment.node.selection_set.node, depth + 1)
            }),
    })
}

/// The error answered to an introspection query when introspection is disabled.
pub(crate) fn refused() -> ServerError {
    let mut error = ServerError::new("introspection is disabled on this server", None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "INTROSPECTION_DISABLED");
    error.extensions = Some(extensions);
    error
}
