//! The Telegram plugin end to end (GraphQL → queue → wasm plugin → fake Bot API → status
//! and link back): connecting a bot to a chat, text, a photo with its caption, a media
//! group of three, a per-target chat, a 429 retried after `parameters.retry_after`, a
//! revoked token asking to reconnect, over-long text and captions refused at scheduling,
//! and a lost answer never producing a second message.

use std::time::Duration;

use serde_json::{Value, json};

use crate::discord::review_after_killed_worker;
use crate::fakes::media::{self, MediaHost};
use crate::fakes::telegram::Telegram;
use crate::harness::{
    TestApp, app_publishing, assert_asks_to_reconnect, assert_error, assert_retried_after, in_ms,
    plugin_host, publish, waits_for_account, watch_retry,
};

const BOT_ID: i64 = 7_000_000_001;
const CHANNEL: i64 = -1_001_234_567_890;
const PRIVATE_GROUP: i64 = -1_009_876_543_210;
const CONNECT: &str = "mutation($c: CredentialsInput!) { connectAccount(platform: \"telegram\", credentials: $c) { id platform externalAccountId displayName status } }";

struct Setup {
    app: TestApp,
    telegram: Telegram,
    token: String,
    bot: String,
}

async fn setup() -> Setup {
    let telegram = Telegram::start().await;
    let media = MediaHost::start().await;
    let host = plugin_host(&[
        ("api.telegram.org:443", telegram.base()),
        ("media.test:443", media.base()),
    ])
    .await;
    let app = app_publishing("telegram", host).await;
    let token = app.token("alice", None, &["admin"]);
    let bot = telegram.create_bot(BOT_ID, "herald_bot", "Herald");
    telegram.add_chat(CHANNEL, "channel", Some("Herald News"), Some("herald_news"));
    telegram.add_chat(PRIVATE_GROUP, "supergroup", Some("Editors"), None);
    Setup {
        app,
        telegram,
        token,
        bot,
    }
}

async fn connect(app: &TestApp, token: &str, bot: &str, chat: &str) -> Value {
    app.ok(
        token,
        CONNECT,
        json!({"c": {"accessToken": bot, "extra": [{"key": "chat_id", "value": chat}]}}),
    )
    .await["connectAccount"]
        .clone()
}

fn published(p: &Value) -> bool {
    p["status"] == "PUBLISHED"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_connects_a_bot_to_its_chat_and_refuses_bad_ones() {
    let Setup {
        app,
        telegram,
        token,
        bot,
    } = setup().await;
    let unknown_bot = format!("{BOT_ID}:AAF{}", "y".repeat(32));
    for (access, chat) in [
        ("not-a-token", "@herald_news"),
        (unknown_bot.as_str(), "@herald_news"),
        (bot.as_str(), "-100555"),
    ] {
        let refused = app
            .gql(
                Some(&token),
                CONNECT,
                json!({"c": {"accessToken": access, "extra": [{"key": "chat_id", "value": chat}]}}),
            )
            .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{refused}"
        );
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains(&"y".repeat(32)),
            "token echoed: {message}"
        );
    }
    let connected = connect(&app, &token, &bot, "@herald_news").await;
    assert_eq!(connected["externalAccountId"], BOT_ID.to_string());
    assert_eq!(connected["displayName"], "Herald in Herald News");
    let methods: Vec<String> = telegram.requests().into_iter().map(|r| r.method).collect();
    assert!(methods.contains(&"getMe".to_owned()) && methods.contains(&"getChat".to_owned()));
    assert!(telegram.messages().is_empty(), "verifying sends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_text_post_is_sent_as_plain_text_and_linked() {
    let Setup {
        app,
        telegram,
        token,
        bot,
    } = setup().await;
    connect(&app, &token, &bot, &CHANNEL.to_string()).await;
    let text = "Hello *not bold* _nor italic_ <b>nor html</b> — ünïcödé https://herald.example";
    let post = publish(
        &app,
        &token,
        json!({"content": text, "platforms": ["telegram"], "scheduledAt": in_ms(200)}),
        published,
    )
    .await;
    let messages = telegram.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].chat_id, CHANNEL);
    assert_eq!(messages[0].text.as_deref(), Some(text));
    assert_eq!(
        post["targets"][0]["platformUrl"],
        format!("https://t.me/herald_news/{}", messages[0].message_id)
    );
    let call = &telegram.calls("sendMessage")[0];
    assert_eq!(call.params.get("text").map(String::as_str), Some(text));
    assert_eq!(call.params.get("chat_id"), Some(&CHANNEL.to_string()));
    assert!(
        !call.params.contains_key("parse_mode"),
        "plain text, nothing to escape"
    );

    // A bot cannot read engagement figures: refreshing says so instead of inventing any.
    let refreshed = app
        .ok(
            &token,
            "mutation($id: ID!) { refreshPostMetrics(postId: $id) { error metrics { likes } } }",
            json!({"id": post["id"]}),
        )
        .await;
    assert_eq!(
        refreshed["refreshPostMetrics"],
        json!([{"error": "telegram does not report engagement figures", "metrics": null}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_target_chat_option_overrides_the_connection_chat() {
    let Setup {
        app,
        telegram,
        token,
        bot,
    } = setup().await;
    let connection = connect(&app, &token, &bot, "@herald_news").await;
    let post = publish(
        &app,
        &token,
        json!({"content": "for the editors", "scheduledAt": in_ms(200),
               "targets": [{"platform": "telegram", "connectionId": connection["id"],
                            "options": [{"key": "chat_id", "value": PRIVATE_GROUP.to_string()}]}]}),
        published,
    )
    .await;
    let messages = telegram.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].chat_id, PRIVATE_GROUP);
    // A supergroup without a username: the members-only t.me/c/ link.
    assert_eq!(
        post["targets"][0]["platformUrl"],
        format!("https://t.me/c/9876543210/{}", messages[0].message_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_one_image_is_a_photo_with_its_caption() {
    let Setup {
        app,
        telegram,
        token,
        bot,
    } = setup().await;
    connect(&app, &token, &bot, "@herald_news").await;
    publish(
        &app,
        &token,
        json!({"content": "a cat", "platforms": ["telegram"], "scheduledAt": in_ms(200),
               "media": [{"url": MediaHost::url("cat.png"), "altText": "A ginger cat", "mimeType": "image/png"}]}),
        published,
    )
    .await;
    let call = &telegram.calls("sendPhoto")[0];
    assert_eq!(
        call.params.get("caption").map(String::as_str),
        Some("a cat")
    );
    let names: Vec<&str> = call.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["chat_id", "caption", "photo"]);
    let messages = telegram.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].caption.as_deref(), Some("a cat"));
    let photo = messages[0].photo.as_ref().expect("photo");
    assert_eq!(photo.data, media::image("cat.png"));
    assert_eq!(photo.content_type.as_deref(), Some("image/png"));
    assert_eq!(photo.filename.as_deref(), Some("photo0.png"));
    // Telegram photos have no alt text: nothing in the request carries it.
    let sent = String::from_utf8_lossy(
        &call
            .parts
            .iter()
            .flat_map(|p| p.data.clone())
            .collect::<Vec<_>>(),
    )
    .into_owned();
    assert!(!sent.contains("A ginger cat"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_three_images_are_one_media_group_captioned_once() {
    let Setup {
        app,
        telegram,
        token,
        bot,
    } = setup().await;
    connect(&app, &token, &bot, "@herald_news").await;
    let names = ["a.png", "b.png", "c.png"];
    let post = publish(
        &app,
        &token,
        json!({"content": "three cats", "platforms": ["telegram"], "scheduledAt": in_ms(200),
               "media": names.iter().map(|n| json!({"url": MediaHost::url(n), "altText": n, "mimeType": "image/png"})).collect::<Vec<_>>()}),
        published,
    )
    .await;
    let call = &telegram.calls("sendMediaGroup")[0];
    let media: Value =
        serde_json::from_str(call.params.get("media").expect("media")).expect("json");
    assert_eq!(
        media,
        json!([
            {"type": "photo", "media": "attach://file0", "caption": "three cats"},
            {"type": "photo", "media": "attach://file1"},
            {"type": "photo", "media": "attach://file2"},
        ])
    );
    let messages = telegram.messages();
    assert_eq!(messages.len(), 3);
    let group = messages[0].media_group_id.clone().expect("a media group");
    for (message, name) in messages.iter().zip(names) {
        assert_eq!(message.media_group_id.as_deref(), Some(group.as_str()));
        assert_eq!(
            message.photo.as_ref().expect("photo").data,
            media::image(name)
        );
    }
    assert_eq!(messages[0].caption.as_deref(), Some("three cats"));
    assert!(messages[1].caption.is_none() && messages[2].caption.is_none());
    assert_eq!(
        post["targets"][0]["platformUrl"],
        format!("https://t.me/herald_news/{}", messages[0].message_id),
        "the link of the group's first message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_rate_limit_is_retried_after_retry_after() {
    let Setup {
        app,
        telegram,
        token,
        bot,
    } = setup().await;
    connect(&app, &token, &bot, "@herald_news").await;
    telegram.throttle(&[2]);
    let retry = watch_retry(&app);
    let post = publish(
        &app,
        &token,
        json!({"content": "after the limit", "platforms": ["telegram"], "scheduledAt": in_ms(200)}),
        published,
    )
    .await;
    let calls = telegram.calls("sendMessage");
    assert_eq!(calls.len(), 2, "one 429, then one message");
    let waited = calls[1].at.duration_since(calls[0].at);
    println!("Telegram 429 retry_after 2: retried after {waited:?}");
    assert_retried_after(&app, retry, waited, Duration::from_secs(2)).await;
    assert_eq!(telegram.messages().len(), 1);
    assert_eq!(post["targets"][0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_revoked_token_waits_asking_to_reconnect() {
    let Setup {
        app,
        telegram,
        token,
        bot,
    } = setup().await;
    connect(&app, &token, &bot, "@herald_news").await;
    telegram.revoke(&bot);
    let failed = publish(
        &app,
        &token,
        json!({"content": "after revocation", "platforms": ["telegram"], "scheduledAt": in_ms(200)}),
        waits_for_account,
    )
    .await;
    let error = assert_asks_to_reconnect(&app, &token, &failed).await;
    assert!(!error.contains(&bot), "{error}");
    assert!(telegram.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_over_long_text_caption_or_bad_chat_is_refused_at_scheduling() {
    let Setup {
        app,
        telegram,
        token,
        bot,
    } = setup().await;
    connect(&app, &token, &bot, "@herald_news").await;
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";
    let image = json!([{"url": MediaHost::url("cat.png"), "mimeType": "image/png"}]);
    for input in [
        json!({"content": "x".repeat(4097), "platforms": ["telegram"], "scheduledAt": in_ms(60_000)}),
        json!({"content": "x".repeat(1025), "platforms": ["telegram"], "scheduledAt": in_ms(60_000), "media": image}),
    ] {
        let refused = app.gql(Some(&token), create, json!({"i": input})).await;
        assert_error(&refused, "BAD_USER_INPUT", Some("content"));
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.to_lowercase().contains("telegram"), "{message}");
    }
    let bad_chat = app
        .gql(
            Some(&token),
            create,
            json!({"i": {"content": "hi", "scheduledAt": in_ms(60_000),
                         "targets": [{"platform": "telegram", "options": [{"key": "chat_id", "value": "not a chat"}]}]}}),
        )
        .await;
    assert_error(&bad_chat, "BAD_USER_INPUT", Some("options.chat_id"));
    for input in [
        json!({"content": "x".repeat(4096), "platforms": ["telegram"], "scheduledAt": in_ms(60_000)}),
        json!({"content": "x".repeat(1024), "platforms": ["telegram"], "scheduledAt": in_ms(60_000), "media": image}),
    ] {
        app.ok(&token, create, json!({"i": input})).await;
    }
    assert!(telegram.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_lost_answer_needs_review_without_a_second_message() {
    let Setup {
        app,
        telegram,
        token,
        bot,
    } = setup().await;
    connect(&app, &token, &bot, "@herald_news").await;
    telegram.lose_next_answer();
    let review = publish(
        &app,
        &token,
        json!({"content": "did it go out?", "platforms": ["telegram"], "scheduledAt": in_ms(200)}),
        |p| p["targets"][0]["status"] == "NEEDS_REVIEW",
    )
    .await;
    let error = review["targets"][0]["lastError"].as_str().expect("error");
    assert!(
        error.contains("may have published it") && error.contains("markPublished"),
        "{error}"
    );
    assert!(!error.contains(&bot), "token in the error: {error}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(telegram.calls("sendMessage").len(), 1, "never sent twice");
    assert_eq!(telegram.messages().len(), 1, "exactly one message");
}

/// A worker killed while Telegram holds its answer: NEEDS_REVIEW, one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_worker_killed_mid_publish_needs_review_with_one_message() {
    let telegram = Telegram::start().await;
    let host = plugin_host(&[("api.telegram.org:443", telegram.base())]).await;
    let app = TestApp::spawn_with_plugins(host).await;
    let token = app.token("alice", None, &["admin"]);
    let bot = telegram.create_bot(BOT_ID, "herald_bot", "Herald");
    telegram.add_chat(CHANNEL, "channel", Some("Herald News"), Some("herald_news"));
    connect(&app, &token, &bot, "@herald_news").await;
    let overrides = [format!("api.telegram.org={}", telegram.base())];
    telegram.hang_next();
    review_after_killed_worker(&app, &token, "telegram", &overrides, &telegram.hung).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(telegram.calls("sendMessage").len(), 1, "never sent twice");
    assert_eq!(telegram.messages().len(), 1, "exactly one message");
}
