//! Finding a post among the account's own recent posts, after X's answer to creating it
//! was lost or X refused a retry as duplicate content. X posts carry no key of the
//! client's, so a post is recognised by its text (as X gives it back: links replaced by
//! `t.co` links, `&`, `<`, `>` escaped, a media link appended) and its number of media.

use herald_plugin_sdk::PublishError;
use herald_plugin_sdk::http::{Request, percent_encode};
use herald_plugin_sdk::scrub::Secrets;

use crate::api::{self, API, Data, Timeline, User};

/// How many of the account's latest posts (replies and reposts left out) are searched.
pub const RECENT_POSTS: u32 = 20;

/// The id of the account's recent post with `text` and `media` attachments, if any.
pub fn find(
    text: &str,
    media: usize,
    token: &str,
    secrets: &Secrets,
) -> Result<Option<String>, PublishError> {
    let me = api::call(Request::get(format!("{API}/2/users/me")), token, secrets)?
        .json::<Data<User>>()?
        .data;
    let timeline = api::call(
        Request::get(format!(
            "{API}/2/users/{}/tweets?max_results={RECENT_POSTS}&exclude=replies,retweets\
             &tweet.fields=attachments",
            percent_encode(&me.id)
        )),
        token,
        secrets,
    )?
    .json::<Timeline>()?;
    let wanted = normalized(text);
    Ok(timeline
        .data
        .into_iter()
        .find(|post| {
            let attached = post
                .attachments
                .as_ref()
                .map_or(0, |attachments| attachments.media_keys.len());
            attached == media && normalized(&post.text) == wanted
        })
        .map(|post| post.id))
}

/// `text` compared as X gives it back: entities unescaped, links left out (X rewrites them
/// to `t.co` and appends one for media), whitespace collapsed.
pub fn normalized(text: &str) -> String {
    let unescaped = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    unescaped
        .split_whitespace()
        .filter(|word| {
            let lower = word.to_ascii_lowercase();
            !(lower.starts_with("http://") || lower.starts_with("https://"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_matches_what_x_gives_back() {
        let sent = "Tom & Jerry <3 https://example.com/a/long/path\nsee you";
        let listed = "Tom &amp; Jerry &lt;3 https://t.co/AbC123 see you https://t.co/media1";
        assert_eq!(normalized(sent), normalized(listed));
        assert_ne!(normalized("Tom & Jerry"), normalized("Tom and Jerry"));
        assert_eq!(normalized("  "), "");
    }
}
