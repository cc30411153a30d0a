//! GraphQL over HTTP: content negotiation, status codes, methods, content types, limits
//! and the introspection switch, as the GraphQL-over-HTTP specification describes them.

use std::time::Duration;

use herald_server::config::GraphqlConfig;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::harness::TestApp;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn post(app: &TestApp, accept: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", app.http_url()))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    request.send().await.expect("request")
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn responses_follow_accept() {
    let app = TestApp::spawn().await;
    let query = json!({"query": "{ __typename }"});
    for (accept, expected) in [
        (None, "application/json"),
        (Some("*/*"), "application/json"),
        (Some("application/json"), "application/json"),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            GRAPHQL_RESPONSE,
        ),
    ] {
        let response = post(&app, accept, query.clone()).await;
        assert_eq!(response.status(), StatusCode::OK, "{accept:?}");
        assert!(
            content_type(&response).starts_with(expected),
            "{accept:?}: {}",
            content_type(&response)
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(body, json!({"data": {"__typename": "Query"}}));
    }
    let response = post(&app, Some("text/plain"), query).await;
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn request_errors_have_no_data_and_a_code() {
    let app = TestApp::spawn().await;
    for (query, code) in [
        ("{", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let response = post(&app, Some(GRAPHQL_RESPONSE), json!({"query": query})).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.expect("json");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");

        let response = post(&app, Some("application/json"), json!({"query": query})).await;
        assert_eq!(response.status(), StatusCode::OK, "{query}");
        let body: Value = response.json().await.expect("json");
        assert!(body.get("data").is_none(), "{body}");
    }
    // A field error is not a request error: 200 with data (null here) and a path.
    let response = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        json!({"query": "{ me { userId } }"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(body.get("data").is_some(), "{body}");
    // Malformed JSON and malformed parameters are 400.
    for body in [
        json!({"qeury": "{ __typename }"}),
        json!({"query": "{ __typename }", "variables": "x"}),
    ] {
        let response = post(&app, None, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.http_url()))
        .header(CONTENT_TYPE, "application/json")
        .body("{ \"not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn get_runs_queries_only_and_post_needs_json() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let url = format!("{}/graphql", app.http_url());
    let response = client
        .get(&url)
        .query(&[("query", "{ __typename }")])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .get(&url)
        .query(&[("query", "mutation { unschedulePost(id: \"x\") { id } }")])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[ALLOW], "POST");

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let response = client
            .post(&url)
            .header(CONTENT_TYPE, content_type)
            .body(json!({"query": "{ __typename }"}).to_string())
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
    }
    let response = client
        .post(&url)
        .body(json!({"query": "{ __typename }"}).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let response = client.put(&url).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key(ALLOW));

    // A browser gets GraphiQL.
    let response = client
        .get(&url)
        .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.expect("body").contains("graphiql"));
}

#[tokio::test]
async fn batches_bodies_and_introspection_follow_the_settings() {
    let app = TestApp::spawn().await;
    let batch = json!([{"query": "{ __typename }"}, {"query": "{ __typename }"}]);
    assert_eq!(
        post(&app, None, batch.clone()).await.status(),
        StatusCode::BAD_REQUEST
    );
    let big = json!({"query": format!("{{ __typename }} # {}", "x".repeat(2 << 20))});
    assert_eq!(
        post(&app, None, big).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // GraphiQL's introspection query is deep: the limits let it through.
    let introspection = json!({"query": "{ __schema { types { name fields { name type { name kind ofType { name kind ofType { name kind ofType { name kind ofType { name kind ofType { name kind ofType { name } } } } } } } } } } }"});
    let body: Value = post(&app, None, introspection.clone())
        .await
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_none(), "{body}");

    let app = TestApp::spawn_with_graphql(GraphqlConfig {
        introspection: false,
        batching: true,
        request_timeout: Duration::from_secs(5),
        ..GraphqlConfig::default()
    })
    .await;
    let body: Value = post(&app, None, batch).await.json().await.expect("json");
    assert_eq!(
        body,
        json!([{"data": {"__typename": "Query"}}, {"data": {"__typename": "Query"}}])
    );
    let body: Value = post(&app, None, introspection)
        .await
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_some(), "{body}");
}

#[tokio::test]
async fn persisted_queries_register_in_redis_and_run_by_hash() {
    use sha2::{Digest, Sha256};

    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let query = "query Me { me { userId } }";
    let hash = format!("{:x}", Sha256::digest(query.as_bytes()));
    let extensions = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    let client = reqwest::Client::new();
    let url = format!("{}/graphql", app.http_url());
    let send = |body: Value| {
        client
            .post(&url)
            .bearer_auth(&token)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
    };

    // Unknown hash: the client must send the query.
    let body: Value = send(json!({"extensions": extensions}))
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    assert!(body.get("data").is_none());

    // A query that does not match its hash is refused.
    let body: Value = send(json!({"query": "{ __typename }", "extensions": extensions}))
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_HASH_MISMATCH"
    );

    // Registered with its query, then served by hash, over POST and GET.
    let body: Value = send(json!({"query": query, "extensions": extensions}))
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(body, json!({"data": {"me": {"userId": "alice"}}}));
    let body: Value = send(json!({"extensions": extensions}))
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(body, json!({"data": {"me": {"userId": "alice"}}}));
    let response = client
        .get(&url)
        .bearer_auth(&token)
        .query(&[("extensions", extensions.to_string())])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"data": {"me": {"userId": "alice"}}}));
}

#[tokio::test]
async fn a_batch_holds_at_most_twenty_requests() {
    let app = TestApp::spawn_with_graphql(GraphqlConfig {
        batching: true,
        ..GraphqlConfig::default()
    })
    .await;
    let batch = |n: usize| {
        Value::Array(
            (0..n)
                .map(|i| json!({"query": format!("{{ n{i}: __typename }}")}))
                .collect(),
        )
    };
    let response = post(&app, None, batch(20)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    let answers = body.as_array().expect("one answer per request");
    assert_eq!(answers.len(), 20);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer, &json!({"data": {format!("n{i}"): "Query"}}));
    }
    for refused in [batch(21), batch(0)] {
        let response = post(&app, None, refused).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["message"], "a batch holds 1 to 20 requests",
            "{body}"
        );
        assert!(body.get("data").is_none(), "{body}");
    }
}

/// `{ __schema { queryType { ofType { … { name } } } } }` with `depth` fields on its
/// longest path.
fn query_of_depth(depth: usize) -> String {
    assert!(depth >= 3);
    let ofs = depth - 3;
    format!(
        "{{ __schema {{ queryType {{ {}name{} }} }} }}",
        "ofType { ".repeat(ofs),
        " }".repeat(ofs)
    )
}

/// `{ m0: me { userId } … }` of complexity `cost` (each field costs 1, so each `me { userId }`
/// costs 2; an odd cost ends with a `me { userId tenantId }`).
fn query_of_complexity(cost: usize) -> String {
    let mut fields: Vec<String> = (0..cost / 2)
        .map(|i| format!("m{i}: me {{ userId }}"))
        .collect();
    if cost % 2 == 1 {
        fields.pop();
        fields.push("last: me { userId tenantId }".to_owned());
    }
    format!("{{ {} }}", fields.join(" "))
}

#[tokio::test]
async fn depth_is_limited_to_16_and_complexity_to_2000() {
    let app = TestApp::spawn().await;
    let token = app.token("alice", None, &[]);
    let run = |query: String| {
        let request = reqwest::Client::new()
            .post(format!("{}/graphql", app.http_url()))
            .header(ACCEPT, GRAPHQL_RESPONSE)
            .bearer_auth(&token)
            .json(&json!({"query": query}));
        async move {
            request
                .send()
                .await
                .expect("request")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let body = run(query_of_depth(16)).await;
    assert!(body.get("errors").is_none(), "depth 16 runs: {body}");
    assert!(body["data"]["__schema"]["queryType"].is_object(), "{body}");
    let body = run(query_of_depth(17)).await;
    assert!(body.get("data").is_none(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("nested too deep"),
        "depth 17 refused: {body}"
    );

    let body = run(query_of_complexity(2_000)).await;
    assert!(body.get("errors").is_none(), "complexity 2000 runs");
    assert_eq!(body["data"]["m999"]["userId"], "alice");
    let body = run(query_of_complexity(2_001)).await;
    assert!(body.get("data").is_none(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("too complex"),
        "complexity 2001 refused: {body}"
    );
}

/// A mutation still running at `HERALD_GRAPHQL_TIMEOUT_SECS` is answered 503 `TIMEOUT`,
/// and what it had started is rolled back. It is held here by a lock on the post's row,
/// taken in Postgres by the test.
#[tokio::test]
async fn a_request_past_its_deadline_is_503_timeout_and_writes_nothing() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

    let app = TestApp::spawn_with_graphql(GraphqlConfig {
        request_timeout: Duration::from_secs(1),
        ..GraphqlConfig::default()
    })
    .await;
    let token = app.token("alice", None, &[]);
    let created = app
        .create_post(&token, json!({"content": "before", "platforms": ["x"]}))
        .await;
    let id = created["id"].as_str().expect("id");
    let edit = "mutation($id: ID!, $c: String!) { updatePost(id: $id, input: {content: $c}) { content version } }";
    let lock = app.db.begin().await.expect("begin");
    lock.execute(Statement::from_sql_and_values(
        lock.get_database_backend(),
        "SELECT id FROM social_posts WHERE id = $1::uuid FOR UPDATE",
        [id.into()],
    ))
    .await
    .expect("lock the post");

    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.http_url()))
        .bearer_auth(&token)
        .json(&json!({"query": edit, "variables": {"id": id, "c": "during the lock"}}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "TIMEOUT", "{body}");
    assert!(body.get("data").is_none(), "{body}");
    lock.rollback().await.expect("unlock");

    // The next edit gets the row after the timed-out one let go of it: one version later,
    // so the timed-out edit wrote nothing.
    let after = app.ok(&token, edit, json!({"id": id, "c": "after"})).await;
    assert_eq!(
        after["updatePost"],
        json!({"content": "after", "version": created["version"].as_i64().expect("v") + 1})
    );
}

#[tokio::test]
async fn persisted_queries_expire_after_their_ttl_and_an_unknown_hash_on_get_is_not_found() {
    use fred::prelude::KeysInterface;
    use sha2::{Digest, Sha256};

    let app = TestApp::spawn_with_graphql(GraphqlConfig {
        apq_ttl: Duration::from_secs(1),
        ..GraphqlConfig::default()
    })
    .await;
    let token = app.token("alice", None, &[]);
    let query = "query Ttl { me { userId } }";
    let hash = format!("{:x}", Sha256::digest(query.as_bytes()));
    let extensions = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    let client = reqwest::Client::new();
    let url = format!("{}/graphql", app.http_url());
    let by_get = |extensions: &Value| {
        client
            .get(&url)
            .bearer_auth(&token)
            .query(&[("extensions", extensions.to_string())])
            .send()
    };

    // An unknown hash over GET: the client must send the query.
    let response = by_get(&extensions).await.expect("request");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    assert!(body.get("data").is_none(), "{body}");

    // Registered: the key is in Redis with the configured TTL, and runs by hash.
    let registered = client
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"query": query, "extensions": extensions}))
        .send()
        .await
        .expect("request")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(registered, json!({"data": {"me": {"userId": "alice"}}}));
    let redis = crate::harness::redis_client(&app.redis_url).await;
    let key = format!("{{{}}}:apq:{hash}", app.namespace);
    let stored: Option<String> = redis.get(key.as_str()).await.expect("get");
    assert_eq!(stored.as_deref(), Some(query));
    let ttl: i64 = redis.pttl(key.as_str()).await.expect("pttl");
    assert!(
        0 < ttl && ttl <= 1_000,
        "expires within the 1 s TTL: {ttl} ms"
    );
    let body: Value = by_get(&extensions)
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(body, json!({"data": {"me": {"userId": "alice"}}}));

    // Redis drops the key; the hash is unknown again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while redis.exists::<i64, _>(key.as_str()).await.expect("exists") > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body: Value = by_get(&extensions)
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{body}"
    );
}

/// GraphiQL's page is served with a Content Security Policy that allows this origin only
/// (no inline or remote scripts, no framing), and the page needs nothing else: every
/// script it loads is one of Herald's own assets.
#[tokio::test]
async fn graphiql_is_served_with_a_same_origin_content_security_policy() {
    let app = TestApp::spawn().await;
    let response = reqwest::Client::new()
        .get(format!("{}/graphql", app.http_url()))
        .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let policy = header("content-security-policy");
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    for expected in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(directives.contains(&expected), "{expected} in {policy}");
    }
    assert!(
        !policy.contains("http:") && !policy.contains("https:") && !policy.contains('*'),
        "no remote origin: {policy}"
    );
    assert_eq!(header("x-frame-options"), "DENY");
    let page = response.text().await.expect("page");
    let scripts: Vec<&str> = page.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "{page}");
    for script in scripts {
        let tag = script.split('>').next().unwrap_or_default();
        let src = tag
            .split("src=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default();
        assert!(
            src.starts_with("/graphql/assets/"),
            "only Herald's own script files (the policy refuses inline ones): <script{tag}>"
        );
        let asset = reqwest::get(format!("{}{src}", app.http_url()))
            .await
            .expect("asset");
        assert_eq!(asset.status(), StatusCode::OK, "{src}");
    }
}

/// What anyone can store in the queue's Redis through APQ is bounded: anonymous callers
/// register nothing, a query over the size cap is not registered, and a tenant registers
/// at most its quota of new queries per TTL window. Unregistered queries still run.
#[tokio::test]
async fn persisted_query_registration_is_authenticated_capped_and_under_quota() {
    use fred::prelude::KeysInterface;
    use sha2::{Digest, Sha256};

    let app = TestApp::spawn_with_graphql(GraphqlConfig {
        apq_max_query_bytes: 200,
        apq_tenant_quota: 2,
        ..GraphqlConfig::default()
    })
    .await;
    let redis = crate::harness::redis_client(&app.redis_url).await;
    let client = reqwest::Client::new();
    let url = format!("{}/graphql", app.http_url());
    let register = |token: Option<String>, query: String| {
        let hash = format!("{:x}", Sha256::digest(query.as_bytes()));
        let mut request = client.post(&url).json(&json!({
            "query": query,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}},
        }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let body: Value = request
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("json");
            (hash, body)
        }
    };
    let stored = |hash: String| {
        let redis = redis.clone();
        let key = format!("{{{}}}:apq:{hash}", app.namespace);
        async move { redis.exists::<i64, _>(key.as_str()).await.expect("exists") == 1 }
    };
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &[]);

    // Anonymous: the query runs (refused field by field) and nothing is stored.
    let (hash, body) = register(None, "query Anon { me { userId } }".into()).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    assert!(!stored(hash).await, "an anonymous registration was stored");

    // Over the size cap: answered, not stored (and not counted).
    let long = format!("query Long {{ me {{ userId }} }} # {}", "x".repeat(300));
    let (hash, body) = register(Some(alice.clone()), long).await;
    assert_eq!(body["data"]["me"]["userId"], "alice", "{body}");
    assert!(!stored(hash).await, "a query over the cap was stored");

    // Two new queries fit alice's quota; a third is answered but not stored.
    for name in ["One", "Two"] {
        let (hash, body) = register(
            Some(alice.clone()),
            format!("query {name} {{ me {{ userId }} }}"),
        )
        .await;
        assert_eq!(body["data"]["me"]["userId"], "alice", "{body}");
        assert!(stored(hash).await, "{name} within the quota was not stored");
    }
    let (hash, body) = register(Some(alice.clone()), "query Three { me { userId } }".into()).await;
    assert_eq!(body["data"]["me"]["userId"], "alice", "{body}");
    assert!(!stored(hash).await, "a query past the quota was stored");
    // Registering a stored query again renews it without spending the quota.
    let (hash, _) = register(Some(alice.clone()), "query One { me { userId } }".into()).await;
    assert!(stored(hash).await);
    // The quota is alice's tenant's alone.
    let (hash, body) = register(Some(bob), "query Three { me { userId } }".into()).await;
    assert_eq!(body["data"]["me"]["userId"], "bob", "{body}");
    assert!(
        stored(hash).await,
        "another tenant's registration was refused"
    );
}
