//! What Herald's plugin SDK (inside the wasm guest) and its plugin host (native) must do
//! the same way: scrub secrets (tokens, webhook URLs, passwords) from messages before they
//! are logged or stored, and percent-encode text as URLs carry it. A crate of its own, with
//! no dependencies, so the host does not build the SDK's wasm bindings.
//!
//! ```
//! use herald_secrets::Secrets;
//!
//! let secrets = Secrets::new(["s3cr3t/token"]);
//! assert_eq!(
//!     secrets.scrub("POST https://x.test/hook/s3cr3t%2Ftoken failed"),
//!     "POST https://x.test/hook/[redacted] failed"
//! );
//! ```

use std::fmt;

/// What a scrubbed secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets to scrub from text: each is replaced in its raw form and in the encoded forms a
/// URL or form body may carry it in (percent-encoded with upper- or lowercase hex,
/// form-encoded). Its `Debug` shows only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Every form of every secret, longest first, without duplicates or empty strings.
    forms: Vec<String>,
}

impl Secrets {
    /// The given secrets (empty ones are ignored: there is nothing to hide).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut all = Self::default();
        for secret in secrets {
            all.add(secret.as_ref());
        }
        all
    }

    /// Adds `secret` (ignored when empty).
    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let encoded = percent_encode(secret);
        let lower = lowercase_hex(&encoded);
        for form in [secret.to_owned(), encoded, lower, form_encode(secret)] {
            if !self.forms.contains(&form) {
                self.forms.push(form);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        self.forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    }

    /// `self` with `secret` added.
    pub fn with(mut self, secret: &str) -> Self {
        self.add(secret);
        self
    }

    /// Whether there is no secret to scrub.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// `text` with every occurrence of every secret, in any of its forms, replaced by
    /// [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        self.forms.iter().fold(text.to_owned(), |text, form| {
            text.replace(form.as_str(), REDACTED)
        })
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets([{} forms redacted])", self.forms.len())
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a URL path
/// segment or query value (`!room:example.org` → `%21room%3Aexample.org`).
pub fn percent_encode(text: &str) -> String {
    escape(text, b'~', false)
}

/// Percent-encodes for `application/x-www-form-urlencoded` (a space becomes `+`).
pub fn form_encode(text: &str) -> String {
    escape(text, b'*', true)
}

/// `text` with every byte but ASCII letters, digits, `-`, `_`, `.` and `also` written as
/// `%XX`; a space becomes `+` when `space_as_plus`.
fn escape(text: &str, also: u8, space_as_plus: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                out.push(char::from(byte));
            }
            _ if byte == also => out.push(char::from(byte)),
            b' ' if space_as_plus => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
        }
    }
    out
}

/// A percent-encoded text with the hex digits of its escapes in lowercase (`%2f`).
fn lowercase_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut escape_left = 0;
    for c in encoded.chars() {
        if c == '%' {
            escape_left = 2;
            out.push(c);
        } else if escape_left > 0 {
            escape_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_encoded_secrets_are_scrubbed() {
        let secrets = Secrets::new(["ab/c d", ""]);
        assert_eq!(secrets.scrub("x ab/c d y"), "x [redacted] y");
        assert_eq!(secrets.scrub("/hook/ab%2Fc%20d?"), "/hook/[redacted]?");
        assert_eq!(secrets.scrub("/hook/ab%2fc%20d?"), "/hook/[redacted]?");
        assert_eq!(secrets.scrub("token=ab%2Fc+d&x=1"), "token=[redacted]&x=1");
        assert_eq!(secrets.scrub("nothing here"), "nothing here");
    }

    #[test]
    fn a_secret_containing_another_is_replaced_whole() {
        let secrets = Secrets::new(["abc", "abcdef"]);
        assert_eq!(secrets.scrub("abcdef abc"), "[redacted] [redacted]");
    }

    #[test]
    fn empty_secrets_change_nothing_and_debug_hides_them() {
        let none = Secrets::new([""]);
        assert!(none.is_empty());
        assert_eq!(none.scrub("abc"), "abc");
        let some = Secrets::default().with("hunter2");
        assert!(!format!("{some:?}").contains("hunter2"));
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("!abc:matrix.test"), "%21abc%3Amatrix.test");
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("é /"), "%C3%A9%20%2F");
        assert_eq!(form_encode("a b&c=é"), "a+b%26c%3D%C3%A9");
    }
}
