//! Parsed GraphQL documents, kept by query text. Frontends send the same few documents
//! over and over; copying a parsed document costs a fraction of parsing it again.
//!
//! A document whose fragments expand to more fields than any query may have is refused
//! here, in one pass over each fragment: async-graphql's validation spreads a fragment at
//! every use, so a kilobyte of fragments nesting fragments four times over would keep a
//! CPU busy for minutes before the complexity limit refused it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Name, ServerError};

/// Longest query text kept (longer ones are parsed every time).
const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Most fields a document may expand to, fragments spread at every use. Each field counts
/// at least 1 towards the complexity limit, so this refuses nothing that limit lets run.
const MAX_EXPANDED_FIELDS: u64 = 10 * crate::graphql::schema::MAX_COMPLEXITY as u64;

/// A bounded cache of parsed documents, shared by the HTTP and WebSocket endpoints.
#[derive(Clone)]
pub struct DocumentCache {
    entries: Arc<Mutex<HashMap<String, Arc<ExecutableDocument>>>>,
    capacity: usize,
}

impl DocumentCache {
    /// A cache of at most `capacity` documents; when full it starts over (documents in
    /// use come back at once, one-off documents do not pile up).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Arc::default(),
            capacity,
        }
    }

    /// `request`'s parsed document, taken from the cache when its text was seen before;
    /// a parse error is returned as it is, and not kept; so is a document that expands to
    /// too many fields (`GRAPHQL_VALIDATION_FAILED`).
    pub fn parse<'r>(
        &self,
        request: &'r mut async_graphql::Request,
    ) -> Result<&'r ExecutableDocument, ServerError> {
        let cacheable = self.capacity > 0 && request.query.len() <= MAX_QUERY_BYTES;
        if !cacheable {
            return checked(request.parsed_query()?);
        }
        // Only the `Arc` is cloned under the lock; the document is copied after it.
        let cached = self
            .entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(&request.query).cloned());
        if let Some(document) = cached {
            request.set_parsed_query(ExecutableDocument::clone(&document));
            return request.parsed_query();
        }
        let query = request.query.clone();
        let document = checked(request.parsed_query()?)?;
        let shared = Arc::new(document.clone());
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(query, shared);
        }
        Ok(document)
    }
}

/// `document`, unless it expands to more than [`MAX_EXPANDED_FIELDS`].
fn checked(document: &ExecutableDocument) -> Result<&ExecutableDocument, ServerError> {
    let fragments = fragment_fields(document);
    let mut fields: u64 = 0;
    for (_, operation) in document.operations.iter() {
        let count = fields_of(&operation.node.selection_set.node, &fragments);
        fields = fields.saturating_add(count);
    }
    if fields <= MAX_EXPANDED_FIELDS {
        return Ok(document);
    }
    // async-graphql's own words for a query over the complexity limit.
    let mut error = ServerError::new("Query is too complex.", None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "GRAPHQL_VALIDATION_FAILED");
    error.extensions = Some(extensions);
    Err(error)
}

/// The selection sets within `set`, `set` included, at any depth (fragment spreads not
/// followed), visited with an explicit stack rather than by recursion.
fn nested(set: &SelectionSet) -> impl Iterator<Item = &SelectionSet> {
    let mut sets = vec![set];
    std::iter::from_fn(move || {
        let set = sets.pop()?;
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => sets.push(&field.node.selection_set.node),
                Selection::InlineFragment(fragment) => {
                    sets.push(&fragment.node.selection_set.node);
                }
                Selection::FragmentSpread(_) => {}
            }
        }
        Some(set)
    })
}

/// The fields of `set` with each fragment spread counted as `fragments` says (nothing for
/// a fragment it does not know).
fn fields_of<'d>(set: &'d SelectionSet, fragments: &HashMap<&'d Name, u64>) -> u64 {
    let mut fields: u64 = 0;
    for set in nested(set) {
        for item in &set.items {
            let count = match &item.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(_) => 0,
                Selection::FragmentSpread(spread) => fragments
                    .get(&spread.node.fragment_name.node)
                    .copied()
                    .unwrap_or(0),
            };
            fields = fields.saturating_add(count);
        }
    }
    fields
}

/// Each fragment's fields with the fragments it spreads expanded, computed once per
/// fragment, the fragments it spreads first. The walk keeps its own stack: a chain of
/// thousands of fragments each spreading the next must not exhaust the thread's. A
/// fragment in a cycle counts as nothing where it spreads itself (validation refuses it).
fn fragment_fields(document: &ExecutableDocument) -> HashMap<&Name, u64> {
    let mut counts: HashMap<&Name, u64> = HashMap::new();
    let mut entered: HashSet<&Name> = HashSet::new();
    for root in document.fragments.keys() {
        // (fragment, whether the fragments it spreads are counted).
        let mut stack = vec![(root, false)];
        while let Some((name, spreads_counted)) = stack.pop() {
            let Some(fragment) = document.fragments.get(name) else {
                continue;
            };
            let set = &fragment.node.selection_set.node;
            if spreads_counted {
                let count = fields_of(set, &counts);
                counts.insert(name, count);
                continue;
            }
            if !entered.insert(name) {
                continue;
            }
            stack.push((name, true));
            for set in nested(set) {
                for item in &set.items {
                    if let Selection::FragmentSpread(spread) = &item.node {
                        let spread = &spread.node.fragment_name.node;
                        if !entered.contains(spread) {
                            stack.push((spread, false));
                        }
                    }
                }
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::serve::test_documents::fragments_four_times_over;

    #[test]
    fn known_texts_are_served_from_the_cache_and_errors_are_not_kept() {
        const QUERY: &str = "{ posts { edges { cursor } } }";
        let cache = DocumentCache::new(2);
        cache
            .parse(&mut async_graphql::Request::new(QUERY))
            .expect("parses");
        assert_eq!(cache.entries.lock().expect("lock").len(), 1);
        // Swap the cached document for another one: a hit must return it, not a parse.
        let other = async_graphql::parser::parse_query("{ other }").expect("parses");
        cache
            .entries
            .lock()
            .expect("lock")
            .insert(QUERY.to_owned(), Arc::new(other));
        let mut again = async_graphql::Request::new(QUERY);
        let served = format!("{:?}", cache.parse(&mut again).expect("cached"));
        assert!(served.contains("other"), "{served}");

        let mut broken = async_graphql::Request::new("{ posts { ");
        assert!(cache.parse(&mut broken).is_err());
        assert_eq!(cache.entries.lock().expect("lock").len(), 1);

        // Full at two: the third new text starts the cache over.
        for query in ["{ a }", "{ b }"] {
            cache
                .parse(&mut async_graphql::Request::new(query))
                .expect("parses");
        }
        assert_eq!(cache.entries.lock().expect("lock").len(), 1);
    }

    #[test]
    fn documents_that_expand_too_far_are_refused_at_once() {
        // Spread at every use, F30 would be 4^30 fields.
        let query =
            fragments_four_times_over("{ posts { edges { node { ...F30 } } } }", "Post", "id", 30);
        for capacity in [0, 10] {
            let cache = DocumentCache::new(capacity);
            let error = cache
                .parse(&mut async_graphql::Request::new(query.clone()))
                .expect_err("refused");
            assert_eq!(error.message, "Query is too complex.");
        }
        // Four levels (256 fields) are fine.
        let small =
            fragments_four_times_over("{ posts { edges { node { ...F4 } } } }", "Post", "id", 4);
        DocumentCache::new(10)
            .parse(&mut async_graphql::Request::new(small))
            .expect("parses");
    }
}
