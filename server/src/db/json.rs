//! Readers of the JSON columns Herald writes (a post's platforms, media and media URLs, a
//! target's options). Every reader of a stored row goes through these — the GraphQL
//! types, the worker, the compiled reads' SQL mirrors them — so a value reads the same
//! everywhere; what Herald would not have written is logged and read as empty.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::post::MediaItem;

/// A JSON array of strings; other items (and a non-array) are skipped.
pub fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A target's options object as key/value pairs. Herald writes an object of strings;
/// anything else is logged and read as no options.
pub fn options(value: &serde_json::Value) -> BTreeMap<String, String> {
    BTreeMap::deserialize(value).unwrap_or_else(|error| {
        tracing::warn!(%error, "stored target options unreadable; publishing without them");
        BTreeMap::new()
    })
}

/// A post's media from its `media` column, falling back to the bare `media_urls` (posts
/// written before media details existed have only URLs).
pub fn media(media: &serde_json::Value, urls: &serde_json::Value) -> Vec<MediaItem> {
    match Vec::<MediaItem>::deserialize(media) {
        Ok(items) if !items.is_empty() => items,
        Ok(_) => strings(urls).into_iter().map(MediaItem::url).collect(),
        Err(error) => {
            tracing::warn!(%error, "stored media details unreadable; using the URLs alone");
            strings(urls).into_iter().map(MediaItem::url).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readers_take_what_herald_writes_and_skip_the_rest() {
        assert_eq!(strings(&json!(["a", 1, "b"])), ["a", "b"]);
        assert!(strings(&json!({"a": 1})).is_empty());
        assert_eq!(
            options(&json!({"k": "v"})).get("k").map(String::as_str),
            Some("v")
        );
        assert!(options(&json!({"k": 1})).is_empty());
        let urls = json!(["https://example.com/a.png"]);
        assert_eq!(media(&json!([]), &urls)[0].url, "https://example.com/a.png");
        assert_eq!(media(&json!("broken"), &urls).len(), 1);
    }
}
