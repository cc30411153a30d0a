//! Outbound HTTP through the host's `fetch`: the host enforces the manifest's allowed
//! hosts (https only), follows redirects only to allowed hosts, and caps time and size.
//!
//! ```ignore
//! let response = Request::post("https://api.example.com/v1/posts")
//!     .bearer(&credentials.access_token)
//!     .json(&serde_json::json!({ "text": post.text }))
//!     .send()?
//!     .error_for_status()?;
//! let created: Created = response.json()?;
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::herald::publisher::http as host;
use crate::PublishError;
use crate::failure::{DEFAULT_RETRY_SECONDS, Failure};
use crate::time::{self, ServerClock};

pub use herald_secrets::{form_encode, percent_encode};
pub use host::{Body, HttpError, Method};

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Body,
    /// Set when the request could not be built (e.g. a body that does not serialise).
    invalid: Option<String>,
}

impl Request {
    /// A request with `method` to `url` (absolute `https://` URL).
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Body::Empty,
            invalid: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A POST request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A PUT request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// A DELETE request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Sets a raw body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// Sets a JSON body and its content type. A value that does not serialise makes
    /// [`send`](Self::send) fail with [`HttpError::InvalidRequest`].
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => self
                .header("content-type", "application/json")
                .body(Body::Bytes(bytes)),
            Err(error) => {
                self.invalid = Some(format!("JSON body: {error}"));
                self
            }
        }
    }

    /// Sets an `application/x-www-form-urlencoded` body.
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        let encoded = fields
            .iter()
            .map(|(key, value)| format!("{}={}", form_encode(key), form_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(Body::Bytes(encoded.into_bytes()))
    }

    /// Sets a `multipart/form-data` body.
    pub fn multipart(self, form: Multipart) -> Self {
        let (content_type, bytes) = form.finish();
        self.header("content-type", content_type)
            .body(Body::Bytes(bytes))
    }

    /// Sends the request through the host.
    pub fn send(self) -> Result<Response, HttpError> {
        if let Some(message) = self.invalid {
            return Err(HttpError::InvalidRequest(message));
        }
        let response = host::fetch(&host::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
        })?;
        Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response as a platform would send it (plugins' unit tests build the answers
    /// they map with this).
    pub fn new(status: u16, headers: &[(&str, &str)], body: &str) -> Self {
        Self {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), (*value).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; a malformed body is a permanent error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PublishError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            PublishError::Permanent(format!("unexpected response from the platform: {error}"))
        })
    }

    /// Seconds to wait before retrying, as the headers say, or `None`: `Retry-After`
    /// (delta seconds, or an HTTP date), else `x-rate-limit-reset`/`x-ratelimit-reset`
    /// (Unix seconds, as X and GitHub send them), else `ratelimit-reset` (delta seconds,
    /// the IETF draft). Absolute times count from the server's clock (the answer's `Date`,
    /// see [`server_clock`](Self::server_clock)), else from `now_unix`. Unbounded: a reset
    /// already past is 0, a huge value saturates; [`Failure`] bounds the wait it gives.
    /// Values that are none of these (negative, garbled) are ignored.
    pub fn retry_after(&self, now_unix: u64) -> Option<u32> {
        let now_ms = i64::try_from(now_unix)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let clock = self.server_clock(now_ms);
        if let Some(value) = self.header("retry-after").map(str::trim) {
            if let Some(seconds) = whole_seconds(value) {
                return Some(seconds);
            }
            if let Some(at) = time::parse_http_date(value) {
                return Some(clock.seconds_until(at, now_ms));
            }
        }
        let epoch_reset = self
            .header("x-rate-limit-reset")
            .or_else(|| self.header("x-ratelimit-reset"))
            .and_then(epoch_millis);
        if let Some(reset) = epoch_reset {
            return Some(clock.seconds_until(reset, now_ms));
        }
        self.header("ratelimit-reset").and_then(whole_seconds)
    }

    /// Seconds to wait before retrying: `platform` (what the platform said beyond the
    /// generic headers) when given, else [`retry_after`](Self::retry_after), else
    /// [`DEFAULT_RETRY_SECONDS`]. Unbounded (see [`Failure::wait_seconds`]).
    pub fn wait_seconds(&self, platform: Option<u32>, now_unix: u64) -> u32 {
        platform
            .or_else(|| self.retry_after(now_unix))
            .unwrap_or(DEFAULT_RETRY_SECONDS)
    }

    /// The server's clock as this answer's `Date` shows it, the answer having been read at
    /// host time `local_now_ms`; the host clock when it has no usable `Date`.
    pub fn server_clock(&self, local_now_ms: i64) -> ServerClock {
        ServerClock::from_date(self.header("date"), local_now_ms)
    }

    /// Requests left in the current window (`x-rate-limit-remaining` or
    /// `x-ratelimit-remaining`).
    pub fn rate_limit_remaining(&self) -> Option<u64> {
        self.header("x-rate-limit-remaining")
            .or_else(|| self.header("x-ratelimit-remaining"))?
            .trim()
            .parse()
            .ok()
    }

    /// Keeps a 2xx response; maps the others with the generic mapping (see [`Failure`]):
    /// 401 → auth expired, 429 (or 403 with no requests remaining, or 503 with
    /// `Retry-After`) → rate limited, 408/425/5xx → retryable, other 4xx → permanent.
    pub fn error_for_status(self) -> Result<Response, PublishError> {
        self.error_for_status_with(|failure| failure.into_error())
    }

    /// Keeps a 2xx response; hands any other to `hook` as a [`Failure`], which words it,
    /// adds what the platform says beyond status and headers, handles the platform's own
    /// cases and leaves the rest to [`Failure::into_error`].
    pub fn error_for_status_with(
        self,
        hook: impl FnOnce(Failure<'_>) -> PublishError,
    ) -> Result<Response, PublishError> {
        if self.is_success() {
            return Ok(self);
        }
        Err(hook(Failure::new(&self)))
    }
}

/// Whole seconds written as digits only, saturating at `u32::MAX`; `None` otherwise.
fn whole_seconds(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().map_or(u32::MAX, |seconds| {
        u32::try_from(seconds).unwrap_or(u32::MAX)
    }))
}

/// Unix milliseconds of Unix seconds written as digits with an optional fraction
/// (`1470173023.123`); `None` otherwise.
fn epoch_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let seconds: f64 = text.parse().ok()?;
    // `as` saturates: a reset centuries away becomes i64::MAX.
    Some((seconds * 1000.0) as i64)
}

impl From<HttpError> for PublishError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Timeout => PublishError::Retryable("request timed out".into()),
            HttpError::Transport(message) => PublishError::Retryable(message),
            HttpError::Denied(message) => PublishError::Permanent(message),
            HttpError::InvalidRequest(message) => PublishError::Permanent(message),
            HttpError::TooLarge(size) => {
                PublishError::Permanent(format!("response too large (over {size} bytes)"))
            }
        }
    }
}

/// A `multipart/form-data` body.
#[derive(Debug, Clone)]
pub struct Multipart {
    boundary: String,
    bytes: Vec<u8>,
}

impl Multipart {
    /// An empty form with a boundary derived from `seed` (e.g. the idempotency key), so
    /// the same request is built on every retry.
    pub fn new(seed: &str) -> Self {
        let digest = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        Self {
            boundary: format!("herald-{digest:016x}"),
            bytes: Vec::new(),
        }
    }

    /// Adds a text field.
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.start_part(name, None, None);
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    /// Adds a file field.
    pub fn file(mut self, name: &str, file_name: &str, content_type: &str, data: &[u8]) -> Self {
        self.start_part(name, Some(file_name), Some(content_type));
        self.bytes.extend_from_slice(data);
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    fn start_part(&mut self, name: &str, file_name: Option<&str>, content_type: Option<&str>) {
        let quote = |text: &str| text.replace('"', "%22").replace(['\r', '\n'], " ");
        let mut head = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"",
            self.boundary,
            quote(name)
        );
        if let Some(file_name) = file_name {
            head.push_str(&format!("; filename=\"{}\"", quote(file_name)));
        }
        head.push_str("\r\n");
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str("\r\n");
        self.bytes.extend_from_slice(head.as_bytes());
    }

    /// The content type (with boundary) and the encoded body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.bytes
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RateLimit;

    fn response(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: b"nope".to_vec(),
        }
    }

    #[test]
    fn statuses_map_to_the_error_herald_acts_on() {
        assert!(matches!(
            response(401, &[]).error_for_status(),
            Err(PublishError::AuthExpired(_))
        ));
        assert_eq!(
            response(429, &[("Retry-After", "17")]).error_for_status(),
            Err(PublishError::RateLimited(RateLimit {
                retry_after_seconds: 17,
                message: "HTTP 429: nope".into()
            }))
        );
        assert!(matches!(
            response(403, &[("x-rate-limit-remaining", "0")]).error_for_status(),
            Err(PublishError::RateLimited(_))
        ));
        assert!(matches!(
            response(403, &[]).error_for_status(),
            Err(PublishError::Permanent(_))
        ));
        assert!(matches!(
            response(503, &[]).error_for_status(),
            Err(PublishError::Retryable(_))
        ));
        assert!(response(201, &[]).error_for_status().is_ok());
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("!abc:matrix.test"), "%21abc%3Amatrix.test");
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("é /"), "%C3%A9%20%2F");
    }

    #[test]
    fn retry_after_reads_an_http_date_from_the_answers_clock() {
        let dated = response(
            429,
            &[
                ("retry-after", "Sun, 29 Nov 2026 02:16:30 GMT"),
                ("date", "Sun, 29 Nov 2026 02:16:00 GMT"),
            ],
        );
        // The answer's own `Date` counts, not the (skewed) local clock.
        assert_eq!(dated.retry_after(0), Some(30));
        let undated = response(429, &[("retry-after", "Sun, 29 Nov 2026 02:16:30 GMT")]);
        assert_eq!(undated.retry_after(1_795_918_560), Some(30));
        assert_eq!(
            response(429, &[("retry-after", "soon")]).retry_after(0),
            None
        );
    }

    #[test]
    fn retry_after_reads_seconds_or_the_reset_time() {
        assert_eq!(
            response(429, &[("retry-after", "5")]).retry_after(0),
            Some(5)
        );
        assert_eq!(
            response(429, &[("x-rate-limit-reset", "1000")]).retry_after(940),
            Some(60)
        );
        assert_eq!(
            response(429, &[("x-ratelimit-reset", "10")]).retry_after(940),
            Some(0)
        );
        assert_eq!(response(429, &[]).retry_after(0), None);
    }

    #[test]
    fn forms_and_multipart_are_encoded() {
        assert_eq!(form_encode("a b&c=é"), "a+b%26c%3D%C3%A9");
        let (content_type, body) = Multipart::new("key")
            .text("status", "hi")
            .file("media", "a.png", "image/png", b"PNG")
            .finish();
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap_or_default()
            .to_owned();
        assert!(boundary.starts_with("herald-"));
        let expected = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"status\"\r\n\r\nhi\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.png\"\r\n\
             Content-Type: image/png\r\n\r\nPNG\r\n--{boundary}--\r\n"
        );
        assert_eq!(String::from_utf8_lossy(&body), expected);
    }
}
