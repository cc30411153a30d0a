//! Herald across the restarts of what it runs on: `herald serve` stopped by SIGTERM
//! finishes the request in flight and exits 0; the API and a worker process carry on after
//! their Redis and their Postgres restart. Each test restarts a private server of its own,
//! so the other tests' servers are never touched.

use std::process::Stdio;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::harness::{SECRET, TOKEN_KEY_B64, TestApp};
use crate::processes::{
    PrivateRedis, Receiver, in_ms, spawn_worker, wait_for_created, webhook_post,
};

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .expect("free port")
        .port()
}

/// Polls `probe` every 50 ms until it holds (at most `within`).
async fn until<F, Fut>(what: &str, within: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !probe().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM to `child`.
async fn sigterm(child: &Child) {
    let pid = child.id().expect("running");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .expect("kill");
    assert!(status.success(), "kill -TERM {pid}");
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_and_exits_0() {
    let app = TestApp::spawn().await;
    let port = free_port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--no-migrate", "--no-worker"])
        .env("DATABASE_URL", &app.database_url)
        .env("REDIS_URL", &app.redis_url)
        .env("HERALD_QUEUE_NAMESPACE", &app.namespace)
        .env("HERALD_BIND", format!("127.0.0.1:{port}"))
        .env("HERALD_JWT_SECRET", SECRET)
        .env("HERALD_TOKEN_KEY", TOKEN_KEY_B64)
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn herald serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    until(
        "herald serve answers /healthz",
        Duration::from_secs(30),
        || {
            let request = client.get(format!("{base}/healthz")).send();
            async move { request.await.is_ok_and(|r| r.status().is_success()) }
        },
    )
    .await;

    let token = app.token("alice", None, &[]);
    let post = app
        .create_post(&token, json!({"content": "before", "platforms": ["x"]}))
        .await;
    let id = post["id"].as_str().expect("id").to_owned();
    // The test holds the post's row, so the edit below stays in flight until it lets go.
    let lock = app.db.begin().await.expect("begin");
    lock.execute(Statement::from_sql_and_values(
        lock.get_database_backend(),
        "SELECT id FROM social_posts WHERE id = $1::uuid FOR UPDATE",
        [id.clone().into()],
    ))
    .await
    .expect("lock the post");
    let in_flight = tokio::spawn({
        let request = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&json!({
                "query": "mutation($id: ID!) { updatePost(id: $id, input: {content: \"during\"}) { content } }",
                "variables": {"id": id}}));
        async move { request.send().await }
    });
    until(
        "the edit waits for the row lock",
        Duration::from_secs(30),
        || async {
            app.db
                .query_one(Statement::from_string(
                    app.db.get_database_backend(),
                    "SELECT count(*) AS n FROM pg_stat_activity
                      WHERE wait_event_type = 'Lock' AND datname = current_database()",
                ))
                .await
                .expect("query")
                .and_then(|row| row.try_get::<i64>("", "n").ok())
                == Some(1)
        },
    )
    .await;

    sigterm(&serve).await;
    // It stops accepting connections but does not exit while the edit is in flight.
    until(
        "herald serve stops accepting connections",
        Duration::from_secs(30),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
        },
    )
    .await;
    assert!(
        serve.try_wait().expect("try_wait").is_none(),
        "exited with a request in flight"
    );
    assert!(!in_flight.is_finished());

    lock.rollback().await.expect("unlock");
    let response = in_flight
        .await
        .expect("join")
        .expect("the edit is answered");
    assert!(response.status().is_success(), "{response:?}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"data": {"updatePost": {"content": "during"}}}),
        "the edit in flight completed"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), serve.wait())
        .await
        .expect("exits after the last request")
        .expect("status");
    assert_eq!(status.code(), Some(0), "{status}");
}

/// After its Redis restarts (empty), the API enqueues again and the worker process claims
/// again: a post scheduled after the restart is published, and so is one scheduled before.
#[tokio::test]
async fn the_api_and_a_worker_carry_on_after_redis_restarts() {
    let mut redis = PrivateRedis::start().await;
    let receiver = Receiver::start(true, false).await;
    let app = TestApp::spawn_on_redis(&redis.url).await;
    let token = app.token("alice", None, &[]);
    receiver.connect(&app, "alice").await;
    let _worker = spawn_worker(&app, &redis.url, true);
    webhook_post(&app, &token, "before the restart", &in_ms(200)).await;
    wait_for_created(&receiver, 1, Duration::from_secs(30)).await;
    let pending = webhook_post(&app, &token, "due after the restart", &in_ms(4_000)).await;

    redis.restart().await;

    // The API's Redis clients are back once the queue answers its stats and a persisted
    // query registers again.
    let admin = app.token("alice", None, &["admin"]);
    let client = reqwest::Client::new();
    until(
        "the API uses Redis again",
        Duration::from_secs(30),
        || async {
            use sha2::{Digest, Sha256};
            let stats = app
                .gql(Some(&admin), "{ queueStats { scheduled } }", json!({}))
                .await;
            let query = format!(
                "query Probe {{ me {{ userId }} }} # {}",
                uuid::Uuid::new_v4()
            );
            let hash = format!("{:x}", Sha256::digest(query.as_bytes()));
            let registered: Value = client
                .post(format!("{}/graphql", app.http_url()))
                .bearer_auth(&token)
                .json(&json!({"query": query, "extensions":
                {"persistedQuery": {"version": 1, "sha256Hash": hash}}}))
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("json");
            stats.get("errors").is_none() && registered.get("errors").is_none()
        },
    )
    .await;
    let after = webhook_post(&app, &token, "after the restart", &in_ms(200)).await;
    for id in [&after, &pending] {
        app.wait_for_post(&token, id, Duration::from_secs(30), |p| {
            p["status"] == "PUBLISHED"
        })
        .await;
    }
    assert_eq!(receiver.created(), 3);
    assert_eq!(receiver.calls().len(), 3, "each published once");
}

/// A private Postgres (initialised in a temporary directory; as root, run as the
/// `postgres` user, as scripts/test does), so restarting it disturbs no other test.
struct PrivatePostgres {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Runs a Postgres tool (as `postgres` when we are root).
    async fn tool(&self, name: &str, args: &[&str]) {
        let tool = self.bin.join(name);
        let root = Command::new("id")
            .arg("-u")
            .output()
            .await
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false);
        let mut command = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&tool);
            c
        } else {
            Command::new(&tool)
        };
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
        assert!(
            output.status.success(),
            "{name} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Postgres installed (scripts/test installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("a Postgres version with initdb");
        let data = std::env::temp_dir().join(format!("herald-test-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&data).expect("data dir");
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&data)
            .status()
            .await;
        let pg = Self {
            bin,
            port: free_port(),
            data,
        };
        let data = pg.data.to_string_lossy().into_owned();
        pg.tool(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        )
        .await;
        pg.pg_ctl("start").await;
        pg
    }

    async fn pg_ctl(&self, action: &str) {
        let data = self.data.to_string_lossy().into_owned();
        let log = self.data.join("server.log").to_string_lossy().into_owned();
        let options = format!(
            "-p {} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        self.tool(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-m", "fast", "-o", &options, action,
            ],
        )
        .await;
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        let tool = self.bin.join("pg_ctl");
        let mut command = if std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
        {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&tool);
            c
        } else {
            std::process::Command::new(&tool)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// After its Postgres restarts, the API answers again (its pool drops the dead
/// connections) and the worker process publishes again.
#[tokio::test]
async fn the_api_and_a_worker_carry_on_after_postgres_restarts() {
    let pg = PrivatePostgres::start().await;
    let redis = std::env::var("REDIS_URL").expect("REDIS_URL");
    let receiver = Receiver::start(true, false).await;
    let app = TestApp::spawn_on(&pg.url(), &redis).await;
    let token = app.token("alice", None, &[]);
    receiver.connect(&app, "alice").await;
    let _worker = spawn_worker(&app, &redis, true);
    webhook_post(&app, &token, "before the restart", &in_ms(200)).await;
    wait_for_created(&receiver, 1, Duration::from_secs(30)).await;

    pg.pg_ctl("restart").await;

    let client = reqwest::Client::new();
    until(
        "the API reaches Postgres again",
        Duration::from_secs(30),
        || async {
            client
                .get(format!("{}/healthz", app.http_url()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
    let after = webhook_post(&app, &token, "after the restart", &in_ms(200)).await;
    let post = app
        .wait_for_post(&token, &after, Duration::from_secs(30), |p| {
            p["status"] == "PUBLISHED"
        })
        .await;
    assert_eq!(post["content"], "after the restart");
    assert_eq!(receiver.created(), 2);
    assert_eq!(receiver.calls().len(), 2, "each published once");
    let listed = app
        .ok(
            &token,
            "{ posts { edges { node { content } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["posts"]["edges"].as_array().map(Vec::len), Some(2));
}
