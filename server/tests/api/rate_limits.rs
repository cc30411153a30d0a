//! Rate limits per caller: requests (HTTP and WebSocket `subscribe`) and, apart from them,
//! expensive mutations; a tenant over its limit gets 429 with `Retry-After` and
//! `RATE_LIMITED`, and limits no other tenant.

use std::num::NonZeroU32;

use herald_server::config::{GraphqlConfig, Rate, RateLimitConfig};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, RETRY_AFTER};
use serde_json::{Value, json};

use crate::harness::{TestApp, error_code, ws_next, ws_send};

const READ: &str = "{ posts(first: 1) { edges { cursor } } }";
const CREATE: &str = "mutation { createPost(input: {content: \"hi\"}) { id } }";

/// `burst` at once, then one a minute: a test never sees a cell come back.
fn rate(burst: u32) -> Option<Rate> {
    Some(Rate {
        per_minute: NonZeroU32::MIN,
        burst: NonZeroU32::new(burst).expect("non-zero"),
    })
}

async fn spawn(limits: RateLimitConfig) -> TestApp {
    TestApp::spawn_with_graphql(GraphqlConfig {
        rate_limits: limits,
        ..GraphqlConfig::default()
    })
    .await
}

/// POSTs `query` with an optional token and extra headers; the status, `Retry-After`
/// and body.
async fn send(
    app: &TestApp,
    token: Option<&str>,
    headers: &[(&str, &str)],
    query: &str,
) -> (StatusCode, Option<u64>, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", app.http_url()))
        .json(&json!({ "query": query }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .map(|v| v.to_str().expect("ascii").parse().expect("whole seconds"));
    (
        status,
        retry_after,
        response.json().await.expect("JSON body"),
    )
}

fn assert_limited((status, retry_after, body): &(StatusCode, Option<u64>, Value)) {
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry_after = retry_after.expect("Retry-After");
    assert!((1..=120).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(body), Some("RATE_LIMITED"), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["retryAfter"],
        json!(retry_after)
    );
    assert!(body.get("data").is_none(), "{body}");
}

fn assert_ok((status, _, body): &(StatusCode, Option<u64>, Value)) {
    assert_eq!(*status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn a_tenant_over_its_request_limit_gets_429_and_other_tenants_do_not() {
    let app = spawn(RateLimitConfig {
        requests: rate(3),
        mutations: None,
        client_ip_header: None,
    })
    .await;
    let alice = app.token("alice", Some("acme"), &[]);
    let carol = app.token("carol", Some("acme"), &[]);
    let bob = app.token("bob", None, &[]);
    for _ in 0..3 {
        assert_ok(&send(&app, Some(&alice), &[], READ).await);
    }
    // Alice's org has spent its burst: Carol, in the same org, is limited too.
    assert_limited(&send(&app, Some(&alice), &[], READ).await);
    assert_limited(&send(&app, Some(&carol), &[], READ).await);
    // Under the GraphQL media type the answer is the same.
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.http_url()))
        .bearer_auth(&alice)
        .header(ACCEPT, "application/graphql-response+json")
        .json(&json!({ "query": READ }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(RETRY_AFTER));
    // GET counts as well.
    let get = reqwest::Client::new()
        .get(format!("{}/graphql?query={{__typename}}", app.http_url()))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("request");
    assert_eq!(get.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another tenant, and anonymous clients, have limits of their own.
    for _ in 0..3 {
        assert_ok(&send(&app, Some(&bob), &[], READ).await);
    }
    assert_limited(&send(&app, Some(&bob), &[], READ).await);
    let anonymous = send(&app, None, &[], "{ __typename }").await;
    assert_eq!(anonymous.0, StatusCode::OK, "{}", anonymous.2);
}

#[tokio::test]
async fn anonymous_clients_are_told_apart_by_the_trusted_header() {
    let app = spawn(RateLimitConfig {
        requests: rate(2),
        mutations: None,
        client_ip_header: Some("x-forwarded-for".parse().expect("header name")),
    })
    .await;
    let first = [("x-forwarded-for", "198.51.100.1, 203.0.113.1")];
    let second = [("x-forwarded-for", "198.51.100.1, 203.0.113.2")];
    for _ in 0..2 {
        assert_ok(&send(&app, None, &first, "{ __typename }").await);
    }
    assert_limited(&send(&app, None, &first, "{ __typename }").await);
    // The same left-most (client-supplied) entry, another proxy-appended address.
    assert_ok(&send(&app, None, &second, "{ __typename }").await);
    // Without the header the peer's address (loopback) counts: a bucket of its own.
    assert_ok(&send(&app, None, &[], "{ __typename }").await);
    // An invalid token is anonymous.
    assert_limited(&send(&app, Some("not-a-token"), &first, "{ __typename }").await);
}

#[tokio::test]
async fn expensive_mutations_have_a_limit_apart_from_reads() {
    let app = spawn(RateLimitConfig {
        requests: rate(1_000),
        mutations: rate(2),
        client_ip_header: None,
    })
    .await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &[]);
    let created = app.create_post(&alice, json!({"content": "one"})).await;
    app.create_post(&alice, json!({"content": "two"})).await;
    let limited = send(&app, Some(&alice), &[], CREATE).await;
    assert_limited(&limited);
    assert!(
        limited.2["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expensive mutations")),
        "{}",
        limited.2
    );
    // Reads and cheap mutations still run.
    for _ in 0..5 {
        assert_ok(&send(&app, Some(&alice), &[], READ).await);
    }
    let id = created["id"].as_str().expect("id");
    assert_ok(
        &send(
            &app,
            Some(&alice),
            &[],
            &format!("mutation {{ deletePost(id: \"{id}\") }}"),
        )
        .await,
    );
    // The limit was not spent by the refused attempt: Alice has one post left, as before.
    let count = app
        .ok(&alice, "{ posts { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(count["posts"]["edges"].as_array().map(Vec::len), Some(1));

    // Aliases count one each: three at once are more than Bob's burst, and none runs.
    let three = "mutation { a: createPost(input: {content: \"a\"}) { id } \
                 b: createPost(input: {content: \"b\"}) { id } \
                 ...C } fragment C on Mutation { c: createPost(input: {content: \"c\"}) { id } }";
    assert_limited(&send(&app, Some(&bob), &[], three).await);
    let posts = app
        .ok(&bob, "{ posts { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(posts["posts"]["edges"], json!([]));
    // Bob's own limit is untouched by Alice's.
    assert_ok(&send(&app, Some(&bob), &[], CREATE).await);
}

#[tokio::test]
async fn websocket_operations_over_the_limit_get_rate_limited_errors() {
    let app = spawn(RateLimitConfig {
        requests: rate(3),
        mutations: rate(1),
        client_ip_header: None,
    })
    .await;
    let alice = app.token("alice", None, &[]);
    let mut socket = app.ws(&alice).await;
    let subscribe =
        |id: &str, query: &str| json!({"id": id, "type": "subscribe", "payload": {"query": query}});
    // A mutation over the socket spends the mutation limit.
    ws_send(&mut socket, subscribe("m1", CREATE)).await;
    let message = ws_next(&mut socket).await;
    assert_eq!(
        (message["id"].clone(), message["type"].clone()),
        (json!("m1"), json!("next")),
        "{message}"
    );
    assert_eq!(ws_next(&mut socket).await["type"], "complete");
    ws_send(&mut socket, subscribe("m2", CREATE)).await;
    let message = ws_next(&mut socket).await;
    assert_eq!(message["id"], "m2", "{message}");
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    // Three requests spent (m1, m2 and this one); the fourth is refused.
    ws_send(
        &mut socket,
        subscribe("s1", "subscription { postUpdated { id } }"),
    )
    .await;
    ws_send(
        &mut socket,
        subscribe("s2", "subscription { postUpdated { id } }"),
    )
    .await;
    let message = ws_next(&mut socket).await;
    assert_eq!(message["id"], "s2", "{message}");
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(message["payload"][0]["extensions"]["retryAfter"].as_u64() >= Some(1));
    // The HTTP endpoint shares the tenant's limit.
    assert_limited(&send(&app, Some(&alice), &[], READ).await);
    // Another tenant's socket is not limited.
    let bob = app.token("bob", None, &[]);
    let mut other = app.ws(&bob).await;
    ws_send(&mut other, subscribe("b1", CREATE)).await;
    assert_eq!(ws_next(&mut other).await["type"], "next");
}

#[tokio::test]
async fn a_batch_counts_each_request_and_each_expensive_mutation() {
    let app = TestApp::spawn_with_graphql(GraphqlConfig {
        batching: true,
        rate_limits: RateLimitConfig {
            requests: rate(5),
            mutations: rate(1),
            client_ip_header: None,
        },
        ..GraphqlConfig::default()
    })
    .await;
    let alice = app.token("alice", None, &[]);
    let batch = |queries: &[&str]| {
        let items: Vec<Value> = queries.iter().map(|q| json!({ "query": q })).collect();
        reqwest::Client::new()
            .post(format!("{}/graphql", app.http_url()))
            .bearer_auth(&alice)
            .json(&items)
            .send()
    };
    // Six requests at once are more than the burst of five: none runs.
    let response = batch(&[READ; 6]).await.expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(RETRY_AFTER));
    // Three requests, two of them expensive mutations: the second mutation is refused
    // in its place, the others run.
    let response = batch(&[CREATE, READ, CREATE]).await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let bodies: Value = response.json().await.expect("JSON body");
    assert!(
        bodies[0]["data"]["createPost"]["id"].is_string(),
        "{bodies}"
    );
    assert!(bodies[1]["data"]["posts"].is_object(), "{bodies}");
    assert_eq!(error_code(&bodies[2]), Some("RATE_LIMITED"), "{bodies}");
    // Two requests left of five: a batch of three is refused whole.
    let response = batch(&[READ; 3]).await.expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}
