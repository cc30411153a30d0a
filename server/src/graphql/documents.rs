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
    entries: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
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
        let cached = self
            .entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(&request.query).cloned());
        if let Some(document) = cached {
            request.set_parsed_query(document);
            return request.parsed_query();
        }
        let query = request.query.clone();
        let document = request.parsed_query()?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(query, document.clone());
        }
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_parsed_once_and_errors_are_not_kept() {
        let cache = DocumentCache::new(2);
        let mut first = async_graphql::Request::new("{ posts { edges { cursor } } }");
        let parsed = cache.parse(&mut first).expect("parses").clone();
        let mut again = async_graphql::Request::new("{ posts { edges { cursor } } }");
        assert_eq!(
            format!("{:?}", cache.parse(&mut again).expect("cached")),
            format!("{parsed:?}")
        );
        assert_eq!(cache.entries.lock().expect("lock").len(), 1);

        let mut broken = async_graphql::Request::new("{ posts { ");
        assert!(cache.parse(&mut broken).is_err());
        assert_eq!(cache.entries.lock().expect("lock").len(), 1);

        for query in ["{ a }", "{ b }"] {
            cache
                .parse(&mut async_graphql::Request::new(query))
                .expect("parses");
        }
        assert!(cache.entries.lock().expect("lock").len() <= 2);
    }
}
