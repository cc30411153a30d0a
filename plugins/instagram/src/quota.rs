//! Instagram's publishing quota: an account may publish a limited number of posts through
//! the API in a moving 24-hour window (`GET /{ig-user}/content_publishing_limit
//! ?fields=quota_usage,config` → `quota_usage` of `config.quota_total` within
//! `config.quota_duration` seconds; a carousel counts as one). The plugin reads it before
//! publishing: a full quota is a wait, not a failure — until the oldest post in the window
//! leaves it (read from the account's media), with the reason.

use herald_plugin_sdk::{PublishError, RateLimit, time};
use serde::Deserialize;

use crate::container::published_since;
use crate::graph::Graph;

/// Seconds a full quota waits when the account's media do not say when the window frees.
pub const UNKNOWN_WAIT_SECONDS: u32 = 3_600;

#[derive(Debug, Deserialize)]
struct Limits {
    data: Vec<Usage>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    #[serde(default)]
    quota_usage: u32,
    #[serde(default)]
    config: Option<Config>,
}

#[derive(Debug, Deserialize)]
struct Config {
    quota_total: u32,
    #[serde(default = "day")]
    quota_duration: i64,
}

fn day() -> i64 {
    86_400
}

/// `Ok` when the account may publish now; a rate limit until the window frees when its
/// quota is used up.
pub fn check(graph: &Graph, ig_user: &str) -> Result<(), PublishError> {
    let limits = graph
        .get(
            &format!("{ig_user}/content_publishing_limit"),
            &[("fields", "quota_usage,config")],
        )?
        .json::<Limits>()?;
    let Some(usage) = limits.data.into_iter().next() else {
        return Ok(());
    };
    let Some(config) = usage.config else {
        return Ok(());
    };
    if usage.quota_usage < config.quota_total {
        return Ok(());
    }
    let now = i64::try_from(time::now_unix()).unwrap_or(i64::MAX);
    let window_start = now.saturating_sub(config.quota_duration);
    let oldest = published_since(graph, ig_user, window_start)?
        .iter()
        .filter_map(|media| media.published_at())
        .filter(|at| *at >= window_start)
        .min();
    Err(full(usage.quota_usage, &config, oldest, now))
}

/// The wait of a full quota: until `oldest` (the window's oldest post) leaves the window.
fn full(usage: u32, config: &Config, oldest: Option<i64>, now: i64) -> PublishError {
    let hours = config.quota_duration / 3_600;
    let (wait, when) = match oldest {
        Some(oldest) => {
            let frees = oldest.saturating_add(config.quota_duration);
            let wait = u32::try_from(frees.saturating_sub(now).max(1)).unwrap_or(u32::MAX);
            (wait, time::format_rfc3339(frees.saturating_mul(1000)))
        }
        None => (UNKNOWN_WAIT_SECONDS, "in an hour or so".to_owned()),
    };
    PublishError::RateLimited(RateLimit {
        retry_after_seconds: wait.clamp(1, herald_plugin_sdk::failure::MAX_RETRY_SECONDS),
        message: format!(
            "Instagram's publishing limit is used up: {usage} of {} posts in {hours} hours; \
             the post waits until a slot frees ({when})",
            config.quota_total
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_quota_waits_until_the_oldest_post_leaves_the_window() {
        let config = Config {
            quota_total: 100,
            quota_duration: 86_400,
        };
        match full(100, &config, Some(1_000_000), 1_000_000 + 86_000) {
            PublishError::RateLimited(limit) => {
                assert_eq!(limit.retry_after_seconds, 400);
                assert!(
                    limit.message.contains("100 of 100 posts in 24 hours"),
                    "{}",
                    limit.message
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            full(100, &config, None, 5),
            PublishError::RateLimited(RateLimit {
                retry_after_seconds: UNKNOWN_WAIT_SECONDS,
                ..
            })
        ));
    }
}
