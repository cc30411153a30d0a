//! Builds Herald's state and HTTP router from configuration. Tests call [`router`] with
//! their own database, so the whole API is exercised without a separate process.

use std::sync::Arc;

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{FromRequest, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use herald_plugin_host::PluginHost;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::auth::JwtVerifier;
use crate::config::{ConfigError, ServeConfig};
use crate::db;
use crate::events::EventBus;
use crate::graphql::{self, Auth, HeraldSchema};
use crate::posts::PostService;

/// Events buffered per subscriber before a slow one starts skipping.
const EVENT_BUFFER: usize = 1_024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The plugin directory could not be read or the plugin sandbox set up.
    #[error("plugins: {0}")]
    Plugins(#[from] herald_plugin_host::PluginError),
    /// The listen address could not be bound, or serving failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// What request handlers share.
#[derive(Clone)]
struct AppState {
    schema: HeraldSchema,
    verifier: Arc<JwtVerifier>,
    db: DatabaseConnection,
}

/// The router: GraphQL on `/graphql` (POST, GET, GraphiQL for browsers), subscriptions on
/// `/graphql/ws`, liveness on `/healthz`.
pub fn router(db: DatabaseConnection, verifier: JwtVerifier) -> Router {
    router_with_plugins(db, verifier, None)
}

/// [`router`], with the loaded publisher plugins (the `platforms` and `validatePost`
/// queries use them).
pub fn router_with_plugins(
    db: DatabaseConnection,
    verifier: JwtVerifier,
    plugins: Option<PluginHost>,
) -> Router {
    let events = EventBus::new(EVENT_BUFFER);
    let posts = PostService::new(db.clone(), events.clone());
    let state = AppState {
        schema: graphql::build_schema_with_plugins(posts, events, plugins),
        verifier: Arc::new(verifier),
        db,
    };
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Runs `herald serve`: migrates (unless disabled), then serves until SIGINT/SIGTERM.
pub async fn serve(config: ServeConfig) -> Result<(), StartupError> {
    let verifier = JwtVerifier::new(&config.jwt)?;
    if config.migrate {
        db::migrate(&config.database_url).await?;
        tracing::info!("migrations applied");
    }
    let database = db::connect(&config.database_url, config.db_max_connections).await?;
    let plugins = match config.plugins {
        Some(plugins) => {
            let host = PluginHost::load(plugins).await?;
            tracing::info!(
                platforms = host.platforms().len(),
                "publisher plugins loaded"
            );
            Some(host)
        }
        None => None,
    };
    let app = router_with_plugins(database, verifier, plugins);
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartupError::Listen {
            addr: config.bind,
            source,
        })?;
    tracing::info!(addr = %config.bind, "serving GraphQL on http://{}/graphql", config.bind);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| StartupError::Listen {
            addr: config.bind,
            source,
        })
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

fn authenticate(state: &AppState, headers: &HeaderMap) -> Auth {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    Auth(state.verifier.verify_header(header))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

async fn graphql_get(State(state): State<AppState>, request: Request) -> Response {
    if wants_html(request.headers()) {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql/ws")
                .title("Herald GraphiQL")
                .finish(),
        )
        .into_response();
    }
    execute(state, request).await
}

async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    execute(state, request).await
}

async fn execute(state: AppState, request: Request) -> Response {
    let auth = authenticate(&state, request.headers());
    match GraphQLRequest::<async_graphql_axum::rejection::GraphQLRejection>::from_request(
        request, &state,
    )
    .await
    {
        Ok(graphql_request) => {
            let response = state
                .schema
                .execute(graphql_request.into_inner().data(auth))
                .await;
            GraphQLResponse::from(response).into_response()
        }
        Err(rejection) => rejection.into_response(),
    }
}

async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let schema = state.schema.clone();
    let verifier = state.verifier.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let actor = verifier
                        .verify_header(init_authorization(&payload).as_deref())
                        .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                    let mut data = Data::default();
                    data.insert(Auth(Ok(actor)));
                    Ok(data)
                })
                .serve()
        })
}

/// The bearer credential of a `connection_init` payload: `{"Authorization": "Bearer …"}`
/// (any case) or `{"token": "…"}`.
fn init_authorization(payload: &serde_json::Value) -> Option<String> {
    let object = payload.as_object()?;
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
        .or_else(|| {
            object
                .get("token")
                .and_then(|v| v.as_str())
                .map(|t| format!("Bearer {t}"))
        })
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(err) => {
            tracing::error!(%err, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
