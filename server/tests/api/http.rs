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
