//! The Bot API's conventions: `https://api.telegram.org/bot<token>/<method>`, every answer
//! an envelope `{ok, result}` or `{ok: false, error_code, description, parameters}` with
//! `parameters.retry_after` (seconds) on 429. The token is part of every URL, so every
//! message that may quote a URL is scrubbed of it.

use herald_plugin_sdk::PublishError;
use herald_plugin_sdk::failure::{Failure, Kind};
use herald_plugin_sdk::http::{HttpError, Response};
use herald_plugin_sdk::scrub::Secrets;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A bot token, `<bot id>:<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

impl std::fmt::Debug for BotToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BotToken([redacted])")
    }
}

impl BotToken {
    /// Checks the shape `123456:ABC-def_…` (digits, a colon, URL-safe characters).
    pub fn parse(token: &str) -> Result<Self, PublishError> {
        let token = token.trim();
        let valid = token.split_once(':').is_some_and(|(id, secret)| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && (20..=100).contains(&secret.len())
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if valid {
            Ok(Self(token.to_owned()))
        } else {
            Err(PublishError::AuthExpired(
                "not a Telegram bot token (expected <bot id>:<secret> from @BotFather); reconnect the account".into(),
            ))
        }
    }

    /// The URL of Bot API `method`.
    pub fn method_url(&self, method: &str) -> String {
        format!("https://api.telegram.org/bot{}/{method}", self.0)
    }

    /// The token, to scrub (raw or percent-encoded) from messages.
    fn secrets(&self) -> Secrets {
        Secrets::new([&self.0])
    }

    /// `text` with the token replaced.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets().scrub(text)
    }

    /// A host error, scrubbed of the token.
    pub fn http_error(&self, error: HttpError) -> PublishError {
        scrub_error(PublishError::from(error), self)
    }

    /// The `result` of a successful answer, or the error Herald acts on: 429 → rate
    /// limited after `parameters.retry_after`; 401 → auth expired (the token was revoked);
    /// 400/403/404 → permanent with Telegram's description (a group migrated to a
    /// supergroup names its new chat id); 5xx → retryable (see `status_error`).
    pub fn result<T: DeserializeOwned>(&self, response: &Response) -> Result<T, PublishError> {
        let envelope: Envelope<T> = serde_json::from_slice(&response.body).map_err(|error| {
            if response.is_success() {
                PublishError::Permanent(format!("unexpected answer from Telegram: {error}"))
            } else {
                status_error(
                    response.status,
                    &format!("HTTP {}", response.status),
                    None,
                    response,
                )
            }
        })?;
        match envelope {
            Envelope {
                ok: true,
                result: Some(result),
                ..
            } if response.is_success() => Ok(result),
            Envelope {
                error_code,
                description,
                parameters,
                ..
            } => {
                let code = error_code
                    .and_then(|code| u16::try_from(code).ok())
                    .filter(|code| *code >= 400)
                    .unwrap_or(if response.is_success() {
                        500
                    } else {
                        response.status
                    });
                let description = self.scrub(description.as_deref().unwrap_or("no description"));
                Err(scrub_error(
                    status_error(code, &description, parameters, response),
                    self,
                ))
            }
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    #[serde(default = "Option::default")]
    result: Option<T>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

/// `ResponseParameters`.
#[derive(Deserialize, Default)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<i64>,
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

/// The SDK's mapping of Telegram's `error_code` (its real status), with Telegram's own
/// cases: a rate limit waits `parameters.retry_after`, a group migrated to a supergroup
/// names its new chat id, messages in Telegram's words.
fn status_error(
    code: u16,
    description: &str,
    parameters: Option<Parameters>,
    response: &Response,
) -> PublishError {
    let parameters = parameters.unwrap_or_default();
    if let (400, Some(chat_id)) = (code, parameters.migrate_to_chat_id) {
        return PublishError::Permanent(format!(
            "Telegram: {description}; the group is now chat {chat_id}: set chat_id to it"
        ));
    }
    let failure = Failure::new(response).with_status(code).retry_after(
        parameters
            .retry_after
            .and_then(|seconds| u32::try_from(seconds).ok()),
    );
    let message = match failure.kind() {
        Kind::RateLimited => format!("Telegram: {description}"),
        Kind::AuthExpired => format!(
            "Telegram refused the bot token ({description}); reconnect the account with a new token"
        ),
        Kind::Retryable => format!("Telegram is unavailable: {description}"),
        Kind::Permanent => format!("Telegram refused the request ({code}): {description}"),
    };
    failure.message(message).into_error()
}

fn scrub_error(error: PublishError, token: &BotToken) -> PublishError {
    error.scrubbed(&token.secrets())
}

/// A message's public link: `https://t.me/<username>/<id>` for a chat with a public
/// username; `https://t.me/c/<internal id>/<id>` for a channel or supergroup without one
/// (opens for its members); empty for private chats and basic groups, which have no
/// message links.
pub fn message_link(chat_id: i64, username: Option<&str>, message_id: i64) -> String {
    if let Some(username) = username.filter(|name| !name.is_empty()) {
        return format!("https://t.me/{username}/{message_id}");
    }
    // Channels and supergroups have ids -100<internal id>.
    let text = chat_id.to_string();
    match text.strip_prefix("-100") {
        Some(internal) if !internal.is_empty() => {
            format!("https://t.me/c/{internal}/{message_id}")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    fn token() -> BotToken {
        BotToken::parse(TOKEN).expect("token")
    }

    fn response(status: u16, body: &str) -> Response {
        Response::new(status, &[], body)
    }

    #[test]
    fn tokens_are_checked_and_never_shown() {
        assert_eq!(
            token().method_url("getMe"),
            format!("https://api.telegram.org/bot{TOKEN}/getMe")
        );
        for bad in [
            "",
            "abc:def",
            "123456",
            "12:short",
            "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDs/w",
        ] {
            assert!(
                matches!(BotToken::parse(bad), Err(PublishError::AuthExpired(_))),
                "{bad}"
            );
        }
        assert!(!format!("{:?}", token()).contains("AAH"));
        let error = token().http_error(HttpError::Transport(format!(
            "error sending request for url (https://api.telegram.org/bot{TOKEN}/sendMessage): client error (SendRequest)"
        )));
        match error {
            PublishError::Retryable(m) => {
                assert!(!m.contains(TOKEN) && m.contains("bot[redacted]"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_map_to_what_herald_does() {
        let ok: i64 = token()
            .result(&response(200, r#"{"ok":true,"result":7}"#))
            .expect("ok");
        assert_eq!(ok, 7);
        let limited = token().result::<i64>(&response(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#,
        ));
        assert!(matches!(limited, Err(PublishError::RateLimited(l)) if l.retry_after_seconds == 3));
        let revoked = token().result::<i64>(&response(
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        ));
        assert!(matches!(revoked, Err(PublishError::AuthExpired(m)) if m.contains("reconnect")));
        for (status, description) in [
            (400, "Bad Request: chat not found"),
            (403, "Forbidden: bot was kicked from the channel chat"),
        ] {
            let body =
                format!(r#"{{"ok":false,"error_code":{status},"description":"{description}"}}"#);
            assert!(matches!(
                token().result::<i64>(&response(status, &body)),
                Err(PublishError::Permanent(m)) if m.contains(description)
            ));
        }
        let migrated = token().result::<i64>(&response(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#,
        ));
        assert!(matches!(migrated, Err(PublishError::Permanent(m)) if m.contains("-1001234")));
        assert!(matches!(
            token().result::<i64>(&response(502, "<html>Bad Gateway</html>")),
            Err(PublishError::Retryable(_))
        ));
        assert!(matches!(
            token().result::<i64>(&response(200, "not json")),
            Err(PublishError::Permanent(_))
        ));
    }

    #[test]
    fn links_use_the_username_or_the_internal_channel_id() {
        assert_eq!(
            message_link(-1001, Some("herald_news"), 5),
            "https://t.me/herald_news/5"
        );
        assert_eq!(
            message_link(-1001234567890, None, 5),
            "https://t.me/c/1234567890/5"
        );
        assert_eq!(message_link(42, None, 5), "");
        assert_eq!(message_link(-42, Some(""), 5), "");
    }
}
