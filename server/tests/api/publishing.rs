//! Publishing end to end in one process: GraphQL → Postgres → Redis queue → worker →
//! recording publisher → outcome back in GraphQL.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{SecondsFormat, Utc};
use herald_server::publish::recording::RecordingPublisher;
use herald_server::publish::{PublishFailure, PublisherRegistry};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::harness::{
    TestApp, assert_error, fast_worker, post_statuses_until, subscribe_post, ws_next, ws_send,
};

const PLATFORMS: [&str; 3] = ["x", "bluesky", "mastodon"];

async fn app_with(publisher: Arc<RecordingPublisher>) -> TestApp {
    let mut registry = PublisherRegistry::new();
    for platform in PLATFORMS {
        registry.register(platform, publisher.clone());
    }
    TestApp::spawn_with_worker(registry, fast_worker()).await
}

fn in_ms(ms: i64) -> String {
    (Utc::now() + chrono::Duration::milliseconds(ms)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |post| post["status"] == status
}

async fn schedule(
    app: &TestApp,
    token: &str,
    platforms: &[&str],
    at: &str,
    extra: Value,
) -> String {
    let mut input = json!({"content": "going out", "platforms": platforms, "scheduledAt": at});
    if let Value::Object(fields) = extra {
        for (k, v) in fields {
            input[k] = v;
        }
    }
    app.create_post(token, input).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn attempts_outcomes(app: &TestApp, post_id: &str) -> Vec<String> {
    app.db
        .query_all(Statement::from_string(
            app.db.get_database_backend(),
            format!(
                "SELECT a.outcome FROM publish_attempts a JOIN post_targets t ON t.id = a.target_id
                  WHERE t.post_id = '{post_id}' ORDER BY a.started_at"
            ),
        ))
        .await
        .expect("attempts")
        .iter()
        .map(|row| {
            row.try_get::<Option<String>>("", "outcome")
                .expect("outcome")
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn scheduled_post_is_published_once_never_early() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    let app = app_with(publisher.clone()).await;
    let token = app.token("alice", None, &["admin"]);
    let at = in_ms(1_200);
    let id = schedule(&app, &token, &["x", "bluesky"], &at, json!({})).await;

    let post = app
        .wait_for_post(&token, &id, Duration::from_secs(15), status_is("PUBLISHED"))
        .await;
    let due: SystemTime = chrono::DateTime::parse_from_rfc3339(&at)
        .expect("at")
        .into();
    let calls = publisher.calls();
    assert_eq!(calls.len(), 2, "one call per target");
    for call in &calls {
        assert!(call.started_at >= due, "published before its due time");
        assert_eq!(call.request.content, "going out");
    }
    assert_ne!(
        calls[0].request.idempotency_key,
        calls[1].request.idempotency_key
    );
    for target in post["targets"].as_array().expect("targets") {
        assert_eq!(target["status"], "PUBLISHED");
        assert_eq!(target["attempts"], 1);
        assert!(
            target["platformUrl"]
                .as_str()
                .expect("url")
                .starts_with("https://")
        );
    }
    assert!(post["postedAt"].is_string());
    assert_eq!(
        attempts_outcomes(&app, &id).await,
        ["published", "published"]
    );

    let stats = app
        .ok(
            &token,
            "{ queueStats { scheduled active dead lateness { count p50Ms p99Ms maxMs } } }",
            json!({}),
        )
        .await;
    let stats = &stats["queueStats"];
    assert_eq!(
        (stats["scheduled"].as_u64(), stats["active"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(stats["lateness"]["count"], 2);
}

#[tokio::test]
async fn rate_limit_retries_after_the_platforms_delay() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    publisher.script(
        "x",
        vec![Err(PublishFailure::RateLimited {
            retry_after: Some(Duration::from_millis(1_000)),
            message: "429 Too Many Requests".into(),
            response_code: Some(429),
        })],
    );
    let app = app_with(publisher.clone()).await;
    let token = app.token("alice", None, &[]);
    let id = schedule(&app, &token, &["x"], &in_ms(200), json!({})).await;
    let retrying = app
        .wait_for_post(&token, &id, Duration::from_secs(10), |p| {
            p["targets"][0]["status"] == "RETRYING"
        })
        .await;
    assert!(
        retrying["targets"][0]["lastError"]
            .as_str()
            .expect("error")
            .contains("429")
    );
    let post = app
        .wait_for_post(&token, &id, Duration::from_secs(10), status_is("PUBLISHED"))
        .await;
    assert_eq!(post["targets"][0]["attempts"], 2);
    let calls = publisher.calls();
    assert_eq!(calls.len(), 2);
    let gap = calls[1]
        .started_at
        .duration_since(calls[0].started_at)
        .expect("ordered");
    assert!(
        gap >= Duration::from_millis(1_000),
        "Retry-After honoured: {gap:?}"
    );
    assert_eq!(
        calls[0].request.idempotency_key,
        calls[1].request.idempotency_key
    );
    assert_eq!(
        attempts_outcomes(&app, &id).await,
        ["rate_limited", "published"]
    );
}

#[tokio::test]
async fn exhausted_retries_dead_letter_and_retry_post_recovers() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    let failure = || {
        Err(PublishFailure::Retryable {
            message: "503 Service Unavailable".into(),
            response_code: Some(503),
        })
    };
    publisher.script("x", vec![failure(), failure(), failure()]);
    let app = app_with(publisher.clone()).await;
    let admin = app.token("alice", None, &["admin"]);
    let id = schedule(&app, &admin, &["x"], &in_ms(100), json!({})).await;

    let post = app
        .wait_for_post(&admin, &id, Duration::from_secs(15), status_is("FAILED"))
        .await;
    let error = post["targets"][0]["lastError"].as_str().expect("error");
    assert!(error.contains("gave up after 3 attempts"), "{error}");
    assert_eq!(post["targets"][0]["attempts"], 3);
    assert!(
        post["failureReason"]
            .as_str()
            .expect("reason")
            .starts_with("x: ")
    );
    assert_eq!(publisher.call_count(), 3);

    let dead = app
        .ok(
            &admin,
            "{ queueJobs(state: DEAD) { nodes { postId platform attempts error state } } }",
            json!({}),
        )
        .await;
    let nodes = dead["queueJobs"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["postId"], id.as_str());
    assert_eq!(nodes[0]["state"], "DEAD");
    let other = app.token("mallory", None, &["admin"]);
    let hidden = app
        .ok(
            &other,
            "{ queueJobs(state: DEAD) { nodes { postId } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        hidden["queueJobs"]["nodes"],
        json!([]),
        "another tenant's jobs are not listed"
    );

    let retried = app
        .ok(
            &admin,
            "mutation($id: ID!) { retryPost(id: $id) { status targets { status } } }",
            json!({"id": id}),
        )
        .await;
    // The worker may already be on it by the time the targets are read.
    let status = &retried["retryPost"]["targets"][0]["status"];
    assert!(
        ["RETRYING", "PUBLISHING", "PUBLISHED"].contains(&status.as_str().unwrap_or_default()),
        "{status}"
    );
    app.wait_for_post(&admin, &id, Duration::from_secs(10), status_is("PUBLISHED"))
        .await;
    assert_eq!(publisher.call_count(), 4);
    let stats = app.ok(&admin, "{ queueStats { dead } }", json!({})).await;
    assert_eq!(
        stats["queueStats"]["dead"], 0,
        "the retried job left the dead set"
    );
    let again = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { retryPost(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_error(&again, "CONFLICT", None);
}

#[tokio::test]
async fn partial_failure_is_partially_published_not_failed() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    publisher.script(
        "x",
        vec![Err(PublishFailure::Permanent {
            message: "403 the account is suspended".into(),
            response_code: Some(403),
        })],
    );
    let app = app_with(publisher).await;
    let token = app.token("alice", None, &[]);
    let id = schedule(&app, &token, &["x", "bluesky"], &in_ms(100), json!({})).await;
    let post = app
        .wait_for_post(
            &token,
            &id,
            Duration::from_secs(10),
            status_is("PARTIALLY_PUBLISHED"),
        )
        .await;
    let targets = post["targets"].as_array().expect("targets");
    let x = targets.iter().find(|t| t["platform"] == "x").expect("x");
    assert_eq!(x["status"], "FAILED");
    assert!(
        x["lastError"]
            .as_str()
            .expect("error")
            .contains("suspended"),
        "{x}"
    );
    assert_eq!(x["attempts"], 1, "permanent failures are not retried");
    assert!(
        post["failureReason"]
            .as_str()
            .expect("reason")
            .contains("x: 403 the account is suspended")
    );
}

/// Credentials the platform refused: the target waits for the account (no dead letter,
/// no automatic retries, the reason shown), and `retryPost` sends it out again.
#[tokio::test]
async fn a_refused_account_makes_the_target_wait_without_spending_attempts() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    publisher.script(
        "x",
        vec![Err(PublishFailure::AuthExpired {
            message: "401 token revoked".into(),
            response_code: Some(401),
        })],
    );
    let app = app_with(publisher.clone()).await;
    let admin = app.token("alice", None, &["admin"]);
    let id = schedule(&app, &admin, &["x"], &in_ms(100), json!({})).await;
    let post = app
        .wait_for_post(
            &admin,
            &id,
            Duration::from_secs(10),
            crate::harness::waits_for_account,
        )
        .await;
    assert_eq!(post["status"], "QUEUED", "{post}");
    let x = &post["targets"][0];
    assert_eq!(
        x["lastError"],
        "waiting for the x account to be reconnected: 401 token revoked"
    );
    assert_eq!(x["attempts"], 1);
    // Neither retried on its own nor dead-lettered.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(publisher.call_count(), 1);
    let stats = app
        .ok(&admin, "{ queueStats { scheduled dead } }", json!({}))
        .await;
    assert_eq!(stats["queueStats"]["dead"], 0, "{stats}");
    assert_eq!(stats["queueStats"]["scheduled"], 0, "no job: {stats}");

    app.ok(
        &admin,
        "mutation($id: ID!) { retryPost(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    let done = app
        .wait_for_post(&admin, &id, Duration::from_secs(10), status_is("PUBLISHED"))
        .await;
    assert_eq!(done["targets"][0]["attempts"], 2);
    assert!(done["targets"][0]["lastError"].is_null(), "{done}");
    assert_eq!(publisher.call_count(), 2);
}

#[tokio::test]
async fn approval_gates_publishing() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    let app = app_with(publisher.clone()).await;
    let author = app.token("ann", Some("acme"), &[]);
    let approver = app.token("ada", Some("acme"), &["approver"]);
    let id = schedule(
        &app,
        &author,
        &["x"],
        &in_ms(100),
        json!({"approvalRequired": true}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(publisher.call_count(), 0, "not published before approval");
    app.ok(
        &approver,
        "mutation($id: ID!) { approvePost(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    app.wait_for_post(
        &author,
        &id,
        Duration::from_secs(10),
        status_is("PUBLISHED"),
    )
    .await;
    assert_eq!(publisher.call_count(), 1);
}

#[tokio::test]
async fn unscheduled_and_edited_posts_follow_the_latest_state() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    let app = app_with(publisher.clone()).await;
    let token = app.token("alice", None, &[]);
    let dropped = schedule(&app, &token, &["x"], &in_ms(600), json!({})).await;
    app.ok(
        &token,
        "mutation($id: ID!) { unschedulePost(id: $id) { id } }",
        json!({"id": dropped}),
    )
    .await;
    let edited = schedule(&app, &token, &["bluesky"], &in_ms(600), json!({})).await;
    app.ok(
        &token,
        "mutation($id: ID!) { updatePost(id: $id, input: {content: \"edited copy\"}) { id } }",
        json!({"id": edited}),
    )
    .await;
    let moved = schedule(&app, &token, &["mastodon"], &in_ms(600), json!({})).await;
    let later = in_ms(1_800);
    app.ok(
        &token,
        "mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id } }",
        json!({"id": moved, "at": later}),
    )
    .await;

    app.wait_for_post(
        &token,
        &edited,
        Duration::from_secs(10),
        status_is("PUBLISHED"),
    )
    .await;
    app.wait_for_post(
        &token,
        &moved,
        Duration::from_secs(10),
        status_is("PUBLISHED"),
    )
    .await;
    let calls = publisher.calls();
    assert_eq!(calls.len(), 2, "the unscheduled post never went out");
    let edited_call = calls
        .iter()
        .find(|c| c.request.platform == "bluesky")
        .expect("bluesky");
    assert_eq!(edited_call.request.content, "edited copy");
    let moved_call = calls
        .iter()
        .find(|c| c.request.platform == "mastodon")
        .expect("mastodon");
    let later: SystemTime = chrono::DateTime::parse_from_rfc3339(&later)
        .expect("later")
        .into();
    assert!(
        moved_call.started_at >= later,
        "rescheduled later: not published at the old time"
    );
    let post = app
        .ok(
            &token,
            "query($id: ID!) { post(id: $id) { status } }",
            json!({"id": dropped}),
        )
        .await;
    assert_eq!(post["post"]["status"], "DRAFT");
}

#[tokio::test]
async fn subscription_sees_publishing_transitions_in_order() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    let app = app_with(publisher).await;
    let token = app.token("alice", None, &[]);
    let draft = app
        .create_post(&token, json!({"content": "live", "platforms": ["x"]}))
        .await;
    let id = draft["id"].as_str().expect("id");

    let mut socket = app.ws(&token).await;
    subscribe_post(&mut socket, id).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.ok(
        &token,
        "mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id } }",
        json!({"id": id, "at": in_ms(300)}),
    )
    .await;

    let statuses = post_statuses_until(&mut socket, "PUBLISHED").await;
    assert_eq!(statuses, ["SCHEDULED", "PUBLISHING", "PUBLISHED"]);
}

#[tokio::test]
async fn queue_stats_subscription_follows_the_queue() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    publisher.delay("x", Duration::from_millis(2_500));
    let app = app_with(publisher).await;
    let admin = app.token("alice", None, &["admin"]);
    let mut socket = app.ws(&admin).await;
    ws_send(
        &mut socket,
        json!({"id": "q", "type": "subscribe", "payload": {
            "query": "subscription { queueStatsUpdated { scheduled active dead } }"}}),
    )
    .await;
    let mut next = async || loop {
        let message = ws_next(&mut socket).await;
        if message["type"] == "next" {
            return message["payload"]["data"]["queueStatsUpdated"].clone();
        }
    };
    assert_eq!(
        next().await,
        json!({"scheduled": 0, "active": 0, "dead": 0})
    );
    schedule(&app, &admin, &["x"], &in_ms(1_500), json!({})).await;
    assert_eq!(
        next().await,
        json!({"scheduled": 1, "active": 0, "dead": 0})
    );
    assert_eq!(
        next().await,
        json!({"scheduled": 0, "active": 1, "dead": 0})
    );
    assert_eq!(
        next().await,
        json!({"scheduled": 0, "active": 0, "dead": 0})
    );
}

#[tokio::test]
async fn concurrency_is_limited_per_platform() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    publisher.delay("x", Duration::from_millis(300));
    publisher.delay("bluesky", Duration::from_millis(300));
    let mut registry = PublisherRegistry::new();
    for platform in PLATFORMS {
        registry.register(platform, publisher.clone());
    }
    let config = herald_server::worker::WorkerConfig {
        concurrency: 3,
        platform_concurrency: 2,
        ..fast_worker()
    };
    let app = TestApp::spawn_with_worker(registry, config).await;
    let token = app.token("alice", None, &[]);
    let at = in_ms(300);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(schedule(&app, &token, &["x"], &at, json!({})).await);
        ids.push(schedule(&app, &token, &["bluesky"], &at, json!({})).await);
    }
    for id in &ids {
        app.wait_for_post(&token, id, Duration::from_secs(20), status_is("PUBLISHED"))
            .await;
    }
    assert_eq!(publisher.call_count(), 10);
    assert_eq!(
        publisher.max_in_flight("x"),
        2,
        "per-platform limit reached, not passed"
    );
    assert_eq!(publisher.max_in_flight("bluesky"), 2);
}

/// A post URL a publisher reports is shown to frontends as a link: one that is not an
/// http(s) URL (a self-hosted instance answering `javascript:…`) is not stored, and the
/// target is still published.
#[tokio::test]
async fn a_reported_post_url_that_is_not_http_is_not_stored() {
    let publisher = Arc::new(RecordingPublisher::new(false));
    publisher.script(
        "x",
        vec![Ok(herald_server::publish::Receipt {
            platform_post_id: "42".into(),
            url: Some("javascript:alert(document.cookie)".into()),
            response_code: Some(200),
        })],
    );
    let app = app_with(publisher.clone()).await;
    let token = app.token("alice", None, &[]);
    let id = schedule(&app, &token, &["x", "bluesky"], &in_ms(300), json!({})).await;
    let post = app
        .wait_for_post(&token, &id, Duration::from_secs(15), status_is("PUBLISHED"))
        .await;
    let targets = post["targets"].as_array().expect("targets");
    let url_of = |platform: &str| {
        targets
            .iter()
            .find(|t| t["platform"] == platform)
            .map(|t| t["platformUrl"].clone())
            .expect("target")
    };
    assert_eq!(url_of("x"), Value::Null, "{post}");
    assert!(
        url_of("bluesky")
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        "{post}"
    );
}
