//! The Threads plugin end to end against a fake Threads API (`fakes::threads`): Threads
//! Login through `beginConnect`/`completeConnect` to a 60-day token, renewed by Herald's
//! token refresher (`th_refresh_token`) and used next; a carousel of two library images
//! and a post with an uploaded MP4 published exactly once, Threads downloading them from
//! Herald's signed URLs (the video in ranges) and processing the containers; "too early"
//! (24 / 4279009) tried again; an unknown error after publishing recognised through the
//! published container; a full quota waiting with the reason; 500 characters checked
//! when scheduling; 190 asking to reconnect.

use std::time::Duration;

use herald_server::domain::oauth_apps::{OauthApp, OauthConfig};
use herald_server::token_refresh::{Outcome, Refresher};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::facebook::{mp4, png, upload};
use crate::fakes::facebook::Failure;
use crate::fakes::threads::{FakeThreads, LONG_LIVED_SECONDS, QUOTA_TOTAL};
use crate::harness::{
    MEDIA_HOST, TestApp, app_publishing, assert_asks_to_reconnect, assert_error, in_ms,
    plugin_host, publishing_through, watch_retry,
};

const TOKEN: &str = "THlong-alice";
const USER: &str = "17841400000000001";
const USERNAME: &str = "alice.bakes";
const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"threads\", credentials: $c) { id externalAccountId displayName } }";
const REDIRECT: &str = "https://herald.example/oauth/threads/callback";

fn hosts(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("graph.threads.net:443", base.to_owned()),
        ("threads.net:443", base.to_owned()),
    ]
}

struct Setup {
    app: TestApp,
    fake: FakeThreads,
    token: String,
}

/// Herald publishing to alice's Threads account with a pasted long-lived token; the fake
/// downloads media from the app itself.
async fn setup() -> Setup {
    let fake = FakeThreads::start().await;
    fake.add_user(TOKEN, USER, USERNAME);
    let host = plugin_host(&hosts(&fake.base)).await;
    let app = app_publishing("threads", host).await;
    fake.route_media(MEDIA_HOST, &app.http_url());
    let token = app.token("alice", None, &["admin"]);
    let connected = app
        .ok(&token, CONNECT, json!({"c": {"accessToken": TOKEN}}))
        .await;
    assert_eq!(connected["connectAccount"]["externalAccountId"], USER);
    assert_eq!(
        connected["connectAccount"]["displayName"],
        format!("{USERNAME} on Threads")
    );
    Setup { app, fake, token }
}

fn post_input(content: &str, media: Value) -> Value {
    json!({
        "content": content,
        "targets": [{"platform": "threads"}],
        "scheduledAt": in_ms(300),
        "media": media,
    })
}

async fn ended(app: &TestApp, token: &str, post: &Value, done: impl Fn(&Value) -> bool) -> Value {
    app.wait_for_post(
        token,
        post["id"].as_str().expect("id"),
        Duration::from_secs(40),
        done,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carousel_and_a_video_are_published_once_from_signed_urls() {
    let Setup { app, fake, token } = setup().await;
    fake.state().processing_reads = 2;
    let cat = png("threads-cat");
    let kitten = png("threads-kitten");
    let video = mp4();
    let cat_id = upload(&app, &token, &cat, "cat.png", Some("A cat on a loaf")).await;
    let kitten_id = upload(&app, &token, &kitten, "kitten.png", None).await;
    let video_id = upload(&app, &token, &video, "clip.mp4", None).await;

    let carousel = app
        .create_post(
            &token,
            post_input(
                "Two cats",
                json!([{"mediaId": cat_id}, {"mediaId": kitten_id}]),
            ),
        )
        .await;
    let done = ended(&app, &token, &carousel, |p| p["status"] == "PUBLISHED").await;
    let clip = app
        .create_post(&token, post_input("A clip", json!([{"mediaId": video_id}])))
        .await;
    let clip_done = ended(&app, &token, &clip, |p| p["status"] == "PUBLISHED").await;

    let state = fake.state();
    assert!(
        state.fetch_failures.is_empty(),
        "{:?}",
        state.fetch_failures
    );
    assert_eq!(state.threads.len(), 2, "each post published once");
    assert_eq!(
        state.containers.len(),
        4,
        "two items, their carousel, the video"
    );
    let (items, rest) = state.containers.split_at(2);
    assert!(
        items
            .iter()
            .all(|c| c.carousel_item && c.media_type == "IMAGE")
    );
    assert_eq!(items[0].fetched.as_ref().expect("fetched").bytes, cat);
    assert_eq!(items[1].fetched.as_ref().expect("fetched").bytes, kitten);
    assert!(
        items[0]
            .fetched
            .as_ref()
            .expect("fetched")
            .url
            .starts_with(&format!("{MEDIA_HOST}/media/"))
    );
    assert_eq!(items[0].alt.as_deref(), Some("A cat on a loaf"));
    assert_eq!(rest[0].media_type, "CAROUSEL");
    assert_eq!(
        rest[0].children,
        vec![items[0].id.clone(), items[1].id.clone()]
    );
    assert_eq!(rest[0].text, "Two cats");
    assert_eq!(state.threads[0].container, rest[0].id);
    assert_eq!(
        done["targets"][0]["platformUrl"],
        state.threads[0].permalink
    );
    assert_eq!(done["targets"][0]["attempts"], 1);

    assert_eq!(rest[1].media_type, "VIDEO");
    let fetched = rest[1].fetched.as_ref().expect("a video");
    assert_eq!(
        fetched.bytes, video,
        "the whole video, assembled from ranges"
    );
    assert_eq!(fetched.content_type, "video/mp4");
    assert!(fetched.requests > 1, "fetched in ranges");
    assert_eq!(state.threads[1].container, rest[1].id);
    assert_eq!(
        clip_done["targets"][0]["platformUrl"],
        state.threads[1].permalink
    );
    drop(state);

    // Every container was read until FINISHED before it was used: two IN_PROGRESS reads
    // and the FINISHED one each.
    let reads = fake
        .state()
        .requests
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains("fields=status"))
        .count();
    assert_eq!(reads, 4 * 3);
    assert_eq!(fake.requests_to("POST", "/threads_publish").len(), 2);
    assert_eq!(
        fake.requests_to("GET", "/threads_publishing_limit").len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_early_is_tried_again_and_an_unknown_error_finds_the_published_container() {
    let Setup { app, fake, token } = setup().await;
    fake.state().too_early = 1;
    let post = app
        .create_post(&token, post_input("Warm bread", json!([])))
        .await;
    let done = ended(&app, &token, &post, |p| p["status"] == "PUBLISHED").await;
    assert_eq!(
        done["targets"][0]["attempts"], 1,
        "tried again within the attempt"
    );
    assert_eq!(fake.requests_to("POST", "/threads_publish").len(), 2);
    assert_eq!(fake.state().containers[0].media_type, "TEXT");

    fake.state().fail_after_publishing = true;
    let post = app
        .create_post(&token, post_input("Cold butter", json!([])))
        .await;
    let done = ended(&app, &token, &post, |p| p["status"] == "PUBLISHED").await;
    let state = fake.state();
    assert_eq!(state.threads.len(), 2, "published once despite the error");
    assert_eq!(
        done["targets"][0]["platformUrl"],
        state.threads[1].permalink
    );
    assert_eq!(done["targets"][0]["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_quota_waits_with_the_reason() {
    let Setup { app, fake, token } = setup().await;
    fake.state().quota_used = QUOTA_TOTAL;
    let retry = watch_retry(&app);
    let post = app
        .create_post(&token, post_input("One too many", json!([])))
        .await;
    let waiting = ended(&app, &token, &post, |p| {
        p["targets"][0]["lastError"].as_str().is_some()
    })
    .await;
    let error = waiting["targets"][0]["lastError"].as_str().expect("error");
    assert!(
        error.contains("quota is used up") && error.contains("250 of 250"),
        "{error}"
    );
    let (_, due) = retry.await.expect("retry watch");
    let wait = due - chrono::Utc::now();
    assert!(
        wait > chrono::Duration::minutes(55) && wait <= chrono::Duration::minutes(60),
        "waits an hour, not a backoff: {wait}"
    );
    assert_eq!(waiting["status"], "QUEUED");
    assert!(fake.state().containers.is_empty(), "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_characters_are_checked_when_scheduling() {
    let Setup { app, fake, token } = setup().await;
    let refused = app
        .gql(
            Some(&token),
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
            json!({"i": post_input(&"a".repeat(501), json!([]))}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("content"));
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.starts_with("threads: ") && message.contains("500"),
        "{message}"
    );

    let text = "é".repeat(500);
    let post = app.create_post(&token, post_input(&text, json!([]))).await;
    ended(&app, &token, &post, |p| p["status"] == "PUBLISHED").await;
    assert_eq!(fake.state().threads[0].text, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_asks_to_reconnect() {
    let Setup { app, fake, token } = setup().await;
    fake.state().tokens.clear();
    let post = app
        .create_post(&token, post_input("expired", json!([])))
        .await;
    let failed = ended(&app, &token, &post, |p| {
        p["status"] == "QUEUED" && p["targets"][0]["status"] == "WAITING_FOR_ACCOUNT"
    })
    .await;
    let error = assert_asks_to_reconnect(&app, &token, &failed).await;
    assert!(error.contains("190"), "{error}");
    assert!(fake.state().threads.is_empty());
}

/// Threads Login: the code becomes a short-lived token and the user id, then a 60-day
/// token; Herald's token refresher renews it before it expires (`th_refresh_token`, no
/// refresh token needed, nothing announced as "reconnect"), and publishing uses the new
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_login_then_the_token_is_renewed_and_used() {
    let fake = FakeThreads::start().await;
    fake.add_user("unused", USER, USERNAME);
    {
        let mut state = fake.state();
        state
            .clients
            .insert("990".into(), ("th-s3cret".into(), vec![REDIRECT.into()]));
        state.approving = Some(USER.into());
    }
    let host = plugin_host(&hosts(&fake.base)).await;
    let settings = |base: &str| OauthConfig {
        public_url: Some(base.to_owned()),
        redirect_uris: vec![REDIRECT.to_owned()],
        apps: [(
            "THREADS".to_owned(),
            OauthApp {
                client_id: "990".into(),
                client_secret: Some("th-s3cret".into()),
                scopes: vec![],
            },
        )]
        .into(),
        // The app's own refresher runs once at start (nothing due yet); the test runs
        // the next round itself.
        refresh_ahead: Duration::from_secs(600),
        refresh_interval: Duration::from_secs(3_600),
        reconnect_warning: Duration::from_secs(7 * 86_400),
        ..Default::default()
    };
    let api = TestApp::spawn_with_oauth(host.clone(), settings).await;
    let app = publishing_through(api, "threads", host.clone()).await;
    let token = app.token("alice", None, &["admin"]);

    let begun = app
        .ok(
            &token,
            "mutation { beginConnect(platform: \"threads\", redirectUri: \"https://herald.example/oauth/threads/callback\") { authorizeUrl state } }",
            json!({}),
        )
        .await["beginConnect"]
        .clone();
    let url = begun["authorizeUrl"].as_str().expect("URL");
    let parsed = reqwest::Url::parse(url).expect("URL");
    assert_eq!(parsed.host_str(), Some("threads.net"));
    assert_eq!(parsed.path(), "/oauth/authorize");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = client
        .get(url.replacen("https://threads.net", &fake.base, 1))
        .send()
        .await
        .expect("authorize");
    assert_eq!(answer.status(), 302);
    let back = reqwest::Url::parse(answer.headers()["location"].to_str().expect("location"))
        .expect("redirect");
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let before = chrono::Utc::now();
    let connected = app
        .ok(
            &token,
            "mutation($s: String!, $c: String!) { completeConnect(state: $s, code: $c) { externalAccountId displayName status expiresAt } }",
            json!({"s": begun["state"], "c": code}),
        )
        .await["completeConnect"]
        .clone();
    assert_eq!(connected["externalAccountId"], USER);
    assert_eq!(connected["status"], "active");
    let expires = |value: &Value| {
        chrono::DateTime::parse_from_rfc3339(value.as_str().expect("expiresAt"))
            .expect("time")
            .with_timezone(&chrono::Utc)
    };
    let lives = expires(&connected["expiresAt"]) - before;
    assert!(
        (lives - chrono::Duration::seconds(LONG_LIVED_SECONDS))
            .num_seconds()
            .abs()
            < 10,
        "a 60-day token: {lives}"
    );
    let long = fake.requests_to("GET", "/access_token");
    assert_eq!(long.len(), 1);
    assert_eq!(
        long[0].param("grant_type").as_deref(),
        Some("th_exchange_token")
    );
    let exchanged = fake.requests_to("POST", "/oauth/access_token");
    assert_eq!(
        exchanged[0].param("client_secret").as_deref(),
        Some("th-s3cret")
    );
    let long_token = {
        let state = fake.state();
        state
            .tokens
            .keys()
            .find(|t| t.starts_with("THlong"))
            .cloned()
            .expect("long-lived token")
    };

    // Due for renewal: the refresher renews the token with itself.
    app.db
        .execute_unprepared(
            "UPDATE social_connections SET expires_at = now() + interval '60 seconds'",
        )
        .await
        .expect("expiry");
    let refresher = Refresher::new(
        app.services.worker_db.clone(),
        app.connections.clone(),
        host,
        std::sync::Arc::new(settings(&app.http_url())),
    );
    let outcomes = refresher.round().await.expect("round");
    assert!(
        matches!(outcomes.as_slice(), [(_, Outcome::Refreshed)]),
        "{outcomes:?}"
    );
    let refreshed = fake.requests_to("GET", "/refresh_access_token");
    assert_eq!(refreshed.len(), 1);
    assert_eq!(
        refreshed[0].param("grant_type").as_deref(),
        Some("th_refresh_token")
    );
    assert_eq!(
        refreshed[0].param("access_token").as_deref(),
        Some(long_token.as_str())
    );
    let listed = app
        .ok(
            &token,
            "{ connections { status statusReason expiresAt reconnectBy } }",
            json!({}),
        )
        .await["connections"][0]
        .clone();
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["statusReason"], Value::Null, "nothing to reconnect");
    assert_eq!(listed["reconnectBy"], Value::Null);
    assert!(expires(&listed["expiresAt"]) > chrono::Utc::now() + chrono::Duration::days(59));

    // The old token ends: publishing uses the renewed one.
    fake.state().tokens.remove(&long_token);
    let post = app
        .create_post(&token, post_input("Renewed", json!([])))
        .await;
    ended(&app, &token, &post, |p| p["status"] == "PUBLISHED").await;
    assert_eq!(fake.state().threads.len(), 1);
}

/// A queued failure on container creation is mapped like any Graph error (here 368).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_block_waits_with_the_platforms_words() {
    let Setup { app, fake, token } = setup().await;
    fake.state().failures.push_back(Failure::new(
        368,
        "It looks like you were misusing this feature by going too fast.",
    ));
    let retry = watch_retry(&app);
    let post = app
        .create_post(&token, post_input("Blocked", json!([])))
        .await;
    let waiting = ended(&app, &token, &post, |p| {
        p["targets"][0]["lastError"].as_str().is_some()
    })
    .await;
    let error = waiting["targets"][0]["lastError"].as_str().expect("error");
    assert!(
        error.contains("going too fast") && error.contains("368"),
        "{error}"
    );
    let (_, due) = retry.await.expect("retry watch");
    assert!(due - chrono::Utc::now() > chrono::Duration::minutes(55));
    assert!(fake.state().threads.is_empty());
}

/// An attempt that ends while Threads still processes the container (more status reads
/// than one attempt makes) leaves the container's id in a checkpoint: the retry resumes
/// with that container instead of making a second one, and the thread is published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_resumes_with_the_container_of_the_earlier_attempt() {
    let Setup { app, fake, token } = setup().await;
    fake.state().processing_reads = STATUS_READS_PER_ATTEMPT + 2;
    let post = app
        .create_post(&token, post_input("Slow oven", json!([])))
        .await;
    let done = ended(&app, &token, &post, |p| p["status"] == "PUBLISHED").await;
    assert_eq!(done["targets"][0]["attempts"], 2, "{done}");
    let state = fake.state();
    assert_eq!(
        state.containers.len(),
        1,
        "the retry made no second container"
    );
    assert_eq!(state.threads.len(), 1, "published once");
    assert_eq!(state.threads[0].container, state.containers[0].id);
}

/// Status reads one attempt makes (the plugin's `containers::STATUS_READS`).
const STATUS_READS_PER_ATTEMPT: u32 = 10;
