//! One shared harness: a fresh database, the real router on a loopback port, token
//! minting and GraphQL helpers.

use herald_server::auth::JwtVerifier;
use herald_server::config::{JwtConfig, JwtKey};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// HS256 secret of the test server.
pub const SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

/// A running Herald on its own database.
pub struct TestApp {
    pub base: String,
    pub db: DatabaseConnection,
    pub jwt: JwtConfig,
    client: reqwest::Client,
}

impl TestApp {
    /// Herald with the default HS256 settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(JwtConfig {
            key: JwtKey::Secret(SECRET.as_bytes().to_vec()),
            issuer: None,
            audience: None,
        })
        .await
    }

    /// Herald with the given token settings.
    pub async fn spawn_with(jwt: JwtConfig) -> Self {
        Self::spawn_full(jwt, None).await
    }

    /// Herald with the default token settings and these publisher plugins.
    pub async fn spawn_with_plugins(plugins: herald_plugin_host::PluginHost) -> Self {
        Self::spawn_full(
            JwtConfig {
                key: JwtKey::Secret(SECRET.as_bytes().to_vec()),
                issuer: None,
                audience: None,
            },
            Some(plugins),
        )
        .await
    }

    async fn spawn_full(jwt: JwtConfig, plugins: Option<herald_plugin_host::PluginHost>) -> Self {
        let admin_url = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL is not set: run the tests with scripts/test");
        let name = format!("herald_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url)
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
        let db = herald_server::db::connect(&url, 5).await.expect("connect");
        let verifier = JwtVerifier::new(&jwt).expect("verifier");
        let router = herald_server::app::router_with_plugins(db.clone(), verifier, plugins);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Self {
            base: format!("127.0.0.1:{}", addr.port()),
            db,
            jwt,
            client: reqwest::Client::new(),
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
     mediaUrls campaign notes approvalRequired approvalStatus rejectionReason ownerId createdBy \
     createdAt archivedAt version targets { id platform status attempts platformUrl lastError }";

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
