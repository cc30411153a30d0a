//! The credential: a channel webhook URL, `https://discord.com/api/webhooks/{id}/{token}`.
//! Whoever holds it can post to the channel, so it is never logged or put in an error.

use std::fmt;

/// Where the plugin sends requests (the API version the fake and the plugin agree on).
pub const API_BASE: &str = "https://discord.com/api/v10";

/// A parsed webhook URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The webhook's id (a snowflake).
    pub id: String,
    token: String,
}

/// Why a string is not a Discord webhook URL (the message never repeats the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAWebhook(pub &'static str);

impl fmt::Display for NotAWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a Discord webhook URL ({}): expected https://discord.com/api/webhooks/<id>/<token>",
            self.0
        )
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Webhook {
    /// Parses `https://discord.com/api[/v<N>]/webhooks/<id>/<token>` (a trailing slash or
    /// query string is ignored).
    pub fn parse(url: &str) -> Result<Self, NotAWebhook> {
        let rest = url
            .trim()
            .strip_prefix("https://discord.com/api/")
            .ok_or(NotAWebhook("it must start with https://discord.com/api/"))?;
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let mut segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        if segments.first().is_some_and(|first| is_api_version(first)) {
            segments.remove(0);
        }
        let [kind, id, token] = segments.as_slice() else {
            return Err(NotAWebhook("wrong number of path segments"));
        };
        if *kind != "webhooks" {
            return Err(NotAWebhook("the path must be /api/webhooks/…"));
        }
        if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NotAWebhook("the webhook id must be a numeric snowflake"));
        }
        let token_ok = (1..=100).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !token_ok {
            return Err(NotAWebhook("malformed webhook token"));
        }
        Ok(Self {
            id: (*id).to_owned(),
            token: (*token).to_owned(),
        })
    }

    /// The secret part of the URL (to scrub from messages that might quote the URL).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The API URL of the webhook (`GET` describes it, `POST` executes it).
    pub fn endpoint(&self) -> String {
        format!("{API_BASE}/webhooks/{}/{}", self.id, self.token)
    }
}

fn is_api_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The public link of a message: `https://discord.com/channels/<guild or @me>/<channel>/<id>`.
pub fn message_url(guild_id: Option<&str>, channel_id: &str, message_id: &str) -> String {
    format!(
        "https://discord.com/channels/{}/{channel_id}/{message_id}",
        guild_id.filter(|g| !g.is_empty()).unwrap_or("@me")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_webhook_urls_with_or_without_version() {
        for url in [
            "https://discord.com/api/webhooks/123456789012345678/abc_DEF-9",
            "https://discord.com/api/v10/webhooks/123456789012345678/abc_DEF-9/",
            " https://discord.com/api/webhooks/123456789012345678/abc_DEF-9?wait=true ",
        ] {
            let hook = Webhook::parse(url).expect(url);
            assert_eq!(hook.id, "123456789012345678");
            assert_eq!(
                hook.endpoint(),
                "https://discord.com/api/v10/webhooks/123456789012345678/abc_DEF-9"
            );
        }
    }

    #[test]
    fn refuses_other_urls_without_repeating_them() {
        for url in [
            "http://discord.com/api/webhooks/1/secret",
            "https://evil.example/api/webhooks/1/secret",
            "https://discord.com/api/channels/1/secret",
            "https://discord.com/api/webhooks/abc/secret",
            "https://discord.com/api/webhooks/1",
            "https://discord.com/api/webhooks/1/sec%72et",
            "https://discord.com/api/webhooks/1/secret/extra",
        ] {
            let error = Webhook::parse(url).expect_err(url);
            assert!(!error.to_string().contains("secret"), "{error}");
        }
        let hook = Webhook::parse("https://discord.com/api/webhooks/1/secret").expect("valid");
        assert!(!format!("{hook:?}").contains("secret"));
    }

    #[test]
    fn message_links_use_the_guild_or_at_me() {
        assert_eq!(
            message_url(Some("1"), "2", "3"),
            "https://discord.com/channels/1/2/3"
        );
        assert_eq!(
            message_url(None, "2", "3"),
            "https://discord.com/channels/@me/2/3"
        );
    }
}
