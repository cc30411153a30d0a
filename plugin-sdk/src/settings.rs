//! Readers for the key-value settings a plugin receives: a post's platform `options` and
//! an account's `extra` credentials. A value is trimmed, and a blank value counts as
//! absent, so every plugin treats `""` and a missing key alike.

use crate::{Credentials, Post};

/// The trimmed, non-blank value of `key` in `pairs`.
pub fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

impl Post {
    /// The post's platform option `key` (trimmed; blank counts as absent).
    pub fn option(&self, key: &str) -> Option<&str> {
        value(&self.options, key)
    }
}

impl Credentials {
    /// The account's extra credential `key` (trimmed; blank counts as absent).
    pub fn extra_value(&self, key: &str) -> Option<&str> {
        value(&self.extra, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_trimmed_and_blank_is_absent() {
        let pairs = vec![
            ("room_id".to_owned(), "  !abc:example.org ".to_owned()),
            ("spoiler_text".to_owned(), "   ".to_owned()),
        ];
        assert_eq!(value(&pairs, "room_id"), Some("!abc:example.org"));
        assert_eq!(value(&pairs, "spoiler_text"), None);
        assert_eq!(value(&pairs, "missing"), None);
        let credentials = Credentials {
            access_token: String::new(),
            refresh_token: None,
            expires_at: None,
            extra: pairs,
        };
        assert_eq!(credentials.extra_value("room_id"), Some("!abc:example.org"));
    }
}
