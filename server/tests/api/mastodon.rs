//! The Mastodon plugin end to end against a fake instance built from Mastodon's OpenAPI
//! schema (`fakes::mastodon`): GraphQL → queue → plugin (wasm) → instance → status and URL
//! back, with target options, media processed asynchronously, rate limits, revoked
//! tokens, limits checked before scheduling and a lost answer retried idempotently.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fakes::mastodon::{FakeMastodon, PNG};
use crate::harness::{
    TestApp, app_publishing, assert_asks_to_reconnect, assert_error, assert_retried_after, in_ms,
    plugin_host_with, waits_for_account, watch_retry,
};

const TOKEN: &str = "tok-alice-mastodon";
const ACCOUNT_ID: &str = "109876543210987654";
const INSTANCE: &str = "https://mastodon.test";
const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"mastodon\", credentials: $c) { id platform externalAccountId displayName status } }";

struct Setup {
    app: TestApp,
    fake: FakeMastodon,
    token: String,
}

/// Herald with the real Mastodon plugin, `mastodon.test` (the account's instance) and
/// `media.herald.test` (where the post's media live) routed to the fake.
async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// [`setup`] with the plugin host's settings changed by `configure`.
async fn setup_with(configure: impl FnOnce(&mut herald_plugin_host::HostConfig)) -> Setup {
    let fake = FakeMastodon::start().await;
    fake.add_token(TOKEN, ACCOUNT_ID);
    let host = plugin_host_with(
        &[
            ("mastodon.test:443", fake.base.clone()),
            ("media.herald.test:443", fake.base.clone()),
        ],
        configure,
    )
    .await;
    let app = app_publishing("mastodon", host).await;
    let token = app.token("alice", None, &["admin"]);
    Setup { app, fake, token }
}

fn credentials(access_token: &str) -> Value {
    json!({"c": {"accessToken": access_token, "extra": [{"key": "instance", "value": INSTANCE}]}})
}

async fn connect(app: &TestApp, token: &str) -> Value {
    app.ok(token, CONNECT, credentials(TOKEN)).await["connectAccount"].clone()
}

/// A post for the Mastodon target with these options, due in 300 ms.
fn post_input(content: &str, options: &[(&str, &str)]) -> Value {
    let options: Vec<Value> = options
        .iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    json!({
        "content": content,
        "targets": [{"platform": "mastodon", "options": options}],
        "scheduledAt": in_ms(300),
    })
}

async fn published(app: &TestApp, token: &str, post: &Value) -> Value {
    app.wait_for_post(
        token,
        post["id"].as_str().expect("id"),
        Duration::from_secs(20),
        |p| p["status"] == "PUBLISHED",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_names_the_account_on_its_instance_and_refuses_a_bad_token() {
    let Setup { app, fake, token } = setup().await;
    let refused = app
        .gql(Some(&token), CONNECT, credentials("not-a-token"))
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("credentials"));

    let connected = connect(&app, &token).await;
    assert_eq!(connected["platform"], "mastodon");
    assert_eq!(connected["externalAccountId"], ACCOUNT_ID);
    assert_eq!(connected["displayName"], "Alice on Mastodon");
    assert_eq!(connected["status"], "active");
    let verified = fake.requests_to("GET", "/api/v1/accounts/verify_credentials");
    assert_eq!(verified.len(), 2);
    assert_eq!(
        verified[1].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        fake.requests_to("GET", "/api/v2/instance").len(),
        1,
        "the instance's limits are read once the token is good"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_post_is_published_with_the_targets_visibility_and_content_warning() {
    let Setup { app, fake, token } = setup().await;
    connect(&app, &token).await;
    let post = app
        .create_post(
            &token,
            post_input(
                "Hello fediverse <3 https://example.com/a/rather/long/link",
                &[
                    ("visibility", "unlisted"),
                    ("spoiler_text", "test post"),
                    ("language", "fr"),
                ],
            ),
        )
        .await;
    let done = published(&app, &token, &post).await;

    let statuses = fake.state().statuses.clone();
    assert_eq!(statuses.len(), 1);
    let status = &statuses[0];
    assert_eq!(
        status.text,
        "Hello fediverse <3 https://example.com/a/rather/long/link"
    );
    assert_eq!(
        status.json["content"],
        "<p>Hello fediverse &lt;3 https://example.com/a/rather/long/link</p>"
    );
    assert_eq!(status.json["visibility"], "unlisted");
    assert_eq!(status.json["spoiler_text"], "test post");
    assert_eq!(status.json["sensitive"], true);
    assert_eq!(status.json["language"], "fr");
    assert_eq!(status.token, TOKEN);
    assert_eq!(done["targets"][0]["platformUrl"], status.json["url"]);
    let key = status
        .idempotency_key
        .clone()
        .expect("Idempotency-Key sent");
    assert!(!key.is_empty());
    let created = fake.requests_to("POST", "/api/v1/statuses");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].header("idempotency-key"), Some(key.as_str()));
    assert_eq!(created[0].header("content-type"), Some("application/json"));

    // Engagement: the instance's counters become the target's metrics.
    {
        let mut state = fake.state();
        let json = &mut state.statuses[0].json;
        json["favourites_count"] = 7.into();
        json["reblogs_count"] = 2.into();
        json["replies_count"] = 1.into();
    }
    let refreshed = app
        .ok(
            &token,
            "mutation($id: ID!) { refreshPostMetrics(postId: $id) { target { platform } error metrics { likes shares comments impressions raw { name value } } } }",
            json!({"id": post["id"]}),
        )
        .await;
    assert_eq!(
        refreshed["refreshPostMetrics"],
        json!([{"target": {"platform": "mastodon"}, "error": null, "metrics": {
            "likes": 7, "shares": 2, "comments": 1, "impressions": null,
            "raw": [{"name": "favourites", "value": 7}, {"name": "reblogs", "value": 2},
                    {"name": "replies", "value": 1}]}}])
    );
    let read = app
        .ok(
            &token,
            "query($id: ID!) { post(id: $id) { targets { metrics { likes fetchedAt } } } }",
            json!({"id": post["id"]}),
        )
        .await;
    assert_eq!(read["post"]["targets"][0]["metrics"]["likes"], 7);
    let bob = app.token("bob", None, &["admin"]);
    let denied = app
        .gql(
            Some(&bob),
            "mutation($id: ID!) { refreshPostMetrics(postId: $id) { error } }",
            json!({"id": post["id"]}),
        )
        .await;
    assert_error(&denied, "NOT_FOUND", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_with_alt_text_is_polled_until_processed_then_attached() {
    let Setup { app, fake, token } = setup().await;
    fake.state().processing_polls = 2;
    connect(&app, &token).await;
    let mut input = post_input("A cat", &[]);
    input["media"] = json!([{
        "url": "https://media.herald.test/herald-media/cat.png",
        "altText": "A black cat asleep on a keyboard",
        "mimeType": "image/png",
    }]);
    let post = app.create_post(&token, input).await;
    published(&app, &token, &post).await;

    let (statuses, media) = {
        let state = fake.state();
        (state.statuses.clone(), state.media.clone())
    };
    assert_eq!(media.len(), 1, "uploaded once");
    assert_eq!(media[0].file.as_ref(), PNG, "the post's image bytes");
    assert_eq!(media[0].file_type, "image/png");
    let id = media[0].json["id"].as_str().expect("media id").to_owned();
    assert_eq!(statuses.len(), 1);
    let attachments = statuses[0].json["media_attachments"]
        .as_array()
        .expect("attachments")
        .clone();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0]["id"], id.as_str());
    assert_eq!(
        attachments[0]["description"],
        "A black cat asleep on a keyboard"
    );
    assert!(
        attachments[0]["url"].is_string(),
        "processed media has a URL"
    );

    // 202 on upload, 206 twice, then 200 — and only then the status.
    let uploads = fake.requests_to("POST", "/api/v2/media");
    assert_eq!(uploads.len(), 1);
    let polls = fake.requests_to("GET", &format!("/api/v1/media/{id}"));
    assert_eq!(polls.len(), 3, "polled until processed");
    let created = fake.requests_to("POST", "/api/v1/statuses");
    assert_eq!(created.len(), 1);
    assert!(created[0].at > polls[2].at);
    let body: Value = serde_json::from_slice(&created[0].body).expect("JSON body");
    assert_eq!(body["media_ids"], json!([id]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_status_is_retried_once_the_iso_8601_reset_has_passed() {
    let Setup { app, fake, token } = setup().await;
    let reset_in = Duration::from_millis(2_500);
    {
        let mut state = fake.state();
        state.throttle_statuses = 1;
        state.throttle_reset_in = reset_in;
    }
    connect(&app, &token).await;
    let retry = watch_retry(&app);
    let post = app
        .create_post(&token, post_input("after the rate limit", &[]))
        .await;
    let done = published(&app, &token, &post).await;

    let created = fake.requests_to("POST", "/api/v1/statuses");
    assert_eq!(created.len(), 2, "one 429, then the retry");
    let waited = created[1].at - created[0].at;
    assert_retried_after(&app, retry, waited, reset_in).await;
    assert_eq!(
        created[0].header("idempotency-key"),
        created[1].header("idempotency-key")
    );
    assert_eq!(fake.state().statuses.len(), 1);
    assert_eq!(done["targets"][0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_makes_the_target_wait_for_a_reconnect() {
    let Setup { app, fake, token } = setup().await;
    connect(&app, &token).await;
    fake.state().tokens.clear();
    let post = app
        .create_post(&token, post_input("after revocation", &[]))
        .await;
    // Scheduled before anyone knows, due once the account must be reconnected.
    let mut later = post_input("due while disconnected", &[]);
    later["scheduledAt"] = json!(in_ms(2_500));
    let second = app.create_post(&token, later).await;
    let failed = app
        .wait_for_post(
            &token,
            post["id"].as_str().expect("id"),
            Duration::from_secs(20),
            waits_for_account,
        )
        .await;
    assert_asks_to_reconnect(&app, &token, &failed).await;
    let refused = fake.requests_to("POST", "/api/v1/statuses");
    assert_eq!(refused.len(), 1);
    assert!(fake.state().statuses.is_empty());

    // A post due while the account must be reconnected waits too, without calling the
    // instance with the refused token.
    let waiting = app
        .wait_for_post(
            &token,
            second["id"].as_str().expect("id"),
            Duration::from_secs(20),
            waits_for_account,
        )
        .await;
    assert_eq!(waiting["status"], "QUEUED", "{waiting}");
    assert_eq!(fake.requests_to("POST", "/api/v1/statuses").len(), 1);
    // It says why: the reason recorded on the account.
    let reason = app
        .ok(&token, "{ connections { statusReason } }", json!({}))
        .await["connections"][0]["statusReason"]
        .as_str()
        .expect("reason")
        .to_owned();
    assert_eq!(
        waiting["targets"][0]["lastError"],
        format!("waiting for the mastodon account to be reconnected: {reason}")
    );

    // Reconnecting the account sends both out, each exactly once, with the new token.
    fake.add_token("tok-alice-renewed", ACCOUNT_ID);
    let reconnected = app
        .ok(&token, CONNECT, credentials("tok-alice-renewed"))
        .await["connectAccount"]
        .clone();
    assert_eq!(reconnected["status"], "active");
    for post in [&post, &second] {
        let done = published(&app, &token, post).await;
        assert!(done["targets"][0]["lastError"].is_null(), "{done}");
    }
    let first_done = published(&app, &token, &post).await;
    assert_eq!(first_done["targets"][0]["attempts"], 2, "{first_done}");
    let created = fake.requests_to("POST", "/api/v1/statuses");
    assert_eq!(created.len(), 3, "one refused, then one per post");
    assert!(
        created[1..]
            .iter()
            .all(|r| { r.header("authorization") == Some("Bearer tok-alice-renewed") })
    );
    assert_eq!(fake.state().statuses.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_500_characters_is_refused_at_scheduling_with_links_counted_as_23() {
    let Setup { app, fake, token } = setup().await;
    connect(&app, &token).await;
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";
    let refused = app
        .gql(
            Some(&token),
            create,
            json!({"i": post_input(&"a".repeat(501), &[])}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("content"));
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(message.starts_with("mastodon: "), "{message}");
    assert!(
        message.contains("501") && message.contains("limit is 500"),
        "{message}"
    );

    // The content warning counts too.
    let with_warning = app
        .gql(
            Some(&token),
            create,
            json!({"i": post_input(&"a".repeat(495), &[("spoiler_text", "spoilers")])}),
        )
        .await;
    assert_error(&with_warning, "BAD_USER_INPUT", Some("content"));

    // Target options are checked as well.
    let bad_visibility = app
        .gql(
            Some(&token),
            create,
            json!({"i": post_input("hello", &[("visibility", "friends-only")])}),
        )
        .await;
    assert_error(
        &bad_visibility,
        "BAD_USER_INPUT",
        Some("options.visibility"),
    );

    // 476 + 1 + a 123-character link counted as 23 = 500: accepted and published.
    let text = format!(
        "{} https://example.com/{}",
        "a".repeat(476),
        "x".repeat(103)
    );
    assert_eq!(text.chars().count(), 600);
    let post = app.create_post(&token, post_input(&text, &[])).await;
    published(&app, &token, &post).await;
    assert_eq!(fake.state().statuses[0].text, text);
    assert_eq!(
        fake.requests_to("POST", "/api/v1/statuses").len(),
        1,
        "the refused posts never reached the instance"
    );
}

/// An instance with a higher limit: the target option `max_characters` lets the post
/// through scheduling, and the plugin reads the instance's own limit when publishing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_limit_given_as_target_option_allows_longer_statuses() {
    let Setup { app, fake, token } = setup().await;
    fake.state().max_characters = 1_000;
    connect(&app, &token).await;
    let long = "c".repeat(900);
    let refused = app
        .gql(
            Some(&token),
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
            json!({"i": post_input(&long, &[])}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("content"));
    let post = app
        .create_post(&token, post_input(&long, &[("max_characters", "1000")]))
        .await;
    published(&app, &token, &post).await;
    assert_eq!(fake.state().statuses[0].text, long);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_with_a_lower_limit_fails_the_post_without_sending_it() {
    let Setup { app, fake, token } = setup().await;
    fake.state().max_characters = 100;
    connect(&app, &token).await;
    let post = app
        .create_post(&token, post_input(&"b".repeat(200), &[]))
        .await;
    let failed = app
        .wait_for_post(
            &token,
            post["id"].as_str().expect("id"),
            Duration::from_secs(20),
            |p| p["status"] == "FAILED",
        )
        .await;
    let error = failed["targets"][0]["lastError"].as_str().expect("error");
    assert!(error.contains("the limit is 100"), "{error}");
    assert_eq!(failed["targets"][0]["attempts"], 1, "{failed}");
    assert!(fake.requests_to("POST", "/api/v1/statuses").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_is_retried_with_the_same_idempotency_key_and_posts_once() {
    let Setup { app, fake, token } = setup().await;
    fake.state().lose_next_status_answer = true;
    connect(&app, &token).await;
    let post = app
        .create_post(&token, post_input("exactly once", &[]))
        .await;
    let done = published(&app, &token, &post).await;

    let created = fake.requests_to("POST", "/api/v1/statuses");
    assert_eq!(created.len(), 2, "the lost answer was retried");
    let key = created[0].header("idempotency-key").expect("key");
    assert_eq!(created[1].header("idempotency-key"), Some(key));
    let statuses = fake.state().statuses.clone();
    assert_eq!(statuses.len(), 1, "one status on the instance");
    assert_eq!(done["targets"][0]["platformUrl"], statuses[0].json["url"]);
    assert_eq!(done["targets"][0]["status"], "PUBLISHED");
}

/// API-side plugin calls have their own lane: with every API slot held by connect calls
/// the instance answers slowly, and more of them waiting, a post scheduled earlier is
/// still published on time (it waits for none of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connect_calls_do_not_delay_publishing() {
    const SLOW: &str = "tok-slow-instance";
    const API_SLOTS: u32 = 2;
    // Far longer than any lateness a loaded machine causes, so that a publish that waited
    // for the API lane is told apart from one that was merely slow.
    const SLOW_VERIFY: Duration = Duration::from_secs(90);
    let Setup { app, fake, token } = setup_with(|config| {
        config.concurrency = 2;
        config.api_concurrency = API_SLOTS;
    })
    .await;
    connect(&app, &token).await;
    let due_in = Duration::from_millis(2_500);
    let input = json!({
        "content": "on time",
        "targets": [{"platform": "mastodon"}],
        "scheduledAt": in_ms(due_in.as_millis() as i64),
    });
    let post = app.create_post(&token, input).await;
    let due = std::time::Instant::now() + due_in;

    fake.add_token(SLOW, "slow-account");
    fake.state()
        .slow_verify
        .insert(SLOW.to_owned(), SLOW_VERIFY);
    let bob = app.token("bob", None, &["admin"]);
    let slow_connects = futures_util::future::join_all(
        (0..2 * API_SLOTS).map(|_| app.gql(Some(&bob), CONNECT, credentials(SLOW))),
    );
    let slow_requests = || {
        fake.requests_to("GET", "/api/v1/accounts/verify_credentials")
            .iter()
            .filter(|r| r.header("authorization") == Some(&format!("Bearer {SLOW}")))
            .count()
    };
    let on_time = async {
        let saturated = tokio::time::timeout(Duration::from_secs(10), async {
            while slow_requests() < API_SLOTS as usize {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        saturated
            .await
            .expect("the slow connect calls reach the instance");
        published(&app, &token, &post).await
    };
    let done = tokio::select! {
        done = on_time => done,
        answers = slow_connects => panic!("the slow connect calls ended first: {answers:?}"),
    };
    let late = std::time::Instant::now().saturating_duration_since(due);
    assert_eq!(done["status"], "PUBLISHED", "{done}");
    assert!(
        late < SLOW_VERIFY / 6,
        "published {late:?} after its time: it waited for the API lane"
    );
    assert_eq!(
        slow_requests(),
        API_SLOTS as usize,
        "the API lane held its slots (the other connect calls waited) while the post went out"
    );
}

/// A user-supplied instance at a private address is refused before anything is sent, in
/// the same words whichever address and port it names (open, closed or filtered), and so
/// is a name that resolves to loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_at_a_private_address_is_refused_alike() {
    let Setup { app, fake, token } = setup().await;
    let open_port = fake
        .base
        .rsplit(':')
        .next()
        .expect("port")
        .trim_end_matches('/')
        .to_owned();
    let mut messages = Vec::new();
    for instance in [
        "https://10.0.0.5".to_owned(),
        "https://127.0.0.1:22".to_owned(),
        format!("https://127.0.0.1:{open_port}"),
        "https://[::ffff:127.0.0.1]".to_owned(),
        "https://[64:ff9b::a00:5]".to_owned(),
        format!("https://localhost:{open_port}"),
    ] {
        let variables =
            json!({"c": {"accessToken": TOKEN, "extra": [{"key": "instance", "value": instance}]}});
        let refused = app.gql(Some(&token), CONNECT, variables).await;
        assert_error(&refused, "BAD_USER_INPUT", Some("credentials"));
        let message = refused["errors"][0]["message"]
            .as_str()
            .expect("message")
            .to_owned();
        assert!(
            message.contains("destination not allowed"),
            "{instance}: {message}"
        );
        messages.push(message);
    }
    messages.dedup();
    assert_eq!(
        messages.len(),
        1,
        "one answer for every destination: {messages:?}"
    );
    assert!(
        fake.requests_to("GET", "/api/v1/accounts/verify_credentials")
            .is_empty()
    );
}
