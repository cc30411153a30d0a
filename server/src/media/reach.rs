//! Whether platforms can reach Herald's public URL (`HERALD_PUBLIC_URL`): Meta, for one,
//! downloads media from the URL it is given, and fails late and vaguely when that URL
//! names a loopback or private address. Herald says so at start, and `validatePost` can
//! say so before a post is scheduled.

use std::net::IpAddr;
use std::time::Duration;

use herald_plugin_host::address::is_public;

/// How long a name lookup of the public URL's host may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// What keeps platforms from fetching media at `public_url` (`None` when nothing does,
/// as far as Herald can tell): unset, malformed, a loopback, private or otherwise
/// non-public address, a local-only host name, or a name that resolves to such addresses
/// only.
pub async fn public_url_problem(public_url: Option<&str>) -> Option<String> {
    let Some(public_url) = public_url else {
        return Some(
            "HERALD_PUBLIC_URL is not set: platforms that download media (Instagram, \
             Threads, Facebook) cannot fetch Herald's media URLs"
                .into(),
        );
    };
    let url = match url::Url::parse(public_url) {
        Ok(url) => url,
        Err(err) => {
            return Some(format!(
                "HERALD_PUBLIC_URL `{public_url}` is not a URL: {err}"
            ));
        }
    };
    let unreachable = |what: &str| {
        Some(format!(
            "HERALD_PUBLIC_URL `{public_url}` {what}: platforms on the internet cannot fetch \
             media from it"
        ))
    };
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        None => Some(format!("HERALD_PUBLIC_URL `{public_url}` has no host")),
        Some(url::Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => {
            unreachable("is a loopback, private or reserved address")
        }
        Some(url::Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => {
            unreachable("is a loopback, private or reserved address")
        }
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => None,
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost"
                || [".localhost", ".local", ".internal", ".lan", ".home.arpa"]
                    .iter()
                    .any(|suffix| name.ends_with(suffix))
            {
                return unreachable("names a host that only resolves on a local network");
            }
            let lookup = tokio::net::lookup_host((name.as_str(), port));
            match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(addresses)) => {
                    let addresses: Vec<IpAddr> = addresses.map(|a| a.ip()).collect();
                    if !addresses.is_empty() && addresses.iter().all(|ip| !is_public(*ip)) {
                        unreachable("resolves to loopback or private addresses only")
                    } else {
                        None
                    }
                }
                // A name this machine cannot resolve may still resolve on the internet
                // (split DNS): only say what is known.
                Ok(Err(_)) | Err(_) => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_private_and_local_urls_are_named() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "https://10.1.2.3",
            "https://192.168.1.20",
            "https://[::1]:8443",
            "https://herald.local",
            "not a url",
        ] {
            assert!(public_url_problem(Some(url)).await.is_some(), "{url}");
        }
        assert!(public_url_problem(None).await.is_some());
        assert_eq!(public_url_problem(Some("https://8.8.8.8")).await, None);
    }
}
