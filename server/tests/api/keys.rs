//! Token-key rotation on real Postgres: rows sealed with an old key open once it is in the
//! ring, `status` counts rows per key and names missing ones, `rotate` re-seals while the
//! API reads and publishes (idempotently), and a process refuses to start without a key
//! its rows need — the `herald keys` commands and `herald worker`/`serve` as processes.

use std::process::{Output, Stdio};
use std::time::Duration;

use base64::Engine;
use futures_util::future::join_all;
use herald_plugin_host::Credentials;
use herald_server::connections::ConnectionService;
use herald_server::domain::actor::{Actor, Role};
use herald_server::keys::{self, KeyError};
use herald_server::secrets::TokenCipher;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use tokio::process::Command;

use crate::harness::{
    OLD_TOKEN_KEY, OLD_TOKEN_KEY_ID, SECRET, TOKEN_KEY, TOKEN_KEY_B64, TOKEN_KEY_ID, TestApp,
    in_ms, test_key_ring,
};
use crate::processes::{Receiver, wait_for_created, webhook_post};
use crate::webhooks::app_with_webhooks;

/// A key no test server has.
const NEW_KEY: [u8; 32] = *b"new-token-key-0123456789abcdefgh";

/// Every row of `table` as JSON text (what a database dump would show).
pub(crate) async fn table_text(app: &TestApp, table: &str) -> String {
    app.db
        .query_one(Statement::from_string(
            app.db.get_database_backend(),
            format!(
                "SELECT coalesce(string_agg(row_to_json(t)::text, ''), '') AS x FROM {table} t"
            ),
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get::<String>("", "x")
        .expect("text")
}

fn admin_of(tenant: &str) -> Actor {
    Actor {
        user_id: "seed".into(),
        tenant_id: tenant.into(),
        roles: vec![Role::Admin],
        operator: false,
    }
}

fn webhook(url: &str, secret: &str) -> Credentials {
    Credentials {
        access_token: secret.into(),
        refresh_token: None,
        expires_at: None,
        extra: vec![("url".into(), url.into())],
    }
}

/// Connects a webhook for each of `tenants`, sealed with the old key only.
async fn seed_old(app: &TestApp, tenants: &[String], url: &str, secret: &str) {
    let old = ConnectionService::new(
        app.services.worker_db.clone(),
        TokenCipher::new(OLD_TOKEN_KEY_ID, &OLD_TOKEN_KEY),
        None,
    );
    for tenant in tenants {
        old.connect(&admin_of(tenant), "webhook", webhook(url, secret))
            .await
            .expect("seed under the old key");
    }
}

fn rows(status: &keys::KeyStatus) -> Vec<(String, u64)> {
    status
        .rows
        .iter()
        .map(|k| (k.key_id.clone(), k.rows))
        .collect()
}

#[tokio::test]
async fn old_key_rows_open_in_the_ring_and_rotate_to_the_current_key() {
    let app = TestApp::spawn().await;
    let db = &app.services.worker_db;
    let tenants: Vec<String> = (0..3).map(|i| format!("user:t{i}")).collect();
    seed_old(
        &app,
        &tenants,
        "https://hooks.example/h",
        "0123456789abcdef-old",
    )
    .await;

    let current_only = TokenCipher::new(TOKEN_KEY_ID, &TOKEN_KEY);
    let status = keys::status(db, &current_only).await.expect("status");
    assert_eq!(rows(&status), [("old".to_owned(), 3)]);
    assert_eq!(status.missing.len(), 1);
    match keys::require_keys(db, &current_only).await {
        Err(error @ KeyError::Missing(_)) => {
            let message = error.to_string();
            assert!(message.contains("`old` (3 rows)"), "{message}");
            assert!(message.contains("HERALD_TOKEN_KEYS"), "{message}");
        }
        other => panic!("expected the missing key, got {other:?}"),
    }

    let ring = test_key_ring();
    keys::require_keys(db, &ring)
        .await
        .expect("the ring has every key");
    let status = keys::status(db, &ring).await.expect("status");
    assert!(status.missing.is_empty());
    assert_eq!(status.not_current(), 3);
    let reader = ConnectionService::new(db.clone(), ring.clone(), None);
    let (_, opened) = reader
        .credentials("user:t0", "webhook", None)
        .await
        .expect("opens")
        .expect("connected");
    assert_eq!(opened.access_token, "0123456789abcdef-old");

    let mut reports = Vec::new();
    let rotation = keys::rotate(db, &ring, 2, |p| reports.push(p.resealed))
        .await
        .expect("rotate");
    assert!(rotation.complete(), "{rotation:?}");
    assert_eq!(rotation.progress.resealed, 3);
    assert_eq!(reports, [2, 3], "progress after each batch");
    let status = keys::status(db, &ring).await.expect("status");
    assert_eq!(rows(&status), [(TOKEN_KEY_ID.to_owned(), 3)]);
    let again = keys::rotate(db, &ring, 2, |_| {})
        .await
        .expect("rotate again");
    assert_eq!(again.progress.resealed, 0, "idempotent");

    // The old key can go now: the current key alone opens every row.
    let new_only = ConnectionService::new(db.clone(), current_only, None);
    for tenant in &tenants {
        let (_, opened) = new_only
            .credentials(tenant, "webhook", None)
            .await
            .expect("opens with the current key alone")
            .expect("connected");
        assert_eq!(opened.access_token, "0123456789abcdef-old");
        assert_eq!(
            opened.extra,
            [("url".to_owned(), "https://hooks.example/h".to_owned())]
        );
    }
    let old_only = ConnectionService::new(
        db.clone(),
        TokenCipher::new(OLD_TOKEN_KEY_ID, &OLD_TOKEN_KEY),
        None,
    );
    assert!(
        old_only
            .credentials("user:t0", "webhook", None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rotation_runs_while_the_api_reads_reconnects_and_publishes() {
    const POSTS: usize = 12;
    const FILLER: usize = 400;
    let receiver = Receiver::start(true, false).await;
    let app = app_with_webhooks().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &["admin"]);
    // Alice's and Bob's webhooks and many other tenants' are sealed with the old key.
    let mut tenants = vec!["user:alice".to_owned(), "user:bob".to_owned()];
    tenants.extend((0..FILLER).map(|i| format!("org:filler-{i}")));
    seed_old(&app, &tenants, &receiver.url(), &receiver.secret).await;

    let ring = test_key_ring();
    let rotation = keys::rotate(&app.services.worker_db, &ring, 10, |_| {});
    let publishing = async {
        let mut ids = Vec::new();
        for i in 0..POSTS {
            ids.push(webhook_post(&app, &alice, &format!("during rotation {i}"), &in_ms(20)).await);
            let listed = app
                .ok(&alice, "{ connections { platform status } }", json!({}))
                .await;
            assert_eq!(listed["connections"][0]["status"], "active");
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        ids
    };
    let reconnecting = join_all((0..5).map(|_| async {
        let answer = crate::webhooks::connect(&app, &bob, &receiver.url(), &receiver.secret).await;
        assert!(answer["errors"].is_null(), "{answer}");
    }));
    let (rotation, ids, _) = tokio::join!(rotation, publishing, reconnecting);
    let rotation = rotation.expect("rotate");
    assert!(rotation.complete(), "{rotation:?}");

    wait_for_created(&receiver, POSTS, Duration::from_secs(20)).await;
    for id in &ids {
        app.wait_for_post(&alice, id, Duration::from_secs(10), |p| {
            p["status"] == "PUBLISHED"
        })
        .await;
    }
    assert_eq!(
        receiver.unsigned(),
        0,
        "every call signed with alice's secret"
    );
    let status = keys::status(&app.services.worker_db, &ring)
        .await
        .expect("status");
    assert_eq!(status.not_current(), 0, "{status:?}");
    assert_eq!(
        rows(&status),
        [(TOKEN_KEY_ID.to_owned(), tenants.len() as u64)]
    );
}

fn new_key_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(NEW_KEY)
}

/// Runs `herald <args>` on the app's database with `HERALD_TOKEN_KEYS=ring` until it exits
/// (at most 30 s).
async fn herald(app: &TestApp, ring: &str, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("REDIS_URL", &app.redis_url)
        .env("HERALD_QUEUE_NAMESPACE", &app.namespace)
        .env("HERALD_JWT_SECRET", SECRET)
        .env("HERALD_BIND", "127.0.0.1:0")
        .env_remove("HERALD_TOKEN_KEY")
        .env("HERALD_TOKEN_KEYS", ring)
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn herald");
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("herald exits")
        .expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn processes_refuse_to_start_without_a_needed_key_and_keys_commands_rotate() {
    let receiver = Receiver::start(true, false).await;
    let app = TestApp::spawn().await;
    let connected = receiver.connect(&app, "alice").await;
    assert!(connected["errors"].is_null(), "{connected}");
    let new_only = format!("k2:{}", new_key_b64());

    for command in [&["worker"][..], &["serve", "--no-migrate"][..]] {
        let refused = herald(&app, &new_only, command).await;
        assert!(
            !refused.status.success(),
            "{command:?} started without the key"
        );
        let stderr = text(&refused.stderr);
        assert!(stderr.contains("`test` (1 rows)"), "{command:?}: {stderr}");
        assert!(
            stderr.contains("HERALD_TOKEN_KEYS"),
            "{command:?}: {stderr}"
        );
    }

    let status = herald(&app, &new_only, &["keys", "status"]).await;
    assert_eq!(
        status.status.code(),
        Some(1),
        "a missing key fails the status"
    );
    let out = text(&status.stdout);
    assert!(out.contains("test  (MISSING)"), "{out}");
    assert!(out.contains("missing keys: test"), "{out}");

    let ring = format!("k2:{},test:{TOKEN_KEY_B64}", new_key_b64());
    let rotated = herald(&app, &ring, &["keys", "rotate", "--batch-size", "10"]).await;
    let out = text(&rotated.stdout);
    assert!(rotated.status.success(), "{out}{}", text(&rotated.stderr));
    assert!(out.contains("done: 1 rows re-sealed with `k2`"), "{out}");
    let again = herald(&app, &ring, &["keys", "rotate"]).await;
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("done: 0 rows re-sealed"),
        "resumable, idempotent"
    );

    let status = herald(&app, &new_only, &["keys", "status"]).await;
    let out = text(&status.stdout);
    assert!(status.status.success(), "{out}");
    assert!(out.contains("1 rows  k2  (current)"), "{out}");

    // With the rows re-sealed, the new key alone starts a worker.
    let mut worker = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("worker")
        .env("DATABASE_URL", &app.database_url)
        .env("REDIS_URL", &app.redis_url)
        .env("HERALD_QUEUE_NAMESPACE", &app.namespace)
        .env_remove("HERALD_TOKEN_KEY")
        .env("HERALD_TOKEN_KEYS", &new_only)
        // The test's receiver listens on loopback, which the policy refuses by default.
        .env("HERALD_OUTBOUND_ALLOW_CIDRS", "127.0.0.1/32")
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn worker");
    let admin = app.token("alice", None, &["admin"]);
    let post = webhook_post(&app, &admin, "after the rotation", &in_ms(100)).await;
    let published = app
        .wait_for_post(&admin, &post, Duration::from_secs(20), |p| {
            p["status"] == "PUBLISHED"
        })
        .await;
    assert_eq!(published["status"], "PUBLISHED");
    assert_eq!(receiver.unsigned(), 0);
    assert!(
        worker.try_wait().expect("wait").is_none(),
        "worker still running"
    );
    worker.start_kill().expect("kill");
}

#[tokio::test]
async fn rotation_passes_over_a_row_another_transaction_holds_and_comes_back_for_it() {
    use sea_orm::TransactionTrait;
    let app = TestApp::spawn().await;
    let db = &app.services.worker_db;
    let tenants: Vec<String> = (0..5).map(|i| format!("user:h{i}")).collect();
    seed_old(
        &app,
        &tenants,
        "https://hooks.example/h",
        "0123456789abcdef-old",
    )
    .await;
    // A server refreshing the first tenant's token holds its row.
    let holder = app.db.begin().await.expect("begin");
    holder
        .execute(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT t.id FROM social_account_tokens t JOIN social_connections c
               ON c.id = t.connection_id WHERE c.owner_id = 'user:h0' FOR UPDATE OF t",
        ))
        .await
        .expect("lock a row");
    let ring = test_key_ring();
    let rotating = tokio::spawn({
        let (db, ring) = (db.clone(), ring.clone());
        async move { keys::rotate(&db, &ring, 2, |_| {}).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = keys::status(db, &ring).await.expect("status");
    assert_eq!(
        status.not_current(),
        1,
        "all but the held row re-sealed: {status:?}"
    );
    holder.commit().await.expect("release");
    let rotation = rotating.await.expect("joined").expect("rotate");
    assert!(rotation.complete(), "{rotation:?}");
    assert_eq!(rotation.progress.resealed, 5);
    let status = keys::status(db, &ring).await.expect("status");
    assert_eq!(rows(&status), [(TOKEN_KEY_ID.to_owned(), 5)]);
}
