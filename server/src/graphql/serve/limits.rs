//! Rate limits per caller: every GraphQL request (an HTTP request, a WebSocket
//! `subscribe`) spends one cell of its caller's request limit, and every expensive mutation
//! field it runs (one that calls a plugin or writes many rows: [`EXPENSIVE_MUTATIONS`]) one
//! cell of the stricter mutation limit. A caller is the token's tenant, or without a valid
//! token the client's address (an IPv6 client's /64, which one host usually holds whole).
//!
//! The limiters are governor's keyed GCRA limiters: a caller's state is one timestamp, and
//! callers back at full capacity are dropped every [`HOUSEKEEPING_INTERVAL`], so memory
//! follows the callers of the last moments, not every caller ever seen.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Name, ServerError};
use axum::http::{HeaderMap, HeaderName};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{Rate, RateLimitConfig};
use crate::domain::actor::Actor;

/// Mutations that cost plugin calls or many writes, limited by the mutation limit:
/// `connectAccount` (the plugin's connect call), `createPost`, `updatePost` and
/// `schedulePost` (each platform plugin's `validate` for a scheduled post), `retryPost`
/// (a publish), `refreshPostMetrics` (a plugin call per target), `archivePosts` and
/// `clearFailedJobs` (bulk writes), `uploadMedia` and `createMediaUpload` (a stored file
/// each).
pub const EXPENSIVE_MUTATIONS: [&str; 10] = [
    "connectAccount",
    "createPost",
    "updatePost",
    "schedulePost",
    "retryPost",
    "refreshPostMetrics",
    "archivePosts",
    "clearFailedJobs",
    "uploadMedia",
    "createMediaUpload",
];

/// How often callers back at full capacity are forgotten.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

/// Who a limit applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// An authenticated caller's tenant (`user:…` / `org:…`).
    Tenant(Arc<str>),
    /// An anonymous client's address (IPv6: its /64); `None` when the server cannot see it.
    Address(Option<IpAddr>),
}

impl Caller {
    /// The tenant `actor` acts for.
    pub fn tenant(actor: &Actor) -> Self {
        Self::Tenant(Arc::from(actor.tenant_id.as_str()))
    }

    /// The caller behind `actor`, or without one the client at `peer` (or, when
    /// `client_ip_header` is set, at the address a trusted proxy put in that header).
    pub fn of(
        actor: Option<&Actor>,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        client_ip_header: Option<&HeaderName>,
    ) -> Self {
        if let Some(actor) = actor {
            return Self::tenant(actor);
        }
        let forwarded = client_ip_header
            .and_then(|name| headers.get(name))
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        let address = forwarded.or(peer.map(|peer| peer.ip()));
        Self::Address(address.map(|address| match address {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                let prefix = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            IpAddr::V4(_) => address,
        }))
    }
}

/// A request refused by a limit, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The limit that refused it.
    pub limit: Limit,
    /// How long the caller should wait, in whole seconds (at least 1).
    pub retry_after_secs: u64,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// GraphQL requests per caller.
    Requests,
    /// Expensive mutations per caller.
    Mutations,
}

impl Limited {
    /// The GraphQL error that says so (`RATE_LIMITED`, with `retryAfter` in seconds).
    pub fn error(&self) -> ServerError {
        let message = match self.limit {
            Limit::Requests => "too many requests: try again later",
            Limit::Mutations => "too many expensive mutations: try again later",
        };
        let mut error = ServerError::new(message, None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", "RATE_LIMITED");
        extensions.set("retryAfter", self.retry_after_secs);
        error.extensions = Some(extensions);
        error
    }
}

/// One keyed limiter and when it was last tidied.
struct Keyed {
    limiter: DefaultKeyedRateLimiter<Caller>,
    /// How long a caller takes to get its whole burst back.
    full_burst: Duration,
    /// Time since `started` of the last housekeeping, in milliseconds.
    tidied_ms: AtomicU64,
    started: Instant,
}

impl Keyed {
    fn new(rate: Rate) -> Self {
        let quota = Quota::per_minute(rate.per_minute).allow_burst(rate.burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            full_burst: quota.replenish_interval().saturating_mul(rate.burst.get()),
            tidied_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Spends `cells` of `caller`'s capacity, or says how long to wait.
    fn check(&self, limit: Limit, caller: &Caller, cells: NonZeroU32) -> Result<(), Limited> {
        self.tidy();
        let wait = match self.limiter.check_key_n(caller, cells) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => not_until.wait_time_from(DefaultClock::default().now()),
            // More than the burst at once never passes: wait for a full burst, and the
            // error says it is too much (the caller must split the request).
            Err(_) => self.full_burst,
        };
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Err(Limited {
            limit,
            retry_after_secs: secs.max(1),
        })
    }

    /// Forgets callers back at full capacity, at most once per [`HOUSEKEEPING_INTERVAL`]
    /// (one request does it; the others go on).
    fn tidy(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.tidied_ms.load(Ordering::Relaxed);
        let due = u64::try_from(HOUSEKEEPING_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) < due
            || self
                .tidied_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.forget_idle();
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The request and mutation limits of one server.
#[derive(Clone)]
pub struct RateLimits {
    requests: Option<Arc<Keyed>>,
    mutations: Option<Arc<Keyed>>,
    client_ip_header: Option<HeaderName>,
}

impl RateLimits {
    /// The limits `config` asks for.
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            requests: config.requests.map(|rate| Arc::new(Keyed::new(rate))),
            mutations: config.mutations.map(|rate| Arc::new(Keyed::new(rate))),
            client_ip_header: config.client_ip_header.clone(),
        }
    }

    /// The caller a request comes from (see [`Caller::of`]).
    pub fn caller(
        &self,
        actor: Option<&Actor>,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Caller {
        Caller::of(actor, headers, peer, self.client_ip_header.as_ref())
    }

    /// Spends `requests` of `caller`'s request limit.
    pub fn requests(&self, caller: &Caller, requests: usize) -> Result<(), Limited> {
        let Some(keyed) = &self.requests else {
            return Ok(());
        };
        let cells = u32::try_from(requests).unwrap_or(u32::MAX);
        match NonZeroU32::new(cells) {
            Some(cells) => keyed.check(Limit::Requests, caller, cells),
            None => Ok(()),
        }
    }

    /// Spends one cell of `caller`'s mutation limit per expensive mutation that
    /// `document`'s operation `operation` runs (none for a query).
    pub fn mutations(
        &self,
        caller: &Caller,
        document: &ExecutableDocument,
        operation: Option<&str>,
    ) -> Result<(), Limited> {
        let Some(keyed) = &self.mutations else {
            return Ok(());
        };
        let cost = expensive_mutations(document, operation);
        match NonZeroU32::new(u32::try_from(cost).unwrap_or(u32::MAX)) {
            Some(cells) => keyed.check(Limit::Mutations, caller, cells),
            None => Ok(()),
        }
    }
}

/// How many expensive mutation fields `document`'s operation `operation` runs: the root
/// fields named in [`EXPENSIVE_MUTATIONS`], fragments spread, one per response key (fields
/// with the same key are merged into one execution).
pub fn expensive_mutations(document: &ExecutableDocument, operation: Option<&str>) -> usize {
    let Some(operation) = super::operation(document, operation) else {
        return 0;
    };
    if operation.ty != OperationType::Mutation {
        return 0;
    }
    let mut keys: HashSet<&Name> = HashSet::new();
    let mut spread: HashSet<&Name> = HashSet::new();
    // An explicit stack: a chain of fragments cannot exhaust the thread's stack.
    let mut sets: Vec<&SelectionSet> = vec![&operation.selection_set.node];
    while let Some(set) = sets.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if EXPENSIVE_MUTATIONS.contains(&field.name.node.as_str()) {
                        keys.insert(&field.alias.as_ref().unwrap_or(&field.name).node);
                    }
                }
                Selection::InlineFragment(fragment) => {
                    sets.push(&fragment.node.selection_set.node);
                }
                Selection::FragmentSpread(fragment) => {
                    let name = &fragment.node.fragment_name.node;
                    if spread.insert(name)
                        && let Some(fragment) = document.fragments.get(name)
                    {
                        sets.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    keys.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::serve::test_documents::parse;

    fn rate(per_minute: u32, burst: u32) -> Rate {
        Rate {
            per_minute: NonZeroU32::new(per_minute).expect("non-zero"),
            burst: NonZeroU32::new(burst).expect("non-zero"),
        }
    }

    #[test]
    fn expensive_mutations_are_counted_per_response_key_through_fragments() {
        let count = |query: &str| expensive_mutations(&parse(query), None);
        assert_eq!(count("{ posts { edges { cursor } } }"), 0);
        assert_eq!(count("mutation { deletePost(id: \"x\") }"), 0);
        assert_eq!(
            count("mutation { a: createPost(input: {}) { id } b: createPost(input: {}) { id } }"),
            2
        );
        // The same key twice is one execution; fragments (even a cycle) are followed once.
        assert_eq!(
            count(
                "mutation { ...M ...M ... on Mutation { retryPost(id: \"1\") { id } } } \
                 fragment M on Mutation { connectAccount(platform: \"x\", credentials: {}) { id } ...N } \
                 fragment N on Mutation { ...M archivePosts(olderThan: \"2020-01-01T00:00:00Z\") }"
            ),
            3
        );
    }

    #[test]
    fn callers_are_tenants_or_addresses() {
        let peer: SocketAddr = "192.0.2.7:5000".parse().expect("address");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.4".parse().expect("value"),
        );
        let header = HeaderName::from_static("x-forwarded-for");
        assert_eq!(
            Caller::of(None, &headers, Some(peer), None),
            Caller::Address(Some(peer.ip()))
        );
        // The proxy's own entry is the right-most one.
        assert_eq!(
            Caller::of(None, &headers, Some(peer), Some(&header)),
            Caller::Address(Some("198.51.100.4".parse().expect("ip")))
        );
        // A client within one /64 is one caller.
        let v6 = |text: &str| {
            Caller::of(
                None,
                &HeaderMap::new(),
                Some(SocketAddr::new(text.parse().expect("ip"), 1)),
                None,
            )
        };
        assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("::ffff:192.0.2.7"), Caller::Address(Some(peer.ip())));
    }

    #[test]
    fn a_limit_refuses_past_its_burst_per_caller_and_forgets_idle_callers() {
        let keyed = Keyed::new(rate(60, 2));
        let alice = Caller::Tenant(Arc::from("user:alice"));
        let bob = Caller::Tenant(Arc::from("user:bob"));
        let one = NonZeroU32::MIN;
        keyed.check(Limit::Requests, &alice, one).expect("first");
        keyed.check(Limit::Requests, &alice, one).expect("second");
        let limited = keyed
            .check(Limit::Requests, &alice, one)
            .expect_err("over the burst");
        assert_eq!(limited.retry_after_secs, 1);
        keyed
            .check(Limit::Requests, &bob, one)
            .expect("another caller");
        // More than the burst at once can never pass.
        let three = NonZeroU32::new(3).expect("non-zero");
        assert!(keyed.check(Limit::Requests, &bob, three).is_err());

        // 60 000 a minute: a caller is back at full capacity within a millisecond.
        let fast = Keyed::new(rate(60_000, 1));
        for n in 0..1_000 {
            let caller = Caller::Tenant(Arc::from(format!("user:{n}").as_str()));
            fast.check(Limit::Requests, &caller, one)
                .expect("fresh caller");
        }
        assert_eq!(fast.limiter.len(), 1_000);
        std::thread::sleep(Duration::from_millis(20));
        fast.forget_idle();
        assert_eq!(fast.limiter.len(), 0);
    }
}
