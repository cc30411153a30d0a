//! The Pages a user manages (`GET /me/accounts`, with each Page's token) and which one a
//! connection is: the credential extra `page` (a Page id), or the only Page the user has.

use herald_plugin_sdk::http::{Request, percent_encode};
use herald_plugin_sdk::{Credentials, PublishError, Violation};
use serde::Deserialize;

use crate::graph::Graph;

/// The credential extra naming the Page a connection posts to.
pub const PAGE_KEY: &str = "page";
/// Most Pages read from `/me/accounts` (one page of results).
const MAX_PAGES: u32 = 100;

/// A Page the user manages, with its Page access token.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Page {
    /// The Page id.
    pub id: String,
    /// The Page's name.
    #[serde(default)]
    pub name: String,
    /// The Page access token (absent when the user may not act for the Page).
    #[serde(default)]
    pub access_token: Option<String>,
}

#[derive(Deserialize)]
struct Accounts {
    #[serde(default)]
    data: Vec<Page>,
}

/// `GET /me/accounts`: the Pages the user token's user manages.
pub fn list(graph: &Graph<'_>, user_token: &str) -> Result<Vec<Page>, PublishError> {
    let url = graph.url(&format!(
        "/me/accounts?fields=id,name,access_token&limit={MAX_PAGES}"
    ));
    Ok(graph
        .call(Request::get(url), user_token)?
        .json::<Accounts>()?
        .data)
}

/// `GET /{page-id}?fields=id,name,access_token`: one Page and its token, read with the user
/// token.
pub fn one(graph: &Graph<'_>, user_token: &str, id: &str) -> Result<Page, PublishError> {
    let url = graph.url(&format!(
        "/{}?fields=id,name,access_token",
        percent_encode(id)
    ));
    graph.call(Request::get(url), user_token)?.json::<Page>()
}

/// The Page of `credentials` among `pages`: the one the `page` extra names, else the only
/// one; a validation error that lists them otherwise.
pub fn choose(credentials: &Credentials, pages: Vec<Page>) -> Result<Page, PublishError> {
    let listed = pages
        .iter()
        .map(|page| format!("{} ({})", page.name, page.id))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(wanted) = credentials.extra_value(PAGE_KEY) {
        return match pages.iter().find(|page| page.id == wanted) {
            Some(page) => Ok(page.clone()),
            None => Err(refuse(format!(
                "this Facebook user does not manage the Page {wanted} (credential extra \
                 `{PAGE_KEY}`); the Pages it manages: {listed}"
            ))),
        };
    }
    let count = pages.len();
    let mut pages = pages.into_iter();
    match (pages.next(), count) {
        (Some(page), 1) => Ok(page),
        (None, _) => Err(refuse(
            "this Facebook user manages no Page (or did not grant Herald access to one): \
             Herald publishes to Pages only"
                .into(),
        )),
        (Some(_), _) => Err(refuse(format!(
            "this Facebook user manages several Pages: {listed}; begin connecting again with \
             the extra {PAGE_KEY}=<page id> to choose one"
        ))),
    }
}

/// A validation error on the `page` extra.
fn refuse(message: String) -> PublishError {
    PublishError::Validation(vec![Violation {
        field: PAGE_KEY.into(),
        code: "page".into(),
        message,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(id: &str, name: &str) -> Page {
        Page {
            id: id.into(),
            name: name.into(),
            access_token: Some(format!("pt-{id}")),
        }
    }

    fn credentials(page: Option<&str>) -> Credentials {
        Credentials {
            access_token: "u".into(),
            refresh_token: None,
            expires_at: None,
            extra: page
                .map(|id| vec![(PAGE_KEY.to_owned(), id.to_owned())])
                .unwrap_or_default(),
        }
    }

    fn message(error: PublishError) -> String {
        match error {
            PublishError::Validation(found) => found[0].message.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_extra_or_the_only_page_is_chosen() {
        let two = vec![page("1", "Bakery"), page("2", "Books")];
        assert_eq!(
            choose(&credentials(Some("2")), two.clone()),
            Ok(page("2", "Books"))
        );
        assert_eq!(
            choose(&credentials(None), vec![page("1", "Bakery")]),
            Ok(page("1", "Bakery"))
        );
        let several = message(choose(&credentials(None), two.clone()).expect_err("several"));
        assert!(
            several.contains("Bakery (1), Books (2)") && several.contains("page=<page id>"),
            "{several}"
        );
        let other = message(choose(&credentials(Some("3")), two).expect_err("unknown"));
        assert!(other.contains("Page 3"), "{other}");
        assert!(message(choose(&credentials(None), vec![]).expect_err("none")).contains("no Page"));
    }
}
