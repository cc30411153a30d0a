//! The built-in `webhook` platform per tenant: a tenant's admin connects its receiver (URL
//! and signing secret, stored sealed), each call carries the tenant id and a
//! `Herald-Signature` the receiver verifies here with its own HMAC, a tenant sees only its
//! own posts, and a tenant without a webhook cannot schedule to one.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use herald_plugin_host::address::AddressPolicy;
use herald_server::publish::PublisherRegistry;
use herald_server::publish::webhook::WebhookPublisher;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{TestApp, assert_error, in_ms};
use crate::processes::{Receiver, wait_for_created, webhook_post};

/// Oldest signature timestamp a receiver accepts, in seconds.
const TOLERANCE_SECS: u64 = 300;

/// Whether `headers` carry a `Herald-Signature` of `body` by `secret` made within
/// [`TOLERANCE_SECS`] — what README tells receivers to check.
pub(crate) fn signed_by(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers
        .get("herald-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.to_owned()),
            Some(("v1", v)) => signatures.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    match timestamp.parse::<u64>() {
        Ok(t) if now.abs_diff(t) <= TOLERANCE_SECS => {}
        _ => return false,
    }
    signatures.iter().any(|hex| {
        let Ok(expected) = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
        else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    })
}

/// Connects the receiver at `url` with `secret` as the webhook of the token's tenant;
/// the whole GraphQL answer.
pub(crate) async fn connect(app: &TestApp, token: &str, url: &str, secret: &str) -> Value {
    app.gql(
        Some(token),
        "mutation($c: CredentialsInput!) { connectAccount(platform: \"webhook\", credentials: $c) { id platform displayName externalAccountId isDefault } }",
        json!({"c": {"accessToken": secret, "extra": [{"key": "url", "value": url}]}}),
    )
    .await
}

/// The app with in-process workers publishing `webhook` targets to receivers on loopback
/// (which the outbound policy allows here, as `HERALD_OUTBOUND_ALLOW_CIDRS` would).
pub(crate) async fn app_with_webhooks() -> TestApp {
    let loopback = AddressPolicy::parse(["127.0.0.1/32"]).expect("range");
    app_with_webhooks_under(&loopback).await
}

/// The app with in-process workers publishing `webhook` targets under `policy`.
async fn app_with_webhooks_under(policy: &AddressPolicy) -> TestApp {
    let app = TestApp::spawn().await;
    let mut publishers = PublisherRegistry::new();
    publishers.register(
        "webhook",
        Arc::new(
            WebhookPublisher::new(
                app.connections.clone(),
                true,
                Duration::from_secs(10),
                policy,
            )
            .expect("webhook client"),
        ),
    );
    app.with_worker(publishers).await
}

#[tokio::test]
async fn each_tenant_posts_to_its_own_signed_webhook_with_its_tenant_id() {
    let alices = Receiver::start(true, false).await;
    let acmes = Receiver::start(true, false).await;
    let app = app_with_webhooks().await;
    let alice = app.token("alice", None, &[]);
    let acme = app.token("bob", Some("acme"), &[]);
    let carol = app.token("carol", None, &["admin"]);

    let connected = alices.connect(&app, "alice").await;
    assert!(connected["errors"].is_null(), "{connected}");
    let account = &connected["data"]["connectAccount"];
    assert_eq!(account["platform"], "webhook");
    assert_eq!(account["displayName"], "webhook to 127.0.0.1");
    assert_eq!(account["isDefault"], true);
    let acme_admin = app.token("bob", Some("acme"), &["admin"]);
    let connected = connect(&app, &acme_admin, &acmes.url(), &acmes.secret).await;
    assert!(connected["errors"].is_null(), "{connected}");

    for i in 0..3 {
        webhook_post(&app, &alice, &format!("alice {i}"), &in_ms(100)).await;
    }
    for i in 0..2 {
        webhook_post(&app, &acme, &format!("acme {i}"), &in_ms(100)).await;
    }
    let refused = app
        .gql(
            Some(&carol),
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
            json!({"i": {"content": "nowhere to go", "platforms": ["webhook"], "scheduledAt": in_ms(100)}}),
        )
        .await;
    assert_error(&refused, "BAD_USER_INPUT", Some("platforms"));
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("no connected webhook account"),
        "{refused}"
    );

    wait_for_created(&alices, 3, Duration::from_secs(15)).await;
    wait_for_created(&acmes, 2, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        alices.tenants(),
        vec!["user:alice"; 3],
        "alice's posts only"
    );
    assert_eq!(acmes.tenants(), vec!["org:acme"; 2], "acme's posts only");
    assert_eq!(alices.unsigned() + acmes.unsigned(), 0, "every call signed");
}

#[tokio::test]
async fn webhook_url_and_secret_are_stored_sealed_and_checked_when_connected() {
    let receiver = Receiver::start(true, false).await;
    let app = TestApp::spawn().await;
    let admin = app.token("alice", None, &["admin"]);
    let member = app.token("alice", None, &[]);

    let by_member = connect(&app, &member, &receiver.url(), &receiver.secret).await;
    assert_error(&by_member, "FORBIDDEN", None);
    for (url, secret, field) in [
        (
            "ftp://127.0.0.1/hook",
            receiver.secret.as_str(),
            "credentials.extra",
        ),
        (
            "javascript:alert(1)",
            receiver.secret.as_str(),
            "credentials.extra",
        ),
        (
            receiver.url().as_str(),
            "too-short",
            "credentials.accessToken",
        ),
    ] {
        let refused = connect(&app, &admin, url, secret).await;
        assert_error(&refused, "BAD_USER_INPUT", Some(field));
    }
    let missing_url = app
        .gql(
            Some(&admin),
            "mutation { connectAccount(platform: \"webhook\", credentials: {accessToken: \"0123456789abcdef\"}) { id } }",
            json!({}),
        )
        .await;
    assert_error(&missing_url, "BAD_USER_INPUT", Some("credentials.extra"));

    let connected = connect(&app, &admin, &receiver.url(), &receiver.secret).await;
    assert!(connected["errors"].is_null(), "{connected}");
    let dump = crate::keys::table_text(&app, "social_connections").await
        + &crate::keys::table_text(&app, "social_account_tokens").await;
    let port = receiver.url().split(':').nth(2).expect("port").to_owned();
    assert!(!dump.contains(&receiver.secret), "secret in the clear");
    assert!(!dump.contains(&port), "URL in the clear: {dump}");
}

#[tokio::test]
async fn a_receiver_refusing_the_signature_asks_the_tenant_to_reconnect() {
    let receiver = Receiver::start(true, false).await;
    let app = app_with_webhooks().await;
    let admin = app.token("alice", None, &["admin"]);
    let connected = connect(&app, &admin, &receiver.url(), "not-the-receivers-secret").await;
    assert!(connected["errors"].is_null(), "{connected}");
    let id = webhook_post(&app, &admin, "signed with the wrong secret", &in_ms(50)).await;
    let post = app
        .wait_for_post(
            &admin,
            &id,
            Duration::from_secs(15),
            crate::harness::waits_for_account,
        )
        .await;
    crate::harness::assert_asks_to_reconnect(&app, &admin, &post).await;
    assert_eq!(
        receiver.unsigned(),
        1,
        "refused by the receiver's own check"
    );
    assert_eq!(receiver.created(), 0);
}

/// The outbound address policy holds for webhooks as for plugins: with the default
/// (public addresses only), a receiver on loopback is never called, whether named by its
/// address or by a name that resolves to it, and the target fails saying why.
#[tokio::test]
async fn a_receiver_at_a_private_address_is_never_called() {
    let receiver = Receiver::start(true, false).await;
    let app = app_with_webhooks_under(&AddressPolicy::public_only()).await;
    // One tenant per URL: each tenant's only webhook is its default.
    for (user, url) in [
        ("alice", receiver.url()),
        ("bob", receiver.url().replace("127.0.0.1", "localhost")),
    ] {
        let admin = app.token(user, None, &["admin"]);
        let connected = connect(&app, &admin, &url, &receiver.secret).await;
        assert!(connected["errors"].is_null(), "{connected}");
        let id = webhook_post(&app, &admin, "to a private receiver", &in_ms(50)).await;
        let post = app
            .wait_for_post(&admin, &id, Duration::from_secs(15), |p| {
                p["status"] == "FAILED"
            })
            .await;
        let error = post["targets"][0]["lastError"].as_str().unwrap_or_default();
        assert!(error.contains("destination not allowed"), "{post}");
        assert!(
            !error.contains("refused") && !error.contains("port"),
            "{error}"
        );
    }
    assert!(receiver.calls().is_empty(), "the receiver was called");
}
