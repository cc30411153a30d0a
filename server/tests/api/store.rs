//! The worker's compare-and-set against the real Postgres, called directly (the SIGKILL
//! tests of processes.rs exercise it only through whole processes): a target is started
//! by one attempt at the job's version, and only the attempt holding it records an
//! outcome.

use chrono::Utc;
use herald_server::domain::status::TargetStatus;
use herald_server::worker::store::{AttemptResult, PublishStore, StartRequest};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{TestApp, days_from_now};

/// A scheduled post's one target: (post id, target id, queue version).
async fn scheduled_target(app: &TestApp, token: &str, content: &str) -> (Uuid, Uuid, i32) {
    let post = app
        .create_post(
            token,
            json!({"content": content, "platforms": ["x"], "scheduledAt": days_from_now(1)}),
        )
        .await;
    assert_eq!(post["status"], "SCHEDULED", "{post}");
    let post_id: Uuid = post["id"].as_str().expect("id").parse().expect("uuid");
    let target_id: Uuid = post["targets"][0]["id"]
        .as_str()
        .expect("target id")
        .parse()
        .expect("uuid");
    let row = app
        .db
        .query_one(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT queue_version FROM post_targets WHERE id = $1",
            [target_id.into()],
        ))
        .await
        .expect("query")
        .expect("row");
    (
        post_id,
        target_id,
        row.try_get("", "queue_version").expect("version"),
    )
}

/// One row of `sql` (a single JSON column `j`) as JSON.
async fn json_of(app: &TestApp, sql: &str, id: Uuid) -> Value {
    app.db
        .query_one(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            sql,
            [id.into()],
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get::<Option<Value>>("", "j")
        .expect("json")
        .unwrap_or(Value::Null)
}

/// Everything a finish may write about a target: its row, its post's row, its attempts.
async fn written(app: &TestApp, post_id: Uuid, target_id: Uuid) -> (Value, Value, Value) {
    (
        json_of(
            app,
            "SELECT row_to_json(t) AS j FROM post_targets t WHERE id = $1",
            target_id,
        )
        .await,
        json_of(
            app,
            "SELECT row_to_json(p) AS j FROM social_posts p WHERE id = $1",
            post_id,
        )
        .await,
        json_of(
            app,
            "SELECT json_agg(a ORDER BY a.id) AS j FROM publish_attempts a WHERE target_id = $1",
            target_id,
        )
        .await,
    )
}

fn start(post_id: Uuid, target_id: Uuid, version: i32) -> StartRequest {
    StartRequest {
        target_id,
        post_id,
        version,
        attempt_id: Uuid::new_v4(),
    }
}

fn published(post_id: Uuid, target_id: Uuid, attempt_id: Uuid, number: i32) -> AttemptResult {
    AttemptResult {
        target_id,
        post_id,
        shared_post: false,
        platform: "x".to_owned(),
        attempt_id,
        attempt_number: number,
        started_at: Utc::now(),
        status: TargetStatus::Published,
        platform_post_id: Some(format!("post-of-{attempt_id}")),
        url: Some(format!("https://x.example/{attempt_id}")),
        error: None,
        response_code: Some(201),
        next_attempt_at: None,
        outcome: "published",
    }
}

#[tokio::test]
async fn two_concurrent_starts_of_one_target_and_version_have_one_winner() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    for round in 0..10 {
        let (post_id, target_id, version) =
            scheduled_target(&app, &token, &format!("race {round}")).await;
        // Two stores, as two workers have: each its own connection from the pool.
        let a = PublishStore::new(app.db.clone());
        let b = PublishStore::new(app.db.clone());
        let (first, second) = (
            start(post_id, target_id, version),
            start(post_id, target_id, version),
        );
        let (first, second) = ([first], [second]);
        let (won_a, won_b) = tokio::join!(a.start(&first, false), b.start(&second, false));
        let (won_a, won_b) = (won_a.expect("start a").0, won_b.expect("start b").0);
        assert_eq!(
            won_a.len() + won_b.len(),
            1,
            "round {round}: exactly one winner ({won_a:?} / {won_b:?})"
        );
        let winner = won_a.first().or(won_b.first()).expect("a winner");
        assert_eq!(winner.target_id, target_id);
        assert_eq!(winner.attempt_number, 1, "counted once");
        let snapshot = a.snapshot(target_id).await.expect("snapshot").expect("row");
        assert_eq!(snapshot.status, TargetStatus::Publishing);
        assert_eq!(
            snapshot.attempt_id,
            Some(winner.attempt_id),
            "held by the winner"
        );
    }
}

#[tokio::test]
async fn a_start_at_a_stale_version_wins_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let (post_id, target_id, version) = scheduled_target(&app, &token, "stale").await;
    let store = PublishStore::new(app.db.clone());
    let before = written(&app, post_id, target_id).await;
    for stale in [version - 1, version + 1] {
        let (won, posts) = store
            .start(&[start(post_id, target_id, stale)], true)
            .await
            .expect("start");
        assert!(won.is_empty(), "version {stale} of {version} won: {won:?}");
        assert!(posts.is_empty(), "no post changed: {posts:?}");
        assert_eq!(
            written(&app, post_id, target_id).await,
            before,
            "nothing written"
        );
    }
    // The job's own version does win (the stale ones lost for their version alone).
    let (won, _) = store
        .start(&[start(post_id, target_id, version)], false)
        .await
        .expect("start");
    assert_eq!(won.len(), 1);
}

#[tokio::test]
async fn a_finish_from_a_superseded_attempt_writes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let (post_id, target_id, version) = scheduled_target(&app, &token, "superseded").await;
    let store = PublishStore::new(app.db.clone());
    let first = start(post_id, target_id, version);
    let (won, _) = store.start(&[first], false).await.expect("start");
    assert_eq!(won.len(), 1);
    // The first attempt's worker is presumed dead: a second attempt takes the target over
    // (recording the first as interrupted).
    let second = Uuid::new_v4();
    let taken = store
        .take_over(post_id, target_id, first.attempt_id, second)
        .await
        .expect("take over")
        .expect("taken over");
    assert_eq!(taken.attempt_id, second);
    let before = written(&app, post_id, target_id).await;
    assert_eq!(
        before.2.as_array().map(Vec::len),
        Some(1),
        "the interrupted attempt: {}",
        before.2
    );

    // The first attempt's worker was only slow: its outcome arrives now.
    let posts = store
        .finish(&[published(post_id, target_id, first.attempt_id, 1)], true)
        .await
        .expect("finish");
    assert!(posts.is_empty(), "no post changed: {posts:?}");
    assert_eq!(
        written(&app, post_id, target_id).await,
        before,
        "target, post and attempts unchanged"
    );
    let snapshot = store
        .snapshot(target_id)
        .await
        .expect("snapshot")
        .expect("row");
    assert_eq!(snapshot.status, TargetStatus::Publishing);
    assert_eq!(snapshot.attempt_id, Some(second));

    // The attempt holding the target does record its outcome.
    let posts = store
        .finish(&[published(post_id, target_id, second, 2)], true)
        .await
        .expect("finish");
    assert_eq!(posts.len(), 1, "the post changed");
    let (target, _, attempts) = written(&app, post_id, target_id).await;
    assert_eq!(target["status"], "published", "{target}");
    assert_eq!(
        target["platform_post_id"],
        format!("post-of-{second}"),
        "{target}"
    );
    assert_eq!(attempts.as_array().map(Vec::len), Some(2), "{attempts}");
}
