//! Plain text → Matrix HTML (`org.matrix.custom.html`): links become anchors and a small,
//! common subset of Markdown (`**bold**`, `*em*`/`_em_`, `` `code` ``, `[label](url)`)
//! becomes tags. Everything else is escaped, so the HTML never carries markup the author
//! did not write as such.

/// The HTML of `text`, or `None` when it has no link or formatting (plain `body` suffices).
pub fn to_html(text: &str) -> Option<String> {
    let mut html = String::with_capacity(text.len() + 32);
    let mut formatted = false;
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            html.push_str("<br/>");
            formatted = true;
        }
        formatted |= inline(line, &mut html);
    }
    formatted.then_some(html)
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
pub fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// Renders one line; returns whether it produced any tag.
fn inline(line: &str, out: &mut String) -> bool {
    let mut formatted = false;
    let mut rest = line;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let at_word_start = previous.is_none_or(|p| !p.is_alphanumeric());
        if let Some((consumed, html)) = token(rest, at_word_start) {
            out.push_str(&html);
            formatted = true;
            previous = rest[..consumed].chars().next_back();
            rest = &rest[consumed..];
            continue;
        }
        escape(&rest[..c.len_utf8()], out);
        previous = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    formatted
}

/// A formatting token at the start of `rest`: bytes consumed and its HTML.
fn token(rest: &str, at_word_start: bool) -> Option<(usize, String)> {
    if let Some(inner) = rest.strip_prefix('`') {
        let end = inner.find('`').filter(|end| *end > 0)?;
        let mut html = String::from("<code>");
        escape(&inner[..end], &mut html);
        html.push_str("</code>");
        return Some((end + 2, html));
    }
    if let Some(inner) = rest.strip_prefix("**") {
        let end = inner.find("**").filter(|end| *end > 0)?;
        let mut html = String::from("<strong>");
        inline(&inner[..end], &mut html);
        html.push_str("</strong>");
        return Some((end + 4, html));
    }
    if rest.starts_with('[') {
        return markdown_link(rest);
    }
    if at_word_start {
        if let Some(url_len) = url_length(rest) {
            let url = &rest[..url_len];
            let mut html = String::from("<a href=\"");
            escape(url, &mut html);
            html.push_str("\">");
            escape(url, &mut html);
            html.push_str("</a>");
            return Some((url_len, html));
        }
        for marker in ['*', '_'] {
            if let Some(found) = emphasis(rest, marker) {
                return Some(found);
            }
        }
    }
    None
}

/// `[label](https://…)`.
fn markdown_link(rest: &str) -> Option<(usize, String)> {
    let close = rest.find("](")?;
    let label = &rest[1..close];
    if label.is_empty() || label.contains('[') {
        return None;
    }
    let after = &rest[close + 2..];
    let url_end = after.find(')')?;
    let url = &after[..url_end];
    if url_length(url) != Some(url.len()) {
        return None;
    }
    let mut html = String::from("<a href=\"");
    escape(url, &mut html);
    html.push_str("\">");
    escape(label, &mut html);
    html.push_str("</a>");
    Some((close + 2 + url_end + 1, html))
}

/// `*em*` or `_em_`: the marker, a non-space start, the same marker after a non-space and
/// not followed by a letter or digit.
fn emphasis(rest: &str, marker: char) -> Option<(usize, String)> {
    let inner = rest.strip_prefix(marker)?;
    if inner.starts_with(char::is_whitespace) || inner.starts_with(marker) {
        return None;
    }
    let end = inner.find(marker).filter(|end| *end > 0)?;
    let content = &inner[..end];
    let after = &inner[end + marker.len_utf8()..];
    if content.ends_with(char::is_whitespace) || after.starts_with(char::is_alphanumeric) {
        return None;
    }
    let mut html = String::from("<em>");
    inline(content, &mut html);
    html.push_str("</em>");
    Some((1 + end + marker.len_utf8(), html))
}

/// Length of the `http://` or `https://` URL at the start of `text`, without trailing
/// punctuation (a sentence's full stop, a closing bracket).
fn url_length(text: &str) -> Option<usize> {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    let scheme = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return None;
    };
    let end = text
        .find(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        .unwrap_or(text.len());
    let trimmed = text[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'']);
    (trimmed.len() > scheme).then_some(trimmed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_needs_no_html() {
        assert_eq!(to_html("just words, 2 * 3 = 6 and snake_case"), None);
    }

    #[test]
    fn links_become_anchors_without_trailing_punctuation() {
        assert_eq!(
            to_html("read https://example.org/a?b=1&c=2. now").as_deref(),
            Some(
                "read <a href=\"https://example.org/a?b=1&amp;c=2\">https://example.org/a?b=1&amp;c=2</a>. now"
            )
        );
    }

    #[test]
    fn markdown_subset_is_rendered_and_the_rest_escaped() {
        assert_eq!(
            to_html("**bold** and *em* and _also_ `a<b>` [site](https://x.test/\"q) <script>")
                .as_deref(),
            Some(
                "<strong>bold</strong> and <em>em</em> and <em>also</em> <code>a&lt;b&gt;</code> \
                 [site](<a href=\"https://x.test/\">https://x.test/</a>&quot;q) &lt;script&gt;"
            )
        );
        assert_eq!(
            to_html("[Herald](https://herald.test/docs) ok").as_deref(),
            Some("<a href=\"https://herald.test/docs\">Herald</a> ok")
        );
    }

    #[test]
    fn newlines_become_breaks_and_unclosed_markers_stay_text() {
        assert_eq!(to_html("a & b\n**c").as_deref(), Some("a &amp; b<br/>**c"));
        assert_eq!(to_html("**c and `d"), None);
    }
}
