//! Posts on behalf of a caller: every read and write of posts and their targets, scoped
//! to the caller's tenant, in transactions, keeping the publishing queue in step.
//!
//! - [`input`]: what a caller asks (new post, changes) and the validated edit;
//! - [`checks`]: what a post must pass before it is scheduled, run with the row released;
//! - [`commands`]: create, edit, schedule, approve, archive, retry, mark published, delete;
//! - [`paging`]: one post, pages of posts and their targets;
//! - [`schedules`]: the accounts' posting schedules and the slots of their queues;
//! - [`queueing`]: placing posts in those queues, moving queued posts.
//!
//! The SQL is in `db::posts` and `db::targets`; the rules in `domain`.

mod checks;
mod commands;
mod input;
mod paging;
mod queueing;
mod schedules;

use std::sync::Arc;

use herald_plugin_host::PluginHost;
use sea_orm::DatabaseConnection;

pub use input::{NewPost, PostChanges};
pub use paging::{Keyset, Page, PageRequest, PostFilter, SortKey, sort_value};
pub use schedules::{MAX_SLOT_RANGE, PostingSchedule, QueueSlot};

use crate::connections::ConnectionService;
use crate::db::entities::{post, target};
use crate::dispatch;
use crate::domain::actor::Actor;
use crate::domain::post::{self as rules, MediaItem};
use crate::error::AppError;
use crate::events::{EventBus, PostEvent};
use crate::media::MediaLibrary;
use crate::queue::JobQueue;

/// Reads and changes posts on behalf of an [`Actor`], keeping the publishing queue in step.
#[derive(Clone)]
pub struct PostService {
    db: DatabaseConnection,
    events: EventBus,
    queue: Arc<dyn JobQueue>,
    connections: ConnectionService,
    /// Loaded publisher plugins, which validate posts for their platforms.
    plugins: Option<PluginHost>,
    /// Platforms a post may target.
    platforms: Arc<[String]>,
    /// Platforms that publish as a connected account (those of loaded plugins, and the
    /// built-in `webhook`).
    account_platforms: Arc<[String]>,
    /// The media library, whose files posts may name by id.
    media: Option<MediaLibrary>,
}

impl std::fmt::Debug for PostService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostService").finish_non_exhaustive()
    }
}

impl PostService {
    /// A service over `db` that announces changes on `events` and schedules on `queue`.
    /// Posts may target the built-in platforms and those of `plugins`; scheduling a post
    /// on a plugin's platform needs a connected account and passing the plugin's
    /// validation.
    pub fn new(
        db: DatabaseConnection,
        events: EventBus,
        queue: Arc<dyn JobQueue>,
        connections: ConnectionService,
        plugins: Option<PluginHost>,
    ) -> Self {
        let plugin_platforms: Vec<String> = plugins
            .iter()
            .flat_map(PluginHost::platforms)
            .map(|info| info.platform)
            .collect();
        let mut platforms: Vec<String> = rules::KNOWN_PLATFORMS
            .iter()
            .map(|p| p.to_string())
            .collect();
        for platform in &plugin_platforms {
            if !platforms.contains(platform) {
                platforms.push(platform.clone());
            }
        }
        platforms.sort();
        Self {
            db,
            events,
            queue,
            connections,
            plugins,
            platforms: platforms.into(),
            account_platforms: plugin_platforms
                .into_iter()
                .chain([crate::domain::webhook::PLATFORM.to_owned()])
                .collect(),
            media: None,
        }
    }

    /// The service with posts able to name `media`'s files by id.
    pub fn with_media(mut self, media: MediaLibrary) -> Self {
        self.media = Some(media);
        self
    }

    /// Attaches the library files `media` names by id (`media_id`): `BAD_USER_INPUT` for a
    /// file the tenant does not have, or when no library is configured.
    async fn attach_media(&self, actor: &Actor, media: &mut [MediaItem]) -> Result<(), AppError> {
        match &self.media {
            Some(library) => library.attach(actor, media, "media").await,
            None => match media.iter().position(|item| item.media_id.is_some()) {
                Some(index) => Err(AppError::bad_input(
                    format!("media[{index}]"),
                    "this server has no media library",
                )),
                None => Ok(()),
            },
        }
    }

    /// After a commit: announce the change and bring the queue in step.
    async fn changed(&self, post: &post::Model, targets: &[target::Model]) {
        self.events.publish(PostEvent { post: post.clone() });
        dispatch::sync(&self.queue, post, targets).await;
    }
}
