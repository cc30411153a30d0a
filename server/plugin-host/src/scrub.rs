//! URLs as logs and error messages may show them: credentials some platforms carry in the
//! URL itself are masked (Telegram's `/bot<token>/…`, Discord's and Slack's webhook
//! tokens, every query value such as `access_token=`, userinfo, the fragment).

use url::Url;

/// What a masked part reads.
const MASK: &str = "***";

/// `url` with the credentials it may carry masked: userinfo and fragment dropped, every
/// query value masked (the keys stay), and path segments known to be tokens masked.
pub fn url_for_log(url: &Url) -> String {
    let mut shown = url.clone();
    // Fails only for URLs that cannot have userinfo, which then have none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_fragment(None);
    if url.query().is_some() {
        let keys: Vec<String> = url.query_pairs().map(|(key, _)| key.into_owned()).collect();
        shown.set_query(None);
        if !keys.is_empty() {
            let mut pairs = shown.query_pairs_mut();
            for key in &keys {
                pairs.append_pair(key, MASK);
            }
        }
    }
    if let Some(segments) = url.path_segments() {
        let segments: Vec<&str> = segments.collect();
        let masked: Vec<String> = segments
            .iter()
            .enumerate()
            .map(|(index, segment)| {
                if is_bot_token(segment) {
                    format!("bot{MASK}")
                } else if is_webhook_token(&segments, index) {
                    MASK.to_owned()
                } else {
                    (*segment).to_owned()
                }
            })
            .collect();
        shown.set_path(&masked.join("/"));
    }
    shown.to_string()
}

/// A Telegram bot token segment: `bot<digits>:<secret>`.
fn is_bot_token(segment: &str) -> bool {
    let Some(token) = segment.strip_prefix("bot") else {
        return false;
    };
    // `:` may arrive percent-encoded.
    let token = token.replacen("%3A", ":", 1).replacen("%3a", ":", 1);
    token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !secret.is_empty()
    })
}

/// The token of a webhook URL: the segment after the id in Discord's
/// `…/webhooks/<id>/<token>` and every segment after `services` in Slack's
/// `/services/<team>/<bot>/<token>`.
fn is_webhook_token(segments: &[&str], index: usize) -> bool {
    let after = |name: &str, distance: usize| {
        index
            .checked_sub(distance)
            .and_then(|at| segments.get(at))
            .is_some_and(|segment| segment.eq_ignore_ascii_case(name))
    };
    after("webhooks", 2) || after("services", 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(url: &str) -> String {
        url_for_log(&Url::parse(url).expect("url"))
    }

    #[test]
    fn telegram_bot_tokens_are_masked() {
        assert_eq!(
            shown("https://api.telegram.org/bot123456:AAHk-secret_Token/sendMessage"),
            "https://api.telegram.org/bot***/sendMessage"
        );
        assert_eq!(
            shown("https://api.telegram.org/file/bot123456:AAHk-secret/photos/file_1.jpg"),
            "https://api.telegram.org/file/bot***/photos/file_1.jpg"
        );
        assert_eq!(
            shown("https://api.telegram.org/bot123456%3AAAHk-secret/getMe"),
            "https://api.telegram.org/bot***/getMe"
        );
        assert_eq!(
            shown("https://example.com/bots/list"),
            "https://example.com/bots/list"
        );
    }

    #[test]
    fn webhook_tokens_are_masked() {
        assert_eq!(
            shown("https://discord.com/api/webhooks/1234567890/sEcReT-tOkEn?wait=true"),
            "https://discord.com/api/webhooks/1234567890/***?wait=***"
        );
        assert_eq!(
            shown("https://discord.com/api/v10/webhooks/1234567890/sEcReT/messages/@original"),
            "https://discord.com/api/v10/webhooks/1234567890/***/messages/@original"
        );
        assert_eq!(
            shown("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/services/T000/B000/***"
        );
    }

    #[test]
    fn query_values_userinfo_and_fragments_are_masked() {
        assert_eq!(
            shown("https://graph.example.com/v1/me?access_token=EAAB-secret&fields=id,name"),
            "https://graph.example.com/v1/me?access_token=***&fields=***"
        );
        assert_eq!(
            shown("https://user:hunter2@example.com/x?api_key=k#token=t"),
            "https://example.com/x?api_key=***"
        );
        assert_eq!(
            shown("https://example.com/plain/path"),
            "https://example.com/plain/path"
        );
        let logged = shown("https://example.com/cb?code=abc123&state=xyz");
        assert!(
            !logged.contains("abc123") && !logged.contains("xyz"),
            "{logged}"
        );
    }
}
