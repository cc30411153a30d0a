//! Finding a post the Page published moments ago: after Facebook refused a post as a
//! duplicate (506) or answered an unknown error (1, 2) that may have come after the post
//! was made. Facebook keeps no key of the client's, so a post is recognised by its text
//! among the Page's latest posts (or videos, whose text is their description).

use herald_plugin_sdk::PublishError;
use herald_plugin_sdk::http::{Request, percent_encode};
use serde::Deserialize;

use crate::graph::Graph;

/// How many of the Page's latest posts are searched.
pub const RECENT: u32 = 10;

/// Where a post of one kind is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// `/{page}/feed`, the text in `message` (text, link and photo posts).
    Feed,
    /// `/{page}/videos`, the text in `description`.
    Videos,
}

#[derive(Deserialize)]
struct Listed {
    #[serde(default)]
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// The id of the Page's recent post (on `edge`) whose text is `text`, if any.
pub fn find(
    graph: &Graph<'_>,
    page: &str,
    token: &str,
    edge: Edge,
    text: &str,
) -> Result<Option<String>, PublishError> {
    let (name, field) = match edge {
        Edge::Feed => ("feed", "message"),
        Edge::Videos => ("videos", "description"),
    };
    let url = graph.url(&format!(
        "/{}/{name}?fields=id,{field},created_time&limit={RECENT}",
        percent_encode(page)
    ));
    let listed = graph.call(Request::get(url), token)?.json::<Listed>()?;
    let wanted = text.trim();
    Ok(listed
        .data
        .into_iter()
        .find(|item| {
            let said = match edge {
                Edge::Feed => item.message.as_deref(),
                Edge::Videos => item.description.as_deref(),
            };
            said.unwrap_or_default().trim() == wanted
        })
        .map(|item| item.id))
}
