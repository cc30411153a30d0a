//! The LinkedIn plugin end to end against a fake LinkedIn built from its published docs
//! (`fakes::linkedin`): GraphQL → queue → plugin (wasm) → fake → post URN and URL back,
//! exactly once, with `LinkedIn-Version` and `X-Restli-Protocol-Version` on every REST
//! call; commentary escaped so nothing is cut; images by `initializeUpload` + PUT;
//! organization authors; 3,000 characters checked before scheduling; a retired version
//! failing at once naming the setting; a duplicate after a lost answer taken as
//! published (also after a worker killed mid-publish); 429 retried; 401 asking to
//! reconnect; a 60-day token without a refresh token announced 7 days ahead, then asking
//! to reconnect; OAuth through the plugin host; and `herald plugin run` against the fake.

use std::time::Duration;

use herald_plugin_host::{OauthClient, PublishFailure};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::discord::spawn_plugin_worker;
use crate::fakes::linkedin::{EXPIRES_IN, FakeLinkedIn, shown};
use crate::fakes::media::image;
use crate::harness::{
    TestApp, app_publishing, assert_asks_to_reconnect, assert_error, in_ms, plugin_host, ws_next,
    ws_send,
};

const TOKEN: &str = "AQV-alice-linkedin";
const SUB: &str = "782bbtaQ";
const PERSON: &str = "urn:li:person:782bbtaQ";
const ORGANIZATION: &str = "urn:li:organization:2414183";
const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"linkedin\", credentials: $c) { id platform externalAccountId displayName status } }";

struct Setup {
    app: TestApp,
    fake: FakeLinkedIn,
    token: String,
}

/// Herald with the real LinkedIn plugin, both LinkedIn hosts and `media.herald.test`
/// (where the post's media live) routed to the fake, and alice's account connected with
/// a pasted token and `extra`.
async fn setup(extra: Value) -> Setup {
    let fake = FakeLinkedIn::start().await;
    fake.add_member(TOKEN, SUB, "Alice Liddell");
    fake.state()
        .organizations
        .insert(ORGANIZATION.into(), [SUB.to_owned()].into());
    let host = plugin_host(&[
        ("api.linkedin.com:443", fake.base.clone()),
        ("www.linkedin.com:443", fake.base.clone()),
        ("media.herald.test:443", fake.base.clone()),
    ])
    .await;
    let app = app_publishing("linkedin", host).await;
    let token = app.token("alice", None, &["admin"]);
    app.ok(
        &token,
        CONNECT,
        json!({"c": {"accessToken": TOKEN, "extra": extra}}),
    )
    .await;
    Setup { app, fake, token }
}

/// A post for the LinkedIn target, due in 300 ms.
fn post_input(content: &str) -> Value {
    json!({
        "content": content,
        "targets": [{"platform": "linkedin"}],
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

fn feed_url(urn: &str) -> String {
    format!("https://www.linkedin.com/feed/update/{urn}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_names_the_member_and_refuses_a_bad_token() {
    let fake = FakeLinkedIn::start().await;
    fake.add_member(TOKEN, SUB, "Alice Liddell");
    let host = plugin_host(&[("api.linkedin.com:443", fake.base.clone())]).await;
    let app = app_publishing("linkedin", host).await;
    let token = app.token("alice", None, &["admin"]);
    let refused = app
        .gql(Some(&token), CONNECT, json!({"c": {"accessToken": "nope"}}))
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("credentials"));
    let connected = app
        .ok(&token, CONNECT, json!({"c": {"accessToken": TOKEN}}))
        .await["connectAccount"]
        .clone();
    assert_eq!(connected["platform"], "linkedin");
    assert_eq!(connected["externalAccountId"], PERSON);
    assert_eq!(connected["displayName"], "Alice Liddell");
    assert_eq!(connected["status"], "active");
    let verified = fake.requests_to("GET", "/v2/userinfo");
    assert_eq!(verified.len(), 2);
    assert_eq!(
        verified[1].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_post_is_published_exactly_once_with_the_version_headers() {
    let Setup { app, fake, token } = setup(json!([])).await;
    let text = "Hello LinkedIn, friends!";
    let post = app.create_post(&token, post_input(text)).await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].author, PERSON);
    assert_eq!(posts[0].shown, text);
    assert_eq!(posts[0].content, None);
    let created = fake.requests_to("POST", "/rest/posts");
    assert_eq!(created.len(), 1, "one call creates the post");
    let call = &created[0];
    assert_eq!(
        call.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(call.header("linkedin-version"), Some("202611"));
    assert_eq!(call.header("x-restli-protocol-version"), Some("2.0.0"));
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(
        call.json(),
        json!({
            "author": PERSON,
            "commentary": text,
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false,
        })
    );
    assert_eq!(done["targets"][0]["platformUrl"], feed_url(&posts[0].urn));
    assert_eq!(done["targets"][0]["attempts"], 1);
}

/// Every reserved character of the little text format reaches LinkedIn escaped, so the
/// text LinkedIn shows is the whole text (the fake cuts at an unescaped one, as LinkedIn
/// silently does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_characters_are_escaped_so_nothing_is_cut() {
    let Setup { app, fake, token } = setup(json!([])).await;
    let text = r"Launch (beta) at 10:00 #news @team [draft] {x} <y> snake_case *bold* ~old~ a|b C:\path — done";
    assert_ne!(shown(text), text, "unescaped, LinkedIn would cut this text");
    let post = app.create_post(&token, post_input(text)).await;
    ended(&app, &token, &post, "PUBLISHED").await;

    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].shown, text, "the whole text is shown");
    assert!(
        posts[0].commentary.contains(r"\(beta\)") && posts[0].commentary.contains(r"C:\\path"),
        "{}",
        posts[0].commentary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_go_up_by_initialize_upload_and_put() {
    let Setup { app, fake, token } = setup(json!([])).await;
    let mut input = post_input("Two cats");
    input["media"] = json!([
        {
            "url": "https://media.herald.test/herald-media/cat.png",
            "altText": "A black cat asleep on a keyboard",
            "mimeType": "image/png",
        },
        {"url": "https://media.herald.test/herald-media/kitten.png", "mimeType": "image/png"},
    ]);
    let post = app.create_post(&token, input).await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let (posts, images) = {
        let state = fake.state();
        (state.posts.clone(), state.images.clone())
    };
    assert_eq!(images.len(), 2, "each image uploaded once");
    assert_eq!(images[0].bytes.as_deref(), Some(&image("cat.png")[..]));
    assert_eq!(images[1].bytes.as_deref(), Some(&image("kitten.png")[..]));
    assert!(images.iter().all(|i| i.owner == PERSON));
    let initialized = fake.requests_to("POST", "/rest/images");
    assert_eq!(initialized.len(), 2);
    for call in &initialized {
        assert_eq!(call.query, "action=initializeUpload");
        assert_eq!(call.header("linkedin-version"), Some("202611"));
        assert_eq!(call.header("x-restli-protocol-version"), Some("2.0.0"));
        assert_eq!(
            call.json(),
            json!({"initializeUploadRequest": {"owner": PERSON}})
        );
    }
    let puts: Vec<_> = fake
        .state()
        .requests
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/dms-uploads/"))
        .cloned()
        .collect();
    assert_eq!(puts.len(), 2);
    assert!(
        puts.iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].content,
        Some(json!({"multiImage": {"images": [
            {"id": images[0].urn, "altText": "A black cat asleep on a keyboard"},
            {"id": images[1].urn},
        ]}}))
    );
    let created = fake.requests_to("POST", "/rest/posts");
    assert_eq!(created.len(), 1);
    assert!(created[0].at > puts[1].at, "posted once both were uploaded");
    assert_eq!(done["targets"][0]["platformUrl"], feed_url(&posts[0].urn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_page_posts_with_its_own_image() {
    let Setup { app, fake, token } = setup(json!([{"key": "author", "value": ORGANIZATION}])).await;
    let listed = app
        .ok(
            &token,
            "{ connections { externalAccountId displayName } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["connections"][0]["externalAccountId"], ORGANIZATION);
    assert_eq!(
        listed["connections"][0]["displayName"],
        format!("{ORGANIZATION} (posted by Alice Liddell)")
    );
    let mut input = post_input("From the company page");
    input["media"] = json!([{
        "url": "https://media.herald.test/herald-media/logo.png",
        "altText": "Our logo",
        "mimeType": "image/png",
    }]);
    let post = app.create_post(&token, input).await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let (posts, images) = {
        let state = fake.state();
        (state.posts.clone(), state.images.clone())
    };
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].owner, ORGANIZATION);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].author, ORGANIZATION);
    assert_eq!(
        posts[0].content,
        Some(json!({"media": {"id": images[0].urn, "altText": "Our logo"}}))
    );
    assert!(
        fake.requests_to("GET", "/v2/userinfo").len() == 1,
        "only the connection asked who the member is"
    );
    assert_eq!(done["targets"][0]["platformUrl"], feed_url(&posts[0].urn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_3000_characters_is_refused_at_scheduling() {
    let Setup { app, fake, token } = setup(json!([])).await;
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";
    let refused = app
        .gql(
            Some(&token),
            create,
            json!({"i": post_input(&"a".repeat(3_001))}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("content"));
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(message.starts_with("linkedin: "), "{message}");
    assert!(message.contains("3000"), "{message}");

    let text = "é".repeat(3_000);
    let post = app.create_post(&token, post_input(&text)).await;
    ended(&app, &token, &post, "PUBLISHED").await;
    assert_eq!(fake.state().posts[0].shown, text);
    assert_eq!(
        fake.requests_to("POST", "/rest/posts").len(),
        1,
        "the refused post never reached LinkedIn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_version_fails_at_once_naming_the_setting() {
    let Setup { app, fake, token } =
        setup(json!([{"key": "linkedin_version", "value": "202401"}])).await;
    let post = app.create_post(&token, post_input("too old")).await;
    let failed = ended(&app, &token, &post, "FAILED").await;
    let error = failed["targets"][0]["lastError"].as_str().expect("error");
    // The host scrubs every credential value from messages, the version set too; the
    // message names the setting to change.
    assert!(
        error.contains("does not serve API version") && error.contains("`linkedin_version`"),
        "{error}"
    );
    assert!(error.contains("NONEXISTENT_VERSION"), "{error}");
    assert_eq!(failed["targets"][0]["attempts"], 1, "not retried: {failed}");
    let created = fake.requests_to("POST", "/rest/posts");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].header("linkedin-version"), Some("202401"));
    assert!(fake.state().posts.is_empty());
}

/// The answer to the creation is lost; the retry is refused as `DUPLICATE_POST` naming
/// the post the first attempt created, which becomes the receipt: one post on LinkedIn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_after_a_lost_answer_is_the_published_post() {
    let Setup { app, fake, token } = setup(json!([])).await;
    fake.state().lose_next_post_answer = true;
    let post = app.create_post(&token, post_input("said once")).await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    assert_eq!(
        fake.requests_to("POST", "/rest/posts").len(),
        2,
        "the retry reached LinkedIn, which refused the duplicate"
    );
    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1, "one post on LinkedIn");
    assert_eq!(done["targets"][0]["platformUrl"], feed_url(&posts[0].urn));
    assert_eq!(done["targets"][0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_post_is_retried_after_the_stated_wait() {
    let Setup { app, fake, token } = setup(json!([])).await;
    {
        let mut state = fake.state();
        state.throttle_posts = 1;
        state.throttle_retry_after = Some(2);
    }
    let post = app
        .create_post(&token, post_input("after the rate limit"))
        .await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let created = fake.requests_to("POST", "/rest/posts");
    assert_eq!(created.len(), 2, "one 429, then the retry");
    let waited = created[1].at - created[0].at;
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
    assert_eq!(fake.state().posts.len(), 1);
    assert_eq!(done["targets"][0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_asks_to_reconnect() {
    let Setup { app, fake, token } = setup(json!([])).await;
    fake.state().tokens.clear();
    let post = app.create_post(&token, post_input("expired")).await;
    let failed = ended(&app, &token, &post, "QUEUED").await;
    assert_asks_to_reconnect(&app, &token, &failed).await;
    assert!(fake.state().posts.is_empty());
}

const REDIRECT: &str = "https://herald.example/oauth/linkedin/callback";

/// Sends the member to the authorize URL (the fake approves at once) and returns the code
/// it redirected back with, checking the state came back.
async fn authorize(fake: &FakeLinkedIn, url: &str, state: &str) -> String {
    let at_fake = url.replacen("https://www.linkedin.com", &fake.base, 1);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = client.get(at_fake).send().await.expect("authorize");
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().expect("location");
    assert!(location.starts_with(REDIRECT), "{location}");
    let back = reqwest::Url::parse(location).expect("redirect");
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
async fn oauth_through_the_host_without_and_with_refresh_tokens() {
    let fake = FakeLinkedIn::start().await;
    fake.add_member("unused", SUB, "Alice Liddell");
    {
        let mut state = fake.state();
        for (id, partner) in [("standard-app", false), ("partner-app", true)] {
            state.clients.insert(
                id.into(),
                crate::fakes::linkedin::Client {
                    secret: format!("{id}-s3cret"),
                    redirect_uris: vec![REDIRECT.into()],
                    partner,
                },
            );
        }
        state.approving = Some(SUB.into());
    }
    let host = plugin_host(&[
        ("api.linkedin.com:443", fake.base.clone()),
        ("www.linkedin.com:443", fake.base.clone()),
    ])
    .await;
    let client = |id: &str| OauthClient {
        client_id: id.into(),
        client_secret: Some(format!("{id}-s3cret")),
        redirect_uri: REDIRECT.into(),
    };

    let url = host
        .oauth_authorize_url(
            "linkedin",
            client("standard-app"),
            "st4te/1",
            "ignored-challenge",
        )
        .await
        .expect("authorize URL");
    let parsed = reqwest::Url::parse(&url).expect("URL");
    assert_eq!(parsed.host_str(), Some("www.linkedin.com"));
    assert_eq!(parsed.path(), "/oauth/v2/authorization");
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "openid profile w_member_social");
    assert_eq!(query["redirect_uri"], REDIRECT);
    assert_eq!(query["response_type"], "code");
    assert!(
        !query.contains_key("code_challenge"),
        "standard LinkedIn apps use no PKCE"
    );
    let code = authorize(&fake, &url, "st4te/1").await;

    let before = chrono::Utc::now().timestamp();
    let credentials = host
        .oauth_exchange("linkedin", client("standard-app"), &code, "unused-verifier")
        .await
        .expect("exchange");
    let expires_at = credentials.expires_at.expect("expiry");
    assert!((before + EXPIRES_IN..=before + EXPIRES_IN + 5).contains(&expires_at));
    assert_eq!(
        credentials.refresh_token, None,
        "no refresh token for standard apps"
    );
    assert_eq!(
        credentials.extra,
        vec![("client_id".to_owned(), "standard-app".to_owned())]
    );
    let exchanged = fake.requests_to("POST", "/oauth/v2/accessToken");
    let form = String::from_utf8_lossy(&exchanged[0].body).into_owned();
    assert!(form.contains("grant_type=authorization_code"), "{form}");
    assert!(form.contains("client_secret=standard-app-s3cret"), "{form}");
    assert!(!form.contains("code_verifier"), "{form}");
    let reused = host
        .oauth_exchange("linkedin", client("standard-app"), &code, "unused-verifier")
        .await;
    assert!(
        matches!(&reused, Err(PublishFailure::Permanent { message }) if message.contains("connect again")),
        "codes are single-use: {reused:?}"
    );
    let account = host
        .verify_credentials("linkedin", credentials.clone())
        .await
        .expect("verify");
    assert_eq!(account.id, PERSON);
    assert_eq!(account.display_name.as_deref(), Some("Alice Liddell"));

    // No refresh token: a definitive answer to reconnect, without calling LinkedIn.
    let calls = fake.requests_to("POST", "/oauth/v2/accessToken").len();
    let refreshed = host.refresh_token("linkedin", credentials).await;
    assert!(
        matches!(&refreshed, Err(PublishFailure::AuthExpired { message }) if message.contains("reconnect")),
        "{refreshed:?}"
    );
    assert_eq!(
        fake.requests_to("POST", "/oauth/v2/accessToken").len(),
        calls
    );

    // A partner app gets a refresh token; refreshing needs the secret lent as an extra.
    let url = host
        .oauth_authorize_url("linkedin", client("partner-app"), "st4te2", "")
        .await
        .expect("authorize URL");
    let code = authorize(&fake, &url, "st4te2").await;
    let granted = host
        .oauth_exchange("linkedin", client("partner-app"), &code, "")
        .await
        .expect("partner exchange");
    let refresh = granted.refresh_token.clone().expect("refresh token");
    let mut lent = granted.clone();
    lent.extra
        .push(("client_secret".into(), "partner-app-s3cret".into()));
    let renewed = host.refresh_token("linkedin", lent).await.expect("refresh");
    assert_ne!(renewed.access_token, granted.access_token);
    assert_eq!(renewed.refresh_token.as_deref(), Some(refresh.as_str()));
    assert!(
        !renewed.extra.iter().any(|(key, _)| key == "client_secret"),
        "the lent secret is not stored back"
    );
    let account = host
        .verify_credentials("linkedin", renewed)
        .await
        .expect("the renewed token works");
    assert_eq!(account.id, PERSON);
}

/// `herald plugin run` (as plugins/README.md documents it) publishes through the plugin
/// against the fake: a post with an image, then the same post again is LinkedIn's
/// duplicate, reported as the same post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_plugin_run_publishes_against_the_fake() {
    let fake = FakeLinkedIn::start().await;
    fake.add_member(TOKEN, SUB, "Alice Liddell");
    let wasm = crate::plugins::built_plugins().join("linkedin.wasm");
    let dir = std::env::temp_dir().join(format!("herald-linkedin-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let post = dir.join("post.json");
    let media = json!([{
        "url": "https://media.herald.test/herald-media/cat.png",
        "mime_type": "image/png",
        "alt": "a cat",
    }]);
    std::fs::write(
        &post,
        json!({"text": "from the CLI (really)", "media": media}).to_string(),
    )
    .expect("post");
    let creds = dir.join("creds.json");
    std::fs::write(&creds, json!({"access_token": TOKEN}).to_string()).expect("creds");
    let api = format!("api.linkedin.com={}", fake.base);
    let www = format!("www.linkedin.com={}", fake.base);
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
        &www,
        "--plugin-host-overrides",
        &media_host,
    ];
    let (ok, report) = crate::plugins::herald(&args).await;
    assert!(ok, "{report}");
    let (urn, shown_text) = {
        let state = fake.state();
        (state.posts[0].urn.clone(), state.posts[0].shown.clone())
    };
    assert_eq!(
        report["receipt"],
        json!({"platform_post_id": urn, "url": feed_url(&urn)})
    );
    assert_eq!(shown_text, "from the CLI (really)");
    assert_eq!(fake.state().images.len(), 1);

    // The same post again: new image, same text, so not LinkedIn's duplicate; the text
    // alone again is.
    std::fs::write(&post, json!({"text": "text only"}).to_string()).expect("post");
    let (ok, first) = crate::plugins::herald(&args).await;
    assert!(ok, "{first}");
    let (ok, again) = crate::plugins::herald(&args).await;
    assert!(ok, "{again}");
    assert_eq!(
        again["receipt"], first["receipt"],
        "the duplicate is reported"
    );
    assert_eq!(fake.state().posts.len(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

/// A `herald worker` process SIGKILLed while LinkedIn holds the answer to the created
/// post: the next worker publishes again with the same key (the plugin is idempotent),
/// LinkedIn refuses the duplicate naming the post, and that post is the receipt — one
/// post on LinkedIn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_resumes_and_takes_the_duplicate_instead_of_posting_twice() {
    let fake = FakeLinkedIn::start().await;
    fake.add_member(TOKEN, SUB, "Alice Liddell");
    let host = plugin_host(&[("api.linkedin.com:443", fake.base.clone())]).await;
    let app = TestApp::spawn_with_plugins(host).await;
    let token = app.token("alice", None, &["admin"]);
    app.ok(&token, CONNECT, json!({"c": {"accessToken": TOKEN}}))
        .await;
    let hung = {
        let mut state = fake.state();
        state.hang_next_post = true;
        state.hung.clone()
    };
    let overrides = [format!("api.linkedin.com={}", fake.base)];
    let mut first = spawn_plugin_worker(&app, &overrides);
    let post = app
        .create_post(&token, post_input("out before the crash"))
        .await;
    tokio::time::timeout(Duration::from_secs(30), hung.notified())
        .await
        .expect("the worker reached LinkedIn");
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("reaped");
    let _second = spawn_plugin_worker(&app, &overrides);
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1, "one post on LinkedIn");
    assert_eq!(fake.requests_to("POST", "/rest/posts").len(), 2);
    assert_eq!(done["targets"][0]["platformUrl"], feed_url(&posts[0].urn));
}

/// A refresher as a worker process runs it, with the default leads: refresh 10 minutes
/// ahead, announce tokens that cannot be refreshed 7 days ahead.
fn refresher(app: &TestApp) -> herald_server::token_refresh::Refresher {
    herald_server::token_refresh::Refresher::new(
        app.services.worker_db.clone(),
        app.connections.clone(),
        app.services.plugins.clone().expect("plugins"),
        std::sync::Arc::new(herald_server::domain::oauth_apps::OauthConfig {
            refresh_ahead: Duration::from_secs(600),
            refresh_interval: Duration::from_secs(60),
            reconnect_warning: Duration::from_secs(7 * 86_400),
            ..Default::default()
        }),
    )
}

/// LinkedIn's 60-day tokens come without a refresh token outside its partner programme:
/// the account is announced 7 days ahead (`reconnectBy`, a reason, `connectionUpdated`,
/// once), keeps publishing until then, asks to reconnect when the token expires, and a
/// reconnect clears it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_cannot_be_refreshed_is_announced_a_week_ahead() {
    use herald_server::token_refresh::Outcome;
    let Setup { app, fake, token } = setup(json!([])).await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(6)).to_rfc3339();
    let connected = app
        .ok(
            &token,
            CONNECT,
            json!({"c": {"accessToken": TOKEN, "expiresAt": expires}}),
        )
        .await["connectAccount"]
        .clone();
    let mut socket = app.ws(&token).await;
    ws_send(
        &mut socket,
        json!({"id": "c", "type": "subscribe", "payload": {
            "query": "subscription { connectionUpdated { id status statusReason reconnectBy } }"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let outcomes = refresher(&app).round().await.expect("round");
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].1, Outcome::ReconnectSoon);
    let message = ws_next(&mut socket).await;
    let updated = &message["payload"]["data"]["connectionUpdated"];
    assert_eq!(updated["id"], connected["id"], "{message}");
    assert_eq!(updated["status"], "active");
    let reason = updated["statusReason"].as_str().expect("reason");
    assert!(
        reason.contains("cannot be refreshed") && reason.contains("reconnect"),
        "{reason}"
    );
    let listed = app
        .ok(
            &token,
            "{ connections { status expiresAt reconnectBy } }",
            json!({}),
        )
        .await["connections"][0]
        .clone();
    assert_eq!(listed["status"], "active");
    assert!(listed["reconnectBy"].is_string(), "{listed}");
    assert_eq!(listed["reconnectBy"], listed["expiresAt"]);
    // Announced once; the account still publishes meanwhile.
    let again = refresher(&app).round().await.expect("round");
    assert!(again.is_empty(), "{again:?}");
    let post = app.create_post(&token, post_input("still a week")).await;
    ended(&app, &token, &post, "PUBLISHED").await;

    // Ten minutes before expiry there is nothing to refresh with: reconnect.
    app.db
        .execute_unprepared(
            "UPDATE social_connections SET expires_at = now() + interval '60 seconds'",
        )
        .await
        .expect("expiry");
    let calls = fake.requests_to("POST", "/oauth/v2/accessToken").len();
    let outcomes = refresher(&app).round().await.expect("round");
    assert!(
        matches!(outcomes.as_slice(), [(_, Outcome::ReconnectRequired(_))]),
        "{outcomes:?}"
    );
    assert_eq!(
        fake.requests_to("POST", "/oauth/v2/accessToken").len(),
        calls,
        "LinkedIn was not asked"
    );
    let message = ws_next(&mut socket).await;
    assert_eq!(
        message["payload"]["data"]["connectionUpdated"]["status"], "reconnect_required",
        "{message}"
    );

    // Reconnecting clears the announcement.
    let renewed = (chrono::Utc::now() + chrono::Duration::days(60)).to_rfc3339();
    app.ok(
        &token,
        CONNECT,
        json!({"c": {"accessToken": TOKEN, "expiresAt": renewed}}),
    )
    .await;
    let listed = app
        .ok(
            &token,
            "{ connections { status statusReason reconnectBy } }",
            json!({}),
        )
        .await["connections"][0]
        .clone();
    assert_eq!(
        listed,
        json!({"status": "active", "statusReason": null, "reconnectBy": null})
    );
}

/// Posting as an organization page through the connect flow: the operator adds
/// `w_organization_social` (`HERALD_OAUTH_LINKEDIN_SCOPES`), `beginConnect` names the page
/// (`extra: author`), and the connection is the page; without the scope LinkedIn refuses
/// the post, and a reserved extra is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_page_is_connected_by_oauth_and_posted_as() {
    use herald_server::domain::oauth_apps::{OauthApp, OauthConfig};
    let fake = FakeLinkedIn::start().await;
    fake.add_member("unused", SUB, "Alice Liddell");
    {
        let mut state = fake.state();
        state.clients.insert(
            "standard-app".into(),
            crate::fakes::linkedin::Client {
                secret: "standard-app-s3cret".into(),
                redirect_uris: vec![REDIRECT.into()],
                partner: false,
            },
        );
        state
            .organizations
            .insert(ORGANIZATION.into(), [SUB.to_owned()].into());
        state.approving = Some(SUB.into());
    }
    let host = plugin_host(&[
        ("api.linkedin.com:443", fake.base.clone()),
        ("www.linkedin.com:443", fake.base.clone()),
    ])
    .await;
    let settings = |scopes: &[&str]| {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        move |base: &str| OauthConfig {
            public_url: Some(base.to_owned()),
            redirect_uris: vec![REDIRECT.to_owned()],
            apps: [(
                "LINKEDIN".to_owned(),
                OauthApp {
                    client_id: "standard-app".into(),
                    client_secret: Some("standard-app-s3cret".into()),
                    scopes,
                },
            )]
            .into(),
            ..Default::default()
        }
    };
    const BEGIN: &str = "mutation($extra: [CredentialValueInput!]!) { beginConnect(platform: \"linkedin\", redirectUri: \"https://herald.example/oauth/linkedin/callback\", extra: $extra) { authorizeUrl state } }";
    const COMPLETE: &str = "mutation($state: String!, $code: String!) { completeConnect(state: $state, code: $code) { id externalAccountId displayName status } }";
    let as_page = json!({"extra": [{"key": "author", "value": ORGANIZATION}]});

    for (scopes, allowed) in [(&["w_organization_social"][..], true), (&[][..], false)] {
        let api = TestApp::spawn_with_oauth(host.clone(), settings(scopes)).await;
        let app = crate::harness::publishing_through(api, "linkedin", host.clone()).await;
        let token = app.token("alice", None, &["admin"]);

        let reserved = app
            .gql(
                Some(&token),
                BEGIN,
                json!({"extra": [{"key": "client_secret", "value": "mine"}]}),
            )
            .await;
        assert_error(&reserved, "BAD_USER_INPUT", Some("extra"));

        let begun = app.ok(&token, BEGIN, as_page.clone()).await["beginConnect"].clone();
        let url = begun["authorizeUrl"].as_str().expect("URL");
        let scope = reqwest::Url::parse(url)
            .expect("URL")
            .query_pairs()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.into_owned())
            .expect("scope");
        let expected = if allowed {
            "openid profile w_member_social w_organization_social"
        } else {
            "openid profile w_member_social"
        };
        assert_eq!(scope, expected);
        let state = begun["state"].as_str().expect("state");
        let code = authorize(&fake, url, state).await;
        let connected = app
            .ok(&token, COMPLETE, json!({"state": state, "code": code}))
            .await["completeConnect"]
            .clone();
        assert_eq!(connected["externalAccountId"], ORGANIZATION, "{connected}");
        assert_eq!(
            connected["displayName"],
            format!("{ORGANIZATION} (posted by Alice Liddell)")
        );

        let before = fake.state().posts.len();
        let post = app.create_post(&token, post_input("from the page")).await;
        if allowed {
            ended(&app, &token, &post, "PUBLISHED").await;
            let posts = &fake.state().posts;
            assert_eq!(posts.len(), before + 1);
            assert_eq!(posts[before].author, ORGANIZATION);
        } else {
            let failed = ended(&app, &token, &post, "FAILED").await;
            let error = failed["targets"][0]["lastError"].as_str().expect("error");
            assert!(error.contains("Not enough permissions"), "{error}");
            assert_eq!(fake.state().posts.len(), before);
        }
    }
}

/// LinkedIn processes an uploaded image before a post may use it: the plugin reads its
/// status until `AVAILABLE`, and a `PROCESSING_FAILED` image fails the post at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_is_read_until_linkedin_has_processed_it() {
    let Setup { app, fake, token } = setup(json!([])).await;
    fake.state().image_processing_reads = 2;
    let with_image = |content: &str, name: &str| {
        let mut input = post_input(content);
        input["media"] = json!([{
            "url": format!("https://media.herald.test/herald-media/{name}.png"),
            "mimeType": "image/png",
        }]);
        input
    };
    let post = app
        .create_post(&token, with_image("processed", "cat"))
        .await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;
    assert_eq!(done["targets"][0]["attempts"], 1);
    let urn = fake.state().images[0].urn.clone();
    let reads: Vec<_> = fake
        .state()
        .requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/rest/images/"))
        .cloned()
        .collect();
    assert_eq!(reads.len(), 3, "PROCESSING twice, then AVAILABLE");
    for read in &reads {
        assert_eq!(read.header("linkedin-version"), Some("202611"));
        assert_eq!(read.header("x-restli-protocol-version"), Some("2.0.0"));
        assert_eq!(
            read.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    assert_eq!(fake.state().posts.len(), 1);
    assert_eq!(
        fake.state().posts[0].content,
        Some(json!({"media": {"id": urn}}))
    );

    {
        let mut state = fake.state();
        state.image_processing_reads = 0;
        state.image_processing_fails = true;
    }
    let post = app
        .create_post(&token, with_image("broken", "kitten"))
        .await;
    let failed = ended(&app, &token, &post, "FAILED").await;
    let error = failed["targets"][0]["lastError"].as_str().expect("error");
    assert!(
        error.contains("PROCESSING_FAILED") && error.contains("image 1"),
        "{error}"
    );
    assert_eq!(failed["targets"][0]["attempts"], 1, "not retried");
    assert_eq!(fake.state().posts.len(), 1);
}
