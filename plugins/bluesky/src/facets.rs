//! Rich-text facets: where links, mentions and hashtags sit in a post's text, as UTF-8 byte
//! ranges (`app.bsky.richtext.facet`). Detection follows the Bluesky app's rules: a link is
//! an `http(s)://` URL, a mention is `@` and a domain-shaped handle, a tag is `#` and at
//! least one character that is neither a digit nor punctuation; each starts the text or
//! follows a space (links and mentions also an opening parenthesis).

/// One detected span of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// First byte (inclusive), in UTF-8.
    pub start: usize,
    /// Last byte (exclusive), in UTF-8.
    pub end: usize,
    /// What the span is.
    pub kind: SpanKind,
}

/// What a span of text refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanKind {
    /// A URL.
    Link(String),
    /// A handle, without its `@` (the span includes the `@`).
    Mention(String),
    /// A hashtag, without its `#` (the span includes the `#`).
    Tag(String),
}

/// Longest tag the app accepts, in characters.
const MAX_TAG_CHARS: usize = 64;

/// Every link, mention and tag in `text`, ordered by position.
pub fn detect(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    for (start, c) in text.char_indices() {
        let before = text[..start].chars().next_back();
        let at_word_start = before.is_none_or(char::is_whitespace);
        let after_paren = before == Some('(');
        let rest = &text[start..];
        let span = if (at_word_start || after_paren)
            && (rest.starts_with("https://") || rest.starts_with("http://"))
        {
            link(text, start)
        } else if c == '@' && (at_word_start || after_paren) {
            mention(text, start)
        } else if (c == '#' || c == '＃') && at_word_start {
            tag(text, start, c.len_utf8())
        } else {
            None
        };
        spans.extend(span);
    }
    spans
}

fn link(text: &str, start: usize) -> Option<Span> {
    let rest = &text[start..];
    let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let mut uri = &rest[..len];
    uri = uri.trim_end_matches(['.', ',', ';', ':', '!', '?']);
    if uri.ends_with(')') && !uri.contains('(') {
        uri = &uri[..uri.len() - 1];
    }
    let host = uri.split_once("://").map(|(_, host)| host)?;
    if !host.chars().next().is_some_and(char::is_alphanumeric) {
        return None;
    }
    Some(Span {
        start,
        end: start + uri.len(),
        kind: SpanKind::Link(uri.to_owned()),
    })
}

fn mention(text: &str, at: usize) -> Option<Span> {
    let rest = &text[at + 1..];
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    let handle = rest[..len].trim_end_matches(['.', '-']);
    if !is_handle(handle) {
        return None;
    }
    Some(Span {
        start: at,
        end: at + 1 + handle.len(),
        kind: SpanKind::Mention(handle.to_ascii_lowercase()),
    })
}

/// A domain-shaped handle: at least two labels of letters, digits and inner hyphens, the
/// last one starting with a letter.
pub fn is_handle(handle: &str) -> bool {
    let labels: Vec<&str> = handle.split('.').collect();
    handle.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .and_then(|tld| tld.chars().next())
            .is_some_and(|c| c.is_ascii_alphabetic())
}

/// Characters that end a tag besides whitespace (soft hyphen, word joiner, zero-width
/// spaces and joiners, combining enclosing keycap).
fn ends_tag(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{2060}'
                | '\u{200A}'
                | '\u{200B}'
                | '\u{200C}'
                | '\u{200D}'
                | '\u{20E2}'
        )
}

/// Unicode punctuation (general category P) as far as posts meet it: ASCII punctuation
/// (not symbols such as `$` or `+`) and the common quotation marks, dashes and CJK marks.
fn is_punctuation(c: char) -> bool {
    matches!(
        c,
        '!' | '"'
            | '#'
            | '%'
            | '&'
            | '\''
            | '('
            | ')'
            | '*'
            | ','
            | '-'
            | '.'
            | '/'
            | ':'
            | ';'
            | '?'
            | '@'
            | '['
            | '\\'
            | ']'
            | '_'
            | '{'
            | '}'
    ) || matches!(
        u32::from(c),
        0x00A1 | 0x00A7 | 0x00AB | 0x00B6 | 0x00B7 | 0x00BB | 0x00BF
            | 0x2010..=0x2027 | 0x2030..=0x205E | 0x3001..=0x3003 | 0x3008..=0x3011
            | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20
    )
}

fn tag(text: &str, hash: usize, hash_len: usize) -> Option<Span> {
    let rest = &text[hash + hash_len..];
    if rest.starts_with('\u{FE0F}') {
        return None;
    }
    let len = rest.find(ends_tag).unwrap_or(rest.len());
    let body = rest[..len].trim_end_matches(is_punctuation);
    let meaningful = body
        .chars()
        .any(|c| !c.is_numeric() && !is_punctuation(c) && !c.is_whitespace());
    if !meaningful || body.chars().count() > MAX_TAG_CHARS {
        return None;
    }
    Some(Span {
        start: hash,
        end: hash + hash_len + body.len(),
        kind: SpanKind::Tag(body.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<(usize, usize, SpanKind)> {
        detect(text)
            .into_iter()
            .map(|span| {
                assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
                (span.start, span.end, span.kind)
            })
            .collect()
    }

    #[test]
    fn byte_offsets_count_utf8_bytes_after_emoji_and_accents() {
        // "👋🏽 " is 9 bytes, "héllo " 7: the link starts at byte 16.
        let text = "👋🏽 héllo https://example.com/ça?x=1 @bob.test #café 🎉";
        let found = spans(text);
        assert_eq!(
            found,
            vec![
                (16, 43, SpanKind::Link("https://example.com/ça?x=1".into())),
                (44, 53, SpanKind::Mention("bob.test".into())),
                (54, 60, SpanKind::Tag("café".into())),
            ]
        );
        assert_eq!(&text[16..43], "https://example.com/ça?x=1");
        assert_eq!(&text[44..53], "@bob.test");
        assert_eq!(&text[54..60], "#café");
    }

    #[test]
    fn trailing_punctuation_is_not_part_of_a_facet() {
        let text = "see https://a.test/x. ask @carol.test, tag #rust! (https://b.test/y)";
        let kinds: Vec<SpanKind> = detect(text).into_iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            vec![
                SpanKind::Link("https://a.test/x".into()),
                SpanKind::Mention("carol.test".into()),
                SpanKind::Tag("rust".into()),
                SpanKind::Link("https://b.test/y".into()),
            ]
        );
    }

    #[test]
    fn things_that_only_look_like_facets_are_skipped() {
        assert_eq!(spans("mail me@alice.test or @alice or #123 or #"), vec![]);
        assert_eq!(
            spans("a#tag https://x.test/#frag http:// @-a.test"),
            vec![(6, 26, SpanKind::Link("https://x.test/#frag".into()))]
        );
        assert_eq!(spans(&format!("#{}", "a".repeat(65))), vec![]);
        assert_eq!(spans("#\u{FE0F}⃣ keycap"), vec![]);
    }

    #[test]
    fn tags_in_other_scripts_and_the_full_width_hash() {
        let text = "日本語 ＃東京 #2024年";
        assert_eq!(
            spans(text),
            vec![
                (10, 19, SpanKind::Tag("東京".into())),
                (20, 28, SpanKind::Tag("2024年".into())),
            ]
        );
    }

    #[test]
    fn handles_are_domain_shaped() {
        assert!(is_handle("alice.test"));
        assert!(is_handle("a-b.bsky.social"));
        assert!(!is_handle("alice"));
        assert!(!is_handle("alice.1x"));
        assert!(!is_handle("alice..test"));
        assert!(!is_handle("-alice.test"));
    }
}
