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
    let mut seen = HashSet::new();
    document
        .operations
        .iter()
        .any(|(_, operation)| selects(document, &operation.node.selection_set.node, &mut seen))
}

fn selects<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    seen: &mut HashSet<&'d Name>,
) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => matches!(field.node.name.node.as_str(), "__schema" | "__type"),
        Selection::InlineFragment(fragment) => {
            selects(document, &fragment.node.selection_set.node, seen)
        }
        Selection::FragmentSpread(spread) => {
            let name = &spread.node.fragment_name.node;
            // A fragment already looked into did not select them (or we would have stopped).
            seen.insert(name)
                && document.fragments.get(name).is_some_and(|fragment| {
                    selects(document, &fragment.node.selection_set.node, seen)
                })
        }
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
