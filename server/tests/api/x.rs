//! The X plugin end to end against a fake X API v2 built from X's OpenAPI description
//! (`fakes::x`): GraphQL → queue → plugin (wasm) → fake → post and URL back, exactly once;
//! images by the chunked upload with processing polled; the weighted length checked
//! before scheduling; epoch rate-limit resets; 402 without API credit; lost answers (and a
//! worker killed mid-publish) found among the account's own posts, never posted twice;
//! OAuth 2.0 with PKCE and rotating refresh tokens through the plugin host; and
//! `herald plugin run` against the fake.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_plugin_host::{OauthClient, PublishFailure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::discord::spawn_plugin_worker;
use crate::fakes::x::{FakeX, image, oauth};
use crate::harness::{
    TestApp, app_publishing, assert_error, assert_retried_after, in_ms, plugin_host, watch_retry,
};

const TOKEN: &str = "tok-alice-x";
const ACCOUNT_ID: &str = "1456789012345678901";
const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"x\", credentials: $c) { id platform externalAccountId displayName status } }";

struct Setup {
    app: TestApp,
    fake: FakeX,
    token: String,
}

/// Herald with the real X plugin, `api.x.com` and `media.herald.test` (where the post's
/// media live) routed to the fake, and alice's X account connected with a pasted token.
async fn setup() -> Setup {
    let fake = FakeX::start().await;
    fake.add_account(TOKEN, ACCOUNT_ID, "alice", "Alice on X");
    let host = plugin_host(&[
        ("api.x.com:443", fake.base.clone()),
        ("media.herald.test:443", fake.base.clone()),
    ])
    .await;
    let app = app_publishing("x", host).await;
    let token = app.token("alice", None, &["admin"]);
    app.ok(&token, CONNECT, json!({"c": {"accessToken": TOKEN}}))
        .await;
    Setup { app, fake, token }
}

/// A post for the X target, due in 300 ms.
fn post_input(content: &str) -> Value {
    json!({
        "content": content,
        "targets": [{"platform": "x"}],
        "scheduledAt": in_ms(300),
    })
}

async fn ended(app: &TestApp, token: &str, post: &Value, status: &'static str) -> Value {
    app.wait_for_post(
        token,
        post["id"].as_str().expect("id"),
        Duration::from_secs(30),
        |p| p["status"] == status,
    )
    .await
}

fn timeline_path() -> String {
    format!("/2/users/{ACCOUNT_ID}/tweets")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_names_the_account_and_refuses_a_bad_token() {
    let fake = FakeX::start().await;
    fake.add_account(TOKEN, ACCOUNT_ID, "alice", "Alice on X");
    let host = plugin_host(&[("api.x.com:443", fake.base.clone())]).await;
    let app = app_publishing("x", host).await;
    let token = app.token("alice", None, &["admin"]);
    let refused = app
        .gql(Some(&token), CONNECT, json!({"c": {"accessToken": "nope"}}))
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("credentials"));
    let connected = app
        .ok(&token, CONNECT, json!({"c": {"accessToken": TOKEN}}))
        .await["connectAccount"]
        .clone();
    assert_eq!(connected["platform"], "x");
    assert_eq!(connected["externalAccountId"], ACCOUNT_ID);
    assert_eq!(connected["displayName"], "Alice on X");
    assert_eq!(connected["status"], "active");
    let verified = fake.requests_to("GET", "/2/users/me");
    assert_eq!(verified.len(), 2);
    assert_eq!(
        verified[1].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_post_is_published_exactly_once() {
    let Setup { app, fake, token } = setup().await;
    let text = "Hello X & friends <3 https://example.com/a/rather/long/link";
    let post = app.create_post(&token, post_input(text)).await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].text, text);
    assert_eq!(posts[0].author, ACCOUNT_ID);
    assert!(posts[0].media_ids.is_empty());
    let created = fake.requests_to("POST", "/2/tweets");
    assert_eq!(created.len(), 1, "one call creates the post");
    assert_eq!(
        created[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(created[0].header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&created[0].body).expect("JSON body");
    assert_eq!(body, json!({"text": text}));
    assert_eq!(
        done["targets"][0]["platformUrl"],
        format!("https://x.com/i/status/{}", posts[0].id)
    );
    assert_eq!(done["targets"][0]["attempts"], 1);
    assert!(
        fake.requests_to("GET", &timeline_path()).is_empty(),
        "nothing to look up when X answered"
    );

    // Engagement: X's public metrics become the target's metrics.
    fake.state().posts[0].public_metrics = json!({
        "retweet_count": 2, "repost_count": 2, "reply_count": 1, "like_count": 7,
        "quote_count": 0, "bookmark_count": 3, "impression_count": 120
    });
    let refreshed = app
        .ok(
            &token,
            "mutation($id: ID!) { refreshPostMetrics(postId: $id) { error metrics { likes shares comments impressions } } }",
            json!({"id": post["id"]}),
        )
        .await;
    assert_eq!(
        refreshed["refreshPostMetrics"],
        json!([{"error": null, "metrics": {"likes": 7, "shares": 2, "comments": 1, "impressions": 120}}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_go_up_in_chunks_and_are_polled_until_processed() {
    let Setup { app, fake, token } = setup().await;
    fake.state().processing_checks = 2;
    let mut input = post_input("Two cats");
    input["media"] = json!([
        {
            "url": "https://media.herald.test/herald-media/big-cat.png",
            "altText": "A black cat asleep on a keyboard",
            "mimeType": "image/png",
        },
        {"url": "https://media.herald.test/herald-media/kitten.png", "mimeType": "image/png"},
    ]);
    let post = app.create_post(&token, input).await;
    ended(&app, &token, &post, "PUBLISHED").await;

    let (posts, media) = {
        let state = fake.state();
        (state.posts.clone(), state.media.clone())
    };
    assert_eq!(media.len(), 2, "each image uploaded once");
    let big = &media[0];
    assert_eq!(big.segments.len(), 3, "2.5 MiB in 1 MiB segments");
    assert_eq!(big.bytes(), image("big-cat.png"));
    assert_eq!(big.total_bytes, image("big-cat.png").len() as u64);
    assert_eq!(big.media_type, "image/png");
    assert_eq!(big.category.as_deref(), Some("tweet_image"));
    assert_eq!(big.alt.as_deref(), Some("A black cat asleep on a keyboard"));
    assert_eq!(media[1].bytes(), image("kitten.png"));
    assert_eq!(media[1].alt, None);
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].media_ids,
        vec![big.id.clone(), media[1].id.clone()]
    );

    // initialize → append ×3 → finalize (pending) → STATUS in_progress ×2 → succeeded.
    assert_eq!(
        fake.requests_to("POST", "/2/media/upload/initialize").len(),
        2
    );
    let appended = fake.requests_to("POST", &format!("/2/media/upload/{}/append", big.id));
    assert_eq!(appended.len(), 3);
    let checks: Vec<_> = fake
        .requests_to("GET", "/2/media/upload")
        .into_iter()
        .filter(|r| r.query.contains(&format!("media_id={}", big.id)))
        .collect();
    assert_eq!(checks.len(), 3, "polled until processed");
    assert!(checks.iter().all(|r| r.query.contains("command=STATUS")));
    let finalized = fake.requests_to("POST", &format!("/2/media/upload/{}/finalize", big.id));
    assert!(
        checks[0].at - finalized[0].at >= Duration::from_secs(1),
        "check_after_secs kept"
    );
    let created = fake.requests_to("POST", "/2/tweets");
    assert_eq!(created.len(), 1);
    let last_check = fake
        .requests_to("GET", "/2/media/upload")
        .last()
        .expect("checks")
        .at;
    assert!(
        created[0].at > last_check,
        "posted once every image was processed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_280_weighted_is_refused_at_scheduling() {
    let Setup { app, fake, token } = setup().await;
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";
    let refused = app
        .gql(
            Some(&token),
            create,
            json!({"i": post_input(&"a".repeat(281))}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("content"));
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(message.starts_with("x: "), "{message}");
    assert!(
        message.contains("X counts 281") && message.contains("the limit is 280"),
        "{message}"
    );
    // CJK characters weigh 2: 141 of them are 282.
    let cjk = app
        .gql(
            Some(&token),
            create,
            json!({"i": post_input(&"語".repeat(141))}),
        )
        .await;
    assert_error(&cjk, "BAD_USER_INPUT", Some("content"));
    assert!(cjk.to_string().contains("X counts 282"), "{cjk}");

    // 256 + 1 + a 219-character link counted as 23 = 280: accepted and published.
    let text = format!(
        "{} https://example.com/{}",
        "a".repeat(256),
        "p".repeat(200)
    );
    let post = app.create_post(&token, post_input(&text)).await;
    ended(&app, &token, &post, "PUBLISHED").await;
    assert_eq!(fake.state().posts[0].text, text);
    assert_eq!(
        fake.requests_to("POST", "/2/tweets").len(),
        1,
        "the refused posts never reached X"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_post_is_retried_after_the_epoch_reset() {
    let Setup { app, fake, token } = setup().await;
    {
        let mut state = fake.state();
        state.throttle_posts = 1;
        state.throttle_reset_in = Duration::from_millis(2_500);
    }
    let retry = watch_retry(&app);
    let post = app
        .create_post(&token, post_input("after the rate limit"))
        .await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let created = fake.requests_to("POST", "/2/tweets");
    assert_eq!(created.len(), 2, "one 429, then the retry");
    let reset = fake.state().last_reset.expect("a reset was stated");
    let stated = chrono::DateTime::from_timestamp(reset, 0).expect("reset") - created[0].wall;
    let delay = stated.to_std().expect("the reset is after the request");
    assert!(delay >= Duration::from_millis(2_500));
    let waited = created[1].at - created[0].at;
    assert_retried_after(&app, retry, waited, delay).await;
    assert_eq!(fake.state().posts.len(), 1);
    assert_eq!(done["targets"][0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_api_credit_fails_at_once_naming_the_cause() {
    let Setup { app, fake, token } = setup().await;
    fake.state().no_credit = true;
    let post = app.create_post(&token, post_input("no credit")).await;
    let failed = ended(&app, &token, &post, "FAILED").await;
    let error = failed["targets"][0]["lastError"].as_str().expect("error");
    assert!(
        error.contains("402 Payment Required") && error.contains("no API credit"),
        "{error}"
    );
    assert!(error.contains("developer console"), "{error}");
    assert_eq!(failed["targets"][0]["attempts"], 1, "not retried: {failed}");
    assert_eq!(fake.requests_to("POST", "/2/tweets").len(), 1);
    assert!(fake.state().posts.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_is_found_among_the_accounts_posts_not_posted_again() {
    let Setup { app, fake, token } = setup().await;
    fake.state().lose_next_post_answer = true;
    let post = app
        .create_post(&token, post_input("exactly once & <ok>"))
        .await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    assert_eq!(
        fake.requests_to("POST", "/2/tweets").len(),
        1,
        "not re-posted"
    );
    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        done["targets"][0]["platformUrl"],
        format!("https://x.com/i/status/{}", posts[0].id)
    );
    assert_eq!(done["targets"][0]["attempts"], 1);
    let looked_up = fake.requests_to("GET", &timeline_path());
    assert_eq!(looked_up.len(), 1);
    assert!(looked_up[0].query.contains("tweet.fields=attachments"));
}

/// X's timeline lags: the lookup right after the lost answer misses, the retry is refused
/// as duplicate content (403), and the lookup that follows finds the post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_refusal_after_a_lost_answer_is_looked_up_not_failed() {
    let Setup { app, fake, token } = setup().await;
    {
        let mut state = fake.state();
        state.lose_next_post_answer = true;
        state.timeline_lag = 1;
    }
    let post = app.create_post(&token, post_input("said once")).await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    assert_eq!(
        fake.requests_to("POST", "/2/tweets").len(),
        2,
        "the retry reached X, which refused the duplicate"
    );
    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1, "one post on X");
    assert_eq!(fake.requests_to("GET", &timeline_path()).len(), 2);
    assert_eq!(
        done["targets"][0]["platformUrl"],
        format!("https://x.com/i/status/{}", posts[0].id)
    );
    assert_eq!(done["targets"][0]["attempts"], 2);
}

const REDIRECT: &str = "https://herald.example/oauth/x/callback";

/// Sends the user to the authorize URL (the fake approves at once) and returns the code
/// it redirected back with, checking the state came back.
async fn authorize(fake: &FakeX, url: &str, state: &str) -> String {
    let at_fake = url.replacen("https://x.com", &fake.base, 1);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = client.get(at_fake).send().await.expect("authorize");
    assert_eq!(
        answer.status(),
        302,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let location = answer.headers()["location"].to_str().expect("location");
    let back = reqwest::Url::parse(location).expect("redirect");
    assert!(location.starts_with(REDIRECT), "{location}");
    let param = |key: &str| {
        back.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .expect(key)
    };
    assert_eq!(param("state"), state);
    param("code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_with_pkce_and_rotating_refresh_tokens_through_the_host() {
    let fake = FakeX::start().await;
    fake.add_account("unused", ACCOUNT_ID, "alice", "Alice on X");
    {
        let mut state = fake.state();
        for (id, secret) in [
            ("public-app", None),
            ("confidential-app", Some("app-s3cret")),
        ] {
            state.oauth.clients.insert(
                id.into(),
                oauth::Client {
                    secret: secret.map(str::to_owned),
                    redirect_uris: vec![REDIRECT.into()],
                },
            );
        }
        state.oauth.approving = Some(ACCOUNT_ID.into());
    }
    let host = plugin_host(&[("api.x.com:443", fake.base.clone())]).await;
    let client = OauthClient {
        client_id: "public-app".into(),
        client_secret: None,
        redirect_uri: REDIRECT.into(),
    };
    let verifier = "a-verifier-of-the-required-length-43-to-128-characters";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));

    let url = host
        .oauth_authorize_url("x", client.clone(), "st4te/1", &challenge)
        .await
        .expect("authorize URL");
    let parsed = reqwest::Url::parse(&url).expect("URL");
    assert_eq!(parsed.host_str(), Some("x.com"));
    assert_eq!(parsed.path(), "/i/oauth2/authorize");
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(
        query["scope"],
        "tweet.read tweet.write users.read media.write offline.access"
    );
    assert_eq!(query["code_challenge"], challenge);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], REDIRECT);
    let code = authorize(&fake, &url, "st4te/1").await;

    // A wrong verifier is refused (PKCE), without using up the code.
    let mismatch = host
        .oauth_exchange("x", client.clone(), &code, "not-the-verifier")
        .await;
    assert!(
        matches!(&mismatch, Err(PublishFailure::Permanent { message }) if message.contains("connect again")),
        "{mismatch:?}"
    );
    let before = chrono::Utc::now().timestamp();
    let credentials = host
        .oauth_exchange("x", client.clone(), &code, verifier)
        .await
        .expect("exchange");
    let expires_at = credentials.expires_at.expect("expiry");
    assert!((before + oauth::EXPIRES_IN..=before + oauth::EXPIRES_IN + 5).contains(&expires_at));
    assert_eq!(
        credentials.extra,
        vec![("client_id".to_owned(), "public-app".to_owned())]
    );
    let first_refresh = credentials.refresh_token.clone().expect("refresh token");
    let reused = host
        .oauth_exchange("x", client.clone(), &code, verifier)
        .await;
    assert!(
        matches!(reused, Err(PublishFailure::Permanent { .. })),
        "codes are single-use"
    );
    let account = host
        .verify_credentials("x", credentials.clone())
        .await
        .expect("verify");
    assert_eq!(
        (account.id.as_str(), account.handle.as_str()),
        (ACCOUNT_ID, "alice")
    );

    // A transient failure of the token endpoint is retryable and rotates nothing.
    fake.state().oauth.unavailable = 1;
    let transient = host.refresh_token("x", credentials.clone()).await;
    assert!(
        matches!(transient, Err(PublishFailure::Retryable { .. })),
        "{transient:?}"
    );

    let refreshed = host
        .refresh_token("x", credentials.clone())
        .await
        .expect("refresh");
    assert_ne!(refreshed.access_token, credentials.access_token);
    let rotated = refreshed.refresh_token.clone().expect("rotated");
    assert_ne!(rotated, first_refresh);
    assert!(refreshed.expires_at.expect("expiry") >= expires_at);
    let token_calls = fake.requests_to("POST", "/2/oauth2/token");
    let form = String::from_utf8_lossy(&token_calls.last().expect("call").body).into_owned();
    assert!(form.contains("grant_type=refresh_token"), "{form}");
    assert!(form.contains("client_id=public-app"), "{form}");

    // Replaying the used refresh token ends the chain: reconnect.
    let replayed = host.refresh_token("x", credentials.clone()).await;
    assert!(
        matches!(&replayed, Err(PublishFailure::AuthExpired { message }) if message.contains("reconnect")),
        "{replayed:?}"
    );
    let revoked = host.verify_credentials("x", refreshed).await;
    assert!(
        matches!(revoked, Err(PublishFailure::AuthExpired { .. })),
        "{revoked:?}"
    );

    // A confidential client authenticates with HTTP Basic.
    let confidential = OauthClient {
        client_id: "confidential-app".into(),
        client_secret: Some("app-s3cret".into()),
        redirect_uri: REDIRECT.into(),
    };
    let url = host
        .oauth_authorize_url("x", confidential.clone(), "st4te2", &challenge)
        .await
        .expect("authorize URL");
    let code = authorize(&fake, &url, "st4te2").await;
    let granted = host
        .oauth_exchange("x", confidential, &code, verifier)
        .await
        .expect("confidential exchange");
    let last = fake
        .requests_to("POST", "/2/oauth2/token")
        .pop()
        .expect("call");
    assert!(
        last.header("authorization")
            .is_some_and(|h| h.starts_with("Basic "))
    );
    assert!(!String::from_utf8_lossy(&last.body).contains("client_id"));
    let mut lent = granted.clone();
    lent.extra
        .push(("client_secret".into(), "app-s3cret".into()));
    let refreshed = host
        .refresh_token("x", lent)
        .await
        .expect("confidential refresh");
    assert!(
        !refreshed
            .extra
            .iter()
            .any(|(key, _)| key == "client_secret"),
        "the lent secret is not stored back"
    );
}

/// `herald plugin run` (as plugins/README.md documents it) publishes through the plugin
/// against the fake: a post with an image, then the same post again is looked up, not
/// posted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_plugin_run_publishes_against_the_fake() {
    let fake = FakeX::start().await;
    fake.add_account(TOKEN, ACCOUNT_ID, "alice", "Alice on X");
    let wasm = crate::plugins::built_plugins().join("x.wasm");
    let dir = std::env::temp_dir().join(format!("herald-x-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let post = dir.join("post.json");
    let media = json!([{
        "url": "https://media.herald.test/herald-media/cat.png",
        "mime_type": "image/png",
        "alt": "a cat",
    }]);
    std::fs::write(
        &post,
        json!({"text": "from the CLI", "media": media}).to_string(),
    )
    .expect("post");
    let creds = dir.join("creds.json");
    std::fs::write(&creds, json!({"access_token": TOKEN}).to_string()).expect("creds");
    let api = format!("api.x.com={}", fake.base);
    let media_host = format!("media.herald.test={}", fake.base);
    let args = [
        "plugin",
        "run",
        wasm.to_str().expect("UTF-8"),
        "--post",
        post.to_str().expect("UTF-8"),
        "--credentials",
        creds.to_str().expect("UTF-8"),
        "--plugin-host-overrides",
        &api,
        "--plugin-host-overrides",
        &media_host,
    ];
    let (ok, report) = crate::plugins::herald(&args).await;
    assert!(ok, "{report}");
    let id = fake.state().posts[0].id.clone();
    assert_eq!(
        report["receipt"],
        json!({"platform_post_id": id, "url": format!("https://x.com/i/status/{id}")})
    );
    assert_eq!(fake.state().media[0].alt.as_deref(), Some("a cat"));

    let (ok, again) = crate::plugins::herald(&args).await;
    assert!(ok, "{again}");
    assert_eq!(
        again["receipt"], report["receipt"],
        "the duplicate is looked up"
    );
    assert_eq!(fake.state().posts.len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// A `herald worker` process SIGKILLed while X holds the answer to the created post: the
/// next worker resumes the publish with the same key (the plugin is idempotent), X
/// refuses the duplicate, and the post found among the account's is the receipt — one
/// post on X.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_resumes_and_finds_the_post_instead_of_posting_twice() {
    let fake = FakeX::start().await;
    fake.add_account(TOKEN, ACCOUNT_ID, "alice", "Alice on X");
    let host = plugin_host(&[("api.x.com:443", fake.base.clone())]).await;
    let app = TestApp::spawn_with_plugins(host).await;
    let token = app.token("alice", None, &["admin"]);
    app.ok(&token, CONNECT, json!({"c": {"accessToken": TOKEN}}))
        .await;
    let hung = {
        let mut state = fake.state();
        state.hang_next_post = true;
        state.hung.clone()
    };
    let overrides = [format!("api.x.com={}", fake.base)];
    let mut first = spawn_plugin_worker(&app, &overrides);
    let post = app
        .create_post(&token, post_input("out before the crash"))
        .await;
    tokio::time::timeout(Duration::from_secs(30), hung.notified())
        .await
        .expect("the worker reached X");
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("reaped");
    let _second = spawn_plugin_worker(&app, &overrides);
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1, "one post on X");
    assert_eq!(fake.requests_to("POST", "/2/tweets").len(), 2);
    assert_eq!(
        done["targets"][0]["platformUrl"],
        format!("https://x.com/i/status/{}", posts[0].id)
    );
}

/// The user path, through Herald's own connect flow: a browser begins at
/// `/oauth/x/start` (bearer token), X (the fake, checking PKCE) sends it back to the
/// server's callback, and a scheduled post with an image goes out exactly once with the
/// tokens Herald got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_connected_in_the_browser_publishes_an_image_once() {
    use herald_server::domain::oauth_apps::{OauthApp, OauthConfig};
    let fake = FakeX::start().await;
    fake.add_account("unused", ACCOUNT_ID, "alice", "Alice on X");
    let host = plugin_host(&[
        ("api.x.com:443", fake.base.clone()),
        ("media.herald.test:443", fake.base.clone()),
    ])
    .await;
    let api = TestApp::spawn_with_oauth(host.clone(), |base| OauthConfig {
        public_url: Some(base.to_owned()),
        apps: [(
            "X".to_owned(),
            OauthApp {
                client_id: "herald-app".into(),
                client_secret: Some("herald-s3cret".into()),
                scopes: Vec::new(),
            },
        )]
        .into(),
        ..Default::default()
    })
    .await;
    let base = api.http_url();
    let callback = format!("{base}/oauth/x/callback");
    {
        let mut state = fake.state();
        state.oauth.clients.insert(
            "herald-app".into(),
            oauth::Client {
                secret: Some("herald-s3cret".into()),
                redirect_uris: vec![callback.clone()],
            },
        );
        state.oauth.approving = Some(ACCOUNT_ID.into());
    }
    let app = crate::harness::publishing_through(api, "x", host.clone()).await;
    let token = app.token("alice", None, &["admin"]);

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let started = browser
        .get(format!("{base}/oauth/x/start"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), 302);
    let cookie = started.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let authorize_url = started.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let at_x = browser
        .get(authorize_url.replacen("https://x.com", &fake.base, 1))
        .send()
        .await
        .expect("authorize");
    assert_eq!(at_x.status(), 302);
    let back = at_x.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(back.starts_with(&callback), "{back}");
    let done = browser
        .get(&back)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("callback");
    assert_eq!(
        done.status(),
        200,
        "{}",
        done.text().await.unwrap_or_default()
    );

    let listed = app
        .ok(
            &token,
            "{ connections { platform externalAccountId status expiresAt } }",
            json!({}),
        )
        .await;
    let connection = &listed["connections"][0];
    assert_eq!(connection["platform"], "x");
    assert_eq!(connection["externalAccountId"], ACCOUNT_ID);
    assert_eq!(connection["status"], "active");
    assert!(connection["expiresAt"].is_string(), "{connection}");

    let mut input = post_input("Connected the way users do");
    input["media"] = json!([{
        "url": "https://media.herald.test/herald-media/kitten.png",
        "altText": "A kitten",
        "mimeType": "image/png",
    }]);
    let post = app.create_post(&token, input).await;
    let published = ended(&app, &token, &post, "PUBLISHED").await;
    assert_eq!(published["targets"][0]["attempts"], 1);
    let (posts, media) = {
        let state = fake.state();
        (state.posts.clone(), state.media.clone())
    };
    assert_eq!(posts.len(), 1, "published exactly once");
    assert_eq!(posts[0].author, ACCOUNT_ID);
    assert_eq!(posts[0].media_ids, vec![media[0].id.clone()]);
    assert_eq!(media[0].bytes(), image("kitten.png"));
    let created = fake.requests_to("POST", "/2/tweets");
    let bearer = created[0]
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .expect("bearer")
        .to_owned();
    assert!(
        bearer.starts_with("xat-"),
        "posted with the token X issued to Herald: {bearer}"
    );
}
