//! Queue operations stop at the tenant: a tenant's admin pauses, resumes, counts, lists
//! and clears its own jobs only; the instance-wide operations are for the operators
//! (`HERALD_OPERATORS`) alone, whatever roles a tenant's token claims.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use herald_server::publish::recording::RecordingPublisher;
use herald_server::publish::{PublishFailure, PublisherRegistry};
use serde_json::{Value, json};

use crate::harness::{OPERATOR, TestApp, assert_error, fast_worker};

async fn app_with(publisher: Arc<RecordingPublisher>) -> TestApp {
    let mut registry = PublisherRegistry::new();
    for platform in ["x", "bluesky"] {
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

async fn schedule(app: &TestApp, token: &str, content: &str, at: &str) -> String {
    let input = json!({"content": content, "platforms": ["x"], "scheduledAt": at});
    app.create_post(token, input).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

const STATS: &str = "{ queueStats { scope scheduled paused dead globallyPaused pausedPlatforms \
                     tenantPaused tenantPausedPlatforms } }";

#[tokio::test]
async fn a_tenant_admin_pauses_only_its_tenant_and_operators_pause_the_instance() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    let app = app_with(publisher.clone()).await;
    let acme = app.token("ann", Some("acme"), &["admin"]);
    let acme_member = app.token("carl", Some("acme"), &["approver"]);
    let globex = app.token("gus", Some("globex"), &["admin"]);
    let operator = app.token(OPERATOR, None, &[]);

    // A member without the admin role controls nothing; a tenant's admin, whatever
    // roles its token claims, nothing beyond its tenant.
    let denied = app
        .gql(
            Some(&acme_member),
            "mutation { pauseQueue { scope } }",
            json!({}),
        )
        .await;
    assert_error(&denied, "FORBIDDEN", None);
    for instance_wide in [
        "mutation { pauseQueue(scope: INSTANCE) { scope } }",
        "mutation { resumeQueue(scope: INSTANCE) { scope } }",
        "mutation { clearFailedJobs(scope: INSTANCE) }",
        "{ queueStats(scope: INSTANCE) { scheduled } }",
        "{ queueJobs(state: SCHEDULED, scope: INSTANCE) { nodes { targetId } } }",
    ] {
        let denied = app.gql(Some(&globex), instance_wide, json!({})).await;
        assert_error(&denied, "FORBIDDEN", None);
        assert!(denied["data"].is_null(), "{denied}");
    }

    // acme pauses its x: globex's x post goes out, acme's waits.
    let paused = app
        .ok(
            &acme,
            "mutation { pauseQueue(platform: \"x\") { scope pausedPlatforms globallyPaused tenantPaused tenantPausedPlatforms } }",
            json!({}),
        )
        .await;
    assert_eq!(
        paused["pauseQueue"],
        json!({"scope": "TENANT", "pausedPlatforms": [], "globallyPaused": false,
               "tenantPaused": false, "tenantPausedPlatforms": ["x"]})
    );
    let acme_post = schedule(&app, &acme, "acme's", &in_ms(100)).await;
    let globex_post = schedule(&app, &globex, "globex's", &in_ms(100)).await;
    app.wait_for_post(
        &globex,
        &globex_post,
        Duration::from_secs(10),
        status_is("PUBLISHED"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(publisher.call_count(), 1, "only globex's post went out");
    let stats = app.ok(&acme, STATS, json!({})).await;
    assert_eq!(stats["queueStats"]["paused"], 1, "{stats}");
    assert_eq!(stats["queueStats"]["scope"], "TENANT");
    let stats = app.ok(&globex, STATS, json!({})).await;
    assert_eq!(
        stats["queueStats"],
        json!({"scope": "TENANT", "scheduled": 0, "paused": 0, "dead": 0,
               "globallyPaused": false, "pausedPlatforms": [], "tenantPaused": false,
               "tenantPausedPlatforms": []}),
        "globex sees nothing of acme's pause or jobs"
    );
    // globex cannot lift acme's pause: its resume lifts only its own.
    app.ok(
        &globex,
        "mutation { resumeQueue(platform: \"x\") { scope } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(publisher.call_count(), 1);
    app.ok(
        &acme,
        "mutation { resumeQueue(platform: \"x\") { scope } }",
        json!({}),
    )
    .await;
    app.wait_for_post(
        &acme,
        &acme_post,
        Duration::from_secs(10),
        status_is("PUBLISHED"),
    )
    .await;

    // An operator pauses the whole instance: every tenant waits, and sees why.
    let paused = app
        .ok(
            &operator,
            "mutation { pauseQueue(scope: INSTANCE) { scope globallyPaused tenantPaused } }",
            json!({}),
        )
        .await;
    assert_eq!(
        paused["pauseQueue"],
        json!({"scope": "INSTANCE", "globallyPaused": true, "tenantPaused": null})
    );
    let later = schedule(&app, &globex, "later", &in_ms(100)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(publisher.call_count(), 2);
    let stats = app.ok(&globex, STATS, json!({})).await;
    assert_eq!(stats["queueStats"]["globallyPaused"], true, "{stats}");
    assert_eq!(stats["queueStats"]["paused"], 1, "{stats}");
    app.ok(
        &operator,
        "mutation { resumeQueue(scope: INSTANCE) { globallyPaused } }",
        json!({}),
    )
    .await;
    app.wait_for_post(
        &globex,
        &later,
        Duration::from_secs(10),
        status_is("PUBLISHED"),
    )
    .await;
}

#[tokio::test]
async fn dead_letters_and_job_pages_are_the_tenants_own() {
    let publisher = Arc::new(RecordingPublisher::new(true));
    let refused = || {
        Err(PublishFailure::Permanent {
            message: "400 duplicate".into(),
            response_code: Some(400),
        })
    };
    publisher.script("x", vec![refused(), refused()]);
    let app = app_with(publisher).await;
    let acme = app.token("ann", Some("acme"), &["admin"]);
    let acme_member = app.token("carl", Some("acme"), &[]);
    let globex = app.token("gus", Some("globex"), &["admin"]);
    let operator = app.token(OPERATOR, None, &[]);
    for token in [&acme, &globex] {
        let id = schedule(&app, token, "refused", &in_ms(50)).await;
        app.wait_for_post(token, &id, Duration::from_secs(10), status_is("FAILED"))
            .await;
    }
    let dead = "{ queueJobs(state: DEAD) { nodes { postId error } pageInfo { hasNextPage } } }";
    for token in [&acme, &globex] {
        let page = app.ok(token, dead, json!({})).await;
        assert_eq!(page["queueJobs"]["nodes"].as_array().map(Vec::len), Some(1));
    }

    // Clearing is the caller's tenant's only, and needs the admin role.
    let denied = app
        .gql(
            Some(&acme_member),
            "mutation { clearFailedJobs }",
            json!({}),
        )
        .await;
    assert_error(&denied, "FORBIDDEN", None);
    let cleared = app
        .ok(&acme, "mutation { clearFailedJobs }", json!({}))
        .await;
    assert_eq!(cleared["clearFailedJobs"], 1);
    let page = app.ok(&acme, dead, json!({})).await;
    assert_eq!(page["queueJobs"]["nodes"], json!([]));
    let page = app.ok(&globex, dead, json!({})).await;
    assert_eq!(page["queueJobs"]["nodes"].as_array().map(Vec::len), Some(1));
    let stats = app.ok(&globex, STATS, json!({})).await;
    assert_eq!(stats["queueStats"]["dead"], 1);

    // Pages filter by tenant before they page: globex's many jobs neither show in acme's
    // pages nor make them look longer.
    for n in 0..5 {
        schedule(&app, &globex, &format!("later {n}"), &in_ms(3_600_000)).await;
    }
    let scheduled = "query($after: String) { queueJobs(state: SCHEDULED, first: 2, after: $after) { nodes { postId } pageInfo { hasNextPage endCursor } } }";
    let page = app.ok(&acme, scheduled, json!({})).await;
    assert_eq!(
        page["queueJobs"]["nodes"],
        json!([]),
        "acme has no scheduled job"
    );
    assert_eq!(page["queueJobs"]["pageInfo"]["hasNextPage"], false);
    let mut seen = 0;
    let mut after = Value::Null;
    loop {
        let page = app.ok(&globex, scheduled, json!({"after": after})).await;
        seen += page["queueJobs"]["nodes"].as_array().map_or(0, Vec::len);
        if page["queueJobs"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["queueJobs"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, 5, "every one of globex's jobs, over pages");
    let stats = app.ok(&globex, STATS, json!({})).await;
    assert_eq!(stats["queueStats"]["scheduled"], 5);

    // The operator sees and clears the instance's.
    let stats = app
        .ok(
            &operator,
            "{ queueStats(scope: INSTANCE) { scope scheduled dead } }",
            json!({}),
        )
        .await;
    assert_eq!(
        stats["queueStats"],
        json!({"scope": "INSTANCE", "scheduled": 5, "dead": 1})
    );
    let cleared = app
        .ok(
            &operator,
            "mutation { clearFailedJobs(scope: INSTANCE) }",
            json!({}),
        )
        .await;
    assert_eq!(cleared["clearFailedJobs"], 1);
}
