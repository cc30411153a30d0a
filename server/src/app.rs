//! Builds Herald's state and HTTP router from configuration. Tests call [`router`] with
//! their own database, so the whole API is exercised without a separate process.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Request, State, WebSocketUpgrade};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_plugin_host::PluginHost;
use herald_plugin_host::address::AddressPolicy;
use tokio::net::TcpListener;

use tokio_util::sync::CancellationToken;

use crate::auth::JwtVerifier;
use crate::config::GraphqlConfig;
use crate::config::{ConfigError, QueueConfig, ServeConfig, WorkerProcessConfig};
use crate::db;
use crate::graphql;
use crate::graphql::serve::http::Endpoint;
use crate::graphql::serve::persisted::{PersistedQueries, PersistedQueryError};
use crate::graphql::serve::{compiled, documents, fanout, graphiql, http, limits, ws};
use crate::health::Health;
use crate::media;
use crate::oauth;
use crate::publish::PublisherRegistry;
use crate::publish::plugin::PluginPublisher;
use crate::publish::webhook::WebhookPublisher;
use crate::queue::redis::RedisQueue;
use crate::queue::{JobQueue, QueueError};
use crate::secrets::TokenCipher;
use crate::state::{Services, ServicesBuilder};
use crate::token_refresh::Refresher;
use crate::worker::reconcile::{self, ReconcileConfig};
use crate::worker::store::PublishStore;
use crate::worker::{self, WorkerConfig, WorkerDeps, WorkerHandle};

/// Read buffer of one WebSocket connection (it grows for a longer message): clients send
/// little, and it is kept for the connection's life.
const WS_READ_BUFFER_BYTES: usize = 1024;
/// Output gathered before a write to the socket.
const WS_WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// Largest WebSocket message accepted, and most output buffered for a slow client.
const WS_MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The queue could not be reached.
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    /// A built-in publisher could not be set up.
    #[error("publisher: {0}")]
    Publisher(String),
    /// The plugin directory could not be read or the plugin sandbox set up.
    #[error("plugins: {0}")]
    Plugins(#[from] herald_plugin_host::PluginError),
    /// The token keys do not open the stored tokens.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    /// The media store could not be opened.
    #[error(transparent)]
    Media(#[from] media::store::StorageError),
    /// The persisted-query store could not be reached.
    #[error(transparent)]
    PersistedQueries(#[from] PersistedQueryError),
    /// The listen address could not be bound, or serving failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Loads the plugin directory, when one is configured.
pub async fn load_plugins(
    config: Option<herald_plugin_host::HostConfig>,
) -> Result<Option<PluginHost>, StartupError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let host = PluginHost::load(config).await?;
    tracing::info!(
        platforms = host.platforms().len(),
        "publisher plugins loaded"
    );
    for (path, reason) in host.rejected() {
        tracing::warn!(path = %path.display(), %reason, "plugin not loaded");
    }
    Ok(Some(host))
}

/// Running workers and reconciler of a process.
pub struct Background {
    worker: WorkerHandle,
    reconciler: tokio::task::JoinHandle<()>,
    refresher: Option<tokio::task::JoinHandle<()>>,
    media_gc: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl Background {
    /// Stops claiming, records in-flight publishes, stops reconciling.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.worker.shutdown().await;
        let _ = self.reconciler.await;
        if let Some(refresher) = self.refresher {
            let _ = refresher.await;
        }
        let _ = self.media_gc.await;
    }
}

/// Starts a worker, the reconciler, the media garbage collector and (with plugins) the
/// token refresher over `services`.
pub fn start_background(
    services: &Services,
    publishers: PublisherRegistry,
    worker: WorkerConfig,
    reconcile: ReconcileConfig,
) -> Background {
    let stop = CancellationToken::new();
    let handle = worker::spawn(
        WorkerDeps {
            queue: services.queue.clone(),
            store: PublishStore::new(services.worker_db.clone()),
            publishers: Arc::new(publishers),
            events: services.events.clone(),
            lateness: services.lateness.clone(),
            media: services.media.urls().clone(),
        },
        worker,
    );
    let reconciler = reconcile::spawn(
        services.worker_db.clone(),
        services.queue.clone(),
        reconcile,
        stop.clone(),
    );
    let refresher = services.plugins.clone().map(|plugins| {
        Refresher::new(
            services.worker_db.clone(),
            services.connections.clone(),
            plugins,
            services.oauth.clone(),
        )
        .spawn(stop.clone())
    });
    let media_gc = media::gc::spawn(services.media.clone(), stop.clone());
    Background {
        worker: handle,
        reconciler,
        refresher,
        media_gc,
        stop,
    }
}

/// The publishers of this process: one per loaded plugin platform, and the built-in
/// `webhook` (each tenant's own receiver, reached under the `outbound` address policy).
/// Refreshes during a publish are lent the services' OAuth apps.
pub fn publishers(
    config: &QueueConfig,
    services: &Services,
    outbound: &AddressPolicy,
) -> Result<PublisherRegistry, StartupError> {
    let connections = &services.connections;
    let mut registry = PublisherRegistry::new();
    if let Some(host) = &services.plugins {
        let publisher: Arc<dyn crate::publish::Publisher> = Arc::new(
            PluginPublisher::new(host.clone(), connections.clone()).lending(services.oauth.clone()),
        );
        for info in host.platforms() {
            registry.register(info.platform, publisher.clone());
        }
    }
    let webhook = WebhookPublisher::new(
        connections.clone(),
        config.webhook_idempotent,
        config.worker.publish_timeout,
        outbound,
    )
    .map_err(|e| StartupError::Publisher(e.to_string()))?;
    registry.register(crate::domain::webhook::PLATFORM, Arc::new(webhook));
    Ok(registry)
}

/// Parsed GraphQL documents kept per process.
const DOCUMENT_CACHE_ENTRIES: usize = 1_000;

/// What request handlers share.
#[derive(Clone)]
struct AppState {
    graphql: Endpoint,
}

/// The router: GraphQL on `/graphql` (POST, GET, GraphiQL for browsers), subscriptions on
/// `/graphql/ws`, liveness on `/healthz` and readiness on `/readyz` (see [`crate::health`]),
/// the browser's OAuth connect flow on `/oauth/{platform}/start` and `/callback`, the media
/// library's uploads and signed URLs under `/media/`. Without `persisted` (the APQ store),
/// persisted queries are refused.
pub fn router(
    services: &Services,
    verifier: JwtVerifier,
    config: GraphqlConfig,
    persisted: Option<PersistedQueries>,
) -> Router {
    let state = AppState {
        graphql: Endpoint {
            schema: graphql::build_schema(services, config.introspection),
            verifier: Arc::new(verifier),
            persisted,
            reads: compiled::CompiledReads::new(services.db.clone(), config.compiled_reads),
            limits: limits::RateLimits::new(&config.rate_limits),
            config,
            subscriptions: fanout::Registry::default(),
            documents: documents::DocumentCache::new(DOCUMENT_CACHE_ENTRIES),
            max_upload_bytes: services.media.config().max_bytes,
        },
    };
    let health = Health::new(
        services.db.clone(),
        services.worker_db.clone(),
        services.queue.clone(),
        services.plugins.clone(),
    );
    let oauth = oauth::browser::router(
        services.connect_flows.clone(),
        state.graphql.verifier.clone(),
    );
    let verifier = state.graphql.verifier.clone();
    let media = media::http::router(
        services.media.clone(),
        Arc::new(move |header| verifier.verify_header(header)),
    );
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/graphql/assets/{name}", get(graphiql_asset))
        .with_state(state)
        .merge(oauth)
        .merge(health.router())
        .merge(media)
}

/// Connects the database and the queue and builds the services, with what `configure`
/// adds on the builder (plugins, policies, OAuth settings).
async fn connect_services(
    database_url: &str,
    max_connections: u32,
    queue_config: &QueueConfig,
    cipher: TokenCipher,
    serves_subscriptions: bool,
    configure: impl FnOnce(ServicesBuilder) -> ServicesBuilder,
    media_config: media::MediaConfig,
) -> Result<Services, StartupError> {
    let media_store = media::store::open(&media_config.storage)?;
    tracing::info!(storage = ?media_config.storage, "media library");
    let database = db::connect_api(database_url, max_connections).await?;
    let worker_database = db::connect_worker(database_url, max_connections).await?;
    crate::keys::require_keys(&worker_database, &cipher).await?;
    tracing::info!(current = cipher.key_id(), keys = ?cipher.key_ids().collect::<Vec<_>>(), "token keys");
    let queue: Arc<dyn JobQueue> =
        Arc::new(RedisQueue::connect(&queue_config.redis_url, &queue_config.namespace).await?);
    match queue.health().await {
        Ok(health) => {
            for warning in health.warnings {
                tracing::warn!("queue: {warning}");
            }
        }
        Err(err) => tracing::warn!(%err, "queue health check failed"),
    }
    let services = configure(Services::builder(database, queue, cipher).worker_db(worker_database))
        .media(media_config, media_store)
        .build()
        .with_event_relay(
            &queue_config.redis_url,
            &queue_config.namespace,
            serves_subscriptions,
        )
        .await?;
    if let Some(problem) = services.media.public_url_problem().await {
        tracing::warn!("{problem}");
    }
    Ok(services)
}

/// Runs `herald serve`: migrates (unless disabled), then serves the API (and runs workers
/// unless disabled) until SIGINT/SIGTERM.
pub async fn serve(config: ServeConfig) -> Result<(), StartupError> {
    let verifier = JwtVerifier::new(&config.jwt)?;
    if config.migrate {
        db::migrate(&config.database_url).await?;
        tracing::info!("migrations applied");
    }
    let plugins = load_plugins(config.plugins).await?;
    let services = connect_services(
        &config.database_url,
        config.db_max_connections,
        &config.queue,
        config.cipher.clone(),
        true,
        |builder| {
            builder
                .plugins(plugins)
                .account_policy(config.account_policy)
                .oauth(config.oauth.clone())
        },
        config.media.clone(),
    )
    .await?;
    let persisted = PersistedQueries::connect(
        &config.queue.redis_url,
        &config.queue.namespace,
        &config.graphql,
    )
    .await?;
    let background = if config.workers {
        Some(start_background(
            &services,
            publishers(&config.queue, &services, &config.outbound)?,
            config.queue.worker.clone(),
            config.queue.reconcile,
        ))
    } else {
        None
    };
    let app = router(&services, verifier, config.graphql, Some(persisted));
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartupError::Listen {
            addr: config.bind,
            source,
        })?;
    tracing::info!(addr = %config.bind, "serving GraphQL on http://{}/graphql", config.bind);
    // The peer's address names an anonymous caller for the rate limits.
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|source| StartupError::Listen {
        addr: config.bind,
        source,
    });
    if let Some(background) = background {
        background.shutdown().await;
    }
    served
}

/// Runs `herald worker`: publishing workers and the reconciler, no API, until
/// SIGINT/SIGTERM.
pub async fn run_worker(config: WorkerProcessConfig) -> Result<(), StartupError> {
    let plugins = load_plugins(config.plugins).await?;
    let services = connect_services(
        &config.database_url,
        config.db_max_connections,
        &config.queue,
        config.cipher.clone(),
        false,
        |builder| builder.plugins(plugins).oauth(config.oauth.clone()),
        config.media.clone(),
    )
    .await?;
    let background = start_background(
        &services,
        publishers(&config.queue, &services, &config.outbound)?,
        config.queue.worker.clone(),
        config.queue.reconcile,
    );
    tracing::info!("worker started");
    shutdown_signal().await;
    background.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

async fn graphql_get(State(state): State<AppState>, request: Request) -> Response {
    http::get(&state.graphql, request).await
}

async fn graphiql_asset(Path(name): Path<String>) -> Response {
    graphiql::asset(&name)
}

async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    http::post(&state.graphql, request).await
}

/// `/graphql/ws`: `graphql-transport-ws` (Herald's own implementation, see [`ws`]). A
/// client that offers only the retired `graphql-ws` (subscriptions-transport-ws) protocol
/// is closed 4406 with a reason naming the protocol to use, rather than being served
/// without the guards, deadlines, caps and token expiry that [`ws`] enforces.
async fn graphql_ws(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        // Small buffers: subscription messages are small, and tungstenite's 128 KiB
        // defaults would cost ~256 KiB per idle subscriber.
        Ok(upgrade) => upgrade
            .read_buffer_size(WS_READ_BUFFER_BYTES)
            .write_buffer_size(WS_WRITE_BUFFER_BYTES)
            .max_write_buffer_size(WS_MAX_MESSAGE_BYTES)
            .max_message_size(WS_MAX_MESSAGE_BYTES),
        Err(rejection) => return rejection.into_response(),
    };
    let offered = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    if offered.contains(&ws::RETIRED_PROTOCOL) && !offered.contains(&ws::PROTOCOL) {
        return upgrade
            .protocols([ws::RETIRED_PROTOCOL])
            .on_upgrade(ws::refuse_retired_protocol);
    }
    let endpoint = state.graphql.clone();
    upgrade
        .protocols([ws::PROTOCOL])
        .on_upgrade(move |stream| ws::serve(stream, endpoint))
}
