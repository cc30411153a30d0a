//! Connected accounts end to end with the example plugin and a fake of its platform:
//! connect (verified by the plugin, stored encrypted), scheduling needs an account,
//! publishing as the account, an expired token refreshed once, a revoked one asking to
//! reconnect, and a database dump without a plaintext token.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::harness::{
    TestApp, app_publishing, assert_asks_to_reconnect, assert_error, in_ms, plugin_host,
    waits_for_account,
};

/// The fake platform's state: valid tokens, the refresh token it honours, what it got.
#[derive(Default)]
struct Platform {
    valid: HashSet<String>,
    refresh: Option<(String, String)>,
    posts: Vec<(String, Value)>,
    /// Uploaded media: (token, alt text header, bytes).
    media: Vec<(String, Option<String>, Vec<u8>)>,
    refreshes: usize,
}

type Shared = Arc<Mutex<Platform>>;

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

fn unauthorized() -> (StatusCode, Json<Value>) {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "invalid_token"})),
    )
}

async fn me(State(p): State<Shared>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    if !p.lock().expect("lock").valid.contains(&bearer(&headers)) {
        return unauthorized();
    }
    (
        StatusCode::OK,
        Json(
            json!({"id": account_id(&bearer(&headers)), "handle": "alice", "display_name": "Alice Example"}),
        ),
    )
}

/// The account a token of the fake belongs to: `tok-a` and `tok-b` are two more accounts.
fn account_id(token: &str) -> &'static str {
    match token {
        "tok-a" => "acct-a",
        "tok-b" => "acct-b",
        _ => "acct-42",
    }
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot really an image, but bytes all the same";

async fn upload(
    State(p): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    let token = bearer(&headers);
    let mut p = p.lock().expect("lock");
    if !p.valid.contains(&token) {
        return unauthorized();
    }
    let alt = headers
        .get("x-alt-text")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    p.media.push((token, alt, body.to_vec()));
    (
        StatusCode::OK,
        Json(json!({"id": format!("m{}", p.media.len())})),
    )
}

async fn create(
    State(p): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let token = bearer(&headers);
    let mut p = p.lock().expect("lock");
    if !p.valid.contains(&token) {
        return unauthorized();
    }
    p.posts.push((token, body));
    let id = format!("p{}", p.posts.len());
    (
        StatusCode::OK,
        Json(json!({"id": id, "url": format!("https://example.com/posts/{id}")})),
    )
}

async fn refresh(State(p): State<Shared>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let mut p = p.lock().expect("lock");
    p.refreshes += 1;
    match p.refresh.clone() {
        Some((expected, fresh)) if body["refresh_token"] == expected.as_str() => {
            p.valid.insert(fresh.clone());
            (
                StatusCode::OK,
                Json(json!({"access_token": fresh, "refresh_token": "refresh-2"})),
            )
        }
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        ),
    }
}

struct Setup {
    app: TestApp,
    platform: Shared,
    token: String,
}

async fn setup() -> Setup {
    let platform: Shared = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new()
        .route("/v1/me", get(me))
        .route("/v1/posts", post(create))
        .route("/v1/oauth/token", post(refresh))
        .route("/v1/media", post(upload))
        .route(
            "/cat.png",
            get(|| async { ([(axum::http::header::CONTENT_TYPE, "image/png")], PNG) }),
        )
        .with_state(platform.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    let host = plugin_host(&[
        ("api.example.com", format!("http://{addr}")),
        ("media.herald.test", format!("http://{addr}")),
    ])
    .await;
    // The worker publishes through the plugin as the tenant's connected account.
    let app = app_publishing("example", host).await;
    let token = app.token("alice", None, &["admin"]);
    Setup {
        app,
        platform,
        token,
    }
}

const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"example\", credentials: $c) { id platform externalAccountId displayName status } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_verify_list_disconnect() {
    let Setup {
        app,
        platform,
        token,
    } = setup().await;
    platform.lock().expect("lock").valid.insert("tok-1".into());

    let refused = app
        .gql(
            Some(&token),
            CONNECT,
            json!({"c": {"accessToken": "wrong"}}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("credentials"));
    let unknown = app
        .gql(
            Some(&token),
            "mutation { connectAccount(platform: \"myspace\", credentials: {accessToken: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_error(&unknown, "BAD_USER_INPUT", Some("platform"));

    let connected = app
        .ok(&token, CONNECT, json!({"c": {"accessToken": "tok-1"}}))
        .await["connectAccount"]
        .clone();
    assert_eq!(connected["externalAccountId"], "acct-42");
    let insecure = app
        .gql(
            Some(&token),
            CONNECT,
            json!({"c": {"accessToken": "tok-1",
                         "extra": [{"key": "server", "value": "http://social.example.test"}]}}),
        )
        .await;
    assert_error(&insecure, "BAD_USER_INPUT", Some("credentials"));
    assert!(
        insecure["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("https"),
        "{insecure}"
    );
    assert_eq!(connected["displayName"], "Alice Example");
    assert_eq!(connected["status"], "active");
    let again = app
        .ok(&token, CONNECT, json!({"c": {"accessToken": "tok-1"}}))
        .await;
    assert_eq!(
        again["connectAccount"]["id"], connected["id"],
        "reconnecting the same account updates it"
    );

    let bob = app.token("bob", None, &["admin"]);
    let listed = app.ok(&bob, "{ connections { id } }", json!({})).await;
    assert_eq!(
        listed["connections"],
        json!([]),
        "tenants see only their own"
    );
    let denied = app
        .gql(
            Some(&bob),
            "mutation($id: ID!) { disconnectAccount(id: $id) }",
            json!({"id": connected["id"]}),
        )
        .await;
    assert_error(&denied, "NOT_FOUND", None);
    let listed = app
        .ok(&token, "{ connections { id platform } }", json!({}))
        .await;
    assert_eq!(listed["connections"].as_array().map(Vec::len), Some(1));
    app.ok(
        &token,
        "mutation($id: ID!) { disconnectAccount(id: $id) }",
        json!({"id": connected["id"]}),
    )
    .await;
    let listed = app.ok(&token, "{ connections { id } }", json!({})).await;
    assert_eq!(listed["connections"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduling_needs_an_account_and_publishes_as_it() {
    let Setup {
        app,
        platform,
        token,
    } = setup().await;
    platform.lock().expect("lock").valid.insert("tok-1".into());
    let input = json!({"content": "as alice", "platforms": ["example"], "scheduledAt": in_ms(300)});
    let missing = app
        .gql(
            Some(&token),
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
            json!({"i": input}),
        )
        .await;
    assert_error(&missing, "BAD_USER_INPUT", Some("platforms"));
    assert!(
        missing["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("example")
    );

    app.ok(&token, CONNECT, json!({"c": {"accessToken": "tok-1"}}))
        .await;
    let post = app.create_post(&token, input).await;
    let id = post["id"].as_str().expect("id");
    let published = app
        .wait_for_post(&token, id, Duration::from_secs(15), |p| {
            p["status"] == "PUBLISHED"
        })
        .await;
    assert_eq!(
        published["targets"][0]["platformUrl"],
        "https://example.com/posts/p1"
    );
    let posts = platform.lock().expect("lock").posts.clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].0, "tok-1", "published with the account's token");
    assert_eq!(posts[0].1["text"], "as alice");
    assert!(
        posts[0].1["idempotency_key"]
            .as_str()
            .expect("key")
            .starts_with("herald-")
    );
}

const CREATE: &str = "mutation($i: CreatePostInput!) { createPost(input: $i) { id media { url altText mimeType } targets { platform connectionId options { key value } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_choose_the_account_and_media_carry_alt_text() {
    let Setup {
        app,
        platform,
        token,
    } = setup().await;
    platform
        .lock()
        .expect("lock")
        .valid
        .extend(["tok-a".to_owned(), "tok-b".to_owned()]);
    let connect = |access: &str| app.ok(&token, CONNECT, json!({"c": {"accessToken": access}}));
    let first = connect("tok-a").await["connectAccount"]["id"].clone();
    let second = connect("tok-b").await["connectAccount"]["id"].clone();
    assert_ne!(first, second, "two accounts on one platform");

    // The first account is chosen explicitly although the second is the most recent.
    let input = json!({
        "content": "from the first account",
        "targets": [{"platform": "example", "connectionId": first,
                     "options": [{"key": "visibility", "value": "unlisted"}]}],
        "media": [{"url": "https://media.herald.test/cat.png", "altText": "A cat asleep",
                   "mimeType": "image/png"}],
        "scheduledAt": in_ms(300),
    });
    let created = app.ok(&token, CREATE, json!({"i": input})).await["createPost"].clone();
    assert_eq!(
        created["media"],
        json!([{"url": "https://media.herald.test/cat.png", "altText": "A cat asleep",
                "mimeType": "image/png"}])
    );
    assert_eq!(created["targets"][0]["connectionId"], first);
    assert_eq!(
        created["targets"][0]["options"],
        json!([{"key": "visibility", "value": "unlisted"}])
    );
    let id = created["id"].as_str().expect("id");
    app.wait_for_post(&token, id, Duration::from_secs(15), |p| {
        p["status"] == "PUBLISHED"
    })
    .await;
    let seen = platform.lock().expect("lock");
    assert_eq!(seen.posts.len(), 1);
    assert_eq!(seen.posts[0].0, "tok-a", "published as the chosen account");
    assert_eq!(seen.posts[0].1["media_ids"], json!(["m1"]));
    assert_eq!(seen.media.len(), 1);
    assert_eq!(seen.media[0].0, "tok-a");
    assert_eq!(seen.media[0].1.as_deref(), Some("A cat asleep"));
    assert_eq!(
        seen.media[0].2, PNG,
        "the plugin uploaded the media's bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_and_content_over_the_limit_are_refused_before_scheduling() {
    let Setup {
        app,
        platform,
        token,
    } = setup().await;
    platform.lock().expect("lock").valid.insert("tok-1".into());
    let mine = app
        .ok(&token, CONNECT, json!({"c": {"accessToken": "tok-1"}}))
        .await["connectAccount"]["id"]
        .clone();
    let bob = app.token("bob", None, &["admin"]);
    platform
        .lock()
        .expect("lock")
        .valid
        .insert("tok-bob".into());
    let bobs = app
        .ok(&bob, CONNECT, json!({"c": {"accessToken": "tok-bob"}}))
        .await["connectAccount"]["id"]
        .clone();
    let create = |input: Value| app.gql(Some(&token), CREATE, json!({"i": input}));

    let someone_elses = create(json!({"content": "hi", "scheduledAt": in_ms(60_000),
        "targets": [{"platform": "example", "connectionId": bobs}]}))
    .await;
    assert_error(
        &someone_elses,
        "BAD_USER_INPUT",
        Some("targets[0].connectionId"),
    );
    // A draft may not name another tenant's account either, and it reads exactly as an
    // account that does not exist (no foreign-key error telling them apart).
    let draft_naming = |id: Value| {
        create(json!({"content": "hi", "targets": [{"platform": "example", "connectionId": id}]}))
    };
    let foreign = draft_naming(bobs.clone()).await;
    let unknown = draft_naming(json!(uuid::Uuid::now_v7().to_string())).await;
    for refused in [&foreign, &unknown] {
        assert_error(refused, "BAD_USER_INPUT", Some("targets[0].connectionId"));
        assert!(refused["data"].is_null(), "{refused}");
    }
    let message = |body: &Value| {
        body["errors"][0]["message"]
            .as_str()
            .map(|m| m.split(' ').take(3).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(message(&foreign), message(&unknown));
    let mine_draft = draft_naming(mine.clone()).await;
    assert!(mine_draft["errors"].is_null(), "{mine_draft}");
    let draft_id = mine_draft["data"]["createPost"]["id"].clone();
    let moved = app
        .gql(
            Some(&token),
            "mutation($id: ID!, $t: [TargetInput!]) { updatePost(id: $id, input: {targets: $t}) { id } }",
            json!({"id": draft_id, "t": [{"platform": "example", "connectionId": bobs}]}),
        )
        .await;
    assert_error(&moved, "BAD_USER_INPUT", Some("targets[0].connectionId"));
    let wrong_platform = create(json!({"content": "hi", "scheduledAt": in_ms(60_000),
        "targets": [{"platform": "webhook", "connectionId": mine}]}))
    .await;
    assert_error(
        &wrong_platform,
        "BAD_USER_INPUT",
        Some("targets[0].connectionId"),
    );
    let malformed = create(json!({"content": "hi",
        "targets": [{"platform": "example", "connectionId": "nope"}]}))
    .await;
    assert_error(
        &malformed,
        "BAD_USER_INPUT",
        Some("targets[0].connectionId"),
    );
    let both = create(json!({"content": "hi", "platforms": ["example"],
        "targets": [{"platform": "example"}]}))
    .await;
    assert_error(&both, "BAD_USER_INPUT", Some("targets"));
    let bad_alt = create(json!({"content": "hi",
        "media": [{"url": "https://media.herald.test/cat.png", "altText": "a".repeat(5001)}]}))
    .await;
    assert_error(&bad_alt, "BAD_USER_INPUT", Some("media[0]"));

    // The example plugin allows 500 graphemes: 501 are refused when scheduling, with the
    // platform named, and a draft may exceed it until it is scheduled.
    let long = "é".repeat(501);
    let refused = create(json!({"content": long, "platforms": ["example"],
        "scheduledAt": in_ms(60_000)}))
    .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("content"));
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(message.starts_with("example: "), "{message}");
    let draft = app
        .create_post(&token, json!({"content": long, "platforms": ["example"]}))
        .await;
    let scheduled = app
        .gql(
            Some(&token),
            "mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id } }",
            json!({"id": draft["id"], "at": in_ms(60_000)}),
        )
        .await;
    assert_error(&scheduled, "BAD_USER_INPUT", Some("content"));
    assert!(platform.lock().expect("lock").posts.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refreshed_once_and_revoked_one_asks_to_reconnect() {
    let Setup {
        app,
        platform,
        token,
    } = setup().await;
    platform.lock().expect("lock").valid.insert("tok-1".into());
    app.ok(
        &token,
        CONNECT,
        json!({"c": {"accessToken": "tok-1", "refreshToken": "refresh-1"}}),
    )
    .await;

    // The platform expires tok-1 and will refresh it into tok-2.
    {
        let mut p = platform.lock().expect("lock");
        p.valid.clear();
        p.refresh = Some(("refresh-1".into(), "tok-2".into()));
    }
    let first = app
        .create_post(
            &token,
            json!({"content": "after expiry", "platforms": ["example"], "scheduledAt": in_ms(200)}),
        )
        .await;
    app.wait_for_post(
        &token,
        first["id"].as_str().expect("id"),
        Duration::from_secs(15),
        |p| p["status"] == "PUBLISHED",
    )
    .await;
    {
        let p = platform.lock().expect("lock");
        assert_eq!(p.refreshes, 1);
        assert_eq!(p.posts.len(), 1);
        assert_eq!(p.posts[0].0, "tok-2", "published with the refreshed token");
    }
    let alice = herald_server::domain::actor::Actor {
        user_id: "alice".into(),
        tenant_id: "user:alice".into(),
        roles: vec![],
        operator: false,
    };
    let (_, stored) = herald_server::db::tenant::scope(
        "user:alice",
        app.connections
            .credentials(&alice.tenant_id, "example", None),
    )
    .await
    .expect("read")
    .expect("connected");
    assert_eq!(
        stored.access_token, "tok-2",
        "the refreshed token was stored"
    );
    assert_eq!(stored.refresh_token.as_deref(), Some("refresh-2"));

    // Now the account is revoked: refresh fails too.
    {
        let mut p = platform.lock().expect("lock");
        p.valid.clear();
        p.refresh = None;
    }
    let second = app
        .create_post(
            &token,
            json!({"content": "after revocation", "platforms": ["example"], "scheduledAt": in_ms(200)}),
        )
        .await;
    let failed = app
        .wait_for_post(
            &token,
            second["id"].as_str().expect("id"),
            Duration::from_secs(15),
            waits_for_account,
        )
        .await;
    assert_asks_to_reconnect(&app, &token, &failed).await;
    let blocked = app
        .gql(
            Some(&token),
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
            json!({"i": {"content": "x", "platforms": ["example"], "scheduledAt": in_ms(60_000)}}),
        )
        .await;
    assert_error(&blocked, "BAD_USER_INPUT", Some("platforms"));
}

/// `pg_dump` of the whole database holds no plaintext token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_dump_has_no_plaintext_token() {
    let Setup {
        app,
        platform,
        token,
    } = setup().await;
    let secret = "tok-very-secret-4a6f";
    platform.lock().expect("lock").valid.insert(secret.into());
    app.ok(
        &token,
        CONNECT,
        json!({"c": {"accessToken": secret, "refreshToken": "refresh-very-secret-77"}}),
    )
    .await;
    let pg_dump = std::fs::read_dir("/usr/lib/postgresql")
        .expect("postgres installed")
        .filter_map(Result::ok)
        .map(|d| d.path().join("bin/pg_dump"))
        .find(|p| p.exists())
        .expect("pg_dump");
    let dump = tokio::process::Command::new(pg_dump)
        .arg(&app.database_url)
        .stdout(Stdio::piped())
        .output()
        .await
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(text.contains("acct-42"), "the dump has the connection");
    assert!(!text.contains(secret), "access token in plaintext");
    assert!(
        !text.contains("refresh-very-secret-77"),
        "refresh token in plaintext"
    );
}

const SET_DEFAULT: &str = "mutation($id: ID!) { setDefaultConnection(id: $id) { id isDefault } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_manage_accounts_and_the_default_is_chosen_not_the_latest() {
    let Setup { app, platform, .. } = setup().await;
    for token in ["tok-1", "tok-a"] {
        platform.lock().expect("lock").valid.insert(token.into());
    }
    let admin = app.token("ann", Some("acme"), &["admin"]);
    let member = app.token("carl", Some("acme"), &["approver"]);
    let stranger = app.token("gus", Some("globex"), &["admin"]);

    // A member cannot connect an account of their own for the team.
    let denied = app
        .gql(
            Some(&member),
            CONNECT,
            json!({"c": {"accessToken": "tok-a"}}),
        )
        .await;
    assert_error(&denied, "FORBIDDEN", None);

    let first = app
        .ok(&admin, CONNECT, json!({"c": {"accessToken": "tok-1"}}))
        .await["connectAccount"]["id"]
        .clone();
    let second = app
        .ok(&admin, CONNECT, json!({"c": {"accessToken": "tok-a"}}))
        .await["connectAccount"]["id"]
        .clone();
    let listed = app
        .ok(&member, "{ connections { id isDefault } }", json!({}))
        .await;
    assert_eq!(
        listed["connections"],
        json!([{"id": second, "isDefault": false}, {"id": first, "isDefault": true}]),
        "the first account is the default; a later one does not take over"
    );

    // Neither choosing the default nor disconnecting is a member's to do, and another
    // tenant's admin does not find the account at all.
    for (query, variables) in [
        (SET_DEFAULT, json!({"id": second})),
        (
            "mutation($id: ID!) { disconnectAccount(id: $id) }",
            json!({"id": first}),
        ),
    ] {
        let denied = app.gql(Some(&member), query, variables.clone()).await;
        assert_error(&denied, "FORBIDDEN", None);
        let hidden = app.gql(Some(&stranger), query, variables).await;
        assert_error(&hidden, "NOT_FOUND", None);
    }

    // A member's post without a chosen account goes out as the default account…
    let post = app
        .create_post(
            &member,
            json!({"content": "team", "platforms": ["example"], "scheduledAt": in_ms(200)}),
        )
        .await;
    let id = post["id"].as_str().expect("id");
    app.wait_for_post(&member, id, Duration::from_secs(15), |p| {
        p["status"] == "PUBLISHED"
    })
    .await;
    // …and as the one the admin chooses next.
    let chosen = app.ok(&admin, SET_DEFAULT, json!({"id": second})).await;
    assert_eq!(chosen["setDefaultConnection"]["isDefault"], true);
    let listed = app
        .ok(&admin, "{ connections { id isDefault } }", json!({}))
        .await;
    assert_eq!(
        listed["connections"],
        json!([{"id": second, "isDefault": true}, {"id": first, "isDefault": false}])
    );
    let post = app
        .create_post(
            &member,
            json!({"content": "team again", "platforms": ["example"], "scheduledAt": in_ms(200)}),
        )
        .await;
    let id = post["id"].as_str().expect("id");
    app.wait_for_post(&member, id, Duration::from_secs(15), |p| {
        p["status"] == "PUBLISHED"
    })
    .await;
    let tokens: Vec<String> = platform
        .lock()
        .expect("lock")
        .posts
        .iter()
        .map(|(token, _)| token.clone())
        .collect();
    assert_eq!(tokens, ["tok-1", "tok-a"]);
}

/// Choosing a default that the update meets before the current default (earlier in the
/// unique index on the account id, and stored earlier than the current default's latest
/// version) works: the old default is unset before the new one is set, so the one-default
/// index never sees two (it answered INTERNAL, depending on the rows' order).
#[tokio::test]
async fn a_default_met_before_the_current_one_can_be_chosen() {
    let app = TestApp::spawn().await;
    let admin = app.token("ann", Some("acme"), &["admin"]);
    let actor = herald_server::domain::actor::Actor {
        user_id: "ann".into(),
        tenant_id: "org:acme".into(),
        roles: vec![],
        operator: false,
    };
    let credentials = herald_plugin_host::Credentials {
        access_token: "tok".into(),
        refresh_token: None,
        expires_at: None,
        extra: Default::default(),
    };
    let store = |account: &'static str| {
        herald_server::db::tenant::scope(
            "org:acme",
            app.connections
                .store(&actor, "example", account, account, &credentials),
        )
    };
    // acct-b is the default; acct-a comes first in the index, and (once acct-b is
    // reconnected, which writes a new version of its row) first in the table too.
    let current = store("acct-b").await.expect("store b");
    let chosen = store("acct-a").await.expect("store a");
    store("acct-b").await.expect("reconnect b");
    assert!(current.is_default && !chosen.is_default);

    let answer = app
        .ok(&admin, SET_DEFAULT, json!({"id": chosen.id.to_string()}))
        .await;
    assert_eq!(answer["setDefaultConnection"]["isDefault"], true);
    let listed = app
        .ok(
            &admin,
            "{ connections { externalAccountId isDefault } }",
            json!({}),
        )
        .await;
    let mut listed = listed["connections"].as_array().expect("list").clone();
    listed.sort_by_key(|c| c["externalAccountId"].to_string());
    assert_eq!(
        listed,
        [
            json!({"externalAccountId": "acct-a", "isDefault": true}),
            json!({"externalAccountId": "acct-b", "isDefault": false}),
        ]
    );
}
