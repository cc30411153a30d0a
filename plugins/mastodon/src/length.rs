//! Status length as Mastodon's `StatusLengthValidator` counts it: grapheme clusters of the
//! content warning followed by the text, where every `http(s)://` URL in the text counts
//! as [`URL_LENGTH`] and a remote mention `@user@domain` counts as `@user`.

use herald_plugin_sdk::text::grapheme_count;

/// What Mastodon reserves for any URL (`configuration.statuses.characters_reserved_per_url`).
pub const URL_LENGTH: u64 = 23;

/// Length of a status with `spoiler_text` and `text`, URLs counted as `url_length` each.
pub fn status_length(spoiler_text: &str, text: &str, url_length: u64) -> u64 {
    grapheme_count(spoiler_text) + text_length(text, url_length)
}

fn text_length(text: &str, url_length: u64) -> u64 {
    let mut total = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let word_start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        total += grapheme_count(&rest[..word_start]);
        rest = &rest[word_start..];
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        total += word_length(&rest[..word_end], url_length);
        rest = &rest[word_end..];
    }
    total
}

/// One whitespace-free word: a URL (after opening punctuation) counts `url_length`, a
/// remote mention counts its local part only.
fn word_length(word: &str, url_length: u64) -> u64 {
    let body_start = word
        .find(|c: char| !"([{\"'<".contains(c))
        .unwrap_or(word.len());
    let (opening, body) = word.split_at(body_start);
    let lower = body.to_ascii_lowercase();
    let scheme = ["https://", "http://"]
        .into_iter()
        .find(|scheme| lower.starts_with(scheme));
    if let Some(scheme) = scheme
        && body[scheme.len()..]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric)
    {
        // Closing punctuation after a URL is not part of it.
        let url_end = body
            .trim_end_matches(|c: char| ".,;:!?)]}\"'>".contains(c))
            .len();
        return grapheme_count(opening) + url_length + grapheme_count(&body[url_end..]);
    }
    if let Some(mention) = body.strip_prefix('@')
        && let Some((user, domain)) = mention.split_once('@')
        && is_user_name(user)
        && domain.contains('.')
    {
        let domain_end = domain
            .find(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-'))
            .unwrap_or(domain.len());
        let domain_end = domain[..domain_end].trim_end_matches('.').len();
        return grapheme_count(opening)
            + 1
            + grapheme_count(user)
            + grapheme_count(&domain[domain_end..]);
    }
    grapheme_count(word)
}

fn is_user_name(user: &str) -> bool {
    !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_counts_graphemes() {
        assert_eq!(status_length("", "héllo wörld", URL_LENGTH), 11);
        assert_eq!(status_length("", "👍🏽 👨‍👩‍👧", URL_LENGTH), 3);
        assert_eq!(status_length("", &"a".repeat(500), URL_LENGTH), 500);
    }

    #[test]
    fn urls_count_as_reserved_length_whatever_their_size() {
        let long = format!("see https://example.com/{} now", "x".repeat(200));
        assert_eq!(status_length("", &long, URL_LENGTH), 4 + 23 + 4);
        assert_eq!(status_length("", "(http://a.b).", URL_LENGTH), 1 + 23 + 2);
        assert_eq!(status_length("", "https://", URL_LENGTH), 8);
        assert_eq!(status_length("", "xhttps://a.b", URL_LENGTH), 12);
    }

    #[test]
    fn remote_mentions_count_their_user_name_only() {
        assert_eq!(
            status_length("", "hi @alice@example.social!", URL_LENGTH),
            3 + 6 + 1
        );
        assert_eq!(status_length("", "@bob", URL_LENGTH), 4);
    }

    #[test]
    fn the_content_warning_counts_too_and_its_urls_in_full() {
        assert_eq!(status_length("CW", "text", URL_LENGTH), 6);
        assert_eq!(status_length("https://a.b/cdef", "", URL_LENGTH), 16);
    }
}
