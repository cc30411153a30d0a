//! The token lifecycle: the background refresher renews tokens ahead of expiry, stores a
//! rotated refresh token before it is used again, refreshes once under two replicas,
//! keeps the account through a transient failure, and asks to reconnect (announced on
//! `connectionUpdated`) when the platform refuses the grant.

use std::time::Duration;

use herald_server::token_refresh::{Outcome, Refresher};
use sea_orm::ConnectionTrait;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::{ws_next, ws_send};
use crate::oauth::{OauthSetup, settings, setup, stored};

/// A refresher over the app's services, as a worker process runs it; `db` is the pool it
/// uses (another replica brings its own).
fn refresher(setup: &OauthSetup, db: sea_orm::DatabaseConnection) -> Refresher {
    Refresher::new(
        db,
        setup.app.connections.clone(),
        setup.app.services.plugins.clone().expect("plugins"),
        std::sync::Arc::new(settings(&setup.app.http_url())),
    )
}

/// Moves the connections' expiry to `seconds` from now (due when under the 600 s lead).
async fn expire_in(setup: &OauthSetup, seconds: i64) {
    setup
        .app
        .db
        .execute_unprepared(&format!(
            "UPDATE social_connections SET expires_at = now() + interval '{seconds} seconds'"
        ))
        .await
        .expect("expiry");
}

async fn status(setup: &OauthSetup) -> serde_json::Value {
    setup
        .app
        .ok(
            &setup.admin,
            "{ connections { status statusReason expiresAt } }",
            json!({}),
        )
        .await["connections"][0]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_refreshes_ahead_of_expiry_and_uses_the_rotated_token_next() {
    let setup = setup().await;
    // Granted for two minutes: within the 10-minute lead, so due at once.
    setup.fake.lock().expect("lock").expires_in = Some(120);
    setup.connect().await;
    let first = stored(&setup.app).await;
    setup.fake.lock().expect("lock").expires_in = Some(3_600);

    let stop = CancellationToken::new();
    let job = refresher(&setup, setup.app.services.worker_db.clone()).spawn(stop.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stored(&setup.app).await.access_token == first.access_token {
        assert!(tokio::time::Instant::now() < deadline, "not refreshed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = stored(&setup.app).await;
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "rotated and stored"
    );
    assert_eq!(
        setup.fake.lock().expect("lock").refresh_head,
        second.refresh_token
    );
    let listed = status(&setup).await;
    assert_eq!(listed["status"], "active");
    let expires: chrono::DateTime<chrono::Utc> = listed["expiresAt"]
        .as_str()
        .expect("expiresAt")
        .parse()
        .expect("time");
    assert!(expires - chrono::Utc::now() > chrono::Duration::minutes(55));
    assert_eq!(
        setup.fake.lock().expect("lock").refreshes,
        1,
        "not yet due again"
    );

    // Due again: the job presents the rotated token (the old one would revoke the chain).
    expire_in(&setup, 60).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while setup.fake.lock().expect("lock").refreshes < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not refreshed again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    job.await.expect("job");
    let third = stored(&setup.app).await;
    assert!(
        setup.fake.lock().expect("lock").refresh_head.is_some(),
        "chain intact"
    );
    assert_eq!(
        setup.fake.lock().expect("lock").refresh_head,
        third.refresh_token
    );
    assert_eq!(status(&setup).await["status"], "active");
    assert_eq!(setup.fake.lock().expect("lock").refreshes, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_refresh_a_connection_once() {
    let setup = setup().await;
    setup.connect().await;
    expire_in(&setup, 60).await;
    // A slow platform: both replicas look while the first refresh is under way.
    setup.fake.lock().expect("lock").refresh_delay = Duration::from_millis(400);
    let other_pool = herald_server::db::connect_worker(&setup.app.database_url, 2)
        .await
        .expect("another replica's pool");
    let (one, two) = (
        refresher(&setup, setup.app.services.worker_db.clone()),
        refresher(&setup, other_pool),
    );
    let (a, b) = tokio::join!(one.round(), two.round());
    let outcomes: Vec<Outcome> = a
        .expect("round")
        .into_iter()
        .chain(b.expect("round"))
        .map(|(_, outcome)| outcome)
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::Refreshed)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(setup.fake.lock().expect("lock").refreshes, 1);
    assert_eq!(status(&setup).await["status"], "active");
    // And once done, neither finds it due.
    assert!(one.round().await.expect("round").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_keeps_the_account_connected() {
    let setup = setup().await;
    setup.connect().await;
    let before = stored(&setup.app).await;
    expire_in(&setup, 60).await;
    setup.fake.lock().expect("lock").fail_refresh = Some((503, 1));
    let job = refresher(&setup, setup.app.services.worker_db.clone());
    let outcomes = job.round().await.expect("round");
    assert!(
        matches!(outcomes.as_slice(), [(_, Outcome::Transient(_))]),
        "{outcomes:?}"
    );
    let listed = status(&setup).await;
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["statusReason"], serde_json::Value::Null);
    assert_eq!(stored(&setup.app).await, before, "nothing changed");
    // The next round succeeds with the same refresh token.
    let outcomes = job.round().await.expect("round");
    assert!(
        matches!(outcomes.as_slice(), [(_, Outcome::Refreshed)]),
        "{outcomes:?}"
    );
    assert_eq!(setup.fake.lock().expect("lock").refreshes, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_grant_asks_to_reconnect_on_the_subscription() {
    let setup = setup().await;
    let connection = setup.connect().await;
    let mut socket = setup.app.ws(&setup.admin).await;
    ws_send(
        &mut socket,
        json!({"id": "c", "type": "subscribe", "payload": {
            "query": "subscription { connectionUpdated { id status statusReason } }"}}),
    )
    .await;
    // Another tenant's subscriber hears nothing of it.
    let stranger = setup.app.token("gus", Some("globex"), &["admin"]);
    let mut theirs = setup.app.ws(&stranger).await;
    ws_send(
        &mut theirs,
        json!({"id": "c", "type": "subscribe", "payload": {
            "query": "subscription { connectionUpdated { id } }"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    expire_in(&setup, 60).await;
    // The platform revoked the grant.
    setup.fake.lock().expect("lock").refresh_head = None;
    let outcomes = refresher(&setup, setup.app.services.worker_db.clone())
        .round()
        .await
        .expect("round");
    assert!(
        matches!(outcomes.as_slice(), [(_, Outcome::ReconnectRequired(_))]),
        "{outcomes:?}"
    );
    let message = ws_next(&mut socket).await;
    assert_eq!(message["type"], "next", "{message}");
    let updated = &message["payload"]["data"]["connectionUpdated"];
    assert_eq!(updated["id"], connection["id"]);
    assert_eq!(updated["status"], "reconnect_required");
    let reason = updated["statusReason"].as_str().expect("reason");
    assert!(reason.contains("invalid_grant"), "{reason}");
    assert_eq!(status(&setup).await["status"], "reconnect_required");
    let quiet = tokio::time::timeout(Duration::from_millis(300), ws_next(&mut theirs)).await;
    assert!(quiet.is_err(), "another tenant was told: {quiet:?}");
    // No further refresh is tried for it.
    let outcomes = refresher(&setup, setup.app.services.worker_db.clone())
        .round()
        .await
        .expect("round");
    assert!(outcomes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_with_an_expired_token_refreshes_it_first() {
    let mut setup = setup().await;
    setup.connect().await;
    let before = stored(&setup.app).await;
    let host = setup.app.services.plugins.clone().expect("plugins");
    let mut publishers = herald_server::publish::PublisherRegistry::new();
    publishers.register(
        "example",
        std::sync::Arc::new(herald_server::publish::plugin::PluginPublisher::new(
            host,
            setup.app.connections.clone(),
        )),
    );
    setup.app = setup.app.with_worker(publishers).await;
    setup
        .app
        .db
        .execute_unprepared(
            "UPDATE social_account_tokens SET expires_at = now() - interval '1 second'",
        )
        .await
        .expect("expire");
    let post = setup
        .app
        .create_post(
            &setup.admin,
            json!({"content": "fresh", "platforms": ["example"], "scheduledAt": crate::harness::in_ms(200)}),
        )
        .await;
    setup
        .app
        .wait_for_post(
            &setup.admin,
            post["id"].as_str().expect("id"),
            Duration::from_secs(15),
            |p| p["status"] == "PUBLISHED",
        )
        .await;
    let fake = setup.fake.lock().expect("lock");
    assert_eq!(fake.refreshes, 1);
    assert_eq!(fake.posts.len(), 1);
    assert_ne!(
        fake.posts[0].0, before.access_token,
        "published with the refreshed token, not the expired one"
    );
    assert_eq!(
        Some(&fake.posts[0].0),
        fake.access.iter().find(|t| **t == fake.posts[0].0)
    );
}
