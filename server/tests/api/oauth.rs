//! Connecting accounts by OAuth 2.0 with PKCE, end to end over HTTP: the example plugin
//! against a fake authorisation server (`fakes::oauth`), through `beginConnect` /
//! `completeConnect` and through the browser routes `/oauth/{platform}/start` and
//! `/callback`.

use std::time::Duration;

use herald_server::domain::actor::Actor;
use herald_server::domain::oauth_apps::{OauthApp, OauthConfig};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::fakes::oauth::{self as fake, ACCOUNT, CLIENT_ID, Shared};
use crate::harness::{TestApp, assert_error, plugin_host};

/// The single-page app's callback the operator lists.
const SPA_CALLBACK: &str = "https://app.herald.test/connected";

/// The example plugin sends users to its real host; the fake serves it here.
const PLATFORM_HOST: &str = "https://api.example.com";

pub struct OauthSetup {
    pub app: TestApp,
    pub fake: Shared,
    pub fake_base: String,
    pub admin: String,
}

/// The OAuth settings of the tests: the example platform's app, the SPA callback listed.
pub fn settings(base: &str) -> OauthConfig {
    OauthConfig {
        public_url: Some(base.to_owned()),
        redirect_uris: vec![SPA_CALLBACK.to_owned()],
        success_url: None,
        apps: [(
            "EXAMPLE".to_owned(),
            OauthApp {
                client_id: CLIENT_ID.to_owned(),
                client_secret: None,
                scopes: Vec::new(),
            },
        )]
        .into(),
        refresh_ahead: Duration::from_secs(600),
        refresh_interval: Duration::from_millis(200),
        reconnect_warning: Duration::from_secs(7 * 86_400),
    }
}

/// Herald with the example plugin routed to a fresh fake, and its OAuth app configured.
pub async fn setup() -> OauthSetup {
    let (fake_base, fake) = fake::start().await;
    let host = plugin_host(&[("api.example.com", fake_base.clone())]).await;
    let app = TestApp::spawn_with_oauth(host, settings).await;
    let admin = app.token("alice", None, &["admin"]);
    OauthSetup {
        app,
        fake,
        fake_base,
        admin,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::FOUND, "{response:?}");
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned()
}

impl OauthSetup {
    /// Follows an authorisation URL into the fake (the user consents); returns where the
    /// fake sends the browser back (the redirect URI with `code` and `state`).
    pub async fn authorize(&self, authorize_url: &str) -> String {
        let url = authorize_url.replacen(PLATFORM_HOST, &self.fake_base, 1);
        assert_ne!(url, authorize_url, "the plugin sends users to its platform");
        location(&client().get(url).send().await.expect("authorize"))
    }

    /// `beginConnect` on the example platform; returns `{authorizeUrl, state, expiresAt}`.
    pub async fn begin(&self, token: &str, redirect_uri: Option<&str>) -> Value {
        self.app
            .ok(
                token,
                "mutation($r: String) { beginConnect(platform: \"example\", redirectUri: $r) { authorizeUrl state expiresAt } }",
                json!({"r": redirect_uri}),
            )
            .await["beginConnect"]
            .clone()
    }

    /// `completeConnect` with `state` and `code`; returns the response body.
    pub async fn complete(&self, token: &str, state: &str, code: &str) -> Value {
        self.app
            .gql(
                Some(token),
                "mutation($s: String!, $c: String!) { completeConnect(state: $s, code: $c) { id platform externalAccountId displayName status expiresAt } }",
                json!({"s": state, "c": code}),
            )
            .await
    }

    /// Connects the fake's account through the SPA flow; returns the connection.
    pub async fn connect(&self) -> Value {
        let begun = self.begin(&self.admin, Some(SPA_CALLBACK)).await;
        let back = self
            .authorize(begun["authorizeUrl"].as_str().expect("url"))
            .await;
        let (code, state) = code_and_state(&back);
        assert_eq!(state, begun["state"]);
        let body = self.complete(&self.admin, &state, &code).await;
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["completeConnect"].clone()
    }
}

/// The `code` and `state` of a URL the platform sent the browser back to.
pub fn code_and_state(url: &str) -> (String, String) {
    let query = url.split_once('?').expect("query").1;
    let value = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .expect(name)
            .to_owned()
    };
    (value("code"), value("state"))
}

fn alice() -> Actor {
    Actor {
        user_id: "alice".into(),
        tenant_id: "user:alice".into(),
        roles: vec![],
        operator: false,
    }
}

/// The stored credentials of alice's example account.
pub async fn stored(app: &TestApp) -> herald_plugin_host::Credentials {
    herald_server::db::tenant::scope(
        "user:alice",
        app.connections
            .credentials(&alice().tenant_id, "example", None),
    )
    .await
    .expect("read")
    .expect("connected")
    .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_flow_connects_and_a_replayed_callback_is_refused() {
    let setup = setup().await;
    let http = client();
    let base = setup.app.http_url();

    // Without a bearer token the flow does not begin.
    let anonymous = http
        .get(format!("{base}/oauth/example/start"))
        .send()
        .await
        .expect("start");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The start's query parameters are the account's extras.
    let started = http
        .get(format!("{base}/oauth/example/start?channel=news"))
        .bearer_auth(&setup.admin)
        .send()
        .await
        .expect("start");
    let cookie = started
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let authorize_url = location(&started);
    assert!(authorize_url.starts_with(&format!("{PLATFORM_HOST}/oauth/authorize?")));
    assert!(authorize_url.contains("code_challenge_method=S256"));
    let back = setup.authorize(&authorize_url).await;
    assert!(
        back.starts_with(&format!("{base}/oauth/example/callback?")),
        "the default callback: {back}"
    );
    let cookie_pair = cookie.split(';').next().expect("pair").to_owned();

    // The callback without the browser's cookie is not this browser's flow.
    let foreign = http.get(&back).send().await.expect("callback");
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);

    let done = http
        .get(&back)
        .header(COOKIE, &cookie_pair)
        .send()
        .await
        .expect("callback");
    assert_eq!(done.status(), StatusCode::OK);
    let page = done.text().await.expect("page");
    assert!(page.contains("Olivia OAuth"), "{page}");

    let listed = setup
        .app
        .ok(
            &setup.admin,
            "{ connections { platform externalAccountId displayName status isDefault expiresAt } }",
            json!({}),
        )
        .await;
    let connection = &listed["connections"][0];
    assert_eq!(connection["externalAccountId"], ACCOUNT);
    assert_eq!(connection["status"], "active");
    assert_eq!(connection["isDefault"], true);
    let expires: chrono::DateTime<chrono::Utc> = connection["expiresAt"]
        .as_str()
        .expect("expiresAt")
        .parse()
        .expect("time");
    let lifetime = expires - chrono::Utc::now();
    assert!(
        lifetime > chrono::Duration::minutes(55) && lifetime <= chrono::Duration::hours(1),
        "{lifetime}"
    );
    let credentials = stored(&setup.app).await;
    assert!(credentials.refresh_token.is_some());
    assert!(
        credentials
            .extra
            .contains(&("channel".to_owned(), "news".to_owned())),
        "{:?}",
        credentials.extra
    );

    // The same callback again: the state was used.
    let replayed = http
        .get(&back)
        .header(COOKIE, &cookie_pair)
        .send()
        .await
        .expect("callback");
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        setup.fake.lock().expect("lock").exchanges,
        1,
        "exchanged once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spa_flow_refuses_replay_expiry_other_tenants_pkce_mismatch_and_unlisted_redirects() {
    let setup = setup().await;
    let app = &setup.app;

    // Only listed redirect URIs (or the server's own callback) are accepted.
    let unlisted = app
        .gql(
            Some(&setup.admin),
            "mutation { beginConnect(platform: \"example\", redirectUri: \"https://evil.test/cb\") { state } }",
            json!({}),
        )
        .await;
    assert_error(&unlisted, "BAD_USER_INPUT", Some("redirectUri"));
    // A platform without an app says which setting it needs.
    let unconfigured = app
        .gql(
            Some(&setup.admin),
            "mutation { beginConnect(platform: \"mastodon\") { state } }",
            json!({}),
        )
        .await;
    assert_error(&unconfigured, "OAUTH_NOT_CONFIGURED", None);
    assert_eq!(
        unconfigured["errors"][0]["extensions"]["key"],
        "HERALD_OAUTH_MASTODON_CLIENT_ID"
    );
    // Members do not connect accounts (AccountPolicy), neither beginning nor completing.
    let member = app.token("carl", Some("acme"), &["approver"]);
    let denied = app
        .gql(
            Some(&member),
            "mutation { beginConnect(platform: \"example\") { state } }",
            json!({}),
        )
        .await;
    assert_error(&denied, "FORBIDDEN", None);

    let begun = setup.begin(&setup.admin, Some(SPA_CALLBACK)).await;
    let expires: chrono::DateTime<chrono::Utc> = begun["expiresAt"]
        .as_str()
        .expect("expiresAt")
        .parse()
        .expect("time");
    let ttl = expires - chrono::Utc::now();
    assert!(ttl > chrono::Duration::minutes(9) && ttl <= chrono::Duration::minutes(10));
    let back = setup
        .authorize(begun["authorizeUrl"].as_str().expect("url"))
        .await;
    assert!(back.starts_with(SPA_CALLBACK), "{back}");
    let (code, state) = code_and_state(&back);

    // Another tenant's admin cannot complete it (and does not use it up).
    let stranger = app.token("gus", Some("globex"), &["admin"]);
    let foreign = setup.complete(&stranger, &state, &code).await;
    assert_error(&foreign, "BAD_USER_INPUT", Some("state"));
    // The browser callback does not complete a flow begun through the API.
    let via_callback = client()
        .get(format!(
            "{}/oauth/example/callback?state={state}&code={code}",
            app.http_url()
        ))
        .header(COOKIE, format!("herald_oauth_state={state}"))
        .send()
        .await
        .expect("callback");
    assert_eq!(via_callback.status(), StatusCode::BAD_REQUEST);
    // Neither used it up: the user who began it completes it, once.
    let connected = setup.complete(&setup.admin, &state, &code).await;
    assert!(connected.get("errors").is_none(), "{connected}");
    assert_eq!(
        connected["data"]["completeConnect"]["externalAccountId"],
        ACCOUNT
    );
    let replayed = setup.complete(&setup.admin, &state, &code).await;
    assert_error(&replayed, "BAD_USER_INPUT", Some("state"));

    // PKCE: a code completed with another flow's state (so another verifier) is refused
    // by the platform, which checks the verifier against the code's challenge.
    let first = setup.begin(&setup.admin, Some(SPA_CALLBACK)).await;
    let second = setup.begin(&setup.admin, Some(SPA_CALLBACK)).await;
    let back = setup
        .authorize(first["authorizeUrl"].as_str().expect("url"))
        .await;
    let (code, _) = code_and_state(&back);
    let mismatch = setup
        .complete(
            &setup.admin,
            second["state"].as_str().expect("state"),
            &code,
        )
        .await;
    assert_error(&mismatch, "BAD_USER_INPUT", Some("code"));
    assert_eq!(setup.fake.lock().expect("lock").pkce_failures, 1);

    // An expired flow is refused.
    let late = setup.begin(&setup.admin, Some(SPA_CALLBACK)).await;
    let back = setup
        .authorize(late["authorizeUrl"].as_str().expect("url"))
        .await;
    let (code, state) = code_and_state(&back);
    app.db
        .execute_unprepared("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
        .await
        .expect("age the flows");
    let expired = setup.complete(&setup.admin, &state, &code).await;
    assert_error(&expired, "BAD_USER_INPUT", Some("state"));
    let message = expired["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_keeps_a_refresh_token_the_platform_did_not_resend() {
    let setup = setup().await;
    let first = setup.connect().await;
    let refresh = stored(&setup.app)
        .await
        .refresh_token
        .expect("refresh token");

    // The platform grants again without a refresh token.
    setup.fake.lock().expect("lock").issue_refresh = false;
    let second = setup.connect().await;
    assert_eq!(second["id"], first["id"], "the same account, updated");
    let credentials = stored(&setup.app).await;
    assert_ne!(credentials.access_token, "", "a new access token");
    assert!(
        setup
            .fake
            .lock()
            .expect("lock")
            .access
            .contains(&credentials.access_token)
    );
    assert_eq!(
        credentials.refresh_token,
        Some(refresh),
        "the refresh token kept"
    );
    let listed = setup
        .app
        .ok(&setup.admin, "{ connections { id } }", json!({}))
        .await;
    assert_eq!(listed["connections"].as_array().map(Vec::len), Some(1));
}

/// The connect operations refuse a caller without a token (the authorization matrix lists
/// them as checked here: their rightful calls need an OAuth app and a fake platform).
#[tokio::test]
async fn connect_operations_refuse_anonymous_callers() {
    let setup = setup().await;
    let app = &setup.app;
    for document in [
        "mutation { beginConnect(platform: \"example\") { state } }",
        "mutation { completeConnect(state: \"s\", code: \"c\") { id } }",
    ] {
        let refused = app.gql(None, document, json!({})).await;
        assert_error(&refused, "UNAUTHENTICATED", None);
        assert!(refused["data"].is_null(), "{refused}");
    }
    let rows = app
        .db
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*)::int AS n FROM oauth_states",
        ))
        .await
        .expect("count")
        .expect("row");
    assert_eq!(rows.try_get::<i32>("", "n").expect("n"), 0, "nothing begun");
}
