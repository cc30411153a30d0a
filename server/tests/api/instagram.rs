//! The Instagram plugin end to end against a fake Instagram built from Meta's specs
//! (`fakes::instagram`), which downloads every media from the URL Herald hands it (so a
//! wrong signature, expiry, content type or range answer fails the test): GraphQL → queue
//! → plugin (wasm) → fake → media id and permalink back. Instagram Login connects through
//! Herald's OAuth flow with a 60-day token that the token lifecycle refreshes; two library
//! images go out as one carousel exactly once; an uploaded MP4 as a reel, fetched in
//! ranges; "not ready" (9007) is retried; a full publishing quota waits with its reason;
//! an expired token asks to reconnect; caption, hashtags and missing media are refused at
//! scheduling; an unfetchable media fails naming `HERALD_PUBLIC_URL`; Facebook Login finds
//! the account from its Page.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fakes::instagram::{EXPIRES_IN, FakeInstagram, QUOTA_TOTAL, Status, jpeg, mp4};
use crate::harness::{
    MEDIA_HOST, TestApp, app_publishing, assert_asks_to_reconnect, assert_error, in_ms, plugin_host,
};

const TOKEN: &str = "IGAA-alice-instagram";
const IG_USER: &str = "17841400000000001";
const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"instagram\", credentials: $c) { id platform externalAccountId displayName status } }";

/// The plugin hosts every Instagram and Facebook host is routed to the fake on.
fn routes(fake: &FakeInstagram) -> Vec<(&'static str, String)> {
    [
        "graph.instagram.com:443",
        "graph.facebook.com:443",
        "api.instagram.com:443",
    ]
    .into_iter()
    .map(|host| (host, fake.base.clone()))
    .collect()
}

struct Setup {
    app: TestApp,
    fake: FakeInstagram,
    token: String,
}

/// Herald with the real Instagram plugin, the fake downloading Herald's signed media URLs
/// from the server itself, and alice's account connected with a pasted token and `extra`.
async fn setup(extra: Value) -> Setup {
    let fake = FakeInstagram::start().await;
    fake.add_user(TOKEN, IG_USER, "alice.pics", "Alice Liddell");
    let host = plugin_host(&routes(&fake)).await;
    let app = app_publishing("instagram", host).await;
    fake.fetch_from(MEDIA_HOST, &app.http_url());
    let token = app.token("alice", None, &["admin"]);
    app.ok(
        &token,
        CONNECT,
        json!({"c": {"accessToken": TOKEN, "extra": extra}}),
    )
    .await;
    Setup { app, fake, token }
}

/// Uploads `bytes` to alice's media library; the file's id.
async fn upload(app: &TestApp, token: &str, bytes: &[u8], name: &str, alt: Option<&str>) -> Value {
    let (status, body) = crate::media::multipart(
        app,
        Some(token),
        bytes,
        name,
        "application/octet-stream",
        alt,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["uploadMedia"]["id"].clone()
}

/// A post for the Instagram target with `media` (`{mediaId}` or `{url, mimeType}`), due
/// in 300 ms.
fn post_input(caption: &str, media: Value) -> Value {
    json!({
        "content": caption,
        "targets": [{"platform": "instagram"}],
        "scheduledAt": in_ms(300),
        "media": media,
    })
}

async fn ended(app: &TestApp, token: &str, post: &Value, status: &'static str) -> Value {
    app.wait_for_post(
        token,
        post["id"].as_str().expect("id"),
        Duration::from_secs(40),
        |p| p["status"] == status,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_library_images_go_out_as_one_carousel_exactly_once() {
    let Setup { app, fake, token } = setup(json!([])).await;
    fake.state().processing_polls = 1;
    let (cat, kitten) = (jpeg("cat"), jpeg("kitten"));
    let first = upload(&app, &token, &cat, "cat.jpg", Some("A black cat asleep")).await;
    let second = upload(&app, &token, &kitten, "kitten.jpg", None).await;
    let caption = "Two cats #caturday #cats";
    let post = app
        .create_post(
            &token,
            post_input(caption, json!([{"mediaId": first}, {"mediaId": second}])),
        )
        .await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let state = fake.state();
    assert_eq!(state.publishes, 1, "published exactly once");
    let published = state.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].media_type, "CAROUSEL_ALBUM");
    assert_eq!(published[0].caption, caption);
    let carousel = state
        .container(published[0].container.as_deref().expect("container"))
        .expect("carousel")
        .clone();
    assert_eq!(carousel.children.len(), 2);
    assert_eq!(carousel.status, Status::Published);
    let children: Vec<_> = carousel
        .children
        .iter()
        .map(|id| state.container(id).expect("child").clone())
        .collect();
    assert!(
        children
            .iter()
            .all(|c| c.is_carousel_item && c.caption.is_none())
    );
    // Each image was downloaded from Herald's signed URL, bytes and all.
    assert_eq!(children[0].bytes.as_deref(), Some(&cat[..]));
    assert_eq!(children[1].bytes.as_deref(), Some(&kitten[..]));
    assert_eq!(children[0].alt_text.as_deref(), Some("A black cat asleep"));
    assert_eq!(children[1].alt_text, None);
    for child in &children {
        let url = child.url.as_deref().expect("url");
        assert!(url.starts_with(&format!("{MEDIA_HOST}/media/")), "{url}");
    }
    assert_eq!(state.fetches.len(), 2);
    for (fetch, (child, bytes)) in state
        .fetches
        .iter()
        .zip(children.iter().zip([&cat, &kitten]))
    {
        assert_eq!(Some(fetch.url.as_str()), child.url.as_deref());
        assert_eq!(fetch.range, None);
        assert_eq!(fetch.status, 200, "{fetch:?}");
        assert_eq!(fetch.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(fetch.content_length, Some(bytes.len().to_string()));
    }
    assert_eq!(state.containers.len(), 3, "two items and the carousel");
    drop(state);
    // Processing was read until FINISHED before publishing, and the quota first.
    let limit = fake.requests_to("GET", &format!("/v25.0/{IG_USER}/content_publishing_limit"));
    assert_eq!(limit.len(), 1);
    assert_eq!(
        limit[0].param("fields").as_deref(),
        Some("quota_usage,config")
    );
    let publish = fake.requests_to("POST", &format!("/v25.0/{IG_USER}/media_publish"));
    assert_eq!(publish.len(), 1);
    assert_eq!(publish[0].param("creation_id"), Some(carousel.id.clone()));
    assert_eq!(
        publish[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(limit[0].at < publish[0].at);
    let target = &done["targets"][0];
    assert_eq!(target["platformUrl"], published_permalink(&fake));
    assert_eq!(target["attempts"], 1);
}

fn published_permalink(fake: &FakeInstagram) -> String {
    fake.state().published()[0].permalink.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_video_goes_out_as_a_reel_fetched_in_ranges() {
    let Setup { app, fake, token } = setup(json!([])).await;
    fake.state().processing_polls = 2;
    let video = mp4(200_000);
    let id = upload(&app, &token, &video, "clip.mp4", None).await;
    let post = app
        .create_post(&token, post_input("A short clip", json!([{"mediaId": id}])))
        .await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;

    let state = fake.state();
    assert_eq!(state.publishes, 1);
    let published = state.published();
    assert_eq!(published[0].media_type, "VIDEO");
    let reel = state
        .container(published[0].container.as_deref().expect("container"))
        .expect("reel")
        .clone();
    assert_eq!(reel.kind, crate::fakes::instagram::Kind::Reels);
    assert_eq!(reel.bytes.as_deref(), Some(&video[..]), "the whole video");
    let parts = video.len().div_ceil(crate::fakes::instagram::RANGE_BYTES);
    assert!(parts >= 3);
    assert_eq!(state.fetches.len(), parts, "{:?}", state.fetches);
    for (index, fetch) in state.fetches.iter().enumerate() {
        let start = index * crate::fakes::instagram::RANGE_BYTES;
        assert_eq!(fetch.status, 206, "{fetch:?}");
        assert_eq!(Some(fetch.url.as_str()), reel.url.as_deref());
        assert_eq!(fetch.content_type.as_deref(), Some("video/mp4"));
        let end = (start + crate::fakes::instagram::RANGE_BYTES).min(video.len()) - 1;
        assert_eq!(
            fetch.range.as_deref(),
            Some(
                format!(
                    "bytes={start}-{}",
                    start + crate::fakes::instagram::RANGE_BYTES - 1
                )
                .as_str()
            )
        );
        assert_eq!(fetch.content_length, Some((end + 1 - start).to_string()));
        assert_eq!(
            fetch.content_range.as_deref(),
            Some(format!("bytes {start}-{end}/{}", video.len()).as_str())
        );
    }
    drop(state);
    let reads = fake.requests_to("GET", &format!("/v25.0/{}", reel.id));
    assert!(
        reads.len() >= 3,
        "IN_PROGRESS twice, then FINISHED: {}",
        reads.len()
    );
    assert_eq!(done["targets"][0]["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_is_retried_and_published_once() {
    let Setup { app, fake, token } = setup(json!([])).await;
    fake.state().not_ready_publishes = 1;
    let id = upload(&app, &token, &jpeg("one"), "one.jpg", None).await;
    let post = app
        .create_post(&token, post_input("Patience", json!([{"mediaId": id}])))
        .await;
    let done = ended(&app, &token, &post, "PUBLISHED").await;
    let publishes = fake.requests_to("POST", &format!("/v25.0/{IG_USER}/media_publish"));
    assert_eq!(publishes.len(), 2, "9007 once, then published");
    assert_eq!(
        fake.state().containers.len(),
        1,
        "the retry published the recorded container"
    );
    assert_eq!(fake.state().publishes, 1);
    assert_eq!(done["targets"][0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_quota_waits_with_its_reason_then_publishes() {
    let Setup { app, fake, token } = setup(json!([])).await;
    // The window's oldest post leaves it in 4 seconds.
    let oldest = chrono::Utc::now() - chrono::Duration::seconds(86_400 - 4);
    fake.seed_media(IG_USER, 1, oldest);
    fake.seed_media(IG_USER, QUOTA_TOTAL - 1, chrono::Utc::now());
    let id = upload(&app, &token, &jpeg("later"), "later.jpg", None).await;
    let post = app
        .create_post(
            &token,
            post_input("When a slot frees", json!([{"mediaId": id}])),
        )
        .await;
    let waiting = app
        .wait_for_post(
            &token,
            post["id"].as_str().expect("id"),
            Duration::from_secs(20),
            |p| p["targets"][0]["status"] == "RETRYING",
        )
        .await;
    let reason = waiting["targets"][0]["lastError"].as_str().expect("reason");
    assert!(
        reason.contains("publishing limit") && reason.contains("100 of 100"),
        "{reason}"
    );
    assert!(
        fake.state().containers.is_empty(),
        "nothing made while full"
    );
    let done = ended(&app, &token, &post, "PUBLISHED").await;
    assert_eq!(fake.state().publishes, 1);
    // Usually two attempts; a third when a loaded machine makes the retry reach the fake
    // just before the oldest post has left its window.
    let attempts = done["targets"][0]["attempts"].as_u64().expect("attempts");
    assert!((2..=3).contains(&attempts), "{done}");
    let limits = fake.requests_to("GET", &format!("/v25.0/{IG_USER}/content_publishing_limit"));
    assert_eq!(
        limits.len() as u64,
        attempts,
        "the quota read once per attempt"
    );
    let waited = limits[1].at - limits[0].at;
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_asks_to_reconnect() {
    let Setup { app, fake, token } = setup(json!([])).await;
    fake.state().tokens.get_mut(TOKEN).expect("token").expires =
        chrono::Utc::now() - chrono::Duration::seconds(1);
    let post = app
        .create_post(
            &token,
            post_input(
                "expired",
                json!([{"url": "https://media.herald.test/x.jpg", "mimeType": "image/jpeg"}]),
            ),
        )
        .await;
    let waiting = app
        .wait_for_post(
            &token,
            post["id"].as_str().expect("id"),
            Duration::from_secs(30),
            crate::harness::waits_for_account,
        )
        .await;
    assert_asks_to_reconnect(&app, &token, &waiting).await;
    assert!(fake.state().containers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caption_hashtags_and_missing_media_are_refused_at_scheduling() {
    let Setup { app, fake, token } = setup(json!([])).await;
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";
    let image = json!([{"url": "https://media.herald.test/a.jpg", "mimeType": "image/jpeg"}]);
    let refused = |input: Value| {
        let app = &app;
        let token = &token;
        async move {
            let body = app.gql(Some(token), create, json!({"i": input})).await;
            assert_error(&body, "BAD_USER_INPUT", None);
            body["errors"][0].clone()
        }
    };
    let long = refused(post_input(&"a".repeat(2_201), image.clone())).await;
    assert_eq!(long["extensions"]["field"], "content", "{long}");
    assert!(
        long["message"].as_str().expect("message").contains("2200"),
        "{long}"
    );
    let tags: Vec<String> = (0..31).map(|i| format!("#tag{i}")).collect();
    let tagged = refused(post_input(&tags.join(" "), image.clone())).await;
    assert!(
        tagged["message"]
            .as_str()
            .expect("message")
            .contains("31 hashtags"),
        "{tagged}"
    );
    let bare = refused(post_input("no picture", json!([]))).await;
    assert!(
        bare["message"]
            .as_str()
            .expect("message")
            .contains("needs an image or a video"),
        "{bare}"
    );
    let png = refused(post_input(
        "png",
        json!([{"url": "https://media.herald.test/a.png", "mimeType": "image/png"}]),
    ))
    .await;
    assert!(
        png["message"]
            .as_str()
            .expect("message")
            .contains("image/png"),
        "{png}"
    );
    assert!(
        fake.requests_to("POST", &format!("/v25.0/{IG_USER}/media"))
            .is_empty(),
        "nothing reached Instagram"
    );
    // Exactly 30 hashtags and 2,200 characters are fine.
    let mut fine = tags[..30].join(" ");
    fine.push(' ');
    fine.push_str(&"é".repeat(2_200 - fine.chars().count()));
    app.create_post(&token, post_input(&fine, image)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_instagram_cannot_fetch_fails_naming_the_public_url() {
    let Setup { app, fake, token } = setup(json!([])).await;
    // A media URL on Herald whose signature is wrong: Herald refuses Instagram's download.
    let forged = format!(
        "{MEDIA_HOST}/media/{}/AAAAAAAAAAAAAAAAAAAAAA?expires={}",
        uuid::Uuid::new_v4(),
        chrono::Utc::now().timestamp() + 3_600
    );
    let post = app
        .create_post(
            &token,
            post_input(
                "unreachable",
                json!([{"url": forged, "mimeType": "image/jpeg"}]),
            ),
        )
        .await;
    let failed = ended(&app, &token, &post, "FAILED").await;
    let error = failed["targets"][0]["lastError"].as_str().expect("error");
    assert!(
        error.contains("2207052") && error.contains("HERALD_PUBLIC_URL"),
        "{error}"
    );
    assert_eq!(failed["targets"][0]["attempts"], 1, "not retried");
    let state = fake.state();
    assert_eq!(state.fetches.len(), 1);
    assert!(state.fetches[0].status >= 400, "{:?}", state.fetches);
    assert_eq!(state.publishes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facebook_login_finds_the_account_from_its_page() {
    const PAGE: &str = "104000000000001";
    let fake = FakeInstagram::start().await;
    fake.add_user(TOKEN, IG_USER, "alice.pics", "Alice Liddell");
    fake.state().pages.insert(PAGE.into(), IG_USER.into());
    let host = plugin_host(&routes(&fake)).await;
    let app = app_publishing("instagram", host).await;
    fake.fetch_from(MEDIA_HOST, &app.http_url());
    let token = app.token("alice", None, &["admin"]);
    let connected = app
        .ok(
            &token,
            CONNECT,
            json!({"c": {"accessToken": TOKEN, "extra": [
                {"key": "login", "value": "facebook"},
                {"key": "page", "value": PAGE},
                {"key": "graph_version", "value": "v26.0"},
            ]}}),
        )
        .await["connectAccount"]
        .clone();
    assert_eq!(connected["externalAccountId"], IG_USER);
    assert_eq!(connected["displayName"], "Alice Liddell");
    let id = upload(&app, &token, &jpeg("page"), "page.jpg", None).await;
    let post = app
        .create_post(
            &token,
            post_input("From the page", json!([{"mediaId": id}])),
        )
        .await;
    ended(&app, &token, &post, "PUBLISHED").await;
    assert_eq!(fake.state().publishes, 1);
    let page_reads = fake.requests_to("GET", &format!("/v26.0/{PAGE}"));
    assert!(!page_reads.is_empty());
    assert_eq!(
        page_reads[0].param("fields").as_deref(),
        Some("instagram_business_account")
    );
    assert_eq!(
        fake.requests_to("POST", &format!("/v26.0/{IG_USER}/media_publish"))
            .len(),
        1
    );
    assert!(
        fake.state()
            .requests
            .iter()
            .all(|r| r.path.starts_with("/v26.0/")),
        "every Graph call used the configured version"
    );
}

/// A refresher as a worker process runs it (refreshing 10 minutes ahead).
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

/// Instagram Login through Herald's connect flow: the code becomes a one-hour token, then
/// a 60-day one; the connection expires in 60 days and is never announced as
/// unrefreshable; near its expiry the token lifecycle renews it (`ig_refresh_token`), and
/// the account publishes with the renewed token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instagram_login_connects_with_a_60_day_token_that_is_refreshed() {
    use herald_server::domain::oauth_apps::{OauthApp, OauthConfig};
    use herald_server::token_refresh::Outcome;
    use sea_orm::ConnectionTrait;
    let fake = FakeInstagram::start().await;
    fake.add_user("unused", IG_USER, "alice.pics", "Alice Liddell");
    let host = plugin_host(&routes(&fake)).await;
    let api = TestApp::spawn_with_oauth(host.clone(), |base| OauthConfig {
        public_url: Some(base.to_owned()),
        apps: [(
            "INSTAGRAM".to_owned(),
            OauthApp {
                client_id: "990001".into(),
                client_secret: Some("ig-app-s3cret".into()),
                scopes: Vec::new(),
            },
        )]
        .into(),
        ..Default::default()
    })
    .await;
    let callback = format!("{}/oauth/instagram/callback", api.http_url());
    {
        let mut state = fake.state();
        state.clients.insert(
            "990001".into(),
            crate::fakes::instagram::Client {
                secret: "ig-app-s3cret".into(),
                redirect_uris: vec![callback.clone()],
            },
        );
        state.approving = Some(IG_USER.into());
    }
    let app = crate::harness::publishing_through(api, "instagram", host).await;
    fake.fetch_from(MEDIA_HOST, &app.http_url());
    let token = app.token("alice", None, &["admin"]);

    let begun = app
        .ok(
            &token,
            "mutation { beginConnect(platform: \"instagram\") { authorizeUrl state } }",
            json!({}),
        )
        .await["beginConnect"]
        .clone();
    let url = begun["authorizeUrl"].as_str().expect("url");
    assert!(
        url.starts_with("https://www.instagram.com/oauth/authorize?"),
        "{url}"
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let approved = browser
        .get(url.replacen("https://www.instagram.com", &fake.base, 1))
        .send()
        .await
        .expect("authorize");
    assert_eq!(approved.status(), 302);
    let back = reqwest::Url::parse(approved.headers()["location"].to_str().expect("location"))
        .expect("redirect");
    assert!(back.as_str().starts_with(&callback), "{back}");
    let param = |key: &str| {
        back.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .expect(key)
    };
    assert_eq!(param("state"), begun["state"].as_str().expect("state"));
    let before = chrono::Utc::now();
    let connected = app
        .ok(
            &token,
            "mutation($s: String!, $c: String!) { completeConnect(state: $s, code: $c) { id externalAccountId displayName status expiresAt } }",
            json!({"s": param("state"), "c": param("code")}),
        )
        .await["completeConnect"]
        .clone();
    assert_eq!(connected["externalAccountId"], IG_USER);
    assert_eq!(connected["displayName"], "Alice Liddell");
    let expires: chrono::DateTime<chrono::Utc> = connected["expiresAt"]
        .as_str()
        .and_then(|e| e.parse().ok())
        .expect("expiresAt");
    let lives = expires - before;
    assert!(
        (EXPIRES_IN - 5..=EXPIRES_IN + 5).contains(&lives.num_seconds()),
        "a 60-day token: {lives}"
    );
    let issued: Vec<String> = {
        let state = fake.state();
        state
            .tokens
            .iter()
            .filter(|(key, t)| t.long_lived && key.as_str() != "unused")
            .map(|(k, _)| k.clone())
            .collect()
    };
    assert_eq!(
        issued.len(),
        1,
        "the short-lived token was exchanged for one 60-day token"
    );
    let exchanged = fake.requests_to("GET", "/access_token");
    assert_eq!(
        exchanged[0].param("grant_type").as_deref(),
        Some("ig_exchange_token")
    );

    // Not announced as unrefreshable, even within the warning lead.
    app.db
        .execute_unprepared("UPDATE social_connections SET expires_at = now() + interval '3 days'")
        .await
        .expect("expiry");
    let outcomes = refresher(&app).round().await.expect("round");
    assert!(outcomes.is_empty(), "{outcomes:?}");

    // Ten minutes before expiry (the token is a day old by then): renewed.
    for found in fake.state().tokens.values_mut() {
        found.issued -= chrono::Duration::hours(25);
    }
    app.db
        .execute_unprepared(
            "UPDATE social_connections SET expires_at = now() + interval '60 seconds'",
        )
        .await
        .expect("expiry");
    let outcomes = refresher(&app).round().await.expect("round");
    assert!(
        matches!(outcomes.as_slice(), [(_, Outcome::Refreshed)]),
        "{outcomes:?}"
    );
    let refreshed = fake.requests_to("GET", "/refresh_access_token");
    assert_eq!(refreshed.len(), 1);
    assert_eq!(
        refreshed[0].param("grant_type").as_deref(),
        Some("ig_refresh_token")
    );
    assert_eq!(refreshed[0].param("access_token"), Some(issued[0].clone()));
    let listed = app
        .ok(
            &token,
            "{ connections { status expiresAt reconnectBy } }",
            json!({}),
        )
        .await["connections"][0]
        .clone();
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["reconnectBy"], Value::Null);
    let renewed: chrono::DateTime<chrono::Utc> = listed["expiresAt"]
        .as_str()
        .and_then(|e| e.parse().ok())
        .expect("expiresAt");
    assert!(
        renewed - chrono::Utc::now() > chrono::Duration::days(59),
        "{listed}"
    );

    let id = upload(&app, &token, &jpeg("renewed"), "renewed.jpg", None).await;
    let post = app
        .create_post(
            &token,
            post_input("With a renewed token", json!([{"mediaId": id}])),
        )
        .await;
    ended(&app, &token, &post, "PUBLISHED").await;
    let publish = fake.requests_to("POST", &format!("/v25.0/{IG_USER}/media_publish"));
    let bearer = publish[0]
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .expect("bearer")
        .to_owned();
    assert_ne!(bearer, issued[0], "published with the renewed token");
    assert!(fake.state().tokens[&bearer].long_lived);
}

/// Publishes an image through a `herald worker` process that is SIGKILLed once the fake
/// holds the answer `hold` arranges (`hung` fires), then lets a second worker finish;
/// returns the post once published.
async fn across_a_killed_worker(
    hold: impl FnOnce(&mut crate::fakes::instagram::Platform),
) -> (FakeInstagram, Value) {
    let fake = FakeInstagram::start().await;
    fake.add_user(TOKEN, IG_USER, "alice.pics", "Alice Liddell");
    fake.fetch_from(
        "https://media.herald.test/herald-media/",
        &format!("{}/herald-media/", fake.base),
    );
    let host = plugin_host(&routes(&fake)).await;
    let app = TestApp::spawn_with_plugins(host).await;
    let token = app.token("alice", None, &["admin"]);
    app.ok(&token, CONNECT, json!({"c": {"accessToken": TOKEN}}))
        .await;
    let hung = {
        let mut state = fake.state();
        state.processing_polls = 1;
        hold(&mut state);
        state.hung.clone()
    };
    let overrides: Vec<String> = routes(&fake)
        .into_iter()
        .map(|(host, base)| format!("{}={base}", host.trim_end_matches(":443")))
        .collect();
    let mut first = crate::discord::spawn_plugin_worker(&app, &overrides);
    let post = app
        .create_post(
            &token,
            post_input(
                "Out once, whatever happens",
                json!([{"url": "https://media.herald.test/herald-media/crash.jpg", "mimeType": "image/jpeg"}]),
            ),
        )
        .await;
    // Generous: a worker process compiles or loads its plugins first.
    tokio::time::timeout(Duration::from_secs(120), hung.notified())
        .await
        .expect("the worker reached the held call");
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("reaped");
    let _second = crate::discord::spawn_plugin_worker(&app, &overrides);
    let done = ended(&app, &token, &post, "PUBLISHED").await;
    (fake, done)
}

/// Killed while Instagram holds the answer to `media_publish` (the media exists): the next
/// worker resumes the same publish, finds the container it recorded PUBLISHED and reports
/// that media — one container, one post, `media_publish` called once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_media_publish_reports_the_post_instead_of_publishing_again() {
    let (fake, done) = across_a_killed_worker(|state| state.hang_next_publish = true).await;
    let state = fake.state();
    assert_eq!(state.publishes, 1, "published exactly once");
    assert_eq!(
        state.containers.len(),
        1,
        "the container was not made again"
    );
    assert_eq!(
        done["targets"][0]["platformUrl"],
        state.published()[0].permalink
    );
    assert_eq!(done["targets"][0]["attempts"], 2);
    drop(state);
    assert_eq!(
        fake.requests_to("POST", &format!("/v25.0/{IG_USER}/media_publish"))
            .len(),
        1,
        "the second worker found the post instead of publishing"
    );
}

/// Killed between the container's creation and `media_publish` (while reading its
/// status): the next worker publishes the container it recorded — never a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_container_and_publish_publishes_that_container_once() {
    let (fake, done) = across_a_killed_worker(|state| state.hang_next_status = true).await;
    let state = fake.state();
    assert_eq!(state.publishes, 1, "published exactly once");
    assert_eq!(
        state.containers.len(),
        1,
        "the recorded container was published"
    );
    let published = state.published();
    assert_eq!(
        published[0].container.as_deref(),
        Some(state.containers[0].id.as_str())
    );
    assert_eq!(done["targets"][0]["platformUrl"], published[0].permalink);
}
