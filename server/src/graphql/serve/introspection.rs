//! Refusing introspection when it is disabled: async-graphql's own switch answers
//! `__schema: null`, which tools read as an empty schema; Herald answers a validation
//! error naming the reason instead.

use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Name, ServerError};

/// Whether any operation of `document` selects `__schema` or `__type` at its root (the
/// only place they exist), through fragments included. Each fragment is looked into once,
/// so a document that spreads fragments many times over costs no more than its length.
pub(crate) fn requested(document: &ExecutableDocument) -> bool {
    let mut seen: HashSet<&Name> = HashSet::new();
    // An explicit stack: a chain of thousands of fragments must not exhaust the thread's.
    let mut sets: Vec<&SelectionSet> = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node)
        .collect();
    while let Some(set) = sets.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    if matches!(field.node.name.node.as_str(), "__schema" | "__type") {
                        return true;
                    }
                }
                Selection::InlineFragment(fragment) => {
                    sets.push(&fragment.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if seen.insert(name)
                        && let Some(fragment) = document.fragments.get(name)
                    {
                        sets.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    false
}

/// The error answered to an introspection query when introspection is disabled.
pub(crate) fn refused() -> ServerError {
    let mut error = ServerError::new("introspection is disabled on this server", None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "INTROSPECTION_DISABLED");
    error.extensions = Some(extensions);
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::serve::test_documents::{fragments_four_times_over, parse};

    #[test]
    fn fragments_are_looked_into_once() {
        // Looked into at every spread, F40 would take 4^40 steps.
        let query = fragments_four_times_over("{ me { userId ...F40 } }", "Me", "userId", 40);
        let document = parse(&query);
        assert!(!requested(&document));
        let nested = "{ ...A } fragment A on Query { ...B } fragment B on Query { __schema { queryType { name } } }";
        let document = parse(nested);
        assert!(requested(&document));
    }
}
