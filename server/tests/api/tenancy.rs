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
