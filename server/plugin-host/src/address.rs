//! The outbound address policy: where Herald's own HTTP clients may connect. Public unicast
//! addresses only, unless an operator lists a private range explicitly (e.g. a LAN
//! instance, or the loopback fakes of tests).
//!
//! The rule holds for addresses written in URLs ([`AddressPolicy::check_url`]) and for
//! names alike: [`AddressPolicy::resolver`] resolves a name, checks every address it gets
//! and hands only checked addresses to the client, which connects to them (no second
//! lookup, so no DNS-rebinding window). Redirects are re-checked on every hop by the
//! caller (the plugin host follows them itself) or by [`AddressPolicy::redirect_policy`].
//!
//! A refusal always reads [`DENIED`]: nothing is sent, so nothing tells whether a port at
//! a private address is open, closed or filtered.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::Url;

/// The message of every refusal.
pub const DENIED: &str = "destination not allowed";

/// A refused destination (it never names the reason, see [`DENIED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("destination not allowed")]
pub struct Denied;

/// Which addresses outbound requests may reach: public unicast, plus the listed ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Arc<[IpNet]>,
}

impl AddressPolicy {
    /// Public unicast addresses only.
    pub fn public_only() -> Self {
        Self::default()
    }

    /// Public unicast addresses and any address inside `ranges` (an explicit exception,
    /// e.g. `10.0.0.0/8` for an instance on the LAN, `127.0.0.0/8` for test fakes).
    pub fn allowing(ranges: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            allowed: ranges.into_iter().collect(),
        }
    }

    /// Public addresses and the ranges written in `ranges` (`10.0.0.0/8`, `fd00::/8`; a bare
    /// address is itself alone). The error names the entry that does not parse.
    pub fn parse<'a>(ranges: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let parsed = ranges
            .into_iter()
            .map(str::trim)
            .filter(|range| !range.is_empty())
            .map(|range| {
                range
                    .parse::<IpNet>()
                    .or_else(|_| range.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{range}` is not an address range (CIDR)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::allowing(parsed))
    }

    /// The ranges allowed beside public addresses.
    pub fn allowed_ranges(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allowed.iter().any(|range| range.contains(&ip))
    }

    /// Checks an address written in `url` (IP literal hosts); a host name passes here and
    /// is checked when [`resolver`](Self::resolver) resolves it. A URL without a host is
    /// refused.
    pub fn check_url(&self, url: &Url) -> Result<(), Denied> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) if !self.permits(IpAddr::V4(ip)) => Err(Denied),
            Some(url::Host::Ipv6(ip)) if !self.permits(IpAddr::V6(ip)) => Err(Denied),
            Some(_) => Ok(()),
            None => Err(Denied),
        }
    }

    /// A resolver for `reqwest::ClientBuilder::dns_resolver` that answers only with checked
    /// addresses: a name with any refused address is refused whole.
    pub fn resolver(&self) -> Arc<PolicyResolver> {
        Arc::new(PolicyResolver {
            policy: self.clone(),
        })
    }

    /// A redirect policy for `reqwest::ClientBuilder::redirect` that re-checks every hop's
    /// literal address (names are checked by [`resolver`](Self::resolver)) and follows at
    /// most `max` redirects.
    pub fn redirect_policy(&self, max: usize) -> reqwest::redirect::Policy {
        let policy = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max {
                attempt.error(format!("more than {max} redirects"))
            } else if policy.check_url(attempt.url()).is_err() {
                attempt.error(Denied)
            } else {
                attempt.follow()
            }
        })
    }
}

/// Whether `error` (from a client built with [`AddressPolicy::resolver`] or
/// [`AddressPolicy::redirect_policy`]) is a refusal of the policy.
pub fn is_denied(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<Denied>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Resolves names with the system resolver and keeps the answer only if the policy permits
/// every address in it.
#[derive(Debug)]
pub struct PolicyResolver {
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let policy = self.policy.clone();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() || !addresses.iter().all(|a| policy.permits(a.ip())) {
                tracing::warn!(
                    host,
                    "outbound request to a name with a non-public address refused"
                );
                return Err(Box::new(Denied) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it reaches; any other unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` is a public unicast address (globally routable, not special-purpose).
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network" 0.0.0.0/8, unspecified included
        || ip.is_loopback() // 127.0.0.0/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16 (cloud metadata)
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT) 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast 192.88.99.0/24
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18.0.0/15
        || ip.is_multicast() // 224.0.0.0/4
        || a >= 240) // reserved 240.0.0.0/4, broadcast included
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified() // ::
        || ip.is_loopback() // ::1
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::/96
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 64:ff9b::/96 and local 64:ff9b:1::/48
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments 2001::/23 (Teredo)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
        || (s[0] == 0x3fff && s[1] < 0x1000) // documentation 3fff::/20
        || s[0] == 0x2002 // 6to4 2002::/16
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || ip.is_multicast()) // ff00::/8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    /// One address inside each refused range (and its edges where they are easy to get
    /// wrong), by range.
    #[test]
    fn every_special_range_is_refused() {
        let ranges: &[(&str, &[&str])] = &[
            ("this network 0/8", &["0.0.0.0", "0.1.2.3"]),
            ("loopback 127/8", &["127.0.0.1", "127.255.255.254"]),
            ("RFC1918 10/8", &["10.0.0.5", "10.255.255.255"]),
            ("RFC1918 172.16/12", &["172.16.0.1", "172.31.255.255"]),
            ("RFC1918 192.168/16", &["192.168.0.1"]),
            ("link-local 169.254/16", &["169.254.169.254"]),
            ("CGNAT 100.64/10", &["100.64.0.1", "100.127.255.255"]),
            ("IETF 192.0.0/24", &["192.0.0.8"]),
            (
                "documentation",
                &["192.0.2.1", "198.51.100.7", "203.0.113.9"],
            ),
            ("6to4 relay 192.88.99/24", &["192.88.99.1"]),
            ("benchmarking 198.18/15", &["198.18.0.1", "198.19.255.255"]),
            ("multicast 224/4", &["224.0.0.1", "239.255.255.250"]),
            ("reserved 240/4", &["240.0.0.1", "255.255.255.255"]),
            ("unspecified ::", &["::"]),
            ("loopback ::1", &["::1"]),
            (
                "IPv4-mapped",
                &[
                    "::ffff:127.0.0.1",
                    "::ffff:10.0.0.5",
                    "::ffff:169.254.169.254",
                ],
            ),
            ("IPv4-compatible ::/96", &["::7f00:1", "::a00:5"]),
            (
                "NAT64 64:ff9b::/96",
                &["64:ff9b::7f00:1", "64:ff9b::808:808"],
            ),
            ("local NAT64 64:ff9b:1::/48", &["64:ff9b:1::a00:1"]),
            ("discard 100::/64", &["100::1"]),
            ("IETF 2001::/23, Teredo", &["2001::1", "2001:1ff::1"]),
            ("documentation 2001:db8::/32", &["2001:db8::1"]),
            ("documentation 3fff::/20", &["3fff::1", "3fff:fff::1"]),
            ("6to4 2002::/16", &["2002:7f00:1::1", "2002:808:808::1"]),
            ("ULA fc00::/7", &["fc00::1", "fd12:3456::1"]),
            ("link-local fe80::/10", &["fe80::1", "febf::1"]),
            ("site-local fec0::/10", &["fec0::1"]),
            ("multicast ff00::/8", &["ff02::1", "ff0e::1"]),
        ];
        for (range, addresses) in ranges {
            for address in *addresses {
                assert!(
                    !is_public(ip(address)),
                    "{range}: {address} counted as public"
                );
                assert!(
                    !AddressPolicy::public_only().permits(ip(address)),
                    "{address}"
                );
            }
        }
    }

    #[test]
    fn public_unicast_is_allowed() {
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "2606:2800:220:1:248:1893:25c8:1946",
            "2001:4860:4860::8888",
            "2001:200::1",
            "2a00:1450:4001::1",
        ] {
            assert!(is_public(ip(address)), "{address} refused");
        }
    }

    #[test]
    fn listed_ranges_are_exceptions() {
        let policy = AddressPolicy::allowing(["127.0.0.0/8".parse().expect("cidr")]);
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(
            policy.permits(ip("::ffff:127.0.0.1")),
            "mapped form of an allowed address"
        );
        assert!(policy.permits(ip("8.8.8.8")));
        assert!(!policy.permits(ip("10.0.0.5")));
        assert!(!policy.permits(ip("::1")));
    }

    #[test]
    fn ranges_parse_from_text() {
        let policy =
            AddressPolicy::parse(["10.1.0.0/16", " 192.168.1.5 ", "", "fd00::/8"]).expect("ranges");
        assert_eq!(policy.allowed_ranges().len(), 3);
        assert!(policy.permits(ip("10.1.2.3")) && !policy.permits(ip("10.2.0.1")));
        assert!(policy.permits(ip("192.168.1.5")) && !policy.permits(ip("192.168.1.6")));
        assert!(policy.permits(ip("fd00::1")));
        let error = AddressPolicy::parse(["10.0.0.0/33"]).expect_err("bad prefix");
        assert!(error.contains("10.0.0.0/33"), "{error}");
    }

    #[test]
    fn literal_hosts_are_checked_in_urls() {
        let policy = AddressPolicy::public_only();
        for denied in [
            "https://10.0.0.5/",
            "https://127.0.0.1:22/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]:6379/",
            "https://0x7f.1/",
            "https://2130706433/",
            "https://[64:ff9b::a00:5]/",
        ] {
            let url = Url::parse(denied).expect("url");
            assert_eq!(policy.check_url(&url), Err(Denied), "{denied}");
        }
        for allowed in ["https://93.184.216.34/", "https://example.com/"] {
            let url = Url::parse(allowed).expect("url");
            assert_eq!(policy.check_url(&url), Ok(()), "{allowed}");
        }
    }

    /// The pieces other clients use (the webhook sender): the redirect policy refuses a hop
    /// to an address outside the policy, in words the caller recognises.
    #[tokio::test]
    async fn a_client_built_with_the_policy_refuses_redirects_out_of_it() {
        use axum::http::{StatusCode, header};
        let app = axum::Router::new()
            .route(
                "/out",
                axum::routing::get(|| async {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, "http://127.0.0.2:9/")],
                    )
                }),
            )
            .route("/ok", axum::routing::get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let policy = AddressPolicy::parse(["127.0.0.1"]).expect("range");
        let client = reqwest::Client::builder()
            .dns_resolver(policy.resolver())
            .redirect(policy.redirect_policy(5))
            .no_proxy()
            .build()
            .expect("client");
        let ok = client
            .get(format!("http://127.0.0.1:{port}/ok"))
            .send()
            .await
            .expect("the allowed address answers");
        assert_eq!(ok.status(), 200);
        let error = client
            .get(format!("http://127.0.0.1:{port}/out"))
            .send()
            .await
            .expect_err("redirected outside the policy");
        assert!(is_denied(&error), "{error:?}");
    }

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_are_refused() {
        use reqwest::dns::Resolve;
        let resolver = AddressPolicy::public_only().resolver();
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let error = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost resolved"),
            Err(error) => error,
        };
        assert!(is_denied(error.as_ref()), "{error}");
        assert_eq!(error.to_string(), DENIED);
        let allowing = AddressPolicy::allowing([
            "127.0.0.0/8".parse().expect("cidr"),
            "::1/128".parse().expect("cidr"),
        ]);
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        assert!(allowing.resolver().resolve(name).await.is_ok());
    }
}
