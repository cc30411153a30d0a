//! Workers as separate `herald worker` processes sharing one queue: a worker SIGKILLed
//! mid-publish, two workers racing, Redis wiped mid-run. The platform is the `webhook`
//! publisher: the tenant connects a fake receiver that checks each call's signature and
//! records it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::harness::TestApp;

/// Lease of the worker processes.
const LEASE_MS: u64 = 1_000;

#[derive(Default)]
struct Received {
    /// Every call: (idempotency key, target id).
    calls: Vec<(String, String)>,
    /// The tenant id of every call.
    tenants: Vec<String>,
    /// Calls refused for a missing or wrong signature.
    unsigned: usize,
    /// Posts the "platform" created, by idempotency key.
    created: HashMap<String, String>,
}

/// A fake webhook platform.
#[derive(Clone)]
pub(crate) struct Receiver {
    state: Arc<Mutex<Received>>,
    /// Honour Idempotency-Key (answer a repeated key with the first post).
    dedupe: bool,
    /// Accept the first post, then never answer (the worker is killed meanwhile).
    hang_first: bool,
    hung: Arc<Notify>,
    addr: SocketAddr,
    /// The signing secret the tenant connects this receiver with.
    pub(crate) secret: String,
}

async fn receive(
    State(rx): State<Receiver>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    if !crate::webhooks::signed_by(&rx.secret, &headers, &raw) {
        rx.state.lock().expect("lock").unsigned += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad signature"})),
        );
    }
    let body: Value = serde_json::from_slice(&raw).unwrap_or_default();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let target = body["target_id"].as_str().unwrap_or_default().to_owned();
    let (id, hang) = {
        let mut state = rx.state.lock().expect("lock");
        state.calls.push((key.clone(), target));
        let tenant = body["tenant_id"].as_str().unwrap_or_default().to_owned();
        state.tenants.push(tenant);
        let first = state.calls.len() == 1;
        let id = match state.created.get(&key) {
            Some(id) if rx.dedupe => id.clone(),
            _ => {
                let id = format!("post-{}", state.created.len() + 1);
                // Without dedupe, a repeated key is a second post: count it separately.
                let slot = if state.created.contains_key(&key) {
                    format!("{key}#{id}")
                } else {
                    key.clone()
                };
                state.created.insert(slot, id.clone());
                id
            }
        };
        (id, first && rx.hang_first)
    };
    if hang {
        rx.hung.notify_one();
        tokio::time::sleep(Duration::from_secs(3_600)).await;
    }
    (
        StatusCode::OK,
        Json(json!({"id": id, "url": format!("https://hooks.example/{id}")})),
    )
}

impl Receiver {
    pub(crate) async fn start(dedupe: bool, hang_first: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let rx = Self {
            state: Arc::default(),
            dedupe,
            hang_first,
            hung: Arc::new(Notify::new()),
            addr: listener.local_addr().expect("addr"),
            secret: format!("whsec-{}", uuid::Uuid::new_v4().simple()),
        };
        let app = axum::Router::new()
            .route("/publish", axum::routing::post(receive))
            .with_state(rx.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        rx
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/publish", self.addr)
    }

    /// Connects this receiver as the webhook of `user`'s tenant (as its admin).
    pub(crate) async fn connect(&self, app: &TestApp, user: &str) -> Value {
        let admin = app.token(user, None, &["admin"]);
        crate::webhooks::connect(app, &admin, &self.url(), &self.secret).await
    }

    pub(crate) fn calls(&self) -> Vec<(String, String)> {
        self.state.lock().expect("lock").calls.clone()
    }

    /// The tenant id of every call, in order.
    pub(crate) fn tenants(&self) -> Vec<String> {
        self.state.lock().expect("lock").tenants.clone()
    }

    /// Calls refused for a missing or wrong signature.
    pub(crate) fn unsigned(&self) -> usize {
        self.state.lock().expect("lock").unsigned
    }

    pub(crate) fn created(&self) -> usize {
        self.state.lock().expect("lock").created.len()
    }
}

pub(crate) fn spawn_worker(app: &TestApp, redis_url: &str, idempotent: bool) -> Child {
    spawn_worker_reconciling_every(app, redis_url, idempotent, 300)
}

/// A worker process whose reconciler runs every `reconcile_ms`.
fn spawn_worker_reconciling_every(
    app: &TestApp,
    redis_url: &str,
    idempotent: bool,
    reconcile_ms: u64,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("worker")
        .env("DATABASE_URL", &app.database_url)
        .env("REDIS_URL", redis_url)
        .env("HERALD_QUEUE_NAMESPACE", &app.namespace)
        .env("HERALD_QUEUE_LEASE_MS", LEASE_MS.to_string())
        .env("HERALD_QUEUE_RETRY_BASE_MS", "100")
        .env("HERALD_RECONCILE_INTERVAL_MS", reconcile_ms.to_string())
        .env("HERALD_WEBHOOK_IDEMPOTENT", idempotent.to_string())
        // The receivers listen on loopback, which the outbound policy refuses by default.
        .env("HERALD_OUTBOUND_ALLOW_CIDRS", "127.0.0.1/32")
        .env("HERALD_TOKEN_KEY", crate::harness::TOKEN_KEY_B64)
        .env("HERALD_TOKEN_KEY_ID", crate::harness::TOKEN_KEY_ID)
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn herald worker")
}

pub(crate) fn in_ms(ms: i64) -> String {
    (Utc::now() + chrono::Duration::milliseconds(ms)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) async fn webhook_post(app: &TestApp, token: &str, content: &str, at: &str) -> String {
    app.create_post(
        token,
        json!({"content": content, "platforms": ["webhook"], "scheduledAt": at}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test]
async fn killed_worker_on_idempotent_platform_publishes_exactly_once() {
    let receiver = Receiver::start(true, true).await;
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    receiver.connect(&app, "alice").await;
    let mut first = spawn_worker(&app, &app.redis_url, true);
    let id = webhook_post(&app, &token, "survive a crash", &in_ms(300)).await;

    tokio::time::timeout(Duration::from_secs(15), receiver.hung.notified())
        .await
        .expect("the first worker reached the platform");
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("reaped");
    // Recovery waits for the lease, not for a periodic checker: the second worker's
    // reconciler runs once at its start (before the lease ends, when the target is not yet
    // stuck) and then not for an hour, so only the expired lease can bring the job back.
    // (How soon after the lease it comes is measured by `herald-bench recovery`.)
    let _second = spawn_worker_reconciling_every(&app, &app.redis_url, true, 3_600_000);

    let post = app
        .wait_for_post(&token, &id, Duration::from_secs(20), |p| {
            p["status"] == "PUBLISHED"
        })
        .await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2, "retried once after the crash");
    assert_eq!(calls[0].0, calls[1].0, "with the same idempotency key");
    assert_eq!(receiver.created(), 1, "exactly one post on the platform");
    assert_eq!(post["targets"][0]["attempts"], 2);
    assert_eq!(
        post["targets"][0]["platformUrl"],
        "https://hooks.example/post-1"
    );
}

#[tokio::test]
async fn killed_worker_on_non_idempotent_platform_needs_review() {
    let receiver = Receiver::start(false, true).await;
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    receiver.connect(&app, "alice").await;
    let mut first = spawn_worker(&app, &app.redis_url, false);
    let id = webhook_post(&app, &token, "maybe out", &in_ms(300)).await;

    tokio::time::timeout(Duration::from_secs(15), receiver.hung.notified())
        .await
        .expect("the first worker reached the platform");
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("reaped");
    let _second = spawn_worker(&app, &app.redis_url, false);

    let post = app
        .wait_for_post(&token, &id, Duration::from_secs(20), |p| {
            p["status"] == "NEEDS_REVIEW"
        })
        .await;
    let target = &post["targets"][0];
    assert_eq!(target["status"], "NEEDS_REVIEW");
    assert!(
        target["lastError"]
            .as_str()
            .expect("error")
            .contains("markPublished")
    );
    tokio::time::sleep(Duration::from_millis(LEASE_MS * 2)).await;
    assert_eq!(receiver.calls().len(), 1, "never republished blindly");

    let marked = app
        .ok(
            &token,
            "mutation($t: ID!, $url: String!) { markPublished(targetId: $t, url: $url) { status targets { status platformUrl } } }",
            json!({"t": target["id"], "url": "https://hooks.example/post-1"}),
        )
        .await;
    assert_eq!(
        marked["markPublished"],
        json!({"status": "PUBLISHED", "targets": [{"status": "PUBLISHED", "platformUrl": "https://hooks.example/post-1"}]})
    );
    tokio::time::sleep(Duration::from_millis(LEASE_MS)).await;
    assert_eq!(receiver.calls().len(), 1);
}

pub(crate) async fn wait_for_created(receiver: &Receiver, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while receiver.created() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} published",
            receiver.created()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn published_targets(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    app.db
        .query_one(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT count(*) AS n FROM post_targets WHERE status = 'published'",
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("count")
}

#[tokio::test]
async fn two_workers_never_publish_a_target_twice() {
    const POSTS: usize = 120;
    let receiver = Receiver::start(false, false).await;
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    receiver.connect(&app, "alice").await;
    let _a = spawn_worker(&app, &app.redis_url, false);
    let _b = spawn_worker(&app, &app.redis_url, false);
    for i in 0..POSTS {
        webhook_post(
            &app,
            &token,
            &format!("post {i}"),
            &in_ms(1_500 + (i as i64 % 20) * 10),
        )
        .await;
    }
    wait_for_created(&receiver, POSTS, Duration::from_secs(30)).await;
    // Give a would-be duplicate time to show up.
    tokio::time::sleep(Duration::from_millis(LEASE_MS * 2)).await;
    let calls = receiver.calls();
    let targets: HashSet<&String> = calls.iter().map(|(_, t)| t).collect();
    assert_eq!(calls.len(), POSTS, "one call per target");
    assert_eq!(targets.len(), POSTS);
    assert_eq!(published_targets(&app).await, POSTS as i64);
}

/// A private Redis, so FLUSHALL cannot disturb the other tests.
pub(crate) struct PrivateRedis {
    child: Child,
    port: u16,
    pub(crate) url: String,
}

impl PrivateRedis {
    pub(crate) async fn start() -> Self {
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            socket.local_addr().expect("addr").port()
        };
        Self {
            child: Self::run(port).await,
            port,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    /// Starts `redis-server` on `port` and waits until it accepts connections.
    async fn run(port: u16) -> Child {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (installed by scripts/test)");
        for _ in 0..250 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not listen on {port}");
    }

    /// Stops this Redis (SIGKILL: everything in it is lost) and starts a new one on the
    /// same port.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        self.resume().await;
    }

    /// Stops this Redis (SIGKILL); [`Self::resume`] starts an empty one on its port.
    pub(crate) async fn stop(&mut self) {
        self.child.start_kill().expect("SIGKILL redis-server");
        self.child.wait().await.expect("reaped");
    }

    /// Starts a Redis again on the port of one [`Self::stop`]ped.
    pub(crate) async fn resume(&mut self) {
        self.child = Self::run(self.port).await;
    }

    pub(crate) async fn flushall(&self) {
        let client = crate::harness::redis_client(&self.url).await;
        let _: () = fred::prelude::ClientLike::flushall(&client, false)
            .await
            .expect("flushall");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn flushall_mid_run_loses_nothing() {
    const POSTS: usize = 60;
    let redis = PrivateRedis::start().await;
    let receiver = Receiver::start(true, false).await;
    let app = TestApp::spawn_on_redis(&redis.url).await;
    let token = app.token("alice", None, &[]);
    receiver.connect(&app, "alice").await;
    let _worker = spawn_worker(&app, &redis.url, true);
    // Due over three seconds from now; Redis is wiped while some are out and most are not.
    for i in 0..POSTS {
        webhook_post(
            &app,
            &token,
            &format!("post {i}"),
            &in_ms(1_000 + (i as i64) * 50),
        )
        .await;
    }
    wait_for_created(&receiver, POSTS / 4, Duration::from_secs(30)).await;
    redis.flushall().await;
    wait_for_created(&receiver, POSTS, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(LEASE_MS * 2)).await;
    assert_eq!(
        receiver.created(),
        POSTS,
        "every post published exactly once"
    );
    // The receiver dedupes by idempotency key, so `created` cannot see a second call with
    // the same key: count the calls themselves, and their keys and targets.
    let calls = receiver.calls();
    assert_eq!(calls.len(), POSTS, "one call per target: {calls:?}");
    let keys: HashSet<&String> = calls.iter().map(|(k, _)| k).collect();
    let targets: HashSet<&String> = calls.iter().map(|(_, t)| t).collect();
    assert_eq!(keys.len(), POSTS, "each with its own key");
    assert_eq!(targets.len(), POSTS, "each for its own target");
    assert_eq!(published_targets(&app).await, POSTS as i64);
}

/// A subscriber of the API process sees the transitions a separate `herald worker`
/// process makes (relayed through Redis), in order.
#[tokio::test]
async fn subscribers_see_transitions_made_by_a_worker_process() {
    let receiver = Receiver::start(true, false).await;
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    receiver.connect(&app, "alice").await;
    let _worker = spawn_worker(&app, &app.redis_url, true);
    let draft = app
        .create_post(
            &token,
            json!({"content": "relayed", "platforms": ["webhook"]}),
        )
        .await;
    let id = draft["id"].as_str().expect("id");
    let mut socket = app.ws(&token).await;
    crate::harness::subscribe_post(&mut socket, id).await;
    until_the_worker_relays(&app, &token).await;
    app.ok(
        &token,
        "mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id } }",
        json!({"id": id, "at": in_ms(300)}),
    )
    .await;
    let statuses = crate::harness::post_statuses_until(&mut socket, "PUBLISHED").await;
    assert_eq!(statuses, ["SCHEDULED", "PUBLISHING", "PUBLISHED"]);
}

/// Waits until the worker process relays its transitions (it learns through Redis that
/// someone listens): a probe subscriber on its own socket sees a probe post, due now, go
/// `PUBLISHING`, a transition only the worker makes. A probe published before the worker
/// knew goes unseen, and another is tried.
async fn until_the_worker_relays(app: &TestApp, token: &str) {
    use crate::harness::{ws_next, ws_send};
    let mut probe = app.ws(token).await;
    ws_send(
        &mut probe,
        json!({"id": "probe", "type": "subscribe", "payload": {
            "query": "subscription { postUpdated { id status } }"}}),
    )
    .await;
    for _ in 0..50 {
        let post = webhook_post(app, token, "probe", &in_ms(0)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1_000);
        while let Ok(message) = tokio::time::timeout_at(deadline, ws_next(&mut probe)).await {
            assert_eq!(message["type"], "next", "{message}");
            let update = &message["payload"]["data"]["postUpdated"];
            if update["id"] == post.as_str() && update["status"] == "PUBLISHING" {
                return;
            }
        }
    }
    panic!("the worker relayed no transition of 50 probe posts");
}
