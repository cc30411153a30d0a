//! Which Graph API an account speaks, and as whom.
//!
//! - **Instagram Login** (the default): the Instagram API on `graph.instagram.com`, with the
//!   Instagram user's long-lived token; the professional account is the token's user
//!   (`GET /me?fields=user_id`), recorded at connect as the extra `ig_user`.
//! - **Facebook Login** (the extra `login=facebook`): the Graph API on `graph.facebook.com`
//!   with a Facebook user or Page token; the Instagram account is the extra `ig_user`, or
//!   the one linked to the Page the extra `page` names (its `instagram_business_account`).
//!
//! Either way the Graph version is the account's `graph_version` extra (default
//! [`herald_meta_graph::DEFAULT_GRAPH_VERSION`]), every call carries the token as a bearer
//! header (never in the URL, so it stays out of logs), and a failed answer maps through
//! [`herald_meta_graph::failure`].

use herald_meta_graph::graph_version;
use herald_plugin_sdk::http::{Request, Response, percent_encode};
use herald_plugin_sdk::scrub::Secrets;
use herald_plugin_sdk::{Credentials, PublishError};
use serde::Deserialize;

/// The Instagram API with Instagram Login.
pub const INSTAGRAM_GRAPH: &str = "https://graph.instagram.com";
/// The Graph API (Facebook Login).
pub const FACEBOOK_GRAPH: &str = "https://graph.facebook.com";
/// The credential extra choosing the login: `facebook` for Facebook Login, anything else
/// (or nothing) for Instagram Login.
pub const LOGIN_KEY: &str = "login";
/// The credential extra naming the Facebook Page whose Instagram account posts.
pub const PAGE_KEY: &str = "page";
/// The credential extra naming the Instagram professional account id.
pub const IG_USER_KEY: &str = "ig_user";
/// How the plugin names the platform in messages.
pub const PLATFORM: &str = "Instagram";

/// An account's Graph API: host, version and token.
pub struct Graph {
    base: &'static str,
    version: String,
    token: String,
    secrets: Secrets,
    facebook: bool,
}

/// `GET /me?fields=user_id,username,name` (Instagram Login) or `GET /{ig-user}?fields=…`.
#[derive(Debug, Deserialize)]
pub struct IgUser {
    /// The app-scoped id (Instagram Login) or the professional account id (Facebook Login).
    pub id: String,
    /// The professional account id (Instagram Login only).
    #[serde(default)]
    pub user_id: Option<serde_json::Value>,
    /// `@username` without the `@`.
    #[serde(default)]
    pub username: Option<String>,
    /// The profile's name.
    #[serde(default)]
    pub name: Option<String>,
}

impl IgUser {
    /// The id media containers are created under.
    pub fn account_id(&self) -> String {
        match &self.user_id {
            Some(serde_json::Value::String(id)) if !id.is_empty() => id.clone(),
            Some(serde_json::Value::Number(id)) => id.to_string(),
            _ => self.id.clone(),
        }
    }
}

impl Graph {
    /// The Graph API `credentials` use.
    pub fn of(credentials: &Credentials) -> Self {
        let facebook = credentials
            .extra_value(LOGIN_KEY)
            .is_some_and(|login| login.eq_ignore_ascii_case("facebook"));
        Self {
            base: if facebook {
                FACEBOOK_GRAPH
            } else {
                INSTAGRAM_GRAPH
            },
            version: graph_version(credentials),
            token: credentials.access_token.clone(),
            secrets: Secrets::new(
                std::iter::once(&credentials.access_token).chain(&credentials.refresh_token),
            ),
            facebook,
        }
    }

    /// `path` (e.g. `123/media`) with `query` on this account's versioned API.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/{}/{path}", self.base, self.version);
        for (index, (key, value)) in query.iter().enumerate() {
            url.push(if index == 0 { '?' } else { '&' });
            url.push_str(&format!("{key}={}", percent_encode(value)));
        }
        url
    }

    /// Sends `request` with the token; any answer comes back as it is (transport failures
    /// are errors, scrubbed).
    pub fn send(&self, request: Request) -> Result<Response, PublishError> {
        request
            .bearer(&self.token)
            .send()
            .map_err(|error| PublishError::from(error).scrubbed(&self.secrets))
    }

    /// [`send`](Self::send), a failed answer mapped by [`herald_meta_graph::failure`].
    pub fn call(&self, request: Request) -> Result<Response, PublishError> {
        let response = self.send(request)?;
        if response.is_success() {
            Ok(response)
        } else {
            Err(self.failure(&response))
        }
    }

    /// The error a failed `response` means (scrubbed).
    pub fn failure(&self, response: &Response) -> PublishError {
        herald_meta_graph::failure(response, PLATFORM).scrubbed(&self.secrets)
    }

    /// `GET path?query`, mapped.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Response, PublishError> {
        self.call(Request::get(self.url(path, query)))
    }

    /// `POST path` with a form body, mapped.
    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<Response, PublishError> {
        self.call(Request::post(self.url(path, &[])).form(form))
    }

    /// The Instagram professional account publishing goes to: the `ig_user` extra, else
    /// the token's user (Instagram Login) or the Page's linked account (Facebook Login).
    pub fn ig_user(&self, credentials: &Credentials) -> Result<String, PublishError> {
        if let Some(id) = credentials.extra_value(IG_USER_KEY) {
            return checked_id(IG_USER_KEY, id);
        }
        if !self.facebook {
            return Ok(self.me()?.account_id());
        }
        let page = credentials.extra_value(PAGE_KEY).ok_or_else(|| {
            PublishError::Permanent(format!(
                "an Instagram account connected with Facebook Login needs the `{PAGE_KEY}` \
                 extra (the Facebook Page linked to it) or the `{IG_USER_KEY}` extra"
            ))
        })?;
        let page = checked_id(PAGE_KEY, page)?;
        #[derive(Deserialize)]
        struct Linked {
            id: String,
        }
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            instagram_business_account: Option<Linked>,
        }
        let linked = self
            .get(&page, &[("fields", "instagram_business_account")])?
            .json::<Page>()?;
        linked
            .instagram_business_account
            .map(|account| account.id)
            .ok_or_else(|| {
                PublishError::Permanent(
                    "the Facebook Page has no Instagram professional account linked to it \
                     (link one in the Page's settings, or name it with the `ig_user` extra)"
                        .into(),
                )
            })
    }

    /// The token's Instagram user (Instagram Login).
    pub fn me(&self) -> Result<IgUser, PublishError> {
        self.get("me", &[("fields", "user_id,username,name")])?
            .json::<IgUser>()
    }

    /// The Instagram account `id` as the Graph API describes it.
    pub fn user(&self, id: &str) -> Result<IgUser, PublishError> {
        self.get(id, &[("fields", "id,username,name")])?
            .json::<IgUser>()
    }

    /// Whether the account uses Facebook Login.
    pub fn is_facebook(&self) -> bool {
        self.facebook
    }
}

/// `value` of extra `key` when it is a Graph id (digits only), else a permanent error
/// naming the extra.
fn checked_id(key: &str, value: &str) -> Result<String, PublishError> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err(PublishError::Permanent(format!(
            "the account's `{key}` credential extra must be a numeric Graph id"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(extra: &[(&str, &str)]) -> Credentials {
        Credentials {
            access_token: "tok".into(),
            refresh_token: None,
            expires_at: None,
            extra: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_login_chooses_the_host_and_the_version_is_a_setting() {
        let instagram = Graph::of(&credentials(&[]));
        assert_eq!(
            instagram.url("17841400/media", &[("fields", "a,b")]),
            "https://graph.instagram.com/v25.0/17841400/media?fields=a%2Cb"
        );
        let facebook = Graph::of(&credentials(&[
            ("login", "facebook"),
            ("graph_version", "v26.0"),
        ]));
        assert!(facebook.is_facebook());
        assert_eq!(
            facebook.url("me", &[]),
            "https://graph.facebook.com/v26.0/me"
        );
    }

    #[test]
    fn an_ig_user_extra_must_be_an_id() {
        let graph = Graph::of(&credentials(&[]));
        assert_eq!(
            graph.ig_user(&credentials(&[("ig_user", "17841400")])),
            Ok("17841400".into())
        );
        assert!(matches!(
            graph.ig_user(&credentials(&[("ig_user", "../me")])),
            Err(PublishError::Permanent(m)) if m.contains("`ig_user`")
        ));
    }

    #[test]
    fn the_account_id_is_the_professional_account() {
        let me: IgUser =
            serde_json::from_str(r#"{"id":"2649","user_id":17841400,"username":"alice"}"#)
                .expect("json");
        assert_eq!(me.account_id(), "17841400");
        let plain: IgUser = serde_json::from_str(r#"{"id":"17841401"}"#).expect("json");
        assert_eq!(plain.account_id(), "17841401");
    }
}
