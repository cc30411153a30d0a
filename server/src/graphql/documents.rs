//! Parsed GraphQL documents, kept by query text. Frontends send the same few documents
//! over and over; copying a parsed document costs a fraction of parsing it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::ServerError;
use async_graphql::parser::types::ExecutableDocument;

/// Longest query text kept (longer ones are parsed every time).
const MAX_QUERY_BYTES: usize = 16 * 1024;

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
    /// a parse error is returned as it is, and not kept.
    pub fn parse<'r>(
        &self,
        request: &'r mut async_graphql::Request,
    ) -> Result<&'r ExecutableDocument, ServerError> {
        let cacheable = self.capacity > 0 && request.query.len() <= MAX_QUERY_BYTES;
        if !cacheable {
            return request.parsed_query();
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
        let document = request.parsed_query()?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
