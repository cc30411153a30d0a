//! Compiled reads: a `posts` document runs through the stock executor the first time; once
//! it has run without errors, the server answers it with one SQL statement that writes
//! the page's JSON. Those answers must be the stock executor's, word for word: the
//! stock answer here comes from a twin server over the same database with compiled reads
//! off ([`TestApp::stock_twin`]), and the two response bodies are compared as text (key
//! order, repeated keys and number spelling included). A plan learned by one tenant and
//! used by another answers with the other tenant's posts only.

use std::fmt::Debug;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use herald_server::graphql::schema::{columns, span};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;

use crate::harness::{TestApp, error_code};

/// Every field a plan covers, as the descriptor tables list them (`__typename` at every
/// level), cursors and `pageInfo`.
static EVERY_FIELD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "query($first: Int, $after: String, $filter: PostFilter, $order: PostOrder) {{
  posts(first: $first, after: $after, filter: $filter, orderBy: $order) {{
    __typename
    pageInfo {{ __typename hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ __typename cursor node {{ {} }} }}
  }}
}}",
        columns::POST.every_field()
    )
});

/// Aliases, a named fragment and inline fragments.
const FRAGMENTS: &str = "query Page($n: Int) { list: posts(first: $n) { ...Connection } }
fragment Connection on PostConnection {
  info: pageInfo { last: endCursor more: hasNextPage }
  edges { ... on PostEdge { at: cursor } node { ...Card } }
}
fragment Card on Post { key: id text: content ... { state: status } targets { ... on Target { p: platform s: status } } }";

/// The plan's statement: the page with each post's JSON written by Postgres.
fn is_compiled(sql: &str) -> bool {
    sql.contains("coalesce('{\"")
}

/// The stock executor's answer to `query`, from the twin server at `stock` (compiled
/// reads off, same database): the parsed body and its text.
async fn stock(
    app: &TestApp,
    stock: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (Value, String) {
    let before = app.statements();
    let text = app.gql_text_at(stock, token, query, variables).await;
    let statements = app.statements_since(before);
    assert!(
        !statements.iter().any(|sql| is_compiled(sql)),
        "the twin answers with the stock executor: {statements:?}"
    );
    (parse(&text), text)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("JSON body ({e}): {text}"))
}

/// Runs `query` (already learned) and returns its body, the body's text and whether one
/// compiled statement answered it.
async fn run(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (Value, String, bool) {
    let before = app.statements();
    let text = app.gql_text_at(&app.base, token, query, variables).await;
    let statements = app.statements_since(before);
    let compiled = statements.len() == 1 && is_compiled(&statements[0]);
    (parse(&text), text, compiled)
}

/// Lets the server learn `query` by running it once with `variables`, which must succeed.
async fn learn(app: &TestApp, token: &str, query: &str, variables: Value) {
    app.ok(token, query, variables).await;
}

/// Asserts that `query` with `variables` is answered by its plan with the very text the
/// stock executor answers; returns the answer's `data`.
async fn assert_compiled_as_stock(
    app: &TestApp,
    stock_at: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let (expected, expected_text) =
        stock(app, stock_at, Some(token), query, variables.clone()).await;
    assert!(expected.get("errors").is_none(), "{expected}");
    let (body, text, compiled) = run(app, Some(token), query, variables.clone()).await;
    assert!(compiled, "answered by the plan: {variables}");
    assert_eq!(text, expected_text, "word for word; variables: {variables}");
    body["data"].clone()
}

/// Three posts of alice's with every kind of value (NULLs, 0/3/6 fraction digits, escapes,
/// each status), an archived one, and one of bob's; returns alice's token.
async fn seed(app: &TestApp) -> String {
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &[]);
    let contents = [
        "plain",
        "quotes \" and \\ backslash, tab\t, newline\n, bell \u{1}, émoji 🚀",
        "third",
        "archived",
    ];
    for content in contents {
        app.create_post(
            &alice,
            json!({"content": content,
                   "targets": [{"platform": "x"}, {"platform": "bluesky"},
                               {"platform": "mastodon", "options": [
                                   {"key": "visibility", "value": "unlisted"},
                                   {"key": "spoiler_text", "value": "cw: \"loud\""}]}],
                   "media": [{"url": "https://cdn.example/a.png", "altText": "a \"cat\"",
                              "mimeType": "image/png"},
                             {"url": "https://cdn.example/b.jpg"}]}),
        )
        .await;
    }
    app.create_post(&bob, json!({"content": "bob's", "platforms": ["x"]}))
        .await;
    app.db
        .execute_unprepared(
            r#"
            UPDATE social_posts SET status = 'scheduled',
              scheduled_at = date_trunc('second', now()) + interval '3 days',
              local_scheduled_at = date_trunc('second', now()) + interval '3 days 250 milliseconds',
              timezone = 'Europe/Paris', campaign = 'launch "q"' || E'\n✓',
              notes = 'n', created_at = date_trunc('second', created_at)
              WHERE content = 'plain';
            UPDATE social_posts SET status = 'partially_published', posted_at = now(),
              scheduled_at = date_trunc('milliseconds', now()) - interval '1 hour',
              approval_required = true, approval_status = 'rejected',
              rejection_reason = E'no\ttabs', failure_reason = 'x failed',
              created_at = date_trunc('milliseconds', created_at) + interval '10 milliseconds'
              WHERE content LIKE 'quotes%';
            UPDATE social_posts SET archived_at = now() WHERE content = 'archived';
            UPDATE post_targets t SET options = '{"visibility": "unlisted", "spoiler_text": "a",
                "spoiler_text": "cw: \"loud\""}'
              FROM social_posts p WHERE p.id = t.post_id AND p.content LIKE 'quotes%'
              AND t.platform = 'mastodon';
            UPDATE social_posts SET media = '[]',
              media_urls = '["https://cdn.example/legacy.gif", 7, "https://cdn.example/é"]'
              WHERE content = 'third';
            UPDATE post_targets t SET status = 'published', platform_post_id = '123',
              platform_url = 'https://x.example/123', published_at = now(),
              last_response_code = 201, attempts = 1
              FROM social_posts p WHERE p.id = t.post_id AND p.content LIKE 'quotes%'
              AND t.platform = 'x';
            UPDATE post_targets t SET status = 'failed', attempts = 3,
              last_error = 'HTTP 429: "slow down"' || chr(1), last_response_code = 429
              FROM social_posts p WHERE p.id = t.post_id AND p.content LIKE 'quotes%'
              AND t.platform = 'bluesky';
            UPDATE post_targets t SET status = 'retrying'
              FROM social_posts p WHERE p.id = t.post_id AND p.content = 'plain';
            INSERT INTO post_metrics (id, target_id, fetched_at, likes, shares, raw)
              SELECT gen_random_uuid(), t.id, date_trunc('second', now()) - s.age * interval '1 hour',
                s.likes, 2, s.raw::json
              FROM post_targets t JOIN social_posts p ON p.id = t.post_id
              CROSS JOIN (VALUES
                (2, 1, '{"favourites": 1}'),
                (1, 5, '{"zeta": 3, "favourites": 5, "Alpha": -2, "ratio": 0.5, "big": 1e3,
                         "huge": 98765432109876543210, "label": "x", "none": null,
                         "dup": 1, "dup": 2, "negative_zero": -0}')
              ) AS s(age, likes, raw)
              WHERE p.content LIKE 'quotes%' AND t.platform = 'x';
            "#,
        )
        .await
        .expect("seed values");
    alice
}

#[tokio::test]
async fn pages_answered_by_a_plan_are_the_stock_executors_answers() {
    let app = TestApp::spawn().await;
    let alice = seed(&app).await;
    let twin = app.stock_twin().await;
    learn(&app, &alice, &EVERY_FIELD, json!({})).await;
    let scheduled = json!({"field": "SCHEDULED_AT", "direction": "ASC"});
    let cases = [
        json!({}),
        json!({"first": 2}),
        json!({"order": scheduled}),
        json!({"order": {"field": "CREATED_AT", "direction": "ASC"}, "first": 1}),
        json!({"filter": {"archived": true}}),
        json!({"filter": {"status": ["SCHEDULED", "PARTIALLY_PUBLISHED"]}}),
        json!({"filter": {"platform": "X", "campaign": "launch \"q\"\n✓"}}),
        json!({"filter": {"campaign": "none of them"}}),
    ];
    for variables in cases {
        let data = assert_compiled_as_stock(&app, &twin, &alice, &EVERY_FIELD, variables).await;
        let edges = data["posts"]["edges"].as_array().expect("edges");
        assert!(
            edges
                .iter()
                .all(|e| e["node"]["ownerId"] == "user:alice" && e["node"]["content"] != "bob's"),
            "{data}"
        );
    }
    // Every kind of value was compared: the list holds them all.
    let data = assert_compiled_as_stock(&app, &twin, &alice, &EVERY_FIELD, json!({})).await;
    let edges = data["posts"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 3, "{data}");
    let tricky = edges
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["status"] == "PARTIALLY_PUBLISHED")
        .expect("the post with escapes");
    assert!(
        tricky["content"]
            .as_str()
            .expect("content")
            .contains('\u{1}')
    );
    let statuses: Vec<_> = tricky["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["status"].as_str().expect("status").to_owned())
        .collect();
    assert_eq!(statuses.len(), 3, "{tricky}");
    assert!(statuses.contains(&"FAILED".to_owned()), "{statuses:?}");
    let target = |platform: &str| {
        tricky["targets"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["platform"] == platform))
            .cloned()
            .expect("target")
    };
    let x = target("x");
    assert_eq!(x["metrics"]["likes"], 5, "{x}");
    assert_eq!(
        x["metrics"]["raw"],
        json!([
            {"__typename": "MetricValue", "name": "Alpha", "value": -2},
            {"__typename": "MetricValue", "name": "dup", "value": 2},
            {"__typename": "MetricValue", "name": "favourites", "value": 5},
            {"__typename": "MetricValue", "name": "zeta", "value": 3},
        ])
    );
    assert_eq!(target("bluesky")["metrics"], Value::Null);
    let keys: Vec<_> = target("mastodon")["options"]
        .as_array()
        .expect("options")
        .iter()
        .map(|o| o["key"].clone())
        .collect();
    assert_eq!(keys, [json!("spoiler_text"), json!("visibility")]);

    // Paging on with the end cursor, in both orders.
    for order in [json!(null), scheduled] {
        let first = assert_compiled_as_stock(
            &app,
            &twin,
            &alice,
            &EVERY_FIELD,
            json!({"first": 2, "order": order}),
        )
        .await;
        let after = first["posts"]["pageInfo"]["endCursor"].clone();
        assert!(after.is_string(), "{first}");
        let next = assert_compiled_as_stock(
            &app,
            &twin,
            &alice,
            &EVERY_FIELD,
            json!({"first": 2, "after": after, "order": order}),
        )
        .await;
        assert_eq!(next["posts"]["edges"].as_array().map(Vec::len), Some(1));
        assert_eq!(next["posts"]["pageInfo"]["hasPreviousPage"], true);
    }

    // The edges twice, under two aliases (only one may select the node).
    let twice = "{ posts(first: 2) { a: edges { cursor } b: edges { cursor node { id } } } }";
    learn(&app, &alice, twice, json!({})).await;
    let data = assert_compiled_as_stock(&app, &twin, &alice, twice, json!({})).await;
    assert_eq!(data["posts"]["a"].as_array().map(Vec::len), Some(2));

    // Aliases and fragments.
    learn(&app, &alice, FRAGMENTS, json!({"n": 2})).await;
    let data = assert_compiled_as_stock(&app, &twin, &alice, FRAGMENTS, json!({"n": 2})).await;
    assert_eq!(data["list"]["edges"].as_array().map(Vec::len), Some(2));
    assert!(
        data["list"]["edges"][0]["node"]["key"].is_string(),
        "{data}"
    );
}

#[tokio::test]
async fn a_plan_steps_aside_for_what_the_stock_executor_must_answer() {
    let app = TestApp::spawn().await;
    let alice = seed(&app).await;
    let twin = app.stock_twin().await;
    learn(&app, &alice, &EVERY_FIELD, json!({"first": 2})).await;
    // Each of these gets the stock executor's answer (an error), not the plan's.
    let cases = [
        (None, json!({"first": 2}), "UNAUTHENTICATED"),
        (
            Some(alice.as_str()),
            json!({"first": 500}),
            "BAD_USER_INPUT",
        ),
        (
            Some(alice.as_str()),
            json!({"first": "two"}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            Some(alice.as_str()),
            json!({"after": "not-a-cursor"}),
            "BAD_USER_INPUT",
        ),
        (
            Some(alice.as_str()),
            json!({"filter": {"status": ["NOT_A_STATUS"]}}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            Some(alice.as_str()),
            json!({"filter": {"archived": false, "unknownField": true}}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            Some(alice.as_str()),
            json!({"order": {"field": "CREATED_AT"}, "first": 2.5}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ];
    for (token, variables, code) in cases {
        let (_, expected_text) = stock(&app, &twin, token, &EVERY_FIELD, variables.clone()).await;
        let (body, text, compiled) = run(&app, token, &EVERY_FIELD, variables.clone()).await;
        assert!(!compiled, "{variables}");
        assert_eq!(text, expected_text, "{variables}");
        assert!(body.get("errors").is_some(), "{body}");
        assert_eq!(error_code(&body), Some(code), "{variables}: {body}");
    }
    // Media details that do not deserialise: the stock executor falls back to the URLs.
    app.db
        .execute_unprepared(
            r#"UPDATE social_posts SET media = '[{"url": 5}]' WHERE content = 'plain'"#,
        )
        .await
        .expect("unreadable media");
    let (expected, expected_text) = stock(&app, &twin, Some(&alice), &EVERY_FIELD, json!({})).await;
    assert!(expected.get("errors").is_none(), "{expected}");
    let (body, text, compiled) = run(&app, Some(&alice), &EVERY_FIELD, json!({})).await;
    assert!(!compiled);
    assert_eq!(text, expected_text, "{body}");
    // Media with an item lacking its URL, and a year chrono writes with a sign.
    for update in [
        r#"UPDATE social_posts SET media = '[{"url": "https://a.example"}, {"alt": "x"}]'
           WHERE content = 'plain'"#,
        "UPDATE social_posts SET media = '[]', scheduled_at = '10000-01-01T04:30:00Z'
           WHERE content = 'plain'",
    ] {
        app.db.execute_unprepared(update).await.expect("update");
        let (expected, expected_text) =
            stock(&app, &twin, Some(&alice), &EVERY_FIELD, json!({})).await;
        assert!(expected.get("errors").is_none(), "{expected}");
        let (body, text, compiled) = run(&app, Some(&alice), &EVERY_FIELD, json!({})).await;
        assert!(!compiled, "{update}");
        assert_eq!(text, expected_text, "{body}");
    }
    // A stored status the schema does not know: the stock executor reports it.
    app.db
        .execute_unprepared("UPDATE social_posts SET status = 'bogus' WHERE content = 'third'")
        .await
        .expect("unknown status");
    let (expected, expected_text) = stock(&app, &twin, Some(&alice), &EVERY_FIELD, json!({})).await;
    assert!(expected.get("errors").is_some(), "{expected}");
    let before = app.statements();
    let text = app
        .gql_text_at(&app.base, Some(&alice), &EVERY_FIELD, json!({}))
        .await;
    let statements = app.statements_since(before);
    assert!(
        is_compiled(&statements[0]),
        "the plan ran first: {statements:?}"
    );
    assert!(
        statements.len() > 1,
        "then the stock executor: {statements:?}"
    );
    assert_eq!(text, expected_text);
}

#[tokio::test]
async fn documents_a_plan_does_not_cover_stay_with_the_stock_executor() {
    let app = TestApp::spawn().await;
    let alice = seed(&app).await;
    let twin = app.stock_twin().await;
    // Each document, and whether its answer's text is stable: async-graphql resolves the
    // root fields of a query concurrently and writes them in the order they finish, so
    // `posts` and `me` may come in either order, even from the stock executor alone;
    // that answer is compared parsed.
    let uncovered = [
        ("{ __typename posts { edges { node { id } } } }", true),
        (
            "{ posts { edges @include(if: true) { node { id } } } }",
            true,
        ),
        ("{ posts { edges { node { id } } } me { userId } }", false),
        (
            "query($skip: Boolean!) { posts { edges { node { id @skip(if: $skip) } } } }",
            true,
        ),
        (
            "{ posts { edges { node { id } } } posts { edges { node { id } } } }",
            true,
        ),
    ];
    for (query, stable_text) in uncovered {
        let variables = json!({"skip": false});
        learn(&app, &alice, query, variables.clone()).await;
        let (expected, expected_text) =
            stock(&app, &twin, Some(&alice), query, variables.clone()).await;
        assert!(expected.get("errors").is_none(), "{query}: {expected}");
        let (body, text, compiled) = run(&app, Some(&alice), query, variables).await;
        assert!(!compiled, "{query}");
        if stable_text {
            assert_eq!(text, expected_text, "{query}");
        } else {
            assert_eq!(body, expected, "{query}");
        }
    }
    // A document whose first run failed is not learned from it.
    let query = "query($n: Int) { posts(first: $n) { edges { node { id } } } }";
    let failed = app.gql(Some(&alice), query, json!({"n": 0})).await;
    assert_eq!(error_code(&failed), Some("BAD_USER_INPUT"), "{failed}");
    let (_, _, compiled) = run(&app, Some(&alice), query, json!({"n": 1})).await;
    assert!(!compiled, "learned from a failed run");
    let (_, _, compiled) = run(&app, Some(&alice), query, json!({"n": 1})).await;
    assert!(compiled, "learned from the clean run");
}

#[tokio::test]
async fn compiled_reads_can_be_turned_off() {
    let app = TestApp::spawn_with_stock_reads().await;
    let alice = seed(&app).await;
    learn(&app, &alice, &EVERY_FIELD, json!({})).await;
    let (body, _, compiled) = run(&app, Some(&alice), &EVERY_FIELD, json!({})).await;
    assert!(!compiled);
    assert_eq!(
        body["data"]["posts"]["edges"].as_array().map(Vec::len),
        Some(3)
    );
}

/// A span's fields: name and value.
type Fields = Vec<(String, String)>;

/// The `graphql.operation` spans opened in this process, by any test: their fields.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Fields>>>);

impl Spans {
    /// The process's recorder, installed as the global subscriber on first use (a
    /// subscriber set for one thread only misses spans when tests run in parallel).
    fn global() -> &'static Spans {
        static SPANS: OnceLock<Spans> = OnceLock::new();
        SPANS.get_or_init(|| {
            let spans = Spans::default();
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(spans.clone()),
            )
            .expect("no other global subscriber");
            spans
        })
    }

    /// The `answered_by` fields of the spans of operation `name` seen since the last call.
    fn answered_by(&self, name: &str) -> Vec<String> {
        let mut spans = self.0.lock().expect("spans");
        let field = |fields: &[(String, String)], key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut *spans)
            .into_iter()
            .partition(|fields| field(fields, "operation").as_deref() == Some(name));
        *spans = others;
        mine.iter()
            .filter_map(|fields| field(fields, "answered_by"))
            .collect()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Visitor(Fields);
        impl tracing::field::Visit for Visitor {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
                self.0.push((field.name().to_owned(), format!("{value:?}")));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.push((field.name().to_owned(), value.to_owned()));
            }
        }
        let metadata = attrs.metadata();
        if metadata.name() != span::NAME || metadata.target() != span::TARGET {
            return;
        }
        let mut fields = Visitor(Vec::new());
        attrs.record(&mut fields);
        self.0.lock().expect("spans").push(fields.0);
    }
}

#[tokio::test]
async fn compiled_answers_run_in_the_span_of_stock_executions() {
    let spans = Spans::global();
    let app = TestApp::spawn().await;
    let alice = seed(&app).await;
    // A name no other test uses: spans are recorded process-wide.
    let name = format!("Page{}", uuid::Uuid::new_v4().simple());
    let query = format!("query {name} {{ posts {{ edges {{ node {{ id content }} }} }} }}");
    learn(&app, &alice, &query, json!({})).await;
    assert_eq!(spans.answered_by(&name), ["executor"]);
    let (_, _, compiled) = run(&app, Some(&alice), &query, json!({})).await;
    assert!(compiled);
    assert_eq!(spans.answered_by(&name), ["compiled"]);
    // A plan that steps aside (no token) has opened its span; the executor answers in its own.
    let (_, _, compiled) = run(&app, None, &query, json!({})).await;
    assert!(!compiled);
    assert_eq!(spans.answered_by(&name), ["compiled", "executor"]);
}

/// The `ownerId`s and contents of a page's posts.
fn owners_and_contents(data: &Value) -> Vec<(String, String)> {
    data["posts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["node"]["ownerId"].as_str().expect("ownerId").to_owned(),
                e["node"]["content"].as_str().expect("content").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_plan_learned_by_one_tenant_answers_another_with_only_its_posts() {
    let app = TestApp::spawn().await;
    let alice = seed(&app).await;
    let twin = app.stock_twin().await;
    let bob = app.token("bob", None, &[]);
    let carol = app.token("carol", Some("acme"), &[]);
    app.create_post(&carol, json!({"content": "acme's", "platforms": ["x"]}))
        .await;
    let alices = [
        ("user:alice", "plain"),
        ("user:alice", "quotes"),
        ("user:alice", "third"),
    ];

    // Alice runs the document twice: the plan is learned, then answers her.
    learn(&app, &alice, &EVERY_FIELD, json!({})).await;
    let data = assert_compiled_as_stock(&app, &twin, &alice, &EVERY_FIELD, json!({})).await;
    let mut seen = owners_and_contents(&data);
    seen.sort();
    assert_eq!(seen.len(), alices.len(), "{data}");
    assert!(
        seen.iter()
            .zip(alices)
            .all(|((owner, content), (o, c))| owner == o && content.starts_with(c)),
        "{seen:?}"
    );
    // Bob, then a member of the org, run the same document: the plan answers each with
    // their tenant's posts only, as the stock executor does.
    let data = assert_compiled_as_stock(&app, &twin, &bob, &EVERY_FIELD, json!({})).await;
    assert_eq!(
        owners_and_contents(&data),
        [("user:bob".to_owned(), "bob's".to_owned())],
        "{data}"
    );
    let dave = app.token("dave", Some("acme"), &[]);
    let data = assert_compiled_as_stock(&app, &twin, &dave, &EVERY_FIELD, json!({})).await;
    assert_eq!(
        owners_and_contents(&data),
        [("org:acme".to_owned(), "acme's".to_owned())],
        "{data}"
    );
    // A filter's page too.
    let variables = json!({"first": 1, "filter": {"platform": "X"}});
    let data = assert_compiled_as_stock(&app, &twin, &bob, &EVERY_FIELD, variables).await;
    assert_eq!(owners_and_contents(&data).len(), 1, "{data}");
    assert_eq!(data["posts"]["pageInfo"]["hasNextPage"], false, "{data}");

    // And the other way round: a document learned by bob answers alice with hers.
    let other = "query { posts(first: 10) { edges { node { ownerId content } } } }";
    learn(&app, &bob, other, json!({})).await;
    let data = assert_compiled_as_stock(&app, &twin, &bob, other, json!({})).await;
    assert_eq!(
        owners_and_contents(&data),
        [("user:bob".to_owned(), "bob's".to_owned())]
    );
    let data = assert_compiled_as_stock(&app, &twin, &alice, other, json!({})).await;
    let seen = owners_and_contents(&data);
    assert_eq!(seen.len(), 3, "{data}");
    assert!(
        seen.iter().all(|(owner, _)| owner == "user:alice"),
        "{seen:?}"
    );
    let data = assert_compiled_as_stock(&app, &twin, &carol, other, json!({})).await;
    assert_eq!(
        owners_and_contents(&data),
        [("org:acme".to_owned(), "acme's".to_owned())]
    );
}
