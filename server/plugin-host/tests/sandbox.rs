//! The plugin host against real plugins built to wasm32-wasip2 by `scripts/test`
//! (`HERALD_TEST_PLUGIN_DIR`), talking to a fake platform served by axum on 127.0.0.1. The
//! plugins keep their real `https://api.example.com` URLs; the host's test-only override
//! map routes that host to the fake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use herald_plugin_host::{
    Credentials, HostConfig, LengthCounting, Media, PluginHost, Post, PublishFailure,
    PublishRequest, Receipt,
};
use serde_json::{Value, json};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot really an image, but bytes all the same";
const TOKEN: &str = "secret-token-123";
const RESPONSE_CAP: u64 = 64 * 1024;

fn built_plugins() -> PathBuf {
    let dir = std::env::var_os("HERALD_TEST_PLUGIN_DIR")
        .map(PathBuf::from)
        .expect(
            "HERALD_TEST_PLUGIN_DIR is not set: run ./scripts/test, or ./scripts/build-plugins and \
         export HERALD_TEST_PLUGIN_DIR=<the directory it prints>",
        );
    assert!(
        dir.join("example.wasm").exists(),
        "{} has no example.wasm",
        dir.display()
    );
    dir
}

/// A fresh directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "herald-plugin-test-{}-{name}-{}",
        std::process::id(),
        uuid_ish()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn uuid_ish() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// A plugin directory holding copies of the named built plugins.
fn plugin_dir(names: &[&str]) -> PathBuf {
    let built = built_plugins();
    let dir = temp_dir("plugins");
    for name in names {
        for ext in ["wasm", "toml"] {
            std::fs::copy(
                built.join(format!("{name}.{ext}")),
                dir.join(format!("{name}.{ext}")),
            )
            .expect("copy plugin");
        }
    }
    dir
}

/// One compile cache for the whole test binary (its writes are atomic).
fn shared_cache() -> PathBuf {
    std::env::temp_dir().join(format!("herald-plugin-test-cache-{}", std::process::id()))
}

#[derive(Default)]
struct Seen {
    uploads: Vec<(Option<String>, Vec<u8>)>,
    posts: Vec<(Option<String>, Value)>,
}

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Seen>>,
    /// Notified when the hostile plugin is about to spin (`announce-loop`).
    started: Arc<tokio::sync::Notify>,
    /// The fake's port on 127.0.0.1.
    port: u16,
}

fn auth(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn upload(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    fake.seen
        .lock()
        .expect("lock")
        .uploads
        .push((auth(&headers), body.to_vec()));
    axum::Json(json!({ "id": "m1" })).into_response()
}

async fn create(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if value["text"] == "rate" {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "42")],
            "slow down",
        )
            .into_response();
    }
    if value["text"] == "leak" {
        return (StatusCode::BAD_REQUEST, format!("bad token {TOKEN}")).into_response();
    }
    fake.seen
        .lock()
        .expect("lock")
        .posts
        .push((auth(&headers), value));
    axum::Json(json!({ "id": "p1", "url": "https://example.social/p/p1" })).into_response()
}

async fn find(State(fake): State<Fake>, Query(query): Query<HashMap<String, String>>) -> Response {
    let seen = fake.seen.lock().expect("lock");
    let found: Vec<Value> = seen
        .posts
        .iter()
        .filter(|(_, post)| {
            post["idempotency_key"].as_str() == query.get("idempotency_key").map(String::as_str)
        })
        .map(|_| json!({ "id": "p1", "url": "https://example.social/p/p1" }))
        .collect();
    axum::Json(found).into_response()
}

async fn me(headers: HeaderMap) -> Response {
    if auth(&headers).as_deref() == Some(&format!("Bearer {TOKEN}")) {
        axum::Json(json!({ "id": "42", "handle": "herald", "display_name": null })).into_response()
    } else {
        (StatusCode::UNAUTHORIZED, "token expired").into_response()
    }
}

async fn fake_platform() -> (String, Fake) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let fake = Fake {
        port: address.port(),
        ..Fake::default()
    };
    let app = Router::new()
        .route("/v1/media", post(upload))
        .route("/v1/posts", post(create).get(find))
        .route("/v1/me", get(me))
        .route(
            "/redirect",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "https://evil.example.net/x")],
                )
            }),
        )
        .route(
            "/redirect-relative",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/v1/me")]) }),
        )
        .route(
            "/stall",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/started",
            get(|State(fake): State<Fake>| async move {
                fake.started.notify_one();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/huge",
            get(|| async { vec![b'x'; RESPONSE_CAP as usize * 4] }),
        )
        .route(
            "/media/cat.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], PNG) }),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{address}"), fake)
}

fn config(dir: &Path, base: &str) -> HostConfig {
    let mut config = HostConfig::new(dir);
    config.cache_dir = Some(shared_cache());
    config.concurrency = 4;
    config.call_timeout = Duration::from_secs(2);
    config.memory_limit_bytes = 32 << 20;
    config.max_response_bytes = RESPONSE_CAP;
    config.host_overrides = HashMap::from([
        ("api.example.com".to_owned(), base.to_owned()),
        ("evil.example.net".to_owned(), base.to_owned()),
        ("media.herald.test".to_owned(), base.to_owned()),
        ("social.self-hosted.test".to_owned(), base.to_owned()),
    ]);
    config
}

async fn host(names: &[&str]) -> (PluginHost, Fake) {
    let (base, fake) = fake_platform().await;
    let host = PluginHost::load(config(&plugin_dir(names), &base))
        .await
        .expect("load");
    assert_eq!(host.rejected(), &[] as &[(PathBuf, String)]);
    (host, fake)
}

fn credentials() -> Credentials {
    Credentials {
        access_token: TOKEN.into(),
        ..Credentials::default()
    }
}

fn request(text: &str) -> PublishRequest {
    PublishRequest {
        post: Post {
            text: text.into(),
            ..Post::default()
        },
        credentials: credentials(),
        idempotency_key: format!("key-{text}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_publishes_media_and_text_to_the_platform() {
    let (host, fake) = host(&["example"]).await;
    let mut req = request("Hello from Herald 👋");
    req.post.media = vec![Media {
        url: "https://media.herald.test/media/cat.png".into(),
        mime_type: "image/png".into(),
        alt: Some("a cat".into()),
        size: Some(PNG.len() as u64),
        ..Media::default()
    }];
    let receipt = host.publish("example", req).await;
    assert_eq!(
        receipt,
        Ok(Receipt {
            platform_post_id: "p1".into(),
            url: "https://example.social/p/p1".into()
        })
    );
    let seen = fake.seen.lock().expect("lock");
    let bearer = Some(format!("Bearer {TOKEN}"));
    assert_eq!(seen.uploads, vec![(bearer.clone(), PNG.to_vec())]);
    assert_eq!(
        seen.posts,
        vec![(
            bearer,
            json!({ "text": "Hello from Herald 👋", "media_ids": ["m1"], "idempotency_key": "key-Hello from Herald 👋" })
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_must_be_what_the_post_declares() {
    let (host, fake) = host(&["example"]).await;
    let with_media = |mime: &str| {
        let mut req = request("with media");
        req.post.media = vec![Media {
            url: "https://media.herald.test/media/cat.png".into(),
            mime_type: mime.into(),
            alt: None,
            size: None,
            ..Media::default()
        }];
        req
    };
    // Served as image/png, declared as image/jpeg: refused before anything is uploaded.
    assert_eq!(
        host.publish("example", with_media("image/jpeg")).await,
        Err(PublishFailure::Permanent {
            message: "media 0: declared image/jpeg, served image/png".into()
        })
    );
    assert!(fake.seen.lock().expect("lock").uploads.is_empty());
    // A media URL aimed at a private address (here the fake itself, not through the
    // override map) is refused, by literal address and by name, in the same words as a
    // closed port there.
    let port = fake.port;
    let refused = Err(PublishFailure::Permanent {
        message: "media 0: destination not allowed".into(),
    });
    for url in [
        format!("http://127.0.0.1:{port}/media/cat.png"),
        format!("http://localhost:{port}/media/cat.png"),
        "http://127.0.0.1:1/media/cat.png".to_owned(),
    ] {
        let mut private = with_media("image/png");
        private.post.media[0].url = url.clone();
        assert_eq!(host.publish("example", private).await, refused, "{url}");
    }
    assert!(fake.seen.lock().expect("lock").uploads.is_empty());
    // Not there at all: retryable (the media store may be back later).
    let mut missing = with_media("image/png");
    missing.post.media[0].url = "https://media.herald.test/media/gone.png".into();
    assert!(matches!(
        host.publish("example", missing).await,
        Err(PublishFailure::Retryable { message }) if message.contains("404")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_reports_limits_and_validates() {
    let (host, _) = host(&["example"]).await;
    let info = host.platform("example").expect("loaded");
    assert_eq!(info.wit_version, "0.2.0");
    assert_eq!(info.limits.max_text_length, 500);
    assert_eq!(info.limits.counting, LengthCounting::Graphemes);
    assert!(host.is_idempotent("example"));
    assert!(!host.is_idempotent("nowhere"));
    let ok = Post {
        text: "é".repeat(500),
        ..Post::default()
    };
    assert_eq!(
        host.validate("example", &ok).await.expect("validate"),
        vec![]
    );
    let long = Post {
        text: "é".repeat(501),
        media: vec![Media {
            url: "https://media.herald.test/a.gif".into(),
            mime_type: "image/gif".into(),
            alt: None,
            size: None,
            ..Media::default()
        }],
        ..Post::default()
    };
    let codes: Vec<String> = host
        .validate("example", &long)
        .await
        .expect("validate")
        .into_iter()
        .map(|v| v.code)
        .collect();
    assert_eq!(codes, vec!["too_long", "unsupported_media_type"]);
    // publish refuses the same post without calling the platform.
    let mut req = request("x");
    req.post = long;
    assert!(matches!(
        host.publish("example", req).await,
        Err(PublishFailure::Validation { violations }) if violations.len() == 2
    ));
}

fn self_hosted(server: &str) -> Credentials {
    Credentials {
        extra: vec![("server".into(), server.into())],
        ..credentials()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_on_its_own_server_is_reached_only_with_its_credentials() {
    let (host, _) = host(&["example"]).await;
    // The manifest's `account_hosts = ["server"]` admits the account's own server…
    let account = host
        .verify_credentials("example", self_hosted("https://social.self-hosted.test/"))
        .await
        .expect("the account's own server is reachable");
    assert_eq!(account.handle, "herald");
    // …over https only, named by a plain base URL.
    for bad in [
        "http://social.self-hosted.test",
        "https://user:pw@social.self-hosted.test",
        "https://social.self-hosted.test/?x=1",
        "not a url",
    ] {
        match host.verify_credentials("example", self_hosted(bad)).await {
            Err(PublishFailure::Permanent { message }) => {
                assert!(message.contains("`server`"), "{bad}: {message}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_maps_platform_errors_and_recovers_by_lookup() {
    let (host, _) = host(&["example"]).await;
    assert_eq!(
        host.publish("example", request("rate")).await,
        Err(PublishFailure::RateLimited {
            retry_after: Duration::from_secs(42),
            message: "HTTP 429: slow down".into()
        })
    );
    let expired = Credentials {
        access_token: "old-token-456".into(),
        ..Credentials::default()
    };
    assert!(matches!(
        host.verify_credentials("example", expired).await,
        Err(PublishFailure::AuthExpired { .. })
    ));
    let account = host
        .verify_credentials("example", credentials())
        .await
        .expect("account");
    assert_eq!(account.handle, "herald");
    // The platform echoes the token in an error: the host scrubs it.
    let leaked = host.publish("example", request("leak")).await;
    assert_eq!(
        leaked,
        Err(PublishFailure::Permanent {
            message: "HTTP 400: bad token [redacted]".into()
        })
    );
    assert_eq!(
        host.lookup("example", "key-hello", credentials()).await,
        Ok(None)
    );
    host.publish("example", request("hello"))
        .await
        .expect("published");
    assert_eq!(
        host.lookup("example", "key-hello", credentials()).await,
        Ok(Some(Receipt {
            platform_post_id: "p1".into(),
            url: "https://example.social/p/p1".into()
        }))
    );
    assert!(matches!(
        host.publish("nowhere", request("x")).await,
        Err(PublishFailure::Unavailable { reason }) if reason.contains("no plugin for platform nowhere")
    ));
}

async fn assert_still_serves(host: &PluginHost) {
    assert_eq!(
        host.publish("hostile", request("fine"))
            .await
            .map(|r| r.platform_post_id),
        Ok("ok".to_owned())
    );
}

/// A publish stopped by its deadline while a POST was out may have posted: on a platform
/// without idempotency keys it is unconfirmed (a person decides), not a plain timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_cut_off_during_a_post_is_unconfirmed() {
    let (host, _) = host(&["hostile"]).await;
    let stalled = host.publish("hostile", request("stall")).await;
    assert!(
        matches!(&stalled, Err(PublishFailure::Unconfirmed { message }) if message.contains("2s")),
        "{stalled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_only_their_own_call() {
    let (host, _) = host(&["hostile"]).await;

    // The deadline stops the loop: its error, not a hang, is the call's answer (how soon
    // after the deadline is measured by benches/plugin_host.rs).
    let looped = host.publish("hostile", request("loop")).await;
    assert_eq!(
        looped,
        Err(PublishFailure::Timeout {
            limit: Duration::from_secs(2)
        })
    );
    assert_still_serves(&host).await;

    let bomb = host.publish("hostile", request("bomb")).await;
    assert_eq!(
        bomb,
        Err(PublishFailure::Trap {
            reason: format!("memory limit of {} bytes exceeded", 32 << 20)
        })
    );
    assert_still_serves(&host).await;

    let panicked = host.publish("hostile", request("panic")).await;
    assert!(
        matches!(&panicked, Err(PublishFailure::Trap { reason }) if reason.contains("panicked")),
        "{panicked:?}"
    );
    assert_still_serves(&host).await;

    let undeclared = host.publish("hostile", request("undeclared")).await;
    assert!(
        matches!(&undeclared, Err(PublishFailure::Permanent { message })
            if message.contains("evil.example.net:443 is not in plugin hostile's allowed_hosts")),
        "{undeclared:?}"
    );

    let redirected = host.publish("hostile", request("redirect")).await;
    assert!(
        matches!(&redirected, Err(PublishFailure::Permanent { message })
            if message.contains("evil.example.net:443 is not in plugin hostile's allowed_hosts")),
        "{redirected:?}"
    );

    let huge = host.publish("hostile", request("huge")).await;
    assert!(
        matches!(&huge, Err(PublishFailure::Permanent { message }) if message.contains("response too large")),
        "{huge:?}"
    );
    assert_still_serves(&host).await;
    assert_eq!(host.quarantined(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_plugin_does_not_block_other_calls() {
    let (host, fake) = host(&["hostile", "example"]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let spinning = tokio::spawn({
        let host = host.clone();
        let events = events.clone();
        async move {
            let result = host.publish("hostile", request("announce-loop")).await;
            events.lock().expect("events").push("spinner ended");
            result
        }
    });
    // The hostile plugin tells the fake platform it is about to spin.
    tokio::time::timeout(Duration::from_secs(10), fake.started.notified())
        .await
        .expect("the hostile plugin started spinning");
    let receipt = host.publish("example", request("meanwhile")).await;
    events.lock().expect("events").push("other call answered");
    assert_eq!(receipt.map(|r| r.platform_post_id), Ok("p1".to_owned()));
    assert_eq!(
        spinning.await.expect("join"),
        Err(PublishFailure::Timeout {
            limit: Duration::from_secs(2)
        })
    );
    // Answered while the spinner was still spinning (its deadline is 2 s away), not after.
    assert_eq!(
        *events.lock().expect("events"),
        ["other call answered", "spinner ended"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_keeps_trapping_is_quarantined() {
    let (host, _) = host(&["hostile", "example"]).await;
    for _ in 0..3 {
        assert!(matches!(
            host.publish("hostile", request("panic")).await,
            Err(PublishFailure::Trap { .. })
        ));
    }
    assert_eq!(host.quarantined(), vec!["hostile".to_owned()]);
    assert_eq!(
        host.publish("hostile", request("fine")).await,
        Err(PublishFailure::Unavailable {
            reason: "plugin hostile is quarantined after repeated traps".into()
        })
    );
    assert!(host.publish("example", request("still fine")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v0_1_0_plugin_loads_beside_a_v0_2_0_plugin() {
    let (host, _) = host(&["example", "v1"]).await;
    let versions: Vec<(String, String)> = host
        .platforms()
        .into_iter()
        .map(|info| (info.platform, info.wit_version))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("example".into(), "0.2.0".into()),
            ("v1".into(), "0.1.0".into())
        ]
    );
    assert_eq!(
        host.publish("v1", request("x"))
            .await
            .map(|r| r.platform_post_id),
        Ok("key-x".to_owned())
    );
    assert!(host.publish("example", request("y")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_plugins_are_cached_and_a_corrupt_cache_is_rebuilt() {
    let dir = plugin_dir(&["example"]);
    let mut config = config(&dir, "http://127.0.0.1:9");
    let cache = temp_dir("cache");
    config.cache_dir = Some(cache.clone());
    PluginHost::load(config.clone()).await.expect("first load");
    let cached: Vec<PathBuf> = std::fs::read_dir(&cache)
        .expect("cache dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].extension().is_some_and(|e| e == "cwasm"));
    let written = std::fs::metadata(&cached[0])
        .and_then(|m| m.modified())
        .expect("mtime");
    let started = Instant::now();
    let host = PluginHost::load(config.clone()).await.expect("cached load");
    let warm = started.elapsed();
    assert_eq!(host.platforms().len(), 1);
    assert_eq!(
        std::fs::metadata(&cached[0])
            .and_then(|m| m.modified())
            .expect("mtime"),
        written
    );
    std::fs::write(&cached[0], b"garbage").expect("corrupt");
    let host = PluginHost::load(config)
        .await
        .expect("load with corrupt cache");
    assert_eq!(host.platforms().len(), 1);
    assert!(std::fs::read(&cached[0]).expect("rewritten").len() > 1000);
    eprintln!("load from cache: {warm:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plugins_are_rejected_with_a_reason() {
    let built = built_plugins();
    let dir = temp_dir("bad");
    // No manifest.
    std::fs::copy(built.join("example.wasm"), dir.join("lonely.wasm")).expect("copy");
    // Manifest id differs from info().platform.
    std::fs::copy(built.join("example.wasm"), dir.join("liar.wasm")).expect("copy");
    std::fs::write(
        dir.join("liar.toml"),
        "id = \"liar\"\nversion = \"0.1.0\"\n",
    )
    .expect("write");
    // Not a component.
    std::fs::write(dir.join("junk.wasm"), b"\0asm junk").expect("write");
    std::fs::write(
        dir.join("junk.toml"),
        "id = \"junk\"\nversion = \"0.1.0\"\n",
    )
    .expect("write");
    let host = PluginHost::load(config(&dir, "http://127.0.0.1:9"))
        .await
        .expect("load");
    assert!(host.platforms().is_empty());
    let reasons: Vec<String> = host
        .rejected()
        .iter()
        .map(|(_, reason)| reason.clone())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("not a valid component"), "{reasons:?}");
    assert!(
        reasons[1].contains("manifest's id is \"liar\""),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("lonely.toml: cannot read it"),
        "{reasons:?}"
    );
    let strict =
        PluginHost::load_file(config(&dir, "http://127.0.0.1:9"), &dir.join("liar.wasm")).await;
    assert!(strict.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooling_off_serves_the_same() {
    let (base, _) = fake_platform().await;
    let mut config = config(&plugin_dir(&["example"]), &base);
    config.pooling = false;
    let host = PluginHost::load(config).await.expect("load");
    assert!(host.publish("example", request("no pool")).await.is_ok());
}

/// README: "A plugin that traps or times out 3 times in a row is quarantined". Timeouts
/// count as traps do, and a call that succeeds between them starts the count over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_keeps_timing_out_is_quarantined() {
    let (base, _fake) = fake_platform().await;
    let mut config = config(&plugin_dir(&["hostile", "example"]), &base);
    config.call_timeout = Duration::from_millis(300);
    let host = PluginHost::load(config).await.expect("load");
    let timed_out = || async {
        assert_eq!(
            host.publish("hostile", request("loop")).await,
            Err(PublishFailure::Timeout {
                limit: Duration::from_millis(300)
            })
        );
    };
    timed_out().await;
    timed_out().await;
    assert!(host.publish("hostile", request("fine")).await.is_ok());
    timed_out().await;
    timed_out().await;
    assert_eq!(
        host.quarantined(),
        Vec::<String>::new(),
        "not three in a row"
    );
    timed_out().await;
    assert_eq!(host.quarantined(), vec!["hostile".to_owned()]);
    assert!(
        matches!(
            host.publish("hostile", request("fine")).await,
            Err(PublishFailure::Unavailable { .. })
        ),
        "a quarantined plugin is not called"
    );
    assert!(host.publish("example", request("still fine")).await.is_ok());
}

/// The `.cwasm` cache is keyed by the wasm's bytes: a plugin file whose bytes changed is
/// compiled again (a second cache entry, the first left as it was), and the stale entry
/// is not used. Here the file `p.wasm` first holds the example plugin, then the hostile
/// one: a cache keyed by the file would hand back the example's code, whose `info()` names
/// another platform than the manifest, and the plugin would be rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_wasm_bytes_are_compiled_again_and_the_stale_cwasm_is_not_used() {
    let built = built_plugins();
    let dir = temp_dir("changed");
    let cache = temp_dir("changed-cache");
    let (base, _fake) = fake_platform().await;
    let mut config = config(&dir, &base);
    config.cache_dir = Some(cache.clone());
    config.call_timeout = Duration::from_millis(300);
    let cwasm = || -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&cache)
            .expect("cache dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        files.sort();
        files
    };
    let place = |name: &str| {
        std::fs::copy(built.join(format!("{name}.wasm")), dir.join("p.wasm")).expect("wasm");
        std::fs::copy(built.join(format!("{name}.toml")), dir.join("p.toml")).expect("toml");
    };

    place("example");
    let host = PluginHost::load(config.clone())
        .await
        .expect("load example");
    assert_eq!(host.rejected(), &[] as &[(PathBuf, String)]);
    assert_eq!(host.platforms()[0].platform, "example");
    let first = cwasm();
    assert_eq!(first.len(), 1, "{first:?}");
    let stale = std::fs::read(&first[0]).expect("cached");

    place("hostile");
    let host = PluginHost::load(config.clone())
        .await
        .expect("load hostile");
    assert_eq!(
        host.rejected(),
        &[] as &[(PathBuf, String)],
        "stale code used"
    );
    assert_eq!(host.platforms()[0].platform, "hostile");
    assert_eq!(
        host.publish("hostile", request("loop")).await,
        Err(PublishFailure::Timeout {
            limit: Duration::from_millis(300)
        }),
        "the new bytes' code runs"
    );
    let second = cwasm();
    assert_eq!(
        second.len(),
        2,
        "compiled again under a new key: {second:?}"
    );
    assert!(second.contains(&first[0]));
    assert_eq!(std::fs::read(&first[0]).expect("cached"), stale);

    // Bytes that differ only by a custom section at the end are another key too.
    let mut bytes = std::fs::read(built.join("hostile.wasm")).expect("wasm");
    bytes.extend_from_slice(&[0, 6, 5, b'h', b'e', b'r', b'l', b'd']);
    std::fs::write(dir.join("p.wasm"), bytes).expect("write");
    let host = PluginHost::load(config)
        .await
        .expect("load changed hostile");
    assert_eq!(host.rejected(), &[] as &[(PathBuf, String)]);
    assert!(host.publish("hostile", request("fine")).await.is_ok());
    assert_eq!(cwasm().len(), 3, "{:?}", cwasm());
}

/// Without a store (`herald plugin run`), a publish's checkpoints last for that call: each
/// call starts with none. A value over the size limit is refused, and the plugin fails
/// permanently (saving again would not help).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_without_a_store_last_one_call_and_are_size_checked() {
    let (host, _) = host(&["hostile"]).await;
    for _ in 0..2 {
        assert_eq!(
            host.publish("hostile", request("count"))
                .await
                .map(|r| r.platform_post_id),
            Ok("1".to_owned())
        );
    }
    match host.publish("hostile", request("checkpoint-too-big")).await {
        Err(PublishFailure::Permanent { message }) => {
            assert!(message.contains("at most 4096 bytes"), "{message}")
        }
        other => panic!("an oversized checkpoint was not refused: {other:?}"),
    }
}
