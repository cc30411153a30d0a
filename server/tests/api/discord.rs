//! The Discord plugin end to end (GraphQL → queue → wasm plugin → fake Discord webhook API
//! → status and link back): connecting a webhook, text and images with alt text, a 429
//! retried after Discord's delay, a deleted webhook asking to reconnect, over-long content
//! refused at scheduling, and a lost answer never producing a second message.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::fakes::discord::{CHANNEL_ID, Discord, GUILD_ID};
use crate::fakes::media::{self, MediaHost};
use crate::harness::{
    TestApp, app_publishing, assert_asks_to_reconnect, assert_error, assert_retried_after, in_ms,
    plugin_host, publish, waits_for_account, watch_retry,
};
use crate::plugins::built_plugins;

const WEBHOOK_ID: &str = "1234567890123456789";
const WEBHOOK_TOKEN: &str = "k3yT0k3n-abc_DEF";
const CONNECT: &str = "mutation($p: String!, $c: CredentialsInput!) { connectAccount(platform: $p, credentials: $c) { id platform externalAccountId displayName status } }";

/// A `herald worker` process loading the built plugins, with their hosts routed by
/// `overrides` (`host=base`).
pub fn spawn_plugin_worker(app: &TestApp, overrides: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("worker")
        .env("DATABASE_URL", &app.database_url)
        .env("REDIS_URL", &app.redis_url)
        .env("HERALD_QUEUE_NAMESPACE", &app.namespace)
        .env("HERALD_QUEUE_LEASE_MS", "1000")
        .env("HERALD_QUEUE_RETRY_BASE_MS", "100")
        .env("HERALD_RECONCILE_INTERVAL_MS", "300")
        .env("HERALD_TOKEN_KEY", crate::harness::TOKEN_KEY_B64)
        .env("HERALD_TOKEN_KEY_ID", "test")
        .env("HERALD_PLUGIN_DIR", built_plugins())
        .env("HERALD_PLUGIN_HOST_OVERRIDES", overrides.join(","))
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn herald worker")
}

/// Publishes a `platform` post through a `herald worker` process that is SIGKILLed while
/// the platform holds its answer (`hung` fires), then waits until a second worker has put
/// the target in review, asking to check and mark it published.
pub async fn review_after_killed_worker(
    app: &TestApp,
    token: &str,
    platform: &str,
    overrides: &[String],
    hung: &tokio::sync::Notify,
) {
    let mut first = spawn_plugin_worker(app, overrides);
    let post = app
        .create_post(
            token,
            json!({"content": "maybe out", "platforms": [platform], "scheduledAt": in_ms(300)}),
        )
        .await;
    // Generous: a worker process compiles or loads its plugins first, slow on a busy machine.
    tokio::time::timeout(Duration::from_secs(120), hung.notified())
        .await
        .expect("the worker reached the platform");
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("reaped");
    let killed = Instant::now();
    let _second = spawn_plugin_worker(app, overrides);
    let reviewed = app
        .wait_for_post(
            token,
            post["id"].as_str().expect("id"),
            Duration::from_secs(30),
            |p| p["status"] == "NEEDS_REVIEW",
        )
        .await;
    println!(
        "{platform}: needs review {:?} after SIGKILL",
        killed.elapsed()
    );
    assert!(
        reviewed["targets"][0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("markPublished")),
        "{reviewed}"
    );
}

struct Setup {
    app: TestApp,
    discord: Discord,
    token: String,
    webhook: String,
}

async fn setup() -> Setup {
    let discord = Discord::start().await;
    let media = MediaHost::start().await;
    let host = plugin_host(&[
        ("discord.com:443", discord.base()),
        ("media.test:443", media.base()),
    ])
    .await;
    let app = app_publishing("discord", host).await;
    let token = app.token("alice", None, &["admin"]);
    let webhook = discord.create_webhook(WEBHOOK_ID, WEBHOOK_TOKEN, "Herald News");
    Setup {
        app,
        discord,
        token,
        webhook,
    }
}

async fn connect(app: &TestApp, token: &str, webhook: &str) -> Value {
    app.ok(
        token,
        CONNECT,
        json!({"p": "discord", "c": {"accessToken": webhook}}),
    )
    .await["connectAccount"]
        .clone()
}

fn published(p: &Value) -> bool {
    p["status"] == "PUBLISHED"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_connects_with_a_webhook_url_and_refuses_bad_ones() {
    let Setup {
        app,
        discord,
        token,
        webhook,
    } = setup().await;
    for bad in [
        "https://discord.com/api/webhooks/not-a-number/x".to_owned(),
        format!("https://discord.com/api/webhooks/{WEBHOOK_ID}/wrong-token"),
        "https://discord.com/api/webhooks/999/gone".to_owned(),
    ] {
        let refused = app
            .gql(
                Some(&token),
                CONNECT,
                json!({"p": "discord", "c": {"accessToken": bad}}),
            )
            .await;
        assert_error(&refused, "BAD_USER_INPUT", Some("credentials"));
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("wrong-token") && !message.contains("gone"),
            "the webhook token is never echoed: {message}"
        );
    }
    let connected = connect(&app, &token, &webhook).await;
    assert_eq!(connected["externalAccountId"], WEBHOOK_ID);
    assert_eq!(connected["status"], "active");
    assert!(
        connected["displayName"]
            .as_str()
            .is_some_and(|name| name.contains("Herald News") && name.contains(CHANNEL_ID)),
        "{connected}"
    );
    let gets = discord.requests();
    assert!(
        gets.iter().all(|r| r.method == "GET"),
        "verifying only reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_text_post_is_executed_with_wait_and_read_back() {
    let Setup {
        app,
        discord,
        token,
        webhook,
    } = setup().await;
    connect(&app, &token, &webhook).await;
    let text = "Hello from Herald — ünïcödé & <b>not html</b> https://herald.example";
    let post = publish(
        &app,
        &token,
        json!({"content": text, "platforms": ["discord"], "scheduledAt": in_ms(200)}),
        published,
    )
    .await;

    let messages = discord.messages();
    assert_eq!(messages.len(), 1);
    let id = &messages[0].id;
    assert_eq!(
        post["targets"][0]["platformUrl"],
        format!("https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{id}")
    );
    let execution = &discord.executions()[0];
    assert_eq!(execution.webhook_id, WEBHOOK_ID);
    assert_eq!(
        execution.query.get("wait").map(String::as_str),
        Some("true")
    );
    assert_eq!(execution.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&execution.body).expect("json"),
        json!({"content": text})
    );

    // Read the message back as Discord serves it.
    let read: Value = reqwest::get(format!(
        "{}/api/v10/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}/messages/{id}",
        discord.base()
    ))
    .await
    .expect("GET message")
    .json()
    .await
    .expect("json");
    assert_eq!(read["content"], text);
    assert_eq!(read["webhook_id"], WEBHOOK_ID);
    assert_eq!(read["attachments"], json!([]));

    // Engagement: the message's reactions, summed, become the target's likes.
    discord.react(id, "👍", 3);
    discord.react(id, "🎉", 2);
    let refreshed = app
        .ok(
            &token,
            "mutation($id: ID!) { refreshPostMetrics(postId: $id) { error metrics { likes raw { name value } } } }",
            json!({"id": post["id"]}),
        )
        .await;
    assert_eq!(
        refreshed["refreshPostMetrics"],
        json!([{"error": null, "metrics": {"likes": 5, "raw": [{"name": "reactions", "value": 5}]}}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_images_are_uploaded_with_alt_text_as_descriptions() {
    let Setup {
        app,
        discord,
        token,
        webhook,
    } = setup().await;
    connect(&app, &token, &webhook).await;
    publish(
        &app,
        &token,
        json!({"content": "two cats", "platforms": ["discord"], "scheduledAt": in_ms(200),
               "media": [
                   {"url": MediaHost::url("cat.png"), "altText": "A ginger cat asleep on a keyboard", "mimeType": "image/png"},
                   {"url": MediaHost::url("kitten.png"), "altText": "A kitten", "mimeType": "image/png"},
               ]}),
        published,
    )
    .await;

    let execution = &discord.executions()[0];
    assert!(
        execution
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("multipart/form-data; boundary=")),
        "{:?}",
        execution.content_type
    );
    let names: Vec<&str> = execution.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["payload_json", "files[0]", "files[1]"]);
    let payload: Value = serde_json::from_slice(&execution.parts[0].data).expect("payload_json");
    assert_eq!(
        payload,
        json!({"content": "two cats", "attachments": [
            {"id": 0, "filename": "image0.png", "description": "A ginger cat asleep on a keyboard"},
            {"id": 1, "filename": "image1.png", "description": "A kitten"},
        ]})
    );
    let message = &discord.messages()[0];
    assert_eq!(message.content, "two cats");
    let expected = [
        (
            "image0.png",
            "A ginger cat asleep on a keyboard",
            media::image("cat.png"),
        ),
        ("image1.png", "A kitten", media::image("kitten.png")),
    ];
    assert_eq!(message.attachments.len(), expected.len());
    for (file, (filename, alt, bytes)) in message.attachments.iter().zip(expected) {
        assert_eq!(file.filename, filename);
        assert_eq!(file.description.as_deref(), Some(alt));
        assert_eq!(file.content_type.as_deref(), Some("image/png"));
        assert_eq!(file.data, bytes, "the image's bytes reached Discord");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_rate_limit_is_retried_after_the_stated_delay() {
    let Setup {
        app,
        discord,
        token,
        webhook,
    } = setup().await;
    connect(&app, &token, &webhook).await;
    // retry_after 1.2 s: the plugin rounds up to 2 s.
    discord.throttle(&[1.2]);
    let retry = watch_retry(&app);
    let post = publish(
        &app,
        &token,
        json!({"content": "after the limit", "platforms": ["discord"], "scheduledAt": in_ms(200)}),
        published,
    )
    .await;
    let executions = discord.executions();
    assert_eq!(executions.len(), 2, "one 429, then one message");
    let waited = executions[1].at.duration_since(executions[0].at);
    println!("Discord 429 retry_after 1.2 s: retried after {waited:?}");
    assert_retried_after(&app, retry, waited, Duration::from_secs(2)).await;
    assert_eq!(discord.messages().len(), 1);
    assert_eq!(post["targets"][0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_deleted_webhook_waits_asking_to_reconnect() {
    let Setup {
        app,
        discord,
        token,
        webhook,
    } = setup().await;
    connect(&app, &token, &webhook).await;
    discord.delete_webhook(WEBHOOK_ID);
    let failed = publish(
        &app,
        &token,
        json!({"content": "into the void", "platforms": ["discord"], "scheduledAt": in_ms(200)}),
        waits_for_account,
    )
    .await;
    let error = assert_asks_to_reconnect(&app, &token, &failed).await;
    assert!(
        error.contains("10015"),
        "names Discord's Unknown Webhook: {error}"
    );
    assert!(!error.contains(WEBHOOK_TOKEN), "{error}");
    assert!(discord.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_over_2000_characters_is_refused_at_scheduling() {
    let Setup {
        app,
        discord,
        token,
        webhook,
    } = setup().await;
    connect(&app, &token, &webhook).await;
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";
    let refused = app
        .gql(
            Some(&token),
            create,
            json!({"i": {"content": "x".repeat(2001), "platforms": ["discord"], "scheduledAt": in_ms(60_000)}}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("content"));
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.to_lowercase().contains("discord"), "{message}");
    app.ok(
        &token,
        create,
        json!({"i": {"content": "x".repeat(2000), "platforms": ["discord"], "scheduledAt": in_ms(60_000)}}),
    )
    .await;
    assert!(discord.executions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_lost_answer_needs_review_without_a_second_message() {
    let Setup {
        app,
        discord,
        token,
        webhook,
    } = setup().await;
    connect(&app, &token, &webhook).await;
    discord.lose_next_answer();
    let review = publish(
        &app,
        &token,
        json!({"content": "did it go out?", "platforms": ["discord"], "scheduledAt": in_ms(200)}),
        |p| p["targets"][0]["status"] == "NEEDS_REVIEW",
    )
    .await;
    let error = review["targets"][0]["lastError"].as_str().expect("error");
    assert!(
        error.contains("may have published it") && error.contains("markPublished"),
        "{error}"
    );
    assert!(!error.contains(WEBHOOK_TOKEN), "{error}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(discord.executions().len(), 1, "never executed twice");
    assert_eq!(discord.messages().len(), 1, "exactly one message");
}

/// A worker killed while Discord holds its answer: the target becomes NEEDS_REVIEW (the
/// plugin is not idempotent) and Discord has exactly one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_worker_killed_mid_publish_needs_review_with_one_message() {
    let discord = Discord::start().await;
    let host = plugin_host(&[("discord.com:443", discord.base())]).await;
    let platforms = host.clone();
    let app = TestApp::spawn_with_plugins(platforms).await;
    let token = app.token("alice", None, &["admin"]);
    let webhook = discord.create_webhook(WEBHOOK_ID, WEBHOOK_TOKEN, "Herald News");
    connect(&app, &token, &webhook).await;
    let overrides = [format!("discord.com={}", discord.base())];
    discord.hang_next();
    review_after_killed_worker(&app, &token, "discord", &overrides, &discord.hung).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(discord.executions().len(), 1, "never executed twice");
    assert_eq!(discord.messages().len(), 1, "exactly one message");
}
