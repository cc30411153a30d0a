//! Outbound HTTP on behalf of plugins: the allow-list is checked on the parsed URL of every
//! hop (redirects are followed here, never by the client), https only, with a deadline and
//! a response size cap. Every hop, and every media fetch, is held to the address policy
//! ([`crate::address`]). Logs show URLs through [`crate::scrub::url_for_log`]; never
//! headers.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use url::Url;

use crate::address::{self, AddressPolicy};
use crate::scrub::url_for_log;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

/// A request as the plugin made it, with any media body already resolved (shared, not
/// copied: a media body is the fetched file's own buffer).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// The final response.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    Denied(String),
    Timeout,
    TooLarge(u64),
    InvalidRequest(String),
    /// No connection could be made: the request was not delivered.
    Unreachable(String),
    /// The exchange failed after connecting: the request may have been delivered.
    Transport(String),
}

/// The HTTP client and the rules shared by every plugin.
#[derive(Debug)]
pub(crate) struct Net {
    client: reqwest::Client,
    policy: AddressPolicy,
    timeout: Duration,
    max_response_bytes: u64,
    max_media_bytes: u64,
    max_redirects: u32,
    /// `host:port` → base URL the request is sent to instead (tests).
    overrides: HashMap<String, Url>,
}

impl Net {
    pub(crate) fn new(
        timeout: Duration,
        max_response_bytes: u64,
        max_media_bytes: u64,
        max_redirects: u32,
        overrides: &HashMap<String, String>,
        policy: AddressPolicy,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(policy.resolver())
            .no_proxy()
            .timeout(timeout)
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("HTTP client: {error}"))?;
        let mut parsed = HashMap::new();
        for (host, base) in overrides {
            let key = normalize_authority(host)
                .ok_or_else(|| format!("host override {host:?} is not host[:port]"))?;
            let base = Url::parse(base)
                .map_err(|error| format!("host override {host} → {base}: {error}"))?;
            parsed.insert(key, base);
        }
        Ok(Self {
            client,
            policy,
            timeout,
            max_response_bytes,
            max_media_bytes,
            max_redirects,
            overrides: parsed,
        })
    }

    /// Performs `request` for `plugin`, whose manifest allows `allowed` (`host:port`).
    pub(crate) async fn fetch(
        &self,
        plugin: &str,
        allowed: &[String],
        request: Request,
    ) -> Result<Response, FetchError> {
        match tokio::time::timeout(self.timeout, self.follow(plugin, allowed, request)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout),
        }
    }

    /// Where a request for `url` goes: the test override's base for a listed host, or
    /// `url` itself once the address policy accepts the address written in it (names are
    /// checked when the client resolves them). A refusal happens before any connection, so
    /// it reads the same whatever listens at the address.
    fn route(&self, url: &Url) -> Result<Url, FetchError> {
        let authority = authority(url).unwrap_or_default();
        if let Some(base) = self.overrides.get(&authority) {
            let mut routed = base.clone();
            routed.set_path(url.path());
            routed.set_query(url.query());
            return Ok(routed);
        }
        self.policy.check_url(url).map_err(|_| {
            tracing::warn!(url = %url_for_log(url), "outbound request to a non-public address refused");
            FetchError::Denied(address::DENIED.to_owned())
        })?;
        Ok(url.clone())
    }

    async fn follow(
        &self,
        plugin: &str,
        allowed: &[String],
        mut request: Request,
    ) -> Result<Response, FetchError> {
        let mut url = Url::parse(&request.url).map_err(|error| {
            FetchError::InvalidRequest(format!("{}: {error}", scrubbed(&request.url)))
        })?;
        let mut hops = 0;
        loop {
            check_allowed(plugin, allowed, &url)?;
            let target = self.route(&url)?;
            let response = self.send(plugin, &url, target, &request).await?;
            let status = response.status();
            if !status.is_redirection() || status == reqwest::StatusCode::NOT_MODIFIED {
                return self.read(response).await;
            }
            hops += 1;
            if hops > self.max_redirects {
                return Err(FetchError::Transport(format!(
                    "more than {} redirects",
                    self.max_redirects
                )));
            }
            let next = next_hop(&url, &response)?;
            tracing::debug!(plugin, from = %url_for_log(&url), to = %url_for_log(&next), "plugin request redirected");
            let same_origin = next.origin() == url.origin();
            if !same_origin {
                request
                    .headers
                    .retain(|(name, _)| !is_credential_header(name));
            }
            let downgrade = status == reqwest::StatusCode::SEE_OTHER
                || (matches!(status.as_u16(), 301 | 302) && request.method == Method::Post);
            if downgrade {
                request.method = Method::Get;
                request.body = Bytes::new();
                request
                    .headers
                    .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
            }
            url = next;
        }
    }

    async fn send(
        &self,
        plugin: &str,
        url: &Url,
        target: Url,
        request: &Request,
    ) -> Result<reqwest::Response, FetchError> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        tracing::debug!(plugin, method = %method, url = %url_for_log(url), "plugin request");
        let mut builder = self.client.request(method, target);
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !request.body.is_empty() {
            // A reference to the same buffer, not a copy (a redirect may send it again).
            builder = builder.body(request.body.clone());
        }
        builder.send().await.map_err(|error| {
            if address::is_denied(&error) {
                FetchError::Denied(address::DENIED.to_owned())
            } else if error.is_timeout() {
                FetchError::Timeout
            } else if error.is_builder() {
                FetchError::InvalidRequest(without_url(&error))
            } else if error.is_connect() {
                FetchError::Unreachable(without_url(&error))
            } else {
                FetchError::Transport(without_url(&error))
            }
        })
    }

    async fn read(&self, response: reqwest::Response) -> Result<Response, FetchError> {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = read_capped(response, self.max_response_bytes).await?;
        Ok(Response {
            status,
            headers,
            body: body.into(),
        })
    }

    /// Fetches a post's media file (no allow-list: the URL is Herald's, not the plugin's,
    /// but the address policy holds on every hop), checking its type against `mime_type`
    /// (when one is declared) and its size against the media cap while it streams in.
    /// Returns the bytes and the served type.
    pub(crate) async fn fetch_media(
        &self,
        url: &str,
        mime_type: &str,
    ) -> Result<(Bytes, String), MediaFetchError> {
        let fetch = async {
            let mut url = Url::parse(url)
                .map_err(|error| MediaFetchError::Transport(format!("media URL: {error}")))?;
            let mut hops = 0;
            let response = loop {
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(MediaFetchError::Transport(
                        "media URL must be http(s)".into(),
                    ));
                }
                let target = self.route(&url).map_err(media_error)?;
                tracing::debug!(url = %url_for_log(&url), "media fetch");
                let response = self.client.get(target).send().await.map_err(|error| {
                    if address::is_denied(&error) {
                        MediaFetchError::Denied(address::DENIED.to_owned())
                    } else {
                        MediaFetchError::Transport(without_url(&error))
                    }
                })?;
                if !response.status().is_redirection() {
                    break response;
                }
                hops += 1;
                if hops > self.max_redirects {
                    return Err(MediaFetchError::Transport(format!(
                        "media fetch: more than {} redirects",
                        self.max_redirects
                    )));
                }
                url = next_hop(&url, &response).map_err(media_error)?;
            };
            if !response.status().is_success() {
                return Err(MediaFetchError::Transport(format!(
                    "media fetch: HTTP {}",
                    response.status()
                )));
            }
            let served = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(|value| {
                    value
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                });
            let mime = match (served, mime_type.is_empty()) {
                (Some(served), false) if !served.eq_ignore_ascii_case(mime_type) => {
                    return Err(MediaFetchError::UnsupportedType(format!(
                        "declared {mime_type}, served {served}"
                    )));
                }
                (Some(served), true) => served,
                (None, true) => "application/octet-stream".to_owned(),
                (_, false) => mime_type.to_owned(),
            };
            let bytes = read_capped(response, self.max_media_bytes)
                .await
                .map_err(media_error)?;
            Ok((bytes, mime))
        };
        match tokio::time::timeout(self.timeout, fetch).await {
            Ok(result) => result,
            Err(_) => Err(MediaFetchError::Transport("media fetch timed out".into())),
        }
    }
}

/// The URL a redirect `response` to a request for `url` points to. Relative locations
/// resolve against the URL asked for, never against the address a test override sent the
/// request to.
fn next_hop(url: &Url, response: &reqwest::Response) -> Result<Url, FetchError> {
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| FetchError::Transport(format!("HTTP {status} without Location")))?;
    url.join(location)
        .map_err(|error| FetchError::Transport(format!("bad redirect location: {error}")))
}

fn media_error(error: FetchError) -> MediaFetchError {
    match error {
        FetchError::Denied(message) => MediaFetchError::Denied(message),
        FetchError::TooLarge(size) => MediaFetchError::TooLarge(size),
        FetchError::Timeout => MediaFetchError::Transport("media fetch timed out".into()),
        FetchError::InvalidRequest(message)
        | FetchError::Unreachable(message)
        | FetchError::Transport(message) => MediaFetchError::Transport(message),
    }
}

/// `url` as logs may show it, or a placeholder when it does not parse.
fn scrubbed(url: &str) -> String {
    Url::parse(url).map_or_else(|_| "(unparsable URL)".to_owned(), |url| url_for_log(&url))
}

/// Why a media file could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MediaFetchError {
    Denied(String),
    TooLarge(u64),
    UnsupportedType(String),
    Transport(String),
}

/// Reads a body chunk by chunk into one buffer, refusing it as soon as it would exceed
/// `cap` (at once when the declared length does): never more than `cap` bytes are held. A
/// declared length sizes the buffer up front, so it is not regrown (and copied) as it fills.
async fn read_capped(response: reqwest::Response, cap: u64) -> Result<Bytes, FetchError> {
    let declared = response.content_length();
    if let Some(length) = declared.filter(|length| *length > cap) {
        return Err(FetchError::TooLarge(length));
    }
    let capacity = usize::try_from(declared.unwrap_or(0)).unwrap_or(0);
    let mut body = BytesMut::with_capacity(capacity);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| FetchError::Transport(without_url(&error)))?;
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(FetchError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The allow-list check, on the parsed URL: https, no userinfo, `host:port` listed.
fn check_allowed(plugin: &str, allowed: &[String], url: &Url) -> Result<String, FetchError> {
    if url.scheme() != "https" {
        return Err(FetchError::Denied(format!(
            "{}: plugin {plugin} may only use https",
            url_for_log(url)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::Denied(format!(
            "{}: credentials in URLs are not allowed",
            url_for_log(url)
        )));
    }
    let authority = authority(url)
        .ok_or_else(|| FetchError::Denied(format!("{}: URL has no host", url_for_log(url))))?;
    if allowed.contains(&authority) {
        Ok(authority)
    } else {
        tracing::warn!(plugin, host = %authority, "plugin request to an undeclared host denied");
        Err(FetchError::Denied(format!(
            "{authority} is not in plugin {plugin}'s allowed_hosts (manifest); refused {}",
            url_for_log(url)
        )))
    }
}

/// The `host:port` of an account server's base URL taken from credentials: https, with a
/// host, no userinfo, query or fragment.
pub(crate) fn account_authority(value: &str) -> Result<String, String> {
    let url = Url::parse(value).map_err(|error| error.to_string())?;
    if url.scheme() != "https" {
        return Err("only https is allowed".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in URLs are not allowed".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a base URL has no query or fragment".into());
    }
    authority(&url).ok_or_else(|| "the URL has no host".into())
}

fn authority(url: &Url) -> Option<String> {
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

fn normalize_authority(entry: &str) -> Option<String> {
    let url = Url::parse(&format!("https://{entry}/")).ok()?;
    authority(&url)
}

fn is_credential_header(name: &str) -> bool {
    ["authorization", "cookie", "proxy-authorization"]
        .iter()
        .any(|header| name.eq_ignore_ascii_case(header))
}

fn without_url(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(url.as_str(), &url_for_log(url));
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn check(url: &str) -> Result<String, FetchError> {
        let allowed = ["api.example.com:443".to_owned()];
        let url = Url::parse(url).map_err(|e| FetchError::InvalidRequest(e.to_string()))?;
        check_allowed("p", &allowed, &url)
    }

    #[test]
    fn only_public_addresses_count_as_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2001::1",
            "2001:db8::1",
            "::7f00:1",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
        ] {
            let ip: IpAddr = private.parse().expect("ip");
            assert!(!address::is_public(ip), "{private}");
        }
        for public in [
            "93.184.216.34",
            "198.20.0.1",
            "2606:2800:220:1:248:1893:25c8:1946",
            "2001:4860:4860::8888",
        ] {
            let ip: IpAddr = public.parse().expect("ip");
            assert!(address::is_public(ip), "{public}");
        }
    }

    /// A declared host written as a private address is refused before any connection, so
    /// the answer is the same whether a port there is open or closed.
    #[tokio::test]
    async fn private_addresses_in_urls_are_refused_before_connecting() {
        let net = Net::new(
            Duration::from_secs(5),
            1 << 20,
            1 << 20,
            3,
            &HashMap::new(),
            AddressPolicy::public_only(),
        )
        .expect("client");
        for host in [
            "127.0.0.1:22",
            "10.0.0.5",
            "[::1]:6379",
            "[64:ff9b::a00:5]",
            "198.18.0.1",
        ] {
            let url = format!("https://{host}/probe");
            let parsed = Url::parse(&url).expect("url");
            let allowed = [authority(&parsed).expect("authority")];
            let request = Request {
                method: Method::Get,
                url,
                headers: Vec::new(),
                body: Bytes::new(),
            };
            match net.fetch("p", &allowed, request).await {
                Err(FetchError::Denied(message)) => assert_eq!(message, address::DENIED),
                other => panic!("{host}: {other:?}"),
            }
        }
    }

    #[test]
    fn allow_list_is_checked_on_the_parsed_authority() {
        assert_eq!(
            check("https://api.example.com/v1"),
            Ok("api.example.com:443".into())
        );
        assert_eq!(
            check("https://API.Example.COM:443/v1"),
            Ok("api.example.com:443".into())
        );
        for denied in [
            "http://api.example.com/v1",
            "https://api.example.com:8443/v1",
            "https://api.example.com.evil.net/",
            "https://evil.net/?u=https://api.example.com",
            "https://api.example.com@evil.net/",
            "https://user:pw@api.example.com/",
            "https://evil.net\\@api.example.com/",
        ] {
            assert!(
                matches!(check(denied), Err(FetchError::Denied(_))),
                "{denied} allowed"
            );
        }
    }
}

#[cfg(test)]
mod media_tests;
#[cfg(test)]
mod policy_tests;
