//! Text length as platforms count it.

use unicode_segmentation::UnicodeSegmentation;

use crate::LengthCounting;

/// What X counts for any URL, whatever its length.
pub const X_URL_LENGTH: u64 = 23;

/// Length of `text` counted as `counting` says.
pub fn text_length(text: &str, counting: LengthCounting) -> u64 {
    match counting {
        LengthCounting::Graphemes => grapheme_count(text),
        LengthCounting::Chars => text.chars().count() as u64,
        LengthCounting::WeightedX => x_weighted_length(text),
    }
}

/// Extended grapheme clusters: what a reader sees as one character (`"👍🏽"` is 1).
pub fn grapheme_count(text: &str) -> u64 {
    text.graphemes(true).count() as u64
}

/// X's weighted length (twitter-text v3): characters in the Latin, general punctuation and
/// similar ranges count 1, others (CJK, emoji…) count 2, an emoji sequence counts 2 as a
/// whole, and every `http://` or `https://` URL counts [`X_URL_LENGTH`]. The limit of a
/// standard account is 280.
pub fn x_weighted_length(text: &str) -> u64 {
    let mut total = 0;
    let mut rest = text;
    while let Some(start) = find_url(rest) {
        total += weighted_plain(&rest[..start]);
        let url_len = rest[start..]
            .find(char::is_whitespace)
            .unwrap_or(rest.len() - start);
        total += X_URL_LENGTH;
        rest = &rest[start + url_len..];
    }
    total + weighted_plain(rest)
}

fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..]
        .find("http://")
        .into_iter()
        .chain(lower[from..].find("https://"))
        .min()
    {
        let start = from + found;
        let at_word_start = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "([{\"'".contains(c));
        let scheme_len = if lower[start..].starts_with("https://") {
            8
        } else {
            7
        };
        let has_host = text[start + scheme_len..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric());
        if at_word_start && has_host {
            return Some(start);
        }
        from = start + scheme_len;
    }
    None
}

fn weighted_plain(text: &str) -> u64 {
    text.graphemes(true)
        .map(|grapheme| {
            if is_emoji_sequence(grapheme) {
                2
            } else {
                grapheme.chars().map(char_weight).sum()
            }
        })
        .sum()
}

fn is_emoji_sequence(grapheme: &str) -> bool {
    grapheme
        .chars()
        .any(|c| matches!(u32::from(c), 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0xFE0F))
}

fn char_weight(c: char) -> u64 {
    match u32::from(c) {
        0x0000..=0x10FF | 0x2000..=0x200D | 0x2010..=0x201F | 0x2032..=0x2037 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphemes_count_what_a_reader_sees() {
        assert_eq!(grapheme_count("héllo"), 5);
        assert_eq!(grapheme_count("e\u{301}"), 1);
        assert_eq!(grapheme_count("👍🏽👨‍👩‍👧"), 2);
        assert_eq!(text_length("👍🏽", LengthCounting::Chars), 2);
    }

    #[test]
    fn x_counts_urls_as_23_and_wide_characters_as_2() {
        assert_eq!(x_weighted_length("hello"), 5);
        assert_eq!(x_weighted_length("日本語"), 6);
        assert_eq!(x_weighted_length("👨‍👩‍👧"), 2);
        assert_eq!(
            x_weighted_length("see https://example.com/a/very/long/path?with=query ok"),
            4 + 23 + 3
        );
        assert_eq!(x_weighted_length("http://a.b"), 23);
        assert_eq!(x_weighted_length("xhttp://a.b"), 11);
        assert_eq!(x_weighted_length(&"a".repeat(280)), 280);
    }
}
