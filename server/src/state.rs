//! The long-lived parts of a Herald process, shared by the API and the workers: the
//! database, the queue, the event bus, the loaded plugins and the services over them.
//! [`Services::builder`] takes everything the services depend on (plugins included)
//! before any service is made, so each is built once, complete.

use std::sync::Arc;

use herald_plugin_host::PluginHost;
use sea_orm::DatabaseConnection;

use crate::connections::{AccountPolicy, ConnectionService};
use crate::domain::oauth_apps::OauthConfig;
use crate::events::relay::{self, Relay};
use crate::events::{ConnectionBus, EventBus};
use crate::media::{MediaConfig, MediaLibrary};
use crate::metrics::MetricsService;
use crate::oauth::ConnectFlows;
use crate::posts::PostService;
use crate::queue::{JobQueue, QueueError};
use crate::secrets::TokenCipher;
use crate::tenant_queue::TenantQueue;
use crate::worker::lateness::LatenessRecorder;

/// Events buffered per subscriber before a slow one starts skipping.
const EVENT_BUFFER: usize = 1_024;

/// The long-lived parts of a Herald process.
#[derive(Clone)]
pub struct Services {
    /// Postgres as the API reaches it: row-level security holds each query to the tenant
    /// of its scope (`db::tenant`).
    pub db: DatabaseConnection,
    /// Postgres as the workers and the reconciler reach it, across tenants.
    pub worker_db: DatabaseConnection,
    /// The publishing queue.
    pub queue: Arc<dyn JobQueue>,
    /// Post change announcements.
    pub events: EventBus,
    /// Connected-account change announcements.
    pub connection_events: ConnectionBus,
    /// Post operations.
    pub posts: PostService,
    /// Each tenant's part of the queue.
    pub tenant_queue: TenantQueue,
    /// Lateness of this process's claims.
    pub lateness: Arc<LatenessRecorder>,
    /// Loaded publisher plugins, if a plugin directory is configured.
    pub plugins: Option<PluginHost>,
    /// Connected accounts and their sealed tokens.
    pub connections: ConnectionService,
    /// OAuth connect flows.
    pub connect_flows: ConnectFlows,
    /// OAuth apps, redirect URIs and refresh timing.
    pub oauth: Arc<OauthConfig>,
    /// Engagement figures of published posts.
    pub metrics: MetricsService,
    /// The Redis relays of post and connection events between processes, once started.
    pub relay: Option<Arc<(Relay, Relay)>>,
    /// The media library.
    pub media: MediaLibrary,
}

/// What [`Services`] are built from.
#[derive(Clone)]
pub struct ServicesBuilder {
    db: DatabaseConnection,
    worker_db: Option<DatabaseConnection>,
    queue: Arc<dyn JobQueue>,
    cipher: TokenCipher,
    plugins: Option<PluginHost>,
    account_policy: AccountPolicy,
    oauth: OauthConfig,
    media: Option<(MediaConfig, Arc<dyn object_store::ObjectStore>)>,
}

impl Services {
    /// Services over a database and a queue, sealing tokens with `cipher`; add plugins on
    /// the builder before [`ServicesBuilder::build`].
    pub fn builder(
        db: DatabaseConnection,
        queue: Arc<dyn JobQueue>,
        cipher: TokenCipher,
    ) -> ServicesBuilder {
        ServicesBuilder {
            db,
            worker_db: None,
            queue,
            cipher,
            plugins: None,
            account_policy: AccountPolicy::default(),
            oauth: OauthConfig::default(),
            media: None,
        }
    }

    /// Relays post events through the Redis at `redis_url` (namespace `namespace`); with
    /// `listen`, this process's subscribers also get other processes' events.
    pub async fn with_event_relay(
        mut self,
        redis_url: &str,
        namespace: &str,
        listen: bool,
    ) -> Result<Self, QueueError> {
        let posts = relay::start(redis_url, namespace, "post-events", &self.events, listen).await?;
        let connections = relay::start(
            redis_url,
            namespace,
            "connection-events",
            &self.connection_events,
            listen,
        )
        .await?;
        self.relay = Some(Arc::new((posts, connections)));
        Ok(self)
    }
}

impl ServicesBuilder {
    /// Publisher plugins: their platforms become valid post targets (which need a
    /// connected account to be scheduled), and they verify accounts and fetch metrics.
    pub fn plugins(mut self, plugins: Option<PluginHost>) -> Self {
        self.plugins = plugins;
        self
    }

    /// The workers' pool (default: the API's, e.g. for a user row-level security does not
    /// hold, as in benchmarks).
    pub fn worker_db(mut self, worker_db: DatabaseConnection) -> Self {
        self.worker_db = Some(worker_db);
        self
    }

    /// Who may connect and disconnect accounts (default: the tenants' admins).
    pub fn account_policy(mut self, policy: AccountPolicy) -> Self {
        self.account_policy = policy;
        self
    }

    /// OAuth apps, redirect URIs and refresh timing (default: none configured).
    pub fn oauth(mut self, oauth: OauthConfig) -> Self {
        self.oauth = oauth;
        self
    }

    /// The media library's settings and its opened store (default: in memory, with a
    /// random signing key).
    pub fn media(mut self, config: MediaConfig, store: Arc<dyn object_store::ObjectStore>) -> Self {
        self.media = Some((config, store));
        self
    }

    /// The services.
    pub fn build(self) -> Services {
        let Self {
            db,
            worker_db,
            queue,
            cipher,
            plugins,
            account_policy,
            oauth,
            media,
        } = self;
        let (media_config, media_store): (MediaConfig, Arc<dyn object_store::ObjectStore>) = media
            .unwrap_or_else(|| {
                (
                    MediaConfig::default(),
                    Arc::new(object_store::memory::InMemory::new()),
                )
            });
        let worker_db = worker_db.unwrap_or_else(|| db.clone());
        let media = MediaLibrary::new(db.clone(), worker_db.clone(), media_config, media_store);
        let oauth = Arc::new(oauth);
        let events = EventBus::new(EVENT_BUFFER);
        let connection_events = ConnectionBus::new(EVENT_BUFFER);
        let connections = ConnectionService::new(db.clone(), cipher.clone(), plugins.clone())
            .with_policy(account_policy)
            .with_events(connection_events.clone())
            .with_resumption(queue.clone(), events.clone());
        let connect_flows = ConnectFlows::new(
            db.clone(),
            worker_db.clone(),
            cipher,
            plugins.clone(),
            oauth.clone(),
            connections.clone(),
        );
        let metrics = MetricsService::new(db.clone(), connections.clone(), plugins.clone());
        let posts = PostService::new(
            db.clone(),
            events.clone(),
            queue.clone(),
            connections.clone(),
            plugins.clone(),
        )
        .with_media(media.clone());
        Services {
            tenant_queue: TenantQueue::new(db.clone(), queue.clone()),
            worker_db,
            db,
            queue,
            events,
            connection_events,
            posts,
            lateness: Arc::new(LatenessRecorder::default()),
            plugins,
            connections,
            connect_flows,
            oauth,
            metrics,
            relay: None,
            media,
        }
    }
}
