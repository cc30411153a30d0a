//! LinkedIn's "little text format": a post's `commentary` is parsed for mentions
//! (`@[Name](urn:li:…)`) and hashtags (`{hashtag|\#|tag}`), so its reserved characters
//! `| { } @ [ ] ( ) < > # \ * _ ~` must be escaped with a backslash. An unescaped one is
//! not refused: LinkedIn silently drops the text from it on, so the post goes out cut.

/// The characters the little text format reserves.
pub const RESERVED: [char; 15] = [
    '|', '{', '}', '@', '[', ']', '(', ')', '<', '>', '#', '\\', '*', '_', '~',
];

/// `text` with every reserved character escaped, to send as `commentary`.
pub fn commentary(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        if RESERVED.contains(&c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reserved_character_is_escaped_once() {
        assert_eq!(
            commentary(r"a(b)[c]{d}<e>@f#g_h*i~j|k\l"),
            r"a\(b\)\[c\]\{d\}\<e\>\@f\#g\_h\*i\~j\|k\\l"
        );
        assert_eq!(
            commentary("plain text, émoji 🎉 & \"quotes\"."),
            "plain text, émoji 🎉 & \"quotes\"."
        );
        assert_eq!(commentary(""), "");
        // An escaped backslash is not taken for an escape of what follows.
        assert_eq!(commentary(r"\#"), r"\\\#");
    }

    #[test]
    fn escaping_then_reading_back_gives_the_text() {
        let text = "Launch (beta) at 10:00 #news @team [draft] {x} <y> a_b *c* ~d~ |e| \\f";
        let escaped = commentary(text);
        let mut read = String::new();
        let mut chars = escaped.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                let next = chars.next().expect("an escape is followed by a character");
                assert!(RESERVED.contains(&next), "{next:?} needs no escape");
                read.push(next);
            } else {
                assert!(!RESERVED.contains(&c), "{c:?} left unescaped");
                read.push(c);
            }
        }
        assert_eq!(read, text);
    }
}
