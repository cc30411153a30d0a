//! Herald publisher plugin for Instagram professional (business and creator) accounts,
//! through Instagram's content publishing API.
//!
//! **Two logins** ([`graph`]). Instagram Login (the default, [`oauth`]) is the one Herald's
//! connect flow drives: it needs no Facebook Page, its tokens are the Instagram user's own
//! 60-day tokens on `graph.instagram.com`, renewed by Herald's token lifecycle through
//! `refresh-token` (`ig_refresh_token`). Facebook Login is kept for accounts already run
//! from a Facebook Page (an agency's Business Manager, a Page token shared with the
//! Facebook plugin): such credentials say `login=facebook` in their extras, use
//! `graph.facebook.com`, and name the Instagram account with `ig_user`, or the Page with
//! `page` (its `instagram_business_account`). Both speak the same publishing endpoints and
//! error envelope, so everything below is shared; the Graph version is the extra
//! `graph_version` (default `v25.0`), since Meta retires versions about two years on.
//!
//! **Publishing** ([`container`]): one image, one video (a reel), or a carousel of 2–10
//! items (children containers first); Instagram downloads each media from Herald's signed
//! URL. The container is read until FINISHED (bounded; still IN_PROGRESS → retried
//! later), then published; "not ready" (9007 / 2207027) is retried. The publishing quota is
//! read first ([`quota`]): a full quota waits, with the reason, until a slot frees.
//!
//! **Exactly once** (the SDK's durable [`checkpoint`]s): Instagram takes no idempotency key, so the plugin
//! records the container it made (id and creation time) durably, before anything else can
//! happen, and records the media once published. A later attempt of the same publish (a
//! retry, or after a crash) resumes instead of starting over: a recorded media is the
//! receipt; a container that reads PUBLISHED proves the post went out, and the media it
//! became is found among the account's media since its creation; FINISHED or IN_PROGRESS is
//! published; ERROR or EXPIRED (24 hours) makes a new container.
//!
//! **Limits** ([`checks`]): media required; JPEG images up to 8 MiB, MP4/MOV videos;
//! caption up to 2,200 characters with at most 30 hashtags; alt text on images.

mod checks;
mod container;
mod graph;
mod oauth;
mod quota;

use herald_meta_graph::ContainerStatus;
use herald_plugin_sdk::checkpoint;
use herald_plugin_sdk::{
    Account, Credentials, OauthClient, PluginInfo, Post, PublishError, PublishRequest, Publisher,
    Receipt, Violation, log, register_publisher, time,
};

use crate::graph::Graph;

/// The checkpoint holding the container made for this publish: `<id> <created, Unix s>`.
const CONTAINER: &str = "container";
/// The checkpoint holding the media the container became.
const MEDIA: &str = "media";

/// The Instagram platform.
pub struct Instagram;

impl Publisher for Instagram {
    fn info() -> PluginInfo {
        PluginInfo {
            platform: "instagram".into(),
            display_name: "Instagram".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: checks::limits(),
            // A later attempt resumes the recorded container (see the crate's documentation).
            idempotent_publish: true,
        }
    }

    fn validate(post: Post) -> Vec<Violation> {
        checks::check(&post)
    }

    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        let violations = checks::check(&request.post);
        if !violations.is_empty() {
            return Err(PublishError::Validation(violations));
        }
        let graph = Graph::of(&request.credentials);
        let ig_user = graph.ig_user(&request.credentials)?;
        let post = &request.post;
        if let Some(media) = checkpoint::load(MEDIA)? {
            log::info("resuming: this publish already made its media");
            return receipt(&graph, media);
        }
        let container = match resume(&graph, &ig_user, &post.text)? {
            Resumed::Done(receipt) => return Ok(receipt),
            Resumed::Container(container) => {
                quota::check(&graph, &ig_user)?;
                container
            }
            Resumed::Nothing => {
                quota::check(&graph, &ig_user)?;
                make(&graph, &ig_user, post)?
            }
        };
        match container::wait_processed(&graph, &container.id)? {
            ContainerStatus::Finished => {}
            ContainerStatus::Published => {
                return found(&graph, &ig_user, &container, &post.text);
            }
            other => {
                return Err(PublishError::Retryable(format!(
                    "Instagram's container became {other:?} before it was published; a new \
                     one is made on the next attempt"
                )));
            }
        }
        let media = container::publish(&graph, &ig_user, &container.id)?;
        if let Err(error) = checkpoint::save(MEDIA, &media) {
            log::warn(&format!("could not record the published media: {error:?}"));
        }
        log::info(&format!(
            "published Instagram media {media} from {} media item(s)",
            post.media.len()
        ));
        receipt(&graph, media)
    }

    /// Names the professional account (`@username`, its name).
    fn verify_credentials(credentials: Credentials) -> Result<Account, PublishError> {
        let graph = Graph::of(&credentials);
        let user = if graph.is_facebook() {
            graph.user(&graph.ig_user(&credentials)?)?
        } else {
            let me = graph.me()?;
            let id = me.account_id();
            graph::IgUser { id, ..me }
        };
        Ok(Account {
            handle: user
                .username
                .as_deref()
                .map_or_else(|| user.id.clone(), |name| format!("@{name}")),
            display_name: user.name.filter(|name| !name.trim().is_empty()),
            id: user.id,
        })
    }

    fn oauth_authorize_url(
        client: OauthClient,
        state: String,
        _pkce_challenge: String,
    ) -> Result<String, PublishError> {
        if client.client_id.trim().is_empty() {
            return Err(PublishError::Permanent(
                "the Instagram app's client id is empty".into(),
            ));
        }
        Ok(oauth::authorize_url(&client, &state))
    }

    /// Exchanges the code (Instagram Login has no PKCE: the verifier is not sent) and the
    /// short-lived token for a 60-day one.
    fn oauth_exchange(
        client: OauthClient,
        code: String,
        _verifier: String,
    ) -> Result<Credentials, PublishError> {
        oauth::exchange(&client, &code)
    }

    /// Renews a long-lived Instagram Login token; credentials from Facebook Login are
    /// renewed by connecting again (returned unchanged).
    fn refresh_token(credentials: Credentials) -> Result<Credentials, PublishError> {
        if Graph::of(&credentials).is_facebook() {
            return Ok(credentials);
        }
        oauth::refresh(&credentials)
    }
}

register_publisher!(Instagram);

/// A container this publish made, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Container {
    id: String,
    created: i64,
}

impl Container {
    fn parse(saved: &str) -> Option<Self> {
        let (id, created) = saved.split_once(' ')?;
        Some(Self {
            id: id.to_owned(),
            created: created.parse().ok()?,
        })
    }

    fn saved(&self) -> String {
        format!("{} {}", self.id, self.created)
    }
}

/// What an earlier attempt of this publish left.
enum Resumed {
    /// The post went out: its receipt.
    Done(Receipt),
    /// A container to publish (FINISHED, or still processing).
    Container(Container),
    /// Nothing usable: make a new container.
    Nothing,
}

/// Looks at the container an earlier attempt recorded, if any.
fn resume(graph: &Graph, ig_user: &str, caption: &str) -> Result<Resumed, PublishError> {
    let Some(container) = checkpoint::load(CONTAINER)?.and_then(|saved| Container::parse(&saved))
    else {
        return Ok(Resumed::Nothing);
    };
    let (status, said) = container::status(graph, &container.id)?;
    log::info(&format!(
        "resuming: the container made earlier is {status:?} ({said})"
    ));
    Ok(match status {
        ContainerStatus::Published => Resumed::Done(found(graph, ig_user, &container, caption)?),
        ContainerStatus::Finished | ContainerStatus::InProgress => Resumed::Container(container),
        ContainerStatus::Error | ContainerStatus::Expired => Resumed::Nothing,
    })
}

/// The receipt of a container that reads PUBLISHED: the media it became.
fn found(
    graph: &Graph,
    ig_user: &str,
    container: &Container,
    caption: &str,
) -> Result<Receipt, PublishError> {
    let media = container::find_published(graph, ig_user, container.created, caption)?.ok_or_else(
        || {
            PublishError::Retryable(
                "Instagram says the post went out, but it is not among the account's media \
                 yet; looking again later (it is not published twice)"
                    .into(),
            )
        },
    )?;
    if let Err(error) = checkpoint::save(MEDIA, &media.id) {
        log::warn(&format!("could not record the published media: {error:?}"));
    }
    Ok(match media.permalink {
        Some(url) => Receipt {
            platform_post_id: media.id,
            url,
        },
        None => receipt(graph, media.id)?,
    })
}

/// Makes the post's container (children first for a carousel) and records it before
/// anything else happens.
fn make(graph: &Graph, ig_user: &str, post: &Post) -> Result<Container, PublishError> {
    let id = match post.media.as_slice() {
        [one] => container::create_item(graph, ig_user, one, Some(&post.text))?,
        items => {
            let mut children = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let child = container::create_item(graph, ig_user, item, None)?;
                if container::wait_processed(graph, &child)? != ContainerStatus::Finished {
                    return Err(PublishError::Retryable(format!(
                        "Instagram did not finish processing carousel item {}",
                        index + 1
                    )));
                }
                children.push(child);
            }
            container::create_carousel(graph, ig_user, &children, &post.text)?
        }
    };
    let container = Container {
        id,
        created: i64::try_from(time::now_unix()).unwrap_or(i64::MAX),
    };
    checkpoint::save(CONTAINER, &container.saved())?;
    Ok(container)
}

/// The receipt of published media `id`: its permalink. A failure to read it that may pass
/// is retried (the media is recorded, so the retry only reads it again); any other gives
/// the receipt Instagram's home as its URL rather than failing a post that went out.
fn receipt(graph: &Graph, id: String) -> Result<Receipt, PublishError> {
    match container::permalink(graph, &id) {
        Ok(url) => Ok(Receipt {
            platform_post_id: id,
            url,
        }),
        Err(error @ (PublishError::Retryable(_) | PublishError::RateLimited(_))) => Err(error),
        Err(error) => {
            log::warn(&format!(
                "published media {id}, but its permalink could not be read: {error:?}"
            ));
            Ok(Receipt {
                platform_post_id: id,
                url: "https://www.instagram.com/".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_container_reads_back() {
        let container = Container {
            id: "17889615691921648".into(),
            created: 1_796_490_000,
        };
        assert_eq!(Container::parse(&container.saved()), Some(container));
        assert_eq!(Container::parse("garbage"), None);
    }
}
