//! The authorization matrix, generated from `schema.graphql`: every root query, mutation
//! and subscription must be classified in [`table`] (a field it does not classify fails
//! the test, by name), and every case is called as each kind of caller who must not get
//! the victim's data nor change it: anonymous, another tenant's member, another tenant's
//! admin (with every role), a user named like the victim's organisation, the instance
//! operator, and the victim's own member without the needed role. Each must answer
//! exactly as its class says (`UNAUTHENTICATED`, `NOT_FOUND`, `FORBIDDEN`, null, its own
//! tenant's view), without the victim's data, and the victim's rows (read as the
//! database's owner, past row-level security) and queue state must not change. The
//! rightful caller then makes the same call, which proves the call is well formed.

mod table;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::get;
use futures_util::StreamExt;
use herald_server::publish::recording::RecordingPublisher;
use herald_server::publish::{PublishFailure, PublisherRegistry};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{
    OPERATOR, Socket, TestApp, days_from_now, fast_worker, in_ms, plugin_host, ws_send,
};
use table::{Case, Class, Missing, Order, Root, Setup, Victim};

/// The victim's tenant.
const VICTIM_TENANT: &str = "org:acme";
/// Text in every post of the victim's.
const SECRET: &str = "acme-secret";

/// A kind of caller.
struct Caller {
    name: &'static str,
    token: Option<String>,
    /// Whether it belongs to the victim's tenant.
    victim: bool,
    roles: &'static [&'static str],
    operator: bool,
}

/// What a caller must get from a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Unauthenticated,
    Forbidden,
    NotFound,
    /// `data.<field>` null, no error.
    Null,
    /// (Subscriptions) nothing delivered.
    Silent,
    /// An answer about the caller's own tenant, with nothing of the victim's.
    OwnView,
    /// `BAD_USER_INPUT`, the same as for an id that exists nowhere.
    SameAsUnknown,
}

/// What `caller` must get from a case of `class`; `None` for a rightful caller.
fn expected(class: Class, caller: &Caller) -> Option<Expect> {
    use Expect::*;
    if caller.token.is_none() {
        return Some(Unauthenticated);
    }
    let has = |role: &str| caller.roles.contains(&role);
    if caller.victim {
        // Only what the victim's own callers may not do is checked here.
        return match class {
            Class::RoleGatedById(role, _) | Class::RoleGatedShared(role) if !has(role) => {
                Some(Forbidden)
            }
            Class::OperatorOnly => Some(Forbidden),
            _ => None,
        };
    }
    Some(match class {
        Class::Authenticated | Class::TenantRead | Class::TenantSharedState => OwnView,
        Class::TenantReadById(Missing::Null) => Null,
        Class::TenantReadById(Missing::NotFound) | Class::TenantMutationById => NotFound,
        Class::TenantReadById(Missing::Silent) => Silent,
        Class::ForeignReference => SameAsUnknown,
        Class::RoleGatedById(role, Order::RoleFirst) if !has(role) => Forbidden,
        Class::RoleGatedById(_, _) => NotFound,
        Class::RoleGatedShared(role) if has(role) => OwnView,
        Class::RoleGatedShared(_) => Forbidden,
        Class::OperatorOnly if caller.operator => return None,
        Class::OperatorOnly => Forbidden,
    })
}

/// The root fields of `schema.graphql` at the repository root, as `(root, field)`.
fn schema_fields() -> BTreeSet<(String, String)> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let sdl = std::fs::read_to_string(path).expect("schema.graphql");
    let document = async_graphql::parser::parse_schema(&sdl).expect("schema.graphql parses");
    let mut roots = Vec::new();
    for definition in &document.definitions {
        if let TypeSystemDefinition::Schema(schema) = definition {
            let schema = &schema.node;
            for (root, name) in [
                ("Query", &schema.query),
                ("Mutation", &schema.mutation),
                ("Subscription", &schema.subscription),
            ] {
                if let Some(name) = name {
                    roots.push((root, name.node.to_string()));
                }
            }
        }
    }
    assert_eq!(roots.len(), 3, "the schema names its three root types");
    let mut fields = BTreeSet::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let Some((root, _)) = roots.iter().find(|(_, name)| *name == ty.node.name.node) else {
            continue;
        };
        let TypeKind::Object(object) = &ty.node.kind else {
            panic!("root type {root} is not an object type");
        };
        for field in &object.fields {
            fields.insert((root.to_string(), field.node.name.node.to_string()));
        }
    }
    fields
}

fn root_name(root: Root) -> &'static str {
    match root {
        Root::Query => "Query",
        Root::Mutation => "Mutation",
        Root::Subscription => "Subscription",
    }
}

#[test]
fn every_root_field_is_classified() {
    let classified: BTreeSet<(String, String)> = table::cases()
        .iter()
        .map(|c| (root_name(c.root).to_owned(), c.field.to_owned()))
        .collect();
    let fields = schema_fields();
    let unclassified: Vec<String> = fields
        .difference(&classified)
        .map(|(root, field)| format!("{root}.{field}"))
        .collect();
    assert!(
        unclassified.is_empty(),
        "root fields of schema.graphql that the authorization table \
         (server/tests/api/authorization/table.rs) does not classify: {}",
        unclassified.join(", ")
    );
    let stale: Vec<String> = classified
        .difference(&fields)
        .map(|(root, field)| format!("{root}.{field}"))
        .collect();
    assert!(
        stale.is_empty(),
        "the authorization table classifies fields the schema no longer has: {}",
        stale.join(", ")
    );
}

/// The running app, its callers and the count of calls made.
struct Matrix {
    app: TestApp,
    publisher: Arc<RecordingPublisher>,
    callers: Vec<Caller>,
    /// The victim's member without roles: the rightful caller of the tenant's operations.
    member: String,
    /// The victim's admin (and approver): sets up fixtures, reads the queue state.
    admin: String,
    operator: String,
    /// Calls made by the matrix (set-up, the callers' and the rightful ones).
    calls: AtomicUsize,
    /// Reads of the victim's queue state for the snapshots.
    reads: AtomicUsize,
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
    async fn start() -> Self {
        let publisher = Arc::new(RecordingPublisher::new(true));
        let mut registry = PublisherRegistry::new();
        registry.register("x", publisher.clone());
        let host = plugin_host(&[("api.example.com", fake_example().await)]).await;
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

    async fn gql(&self, token: Option<&str>, document: &str, variables: Value) -> Value {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.app.gql(token, document, variables).await
    }

    async fn ok(&self, token: &str, document: &str, variables: Value) -> Value {
        let body = self.gql(Some(token), document, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    async fn create(&self, input: Value) -> Value {
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
    fn rightful(&self, class: Class) -> String {
        match class {
            Class::RoleGatedById(role, _) | Class::RoleGatedShared(role) => {
                self.app.token("rita", Some("acme"), &[role])
            }
            Class::OperatorOnly => self.operator.clone(),
            _ => self.member.clone(),
        }
    }

    /// The victim's items for a case of `setup`.
    async fn prepare(&self, setup: Setup, default_connection: &str) -> Victim {
        let post = match setup {
            Setup::Nothing | Setup::Connection => None,
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
        let string = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Victim {
            post: post.as_ref().map(|p| string(&p["id"])).unwrap_or_default(),
            target: post
                .as_ref()
                .map(|p| string(&p["targets"][0]["id"]))
                .unwrap_or_default(),
            connection,
        }
    }

    /// A new draft of `token`'s tenant; its id.
    async fn own_draft(&self, token: &str) -> String {
        let data = self
            .ok(
                token,
                "mutation { createPost(input: {content: \"own\", platforms: [\"x\"]}) { id } }",
                json!({}),
            )
            .await;
        data["createPost"]["id"].as_str().expect("id").to_owned()
    }

    async fn tenant_dead(&self) -> u64 {
        let stats = self
            .ok(&self.admin, "{ queueStats { dead } }", json!({}))
            .await;
        stats["queueStats"]["dead"].as_u64().expect("dead")
    }

    /// The victim's state: its rows of every tenant table (read as the database's owner,
    /// past row-level security) and its queue state (the tenant's and the instance's).
    async fn victim_state(&self) -> Value {
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
                               WHERE c.owner_id = $1)) AS j",
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
    async fn victim_markers(&self) -> Vec<String> {
        let rows = self
            .app
            .db
            .query_all(Statement::from_sql_and_values(
                self.app.db.get_database_backend(),
                "SELECT p.id::text AS id FROM social_posts p WHERE p.owner_id = $1
                 UNION ALL SELECT t.id::text FROM post_targets t
                   JOIN social_posts p ON p.id = t.post_id WHERE p.owner_id = $1
                 UNION ALL SELECT c.id::text FROM social_connections c WHERE c.owner_id = $1",
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

/// The `data` of `body` for `field`, treating a null `data` as null.
fn field_data<'a>(body: &'a Value, field: &str) -> &'a Value {
    if body["data"].is_null() {
        &body["data"]
    } else {
        &body["data"][field]
    }
}

/// Asserts that `body` is the error `code` with no data.
fn assert_refused(body: &Value, field: &str, code: &str, context: &str) {
    assert_eq!(
        body["errors"][0]["extensions"]["code"].as_str(),
        Some(code),
        "{context}: expected {code}, got {body}"
    );
    assert!(
        field_data(body, field).is_null(),
        "{context}: no data with {code}: {body}"
    );
}

fn assert_no_markers(body: &Value, markers: &[String], context: &str) {
    let text = body.to_string();
    for marker in markers {
        assert!(
            !text.contains(marker.as_str()),
            "{context}: the victim's {marker} leaked: {body}"
        );
    }
}

/// One HTTP case: every caller, then the rightful one.
async fn run_http(m: &Matrix, case: &Case, victim: &Victim) {
    let variables = (case.variables)(victim);
    let before = m.victim_state().await;
    let markers = m.victim_markers().await;
    for caller in &m.callers {
        let Some(expect) = expected(case.class, caller) else {
            continue;
        };
        let context = format!(
            "{}.{} ({:?}) as {}",
            root_name(case.root),
            case.field,
            case.class,
            caller.name
        );
        let mut variables = variables.clone();
        if case.own_draft {
            variables["own"] = json!(match &caller.token {
                Some(token) => m.own_draft(token).await,
                None => uuid::Uuid::new_v4().to_string(),
            });
        }
        let body = m
            .gql(caller.token.as_deref(), case.document, variables.clone())
            .await;
        match expect {
            Expect::Unauthenticated => {
                assert_refused(&body, case.field, "UNAUTHENTICATED", &context)
            }
            Expect::Forbidden => assert_refused(&body, case.field, "FORBIDDEN", &context),
            Expect::NotFound => assert_refused(&body, case.field, "NOT_FOUND", &context),
            Expect::Null => {
                assert!(body.get("errors").is_none(), "{context}: {body}");
                assert!(
                    body["data"].is_object() && body["data"][case.field].is_null(),
                    "{context}: expected null, got {body}"
                );
            }
            Expect::OwnView => {
                assert!(body.get("errors").is_none(), "{context}: {body}");
                if let Some(foreign) = case.foreign {
                    assert_eq!(body["data"], foreign(), "{context}: not its own view");
                }
            }
            Expect::SameAsUnknown => {
                let unknown = uuid::Uuid::new_v4().to_string();
                let mut other = variables.clone();
                other["id"] = json!(unknown);
                let baseline = m.gql(caller.token.as_deref(), case.document, other).await;
                assert_refused(&body, case.field, "BAD_USER_INPUT", &context);
                let masked = body.to_string().replace(&victim.connection, "<id>");
                assert_eq!(
                    masked,
                    baseline.to_string().replace(&unknown, "<id>"),
                    "{context}: another tenant's connection reads differently from an unknown one"
                );
            }
            Expect::Silent => unreachable!("subscriptions only"),
        }
        // An error may echo the id the caller sent itself, nothing else of the victim's.
        let markers: Vec<String> = markers
            .iter()
            .cloned()
            .filter(|marker| expect != Expect::SameAsUnknown || *marker != victim.connection)
            .collect();
        assert_no_markers(&body, &markers, &context);
        assert_eq!(
            m.victim_state().await,
            before,
            "{context}: the victim's state changed"
        );
    }

    // The rightful caller: the call is well formed and does what it says.
    let context = format!(
        "{}.{} as its rightful caller",
        root_name(case.root),
        case.field
    );
    let rightful = m.rightful(case.class);
    let mut variables = variables;
    let mut before = before;
    if case.own_draft {
        // The rightful caller's own draft is the victim's: a new row.
        variables["own"] = json!(m.own_draft(&rightful).await);
        before = m.victim_state().await;
    }
    let body = m.gql(Some(&rightful), case.document, variables).await;
    assert!(body.get("errors").is_none(), "{context}: {body}");
    assert!(
        !field_data(&body, case.field).is_null(),
        "{context}: no data: {body}"
    );
    match case.class {
        Class::TenantRead | Class::TenantReadById(_) => {
            let text = body.to_string();
            assert!(
                markers.iter().any(|marker| text.contains(marker.as_str())),
                "{context}: the victim's data is not in its own answer: {body}"
            );
        }
        Class::RoleGatedShared(_) => {
            if let Some(foreign) = case.foreign {
                assert_ne!(
                    body["data"],
                    foreign(),
                    "{context}: the owner's answer is an empty tenant's"
                );
            }
        }
        _ => {}
    }
    if case.settles {
        m.app
            .wait_for_post(&m.admin, &victim.post, Duration::from_secs(10), |p| {
                ["PUBLISHED", "FAILED"].contains(&p["status"].as_str().unwrap_or_default())
            })
            .await;
    }
    let after = m.victim_state().await;
    if case.changes {
        assert_ne!(after, before, "{context}: the call changed nothing");
    } else {
        assert_eq!(after, before, "{context}: a read changed the state");
    }
}

/// The WebSocket protocol Herald implements.
const TRANSPORT_WS: &str = "graphql-transport-ws";
/// The legacy protocol (subscriptions-transport-ws) still served for older clients.
const LEGACY_WS: &str = "graphql-ws";

/// A socket to `app` speaking `protocol`, before `connection_init`.
async fn open(app: &TestApp, protocol: &str) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", app.base)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().expect("header"));
    tokio_tungstenite::connect_async(request)
        .await
        .expect("connect")
        .0
}

/// The next message within `wait`, answering pings; `Err(code)` when the server closes.
async fn next_within(socket: &mut Socket, wait: Duration) -> Option<Result<Value, u16>> {
    loop {
        let frame = tokio::time::timeout(wait, socket.next()).await.ok()??;
        match frame.expect("frame") {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(&text).expect("json");
                if message["type"] == "ping" {
                    ws_send(socket, json!({"type": "pong"})).await;
                    continue;
                }
                return Some(Ok(message));
            }
            Message::Close(frame) => return Some(Err(frame.map_or(1005, |f| u16::from(f.code)))),
            _ => continue,
        }
    }
}

/// A socket initialised with `token` (acknowledged).
async fn connected(m: &Matrix, token: &str) -> Socket {
    m.calls.fetch_add(1, Ordering::Relaxed);
    let mut socket = open(&m.app, TRANSPORT_WS).await;
    ws_send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    let ack = next_within(&mut socket, Duration::from_secs(10)).await;
    assert!(
        matches!(&ack, Some(Ok(m)) if m["type"] == "connection_ack"),
        "{ack:?}"
    );
    socket
}

async fn subscribe(m: &Matrix, socket: &mut Socket, id: &str, case: &Case, variables: &Value) {
    m.calls.fetch_add(1, Ordering::Relaxed);
    ws_send(
        socket,
        json!({"id": id, "type": "subscribe",
               "payload": {"query": case.document, "variables": variables}}),
    )
    .await;
}

/// The first answer to a subscription: its `data`, or the code of its error.
async fn first_answer(socket: &mut Socket, context: &str) -> Result<Value, String> {
    let message = next_within(socket, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{context}: no answer within 10 s"))
        .unwrap_or_else(|code| panic!("{context}: closed {code}"));
    let errors = match message["type"].as_str() {
        Some("next") if message["payload"].get("errors").is_none() => {
            return Ok(message["payload"]["data"].clone());
        }
        Some("next") => {
            assert!(
                message["payload"]["data"].is_null(),
                "{context}: data with errors: {message}"
            );
            &message["payload"]["errors"]
        }
        Some("error") => &message["payload"],
        _ => panic!("{context}: unexpected {message}"),
    };
    Err(errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// The first answer to the case's subscription over the legacy protocol, as `token`.
async fn legacy_first_answer(
    m: &Matrix,
    token: &str,
    case: &Case,
    variables: &Value,
    context: &str,
) -> Result<Value, String> {
    m.calls.fetch_add(1, Ordering::Relaxed);
    let mut socket = open(&m.app, LEGACY_WS).await;
    ws_send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    let mut started = false;
    loop {
        let message = next_within(&mut socket, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{context}, legacy: no answer within 10 s"))
            .unwrap_or_else(|code| panic!("{context}, legacy: closed {code}"));
        match message["type"].as_str() {
            Some("connection_ack") if !started => {
                started = true;
                ws_send(
                    &mut socket,
                    json!({"id": "1", "type": "start",
                           "payload": {"query": case.document, "variables": variables}}),
                )
                .await;
            }
            Some("ka") => {}
            Some("data") if message["payload"].get("errors").is_none() => {
                return Ok(message["payload"]["data"].clone());
            }
            Some("data" | "error") => {
                let errors = message["payload"]
                    .get("errors")
                    .unwrap_or(&message["payload"]);
                return Err(errors[0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned());
            }
            _ => panic!("{context}, legacy: unexpected {message}"),
        }
    }
}

/// One subscription case: every caller, then the rightful one.
async fn run_subscription(m: &Matrix, case: &Case, victim: &Victim) {
    let variables = (case.variables)(victim);
    let before = m.victim_state().await;
    let markers = m.victim_markers().await;
    // Sockets kept open for the silent subscriptions: they must see nothing of the
    // victim's change made below.
    let mut silent = Vec::new();
    for caller in &m.callers {
        let Some(expect) = expected(case.class, caller) else {
            continue;
        };
        let context = format!(
            "{}.{} ({:?}) as {}",
            root_name(case.root),
            case.field,
            case.class,
            caller.name
        );
        let Some(token) = &caller.token else {
            assert_eq!(expect, Expect::Unauthenticated);
            // Without `connection_init`, a subscription closes the socket 4401; an init
            // without a token closes it 4403.
            let mut socket = open(&m.app, TRANSPORT_WS).await;
            subscribe(m, &mut socket, "anonymous", case, &variables).await;
            let closed = next_within(&mut socket, Duration::from_secs(10)).await;
            assert!(matches!(closed, Some(Err(4401))), "{context}: {closed:?}");
            let mut socket = open(&m.app, TRANSPORT_WS).await;
            m.calls.fetch_add(1, Ordering::Relaxed);
            ws_send(
                &mut socket,
                json!({"type": "connection_init", "payload": {}}),
            )
            .await;
            let closed = next_within(&mut socket, Duration::from_secs(10)).await;
            assert!(matches!(closed, Some(Err(4403))), "{context}: {closed:?}");
            // The legacy protocol: a `start` before the handshake closes 1011, an init
            // without a token is refused.
            let mut socket = open(&m.app, LEGACY_WS).await;
            m.calls.fetch_add(1, Ordering::Relaxed);
            ws_send(
                &mut socket,
                json!({"id": "1", "type": "start",
                       "payload": {"query": case.document, "variables": variables}}),
            )
            .await;
            let closed = next_within(&mut socket, Duration::from_secs(10)).await;
            assert!(
                matches!(closed, Some(Err(1011))),
                "{context}, legacy: {closed:?}"
            );
            let mut socket = open(&m.app, LEGACY_WS).await;
            m.calls.fetch_add(1, Ordering::Relaxed);
            ws_send(
                &mut socket,
                json!({"type": "connection_init", "payload": {}}),
            )
            .await;
            let refused = next_within(&mut socket, Duration::from_secs(10)).await;
            assert!(
                matches!(&refused, Some(Ok(m)) if m["type"] == "connection_error"),
                "{context}, legacy: {refused:?}"
            );
            continue;
        };
        let mut socket = connected(m, token).await;
        subscribe(m, &mut socket, "case", case, &variables).await;
        match expect {
            Expect::Forbidden => {
                assert_eq!(
                    first_answer(&mut socket, &context).await,
                    Err("FORBIDDEN".to_owned()),
                    "{context}"
                );
                assert_eq!(
                    legacy_first_answer(m, token, case, &variables, &context).await,
                    Err("FORBIDDEN".to_owned()),
                    "{context}, legacy"
                );
            }
            Expect::OwnView => {
                let data = first_answer(&mut socket, &context)
                    .await
                    .unwrap_or_else(|code| panic!("{context}: {code}"));
                if let Some(foreign) = case.foreign {
                    assert_eq!(data, foreign(), "{context}: not its own view");
                }
                assert_no_markers(&data, &markers, &context);
                let legacy = legacy_first_answer(m, token, case, &variables, &context).await;
                assert_eq!(legacy, Ok(data), "{context}, legacy");
            }
            Expect::Silent => {
                // Proves the subscription runs: the caller's own posts reach the socket
                // on a second subscription, started after this one.
                let own = json!({"query": "subscription { postUpdated { id } }"});
                ws_send(
                    &mut socket,
                    json!({"id": "own", "type": "subscribe", "payload": own}),
                )
                .await;
                loop {
                    m.gql(
                        Some(token),
                        "mutation { createPost(input: {content: \"probe\", platforms: [\"x\"]}) { id } }",
                        json!({}),
                    )
                    .await;
                    match next_within(&mut socket, Duration::from_millis(200)).await {
                        Some(Ok(message)) if message["id"] == "own" => break,
                        Some(other) => panic!("{context}: unexpected {other:?}"),
                        None => continue,
                    }
                }
                silent.push((context, socket));
            }
            other => panic!("{context}: {other:?} is not a subscription's answer"),
        }
    }

    // The rightful caller, then (for silent cases) a change of the victim's that must
    // reach it and nobody else.
    let context = format!(
        "{}.{} as its rightful caller",
        root_name(case.root),
        case.field
    );
    let mut socket = connected(m, &m.rightful(case.class)).await;
    subscribe(m, &mut socket, "case", case, &variables).await;
    if matches!(case.class, Class::TenantReadById(Missing::Silent)) {
        let mut received = None;
        for attempt in 0..50 {
            m.ok(
                &m.admin,
                "mutation($id: ID!, $n: String) { updatePost(id: $id, input: {notes: $n}) { id } }",
                json!({"id": victim.post, "n": format!("change {attempt}")}),
            )
            .await;
            if let Some(message) = next_within(&mut socket, Duration::from_millis(200)).await {
                received = Some(message.unwrap_or_else(|code| panic!("{context}: closed {code}")));
                break;
            }
        }
        let message = received.unwrap_or_else(|| panic!("{context}: no update delivered"));
        assert_eq!(
            message["payload"]["data"][case.field]["id"], victim.post,
            "{context}: {message}"
        );
        for (context, socket) in &mut silent {
            // Late events of the caller's own probes may still come; nothing else may.
            while let Some(message) = next_within(socket, Duration::from_millis(300)).await {
                assert!(
                    matches!(&message, Ok(m) if m["id"] == "own"),
                    "{context}: delivered {message:?}"
                );
            }
        }
    } else {
        let data = first_answer(&mut socket, &context)
            .await
            .unwrap_or_else(|code| panic!("{context}: {code}"));
        if let Some(foreign) = case.foreign {
            assert_ne!(
                data,
                foreign(),
                "{context}: the owner's answer is an empty tenant's"
            );
        }
        assert_eq!(
            m.victim_state().await,
            before,
            "the subscriptions changed the victim's state"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_refuses_callers_without_the_right() {
    let started = Instant::now();
    let m = Matrix::start().await;
    // The victim's standing state: a scheduled post (its queue is not empty) and its
    // default account on `example`.
    m.create(
        json!({"content": format!("{SECRET} standing"), "platforms": ["x"],
                    "scheduledAt": days_from_now(1)}),
    )
    .await;
    let connected = m
        .ok(
            &m.admin,
            "mutation { connectAccount(platform: \"example\", credentials: {accessToken: \"acme-secret-1\"}) { id } }",
            json!({}),
        )
        .await;
    let default_connection = connected["connectAccount"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let cases = table::cases();
    for case in &cases {
        let victim = m.prepare(case.setup, &default_connection).await;
        match case.root {
            Root::Query | Root::Mutation => run_http(&m, case, &victim).await,
            Root::Subscription => run_subscription(&m, case, &victim).await,
        }
    }
    eprintln!(
        "authorization matrix: {} cases, {} calls (and {} reads of the queue state), {:?}",
        cases.len(),
        m.calls.load(Ordering::Relaxed),
        m.reads.load(Ordering::Relaxed),
        started.elapsed()
    );
}
