//! Publisher plugins seen from the API (`platforms`, `validatePost`) and from the command
//! line (`herald plugin check|run`), with the real plugins built by `scripts/test`.

use std::path::PathBuf;

use axum::Router;
use axum::routing::post;
use clap::Parser;
use herald_plugin_host::{HostConfig, PluginHost};
use herald_server::config::{Cli, Command, PluginCommand};
use herald_server::plugins;
use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error};

pub fn built_plugins() -> PathBuf {
    std::env::var_os("HERALD_TEST_PLUGIN_DIR")
        .map(PathBuf::from)
        .expect("HERALD_TEST_PLUGIN_DIR is not set: run the tests with scripts/test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platforms_and_validate_post_use_the_loaded_plugins() {
    let host = PluginHost::load(HostConfig::new(built_plugins()))
        .await
        .expect("load plugins");
    let app = TestApp::spawn_with_plugins(host).await;
    let token = app.token("alice", None, &["admin"]);

    let data = app
        .ok(
            &token,
            "{ platforms { id displayName witVersion idempotentPublish limits { maxTextLength textCounting maxMedia media { mimeType maxBytes } } } }",
            json!({}),
        )
        .await;
    let example = data["platforms"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "example"))
        .cloned();
    assert_eq!(
        example,
        Some(json!({
            "id": "example", "displayName": "Example", "witVersion": "0.2.0", "idempotentPublish": true,
            "limits": { "maxTextLength": 500, "textCounting": "GRAPHEMES", "maxMedia": 4, "media": [
                { "mimeType": "image/png", "maxBytes": 5000000 },
                { "mimeType": "image/jpeg", "maxBytes": 5000000 }
            ] }
        }))
    );

    let query = "query($input: ValidatePostInput!) { validatePost(input: $input) { platform valid violations { field code } } }";
    let data = app
        .ok(
            &token,
            query,
            json!({ "input": { "content": "x".repeat(501), "platforms": ["example", "v1"] } }),
        )
        .await;
    assert_eq!(
        data["validatePost"],
        json!([
            { "platform": "example", "valid": false, "violations": [{ "field": "text", "code": "too_long" }] },
            { "platform": "v1", "valid": true, "violations": [] }
        ])
    );
    let body = app
        .gql(
            Some(&token),
            query,
            json!({ "input": { "content": "hi", "platforms": ["myspace"] } }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", Some("platforms"));
    let body = app.gql(None, "{ platforms { id } }", json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", None);
}

/// Parses `herald <args>` as the binary does, and runs the `plugin` subcommand the way
/// `main` does (the binary only prints the JSON and sets the exit code from `ok`).
pub async fn herald(args: &[&str]) -> (bool, Value) {
    let cli = Cli::try_parse_from(std::iter::once("herald").chain(args.iter().copied()))
        .expect("valid command line");
    let report = match cli.command {
        Command::Plugin(PluginCommand::Check { file, sandbox }) => {
            plugins::check(&file, &sandbox).await
        }
        Command::Plugin(PluginCommand::Run {
            file,
            post,
            credentials,
            idempotency_key,
            sandbox,
        }) => {
            plugins::run(
                &file,
                &post,
                credentials.as_deref(),
                &idempotency_key,
                &sandbox,
            )
            .await
        }
        other => panic!("not a plugin command: {other:?}"),
    }
    .expect("plugin command");
    (report["ok"] == true, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_and_run_work_without_a_server() {
    let plugins = built_plugins();
    let example = plugins.join("example.wasm");
    let example = example.to_str().expect("UTF-8 path");

    let (ok, report) = herald(&["plugin", "check", example]).await;
    assert!(ok, "{report}");
    assert_eq!(report["plugin"]["platform"], "example");
    assert_eq!(report["allowed_hosts"], json!(["api.example.com:443"]));

    let app = Router::new().route(
        "/v1/posts",
        post(|| async { axum::Json(json!({ "id": "9", "url": "https://example.social/p/9" })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });

    let dir = std::env::temp_dir().join(format!("herald-plugin-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let post = dir.join("post.json");
    std::fs::write(&post, r#"{"text": "hello"}"#).expect("post");
    let long = dir.join("long.json");
    std::fs::write(&long, json!({ "text": "x".repeat(501) }).to_string()).expect("post");
    let creds = dir.join("creds.json");
    std::fs::write(&creds, r#"{"access_token": "t0k3n-abc"}"#).expect("creds");
    let route = format!("api.example.com=http://{address}");
    let run = async |post: &PathBuf| {
        herald(&[
            "plugin",
            "run",
            example,
            "--post",
            post.to_str().expect("UTF-8"),
            "--credentials",
            creds.to_str().expect("UTF-8"),
            "--plugin-host-overrides",
            &route,
        ])
        .await
    };

    let (ok, report) = run(&post).await;
    assert!(ok, "{report}");
    assert_eq!(
        report["receipt"],
        json!({ "platform_post_id": "9", "url": "https://example.social/p/9" })
    );
    let (ok, report) = run(&long).await;
    assert!(!ok);
    assert_eq!(report["violations"][0]["code"], "too_long", "{report}");
}

/// A plugin that traps fails only its own posts, with the sandbox's reason, and is
/// quarantined (and shown so in `platforms`) after repeated traps; the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapping_plugin_fails_its_posts_and_is_quarantined() {
    use std::sync::Arc;
    use std::time::Duration;

    use herald_server::publish::PublisherRegistry;
    use herald_server::publish::plugin::PluginPublisher;

    let host = PluginHost::load(HostConfig::new(built_plugins()))
        .await
        .expect("load plugins");
    let app = TestApp::spawn_with_worker_and_plugins(
        PublisherRegistry::new(),
        crate::harness::fast_worker(),
        host.clone(),
    )
    .await;
    let mut publishers = PublisherRegistry::new();
    publishers.register(
        "hostile",
        Arc::new(PluginPublisher::new(host, app.connections.clone())),
    );
    let app = app.with_worker(publishers).await;
    let token = hostile_account(&app).await;
    let at = (chrono::Utc::now() + chrono::Duration::milliseconds(200)).to_rfc3339();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let post = app
            .create_post(
                &token,
                json!({"content": "panic", "platforms": ["hostile"], "scheduledAt": at}),
            )
            .await;
        ids.push(post["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        let failed = app
            .wait_for_post(&token, id, Duration::from_secs(20), |p| {
                p["status"] == "FAILED"
            })
            .await;
        let error = failed["targets"][0]["lastError"].as_str().expect("error");
        assert!(
            error.contains("trapped") || error.contains("quarantined"),
            "{error}"
        );
        assert_eq!(failed["targets"][0]["attempts"], 1, "a trap is not retried");
    }
    let platforms = app
        .ok(&token, "{ platforms { id quarantined } }", json!({}))
        .await;
    let hostile = platforms["platforms"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "hostile"))
        .cloned()
        .expect("hostile listed");
    assert_eq!(hostile["quarantined"], true);
    let example = platforms["platforms"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "example"))
        .cloned()
        .expect("example listed");
    assert_eq!(example["quarantined"], false);
}

/// Gives `alice` a hostile account (the hostile plugin refuses every credential, so it is
/// stored directly); returns her token.
async fn hostile_account(app: &TestApp) -> String {
    let alice = herald_server::domain::actor::Actor {
        user_id: "alice".into(),
        tenant_id: "user:alice".into(),
        roles: vec![],
        operator: false,
    };
    herald_server::db::tenant::scope(
        "user:alice",
        app.connections.store(
            &alice,
            "hostile",
            "acct-1",
            "Hostile",
            &herald_plugin_host::Credentials::default(),
        ),
    )
    .await
    .expect("seed connection");
    app.token("alice", None, &["admin"])
}

/// A Herald with the test plugins (plugin calls cut off after `call_timeout`), the token
/// of `alice`, who has a hostile account, and the id of her post scheduled on it.
async fn scheduled_hostile_post(call_timeout: std::time::Duration) -> (TestApp, String, String) {
    let mut config = HostConfig::new(built_plugins());
    config.call_timeout = call_timeout;
    let host = PluginHost::load(config).await.expect("load plugins");
    let app = TestApp::spawn_with_plugins(host).await;
    let token = hostile_account(&app).await;
    let post = app
        .create_post(
            &token,
            json!({"content": "fine", "platforms": ["hostile"], "scheduledAt": crate::harness::days_from_now(2)}),
        )
        .await;
    assert_eq!(post["status"], "SCHEDULED", "{post}");
    let id = post["id"].as_str().expect("id").to_owned();
    (app, token, id)
}

/// The order in which a test's concurrent requests were answered.
type Answers = std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>;

/// Starts `updatePost(id, {content})` in the background; when it is answered, `"edit"` is
/// added to `answers`. Returns once the edit has read the post (its first statement on
/// `social_posts`), so that its plugin check runs on the post as it was then.
async fn start_edit(
    app: &TestApp,
    token: &str,
    id: &str,
    content: &str,
    answers: &Answers,
) -> tokio::task::JoinHandle<Value> {
    let (base, token, answers) = (app.http_url(), token.to_owned(), answers.clone());
    let body = json!({
        "query": "mutation($id: ID!, $content: String!) { updatePost(id: $id, input: {content: $content}) { content status version } }",
        "variables": {"id": id, "content": content},
    });
    let before = app.statements();
    let edit = tokio::spawn(async move {
        let answer = reqwest::Client::new()
            .post(format!("{base}/graphql"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("send")
            .json::<Value>()
            .await
            .expect("json");
        answers.lock().expect("answers").push("edit");
        answer
    });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !app
        .statements_since(before)
        .iter()
        .any(|sql| sql.contains("social_posts"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edit did not read the post"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    edit
}

/// Unschedules post `id`; returns the answer's `unschedulePost` (and adds `"unschedule"`
/// to `answers`).
async fn unschedule(app: &TestApp, token: &str, id: &str, answers: &Answers) -> Value {
    let answer = app
        .ok(
            token,
            "mutation($id: ID!) { unschedulePost(id: $id) { status version } }",
            json!({"id": id}),
        )
        .await;
    answers.lock().expect("answers").push("unschedule");
    answer["unschedulePost"].clone()
}

/// A scheduled post's plugin checks run before its row is locked: while a plugin takes
/// its whole deadline to check an edit, other changes to the post go through, and the
/// edit that failed its check writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_plugin_check_does_not_hold_the_post() {
    let deadline = std::time::Duration::from_secs(6);
    let (app, token, id) = scheduled_hostile_post(deadline).await;
    let answers = Answers::default();
    // The plugin's check of this content spins until the deadline.
    let edit = start_edit(&app, &token, &id, "slow-check", &answers).await;
    let unscheduled = unschedule(&app, &token, &id, &answers).await;
    assert_eq!(unscheduled["status"], "DRAFT");

    let refused = edit.await.expect("edit task");
    // The edit read the post while it was scheduled, so its check ran (and failed)...
    assert_error(&refused, "BAD_USER_INPUT", Some("platforms"));
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("could not check"), "{refused}");
    // ...and holding the row during the check would have made the unschedule wait for it.
    assert_eq!(
        *answers.lock().expect("answers"),
        ["unschedule", "edit"],
        "the unschedule waited for the edit's check"
    );
    let after = app
        .ok(
            &token,
            "query($id: ID!) { post(id: $id) { content status version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(after["post"]["content"], "fine");
    assert_eq!(after["post"]["status"], "DRAFT");
    assert_eq!(after["post"]["version"], unscheduled["version"]);
}

/// An edit whose post changes while its check runs is worked out again on the new
/// version: here the post was unscheduled meanwhile, so the edit lands on the draft.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_checked_while_the_post_changed_is_redone_on_the_new_version() {
    let (app, token, id) = scheduled_hostile_post(std::time::Duration::from_secs(20)).await;
    let answers = Answers::default();
    // The plugin takes four seconds to accept this content.
    let edit = start_edit(&app, &token, &id, "slow-ok", &answers).await;
    let unscheduled = unschedule(&app, &token, &id, &answers).await;
    assert_eq!(unscheduled["status"], "DRAFT");

    let edited = edit.await.expect("edit task");
    // The edit read the post while it was scheduled, its check was still running when the
    // unschedule was answered, and the post had changed before the edit could lock it.
    assert_eq!(*answers.lock().expect("answers"), ["unschedule", "edit"]);
    let post = &edited["data"]["updatePost"];
    assert_eq!(post["content"], "slow-ok", "{edited}");
    assert_eq!(post["status"], "DRAFT", "{edited}");
    let unscheduled_version = unscheduled["version"].as_i64().expect("version");
    assert_eq!(post["version"].as_i64(), Some(unscheduled_version + 1));
}

/// A time that cannot be scheduled is refused before any plugin is asked: the hostile
/// plugin would spin until its deadline on this content and then answer "could not check".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_time_is_refused_before_the_plugin_checks() {
    let (app, token, id) = scheduled_hostile_post(std::time::Duration::from_secs(20)).await;
    unschedule(&app, &token, &id, &Answers::default()).await;
    app.ok(
        &token,
        "mutation($id: ID!) { updatePost(id: $id, input: {content: \"slow-check\"}) { id } }",
        json!({"id": id}),
    )
    .await;
    let refused = app
        .gql(
            Some(&token),
            "mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id } }",
            json!({"id": id, "at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("scheduledAt"));
}

/// A publish's checkpoints live in Postgres: a later attempt of the same publish (same
/// target, same idempotency key) reads what an earlier one saved, through another store
/// object as a restarted worker would; another idempotency key (an edited post) starts
/// afresh; a publish keeps at most 16 names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_persist_across_attempts_of_one_publish_only() {
    use herald_plugin_host::{Post, PublishFailure, PublishRequest};
    use herald_server::db::checkpoints::PublishCheckpoints;
    use std::sync::Arc;

    let host = PluginHost::load(HostConfig::new(built_plugins()))
        .await
        .expect("load plugins");
    let app = TestApp::spawn_with_plugins(host.clone()).await;
    let token = hostile_account(&app).await;
    let post = app
        .create_post(
            &token,
            json!({"content": "count", "platforms": ["hostile"]}),
        )
        .await;
    let target: uuid::Uuid = post["targets"][0]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("target id");
    let publish = |text: &str, key: &str| {
        let request = PublishRequest {
            post: Post {
                text: text.into(),
                ..Post::default()
            },
            credentials: herald_plugin_host::Credentials::default(),
            idempotency_key: key.into(),
        };
        let store = PublishCheckpoints::new(app.services.db.clone(), "user:alice", target, key);
        let host = host.clone();
        async move {
            host.publish_resumable("hostile", request, Arc::new(store))
                .await
                .map(|receipt| receipt.platform_post_id)
        }
    };
    assert_eq!(publish("count", "key-v1").await, Ok("1".to_owned()));
    assert_eq!(publish("count", "key-v1").await, Ok("2".to_owned()));
    assert_eq!(publish("count", "key-v2").await, Ok("1".to_owned()));
    assert_eq!(publish("count", "key-v1").await, Ok("3".to_owned()));
    match publish("checkpoint-many", "key-v3").await {
        Err(PublishFailure::Permanent { message }) => {
            assert!(message.contains("at most 16 checkpoints"), "{message}")
        }
        other => panic!("a seventeenth checkpoint was kept: {other:?}"),
    }
    let kept: i64 = {
        use sea_orm::{ConnectionTrait, Statement};
        app.db
            .query_one(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT count(*) AS n FROM publish_checkpoints
                      WHERE target_id = '{target}' AND idempotency_key = 'key-v3'"
                ),
            ))
            .await
            .expect("count")
            .expect("row")
            .try_get("", "n")
            .expect("n")
    };
    assert_eq!(kept, 16, "the names saved before the refusal stay, no more");
}

/// `validatePost` tells, for the platforms that download media themselves (their manifest
/// says `media_by_url`), that Herald's public URL is a loopback address platforms cannot
/// fetch from; platforms whose plugin uploads the bytes, and posts without media, are not
/// told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_post_says_when_platforms_cannot_fetch_heralds_media() {
    let host = PluginHost::load(HostConfig::new(built_plugins()))
        .await
        .expect("load plugins");
    let app = TestApp::spawn_with_settings(host, |base| {
        let media = herald_server::media::MediaConfig {
            public_url: Some(base.to_owned()),
            ..crate::harness::test_media()
        };
        (Default::default(), media)
    })
    .await;
    let token = app.token("alice", None, &["admin"]);
    let query = "query($input: ValidatePostInput!) { validatePost(input: $input) { platform valid violations { field code message } } }";
    let media = json!([{ "url": "https://cdn.example.org/a.png", "mimeType": "image/png" }]);
    let data = app
        .ok(
            &token,
            query,
            json!({ "input": { "content": "hello", "media": media, "platforms": ["threads", "mastodon"] } }),
        )
        .await;
    let verdicts = data["validatePost"].as_array().expect("verdicts");
    let threads = &verdicts[0];
    assert_eq!(threads["platform"], "threads");
    assert_eq!(threads["valid"], false, "{threads}");
    let violation = &threads["violations"][0];
    assert_eq!(violation["field"], "media");
    assert_eq!(violation["code"], "media_unreachable");
    let message = violation["message"].as_str().expect("message");
    assert!(
        message.contains("Threads downloads media") && message.contains("loopback"),
        "{message}"
    );
    assert_eq!(
        verdicts[1],
        json!({ "platform": "mastodon", "valid": true, "violations": [] })
    );

    let data = app
        .ok(
            &token,
            query,
            json!({ "input": { "content": "hello", "platforms": ["threads"] } }),
        )
        .await;
    assert_eq!(data["validatePost"][0]["valid"], true, "{data}");
}
