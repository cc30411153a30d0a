//! The matrix's running app: the callers, the victim's fixtures, and snapshots of the
//! victim's state.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::get;
use herald_server::publish::recording::RecordingPublisher;
use herald_server::publish::{PublishFailure, PublisherRegistry};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use super::table::{Class, Setup, Victim};
use super::{Caller, SECRET, VICTIM_TENANT};
use crate::harness::{OPERATOR, TestApp, days_from_now, fast_worker, in_ms, plugin_host_only};

/// The running app, its callers and the count of calls made.
pub(super) struct Matrix {
    pub(super) app: TestApp,
    pub(super) publisher: Arc<RecordingPublisher>,
    pub(super) callers: Vec<Caller>,
    /// The victim's member without roles: the rightful caller of the tenant's operations.
    pub(super) member: String,
    /// The victim's admin (and approver): sets up fixtures, reads the queue state.
    pub(super) admin: String,
    pub(super) operator: String,
    /// Calls made by the matrix (set-up, the callers' and the rightful ones).
    pub(super) calls: AtomicUsize,
    /// Reads of the victim's queue state for the snapshots.
    pub(super) reads: AtomicUsize,
}

/// The fake `example` platform: any bearer token is an account named after it.
async fn fake_example() -> String {
    async fn me(headers: HeaderMap) -> axum::Json<Value> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        axum::Json(json!({"id": format!("acct-{token}"), "handle": token, "display_name": token}))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().route("/v1/me", get(me));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    format!("http://{addr}")
}

impl Matrix {
    pub(super) async fn start() -> Self {
        let publisher = Arc::new(RecordingPublisher::new(true));
        let mut registry = PublisherRegistry::new();
        registry.register("x", publisher.clone());
        // Only the example plugin: `x` is published by the recording publisher here.
        let host =
            plugin_host_only(&["example"], &[("api.example.com", fake_example().await)]).await;
        let app = TestApp::spawn_with_worker_and_plugins(registry, fast_worker(), host).await;
        let caller = |name, token: Option<String>, victim, roles, operator| Caller {
            name,
            token,
            victim,
            roles,
            operator,
        };
        let callers = vec![
            caller("anonymous", None, false, &[] as &[&str], false),
            caller(
                "the victim's member without roles",
                Some(app.token("mia", Some("acme"), &[])),
                true,
                &[],
                false,
            ),
            caller(
                "the victim's admin and approver",
                Some(app.token("ada", Some("acme"), &["admin", "approver"])),
                true,
                &["admin", "approver"],
                false,
            ),
            caller(
                "another tenant's member",
                Some(app.token("oscar", Some("rival"), &[])),
                false,
                &[],
                false,
            ),
            caller(
                "another tenant's admin and approver",
                Some(app.token("olga", Some("rival"), &["admin", "approver"])),
                false,
                &["admin", "approver"],
                false,
            ),
            caller(
                "a user named like the victim's org, admin and approver",
                Some(app.token("acme", None, &["admin", "approver"])),
                false,
                &["admin", "approver"],
                false,
            ),
            caller(
                "the instance operator",
                Some(app.token(OPERATOR, None, &[])),
                false,
                &[],
                true,
            ),
        ];
        Self {
            member: app.token("mia", Some("acme"), &[]),
            admin: app.token("ada", Some("acme"), &["admin", "approver"]),
            operator: app.token(OPERATOR, None, &[]),
            app,
            publisher,
            callers,
            calls: AtomicUsize::new(0),
            reads: AtomicUsize::new(0),
        }
    }

    pub(super) async fn gql(&self, token: Option<&str>, document: &str, variables: Value) -> Value {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.app.gql(token, document, variables).await
    }

    pub(super) async fn ok(&self, token: &str, document: &str, variables: Value) -> Value {
        let body = self.gql(Some(token), document, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    pub(super) async fn create(&self, input: Value) -> Value {
        let data = self
            .ok(
                &self.admin,
                "mutation($input: CreatePostInput!) { createPost(input: $input) { id targets { id } } }",
                json!({"input": input}),
            )
            .await;
        data["createPost"].clone()
    }

    /// The rightful caller of `class`'s operations.
    pub(super) fn rightful(&self, class: Class) -> String {
        match class {
            Class::RoleGatedById(role, _) | Class::RoleGatedShared(role) => {
                self.app.token("rita", Some("acme"), &[role])
            }
            Class::OperatorOnly => self.operator.clone(),
            _ => self.member.clone(),
        }
    }

    /// The victim's items for a case of `setup`.
    pub(super) async fn prepare(&self, setup: Setup, default_connection: &str) -> Victim {
        let post = match setup {
            Setup::Nothing | Setup::Connection | Setup::Media => None,
            Setup::Draft => Some(
                self.create(json!({"content": format!("{SECRET} draft"), "platforms": ["x"]}))
                    .await,
            ),
            Setup::Scheduled | Setup::Failed => Some(
                self.create(json!({"content": format!("{SECRET} scheduled"),
                                   "platforms": ["x"], "scheduledAt": days_from_now(1)}))
                    .await,
            ),
            Setup::PendingApproval | Setup::Rejected => Some(
                self.create(json!({"content": format!("{SECRET} pending"),
                                   "platforms": ["x"], "approvalRequired": true}))
                    .await,
            ),
            Setup::Dead => {
                self.publisher.script(
                    "x",
                    vec![Err(PublishFailure::Permanent {
                        message: "refused".into(),
                        response_code: Some(400),
                    })],
                );
                let dead_before = self.tenant_dead().await;
                let post = self
                    .create(json!({"content": format!("{SECRET} doomed"),
                                   "platforms": ["x"], "scheduledAt": in_ms(50)}))
                    .await;
                let deadline = Instant::now() + Duration::from_secs(10);
                while self.tenant_dead().await <= dead_before {
                    assert!(Instant::now() < deadline, "no dead job within 10 s");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Some(post)
            }
        };
        if setup == Setup::Rejected {
            let id = post.as_ref().and_then(|p| p["id"].as_str()).expect("id");
            self.ok(
                &self.admin,
                "mutation($id: ID!) { rejectPost(id: $id, reason: \"no\") { id } }",
                json!({"id": id}),
            )
            .await;
        }
        if setup == Setup::Failed {
            let id = post.as_ref().and_then(|p| p["id"].as_str()).expect("id");
            self.app
                .db
                .execute_unprepared(&format!(
                    "UPDATE post_targets SET status = 'failed', attempts = 3,
                            last_error = '{SECRET} failure' WHERE post_id = '{id}';
                     UPDATE social_posts SET status = 'failed',
                            scheduled_at = now() - interval '1 hour' WHERE id = '{id}'"
                ))
                .await
                .expect("fail the targets");
        }
        let connection = if setup == Setup::Connection {
            let actor = herald_server::domain::actor::Actor {
                user_id: "ada".into(),
                tenant_id: VICTIM_TENANT.into(),
                roles: vec![],
                operator: false,
            };
            let credentials = herald_plugin_host::Credentials {
                access_token: format!("{SECRET}-token"),
                refresh_token: None,
                expires_at: None,
                extra: Default::default(),
            };
            let stored = herald_server::db::tenant::scope(
                VICTIM_TENANT,
                self.app.connections.store(
                    &actor,
                    "example",
                    &format!("acct-{}", uuid::Uuid::new_v4()),
                    "second account",
                    &credentials,
                ),
            )
            .await
            .expect("store a connection");
            stored.id.to_string()
        } else {
            default_connection.to_owned()
        };
        let media = if setup == Setup::Media {
            let actor = herald_server::domain::actor::Actor {
                user_id: "ada".into(),
                tenant_id: VICTIM_TENANT.into(),
                roles: vec![],
                operator: false,
            };
            let mut png = crate::fakes::media::PNG.to_vec();
            png.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            let body =
                futures_util::stream::iter([Ok::<_, std::io::Error>(axum::body::Bytes::from(png))]);
            let stored = herald_server::db::tenant::scope(
                VICTIM_TENANT,
                self.app.services.media.upload(
                    &actor,
                    Some(&format!("{SECRET}.png")),
                    Some(SECRET),
                    body,
                ),
            )
            .await
            .expect("upload a file");
            stored.file.id.to_string()
        } else {
            String::new()
        };
        let string = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Victim {
            post: post.as_ref().map(|p| string(&p["id"])).unwrap_or_default(),
            target: post
                .as_ref()
                .map(|p| string(&p["targets"][0]["id"]))
                .unwrap_or_default(),
            connection,
            media,
        }
    }

    /// A new draft of `token`'s tenant; its id.
    pub(super) async fn own_draft(&self, token: &str) -> String {
        let data = self
            .ok(
                token,
                "mutation { createPost(input: {content: \"own\", platforms: [\"x\"]}) { id } }",
                json!({}),
            )
            .await;
        data["createPost"]["id"].as_str().expect("id").to_owned()
    }

    pub(super) async fn tenant_dead(&self) -> u64 {
        let stats = self
            .ok(&self.admin, "{ queueStats { dead } }", json!({}))
            .await;
        stats["queueStats"]["dead"].as_u64().expect("dead")
    }

    /// The victim's state: its rows of every tenant table (read as the database's owner,
    /// past row-level security) and its queue state (the tenant's and the instance's).
    pub(super) async fn victim_state(&self) -> Value {
        let rows: Value = self
            .app
            .db
            .query_one(Statement::from_sql_and_values(
                self.app.db.get_database_backend(),
                "SELECT json_build_object(
                   'posts', (SELECT json_agg(p ORDER BY p.id) FROM social_posts p
                              WHERE p.owner_id = $1),
                   'targets', (SELECT json_agg(t ORDER BY t.id) FROM post_targets t
                                JOIN social_posts p ON p.id = t.post_id WHERE p.owner_id = $1),
                   'attempts', (SELECT count(*) FROM publish_attempts a
                                 JOIN post_targets t ON t.id = a.target_id
                                 JOIN social_posts p ON p.id = t.post_id WHERE p.owner_id = $1),
                   'metrics', (SELECT count(*) FROM post_metrics m
                                JOIN post_targets t ON t.id = m.target_id
                                JOIN social_posts p ON p.id = t.post_id WHERE p.owner_id = $1),
                   'connections', (SELECT json_agg(c ORDER BY c.id) FROM social_connections c
                                    WHERE c.owner_id = $1),
                   'tokens', (SELECT json_agg(k ORDER BY k.id) FROM social_account_tokens k
                               JOIN social_connections c ON c.id = k.connection_id
                               WHERE c.owner_id = $1),
                   'media', (SELECT json_agg(m ORDER BY m.id) FROM media m
                              WHERE m.owner_id = $1),
                   'schedules', (SELECT json_agg(s ORDER BY s.connection_id)
                                  FROM posting_schedules s WHERE s.owner_id = $1),
                   'queued', (SELECT json_agg(q ORDER BY q.post_id, q.connection_id)
                               FROM queued_posts q WHERE q.owner_id = $1)) AS j",
                [VICTIM_TENANT.into()],
            ))
            .await
            .expect("victim rows")
            .expect("row")
            .try_get("", "j")
            .expect("json");
        self.reads.fetch_add(2, Ordering::Relaxed);
        let tenant = self
            .app
            .ok(
                &self.admin,
                "{ queueStats { scheduled active paused dead tenantPaused tenantPausedPlatforms } \
                   queueJobs(state: DEAD) { nodes { postId targetId } } }",
                json!({}),
            )
            .await;
        let instance = self
            .app
            .ok(
                &self.operator,
                "{ queueStats(scope: INSTANCE) { globallyPaused pausedPlatforms } }",
                json!({}),
            )
            .await;
        json!({"rows": rows, "tenant": tenant, "instance": instance})
    }

    /// Every id of the victim's (posts, targets, connections), its tenant id and its
    /// posts' secret: none may appear in another caller's answer.
    pub(super) async fn victim_markers(&self) -> Vec<String> {
        let rows = self
            .app
            .db
            .query_all(Statement::from_sql_and_values(
                self.app.db.get_database_backend(),
                "SELECT p.id::text AS id FROM social_posts p WHERE p.owner_id = $1
                 UNION ALL SELECT t.id::text FROM post_targets t
                   JOIN social_posts p ON p.id = t.post_id WHERE p.owner_id = $1
                 UNION ALL SELECT c.id::text FROM social_connections c WHERE c.owner_id = $1
                 UNION ALL SELECT m.id::text FROM media m WHERE m.owner_id = $1",
                [VICTIM_TENANT.into()],
            ))
            .await
            .expect("victim ids");
        let mut markers: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String>("", "id").expect("id"))
            .collect();
        markers.push(VICTIM_TENANT.to_owned());
        markers.push(SECRET.to_owned());
        markers
    }
}
