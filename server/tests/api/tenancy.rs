//! Tenant isolation: another tenant's post is NOT_FOUND for every operation; teammates in
//! the same org share posts; only approvers approve.

use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error, days_from_now};

#[tokio::test]
async fn another_tenant_sees_nothing_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &["approver", "admin"]);
    let post = app
        .create_post(
            &alice,
            json!({"content": "mine", "platforms": ["x"], "approvalRequired": true}),
        )
        .await;
    let id = post["id"].as_str().expect("id");

    let read = app
        .ok(
            &bob,
            "query($id: ID!) { post(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(read["post"], Value::Null);
    let listed = app
        .ok(&bob, "query { posts { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(listed["posts"]["edges"], json!([]));

    let attempts = [
        (
            "mutation($id: ID!) { updatePost(id: $id, input: {content: \"hijack\"}) { id } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!) { deletePost(id: $id) }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id } }",
            json!({"id": id, "at": days_from_now(1)}),
        ),
        (
            "mutation($id: ID!) { unschedulePost(id: $id) { id } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!) { approvePost(id: $id) { id } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!) { rejectPost(id: $id, reason: \"no\") { id } }",
            json!({"id": id}),
        ),
    ];
    for (query, vars) in attempts {
        let body = app.gql(Some(&bob), query, vars).await;
        assert_error(&body, "NOT_FOUND", None);
        assert!(
            !body.to_string().contains("alice"),
            "no details leak: {body}"
        );
    }
    let archived = app
        .ok(
            &bob,
            "mutation($t: DateTime!) { archivePosts(olderThan: $t) }",
            json!({"t": days_from_now(1)}),
        )
        .await;
    assert_eq!(archived["archivePosts"], 0);

    let unchanged = app
        .ok(
            &alice,
            "query($id: ID!) { post(id: $id) { content version approvalStatus } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        unchanged["post"],
        json!({"content": "mine", "version": 1, "approvalStatus": "PENDING"})
    );
}

#[tokio::test]
async fn teammates_share_posts_and_only_approvers_approve() {
    let app = TestApp::spawn().await;
    let author = app.token("ann", Some("acme"), &[]);
    let teammate = app.token("tom", Some("acme"), &[]);
    let approver = app.token("ada", Some("acme"), &["approver"]);
    let post = app
        .create_post(
            &author,
            json!({"content": "team post", "platforms": ["linkedin"], "approvalRequired": true}),
        )
        .await;
    let id = post["id"].as_str().expect("id");
    assert_eq!(post["ownerId"], "acme");
    assert_eq!(post["createdBy"], "ann");

    let seen = app
        .ok(
            &teammate,
            "query($id: ID!) { post(id: $id) { content } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(seen["post"]["content"], "team post");
    let me = app
        .ok(
            &teammate,
            "query { me { userId tenantId roles } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["me"],
        json!({"userId": "tom", "tenantId": "acme", "roles": []})
    );

    let denied = app
        .gql(
            Some(&teammate),
            "mutation($id: ID!) { approvePost(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_error(&denied, "FORBIDDEN", None);
    let denied = app
        .gql(
            Some(&author),
            "mutation($id: ID!) { rejectPost(id: $id, reason: \"x\") { id } }",
            json!({"id": id}),
        )
        .await;
    assert_error(&denied, "FORBIDDEN", None);

    let approved = app
        .ok(
            &approver,
            "mutation($id: ID!) { approvePost(id: $id) { approvalStatus version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        approved["approvePost"],
        json!({"approvalStatus": "APPROVED", "version": 2})
    );
}

/// Every column of a post's row and its targets' rows, to show nothing changed.
async fn rows_of(app: &TestApp, id: &str) -> Value {
    use sea_orm::{ConnectionTrait, Statement};
    app.db
        .query_one(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT json_build_object(
                'post', (SELECT row_to_json(p) FROM social_posts p WHERE p.id = $1::uuid),
                'targets', (SELECT json_agg(t ORDER BY t.platform) FROM post_targets t
                             WHERE t.post_id = $1::uuid),
                'attempts', (SELECT count(*) FROM publish_attempts a JOIN post_targets t
                              ON t.id = a.target_id WHERE t.post_id = $1::uuid),
                'metrics', (SELECT count(*) FROM post_metrics m JOIN post_targets t
                             ON t.id = m.target_id WHERE t.post_id = $1::uuid)) AS j",
            [id.into()],
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get("", "j")
        .expect("json")
}

/// The queue and publishing operations (`retryPost`, `markPublished`, `refreshPostMetrics`,
/// `postQueueStatus`) on another tenant's post answer NOT_FOUND, with no data and nothing
/// about the post, and change nothing; its owner gets answers from the same calls.
#[tokio::test]
async fn another_tenant_cannot_retry_mark_refresh_or_inspect_a_post() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice", None, &[]);
    let bob = app.token("bob", None, &["approver", "admin"]);
    let carol = app.token("carol", Some("acme"), &["admin"]);
    let post = app
        .create_post(
            &alice,
            json!({"content": "secret plans", "platforms": ["x", "mastodon"]}),
        )
        .await;
    let id = post["id"].as_str().expect("id").to_owned();
    let target = |platform: &str| {
        post["targets"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["platform"] == platform))
            .and_then(|t| t["id"].as_str())
            .expect("target")
            .to_owned()
    };
    let (x, mastodon) = (target("x"), target("mastodon"));
    // One target failed, the other needs review: both retryable and markable by alice.
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared(&format!(
            "UPDATE post_targets SET status = 'failed', attempts = 3,
                    last_error = 'secret failure detail' WHERE id = '{x}';
             UPDATE post_targets SET status = 'needs_review', attempts = 1,
                    last_error = 'secret review detail' WHERE id = '{mastodon}';
             UPDATE social_posts SET status = 'failed' WHERE id = '{id}'"
        ))
        .await
        .expect("seed statuses");
    let before = rows_of(&app, &id).await;

    let attempts = [
        (
            "mutation($id: ID!) { retryPost(id: $id) { id content status } }",
            json!({"id": id}),
        ),
        (
            "mutation($t: ID!) { markPublished(targetId: $t, url: \"https://evil.example/1\") { id content } }",
            json!({"t": mastodon}),
        ),
        (
            "mutation($t: ID!) { markPublished(targetId: $t, url: \"https://evil.example/2\") { id content } }",
            json!({"t": x}),
        ),
        (
            "mutation($id: ID!) { refreshPostMetrics(postId: $id) { target { id platform } error } }",
            json!({"id": id}),
        ),
        (
            "query($id: ID!) { postQueueStatus(postId: $id) { targetId platform status } }",
            json!({"id": id}),
        ),
    ];
    for token in [&bob, &carol] {
        for (query, variables) in &attempts {
            let body = app.gql(Some(token), query, variables.clone()).await;
            assert_error(&body, "NOT_FOUND", None);
            assert!(
                body.get("data").is_none_or(Value::is_null),
                "no data: {body}"
            );
            let text = body.to_string();
            for secret in ["alice", "secret"] {
                assert!(!text.contains(secret), "{secret} leaked: {body}");
            }
        }
    }
    assert_eq!(rows_of(&app, &id).await, before, "nothing changed");

    // The owner gets answers from the same operations.
    let status = app.ok(&alice, attempts[4].0, attempts[4].1.clone()).await;
    assert_eq!(
        status["postQueueStatus"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );
    let marked = app
        .ok(
            &alice,
            "mutation($t: ID!) { markPublished(targetId: $t, url: \"https://m.example/1\") { targets { status } } }",
            json!({"t": mastodon}),
        )
        .await;
    let mut statuses: Vec<&str> = marked["markPublished"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["status"].as_str())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["FAILED", "PUBLISHED"], "{marked}");
    assert_ne!(rows_of(&app, &id).await, before);
}
