//! The Facebook Pages plugin end to end against a fake Graph API (`fakes::facebook`):
//! Facebook Login through `beginConnect`/`completeConnect` with the Page chosen by the
//! `page` extra (and a user with several Pages refused, listing them); library photos and
//! an uploaded MP4 published exactly once, Facebook downloading them from Herald's signed
//! URLs (the video in ranges); a lost answer found through the 506 duplicate refusal
//! without a second post; unknown errors (1, 2) looked up before retrying; a URL Facebook
//! cannot download failing at once; throttling waiting as `X-Business-Use-Case-Usage`
//! says; 190 asking to reconnect.

use std::time::Duration;

use herald_server::domain::oauth_apps::{OauthApp, OauthConfig};
use serde_json::{Value, json};

use crate::fakes::facebook::{Failure, FakeFacebook};
use crate::fakes::media::PNG;
use crate::harness::{
    MEDIA_HOST, TestApp, app_publishing, assert_asks_to_reconnect, in_ms, plugin_host,
    publishing_through, watch_retry,
};

const USER_TOKEN: &str = "EAAuser-alice";
const USER: &str = "10158000000000001";
const PAGE: &str = "101234567890";
const PAGE_NAME: &str = "Alice's Bakery";
const OTHER_PAGE: &str = "109999999999";
const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"facebook\", credentials: $c) { id externalAccountId displayName } }";
const REDIRECT: &str = "https://herald.example/oauth/facebook/callback";

/// The Graph hosts routed to the fake.
pub fn hosts(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("graph.facebook.com:443", base.to_owned()),
        ("graph-video.facebook.com:443", base.to_owned()),
        ("www.facebook.com:443", base.to_owned()),
    ]
}

/// A distinct PNG.
pub fn png(tag: &str) -> Vec<u8> {
    let mut bytes = PNG.to_vec();
    bytes.extend_from_slice(tag.as_bytes());
    bytes
}

/// An MP4 file of about 200 KiB: an `ftyp` box (what sniffing reads) and an `mdat` box of
/// patterned bytes, so ranges of it differ.
pub fn mp4() -> Vec<u8> {
    let mut bytes = vec![0, 0, 0, 0x18];
    bytes.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
    let data: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    bytes.extend_from_slice(&(u32::try_from(data.len() + 8).expect("size")).to_be_bytes());
    bytes.extend_from_slice(b"mdat");
    bytes.extend_from_slice(&data);
    bytes
}

/// Uploads `bytes` to the media library; its id.
pub async fn upload(
    app: &TestApp,
    token: &str,
    bytes: &[u8],
    name: &str,
    alt: Option<&str>,
) -> String {
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
    body["data"]["uploadMedia"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("upload: {body}"))
        .to_owned()
}

struct Setup {
    app: TestApp,
    fake: FakeFacebook,
    token: String,
}

/// Herald publishing to alice's Page with a pasted user token; the fake downloads media
/// from the app itself.
async fn setup() -> Setup {
    let fake = FakeFacebook::start().await;
    fake.add_user(
        USER_TOKEN,
        USER,
        &[(PAGE, PAGE_NAME), (OTHER_PAGE, "Alice's Books")],
    );
    let host = plugin_host(&hosts(&fake.base)).await;
    let app = app_publishing("facebook", host).await;
    fake.route_media(MEDIA_HOST, &app.http_url());
    let token = app.token("alice", None, &["admin"]);
    let connected = app
        .ok(
            &token,
            CONNECT,
            json!({"c": {"accessToken": USER_TOKEN, "extra": [{"key": "page", "value": PAGE}]}}),
        )
        .await;
    assert_eq!(connected["connectAccount"]["externalAccountId"], PAGE);
    assert_eq!(connected["connectAccount"]["displayName"], PAGE_NAME);
    Setup { app, fake, token }
}

fn post_input(content: &str, media: Value) -> Value {
    json!({
        "content": content,
        "targets": [{"platform": "facebook"}],
        "scheduledAt": in_ms(300),
        "media": media,
    })
}

async fn ended(app: &TestApp, token: &str, post: &Value, done: impl Fn(&Value) -> bool) -> Value {
    app.wait_for_post(
        token,
        post["id"].as_str().expect("id"),
        Duration::from_secs(30),
        done,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_photos_and_a_video_are_published_once_from_signed_urls() {
    let Setup { app, fake, token } = setup().await;
    let cat = png("cat");
    let kitten = png("kitten");
    let video = mp4();
    let cat_id = upload(&app, &token, &cat, "cat.png", Some("A cat asleep")).await;
    let kitten_id = upload(&app, &token, &kitten, "kitten.png", None).await;
    let video_id = upload(&app, &token, &video, "clip.mp4", None).await;

    let photos = app
        .create_post(
            &token,
            post_input(
                "Two cats",
                json!([{"mediaId": cat_id}, {"mediaId": kitten_id}]),
            ),
        )
        .await;
    let done = ended(&app, &token, &photos, |p| p["status"] == "PUBLISHED").await;
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
    assert_eq!(state.posts.len(), 2, "each post published once");
    assert_eq!(state.photos.len(), 2, "each photo sent once");
    assert_eq!(state.photos[0].fetched.bytes, cat, "downloaded from Herald");
    assert_eq!(state.photos[1].fetched.bytes, kitten);
    assert_eq!(state.photos[0].fetched.content_type, "image/png");
    assert_eq!(state.photos[0].alt.as_deref(), Some("A cat asleep"));
    for photo in &state.photos {
        assert!(
            photo
                .fetched
                .url
                .starts_with(&format!("{MEDIA_HOST}/media/")),
            "{}",
            photo.fetched.url
        );
        assert!(photo.published, "attached to the post");
    }
    let feed = &state.posts[0];
    assert_eq!(feed.page, PAGE);
    assert_eq!(feed.message, "Two cats");
    assert_eq!(
        feed.photos,
        vec![state.photos[0].id.clone(), state.photos[1].id.clone()]
    );
    let (page_part, post_part) = feed.id.split_once('_').expect("page_post id");
    assert_eq!(page_part, PAGE);
    assert_eq!(
        done["targets"][0]["platformUrl"],
        format!("https://www.facebook.com/{PAGE}/posts/{post_part}")
    );
    assert_eq!(done["targets"][0]["attempts"], 1);

    let clip_post = &state.posts[1];
    let fetched = clip_post.video.as_ref().expect("a video post");
    assert_eq!(
        fetched.bytes, video,
        "the whole video, assembled from ranges"
    );
    assert_eq!(fetched.content_type, "video/mp4");
    assert!(fetched.requests > 1, "fetched in ranges");
    assert_eq!(clip_post.message, "A clip");
    assert_eq!(
        clip_done["targets"][0]["platformUrl"],
        format!("https://www.facebook.com/{PAGE}/videos/{}", clip_post.id)
    );
    drop(state);

    // Every publishing call used the Page's token, read fresh with the user token.
    let page_reads = fake.requests_to("GET", &format!("/{PAGE}"));
    assert_eq!(page_reads.len(), 2, "one Page token read per publish");
    for call in fake.state().requests.iter().filter(|r| r.method == "POST") {
        assert!(call.path.starts_with("/v25.0/"), "{}", call.path);
        assert_eq!(
            call.headers
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some(format!("Bearer page-token-{PAGE}").as_str()),
            "{}",
            call.path
        );
    }
    assert_eq!(fake.requests_to("POST", "/videos").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_found_through_the_duplicate_refusal() {
    let Setup { app, fake, token } = setup().await;
    fake.state().lose_next_answer = true;
    let post = app
        .create_post(&token, post_input("Fresh bread at 7", json!([])))
        .await;
    let done = ended(&app, &token, &post, |p| p["status"] == "PUBLISHED").await;
    assert_eq!(
        done["targets"][0]["attempts"], 2,
        "retried after the lost answer"
    );
    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1, "published once");
    assert_eq!(
        fake.requests_to("POST", "/feed").len(),
        2,
        "the retry was refused as 506"
    );
    assert_eq!(fake.requests_to("GET", "/feed").len(), 1, "then looked up");
    let post_part = posts[0].id.split_once('_').expect("id").1;
    assert_eq!(
        done["targets"][0]["platformUrl"],
        format!("https://www.facebook.com/{PAGE}/posts/{post_part}")
    );
}

/// Unknown errors (1, 2) may come before or after the post was made: the Page's latest
/// posts are read before retrying, so the post goes out once either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_errors_are_looked_up_before_retrying() {
    let Setup { app, fake, token } = setup().await;
    fake.state()
        .failures
        .push_back(Failure::new(1, "An unknown error occurred"));
    let post = app
        .create_post(&token, post_input("Before the post", json!([])))
        .await;
    let done = ended(&app, &token, &post, |p| p["status"] == "PUBLISHED").await;
    assert_eq!(done["targets"][0]["attempts"], 2, "not found, so retried");
    assert_eq!(fake.state().posts.len(), 1);

    fake.state().error_after_posting = true;
    let post = app
        .create_post(&token, post_input("After the post", json!([])))
        .await;
    let done = ended(&app, &token, &post, |p| p["status"] == "PUBLISHED").await;
    assert_eq!(done["targets"][0]["attempts"], 1, "found, not retried");
    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 2, "published once");
    assert_eq!(posts[1].message, "After the post");
    assert_eq!(
        fake.requests_to("GET", "/feed").len(),
        2,
        "looked up each time"
    );
    let post_part = posts[1].id.split_once('_').expect("id").1;
    assert_eq!(
        done["targets"][0]["platformUrl"],
        format!("https://www.facebook.com/{PAGE}/posts/{post_part}")
    );
}

/// Facebook really downloads what Herald signs: a URL with a wrong signature fails the
/// post at once, saying Herald's media must be reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_url_facebook_cannot_fetch_fails_the_post() {
    let Setup { app, fake, token } = setup().await;
    let (_, uploaded) = crate::media::multipart(
        &app,
        Some(&token),
        &png("tampered"),
        "cat.png",
        "image/png",
        None,
    )
    .await;
    let url = uploaded["data"]["uploadMedia"]["url"]
        .as_str()
        .expect("url");
    let (signed, _) = url.rsplit_once('/').expect("signature");
    let tampered = format!("{signed}/AAAA{}", &url[signed.len() + 5..]);
    let post = app
        .create_post(
            &token,
            post_input(
                "Bad link",
                json!([{"url": tampered, "mimeType": "image/png"}]),
            ),
        )
        .await;
    let failed = ended(&app, &token, &post, |p| p["status"] == "FAILED").await;
    let error = failed["targets"][0]["lastError"].as_str().expect("error");
    assert!(
        error.contains("media[0]") && error.contains("9004") && error.contains("HERALD_PUBLIC_URL"),
        "{error}"
    );
    assert_eq!(failed["targets"][0]["attempts"], 1, "not retried");
    let state = fake.state();
    assert!(state.posts.is_empty() && state.photos.is_empty());
    assert!(
        state.fetch_failures[0].contains("HTTP 40"),
        "{:?}",
        state.fetch_failures
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_waits_as_the_usage_header_says() {
    let Setup { app, fake, token } = setup().await;
    fake.state().failures.push_back(Failure {
        regain_minutes: Some(2),
        ..Failure::new(
            80_001,
            "(#80001) There have been too many calls to this Page account.",
        )
    });
    let retry = watch_retry(&app);
    let post = app
        .create_post(&token, post_input("Busy day", json!([])))
        .await;
    let waiting = ended(&app, &token, &post, |p| {
        p["targets"][0]["lastError"].as_str().is_some()
    })
    .await;
    let error = waiting["targets"][0]["lastError"].as_str().expect("error");
    assert!(
        error.contains("too many calls") && error.contains("80001"),
        "{error}"
    );
    let (_, due) = retry.await.expect("retry watch");
    let wait = due - chrono::Utc::now();
    assert!(
        wait > chrono::Duration::seconds(100) && wait <= chrono::Duration::seconds(120),
        "waits the two minutes Facebook named, not a backoff: {wait}"
    );
    assert!(fake.state().posts.is_empty());
    assert_eq!(waiting["status"], "QUEUED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_asks_to_reconnect() {
    let Setup { app, fake, token } = setup().await;
    fake.state().user_tokens.clear();
    let post = app
        .create_post(&token, post_input("expired", json!([])))
        .await;
    let failed = ended(&app, &token, &post, |p| {
        p["status"] == "QUEUED" && p["targets"][0]["status"] == "WAITING_FOR_ACCOUNT"
    })
    .await;
    let error = assert_asks_to_reconnect(&app, &token, &failed).await;
    assert!(
        error.contains("Session has expired") && error.contains("190"),
        "{error}"
    );
    assert!(fake.state().posts.is_empty());
}

/// Facebook Login through the connect flow: the code is exchanged for a short-lived token
/// and that for a long-lived one; a user with several Pages must choose one (the error
/// lists them), and the connection is the chosen Page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facebook_login_connects_the_chosen_page() {
    let fake = FakeFacebook::start().await;
    fake.add_user(
        "unused",
        USER,
        &[(PAGE, PAGE_NAME), (OTHER_PAGE, "Alice's Books")],
    );
    {
        let mut state = fake.state();
        state
            .clients
            .insert("4242".into(), ("app-s3cret".into(), vec![REDIRECT.into()]));
        state.approving = Some(USER.into());
    }
    let host = plugin_host(&hosts(&fake.base)).await;
    let api = TestApp::spawn_with_oauth(host.clone(), |base| OauthConfig {
        public_url: Some(base.to_owned()),
        redirect_uris: vec![REDIRECT.to_owned()],
        apps: [(
            "FACEBOOK".to_owned(),
            OauthApp {
                client_id: "4242".into(),
                client_secret: Some("app-s3cret".into()),
                scopes: vec![],
            },
        )]
        .into(),
        refresh_interval: Duration::from_secs(3_600),
        ..Default::default()
    })
    .await;
    let app = publishing_through(api, "facebook", host).await;
    let token = app.token("alice", None, &["admin"]);
    const BEGIN: &str = "mutation($extra: [CredentialValueInput!]!) { beginConnect(platform: \"facebook\", redirectUri: \"https://herald.example/oauth/facebook/callback\", extra: $extra) { authorizeUrl state } }";
    const COMPLETE: &str = "mutation($state: String!, $code: String!) { completeConnect(state: $state, code: $code) { id externalAccountId displayName status } }";

    let connect = |extra: Value| {
        let app = &app;
        let token = &token;
        let fake = &fake;
        async move {
            let begun = app.ok(token, BEGIN, json!({"extra": extra})).await["beginConnect"].clone();
            let url = begun["authorizeUrl"].as_str().expect("URL").to_owned();
            let parsed = reqwest::Url::parse(&url).expect("URL");
            assert_eq!(parsed.host_str(), Some("www.facebook.com"));
            assert_eq!(parsed.path(), "/v25.0/dialog/oauth");
            let query: std::collections::HashMap<_, _> =
                parsed.query_pairs().into_owned().collect();
            assert_eq!(
                query["scope"],
                "pages_show_list,pages_manage_posts,pages_read_engagement"
            );
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let answer = client
                .get(url.replacen("https://www.facebook.com", &fake.base, 1))
                .send()
                .await
                .expect("dialog");
            assert_eq!(answer.status(), 302);
            let back =
                reqwest::Url::parse(answer.headers()["location"].to_str().expect("location"))
                    .expect("redirect");
            let code = back
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .expect("code");
            let state = begun["state"].as_str().expect("state").to_owned();
            app.gql(Some(token), COMPLETE, json!({"state": state, "code": code}))
                .await
        }
    };

    let several = connect(json!([])).await;
    let message = several["errors"][0]["message"].as_str().expect("an error");
    assert!(
        message.contains(&format!("{PAGE_NAME} ({PAGE})"))
            && message.contains(&format!("Alice's Books ({OTHER_PAGE})"))
            && message.contains("page=<page id>"),
        "{several}"
    );
    let exchanges = fake.requests_to("POST", "/oauth/access_token");
    assert_eq!(exchanges.len(), 2, "code, then fb_exchange_token");
    assert_eq!(
        exchanges[0]
            .param("code")
            .as_deref()
            .map(|c| c.starts_with("AQcode")),
        Some(true)
    );
    assert_eq!(
        exchanges[0].param("client_secret").as_deref(),
        Some("app-s3cret")
    );
    assert_eq!(
        exchanges[1].param("grant_type").as_deref(),
        Some("fb_exchange_token")
    );
    assert!(
        exchanges.iter().all(|r| !r.query.contains("secret")),
        "secrets go in the form, not the URL"
    );

    let chosen = connect(json!([{"key": "page", "value": OTHER_PAGE}])).await;
    let connection = &chosen["data"]["completeConnect"];
    assert_eq!(connection["externalAccountId"], OTHER_PAGE, "{chosen}");
    assert_eq!(connection["displayName"], "Alice's Books");
    assert_eq!(connection["status"], "active");

    // The connection publishes to that Page with the Page token the long-lived user
    // token reads.
    let post = app
        .create_post(
            &token,
            json!({"content": "Hello from Login", "scheduledAt": in_ms(300), "targets": [{
                "platform": "facebook",
                "options": [{"key": "link", "value": "https://bakery.example/menu"}],
            }]}),
        )
        .await;
    ended(&app, &token, &post, |p| p["status"] == "PUBLISHED").await;
    let posts = fake.state().posts.clone();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].page, OTHER_PAGE);
    assert_eq!(
        posts[0].link.as_deref(),
        Some("https://bakery.example/menu")
    );
    let read = fake.requests_to("GET", &format!("/{OTHER_PAGE}"));
    let bearer = read[0].headers["authorization"].to_str().expect("header");
    assert!(
        bearer.starts_with("Bearer EAAlong"),
        "the long-lived token: {bearer}"
    );
}
