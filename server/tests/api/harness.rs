//! One shared harness: a fresh database, the real router on a loopback port, token
//! minting and GraphQL helpers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_plugin_host::{HostConfig, PluginHost};
use herald_server::app::{self, Background};
use herald_server::auth::JwtVerifier;
use herald_server::config::GraphqlConfig;
use herald_server::config::{JwtConfig, JwtKey};
use herald_server::connections::ConnectionService;
use herald_server::domain::oauth_apps::OauthConfig;
use herald_server::graphql::serve::persisted::PersistedQueries;
use herald_server::media::MediaConfig;
use herald_server::media::store::Storage;
use herald_server::publish::PublisherRegistry;
use herald_server::publish::plugin::PluginPublisher;
use herald_server::queue::JobQueue;
use herald_server::queue::redis::RedisQueue;
use herald_server::queue::retry::RetryPolicy;
use herald_server::secrets::TokenCipher;
use herald_server::state::Services;
use herald_server::worker::WorkerConfig;
use herald_server::worker::reconcile::ReconcileConfig;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::plugins::built_plugins;

/// Token encryption key of test servers (base64 of it is [`TOKEN_KEY_B64`]).
pub const TOKEN_KEY: [u8; 32] = *b"test-token-key-0123456789abcdefg";
/// [`TOKEN_KEY`] as `HERALD_TOKEN_KEY` expects it.
pub const TOKEN_KEY_B64: &str = "dGVzdC10b2tlbi1rZXktMDEyMzQ1Njc4OWFiY2RlZmc=";
/// The id of [`TOKEN_KEY`], the key test servers seal with.
pub const TOKEN_KEY_ID: &str = "test";
/// An older key test servers still open with (id [`OLD_TOKEN_KEY_ID`]), as during a
/// rotation.
pub const OLD_TOKEN_KEY: [u8; 32] = *b"old-token-key-0123456789abcdefgh";
/// The id of [`OLD_TOKEN_KEY`].
pub const OLD_TOKEN_KEY_ID: &str = "old";

/// The subject of the test servers' instance operator (`HERALD_OPERATORS`).
pub const OPERATOR: &str = "operator";
/// HS256 secret of the test server.
pub const SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

/// A running Herald on its own database and its own queue namespace.
pub struct TestApp {
    pub base: String,
    pub db: DatabaseConnection,
    pub database_url: String,
    pub redis_url: String,
    pub namespace: String,
    pub jwt: JwtConfig,
    /// Connected accounts (tests seed accounts a plugin cannot verify).
    pub connections: ConnectionService,
    /// The app's services.
    pub services: Services,
    /// The SQL of the statements run through the server's connection pool so far.
    statements: Arc<Mutex<Vec<String>>>,
    /// In-process workers, kept running for the test's lifetime.
    _background: Option<Background>,
    client: reqwest::Client,
}

/// The key ring of test servers: [`TOKEN_KEY`] seals, [`OLD_TOKEN_KEY`] still opens.
pub fn test_key_ring() -> TokenCipher {
    TokenCipher::new(TOKEN_KEY_ID, &TOKEN_KEY).with_old_key(OLD_TOKEN_KEY_ID, &OLD_TOKEN_KEY)
}

/// The default HS256 settings of test servers.
pub fn hs256() -> JwtConfig {
    JwtConfig {
        key: JwtKey::Secret(SECRET.as_bytes().to_vec()),
        issuer: None,
        audience: None,
        operators: vec![OPERATOR.into()],
    }
}

/// Where test servers' signed media URLs point: tests fetch them from the server itself
/// (see [`TestApp::local_media_url`]), plugins through a host override.
pub const MEDIA_HOST: &str = "https://media.herald.test";
/// The media size cap of test servers.
pub const MEDIA_MAX_BYTES: u64 = 6 * 1024 * 1024;

/// The media library of a test server: a fresh directory under the system's temporary
/// directory, a small size cap, URLs on [`MEDIA_HOST`].
pub fn test_media() -> MediaConfig {
    MediaConfig {
        storage: Storage::Local(
            std::env::temp_dir().join(format!("herald-media-{}", uuid::Uuid::new_v4())),
        ),
        max_bytes: MEDIA_MAX_BYTES,
        public_url: Some(MEDIA_HOST.into()),
        ..MediaConfig::default()
    }
}

/// Worker settings for tests: short lease, fast retries, fast reconciliation.
pub fn fast_worker() -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_millis(1_500),
        max_idle: Duration::from_millis(500),
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(400),
        },
        ..WorkerConfig::default()
    }
}

/// Reconciler settings for tests.
pub fn fast_reconcile() -> ReconcileConfig {
    ReconcileConfig {
        interval: Duration::from_millis(300),
        horizon: Duration::from_secs(3_600),
        stuck_after: Duration::from_secs(3),
    }
}

impl TestApp {
    /// Herald (API only, no workers) with the default HS256 settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(hs256()).await
    }

    /// Herald (API only) with the given token settings.
    pub async fn spawn_with(jwt: JwtConfig) -> Self {
        Self::start(jwt, None).await
    }

    /// Herald (API only) with these GraphQL endpoint settings.
    pub async fn spawn_with_graphql(graphql: GraphqlConfig) -> Self {
        let redis_url = std::env::var("REDIS_URL")
            .expect("REDIS_URL is not set: run the tests with scripts/test");
        Self::start_with(hs256(), None, redis_url, None, graphql).await
    }

    /// Herald (API only) answering every query with the stock executor (no compiled reads).
    pub async fn spawn_with_stock_reads() -> Self {
        Self::spawn_with_graphql(GraphqlConfig {
            compiled_reads: false,
            ..GraphqlConfig::default()
        })
        .await
    }

    /// SQL statements the server has run so far.
    pub fn statements(&self) -> usize {
        self.statements.lock().expect("statements").len()
    }

    /// The SQL of the statements run since the first `from` (see [`Self::statements`]).
    pub fn statements_since(&self, from: usize) -> Vec<String> {
        self.statements.lock().expect("statements")[from..].to_vec()
    }

    /// `url` (a signed media URL on [`MEDIA_HOST`]) on this server's own address.
    pub fn local_media_url(&self, url: &str) -> String {
        url.replacen(MEDIA_HOST, &self.http_url(), 1)
    }

    /// The base URL of the HTTP API, e.g. `http://127.0.0.1:1234`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.base)
    }

    /// Herald (API only) with the default token settings and these publisher plugins.
    pub async fn spawn_with_plugins(plugins: herald_plugin_host::PluginHost) -> Self {
        let redis_url = std::env::var("REDIS_URL")
            .expect("REDIS_URL is not set: run the tests with scripts/test");
        Self::start_on(hs256(), None, redis_url, Some(plugins)).await
    }

    /// Herald (API only) whose queue lives on the Redis at `redis_url`.
    pub async fn spawn_on_redis(redis_url: &str) -> Self {
        Self::start_on(hs256(), None, redis_url.to_owned(), None).await
    }

    /// Herald with in-process workers publishing through `publishers`, and `plugins`
    /// loaded (their platforms are valid post targets).
    pub async fn spawn_with_worker_and_plugins(
        publishers: PublisherRegistry,
        worker: WorkerConfig,
        plugins: herald_plugin_host::PluginHost,
    ) -> Self {
        let redis_url = std::env::var("REDIS_URL")
            .expect("REDIS_URL is not set: run the tests with scripts/test");
        Self::start_on(
            hs256(),
            Some((publishers, worker)),
            redis_url,
            Some(plugins),
        )
        .await
    }

    /// The same Herald with (other) in-process workers publishing through `publishers`,
    /// for publishers that need the app's own services.
    pub async fn with_worker(mut self, publishers: PublisherRegistry) -> Self {
        if let Some(background) = self._background.take() {
            background.shutdown().await;
        }
        self._background = Some(app::start_background(
            &self.services,
            publishers,
            fast_worker(),
            fast_reconcile(),
        ));
        self
    }

    /// Herald with in-process workers publishing through `publishers`.
    pub async fn spawn_with_worker(publishers: PublisherRegistry, worker: WorkerConfig) -> Self {
        Self::start(hs256(), Some((publishers, worker))).await
    }

    async fn start(jwt: JwtConfig, worker: Option<(PublisherRegistry, WorkerConfig)>) -> Self {
        let redis_url = std::env::var("REDIS_URL")
            .expect("REDIS_URL is not set: run the tests with scripts/test");
        Self::start_on(jwt, worker, redis_url, None).await
    }

    async fn start_on(
        jwt: JwtConfig,
        worker: Option<(PublisherRegistry, WorkerConfig)>,
        redis_url: String,
        plugins: Option<herald_plugin_host::PluginHost>,
    ) -> Self {
        Self::start_with(jwt, worker, redis_url, plugins, GraphqlConfig::default()).await
    }

    async fn start_with(
        jwt: JwtConfig,
        worker: Option<(PublisherRegistry, WorkerConfig)>,
        redis_url: String,
        plugins: Option<herald_plugin_host::PluginHost>,
        graphql: GraphqlConfig,
    ) -> Self {
        let admin_url = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL is not set: run the tests with scripts/test");
        Self::start_at(&admin_url, jwt, worker, redis_url, plugins, graphql, |_| {
            (OauthConfig::default(), test_media())
        })
        .await
    }

    /// Herald (API only) with `plugins` and the OAuth settings `oauth` makes from the
    /// server's own base URL (`http://127.0.0.1:port`, e.g. for `public_url`).
    pub async fn spawn_with_oauth(
        plugins: PluginHost,
        oauth: impl FnOnce(&str) -> OauthConfig,
    ) -> Self {
        Self::spawn_with_settings(plugins, |base| (oauth(base), test_media())).await
    }

    /// Herald (API only) with `plugins` and the OAuth and media settings `settings` makes
    /// from the server's own base URL.
    pub async fn spawn_with_settings(
        plugins: PluginHost,
        settings: impl FnOnce(&str) -> (OauthConfig, MediaConfig),
    ) -> Self {
        let admin_url = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL is not set: run the tests with scripts/test");
        let redis_url = std::env::var("REDIS_URL")
            .expect("REDIS_URL is not set: run the tests with scripts/test");
        Self::start_at(
            &admin_url,
            hs256(),
            None,
            redis_url,
            Some(plugins),
            GraphqlConfig::default(),
            settings,
        )
        .await
    }

    /// Herald (API only) on a fresh database of the Postgres server at `admin_url` (the
    /// URL of a database there, e.g. `postgres`) and the Redis at `redis_url`.
    pub async fn spawn_on(admin_url: &str, redis_url: &str) -> Self {
        Self::start_at(
            admin_url,
            hs256(),
            None,
            redis_url.to_owned(),
            None,
            GraphqlConfig::default(),
            |_| (OauthConfig::default(), test_media()),
        )
        .await
    }

    async fn start_at(
        admin_url: &str,
        jwt: JwtConfig,
        worker: Option<(PublisherRegistry, WorkerConfig)>,
        redis_url: String,
        plugins: Option<herald_plugin_host::PluginHost>,
        graphql: GraphqlConfig,
        settings: impl FnOnce(&str) -> (OauthConfig, MediaConfig),
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (oauth, media) = settings(&format!("http://{addr}"));
        let name = format!("herald_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url)
            .await
            .expect("admin connection");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.expect("close admin connection");
        let (server, _) = admin_url.rsplit_once('/').expect("URL has a database path");
        let url = format!("{server}/{name}");

        herald_server::db::migrate(&url).await.expect("migrate");
        // Tests inspect the database as its owner; the server reaches it as the API and
        // worker roles, under row-level security.
        let db = herald_server::db::connect(&url, 4).await.expect("connect");
        let mut api_db = herald_server::db::connect_api(&url, 10)
            .await
            .expect("connect as the API");
        let worker_db = herald_server::db::connect_worker(&url, 10)
            .await
            .expect("connect as the worker");
        let statements = Arc::new(Mutex::new(Vec::new()));
        let recorder = statements.clone();
        api_db.set_metric_callback(move |info| {
            recorder
                .lock()
                .expect("statements")
                .push(info.statement.sql.clone());
        });
        let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
        let queue: Arc<dyn JobQueue> = Arc::new(
            RedisQueue::connect(&redis_url, &namespace)
                .await
                .expect("redis queue"),
        );
        let persisted = PersistedQueries::connect(&redis_url, &namespace, &graphql)
            .await
            .expect("persisted query store");
        let cipher = test_key_ring();
        let media_store = herald_server::media::store::open(&media.storage).expect("media store");
        let services = Services::builder(api_db, queue, cipher)
            .worker_db(worker_db)
            .plugins(plugins)
            .oauth(oauth)
            .media(media, media_store)
            .build()
            .with_event_relay(&redis_url, &namespace, true)
            .await
            .expect("event relay");
        let connections = services.connections.clone();
        let background = worker.map(|(publishers, config)| {
            app::start_background(&services, publishers, config, fast_reconcile())
        });
        let verifier = JwtVerifier::new(&jwt).expect("verifier");
        let router = app::router(&services, verifier, graphql, Some(persisted));
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        Self {
            base: format!("127.0.0.1:{}", addr.port()),
            db,
            database_url: url,
            redis_url,
            namespace,
            jwt,
            connections,
            services,
            statements,
            _background: background,
            client: reqwest::Client::new(),
        }
    }

    /// Polls `post(id)` until `done` holds for it (at most `within`); returns the post.
    pub async fn wait_for_post(
        &self,
        token: &str,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let data = self
                .ok(
                    token,
                    &format!("query($id: ID!) {{ post(id: $id) {{ {POST_FIELDS} }} }}"),
                    json!({"id": id}),
                )
                .await;
            if done(&data["post"]) {
                return data["post"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "post {id} did not reach the expected state within {within:?}: {}",
                data["post"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A valid token for `user` in tenant `org` (the user itself when `None`).
    pub fn token(&self, user: &str, org: Option<&str>, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        herald_server::auth::mint(&self.jwt, user, org, &roles, 1).expect("mint")
    }

    /// POSTs a GraphQL request with an optional bearer token; returns the JSON body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("http://{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        response.json().await.expect("JSON body")
    }

    /// POSTs a GraphQL request to the server at `base` (`host:port`) and returns the
    /// response body's text exactly as sent.
    pub async fn gql_text_at(
        &self,
        base: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> String {
        let mut request = self
            .client
            .post(format!("http://{base}/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        response.text().await.expect("body text")
    }

    /// A second server (its own router on its own loopback port) over this app's services
    /// and database, answering every query with the stock executor (compiled reads off);
    /// returns its `host:port`.
    pub async fn stock_twin(&self) -> String {
        let verifier = JwtVerifier::new(&self.jwt).expect("verifier");
        let router = app::router(
            &self.services,
            verifier,
            GraphqlConfig {
                compiled_reads: false,
                ..GraphqlConfig::default()
            },
            None,
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        format!("127.0.0.1:{}", addr.port())
    }

    /// Like [`gql`](Self::gql) but panics on errors and returns `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Creates a post from `input` and returns it.
    pub async fn create_post(&self, token: &str, input: Value) -> Value {
        let data = self
            .ok(
                token,
                &format!("mutation($input: CreatePostInput!) {{ createPost(input: $input) {{ {POST_FIELDS} }} }}"),
                json!({ "input": input }),
            )
            .await;
        data["createPost"].clone()
    }

    /// Sets every target of `post_id` to `status` directly in the database, as the
    /// publishing worker would.
    pub async fn set_targets_status(&self, post_id: &str, status: &str) {
        self.db
            .execute_unprepared(&format!(
                "UPDATE post_targets SET status = '{status}' WHERE post_id = '{post_id}'"
            ))
            .await
            .expect("update targets");
    }
}

/// The post fields most tests read.
pub const POST_FIELDS: &str = "id content platforms status scheduledAt localScheduledAt timeZone \
     mediaUrls campaign notes approvalRequired approvalStatus rejectionReason failureReason \
     postedAt ownerId createdBy createdAt archivedAt version \
     targets { id platform status attempts platformUrl lastError }";

/// The `extensions.code` of the first error, if any.
pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// Asserts the first error's code (and field, when given).
pub fn assert_error(body: &Value, code: &str, field: Option<&str>) {
    assert_eq!(error_code(body), Some(code), "body: {body}");
    if let Some(field) = field {
        assert_eq!(
            body["errors"][0]["extensions"]["field"].as_str(),
            Some(field),
            "body: {body}"
        );
    }
}

/// An RFC 3339 instant `days` from now.
pub fn days_from_now(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339()
}

/// A graphql-transport-ws client connection.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestApp {
    /// Opens `/graphql/ws`, initialises with `token` and waits for the ack.
    pub async fn ws(&self, token: &str) -> Socket {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}/graphql/ws", self.base)
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        ws_send(
            &mut socket,
            json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
        )
        .await;
        assert_eq!(ws_next(&mut socket).await["type"], "connection_ack");
        socket
    }
}

/// Sends one JSON message.
pub async fn ws_send(socket: &mut Socket, message: Value) {
    use futures_util::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            message.to_string().into(),
        ))
        .await
        .expect("send");
}

/// The next JSON message (within 10 s), answering the server's keep-alive pings.
pub async fn ws_next(socket: &mut Socket) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("frame");
        match frame {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(&text).expect("json");
                if message["type"] == "ping" {
                    ws_send(socket, json!({"type": "pong"})).await;
                    continue;
                }
                return message;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Subscribes to `postUpdated(id)` on `socket`.
pub async fn subscribe_post(socket: &mut Socket, id: &str) {
    ws_send(
        socket,
        json!({"id": "post-statuses", "type": "subscribe", "payload": {
            "query": "subscription($id: ID) { postUpdated(id: $id) { status } }",
            "variables": {"id": id}}}),
    )
    .await;
}

/// The post statuses received on a [`subscribe_post`] socket until `last` (inclusive),
/// in order.
pub async fn post_statuses_until(socket: &mut Socket, last: &str) -> Vec<String> {
    let mut statuses: Vec<String> = Vec::new();
    while statuses.last().map(String::as_str) != Some(last) {
        let message = ws_next(socket).await;
        assert_ne!(message["type"], "error", "{message}");
        if message["type"] == "next" {
            statuses.push(
                message["payload"]["data"]["postUpdated"]["status"]
                    .as_str()
                    .expect("status")
                    .to_owned(),
            );
        }
    }
    statuses
}

// Publishing through the real plugins.

/// The built plugins, with their hosts (`host[:port]`) routed to local servers (base URLs).
pub async fn plugin_host(overrides: &[(&str, String)]) -> PluginHost {
    plugin_host_with(overrides, |_| {}).await
}

/// [`plugin_host`] with further settings made by `configure`.
pub async fn plugin_host_with(
    overrides: &[(&str, String)],
    configure: impl FnOnce(&mut HostConfig),
) -> PluginHost {
    let mut config = HostConfig::new(built_plugins());
    configure(&mut config);
    for (host, base) in overrides {
        config
            .host_overrides
            .insert((*host).to_owned(), base.clone());
    }
    PluginHost::load(config).await.expect("plugins")
}

/// A plugin host with only the built plugins named in `names` (a directory of their own
/// under the system's temporary directory), their hosts routed as in [`plugin_host`]: for
/// tests that publish to other platforms through a recording publisher.
pub async fn plugin_host_only(names: &[&str], overrides: &[(&str, String)]) -> PluginHost {
    let dir = std::env::temp_dir().join(format!("herald-plugins-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("plugin dir");
    for name in names {
        for extension in ["wasm", "toml"] {
            let file = format!("{name}.{extension}");
            std::fs::copy(built_plugins().join(&file), dir.join(&file)).expect("copy plugin");
        }
    }
    let mut config = HostConfig::new(dir);
    for (host, base) in overrides {
        config
            .host_overrides
            .insert((*host).to_owned(), base.clone());
    }
    PluginHost::load(config).await.expect("plugins")
}

/// Herald with in-process workers publishing `platform` through its plugin as the owner's
/// connected account.
pub async fn app_publishing(platform: &str, host: PluginHost) -> TestApp {
    let app = TestApp::spawn_with_worker_and_plugins(
        PublisherRegistry::new(),
        fast_worker(),
        host.clone(),
    )
    .await;
    publishing_through(app, platform, host).await
}

/// `app` with a worker publishing `platform`'s posts through `host`'s plugin.
pub async fn publishing_through(app: TestApp, platform: &str, host: PluginHost) -> TestApp {
    let mut publishers = PublisherRegistry::new();
    publishers.register(
        platform,
        Arc::new(PluginPublisher::new(host, app.connections.clone())),
    );
    app.with_worker(publishers).await
}

/// An instant `ms` from now.
pub fn in_ms(ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(ms)).to_rfc3339()
}

/// Creates a post and waits until `done` holds for it (at most 40 s: the real Bluesky
/// PDS and Synapse answer slower than the fakes).
pub async fn publish(
    app: &TestApp,
    token: &str,
    input: Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let post = app.create_post(token, input).await;
    app.wait_for_post(
        token,
        post["id"].as_str().expect("id"),
        Duration::from_secs(40),
        done,
    )
    .await
}

/// Whether `post` (one target) waits for its account to be reconnected (a predicate for
/// `wait_for_post`). The post and its targets are read by two statements, so both must
/// show it: a worker's commit may fall between them.
pub fn waits_for_account(post: &Value) -> bool {
    post["targets"][0]["status"] == "WAITING_FOR_ACCOUNT" && post["status"] == "QUEUED"
}

/// Asserts that `post` (read once its target settled) waits, after one attempt, for its
/// account to be reconnected, with the reason, and that the account is now
/// `reconnect_required`; returns the target's error for platform-specific checks.
pub async fn assert_asks_to_reconnect(app: &TestApp, token: &str, post: &Value) -> String {
    assert_eq!(post["status"], "QUEUED", "{post}");
    assert_eq!(
        post["targets"][0]["status"], "WAITING_FOR_ACCOUNT",
        "{post}"
    );
    let error = post["targets"][0]["lastError"]
        .as_str()
        .expect("error")
        .to_owned();
    assert!(error.contains("reconnected"), "{error}");
    assert_eq!(post["targets"][0]["attempts"], 1, "not retried blindly");
    let listed = app.ok(token, "{ connections { status } }", json!({})).await;
    assert_eq!(listed["connections"][0]["status"], "reconnect_required");
    error
}

/// Watches `app`'s database for the first retry planned (a target whose
/// `next_attempt_at`, the retry's recorded due time, is set); start it before the post is
/// published and hand it to [`assert_retried_after`].
pub fn watch_retry(app: &TestApp) -> tokio::task::JoinHandle<(uuid::Uuid, DateTime<Utc>)> {
    let db = app.db.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let row = db
                .query_one(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT id, next_attempt_at FROM post_targets
                      WHERE next_attempt_at IS NOT NULL LIMIT 1",
                ))
                .await
                .expect("query");
            if let Some(row) = row {
                return (
                    row.try_get("", "id").expect("id"),
                    row.try_get("", "next_attempt_at").expect("due"),
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no retry was planned within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// Asserts that a throttled try was retried after the platform's stated `delay`, not a
/// backoff nor a default wait of the plugin's:
/// - the retry came `waited` after the throttled try (both as the platform saw them), not
///   before `delay`;
/// - the retry's recorded due time (see [`watch_retry`]) is at most `delay`, rounded up to
///   whole seconds as the plugins state waits, after the throttled attempt was recorded
///   (`publish_attempts.finished_at`): the policy's due time, computed from what the queue
///   recorded rather than from when the retry happened to run.
pub async fn assert_retried_after(
    app: &TestApp,
    retry: tokio::task::JoinHandle<(uuid::Uuid, DateTime<Utc>)>,
    waited: Duration,
    delay: Duration,
) {
    assert!(
        waited >= delay,
        "retried after {waited:?}, before the stated {delay:?}"
    );
    let (target, due) = retry.await.expect("retry watch");
    let row = app
        .db
        .query_one(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT finished_at FROM publish_attempts WHERE target_id = $1
              ORDER BY attempt_number LIMIT 1",
            [target.into()],
        ))
        .await
        .expect("query")
        .expect("the throttled attempt is recorded");
    let finished: DateTime<Utc> = row.try_get("", "finished_at").expect("finished_at");
    let stated = chrono::Duration::seconds(delay.as_secs_f64().ceil() as i64);
    // Postgres keeps microseconds: allow one for rounding.
    let allowed = finished + stated + chrono::Duration::microseconds(1);
    assert!(
        due <= allowed,
        "the retry was due at {due}, later than the stated {delay:?} (rounded up to \
         {stated}) after the throttled attempt ended at {finished}"
    );
}

/// A connected Redis client for `url`, for tests that read or change Redis directly.
pub async fn redis_client(url: &str) -> fred::prelude::Client {
    let client =
        fred::prelude::Builder::from_config(fred::prelude::Config::from_url(url).expect("url"))
            .build()
            .expect("client");
    fred::prelude::ClientLike::init(&client)
        .await
        .expect("connect");
    client
}
